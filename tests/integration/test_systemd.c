/* Process integration with a service manager, without one running: the
 * test plays systemd's part.
 *
 * - sd_notify: the test owns the NOTIFY_SOCKET (a datagram socket with
 *   SO_PASSCRED, so each datagram names its sender's pid) and checks what a
 *   gateway and a broker say on it: READY=1 only once they can serve, STATUS=
 *   lines with live counts, WATCHDOG=1 often enough for WATCHDOG_USEC, and
 *   STOPPING=1 on SIGTERM (the gateway's with EXTEND_TIMEOUT_USEC for its
 *   drain, so that a DRAIN_TIMEOUT_MS past TimeoutStopSec is not cut short).
 * - socket activation: a gateway run under the real systemd-socket-activate
 *   serves on the socket it was handed and binds nothing itself; a socket
 *   that is not listening is refused, and one meant for another process
 *   (LISTEN_PID) is left alone. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SOCKET_ACTIVATE "/usr/bin/systemd-socket-activate"
#define WATCHDOG_USEC 2000000
#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- a NOTIFY_SOCKET owned by the test ----------------------------------- */

struct note {
    pid_t pid;
    int64_t at; /* h_now_ms() when it arrived */
    char text[512];
};

struct notes {
    int fd;
    char path[300];
    char env[320]; /* "NOTIFY_SOCKET=<path>" */
    struct note v[2048];
    int n;
};

static struct notes g_notes;
/* What a test started, so that a failed test does not leave it running. */
static struct h_redis g_redis;
static struct h_node g_node;
static struct h_proc g_proc;

static void notes_open(struct notes *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s/notify.sock", h_tmpdir());
    snprintf(s->env, sizeof s->env, "NOTIFY_SOCKET=%s", s->path);
    unlink(s->path);
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(s->path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int one = 1;
    assert_int_equal(setsockopt(s->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
}

static void notes_close(struct notes *s)
{
    if (s->fd > 0)
        close(s->fd);
    s->fd = -1;
    unlink(s->path);
}

/* Stores every datagram that arrives within ms (at least what is queued). */
static void notes_pump(struct notes *s, int ms)
{
    int64_t deadline = h_now_ms() + ms;
    for (;;) {
        int64_t left = deadline - h_now_ms();
        struct pollfd pfd = {s->fd, POLLIN, 0};
        if (poll(&pfd, 1, left > 0 ? (int)left : 0) <= 0) {
            if (h_now_ms() >= deadline)
                return;
            continue;
        }
        struct note *nt = &s->v[s->n < 2047 ? s->n : 2047];
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(struct ucred))];
        } cm;
        struct iovec iov = {nt->text, sizeof nt->text - 1};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm, .msg_controllen = sizeof cm};
        ssize_t r = recvmsg(s->fd, &mh, MSG_DONTWAIT);
        if (r < 0)
            continue;
        nt->text[r] = '\0';
        nt->at = h_now_ms();
        nt->pid = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred uc;
                memcpy(&uc, CMSG_DATA(c), sizeof uc);
                nt->pid = uc.pid;
            }
        if (s->n < 2047)
            s->n++;
    }
}

/* Whether a datagram has the line `want` ("READY=1"), or a line starting
 * with it when it ends in '=' ("STATUS="), or containing `sub` in such a
 * line when sub is given. */
static bool note_has(const struct note *nt, const char *want, const char *sub)
{
    size_t wl = strlen(want);
    bool prefix = wl && want[wl - 1] == '=';
    for (const char *l = nt->text; *l;) {
        size_t n = strcspn(l, "\n");
        if (prefix ? (n >= wl && !strncmp(l, want, wl)) : (n == wl && !strncmp(l, want, wl))) {
            if (!sub)
                return true;
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)n, l);
            if (strstr(line, sub))
                return true;
        }
        l += n;
        if (*l)
            l++;
    }
    return false;
}

/* The index of the first datagram from pid at or after `from` with that
 * line, or -1. */
static int notes_find(const struct notes *s, pid_t pid, int from, const char *want, const char *sub)
{
    for (int i = from; i < s->n; i++)
        if (s->v[i].pid == pid && note_has(&s->v[i], want, sub))
            return i;
    return -1;
}

static int notes_wait(struct notes *s, pid_t pid, int from, const char *want, const char *sub,
                      int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        int i = notes_find(s, pid, from, want, sub);
        if (i >= 0 || h_now_ms() >= deadline)
            return i;
        notes_pump(s, 50);
    }
}

static int notes_count(const struct notes *s, pid_t pid, int from, const char *want)
{
    int k = 0;
    for (int i = from; i < s->n; i++)
        k += s->v[i].pid == pid && note_has(&s->v[i], want, NULL);
    return k;
}

static void notes_print(const struct notes *s)
{
    printf("----- %d datagrams on NOTIFY_SOCKET -----\n", s->n);
    int64_t t0 = s->n ? s->v[0].at : 0;
    for (int i = 0; i < s->n; i++) {
        char flat[512];
        snprintf(flat, sizeof flat, "%s", s->v[i].text);
        for (char *c = flat; *c; c++)
            if (*c == '\n')
                *c = '|';
        printf("+%6lld ms pid %d: %s\n", (long long)(s->v[i].at - t0), (int)s->v[i].pid, flat);
    }
    fflush(stdout);
}

/* Every WATCHDOG=1 of pid from index `from` to `to` (exclusive): at least
 * `min` of them, and never a gap a service manager with WATCHDOG_USEC would
 * kill the process for. */
static void expect_watchdog(const struct notes *s, pid_t pid, int from, int to, int min,
                            const char *who)
{
    int k = 0;
    int64_t last = 0, worst = 0;
    for (int i = from; i < to; i++) {
        if (s->v[i].pid != pid || !note_has(&s->v[i], "WATCHDOG=1", NULL))
            continue;
        if (k++ && s->v[i].at - last > worst)
            worst = s->v[i].at - last;
        last = s->v[i].at;
    }
    if (k < min || worst >= WATCHDOG_USEC / 1000) {
        notes_print(s);
        fail_msg("%s: %d WATCHDOG=1 (expected >= %d), longest gap %lld ms (WATCHDOG_USEC is "
                 "%d ms)",
                 who, k, min, (long long)worst, WATCHDOG_USEC / 1000);
    }
}

static int exit_code(int status)
{
    return status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- sd_notify ------------------------------------------------------------ */

static void expect_note(struct notes *s, pid_t pid, int from, const char *want, const char *sub,
                        int timeout_ms, const char *who, int *at)
{
    int i = notes_wait(s, pid, from, want, sub, timeout_ms);
    if (i < 0) {
        notes_print(s);
        fail_msg("%s (pid %d) sent no %s%s%s within %d ms", who, (int)pid, want,
                 sub ? " with " : "", sub ? sub : "", timeout_ms);
    }
    if (at)
        *at = i;
}

static void test_notify_ready_status_watchdog_stopping(void **state)
{
    (void)state;
    struct notes *s = &g_notes;
    notes_open(s);
    /* Redis comes last, so the broker's READY=1 can be seen to wait for it;
     * its address is known before it starts. */
    char redis_addr[400];
    snprintf(redis_addr, sizeof redis_addr, "unix:%s/redis.sock", h_tmpdir());
    h_node_init(&g_node, redis_addr);
    g_node.brokers = 1;
    g_node.extra_env[0] = s->env;
    g_node.extra_env[1] =
        "WATCHDOG_USEC=" STR(WATCHDOG_USEC); /* no WATCHDOG_PID: any pid may ping */
    g_node.extra_env[2] = "PRESENCE_TTL=3";  /* a broker STATUS= every second */
    /* longer than the units' TimeoutStopSec (30 s): asked for on STOPPING */
    g_node.extra_env[3] = "DRAIN_TIMEOUT_MS=40000";

    /* A gateway without brokers: alive, holding its accepts for a while in
     * case they come up, and not READY meanwhile. */
    int64_t t_gw = h_now_ms();
    assert_int_equal(h_gateway_start(&g_node), 0);
    pid_t gw = g_node.gateway.pid;
    int i;
    expect_note(s, gw, 0, "STATUS=", "0 of 1 brokers linked", 3000, "gateway", NULL);
    expect_note(s, gw, 0, "WATCHDOG=1", NULL, 3000, "gateway", NULL);
    notes_pump(s, 300);
    int early = notes_find(s, gw, 0, "READY=1", NULL);
    if (early >= 0 && s->v[early].at - t_gw < 2900) {
        notes_print(s);
        fail_msg("the gateway said READY=1 during its hold, before it was linked to its broker");
    }
    /* Past the hold it serves without the broker (logins, files, errors),
     * and says so: systemd would kill a service that serves but never said
     * READY=1 at TimeoutStartSec, clients and all. */
    expect_note(s, gw, 0, "READY=1", NULL, 6000, "gateway", &i);
    assert_true(note_has(&s->v[i], "STATUS=", "degraded"));
    struct h_resp r;
    assert_int_equal(h_http(g_node.port, "GET", "/readyz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 503); /* serving, but not to a load balancer */
    h_resp_free(&r);

    /* A broker without Redis: the gateway links (no second READY=1); the
     * broker is not ready. */
    int mark0 = s->n;
    assert_int_equal(h_broker_start(&g_node, 0), 0);
    pid_t br = g_node.broker[0].pid;
    expect_note(s, gw, mark0, "STATUS=", "1 of 1 brokers linked", 10000, "gateway", NULL);
    assert_int_equal(h_http(g_node.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    expect_note(s, br, 0, "WATCHDOG=1", NULL, 3000, "broker", NULL);
    notes_pump(s, 500);
    if (notes_find(s, br, 0, "READY=1", NULL) >= 0) {
        notes_print(s);
        fail_msg("the broker said READY=1 without Redis");
    }

    /* Redis arrives: the broker connects, its canary comes back, READY=1. */
    assert_int_equal(h_redis_start(&g_redis, h_tmpdir()), 0);
    assert_string_equal(g_redis.addr, redis_addr);
    int64_t t_redis = h_now_ms();
    expect_note(s, br, 0, "READY=1", NULL, 10000, "broker", &i);
    assert_true(note_has(&s->v[i], "STATUS=", "ready"));
    printf("broker READY=1 %lld ms after Redis started\n", (long long)(s->v[i].at - t_redis));
    /* One READY=1 each: a service is started once. */
    assert_int_equal(notes_count(s, gw, 0, "READY=1"), 1);
    assert_int_equal(notes_count(s, br, 0, "READY=1"), 1);

    /* Live counts in STATUS=: a client in a room shows up in both. */
    int mark = s->n;
    struct wsc *c = member(g_node.port, "alice", NULL);
    ready(c, "hello");
    expect_note(s, gw, mark, "STATUS=", "1 connections, 1 rooms, 1 of 1 brokers linked", 7000,
                "gateway", NULL);
    expect_note(s, br, mark, "STATUS=", "ready; 1 rooms, 1 gateway links", 4000, "broker", NULL);

    /* The watchdog: both have been pinging all along; 3 s more to be sure. */
    notes_pump(s, 3000);
    int last = s->n;
    expect_watchdog(s, gw, 0, last, 5, "gateway");
    expect_watchdog(s, br, 0, last, 5, "broker");
    int wd_from = 0;
    for (int k = 0; k < last; k++)
        if (s->v[k].at >= s->v[last - 1].at - 3000) {
            wd_from = k;
            break;
        }
    assert_true(notes_count(s, gw, wd_from, "WATCHDOG=1") >= 2);
    assert_true(notes_count(s, br, wd_from, "WATCHDOG=1") >= 2);

    /* SIGTERM: STOPPING=1 first, then a clean exit; the client is told 1001. */
    mark = s->n;
    kill(gw, SIGTERM);
    expect_note(s, gw, mark, "STOPPING=1", NULL, 3000, "gateway", NULL);
    expect_note(s, gw, mark, "EXTEND_TIMEOUT_USEC=", "45000000", 100, "gateway", NULL);
    assert_int_equal(wsc_wait_close(c, 5000), 1001);
    wsc_close(c);
    assert_int_equal(exit_code(h_wait_exit(&g_node.gateway, 10000)), 0);
    assert_int_equal(notes_count(s, gw, mark, "READY=1"), 0);

    mark = s->n;
    kill(br, SIGTERM);
    expect_note(s, br, mark, "STOPPING=1", NULL, 3000, "broker", NULL);
    assert_int_equal(exit_code(h_wait_exit(&g_node.broker[0], 10000)), 0);
    notes_pump(s, 100);
    notes_print(s); /* shown by ctest on failure, and useful when it passes */

    h_redis_stop(&g_redis);
    notes_close(s);
}

/* ---- socket activation ------------------------------------------------------ */

static void test_gateway_under_systemd_socket_activate(void **state)
{
    (void)state;
    if (access(SOCKET_ACTIVATE, X_OK) != 0)
        fail_msg("%s is missing: install the systemd package (scripts/deps.sh)", SOCKET_ACTIVATE);
    assert_int_equal(h_redis_start(&g_redis, h_tmpdir()), 0);
    h_node_init(&g_node, g_redis.addr); /* g_node.port is PORT: the gateway must leave it alone */
    for (int i = 0; i < g_node.brokers; i++)
        assert_int_equal(h_broker_start(&g_node, i), 0);

    int port = h_free_port();
    char listen[64], e[9][420];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(e[0], sizeof e[0], "--setenv=RUN_DIR=%s", g_node.run_dir);
    snprintf(e[1], sizeof e[1], "--setenv=BROKERS=%d", g_node.brokers);
    snprintf(e[2], sizeof e[2], "--setenv=REDIS_ADDR=%s", g_redis.addr);
    snprintf(e[3], sizeof e[3], "--setenv=PORT=%d", g_node.port);
    snprintf(e[4], sizeof e[4], "--setenv=GATEWAY_WORKERS=1");
    snprintf(e[5], sizeof e[5], "--setenv=JWT_SECRET=%s", H_JWT_SECRET);
    snprintf(e[6], sizeof e[6], "--setenv=LISTEN_ADDR=127.0.0.1");
    snprintf(e[7], sizeof e[7], "--setenv=CONFAB_ENV_FILE=/dev/null");
    snprintf(e[8], sizeof e[8], "--setenv=LOG_LEVEL=info");
    char *argv[] = {SOCKET_ACTIVATE,
                    "-l",
                    listen,
                    "--fdname=http",
                    e[0],
                    e[1],
                    e[2],
                    e[3],
                    e[4],
                    e[5],
                    e[6],
                    e[7],
                    e[8],
                    (char *)h_bin("gateway"),
                    NULL};
    assert_int_equal(h_spawn(&g_proc, "activated-gateway", g_node.run_dir, argv, NULL), 0);
    assert_true(h_log_contains(&g_proc, "Listening on", 5000));
    /* The first connection makes systemd-socket-activate exec the gateway
     * in its own process, with the socket as fd 3. */
    if (h_wait_health(port, 200, 15000) < 0) {
        h_dump_log(&g_proc, 30);
        fail_msg("the activated gateway did not become healthy on its socket");
    }
    assert_true(h_log_contains(&g_proc, "using the listening socket passed by systemd", 0));
    assert_true(h_log_contains(&g_proc, "listening on (systemd socket)", 0));
    assert_true(port_closed(g_node.port)); /* PORT was not bound */

    /* Everything works through the socket: login, WebSocket chat. */
    char *token = h_login(port, "alice");
    assert_non_null(token);
    free(token);
    struct wsc *a = member(port, "alice", "lobby"), *b = member(port, "bob", "lobby");
    struct wsc *both[] = {a, b};
    settle(both, 2);
    exactly_once(a, both, 2, "through systemd's socket", "alice");
    wsc_close(a);
    wsc_close(b);
    assert_true(port_closed(g_node.port));

    assert_int_equal(h_stop_clean(&g_proc), 0);
    assert_int_equal(h_node_stop(&g_node), 0);
    h_redis_stop(&g_redis);
}

/* A free descriptor number a shell can redirect (<= 9). */
static int low_free_fd(void)
{
    for (int fd = 9; fd >= 3; fd--)
        if (fcntl(fd, F_GETFD) < 0)
            return fd;
    fail_msg("no free descriptor below 10");
    return -1;
}

/* Runs the gateway as systemd would, with `sock` as descriptor 3 and
 * LISTEN_FDS=1; LISTEN_PID is the gateway's own pid when own_pid, else 1. */
static void spawn_activated(struct h_proc *p, const char *name, int sock, bool own_pid, int port,
                            int workers)
{
    int fd = low_free_fd();
    assert_int_equal(dup2(sock, fd), fd); /* inherited: no FD_CLOEXEC */
    close(sock);
    char script[160], portv[32], run[400], workersv[32];
    snprintf(workersv, sizeof workersv, "GATEWAY_WORKERS=%d", workers);
    snprintf(script, sizeof script, "%s exec \"$@\" 3<&%d %d<&-",
             own_pid ? "LISTEN_PID=$$; export LISTEN_PID;" : "", fd, fd);
    snprintf(portv, sizeof portv, "PORT=%d", port);
    snprintf(run, sizeof run, "RUN_DIR=%s/%s", h_tmpdir(), name);
    char *argv[] = {"/bin/sh", "-c", script, "sh", (char *)h_bin("gateway"), NULL};
    /* with own_pid the shell sets LISTEN_PID to its pid, which exec keeps */
    const char *env[] = {"LISTEN_FDS=1",
                         "LISTEN_FDNAMES=http",
                         "JWT_SECRET=" H_JWT_SECRET,
                         workersv,
                         "LISTEN_ADDR=127.0.0.1",
                         "BROKERS=1",
                         portv,
                         run,
                         own_pid ? NULL : "LISTEN_PID=1",
                         NULL};
    assert_int_equal(h_spawn(p, name, h_tmpdir(), argv, env), 0);
    close(fd);
}

static int tcp_socket(bool listening)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (listening)
        assert_int_equal(listen(fd, 16), 0);
    return fd;
}

static void test_activation_socket_checks(void **state)
{
    (void)state;
    /* A socket that is not listening (a mistake in the .socket unit) stops
     * the gateway with a message saying so, instead of serving nothing. */
    int port = h_free_port();
    spawn_activated(&g_proc, "not-listening", tcp_socket(false), true, port, 1);
    int rc = exit_code(h_wait_exit(&g_proc, 10000));
    if (rc <= 0 || !h_log_contains(&g_proc, "not a listening stream socket", 0)) {
        h_dump_log(&g_proc, 20);
        h_stop(&g_proc, SIGKILL, 1000);
        fail_msg("a non-listening socket from systemd: exit %d, expected a refusal", rc);
    }
    assert_true(port_closed(port));

    /* Descriptors meant for another process (LISTEN_PID is not ours, e.g.
     * inherited from a parent that was activated) are not used: the gateway
     * binds PORT as usual. */
    port = h_free_port();
    spawn_activated(&g_proc, "other-pid", tcp_socket(true), false, port, 1);
    if (h_wait_health(port, 503, 10000) < 0) { /* no broker: alive, not healthy */
        h_dump_log(&g_proc, 20);
        fail_msg("with LISTEN_PID of another process the gateway did not bind PORT");
    }
    assert_false(h_log_contains(&g_proc, "passed by systemd", 0));
    assert_int_equal(h_stop_clean(&g_proc), 0);

    /* One socket for several workers: only one process could accept on it
     * (the others would bind PORT beside it, and the connections the kernel
     * gave the socket would wait forever), so it does not start. */
    port = h_free_port();
    spawn_activated(&g_proc, "two-workers", tcp_socket(true), true, port, 2);
    rc = exit_code(h_wait_exit(&g_proc, 10000));
    if (rc != 2 || !h_log_contains(&g_proc, "set GATEWAY_WORKERS=1", 0)) { /* not restarted */
        h_dump_log(&g_proc, 20);
        h_stop(&g_proc, SIGKILL, 1000);
        fail_msg("a socket from systemd for two workers: exit %d, expected 2 and the reason", rc);
    }
}

/* Kills whatever a failed test left running (a passing test stopped it all
 * and checked how it exited). */
/* With several Redis servers, one down makes only its rooms unavailable: the
 * broker serves the others' and must say READY=1, or systemd would kill it
 * at TimeoutStartSec (and at every start while that server stays down). It
 * says so once its first 30 s are over: until then a server reached holding
 * another node's list still stops it, which must be a failed start. */
static void test_notify_ready_with_one_redis_server_down(void **state)
{
    (void)state;
    struct notes *s = &g_notes;
    notes_open(s);
    assert_int_equal(h_redis_start(&g_redis, h_tmpdir()), 0);
    char addr[900];
    snprintf(addr, sizeof addr, "%s,unix:%s/no-such-redis.sock", g_redis.addr, h_tmpdir());
    h_node_init(&g_node, addr);
    g_node.brokers = 1;
    g_node.extra_env[0] = s->env;
    int64_t t_start = h_now_ms();
    assert_int_equal(h_broker_start(&g_node, 0), 0);
    pid_t br = g_node.broker[0].pid;
    int i;
    expect_note(s, br, 0, "READY=1", NULL, 40000, "broker", &i);
    if (s->v[i].at - t_start < 29500) {
        notes_print(s);
        fail_msg("READY=1 %lld ms after the start, within the 30 s a list mismatch still stops it",
                 (long long)(s->v[i].at - t_start));
    }
    if (!note_has(&s->v[i], "STATUS=", "degraded")) {
        notes_print(s);
        fail_msg("the broker's READY=1 does not say it is degraded");
    }
    kill(br, SIGTERM);
    assert_int_equal(exit_code(h_wait_exit(&g_node.broker[0], 10000)), 0);
    assert_int_equal(notes_count(s, br, 0, "READY=1"), 1);
    h_redis_stop(&g_redis);
    notes_close(s);
}

static int cleanup(void **state)
{
    (void)state;
    h_stop(&g_proc, SIGKILL, 2000);
    h_stop(&g_node.gateway, SIGKILL, 2000);
    for (int i = 0; i < 16; i++)
        h_stop(&g_node.broker[i], SIGKILL, 2000);
    h_redis_stop(&g_redis);
    notes_close(&g_notes);
    memset(&g_proc, 0, sizeof g_proc);
    memset(&g_node, 0, sizeof g_node);
    memset(&g_redis, 0, sizeof g_redis);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_notify_ready_status_watchdog_stopping, cleanup),
        cmocka_unit_test_teardown(test_notify_ready_with_one_redis_server_down, cleanup),
        cmocka_unit_test_teardown(test_gateway_under_systemd_socket_activate, cleanup),
        cmocka_unit_test_teardown(test_activation_socket_checks, cleanup),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
