/* Faults the foundation must ride out without a client reconnecting: a
 * broker killed and restarted (gateways re-link with backoff and re-register
 * their rooms), and Redis restarted (brokers reconnect and resubscribe). */
#include "common.h"

#include <stdbool.h>

#include "shard.h"

static struct h_fixture fx;

static int setup(void **state)
{
    (void)state;
    return h_fixture_up(&fx, NULL);
}

static int teardown(void **state)
{
    (void)state;
    return h_fixture_down(&fx);
}





/* Keeps saying probe-<n> from `from` until `to` hears one (a message sent
 * while a part of the path is down may be lost: legacy clients cannot be
 * told), then checks both hear that one exactly once. */
static void wait_until_flowing(struct wsc *from, struct wsc *to, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    for (int n = 0; h_now_ms() < deadline; n++) {
        char probe[32];
        snprintf(probe, sizeof probe, "probe-%d", n);
        say(from, probe);
        json_t *ev = wsc_recv_json(to, 300);
        if (ev) {
            json_decref(ev);
            drain(from);
            drain(to);
            return;
        }
    }
    fail_msg("messages did not flow again within %d ms", timeout_ms);
}

static void test_broker_killed_and_restarted(void **state)
{
    (void)state;
    /* A room owned by broker 1, and one owned by broker 0. */
    const char *room = NULL, *other = NULL;
    static const char *const names[] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"};
    for (int i = 0; i < 8; i++) {
        uint32_t s = cf_shard_of(names[i], strlen(names[i]), 2);
        if (s == 1 && !room)
            room = names[i];
        if (s == 0 && !other)
            other = names[i];
    }
    assert_non_null(room);
    assert_non_null(other);

    struct wsc *a = member(fx.node.port, "alice", room), *b = member(fx.node.port, "bob", room), *c = member(fx.node.port, "carol", other),
               *d = member(fx.node.port, "dave", other);
    ready(a, "a");
    ready(b, "b");
    ready(c, "c");
    ready(d, "d");
    drain(a);
    drain(c);

    h_stop(&fx.node.broker[1], SIGKILL, 5000);
    assert_int_equal(h_wait_health(fx.node.port, 503, 10000), 0);

    /* The other shard's rooms are unaffected. */
    say(c, "shard 0 still works");
    expect_message(c, "shard 0 still works", "carol");
    expect_message(d, "shard 0 still works", "carol");

    /* A send into the dead shard is dropped, and the gateway says so. */
    long mark = h_log_mark(&fx.node.gateway);
    say(a, "into the void");
    assert_true(h_log_contains_from(&fx.node.gateway, mark, "broker unavailable", 5000));
    assert_true(wsc_quiet(b, 300));

    assert_int_equal(h_broker_start(&fx.node, 1), 0);
    assert_int_equal(h_wait_health(fx.node.port, 200, 15000), 0);

    /* Nobody reconnected or re-joined, yet the room works again. */
    wait_until_flowing(a, b, 10000);
    say(a, "after the restart");
    expect_message(a, "after the restart", "alice");
    expect_message(b, "after the restart", "alice");
    say(b, "reply");
    expect_message(a, "reply", "bob");
    expect_message(b, "reply", "bob");
    assert_true(wsc_quiet(a, 200));
    wsc_close(a);
    wsc_close(b);
    wsc_close(c);
    wsc_close(d);
}

static void test_redis_restarted(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "alice", "weather"), *b = member(fx.node.port, "bob", "weather");
    ready(a, "a");
    ready(b, "b");
    drain(a);

    long m0 = h_log_mark(&fx.node.broker[0]), m1 = h_log_mark(&fx.node.broker[1]);
    h_stop(&fx.redis.proc, SIGKILL, 5000);
    assert_true(h_log_contains_from(&fx.node.broker[0], m0, "lost", 10000));
    h_sleep_ms(500); /* let the brokers fail a few reconnects */
    assert_int_equal(h_redis_start(&fx.redis, h_tmpdir()), 0);
    assert_true(h_log_contains_from(&fx.node.broker[0], m0, "ready: Redis connected", 15000));
    assert_true(h_log_contains_from(&fx.node.broker[1], m1, "ready: Redis connected", 15000));

    /* Subscriptions were restored without any client doing anything. */
    wait_until_flowing(a, b, 10000);
    say(b, "the weather is fine");
    expect_message(a, "the weather is fine", "bob");
    expect_message(b, "the weather is fine", "bob");
    assert_true(wsc_quiet(a, 200));
    wsc_close(a);
    wsc_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_killed_and_restarted),
        cmocka_unit_test(test_redis_restarted),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
