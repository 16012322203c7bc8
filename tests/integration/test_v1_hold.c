/* What a broker holds for a room while its SUBSCRIBE waits for Redis (here:
 * Redis stopped with SIGSTOP, for well under the bridge's 10 s reply
 * timeout), once the hold budget (MAX_LINK_QUEUE_BYTES) is spent: a presence
 * change of a member cannot wait in the queue, and must not be dropped
 * either. Before, a leave refused for want of budget was lost, and the join
 * held before it ran once Redis answered: the member who had left showed as
 * present to everyone who joined later, until its gateway's link closed.
 * The budget is filled to within a few bytes, read from the broker's
 * confab_broker_held_bytes, so that nothing as small as a leave fits.
 * A request past the budget is refused as the hold's, not the queue's.
 * Also: the requests a broker waits for Redis' answers to are shown. */
#include "v1.h"
#include "ops.h"

#include <signal.h>

#define BUDGET 1048576 /* MAX_LINK_QUEUE_BYTES below */
#define ROOM "held-room"

static int g_bport, g_shard;

static double held(void)
{
    return broker_metric(g_bport, g_shard, "confab_broker_held_bytes");
}

/* Waits until the broker holds more than `than` bytes; returns how many. */
static double held_above(double than)
{
    double h = held();
    for (int64_t end = h_now_ms() + 5000; h <= than && h_now_ms() < end; h = held())
        h_sleep_ms(20);
    if (h <= than) /* Redis resumes in the teardown (h_fixture_down) */
        fail_msg("the broker holds %.0f bytes, expected more than %.0f", h, than);
    return h;
}

/* A send of `len` bytes of text from c, and the bytes the broker then holds. */
static double send_held(struct v1c *c, size_t len, double before)
{
    char *text = malloc(len + 1);
    assert_non_null(text);
    memset(text, 'h', len);
    text[len] = '\0';
    send_req(c, ROOM, text, NULL);
    free(text);
    return held_above(before);
}

static void test_a_leave_refused_a_place_in_the_hold_is_not_lost(void **state)
{
    (void)state;
    static const char *const more[] = {"MAX_MESSAGE_BYTES=65536", "MAX_LINK_QUEUE_BYTES=1048576",
                                       NULL};
    int mport;
    up(&(struct setup){.brokers = 2, .workers = 1, .more = more}, &mport, &g_bport);
    g_shard = (int)cf_shard_of(ROOM, strlen(ROOM), 2);
    struct v1c *bob = v1_member(fx.node.port, "bob", V1_JSON);

    assert_int_equal(h_kill(&fx.redis.proc, SIGSTOP), 0);
    /* the room's first join: its SUBSCRIBE waits, and so does bob's join */
    assert_int_equal(v1_send(bob, "join", json_pack("{s:s}", "room", ROOM)), 0);
    double h = held_above(0);
    /* sends wait too, until a few bytes are left: first big ones, then one
     * sized from what a send of known length took (same header sizes) */
    int sends = 0;
    while (BUDGET - h > 63000)
        h = send_held(bob, 60000, h), sends++;
    double before = h;
    h = send_held(bob, 1000, h), sends++;
    double overhead = h - before - 1000;
    double rest = BUDGET - h - overhead - 8;
    assert_true(rest >= 1000 && rest <= 65536);
    h = send_held(bob, (size_t)rest, h), sends++;
    assert_true(BUDGET - h < 16); /* no room even for a leave */

    /* A send past the budget is refused, saying it is the room's hold that
     * is full (not the queue toward Redis, which is empty); so is a legacy
     * client's message, in the broker's log. */
    long mark = h_log_mark(&fx.node.broker[g_shard]);
    struct wsc *lee = wsc_connect_user(fx.node.port, "lee");
    assert_non_null(lee);
    assert_int_equal(wsc_send_event(lee, "change_room", "name", ROOM), 0);
    assert_int_equal(wsc_send_event(lee, "send_message", "message", "past the hold"), 0);
    bool logged =
        h_log_contains_from(&fx.node.broker[g_shard], mark,
                            "too many requests wait for their rooms' subscriptions", 5000);
    send_req(bob, ROOM, "past the hold", "over-1");
    json_t *ev = v1_wait(bob, V1_WAIT, "error", "ref", "over-1", NULL);
    const char *code = ev ? payload_str(ev, "code") : NULL;
    const char *why = ev ? payload_str(ev, "message") : NULL;
    bool said = code && !strcmp(code, "unavailable") && why && strstr(why, "subscriptions");
    double now = held();
    wsc_close(lee);
    char seen[256];
    snprintf(seen, sizeof seen, "%s (%s)", code ? code : "nothing", why ? why : "");
    json_decref(ev);
    if (!logged || !said || now != h)
        fail_msg("past the hold: logged %d, refused with %s, %.0f bytes held of %.0f", logged, seen,
                 now, h);

    leave_ok(bob, ROOM);
    /* the broker has the leave once the join held for it is taken back (its
     * bytes freed); without that, the leave's fate shows below */
    for (int64_t end = h_now_ms() + 3000; held() >= h && h_now_ms() < end;)
        h_sleep_ms(20);
    assert_int_equal(h_kill(&fx.redis.proc, SIGCONT), 0);
    /* every held send acked once Redis runs, so that dave's join does not
     * meet the burst (a join waiting behind 1 MB of messages is closed for
     * it, rightly) */
    for (int i = 0; i < sends; i++) {
        json_t *ack = v1_wait(bob, V1_WAIT, "ack", "room", ROOM, NULL);
        V1_MUST(bob, ack, "ack of a held send");
        json_decref(ack);
    }

    /* whoever joins now does not see bob, who left */
    struct v1c *dave = v1_member(fx.node.port, "dave", V1_JSON);
    ev = join_ok(dave, ROOM);
    bool ghost = has_member(ev, "bob");
    json_decref(ev);
    if (ghost)
        fail_msg("bob left %s but is listed as a member", ROOM);
    /* and the room works */
    send_ok(dave, ROOM, "after the hold", "after-1");
    expect_new(dave, ROOM, "after the hold", NULL);
    v1_close(dave);
    v1_close(bob);
}

/* 1.2 MB of history in `room`, sent by a new member `user`. */
static void fill_history(const char *user, const char *room)
{
    struct v1c *c = v1_member(fx.node.port, user, V1_JSON);
    json_decref(join_ok(c, room));
    char *text = malloc(60001);
    assert_non_null(text);
    memset(text, 'm', 60000);
    text[60000] = '\0';
    for (int i = 0; i < 20; i++)
        send_ok(c, room, text, NULL);
    free(text);
    v1_close(c);
}

/* A join's snapshot is cut to what the broker's link to the gateway can
 * carry: a quarter of MAX_LINK_QUEUE_BYTES. A gateway with a large client
 * queue asks for up to 1 MiB of stored messages; at the smallest link queue
 * (1 MiB) two such snapshots that met a gateway busy elsewhere (here:
 * stopped) did not fit, and the link was reset, every member of the shard
 * re-synced, and the joins asked again. */
static void test_snapshots_fit_the_link(void **state)
{
    (void)state;
    static const char *const more[] = {"MAX_MESSAGE_BYTES=65536", "MAX_LINK_QUEUE_BYTES=1048576",
                                       "MAX_CLIENT_QUEUE_BYTES=8388608", NULL};
    int mport;
    up(&(struct setup){.brokers = 2, .workers = 1, .more = more}, &mport, &g_bport);
    g_shard = (int)cf_shard_of(ROOM, strlen(ROOM), 2);
    char other[32];
    room_on_shard(other, sizeof other, "held-other-", (uint32_t)g_shard, 2);
    fill_history("alice", ROOM);
    fill_history("carol", other);
    long mark = h_log_mark(&fx.node.broker[g_shard]);

    struct v1c *bob = v1_member(fx.node.port, "bob", V1_JSON);
    /* both answers leave the broker while the gateway does not read */
    assert_int_equal(h_kill(&fx.redis.proc, SIGSTOP), 0);
    assert_int_equal(v1_send(bob, "join", json_pack("{s:s, s:i}", "room", ROOM, "limit", 100)), 0);
    assert_int_equal(v1_send(bob, "join", json_pack("{s:s, s:i}", "room", other, "limit", 100)),
                     0);
    h_sleep_ms(300); /* the joins reach the broker, which waits for Redis */
    assert_int_equal(h_kill(&fx.node.gateway, SIGSTOP), 0);
    assert_int_equal(h_kill(&fx.redis.proc, SIGCONT), 0);
    h_sleep_ms(500);
    assert_int_equal(h_kill(&fx.node.gateway, SIGCONT), 0);

    const char *rooms[2] = {ROOM, other};
    for (int i = 0; i < 2; i++) {
        json_t *ev = v1_wait(bob, V1_WAIT, "joined", "room", rooms[i], NULL);
        V1_MUST(bob, ev, "joined");
        size_t n = json_array_size(json_object_get(pl(ev), "messages"));
        json_decref(ev);
        printf("the snapshot of %s carried %zu of 20 messages\n", rooms[i], n);
        assert_true(n >= 1 && n <= 4); /* 256 KiB of 60 KB messages */
    }
    assert_false(h_log_contains_from(&fx.node.broker[g_shard], mark, "output queue full", 0));
    v1_close(bob);
}

static double awaiting(void)
{
    return broker_metric(g_bport, g_shard, "confab_broker_requests_awaiting_redis");
}

static bool awaiting_is(double n)
{
    double a = awaiting();
    for (int64_t end = h_now_ms() + 5000; a != n && h_now_ms() < end; a = awaiting())
        h_sleep_ms(20);
    return a == n;
}

/* The requests a broker sent to Redis and waits for are shown: a Redis that
 * takes commands and answers late (stopped here) makes them climb, and at
 * BROKER_MAX_AWAITING new ones are refused (test_requests). */
static void test_requests_awaiting_redis_are_shown(void **state)
{
    (void)state;
    int mport;
    up(&(struct setup){.brokers = 2, .workers = 1}, &mport, &g_bport);
    g_shard = (int)cf_shard_of(ROOM, strlen(ROOM), 2);
    struct v1c *bob = v1_member(fx.node.port, "bob", V1_JSON);
    json_decref(join_ok(bob, ROOM));
    assert_true(awaiting_is(0));
    assert_int_equal(h_kill(&fx.redis.proc, SIGSTOP), 0);
    for (int i = 0; i < 3; i++)
        send_req(bob, ROOM, "while Redis is stopped", NULL);
    bool climbed = awaiting_is(3);
    assert_int_equal(h_kill(&fx.redis.proc, SIGCONT), 0);
    assert_true(climbed);
    for (int i = 0; i < 3; i++)
        json_decref(expect_ack(bob, ROOM, NULL));
    assert_true(awaiting_is(0));
    v1_close(bob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_leave_refused_a_place_in_the_hold_is_not_lost, down),
        cmocka_unit_test_teardown(test_snapshots_fit_the_link, down),
        cmocka_unit_test_teardown(test_requests_awaiting_redis_are_shown, down),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
