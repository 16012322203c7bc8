/* Readiness of a node, as a load balancer or an orchestrator probes it:
 * /readyz follows the brokers (one killed; one whose delivery canary stops
 * coming back, because Redis runs no writes or because its subscription is
 * wedged) and the drain, while /healthz says alive and linked. The metrics
 * and logs of the same processes are test_ops.c. */
#include "ops.h"

#include <sys/wait.h>

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
    h_kill(&fx.node.gateway, SIGTERM);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_readiness_follows_brokers_and_drain, down),
        cmocka_unit_test_teardown(test_canary_notices_redis_refusing_writes, down),
        cmocka_unit_test_teardown(test_canary_resets_a_wedged_subscription, down),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
