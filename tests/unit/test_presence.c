/* Unit tests for broker/presence: the local record of connections this
 * broker registered in Redis presence, by (room, conn), with their link. */
#include "presence_seen.h"

/* ---- tests ---------------------------------------------------------------- */

/* What a leave from link_id does (requests.c): removes the entry if that
 * link may. */
static bool del_owned(struct presence *p, struct cf_str room, struct cf_str conn, uint64_t link_id)
{
    return presence_may_remove(p, room, conn, link_id) && presence_del(p, room, conn);
}

static void test_add_del(void **state)
{
    struct presence *p = *state;
    assert_int_equal(presence_count(p), 0);
    assert_int_equal(presence_add(p, 1, S("lobby"), S("gw1:1"), S("alice"), NULL), 0);
    assert_int_equal(presence_add(p, 1, S("lobby"), S("gw1:2"), S("alice"), NULL), 0); /* 2nd tab */
    assert_int_equal(presence_add(p, 2, S("lobby"), S("gw2:1"), S("bob"), NULL), 0);
    assert_int_equal(presence_add(p, 1, S("other"), S("gw1:1"), S("alice"), NULL), 0);
    assert_int_equal(presence_count(p), 4);

    assert_true(presence_del(p, S("lobby"), S("gw1:2")));
    assert_int_equal(presence_count(p), 3);
    assert_false(presence_del(p, S("lobby"), S("gw1:2"))); /* twice */
    assert_false(presence_del(p, S("nowhere"), S("gw1:1")));
    assert_false(presence_del(p, S("lobby"), S("gw9:9")));
    /* Room and conn are matched as a pair, not as a concatenation. */
    assert_false(presence_del(p, S("lobb"), S("ygw1:1")));
    assert_false(presence_del(p, S("lobbygw1:1"), S("")));
    assert_int_equal(presence_count(p), 3);

    assert_true(presence_del(p, S("other"), S("gw1:1")));
    assert_true(presence_del(p, S("lobby"), S("gw1:1")));
    assert_true(presence_del(p, S("lobby"), S("gw2:1")));
    assert_int_equal(presence_count(p), 0);
    struct seen *x = malloc(sizeof *x);
    assert_non_null(x);
    snapshot(p, x);
    assert_int_equal(x->ng, 0); /* empty rooms are forgotten */
    /* and can come back */
    assert_int_equal(presence_add(p, 3, S("lobby"), S("gw1:1"), S("carol"), NULL), 0);
    snapshot(p, x);
    assert_int_equal(x->ng, 1);
    assert_string_equal(user_of(group(x, "lobby"), "gw1:1"), "carol");
    free(x);
}

static void test_duplicates(void **state)
{
    struct presence *p = *state;
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), NULL), 0);
    /* Same room and conn: refused whatever the link or user. */
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), NULL), -EEXIST);
    assert_int_equal(presence_add(p, 2, S("lobby"), S("c1"), S("bob"), NULL), -EEXIST);
    assert_int_equal(presence_count(p), 1);
    struct seen *x = malloc(sizeof *x);
    assert_non_null(x);
    snapshot(p, x);
    assert_int_equal(x->g[0].n, 1);
    assert_string_equal(user_of(group(x, "lobby"), "c1"), "alice"); /* the first one stays */
    /* After a del it can be added again. */
    assert_true(presence_del(p, S("lobby"), S("c1")));
    assert_int_equal(presence_add(p, 2, S("lobby"), S("c1"), S("bob"), NULL), 0);
    snapshot(p, x);
    assert_string_equal(user_of(group(x, "lobby"), "c1"), "bob");
    free(x);
}

/* A connection registered again from another link (a gateway's re-sync
 * after its link was reset) is that link's from then on: the old link no
 * longer removes it (only its owner or a newer link does), and dropping
 * the old link leaves it. */
static void test_taken_over_by_a_new_link(void **state)
{
    struct presence *p = *state;
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), NULL), 0);
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c2"), S("bob"), NULL), 0);
    assert_int_equal(presence_add(p, 2, S("lobby"), S("c1"), S("alice"), NULL), -EEXIST);
    assert_false(del_owned(p, S("lobby"), S("c1"), 1)); /* no longer link 1's */
    assert_false(del_owned(p, S("lobby"), S("nobody"), 1));
    presence_drop_link(p, 1, UINT64_MAX, NULL, NULL); /* c2 only */
    assert_int_equal(presence_count(p), 1);
    assert_true(del_owned(p, S("lobby"), S("c1"), 2));
    assert_int_equal(presence_count(p), 0);
    assert_int_equal(presence_rooms(p), 0);
}

/* A connection that leaves before its gateway registered it again on its
 * new link (the registration waited behind others after a link reset):
 * the leave comes from a link newer than the entry's owner, and removes
 * it. Ignored, the user stayed present until the old link's grace ended. */
static void test_a_newer_link_may_remove_it(void **state)
{
    struct presence *p = *state;
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), NULL), 0);
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c2"), S("bob"), NULL), 0);
    assert_true(del_owned(p, S("lobby"), S("c1"), 2));
    assert_int_equal(presence_count(p), 1);
    assert_int_equal(presence_link_entries(p, 1), 1);            /* the old link's count follows */
    assert_false(del_owned(p, S("lobby"), S("c1"), 2));          /* gone already */
    presence_drop_link(p, 1, UINT64_MAX, NULL, NULL);
    assert_int_equal(presence_count(p), 0);
}

/* A registration read late from a link that has been replaced (the broker
 * read the new link's re-sync first) does not take the entry back: dropped
 * with the old link, it announced a leave of a connection still here. Nor
 * does presence_take_over; it takes over only what exists. */
static void test_an_older_link_does_not_take_it_back(void **state)
{
    struct presence *p = *state;
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), NULL), 0);
    assert_int_equal(presence_add(p, 2, S("lobby"), S("c1"), S("alice"), NULL), -EEXIST);
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), NULL), -EEXIST);
    assert_true(presence_take_over(p, S("lobby"), S("c1"), 1)); /* exists; still link 2's */
    presence_drop_link(p, 1, UINT64_MAX, NULL, NULL);
    assert_int_equal(presence_count(p), 1);

    assert_true(presence_take_over(p, S("lobby"), S("c1"), 3));
    assert_false(del_owned(p, S("lobby"), S("c1"), 2));
    assert_false(presence_take_over(p, S("lobby"), S("nobody"), 3));
    assert_int_equal(presence_count(p), 1); /* nothing made */
    assert_true(del_owned(p, S("lobby"), S("c1"), 3));
}

/* A join whose failure is read after its connection left and joined again
 * (J1, leave, J2 from one link; requests.c's on_joined) removes only what it
 * registered: J2's entry stays, to be refreshed, where removing it left a
 * member in Redis that no broker refreshed, shown leaving at PRESENCE_TTL. */
static void test_a_late_failure_keeps_a_newer_join(void **state)
{
    struct presence *p = *state;
    uint64_t j1, j2, again, newer, older;
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), &j1), 0);
    assert_true(j1 != 0);
    assert_true(del_owned(p, S("lobby"), S("c1"), 1)); /* the leave */
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), &j2), 0);
    assert_true(j2 != 0 && j2 != j1);
    assert_false(presence_del_reg(p, S("lobby"), S("c1"), j1)); /* J1 fails */
    assert_int_equal(presence_count(p), 1);

    /* Registered again from the same link (a re-sync): J2's failure leaves it. */
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), &again), -EEXIST);
    assert_true(again != 0 && again != j2);
    assert_false(presence_del_reg(p, S("lobby"), S("c1"), j2));
    /* A newer link's takes it; an older link's takes nothing (number 0). */
    assert_int_equal(presence_add(p, 2, S("lobby"), S("c1"), S("alice"), &newer), -EEXIST);
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), &older), -EEXIST);
    assert_int_equal(older, 0);
    assert_false(presence_del_reg(p, S("lobby"), S("c1"), 0));
    assert_false(presence_del_reg(p, S("lobby"), S("c1"), again));
    assert_false(presence_del_reg(p, S("lobby"), S("nobody"), newer));
    assert_int_equal(presence_count(p), 1);
    assert_true(presence_del_reg(p, S("lobby"), S("c1"), newer));
    assert_int_equal(presence_count(p), 0);
}

static void test_names_are_copied(void **state)
{
    struct presence *p = *state;
    char room[CF_ROOM_MAX + 1], conn[CF_WIRE_MAX_TOKEN + 1], user[CF_USERNAME_BYTES_MAX + 1];
    memset(room, 'r', CF_ROOM_MAX);
    room[CF_ROOM_MAX] = '\0';
    memset(conn, 'c', CF_WIRE_MAX_TOKEN);
    conn[CF_WIRE_MAX_TOKEN] = '\0';
    snprintf(user, sizeof user, "J\xc3\xa9r\xc3\xb4me");
    assert_int_equal(presence_add(p, 7, S(room), S(conn), S(user), NULL), 0);
    /* The caller's buffers are reused at once (as the wire decoder's are). */
    char keep_room[sizeof room], keep_conn[sizeof conn];
    memcpy(keep_room, room, sizeof room);
    memcpy(keep_conn, conn, sizeof conn);
    memset(room, 'x', CF_ROOM_MAX);
    memset(conn, 'y', CF_WIRE_MAX_TOKEN);
    memset(user, 'z', strlen(user));
    struct seen *x = malloc(sizeof *x);
    assert_non_null(x);
    snapshot(p, x);
    assert_int_equal(x->ng, 1);
    assert_string_equal(x->g[0].room, keep_room);
    assert_string_equal(x->g[0].e[0].conn, keep_conn);
    assert_string_equal(x->g[0].e[0].user, "J\xc3\xa9r\xc3\xb4me");
    assert_true(presence_del(p, S(keep_room), S(keep_conn)));
    free(x);
}

/* An entry given to an owner older than its link (a leave owed, leaves.c)
 * is counted there, dropped with it, and taken back by a newer join; a
 * late failure of the join that made it leaves it alone. */
static void test_give(void **state)
{
    struct presence *p = *state;
    uint64_t reg = 0;
    assert_int_equal(presence_add(p, 5, S("r"), S("a"), S("u"), &reg), 0);
    assert_int_equal(presence_add(p, 5, S("r"), S("b"), S("u"), NULL), 0);
    assert_false(presence_give(p, S("r"), S("none"), 1));
    assert_true(presence_give(p, S("r"), S("a"), 1));
    assert_int_equal(presence_owner(p, S("r"), S("a")), 1);
    assert_int_equal(presence_link_entries(p, 1), 1);
    assert_int_equal(presence_link_entries(p, 5), 1);
    assert_false(presence_del_reg(p, S("r"), S("a"), reg));
    assert_true(presence_give(p, S("r"), S("b"), 1));
    /* b joins again on link 6: its entry is link 6's, no leave owed */
    assert_int_equal(presence_add(p, 6, S("r"), S("b"), S("u"), NULL), -EEXIST);
    assert_int_equal(presence_owner(p, S("r"), S("b")), 6);
    struct seen *x = calloc(1, sizeof *x);
    assert_non_null(x);
    assert_int_equal(presence_drop_link(p, 1, UINT64_MAX, on_drop, x), 0);
    assert_int_equal(x->n, 1);
    assert_true(dropped(x, "r", "a"));
    assert_int_equal(presence_count(p), 1);
    free(x);
}

/* Each link's entries are counted (leaves.c gives a closed link a grace
 * place only while it owns some): taken-over entries count for the link
 * that took them, and every way out of the record lowers the count. */
static void test_entries_counted_per_link(void **state)
{
    struct presence *p = *state;
    uint64_t reg;
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), NULL), 0);
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c2"), S("bob"), NULL), 0);
    assert_int_equal(presence_add(p, 1, S("other"), S("c1"), S("alice"), NULL), 0);
    assert_int_equal(presence_add(p, 2, S("other"), S("c3"), S("carol"), NULL), 0);
    assert_int_equal(presence_link_entries(p, 1), 3);
    assert_int_equal(presence_link_entries(p, 2), 1);
    assert_int_equal(presence_link_entries(p, 9), 0);

    /* taken over by a newer link, by a registration or a take-over */
    assert_int_equal(presence_add(p, 2, S("lobby"), S("c1"), S("alice"), NULL), -EEXIST);
    assert_true(presence_take_over(p, S("lobby"), S("c2"), 3));
    assert_int_equal(presence_link_entries(p, 1), 1);
    assert_int_equal(presence_link_entries(p, 2), 2);
    assert_int_equal(presence_link_entries(p, 3), 1);
    /* registered again by its own link, or by an older one: no change */
    assert_int_equal(presence_add(p, 2, S("lobby"), S("c1"), S("alice"), NULL), -EEXIST);
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), NULL), -EEXIST);
    assert_true(presence_take_over(p, S("lobby"), S("c2"), 1));
    assert_int_equal(presence_link_entries(p, 1), 1);
    assert_int_equal(presence_link_entries(p, 2), 2);
    assert_int_equal(presence_link_entries(p, 3), 1);

    /* Out of memory for a new link's count: the entry stays its owner's
     * (an entry counted for no link would never be dropped), and a new
     * entry is refused with nothing counted. */
    fail_malloc = true;
    assert_int_equal(presence_add(p, 5, S("lobby"), S("c1"), S("alice"), &reg), -EEXIST);
    assert_int_equal(reg, 0);
    assert_true(presence_take_over(p, S("lobby"), S("c2"), 5));
    assert_int_equal(presence_add(p, 5, S("lobby"), S("c9"), S("zoe"), NULL), -ENOMEM);
    assert_int_equal(presence_add(p, 2, S("lobby"), S("c9"), S("zoe"), NULL), -ENOMEM);
    fail_malloc = false;
    assert_int_equal(presence_owner(p, S("lobby"), S("c1")), 2);
    assert_int_equal(presence_owner(p, S("lobby"), S("c2")), 3);
    assert_int_equal(presence_link_entries(p, 5), 0);
    assert_int_equal(presence_link_entries(p, 2), 2);
    assert_int_equal(presence_count(p), 4);

    /* every way out */
    assert_true(presence_del(p, S("other"), S("c1")));
    assert_int_equal(presence_link_entries(p, 1), 0);
    assert_true(del_owned(p, S("other"), S("c3"), 2));
    assert_int_equal(presence_link_entries(p, 2), 1);
    assert_int_equal(presence_add(p, 3, S("third"), S("c4"), S("dave"), &reg), 0);
    assert_true(presence_del_reg(p, S("third"), S("c4"), reg));
    assert_int_equal(presence_link_entries(p, 3), 1);
    presence_drop_link(p, 3, UINT64_MAX, NULL, NULL);
    assert_int_equal(presence_link_entries(p, 3), 0);
    assert_int_equal(presence_owner(p, S("lobby"), S("c2")), 0);
    presence_drop_link(p, 2, UINT64_MAX, NULL, NULL);
    assert_int_equal(presence_link_entries(p, 2), 0);
    assert_int_equal(presence_count(p), 0);
    /* a link counted again after it owned none */
    assert_int_equal(presence_add(p, 1, S("lobby"), S("c1"), S("alice"), NULL), 0);
    assert_int_equal(presence_link_entries(p, 1), 1);
}

static void test_foreach_room(void **state)
{
    struct presence *p = *state;
    /* Many entries in one room (the group grows), a few in others. */
    char conn[40][8], user[40][8];
    for (int i = 0; i < 40; i++) {
        snprintf(conn[i], sizeof conn[i], "c%d", i);
        snprintf(user[i], sizeof user[i], "u%d", i % 10);
        assert_int_equal(presence_add(p, (uint64_t)(i % 3), S("big"), S(conn[i]), S(user[i]), NULL), 0);
    }
    assert_int_equal(presence_add(p, 5, S("small"), S("c0"), S("zed"), NULL), 0);
    assert_int_equal(presence_add(p, 5, S("small"), S("c1"), S("amy"), NULL), 0);

    struct seen *x = malloc(sizeof *x);
    assert_non_null(x);
    snapshot(p, x);
    assert_int_equal(x->ng, 2);
    const struct group_seen *big = group(x, "big");
    assert_non_null(big);
    assert_int_equal(big->n, 40);
    for (int i = 0; i < 40; i++)
        assert_string_equal(user_of(big, conn[i]), user[i]);
    const struct group_seen *small = group(x, "small");
    assert_int_equal(small->n, 2);
    assert_string_equal(user_of(small, "c0"), "zed");
    assert_string_equal(user_of(small, "c1"), "amy");

    /* Removing from the middle, the ends, and by link keeps every group exact
     * (entries are swapped into the holes). */
    for (int i = 0; i < 40; i += 4)
        assert_true(presence_del(p, S("big"), S(conn[i])));
    assert_true(presence_del(p, S("big"), S(conn[39])));
    presence_drop_link(p, 1, UINT64_MAX, NULL, NULL);
    snapshot(p, x);
    big = group(x, "big");
    uint32_t want = 0;
    for (int i = 0; i < 40; i++) {
        bool gone = i % 4 == 0 || i == 39 || i % 3 == 1;
        if (gone) {
            assert_null(user_of(big, conn[i]));
        } else {
            assert_string_equal(user_of(big, conn[i]), user[i]);
            want++;
        }
    }
    assert_int_equal(big->n, want);
    assert_int_equal(presence_count(p), want + 2);

    /* An empty record calls nothing. */
    presence_drop_link(p, 0, UINT64_MAX, NULL, NULL);
    presence_drop_link(p, 2, UINT64_MAX, NULL, NULL);
    presence_drop_link(p, 5, UINT64_MAX, NULL, NULL);
    snapshot(p, x);
    assert_int_equal(x->ng, 0);
    assert_int_equal(presence_count(p), 0);
    free(x);
}

/* Rooms seen by presence_refresh_next, counted by index ("r<i>"). */
struct round_seen {
    int visits[64];
    int total;
    int looked; /* rooms shown to want_even */
};

static void on_refresh(void *ud, struct cf_str room, const struct cf_str *conns,
                       const struct cf_str *users, uint32_t n)
{
    (void)conns;
    (void)users;
    struct round_seen *r = ud;
    assert_true(n >= 1);
    assert_true(room.len >= 2 && room.p[0] == 'r');
    int i = atoi(room.p + 1);
    assert_true(i >= 0 && i < 64);
    r->visits[i]++;
    r->total++;
}

static void add_room(struct presence *p, int i)
{
    char room[16];
    snprintf(room, sizeof room, "r%d", i);
    assert_int_equal(presence_add(p, 1, S(room), S("c1"), S("u"), NULL), 0);
}

static void drop_room(struct presence *p, int i)
{
    char room[16];
    snprintf(room, sizeof room, "r%d", i);
    assert_true(presence_del(p, S(room), S("c1")));
}

static void test_refresh_rounds(void **state)
{
    struct presence *p = *state;
    struct round_seen r = {0};
    /* Nothing recorded: nothing to visit. */
    assert_int_equal(presence_refresh_next(p, 5, on_refresh, &r), 0);
    for (int i = 0; i < 10; i++)
        add_room(p, i);
    assert_int_equal(presence_rooms(p), 10);

    /* Slices of 3 make a round of 10 in 4 calls, each room once. */
    uint32_t got = 0;
    for (int call = 0; call < 3; call++)
        got += presence_refresh_next(p, 3, on_refresh, &r);
    assert_int_equal(got, 9);
    assert_int_equal(presence_refresh_next(p, 1, on_refresh, &r), 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(r.visits[i], 1);

    /* A slice never visits a room twice, however large. */
    memset(&r, 0, sizeof r);
    assert_int_equal(presence_refresh_next(p, 100, on_refresh, &r), 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(r.visits[i], 1);

    /* Mid-round: the room next in line and others go, a room comes. The
     * rest of the round still visits every room left exactly once, the new
     * one last. */
    memset(&r, 0, sizeof r);
    assert_int_equal(presence_refresh_next(p, 4, on_refresh, &r), 4);
    int first4[10] = {0};
    for (int i = 0; i < 10; i++)
        first4[i] = r.visits[i];
    int next = -1;
    for (int i = 0; i < 10 && next < 0; i++)
        if (!first4[i])
            next = i; /* rooms were added in order: the ring is in order */
    assert_int_equal(next, 4);
    drop_room(p, 4); /* the cursor's own room */
    drop_room(p, 0); /* already visited */
    drop_room(p, 9); /* not yet visited */
    add_room(p, 20);
    memset(&r, 0, sizeof r);
    assert_int_equal(presence_refresh_next(p, 100, on_refresh, &r), 8);
    for (int i = 5; i <= 8; i++)
        assert_int_equal(r.visits[i], 1);
    assert_int_equal(r.visits[20], 1);
    assert_int_equal(r.visits[4] + r.visits[0] + r.visits[9], 0);

    /* Every room gone, then one back: the ring starts afresh. */
    for (int i = 1; i <= 8; i++)
        if (i != 4)
            drop_room(p, i);
    drop_room(p, 20);
    assert_int_equal(presence_rooms(p), 0);
    assert_int_equal(presence_refresh_next(p, 3, on_refresh, &r), 0);
    add_room(p, 33);
    memset(&r, 0, sizeof r);
    assert_int_equal(presence_refresh_next(p, 3, on_refresh, &r), 1);
    assert_int_equal(r.visits[33], 1);
    drop_room(p, 33);
}

/* The catch-up walk (a Redis server back) visits every room once, however
 * the heartbeat's round moves and rooms come and go meanwhile; starting it
 * again covers every room from there. */
static void test_catch_up_walk(void **state)
{
    struct presence *p = *state;
    struct round_seen r = {0};
    assert_true(presence_catch_up_next(p, 5, UINT32_MAX, NULL, on_refresh, &r)); /* none started */
    presence_catch_up_start(p);                                /* nothing to walk */
    assert_true(presence_catch_up_next(p, 5, UINT32_MAX, NULL, on_refresh, &r));
    assert_int_equal(r.total, 0);
    for (int i = 0; i < 10; i++)
        add_room(p, i);

    /* in shares; then over, and nothing more */
    presence_catch_up_start(p);
    assert_false(presence_catch_up_next(p, 4, UINT32_MAX, NULL, on_refresh, &r));
    assert_int_equal(r.total, 4);
    assert_true(presence_catch_up_next(p, 100, UINT32_MAX, NULL, on_refresh, &r));
    assert_true(presence_catch_up_next(p, 100, UINT32_MAX, NULL, on_refresh, &r));
    for (int i = 0; i < 10; i++)
        assert_int_equal(r.visits[i], 1);

    /* The round's cursor runs ahead of the walk, and a room is made just
     * behind it: where the walk has still to go. Every room is reached. */
    memset(&r, 0, sizeof r);
    presence_catch_up_start(p);
    assert_false(presence_catch_up_next(p, 3, UINT32_MAX, NULL, on_refresh, &r));
    struct round_seen beat = {0};
    assert_int_equal(presence_refresh_next(p, 5, on_refresh, &beat), 5);
    add_room(p, 20);
    assert_true(presence_catch_up_next(p, 100, UINT32_MAX, NULL, on_refresh, &r));
    for (int i = 0; i < 10; i++)
        if (r.visits[i] != 1)
            fail_msg("room r%d visited %d times by the walk", i, r.visits[i]);

    /* Rooms go: the walk's next one, one it has passed, one ahead. The
     * rest are each visited, one at most twice (for the one ahead). */
    memset(&r, 0, sizeof r);
    presence_catch_up_start(p);
    assert_false(presence_catch_up_next(p, 3, UINT32_MAX, NULL, on_refresh, &r));
    int next = -1;
    for (int i = 0; i < 10 && next < 0; i++)
        if (!r.visits[i] && r.visits[i == 0 ? 9 : i - 1])
            next = i; /* rooms were added in order: the ring is in order */
    assert_true(next >= 0);
    int passed = next == 0 ? 9 : next - 1, ahead = (next + 3) % 10;
    drop_room(p, next);
    drop_room(p, passed);
    drop_room(p, ahead);
    assert_true(presence_catch_up_next(p, 100, UINT32_MAX, NULL, on_refresh, &r));
    int twice = 0;
    for (int i = 0; i < 10; i++) {
        if (i == next || i == ahead)
            assert_int_equal(r.visits[i], 0);
        else if (i != passed)
            assert_in_range(r.visits[i], 1, 2);
        twice += r.visits[i] == 2;
    }
    assert_in_range(r.visits[20], 1, 2);
    assert_true(twice + (r.visits[20] == 2) <= 1);

    /* Started again midway (a second server back): a whole round again,
     * on from where it is, not from the round's cursor, which has moved on
     * meanwhile (it would walk again the rooms it has just done). */
    memset(&r, 0, sizeof r);
    presence_catch_up_start(p);
    assert_false(presence_catch_up_next(p, 2, UINT32_MAX, NULL, on_refresh, &r));
    memset(&beat, 0, sizeof beat);
    assert_int_equal(presence_refresh_next(p, 3, on_refresh, &beat), 3);
    int third = -1; /* the round's third room: the walk's next */
    for (int i = 0; i < 64; i++)
        if (beat.visits[i] && !r.visits[i])
            third = i;
    assert_true(third >= 0);
    memset(&r, 0, sizeof r);
    presence_catch_up_start(p);
    assert_false(presence_catch_up_next(p, 1, UINT32_MAX, NULL, on_refresh, &r));
    assert_int_equal(r.visits[third], 1);
    assert_true(presence_catch_up_next(p, 100, UINT32_MAX, NULL, on_refresh, &r));
    assert_int_equal(r.total, (int)presence_rooms(p));
    for (int i = 0; i < 64; i++)
        assert_in_range(r.visits[i], 0, 1);

    /* Every room gone under a walk: it is over. */
    presence_catch_up_start(p);
    assert_false(presence_catch_up_next(p, 1, UINT32_MAX, NULL, on_refresh, &r));
    for (int i = 0; i < 10; i++)
        if (i != next && i != passed && i != ahead)
            drop_room(p, i);
    drop_room(p, 20);
    assert_true(presence_catch_up_next(p, 100, UINT32_MAX, NULL, on_refresh, &r));
}

/* Takes the rooms of even number (those of a Redis server back). */
static bool want_even(void *ud, struct cf_str room)
{
    struct round_seen *r = ud;
    r->looked++;
    return atoi(room.p + 1) % 2 == 0;
}

/* The walk's share counts the rooms it takes (those of the servers back),
 * not those it passes over: with k servers, one back got 1/k of its rate.
 * The rooms looked at are bounded too. */
static void test_catch_up_counts_the_rooms_it_takes(void **state)
{
    struct presence *p = *state;
    struct round_seen r = {0};
    for (int i = 0; i < 10; i++)
        add_room(p, i);
    presence_catch_up_start(p);
    assert_false(presence_catch_up_next(p, 2, UINT32_MAX, want_even, on_refresh, &r));
    assert_int_equal(r.total, 2);
    assert_in_range(r.looked, 3, 4); /* an odd room first or not */
    r.looked = 0;
    assert_false(presence_catch_up_next(p, 100, 3, want_even, on_refresh, &r));
    assert_int_equal(r.looked, 3);
    assert_in_range(r.total, 3, 4);
    assert_true(presence_catch_up_next(p, 100, UINT32_MAX, want_even, on_refresh, &r));
    for (int i = 0; i < 10; i++)
        assert_int_equal(r.visits[i], i % 2 == 0);
    for (int i = 0; i < 10; i++)
        drop_room(p, i);
}

static void test_free_with_entries(void **state)
{
    (void)state;
    struct presence *p = presence_new();
    assert_non_null(p);
    char conn[16];
    for (int i = 0; i < 100; i++) {
        snprintf(conn, sizeof conn, "c%d", i);
        assert_int_equal(presence_add(p, 1, S(i % 2 ? "a" : "b"), S(conn), S("u"), NULL), 0);
    }
    presence_free(p); /* everything is released (the sanitizer build checks) */
    presence_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_over_by_a_new_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_late_failure_keeps_a_newer_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_are_copied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_give, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_newer_link_may_remove_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_older_link_does_not_take_it_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_counted_per_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_rounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_counts_the_rooms_it_takes, setup, teardown),
        cmocka_unit_test(test_free_with_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
