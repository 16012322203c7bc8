/* store: what confab keeps in Redis per room, behind six Lua scripts (scripts.h).
 *
 * Per room <r> (the braces keep a room's keys in one Redis Cluster slot):
 *   cf:{r}:meta   a hash: "seq", the last message id (ids are gapless and
 *                 increasing), and "epoch", which changes whenever it was lost
 *                 (flush, expiry, eviction), so a client's "since" from another
 *                 epoch is known to be stale; one key, so they go together
 *   cf:{r}:hist   the newest message payloads (a list, oldest first); it
 *                 always ends at id "seq", so list index and id map one to
 *                 one. It holds HISTORY_SIZE to HISTORY_SIZE * 9/8 of them
 *                 (trimmed in steps: a trim per message cost Redis more than
 *                 the rest of a send) and readers see only the newest
 *                 HISTORY_SIZE
 *   cf:{r}:pz     presence: connection id -> expiry (ms), a sorted set
 *   cf:{r}:pu     presence: connection id -> user
 *   cf:{r}:pc     presence: user -> number of connections
 *   cf:{r}:pv     presence version: +1 per announced join or leave
 *   cf:{r}:dd:<len>:<user>:<cid>  "id:ts" of an accepted send, for DEDUP_WINDOW
 *   cf:{r}:ty:<user>        the typing throttle (2 s)
 *
 * meta and hist live HISTORY_TTL to HISTORY_TTL * 9/8 after the room's last
 * message or join (store.c, TTLs).
 *
 * Each operation is one script, so it is atomic: a send assigns the id,
 * appends to the history and PUBLISHes in one step (every subscriber sees
 * ids in order); a join adds the presence entry and reads the epoch, the
 * history and the member list in one step (the snapshot and the live events
 * after it can be told apart by id and presence version). The sends asked
 * for in one loop pass run in one script call (rbatch.h), still each as its
 * own step, in the order asked; a send that fails there fails the sends
 * behind it in that call without running them.
 *
 * Callbacks run exactly once per accepted call, with err = 0 and the result,
 * or err < 0 (-EAGAIN: Redis refused to write for now, out of memory or
 * read-only, and nothing was done; -EIO: Redis answered with another error;
 * -ECONNRESET: the connection dropped, the outcome is unknown). Results
 * point into memory valid only during the callback. */
#ifndef BROKER_STORE_H
#define BROKER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"
#include "wire.h"

struct store_limits {
    uint32_t history_size;
    uint32_t history_ttl_s;
    uint32_t dedup_window_s;
    uint32_t presence_ttl_ms;
};

struct store_sent {
    uint64_t id;
    int64_t ts;
    bool dup; /* an earlier send with the same client id: its original id and ts */
};

struct store_joined {
    struct cf_str epoch;
    uint64_t last_id, pv, count;
    bool recovered;
    const struct cf_str *members, *messages;
    uint32_t nmembers, nmessages;
};

struct store_page {
    const struct cf_str *messages;
    uint32_t nmessages;
    bool has_more;
};

typedef void (*store_sent_fn)(void *ud, int err, const struct store_sent *r);
typedef void (*store_joined_fn)(void *ud, int err, const struct store_joined *r);
typedef void (*store_page_fn)(void *ud, int err, const struct store_page *r);

/* Every call returns 0 (the callback will run), or -errno from
 * rbridge_eval (-ENOTCONN: Redis is down, also when rb is NULL) and the
 * callback will not run. */

/* The history TTLs this process set may be gone (its publisher connection
 * came back, perhaps to a restarted or promoted server): each room's next
 * send or join sets them again, instead of up to HISTORY_TTL/8 later. */
void store_forget_touches(void);

/* The reply boxes kept for reuse (one carries a request's callback while
 * Redis runs it): how many are held, and a trim of those no request took
 * since the last trim (call once a second; freelist.h), which returns how
 * many it freed. Process-wide, like the boxes. */
size_t store_boxes_held(void);
size_t store_trim(void);

/* Stores and publishes a message. `m` is a CF_WIRE_MSG without id; cid (may
 * be empty) is the client's idempotency key. fn hears the outcome (a legacy
 * client's message too: a refused one is counted as dropped). */
int store_send(struct rbridge *rb, const struct store_limits *lim, const struct cf_wire_msg *m,
               struct cf_str cid, store_sent_fn fn, void *ud);

/* Adds connection `conn` of `user` to the room's presence (announcing the
 * user's first connection) and reads the join snapshot: with has_since and
 * a matching epoch, the messages after `since`; otherwise the latest `limit`.
 * Either way only the newest that fit in `budget` bytes (each counted with 8
 * of framing) are read, the newest even alone over it, and a recovery that
 * does not fit is not recovered.
 * At most `max_members` names are returned (count has the total). */
int store_join(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
               struct cf_str conn, struct cf_str user, bool has_since, uint64_t since,
               struct cf_str epoch, uint32_t limit, uint32_t budget, uint32_t max_members,
               store_joined_fn fn, void *ud);

/* Removes a connection from the room's presence (announcing the user's last
 * connection). Fire and forget. */
int store_leave(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                struct cf_str conn);

/* Refreshes the presence entries of `n` connections (conns[i] of users[i]),
 * re-adding any that expired, and expires dead nodes' entries. */
int store_refresh(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                  const struct cf_str *conns, const struct cf_str *users, uint32_t n);

/* The page of history before message id `before` (exclusive; has_before
 * false: the latest), at most `limit` messages, oldest first: only the
 * newest that fit in `budget` bytes (each counted with 8 bytes of framing),
 * the newest even alone over it, has_more set when older ones were left
 * out. */
int store_history(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                  bool has_before, uint64_t before, uint32_t limit, uint32_t budget,
                  store_page_fn fn, void *ud);

/* Publishes a typing payload on the room's channel unless the same user
 * typed in that room less than gap_ms ago on any node (cf:{r}:ty:<user>). */
int store_typing(struct rbridge *rb, struct cf_str room, struct cf_str user, uint32_t gap_ms,
                 const void *payload, size_t len);

#endif
