/* Presence across a gateway link that closes and comes back. A gateway
 * whose link to a broker is reset (at the broker's queue bound, or by a link
 * timeout) links again at once and re-registers its members: the others in
 * their rooms must not see each of them leave and join again. What the
 * re-registration does not bring back (connections that closed meanwhile,
 * or a gateway that is gone) is announced as gone once the broker's grace
 * (10 s) is over, or, while a newer link keeps taking the closed one's
 * entries over, 10 s after the last take-over. The "gateway" here is the
 * test itself on the broker's socket (blink.h), so that the link can be
 * cut and the re-sync chosen; the one who watches is a v1 client of the
 * node's real gateway. */
#include "v1.h"
#include "blink.h"

#include "clock.h"

#define GRACE_MS 10000 /* broker.c's LINK_GRACE_MS */

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

static struct cf_str str(const char *s)
{
    return (struct cf_str){s, (uint32_t)strlen(s)};
}

/* Registers user's connection conn in room, as a gateway's join does. */
static void sub(int fd, const char *room, const char *user, const char *conn, uint64_t q)
{
    struct cf_wire_msg m = {.type = CF_WIRE_SUB, .q = q, .room = str(room), .user = str(user),
                            .conn = str(conn), .limit = 0, .budget = 65536};
    bl_send_msg(fd, &m);
}

/* A link to room's broker, as a gateway that has just (re)connected. */
static int link_for(const char *room)
{
    uint32_t shard = cf_shard_of(room, strlen(room), 2);
    int fd = bl_connect(fx.node.run_dir, (int)shard);
    bl_hello(fd, shard, 2);
    return fd;
}

static void test_a_link_back_at_once_shows_no_leave(void **state)
{
    (void)state;
    const char *room = "grace";
    struct v1c *alice = v1_member(fx.node.port, "alice", V1_JSON);
    join_quietly(alice, room);

    int fd = link_for(room);
    sub(fd, room, "ghost", "c-ghost", 1);
    sub(fd, room, "phantom", "c-phantom", 2);
    expect_presence(alice, room, "ghost", "join", V1_WAIT);
    expect_presence(alice, room, "phantom", "join", V1_WAIT);

    /* The link is reset; the gateway is back at once, and only ghost's
     * connection is still open to be registered again. */
    close(fd);
    int64_t cut = h_now_ms();
    fd = link_for(room);
    sub(fd, room, "ghost", "c-ghost", 3);
    V1_NONE(alice, 3000, "presence", "room", room, NULL); /* it used to be leave, then join */

    /* phantom's connection was not brought back: gone after the grace. */
    expect_presence(alice, room, "phantom", "leave", GRACE_MS + 5000);
    int64_t waited = h_now_ms() - cut;
    printf("phantom's leave came %lld ms after the link closed\n", (long long)waited);
    assert_true(waited >= GRACE_MS - 500);
    V1_NONE(alice, 500, "presence", "room", room, "user", "ghost", NULL);

    /* The gateway is gone for good: ghost leaves too, after the grace. */
    close(fd);
    expect_presence(alice, room, "ghost", "leave", GRACE_MS + 5000);
    v1_close(alice);
}

/* A gateway re-syncs its members at its pace (256 in flight a broker,
 * ~2,000 a second): past ~20,000 memberships of one shard in one gateway
 * process, its last ones came after the grace, and their users showed as
 * leaving and joining again. While the link that came back keeps taking
 * over the closed link's entries, the grace goes on, 10 s past the last
 * take-over; what is never taken over is announced then. */
static void test_a_slow_resync_keeps_the_grace_going(void **state)
{
    (void)state;
    const char *room = "slow-grace";
    enum { TAKEN = 4, EVERY_MS = 4000 };
    struct v1c *alice = v1_member(fx.node.port, "alice", V1_JSON);
    join_quietly(alice, room);

    int fd = link_for(room);
    char user[TAKEN][16], conn[TAKEN][16];
    for (int i = 0; i < TAKEN; i++) {
        snprintf(user[i], sizeof user[i], "user-%d", i);
        snprintf(conn[i], sizeof conn[i], "c-%d", i);
        sub(fd, room, user[i], conn[i], (uint64_t)i + 1);
        expect_presence(alice, room, user[i], "join", V1_WAIT);
    }
    sub(fd, room, "phantom", "c-phantom", 10);
    expect_presence(alice, room, "phantom", "join", V1_WAIT);

    /* The link is reset and back at once; its re-sync takes one entry over
     * every 4 s, the last 12 s after the close, past the 10 s grace. */
    close(fd);
    int64_t cut = h_now_ms();
    fd = link_for(room);
    int64_t last = 0;
    for (int i = 0; i < TAKEN; i++) {
        sub(fd, room, user[i], conn[i], (uint64_t)i + 20);
        last = h_now_ms();
        /* the grace used to end at 10 s: every entry not yet taken over
         * left, and joined again when its turn came */
        V1_NONE(alice, i + 1 < TAKEN ? EVERY_MS : 2000, "presence", "room", room, NULL);
    }
    printf("the last entry was taken over %lld ms after the link closed\n",
           (long long)(last - cut));
    assert_true(last - cut > GRACE_MS);

    /* phantom's connection was never taken over: gone 10 s after the last
     * take-over, and no one else with it */
    expect_presence(alice, room, "phantom", "leave", GRACE_MS + 5000);
    int64_t waited = h_now_ms() - last;
    printf("phantom's leave came %lld ms after the last take-over\n", (long long)waited);
    assert_true(waited >= GRACE_MS - 500);
    V1_NONE(alice, 500, "presence", "room", room, NULL);
    close(fd);
    v1_close(alice);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_link_back_at_once_shows_no_leave),
        cmocka_unit_test(test_a_slow_resync_keeps_the_grace_going),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
