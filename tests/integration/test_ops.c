/* Operating confab: what Prometheus and log collectors see.
 *
 * - /metrics of every gateway process (METRICS_PORT + worker, or the public
 *   port when METRICS_PORT is unset) and every broker (BROKER_METRICS_PORT +
 *   shard) is valid text format, and its counters move with the traffic;
 * - LOG_FORMAT=json writes one JSON object per line, whatever a client
 *   sends; under the journal (JOURNAL_STREAM naming stderr) nothing goes to
 *   stderr.
 *
 * How /readyz follows the brokers, the drain and the delivery canary is
 * test_ops_readiness.c; what the operations ports serve, and where, is
 * test_ops_ports.c. */
#include "ops.h"
#include "v1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jwt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A token signed with `key` for `sub`, expiring exp_in seconds from now. */
static char *make_token(const char *key, const char *sub, int exp_in)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    long now = (long)time(NULL);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)key, (int)strlen(key)),
                     0);
    jwt_add_grant(jwt, "sub", sub);
    jwt_add_grant_int(jwt, "iat", now - 7200);
    jwt_add_grant_int(jwt, "nbf", now - 7200);
    jwt_add_grant_int(jwt, "exp", now + exp_in);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(t);
    return t;
}

/* An upgrade with `query` ("" = no token) must be refused with 401. */
static void refused_upgrade(int port, const char *query)
{
    char path[2048];
    snprintf(path, sizeof path, "/ws%s", query);
    int st = 0;
    struct wsc *c = wsc_connect(port, path, NULL, 0, &st);
    if (c)
        wsc_close(c);
    assert_null(c);
    assert_int_equal(st, 401);
}

/* ---- metrics ------------------------------------------------------------- */

static const char *const gw_counters[] = {"confab_gateway_connections_total",
                                          "confab_gateway_messages_in_total",
                                          "confab_gateway_messages_out_total",
                                          "confab_gateway_frames_out_total",
                                          "confab_gateway_bytes_out_total",
                                          "confab_gateway_logins_total",
                                          "confab_gateway_login_errors_total",
                                          "confab_gateway_delivery_latency_seconds_count",
                                          "confab_gateway_delivery_latency_seconds_sum",
                                          NULL};
#define NGW (sizeof gw_counters / sizeof gw_counters[0] - 1)

static void gw_snapshot(int mport, int workers, double *out)
{
    for (size_t i = 0; i < NGW; i++)
        out[i] = gw_metric(mport, workers, gw_counters[i], NULL);
}

static double delta(const double *a, const double *b, const char *name)
{
    for (size_t i = 0; i < NGW; i++)
        if (!strcmp(gw_counters[i], name))
            return b[i] - a[i];
    fail_msg("unknown counter %s", name);
    return 0;
}

static void test_metrics_follow_traffic(void **state)
{
    (void)state;
    int mport, bport;
    const int workers = 2, brokers = 2;
    up(&(struct setup){.brokers = brokers, .workers = workers}, &mport, &bport);
    const int port = fx.node.port;
    for (int w = 0; w < workers; w++)
        free(wait_status(mport + w, "/readyz", 200, 10000));

    /* Each worker has its own port and labels: worker index and pid. */
    char match[64];
    int pids[2];
    for (int w = 0; w < workers; w++) {
        char *t = scrape(mport + w);
        const char *p = strstr(t, "pid=\"");
        assert_non_null(p);
        pids[w] = atoi(p + 5);
        snprintf(match, sizeof match, "worker=\"%d\"", w);
        assert_int_equal(metric(t, "confab_gateway_draining", match), 0);
        for (int s = 0; s < brokers; s++) {
            snprintf(match, sizeof match, "worker=\"%d\",shard=\"%d\"", w, s);
            assert_int_equal(metric(t, "confab_gateway_broker_link_up", match), 1);
            assert_int_equal(metric(t, "confab_gateway_broker_ready", match), 1);
        }
        free(t);
    }
    assert_int_not_equal(pids[0], pids[1]);
    /* With a METRICS_PORT, the public port keeps the probes but not the
     * metrics (it may face the Internet). */
    assert_int_equal(status_of(port, "GET", "/metrics"), 404);
    assert_int_equal(status_of(port, "GET", "/readyz"), 200);
    assert_int_equal(status_of(port, "GET", "/healthz"), 200);

    /* Brokers: one port per shard, each ready, linked to both workers. */
    for (int s = 0; s < brokers; s++) {
        free(wait_status(bport + s, "/readyz", 200, 10000));
        assert_int_equal(broker_metric(bport, s, "confab_broker_ready"), 1);
        assert_int_equal(broker_metric(bport, s, "confab_broker_canary_ok"), 1);
        assert_int_equal(broker_metric(bport, s, "confab_broker_redis_up"), 2); /* sub + pub */
        assert_int_equal(broker_metric(bport, s, "confab_broker_gateway_links"), workers);
    }

    double g0[NGW], g1[NGW], g2[NGW];
    gw_snapshot(mport, workers, g0);

    /* Logins: 3 good, 2 refused. */
    for (int i = 0; i < 3; i++) {
        char *tok = h_login(port, "carol");
        assert_non_null(tok);
        free(tok);
    }
    struct h_resp r;
    assert_int_equal(h_http(port, "POST", "/login", NULL, "{\"username\":\"\"}", 15, &r), 0);
    assert_int_equal(r.status, 400);
    h_resp_free(&r);
    assert_int_equal(h_http(port, "POST", "/login", NULL, "{}", 2, &r), 0);
    assert_int_equal(r.status, 400);
    h_resp_free(&r);

    /* Refused upgrades, one per reason. */
    double a0[4];
    static const char *const reasons[] = {"missing", "malformed", "bad_signature", "expired"};
    for (int i = 0; i < 4; i++) {
        snprintf(match, sizeof match, "reason=\"%s\"", reasons[i]);
        a0[i] = gw_metric(mport, workers, "confab_gateway_auth_failures_total", match);
    }
    refused_upgrade(port, "");
    refused_upgrade(port, "?token=not-a-token");
    char q[1024], *tok = make_token("some-other-secret-0123456789abcdefghij", "mallory", 600);
    snprintf(q, sizeof q, "?token=%s", tok);
    free(tok);
    refused_upgrade(port, q);
    tok = make_token(H_JWT_SECRET, "late", -600);
    snprintf(q, sizeof q, "?token=%s", tok);
    free(tok);
    refused_upgrade(port, q);
    for (int i = 0; i < 4; i++) {
        snprintf(match, sizeof match, "reason=\"%s\"", reasons[i]);
        double d = gw_metric(mport, workers, "confab_gateway_auth_failures_total", match) - a0[i];
        if (d != 1)
            fail_msg("confab_gateway_auth_failures_total{reason=\"%s\"} moved by %g, expected 1",
                     reasons[i], d);
    }

    /* Two clients in a room of shard `s`. */
    const char *room = room_on(1, (uint32_t)brokers);
    const int s = 1, other = 0;
    struct wsc *a = member(port, "alice", room), *b = member(port, "bob", room);
    struct wsc *both[] = {a, b};
    settle(both, 2);
    gw_snapshot(mport, workers, g1);
    assert_int_equal(delta(g0, g1, "confab_gateway_logins_total"), 3 + 2);
    assert_int_equal(delta(g0, g1, "confab_gateway_login_errors_total"), 2);
    assert_int_equal(delta(g0, g1, "confab_gateway_connections_total"), 2);
    assert_int_equal(gw_metric(mport, workers, "confab_gateway_connections", NULL), 2);
    /* Workers with a member have the room (SO_REUSEPORT spreads the clients). */
    int with_members = 0;
    for (int w = 0; w < workers; w++) {
        char *wt = scrape(mport + w);
        int conns = (int)metric(wt, "confab_gateway_connections", NULL);
        with_members += conns > 0;
        assert_int_equal(metric(wt, "confab_gateway_rooms", NULL), conns > 0 ? 1 : 0);
        free(wt);
    }

    double req0 = broker_metric(bport, s, "confab_broker_requests_total");
    double in0 = broker_metric(bport, s, "confab_broker_messages_in_total");
    double out0 = broker_metric(bport, s, "confab_broker_messages_out_total");
    double other_in0 = broker_metric(bport, other, "confab_broker_messages_in_total");
    assert_true(broker_metric(bport, s, "confab_broker_rooms") >= 1);

    const int N = 5;
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof text, "m%d", i);
        say(a, text);
    }
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof text, "m%d", i);
        expect_message(a, text, "alice");
        expect_message(b, text, "alice");
    }
    gw_snapshot(mport, workers, g2);
    assert_int_equal(delta(g1, g2, "confab_gateway_messages_in_total"), N);
    assert_int_equal(delta(g1, g2, "confab_gateway_messages_out_total"), 2 * N);
    assert_true(delta(g1, g2, "confab_gateway_frames_out_total") >= 2 * N);
    assert_true(delta(g1, g2, "confab_gateway_bytes_out_total") >= 2 * N * 40);
    /* A message is observed once per gateway process that has members. */
    assert_int_equal(delta(g1, g2, "confab_gateway_delivery_latency_seconds_count"),
                     N * with_members);
    assert_true(delta(g1, g2, "confab_gateway_delivery_latency_seconds_sum") >= 0);
    assert_true(broker_metric(bport, s, "confab_broker_requests_total") - req0 >= N);
    assert_true(broker_metric(bport, s, "confab_broker_messages_in_total") - in0 >= N);
    assert_true(broker_metric(bport, s, "confab_broker_messages_out_total") - out0 >= N);
    /* The other shard owns none of it (its canary is not a room message). */
    assert_int_equal(broker_metric(bport, other, "confab_broker_messages_in_total"), other_in0);

    wsc_close(a);
    wsc_close(b);
    int64_t deadline = h_now_ms() + 5000;
    while (gw_metric(mport, workers, "confab_gateway_connections", NULL) != 0 &&
           h_now_ms() < deadline)
        h_sleep_ms(50);
    assert_int_equal(gw_metric(mport, workers, "confab_gateway_connections", NULL), 0);
    assert_int_equal(gw_metric(mport, workers, "confab_gateway_rooms", NULL), 0);
}

/* Every /metrics is valid text format, after some traffic (so the
 * histogram has counts), with a broker down (so some gauges are 0). */
static void test_metrics_text_format(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 2, .workers = 2}, &mport, &bport);
    const int port = fx.node.port;
    for (int w = 0; w < 2; w++)
        free(wait_status(mport + w, "/readyz", 200, 10000));
    refused_upgrade(port, "?token=not-a-token");
    struct wsc *a = member(port, "alice", NULL), *b = member(port, "bob", NULL);
    struct wsc *both[] = {a, b};
    settle(both, 2);
    exactly_once(a, both, 2, "hello", "alice");
    wsc_close(a);
    wsc_close(b);

    int failures = 0;
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            h_stop(&fx.node.broker[1], SIGKILL, 2000);
            free(wait_status(port, "/readyz", 503, 5000));
        }
        int ports[] = {mport, mport + 1, bport, bport + 1};
        for (int i = 0; i < 4; i++) {
            if (round == 1 && ports[i] == bport + 1)
                continue;
            char *t = scrape(ports[i]);
            const char *bad = prom_check(t);
            if (bad) {
                printf("----- /metrics on port %d -----\n%s", ports[i], t);
                printf("=> %s\n", bad);
                failures++;
            }
            free(t);
        }
    }
    if (failures)
        fail_msg("%d scrapes were not valid Prometheus text format (see above)", failures);
}

/* ---- logs ------------------------------------------------------------------ */

/* Every line of p's log is one JSON object with exactly the documented
 * keys; returns how many lines there were. `user` must appear, intact, in
 * some msg. */
static int expect_json_log(const struct h_proc *p, pid_t pid, const char *process, const char *user)
{
    FILE *f = fopen(p->log, "r");
    assert_non_null(f);
    regex_t ts;
    assert_int_equal(regcomp(&ts,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    char line[8192];
    int n = 0, bad = 0;
    bool user_seen = !user;
    while (fgets(line, sizeof line, f)) {
        n++;
        json_error_t err;
        json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &err);
        const char *why = NULL;
        static const char *const keys[] = {"ts", "level", "process", "pid", "module", "msg"};
        if (!j || !json_is_object(j))
            why = err.text;
        else if (json_object_size(j) != 6)
            why = "not exactly ts, level, process, pid, module, msg";
        for (int k = 0; !why && k < 6; k++)
            if (!json_object_get(j, keys[k]))
                why = keys[k];
        const char *lv = j ? json_string_value(json_object_get(j, "level")) : NULL;
        const char *ps = j ? json_string_value(json_object_get(j, "process")) : NULL;
        const char *when = j ? json_string_value(json_object_get(j, "ts")) : NULL;
        const char *mod = j ? json_string_value(json_object_get(j, "module")) : NULL;
        const char *msg = j ? json_string_value(json_object_get(j, "msg")) : NULL;
        if (!why && (!when || regexec(&ts, when, 0, NULL, 0)))
            why = "ts is not UTC RFC 3339 with milliseconds";
        if (!why && (!lv || (strcmp(lv, "debug") && strcmp(lv, "info") && strcmp(lv, "warn") &&
                             strcmp(lv, "error"))))
            why = "level";
        if (!why && (!ps || strncmp(ps, process, strlen(process))))
            why = "process";
        if (!why && (!json_is_integer(json_object_get(j, "pid")) ||
                     json_integer_value(json_object_get(j, "pid")) != pid))
            why = "pid";
        if (!why && (!mod || !*mod))
            why = "module";
        if (!why && !msg)
            why = "msg";
        if (!why && user && strstr(msg, user))
            user_seen = true;
        json_decref(j);
        if (why) {
            printf("%s line %d is not a JSON log line (%s): %s", p->name, n, why, line);
            bad++;
        }
    }
    fclose(f);
    regfree(&ts);
    if (bad)
        fail_msg("%s: %d of %d lines are not JSON log lines (see above)", p->name, bad, n);
    if (!user_seen)
        fail_msg("%s: no msg mentions %s intact", p->name, user);
    return n;
}

static void test_log_format_json(void **state)
{
    (void)state;
    int mport, bport;
    static const char *const more[] = {"LOG_FORMAT=json", NULL};
    up(&(struct setup){.brokers = 1, .workers = 1, .more = more}, &mport, &bport);
    const int port = fx.node.port;
    pid_t gw = fx.node.gateway.pid, br = fx.node.broker[0].pid;
    /* Traffic that logs: a login with a name that needs escaping, a refused
     * upgrade, a chat, a broker restart, a drain. */
    static const char user[] = "zo\xc3\xab \"q\" \\ \xe2\x82\xac";
    char *tok = h_login(port, user);
    assert_non_null(tok);
    free(tok);
    refused_upgrade(port, "?token=not-a-token");
    struct wsc *c = member(port, "alice", "lobby");
    ready(c, "hello");
    wsc_close(c);
    assert_int_equal(h_node_stop(&fx.node), 0);

    int ng = expect_json_log(&fx.node.gateway, gw, "gateway", user);
    int nb = expect_json_log(&fx.node.broker[0], br, "broker", NULL);
    printf("gateway: %d JSON lines, broker: %d JSON lines\n", ng, nb);
    assert_true(ng >= 5);
    assert_true(nb >= 3);
    assert_true(h_log_contains(&fx.node.gateway, "\"msg\":\"worker 0 stopped\"", 0));
}

/* What a client sends and a log line quotes (here the Origin header of a
 * refused upgrade) must not break the JSON: bytes that are not UTF-8, and a
 * quote cut short in the middle of a character, still give valid lines. */
static void test_log_json_survives_hostile_input(void **state)
{
    (void)state;
    int mport, bport;
    /* debug: refusals past the first of a second are logged at DEBUG */
    static const char *const more[] = {"LOG_FORMAT=json", "LOG_LEVEL=debug", NULL};
    up(&(struct setup){.brokers = 1, .workers = 1, .more = more}, &mport, &bport);
    const int port = fx.node.port;
    pid_t gw = fx.node.gateway.pid;
    char long_origin[200];
    snprintf(long_origin, sizeof long_origin, "Origin: http://%0*d\xc3\xa9.example\r\n", 92, 0);
    const char *const origins[] = {"Origin: http://\xff\xfe\x80"
                                   "evil.example\r\n",
                                   "Origin: http://\xe2\x82.example\r\n", long_origin, NULL};
    for (int i = 0; origins[i]; i++) {
        int st = 0;
        struct wsc *c = wsc_connect(port, "/ws", origins[i], 0, &st);
        if (c)
            wsc_close(c);
        assert_null(c);
        assert_int_equal(st, 403);
    }
    assert_int_equal(h_node_stop(&fx.node), 0);
    /* the refusals were logged, the first at INFO and the others at DEBUG */
    assert_true(h_log_contains(&fx.node.gateway, "at most one such line a second", 0));
    assert_true(h_log_contains(&fx.node.gateway, ".example is not allowed\"", 0));
    expect_json_log(&fx.node.gateway, gw, "gateway", NULL);
}

/* Under systemd with StandardError=journal, JOURNAL_STREAM names stderr:
 * the gateway then logs to the journal natively, and nothing to stderr. */
static void test_journal_stream_takes_the_logs(void **state)
{
    (void)state;
    for (int match = 0; match < 2; match++) {
        struct h_proc p;
        char name[32], log[512], js[96], portv[32];
        snprintf(name, sizeof name, "journal-%d", match);
        snprintf(log, sizeof log, "%s/%s.log", h_tmpdir(), name);
        FILE *f = fopen(log, "w"); /* the same file the harness opens for it */
        assert_non_null(f);
        fclose(f);
        struct stat st;
        assert_int_equal(stat(log, &st), 0);
        snprintf(js, sizeof js, "JOURNAL_STREAM=%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + (match ? 0 : 1));
        snprintf(portv, sizeof portv, "PORT=%d", h_free_port());
        const char *env[] = {js,
                             portv,
                             "JWT_SECRET=" H_JWT_SECRET,
                             "GATEWAY_WORKERS=1",
                             "LISTEN_ADDR=127.0.0.1",
                             "BROKERS=1",
                             "RUN_DIR=/nonexistent",
                             NULL};
        char *argv[] = {(char *)h_bin("gateway"), NULL};
        assert_int_equal(h_spawn(&p, name, h_tmpdir(), argv, env), 0);
        assert_int_equal(h_wait_health(atoi(portv + 5), 503, 10000), 0); /* serving, no broker */
        assert_int_equal(h_stop_clean(&p), 0);
        assert_int_equal(stat(log, &st), 0);
        if (match && st.st_size != 0) {
            h_dump_log(&p, 10);
            fail_msg("with JOURNAL_STREAM naming its stderr the gateway still wrote %lld bytes "
                     "there",
                     (long long)st.st_size);
        }
        if (!match)
            assert_true(h_log_contains(&p, "worker 0 stopped", 0)); /* another stream: stderr */
    }
}

/* Native journald logging, seen the way journald sees it: the gateway runs
 * in a private mount namespace whose /run/systemd/journal/socket is a
 * datagram socket this test owns. Every line must arrive (with or without a
 * room or connection in it) with its fields. Needs root for the namespace,
 * as CI has; without it the test says so and checks nothing more. */
/* Read while the gateway runs: a datagram socket takes net.unix.max_dgram_qlen
 * (10 here) unread datagrams, then the gateway's next line blocks. */
struct journal_reader {
    int fd;
    atomic_bool stop;
    int n;
    char got[256][2048];
};

static void *journal_read(void *arg)
{
    struct journal_reader *r = arg;
    for (;;) {
        struct pollfd pfd = {r->fd, POLLIN, 0};
        int ready = poll(&pfd, 1, 200);
        if (ready <= 0) {
            if (atomic_load(&r->stop))
                return NULL;
            continue;
        }
        char sink[2048];
        char *into = r->n < 256 ? r->got[r->n] : sink;
        ssize_t len = recv(r->fd, into, sizeof sink - 1, 0);
        if (len <= 0)
            return NULL;
        into[len] = '\0';
        if (into != sink)
            r->n++;
    }
}

static bool journal_has(char (*got)[2048], int n, const char *a, const char *b, const char *c)
{
    for (int i = 0; i < n; i++)
        if (strstr(got[i], a) && (!b || strstr(got[i], b)) && (!c || strstr(got[i], c)))
            return true;
    return false;
}

static void test_journal_gets_every_line_with_fields(void **state)
{
    (void)state;
    if (system("unshare -m true 2>/dev/null") != 0) {
        printf("SKIPPED: no private mount namespace here (needs root); journald not checked\n");
        return;
    }
    char dir[300], sockpath[340], log[512], js[96], portv[32], jdir[320];
    snprintf(dir, sizeof dir, "%s/journal-native", h_tmpdir());
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(sockpath, sizeof sockpath, "%s/socket", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(sockpath) < sizeof sa.sun_path);
    memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);

    snprintf(log, sizeof log, "%s/journal-native.log", h_tmpdir());
    FILE *f = fopen(log, "w"); /* the file the harness opens as its stderr */
    assert_non_null(f);
    fclose(f);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    snprintf(js, sizeof js, "JOURNAL_STREAM=%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    int port = h_free_port();
    snprintf(portv, sizeof portv, "PORT=%d", port);
    snprintf(jdir, sizeof jdir, "JDIR=%s", dir);
    const char *env[] = {js, portv, jdir, "JWT_SECRET=" H_JWT_SECRET, "GATEWAY_WORKERS=1",
                         "LISTEN_ADDR=127.0.0.1", "BROKERS=1", "RUN_DIR=/nonexistent", NULL};
    char *argv[] = {"/usr/bin/unshare", "-m", "/bin/sh", "-c",
                    "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && "
                    "mount --bind \"$JDIR\" /run/systemd/journal && exec \"$0\"",
                    (char *)h_bin("gateway"), NULL};
    static struct journal_reader rd;
    rd.fd = fd;
    rd.n = 0;
    atomic_store(&rd.stop, false);
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, journal_read, &rd), 0);
    struct h_proc p;
    assert_int_equal(h_spawn(&p, "journal-native", h_tmpdir(), argv, env), 0);
    assert_int_equal(h_wait_health(port, 503, 10000), 0); /* serving, no broker */
    struct wsc *c = wsc_connect_user(port, "alice");
    assert_non_null(c);
    wsc_close(c);
    /* a name that reads like a field names no room */
    c = wsc_connect_user(port, "room spoofed");
    assert_non_null(c);
    wsc_close(c);
    h_sleep_ms(200);
    int stopped = h_stop_clean(&p);
    atomic_store(&rd.stop, true);
    assert_int_equal(pthread_join(reader, NULL), 0);
    close(fd);
    assert_int_equal(stopped, 0);
    char(*got)[2048] = rd.got;
    int n = rd.n;
    assert_int_equal(stat(log, &st), 0);
    assert_int_equal(st.st_size, 0); /* nothing on stderr */
    /* a line naming no room and no connection */
    assert_true(journal_has(got, n, "MESSAGE=gateway: worker 0 listening", "PRIORITY=6\n",
                            "SYSLOG_IDENTIFIER=confab-gateway"));
    assert_false(journal_has(got, n, "MESSAGE=gateway: worker 0 listening", "CONFAB_CONN=",
                             NULL));
    /* a line naming a connection carries it as a field */
    assert_true(journal_has(got, n, "alice connected", "CONFAB_CONN=1\n", "CONFAB_MODULE=ws\n"));
    assert_true(journal_has(got, n, "room spoofed connected", "CONFAB_CONN=2\n", NULL));
    assert_false(journal_has(got, n, "room spoofed connected", "CONFAB_ROOM=", NULL));
    /* and the warnings and the last line of the process */
    assert_true(journal_has(got, n, "PRIORITY=4\n", NULL, NULL));
    assert_true(journal_has(got, n, "worker 0 stopped", NULL, NULL));
}

/* A broker builds Redis' replies in a 16 KiB arena per connection
 * (broker/rreply.h); what does not fit is malloc()ed and counted, per
 * server. Messages and acks fit; a history page of ten 3000-byte messages
 * does not. */
static void test_replies_past_the_arena_are_counted(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(mport, "/readyz", 200, 10000));
    const char *name = "confab_broker_redis_reply_fallbacks_total";
    assert_int_equal(broker_metric(bport, 0, name), 0);

    struct v1c *c = v1_member(fx.node.port, "alice", V1_JSON);
    join_quietly(c, "big");
    char text[3001];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    for (int i = 0; i < 10; i++)
        send_ok(c, "big", text, NULL);
    assert_int_equal(broker_metric(bport, 0, name), 0);

    assert_int_equal(v1_send(c, "history", json_pack("{s:s, s:i, s:s}", "room", "big", "limit",
                                                     10, "id", "h-1")),
                     0);
    json_t *ev = v1_wait(c, V1_WAIT, "history", "id", "h-1", NULL);
    V1_MUST(c, ev, "history");
    assert_int_equal(json_array_size(json_object_get(pl(ev), "messages")), 10);
    json_decref(ev);
    assert_true(broker_metric(bport, 0, name) > 0);
    v1_close(c);
}

/* A request the broker answers with an error is counted, by reason, and
 * still counted as a request. Before, confab_broker_requests_total was all
 * there was, and it counted such a send as taken on. */
static void test_failed_requests_are_counted_by_reason(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(bport, "/readyz", 200, 10000));
    const char *name = "confab_broker_failed_requests_total";
    struct v1c *c = v1_member(fx.node.port, "alice", V1_JSON);
    join_quietly(c, "fails");
    send_ok(c, "fails", "before", "ok-1");
    char *t = scrape(bport);
    assert_int_equal(metric(t, name, NULL), 0);
    double req0 = metric(t, "confab_broker_requests_total", NULL);
    free(t);

    h_redis_stop(&fx.redis);
    free(wait_status(bport, "/readyz", 503, 5000));
    send_req(c, "fails", "lost", "f-1");
    expect_error(c, "unavailable", "f-1", "fails");
    t = scrape(bport);
    assert_int_equal(metric(t, name, "reason=\"redis_down\""), 1);
    assert_int_equal(metric(t, name, NULL), 1);
    assert_true(metric(t, "confab_broker_requests_total", NULL) - req0 >= 1);
    free(t);
    v1_close(c);
}

/* A legacy client's message has no answer to carry an error, so one Redis
 * refuses (here: out of memory) must at least be counted and logged as
 * dropped, as monitoring.md says; before, it vanished without a trace but
 * a capped "script failed" line. */
static void test_legacy_messages_redis_refuses_are_counted(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(bport, "/readyz", 200, 10000));
    struct wsc *c = member(fx.node.port, "lou", "refusing");
    ready(c, "before");
    const char *name = "confab_broker_dropped_messages_total";
    double d0 = broker_metric(bport, 0, name);
    long mark = h_log_mark(&fx.node.broker[0]);
    static const char *const oom[] = {"CONFIG", "SET", "maxmemory", "1", NULL};
    static const char *const ok[] = {"CONFIG", "SET", "maxmemory", "0", NULL};
    assert_int_equal(h_redis_cli(&fx.redis, oom), 0);
    say(c, "refused by Redis");
    int64_t until = h_now_ms() + 5000;
    while (broker_metric(bport, 0, name) < d0 + 1 && h_now_ms() < until)
        usleep(50 * 1000);
    assert_int_equal(h_redis_cli(&fx.redis, ok), 0);
    if (broker_metric(bport, 0, name) != d0 + 1) {
        h_dump_log(&fx.node.broker[0], 20);
        fail_msg("%s: %.0f, want %.0f", name, broker_metric(bport, 0, name), d0 + 1);
    }
    assert_true(h_log_contains_from(&fx.node.broker[0], mark,
                                    "message for room refusing dropped: Redis refused it", 0));
    wsc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_metrics_follow_traffic, down),
        cmocka_unit_test_teardown(test_metrics_text_format, down),
        cmocka_unit_test_teardown(test_replies_past_the_arena_are_counted, down),
        cmocka_unit_test_teardown(test_failed_requests_are_counted_by_reason, down),
        cmocka_unit_test_teardown(test_legacy_messages_redis_refuses_are_counted, down),
        cmocka_unit_test_teardown(test_log_format_json, down),
        cmocka_unit_test_teardown(test_log_json_survives_hostile_input, down),
        cmocka_unit_test(test_journal_stream_takes_the_logs),
        cmocka_unit_test(test_journal_gets_every_line_with_fields),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
