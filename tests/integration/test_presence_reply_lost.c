/* A join whose answer Redis never delivers: the join script ran (the room
 * saw the user join), then the broker's connection to Redis dropped before
 * the answer came. The joiner is told the join failed, so the room must not
 * keep listing them: the broker owes the room a leave and sends it once
 * Redis is back (before, it sent it at once on the connection that had just
 * failed, which refused it, and the user stayed listed until the room's
 * presence expired). Redis is reached through rproxy (ops.h's fixture),
 * which cuts the connection at that answer.
 *
 * The same reconnect, of the only Redis server, is one "ready again" for
 * the gateway: before, a "back" of that server came first, and the gateway
 * re-synced twice and logged another server still down. */
#include "ops.h"
#include "v1.h"

static void test_a_join_whose_answer_is_lost_is_left(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1, .no_metrics_port = true, .via_proxy = true},
       &mport, &bport);
    assert_int_equal(h_wait_health(fx.node.port, 200, 10000), 0);
    free(wait_status(bport, "/readyz", 200, 10000));
    long gmark = h_log_mark(&fx.node.gateway);
    struct v1c *w = v1_member(fx.node.port, "watcher", V1_JSON);
    json_decref(join_ok(w, "answerless"));
    struct v1c *g = v1_member(fx.node.port, "ghost9", V1_JSON);
    assert_int_equal(rproxy_cut_reply(&g_proxy, "ghost9"), 0);
    assert_int_equal(v1_send(g, "join", json_pack("{s:s}", "room", "answerless")), 0);
    /* the script ran: the room saw the join */
    expect_presence(w, "answerless", "ghost9", "join", V1_WAIT);
    /* ... and the joiner heard it failed */
    json_t *err = v1_wait(g, 15000, "error", NULL);
    if (!err) {
        v1_dump(g, "error");
        fail_msg("the join whose answer was lost got no error");
    }
    json_decref(err);
    /* the leave comes once Redis is back (a reconnect, then the heartbeat's
     * next slice: a second or two), long before presence expires (30 s) */
    expect_presence(w, "answerless", "ghost9", "leave", 8000);
    assert_true(h_log_contains_from(&fx.node.gateway, gmark, "broker 0 is ready again", 0));
    if (h_log_contains_from(&fx.node.gateway, gmark, "of 1 back", 0))
        fail_msg("the only Redis server's reconnect was told as a server back besides ready");
    v1_close(g);
    v1_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_join_whose_answer_is_lost_is_left, down),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
