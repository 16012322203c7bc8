/* What a broker holds for a room while its SUBSCRIBE waits for Redis (here:
 * Redis stopped with SIGSTOP, for well under the bridge's 10 s reply
 * timeout), once the hold budget (MAX_LINK_QUEUE_BYTES) is spent: a presence
 * change of a member cannot wait in the queue, and must not be dropped
 * either. Before, a leave refused for want of budget was lost, and the join
 * held before it ran once Redis answered: the member who had left showed as
 * present to everyone who joined later, until its gateway's link closed.
 * The budget is filled to within a few bytes, read from the broker's
 * confab_broker_held_bytes, so that nothing as small as a leave fits. */
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
    if (h <= than) {
        kill(fx.redis.proc.pid, SIGCONT);
        fail_msg("the broker holds %.0f bytes, expected more than %.0f", h, than);
    }
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

    assert_int_equal(kill(fx.redis.proc.pid, SIGSTOP), 0);
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

    leave_ok(bob, ROOM);
    /* the broker has the leave once the join held for it is taken back (its
     * bytes freed); without that, the leave's fate shows below */
    for (int64_t end = h_now_ms() + 3000; held() >= h && h_now_ms() < end;)
        h_sleep_ms(20);
    assert_int_equal(kill(fx.redis.proc.pid, SIGCONT), 0);
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
    json_t *ev = join_ok(dave, ROOM);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_leave_refused_a_place_in_the_hold_is_not_lost, down),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
