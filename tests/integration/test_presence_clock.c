/* Presence entries expire by Redis' clock, not by each node's. Node B's
 * processes run 40 s behind node A (tests/support/skewclock.c), over
 * PRESENCE_TTL=6: with each node's own clock, A's sweeps found B's entries
 * long expired and announced bob leaving (and B's next refresh joining
 * again) every few seconds. */
#include "v1.h"

#define SKEW_ENV "SKEW_MS=40000"

static struct h_redis redis;
static struct h_node a, b;

static void test_a_node_behind_keeps_its_members(void **state)
{
    (void)state;
    assert_int_equal(h_redis_start(&redis, h_tmpdir()), 0);
    h_node_init(&a, redis.addr);
    a.extra_env[0] = "PRESENCE_TTL=6";
    h_node_init(&b, redis.addr);
    b.extra_env[0] = "PRESENCE_TTL=6";
    b.extra_env[1] = SKEW_ENV;
    h_node_preload(&b, SKEWCLOCK_LIB);
    assert_int_equal(h_node_start(&a), 0);
    assert_int_equal(h_node_start(&b), 0);

    const char *room = "skewed";
    struct v1c *alice = v1_member(a.port, "alice", V1_JSON);
    struct v1c *bob = v1_member(b.port, "bob", V1_JSON); /* its token from B's own clock */
    join_quietly(alice, room);
    json_decref(join_ok(bob, room));
    assert_int_equal(expect_presence(alice, room, "bob", "join", V1_WAIT), 2);
    /* three refresh rounds of each node (every 2 s) */
    V1_NONE(alice, 7000, "presence", "user", "bob", NULL);
    struct v1c *carol = v1_member(a.port, "carol", V1_JSON);
    json_t *ev = join_ok(carol, room);
    assert_true(has_member(ev, "bob"));
    assert_int_equal(pint(ev, "count"), 3);
    json_decref(ev);
    v1_close(carol);
    assert_int_equal(expect_presence(alice, room, "carol", "leave", V1_WAIT), 2);
    v1_close(bob);
    assert_int_equal(expect_presence(alice, room, "bob", "leave", V1_WAIT), 1);
    v1_close(alice);
    assert_int_equal(h_node_stop(&b), 0);
    assert_int_equal(h_node_stop(&a), 0);
    h_redis_stop(&redis);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_node_behind_keeps_its_members),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
