/* The gateway's event loop sleeps when there is nothing to do.
 *
 * Its housekeeping tick comes from a timer in its own epoll set, ten times a
 * second. It used to be an lws timer: lws 4.1 turns the time to its next
 * timer into poll()'s whole milliseconds by truncating, so the loop called
 * poll(0) over and over through the last millisecond before each tick, and
 * the messages of that millisecond waited (docs/steady.md). Its wake-ups are
 * counted in confab_gateway_loop_passes_total. */
#include "common.h"

#include "prom.h"

/* A gateway counter read from /metrics on the public port (METRICS_PORT is
 * unset in the harness). */
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

/* An idle gateway with connections wakes for its tick (ten a second), the
 * link pings and the scrapes, not hundreds of times a second. */
static void test_idle_gateway_sleeps(void **state)
{
    (void)state;
    struct h_fixture f;
    assert_int_equal(h_fixture_up(&f, NULL), 0);
    int port = f.node.port;
    struct wsc *c[20];
    for (int i = 0; i < 20; i++) { /* sessions for the keep-alive walk */
        char user[16];
        snprintf(user, sizeof user, "idle%d", i);
        c[i] = wsc_connect_user(port, user);
        assert_non_null(c[i]);
    }
    h_sleep_ms(300);
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
    /* each tick is one pass or two; the rest are link pings and the scrapes */
    if (passes > 40 * secs)
        fail_msg("%.0f loop passes in %.1f s: the idle loop polls without waiting", passes, secs);
    for (int i = 0; i < 20; i++)
        wsc_close(c[i]);
    assert_int_equal(h_fixture_down(&f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_gateway_sleeps),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
