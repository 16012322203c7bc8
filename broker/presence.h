/* presence: the connections this broker has registered in Redis presence,
 * so that it can refresh them (a heartbeat keeps them from expiring) and
 * remove them once their gateway link has closed (after its grace: see
 * leaves.c).
 *
 * An entry is one connection in one room, owned here (names are copied).
 * The Redis side is store.h's business; this is only the local record. */
#ifndef BROKER_PRESENCE_H
#define BROKER_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

struct presence;

struct presence *presence_new(void);
void presence_free(struct presence *p); /* NULL is a no-op */

/* 0, -EEXIST (already recorded: the entry is link_id's from now on unless
 * its owner's link is newer, as when a gateway's re-sync registers its
 * connections again from a new link; link ids only grow; or unless memory
 * for link_id's count ran out) or -ENOMEM.
 *
 * Every registration that makes or takes the entry gives it a new number,
 * stored in *reg (if reg is not NULL; 0 when an older link's registration
 * took nothing): a join that fails later removes the entry only if it is
 * still the one that join registered (presence_del_reg), not one that a
 * leave and a newer join of the same connection made meanwhile. */
int presence_add(struct presence *p, uint64_t link_id, struct cf_str room, struct cf_str conn,
                 struct cf_str user, uint64_t *reg);
/* The existing entry only, taken over as presence_add would: true when it
 * exists. */
bool presence_take_over(struct presence *p, struct cf_str room, struct cf_str conn,
                        uint64_t link_id);
/* Gives the entry to `owner` whatever the links' order (the broker keeps a
 * leave it could not queue yet this way, under an id older than any link's,
 * so that a newer join takes the entry back). False when there is no entry
 * or memory for owner's count ran out. The entry gets a new registration
 * number: a late failure of the join that made it leaves it alone. */
bool presence_give(struct presence *p, struct cf_str room, struct cf_str conn, uint64_t owner);
/* The link that owns the entry; 0: there is none. */
uint64_t presence_owner(struct presence *p, struct cf_str room, struct cf_str conn);
/* True when the entry existed (and is now gone). */
bool presence_del(struct presence *p, struct cf_str room, struct cf_str conn);
/* True when the entry exists and link_id owns it or is newer than its
 * owner, so that a leave from link_id may remove it (presence_del, or
 * leaves.c's leave owed): a request of a link that has gone must not
 * remove what a newer link took over, while a newer link's leave is its
 * gateway's latest word on the connection (a connection's id is one
 * gateway process's alone, and link ids only grow). The latter is a leave
 * sent before the connection's registration on the new link went out (it
 * waited behind others after a link reset): ignored, it left the user
 * present until the old link's grace ended, up to LINK_GRACE_MAX_MS. */
bool presence_may_remove(struct presence *p, struct cf_str room, struct cf_str conn,
                         uint64_t link_id);

/* Removes the entry, but only while it is still registration `reg`'s (0
 * matches nothing). */
bool presence_del_reg(struct presence *p, struct cf_str room, struct cf_str conn, uint64_t reg);
/* Whether the entry exists and is still registration `reg`'s (0 matches
 * nothing). */
bool presence_is_reg(struct presence *p, struct cf_str room, struct cf_str conn, uint64_t reg);

/* What a presence_drop_link callback makes of an entry. */
enum presence_drop {
    PRESENCE_DROP, /* removed */
    /* kept, and the call ends there: what it had to send about it could not
     * be queued, and a later call tries it again */
    PRESENCE_STOP,
    /* kept, and the call goes on: it waits for something of its own (its
     * Redis server's return) that the link's other entries need not */
    PRESENCE_SKIP,
};
typedef enum presence_drop (*presence_drop_fn)(void *ud, struct cf_str room, struct cf_str conn);

/* Removes a link's entries, at most max of them (UINT64_MAX: all; entries
 * kept do not count), calling fn for each first (fn must not add or remove
 * presence; NULL: every entry is dropped), which may keep it (above).
 * Allocates nothing, so it cannot fail. A call for the link whose call stopped short last goes on
 * from where that one stopped (calls for other links meanwhile that do not stop short keep that
 * place), so that a link's entries dropped a slice at a time are walked once, not once per slice.
 * It stops at the link's last entry (skipped ones included: one round at most), and at once for a
 * link that owns none. Returns how many entries the link still owns. */
uint64_t presence_drop_link(struct presence *p, uint64_t link_id, uint64_t max, presence_drop_fn fn,
                            void *ud);

/* Gives every entry of link `from` to link `to`, which must own some
 * already (false, nothing changed, when either owns none): two closed links
 * in their grace become one slot (leaves.c). Walks every entry until the
 * last of from's; allocates nothing, so it cannot fail otherwise. */
bool presence_merge_link(struct presence *p, uint64_t from, uint64_t to);

/* A room's entries: the arrays are valid during the call only, and fn must
 * not add or remove presence. */
typedef void (*presence_room_fn)(void *ud, struct cf_str room, const struct cf_str *conns,
                                 const struct cf_str *users, uint32_t n);

/* Calls fn for the next max_rooms rooms of a round that visits every room in
 * turn and then starts again, so that a heartbeat can spread its refreshes
 * over its period instead of sending them all at once. A room created during
 * a round comes at the end of it. Returns how many rooms were visited. */
uint32_t presence_refresh_next(struct presence *p, uint32_t max_rooms, presence_room_fn fn,
                               void *ud);

/* A walk of every room beside the heartbeat's round, for a burst of
 * refreshes spread over time (a Redis server back, which may have lost
 * every entry). _start begins it at the round's cursor, or, when one is
 * under way, makes it a whole round again from where it is; it visits
 * every room there is then, and may visit a few twice (one for each room
 * made or removed meanwhile). _next calls fn for its next max_rooms rooms
 * that want (NULL: every room) takes, each right after want took it (want
 * may leave fn what it learned of the room), passing over those it does
 * not take, without building their entries, up to max_looked rooms in all
 * (which bounds the call's time); it says whether the walk is over (also
 * when none was started). */
typedef bool (*presence_want_fn)(void *ud, struct cf_str room);
void presence_catch_up_start(struct presence *p);
bool presence_catch_up_next(struct presence *p, uint32_t max_rooms, uint32_t max_looked,
                            presence_want_fn want, presence_room_fn fn, void *ud);

uint64_t presence_rooms(const struct presence *p);

uint64_t presence_count(const struct presence *p);
/* How many entries link_id owns now (taken-over ones count for the link
 * that took them). */
uint64_t presence_link_entries(const struct presence *p, uint64_t link_id);

#endif
