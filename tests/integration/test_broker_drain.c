/* A broker told to stop (SIGTERM) finishes what it took on and refuses the
 * rest at once: a request that needs an answer and arrives during the drain
 * gets `unavailable` ("the room's broker is restarting": nothing was done,
 * resend once the shard is back). Taken on, under steady traffic it kept
 * the drain busy to its 3 s deadline, and what was still in flight then was
 * answered `timeout` by the gateway: outcome unknown. */
#include "v1.h"
#include "ops.h"

#include <signal.h>

#define ROOM "drain-room"

static void test_a_draining_broker_refuses_new_requests_at_once(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 2, .workers = 1}, &mport, &bport);
    int shard = (int)cf_shard_of(ROOM, strlen(ROOM), 2);
    struct v1c *a = v1_member(fx.node.port, "alice", V1_JSON);
    json_decref(join_ok(a, ROOM));
    send_ok(a, ROOM, "before", "b-1");

    /* a send in flight (Redis stopped) keeps the drain going */
    assert_int_equal(h_kill(&fx.redis.proc, SIGSTOP), 0);
    send_req(a, ROOM, "in flight", "f-1");
    h_sleep_ms(500); /* through the gateway and the broker, to the stopped Redis */
    long mark = h_log_mark(&fx.node.broker[shard]);
    assert_int_equal(h_kill(&fx.node.broker[shard], SIGTERM), 0);
    if (!h_log_contains_from(&fx.node.broker[shard], mark, "Redis commands in flight", 2000) ||
        h_log_contains_from(&fx.node.broker[shard], mark, "finishing 0 Redis commands", 0))
        fail_msg("the broker did not start draining with the send in flight");

    int64_t t0 = h_now_ms();
    send_req(a, ROOM, "during the drain", "d-1");
    json_t *ev = v1_wait(a, 2000, "error", "ref", "d-1", NULL);
    int64_t took = h_now_ms() - t0;
    h_kill(&fx.redis.proc, SIGCONT); /* look first, assert after */
    V1_MUST(a, ev, "error for a send during the drain");
    printf("%s (%s) after %lld ms\n", pstr(ev, "code"), pstr(ev, "message"), (long long)took);
    assert_string_equal(pstr(ev, "code"), "unavailable");
    assert_non_null(strstr(pstr(ev, "message"), "restarting"));
    json_decref(ev);

    /* the send taken on before the drain is answered */
    ev = v1_wait(a, V1_WAIT, "ack", "id", "f-1", NULL);
    V1_MUST(a, ev, "ack of the send in flight");
    json_decref(ev);
    assert_int_equal(h_stop(&fx.node.broker[shard], SIGTERM, 5000), 0);
    v1_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_draining_broker_refuses_new_requests_at_once, down),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
