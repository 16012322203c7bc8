/* A broker that comes back gets the presence of every legacy member of its
 * shard registered again by the gateway (a legacy client has no re-sync of
 * its own). Sent in one pass, the registrations past MAX_LINK_QUEUE_BYTES
 * did not fit the gateway's link and were lost: those users were missing
 * from their rooms' presence until they reconnected. They now wait for room
 * in the link (gateway/resync.h).
 *
 * The same holds for a legacy client's join while the link is full (a
 * stopped broker, a legacy client's messages filling its queue). A leave
 * takes the reserve the link has for room and presence changes, and past
 * it resets the link, as a room's leave does. Dropped, they left the user
 * missing from, or present in, the room for as long as the link lived. */
#include "prom.h"
#include "validate.h"
#include "v1.h"

static struct h_fixture fx;
static int bmetrics; /* BROKER_METRICS_PORT: shard i answers on bmetrics + i */

/* Long room and user names (bigger frames): ~150 bytes a registration, so
 * 8000 of them are over the link's 1 MiB bound. */
enum { CLIENTS = 8000 };
static struct wsc *g_c[CLIENTS];
/* Tests 2 and 3: legacy clients that join while broker 1's link is full. */
enum { JOINERS = 20 };
static struct wsc *g_filler, *g_joiner[JOINERS];
static char g_room[40]; /* on shard 1, with the filler in it from the start */

/* The room every legacy client starts in: on shard 0, so that the leave of
 * it that a change of room makes never meets broker 1's full link. */
static char g_lobby[40];

static int setup(void **state)
{
    (void)state;
    static char bm_env[64], room_env[64];
    bmetrics = h_free_ports(2);
    snprintf(bm_env, sizeof bm_env, "BROKER_METRICS_PORT=%d", bmetrics);
    room_on_shard(g_lobby, sizeof g_lobby, "lobby-", 0, 2);
    snprintf(room_env, sizeof room_env, "DEFAULT_ROOM=%s", g_lobby);
    /* The clients are never read: none pinged meanwhile, and the filler's
     * own messages wait in its queue. Its messages go unthrottled. */
    static const char *env[] = {"MAX_LINK_QUEUE_BYTES=1048576",
                                "PING_INTERVAL=3600",
                                "MAX_CLIENT_QUEUE_BYTES=16777216",
                                "RATE_MSGS=100000",
                                "RATE_BURST=100000",
                                bm_env,
                                room_env,
                                NULL};
    return h_fixture_up(&fx, env);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < CLIENTS; i++)
        if (g_c[i])
            wsc_close(g_c[i]);
    for (int i = 0; i < JOINERS; i++)
        if (g_joiner[i])
            wsc_close(g_joiner[i]);
    if (g_filler)
        wsc_close(g_filler);
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

/* ---- a legacy join or leave while broker 1's link is full ---- */

/* Sends `text` in bursts until the gateway, from `mark` on, drops a message
 * as congested. */
static void send_until_congested(long mark, const char *text)
{
    for (int i = 0;
         i < 200 && !h_log_contains_from(&fx.node.gateway, mark, "broker link congested", 0); i++) {
        for (int k = 0; k < 20; k++)
            say(g_filler, text);
        h_sleep_ms(10);
    }
    assert_true(h_log_contains_from(&fx.node.gateway, mark, "broker link congested", 2000));
}

/* Stops broker 1 and fills the gateway's link to it (the socket, then the
 * 1 MiB queue) with the filler's messages: big ones, then one-letter ones
 * for the last bytes, smaller than a presence registration. */
static void fill_link(void)
{
    stop_process(&fx.node.broker[1]);
    static char text[3001];
    memset(text, 'x', sizeof text - 1);
    send_until_congested(h_log_mark(&fx.node.gateway), text);
    h_sleep_ms(300); /* the big ones still in the gateway's input are dropped */
    send_until_congested(h_log_mark(&fx.node.gateway), "y");
}

/* Whether a v1 client that joins `room` now is told that `user` is there. */
static bool present_in(const char *room, const char *user)
{
    struct v1c *c = v1_member(fx.node.port, "observer", V1_JSON);
    json_t *ev = join_ok(c, room);
    bool there = has_member(ev, user);
    json_decref(ev);
    v1_close(c);
    return there;
}

static void test_a_legacy_join_waits_for_room_in_a_full_link(void **state)
{
    (void)state;
    room_on_shard(g_room, sizeof g_room, "full-link-room-", 1, 2);
    g_filler = member(fx.node.port, "filler", g_room);
    long base = wait_presence(CLIENTS + 1, 10000);
    assert_int_equal(base, CLIENTS + 1);

    long mark = h_log_mark(&fx.node.gateway);
    fill_link();
    /* the room has a member here already: no room join goes to the broker,
     * only the presence registrations this test is about (a room join takes
     * the reserve for room and presence changes, test 3) */
    for (int i = 0; i < JOINERS; i++) {
        char user[40];
        snprintf(user, sizeof user, "late-joiner-%02d", i);
        g_joiner[i] = member(fx.node.port, user, g_room);
    }
    /* the case this test is about: their registrations did not fit */
    assert_true(
        h_log_contains_from(&fx.node.gateway, mark, "do not fit the link to broker 1", 5000));
    assert_int_equal(h_kill(&fx.node.broker[1], SIGCONT), 0);

    long n = wait_presence(base + JOINERS, 20000);
    if (n != base + JOINERS)
        fail_msg("broker 1 keeps %ld members present; %ld expected, with the %d who joined "
                 "while its link was full",
                 n, base + JOINERS, JOINERS);
    for (int i = 0; i < JOINERS; i++) {
        char user[40];
        snprintf(user, sizeof user, "late-joiner-%02d", i);
        assert_true(present_in(g_room, user));
        assert_int_equal(wsc_close_code(g_joiner[i]), 0);
    }
    assert_false(h_log_contains_from(&fx.node.gateway, mark, "resetting the link", 0));
}

/* A leave on a full link takes the reserve that room and presence changes
 * have past the bound: it reaches the broker once it reads again, with no
 * reset of the link (and no re-sync of its members). */
static void test_a_legacy_leave_on_a_full_link_still_unregisters(void **state)
{
    (void)state;
    assert_non_null(g_joiner[0]); /* the test above ran */
    long base = wait_presence(CLIENTS + 1 + JOINERS, 10000);
    assert_int_equal(base, CLIENTS + 1 + JOINERS);
    long mark = h_log_mark(&fx.node.gateway);
    fill_link();
    /* joiner 0 goes to the lobby (shard 0): its leave of g_room does not fit
     * below the bound */
    assert_int_equal(wsc_send_event(g_joiner[0], "change_room", "name", g_lobby), 0);
    h_sleep_ms(500);
    assert_int_equal(h_kill(&fx.node.broker[1], SIGCONT), 0);

    long n = wait_presence(base - 1, 10000);
    if (n != base - 1)
        fail_msg("broker 1 keeps %ld members present; %ld expected once late-joiner-00 left", n,
                 base - 1);
    assert_false(present_in(g_room, "late-joiner-00"));
    assert_true(present_in(g_room, "late-joiner-01"));
    assert_int_equal(wsc_close_code(g_joiner[0]), 0);
    assert_false(h_log_contains_from(&fx.node.gateway, mark, "resetting the link", 0));
}

/* Past the reserve (many closes at once on a full link: 2,000 leaves of
 * rooms and presence, ~300 KB against 64 KiB) the link is reset; the new
 * link registers the others again, and the broker drops the entries that
 * nobody took over at the old link's grace end. Dropped instead, each
 * unregistration left its user present for as long as the link lived. */
enum { CLOSED = 2000 };

static void test_closes_past_the_reserve_reset_the_link(void **state)
{
    (void)state;
    long base = wait_presence(CLIENTS + JOINERS, 10000);
    assert_int_equal(base, CLIENTS + JOINERS); /* joiner 0 left in the test above */
    long mark = h_log_mark(&fx.node.gateway);
    fill_link();
    for (int i = 0; i < CLOSED; i++) {
        wsc_close(g_c[i]);
        g_c[i] = NULL;
    }
    assert_true(h_log_contains_from(&fx.node.gateway, mark, "resetting the link", 10000));
    assert_int_equal(h_kill(&fx.node.broker[1], SIGCONT), 0);

    long n = wait_presence(base - CLOSED, 60000);
    if (n != base - CLOSED)
        fail_msg("broker 1 keeps %ld members present; %ld expected once %d clients closed", n,
                 base - CLOSED, CLOSED);
    assert_true(present_in(g_room, "late-joiner-01"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_legacy_member_is_present_again_after_a_broker_restart),
        cmocka_unit_test(test_a_legacy_join_waits_for_room_in_a_full_link),
        cmocka_unit_test(test_a_legacy_leave_on_a_full_link_still_unregisters),
        cmocka_unit_test(test_closes_past_the_reserve_reset_the_link),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
