/* Shared machinery of the fault tests (test_faults*.c): a "world" of
 * protocol-v1 clients that behave like a careful real client while the test
 * breaks the servers under them, and a ledger that proves afterwards that no
 * acknowledged message was lost or doubled.
 *
 * Every client keeps, per room, the epoch and the last message id it was
 * given, and an outbox of sends, each with a client id (its text is that id,
 * "<user>:<n>", so any copy of a message names its send). It
 *  - joins every room once (limit 0) and from then on expects ids last+1,
 *    last+2, ... in live new_message events and in the `messages` of any
 *    joined; an id it already had or a jump is recorded as a violation the
 *    moment it arrives (which id, for whom, what it had);
 *  - when its connection ends (killed gateway, 1008, 1012, ...) reconnects,
 *    trying its ports in turn with backoff, rejoins every room with
 *    since/epoch (a recovering join must say recovered:true), and resends
 *    every send it had no answer for with the same id;
 *  - resends a send that got `unavailable`/`timeout`/`internal` after a
 *    backoff; any other error, an error without ref, an ack for a send that
 *    was not waiting, or a send with no answer for 12 s on a live connection
 *    is a violation.
 * At the end f_settle stops new sends and lets every outbox drain and every
 * member catch up; f_verify then checks each member of each room received
 * every acked send exactly once, under the id its ack named, and nothing
 * else.
 *
 * Everything runs in the test's one thread: f_tick polls every client's
 * socket for a few milliseconds, handles what arrived, then reconnects,
 * joins, sends and resends. Traffic is paced (w->interval_ms per sender). */
#ifndef TEST_INTEGRATION_FAULTS_H
#define TEST_INTEGRATION_FAULTS_H

#include "v1.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { F_ROOMS = 4, F_CLIENTS = 16, F_INFLIGHT = 24, F_SILENCE_MS = 12000 };

/* One message as a member received it. */
struct f_msg {
    json_int_t id;
    int epoch_no;
    int sender, n; /* whose send (client index, outbox index) */
};

struct f_room {
    const char *name;
    char epoch[80];
    int epoch_no;    /* epochs seen so far (0: never joined) */
    json_int_t last; /* the last id given to this client in the epoch */
    bool joined;     /* on the current connection */
    bool asked;      /* a join is on its way on the current connection */
    int64_t join_at; /* when to (re)send it */
    int recovered;   /* recovering joins answered recovered:true */
    struct f_msg *got;
    size_t ngot, capgot;
};

enum f_st { F_NEW, F_RETRY, F_PENDING, F_ACKED };

struct f_send {
    int room;
    enum f_st st;
    json_int_t mid;
    int attempts;
    bool silent;    /* already reported as unanswered */
    bool uncertain; /* an attempt's outcome is unknown (timeout, connection lost) */
    int64_t first_us, sent_ms, next_ms;
    int64_t wall_ms; /* CLOCK_REALTIME of the latest attempt */
    char last_error[24];
};

struct f_world;

struct f_client {
    struct f_world *w;
    int idx;
    char user[24];
    enum v1_enc enc;
    int ports[3], nports, porti;
    struct v1c *c;
    int gen; /* connection number */
    int64_t reconnect_ms;
    int connect_failures, reconnects;
    bool sender, measure;
    int64_t next_send_ms;
    int rr;
    struct f_room room[F_ROOMS];
    int nrooms;
    struct f_send *sends;
    int nsends, capsends, inflight;
    int unavailable, timeouts, internal, rate_limited, join_errors;
    int *lat_us[2]; /* send -> receive latency of first attempts, per phase */
    size_t nlat[2], caplat[2];
};

struct f_world {
    const char *rooms[F_ROOMS];
    int nrooms;
    struct f_client *cl[F_CLIENTS];
    int n;
    bool sending;
    int interval_ms; /* between two new sends of one sender */
    int pad;         /* bytes of filler after each message's id */
    int phase;       /* which latency bucket (0 or 1) */
    int violations;
    int64_t t0;
};

/* Recovered joins (joined with recovered: true) of the clients whose names
 * start with user_prefix. */
static inline int f_recovered_joins(const struct f_world *w, const char *user_prefix)
{
    int n = 0;
    for (int i = 0; i < w->n; i++)
        if (!strncmp(w->cl[i]->user, user_prefix, strlen(user_prefix)))
            for (int r = 0; r < w->cl[i]->nrooms; r++)
                n += w->cl[i]->room[r].recovered;
    return n;
}

static inline int64_t f_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t f_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-11-28T10:00:02.500Z" -> ms since the epoch, or -1. */
static inline int64_t f_rfc3339_ms(const char *s)
{
    struct tm tm = {0};
    int ms = 0;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Records (and prints, the first 60) a broken promise. */
static inline void f_bad(struct f_world *w, const char *fmt, ...)
{
    if (w->violations++ < 60) {
        va_list ap;
        va_start(ap, fmt);
        printf("[faults +%lld ms] VIOLATION: ", (long long)(h_now_ms() - w->t0));
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        fflush(stdout);
    }
}

static inline void f_note(struct f_world *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[faults +%lld ms] ", (long long)(h_now_ms() - w->t0));
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

static inline void f_world_init(struct f_world *w, const char *const *rooms, int nrooms)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < nrooms && i < F_ROOMS; i++)
        w->rooms[w->nrooms++] = rooms[i];
    w->interval_ms = 50;
    w->t0 = h_now_ms();
}

/* A client of `user` that will connect to ports[0] (then the others in
 * turn after a failure) and join the world's rooms named in `room_mask`
 * (bit i: room i). Senders send one new message every w->interval_ms. */
static inline struct f_client *f_client_add(struct f_world *w, const char *user,
                                            const int *ports, int nports, unsigned room_mask,
                                            bool sender)
{
    assert_true(w->n < F_CLIENTS && nports >= 1 && nports <= 3);
    struct f_client *fc = calloc(1, sizeof *fc);
    assert_non_null(fc);
    fc->w = w;
    fc->idx = w->n;
    snprintf(fc->user, sizeof fc->user, "%s", user);
    fc->enc = w->n % 2 ? V1_MSGPACK : V1_JSON; /* both encodings take part */
    memcpy(fc->ports, ports, (size_t)nports * sizeof *ports);
    fc->nports = nports;
    fc->sender = sender;
    for (int i = 0; i < w->nrooms; i++)
        if (room_mask & (1u << i))
            fc->room[fc->nrooms++].name = w->rooms[i];
    w->cl[w->n++] = fc;
    return fc;
}

static inline void f_world_free(struct f_world *w)
{
    for (int i = 0; i < w->n; i++) {
        struct f_client *fc = w->cl[i];
        if (fc->c)
            v1_close(fc->c);
        for (int r = 0; r < fc->nrooms; r++)
            free(fc->room[r].got);
        free(fc->sends);
        free(fc->lat_us[0]);
        free(fc->lat_us[1]);
        free(fc);
    }
    w->n = 0;
}

static inline struct f_room *f_room_of(struct f_client *fc, const char *name)
{
    for (int i = 0; name && i < fc->nrooms; i++)
        if (!strcmp(fc->room[i].name, name))
            return &fc->room[i];
    return NULL;
}

/* "<user>:<n>[:filler]" -> the sender's client index and outbox index. */
static inline bool f_parse(struct f_world *w, const char *text, int *sender, int *n)
{
    const char *colon = text ? strchr(text, ':') : NULL;
    if (!colon)
        return false;
    for (int i = 0; i < w->n; i++) {
        struct f_client *s = w->cl[i];
        if (strlen(s->user) == (size_t)(colon - text) && !strncmp(s->user, text, colon - text)) {
            char *end;
            long k = strtol(colon + 1, &end, 10);
            if (end == colon + 1 || (*end && *end != ':') || k < 0 || k >= s->nsends)
                return false;
            *sender = i;
            *n = (int)k;
            return true;
        }
    }
    return false;
}

static inline void f_lat(struct f_client *fc, int us)
{
    int p = fc->w->phase ? 1 : 0;
    if (fc->nlat[p] == fc->caplat[p]) {
        fc->caplat[p] = fc->caplat[p] ? fc->caplat[p] * 2 : 1024;
        fc->lat_us[p] = realloc(fc->lat_us[p], fc->caplat[p] * sizeof(int));
        assert_non_null(fc->lat_us[p]);
    }
    fc->lat_us[p][fc->nlat[p]++] = us;
}

/* One message for `fc` in room r: in a recovering joined (`replay`) or live.
 * It must be the next id; `dedupe` (a joined that replaces the room's state)
 * lets ids the client already has pass silently, as a real client would. */
static inline void f_take(struct f_client *fc, struct f_room *r, json_t *m, bool dedupe,
                          const char *how)
{
    struct f_world *w = fc->w;
    json_int_t id = json_integer_value(json_object_get(m, "id"));
    const char *text = json_string_value(json_object_get(m, "message"));
    if (id <= r->last) {
        if (!dedupe)
            f_bad(w, "%s in %s: id %lld (%s) again in a %s; it already had up to %lld", fc->user,
                  r->name, (long long)id, text ? text : "?", how, (long long)r->last);
        return;
    }
    if (id > r->last + 1)
        f_bad(w, "%s in %s: ids %lld..%lld missing; next came %lld (%s) in a %s", fc->user,
              r->name, (long long)r->last + 1, (long long)id - 1, (long long)id, text ? text : "?",
              how);
    r->last = id;
    struct f_msg got = {id, r->epoch_no, -1, -1};
    if (!f_parse(w, text, &got.sender, &got.n))
        f_bad(w, "%s in %s: id %lld is no message of this test: \"%.40s\"", fc->user, r->name,
              (long long)id, text ? text : "?");
    else if (fc->measure && !dedupe) {
        struct f_send *s = &w->cl[got.sender]->sends[got.n];
        if (s->attempts == 1)
            f_lat(fc, (int)(f_now_us() - s->first_us));
    }
    if (r->ngot == r->capgot) {
        r->capgot = r->capgot ? r->capgot * 2 : 256;
        r->got = realloc(r->got, r->capgot * sizeof *r->got);
        assert_non_null(r->got);
    }
    r->got[r->ngot++] = got;
}

static inline void f_on_joined(struct f_client *fc, struct f_room *r, json_t *ev)
{
    struct f_world *w = fc->w;
    bool asked = r->asked, since = asked && r->epoch_no > 0;
    bool recovered = json_is_true(json_object_get(pl(ev), "recovered"));
    const char *epoch = pstr(ev, "epoch");
    json_int_t last_id = pint(ev, "last_id");
    json_t *msgs = json_object_get(pl(ev), "messages");
    if (!epoch) {
        f_bad(w, "%s: joined %s without an epoch", fc->user, r->name);
        return;
    }
    if (r->epoch_no == 0 || strcmp(epoch, r->epoch) != 0) {
        if (r->epoch_no > 0)
            f_note(w, "%s: room %s has a new epoch %s (was %s, had up to id %lld); %s joined",
                   fc->user, r->name, epoch, r->epoch, (long long)r->last,
                   asked ? "asked" : "unasked");
        /* The first join (limit 0) starts the ledger at last_id; a new epoch
         * starts ids again at 1. */
        r->last = r->epoch_no == 0 ? last_id - (json_int_t)json_array_size(msgs) : 0;
        r->epoch_no++;
        snprintf(r->epoch, sizeof r->epoch, "%s", epoch);
    } else if (since && !recovered) {
        f_bad(w, "%s: rejoin of %s with since %lld, epoch %s: recovered false (last_id %lld)",
              fc->user, r->name, (long long)r->last, epoch, (long long)last_id);
    }
    bool replay = since && recovered;
    for (size_t i = 0; i < json_array_size(msgs); i++)
        f_take(fc, r, json_array_get(msgs, i), !replay,
               replay ? "recovering joined" : (asked ? "joined" : "unasked joined"));
    if (r->last < last_id) {
        f_bad(w, "%s: joined %s says last_id %lld but its messages end at %lld", fc->user,
              r->name, (long long)last_id, (long long)r->last);
        r->last = last_id;
    }
    if (replay)
        r->recovered++;
    r->joined = true;
    r->asked = false;
}

static inline struct f_send *f_send_of(struct f_client *fc, const char *cid)
{
    size_t ul = strlen(fc->user);
    if (!cid || strncmp(cid, fc->user, ul) != 0 || cid[ul] != ':')
        return NULL;
    char *end;
    long k = strtol(cid + ul + 1, &end, 10);
    return *end || k < 0 || k >= fc->nsends ? NULL : &fc->sends[k];
}

/* What a client resends after a backoff (rate_limited: the fault tests turn
 * the gateway's request rate limit off, but a client would slow down). */
static inline bool f_retryable(const char *code)
{
    return code && (!strcmp(code, "unavailable") || !strcmp(code, "timeout") ||
                    !strcmp(code, "internal") || !strcmp(code, "rate_limited"));
}

static inline void f_on_ack(struct f_client *fc, json_t *ev)
{
    const char *cid = pstr(ev, "id");
    struct f_send *s = f_send_of(fc, cid);
    if (!s || s->st != F_PENDING) {
        f_bad(fc->w, "%s: ack for %s, which was not waiting (%s)", fc->user, cid ? cid : "?",
              s ? (s->st == F_ACKED ? "acked already" : "not sent") : "unknown id");
        return;
    }
    if (!pstr(ev, "room") || strcmp(pstr(ev, "room"), fc->room[s->room].name) != 0)
        f_bad(fc->w, "%s: ack for %s names room %s", fc->user, cid, pstr(ev, "room"));
    s->st = F_ACKED;
    s->mid = pint(ev, "message_id");
    fc->inflight--;
    /* `unavailable` means nothing was done: when every earlier attempt got
     * that answer, the message must be the one this attempt stored (the
     * gateway stamps `sent` when the request arrives; 100 ms of slack, and
     * attempts are at least 200 ms apart). */
    int64_t sent = f_rfc3339_ms(pstr(ev, "sent"));
    if (s->attempts > 1 && !s->uncertain && sent >= 0 && sent < s->wall_ms - 100)
        f_bad(fc->w,
              "%s: %s was stored by an attempt that was answered \"%s\" (sent %s, %lld ms "
              "before the attempt that got the ack)",
              fc->user, cid, s->last_error, pstr(ev, "sent"), (long long)(s->wall_ms - sent));
}

static inline void f_on_error(struct f_client *fc, json_t *ev)
{
    struct f_world *w = fc->w;
    const char *code = pstr(ev, "code"), *ref = pstr(ev, "ref");
    int64_t now = h_now_ms();
    if (ref && ref[0] == 'j' && ref[1] == '.') { /* a join: "j.<gen>.<room>" */
        struct f_room *r = f_room_of(fc, pstr(ev, "room"));
        if (!r || !r->asked || !f_retryable(code)) {
            f_bad(w, "%s: error %s for join %s", fc->user, code ? code : "?", ref);
            return;
        }
        fc->join_errors++;
        r->asked = false;
        r->join_at = now + 250;
        return;
    }
    struct f_send *s = f_send_of(fc, ref);
    if (!s || s->st != F_PENDING || !f_retryable(code)) {
        char *d = json_dumps(ev, JSON_COMPACT);
        f_bad(w, "%s: %s (send %s)", fc->user, d, s ? (s->st == F_ACKED ? "acked" : "not sent") : "?");
        free(d);
        if (s && s->st == F_PENDING) {
            s->st = F_RETRY; /* keep going: the test fails anyway */
            s->next_ms = now + 1000;
            fc->inflight--;
        }
        return;
    }
    fc->unavailable += !strcmp(code, "unavailable");
    fc->timeouts += !strcmp(code, "timeout");
    fc->internal += !strcmp(code, "internal");
    fc->rate_limited += !strcmp(code, "rate_limited");
    snprintf(s->last_error, sizeof s->last_error, "%s", code);
    s->uncertain |= !strcmp(code, "timeout") || !strcmp(code, "internal");
    s->st = F_RETRY;
    s->next_ms = now + (s->attempts < 4 ? 100 * (1 << s->attempts) : 1000);
    fc->inflight--;
}

static inline void f_handle(struct f_client *fc, json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    struct f_room *r = f_room_of(fc, pstr(ev, "room"));
    if (!type)
        type = "?";
    if (!strcmp(type, "ack")) {
        f_on_ack(fc, ev);
    } else if (!strcmp(type, "error")) {
        f_on_error(fc, ev);
    } else if (!strcmp(type, "joined") && r) {
        f_on_joined(fc, r, ev);
    } else if (!strcmp(type, "new_message") && r) {
        if (!r->joined)
            f_bad(fc->w, "%s: new_message %lld in %s before its joined", fc->user,
                  (long long)pint(ev, "id"), r->name);
        f_take(fc, r, pl(ev), false, "new_message");
    } else if (strcmp(type, "presence") != 0 && strcmp(type, "typing") != 0) {
        char *d = json_dumps(ev, JSON_COMPACT);
        f_bad(fc->w, "%s: unexpected event %.300s", fc->user, d);
        free(d);
    }
}

/* A connection the server closed or dropped (a close frame was read, or
 * the socket is at its end). */
static inline bool f_conn_ended(struct f_client *fc)
{
    struct wsc *ws = v1_wsc(fc->c);
    if (wsc_close_code(ws))
        return true;
    struct pollfd p = {wsc_fd(ws), POLLIN, 0};
    if (poll(&p, 1, 0) <= 0)
        return false;
    char b;
    ssize_t n = recv(wsc_fd(ws), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static inline void f_lost(struct f_client *fc, const char *why)
{
    int code = wsc_close_code(v1_wsc(fc->c));
    int pending = 0;
    for (int i = 0; i < fc->nsends; i++)
        if (fc->sends[i].st == F_PENDING) {
            fc->sends[i].st = F_RETRY; /* outcome unknown: resend with the same id */
            fc->sends[i].next_ms = 0;
            fc->sends[i].uncertain = true;
            pending++;
        }
    f_note(fc->w, "%s: connection %d ended (%s, close code %d), %d sends unanswered; reconnecting",
           fc->user, fc->gen, why, code, pending);
    v1_abort(fc->c);
    fc->c = NULL;
    fc->inflight = 0;
    for (int i = 0; i < fc->nrooms; i++)
        fc->room[i].joined = fc->room[i].asked = false;
    fc->reconnect_ms = h_now_ms() + 50;
    fc->reconnects++;
}

static inline void f_pump(struct f_client *fc)
{
    if (!fc->c)
        return;
    json_t *ev;
    while ((ev = v1_next(fc->c, 0))) {
        f_handle(fc, ev);
        json_decref(ev);
    }
    if (f_conn_ended(fc))
        f_lost(fc, "read");
}

static inline void f_send_join(struct f_client *fc, struct f_room *r)
{
    char ref[48];
    snprintf(ref, sizeof ref, "j.%d.%s", fc->gen, r->name);
    json_t *p = json_pack("{s:s, s:s}", "room", r->name, "id", ref);
    if (r->epoch_no > 0) {
        json_object_set_new(p, "since", json_integer(r->last));
        json_object_set_new(p, "epoch", json_string(r->epoch));
    } else {
        json_object_set_new(p, "limit", json_integer(0));
    }
    r->asked = true;
    if (v1_send(fc->c, "join", p) < 0)
        f_lost(fc, "write");
}

static inline void f_transmit(struct f_client *fc, int k, int64_t now)
{
    struct f_send *s = &fc->sends[k];
    char cid[40];
    snprintf(cid, sizeof cid, "%s:%d", fc->user, k);
    char *text = malloc(strlen(cid) + (size_t)fc->w->pad + 2);
    assert_non_null(text);
    strcpy(text, cid);
    if (fc->w->pad) {
        size_t l = strlen(text);
        text[l] = ':';
        memset(text + l + 1, 'x', (size_t)fc->w->pad);
        text[l + 1 + fc->w->pad] = '\0';
    }
    if (!s->attempts)
        s->first_us = f_now_us();
    s->attempts++;
    s->st = F_PENDING;
    s->sent_ms = now;
    s->wall_ms = f_wall_ms();
    fc->inflight++;
    json_t *p = json_pack("{s:s, s:s, s:s}", "room", fc->room[s->room].name, "message", text,
                          "id", cid);
    free(text);
    if (v1_send(fc->c, "send", p) < 0)
        f_lost(fc, "write");
}

static inline void f_new_send(struct f_client *fc)
{
    if (fc->nsends == fc->capsends) {
        fc->capsends = fc->capsends ? fc->capsends * 2 : 256;
        fc->sends = realloc(fc->sends, (size_t)fc->capsends * sizeof *fc->sends);
        assert_non_null(fc->sends);
    }
    fc->sends[fc->nsends++] = (struct f_send){.room = fc->rr++ % fc->nrooms, .st = F_NEW};
}

static inline void f_connect(struct f_client *fc, int64_t now)
{
    int port = fc->ports[fc->porti];
    fc->c = v1_open(port, fc->user, fc->enc);
    if (!fc->c) {
        fc->porti = (fc->porti + 1) % fc->nports;
        fc->connect_failures++;
        fc->reconnect_ms = now + (fc->connect_failures < 4 ? 50 << fc->connect_failures : 500);
        return;
    }
    fc->connect_failures = 0;
    fc->gen++;
    if (fc->gen > 1)
        f_note(fc->w, "%s: connected again (connection %d) on port %d", fc->user, fc->gen, port);
    for (int i = 0; i < fc->nrooms; i++)
        fc->room[i].join_at = now;
}

/* Reconnects, joins, and (re)sends what is due. */
static inline void f_service(struct f_client *fc, int64_t now)
{
    struct f_world *w = fc->w;
    if (w->sending && fc->sender && now >= fc->next_send_ms) {
        f_new_send(fc);
        fc->next_send_ms = fc->next_send_ms + w->interval_ms < now ? now + w->interval_ms
                                                                   : fc->next_send_ms + w->interval_ms;
    }
    if (!fc->c) {
        if (now >= fc->reconnect_ms)
            f_connect(fc, now);
        if (!fc->c)
            return;
    }
    for (int i = 0; i < fc->nrooms && fc->c; i++) {
        struct f_room *r = &fc->room[i];
        if (!r->joined && !r->asked && now >= r->join_at)
            f_send_join(fc, r);
    }
    for (int k = 0; k < fc->nsends && fc->c; k++) {
        struct f_send *s = &fc->sends[k];
        if (s->st == F_PENDING && !s->silent && now - s->sent_ms > F_SILENCE_MS) {
            s->silent = true;
            f_bad(w, "%s: send %s:%d has had no answer for %d ms", fc->user, fc->user, k,
                  F_SILENCE_MS);
        }
        if ((s->st == F_NEW || s->st == F_RETRY) && now >= s->next_ms &&
            fc->room[s->room].joined && fc->inflight < F_INFLIGHT)
            f_transmit(fc, k, now);
    }
}

/* Polls every connection for up to ms, then handles everything. */
static inline void f_tick(struct f_world *w, int ms)
{
    struct pollfd p[F_CLIENTS];
    int n = 0;
    for (int i = 0; i < w->n; i++)
        if (w->cl[i]->c)
            p[n++] = (struct pollfd){wsc_fd(v1_wsc(w->cl[i]->c)), POLLIN, 0};
    if (n)
        poll(p, (nfds_t)n, ms);
    else
        h_sleep_ms(ms);
    int64_t now = h_now_ms();
    for (int i = 0; i < w->n; i++) {
        f_pump(w->cl[i]);
        f_service(w->cl[i], now);
    }
}

static inline void f_run(struct f_world *w, int ms)
{
    for (int64_t end = h_now_ms() + ms; h_now_ms() < end;)
        f_tick(w, 5);
}

/* Runs the world until pred(ud) holds (checked every `every_ms`); false on
 * timeout. */
static inline bool f_run_until(struct f_world *w, bool (*pred)(void *), void *ud, int every_ms,
                               int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        if (pred(ud))
            return true;
        if (h_now_ms() >= end)
            return false;
        f_run(w, every_ms);
    }
}

static inline bool f_all_joined(void *ud)
{
    struct f_world *w = ud;
    for (int i = 0; i < w->n; i++)
        for (int r = 0; r < w->cl[i]->nrooms; r++)
            if (!w->cl[i]->room[r].joined)
                return false;
    return true;
}

/* Connects everyone and waits until every client is in all its rooms. */
static inline void f_start(struct f_world *w)
{
    if (!f_run_until(w, f_all_joined, w, 20, 10000))
        fail_msg("the clients did not all join within 10 s");
}

#include "faults_check.h"

#endif
