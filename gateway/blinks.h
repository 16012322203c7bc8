/* blinks: this gateway process's links to the brokers, one per shard.
 *
 * Each link is a Unix stream socket to RUN_DIR/broker-<i>.sock, adopted into
 * the lws loop as a raw descriptor and framed with the wire format. A link
 * starts with hello/welcome (both sides check they agree on the shard count),
 * is kept alive with pings, and when it drops (a broker restart) is retried
 * with jittered exponential backoff; once it is back, the owner re-registers
 * every local room of that shard. Output is a bounded byte queue flushed with
 * one write per loop pass. */
#ifndef GW_BLINKS_H
#define GW_BLINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "wire.h"

struct lws;
struct lws_vhost;
struct lws_context;
struct blinks;

struct blinks_cbs {
    /* A frame from a broker: a room event (msg, typing, presence) or the
     * answer to a request (sent, fail, subbed, histr). */
    void (*on_msg)(void *ud, const struct cf_wire_msg *m);
    /* The link to `shard` completed its handshake: re-register its rooms. */
    void (*on_up)(void *ud, uint32_t shard);
    /* The link to `shard` went down. */
    void (*on_down)(void *ud, uint32_t shard);
    /* The broker of a link that stayed up was not ready (its Redis was away)
     * and is ready again (server -1), or has its Redis server `server` of
     * `servers` usable again while another is still down: what those rooms
     * published meanwhile may not have reached us, so their memberships
     * re-sync. NULL = not interested. */
    void (*on_ready_again)(void *ud, uint32_t shard, int server, uint32_t servers);
};

/* The lws protocol name the links are adopted under; register blinks_callback
 * for it on the vhost. */
#define BLINKS_PROTOCOL "confab broker link"

struct blinks *blinks_new(struct lws_context *ctx, struct lws_vhost *vh,
                          const struct cf_config *cfg, const char *node,
                          const struct blinks_cbs *cbs, void *ud);
/* Starts connecting every link (call once the loop exists). */
void blinks_start(struct blinks *b);
void blinks_free(struct blinks *b); /* NULL is a no-op */

/* Handshake and silence deadlines, and the link pings: the gateway's tick
 * calls it about once a second (no lws timer of its own: gateway.c says
 * why). NULL is a no-op. */
void blinks_tick(struct blinks *b);

/* Register / unregister a room with its owning broker, or send it a room
 * request (msg, send, sub, unsub, hist, typing: routed by m->room). 0, -ENOTCONN when that link is
 * down (joins are replayed when it comes back; messages are lost and the caller says so), or
 * -ENOBUFS when the link's queue is full. Joins and leaves (and the link's own hello, ping and
 * pong) may use a reserve of 1/16 of the queue's bound past it; past that the link is reset (its
 * state is rebuilt on reconnect). */
int blinks_join(struct blinks *b, const char *room, size_t len);
int blinks_leave(struct blinks *b, const char *room, size_t len);
int blinks_publish(struct blinks *b, const struct cf_wire_msg *m);
/* blinks_publish for a frame the broker's state needs and nothing sends
 * again (a presence unregistration): it may use the reserve, as a leave
 * does, and past it the link is reset. Dropped, it left the user present in
 * the room for as long as the link lived. */
int blinks_publish_state(struct blinks *b, const struct cf_wire_msg *m);

/* Writes what is queued for the brokers; the gateway's loop calls it at the
 * end of every pass (and blinks itself when a frame is queued where no pass
 * end follows before the next wait). Only what a full socket did not take
 * waits for lws' POLLOUT: a POLLOUT round per message cost a poll() each. */
void blinks_flush(struct blinks *b); /* NULL is a no-op */

uint32_t blinks_shard_of(const struct blinks *b, const char *room, size_t len);
uint32_t blinks_count(const struct blinks *b);
uint32_t blinks_up(const struct blinks *b);
/* Links whose broker says it is ready (Redis connected, canary passing). */
uint32_t blinks_ready(const struct blinks *b);
/* Links whose broker serves: ready, or with several Redis servers at least
 * one of them works (the other servers' rooms answer unavailable). */
uint32_t blinks_serving(const struct blinks *b);
bool blinks_link_up(const struct blinks *b, uint32_t shard);
/* The bound of `shard`'s broker's queue toward this gateway, as its last
 * welcome told (its MAX_LINK_QUEUE_BYTES); 0 when it did not (an older
 * broker) or has not linked yet. */
uint64_t blinks_peer_queue(const struct blinks *b, uint32_t shard);
/* Whether that welcome told another bound than the welcome before it (the
 * first: than 0), so that what follows from it is said once per change. */
bool blinks_peer_queue_changed(const struct blinks *b, uint32_t shard);
bool blinks_link_ready(const struct blinks *b, uint32_t shard);
/* Bytes queued for that broker and not yet written: grows while the broker
 * does not read (stalled, or slower than the gateway's traffic). */
size_t blinks_link_queued(const struct blinks *b, uint32_t shard);

/* The lws callback for BLINKS_PROTOCOL. */
int blinks_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);

#endif
