/* A Redis that comes back from an older copy of its data (here: an RDB
 * snapshot taken with SAVE, then a kill and a restart that loads it) keeps a
 * room's epoch but hands out the ids it lost again, to new messages
 * (docs/operations.md, Persistence). What the server promises then
 * (docs/protocol.md, joined): a member that stayed joined gets an unasked
 * `joined` in the same epoch whose `last_id` is below what it was given,
 * before any id is handed out again, and then the new messages, which the
 * gateway does not drop as repeats. confab-client.js takes such a `joined`
 * for a reset (lib.test.mjs). */
#include "v1.h"

#include <signal.h>

static struct h_fixture fx;

static int setup(void **state)
{
    *state = &fx;
    return h_fixture_up(&fx, NULL);
}

static void test_a_member_hears_the_history_went_back(void **state)
{
    (void)state;
    const char *room = "rolled-back";
    struct v1c *a = v1_member(fx.node.port, "alice", V1_JSON);
    char epoch[128];
    join_epoch(a, room, epoch, sizeof epoch);
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(send_ok(a, room, "kept", NULL), i);
        assert_int_equal(expect_new(a, room, "kept", "alice"), i);
    }
    static const char *const save[] = {"SAVE", NULL};
    assert_int_equal(h_redis_cli(&fx.redis, save), 0);
    for (int i = 4; i <= 5; i++) {
        assert_int_equal(send_ok(a, room, "lost", NULL), i);
        assert_int_equal(expect_new(a, room, "lost", "alice"), i);
    }

    long m0 = h_log_mark(&fx.node.broker[0]), m1 = h_log_mark(&fx.node.broker[1]);
    h_stop(&fx.redis.proc, SIGKILL, 5000);
    assert_int_equal(h_redis_restart(&fx.redis, h_tmpdir()), 0); /* loads dump.rdb */
    assert_true(h_log_contains_from(&fx.node.broker[0], m0, "ready: Redis connected", 15000));
    assert_true(h_log_contains_from(&fx.node.broker[1], m1, "ready: Redis connected", 15000));

    json_t *ev = v1_wait(a, 15000, "joined", "room", room, NULL);
    V1_MUST(a, ev, "an unasked joined after Redis went back");
    assert_string_equal(pstr(ev, "epoch"), epoch);
    assert_int_equal(pint(ev, "last_id"), 3);
    assert_false(json_is_true(json_object_get(pl(ev), "recovered")));
    json_decref(ev);

    /* id 4 again, for another message, and the member gets it */
    struct v1c *b = v1_member(fx.node.port, "bob", V1_JSON);
    join_quietly(b, room);
    assert_int_equal(send_ok(b, room, "a new four", NULL), 4);
    assert_int_equal(expect_new(a, room, "a new four", "bob"), 4);
    assert_int_equal(expect_new(b, room, "a new four", "bob"), 4);
    v1_close(b);
    v1_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_member_hears_the_history_went_back),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, fixture_down));
}
