/* v1: see v1.h. */
#include "v1.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

#include "blinks.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "lrooms.h"
#include "reqs.h"
#include "session.h"
#include "v1codec.h"

#define TYPING_GAP_MS 2000
/* A member whose re-sync the broker refused tries again this much later
 * (or as soon as the broker is ready again). */
#define RESYNC_RETRY_MS 5000
/* A re-sync that did not fit its link's queue is tried again this soon: the
 * queue drains as fast as the broker reads. Waiting the 5 s of a refusal
 * let the broker announce the leaves of members still owned by the closed
 * link (its grace is 10 s) before a large shard's last re-syncs reached it. */
#define RESYNC_SOON_MS 200
/* Re-syncs in flight at most, per gateway process. A broker that comes back
 * gets its shard's members' re-syncs as it answers them, not one pass of
 * them all: that pass filled the link's queue (MAX_LINK_QUEUE_BYTES) and
 * the broker's queue toward Redis, whose refusals sent the rest to wait
 * for a retry. 256 joins keep a broker and its Redis busy (each takes tens
 * of microseconds of Redis) while taking ~100 KB of a link's queue. */
#define RESYNC_WINDOW 256
#define MAX_BUDGET (1u << 20) /* bytes of stored messages in one snapshot or page */

static struct cf_str cstr(const char *s)
{
    return (struct cf_str){s, (uint32_t)strlen(s)};
}

static const struct cf_str no_str = {NULL, 0};

/* A connection id unique across processes and restarts, for presence. */
static struct cf_str conn_id(struct gw *gw, struct session *s, char buf[40])
{
    int n = snprintf(buf, 40, "%016llx.%llx", (unsigned long long)gw->conn_salt,
                     (unsigned long long)sess_id(s));
    return (struct cf_str){buf, (uint32_t)n};
}

static uint32_t budget(const struct session *s)
{
    size_t b = sess_max_queue(s) / 4;
    return b > MAX_BUDGET ? MAX_BUDGET : (uint32_t)b;
}

static void send_buf(struct session *s, struct cf_buf *b)
{
    if (!b) {
        CF_ERROR("v1", "conn %llu: cannot encode an event (out of memory)",
                 (unsigned long long)sess_id(s));
        return;
    }
    sess_send(s, b);
    cf_buf_unref(b);
}

static void send_error(struct session *s, const char *code, const char *message, struct cf_str ref,
                       struct cf_str room)
{
    send_buf(s, v1_encode_error(sess_proto(s), code, message, ref, room));
}

static const char *code_of_errno(int err)
{
    return err == -EBUSY     ? "too_many_requests"
           : err == -ENOMEM ? "internal"
           : err == -EINVAL ? "bad_request" /* cannot be put on the wire: retrying will not help */
                            : "unavailable";
}

static const char *message_of_errno(int err)
{
    switch (err) {
    case -EBUSY: return "more than 64 requests are waiting for an answer";
    case -ENOTCONN: return "the room's broker is not reachable; retry later";
    case -ENOBUFS: return "the room's broker is congested; retry later";
    case -EINVAL: return "the request cannot be forwarded as it is";
    default: return "the gateway failed; retry later";
    }
}

/* ---- presence registration -------------------------------------------------- */

static int send_sub(struct gw *gw, struct session *s, struct cf_str room, uint64_t q,
                    const struct lmember *m, bool since, uint32_t limit)
{
    char cbuf[40];
    struct cf_wire_msg f = {.type = CF_WIRE_SUB, .q = q, .room = room,
                            .user = cstr(sess_user(s)), .conn = conn_id(gw, s, cbuf),
                            .limit = limit, .budget = budget(s)};
    if (since && m && m->epoch_known) {
        f.has |= CF_WIRE_HAS_SINCE | CF_WIRE_HAS_EPOCH;
        f.since = m->last_id;
        f.epoch = cstr(m->epoch);
    }
    return blinks_publish(gw->links, &f);
}

static void send_unsub(struct gw *gw, struct session *s, struct cf_str room)
{
    /* Draining (a restart, a rolling deploy): the clients told 1001 come
     * back at once through another gateway, and a leave announced now
     * showed each of them leaving and joining again. Their entries are left
     * to the broker, which announces the leaves of those that did not come
     * back once this gateway's links have been closed for its grace. */
    if (!gw->links || gw->draining)
        return;
    char cbuf[40];
    struct cf_wire_msg f = {.type = CF_WIRE_UNSUB, .room = room, .conn = conn_id(gw, s, cbuf)};
    blinks_publish(gw->links, &f); /* down: the entry expires, or the broker drops it */
}

void v1_presence_join(struct gw *gw, struct session *s, struct cf_str room)
{
    send_sub(gw, s, room, 0, NULL, false, 0); /* down: registered again when the link is up */
}

void v1_presence_leave(struct gw *gw, struct session *s, struct cf_str room)
{
    send_unsub(gw, s, room);
}

/* ---- requests ------------------------------------------------------------- */

static struct lmember *member_or_refuse(struct gw *gw, struct session *s, const struct v1_req *r)
{
    struct lmember *m = lrooms_find(gw->rooms, s, r->room.p, r->room.len);
    if (!m)
        send_error(s, "not_member", "join the room first", r->id, r->room);
    return m;
}

static void do_join(struct gw *gw, struct session *s, const struct v1_req *r)
{
    if (lrooms_find(gw->rooms, s, r->room.p, r->room.len)) {
        send_error(s, "already_joined", "this connection is already in the room", r->id, r->room);
        return;
    }
    if (sess_rooms(s)->n >= (uint32_t)gw->cfg->max_rooms_per_conn) {
        char msg[80];
        snprintf(msg, sizeof msg, "a connection can be in at most %d rooms",
                 gw->cfg->max_rooms_per_conn);
        send_error(s, "too_many_rooms", msg, r->id, r->room);
        return;
    }
    int err;
    struct req *q = reqs_add(gw->reqs, REQ_SUB, s, NULL, r->room, r->id, &err);
    if (!q) {
        send_error(s, code_of_errno(err), message_of_errno(err), r->id, r->room);
        return;
    }
    struct lmember *m = lrooms_join(gw->rooms, s, r->room.p, r->room.len, true, &err);
    if (!m) {
        reqs_cancel(gw->reqs, q);
        send_error(s, "internal", "out of memory", r->id, r->room);
        return;
    }
    m->q = q->q;
    if (r->has_since && r->has_epoch && r->epoch.len < sizeof m->epoch) {
        m->last_id = r->since;
        memcpy(m->epoch, r->epoch.p, r->epoch.len);
        m->epoch[r->epoch.len] = '\0';
        m->epoch_known = true;
    }
    if ((err = send_sub(gw, s, r->room, q->q, m, m->epoch_known, r->limit)) < 0) {
        reqs_cancel(gw->reqs, q);
        lrooms_leave_member(gw->rooms, m);
        send_error(s, code_of_errno(err), message_of_errno(err), r->id, r->room);
    }
}

static void leave_member(struct gw *gw, struct session *s, struct lmember *m, bool tell)
{
    struct cf_str room = lrooms_member_room(m);
    char name[CF_ROOM_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int)room.len, room.p); /* outlives the member */
    send_unsub(gw, s, room);
    lrooms_leave_member(gw->rooms, m);
    if (tell)
        send_buf(s, v1_encode_left(sess_proto(s), cstr(name)));
}

static void do_send(struct gw *gw, struct session *s, const struct v1_req *r)
{
    if (!member_or_refuse(gw, s, r))
        return;
    int err;
    struct req *q = reqs_add(gw->reqs, REQ_SEND, s, NULL, r->room, r->has_id ? r->id : no_str,
                             &err);
    if (!q) {
        send_error(s, code_of_errno(err), message_of_errno(err), r->id, r->room);
        return;
    }
    struct cf_wire_msg f = {.type = CF_WIRE_SEND, .q = q->q, .room = r->room,
                            .from = cstr(sess_user(s)), .text = r->message, .ts = cf_wall_ms()};
    if (r->has_id) {
        f.has |= CF_WIRE_HAS_CID;
        f.cid = r->id;
    }
    if ((err = blinks_publish(gw->links, &f)) < 0) {
        reqs_cancel(gw->reqs, q);
        gw->stats.sends_dropped++;
        send_error(s, code_of_errno(err), message_of_errno(err), r->id, r->room);
        return;
    }
    gw->stats.messages_in++;
}

static void do_history(struct gw *gw, struct session *s, const struct v1_req *r)
{
    if (!member_or_refuse(gw, s, r))
        return;
    int err;
    struct req *q = reqs_add(gw->reqs, REQ_HIST, s, NULL, r->room, r->id, &err);
    if (!q) {
        send_error(s, code_of_errno(err), message_of_errno(err), r->id, r->room);
        return;
    }
    struct cf_wire_msg f = {.type = CF_WIRE_HIST, .q = q->q, .room = r->room, .limit = r->limit,
                            .budget = budget(s)};
    if (r->has_before) {
        f.has |= CF_WIRE_HAS_BEFORE;
        f.before = r->before;
    }
    if ((err = blinks_publish(gw->links, &f)) < 0) {
        reqs_cancel(gw->reqs, q);
        send_error(s, code_of_errno(err), message_of_errno(err), r->id, r->room);
    }
}

static void do_typing(struct gw *gw, struct session *s, const struct v1_req *r)
{
    struct lmember *m = member_or_refuse(gw, s, r);
    if (!m || m->pending)
        return;
    int64_t now = cf_mono_ms();
    if (m->typing_at && now - m->typing_at < TYPING_GAP_MS)
        return; /* throttled; typing is only a hint */
    m->typing_at = now;
    struct cf_wire_msg f = {.type = CF_WIRE_TYPING, .room = r->room, .user = cstr(sess_user(s))};
    blinks_publish(gw->links, &f);
}

void v1_on_frame(struct gw *gw, struct session *s, const void *msg, size_t len)
{
    struct v1_req r;
    struct v1_error e;
    void *edoc;
    if (v1_parse(sess_proto(s), msg, len, &r, &e, &edoc) < 0) {
        gw->stats.bad_frames++;
        CF_INFO("v1", "conn %llu (%s): refused a request: %s", (unsigned long long)sess_id(s),
                sess_user(s), e.code);
        send_error(s, e.code, e.message, e.ref, e.room);
        v1_error_free(edoc);
        return;
    }
    switch (r.type) {
    case V1_JOIN:
        do_join(gw, s, &r);
        break;
    case V1_LEAVE: {
        struct lmember *m = member_or_refuse(gw, s, &r);
        if (m)
            leave_member(gw, s, m, true);
        break;
    }
    case V1_SEND:
        do_send(gw, s, &r);
        break;
    case V1_HISTORY:
        do_history(gw, s, &r);
        break;
    case V1_TYPING:
        do_typing(gw, s, &r);
        break;
    case V1_PING: {
        /* answered here, no broker: a browser cannot see WebSocket pings,
         * so this is how a client tells a live link from a dead one */
        struct cf_str none = {"", 0};
        send_buf(s, v1_encode_pong(sess_proto(s), r.has_id ? r.id : none));
        break;
    }
    case V1_CHANGE_ROOM: {
        struct cf_rel_end *end = sess_rooms(s);
        while (end->n > 0)
            leave_member(gw, s, lrooms_edge_member(end->v[end->n - 1]), true);
        do_join(gw, s, &r);
        break;
    }
    }
    v1_req_free(&r);
}

void v1_refuse_frame(struct session *s, const void *msg, size_t len, const char *code,
                     const char *message)
{
    struct v1_req r;
    struct v1_error e;
    void *edoc;
    if (v1_parse(sess_proto(s), msg, len, &r, &e, &edoc) < 0) {
        send_error(s, code, message, e.ref, e.room); /* what could be read of it */
        v1_error_free(edoc);
        return;
    }
    struct cf_str none = {"", 0};
    send_error(s, code, message, r.has_id ? r.id : none, r.room);
    v1_req_free(&r);
}

void v1_session_closed(struct gw *gw, struct session *s)
{
    struct cf_rel_end *end = sess_rooms(s);
    while (end->n > 0)
        leave_member(gw, s, lrooms_edge_member(end->v[end->n - 1]), false);
    reqs_drop_session(gw->reqs, s);
}

/* ---- answers ------------------------------------------------------------------ */

static struct cf_str req_room(const struct req *q)
{
    return (struct cf_str){q->room, q->room_len};
}

static struct cf_str req_id(const struct req *q)
{
    return (struct cf_str){q->id, q->id_len};
}

/* The member a join request was for, if it still waits for it. */
static struct lmember *waiting_member(struct gw *gw, const struct req *q)
{
    if (!q->s)
        return NULL;
    struct lmember *m = lrooms_find(gw->rooms, q->s, q->room, q->room_len);
    /* the same request: a leave and a new join make a new one */
    return m && m->pending && m->q == q->q ? m : NULL;
}

static void subbed(struct gw *gw, struct req *q, const struct cf_wire_msg *snap)
{
    struct lmember *m = waiting_member(gw, q);
    if (!m)
        return; /* left (or gone) meanwhile */
    struct session *s = q->s;
    size_t bad = 0;
    bool same_epoch = m->epoch_known && snap->epoch.len == strlen(m->epoch) &&
                      memcmp(snap->epoch.p, m->epoch, snap->epoch.len) == 0;
    bool members_sent = true;
    /* A re-sync gives what was missed as live messages when the client knows
     * presence as of the snapshot; when changes went by while events were
     * not arriving, it gets a whole `joined` (recovered, its messages the
     * missed ones) for the members list. */
    if (q->resync && snap->recovered && same_epoch && lrooms_knows_pv(m, snap->pv)) {
        /* Back after a broker outage: hand over what was missed, as live. */
        members_sent = false;
        struct cf_wire_decoder *d = gw->dec;
        for (uint32_t i = 0; i < snap->nmessages; i++) {
            struct cf_wire_msg msg;
            const char *why;
            if (cf_wire_decode(d, snap->messages[i].p, snap->messages[i].len, &msg, &why) < 0 ||
                msg.type != CF_WIRE_MSG || !(msg.has & CF_WIRE_HAS_ID) || msg.id <= m->last_id)
                continue;
            m->last_id = msg.id;
            send_buf(s, v1_encode_event(sess_proto(s), &msg));
        }
        /* at INFO only when it brought something: a broker that comes back
         * re-syncs every member of its shard, which made a line each */
        if (snap->nmessages)
            CF_INFO("v1", "conn %llu: re-synced room %.*s (%u missed messages)",
                    (unsigned long long)sess_id(s), (int)q->room_len, q->room, snap->nmessages);
        else
            CF_DEBUG("v1", "conn %llu: re-synced room %.*s (nothing missed)",
                     (unsigned long long)sess_id(s), (int)q->room_len, q->room);
    } else {
        send_buf(s, v1_encode_joined(sess_proto(s), gw->dec, snap, &bad));
        m->last_id = snap->last_id;
        if (bad)
            CF_WARN("v1", "room %.*s: %zu stored messages could not be decoded and were skipped",
                    (int)q->room_len, q->room, bad);
    }
    if (snap->last_id > m->last_id)
        m->last_id = snap->last_id;
    if (snap->epoch.len < sizeof m->epoch) {
        memcpy(m->epoch, snap->epoch.p, snap->epoch.len);
        m->epoch[snap->epoch.len] = '\0';
        m->epoch_known = true;
    }
    /* The presence changes the snapshot counted are dropped from what was
     * held only when the client got the snapshot's members: after a
     * recovery it got none, and they are its only news of who came and
     * went meanwhile. */
    if (members_sent)
        m->pv = snap->pv;
    lrooms_go_live(gw->rooms, m);
}

/* A member whose re-sync cannot go on now: it waits, silent, with no
 * request of its own (awaits_resync), and is re-synced when the broker is
 * ready again or at the next retry; its held messages are forgotten, since
 * that re-sync brings them (lrooms_forget_held_messages). */
static void pump_resyncs(struct gw *gw);

/* The waiting members are tried again within ms (refusals that keep coming
 * do not put an earlier try off). */
static void retry_within(struct gw *gw, int ms)
{
    int64_t at = cf_mono_ms() + ms;
    if (!gw->resync_due || gw->resync_at > at)
        gw->resync_at = at;
    gw->resync_due = true;
}

static void resync_later(struct gw *gw, struct lmember *m)
{
    m->q = 0; /* awaits_resync */
    lrooms_forget_held_messages(m);
    retry_within(gw, RESYNC_RETRY_MS);
}

static void refused(struct gw *gw, struct req *q, const char *code, const char *message)
{
    if (q->kind == REQ_PUBLISH) {
        if (q->http)
            http_publish_done(q->http, strcmp(code, "timeout") == 0 ? 504 : 503, code, message, 0,
                              0);
        return;
    }
    if (!q->s)
        return;
    if (q->kind == REQ_SUB) {
        struct lmember *m = waiting_member(gw, q);
        if (!m)
            return;
        if (q->resync && (!strcmp(code, "unavailable") || !strcmp(code, "timeout"))) {
            /* The broker is back but cannot serve the room yet (its Redis
             * is away, or slow): the member waits. Closing it sent every
             * client of the shard back at once, into joins that failed the
             * same way. One line per try at INFO: a whole shard's members
             * can be refused at once. */
            if (!gw->resync_refusal_told) {
                gw->resync_refusal_told = true;
                CF_INFO("v1", "conn %llu: room %.*s: re-sync refused (%s: %s); it and the "
                        "members refused like it try again in %d s",
                        (unsigned long long)sess_id(q->s), (int)q->room_len, q->room, code,
                        message, RESYNC_RETRY_MS / 1000);
            } else
                CF_DEBUG("v1", "conn %llu: room %.*s: re-sync refused (%s); trying again later",
                         (unsigned long long)sess_id(q->s), (int)q->room_len, q->room, code);
            resync_later(gw, m);
            return;
        }
        if (q->resync) {
            /* Refused for good (internal): retrying would fail the same way.
             * The member may have missed messages and cannot be told
             * which: have the client reconnect and recover by itself. */
            sess_close(q->s, 1012, "could not re-sync after a broker restart");
            return;
        }
        leave_member(gw, q->s, m, false);
    }
    send_error(q->s, code, message, req_id(q), req_room(q));
}

void v1_on_reply(struct gw *gw, const struct cf_wire_msg *m)
{
    struct req *q = reqs_take(gw->reqs, m->q);
    if (!q)
        return; /* timed out already, or a re-registration nobody waits for */
    bool was_resync = q->resync;
    if (m->type == CF_WIRE_FAIL) {
        char code[32], text[160];
        snprintf(code, sizeof code, "%.*s", (int)m->code.len, m->code.p);
        snprintf(text, sizeof text, "%.*s", (int)m->text.len, m->text.p);
        refused(gw, q, code, text);
    } else if (m->type == CF_WIRE_SENT && q->kind == REQ_PUBLISH) {
        if (q->http)
            http_publish_done(q->http, 200, NULL, NULL, m->id, m->ts);
    } else if (m->type == CF_WIRE_SENT && q->kind == REQ_SEND) {
        if (q->s)
            send_buf(q->s, v1_encode_ack(sess_proto(q->s), req_id(q), req_room(q), m->id, m->ts));
    } else if (m->type == CF_WIRE_SUBBED && q->kind == REQ_SUB) {
        subbed(gw, q, m);
    } else if (m->type == CF_WIRE_HISTR && q->kind == REQ_HIST) {
        size_t bad = 0;
        if (q->s)
            send_buf(q->s, v1_encode_history(sess_proto(q->s), gw->dec, m, req_id(q), &bad));
    } else {
        CF_WARN("v1", "a broker answered request %llu with an unexpected %s",
                (unsigned long long)m->q, cf_wire_type_name(m->type));
    }
    reqs_release(q);
    if (was_resync)
        pump_resyncs(gw); /* its place in the window is free */
}

static void expired(void *ud, struct req *q)
{
    refused(ud, q, "timeout", "no answer within 10 s; the outcome is unknown");
}

struct downed {
    struct gw *gw;
    uint32_t shard;
};

static bool on_shard(void *ud, const struct req *q)
{
    struct downed *d = ud;
    return blinks_shard_of(d->gw->links, q->room, q->room_len) == d->shard;
}

static void dropped(void *ud, struct req *q)
{
    struct downed *d = ud;
    /* It may have been carried out before the link dropped: say so now
     * rather than after the deadline, so the client resends sooner. */
    refused(d->gw, q, "timeout", "the link to the room's broker dropped; the outcome is unknown");
}

void v1_on_link_down(struct gw *gw, uint32_t shard)
{
    struct downed d = {gw, shard};
    reqs_take_if(gw->reqs, on_shard, dropped, &d);
    pump_resyncs(gw); /* the window's places the shard's re-syncs held are free */
}

/* ---- re-registration ---------------------------------------------------------- */

struct relink {
    struct gw *gw;
    uint32_t shard;
    size_t waiting; /* members whose re-sync waits for its turn */
};

static bool in_shard(void *ud, struct cf_str room)
{
    struct relink *r = ud;
    return blinks_shard_of(r->gw->links, room.p, room.len) == r->shard;
}

/* A member whose re-sync waits for its turn (pump_resyncs) or was refused:
 * pending, with no request of its own (a join's pending member always has
 * one). */
static bool awaits_resync(const struct lmember *m)
{
    return m->pending && m->q == 0;
}

/* Puts a live v1 member back to pending and asks for a snapshot: with
 * `since` its missed messages (after a broker outage), without it a fresh
 * joined (its room's epoch changed). */
static void resync(struct gw *gw, struct cf_str room, struct lmember *m, bool since)
{
    struct session *s = m->s;
    int err;
    struct req *q = reqs_add_resync(gw->reqs, s, room, &err);
    if (!q) {
        sess_close(s, 1012, "could not re-sync");
        return;
    }
    m->pending = true;
    m->q = q->q;
    int rc = send_sub(gw, s, room, q->q, m, since, V1_DEFAULT_LIMIT);
    if (rc == 0)
        return;
    reqs_cancel(gw->reqs, q);
    if (rc == -ENOBUFS || rc == -ENOTCONN) {
        /* The link's queue is full (MAX_LINK_QUEUE_BYTES: the window's
         * re-syncs behind other traffic) or the link went down: the broker
         * is only busy or away, so the member waits for the next try, as
         * for a refusal (closing them sent a share of the shard's clients
         * back at once); after a full queue, soon. One line per try. */
        resync_later(gw, m);
        if (rc == -ENOBUFS && !gw->resync_soon) {
            CF_WARN("v1", "room %.*s: re-sync requests do not fit the broker link (its queue is "
                    "full, MAX_LINK_QUEUE_BYTES); those members are tried again in %d ms",
                    (int)room.len, room.p, RESYNC_SOON_MS);
            gw->resync_soon = true;
            retry_within(gw, RESYNC_SOON_MS);
        }
        return;
    }
    sess_close(s, 1012, "could not re-sync");
}

/* The count of the gaps logged at DEBUG since the last INFO line, as a line
 * of its own; it counts as that second's line. */
static void log_gaps_unlogged(struct gw *gw, int64_t now)
{
    if (!gw->gap_unlogged)
        return;
    CF_INFO("v1", "%zu more memberships re-syncing for missed events or a new epoch (at most "
            "one such line a second)",
            gw->gap_unlogged);
    gw->gap_unlogged = 0;
    gw->gap_log_at = now;
}

/* One line a second at INFO: a burst of gaps (a broker's subscription that
 * was down meets the rooms' next messages) has every member of those rooms
 * re-sync at once. */
static void log_gap(struct gw *gw, const struct lmember *m, struct cf_str room, bool since)
{
    const char *why = since ? "events were missed (a gap in message ids or presence versions)"
                            : "a new epoch (its history was lost)";
    int64_t now = cf_mono_ms();
    if (now - gw->gap_log_at < 1000 || gw->gap_unlogged) {
        gw->gap_unlogged++;
        CF_DEBUG("v1", "conn %llu: room %.*s: %s; re-syncing", (unsigned long long)sess_id(m->s),
                 (int)room.len, room.p, why);
        if (now - gw->gap_log_at >= 1000) /* a count not yet told: this second's line */
            log_gaps_unlogged(gw, now);
        return;
    }
    CF_INFO("v1", "conn %llu: room %.*s: %s; re-syncing", (unsigned long long)sess_id(m->s),
            (int)room.len, room.p, why);
    gw->gap_log_at = now;
}

static void walk_resyncs(struct gw *gw);

void v1_resync(struct gw *gw, struct cf_str room, struct lmember *m, bool since)
{
    log_gap(gw, m, room, since);
    if (!gw->resync_walking && reqs_resyncs(gw->reqs) < RESYNC_WINDOW) {
        resync(gw, room, m, since);
        return;
    }
    /* Behind the window, or behind members already waiting for their turn:
     * it waits too (a re-sync with `since` also serves a new epoch: the
     * snapshot's epoch is not the member's, and it gets a whole joined).
     * The retry is due as a safety: a walk can miss members when rooms come
     * and go meanwhile (their table is rebuilt). */
    m->pending = true;
    resync_later(gw, m);
    if (gw->resync_walking)
        gw->resync_again = true; /* the walk may be past it */
    else
        walk_resyncs(gw);
}

static void reregister(void *ud, struct cf_str room, struct lmember *m)
{
    struct relink *r = ud;
    struct gw *gw = r->gw;
    if (!sess_proto_is_v1(sess_proto(m->s)) || (m->pending && !awaits_resync(m))) {
        send_sub(gw, m->s, room, 0, NULL, false, 0); /* presence only */
        return;
    }
    m->pending = true; /* awaits_resync: its turn comes in walk_resyncs */
    m->q = 0;
    r->waiting++;
}

/* The rooms of every shard whose link is up (the others re-sync when it
 * comes back). */
static bool on_linked_shard(void *ud, struct cf_str room)
{
    struct gw *gw = ud;
    return blinks_link_up(gw->links, blinks_shard_of(gw->links, room.p, room.len));
}

static bool send_waiting(void *ud, struct cf_str room, struct lmember *m)
{
    struct gw *gw = ud;
    if (!awaits_resync(m) || sess_closing(m->s))
        return false; /* one closing would only join the room for nothing */
    resync(gw, room, m, true); /* refused again: due again */
    gw->resync_walk_sent = true;
    return true;
}

/* Sends the waiting members' re-syncs, as many as the window has room for,
 * going on where the last call stopped. Called when a re-sync's answer
 * comes and from the tick. */
static void pump_resyncs(struct gw *gw)
{
    size_t out = reqs_resyncs(gw->reqs);
    if (!gw->resync_walking || out >= RESYNC_WINDOW)
        return;
    if (!lrooms_walk_members(gw->rooms, &gw->resync_cursor, on_linked_shard, send_waiting, gw,
                             (uint32_t)(RESYNC_WINDOW - out)))
        return;
    if (gw->resync_again) {
        gw->resync_again = false; /* from the start at the next answer or tick */
        return;
    }
    gw->resync_walking = false; /* every waiting member it met had its turn */
    /* A walk over several calls can miss members when rooms come and go
     * meanwhile (their table is rebuilt): the retry's walk finds them. One
     * that sent nothing ran in one call, and missed no one. */
    if (gw->resync_walk_sent)
        retry_within(gw, RESYNC_RETRY_MS);
}

/* Starts a walk over every member that waits for a re-sync (from the start:
 * one already under way may have passed members that wait now). */
static void walk_resyncs(struct gw *gw)
{
    gw->resync_walking = true;
    gw->resync_again = gw->resync_walk_sent = gw->resync_refusal_told = false;
    gw->resync_cursor = (struct lrooms_cursor){0, 0};
    pump_resyncs(gw);
}

void v1_on_link_up(struct gw *gw, uint32_t shard)
{
    struct relink r = {gw, shard, 0};
    lrooms_foreach_member(gw->rooms, in_shard, reregister, &r);
    if (r.waiting)
        CF_INFO("v1", "broker %u: re-syncing %zu memberships, at most %d at a time", shard,
                r.waiting, RESYNC_WINDOW);
    walk_resyncs(gw); /* one that misses members has a retry follow (pump_resyncs) */
}

static void retry_resyncs(struct gw *gw, int64_t now)
{
    if (!gw->resync_due || now < gw->resync_at)
        return;
    gw->resync_due = gw->resync_soon = false; /* a refusal of these sets them again */
    gw->resync_at = now + RESYNC_RETRY_MS;
    walk_resyncs(gw);
}

void v1_tick(struct gw *gw)
{
    int64_t now = cf_mono_ms();
    reqs_expire(gw->reqs, now, expired, gw);
    retry_resyncs(gw, now);
    pump_resyncs(gw);
    if (now - gw->gap_log_at >= 1000)
        log_gaps_unlogged(gw, now);
}

/* ---- server publish ------------------------------------------------------------ */

int v1_publish(struct gw *gw, void *http, struct cf_str room, struct cf_str from,
               struct cf_str text)
{
    int err;
    struct req *q = reqs_add(gw->reqs, REQ_PUBLISH, NULL, http, room, no_str, &err);
    if (!q)
        return err;
    struct cf_wire_msg f = {.type = CF_WIRE_SEND, .q = q->q, .room = room, .from = from,
                            .text = text, .ts = cf_wall_ms()};
    if ((err = blinks_publish(gw->links, &f)) < 0) {
        reqs_cancel(gw->reqs, q);
        return err;
    }
    http_publish_started(http, q->q);
    return 0;
}

void v1_publish_forget(struct gw *gw, uint64_t q)
{
    struct req *r = gw->reqs ? reqs_get(gw->reqs, q) : NULL;
    if (r)
        r->http = NULL;
}
