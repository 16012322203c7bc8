/* A broker that comes back gets the presence of every legacy member of its
 * shard registered again by the gateway (a legacy client has no re-sync of
 * its own). Sent in one pass, the registrations past MAX_LINK_QUEUE_BYTES
 * did not fit the gateway's link and were lost: those users were missing
 * from their rooms' presence until they reconnected. They now wait for room
 * in the link (gateway/resync.h). */
#include "common.h"
#include "prom.h"
#include "shard.h"
#include "validate.h"

static struct h_fixture fx;
static int bmetrics; /* BROKER_METRICS_PORT: shard i answers on bmetrics + i */

/* Long room and user names (bigger frames): ~150 bytes a registration, so
 * 8000 of them are over the link's 1 MiB bound. */
enum { CLIENTS = 8000 };
static struct wsc *g_c[CLIENTS];

static int setup(void **state)
{
    (void)state;
    static char bm_env[64];
    bmetrics = h_free_ports(2);
    snprintf(bm_env, sizeof bm_env, "BROKER_METRICS_PORT=%d", bmetrics);
    /* the clients are never read: none pinged meanwhile */
    static const char *env[] = {"MAX_LINK_QUEUE_BYTES=1048576", "PING_INTERVAL=3600", bm_env,
                                NULL};
    return h_fixture_up(&fx, env);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < CLIENTS; i++)
        if (g_c[i])
            wsc_close(g_c[i]);
    return h_fixture_down(&fx);
}

/* Broker shard 1's confab_broker_presence_entries, as a scraper reads it. */
static long presence_entries(void)
{
    struct h_resp r;
    if (h_http(bmetrics + 1, "GET", "/metrics", NULL, NULL, 0, &r) < 0)
        return -1; /* restarting */
    int n = 0;
    double v = r.status == 200 ? prom_sum(r.body, "confab_broker_presence_entries", NULL, &n) : 0;
    h_resp_free(&r);
    return n == 1 ? (long)v : -1;
}

/* Waits until broker 1 keeps `want` members present; the last count read. */
static long wait_presence(long want, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    long n;
    while ((n = presence_entries()) != want && h_now_ms() < end)
        usleep(100 * 1000);
    return n;
}

static void test_every_legacy_member_is_present_again_after_a_broker_restart(void **state)
{
    (void)state;
    int k = 0;
    for (int i = 0; i < CLIENTS; i++) {
        char user[40], room[CF_ROOM_MAX + 1];
        snprintf(user, sizeof user, "legacy-user-with-a-long-name%04d", i);
        do /* all on shard 1 */
            snprintf(room, sizeof room, "a-legacy-room-with-a-long-name-for-big-frames-%06d", k++);
        while (cf_shard_of(room, strlen(room), 2) != 1);
        g_c[i] = member(fx.node.port, user, room);
    }
    assert_int_equal(wait_presence(CLIENTS, 60000), CLIENTS);

    long mark = h_log_mark(&fx.node.gateway);
    h_stop(&fx.node.broker[1], SIGKILL, 5000);
    assert_int_equal(h_broker_start(&fx.node, 1), 0);
    assert_int_equal(h_wait_health(fx.node.port, 200, 15000), 0);
    long n = wait_presence(CLIENTS, 30000);
    if (n != CLIENTS)
        fail_msg("broker 1 keeps %ld of the %d legacy members present after its restart", n,
                 CLIENTS);
    /* they did not fit the link at once: the case this test is about */
    assert_true(h_log_contains_from(&fx.node.gateway, mark, "do not fit the link to broker 1", 0));
    /* and none was closed meanwhile */
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(wsc_close_code(g_c[i]), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_legacy_member_is_present_again_after_a_broker_restart),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
