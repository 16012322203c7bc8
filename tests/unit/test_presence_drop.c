/* Unit tests of broker/presence's walks over a link's entries: dropping
 * them (all, a share at a time, keeping some), and merging two links. */
#include "presence_seen.h"

static void test_drop_link(void **state)
{
    struct presence *p = *state;
    static const struct {
        uint64_t link;
        const char *room, *conn, *user;
    } in[] = {
        {1, "lobby", "gw1:1", "alice"}, {2, "lobby", "gw2:1", "bob"},
        {1, "lobby", "gw1:2", "carol"}, {1, "other", "gw1:1", "alice"},
        {2, "other", "gw2:7", "dave"},  {3, "third", "gw3:1", "erin"},
        {1, "solo", "gw1:9", "frank"},
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        assert_int_equal(
            presence_add(p, in[i].link, S(in[i].room), S(in[i].conn), S(in[i].user), NULL), 0);

    struct seen *x = calloc(1, sizeof *x);
    assert_non_null(x);
    presence_drop_link(p, 1, UINT64_MAX, on_drop, x);
    assert_int_equal(x->n, 4);
    assert_true(dropped(x, "lobby", "gw1:1"));
    assert_true(dropped(x, "lobby", "gw1:2"));
    assert_true(dropped(x, "other", "gw1:1"));
    assert_true(dropped(x, "solo", "gw1:9"));
    assert_int_equal(presence_count(p), 3);
    assert_false(presence_del(p, S("lobby"), S("gw1:1")));

    snapshot(p, x);
    assert_int_equal(x->ng, 3); /* "solo" is gone with its only entry */
    assert_null(group(x, "solo"));
    assert_int_equal(group(x, "lobby")->n, 1);
    assert_string_equal(user_of(group(x, "lobby"), "gw2:1"), "bob");
    assert_int_equal(group(x, "other")->n, 1);
    assert_string_equal(user_of(group(x, "other"), "gw2:7"), "dave");
    assert_int_equal(group(x, "third")->n, 1);

    /* A link without entries: no calls. A NULL callback just removes. */
    memset(x, 0, sizeof *x);
    presence_drop_link(p, 99, UINT64_MAX, on_drop, x);
    assert_int_equal(x->n, 0);
    presence_drop_link(p, 2, UINT64_MAX, NULL, NULL);
    assert_int_equal(presence_count(p), 1);
    assert_true(presence_del(p, S("third"), S("gw3:1")));
    free(x);
}

/* A grace's leaves go out a slice at a time (leaves.c): a call drops at
 * most `max`, one whose callback refuses an entry keeps it and stops, and
 * the next call for the link goes on where the last stopped, rooms made or
 * gone meanwhile included. Every entry is dropped once. */
static void test_drop_link_a_share_at_a_time(void **state)
{
    struct presence *p = *state;
    enum { ROOMS = 12, PER_ROOM = 3 };
    char room[ROOMS][8], conn[PER_ROOM][8];
    for (int i = 0; i < PER_ROOM; i++)
        snprintf(conn[i], sizeof conn[i], "c%d", i);
    for (int r = 0; r < ROOMS; r++) {
        snprintf(room[r], sizeof room[r], "r%02d", r);
        for (int i = 0; i < PER_ROOM; i++)
            assert_int_equal(presence_add(p, 1, S(room[r]), S(conn[i]), S("u"), NULL), 0);
        assert_int_equal(presence_add(p, 2, S(room[r]), S("other"), S("o"), NULL), 0);
    }
    struct seen *x = calloc(1, sizeof *x);
    assert_non_null(x);
    assert_int_equal(presence_drop_link(p, 1, 5, on_drop, x), ROOMS * PER_ROOM - 5);
    assert_int_equal(x->n, 5);

    /* Another link's drop meanwhile does not lose link 1's place. */
    assert_int_equal(presence_drop_link(p, 3, UINT64_MAX, on_drop, x), 0);
    /* Nor do rooms that go (one half-dropped, say) or come. */
    for (int i = 0; i < PER_ROOM; i++)
        presence_del(p, S(room[1]), S(conn[i]));
    presence_del(p, S(room[1]), S("other"));
    assert_int_equal(presence_add(p, 2, S("new"), S("c9"), S("n"), NULL), 0);
    size_t gone_with_r01 = 0;
    for (size_t i = 0; i < x->n; i++)
        gone_with_r01 += strcmp(x->e[i].room, "r01") == 0;
    uint64_t left = presence_link_entries(p, 1);
    assert_int_equal(left, ROOMS * PER_ROOM - 5 - (PER_ROOM - gone_with_r01));
    /* The refresh's cursor moves on meanwhile (to r06): the next call still
     * goes on where the last stopped (r01, gone: the room after it), not
     * at the cursor. */
    assert_int_equal(presence_refresh_next(p, 6, no_room, NULL), 6);
    size_t before_one = x->n;
    assert_int_equal(presence_drop_link(p, 1, 1, on_drop, x), left - 1);
    assert_int_equal(x->n, before_one + 1);
    assert_string_equal(x->e[before_one].room, "r02");
    left--;

    /* A refusal keeps its entry and ends the call; the next tries it again. */
    struct picky k = {x, 1};
    size_t before = x->n;
    assert_int_equal(presence_drop_link(p, 1, 4, on_drop_picky, &k), left);
    assert_int_equal(x->n, before);
    int calls = 0;
    while ((left = presence_drop_link(p, 1, 4, on_drop, x)) > 0)
        assert_true(++calls < ROOMS * PER_ROOM);
    assert_int_equal(presence_link_entries(p, 1), 0);

    /* Every entry of link 1 once, but those removed by presence_del. */
    assert_int_equal(x->n, ROOMS * PER_ROOM - (PER_ROOM - gone_with_r01));
    for (size_t i = 0; i < x->n; i++)
        for (size_t j = i + 1; j < x->n; j++)
            assert_false(strcmp(x->e[i].room, x->e[j].room) == 0 &&
                         strcmp(x->e[i].conn, x->e[j].conn) == 0);
    assert_int_equal(presence_count(p), ROOMS - 1 + 1); /* link 2's, "new" among them */
    free(x);
}

/* Keeps the entries of even-numbered rooms ("r<n>") and goes on (their Redis
 * server is down), drops the others as on_drop. */
/* Keeps the entries of even-numbered connections ("c<n>") and goes on
 * (their Redis server is down); the others are dropped as on_drop, or, with
 * stop_odd, kept with the call ended there (a full queue). */
struct skipper {
    struct seen *x;
    int calls;
    bool stop_odd;
};

static enum presence_drop on_drop_odd(void *ud, struct cf_str room, struct cf_str conn)
{
    struct skipper *k = ud;
    k->calls++;
    if ((conn.p[conn.len - 1] - '0') % 2 == 0)
        return PRESENCE_SKIP;
    return k->stop_odd ? PRESENCE_STOP : on_drop(k->x, room, conn);
}

/* Leaves held for a server that is down are skipped, not waited behind
 * (leaves.c): the walk goes on to the link's other entries, those of the
 * same room included, skipped ones do not count against `max`, and a call
 * ends once every entry left was seen (one round at most, each entry asked
 * once), also when it goes on from where a full queue stopped the last. */
static void test_drop_link_skips_and_keeps(void **state)
{
    struct presence *p = *state;
    enum { ROOMS = 10, PER_ROOM = 4, ALL = ROOMS * PER_ROOM, KEPT = ALL / 2 };
    char room[ROOMS][8], conn[PER_ROOM][8];
    for (int i = 0; i < PER_ROOM; i++)
        snprintf(conn[i], sizeof conn[i], "c%d", i);
    for (int r = 0; r < ROOMS; r++) {
        snprintf(room[r], sizeof room[r], "r%d", r);
        for (int i = 0; i < PER_ROOM; i++) {
            assert_int_equal(presence_add(p, 1, S(room[r]), S(conn[i]), S("u"), NULL), 0);
            if (i == 1) /* another link's entry among them */
                assert_int_equal(presence_add(p, 2, S(room[r]), S("o"), S("o"), NULL), 0);
        }
    }
    struct seen *x = calloc(1, sizeof *x);
    assert_non_null(x);
    struct skipper k = {x, 0, false};
    /* three go, whatever was skipped before them */
    assert_int_equal(presence_drop_link(p, 1, 3, on_drop_odd, &k), ALL - 3);
    assert_int_equal(x->n, 3);
    /* a full queue after skips: nothing more goes, the place is kept */
    k.stop_odd = true;
    assert_int_equal(presence_drop_link(p, 1, UINT64_MAX, on_drop_odd, &k), ALL - 3);
    assert_int_equal(x->n, 3);
    /* the rest of the round: the odd ones left go, the even ones are asked
     * once each and stay */
    k.stop_odd = false;
    k.calls = 0;
    assert_int_equal(presence_drop_link(p, 1, UINT64_MAX, on_drop_odd, &k), KEPT);
    assert_int_equal(x->n, ALL - KEPT);
    assert_int_equal(k.calls, ALL - 3);
    for (size_t i = 0; i < x->n; i++)
        assert_int_equal((x->e[i].conn[1] - '0') % 2, 1);
    /* only skipped ones left: each asked once, then the call ends */
    k.calls = 0;
    assert_int_equal(presence_drop_link(p, 1, 1, on_drop_odd, &k), KEPT);
    assert_int_equal(k.calls, KEPT);
    for (int r = 0; r < ROOMS; r++)
        for (int i = 0; i < PER_ROOM; i += 2)
            assert_int_equal(presence_owner(p, S(room[r]), S(conn[i])), 1);
    /* the server back: they go */
    assert_int_equal(presence_drop_link(p, 1, UINT64_MAX, on_drop, x), 0);
    assert_int_equal(x->n, ALL);
    for (size_t i = 0; i < x->n; i++)
        for (size_t j = i + 1; j < x->n; j++)
            assert_false(strcmp(x->e[i].room, x->e[j].room) == 0 &&
                         strcmp(x->e[i].conn, x->e[j].conn) == 0);
    assert_int_equal(presence_count(p), ROOMS); /* link 2's */
    free(x);
}

/* Two closed links share one place (leaves.c): every entry of one becomes
 * the other's, counted there, and a drop that had stopped short for either
 * walks the merged link's entries from the start, each once. */
static void test_merge_link(void **state)
{
    struct presence *p = *state;
    enum { ROOMS = 8 };
    char room[ROOMS][8];
    for (int r = 0; r < ROOMS; r++) {
        snprintf(room[r], sizeof room[r], "r%d", r);
        assert_int_equal(presence_add(p, 1, S(room[r]), S("a"), S("u"), NULL), 0);
        assert_int_equal(presence_add(p, 2, S(room[r]), S("b"), S("u"), NULL), 0);
        assert_int_equal(presence_add(p, 3, S(room[r]), S("c"), S("u"), NULL), 0);
    }
    /* neither owns nothing, nor the same link */
    assert_false(presence_merge_link(p, 1, 9));
    assert_false(presence_merge_link(p, 9, 1));
    assert_false(presence_merge_link(p, 1, 1));
    assert_int_equal(presence_link_entries(p, 1), ROOMS);

    struct seen *x = calloc(1, sizeof *x);
    assert_non_null(x);
    assert_int_equal(presence_drop_link(p, 2, 3, on_drop, x), ROOMS - 3); /* stops short */
    assert_true(presence_merge_link(p, 1, 2));
    assert_int_equal(presence_link_entries(p, 1), 0);
    assert_int_equal(presence_link_entries(p, 2), 2 * ROOMS - 3);
    assert_int_equal(presence_owner(p, S("r0"), S("a")), 2);
    assert_int_equal(presence_link_entries(p, 3), ROOMS);

    while (presence_drop_link(p, 2, 2, on_drop, x) > 0)
        ;
    assert_int_equal(x->n, 2 * ROOMS);
    for (int r = 0; r < ROOMS; r++) {
        assert_true(dropped(x, room[r], "a"));
        assert_true(dropped(x, room[r], "b"));
        assert_false(dropped(x, room[r], "c"));
    }
    assert_int_equal(presence_count(p), ROOMS);
    free(x);
}

/* Dropping a link's entries cannot fail for want of memory: it used to take
 * a snapshot of every entry first, and without one it left them all, to be
 * refreshed forever with their link gone. */
static void test_drop_link_needs_no_memory(void **state)
{
    struct presence *p = *state;
    char room[16], conn[16];
    for (int i = 0; i < 40; i++) {
        snprintf(room, sizeof room, "r%d", i % 7);
        snprintf(conn, sizeof conn, "c%d", i);
        assert_int_equal(
            presence_add(p, 1 + (uint64_t)(i % 3 == 0), S(room), S(conn), S("u"), NULL), 0);
    }
    struct seen *x = calloc(1, sizeof *x);
    assert_non_null(x);
    fail_malloc = true;
    presence_drop_link(p, 2, UINT64_MAX, on_drop, x);
    fail_malloc = false;
    assert_int_equal(x->n, 14); /* i = 0, 3, ..., 39 */
    assert_int_equal(presence_count(p), 26);
    for (int i = 0; i < 40; i++) {
        snprintf(room, sizeof room, "r%d", i % 7);
        snprintf(conn, sizeof conn, "c%d", i);
        assert_int_equal(dropped(x, room, conn), i % 3 == 0);
    }
    presence_drop_link(p, 1, UINT64_MAX, NULL, NULL);
    assert_int_equal(presence_count(p), 0);
    assert_int_equal(presence_rooms(p), 0);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drop_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_link_skips_and_keeps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_link_a_share_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_link_needs_no_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_link, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
