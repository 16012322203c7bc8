/* Shared by the operations suites (test_ops*.c): each test starts its own
 * Redis and node with up(), with the operations ports set, and its teardown
 * down() stops them; the rest reads those ports as a scraper or a probe
 * would. */
#ifndef TEST_INTEGRATION_OPS_H
#define TEST_INTEGRATION_OPS_H

#include "common.h"

#include <stdbool.h>

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
static inline void up(const struct setup *su, int *mport, int *bport)
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

static inline int down(void **state)
{
    (void)state;
    int rc = h_fixture_down(&fx);
    rproxy_stop(&g_proxy);
    memset(&fx, 0, sizeof fx);
    return rc;
}

/* GET path; the status (0 when nothing answered) and the body (malloc'd, or
 * NULL). */
static inline char *get(int port, const char *path, int *status)
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

static inline int status_of(int port, const char *method, const char *path)
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
static inline char *scrape(int port)
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
static inline double metric(const char *text, const char *name, const char *match)
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
static inline double gw_metric(int mport, int workers, const char *name, const char *match)
{
    double v = 0;
    for (int w = 0; w < workers; w++) {
        char *t = scrape(mport + w);
        v += metric(t, name, match);
        free(t);
    }
    return v;
}

static inline double broker_metric(int bport, int shard, const char *name)
{
    char *t = scrape(bport + shard);
    char match[32];
    snprintf(match, sizeof match, "shard=\"%d\"", shard);
    double v = metric(t, name, match);
    free(t);
    return v;
}

/* Polls GET path until it answers `status`; returns the body or fails. */
static inline char *wait_status(int port, const char *path, int status, int timeout_ms)
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

/* A room owned by `shard` of `shards`. */
static inline const char *room_on(uint32_t shard, uint32_t shards)
{
    static char name[32];
    for (int i = 0;; i++) {
        snprintf(name, sizeof name, "ops-%d", i);
        if (cf_shard_of(name, strlen(name), shards) == shard)
            return name;
    }
}

#endif
