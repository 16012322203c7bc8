/* rooms: a broker's rooms, their gateway links, and their Redis subscriptions.
 *
 * Membership is kept per gateway link (a link is "in" a room while its gateway
 * has at least one member there), indexed both ways. A room is subscribed on
 * Redis channel "room:<name>" while it has links; its first link subscribes,
 * its last unsubscribes.
 *
 * Ordering guarantee: a request from a gateway of this node (a message, a
 * join's snapshot, a presence change) for a room whose subscription is not
 * yet confirmed by Redis is held back until it is, so that the sender and the
 * other local members see its effects live. Without this, the command (sent
 * on the publisher connection) could overtake the SUBSCRIBE. Requests
 * submitted for a room run in the order they were submitted. (History
 * pages and typing are not submitted: they run at once. A presence change
 * refused a place in the hold runs at once too, ahead of what is held,
 * rather than be lost: requests.c.)
 * Subscription replies are counted per room; a room struct lives until its
 * last link has left and every SUBSCRIBE/UNSUBSCRIBE sent for it is answered
 * (and an UNSUBSCRIBE that did not fit the queue is sent: rooms_retry), so a
 * late reply never reaches freed memory or a newer incarnation's state.
 *
 * The module does no I/O itself: it calls the operations given at creation. */
#ifndef BROKER_ROOMS_H
#define BROKER_ROOMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rel.h"

struct rooms_ops {
    /* Queue a SUBSCRIBE / UNSUBSCRIBE of room:<name>. 0 or -errno:
     * -ENOTCONN when the subscriber connection is down (rooms_on_sub_ready
     * will retry), anything else (its queue is full) is retried by
     * rooms_retry. */
    int (*subscribe)(void *ud, const char *name, size_t len);
    int (*unsubscribe)(void *ud, const char *name, size_t len);
    /* Carry out a request (a wire frame payload from gateway link link_id).
     * `ctx` is what rooms_submit was given when the request runs at once
     * (e.g. the frame already decoded), NULL when it ran after being held. */
    void (*run)(void *ud, uint64_t link_id, const void *payload, size_t plen, const void *ctx);
    /* Send a room event (an encoded wire payload from Redis) to one gateway
     * link. False when it was not queued (the link is closing, or its queue
     * was full and it is closed for it). */
    bool (*deliver)(void *ud, void *link, const void *payload, size_t plen);
};

struct rooms_stats {
    uint64_t rooms, held_bytes, held_dropped, delivered_frames, no_member_drops;
};

struct rooms;

/* max_held_bytes bounds the messages held back for pending subscriptions,
 * over all rooms. Returns NULL when out of memory. */
struct rooms *rooms_new(const struct rooms_ops *ops, void *ud, size_t max_held_bytes);
void rooms_free(struct rooms *r); /* NULL is a no-op; links must have been dropped */

/* Adds link (whose membership end is `end`) to a room. 0 (also when already a
 * member) or -ENOMEM. A link is always given with the same pointer: it is
 * what the room's side of the membership refers to. */
int rooms_join(struct rooms *r, void *link, struct cf_rel_end *end, const char *name,
               size_t len);
/* Removes link from a room; 0 whether or not it was a member. */
void rooms_leave(struct rooms *r, void *link, struct cf_rel_end *end, const char *name,
                 size_t len);
/* Removes link from all its rooms (the link is closing). */
void rooms_drop_link(struct rooms *r, struct cf_rel_end *end);

/* A gateway's request for a room: run now, or held until the room's
 * subscription is confirmed. `tag` (0: none) is kept with a held request for
 * rooms_unhold_if. Held also while the room's SUBSCRIBE waits for room in
 * a full queue (rooms_retry). 0, -ENOTCONN when it would wait for a
 * subscriber that is down, -ENOBUFS when the hold budget is spent. */
int rooms_submit(struct rooms *r, const char *name, size_t len, uint64_t link_id, uint64_t tag,
                 const void *payload, size_t plen, const void *ctx);

/* Takes out of room name's held requests, without running them, those
 * submitted with `tag` that `pick` chooses (it may answer them); the others
 * cost one comparison each, so a room holding a whole budget of sends is
 * walked quickly. For a request that cannot wait (a presence change refused
 * for want of budget, run at once instead), so that an older held request of
 * the same connection does not run after it and undo it. Returns how many
 * were taken. */
typedef bool (*rooms_held_fn)(void *ud, uint64_t link_id, const void *payload, size_t plen);
size_t rooms_unhold_if(struct rooms *r, const char *name, size_t len, uint64_t tag,
                       rooms_held_fn pick, void *ud);

/* Redis delivered a message on room:<name>: hand it to each link in the room. */
void rooms_on_message(struct rooms *r, const char *name, size_t len, const void *payload,
                      size_t plen);
/* Redis answered one SUBSCRIBE or UNSUBSCRIBE of room:<name>. */
void rooms_on_confirm(struct rooms *r, const char *name, size_t len);
/* The subscriber connection was lost: every subscription is gone, and the
 * requests held for them run now (so none waits for an outage to end). */
void rooms_on_sub_lost(struct rooms *r);
/* The subscriber connection is up (again): subscribe every room with links. */
void rooms_on_sub_ready(struct rooms *r);

/* The same for the rooms `pick` chooses (those of one Redis server, when
 * rooms are spread over several, each with its own subscriber). `kept`:
 * the subscriber connection lives on with its channels (its server is only
 * not used for now: its publisher dropped), so a channel still to be left
 * (an UNSUBSCRIBE that found the queue full) is still left by rooms_retry,
 * and the replies owed to what was sent before are not taken for replies to
 * what is sent after (a room is kept until they come); otherwise the
 * connection took its channels with it. */
typedef bool (*rooms_pick_fn)(void *ud, const char *name, size_t len);
void rooms_on_sub_lost_if(struct rooms *r, rooms_pick_fn pick, void *ud, bool kept);
void rooms_on_sub_ready_if(struct rooms *r, rooms_pick_fn pick, void *ud);
/* Subscribes the rooms whose SUBSCRIBE could not be queued (the
 * subscriber's queue was full, e.g. a whole resubscription at once under a
 * small MAX_LINK_QUEUE_BYTES): until then their requests are held, as for
 * a SUBSCRIBE in flight, and run when one that finds the subscriber down
 * leaves nothing to wait for; and unsubscribes the rooms whose UNSUBSCRIBE could not
 * be (their channel would bring messages nobody here wants; such a room is
 * kept until then). Walks every room, but only after such a failure: call it
 * periodically (the broker does once a second). */
void rooms_retry(struct rooms *r);
void rooms_stats(const struct rooms *r, struct rooms_stats *out);

#endif
