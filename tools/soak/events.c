/* events: what a client does with each event the server sends. Every
 * delivery goes to the ledger; the client's own view (epoch and last id per
 * room) decides what counts as out of order and what a server-sent
 * `joined` merely repeats. */
#include <stdlib.h>
#include <string.h>

#include "clientint.h"

/* ---- deliveries ----------------------------------------------------------- */

enum rx_kind { RX_LIVE, RX_RECOVERY, RX_REPLAY };

/* The client's state of the room an event's payload names (NULL: none). */
static struct croom *room_in(struct client *c, json_t *p)
{
    return client__find_room(c, client__room_of(json_string_value(json_object_get(p, "room"))));
}

static void deliver(struct client *c, struct croom *cr, json_t *m, enum rx_kind kind)
{
    const char *text = json_string_value(json_object_get(m, "message"));
    json_t *jid = json_object_get(m, "id");
    unsigned msg;
    if (!text || !json_is_integer(jid) || sscanf(text, "soak %u", &msg) != 1 ||
        !ledger_valid(msg)) {
        g_st.rx_unknown++;
        return;
    }
    int64_t id = json_integer_value(jid);
    if (ledger_msg_room(msg) != cr->room) {
        g_st.rx_unknown++;
        soak_log("client %u got message %u of room %d as one of room %d", c->idx, msg,
                 ledger_msg_room(msg), cr->room);
        return;
    }
    int n = ledger_count(msg, c->idx);
    if (kind == RX_REPLAY && n > 0) {
        g_st.rx_replay_skipped++; /* a server-initiated joined repeats what we have */
        return;
    }
    if (n == 0 && id <= cr->last_id) {
        if (g_st.rx_out_of_order++ < 20)
            soak_log("OUT OF ORDER: client %u room %d got id %lld after %lld", c->idx, cr->room,
                     (long long)id, (long long)cr->last_id);
    } else if (n > 0) {
        if (g_st.rx_duplicates++ < 20) /* the ledger counts it too */
            soak_log("DUPLICATE: client %u room %d got message %u (id %lld) again (%s)", c->idx,
                     cr->room, msg, (long long)id, kind == RX_LIVE ? "live" : "recovery");
    }
    if (id > cr->last_id + 1)
        g_st.rx_gaps_seen++;
    /* the slow consumer's late reads would only measure its own stall */
    ledger_receive(msg, c->idx, cr->epoch, id, kind == RX_LIVE && !c->slow);
    if (kind == RX_LIVE)
        g_st.rx_live++;
    else
        g_st.rx_recovery++;
    if (id > cr->last_id)
        cr->last_id = id;
    ledger_member_touch(cr->member, msg);
}

static void on_new_message(struct client *c, json_t *p)
{
    struct croom *cr = room_in(c, p);
    if (!cr || cr->st == R_LEAVING)
        return; /* a room being left (or already left) */
    if (cr->st != R_LIVE) {
        g_st.rx_before_joined++;
        if (cr->member < 0)
            return; /* sent before this membership began: nobody expects it here */
    }
    deliver(c, cr, p, RX_LIVE);
}

/* A rejoin (or a server-initiated joined) of a membership that exists. */
static void rejoined(struct client *c, struct croom *cr, json_t *p, bool asked)
{
    const char *epoch = json_string_value(json_object_get(p, "epoch"));
    bool same = epoch && !strcmp(epoch, cr->epoch_s);
    bool recovered = json_is_true(json_object_get(p, "recovered"));
    TRACE(c,
          "client %u: %s joined room %d: %s epoch, recovered %d, %zu messages, last_id %lld "
          "(had %lld)",
          c->idx, asked ? "rejoin:" : "server-sent", cr->room, same ? "same" : "new", recovered,
          json_array_size(json_object_get(p, "messages")),
          (long long)json_integer_value(json_object_get(p, "last_id")), (long long)cr->last_id);
    if (!same)
        g_st.epoch_changes++;
    if (recovered && same)
        g_st.recovered++;
    else
        g_st.not_recovered++;
    if (!(recovered && same)) {
        /* not recovered since the last message it has, which a lagging
         * client may have been sent long before it noticed the break */
        int64_t from = ledger_member_current_to(cr->member);
        if (cr->down_at && cr->down_at < from)
            from = cr->down_at;
        ledger_member_break(cr->member, from);
    }
    if (!same) {
        snprintf(cr->epoch_s, sizeof cr->epoch_s, "%s", epoch ? epoch : "");
        cr->epoch = ledger_epoch(cr->epoch_s);
        cr->last_id = 0;
    }
    json_t *msgs = json_object_get(p, "messages");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) deliver(c, cr, m, asked && recovered ? RX_RECOVERY : RX_REPLAY);
}

static void on_joined(struct client *c, json_t *p)
{
    struct croom *cr = room_in(c, p);
    if (!cr || cr->st == R_LEAVING || cr->st == R_WANT) {
        g_st.rx_stray++;
        return;
    }
    bool asked = cr->st == R_JOINING;
    if (!asked)
        g_st.unasked_joined++;
    if (cr->member < 0) {
        const char *epoch = json_string_value(json_object_get(p, "epoch"));
        cr->member = ledger_member_start(c->idx, cr->room);
        snprintf(cr->epoch_s, sizeof cr->epoch_s, "%s", epoch ? epoch : "");
        cr->epoch = ledger_epoch(cr->epoch_s);
        cr->last_id = 0;
    } else {
        rejoined(c, cr, p, asked);
    }
    json_t *last = json_object_get(p, "last_id");
    if (json_is_integer(last) && json_integer_value(last) > cr->last_id)
        cr->last_id = json_integer_value(last);
    cr->st = R_LIVE;
    cr->req_at = cr->down_at = 0;
    cr->tries = 0;
}

/* ---- answers ---------------------------------------------------------------- */

static struct pend *find_pend(struct client *c, uint32_t msg)
{
    for (int i = 0; i < c->nout; i++)
        if (c->out[i].msg == msg)
            return &c->out[i];
    return NULL;
}

static void remove_pend(struct client *c, struct pend *x)
{
    *x = c->out[--c->nout];
}

static void on_ack(struct client *c, json_t *p)
{
    const char *id = json_string_value(json_object_get(p, "id"));
    unsigned msg;
    if (!id || sscanf(id, "s%u", &msg) != 1 || !ledger_valid(msg)) {
        g_st.rx_unknown++;
        return;
    }
    struct croom *cr = client__find_room(c, ledger_msg_room(msg));
    ledger_acked(msg, json_integer_value(json_object_get(p, "message_id")), cr ? cr->epoch : 0);
    struct pend *x = find_pend(c, msg);
    if (x)
        remove_pend(c, x);
}

static bool retryable(const char *code)
{
    return !strcmp(code, "unavailable") || !strcmp(code, "timeout") || !strcmp(code, "internal") ||
           !strcmp(code, "too_many_requests");
}

static void count_error(const char *code)
{
    if (!strcmp(code, "unavailable"))
        g_st.err_unavailable++;
    else if (!strcmp(code, "timeout"))
        g_st.err_timeout++;
    else if (!strcmp(code, "internal"))
        g_st.err_internal++;
    else if (!strcmp(code, "too_many_requests"))
        g_st.err_busy++;
    else
        g_st.err_other++;
}

static void send_error(struct client *c, const char *code, const char *ref, int64_t now)
{
    unsigned msg;
    struct pend *x = sscanf(ref, "s%u", &msg) == 1 ? find_pend(c, msg) : NULL;
    count_error(code);
    if (!x)
        return;
    x->inflight = false;
    if (retryable(code)) {
        x->retry_at = now + client__backoff_us(x->tries, 200000, 5000000);
        return;
    }
    soak_log("client %u: send %s refused: %s", c->idx, ref, code);
    remove_pend(c, x);
}

static void drop_pends_of(struct client *c, int room)
{
    for (int i = 0; i < c->nout;)
        if (ledger_msg_room(c->out[i].msg) == room)
            remove_pend(c, &c->out[i]);
        else
            i++;
}

static void on_error(struct client *c, json_t *p, int64_t now)
{
    const char *code = json_string_value(json_object_get(p, "code"));
    const char *ref = json_string_value(json_object_get(p, "ref"));
    struct croom *cr = room_in(c, p);
    if (!code)
        code = "?";
    if (!ref) {
        g_st.err_other++;
        soak_log("client %u: error %s without ref", c->idx, code);
    } else if (ref[0] == 's') {
        send_error(c, code, ref, now);
    } else if (ref[0] == 'j' && cr && cr->st == R_JOINING) {
        g_st.join_errors++;
        if (retryable(code)) {
            cr->st = R_WANT;
            cr->req_at = 0;
            cr->retry_at = now + client__backoff_us(cr->tries++, 200000, 5000000);
        } else {
            soak_log("client %u: join of room %d refused: %s", c->idx, cr->room, code);
            if (cr->member >= 0)
                g_st.rejoin_refused++;
            drop_pends_of(c, cr->room);
            client__remove_room(c, cr);
        }
    } else if (ref[0] == 'h') {
        if (c->slow)
            return; /* its flood may be refused (too_many_requests): that is fine */
        g_st.history_errors++;
        if (c->hist_pending)
            c->hist_pending--;
    } else if (ref[0] == 'l' && cr && cr->st == R_LEAVING) {
        client__remove_room(c, cr); /* not a member any more, either way */
    } else {
        g_st.err_other++;
        soak_log("client %u: error %s for %s", c->idx, code, ref);
    }
}

/* A history page must be a run of consecutive ids of this room's messages. */
static void on_history(struct client *c, json_t *p)
{
    if (c->slow)
        return; /* the stalled client's pages are ballast */
    if (c->hist_pending)
        c->hist_pending--;
    int room = client__room_of(json_string_value(json_object_get(p, "room")));
    json_t *msgs = json_object_get(p, "messages");
    bool ok = room >= 0 && json_is_array(msgs);
    int64_t prev = -1;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *text = json_string_value(json_object_get(m, "message"));
        int64_t id = json_integer_value(json_object_get(m, "id"));
        unsigned msg;
        if (!text || sscanf(text, "soak %u", &msg) != 1 || !ledger_valid(msg) ||
            ledger_msg_room(msg) != room || (prev >= 0 && id != prev + 1))
            ok = false;
        prev = id;
    }
    if (ok)
        g_st.history_ok++;
    else if (g_st.history_bad++ < 10)
        soak_log("client %u: a history page of room %d is not a run of its messages", c->idx, room);
}

void client__on_event(struct client *c, json_t *ev, int64_t now)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *p = json_object_get(ev, "payload");
    if (!type || !json_is_object(p)) {
        g_st.rx_unknown++;
        return;
    }
    if (!strcmp(type, "new_message"))
        on_new_message(c, p);
    else if (!strcmp(type, "ack"))
        on_ack(c, p);
    else if (!strcmp(type, "joined"))
        on_joined(c, p);
    else if (!strcmp(type, "error"))
        on_error(c, p, now);
    else if (!strcmp(type, "history"))
        on_history(c, p);
    else if (!strcmp(type, "presence"))
        g_st.presence_events++;
    else if (!strcmp(type, "left")) {
        struct croom *cr = room_in(c, p);
        if (cr && cr->st == R_LEAVING)
            client__remove_room(c, cr);
    } else if (strcmp(type, "typing") != 0)
        g_st.rx_unknown++;
}
