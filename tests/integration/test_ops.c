/* Operating confab: what Prometheus, probes and log collectors see.
 *
 * - /metrics of every gateway process (METRICS_PORT + worker, or the public
 *   port when METRICS_PORT is unset) and every broker (BROKER_METRICS_PORT +
 *   shard) is valid text format, and its counters move with the traffic;
 * - /readyz follows the brokers (one killed; one whose delivery canary stops
 *   coming back, because Redis runs no writes or because its subscription is
 *   wedged) and the drain, while /healthz says alive and linked;
 * - the operations ports serve those routes only, on LISTEN_ADDR only;
 * - LOG_FORMAT=json writes one JSON object per line, whatever a client
 *   sends; under the journal (JOURNAL_STREAM naming stderr) nothing goes to
 *   stderr. */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jwt.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "prom.h"
#include "rproxy.h"
#include "shard.h"

static struct h_fixture fx;
static char g_env[4][64];

struct setup {
    int brokers, workers;
    bool no_metrics_port;    /* METRICS_PORT unset: /metrics on the public port */
    bool via_proxy;          /* Redis reached through g_proxy */
    const char *const *more; /* extra settings, NULL terminated */
};

static struct rproxy g_proxy;
static char g_proxy_addr[64];

/* Redis and a node as described, with BROKER_METRICS_PORT (and unless told
 * otherwise METRICS_PORT) set; their bases go to *bport and *mport (0 when
 * unset). */
static void up(const struct setup *su, int *mport, int *bport)
{
    *mport = su->no_metrics_port ? 0 : h_free_ports(su->workers);
    *bport = h_free_ports(su->brokers);
    snprintf(g_env[0], sizeof g_env[0], "METRICS_PORT=%d", *mport);
    snprintf(g_env[1], sizeof g_env[1], "BROKER_METRICS_PORT=%d", *bport);
    assert_int_equal(h_redis_start(&fx.redis, h_tmpdir()), 0);
    const char *addr = fx.redis.addr;
    if (su->via_proxy) {
        assert_int_equal(rproxy_start(&g_proxy, fx.redis.port), 0);
        snprintf(g_proxy_addr, sizeof g_proxy_addr, "127.0.0.1:%d", g_proxy.port);
        addr = g_proxy_addr;
    }
    h_node_init(&fx.node, addr);
    fx.node.brokers = su->brokers;
    fx.node.workers = su->workers;
    int k = 0;
    if (*mport)
        fx.node.extra_env[k++] = g_env[0];
    fx.node.extra_env[k++] = g_env[1];
    for (int i = 0; su->more && su->more[i]; i++)
        fx.node.extra_env[k++] = su->more[i];
    assert_int_equal(h_node_start(&fx.node), 0);
}

static int down(void **state)
{
    (void)state;
    int rc = h_fixture_down(&fx);
    rproxy_stop(&g_proxy);
    memset(&fx, 0, sizeof fx);
    return rc;
}

/* GET path; the status (0 when nothing answered) and the body (malloc'd, or
 * NULL). */
static char *get(int port, const char *path, int *status)
{
    struct h_resp r;
    if (h_http(port, "GET", path, NULL, NULL, 0, &r) < 0) {
        *status = 0;
        return NULL;
    }
    *status = r.status;
    char *body = r.body;
    r.body = NULL;
    h_resp_free(&r);
    return body;
}

static int status_of(int port, const char *method, const char *path)
{
    struct h_resp r;
    if (h_http(port, method, path, NULL, NULL, 0, &r) < 0)
        return 0;
    int s = r.status;
    h_resp_free(&r);
    return s;
}

/* GET /metrics: 200 with the Prometheus content type (the format itself is
 * checked by test_metrics_text_format, so that a format bug fails that test
 * and leaves the counters to the others). */
static char *scrape(int port)
{
    struct h_resp r;
    if (h_http(port, "GET", "/metrics", NULL, NULL, 0, &r) < 0)
        fail_msg("no answer to GET /metrics on port %d", port);
    char ctype[128];
    if (r.status != 200 || !h_resp_header(&r, "content-type", ctype, sizeof ctype) ||
        strncmp(ctype, "text/plain; version=0.0.4", 25) != 0) {
        printf("%s\n%s\n", r.head, r.body);
        fail_msg("GET /metrics on port %d: status %d, expected 200 with text/plain; "
                 "version=0.0.4",
                 port, r.status);
    }
    char *body = r.body;
    r.body = NULL;
    h_resp_free(&r);
    return body;
}

/* The sum of the matching samples; at least one must exist. */
static double metric(const char *text, const char *name, const char *match)
{
    int n;
    double v = prom_sum(text, name, match, &n);
    if (n == 0) {
        printf("%s", text);
        fail_msg("no sample %s{%s}", name, match ? match : "");
    }
    return v;
}

/* A metric summed over every gateway worker's METRICS_PORT. */
static double gw_metric(int mport, int workers, const char *name, const char *match)
{
    double v = 0;
    for (int w = 0; w < workers; w++) {
        char *t = scrape(mport + w);
        v += metric(t, name, match);
        free(t);
    }
    return v;
}

static double broker_metric(int bport, int shard, const char *name)
{
    char *t = scrape(bport + shard);
    char match[32];
    snprintf(match, sizeof match, "shard=\"%d\"", shard);
    double v = metric(t, name, match);
    free(t);
    return v;
}

/* Polls GET path until it answers `status`; returns the body or fails. */
static char *wait_status(int port, const char *path, int status, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    int last = 0;
    char *body = NULL;
    do {
        free(body);
        body = get(port, path, &last);
        if (last == status)
            return body;
        h_sleep_ms(50);
    } while (h_now_ms() < deadline);
    h_node_dump_logs(&fx.node);
    fail_msg("GET %s on port %d: still %d (%s) after %d ms, expected %d", path, port, last,
             body ? body : "", timeout_ms, status);
    return NULL;
}

static void expect_readyz(int port, int status, const char *state, int linked, int ready_n,
                          int timeout_ms)
{
    char *body = wait_status(port, "/readyz", status, timeout_ms);
    json_t *j = json_loads(body, 0, NULL);
    const char *got = j ? json_string_value(json_object_get(j, "status")) : NULL;
    if (!got || strcmp(got, state) ||
        json_integer_value(json_object_get(j, "brokers")) != fx.node.brokers ||
        json_integer_value(json_object_get(j, "linked")) != linked ||
        json_integer_value(json_object_get(j, "ready")) != ready_n)
        fail_msg("/readyz answered %s; expected status %s, brokers %d, linked %d, ready %d", body,
                 state, fx.node.brokers, linked, ready_n);
    json_decref(j);
    free(body);
}

static bool port_closed(int port)
{
    int fd = h_tcp_connect(port, 0);
    if (fd >= 0) {
        close(fd);
        return false;
    }
    return errno == ECONNREFUSED;
}

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

/* A room owned by `shard` of `shards`. */
static const char *room_on(uint32_t shard, uint32_t shards)
{
    static char name[32];
    for (int i = 0;; i++) {
        snprintf(name, sizeof name, "ops-%d", i);
        if (cf_shard_of(name, strlen(name), shards) == shard)
            return name;
    }
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

/* connect() to addr:port; true when refused. */
static bool refused_on(const char *addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, addr, &sa.sin_addr);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    close(fd);
    return rc < 0 && err == ECONNREFUSED;
}

/* LISTEN_ADDR holds for every listener: with 127.0.0.1, nothing answers on
 * 127.0.0.2 (also loopback, so a listener bound to every address would). */
static void test_operations_ports_bind_listen_addr(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(mport, "/readyz", 200, 10000));
    free(wait_status(bport, "/readyz", 200, 10000));
    const struct {
        const char *what;
        int port;
    } ports[] = {{"PORT", fx.node.port}, {"METRICS_PORT", mport}, {"BROKER_METRICS_PORT", bport}};
    int wrong = 0;
    for (int i = 0; i < 3; i++)
        if (!refused_on("127.0.0.2", ports[i].port)) {
            printf("%s %d answers on 127.0.0.2 although LISTEN_ADDR=127.0.0.1\n", ports[i].what,
                   ports[i].port);
            wrong++;
        }
    if (wrong)
        fail_msg("%d listeners ignore LISTEN_ADDR (see above)", wrong);
}

static void test_metrics_ports_serve_only_operations(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(mport, "/readyz", 200, 10000));
    free(wait_status(bport, "/readyz", 200, 10000));
    assert_int_equal(status_of(mport, "GET", "/healthz"), 200);
    assert_int_equal(status_of(bport, "GET", "/healthz"), 200);

    /* The gateway's METRICS_PORT: no frontend, no login, no WebSocket. */
    static const char *const paths[] = {"/",         "/index.html", "/login", "/ws", "/api/publish",
                                        "/metricsx", "/readyz/",    NULL};
    for (int i = 0; paths[i]; i++) {
        int st = status_of(mport, "GET", paths[i]);
        if (st != 404)
            fail_msg("GET %s on METRICS_PORT answered %d, expected 404", paths[i], st);
    }
    int st = status_of(mport, "POST", "/login");
    if (st == 200 || st == 0)
        fail_msg("POST /login on METRICS_PORT answered %d", st);
    char *tok = h_login(fx.node.port, "alice");
    assert_non_null(tok);
    char path[1024];
    snprintf(path, sizeof path, "/ws?token=%s", tok);
    free(tok);
    struct wsc *c = wsc_connect(mport, path, NULL, 0, &st);
    if (c) {
        wsc_close(c);
        fail_msg("METRICS_PORT accepted a WebSocket upgrade");
    }
    assert_int_not_equal(st, 101);
    /* ... while the main port still takes it. */
    c = wsc_connect(fx.node.port, path, NULL, 0, &st);
    assert_non_null(c);
    wsc_close(c);

    /* The broker's port: three paths, GET only. */
    assert_int_equal(status_of(bport, "GET", "/"), 404);
    assert_int_equal(status_of(bport, "GET", "/ws"), 404);
    assert_int_equal(status_of(bport, "POST", "/metrics"), 405);
    assert_int_equal(status_of(bport, "HEAD", "/metrics"), 200);
}

/* ---- readiness ------------------------------------------------------------ */

/* A client in `room` that never reads, flooded until the gateway holds
 * messages for it that the kernel would not take (messages queued to
 * clients outrun frames written): its close frame cannot go out either, so
 * a drain has to wait for it (the close grace, at most DRAIN_TIMEOUT_MS). */
static struct wsc *stalled_client(int port, int mport, const char *room)
{
    char *token = h_login(port, "stuck"), path[4200];
    snprintf(path, sizeof path, "/ws?token=%s", token);
    free(token);
    struct wsc *slow = wsc_connect(port, path, NULL, 4096, NULL);
    assert_non_null(slow);
    assert_int_equal(wsc_send_event(slow, "change_room", "name", room), 0);
    struct wsc *sender = member(port, "flood", room);
    ready(sender, "flood-ready");
    char text[1100];
    memset(text, 'z', 1000);
    for (int sent = 0; sent < 4000;) {
        for (int i = 0; i < 10; i++) {
            snprintf(text + 1000, 100, "-%d", sent++);
            say(sender, text);
            json_t *ev = wsc_recv_json(sender, 5000); /* its own copy */
            assert_non_null(ev);
            json_decref(ev);
        }
        char *t = scrape(mport);
        double held = metric(t, "confab_gateway_messages_out_total", NULL) -
                      metric(t, "confab_gateway_frames_out_total", NULL);
        free(t);
        if (held >= 3) {
            wsc_close(sender);
            return slow;
        }
    }
    fail_msg("the gateway never held messages for a client that does not read");
    return NULL;
}

static void test_readiness_follows_brokers_and_drain(void **state)
{
    (void)state;
    int mport, bport;
    static const char *const more[] = {"DRAIN_TIMEOUT_MS=4000", NULL};
    up(&(struct setup){.brokers = 2, .workers = 1, .more = more}, &mport, &bport);
    const int port = fx.node.port;
    expect_readyz(port, 200, "ready", 2, 2, 10000);
    expect_readyz(mport, 200, "ready", 2, 2, 1000);
    for (int s = 0; s < 2; s++)
        free(wait_status(bport + s, "/readyz", 200, 5000));

    const char *room = room_on(1, 2);
    struct wsc *c = member(port, "alice", room);
    ready(c, "before");

    /* Broker 1 dies: not ready, and not healthy either (a room shard is
     * unreachable); its port is gone. */
    h_stop(&fx.node.broker[1], SIGKILL, 2000);
    expect_readyz(port, 503, "not ready", 1, 1, 5000);
    assert_int_equal(status_of(port, "GET", "/healthz"), 503);
    expect_readyz(mport, 503, "not ready", 1, 1, 1000);
    char *t = scrape(mport);
    assert_int_equal(metric(t, "confab_gateway_broker_link_up", "shard=\"1\""), 0);
    assert_int_equal(metric(t, "confab_gateway_broker_ready", "shard=\"1\""), 0);
    assert_int_equal(metric(t, "confab_gateway_broker_link_up", "shard=\"0\""), 1);
    assert_int_equal(metric(t, "confab_gateway_broker_ready", "shard=\"0\""), 1);
    double dropped = metric(t, "confab_gateway_sends_dropped_total", NULL);
    free(t);
    assert_true(port_closed(bport + 1));
    assert_int_equal(status_of(bport, "GET", "/readyz"), 200);
    /* A legacy send into the dead shard's room is dropped, and counted. */
    say(c, "into the void");
    int64_t deadline = h_now_ms() + 3000;
    while (gw_metric(mport, 1, "confab_gateway_sends_dropped_total", NULL) == dropped &&
           h_now_ms() < deadline)
        h_sleep_ms(50);
    assert_int_equal(gw_metric(mport, 1, "confab_gateway_sends_dropped_total", NULL), dropped + 1);

    /* Back: ready again, without a gateway restart. */
    assert_int_equal(h_broker_start(&fx.node, 1), 0);
    expect_readyz(port, 200, "ready", 2, 2, 10000);
    assert_int_equal(status_of(port, "GET", "/healthz"), 200);
    free(wait_status(bport + 1, "/readyz", 200, 5000));
    ready(c, "after");

    /* Draining: a stalled client cannot take its close, so the drain lasts
     * a while; meanwhile the public port takes nobody and METRICS_PORT says
     * 503 draining. */
    struct wsc *slow = stalled_client(port, mport, room_on(0, 2));
    kill(fx.node.gateway.pid, SIGTERM);
    char *body = wait_status(mport, "/readyz", 503, 3000);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "draining");
    json_decref(j);
    free(body);
    t = scrape(mport);
    assert_int_equal(metric(t, "confab_gateway_draining", NULL), 1);
    free(t);
    assert_true(port_closed(port));
    assert_int_equal(wsc_wait_close(c, 3000), 1001); /* a client that reads is told */
    wsc_close(c);
    int status = h_wait_exit(&fx.node.gateway, 10000);
    assert_true(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    wsc_abort(slow);
}

/* ---- the delivery canary --------------------------------------------------- */

static int redis_cli(const char *a, const char *b, const char *c, const char *d)
{
    const char *args[] = {a, b, c, d, NULL};
    return h_redis_cli(&fx.redis, args);
}

/* Polls until the broker's /readyz is 503 and confab_broker_canary_ok 0 and
 * both have stayed so for 2 s (a reconnect makes a 503 of a few ms that is
 * not what is waited for); returns the ms that took. */
static int64_t wait_not_ready(int bport, int timeout_ms)
{
    int64_t t0 = h_now_ms(), since = 0;
    for (;;) {
        int st;
        free(get(bport, "/readyz", &st));
        bool down = st == 503 && broker_metric(bport, 0, "confab_broker_canary_ok") == 0;
        if (!down)
            since = 0;
        else if (!since)
            since = h_now_ms();
        else if (h_now_ms() - since >= 2000)
            return since - t0;
        if (h_now_ms() - t0 > timeout_ms) {
            h_node_dump_logs(&fx.node);
            fail_msg("the broker was not steadily unready within %d ms", timeout_ms);
        }
        h_sleep_ms(100);
    }
}

static void test_canary_notices_redis_refusing_writes(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1, .no_metrics_port = true}, &mport, &bport);
    const int port = fx.node.port;
    expect_readyz(port, 200, "ready", 1, 1, 10000);
    free(wait_status(bport, "/readyz", 200, 5000));
    assert_int_equal(broker_metric(bport, 0, "confab_broker_canary_ok"), 1);
    assert_true(broker_metric(bport, 0, "confab_broker_canary_rtt_seconds") < 1.0);
    double in0 = broker_metric(bport, 0, "confab_broker_messages_in_total");

    /* Redis still answers PING but runs no writes: nothing published comes
     * back. The canary is due within 15 s plus one 5 s round. */
    assert_int_equal(redis_cli("CLIENT", "PAUSE", "60000", "WRITE"), 0);
    int64_t took = wait_not_ready(bport, 25000);
    printf("broker steadily not ready %lld ms after Redis stopped running writes\n",
           (long long)took);
    /* The gateway follows through the broker's state frame, and stays
     * healthy: it is linked, the broker is alive. */
    expect_readyz(port, 503, "not ready", 1, 0, 3000);
    assert_int_equal(status_of(port, "GET", "/healthz"), 200);
    assert_int_equal(status_of(bport, "GET", "/healthz"), 200);
    char *t = scrape(port); /* no METRICS_PORT: /metrics is on the public port */
    assert_int_equal(metric(t, "confab_gateway_broker_link_up", NULL), 1);
    assert_int_equal(metric(t, "confab_gateway_broker_ready", NULL), 0);
    free(t);

    /* Writes run again: the canary comes back, everything is ready. */
    long mark = h_log_mark(&fx.node.broker[0]);
    assert_int_equal(redis_cli("CLIENT", "UNPAUSE", NULL, NULL), 0);
    free(wait_status(bport, "/readyz", 200, 10000));
    assert_int_equal(broker_metric(bport, 0, "confab_broker_canary_ok"), 1);
    expect_readyz(port, 200, "ready", 1, 1, 3000);
    assert_true(h_log_contains_from(&fx.node.broker[0], mark, "delivery canary is coming back", 0));
    /* Canaries are not room messages. */
    assert_int_equal(broker_metric(bport, 0, "confab_broker_messages_in_total"), in0);
    struct wsc *c = member(port, "alice", NULL);
    ready(c, "flowing again");
    wsc_close(c);
}

/* The failure the canary exists for: a subscription that silently stops
 * delivering while both Redis connections answer (here a proxy swallows
 * what Redis publishes to the subscriber connection). The broker notices
 * within the canary's bound, says so, resets its subscriber and recovers by
 * itself; the gateway sees it not ready meanwhile. */
static void test_canary_resets_a_wedged_subscription(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1, .no_metrics_port = true, .via_proxy = true},
       &mport, &bport);
    const int port = fx.node.port;
    expect_readyz(port, 200, "ready", 1, 1, 10000);
    free(wait_status(bport, "/readyz", 200, 5000));
    struct wsc *c = member(port, "alice", "wedge");
    ready(c, "before");
    double failures0 = broker_metric(bport, 0, "confab_broker_canary_failures_total");
    double reconnects0 = broker_metric(bport, 0, "confab_broker_redis_reconnects_total");
    long bmark = h_log_mark(&fx.node.broker[0]), gmark = h_log_mark(&fx.node.gateway);

    assert_int_equal(rproxy_wedge(&g_proxy), 0);
    /* Sends are stored, nothing comes back; health and readiness have no
     * idea yet. */
    say(c, "into the wedge");
    assert_true(wsc_quiet(c, 500));
    assert_int_equal(status_of(bport, "GET", "/readyz"), 200);
    assert_int_equal(broker_metric(bport, 0, "confab_broker_redis_up"), 2);

    int64_t t0 = h_now_ms();
    if (!h_log_contains_from(&fx.node.broker[0], bmark, "delivery canary has not come back",
                             25000)) {
        h_node_dump_logs(&fx.node);
        fail_msg("the broker did not notice a wedged subscription within 25 s");
    }
    printf("wedged subscription noticed after %lld ms; %ld messages swallowed\n",
           (long long)(h_now_ms() - t0), rproxy_dropped(&g_proxy));
    assert_true(rproxy_dropped(&g_proxy) >= 2); /* the room message and a canary at least */
    assert_true(h_log_contains_from(&fx.node.broker[0], bmark, "resetting the subscriber", 0));

    /* It cures itself: a new subscriber connection (not wedged), the
     * canary back, ready again; the gateway was told both. */
    free(wait_status(bport, "/readyz", 200, 10000));
    expect_readyz(port, 200, "ready", 1, 1, 3000);
    assert_int_equal(broker_metric(bport, 0, "confab_broker_canary_failures_total"), failures0 + 1);
    assert_true(broker_metric(bport, 0, "confab_broker_redis_reconnects_total") >= reconnects0 + 1);
    assert_int_equal(broker_metric(bport, 0, "confab_broker_canary_ok"), 1);
    assert_true(h_log_contains_from(&fx.node.gateway, gmark, "broker 0 is NOT ready", 0));
    assert_true(h_log_contains_from(&fx.node.gateway, gmark, "broker 0 is ready", 0));
    /* and the room flows again, without the client doing anything */
    ready(c, "after");
    wsc_close(c);
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
    static const char *const more[] = {"LOG_FORMAT=json", NULL};
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
    assert_true(h_log_contains(&fx.node.gateway, "origin", 0)); /* the refusals were logged */
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
    struct h_proc p;
    assert_int_equal(h_spawn(&p, "journal-native", h_tmpdir(), argv, env), 0);
    assert_int_equal(h_wait_health(port, 503, 10000), 0); /* serving, no broker */
    struct wsc *c = wsc_connect_user(port, "alice");
    assert_non_null(c);
    wsc_close(c);
    h_sleep_ms(200);
    assert_int_equal(h_stop_clean(&p), 0);

    static char got[256][2048];
    int n = 0;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (n >= 256 || poll(&pfd, 1, 200) <= 0)
            break;
        ssize_t r = recv(fd, got[n], sizeof got[n] - 1, 0);
        if (r <= 0)
            break;
        got[n++][r] = '\0';
    }
    close(fd);
    assert_int_equal(stat(log, &st), 0);
    assert_int_equal(st.st_size, 0); /* nothing on stderr */
    /* a line naming no room and no connection */
    assert_true(journal_has(got, n, "MESSAGE=gateway: worker 0 listening", "PRIORITY=6\n",
                            "SYSLOG_IDENTIFIER=confab-gateway"));
    assert_false(journal_has(got, n, "MESSAGE=gateway: worker 0 listening", "CONFAB_CONN=",
                             NULL));
    /* a line naming a connection carries it as a field */
    assert_true(journal_has(got, n, "alice connected", "CONFAB_CONN=1\n", "CONFAB_MODULE=ws\n"));
    /* and the warnings and the last line of the process */
    assert_true(journal_has(got, n, "PRIORITY=4\n", NULL, NULL));
    assert_true(journal_has(got, n, "worker 0 stopped", NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_metrics_follow_traffic, down),
        cmocka_unit_test_teardown(test_metrics_text_format, down),
        cmocka_unit_test_teardown(test_metrics_ports_serve_only_operations, down),
        cmocka_unit_test_teardown(test_readiness_follows_brokers_and_drain, down),
        cmocka_unit_test_teardown(test_operations_ports_bind_listen_addr, down),
        cmocka_unit_test_teardown(test_log_format_json, down),
        cmocka_unit_test_teardown(test_log_json_survives_hostile_input, down),
        cmocka_unit_test(test_journal_stream_takes_the_logs),
        cmocka_unit_test(test_journal_gets_every_line_with_fields),
        cmocka_unit_test_teardown(test_canary_notices_redis_refusing_writes, down),
        cmocka_unit_test_teardown(test_canary_resets_a_wedged_subscription, down),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
