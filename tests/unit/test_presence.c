/* Unit tests for broker/presence: the local record of connections this
 * broker registered in Redis presence, by (room, conn), with their link. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failmalloc.h"
#include "presence.h"
#include "validate.h"
#include "wire.h"

static struct cf_str S(const char *s) {
    return (struct cf_str){s, (uint32_t)strlen(s)};
}

static int
setup(void **state)
{
    *state = presence_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    presence_free(*state);
    return 0;
}

/* ---- what the callbacks saw -------------------------------------------------- */

#define MAX_SEEN 512

struct entry_seen {
    char room[CF_ROOM_MAX + 1];
    char conn[CF_WIRE_MAX_TOKEN + 1];
    char user[CF_USERNAME_BYTES_MAX + 1];
};

struct group_seen {
    char room[CF_ROOM_MAX + 1];
    uint32_t n;
    struct entry_seen e[64];
};

struct seen {
    struct entry_seen e[MAX_SEEN];
    size_t n;
    struct group_seen g[16];
    size_t ng;
    struct presence *p;
};

static void copy(char *dst, size_t cap, struct cf_str s)
{
    assert_true(s.len < cap);
    memcpy(dst, s.p, s.len);
    dst[s.len] = '\0';
}

static bool on_drop(void *ud, struct cf_str room, struct cf_str conn)
{
    struct seen *x = ud;
    assert_true(x->n < MAX_SEEN);
    copy(x->e[x->n].room, sizeof x->e[0].room, room);
    copy(x->e[x->n].conn, sizeof x->e[0].conn, conn);
    x->n++;
    return true;
}

/* Takes `refuse` calls without keeping them (a full queue), then as on_drop. */
struct picky {
    struct seen *x;
    int refuse;
};

static bool on_drop_picky(void *ud, struct cf_str room, struct cf_str conn)
{
    struct picky *k = ud;
    if (k->refuse > 0) {
        k->refuse--;
        return false;
    }
    return on_drop(k->x, room, conn);
}

static void on_room(void *ud, struct cf_str room, const struct cf_str *conns,
                    const struct cf_str *users, uint32_t n)
{
    struct seen *x = ud;
    assert_true(x->ng < 16);
    assert_true(n >= 1);
    assert_true(n <= 64);
    struct group_seen *g = &x->g[x->ng++];
    copy(g->room, sizeof g->room, room);
    for (size_t i = 0; i + 1 < x->ng; i++)
        assert_string_not_equal(x->g[i].room, g->room); /* once per room */
    g->n = n;
    for (uint32_t i = 0; i < n; i++) {
        copy(g->e[i].conn, sizeof g->e[i].conn, conns[i]);
        copy(g->e[i].user, sizeof g->e[i].user, users[i]);
    }
}

static bool dropped(const struct seen *x, const char *room, const char *conn)
{
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->e[i].room, room) == 0 && strcmp(x->e[i].conn, conn) == 0)
            return true;
    return false;
}

static const struct group_seen *group(const struct seen *x, const char *room)
{
    for (size_t i = 0; i < x->ng; i++)
        if (strcmp(x->g[i].room, room) == 0)
            return &x->g[i];
    return NULL;
}

/* The user recorded for conn in a group, or NULL. */
static const char *user_of(const struct group_seen *g, const char *conn)
{
    for (uint32_t i = 0; g && i < g->n; i++)
        if (strcmp(g->e[i].conn, conn) == 0)
            return g->e[i].user;
    return NULL;
}

static void snapshot(struct presence *p, struct seen *x)
{
    memset(x, 0, sizeof *x);
    presence_foreach_room(p, on_room, x);
}

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
        assert_int_equal(presence_add(p, in[i].link, S(in[i].room), S(in[i].conn), S(in[i].user), NULL),
                         0);

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

/* Dropping a link's entries cannot fail for want of memory: it used to take
 * a snapshot of every entry first, and without one it left them all, to be
 * refreshed forever with their link gone. */
static void no_room(void *ud, struct cf_str room, const struct cf_str *conns,
                    const struct cf_str *users, uint32_t n)
{
    (void)ud, (void)room, (void)conns, (void)users, (void)n;
}

/* A grace's leaves go out a slice at a time (broker.c): a call drops at
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

/* Two closed links share one place (broker.c): every entry of one becomes
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

/* An entry given to an owner older than its link (a leave owed, broker.c)
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

static void test_drop_link_needs_no_memory(void **state)
{
    struct presence *p = *state;
    char room[16], conn[16];
    for (int i = 0; i < 40; i++) {
        snprintf(room, sizeof room, "r%d", i % 7);
        snprintf(conn, sizeof conn, "c%d", i);
        assert_int_equal(presence_add(p, 1 + (uint64_t)(i % 3 == 0), S(room), S(conn), S("u"), NULL), 0);
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

/* Each link's entries are counted (broker.c gives a closed link a grace
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
        cmocka_unit_test_setup_teardown(test_drop_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_link_a_share_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_link_needs_no_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_give, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_newer_link_may_remove_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_older_link_does_not_take_it_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_counted_per_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_rounds, setup, teardown),
        cmocka_unit_test(test_free_with_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
