/* broker: see broker.h. The path of a message through here:
 *   gateway link --send--> rooms_submit (held until the room is subscribed)
 *     --> store_send: one Lua script assigns the id, appends to the history
 *         and PUBLISHes (the sends of one loop pass share one script call,
 *         rbatch.h) --> "sent" back to the gateway
 *   Redis --message--> on_redis_message (validated) --> rooms --> each gateway link
 * Joins (sub) go the same way, so a join's snapshot is taken only once the
 * room's live events are flowing to this broker. */
#include "broker.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmetrics.h"
#include "clock.h"
#include "freelist.h"
#include "links.h"
#include "log.h"
#include "map.h"
#include "mhttp.h"
#include "notify.h"
#include "presence.h"
#include "rooms.h"
#include "rset.h"
#include "shard.h"
#include "store.h"
#include "supervisor.h"
#include "validate.h"
#include "wire.h"

#define MAX_MEMBERS 100    /* names in a join snapshot (the count is exact) */
#define TYPING_GAP_MS 2000 /* one typing event per user per room per 2 s */

struct broker {
    const struct cf_config *cfg;
    uint32_t shard, shards;
    sd_event *ev;
    sd_event_source *beat;
    uint32_t beat_slice; /* of the current heartbeat period */
    struct gwlinks *links;
    struct rooms *rooms;
    struct rset *redis; /* the Redis servers; a room's own is rb_of(room) */
    struct presence *presence;
    struct store_limits lim;
    struct cf_wire_decoder *dec;
    struct mhttp *metrics;
    sd_event_source *drain; /* set once SIGTERM arrived */
    int64_t drain_deadline;
    bool stopping, ready, ready_sent;
    int64_t retried_at; /* rooms_retry, once a second */
    bool serving; /* some Redis server works (ready: every one does) */
    uint64_t foreign, publish_dropped, misrouted, requests;
    struct cf_freelist pendings; /* one struct pending per request in flight */
};


/* ---- replies to gateways --------------------------------------------------- */

/* What a request needs to answer when Redis replies later. */
struct pending {
    struct broker *b;
    uint64_t link_id, q;
    uint32_t budget;
    uint32_t room_len, conn_len;
    char room[CF_ROOM_MAX];
    char conn[CF_WIRE_MAX_TOKEN];
};

static struct pending *pending_new(struct broker *b, uint64_t link_id, const struct cf_wire_msg *m)
{
    struct pending *p = cf_fl_get(&b->pendings);
    if (!p)
        return NULL;
    p->b = b;
    p->link_id = link_id;
    p->q = m->q;
    p->budget = m->budget;
    p->room_len = m->room.len;
    memcpy(p->room, m->room.p, m->room.len);
    p->conn_len = m->conn.len;
    if (m->conn.len)
        memcpy(p->conn, m->conn.p, m->conn.len);
    return p;
}

static void pending_free(struct pending *p) /* NULL: no-op (pending_new ran out of memory) */
{
    if (p)
        cf_fl_put(&p->b->pendings, p);
}

static struct cf_str pstr(const char *p, uint32_t len)
{
    return (struct cf_str){p, len};
}

/* The bridge of the Redis server that holds `room`; NULL (-ENOTCONN from
 * store_*) while that server is not usable. */
static struct rbridge *rb_of(struct broker *b, struct cf_str room)
{
    return rset_for(b->redis, room.p, room.len);
}

static struct gwlink *link_of(struct broker *b, uint64_t id)
{
    return b->stopping || !b->links ? NULL : gwlinks_find(b->links, id);
}

static void send_fail(struct broker *b, uint64_t link_id, uint64_t q, int err)
{
    struct gwlink *l = link_of(b, link_id);
    if (!l || q == 0)
        return;
    const char *code = "unavailable", *text;
    switch (err) {
    case -ENOTCONN: text = "Redis is not connected"; break;
    case -ENOBUFS: text = "the broker's queue toward Redis is full"; break;
    case -ECONNRESET: /* it may have run: "unavailable" would say it did not */
        code = "timeout";
        text = "the Redis connection dropped; the outcome is unknown (resend with the same id)";
        break;
    case -EIO: code = "internal"; text = "Redis refused the command"; break;
    default: code = "internal"; text = "the broker failed"; break;
    }
    struct cf_wire_msg f = {.type = CF_WIRE_FAIL, .q = q};
    f.code = pstr(code, (uint32_t)strlen(code));
    f.text = pstr(text, (uint32_t)strlen(text));
    gwlink_send(l, &f);
}

/* The newest messages whose payloads fit in `budget` bytes: returns the index
 * of the first one kept. */
static uint32_t fit(const struct cf_str *msgs, uint32_t n, uint32_t budget)
{
    uint64_t used = 0;
    uint32_t i = n;
    while (i > 0 && used + msgs[i - 1].len + 8 <= budget) {
        used += msgs[i - 1].len + 8;
        i--;
    }
    return i;
}

static void on_sent(void *ud, int err, const struct store_sent *r)
{
    struct pending *p = ud;
    struct broker *b = p->b;
    if (err < 0) {
        send_fail(b, p->link_id, p->q, err);
    } else {
        struct gwlink *l = link_of(b, p->link_id);
        struct cf_wire_msg s = {.type = CF_WIRE_SENT, .q = p->q, .id = r->id, .ts = r->ts,
                                .dup = r->dup, .room = pstr(p->room, p->room_len)};
        if (l)
            gwlink_send(l, &s);
    }
    pending_free(p);
}

static void on_joined(void *ud, int err, const struct store_joined *r)
{
    struct pending *p = ud;
    struct broker *b = p->b;
    if (p->q == 0) { /* a re-registration after a re-link: nobody waits */
        pending_free(p);
        return;
    }
    if (err < 0) {
        if (!b->stopping)
            presence_del(b->presence, pstr(p->room, p->room_len), pstr(p->conn, p->conn_len));
        send_fail(b, p->link_id, p->q, err);
        pending_free(p);
        return;
    }
    struct gwlink *l = link_of(b, p->link_id);
    CF_DEBUG("broker", "room %.*s: join snapshot for link %llu (%s): last id %llu, %u messages",
             (int)p->room_len, p->room, (unsigned long long)p->link_id, l ? "open" : "gone",
             (unsigned long long)r->last_id, r->nmessages);
    if (l) {
        uint32_t first = fit(r->messages, r->nmessages, p->budget);
        struct cf_wire_msg s = {.type = CF_WIRE_SUBBED, .q = p->q, .room = pstr(p->room, p->room_len),
                                .epoch = r->epoch, .last_id = r->last_id, .pv = r->pv,
                                .count = r->count, .members = r->members,
                                .nmembers = r->nmembers, .messages = r->messages + first,
                                .nmessages = r->nmessages - first,
                                /* a recovery that does not fit is no recovery */
                                .recovered = r->recovered && first == 0};
        if (gwlink_send(l, &s) == -EINVAL)
            send_fail(b, p->link_id, p->q, -EIO);
    }
    pending_free(p);
}

static void on_page(void *ud, int err, const struct store_page *r)
{
    struct pending *p = ud;
    struct broker *b = p->b;
    if (err < 0) {
        send_fail(b, p->link_id, p->q, err);
    } else if (link_of(b, p->link_id)) {
        uint32_t first = fit(r->messages, r->nmessages, p->budget);
        struct cf_wire_msg h = {.type = CF_WIRE_HISTR, .q = p->q, .room = pstr(p->room, p->room_len),
                                .messages = r->messages + first, .nmessages = r->nmessages - first,
                                .has_more = r->has_more || first > 0};
        if (gwlink_send(link_of(b, p->link_id), &h) == -EINVAL)
            send_fail(b, p->link_id, p->q, -EIO);
    }
    pending_free(p);
}

/* ---- requests -------------------------------------------------------------- */

static void count_drop(struct broker *b, struct cf_str room, int rc)
{
    if (b->publish_dropped++ % 1000 == 0)
        CF_WARN("broker", "message for room %.*s dropped: %s (%llu dropped so far)",
                (int)room.len, room.p, rc == -ENOTCONN ? "Redis is not connected" : strerror(-rc),
                (unsigned long long)b->publish_dropped);
}

/* Carries out a room request (now, or once its room's subscription is up).
 * `ctx` is the frame as decoded on arrival when it runs at once; a held one
 * is decoded again from its saved bytes. */
static void op_run(void *ud, uint64_t link_id, const void *payload, size_t plen, const void *ctx)
{
    struct broker *b = ud;
    struct cf_wire_msg m;
    const char *why;
    if (ctx)
        m = *(const struct cf_wire_msg *)ctx;
    else if (cf_wire_decode(b->dec, payload, plen, &m, &why) < 0)
        return; /* it decoded when it arrived */
    int rc = 0;
    b->requests++;
    switch (m.type) {
    case CF_WIRE_MSG: /* legacy client: no answer expected */
        if ((rc = store_send(rb_of(b, m.room), &b->lim, &m, pstr(NULL, 0), NULL, NULL)) < 0)
            count_drop(b, m.room, rc);
        return;
    case CF_WIRE_SEND: {
        struct cf_wire_msg msg = {.type = CF_WIRE_MSG, .room = m.room, .from = m.from,
                                  .text = m.text, .ts = m.ts};
        struct pending *p = pending_new(b, link_id, &m);
        rc = p ? store_send(rb_of(b, m.room), &b->lim, &msg, (m.has & CF_WIRE_HAS_CID) ? m.cid
                                                                              : pstr(NULL, 0),
                            on_sent, p)
               : -ENOMEM;
        if (rc < 0) {
            pending_free(p);
            send_fail(b, link_id, m.q, rc);
        }
        return;
    }
    case CF_WIRE_SUB: {
        if (!link_of(b, link_id))
            return; /* its gateway left meanwhile: nothing to register */
        rc = presence_add(b->presence, link_id, m.room, m.conn, m.user);
        if (rc < 0 && rc != -EEXIST) {
            send_fail(b, link_id, m.q, rc);
            return;
        }
        struct pending *p = pending_new(b, link_id, &m);
        rc = p ? store_join(rb_of(b, m.room), &b->lim, m.room, m.conn, m.user,
                            (m.has & CF_WIRE_HAS_SINCE) != 0, m.since,
                            (m.has & CF_WIRE_HAS_EPOCH) ? m.epoch : pstr("", 0), m.limit,
                            m.budget, MAX_MEMBERS, on_joined, p)
               : -ENOMEM;
        if (rc < 0) {
            pending_free(p);
            /* A re-registration (q 0) stays recorded: the refresh puts it in
             * Redis once Redis is back. */
            if (m.q)
                presence_del(b->presence, m.room, m.conn);
            send_fail(b, link_id, m.q, rc);
        }
        return;
    }
    case CF_WIRE_UNSUB:
        /* A held leave of a link that has gone: presence_drop_link took its
         * connections out already, and the entry may now be a newer link's */
        if (!link_of(b, link_id))
            return;
        if (presence_del(b->presence, m.room, m.conn))
            store_leave(rb_of(b, m.room), &b->lim, m.room, m.conn); /* if Redis is down: it expires */
        return;
    default:
        return;
    }
}

static void request_history(struct broker *b, struct gwlink *l, const struct cf_wire_msg *m)
{
    struct pending *p = pending_new(b, gwlink_id(l), m);
    int rc = p ? store_history(rb_of(b, m->room), &b->lim, m->room, (m->has & CF_WIRE_HAS_BEFORE) != 0, m->before,
                               m->limit, on_page, p)
               : -ENOMEM;
    if (rc < 0) {
        pending_free(p);
        send_fail(b, gwlink_id(l), m->q, rc);
    }
}


/* ---- rooms -> I/O ------------------------------------------------------ */

static int op_subscribe(void *ud, const char *name, size_t len)
{
    struct broker *b = ud;
    return rset_subscribe(b->redis, name, len);
}

static int op_unsubscribe(void *ud, const char *name, size_t len)
{
    struct broker *b = ud;
    return rset_unsubscribe(b->redis, name, len);
}

static void op_deliver(void *ud, void *link, const void *p, size_t plen)
{
    (void)ud;
    gwlink_send_payload(link, p, plen);
}

static const struct rooms_ops room_ops = {op_subscribe, op_unsubscribe, op_run, op_deliver};

/* ---- gateway links ----------------------------------------------------- */

static bool owned(struct broker *b, struct gwlink *l, const struct cf_wire_msg *m)
{
    if (cf_shard_of(m->room.p, m->room.len, b->shards) == b->shard)
        return true;
    if (b->misrouted++ % 1000 == 0)
        CF_WARN("broker", "gateway %s sent %s for room %.*s, which shard %u does not own "
                "(%llu such frames dropped)", gwlink_node(l), cf_wire_type_name(m->type),
                (int)m->room.len, m->room.p, b->shard, (unsigned long long)b->misrouted);
    return false;
}

/* What a presence change is held under (rooms_submit's tag): its type and
 * connection, so that taking back one connection's changes compares an
 * integer per held request instead of decoding each. 0 for the rest. */
static uint64_t presence_tag(enum cf_wire_type type, struct cf_str conn)
{
    if (type != CF_WIRE_SUB && type != CF_WIRE_UNSUB)
        return 0;
    return cf_fnv1a64(conn.p, conn.len) << 2 | 2 | (type == CF_WIRE_SUB);
}

/* What a presence change that cannot wait takes back from its room's held
 * requests: the opposite change of the same connection from the same link
 * (a held join of a connection now leaving, a held leave of one now
 * re-registered). The last change decides the outcome, so it may run first
 * once the earlier ones are gone; a join taken back is answered. */
struct unhold {
    struct broker *b;
    uint64_t link_id;
    enum cf_wire_type type;
    struct cf_str conn;
};

static bool unhold_pick(void *ud, uint64_t link_id, const void *payload, size_t plen)
{
    struct unhold *u = ud;
    struct cf_wire_msg h;
    const char *why;
    if (link_id != u->link_id || cf_wire_decode(u->b->dec, payload, plen, &h, &why) < 0 ||
        h.type != u->type || h.conn.len != u->conn.len ||
        (h.conn.len && memcmp(h.conn.p, u->conn.p, h.conn.len) != 0))
        return false;
    if (h.type == CF_WIRE_SUB)
        send_fail(u->b, link_id, h.q, -ENOBUFS);
    return true;
}

/* A presence change the room could not hold (no budget left while its
 * SUBSCRIBE is pending, or no subscriber to wait for) runs at once: dropped,
 * a leave left the connection listed as present until its gateway's link
 * closed, and a re-registration left it out. */
static void run_presence_now(struct broker *b, struct gwlink *l, const struct cf_wire_msg *m,
                             const unsigned char *payload, size_t len)
{
    struct unhold u = {b, gwlink_id(l), m->type == CF_WIRE_UNSUB ? CF_WIRE_SUB : CF_WIRE_UNSUB,
                       m->conn};
    size_t n = rooms_unhold_if(b->rooms, m->room.p, m->room.len, presence_tag(u.type, m->conn),
                               unhold_pick, &u);
    if (n)
        CF_INFO("broker", "room %.*s: %s of connection %.*s ran ahead of its held queue, "
                "taking back %zu earlier %s of it", (int)m->room.len, m->room.p,
                cf_wire_type_name(m->type), (int)m->conn.len, m->conn.p, n,
                cf_wire_type_name(u.type));
    op_run(b, gwlink_id(l), payload, len, m);
}

static void on_frame(void *ud, struct gwlink *l, const struct cf_wire_msg *m,
                     const unsigned char *payload, size_t len)
{
    struct broker *b = ud;
    if (!owned(b, l, m)) {
        if (m->type == CF_WIRE_SEND || m->type == CF_WIRE_SUB || m->type == CF_WIRE_HIST)
            send_fail(b, gwlink_id(l), m->q, -EINVAL);
        return;
    }
    switch (m->type) {
    case CF_WIRE_JOIN:
        if (rooms_join(b->rooms, l, gwlink_rooms(l), m->room.p, m->room.len) < 0)
            CF_ERROR("broker", "out of memory: gateway %s could not join room %.*s",
                     gwlink_node(l), (int)m->room.len, m->room.p);
        break;
    case CF_WIRE_LEAVE:
        rooms_leave(b->rooms, l, gwlink_rooms(l), m->room.p, m->room.len);
        break;
    case CF_WIRE_MSG:
    case CF_WIRE_SEND:
    case CF_WIRE_SUB:
    case CF_WIRE_UNSUB: {
        int rc = rooms_submit(b->rooms, m->room.p, m->room.len, gwlink_id(l),
                              presence_tag(m->type, m->conn), payload, len, m);
        /* Presence bookkeeping must not be lost to a Redis outage or a full
         * hold queue: the local record is what the refresh restores from. */
        if (rc < 0 && (m->type == CF_WIRE_UNSUB || (m->type == CF_WIRE_SUB && !m->q)))
            run_presence_now(b, l, m, payload, len);
        else if (rc < 0 && (m->type == CF_WIRE_SEND || m->type == CF_WIRE_SUB))
            send_fail(b, gwlink_id(l), m->q, rc);
        else if (rc < 0 && m->type == CF_WIRE_MSG)
            count_drop(b, m->room, rc);
        break;
    }
    case CF_WIRE_HIST:
        request_history(b, l, m);
        break;
    case CF_WIRE_TYPING:
        /* throttled per user and room across nodes by the script; lost if
         * Redis is down (typing is only a hint) */
        store_typing(rb_of(b, m->room), m->room, m->user, TYPING_GAP_MS, payload, len);
        break;
    default:
        break;
    }
}

static void leave_presence(void *ud, struct cf_str room, struct cf_str conn)
{
    struct broker *b = ud;
    store_leave(rb_of(b, room), &b->lim, room, conn);
}

static void send_state(struct broker *b, struct gwlink *l)
{
    struct cf_wire_msg m = {.type = CF_WIRE_STATE, .ready = b->ready, .serving = b->serving,
                            .has = CF_WIRE_HAS_SERVING};
    if (l)
        gwlink_send(l, &m);
    else
        gwlinks_broadcast(b->links, &m);
}

static void on_link_up(void *ud, struct gwlink *l)
{
    send_state(ud, l);
}

static void on_link_close(void *ud, struct gwlink *l)
{
    struct broker *b = ud;
    rooms_drop_link(b->rooms, gwlink_rooms(l));
    /* Its gateway's connections are gone: announce it now rather than when
     * their entries expire. */
    presence_drop_link(b->presence, gwlink_id(l), b->stopping ? NULL : leave_presence, b);
}

/* ---- heartbeat ----------------------------------------------------------- */

static void refresh_room(void *ud, struct cf_str room, const struct cf_str *conns,
                         const struct cf_str *users, uint32_t n)
{
    struct broker *b = ud;
    store_refresh(rb_of(b, room), &b->lim, room, conns, users, n); /* a server down: skipped */
}

/* The rooms of one Redis server (for what happens to that server only). */
struct on_server {
    struct broker *b;
    uint32_t server;
};

static bool room_on_server(void *ud, const char *name, size_t len)
{
    struct on_server *o = ud;
    return rset_server_of(o->b->redis, name, len) == o->server;
}

static void refresh_room_on(void *ud, struct cf_str room, const struct cf_str *conns,
                            const struct cf_str *users, uint32_t n)
{
    struct on_server *o = ud;
    if (room_on_server(o, room.p, room.len))
        refresh_room(o->b, room, conns, users, n);
}


/* The heartbeat refreshes every room's presence once per PRESENCE_TTL/3, in
 * slices of ~100 ms: all at once, a broker's refresh scripts (one or more per
 * room) would hold Redis, and every message queued behind them, for as long
 * as they take: tens of microseconds a room, seconds at 100 k rooms. */
#define BEAT_SLICE_MIN_US 100000
#define BEAT_SLICES_MAX 100

static uint64_t beat_usec(const struct broker *b)
{
    return (uint64_t)b->lim.presence_ttl_ms * 1000 / 3;
}

static uint32_t beat_slices(const struct broker *b)
{
    uint64_t n = beat_usec(b) / BEAT_SLICE_MIN_US;
    return n < 1 ? 1 : n > BEAT_SLICES_MAX ? BEAT_SLICES_MAX : (uint32_t)n;
}

static uint64_t slice_usec(const struct broker *b)
{
    return beat_usec(b) / beat_slices(b);
}

static void report(struct broker *b)
{
    struct rooms_stats rs;
    rooms_stats(b->rooms, &rs);
    cf_notify_status("%s; %llu rooms, %zu gateway links, %llu presence entries",
                     b->ready ? "ready" : "not ready (Redis or delivery canary failing)",
                     (unsigned long long)rs.rooms, b->links ? gwlinks_count(b->links) : 0,
                     (unsigned long long)presence_count(b->presence));
}

static void notify_ready_if_due(struct broker *b);

static int on_beat(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)usec;
    struct broker *b = ud;
    uint32_t slices = beat_slices(b);
    if (b->beat_slice++ % slices == 0)
        report(b);
    int64_t now = cf_mono_ms();
    if (now - b->retried_at >= 1000) { /* a walk of every room when it does something */
        b->retried_at = now;
        rooms_retry(b->rooms);
    }
    notify_ready_if_due(b); /* a degraded start, once it has settled */
    /* rounded up: a round ends within the period even as rooms are added */
    uint64_t rooms = presence_rooms(b->presence);
    presence_refresh_next(b->presence, (uint32_t)((rooms + slices - 1) / slices), refresh_room, b);
    sd_event_source_set_time_relative(s, slice_usec(b));
    sd_event_source_set_enabled(s, SD_EVENT_ON);
    return 0;
}

/* ---- Redis ------------------------------------------------------------- */

static void count_foreign(struct broker *b, const char *what, const char *chan, size_t len)
{
    if (b->foreign++ % 1000 == 0)
        CF_WARN("broker", "dropped a message on Redis channel %.*s: %s (%llu dropped so far)",
                (int)(len > 80 ? 80 : len), chan, what, (unsigned long long)b->foreign);
}

static void on_redis_message(void *ud, const char *name, size_t len, const char *payload,
                             size_t plen)
{
    struct broker *b = ud;
    struct cf_wire_msg m;
    const char *why = cf_wire_room_event(b->dec, payload, plen, name, len, &m);
    if (why) {
        count_foreign(b, why, name, len);
        return;
    }
    rooms_on_message(b->rooms, name, len, payload, plen);
}

static void on_foreign(void *ud, const char *chan, size_t len)
{
    count_foreign(ud, "not a room channel", chan, len);
}

static void on_confirm(void *ud, const char *name, size_t len)
{
    struct broker *b = ud;
    rooms_on_confirm(b->rooms, name, len);
}

static void on_sub_lost(void *ud, uint32_t server)
{
    struct on_server o = {ud, server};
    rooms_on_sub_lost_if(o.b->rooms, room_on_server, &o);
}

static void on_sub_ready(void *ud, uint32_t server)
{
    struct on_server o = {ud, server};
    rooms_on_sub_ready_if(o.b->rooms, room_on_server, &o);
}

static void on_pub_ready(void *ud, uint32_t server)
{
    struct on_server o = {ud, server};
    /* A restarted Redis may have lost the presence entries: put them back;
     * and the history TTLs: set them again at each room's next touch. */
    store_forget_touches();
    presence_foreach_room(o.b->presence, refresh_room_on, &o);
}

/* A Redis server belongs to another node's list (rset.c logged which and
 * what to do): restarting would only repeat it. */
static void on_fatal(void *ud)
{
    struct broker *b = ud;
    sd_event_exit(b->ev, CF_SUP_EXIT_CONFIG);
}

/* Ready (to the gateways) = every Redis server connected, checked and its
 * canary passing. A server down makes only its rooms unavailable, but it is
 * reported: the gateways re-sync this shard's members when it is back, which
 * recovers what they missed meanwhile.
 * Serving (/readyz, the gateways' /readyz) = at least one server works. With
 * several servers, one down must not take every node out of its load
 * balancer: the other servers' rooms work on every node.
 * READY=1 (systemd's "started") = ready, or serving once the start has
 * settled (rset_settling): a server down must not keep the service from
 * starting (systemd would kill a broker that serves at TimeoutStartSec, and
 * again at every start while that server is down), but one reached in the
 * first 30 s holding another node's list still stops the broker, and that
 * must read as a failed start, not as a crash after one. */
static void notify_ready_if_due(struct broker *b)
{
    if (b->ready_sent || !b->serving || (!b->ready && rset_settling(b->redis)))
        return;
    b->ready_sent = true;
    if (b->ready)
        cf_notify_ready("ready: Redis connected, delivery canary passing");
    else
        cf_notify_ready("serving, degraded: some Redis servers are down or failing their "
                        "delivery canary; their rooms answer unavailable");
}

static void on_state(void *ud, uint32_t server, bool ready)
{
    struct broker *b = ud;
    bool now = rset_ready(b->redis), serving = rset_up(b->redis) > 0;
    if (now != b->ready || serving != b->serving) {
        b->ready = now;
        b->serving = serving;
        if (b->links)
            send_state(b, NULL);
        notify_ready_if_due(b);
        report(b);
    }
    struct rooms_stats rs;
    rooms_stats(b->rooms, &rs);
    uint32_t n = rset_count(b->redis);
    char which[48] = "";
    if (n > 1)
        snprintf(which, sizeof which, " (server %u of %u)", server, n);
    if (ready)
        CF_INFO("broker", "shard %u of %u ready: Redis connected%s, %llu rooms, %zu gateway links",
                b->shard, b->shards, which, (unsigned long long)rs.rooms, gwlinks_count(b->links));
    else
        CF_WARN("broker", "shard %u of %u degraded: Redis%s is not fully connected; its rooms "
                "answer unavailable", b->shard, b->shards, which);
}

/* ---- metrics ------------------------------------------------------------ */

static int serve_metrics(void *ud, const char *path, struct cf_bytes *o, const char **ctype)
{
    struct broker *b = ud;
    if (!strcmp(path, "/healthz")) {
        cf_bytes_append(o, "ok\n", 3);
        return 200;
    }
    if (!strcmp(path, "/readyz")) {
        uint32_t n = rset_count(b->redis), up = rset_up(b->redis);
        char t[160];
        if (b->ready)
            snprintf(t, sizeof t, "ready\n");
        else if (b->serving)
            snprintf(t, sizeof t, "degraded: %u of %u Redis servers down or failing their "
                     "delivery canary; their rooms answer unavailable\n", n - up, n);
        else
            snprintf(t, sizeof t, "not ready: Redis or the delivery canary is failing\n");
        cf_bytes_append(o, t, strlen(t));
        return b->serving ? 200 : 503;
    }
    if (strcmp(path, "/metrics") != 0) {
        static const char nf[] = "not found: /metrics, /healthz, /readyz\n";
        cf_bytes_append(o, nf, sizeof nf - 1);
        return 404;
    }
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    struct bmetrics m = {.shard = b->shard,
                         .ready = b->ready,
                         .serving = b->serving,
                         .links = gwlinks_count(b->links),
                         .presence = presence_count(b->presence),
                         .requests = b->requests,
                         .foreign = b->foreign,
                         .dropped = b->publish_dropped};
    rooms_stats(b->rooms, &m.rooms);
    struct rset_server_stats sv[CF_REDIS_MAX_SERVERS];
    m.nservers = rset_count(b->redis);
    for (uint32_t i = 0; i < m.nservers; i++)
        rset_stats(b->redis, i, &sv[i]);
    m.servers = sv;
    bmetrics_render(&m, o);
    return 200;
}

/* ---- life cycle -------------------------------------------------------- */

#define DRAIN_MAX_MS 3000

/* Draining: exits once Redis has answered every command sent (so each send
 * in flight gets its ack or error) and the answers are written to the
 * gateways, or after DRAIN_MAX_MS. */
static int on_drain_tick(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)usec;
    struct broker *b = ud;
    bool done = rset_inflight(b->redis) == 0 && gwlinks_flushed(b->links);
    if (done || cf_mono_ms() >= b->drain_deadline) {
        if (!done)
            CF_WARN("broker", "drain timed out with %u Redis commands unanswered; exiting",
                    rset_inflight(b->redis));
        sd_event_exit(b->ev, 0);
        return 0;
    }
    sd_event_source_set_time_relative(s, 20 * 1000);
    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
    return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
    struct broker *b = ud;
    if (b->drain) { /* a second signal: do not wait */
        sd_event_exit(sd_event_source_get_event(s), 0);
        return 0;
    }
    CF_INFO("broker", "received %s; finishing %u Redis commands in flight, then exiting",
            strsignal((int)si->ssi_signo), rset_inflight(b->redis));
    cf_notify_stopping("draining");
    gwlinks_stop_accepting(b->links);
    b->drain_deadline = cf_mono_ms() + DRAIN_MAX_MS;
    if (sd_event_add_time_relative(b->ev, &b->drain, CLOCK_MONOTONIC, 0, 1000, on_drain_tick, b) <
        0)
        sd_event_exit(b->ev, 0);
    return 0;
}

/* sd_event_loop, plus the writes each dispatch queued, made right after it.
 * sd-event dispatches one source per iteration, and each iteration begins
 * with an epoll_wait: with the writes in defer sources of their own, a send
 * waited one more iteration before its EVALSHA left for Redis, and a room
 * message one more before it left for the gateways (3.3 epoll_waits a
 * message in the steady benchmark, for ~2 reads). The defer sources stay,
 * for what is asked outside a dispatch. Redis first: those writes have
 * further to go. */
static int run_loop(struct broker *b)
{
    for (;;) {
        int st = sd_event_get_state(b->ev);
        if (st < 0)
            return st;
        if (st == SD_EVENT_FINISHED)
            break;
        int r = sd_event_run(b->ev, UINT64_MAX);
        if (r < 0)
            return r;
        rset_flush(b->redis);
        gwlinks_flush(b->links);
    }
    int code = 0;
    return sd_event_get_exit_code(b->ev, &code) < 0 ? 0 : code;
}

int broker_run(const struct cf_config *cfg, uint32_t shard, uint32_t shards)
{
    struct broker b = {.cfg = cfg, .shard = shard, .shards = shards,
                       .pendings = CF_FREELIST_INIT(sizeof(struct pending), 1024)};
    int rc = 1;
    char path[128];
    static struct cf_redis_addr addrs[CF_REDIS_MAX_SERVERS];
    int naddrs = cf_redis_addrs_parse(cfg->redis_addr, addrs, CF_REDIS_MAX_SERVERS, NULL, 0);
    if (cf_broker_socket_path(cfg, (int)shard, path, sizeof path) < 0 || naddrs < 1)
        return 1; /* validated at config load */

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (sd_event_new(&b.ev) < 0 || sd_event_add_signal(b.ev, NULL, SIGTERM, on_signal, &b) < 0 ||
        sd_event_add_signal(b.ev, NULL, SIGINT, on_signal, &b) < 0) {
        CF_ERROR("broker", "cannot create the event loop");
        goto out;
    }
    b.lim = (struct store_limits){.history_size = (uint32_t)cfg->history_size,
                                  .history_ttl_s = (uint32_t)cfg->history_ttl,
                                  .dedup_window_s = (uint32_t)cfg->dedup_window,
                                  .presence_ttl_ms = (uint32_t)cfg->presence_ttl * 1000};
    b.dec = cf_wire_decoder_new();
    b.rooms = rooms_new(&room_ops, &b, (size_t)cfg->max_link_queue_bytes);
    b.presence = presence_new();
    if (!b.dec || !b.rooms || !b.presence ||
        sd_event_add_time_relative(b.ev, &b.beat, CLOCK_MONOTONIC, slice_usec(&b), 10000, on_beat,
                                   &b) < 0) {
        CF_ERROR("broker", "out of memory at start-up");
        goto out;
    }
    const struct rset_cbs rcbs = {.on_message = on_redis_message,
                                  .on_foreign = on_foreign,
                                  .on_confirm = on_confirm,
                                  .on_sub_lost = on_sub_lost,
                                  .on_sub_ready = on_sub_ready,
                                  .on_pub_ready = on_pub_ready,
                                  .on_state = on_state,
                                  .on_fatal = on_fatal};
    b.redis = rset_new(b.ev, addrs, (uint32_t)naddrs, cfg->redis_password,
                       (size_t)cfg->max_link_queue_bytes, store_scripts, store_nscripts, &rcbs, &b);
    if (!b.redis)
        goto out;
    const struct gwlinks_cbs lcbs = {on_frame, on_link_up, on_link_close};
    b.links = gwlinks_new(b.ev, path, shard, shards, (size_t)cfg->max_link_queue_bytes, &lcbs, &b);
    if (!b.links)
        goto out;
    if (cfg->broker_metrics_port) {
        b.metrics = mhttp_new(b.ev, cfg->listen_addr, cfg->broker_metrics_port + (int)shard,
                              serve_metrics, &b);
        if (!b.metrics)
            goto out;
    }
    /* sd-event sends WATCHDOG=1 from the loop itself when systemd asks */
    sd_event_set_watchdog(b.ev, 1);
    CF_INFO("broker", "shard %u of %u listening on %s, Redis at %s", shard, shards, path,
            cfg->redis_addr);
    int loop = run_loop(&b); /* CF_SUP_EXIT_CONFIG from on_fatal */
    rc = loop < 0 ? 1 : loop;
out:
    /* Presence entries are left to expire: announcing every leave at a
     * restart would flap every room's member list. */
    b.stopping = true;
    mhttp_free(b.metrics);
    gwlinks_free(b.links); /* drops every membership through on_link_close */
    b.links = NULL;
    rset_free(b.redis); /* answers nobody: stopping */
    cf_fl_drain(&b.pendings);
    rooms_free(b.rooms);
    presence_free(b.presence);
    sd_event_source_disable_unref(b.beat);
    sd_event_source_disable_unref(b.drain);
    cf_wire_decoder_free(b.dec);
    sd_event_unref(b.ev);
    return rc;
}
