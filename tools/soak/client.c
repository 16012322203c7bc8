/* client: one simulated protocol-v1 user, driven by the main poll loop.
 *
 * It behaves like frontend/confab-client.js: it keeps every send in an
 * outbox until its ack and resends it with the same id after a reconnect or
 * a retryable error; it reconnects with exponential backoff and full jitter
 * (to the other gateway after a failed attempt); it rejoins its rooms with
 * `since`/`epoch` and drops what a server-initiated `joined` replays. Every
 * delivery goes to the ledger, which decides at the end what was lost.
 *
 * Connecting is blocking (tests/support's v1c on wsc): on loopback that is
 * a millisecond, and a refused connect is immediate. Reading is not: the
 * main loop polls the socket and client_read takes what is there. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clientint.h"
#include "httpc.h"
#include "wsc.h"

static const char *room_name(int room)
{
    static char buf[4][16];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "soak-%02d", room);
    return buf[k];
}

int client__room_of(const char *name)
{
    int r;
    if (!name || sscanf(name, "soak-%d", &r) != 1 || r < 0 || r >= g_cfg.rooms)
        return -1;
    return r;
}

struct croom *client__find_room(struct client *c, int room)
{
    for (int i = 0; i < c->nrooms; i++)
        if (c->rooms[i].room == room)
            return &c->rooms[i];
    return NULL;
}

void client__remove_room(struct client *c, struct croom *cr)
{
    ledger_member_end(cr->member);
    *cr = c->rooms[--c->nrooms];
}

static struct croom *add_room(struct client *c, int room)
{
    struct croom *cr = &c->rooms[c->nrooms++];
    memset(cr, 0, sizeof *cr);
    cr->room = room;
    cr->st = R_WANT;
    cr->member = -1;
    return cr;
}

int64_t client__backoff_us(int tries, int64_t base, int64_t cap)
{
    int64_t d = base;
    for (int i = 0; i < tries && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    return 50000 + (int64_t)(soak_rand01() * (double)d);
}

struct client *client_new(uint32_t idx, bool slow)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c)
        exit(2);
    c->idx = idx;
    c->slow = slow;
    snprintf(c->user, sizeof c->user, "%s%u", slow ? "slow-" : "soak-", idx);
    c->enc = idx % 4 == 3 ? V1_MSGPACK : V1_JSON;
    c->node = (int)(idx % (uint32_t)g_cfg.nports);
    int64_t now = soak_now_us();
    c->next_connect = now + (int64_t)idx * 5000; /* no connect storm at start */
    double per_client = (double)g_cfg.clients / g_cfg.rate;
    c->next_send = c->next_connect + 2000000 + soak_rand_exp_us(per_client);
    c->next_churn = now + soak_rand_exp_us(60);
    c->next_history = now + soak_rand_exp_us(30);
    if (slow) {
        int n = g_cfg.rooms < SOAK_MAX_ROOMS ? g_cfg.rooms : SOAK_MAX_ROOMS;
        for (int r = 0; r < n; r++)
            add_room(c, r);
        return c;
    }
    /* a home room, then up to two more */
    add_room(c, (int)(idx % (uint32_t)g_cfg.rooms));
    int extra = (int)(soak_rand() % 3);
    for (int i = 0; i < extra && c->nrooms < g_cfg.rooms; i++) {
        int r = (int)(soak_rand() % (uint64_t)g_cfg.rooms);
        if (!client__find_room(c, r))
            add_room(c, r);
    }
    return c;
}

void client_free(struct client *c)
{
    if (!c)
        return;
    v1_abort(c->c);
    free(c->token);
    free(c->out);
    free(c);
}

int client_fd(const struct client *c)
{
    if (!c->c || c->stall_until)
        return -1;
    return wsc_fd(v1_wsc(c->c));
}

bool client_is_up(const struct client *c)
{
    return c->c != NULL;
}

/* Settled: connected, nothing outstanding, every room live and caught up
 * with the room's latest acknowledged message (in the same epoch). */
bool client_settled(const struct client *c)
{
    if (!c->c || c->stall_until || c->nout || c->hist_pending)
        return false;
    for (int i = 0; i < c->nrooms; i++) {
        const struct croom *cr = &c->rooms[i];
        int epoch;
        int64_t id;
        ledger_room_last_ack(cr->room, &epoch, &id);
        if (cr->st != R_LIVE || (epoch == cr->epoch && cr->last_id < id))
            return false;
    }
    return true;
}

void client_describe(const struct client *c, int room)
{
    static const char *const st[] = {"want", "joining", "live", "leaving"};
    const struct croom *cr = NULL;
    for (int i = 0; i < c->nrooms; i++)
        if (c->rooms[i].room == room)
            cr = &c->rooms[i];
    int epoch;
    int64_t id;
    ledger_room_last_ack(room, &epoch, &id);
    soak_log("  client %u (%s, %s, node %d): %s, stalled %s; room %d: %s epoch %d last_id %lld; "
             "room's last ack: epoch %d id %lld",
             c->idx, c->user, v1_subprotocol(c->enc), c->node, c->c ? "connected" : "down",
             c->stall_until ? "yes" : "no", room, cr ? st[cr->st] : "not a member",
             cr ? cr->epoch : 0, cr ? (long long)cr->last_id : 0LL, epoch, (long long)id);
}

int client_pending(const struct client *c)
{
    return c->nout;
}

void client_end(struct client *c)
{
    for (int i = 0; i < c->nrooms; i++)
        ledger_member_end(c->rooms[i].member);
}

/* ---- the connection ------------------------------------------------------- */

/* The connection is gone (closed by the server, failed, or given up on):
 * everything in flight waits for the next one. */
static void drop(struct client *c, int64_t now)
{
    TRACE(c, "client %u: connection dropped", c->idx);
    v1_abort(c->c);
    c->c = NULL;
    c->hist_pending = 0;
    c->next_connect = now + client__backoff_us(c->attempt++, 250000, 5000000);
    for (int i = 0; i < c->nrooms;) {
        struct croom *cr = &c->rooms[i];
        if (cr->st == R_LEAVING) {
            client__remove_room(c, cr); /* its membership ended when the leave went out */
            continue;
        }
        if (cr->st != R_WANT)
            cr->down_at = now;
        cr->st = R_WANT;
        cr->req_at = cr->retry_at = 0;
        i++;
    }
    for (int i = 0; i < c->nout; i++)
        c->out[i].inflight = false, c->out[i].retry_at = 0;
}

static int send_req(struct client *c, const char *type, json_t *payload)
{
    if (v1_send(c->c, type, payload) < 0) {
        g_st.drops_eof++;
        drop(c, soak_now_us());
        return -1;
    }
    return 0;
}

static void send_join(struct client *c, struct croom *cr, int64_t now)
{
    char id[32];
    snprintf(id, sizeof id, "j%llu", (unsigned long long)++c->reqno);
    json_t *p = json_pack("{s:s, s:s, s:i}", "room", room_name(cr->room), "id", id, "limit", 0);
    if (cr->member >= 0 && cr->epoch_s[0]) {
        json_object_set_new(p, "since", json_integer(cr->last_id));
        json_object_set_new(p, "epoch", json_string(cr->epoch_s));
        g_st.rejoins++;
    } else {
        g_st.joins++;
    }
    cr->st = R_JOINING;
    cr->req_at = now;
    send_req(c, "join", p);
}

static void connect_now(struct client *c, int64_t now)
{
    int port = g_cfg.ports[c->node];
    if (!c->token)
        c->token = h_login(port, c->user);
    int status = 0;
    c->c = c->token ? v1_open_token(port, c->token, c->enc, NULL, &status) : NULL;
    if (!c->c) {
        g_st.connect_failures++;
        if (status == 401) {
            free(c->token);
            c->token = NULL;
        }
        c->node = (c->node + 1) % g_cfg.nports; /* that gateway may be down: try the other */
        c->next_connect = now + client__backoff_us(c->attempt++, 250000, 5000000);
        return;
    }
    g_st.connects++;
    c->attempt = 0;
    TRACE(c, "client %u: connected to port %d", c->idx, port);
    if (c->slow) {
        int small = 4096; /* so not reading fills the server's queue, not ours */
        setsockopt(wsc_fd(v1_wsc(c->c)), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    for (int i = 0; c->c && i < c->nrooms; i++)
        if (c->rooms[i].st == R_WANT)
            send_join(c, &c->rooms[i], now);
}

static json_t *decode(struct client *c, int op, const char *m, size_t len)
{
    if (v1_encoding(c->c) == V1_JSON)
        return op == WS_TEXT ? json_loadb(m, len, 0, NULL) : NULL;
    return op == WS_BINARY ? v1_from_msgpack(m, len) : NULL;
}

static void closed(struct client *c, int op)
{
    int code = op == WSC_CLOSED ? wsc_close_code(v1_wsc(c->c)) : 0;
    if (code == 1001)
        g_st.closes_1001++;
    else if (code == 1008)
        g_st.closes_1008++;
    else if (code == 1012)
        g_st.closes_1012++;
    else if (code)
        g_st.closes_other++;
    else
        g_st.drops_eof++;
    if (code && code != 1001 && code != 1008 && code != 1012)
        soak_log("client %u: closed with %d", c->idx, code);
    drop(c, soak_now_us());
}

void client_read(struct client *c)
{
    for (int k = 0; c->c && k < 1000; k++) {
        char *m;
        size_t len;
        int op = wsc_recv(v1_wsc(c->c), 0, &m, &len);
        if (op == WSC_TIMEOUT)
            return;
        if (op < 0) {
            closed(c, op);
            return;
        }
        json_t *ev = decode(c, op, m, len);
        free(m);
        if (!ev) {
            g_st.rx_unknown++;
            continue;
        }
        client__on_event(c, ev, soak_now_us());
        json_decref(ev);
    }
}

/* ---- timers ------------------------------------------------------------------- */

static void transmit(struct client *c, struct pend *x, int64_t now)
{
    char id[24], text[256];
    int pad = (int)(soak_rand() % 160);
    int n = snprintf(text, sizeof text, "soak %u ", x->msg);
    for (int i = 0; i < pad && n < (int)sizeof text - 3; i++)
        text[n++] = (char)('a' + (x->msg + (uint32_t)i) % 26);
    if (x->msg % 7 == 0)
        n += snprintf(text + n, sizeof text - (size_t)n, "\xc3\xa9"); /* some UTF-8 */
    text[n] = '\0';
    snprintf(id, sizeof id, "s%u", x->msg);
    if (x->tries++)
        g_st.resends++;
    g_st.transmissions++;
    x->inflight = true;
    x->sent_at = now;
    send_req(c, "send",
             json_pack("{s:s, s:s, s:s}", "room", room_name(ledger_msg_room(x->msg)), "message",
                       text, "id", id));
}

static struct croom *random_live_room(struct client *c)
{
    if (!c->nrooms)
        return NULL;
    struct croom *cr = &c->rooms[soak_rand() % (uint64_t)c->nrooms];
    return cr->st == R_LIVE ? cr : NULL;
}

static void new_send(struct client *c, int64_t now)
{
    struct croom *cr = random_live_room(c);
    if (!cr)
        return;
    if (c->nout == c->capout) {
        c->capout = c->capout ? c->capout * 2 : 8;
        c->out = realloc(c->out, (size_t)c->capout * sizeof *c->out);
    }
    struct pend *x = &c->out[c->nout++];
    memset(x, 0, sizeof *x);
    x->msg = ledger_new_msg(c->idx, cr->room);
    g_st.sends++;
    transmit(c, x, now);
}

static bool has_pends(struct client *c, int room)
{
    for (int i = 0; i < c->nout; i++)
        if (ledger_msg_room(c->out[i].msg) == room)
            return true;
    return false;
}

/* Joins another room or leaves one (never one with sends in flight). */
static void churn(struct client *c, int64_t now)
{
    for (int i = 0; i < c->nrooms; i++)
        if (c->rooms[i].st != R_LIVE)
            return;
    bool join = c->nrooms <= 1 || (c->nrooms < 4 && soak_rand01() < 0.5);
    if (join && c->nrooms < g_cfg.rooms) {
        int r;
        do
            r = (int)(soak_rand() % (uint64_t)g_cfg.rooms);
        while (client__find_room(c, r));
        g_st.room_changes++;
        send_join(c, add_room(c, r), now);
        return;
    }
    struct croom *cr = random_live_room(c);
    if (!cr || has_pends(c, cr->room) || c->nrooms <= 1)
        return;
    char id[32];
    snprintf(id, sizeof id, "l%llu", (unsigned long long)++c->reqno);
    g_st.leaves++;
    g_st.room_changes++;
    ledger_member_end(cr->member);
    cr->st = R_LEAVING;
    cr->req_at = now;
    send_req(c, "leave", json_pack("{s:s, s:s}", "room", room_name(cr->room), "id", id));
}

static void ask_history(struct client *c, int64_t now, int limit)
{
    struct croom *cr = random_live_room(c);
    if (!cr)
        return;
    char id[32];
    snprintf(id, sizeof id, "h%llu", (unsigned long long)++c->reqno);
    json_t *p = json_pack("{s:s, s:s, s:i}", "room", room_name(cr->room), "id", id, "limit", limit);
    if (!c->slow && soak_rand01() < 0.5 && cr->last_id > 1)
        json_object_set_new(p, "before", json_integer(cr->last_id));
    if (!c->slow) {
        if (!c->hist_pending++)
            c->hist_at = now;
        g_st.history_reqs++;
    }
    send_req(c, "history", p);
}

void client_stall(struct client *c, double seconds)
{
    c->stall_until = soak_now_us() + (int64_t)(seconds * 1e6);
    c->next_stall_hist = 0;
}

/* A request the server never answered: a bug. Counted, then the connection
 * is dropped so the client can carry on. */
static bool overdue(struct client *c, int64_t now)
{
    for (int i = 0; i < c->nout; i++)
        if (c->out[i].inflight && now - c->out[i].sent_at > ANSWER_DEADLINE_US) {
            g_st.unanswered_sends++;
            soak_log("UNANSWERED: client %u send s%u (room %d) had no answer in 20 s", c->idx,
                     c->out[i].msg, ledger_msg_room(c->out[i].msg));
            return true;
        }
    for (int i = 0; i < c->nrooms; i++)
        if (c->rooms[i].req_at && now - c->rooms[i].req_at > ANSWER_DEADLINE_US) {
            g_st.unanswered_other++;
            soak_log("UNANSWERED: client %u %s of room %d had no answer in 20 s", c->idx,
                     c->rooms[i].st == R_LEAVING ? "leave" : "join", c->rooms[i].room);
            return true;
        }
    if (c->hist_pending && now - c->hist_at > ANSWER_DEADLINE_US) {
        g_st.unanswered_other++;
        soak_log("UNANSWERED: client %u history had no answer in 20 s", c->idx);
        return true;
    }
    return false;
}

/* The slow consumer: not reading, it asks for the largest history pages so
 * the server's queue for it grows until the server cuts it off (1008). */
static bool stalled(struct client *c, int64_t now)
{
    if (!c->stall_until)
        return false;
    if (now >= c->stall_until) {
        c->stall_until = 0;
        TRACE(c, "client %u: reading again", c->idx);
        for (int i = 0; i < c->nrooms; i++) /* the deadlines start again now */
            if (c->rooms[i].req_at)
                c->rooms[i].req_at = now;
        return false;
    }
    if (c->c && now >= c->next_stall_hist) {
        c->next_stall_hist = now + STALL_HISTORY_US;
        ask_history(c, now, 100);
    }
    return true;
}

static void run_outbox(struct client *c, int64_t now)
{
    for (int i = 0; c->c && i < c->nout; i++) {
        struct pend *x = &c->out[i];
        struct croom *cr = client__find_room(c, ledger_msg_room(x->msg));
        if (!x->inflight && now >= x->retry_at && cr && cr->st == R_LIVE)
            transmit(c, x, now);
    }
}

void client_tick(struct client *c, int64_t now)
{
    if (!c->c) {
        if (now >= c->next_connect)
            connect_now(c, now);
        return;
    }
    if (stalled(c, now))
        return;
    if (overdue(c, now)) {
        g_st.aborts++;
        drop(c, now);
        return;
    }
    for (int i = 0; c->c && i < c->nrooms; i++)
        if (c->rooms[i].st == R_WANT && now >= c->rooms[i].retry_at)
            send_join(c, &c->rooms[i], now);
    run_outbox(c, now);
    if (!c->c || g_phase != PHASE_TRAFFIC || c->slow)
        return;
    if (now >= c->next_send) {
        new_send(c, now);
        c->next_send += soak_rand_exp_us((double)g_cfg.clients / g_cfg.rate);
        if (c->next_send < now)
            c->next_send = now; /* after a long outage, no burst of catch-up sends */
    }
    if (c->c && now >= c->next_churn) {
        c->next_churn = now + soak_rand_exp_us(60);
        churn(c, now);
    }
    if (c->c && now >= c->next_history) {
        c->next_history = now + soak_rand_exp_us(30);
        ask_history(c, now, 20);
    }
}
