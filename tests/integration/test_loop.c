/* The gateway's event loop sleeps when there is nothing to do, and its
 * once-a-second housekeeping gives back what a burst left.
 *
 * Its housekeeping tick comes from a timer in its own epoll set, ten times a
 * second. It used to be an lws timer: lws 4.1 turns the time to its next
 * timer into poll()'s whole milliseconds by truncating, so the loop called
 * poll(0) over and over through the last millisecond before each tick, and
 * the messages of that millisecond waited (docs/steady.md). Its wake-ups are
 * counted in confab_gateway_loop_passes_total. */
#include "common.h"

#include "asan.h"

#include "prom.h"

/* A gateway counter read from /metrics on `port`: the public port (the
 * harness leaves METRICS_PORT unset) or METRICS_PORT. */
static double counter(int port, const char *name)
{
    struct h_resp r;
    if (h_http(port, "GET", "/metrics", NULL, NULL, 0, &r) < 0 || r.status != 200)
        fail_msg("GET /metrics on port %d failed", port);
    int n = 0;
    double v = prom_sum(r.body, name, NULL, &n);
    h_resp_free(&r);
    if (n != 1)
        fail_msg("%d samples of %s, expected 1", n, name);
    return v;
}

/* Over 3 s, the gateway behind `port` (its /metrics) ticks ten times a
 * second and wakes for little else: its tick, the link pings and the
 * scrapes, not hundreds of times a second. */
static void expect_sleeps(int port)
{
    double passes0 = counter(port, "confab_gateway_loop_passes_total");
    double ticks0 = counter(port, "confab_gateway_ticks_total");
    int64_t t0 = h_now_ms();
    h_sleep_ms(3000);
    double passes = counter(port, "confab_gateway_loop_passes_total") - passes0;
    double ticks = counter(port, "confab_gateway_ticks_total") - ticks0;
    double secs = (double)(h_now_ms() - t0) / 1000.0;
    printf("idle gateway: %.0f loop passes and %.0f ticks in %.1f s\n", passes, ticks, secs);
    /* ten ticks a second (a loaded machine may merge some) */
    assert_true(ticks >= 5 * secs && ticks <= 11 * secs + 1);
    /* each tick is one pass or two; the rest are link pings and the scrapes
     * (~12 a second in all). The spin's size depends on where poll()'s
     * wake-ups fall against the timer: with the tick on an lws timer, runs
     * of this test saw 190 to 590 passes a second, one 22, and one 12 (no
     * spin that time, which is why there are two cases). */
    if (passes > 20 * secs)
        fail_msg("%.0f loop passes in %.1f s: the idle loop polls without waiting", passes, secs);
}

/* Plain TCP: the tick's timer is in the set of the sockets the gateway
 * owns, with idle connections in it (the keep-alive walk runs over them). */
static void test_idle_gateway_sleeps(void **state)
{
    (void)state;
    struct h_fixture f;
    assert_int_equal(h_fixture_up(&f, NULL), 0);
    int port = f.node.port;
    struct wsc *c[20];
    for (int i = 0; i < 20; i++) {
        char user[16];
        snprintf(user, sizeof user, "idle%d", i);
        c[i] = wsc_connect_user(port, user);
        assert_non_null(c[i]);
    }
    h_sleep_ms(300);
    expect_sleeps(port);
    for (int i = 0; i < 20; i++)
        wsc_close(c[i]);
    assert_int_equal(h_fixture_down(&f), 0);
}

/* TLS: lws keeps every connection, and the tick's timer sits in the set
 * the gateway creates for its timers alone (ws.c). */
static void test_idle_tls_gateway_sleeps(void **state)
{
    (void)state;
    char cmd[1400], crt[600], key[600];
    snprintf(crt, sizeof crt, "%s/loop-tls.crt", h_tmpdir());
    snprintf(key, sizeof key, "%s/loop-tls.key", h_tmpdir());
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
             "-keyout %s -out %s 2>/dev/null",
             key, crt);
    assert_int_equal(system(cmd), 0);
    static char env_crt[620], env_key[620], env_m[32];
    int mport = h_free_port();
    snprintf(env_crt, sizeof env_crt, "TLS_CERT=%s", crt);
    snprintf(env_key, sizeof env_key, "TLS_KEY=%s", key);
    snprintf(env_m, sizeof env_m, "METRICS_PORT=%d", mport);
    const char *env[] = {env_crt, env_key, env_m, NULL};
    struct h_fixture f;
    assert_int_equal(h_redis_start(&f.redis, h_tmpdir()), 0);
    h_node_init(&f.node, f.redis.addr);
    for (int i = 0; env[i]; i++)
        f.node.extra_env[i] = env[i];
    f.node.health_port = mport; /* the probes and /metrics stay plain there */
    assert_int_equal(h_node_start(&f.node), 0);
    h_sleep_ms(300);
    expect_sleeps(mport);
    assert_int_equal(h_fixture_down(&f), 0);
}

/* The blocks of broker pool `pool` (confab_broker_pool_blocks_held) held
 * by both shards of a node whose brokers answer /metrics on bport + shard. */
static double broker_pool(int bport, const char *pool)
{
    char match[48];
    snprintf(match, sizeof match, "pool=\"%s\"", pool);
    double sum = 0;
    for (int shard = 0; shard < 2; shard++) {
        struct h_resp r;
        if (h_http(bport + shard, "GET", "/metrics", NULL, NULL, 0, &r) < 0 || r.status != 200)
            fail_msg("GET /metrics on broker %d (port %d) failed", shard, bport + shard);
        int n = 0;
        sum += prom_sum(r.body, "confab_broker_pool_blocks_held", match, &n);
        h_resp_free(&r);
        if (n != 1)
            fail_msg("%d samples of pool %s on broker %d, expected 1", n, pool, shard);
    }
    return sum;
}

/* A burst of messages makes a member's queue outgrow its two inline slots;
 * the arrays it took are kept for reuse while traffic goes on, and given
 * back once unused for a second (qarray_trim from the tick), so an idle
 * gateway does not hold its largest burst's arrays for good. The broker
 * does the same with its request records (its once-a-second beat). */
static void test_a_burst_s_pooled_blocks_are_given_back(void **state)
{
    (void)state;
    static char bm_env[48];
    int bport = h_free_ports(2);
    snprintf(bm_env, sizeof bm_env, "BROKER_METRICS_PORT=%d", bport);
    const char *env[] = {bm_env, NULL};
    struct h_fixture f;
    assert_int_equal(h_fixture_up(&f, env), 0);
    int port = f.node.port;
    struct wsc *a = member(port, "burst_a", "burst");
    struct wsc *b = member(port, "burst_b", "burst");
    ready(a, "a here");
    ready(b, "b here");
    drain(a);
    enum { N = 12 };
    char text[N][96];
    const char *frames[N];
    double held = 0, records = 0;
    /* bursts until one reached the member in a single pass: how the
     * broker's batches fall is the machine's */
    for (int round = 0; round < 20 && (held == 0 || records == 0); round++) {
        for (int i = 0; i < N; i++) {
            snprintf(text[i], sizeof text[i],
                     "{\"type\":\"send_message\",\"payload\":{\"message\":\"r%d-%d\"}}", round, i);
            frames[i] = text[i];
        }
        assert_int_equal(wsc_send_texts(b, frames, N), 0);
        char last[32];
        snprintf(last, sizeof last, "r%d-%d", round, N - 1);
        read_until(a, last);
        held = counter(port, "confab_gateway_queue_arrays_held");
        records = broker_pool(bport, "requests");
    }
#ifdef CF_ASAN
    /* ASan builds keep nothing (freelist.h) */
    assert_true(held == 0 && records == 0);
#else
    if (held == 0 || records == 0)
        fail_msg("20 bursts of %d messages never left a queue array (%.0f) and a broker "
                 "request record (%.0f) held",
                 N, held, records);
    /* unused for a second, then a trim; the replies and batches pools serve
     * the broker's own canary and presence refreshes too, so they are only
     * printed */
    int64_t until = h_now_ms() + 4000;
    while ((counter(port, "confab_gateway_queue_arrays_held") > 0 ||
            broker_pool(bport, "requests") > 0) &&
           h_now_ms() < until)
        h_sleep_ms(100);
    double left = counter(port, "confab_gateway_queue_arrays_held");
    double rleft = broker_pool(bport, "requests");
    printf("held after a burst: %.0f queue arrays, %.0f request records; 4 s later: %.0f and "
           "%.0f (replies %.0f, batches %.0f)\n",
           held, records, left, rleft, broker_pool(bport, "replies"),
           broker_pool(bport, "batches"));
    assert_true(left == 0);
    assert_true(rleft == 0);
#endif
    wsc_close(a);
    wsc_close(b);
    assert_int_equal(h_fixture_down(&f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_gateway_sleeps),
        cmocka_unit_test(test_idle_tls_gateway_sleeps),
        cmocka_unit_test(test_a_burst_s_pooled_blocks_are_given_back),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
