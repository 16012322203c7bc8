/* lrooms: the rooms of this gateway process and their local members.
 *
 * A room exists here while at least one of this process's connections is in
 * it. Its first member makes the gateway register the room with the owning
 * broker ("join"), its last member unregisters it ("leave"), so a broker sends
 * each room event over a gateway link once however many local members the
 * room has; the fan-out to sockets happens here, with the event encoded once
 * per client protocol in use and shared by every recipient's queue.
 *
 * A v1 member is PENDING from its join request until the broker's snapshot
 * arrives: live events for it are held (bounded by the session's queue bound)
 * and released by lrooms_go_live after the snapshot, minus what the snapshot
 * already holds (message ids up to its last id, presence versions up to its
 * own). A LIVE member drops message ids it has already been given, so a
 * recovery and the live stream meet with no gap and no duplicate. */
#ifndef GW_LROOMS_H
#define GW_LROOMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"
#include "wire.h"

struct lmember;

struct lrooms_ops {
    /* The room got its first local member / lost its last one. */
    void (*first)(void *ud, const char *name, size_t len);
    void (*last)(void *ud, const char *name, size_t len);
    /* A live v1 member missed something: a message from another epoch of
     * its room (the history was lost; since = false: it needs a fresh
     * snapshot) or a gap in the ids (since = true: replay after its last id).
     * The member is pending again; the message that showed it is held.
     * later: what it missed did not fit the client's queue (lrooms_go_live),
     * so ask once the client had time to read. */
    void (*resync)(void *ud, struct cf_str room, struct lmember *m, bool since, bool later);
};

struct lheld;

/* One session in one room. Owned by lrooms; valid until it leaves. */
struct lmember {
    struct session *s;
    struct cf_rel_edge edge; /* room (left) - session (right) */
    uint64_t q;           /* the request the pending snapshot answers */
    uint64_t last_id;     /* newest message id given to the client */
    uint64_t pv;          /* newest presence version the client knows: of its
                           * snapshot, or of the last presence event it got */
    int64_t pv_until;     /* until then, presence versions <= pv are stale */
    int64_t typing_at;    /* last typing relayed for this member (monotonic ms) */
    struct lheld *held;   /* events held while pending */
    uint32_t nheld, capheld;
    uint32_t heldbytes;   /* with the session's other held bytes and its queue, bounded by its queue bound */
    bool pending;         /* waiting for the join snapshot */
    bool epoch_known;     /* the client knows the room's epoch (joined was sent) */
    char epoch[17];       /* the room's epoch as last told to the client (16 hex) */
    uint8_t full_rounds;  /* lrooms_full_round's count (low 4 bits), and the session's
                           * sess_resynced (mod 16) at its last round (high 4 bits) */
    uint32_t wlist, wslot; /* its waiting list, and 1 + its place in it; wslot 0: in
                            * none (lrooms_wait). In the 8 bytes a 128-byte
                            * calloc's chunk has spare. */
};

/* A member whose client's queue had no room for what it missed re-syncs
 * once the client had time to read; one that still has no room after this
 * many rounds in a row reads more slowly than its rooms speak, and is closed
 * as a slow consumer (kept, it re-synced forever, a join script each round,
 * seeing its rooms with gaps). */
#define LROOMS_MAX_FULL_ROUNDS 8

/* Counts a round in which m's client's queue had no room for it: true when
 * that makes more than LROOMS_MAX_FULL_ROUNDS in a row. `waiting`: the
 * member's whole joined waits behind what is queued (a re-sync's, which an
 * empty queue takes); such a round is not counted when a re-sync has given
 * the client something since m's last round (sess_resynced): the client
 * reads, and m waits its turn. Counted, a client in many rooms that each
 * needed a whole joined at once (their presence changed during a broker's
 * restart; about four fit the default queue a round) was closed after the
 * eighth round of the later ones. The other rounds (the missed messages, or
 * what was held, over the bound) are counted whatever came meanwhile, and
 * so is a waiting round while nothing else is given: a client that cannot
 * keep up with its rooms is closed, not re-synced forever. */
bool lrooms_full_round(struct lmember *m, bool waiting);

struct lrooms;

struct lrooms *lrooms_new(const struct lrooms_ops *ops, void *ud);
void lrooms_free(struct lrooms *r); /* NULL is a no-op; sessions must have left */

/* Adds s to a room. Returns the new member (pending as asked), or NULL with
 * *err = -EEXIST (already a member: lrooms_find gives it) or -ENOMEM. */
struct lmember *lrooms_join(struct lrooms *r, struct session *s, const char *name, size_t len,
                            bool pending, int *err);
struct lmember *lrooms_find(struct lrooms *r, struct session *s, const char *name, size_t len);
void lrooms_leave_member(struct lrooms *r, struct lmember *m);
void lrooms_leave(struct lrooms *r, struct session *s, const char *name, size_t len);
void lrooms_leave_all(struct lrooms *r, struct session *s);

/* Delivers a room event from a broker (msg, typing, presence) to the local
 * members. Returns the number of sessions it was queued for. */
size_t lrooms_deliver(struct lrooms *r, const struct cf_wire_msg *m);

/* The snapshot for a pending member was sent to its client: release what was
 * held for it that the snapshot does not already cover, messages in id
 * order. A held message that does not follow (another epoch, a gap) is not
 * given out, nor are the messages with ids after it: the member is re-synced
 * (ops->resync, pending again), which brings them. Presence changes and
 * messages without ids are released all the same. So are not those the
 * client's queue has no room for: the re-sync (ops->resync, later) brings
 * them. Returns the events queued to the client. */
size_t lrooms_go_live(struct lrooms *r, struct lmember *m);

/* A pending member's snapshot will not come (its re-sync was refused; the
 * next try asks from its last id): the messages with ids held for it are
 * dropped, as that snapshot brings those that still exist. Kept, they were
 * given out after it even when Redis had lost them meanwhile (restarted
 * from an older copy: the same epoch, its ids handed out again), and the
 * real messages with those ids dropped as repeats. Presence changes and
 * messages without ids stay held. */
void lrooms_forget_held_messages(struct lmember *m);

/* Calls fn for every room (to re-register them after a broker link is back). */
void lrooms_foreach(struct lrooms *r, void (*fn)(void *ud, const char *name, size_t len),
                    void *ud);
/* Calls fn for every member of every room whose name satisfies `want`.
 * fn must not join or leave. */
void lrooms_foreach_member(struct lrooms *r, bool (*want)(void *ud, struct cf_str room),
                           void (*fn)(void *ud, struct cf_str room, struct lmember *m), void *ud);

/* Waiting lists: numbered sets of members, for the members whose re-sync
 * or presence registration waits (resync.h keeps three a shard). A member
 * is in one list at most, and leaves it when it leaves its room, so a list
 * never holds a member that is gone. Each costs 8 to 32 bytes in the list
 * while it waits (an array shrinks to a quarter once down to an eighth in
 * use, and is freed when its list is empty).
 * Members are taken in the order they were put in (first in, first out),
 * so none waits longer than the members ahead of it; only
 * lrooms_wait_front puts one ahead, a member whose turn it already was. */

/* Puts m in `list` (out of the one it was in). 0, or -ENOMEM (m is then in
 * no list). */
int lrooms_wait(struct lrooms *r, struct lmember *m, uint32_t list);
/* Puts m at the front of `list`, to be taken next (a member taken that
 * could not be sent after all). 0, or -ENOMEM (m is then in no list). */
int lrooms_wait_front(struct lrooms *r, struct lmember *m, uint32_t list);
/* Takes m out of its list (none: a no-op). */
void lrooms_unwait(struct lrooms *r, struct lmember *m);
/* Takes the next member out of `list`; NULL when it is empty. */
struct lmember *lrooms_wait_take(struct lrooms *r, uint32_t list);
/* Moves every member of `from` into `to`, in their order, to be taken
 * after those already in `to`. 0, or -ENOMEM (nothing moved). */
int lrooms_wait_move(struct lrooms *r, uint32_t from, uint32_t to);
size_t lrooms_wait_count(const struct lrooms *r, uint32_t list);
/* What the waiting lists' arrays hold now, in bytes (for tests: a list
 * that was filled must give most of it back once drained). */
size_t lrooms_wait_bytes(const struct lrooms *r);
static inline bool lrooms_waits(const struct lmember *m)
{
    return m->wslot != 0;
}

size_t lrooms_count(const struct lrooms *r);

/* The name of a member's room, and of the room at one end of a session's
 * membership edge. */
struct cf_str lrooms_member_room(const struct lmember *m);
struct cf_str lrooms_edge_name(const struct cf_rel_edge *e);

/* Whether a pending member's client will know the room's presence at
 * version pv without a member list: it knew pv already, or every change
 * after what it knew up to pv is held for it. False when changes went by
 * unseen (while its events were not arriving), so that a re-sync sends a
 * whole joined rather than the missed messages alone. */
bool lrooms_knows_pv(const struct lmember *m, uint64_t pv);
static inline struct lmember *lrooms_edge_member(const struct cf_rel_edge *e)
{
    return e->right;
}

#endif
