/* v1: see v1.h. */
#include "v1.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

#include "blinks.h"
#include "budget.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "lrooms.h"
#include "reqs.h"
#include "ring.h"
#include "resync.h"
#include "session.h"
#include "v1codec.h"

#define TYPING_GAP_MS 2000

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
    case -EBUSY:
        return "MAX_PENDING_REQUESTS requests of this connection are waiting for an "
               "answer; send more once some are answered";
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
    struct cf_wire_msg f = {.type = CF_WIRE_SUB,
                            .q = q,
                            .room = room,
                            .user = cstr(sess_user(s)),
                            .conn = conn_id(gw, s, cbuf),
                            .limit = limit,
                            .budget = budget_of(gw->reqs, s, q)};
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
     * back within seconds through another gateway (the browser client
     * spreads them over goingAwaySpread, 3 s), and a leave announced now
     * showed each of them leaving and joining again. Their entries are left
     * to the broker, which announces the leaves of those that did not come
     * back once this gateway's links have been closed for its grace. */
    if (!gw->links || gw->draining)
        return;
    char cbuf[40];
    struct cf_wire_msg f = {.type = CF_WIRE_UNSUB, .room = room, .conn = conn_id(gw, s, cbuf)};
    /* down: the broker drops the entry at the link's grace end */
    blinks_publish_state(gw->links, &f);
}

/* rs_ops.send_presence: a presence-only registration (q 0: no answer).
 * One that cannot be encoded (out of memory) closes the session: dropped,
 * the member stayed connected and missing from its room's presence until
 * its broker was back again. Down (-ENOTCONN) and full (-ENOBUFS) are rs':
 * the member waits for its link. */
static int send_presence(void *ud, struct cf_str room, struct lmember *m)
{
    int rc = send_sub(ud, m->s, room, 0, NULL, false, 0);
    if (rc < 0 && rc != -ENOBUFS && rc != -ENOTCONN)
        sess_close(m->s, 1012, "could not register presence");
    return rc;
}

void v1_presence_join(struct gw *gw, struct lmember *m)
{
    rs_presence(gw->rs, m);
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

/* Joins r->room. `replacing`: a change_room, whose other rooms are left once
 * this join is on its way (they do not count against the room limit).
 * Returns the pending member, or NULL when refused (the client was told). */
static struct lmember *do_join(struct gw *gw, struct session *s, const struct v1_req *r,
                               bool replacing)
{
    if (lrooms_find(gw->rooms, s, r->room.p, r->room.len)) {
        send_error(s, "already_joined", "this connection is already in the room", r->id, r->room);
        return NULL;
    }
    if (!replacing && sess_rooms(s)->n >= (uint32_t)gw->cfg->max_rooms_per_conn) {
        char msg[80];
        snprintf(msg, sizeof msg, "a connection can be in at most %d rooms",
                 gw->cfg->max_rooms_per_conn);
        send_error(s, "too_many_rooms", msg, r->id, r->room);
        return NULL;
    }
    int err;
    struct req *q = reqs_add(gw->reqs, REQ_SUB, s, NULL, r->room, r->id, &err);
    if (!q) {
        send_error(s, code_of_errno(err), message_of_errno(err), r->id, r->room);
        return NULL;
    }
    struct lmember *m = lrooms_join(gw->rooms, s, r->room.p, r->room.len, true, &err);
    if (!m) {
        reqs_cancel(gw->reqs, q);
        send_error(s, "internal", "out of memory", r->id, r->room);
        return NULL;
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
        return NULL;
    }
    return m;
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
    struct cf_wire_msg f = {.type = CF_WIRE_HIST,
                            .q = q->q,
                            .room = r->room,
                            .limit = r->limit,
                            .budget = budget_of(gw->reqs, s, q->q)};
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
        /* the client is told; the log keeps a line a second */
        CF_LOG_CAPPED(&gw->bad_frame_log, CF_LOG_INFO, "v1",
                      "conn %llu (%s): refused a request: %s", (unsigned long long)sess_id(s),
                      sess_user(s), e.code);
        send_error(s, e.code, e.message, e.ref, e.room);
        v1_error_free(edoc);
        return;
    }
    switch (r.type) {
    case V1_JOIN:
        do_join(gw, s, &r, false);
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
        /* The join goes first, and the other rooms are left only once it
         * is on its way: refused at once (its broker away, too many
         * requests), the connection keeps the rooms it had. The room it is
         * already in, if asked again, is left and joined again (a fresh
         * `joined`, as documented). */
        struct lmember *again = lrooms_find(gw->rooms, s, r.room.p, r.room.len);
        if (again)
            leave_member(gw, s, again, true);
        struct lmember *m = do_join(gw, s, &r, true);
        /* downwards: leaving one moves the session's last room into its
         * place, and that one was seen already (m, kept) */
        struct cf_rel_end *end = sess_rooms(s);
        for (uint32_t i = end->n; m && i > 0; i--) {
            struct lmember *o = lrooms_edge_member(end->v[i - 1]);
            if (o != m)
                leave_member(gw, s, o, true);
        }
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
    bool members_sent = true, cut = false, waiting = false;
    uint32_t given = 0;
    /* A re-sync gives what was missed as live messages when the client knows
     * presence as of the snapshot; when changes went by while events were
     * not arriving, it gets a whole `joined` (recovered, its messages the
     * missed ones) for the members list. */
    if (q->resync && snap->recovered && same_epoch && lrooms_knows_pv(m, snap->pv)) {
        /* Back after a broker outage: hand over what was missed, as live. */
        members_sent = false;
        struct cf_wire_decoder *d = gw->dec;
        for (uint32_t i = 0; i < snap->nmessages && !cut; i++) {
            struct cf_wire_msg msg;
            const char *why;
            if (cf_wire_decode(d, snap->messages[i].p, snap->messages[i].len, &msg, &why) < 0 ||
                msg.type != CF_WIRE_MSG || !(msg.has & CF_WIRE_HAS_ID) || msg.id <= m->last_id)
                continue;
            struct cf_buf *ev = v1_encode_event(sess_proto(s), &msg);
            /* What does not fit the client's queue waits for another
             * re-sync, from the last id given, once the client had time to
             * read; one that finds no room at all is a slow consumer. */
            if (ev && sess_would_overflow(s, ev->len)) {
                cf_buf_unref(ev);
                if (!given && sess_queued_bytes(s) == 0) {
                    sess_close_slow(s, "slow consumer");
                    return;
                }
                /* none given: it waits its turn (lrooms_full_round) */
                cut = true;
                waiting = !given;
                break;
            }
            m->last_id = msg.id;
            given++;
            if (!ev) {
                send_buf(s, NULL); /* logs the encoding that failed */
                continue;
            }
            if (sess_send(s, ev) == 0)
                gw->stats.messages_out++;
            cf_buf_unref(ev);
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
        struct cf_buf *ev = v1_encode_joined(sess_proto(s), gw->dec, snap, &bad);
        /* A re-sync's whole joined the queue cannot take now waits for
         * another re-sync, as the replay's cut does: re-syncs keep a whole
         * quarter of the queue each (budget.h), and several in one pass
         * closed a client that reads. Its epoch is not taken meanwhile.
         * One that an empty queue cannot take goes, and closes it now. */
        if (q->resync && ev && sess_would_overflow(s, ev->len) && sess_queued_bytes(s) > 0) {
            cf_buf_unref(ev);
            cut = waiting = true;
            members_sent = false;
        } else {
            given = ev != NULL;
            send_buf(s, ev);
            m->last_id = snap->last_id;
            if (bad) /* each join of a damaged room would log it: capped */
                CF_LOG_CAPPED(&gw->stored_log, CF_LOG_WARN, "v1",
                              "room %.*s: %zu stored messages could not be decoded and were "
                              "skipped",
                              (int)q->room_len, q->room, bad);
        }
    }
    if (!cut && snap->last_id > m->last_id)
        m->last_id = snap->last_id;
    if (!cut && snap->epoch.len < sizeof m->epoch) {
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
    if (q->resync && given)
        sess_note_resynced(s); /* others waiting their turn see it move */
    if (cut && lrooms_full_round(m, waiting))
        sess_close_slow(s, "slow consumer (cannot keep up with its rooms)");
    else if (cut)
        rs_soon(gw->rs, m); /* what was held with ids comes with it */
    else
        gw->stats.messages_out += lrooms_go_live(gw->rooms, m);
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
            uint32_t shard = blinks_shard_of(gw->links, q->room, q->room_len);
            if (rs_first_refusal(gw->rs, shard)) {
                CF_INFO("v1", "conn %llu: room %.*s: re-sync refused (%s: %s); it and the "
                        "members of broker %u refused like it try again in %d s",
                        (unsigned long long)sess_id(q->s), (int)q->room_len, q->room, code,
                        message, shard, RS_RETRY_MS / 1000);
            } else
                CF_DEBUG("v1", "conn %llu: room %.*s: re-sync refused (%s); trying again later",
                         (unsigned long long)sess_id(q->s), (int)q->room_len, q->room, code);
            rs_later(gw->rs, m, RS_RETRY_MS);
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

/* s into out (cap bytes with the NUL), cut at a character's start: half a
 * character would make an error's JSON fail to build, and its request go
 * unanswered. s is valid UTF-8 (the wire checks it). */
static void cut_utf8(char *out, size_t cap, struct cf_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    while (n > 0 && n < s.len && ((unsigned char)s.p[n] & 0xC0) == 0x80)
        n--;
    if (n)
        memcpy(out, s.p, n);
    out[n] = '\0';
}

void v1_on_reply(struct gw *gw, const struct cf_wire_msg *m)
{
    struct req *q = reqs_take(gw->reqs, m->q);
    if (!q)
        return; /* timed out already, or a re-registration nobody waits for */
    bool was_resync = q->resync;
    if (m->type == CF_WIRE_FAIL) {
        char code[32], text[160];
        cut_utf8(code, sizeof code, m->code);
        cut_utf8(text, sizeof text, m->text);
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
        /* still one answer: a join left pending would hold its events */
        refused(gw, q, "internal", "the broker's answer made no sense");
    }
    if (was_resync) {
        uint32_t shard = blinks_shard_of(gw->links, q->room, q->room_len);
        rs_ended(gw->rs, shard);
        rs_pump(gw->rs, shard); /* its place in the window is free */
    }
    reqs_release(q);
}

/* A re-sync that leaves the table without an answer frees its place; the
 * tick sends the next (not while the table is walked). */
static void resync_gone(struct gw *gw, const struct req *q)
{
    if (q->resync)
        rs_ended(gw->rs, blinks_shard_of(gw->links, q->room, q->room_len));
}

static void expired(void *ud, struct req *q)
{
    refused(ud, q, "timeout", "no answer within 10 s; the outcome is unknown");
    resync_gone(ud, q);
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
    resync_gone(d->gw, q);
}

void v1_on_link_down(struct gw *gw, uint32_t shard)
{
    struct downed d = {gw, shard};
    reqs_take_if(gw->reqs, on_shard, dropped, &d);
}

/* ---- re-registration ---------------------------------------------------------- */

struct relink {
    struct gw *gw;
    uint32_t shard;
    uint32_t server, servers; /* only the rooms on that Redis server (servers 0: all) */
    size_t waiting;           /* members whose re-sync waits for its turn */
    size_t registering;       /* members whose presence only is registered again */
};

static bool in_shard(void *ud, struct cf_str room)
{
    struct relink *r = ud;
    return blinks_shard_of(r->gw->links, room.p, room.len) == r->shard &&
           (!r->servers || cf_ring_server_of(room.p, room.len, r->servers) == r->server);
}

/* rs_ops.send: puts a member back to pending on a re-sync request: with
 * `since` its missed messages (after a broker outage), without it a fresh
 * joined (its room's epoch changed). */
static int send_resync(void *ud, struct cf_str room, struct lmember *m, bool since)
{
    struct gw *gw = ud;
    struct session *s = m->s;
    int err;
    struct req *q = reqs_add_resync(gw->reqs, s, room, &err);
    if (!q) {
        sess_close(s, 1012, "could not re-sync");
        return err;
    }
    m->pending = true;
    m->q = q->q;
    int rc = send_sub(gw, s, room, q->q, m, since, V1_DEFAULT_LIMIT);
    if (rc == 0)
        return 0;
    reqs_cancel(gw->reqs, q);
    m->q = 0;
    if (rc != -ENOBUFS && rc != -ENOTCONN)
        sess_close(s, 1012, "could not re-sync");
    return rc;
}

static uint32_t room_shard(void *ud, struct cf_str room)
{
    struct gw *gw = ud;
    return blinks_shard_of(gw->links, room.p, room.len);
}

static bool shard_linked(void *ud, uint32_t shard)
{
    struct gw *gw = ud;
    return blinks_link_up(gw->links, shard);
}

static const struct rs_ops resync_ops = {room_shard, shard_linked, send_resync, send_presence};

/* The re-sync window toward a broker whose link queue holds `peer` bytes
 * (0: not told): a re-sync's answer is its budget (which the broker also
 * keeps under a quarter of its link queue, requests.c), a newest message
 * over it, and the frame's own fields; the round's answers must fit half of
 * the smaller of the two queues. */
static uint32_t resync_window(struct gw *gw, uint64_t peer)
{
    uint64_t lq = (uint64_t)gw->cfg->max_link_queue_bytes;
    if (peer && peer < lq)
        lq = peer;
    uint64_t b = budget_max(gw->cfg->max_client_queue_bytes, (long long)lq);
    return rs_window(lq, b + (uint64_t)gw->cfg->max_message_bytes + 1024);
}

struct rs *v1_resyncs_new(struct gw *gw)
{
    uint32_t window = resync_window(gw, 0);
    if (window < RS_WINDOW)
        CF_INFO("v1",
                "re-syncs: at most %u in flight per broker (MAX_LINK_QUEUE_BYTES %lld: "
                "half of it for their answers)",
                window, (long long)gw->cfg->max_link_queue_bytes);
    return rs_new(gw->rooms, blinks_count(gw->links), window, &resync_ops, gw);
}

void v1_resync(struct gw *gw, struct cf_str room, struct lmember *m, bool since, bool later)
{
    (void)room;
    if (later)
        rs_soon(gw->rs, m); /* a re-sync from its last id: since */
    else
        rs_gap(gw->rs, m, since);
}

/* A member whose re-sync waits for its turn or was refused: pending, with
 * no request of its own (a join's pending member always has one). */
static bool awaits_resync(const struct lmember *m)
{
    return m->pending && m->q == 0;
}

static void reregister(void *ud, struct cf_str room, struct lmember *m)
{
    struct relink *r = ud;
    struct gw *gw = r->gw;
    (void)room;
    if (!sess_proto_is_v1(sess_proto(m->s)) || (m->pending && !awaits_resync(m))) {
        rs_wait_presence(gw->rs, m); /* presence only */
        r->registering++;
        return;
    }
    rs_wait(gw->rs, m);
    r->waiting++;
}

/* The shard's members re-sync (servers 0), or those of the rooms on one of
 * its broker's Redis servers (rs_server_back): those are moved to the
 * ready list whichever list they waited in. */
static void resync_members(struct gw *gw, uint32_t shard, bool new_link, uint32_t server,
                           uint32_t servers)
{
    struct relink r = {gw, shard, server, servers, 0, 0};
    lrooms_foreach_member(gw->rooms, in_shard, reregister, &r);
    if (r.waiting)
        CF_INFO("v1", "broker %u: re-syncing %zu memberships, at most %d at a time", shard,
                r.waiting, RS_WINDOW);
    if (r.registering)
        CF_DEBUG("v1", "broker %u: registering the presence of %zu memberships again", shard,
                 r.registering);
    if (servers)
        rs_server_back(gw->rs, shard);
    else
        rs_shard_back(gw->rs, shard, new_link);
}

void v1_on_link_up(struct gw *gw, uint32_t shard, bool new_link)
{
    if (new_link) {
        uint64_t peer = blinks_peer_queue(gw->links, shard);
        uint32_t window = resync_window(gw, peer);
        /* (once per change of its queue, not at every relink to it) */
        if (window < resync_window(gw, 0) && blinks_peer_queue_changed(gw->links, shard))
            CF_WARN("v1",
                    "broker %u's MAX_LINK_QUEUE_BYTES (%llu) is under this gateway's (%lld): "
                    "at most %u re-syncs in flight to it; set both alike",
                    shard, (unsigned long long)peer, (long long)gw->cfg->max_link_queue_bytes,
                    window);
        rs_set_window(gw->rs, shard, window);
    }
    resync_members(gw, shard, new_link, 0, 0);
}

void v1_on_redis_back(struct gw *gw, uint32_t shard, uint32_t server, uint32_t servers)
{
    resync_members(gw, shard, false, server, servers);
}

void v1_tick(struct gw *gw)
{
    reqs_expire(gw->reqs, cf_mono_ms(), expired, gw);
}

void v1_tick_fast(struct gw *gw)
{
    rs_tick(gw->rs, cf_mono_ms());
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
