/* resync: the pace at which v1 members re-sync, one broker shard at a time.
 *
 * A member re-syncs (asks its room's broker for what it missed) when it sees
 * a gap or a new epoch in its room's events, and when its shard's broker is
 * back or ready again. A broker that comes back gets its whole shard's
 * members at once; sent in one pass, their requests filled the link's queue
 * and the broker's queue toward Redis, and were refused. So each shard has
 * at most RS_WINDOW re-syncs in flight, and the members behind them wait
 * their turn in the shard's ready list, sent as the broker answers. A
 * member whose re-sync was refused (the broker is busy or away) or dropped
 * with its link waits in the shard's later list for the shard's retry, and
 * then goes behind the ready ones. One that did not fit the link's queue
 * goes back to the front of the ready list, and the shard pauses for
 * RS_SOON_MS; the refused ones' retry keeps its time.
 *
 * Windows and lists are per shard: one broker whose Redis hangs holds only
 * its own shard's places (each until its request's 10 s deadline), not the
 * other shards'. A waiting member is pending with no request (m->q == 0)
 * and holds no messages with ids: its re-sync's snapshot brings them. The
 * lists are lrooms' (lrooms_wait), so a member that leaves leaves its list.
 *
 * Members that only need their presence registered again when their broker
 * is back (legacy clients, and v1 members whose join is in flight) wait in
 * a third list of the shard. No answer follows such a registration, so no
 * window holds them: they go first, as many as the link's queue takes, and
 * a full queue pauses the shard as a re-sync does (sent in one pass, those
 * that did not fit the queue were lost). A legacy client's join that does
 * not fit waits there too (rs_presence).
 *
 * Single-threaded, on the gateway's loop. */
#ifndef GW_RESYNC_H
#define GW_RESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lrooms.h"
#include "wire.h"

/* Re-syncs in flight at most, per shard. 256 joins keep a broker and its
 * Redis busy (each takes tens of microseconds of Redis) while taking ~100 KB
 * of a link's queue. */
#define RS_WINDOW 256
/* A refused member tries again this much later (or when its broker is back
 * or ready again). */
#define RS_RETRY_MS 5000
/* A re-sync that did not fit its link's queue is tried again this soon: the
 * queue drains as fast as the broker reads. */
#define RS_SOON_MS 200

struct rs_ops {
    uint32_t (*shard_of)(void *ud, struct cf_str room);
    bool (*link_up)(void *ud, uint32_t shard);
    /* Sends m's re-sync request (with `since`: what it missed after its last
     * id; without: a fresh snapshot) and makes m pending on it (m->q set).
     * 0: sent, and rs_ended follows once for it; -ENOBUFS: the link's queue
     * is full; -ENOTCONN: the link is down (then m->q is 0 again); any
     * other: m's session was closed. */
    int (*send)(void *ud, struct cf_str room, struct lmember *m, bool since);
    /* Registers m's presence in its room again; no answer follows. 0: sent;
     * -ENOBUFS and -ENOTCONN as for send; any other: m's session was
     * closed. m is left as it is (not made pending). */
    int (*send_presence)(void *ud, struct cf_str room, struct lmember *m);
};

struct rs;

/* rooms is borrowed; it must outlive rs. `window`: re-syncs in flight at
 * most per shard, 1..RS_WINDOW (rs_window). NULL when out of memory. */
struct rs *rs_new(struct lrooms *rooms, uint32_t shards, uint32_t window, const struct rs_ops *ops,
                  void *ud);
/* The window for answers of up to `answer_max` bytes each over a link whose
 * queue holds `link_queue` bytes: together at most half of it. With
 * 256 always, a broker's answers to one round filled its queue toward this
 * gateway (MAX_LINK_QUEUE_BYTES lowered, or MAX_CLIENT_QUEUE_BYTES raised:
 * 256 snapshots of up to 1 MiB), and it closed the link; relinked, the
 * gateway sent the same round again. */
uint32_t rs_window(uint64_t link_queue, uint64_t answer_max);
/* Sets one shard's window (clamped to 1..RS_WINDOW), as its broker's link
 * queue may be smaller than this gateway's: re-syncs already in flight past
 * a smaller one end as they come. */
void rs_set_window(struct rs *r, uint32_t shard, uint32_t window);
void rs_free(struct rs *r); /* NULL is a no-op */

/* A live member saw a gap (since) or a new epoch in its room (m->pending is
 * already set): re-synced now if its shard's window has room and no one
 * waits before it, else it waits its turn (with `since`, which also serves
 * a new epoch: a snapshot of another epoch comes as a whole joined). The
 * log tells of gaps in one line a second. A member whose session is closing
 * is left as it is. */
void rs_gap(struct rs *r, struct lmember *m, bool since);
/* m waits its turn in its shard's ready list (m is made pending, with no
 * request). */
void rs_wait(struct rs *r, struct lmember *m);
/* m's presence waits to be registered again at its shard's broker (its
 * link came back); m is not made pending. A member already waiting for a
 * re-sync stays there: the re-sync registers it too. */
void rs_wait_presence(struct rs *r, struct lmember *m);
/* m joined its room with no request of its own (a legacy client): its
 * presence is registered now, or after the registrations already waiting
 * for room in its link. One that does not fit the link's queue waits, and
 * the shard pauses as for a re-sync (dropped, the user was missing from its
 * room's presence until its broker was back); a link that is down registers
 * it when back. */
void rs_presence(struct rs *r, struct lmember *m);
/* m's re-sync was refused or dropped: it waits for its shard's retry,
 * within ms at the latest. */
void rs_later(struct rs *r, struct lmember *m, int ms);
/* m's client had no room in its queue for what m missed (lrooms_go_live):
 * m waits while the client reads, then goes behind the ready members. The
 * shard's soon list goes RS_SOON_MS after the first member put in it since
 * it last went, so a member put in later waits less. A list of its own: in the later list it pulled every refused
 * member's retry forward to its time. */
void rs_soon(struct rs *r, struct lmember *m);
/* True the first time since the shard's last retry round: a refusal worth
 * an INFO line (a whole shard can be refused at once). */
bool rs_first_refusal(struct rs *r, uint32_t shard);
/* A re-sync request of the shard sent by rs left the request table
 * (answered, refused, timed out, dropped with its link): a place is free.
 * Sends nothing (it may be called while the request table is walked). */
void rs_ended(struct rs *r, uint32_t shard);
/* Sends the shard's ready members' re-syncs, as many as its window has
 * room for (none while its link is down or its queue was just full). */
void rs_pump(struct rs *r, uint32_t shard);
/* The shard's link is up (new_link) or its broker ready again: its later
 * members go now, behind the ready ones; after a pause for a full queue
 * (rs_pump), only once the pause is over unless the link is new. */
void rs_shard_back(struct rs *r, uint32_t shard, bool new_link);
/* One of the shard's broker's Redis servers is back while another is down:
 * its rooms' members, just put in the ready list, go now, as many as the
 * window has room for; the shard's other refused members keep their
 * retry's time (their servers may still be down: retried at each return,
 * they were refused again). A refusal or a full link is news again. */
void rs_server_back(struct rs *r, uint32_t shard);
/* Retries that are due, and shards whose pause after a full link ended.
 * Called ten times a second. */
void rs_tick(struct rs *r, int64_t now);

/* Members waiting, in every list (presence registrations included);
 * re-syncs in flight. */
size_t rs_waiting(const struct rs *r);
size_t rs_in_flight(const struct rs *r);

#endif
