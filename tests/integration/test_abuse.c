/* Abuse limits, as a client sees them: RATE_MSGS per connection (an error
 * event, then close 1008), per address limits on connections, logins and
 * upgrades (HTTP 429 with Retry-After; other addresses unaffected), the
 * handshake time limit, and no token or secret in any log line. */
#include "v1.h"

#include "prom.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static struct h_fixture fx;

static int up(const char *const env[])
{
    return h_fixture_up(&fx, env);
}

static int teardown(void **state)
{
    (void)state;
    return h_fixture_down(&fx);
}

static int setup_rate(void **state)
{
    (void)state;
    static const char *const env[] = {"RATE_MSGS=5", "RATE_BURST=5", NULL};
    return up(env);
}

static int setup_keepalive(void **state)
{
    (void)state;
    static const char *const env[] = {"RATE_MSGS=1", "RATE_BURST=1", "PING_INTERVAL=1", NULL};
    return up(env);
}

static int setup_addr(void **state)
{
    (void)state;
    static const char *const env[] = {"MAX_CONNS_PER_IP=3", "LOGIN_RATE=1", "LOGIN_BURST=3",
                                      "UPGRADE_RATE=1", "UPGRADE_BURST=20", NULL};
    return up(env);
}

static int setup_upgrades(void **state)
{
    (void)state;
    static const char *const env[] = {"UPGRADE_RATE=1", "UPGRADE_BURST=2", NULL};
    return up(env);
}

static int setup_handshake(void **state)
{
    (void)state;
    static const char *const env[] = {"HANDSHAKE_TIMEOUT=2", NULL};
    return up(env);
}

static int setup_logs(void **state)
{
    (void)state;
    static const char *const env[] = {"LOG_LEVEL=debug", "API_KEY=abuse-test-api-key-0123456789",
                                      NULL};
    return up(env);
}

/* A TCP connection to 127.0.0.1:port from source address `from`. */
static int connect_from(const char *from, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)port);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0 ||
        connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends `req` from `from` and returns the status of the answer (0 when the
 * connection closed without one); the whole answer goes to out. */
static int request_from(const char *from, int port, const char *req, char *out, size_t cap)
{
    int fd = connect_from(from, port);
    assert_true(fd >= 0);
    h_send_all(fd, req, strlen(req)); /* may fail: a refused connection is closed at once */
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = recv(fd, out + len, cap - 1 - len, 0)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fd);
    int status = 0;
    sscanf(out, "HTTP/1.1 %d", &status);
    return status;
}

static const char healthz[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

static json_t *send_msg(struct v1c *c, const char *room, const char *id, const char *text)
{
    assert_int_equal(
        v1_send(c, "send", json_pack("{s:s, s:s, s:s}", "room", room, "id", id, "message", text)),
        0);
    return NULL;
}

static void join(struct v1c *c, const char *room)
{
    assert_int_equal(v1_send(c, "join", json_pack("{s:s}", "room", room)), 0);
    json_t *ev = v1_wait(c, V1_WAIT, "joined", "room", room, NULL);
    V1_MUST(c, ev, "joined");
    json_decref(ev);
}

/* ---- RATE_MSGS ------------------------------------------------------------ */

static void test_requests_over_the_rate_get_an_error_then_a_close(void **state)
{
    (void)state;
    struct v1c *a = v1_member(fx.node.port, "rater", V1_JSON);
    struct v1c *b = v1_member(fx.node.port, "watcher", V1_MSGPACK);
    join(a, "rl"); /* one of a's five */
    join(b, "rl");
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "m-%d", i);
        send_msg(a, "rl", id, "hello");
    }
    int acks = 0, refused = 0;
    for (int i = 0; i < 10; i++) {
        json_t *ev = v1_wait(a, V1_WAIT, NULL, NULL);
        V1_MUST(a, ev, "an answer to each send");
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (!strcmp(type, "ack")) {
            acks++;
        } else if (!strcmp(type, "error")) {
            assert_string_equal(pstr(ev, "code"), "rate_limited");
            assert_non_null(pstr(ev, "ref")); /* the client can tell which send it was */
            assert_string_equal(pstr(ev, "room"), "rl");
            refused++;
        } else {
            i--; /* its own new_message events */
        }
        json_decref(ev);
    }
    /* burst 5, minus the join; a token may have refilled meanwhile */
    assert_in_range(acks, 4, 5);
    assert_int_equal(acks + refused, 10);
    /* the other member sees exactly the accepted ones */
    assert_int_equal(v1_count(b, 1000, "new_message", NULL), acks);

    /* after a pause the budget is back */
    h_sleep_ms(1200);
    v1_forget(a);
    send_msg(a, "rl", "later", "after a pause");
    json_t *ev = v1_wait(a, V1_WAIT, "ack", NULL);
    V1_MUST(a, ev, "ack after a pause");
    json_decref(ev);

    /* going on regardless, after being told, for over a second: 1008 */
    int64_t t0 = h_now_ms();
    for (int i = 0; h_now_ms() - t0 < 3000; i++, h_sleep_ms(20)) {
        snprintf(id, sizeof id, "f-%d", i);
        if (v1_send(a, "send", json_pack("{s:s, s:s, s:s}", "room", "rl", "id", id, "message",
                                         "flood")) < 0)
            break;
    }
    assert_int_equal(wsc_wait_close(v1_wsc(a), V1_WAIT), 1008);
    v1_abort(a);
    /* b is fine */
    send_msg(b, "rl", "b-1", "still here");
    ev = v1_wait(b, V1_WAIT, "ack", NULL);
    V1_MUST(b, ev, "b's ack");
    json_decref(ev);
    v1_close(b);
}

static void test_a_flooding_legacy_client_is_closed(void **state)
{
    (void)state;
    struct wsc *f = member(fx.node.port, "flooder", "lflood");
    struct wsc *w = member(fx.node.port, "listener", "lflood");
    ready(w, "listening"); /* its join is live (the flooder's sends name the room) */
    h_sleep_ms(300);       /* the flooder's change_room took one of its 5: back at 5/s */
    int64_t t0 = h_now_ms();
    for (int i = 0; i < 1000 && h_now_ms() - t0 < 3000; i++, h_sleep_ms(5))
        if (wsc_send_event(f, "send_message", "message", "spam") < 0)
            break;
    assert_int_equal(wsc_wait_close(f, V1_WAIT), 1008);
    /* the listener heard at most the budget: burst plus what refilled */
    int heard = 0, op;
    char *m;
    while ((op = wsc_recv(w, 500, &m, NULL)) > 0) {
        heard++;
        free(m);
    }
    assert_int_equal(op, WSC_TIMEOUT); /* not closed: only the flooder was */
    assert_in_range(heard, 5, 5 + 5 * 3);
    wsc_close(w);
    wsc_abort(f);
}

/* Pings and pongs cost a request token each: a client pinging now and then
 * goes on as before, one flooding them is closed like a request flood (they
 * cost the gateway a read and a pong each, and used to be unlimited). */
static void test_a_ping_flood_is_closed(void **state)
{
    (void)state;
    struct v1c *a = v1_member(fx.node.port, "pinger", V1_JSON);
    join(a, "pings"); /* one of its five */
    for (int i = 0; i < 2; i++)
        assert_int_equal(wsc_send_frame(v1_wsc(a), WS_PING, true, "hi", 2), 0);
    send_ok(a, "pings", "still served", "after-pings");

    struct v1c *f = v1_member(fx.node.port, "ping-flooder", V1_MSGPACK);
    long mark = h_log_mark(&fx.node.gateway);
    int64_t t0 = h_now_ms();
    for (int i = 0; i < 5000 && h_now_ms() - t0 < 3000; i++, h_sleep_ms(1))
        if (wsc_send_frame(v1_wsc(f), WS_PING, true, "", 0) < 0)
            break;
    assert_int_equal(wsc_wait_close(v1_wsc(f), V1_WAIT), 1008);
    assert_true(h_log_contains_from(&fx.node.gateway, mark, "kept sending pings or pongs", 2000));
    v1_abort(f);
    send_ok(a, "pings", "still here", "after-flood"); /* the other client is fine */
    v1_close(a);
}

/* Waits for the server's next keep-alive ping (the client answers nothing
 * by itself: autopong is off). */
static void wait_ping(struct wsc *w)
{
    unsigned before = wsc_pings(w);
    for (int64_t end = h_now_ms() + 5000; wsc_pings(w) == before && h_now_ms() < end;) {
        char *m = NULL;
        size_t n;
        if (wsc_recv(w, 100, &m, &n) >= 0)
            free(m); /* no room joined: nothing else comes */
    }
    assert_true(wsc_pings(w) > before);
}

/* The pong that answers the server's keep-alive ping is the server's asking:
 * it costs the client no request token. With a budget of one, a request
 * right after that pong is served; with a pong of the client's own beside
 * it, the request is refused (so a pong does cost a token otherwise). */
static void test_the_pong_to_a_keepalive_ping_is_free(void **state)
{
    (void)state;
    struct v1c *a = v1_member(fx.node.port, "keeper", V1_JSON);
    struct wsc *w = v1_wsc(a);
    wsc_set_autopong(w, false);

    wait_ping(w); /* idle over a second: the bucket holds its one token */
    assert_int_equal(wsc_send_frame(w, WS_PONG, true, "", 0), 0);
    assert_int_equal(v1_send(a, "ping", json_pack("{s:s}", "id", "p-owed")), 0);
    json_t *ev = v1_wait(a, V1_WAIT, NULL, NULL);
    V1_MUST(a, ev, "an answer to the ping request");
    if (strcmp(json_string_value(json_object_get(ev, "type")), "pong"))
        fail_msg("a request after the owed pong was refused: %s", pstr(ev, "code"));
    json_decref(ev);

    wait_ping(w);
    assert_int_equal(wsc_send_frame(w, WS_PONG, true, "", 0), 0);
    assert_int_equal(wsc_send_frame(w, WS_PONG, true, "mine", 4), 0);
    assert_int_equal(v1_send(a, "ping", json_pack("{s:s}", "id", "p-extra")), 0);
    ev = v1_wait(a, V1_WAIT, "error", "ref", "p-extra", NULL);
    V1_MUST(a, ev, "the request after an extra pong refused");
    assert_string_equal(pstr(ev, "code"), "rate_limited");
    json_decref(ev);
    v1_close(a);
}

/* ---- per address ------------------------------------------------------------ */

static void test_connections_per_address_are_limited(void **state)
{
    (void)state;
    char out[2048];
    int port = fx.node.port;
    /* three connections held open from 127.0.0.1 */
    int held[3];
    for (int i = 0; i < 3; i++) {
        held[i] = connect_from("127.0.0.1", port);
        assert_true(held[i] >= 0);
    }
    /* the gateway counts a connection when it accepts it: the 4th is refused
     * with a real answer */
    int status = 0;
    for (int64_t end = h_now_ms() + 5000; h_now_ms() < end && status != 429;)
        status = request_from("127.0.0.1", port, healthz, out, sizeof out);
    assert_int_equal(status, 429);
    assert_non_null(strstr(out, "too many connections from your address"));
    assert_non_null(strcasestr(out, "retry-after:"));
    /* another address is not affected */
    assert_int_equal(request_from("127.0.0.2", port, healthz, out, sizeof out), 200);
    /* closing one frees its place */
    close(held[0]);
    status = 0;
    for (int64_t end = h_now_ms() + 5000; h_now_ms() < end && status != 200; h_sleep_ms(50))
        status = request_from("127.0.0.1", port, healthz, out, sizeof out);
    assert_int_equal(status, 200);
    close(held[1]);
    close(held[2]);
    struct h_resp r;
    for (int64_t end = h_now_ms() + 5000; h_now_ms() < end; h_sleep_ms(50)) {
        if (h_http(port, "GET", "/metrics", NULL, NULL, 0, &r) == 0 && r.status == 200)
            break;
        h_resp_free(&r);
    }
    assert_int_equal(r.status, 200);
    assert_true(prom_sum(r.body, "confab_gateway_refused_total", "reason=\"max_conns_per_ip\"",
                         NULL) >= 1);
    h_resp_free(&r);
}

static void test_logins_per_address_are_limited(void **state)
{
    (void)state;
    char out[2048];
    static const char login[] = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                "application/json\r\nContent-Length: 20\r\nConnection: "
                                "close\r\n\r\n{\"username\":\"alice\"}";
    int ok = 0, status = 0;
    for (int i = 0; i < 10 && (status = request_from("127.0.0.3", fx.node.port, login, out,
                                                    sizeof out)) == 200;
         i++)
        ok++;
    assert_in_range(ok, 3, 4); /* burst 3, perhaps one refilled */
    assert_int_equal(status, 429);
    assert_non_null(strstr(out, "too many logins"));
    assert_int_equal(h_header_count(out, "connection"), 1); /* its body is not read */
    char *ra = strcasestr(out, "retry-after:");
    assert_non_null(ra);
    assert_true(atoi(ra + 12) >= 1);
    /* others can still log in */
    assert_int_equal(request_from("127.0.0.4", fx.node.port, login, out, sizeof out), 200);
    /* and so can this address once a token refilled (1 per second) */
    h_sleep_ms(1100);
    assert_int_equal(request_from("127.0.0.3", fx.node.port, login, out, sizeof out), 200);
}

static void test_upgrades_per_address_are_limited(void **state)
{
    (void)state;
    char *token = h_login(fx.node.port, "upper");
    assert_non_null(token);
    int status = 0, opened = 0;
    struct v1c *c[4] = {0};
    for (int i = 0; i < 4; i++) {
        c[i] = v1_open_token(fx.node.port, token, V1_JSON, NULL, &status);
        if (!c[i])
            break;
        opened++;
    }
    assert_in_range(opened, 2, 3);
    assert_int_equal(status, 429);
    for (int i = 0; i < 4; i++)
        v1_close(c[i]);
    /* a second later one more is allowed */
    h_sleep_ms(1100);
    struct v1c *again = v1_open_token(fx.node.port, token, V1_JSON, NULL, &status);
    assert_non_null(again);
    v1_close(again);
    free(token);
}

/* ---- handshake time ------------------------------------------------------------ */

/* ms until the server closes fd, sending `dribble` one byte every 250 ms
 * meanwhile (NULL: nothing); -1 when it stays open for 8 s. What the server
 * sent meanwhile goes to got[cap] (NUL-terminated), unless got is NULL. */
static int64_t close_after(int fd, const char *dribble, char *got, size_t cap)
{
    int64_t t0 = h_now_ms();
    size_t at = 0, have = 0;
    while (h_now_ms() - t0 < 8000) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 250) > 0) {
            char buf[512];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0)
                return h_now_ms() - t0;
            for (ssize_t i = 0; got && i < n && have + 1 < cap; i++)
                got[have++] = buf[i];
            if (got)
                got[have] = '\0';
        }
        if (dribble && dribble[at])
            send(fd, dribble + at++, 1, MSG_NOSIGNAL);
    }
    return -1;
}

static int64_t time_to_close(int fd, const char *dribble)
{
    return close_after(fd, dribble, NULL, 0);
}

/* A body sent a byte at a time gets the whole HANDSHAKE_TIMEOUT, not one
 * per byte (lws restarts its own timeout at each); a body that no route
 * reads is not read at all: the answer closes the connection. */
static void test_request_bodies_must_come_in_time(void **state)
{
    (void)state;
    static const char slow_body[] = "{\"username\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    static const char post[] = "POST /login HTTP/1.1\r\nHost: localhost\r\n"
                               "Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n";
    char got[1024];
    int fd = h_tcp_connect(fx.node.port, 0);
    assert_int_equal(h_send_all(fd, post, strlen(post)), 0);
    int64_t ms = close_after(fd, slow_body, got, sizeof got);
    close(fd);
    if (ms < 0 || ms > 4500)
        fail_msg("a login body sent a byte at a time was allowed %lld ms (HANDSHAKE_TIMEOUT=2)",
                 (long long)ms);
    if (strncmp(got, "HTTP/1.1 408", 12) || !strstr(got, "HANDSHAKE_TIMEOUT"))
        fail_msg("a late body got: %s", got);

    static const struct {
        const char *request, *status;
    } unread[] = {
        {"PUT /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 999999999\r\n\r\n",
         "HTTP/1.1 405"},
        {"POST /api/publish HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n",
         "HTTP/1.1 404"}, /* API_KEY is unset here */
        {"GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n",
         "HTTP/1.1 200"},
        {"GET /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n",
         "HTTP/1.1 200"},
        {"GET /nope HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
         "HTTP/1.1 404"},
        {"HEAD /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n",
         "HTTP/1.1 200"},
        /* no length: lws takes what follows as a body of up to 100 MiB */
        {"POST /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n", "HTTP/1.1 405"},
        {"DELETE /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n",
         "HTTP/1.1 405"},
    };
    for (size_t i = 0; i < sizeof unread / sizeof unread[0]; i++) {
        fd = h_tcp_connect(fx.node.port, 0);
        assert_int_equal(h_send_all(fd, unread[i].request, strlen(unread[i].request)), 0);
        ms = close_after(fd, slow_body, got, sizeof got);
        close(fd);
        if (ms < 0 || ms > 1500 || strncmp(got, unread[i].status, strlen(unread[i].status)) ||
            !strcasestr(got, "connection: close"))
            fail_msg("%.20s... with a body no route reads: closed after %lld ms, got: %s",
                     unread[i].request, (long long)ms, got);
    }
    /* a body of length 0 is none: the connection is kept for the next */
    static const char empty[] =
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";
    fd = h_tcp_connect(fx.node.port, 0);
    assert_int_equal(h_send_all(fd, empty, strlen(empty)), 0);
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 12);
    buf[n] = '\0';
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
    assert_null(strcasestr(buf, "connection: close"));
    close(fd);
}

static void test_handshakes_must_finish_in_time(void **state)
{
    (void)state;
    /* silent */
    int fd = h_tcp_connect(fx.node.port, 0);
    int64_t ms = time_to_close(fd, NULL);
    close(fd);
    if (ms < 1000 || ms > 4500)
        fail_msg("a silent connection was closed after %lld ms (HANDSHAKE_TIMEOUT=2)",
                 (long long)ms);
    /* headers dribbled a byte at a time, never finishing within the limit */
    fd = h_tcp_connect(fx.node.port, 0);
    ms = time_to_close(fd, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    close(fd);
    if (ms < 0 || ms > 4500)
        fail_msg("a slowly sent request was allowed %lld ms (HANDSHAKE_TIMEOUT=2)",
                 (long long)ms);
    /* an established WebSocket is not subject to it */
    struct v1c *c = v1_member(fx.node.port, "patient", V1_JSON);
    h_sleep_ms(3000);
    join(c, "slow-room");
    v1_close(c);
}

/* ---- logs ------------------------------------------------------------------ */

static void test_no_token_or_secret_in_the_logs(void **state)
{
    (void)state;
    char *token = h_login(fx.node.port, "secretive");
    assert_non_null(token);
    struct v1c *c = v1_open_token(fx.node.port, token, V1_JSON, NULL, NULL);
    assert_non_null(c);
    join(c, "quiet");
    v1_close(c);
    /* a refused token, in the query and in a header */
    char bad[4096];
    snprintf(bad, sizeof bad, "%sx", token);
    int status = 0;
    assert_null(v1_open_token(fx.node.port, bad, V1_JSON, NULL, &status));
    assert_int_equal(status, 401);
    struct h_resp r;
    assert_int_equal(h_http(fx.node.port, "POST", "/api/publish",
                            "Authorization: Bearer abuse-test-api-key-0123456789\r\n"
                            "Content-Type: application/json\r\n",
                            "{\"room\":\"quiet\",\"message\":\"hi\"}", 31, &r),
                     0);
    h_resp_free(&r);
    assert_int_equal(h_http(fx.node.port, "POST", "/api/publish",
                            "Authorization: Bearer wrong-key-wrong-key-wrong\r\n", "{}", 2, &r),
                     0);
    h_resp_free(&r);
    h_sleep_ms(300);
    const char *sig = strrchr(token, '.') + 1;
    const char *secrets[] = {sig, H_JWT_SECRET, "abuse-test-api-key-0123456789",
                             "wrong-key-wrong-key-wrong"};
    assert_true(h_log_contains(&fx.node.gateway, "conn ", 0)); /* the log is being written */
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        if (h_log_contains(&fx.node.gateway, secrets[i], 0))
            fail_msg("the gateway log contains a secret: %.12s...", secrets[i]);
    for (int i = 0; i < fx.node.brokers; i++)
        assert_false(h_log_contains(&fx.node.broker[i], sig, 0));
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_requests_over_the_rate_get_an_error_then_a_close,
                                        setup_rate, teardown),
        cmocka_unit_test_setup_teardown(test_a_flooding_legacy_client_is_closed, setup_rate,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_ping_flood_is_closed, setup_rate, teardown),
        cmocka_unit_test_setup_teardown(test_the_pong_to_a_keepalive_ping_is_free, setup_keepalive,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connections_per_address_are_limited, setup_addr,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_logins_per_address_are_limited, setup_addr, teardown),
        cmocka_unit_test_setup_teardown(test_upgrades_per_address_are_limited, setup_upgrades,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_request_bodies_must_come_in_time, setup_handshake,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_handshakes_must_finish_in_time, setup_handshake,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_token_or_secret_in_the_logs, setup_logs, teardown),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
