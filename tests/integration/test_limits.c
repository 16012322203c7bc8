/* Inbound and outbound limits of client WebSockets: frame size (1009),
 * UTF-8 (1007), slow consumers (1008, bounded memory, nobody else waits),
 * and dead peers found by ping/pong. */
#include "common.h"

#include <dirent.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static struct h_fixture fx;

static int setup(void **state)
{
    (void)state;
    /* Pings stay at their default here: a stalled test client must be dropped
     * for its queue, not for missed pongs (test_dead_peers has its own node). */
    static const char *const node_env[] = {"MAX_CLIENT_QUEUE_BYTES=32768", "DRAIN_TIMEOUT_MS=0",
                                           NULL};
    return h_fixture_up(&fx, node_env);
}

static int teardown(void **state)
{
    (void)state;
    return h_fixture_down(&fx);
}

/* A send_message frame of exactly `size` bytes. */
static char *frame_of_size(size_t size)
{
    const char *head = "{\"type\":\"send_message\",\"payload\":{\"message\":\"";
    const char *tail = "\"}}";
    char *f = malloc(size + 1);
    size_t h = strlen(head), t = strlen(tail);
    memcpy(f, head, h);
    memset(f + h, 'x', size - h - t);
    memcpy(f + size - t, tail, t + 1);
    return f;
}

static void test_frame_at_the_limit_is_fine_over_it_is_1009(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "alice", NULL);
    char *ok = frame_of_size(4096);
    assert_int_equal(wsc_send_text(a, ok), 0);
    json_t *ev = wsc_recv_json(a, 5000);
    assert_non_null(ev);
    assert_int_equal(strlen(payload_str(ev, "message")), 4096 - 48);
    json_decref(ev);
    free(ok);

    char *big = frame_of_size(4097);
    assert_int_equal(wsc_send_text(a, big), 0);
    assert_int_equal(wsc_wait_close(a, 5000), 1009);
    wsc_abort(a);
    free(big);

    /* The same total split into fragments is still too big. */
    a = member(fx.node.port, "alice", NULL);
    char part[2100];
    memset(part, 'y', sizeof part);
    assert_int_equal(wsc_send_frame(a, WS_TEXT, false, part, sizeof part), 0);
    assert_int_equal(wsc_send_frame(a, WS_CONT, true, part, sizeof part), 0);
    assert_int_equal(wsc_wait_close(a, 5000), 1009);
    wsc_abort(a);

    /* Fragments adding up to an acceptable size are reassembled. */
    a = member(fx.node.port, "alice", NULL);
    const char *p1 = "{\"type\":\"send_message\",", *p2 = "\"payload\":{\"message\":\"joined\"}}";
    assert_int_equal(wsc_send_frame(a, WS_TEXT, false, p1, strlen(p1)), 0);
    assert_int_equal(wsc_send_frame(a, WS_CONT, true, p2, strlen(p2)), 0);
    expect_message(a, "joined", "alice");
    wsc_close(a);
}

static void test_invalid_utf8_is_1007(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "alice", NULL);
    const char bad[] = "{\"type\":\"send_message\",\"payload\":{\"message\":\"\xc3\x28\"}}";
    assert_int_equal(wsc_send_frame(a, WS_TEXT, true, bad, sizeof bad - 1), 0);
    assert_int_equal(wsc_wait_close(a, 5000), 1007);
    wsc_abort(a);
}

/* A legacy client (in "general") whose socket's receive buffer is 4 KB. */
static struct wsc *small_window_member(const char *user)
{
    char *token = h_login(fx.node.port, user), path[4200];
    snprintf(path, sizeof path, "/ws?token=%s", token);
    free(token);
    struct wsc *c = wsc_connect(fx.node.port, path, NULL, 4096, NULL);
    assert_non_null(c);
    return c;
}

static void test_slow_consumer_is_dropped_and_nobody_waits(void **state)
{
    (void)state;
    /* The slow one has a tiny receive window and never reads. */
    struct wsc *slow = small_window_member("slowpoke");
    struct wsc *sender = member(fx.node.port, "sender", NULL),
               *fast = member(fx.node.port, "fast", NULL);
    /* everyone in "general"; make sure the joins are done */
    say(sender, "hello");
    expect_message(sender, "hello", "sender");
    expect_message(fast, "hello", "sender");

    /* Flood until the gateway gives up on the slow one (the kernel buffers an
     * unknown amount first), at most 20000 messages of 1 KB. */
    enum { MAX = 20000 };
    char text[1100];
    memset(text, 'z', 1000);
    int64_t t0 = h_now_ms();
    long mark = h_log_mark(&fx.node.gateway);
    bool dropped = false;
    int sent = 0;
    while (sent < MAX && !dropped) {
        snprintf(text + 1000, 100, "-%d", sent++);
        say(sender, text);
        /* The fast reader keeps up: every message arrives, in order. */
        json_t *ev = wsc_recv_json(fast, 5000);
        assert_non_null(ev);
        assert_string_equal(payload_str(ev, "message"), text);
        json_decref(ev);
        /* The sender reads its own copy too (and so answers pings). */
        ev = wsc_recv_json(sender, 5000);
        assert_non_null(ev);
        json_decref(ev);
        if (sent % 100 == 0)
            dropped = h_log_contains_from(&fx.node.gateway, mark, "slow consumer", 0);
    }
    printf("fast reader got %d messages in %lld ms while a slow reader stalled\n", sent,
           (long long)(h_now_ms() - t0));
    /* What waited for it is bounded by its queue (32 KiB here) and a kernel
     * send buffer of the same size (doubled), not by the kernel's
     * autotuning: on loopback that reaches 4 MiB at once, about 4000 of these
     * messages, a client minutes behind before it was let go. */
    assert_true(sent <= 1000);

    /* The gateway gave up on the slow one with 1008 (or, if even the close
     * frame could not be sent, by dropping the connection). */
    assert_true(dropped);
    int code = wsc_wait_close(slow, 10000);
    assert_true(code == 1008 || code == 0);
    wsc_abort(slow);
    wsc_close(sender);
    wsc_close(fast);
}

/* A burst that passes the queue bound (32 KiB here) within one loop pass of
 * the gateway goes to clients whose sockets take it: they read, so they are
 * not slow consumers. Before, a sender within its rate limit could have every
 * member of its room dropped with 1008, itself included. */
static void test_a_burst_past_the_queue_bound_reaches_readers(void **state)
{
    (void)state;
    struct wsc *sender = member(fx.node.port, "burster", "burst"),
               *reader = member(fx.node.port, "reader", "burst");
    say(sender, "ready");
    expect_message(sender, "ready", "burster");
    expect_message(reader, "ready", "burster");

    /* 30 messages of 3 KB in one write (within RATE_BURST): 90 KB for each
     * member, nearly three times the bound, sent before anyone reads. */
    enum { N = 30, LEN = 3000 };
    static char texts[N][LEN + 1], frames[N][LEN + 64];
    const char *out[N];
    for (int i = 0; i < N; i++) {
        int n = snprintf(texts[i], sizeof texts[i], "%d-", i);
        memset(texts[i] + n, 'b', LEN - (size_t)n);
        texts[i][LEN] = '\0';
        snprintf(frames[i], sizeof frames[i],
                 "{\"type\":\"send_message\",\"payload\":{\"message\":\"%.*s\"}}", LEN,
                 texts[i]);
        out[i] = frames[i];
    }
    long mark = h_log_mark(&fx.node.gateway);
    assert_int_equal(wsc_send_texts(sender, out, N), 0);
    for (int i = 0; i < N; i++) {
        expect_message(reader, texts[i], "burster");
        expect_message(sender, texts[i], "burster");
    }
    assert_false(h_log_contains_from(&fx.node.gateway, mark, "slow consumer", 0));
    wsc_close(sender);
    wsc_close(reader);
}

/* A client that sends its close and half-closes (it still reads) while
 * the rest of a batch waits for room in its small receive window gets all
 * of it and then the answer to its close, before the gateway's FIN. The
 * FIN used to end the connection at once and cut both: the client saw the
 * connection drop (1006) after a clean close. */
static void test_a_close_then_half_close_behind_held_bytes_is_answered(void **state)
{
    (void)state;
    struct wsc *slow = small_window_member("halfway");
    struct wsc *sender = member(fx.node.port, "filler", NULL);
    say(sender, "hello");
    expect_message(sender, "hello", "filler");

    /* 27 messages of 3 KB in one write (within RATE_BURST): ~81 KB for a
     * socket whose kernel buffers take ~70 KB (a 64 KiB send buffer and a
     * small window); the gateway holds the rest, well under its 32 KiB
     * bound (about ten of these frames) */
    enum { N = 27, LEN = 3000 };
    static char frames[N][LEN + 64];
    const char *out[N];
    for (int i = 0; i < N; i++) {
        char text[LEN + 1];
        int n = snprintf(text, sizeof text, "%d-", i);
        memset(text + n, 'h', LEN - (size_t)n);
        text[LEN] = '\0';
        snprintf(frames[i], sizeof frames[i],
                 "{\"type\":\"send_message\",\"payload\":{\"message\":\"%s\"}}", text);
        out[i] = frames[i];
    }
    assert_int_equal(wsc_send_texts(sender, out, N), 0);
    for (int i = 0; i < N; i++)
        json_decref(wsc_recv_json(sender, 5000)); /* delivered to everyone */
    h_sleep_ms(200);

    /* close 1000 (masked with a zero key), then the FIN */
    static const unsigned char close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    assert_int_equal(h_send_all(wsc_fd(slow), close_frame, sizeof close_frame), 0);
    assert_int_equal(shutdown(wsc_fd(slow), SHUT_WR), 0);
    h_sleep_ms(300); /* the gateway reads both before the client reads on */
    assert_int_equal(wsc_wait_close(slow, 10000), 1000);
    wsc_abort(slow);
    wsc_close(sender);
}

/* The keep-alive walk looks at a tenth of the connections per tick
 * (ws.h): with many silent peers, every one of them is still reached. */
#define DEAD_PEERS 30

static void test_dead_peers_are_reaped_by_ping(void **state)
{
    (void)state;
    struct h_node n;
    h_node_init(&n, fx.redis.addr);
    n.extra_env[0] = "PING_INTERVAL=1";
    n.extra_env[1] = "PING_TIMEOUT=1";
    assert_int_equal(h_node_start(&n), 0);
    struct wsc *live = member(n.port, "live", NULL), *dead[DEAD_PEERS];
    for (int i = 0; i < DEAD_PEERS; i++) {
        char user[16];
        snprintf(user, sizeof user, "dead%d", i);
        dead[i] = member(n.port, user, NULL);
        wsc_set_autopong(dead[i], false);
    }
    /* PING_INTERVAL=1, PING_TIMEOUT=1: a client that never pongs is gone in
     * about 2 s; one that does stays. */
    int64_t t0 = h_now_ms();
    int closed = 0;
    bool done[DEAD_PEERS] = {false};
    while (closed < DEAD_PEERS && h_now_ms() - t0 < 8000) {
        /* keep reading "live" so that it answers its pings */
        assert_true(wsc_quiet(live, 20));
        for (int i = 0; i < DEAD_PEERS; i++) {
            char *m;
            size_t len;
            int op = done[i] ? 0 : wsc_recv(dead[i], 1, &m, &len);
            assert_true(op <= 0);
            if (op == WSC_CLOSED || op == WSC_EOF) {
                done[i] = true;
                closed++;
            }
        }
    }
    if (closed < DEAD_PEERS)
        fail_msg("%d of %d peers that never answer a ping were still open after 8 s",
                 DEAD_PEERS - closed, DEAD_PEERS);
    assert_true(h_now_ms() - t0 >= 1000);
    for (int i = 0; i < DEAD_PEERS; i++)
        wsc_abort(dead[i]);

    /* Reading (and so answering pings) for 3 s keeps the other alive. */
    assert_true(wsc_quiet(live, 3000));
    say(live, "still alive");
    expect_message(live, "still alive", "live");
    wsc_close(live);
    assert_int_equal(h_node_stop(&n), 0);
}

/* pid's descriptors: how many, how many numbered >= min, how many under
 * lws' table (4096), and the highest number. */
struct fd_scan {
    int open, from_min, under_table, highest;
};

static struct fd_scan scan_fds(pid_t pid, int min)
{
    struct fd_scan r = {0, 0, 0, -1};
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        r.open++;
        r.from_min += fd >= min;
        r.under_table += fd < 4096;
        if (fd > r.highest)
            r.highest = fd;
    }
    if (d)
        closedir(d);
    return r;
}

/* The gateway's worker processes (the gateway itself when it has none). */
static int workers_of(pid_t gw, pid_t *out, int cap)
{
    int n = h_children(gw, out, cap);
    if (n == 0)
        out[n++] = gw;
    return n;
}

/* Descriptors numbered >= min held by pid and its children. */
static int fds_from(pid_t pid, int min)
{
    int n = scan_fds(pid, min).from_min;
    pid_t kids[64];
    int nk = h_children(pid, kids, 64);
    for (int i = 0; i < nk; i++)
        n += fds_from(kids[i], min);
    return n;
}

/* Reads an HTTP response head from fd; true when it is a 101. */
static bool upgraded(int fd)
{
    char buf[2048];
    size_t got = 0;
    int64_t deadline = h_now_ms() + 10000;
    while (h_now_ms() < deadline && got < sizeof buf - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return strncmp(buf, "HTTP/1.1 101", 12) == 0;
    }
    return false;
}

/* A plain upgrade request with the token, in one buffer; its length. */
static int upgrade_request(char *req, size_t cap, const char *token)
{
    int len = snprintf(req, cap,
                       "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       token);
    assert_true(len > 0 && (size_t)len < cap);
    return len;
}

/* Over plain TCP lws' descriptor table is 4096 long and established
 * WebSockets move above it (gateway.c LWS_FD_TABLE): one process still holds
 * more WebSockets than that, and HTTP and new upgrades work beside them. */
static void test_more_websockets_than_lws_table(void **state)
{
    (void)state;
    enum { N = 4400, BATCH = 200, TABLE = 4096 };
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max < N + 512)
        skip(); /* the machine's limit: nothing to show */
    /* the gateway was started with this process' limit */
    if (rl.rlim_cur < N + 512)
        skip();
    char *token = h_login(fx.node.port, "crowd");
    assert_non_null(token);
    char req[4096];
    int len = upgrade_request(req, sizeof req, token);
    free(token);
    int *fds = malloc(N * sizeof *fds);
    assert_non_null(fds);
    for (int at = 0; at < N; at += BATCH) {
        for (int i = at; i < at + BATCH; i++) {
            fds[i] = h_tcp_connect(fx.node.port, 0);
            assert_true(fds[i] >= 0);
            assert_int_equal(h_send_all(fds[i], req, (size_t)len), 0);
        }
        for (int i = at; i < at + BATCH; i++)
            if (!upgraded(fds[i]))
                fail_msg("WebSocket %d of %d was not upgraded", i + 1, N);
    }
    assert_true(fds_from(fx.node.gateway.pid, TABLE) >= N);
    assert_int_equal(h_wait_health(fx.node.port, 200, 5000), 0);
    struct wsc *c = member(fx.node.port, "one-more", "beside-the-crowd");
    ready(c, "still served");
    wsc_close(c);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    free(fds);
}

/* When lws' table is full of connections it is still reading requests from,
 * an upgrade the gateway answers itself (gateway/front.h) is still served
 * on a descriptor past the table; what only lws could serve is refused. */
static void test_upgrades_served_when_lws_table_is_full(void **state)
{
    (void)state;
    enum { HELD = 4150 };
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < HELD + 512)
        skip();
    char *token = h_login(fx.node.port, "latecomer");
    assert_non_null(token);
    int *fds = malloc(HELD * sizeof *fds);
    assert_non_null(fds);
    /* requests never finished: lws holds each until HANDSHAKE_TIMEOUT (10 s) */
    static const char partial[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < HELD; i++) {
        fds[i] = h_tcp_connect(fx.node.port, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(h_send_all(fds[i], partial, sizeof partial - 1), 0);
    }
    h_sleep_ms(500);
    char req[4096];
    int len = upgrade_request(req, sizeof req, token);
    free(token);
    int ws = h_tcp_connect(fx.node.port, 0);
    assert_true(ws >= 0);
    assert_int_equal(h_send_all(ws, req, (size_t)len), 0);
    bool ok = upgraded(ws);
    /* an HTTP request finds no room in lws: closed without an answer */
    static const char health[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    int http = h_tcp_connect(fx.node.port, 0);
    assert_true(http >= 0);
    h_send_all(http, health, sizeof health - 1);
    char buf[64];
    struct pollfd p = {http, POLLIN, 0};
    ssize_t got = poll(&p, 1, 3000) > 0 ? recv(http, buf, sizeof buf, 0) : 99;
    for (int i = 0; i < HELD; i++)
        close(fds[i]);
    free(fds);
    close(ws);
    close(http);
    if (!ok)
        fail_msg("an upgrade was not served while lws' table was full");
    assert_true(got <= 0); /* closed or reset, not answered */
}

/* Over plain TCP the numbers under lws' table are held by fillers while
 * unused (gateway/lowfd.h). A gateway whose limit leaves few numbers above
 * them gives fillers back, so it still serves as many WebSockets and HTTP
 * requests as its limit allows. */
static void test_out_of_descriptors_the_fillers_are_given_back(void **state)
{
    (void)state;
    enum { N = 150, ROOM = 20, TABLE = 4096 };
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    /* test_more_websockets_than_lws_table must not have run the gateway
     * out (a release holds the fillers back for a minute) */
    if (rl.rlim_cur < TABLE + 4400 + 1024)
        skip();
    pid_t w[8];
    int nw = workers_of(fx.node.gateway.pid, w, 8);
    struct rlimit saved[8], low[8];
    for (int i = 0; i < nw; i++) {
        int top = scan_fds(w[i], 0).highest;
        if (top < TABLE)
            skip(); /* no fillers: TLS, or a limit within lws' table */
        /* the numbers lws freed when the last test's connections closed
         * are taken again within a second or so */
        int64_t deadline = h_now_ms() + 5000;
        while (scan_fds(w[i], 0).under_table < TABLE && h_now_ms() < deadline)
            h_sleep_ms(100);
        assert_int_equal(scan_fds(w[i], 0).under_table, TABLE);
        top = scan_fds(w[i], 0).highest;
        int free_below = top + 1 - scan_fds(w[i], 0).open;
        if (free_below > ROOM / 2)
            skip(); /* too many free numbers among the ones in use to leave ROOM */
        assert_int_equal(prlimit(w[i], RLIMIT_NOFILE, NULL, &saved[i]), 0);
        low[i] = saved[i];
        low[i].rlim_cur = (rlim_t)(top + 1 + ROOM - free_below);
    }
    char *token = h_login(fx.node.port, "squeezed");
    assert_non_null(token);
    char req[4096];
    int len = upgrade_request(req, sizeof req, token);
    free(token);
    long mark = h_log_mark(&fx.node.gateway);
    for (int i = 0; i < nw; i++)
        assert_int_equal(prlimit(w[i], RLIMIT_NOFILE, &low[i], NULL), 0);
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = -1;
    int served = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = h_tcp_connect(fx.node.port, 0);
        if (fds[i] < 0)
            break;
        h_send_all(fds[i], req, (size_t)len);
        served += upgraded(fds[i]);
    }
    int health = h_wait_health(fx.node.port, 200, 5000);
    bool warned = h_log_contains_from(&fx.node.gateway, mark, "gave back", 3000);
    for (int i = 0; i < N && fds[i] >= 0; i++)
        close(fds[i]);
    for (int i = 0; i < nw; i++)
        prlimit(w[i], RLIMIT_NOFILE, &saved[i], NULL);
    assert_int_equal(served, N);
    assert_int_equal(health, 0);
    assert_true(warned);
}

/* Stopping a gateway while clients are still connected (DRAIN_TIMEOUT_MS=0
 * here, so it waits for none of them) is a clean exit: no crash, no
 * sanitizer report, and each client still gets its 1001 (the drain writes the
 * closes at once, whatever the pacing of its writes). */
static void test_stop_with_clients_connected(void **state)
{
    (void)state;
    struct wsc *c[3];
    for (int i = 0; i < 3; i++) {
        char user[16];
        snprintf(user, sizeof user, "stayer%d", i);
        c[i] = member(fx.node.port, user, "to-the-end");
    }
    ready(c[0], "here");
    assert_int_equal(h_stop_clean(&fx.node.gateway), 0);
    for (int i = 0; i < 3; i++) {
        int code = wsc_wait_close(c[i], 5000);
        assert_int_equal(code, 1001); /* going away */
        wsc_abort(c[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_at_the_limit_is_fine_over_it_is_1009),
        cmocka_unit_test(test_invalid_utf8_is_1007),
        cmocka_unit_test(test_slow_consumer_is_dropped_and_nobody_waits),
        cmocka_unit_test(test_a_burst_past_the_queue_bound_reaches_readers),
        cmocka_unit_test(test_a_close_then_half_close_behind_held_bytes_is_answered),
        cmocka_unit_test(test_dead_peers_are_reaped_by_ping),
        cmocka_unit_test(test_more_websockets_than_lws_table),
        cmocka_unit_test(test_upgrades_served_when_lws_table_is_full),
        cmocka_unit_test(test_out_of_descriptors_the_fillers_are_given_back),
        cmocka_unit_test(test_stop_with_clients_connected),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
