/* leaves: see broker_int.h. A member's leave goes to its room's Redis
 * server now, or is owed (a queue full, a server just down) and sent by the
 * heartbeat's slices; the entries of a gateway link that closed wait out
 * its grace, for its gateway to come back and take them over. */
#include "broker_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "links.h"
#include "presence.h"
#include "rset.h"
#include "store.h"

/* How long leaves wait for a server that went down: a reconnect takes
 * tens of ms to a few seconds of backoff. Past that they are dropped (the
 * entries expire in Redis, swept by the next script of the room): for a
 * server down for long they would be tried at every slice, and the slots
 * of the closed links they belong to kept. Meanwhile the walks skip them,
 * so the other servers' leaves do not wait. Counted per server, from when
 * it went down. */
#define OWED_HOLD_MS 5000

/* Closed links in their grace at once: more than a few means links that
 * flap, and past it two share a slot (merge_two), so the walk of each slice
 * stays short. */
#define GONE_LINKS_MAX 64

struct leaves {
    int64_t down_at[CF_REDIS_MAX_SERVERS]; /* when each server last went down (0: never) */
    /* Gateway links closed less than LINK_GRACE_MS ago (or whose entries
     * a newer link is still taking over), oldest first: their presence
     * entries wait for the gateway's re-sync. */
    struct gone_link {
        uint64_t id;
        int64_t due;   /* its entries left then are announced as gone */
        int64_t until; /* take-overs put `due` off until then at most */
    } gone[GONE_LINKS_MAX];
    uint32_t ngone;
};

struct leaves *leaves_new(uint32_t nservers)
{
    struct leaves *lv = calloc(1, sizeof *lv);
    if (!lv)
        return NULL;
    int64_t now = cf_mono_ms();
    for (uint32_t i = 0; i < nservers && i < CF_REDIS_MAX_SERVERS; i++)
        lv->down_at[i] = now;
    return lv;
}

void leaves_free(struct leaves *lv)
{
    free(lv);
}

void leaves_server_down(struct broker *b, uint32_t server)
{
    if (server < CF_REDIS_MAX_SERVERS) /* rset_new bounds them: cannot be */
        b->leaves->down_at[server] = cf_mono_ms();
}

/* Whether a leave refused because its room's server is down should wait:
 * the server went down less than OWED_HOLD_MS ago, and no drain is under
 * way (a drain does not wait for a server that is down). */
static bool held(const struct broker *b, uint32_t s)
{
    const int64_t *down_at = b->leaves->down_at;
    return !b->drain && s < CF_REDIS_MAX_SERVERS && down_at[s] &&
           cf_mono_ms() - down_at[s] < OWED_HOLD_MS;
}

/* A leave queued (or dropped: its server down for long), refused by a full
 * queue toward its server, or to wait for a server down just now (held). */
enum leave_rc { LEAVE_DONE, LEAVE_FULL, LEAVE_WAIT };

/* A leave's room hashed to its server once, for both its bridge and held(). */
static enum leave_rc leave_on(struct broker *b, struct cf_str room, struct cf_str conn)
{
    uint32_t sv = rset_server_of(b->redis, room.p, room.len);
    struct rbridge *rb = rset_bridge(b->redis, sv);
    /* a walk may meet many of a down server's (no bridge) leaves each
     * slice: no script is framed for them */
    int rc = rb ? store_leave(rb, &b->lim, room, conn) : -ENOTCONN;
    if (rc == -ENOBUFS)
        return LEAVE_FULL;
    return rc == -ENOTCONN && held(b, sv) ? LEAVE_WAIT : LEAVE_DONE;
}

/* A walk of leaves (owed, or of a link whose grace is over). */
struct leaving {
    struct broker *b;
    bool full; /* it stopped at a full queue */
};

/* A leave that finds the queue toward its Redis server full is kept, and
 * the walk stops there (the queue drains first); one that finds its server
 * just down (held) is kept, and the walk goes on: the other servers' leaves
 * need not wait for that one's return. Both are tried again at a later
 * slice (leaves_expire). */
static enum presence_drop leave_presence(void *ud, struct cf_str room, struct cf_str conn)
{
    struct leaving *w = ud;
    enum leave_rc rc = leave_on(w->b, room, conn);
    w->full |= rc == LEAVE_FULL;
    return rc == LEAVE_FULL ? PRESENCE_STOP : rc == LEAVE_WAIT ? PRESENCE_SKIP : PRESENCE_DROP;
}

void leaves_owe(struct broker *b, struct cf_str room, struct cf_str conn)
{
    if (!presence_give(b->presence, room, conn, OWED_LEAVES))
        presence_del(b->presence, room, conn);
}

void leaves_announce(struct broker *b, struct cf_str room, struct cf_str conn)
{
    if (leave_on(b, room, conn) != LEAVE_DONE)
        leaves_owe(b, room, conn);
    else
        presence_del(b->presence, room, conn);
}

/* Announced even when it cannot be queued: the link's slot must be freed. */
static enum presence_drop leave_presence_now(void *ud, struct cf_str room, struct cf_str conn)
{
    leave_presence(ud, room, conn);
    return PRESENCE_DROP;
}

/* A link that closes is most often a gateway that comes back at once (a
 * link reset at its queue bound, a link timeout): its re-sync registers the
 * same connections again, which takes their entries over (presence_add).
 * Announcing their leaves at the close showed every user of that gateway
 * leaving and joining again to everyone in their rooms. So the entries the
 * re-sync does not take over within LINK_GRACE_MS (their connections closed
 * meanwhile, or the gateway is gone) are announced then, rather than when
 * they expire (PRESENCE_TTL): the refresh keeps them meanwhile. Longer than
 * a gateway's reconnect (100-250 ms after a link was up, its backoff's cap
 * 5 s); never longer than PRESENCE_TTL, so that a gateway that died is not
 * announced later than a whole node that died. */
#define LINK_GRACE_MS 10000
/* A gateway re-syncs its members at its pace (256 in flight per broker,
 * ~2,000 a second here): one with more than ~20,000 memberships of this
 * shard outlasted the grace, and its users showed as leaving and joining
 * again. While a newer link keeps taking over a closed link's entries (its
 * gateway re-registering them), that link's grace goes on, LINK_GRACE_MS
 * past the last take-over, up to this long after the close. */
#define LINK_GRACE_MAX_MS 60000

static int64_t link_grace_ms(const struct broker *b)
{
    int64_t ttl = b->lim.presence_ttl_ms;
    return ttl < LINK_GRACE_MS ? ttl : LINK_GRACE_MS;
}

/* The leaves of a grace that ended go out at most this many a second (a
 * share of it each slice of the heartbeat). All at once, a gateway process
 * that exited with N memberships of this shard had N leave scripts queued
 * in one go: at 100 k, a second or two of its Redis servers' time, every
 * room on them waiting behind it, and those past the queue bound
 * (MAX_LINK_QUEUE_BYTES, ~230 k leaves) lost, their users shown until
 * PRESENCE_TTL. Each broker of a node drains its own shard: a few thousand
 * a second each is a small share of a server, and 100 k memberships of a
 * shard go in ~20 s; the entries left meanwhile are refreshed as before. */
#define GONE_LEAVES_PER_SEC 5000

void leaves_expire(struct broker *b, int64_t now, uint64_t slice_us)
{
    struct leaves *lv = b->leaves;
    uint64_t budget = GONE_LEAVES_PER_SEC * slice_us / 1000000;
    if (budget == 0)
        budget = 1;
    /* the leaves owed longest first; stopping, they expire in Redis */
    uint64_t owed = presence_link_entries(b->presence, OWED_LEAVES);
    if (owed && b->stopping) {
        presence_drop_link(b->presence, OWED_LEAVES, UINT64_MAX, NULL, NULL);
    } else if (owed) {
        /* one stopped short found its server's queue full: the others' leaves
         * (other servers) still go, from what is left of the budget */
        struct leaving w = {b, false};
        uint64_t left = presence_drop_link(b->presence, OWED_LEAVES, budget, leave_presence, &w);
        budget -= owed - left;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < lv->ngone; i++) {
        struct gone_link *g = &lv->gone[i];
        uint64_t left = 1;                /* in its grace still */
        if (g->due <= now && b->stopping) /* the entries expire in Redis: nothing to announce */
            left = presence_drop_link(b->presence, g->id, UINT64_MAX, NULL, NULL);
        else if (g->due <= now && budget > 0) {
            uint64_t had = presence_link_entries(b->presence, g->id);
            struct leaving w = {b, false};
            left = presence_drop_link(b->presence, g->id, budget, leave_presence, &w);
            /* one that found a queue full: the next slice goes on */
            budget = w.full ? 0 : budget - (had - left);
        }
        if (left)
            lv->gone[k++] = *g;
    }
    lv->ngone = k;
}

/* Frees the slots of closed links that own no entry any more: newer links
 * took them all over (their gateway re-linked), or their connections left. */
static void forget_emptied(struct broker *b)
{
    struct leaves *lv = b->leaves;
    uint32_t k = 0;
    for (uint32_t i = 0; i < lv->ngone; i++)
        if (presence_link_entries(b->presence, lv->gone[i].id) > 0)
            lv->gone[k++] = lv->gone[i];
    lv->ngone = k;
}

/* With every slot taken, two closed links share one: the newer link's
 * entries become the older one's (presence_merge_link), and the slot keeps
 * the later of their ends. Two links whose grace is over, their leaves going
 * out a share at a time, go first: those leaves are owed anyway, and stay
 * paced. Else the two links due soonest: the one due first keeps its users
 * a little longer (never more than the other's grace), and no one's grace
 * is cut short. (The rule was to announce one link's entries at once, its
 * grace cut short: those of its users who would have come back were shown
 * leaving and joining again, and the leaves past the queue toward Redis
 * were lost, their users shown until PRESENCE_TTL.) */
static void merge_two(struct broker *b)
{
    struct leaves *lv = b->leaves;
    int64_t now = cf_mono_ms();
    uint32_t draining = 0;
    for (uint32_t i = 0; i < lv->ngone; i++)
        draining += lv->gone[i].due <= now;
    /* the two of a kind (draining if two are, else in their grace) with the
     * earliest ends: the draining ones' ends are past */
    bool want = draining >= 2;
    uint32_t pick[2] = {UINT32_MAX, UINT32_MAX};
    for (uint32_t i = 0; i < lv->ngone; i++) {
        if ((lv->gone[i].due <= now) != want)
            continue;
        if (pick[0] == UINT32_MAX || lv->gone[i].due < lv->gone[pick[0]].due) {
            pick[1] = pick[0];
            pick[0] = i;
        } else if (pick[1] == UINT32_MAX || lv->gone[i].due < lv->gone[pick[1]].due)
            pick[1] = i;
    }
    struct gone_link *go = &lv->gone[pick[0]], *keep = &lv->gone[pick[1]];
    /* under the older link's id: every link opened since may take an entry
     * over (its gateway re-registering the connection). Under the newer one,
     * a link opened between the two (a gateway re-linked, re-syncing) could
     * no longer take its own connections' entries back, and their leaves
     * were announced at the merged grace's end while they were connected. */
    uint64_t older = go->id < keep->id ? go->id : keep->id;
    uint64_t newer = go->id < keep->id ? keep->id : go->id;
    if (presence_merge_link(b->presence, newer, older)) {
        keep->id = older;
        if (go->until > keep->until)
            keep->until = go->until;
    } else { /* cannot be: every slot's link owns entries (forget_emptied) */
        presence_drop_link(b->presence, go->id, UINT64_MAX, leave_presence_now,
                           &(struct leaving){b, false});
    }
    memmove(go, go + 1, (lv->ngone - pick[0] - 1) * sizeof *go);
    lv->ngone--;
}

/* A newer link took over a presence entry of link_id: if that link is
 * closed and in its grace, the grace goes on. */
static void grace_renew(struct broker *b, uint64_t link_id)
{
    struct leaves *lv = b->leaves;
    for (uint32_t i = 0; i < lv->ngone; i++) {
        struct gone_link *g = &lv->gone[i];
        if (g->id != link_id)
            continue;
        int64_t due = cf_mono_ms() + link_grace_ms(b);
        if (due > g->until)
            due = g->until;
        if (due > g->due)
            g->due = due;
        return;
    }
}

void leaves_link_closed(struct broker *b, uint64_t link_id)
{
    struct leaves *lv = b->leaves;
    if (b->stopping) { /* the entries expire in Redis: no leaves to announce */
        presence_drop_link(b->presence, link_id, UINT64_MAX, NULL, NULL);
        return;
    }
    if (presence_link_entries(b->presence, link_id) == 0)
        return; /* no entry of its to wait for: no slot taken from those that have */
    if (lv->ngone == GONE_LINKS_MAX) /* links flapping */
        forget_emptied(b);
    if (lv->ngone == GONE_LINKS_MAX)
        merge_two(b);
    int64_t now = cf_mono_ms(), grace = link_grace_ms(b);
    lv->gone[lv->ngone++] = (struct gone_link){
        link_id, now + grace, now + (grace > LINK_GRACE_MAX_MS ? grace : LINK_GRACE_MAX_MS)};
}

int leaves_presence_add(struct broker *b, struct gwlink *l, struct cf_str room, struct cf_str conn,
                        struct cf_str user, uint64_t *reg)
{
    uint64_t link_id = gwlink_id(l);
    uint64_t was = b->leaves->ngone ? presence_owner(b->presence, room, conn) : 0;
    int rc = presence_add(b->presence, link_id, room, conn, user, reg);
    if (was && was < link_id)
        grace_renew(b, was);
    return rc;
}

void leaves_presence_take_over(struct broker *b, struct cf_str room, struct cf_str conn,
                               struct gwlink *l)
{
    uint64_t link_id = gwlink_id(l);
    uint64_t was = b->leaves->ngone ? presence_owner(b->presence, room, conn) : 0;
    presence_take_over(b->presence, room, conn, link_id);
    if (was && was < link_id)
        grace_renew(b, was);
}
