/* links: the broker's Unix socket and its gateway links.
 *
 * Each gateway process keeps one link to each broker. A link starts with the
 * gateway's "hello" (checked against this broker's shard and shard count,
 * answered with "welcome"); after that it carries join/leave/msg frames from
 * the gateway and msg frames to it, plus pings both ways. The module owns the
 * framing, the handshake, liveness and the bounded output queue; every other
 * frame is handed to the owner.
 *
 * A link that sends a malformed, oversized or unexpected frame, fails the
 * handshake, stays silent too long, or lets its output queue pass the bound
 * (a stuck gateway) is closed and logged; the others are unaffected. Freeing
 * is deferred to the end of the loop pass's dispatch (gwlinks_flush), so a
 * link is never freed while the owner is iterating over links (e.g. during a
 * fan-out). */
#ifndef BROKER_LINKS_H
#define BROKER_LINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "rel.h"
#include "wire.h"

struct gwlink;
struct gwlinks;

struct gwlinks_cbs {
    /* A request frame (join, leave, msg, send, sub, unsub, hist, typing)
     * from a linked gateway. `payload` is the
     * frame's raw bytes (what m's strings point into). */
    void (*on_frame)(void *ud, struct gwlink *l, const struct cf_wire_msg *m,
                     const unsigned char *payload, size_t len);
    /* The link completed its handshake. */
    void (*on_up)(void *ud, struct gwlink *l);
    /* A link that completed its handshake is closing: drop everything that
     * refers to it. (A probe that never said hello holds nothing: no call.) */
    void (*on_close)(void *ud, struct gwlink *l);
};

/* Listens on `path` (mode 0660). Returns NULL after logging why. */
struct gwlinks *gwlinks_new(sd_event *ev, const char *path, uint32_t shard, uint32_t shards,
                            size_t max_queue, const struct gwlinks_cbs *cbs, void *ud);
/* Flushes what it can, closes every link and the socket, removes the file. */
void gwlinks_free(struct gwlinks *g);

/* Queues a message for the gateway. 0; -EINVAL when a field cannot be
 * encoded (nothing sent, the link stays); -ENOBUFS/-ENOMEM when the queue is
 * full (the link is closed); -EPIPE when the link is closing. */
int gwlink_send(struct gwlink *l, const struct cf_wire_msg *m);
/* The open link with this id, or NULL (it closed). Linear: links are few. */
struct gwlink *gwlinks_find(struct gwlinks *g, uint64_t id);

/* Queues an encoded msg payload for the gateway: true when queued. A full
 * queue closes the link. */
bool gwlink_send_payload(struct gwlink *l, const void *payload, size_t len);

/* The link's end of the room membership relation. */
struct cf_rel_end *gwlink_rooms(struct gwlink *l);
/* Link ids grow from GWLINK_ID_FIRST; the ids below it are no link's (the
 * broker keeps presence entries whose leave it owes under one, broker.h). */
#define GWLINK_ID_FIRST 2
uint64_t gwlink_id(const struct gwlink *l);
const char *gwlink_node(const struct gwlink *l);

/* Links past hello and not closing: the gateway processes linked. */
size_t gwlinks_count(const struct gwlinks *g);
/* Grows with the work that allocates (frames received, links opened): what
 * the broker's memtrim watches. */
uint64_t gwlinks_activity(const struct gwlinks *g);
/* Draining: no new links (gateways retry, reaching the next broker). */
void gwlinks_stop_accepting(struct gwlinks *g);
/* Writes now what this iteration queued for the gateways, and frees the links
 * that closed, instead of in an iteration of its own (see broker.c,
 * run_loop). */
void gwlinks_flush(struct gwlinks *g);
/* Every open link's output queue is written out. */
bool gwlinks_flushed(const struct gwlinks *g);
/* Sends m on every link that completed its handshake. */
void gwlinks_broadcast(struct gwlinks *g, const struct cf_wire_msg *m);

#endif
