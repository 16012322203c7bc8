/* requests: see broker_int.h. A gateway's request for a room goes through
 * rooms_submit (held until the room is subscribed) to a store_* script;
 * its answer (sent, subbed, histr or fail) goes back to the link it came
 * from, if that link is still there. */
#include "broker_int.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "presence.h"
#include "shard.h"

#define MAX_MEMBERS 100    /* names in a join snapshot (the count is exact) */
#define TYPING_GAP_MS 2000 /* one typing event per user per room per 2 s */

/* ---- replies to gateways --------------------------------------------------- */

/* What a snapshot or page may carry: the gateway's budget (at most a quarter
 * of its client queue's bound, and 1 MiB), and at most a quarter of the link's
 * queue, or a frame bigger than MAX_LINK_QUEUE_BYTES (which may be set as
 * low as 1 MiB) reset the link each time it was asked for. */
static uint32_t link_budget(const struct broker *b, uint32_t asked)
{
    uint64_t cap = (uint64_t)b->cfg->max_link_queue_bytes / 4;
    return asked < cap ? asked : (uint32_t)cap;
}

/* The room's Redis server, which also picks its bridge (rb_at). Always
 * below rset_count, which rset_new holds to CF_REDIS_MAX_SERVERS: the clamp
 * only keeps the count's index in bounds, were that ever broken. */
static uint32_t server_of(const struct broker *b, struct cf_str room)
{
    uint32_t sv = rset_server_of(b->redis, room.p, room.len);
    return sv < CF_REDIS_MAX_SERVERS ? sv : 0;
}

/* NULL when BROKER_MAX_AWAITING requests for the room's server are in
 * flight (*refused BM_ERR_AWAITING), or out of memory (-ENOMEM): the reason
 * comes out with the refusal, so that the caller does not hash the room
 * again at the top rate of an overloaded server. */
static struct pending *pending_new(struct broker *b, uint64_t link_id, const struct cf_wire_msg *m,
                                   int *refused)
{
    uint32_t sv = server_of(b, m->room);
    bool full = b->awaiting[sv] >= BROKER_MAX_AWAITING;
    struct pending *p = full ? NULL : cf_fl_get(&b->pendings);
    if (!p) {
        *refused = full ? BM_ERR_AWAITING : -ENOMEM;
        return NULL;
    }
    b->awaiting[sv]++;
    p->server = sv;
    p->b = b;
    p->link_id = link_id;
    p->q = m->q;
    p->budget = link_budget(b, m->budget);
    p->reg = 0;
    p->room_len = m->room.len;
    memcpy(p->room, m->room.p, m->room.len);
    p->conn_len = m->conn.len;
    if (m->conn.len)
        memcpy(p->conn, m->conn.p, m->conn.len);
    return p;
}

/* The bridge of the request's room, by the server pending_new found for it:
 * the room is hashed once per request. */
static struct rbridge *rb_at(const struct pending *p)
{
    return rset_bridge(p->b->redis, p->server);
}

static void pending_free(struct pending *p) /* NULL: no-op (pending_new refused) */
{
    if (p) {
        p->b->awaiting[p->server]--;
        cf_fl_put(&p->b->pendings, p);
    }
}

static struct gwlink *link_of(struct broker *b, uint64_t id)
{
    return b->stopping || !b->links ? NULL : gwlinks_find(b->links, id);
}

/* What a client and the log are told of the broker's own refusals */
#define HOLD_FULL_TEXT "too many requests wait for their rooms' subscriptions to Redis"
#define AWAITING_TEXT "too many requests wait for the room's Redis server to answer"

/* Answers request `q` (0: none expected) with the error `err`; counted by
 * reason even when its link has gone. A frame of another shard's room
 * (BM_ERR_MISROUTED) is counted as misrouted instead, by owned(). */
static void send_fail(struct broker *b, uint64_t link_id, uint64_t q, int err)
{
    if (q && err != BM_ERR_MISROUTED)
        b->failed[bm_fail_of(err)]++;
    struct gwlink *l = link_of(b, link_id);
    if (!l || q == 0)
        return;
    const char *code = "unavailable", *text;
    switch (err) {
    case -ENOTCONN: text = "Redis is not connected"; break;
    case -ENOBUFS: text = "the broker's queue toward Redis is full"; break;
    /* the refusals that are not the queue's (bmetrics.h), which may be empty */
    case BM_ERR_HOLD_FULL:
        text = HOLD_FULL_TEXT;
        break;
    case BM_ERR_AWAITING:
        text = AWAITING_TEXT;
        break;
    case BM_ERR_TAKEN_BACK:
        text = "the join was taken back by a later leave of the same connection";
        break;
    case BM_ERR_MISROUTED: /* BROKERS differs between the gateway and the brokers */
        code = "internal";
        text = "the request reached a broker that does not own its room";
        break;
    case -ENOMEM: text = "the broker is out of memory"; break;
    case -ECONNRESET: /* it may have run: "unavailable" would say it did not */
        code = "timeout";
        text = "the Redis connection dropped; the outcome is unknown (resend with the same id)";
        break;
    case -EAGAIN: /* nothing was done: a retry may pass */
        text = "Redis refuses commands for now (out of memory, read-only, loading or busy)";
        break;
    case -EIO: code = "internal"; text = "Redis refused the command"; break;
    case -ESHUTDOWN:
        text = "the room's broker is restarting";
        break;
    default: code = "internal"; text = "the broker failed"; break;
    }
    struct cf_wire_msg f = {.type = CF_WIRE_FAIL, .q = q};
    f.code = pstr(code, (uint32_t)strlen(code));
    f.text = pstr(text, (uint32_t)strlen(text));
    gwlink_send(l, &f);
}

/* The newest messages whose payloads fit in `budget` bytes, and the newest
 * even alone over it (as the scripts' HIST_NEWEST keeps it): returns the
 * index of the first one kept. */
static uint32_t fit(const struct cf_str *msgs, uint32_t n, uint32_t budget)
{
    uint64_t used = 0;
    uint32_t i = n;
    while (i > 0 && (i == n || used + msgs[i - 1].len + 8 <= budget)) {
        used += msgs[i - 1].len + 8;
        i--;
    }
    return i;
}

void requests_fit_join(const struct cf_str *members, uint32_t nmembers, const struct cf_str *msgs,
                       uint32_t nmsgs, uint32_t budget, uint32_t *nmembers_out, uint32_t *first)
{
    uint64_t used = 0;
    uint32_t n = 0;
    while (n < nmembers && used + members[n].len + 8 <= budget / 2) {
        used += members[n].len + 8;
        n++;
    }
    *nmembers_out = n;
    *first = fit(msgs, nmsgs, budget - (uint32_t)used);
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
        /* a reply that cannot be framed (a time past 9999 from a damaged
         * de-duplication key) still gets its one answer */
        if (l && gwlink_send(l, &s) == -EINVAL)
            send_fail(b, p->link_id, p->q, -EIO);
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
        /* A join refused is no member, unless the entry was there before it
         * (a re-sync that took it over: its member waits for the next), or
         * is no longer this join's: the connection left and joined again
         * meanwhile, and the newer join, on its way, owns it. */
        struct cf_str room = pstr(p->room, p->room_len), conn = pstr(p->conn, p->conn_len);
        /* The connection dropped with the script sent (it may have run and
         * announced the join), or its reply made no sense (it ran): a leave
         * keeps the room's list right. Not sent now: the connection that
         * failed is down, and would refuse it: it is owed, and the heartbeat
         * sends it once the server is back (leaves_owe). */
        if (!b->stopping && (err == -ECONNRESET || err == -EPROTO) &&
            presence_is_reg(b->presence, room, conn, p->reg)) {
            leaves_owe(b, room, conn);
        } else if (!b->stopping) {
            presence_del_reg(b->presence, room, conn, p->reg);
        }
        send_fail(b, p->link_id, p->q, err);
        pending_free(p);
        return;
    }
    struct gwlink *l = link_of(b, p->link_id);
    CF_DEBUG("broker", "room %.*s: join snapshot for link %llu (%s): last id %llu, %u messages",
             (int)p->room_len, p->room, (unsigned long long)p->link_id, l ? "open" : "gone",
             (unsigned long long)r->last_id, r->nmessages);
    if (l) {
        uint32_t nm, first;
        requests_fit_join(r->members, r->nmembers, r->messages, r->nmessages, p->budget, &nm,
                          &first);
        struct cf_wire_msg s = {.type = CF_WIRE_SUBBED,
                                .q = p->q,
                                .room = pstr(p->room, p->room_len),
                                .epoch = r->epoch,
                                .last_id = r->last_id,
                                .pv = r->pv,
                                .count = r->count,
                                .members = r->members,
                                .nmembers = nm,
                                .messages = r->messages + first,
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
        /* (the script keeps to the budget already, as this does: this
         * holds whatever Redis answered to what the link may carry) */
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
    b->publish_dropped++;
    CF_LOG_CAPPED(&b->drop_log, CF_LOG_WARN, "broker",
                  "message for room %.*s dropped: %s (%llu dropped so far)", (int)room.len, room.p,
                  rc == -ENOTCONN     ? "Redis is not connected"
                  : rc == -EAGAIN     ? "Redis refused it for now (out of memory, read-only, ...)"
                  : rc == -EIO        ? "Redis answered an error"
                  : rc == -ECONNRESET ? "the connection to Redis dropped (it may be stored)"
                  : rc == -ENOBUFS    ? "the queue toward Redis is full"
                  : rc == BM_ERR_HOLD_FULL ? HOLD_FULL_TEXT
                  : rc == BM_ERR_AWAITING  ? AWAITING_TEXT
                                           : strerror(-rc),
                  (unsigned long long)b->publish_dropped);
}

/* A legacy client's message: nobody waits for its answer, but one Redis
 * refused or lost is counted and logged as dropped, as one refused at once. */
static void on_legacy_sent(void *ud, int err, const struct store_sent *r)
{
    (void)r;
    struct pending *p = ud;
    if (err < 0)
        count_drop(p->b, pstr(p->room, p->room_len), err);
    pending_free(p);
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
    switch (m.type) {
    case CF_WIRE_MSG: { /* legacy client: no answer expected */
        struct pending *p = pending_new(b, link_id, &m, &rc);
        if (p)
            rc = store_send(rb_at(p), &b->lim, &m, pstr(NULL, 0), on_legacy_sent, p);
        if (rc < 0) {
            pending_free(p);
            count_drop(b, m.room, rc);
        }
        return;
    }
    case CF_WIRE_SEND: {
        struct cf_wire_msg msg = {.type = CF_WIRE_MSG, .room = m.room, .from = m.from,
                                  .text = m.text, .ts = m.ts};
        struct pending *p = pending_new(b, link_id, &m, &rc);
        if (p)
            rc = store_send(rb_at(p), &b->lim, &msg,
                            (m.has & CF_WIRE_HAS_CID) ? m.cid : pstr(NULL, 0), on_sent, p);
        if (rc < 0) {
            pending_free(p);
            send_fail(b, link_id, m.q, rc);
        }
        return;
    }
    case CF_WIRE_SUB: {
        struct gwlink *l = link_of(b, link_id);
        if (!l)
            return; /* its gateway left meanwhile: nothing to register */
        uint64_t reg;
        rc = leaves_presence_add(b, l, m.room, m.conn, m.user, &reg);
        if (rc < 0 && rc != -EEXIST) {
            send_fail(b, link_id, m.q, rc);
            return;
        }
        if (rc == -EEXIST)
            reg = 0; /* taken over: not this join's to remove */
        struct pending *p = pending_new(b, link_id, &m, &rc);
        if (p) {
            p->reg = reg;
            rc = store_join(rb_at(p), &b->lim, m.room, m.conn, m.user,
                            (m.has & CF_WIRE_HAS_SINCE) != 0, m.since,
                            (m.has & CF_WIRE_HAS_EPOCH) ? m.epoch : pstr("", 0), m.limit, p->budget,
                            MAX_MEMBERS, on_joined, p);
        }
        if (rc < 0) {
            pending_free(p);
            /* A re-registration (q 0) stays recorded: the refresh puts it in
             * Redis once Redis is back; so does an entry this join took over. */
            if (m.q)
                presence_del_reg(b->presence, m.room, m.conn, reg);
            send_fail(b, link_id, m.q, rc);
        }
        return;
    }
    case CF_WIRE_UNSUB:
        /* Only from the entry's owner or a newer link (presence_may_remove):
         * a held leave of a link that has gone may be of a connection a
         * newer link has taken over since. One it may remove is a leave to
         * announce now, not when the old link's grace ends. */
        if (b->stopping)
            return;
        if (presence_may_remove(b->presence, m.room, m.conn, link_id))
            leaves_announce(b, m.room, m.conn);
        return;
    default:
        return;
    }
}

static void request_history(struct broker *b, struct gwlink *l, const struct cf_wire_msg *m)
{
    int rc;
    struct pending *p = pending_new(b, gwlink_id(l), m, &rc);
    if (p)
        rc = store_history(rb_at(p), &b->lim, m->room, (m->has & CF_WIRE_HAS_BEFORE) != 0,
                           m->before, m->limit, p->budget, on_page, p);
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

static bool op_deliver(void *ud, void *link, const void *p, size_t plen)
{
    (void)ud;
    return gwlink_send_payload(link, p, plen);
}

const struct rooms_ops requests_room_ops = {op_subscribe, op_unsubscribe, op_run, op_deliver};

/* ---- gateway links ----------------------------------------------------- */

static bool owned(struct broker *b, struct gwlink *l, const struct cf_wire_msg *m)
{
    if (cf_shard_of(m->room.p, m->room.len, b->shards) == b->shard)
        return true;
    b->misrouted++;
    CF_LOG_CAPPED(&b->misrouted_log, CF_LOG_WARN, "broker",
                  "gateway %s sent %s for room %.*s, which shard %u does not own (%llu such "
                  "frames dropped)",
                  gwlink_node(l), cf_wire_type_name(m->type), (int)m->room.len, m->room.p, b->shard,
                  (unsigned long long)b->misrouted);
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
        send_fail(u->b, link_id, h.q, BM_ERR_TAKEN_BACK);
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

/* Throttled per user and room across nodes by the script; lost if Redis is
 * down (typing is only a hint). Re-encoded from the fields it needs: the
 * frame as the peer sent it may carry unknown keys of any size, which every
 * node subscribed to the room would receive (and drop, as larger than any
 * room event, counted against Redis). */
static void publish_typing(struct broker *b, const struct cf_wire_msg *m)
{
    struct cf_wire_msg t = {.type = CF_WIRE_TYPING, .room = m->room, .user = m->user};
    struct cf_bytes out;
    cf_bytes_init(&out, CF_WIRE_MAX_EVENT);
    if (cf_wire_encode(&out, &t) == 0)
        store_typing(rb_of(b, m->room), m->room, m->user, TYPING_GAP_MS,
                     cf_bytes_data(&out) + CF_WIRE_HDR, cf_bytes_len(&out) - CF_WIRE_HDR);
    cf_bytes_free(&out);
}

void requests_on_frame(void *ud, struct gwlink *l, const struct cf_wire_msg *m,
                       const unsigned char *payload, size_t len)
{
    struct broker *b = ud;
    if (!owned(b, l, m)) {
        if (m->type == CF_WIRE_SEND || m->type == CF_WIRE_SUB || m->type == CF_WIRE_HIST)
            send_fail(b, gwlink_id(l), m->q, BM_ERR_MISROUTED);
        return;
    }
    b->requests++; /* refused or not: send_fail counts those refused */
    /* Draining: what would need an answer is refused at once (nothing was
     * done, the client retries once the shard is back). Taken on, it kept
     * Redis busy to the drain's deadline under steady traffic, and what was
     * still in flight then was answered "timeout" by the gateway, outcome
     * unknown. Leaves, presence bookkeeping and legacy messages (no answer
     * to give) still run. */
    if (b->drain && (m->type == CF_WIRE_SEND || m->type == CF_WIRE_HIST ||
                     m->type == CF_WIRE_TYPING || (m->type == CF_WIRE_SUB && m->q))) {
        if (m->type == CF_WIRE_SUB) /* a re-sync refused, as below */
            leaves_presence_take_over(b, m->room, m->conn, l);
        send_fail(b, gwlink_id(l), m->q, -ESHUTDOWN);
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
        if (rc == -ENOBUFS)
            rc = BM_ERR_HOLD_FULL;
        /* Presence bookkeeping must not be lost to a Redis outage or a full
         * hold queue: the local record is what the refresh restores from. */
        if (rc < 0 && (m->type == CF_WIRE_UNSUB || (m->type == CF_WIRE_SUB && !m->q))) {
            run_presence_now(b, l, m, payload, len);
        } else if (rc < 0 && (m->type == CF_WIRE_SEND || m->type == CF_WIRE_SUB)) {
            /* A member's re-sync refused for now (it tries again) is still
             * that connection's newest registration: left with the link it
             * came from before, the entry was dropped at that link's grace
             * end, a leave announced for a connection still here. */
            if (m->type == CF_WIRE_SUB)
                leaves_presence_take_over(b, m->room, m->conn, l);
            send_fail(b, gwlink_id(l), m->q, rc);
        } else if (rc < 0 && m->type == CF_WIRE_MSG) {
            count_drop(b, m->room, rc);
        }
        break;
    }
    case CF_WIRE_HIST:
        request_history(b, l, m);
        break;
    case CF_WIRE_TYPING:
        publish_typing(b, m);
        break;
    default:
        break;
    }
}
