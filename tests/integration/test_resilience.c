/* Faults the foundation must ride out without a client reconnecting: a
 * broker killed and restarted (gateways re-link with backoff and re-register
 * their rooms), and Redis restarted (brokers reconnect and resubscribe). And
 * a gateway (re)started before its brokers: it takes clients once it can
 * serve them. */
#include "common.h"

#include <pthread.h>
#include <stdbool.h>

#include "shard.h"

static struct h_fixture fx;

static int setup(void **state)
{
    (void)state;
    /* Room for the whole backlog of test_backlog_flows_after_a_stalled_broker. */
    static const char *const env[] = {"MAX_CLIENT_QUEUE_BYTES=4194304", NULL};
    return h_fixture_up(&fx, env);
}

static int teardown(void **state)
{
    (void)state;
    return h_fixture_down(&fx);
}

/* Keeps saying probe-<n> from `from` until `to` hears one (a message sent
 * while a part of the path is down may be lost: legacy clients cannot be
 * told). A probe slower than the 300 ms between them can still arrive
 * after that, so both then read up to a last message of `from`'s: one
 * sender's messages to a room arrive in the order sent. */
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
            ready(from, "flowing");
            read_until(to, "flowing");
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

    struct wsc *a = member(fx.node.port, "alice", room), *b = member(fx.node.port, "bob", room),
               *c = member(fx.node.port, "carol", other), *d = member(fx.node.port, "dave", other);
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
    /* Every client's every message while a broker is away: a line a second
     * at most, which counts the others (it was a line each). */
    for (int i = 0; i < 10; i++)
        say(a, "into the void again");
    assert_true(wsc_quiet(b, 200));
    assert_int_equal(h_log_count_from(&fx.node.gateway, mark, "dropped: broker unavailable ("), 1);
    h_sleep_ms(1000 - 200);
    say(a, "a second later");
    assert_true(h_log_contains_from(&fx.node.gateway, mark, "more since the last such line", 5000));
    assert_int_equal(h_log_count_from(&fx.node.gateway, mark, "dropped: broker unavailable ("), 2);

    assert_int_equal(h_broker_start(&fx.node, 1), 0);
    assert_int_equal(h_wait_health(fx.node.port, 200, 15000), 0);

    /* Nobody reconnected or re-joined, yet the room works again. */
    wait_until_flowing(a, b, 10000);
    exactly_once(a, (struct wsc *[]){a, b}, 2, "after the restart", "alice");
    exactly_once(b, (struct wsc *[]){a, b}, 2, "reply", "bob");
    wsc_close(a);
    wsc_close(b);
    wsc_close(c);
    wsc_close(d);
}

static void test_redis_restarted(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "alice", "weather"),
               *b = member(fx.node.port, "bob", "weather");
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
    exactly_once(b, (struct wsc *[]){a, b}, 2, "the weather is fine", "bob");
    wsc_close(a);
    wsc_close(b);
}

/* A broker that stalls for a moment (here: SIGSTOP) lets the gateway's link
 * queue fill past what the socket holds; once it resumes, the whole backlog
 * must flow at once, not wait for some later traffic to nudge the link. */
static void test_backlog_flows_after_a_stalled_broker(void **state)
{
    (void)state;
    const char *room = "backlog";
    int shard = (int)cf_shard_of(room, strlen(room), 2);
    struct wsc *a = member(fx.node.port, "alice", room);
    ready(a, "a");
    enum { N = 600 };
    char text[1100];
    memset(text, 'q', 1000);
    h_kill(&fx.node.broker[shard], SIGSTOP);
    for (int i = 0; i < N; i++) {
        snprintf(text + 1000, 100, "-%d", i);
        say(a, text);
    }
    h_sleep_ms(300);
    h_kill(&fx.node.broker[shard], SIGCONT);
    int64_t t0 = h_now_ms();
    for (int i = 0; i < N; i++) {
        json_t *ev = wsc_recv_json(a, 3000);
        if (!ev)
            fail_msg("message %d of %d did not arrive within 3 s of the broker resuming", i, N);
        snprintf(text + 1000, 100, "-%d", i);
        assert_string_equal(payload_str(ev, "message"), text);
        json_decref(ev);
    }
    printf("backlog of %d messages delivered %lld ms after the broker resumed\n", N,
           (long long)(h_now_ms() - t0));
    wsc_close(a);
}

struct early {
    int port;
    struct wsc *c;
};

/* Logs in, connects and speaks at once, as a browser does. */
static void *early_client(void *arg)
{
    struct early *e = arg;
    e->c = wsc_connect_user(e->port, "early");
    if (e->c && wsc_send_event(e->c, "send_message", "message", "first words") < 0) {
        wsc_close(e->c);
        e->c = NULL;
    }
    return NULL;
}

/* A gateway worker (re)started while its brokers are not up yet (with
 * SO_REUSEPORT it gets its share of new connections the moment it listens)
 * holds new connections until it is linked: a legacy client's first message
 * was dropped before, with nothing to tell it. With a broker that never
 * comes, it serves anyway after a few seconds. */
static void test_gateway_before_its_brokers(void **state)
{
    (void)state;
    struct h_node n;
    h_node_init(&n, fx.redis.addr);
    n.brokers = 1;
    assert_int_equal(h_gateway_start(&n), 0);
    assert_true(h_log_contains(&n.gateway, "listening on", 10000));
    struct early e = {n.port, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, early_client, &e), 0);
    h_sleep_ms(300); /* the client waits in the kernel's queue meanwhile */
    assert_int_equal(h_broker_start(&n, 0), 0);
    pthread_join(t, NULL);
    assert_non_null(e.c);
    expect_message(e.c, "first words", "early");
    wsc_close(e.c);
    assert_false(h_log_contains(&n.gateway, "accepting connections with only", 0));
    h_node_stop(&n);

    /* no broker at all: logins are served after the hold, and it says why */
    h_node_init(&n, fx.redis.addr);
    n.brokers = 1;
    assert_int_equal(h_gateway_start(&n), 0);
    assert_true(h_log_contains(&n.gateway, "listening on", 10000));
    char *token = h_login(n.port, "patient");
    assert_non_null(token);
    free(token);
    assert_true(h_log_contains(&n.gateway, "accepting connections with only 0 of 1 brokers linked", 0));
    assert_int_equal(h_stop_clean(&n.gateway), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_killed_and_restarted),
        cmocka_unit_test(test_redis_restarted),
        cmocka_unit_test(test_backlog_flows_after_a_stalled_broker),
        cmocka_unit_test(test_gateway_before_its_brokers),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
