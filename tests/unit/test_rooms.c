/* Unit tests for broker/rooms: membership, SUBSCRIBE and UNSUBSCRIBE as
 * links join and leave, delivery to members, stats and freeing. (Requests,
 * held or refused while a room waits for Redis, are in test_rooms_requests.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rel.h"
#include "rooms.h"
#include "validate.h"

#include "rooms_fake.h"

static void test_join_subscribes_once(void **state)
{
    (void)state;
    assert_int_equal(join(0, "general"), 0);
    assert_int_equal(g_fake.n, 1);
    assert_call(0, 'S', "general", NULL);
    assert_int_equal(stats().rooms, 1);

    assert_int_equal(join(1, "general"), 0); /* a second link: no new SUBSCRIBE */
    assert_int_equal(join(0, "general"), 0); /* idempotent */
    assert_int_equal(join(1, "general"), 0);
    assert_int_equal(g_fake.n, 1);
    assert_int_equal(g_links[0].end.n, 1);
    assert_int_equal(g_links[1].end.n, 1);
    assert_int_equal(stats().rooms, 1);

    /* Another room subscribes on its own. */
    assert_int_equal(join(0, "lobby"), 0);
    assert_int_equal(g_fake.n, 2);
    assert_call(1, 'S', "lobby", NULL);
    assert_int_equal(g_links[0].end.n, 2);
    assert_int_equal(stats().rooms, 2);

    /* Names over the limit are refused. */
    char long_name[CF_ROOM_MAX + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(join(2, long_name), -EINVAL);
    assert_int_equal(g_fake.n, 2);
    long_name[CF_ROOM_MAX] = '\0';
    assert_int_equal(join(2, long_name), 0);
    assert_call(2, 'S', long_name, NULL);
}

static void test_last_leave_unsubscribes(void **state)
{
    (void)state;
    join(0, "general");
    join(1, "general");
    confirm("general");
    g_fake.n = 0;

    leave(0, "general");
    assert_int_equal(g_fake.n, 0);
    leave(0, "general"); /* not a member any more: nothing */
    leave(2, "general"); /* never was */
    leave(1, "nowhere");
    assert_int_equal(g_fake.n, 0);
    leave(1, "general");
    assert_int_equal(g_fake.n, 1);
    assert_call(0, 'U', "general", NULL);
    assert_int_equal(g_links[0].end.n, 0);
    assert_int_equal(g_links[1].end.n, 0);
    /* The room lives until the UNSUBSCRIBE is answered. */
    assert_int_equal(stats().rooms, 1);
    confirm("general");
    assert_int_equal(stats().rooms, 0);
    assert_int_equal(g_fake.n, 1);
    confirm("general"); /* a stray reply: ignored */
    assert_int_equal(stats().rooms, 0);
    assert_int_equal(g_fake.n, 1);
}

static void test_leave_before_subscribe_confirm(void **state)
{
    (void)state;
    join(0, "general");
    leave(0, "general");
    assert_int_equal(g_fake.n, 2);
    assert_call(0, 'S', "general", NULL);
    assert_call(1, 'U', "general", NULL);
    confirm("general"); /* the SUBSCRIBE */
    assert_int_equal(stats().rooms, 1);
    confirm("general"); /* the UNSUBSCRIBE */
    assert_int_equal(stats().rooms, 0);
    assert_int_equal(g_fake.n, 2);
}

static void test_on_message_delivers(void **state)
{
    (void)state;
    join(0, "general");
    join(1, "general");
    join(2, "general");
    join(3, "lobby");
    join(0, "lobby");
    g_fake.n = 0;

    message("general", "hello");
    assert_int_equal(g_fake.n, 3);
    int seen[4] = {0};
    for (int i = 0; i < 3; i++) {
        assert_call(i, 'D', NULL, "hello");
        struct link *l = g_fake.calls[i].link;
        assert_true(l >= g_links && l < g_links + 4);
        seen[l->id]++;
    }
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 1);
    assert_int_equal(seen[3], 0);
    assert_int_equal(stats().delivered_frames, 3);

    g_fake.n = 0;
    message("lobby", "hi lobby");
    assert_int_equal(g_fake.n, 2);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 2; i++) {
        assert_call(i, 'D', NULL, "hi lobby");
        seen[((struct link *)g_fake.calls[i].link)->id]++;
    }
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[3], 1);
    assert_int_equal(stats().delivered_frames, 5);

    /* Nobody here. */
    g_fake.n = 0;
    message("nowhere", "lost");
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(stats().no_member_drops, 1);
    leave(3, "lobby");
    leave(0, "lobby");
    message("lobby", "late"); /* unsubscribing: nobody to give it to */
    assert_int_equal(count_kind('D'), 0);
    assert_int_equal(stats().no_member_drops, 2);
    assert_int_equal(stats().delivered_frames, 5);

    /* After a leave, the link no longer receives. */
    leave(1, "general");
    g_fake.n = 0;
    message("general", "again");
    assert_int_equal(g_fake.n, 2);
    for (int i = 0; i < 2; i++)
        assert_int_not_equal(((struct link *)g_fake.calls[i].link)->id, 1);
}

static void test_rejoin_before_unsubscribe_confirm(void **state)
{
    (void)state;
    join(0, "general");
    confirm("general");
    leave(0, "general");
    assert_int_equal(join(0, "general"), 0);
    assert_int_equal(g_fake.n, 3);
    assert_call(0, 'S', "general", NULL);
    assert_call(1, 'U', "general", NULL);
    assert_call(2, 'S', "general", NULL); /* a new SUBSCRIBE */

    g_fake.n = 0;
    assert_int_equal(submit("general", "p1"), 0);
    assert_int_equal(g_fake.n, 0); /* held: the room is not active */
    confirm("general");            /* answers the UNSUBSCRIBE */
    assert_int_equal(submit("general", "p2"), 0);
    assert_int_equal(g_fake.n, 0);
    message("general", "m"); /* the link is a member: it is delivered */
    assert_int_equal(g_fake.n, 1);
    assert_call(0, 'D', NULL, "m");
    confirm("general"); /* answers the new SUBSCRIBE */
    assert_int_equal(g_fake.n, 3);
    assert_run(1, LID(0), "p1");
    assert_run(2, LID(0), "p2");
    assert_int_equal(submit("general", "p3"), 0);
    assert_run(3, LID(0), "p3");
    assert_int_equal(stats().rooms, 1);
}

static void test_rejoin_before_any_confirm(void **state)
{
    (void)state;
    join(0, "general");
    leave(0, "general");
    join(1, "general");
    assert_int_equal(g_fake.n, 3);
    assert_call(2, 'S', "general", NULL);
    g_fake.n = 0;
    assert_int_equal(submit("general", "q"), 0);
    confirm("general");
    confirm("general");
    assert_int_equal(g_fake.n, 0); /* two of three replies: still pending */
    confirm("general");
    assert_int_equal(g_fake.n, 1);
    assert_run(0, LID(0), "q");
    confirm("general"); /* extra: ignored */
    assert_int_equal(submit("general", "r"), 0);
    assert_run(1, LID(0), "r");
}

static void test_drop_link(void **state)
{
    (void)state;
    join(0, "a");
    join(0, "b");
    join(0, "c");
    join(1, "b");
    confirm("a");
    confirm("b");
    confirm("c");
    submit("a", "ignored"); /* active: run at once */
    g_fake.n = 0;
    rooms_drop_link(g_rooms, &g_links[0].end);
    assert_int_equal(g_links[0].end.n, 0);
    assert_null(g_links[0].end.v);
    assert_int_equal(g_fake.n, 2);
    int ua = 0, uc = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g_fake.calls[i].kind, 'U');
        ua += strcmp(g_fake.calls[i].name, "a") == 0;
        uc += strcmp(g_fake.calls[i].name, "c") == 0;
    }
    assert_int_equal(ua, 1);
    assert_int_equal(uc, 1);
    /* b keeps its other link. */
    g_fake.n = 0;
    message("b", "still here");
    assert_int_equal(g_fake.n, 1);
    assert_ptr_equal(g_fake.calls[0].link, &g_links[1]);
    message("a", "gone");
    assert_int_equal(g_fake.n, 1);
    rooms_drop_link(g_rooms, &g_links[0].end); /* again: nothing */
    assert_int_equal(g_fake.n, 1);
    confirm("a");
    confirm("c");
    assert_int_equal(stats().rooms, 1);
}

/* Counts of the calls since the last reset, by kind, then a reset. */
static int took(char kind)
{
    int n = count_kind(kind);
    g_fake.n = 0;
    return n;
}

/* A link in many rooms that others share: a membership is found from
 * whichever side is shorter (the room's few links, or a link's few rooms),
 * and either way it is the right link's and the right room's. */
static void test_many_rooms_shared_by_links(void **state)
{
    (void)state;
    enum { N = 3000 };
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "r%d", i);
        assert_int_equal(join(0, name), 0);
        assert_int_equal(took('S'), 1);
        confirm(name);
    }
    /* link 1 joins them all, link 2 the even ones; then both again */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            snprintf(name, sizeof name, "r%d", i);
            assert_int_equal(join(1, name), 0);
            if (i % 2 == 0)
                assert_int_equal(join(2, name), 0);
            assert_int_equal(took('S'), 0);
        }
        assert_int_equal(g_links[1].end.n, N);
        assert_int_equal(g_links[2].end.n, N / 2);
    }
    assert_int_equal(stats().rooms, N);
    for (int i = 0; i < N; i += 499) {
        snprintf(name, sizeof name, "r%d", i);
        message(name, "m");
        int want = i % 2 == 0 ? 3 : 2;
        assert_int_equal(g_fake.n, want);
        for (int k = 0; k < want; k++)
            assert_ptr_equal(g_fake.calls[k].link, &g_links[k]);
        g_fake.n = 0;
    }
    /* a link that is in none of them leaves them all: nobody else moves */
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "r%d", i);
        leave(3, name);
    }
    assert_int_equal(took('U'), 0);
    assert_int_equal(g_links[0].end.n, N);
    assert_int_equal(g_links[1].end.n, N);
    /* link 0 leaves: the others keep every room */
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "r%d", i);
        leave(0, name);
        leave(0, name); /* again: nothing */
    }
    assert_int_equal(took('U'), 0);
    assert_int_equal(g_links[0].end.n, 0);
    assert_int_equal(g_links[1].end.n, N);
    assert_int_equal(g_links[2].end.n, N / 2);
    /* link 1 leaves: the odd rooms lose their last link */
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "r%d", i);
        leave(1, name);
        assert_int_equal(took('U'), i % 2);
    }
    assert_int_equal(g_links[1].end.n, 0);
    snprintf(name, sizeof name, "r%d", 2);
    message(name, "m");
    assert_int_equal(g_fake.n, 1);
    assert_ptr_equal(g_fake.calls[0].link, &g_links[2]);
    g_fake.n = 0;
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof name, "r%d", i);
        leave(2, name);
        assert_int_equal(took('U'), 1);
    }
    assert_int_equal(g_links[2].end.n, 0);
}

static void test_stats(void **state)
{
    (void)state;
    struct rooms_stats s = stats();
    assert_int_equal(s.rooms, 0);
    assert_int_equal(s.held_bytes, 0);
    assert_int_equal(s.held_dropped, 0);
    assert_int_equal(s.delivered_frames, 0);
    assert_int_equal(s.no_member_drops, 0);

    join(0, "a");
    join(1, "a");
    join(2, "b");
    submit("a", "12345");
    submit("b", "123");
    message("a", "x");
    message("b", "y");
    message("zzz", "z");
    message("zzz", "z");
    s = stats();
    assert_int_equal(s.rooms, 2);
    assert_int_equal(s.held_bytes, 8);
    assert_int_equal(s.held_dropped, 0);
    assert_int_equal(s.delivered_frames, 3);
    assert_int_equal(s.no_member_drops, 2);
    confirm("a");
    s = stats();
    assert_int_equal(s.held_bytes, 3);
}

static void test_free_leaks_nothing(void **state)
{
    (void)state;
    /* Rooms waiting for replies, with held messages released on the way:
     * rooms_free must release all of it (LeakSanitizer checks). */
    join(0, "a");
    join(1, "b");
    join(1, "c");
    submit("a", "held");
    confirm("b");
    rooms_drop_link(g_rooms, &g_links[0].end);
    rooms_drop_link(g_rooms, &g_links[1].end);
    assert_int_equal(stats().rooms, 3);
    rooms_free(g_rooms);
    g_rooms = rooms_new(&fake_ops, &g_fake, 1u << 20);
    assert_non_null(g_rooms);
    rooms_free(NULL);

    /* Many rooms, many links, joined and left. */
    char name[16];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "room-%d", i);
        join(i % 4, name);
        join((i + 1) % 4, name);
        if (i % 3 == 0)
            submit(name, "held");
    }
    assert_int_equal(stats().rooms, 300);
    for (int i = 0; i < 300; i += 2) {
        snprintf(name, sizeof name, "room-%d", i);
        confirm(name);
    }
    for (int l = 0; l < 4; l++)
        rooms_drop_link(g_rooms, &g_links[l].end);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "room-%d", i);
        confirm(name);
    }
    /* Even rooms: SUBSCRIBE and UNSUBSCRIBE answered; odd ones wait for one more. */
    assert_int_equal(stats().rooms, 150);
    assert_int_equal(stats().held_bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_join_subscribes_once),
        T(test_last_leave_unsubscribes),
        T(test_leave_before_subscribe_confirm),
        T(test_on_message_delivers),
        T(test_rejoin_before_unsubscribe_confirm),
        T(test_rejoin_before_any_confirm),
        T(test_drop_link),
        T(test_many_rooms_shared_by_links),
        T(test_stats),
        T(test_free_leaks_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
