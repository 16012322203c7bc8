/* Unit tests for gateway/lrooms: what a pending v1 member holds, and what
 * goes out once it is live. Sessions are real (sess_new works without
 * libwebsockets); their socket is one end of a socketpair nothing writes to
 * (no loop: frames stay queued, sess_queued_bytes counts them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "lrooms.h"
#include "session.h"
#include "v1codec.h"

static int resyncs;

static void on_first(void *ud, const char *name, size_t len)
{
    (void)ud, (void)name, (void)len;
}

static void on_resync(void *ud, struct cf_str room, struct lmember *m, bool since)
{
    (void)ud, (void)room, (void)m, (void)since;
    resyncs++;
}

static const struct lrooms_ops ops = {on_first, on_first, on_resync};

#define ROOM "lobby"
#define EPOCH "00000000000000aa"

static struct cf_wire_msg message(uint64_t id)
{
    struct cf_wire_msg m = {.type = CF_WIRE_MSG, .room = {ROOM, 5}, .from = {"bob", 3},
                            .text = {"hi", 2}, .ts = 1, .id = id, .epoch = {EPOCH, 16},
                            .has = CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH};
    return m;
}

static struct cf_wire_msg presence(uint64_t pv)
{
    struct cf_wire_msg m = {.type = CF_WIRE_PRESENCE, .room = {ROOM, 5}, .user = {"carol", 5},
                            .action = {"join", 4}, .count = 2, .pv = pv};
    return m;
}

/* Rooms and `n` sessions on one socketpair (nothing reads it). */
enum { MAX_SESSIONS = 8 };
struct fix {
    int sv[2];
    struct lrooms *r;
    struct session *s[MAX_SESSIONS];
    int n;
};

static void fix_up(struct fix *f, int n)
{
    assert_true(n <= MAX_SESSIONS);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv), 0);
    f->r = lrooms_new(&ops, NULL);
    assert_non_null(f->r);
    f->n = n;
    for (int k = 0; k < n; k++) {
        f->s[k] = sess_new((uint64_t)k + 1, "alice", 1 << 20);
        assert_non_null(f->s[k]);
        sess_attach(f->s[k], NULL, f->sv[0], SESS_V1_JSON);
    }
}

static void fix_down(struct fix *f)
{
    for (int k = 0; k < f->n; k++) {
        lrooms_leave_all(f->r, f->s[k]);
        sess_free(f->s[k]);
    }
    lrooms_free(f->r);
    close(f->sv[0]);
    close(f->sv[1]);
}

/* The first session's pending member of ROOM, which knows id 3 and
 * presence version 1, its request q. */
static struct lmember *pending_member(struct fix *f, uint64_t q)
{
    int err;
    struct lmember *m = lrooms_join(f->r, f->s[0], ROOM, 5, true, &err);
    assert_non_null(m);
    m->q = q;
    m->last_id = 3;
    m->pv = 1;
    return m;
}

/* A member whose re-sync was refused forgets the messages held for it (the
 * next re-sync, from its last id, brings those that still exist): kept,
 * they were given out after a snapshot that no longer had them (Redis
 * restarted from an older copy, the same epoch), and the real messages
 * with their ids then dropped as repeats. Presence changes stay held. */
static void test_a_refused_resync_forgets_held_messages(void **state)
{
    (void)state;
    struct fix f;
    fix_up(&f, 1);
    struct lrooms *r = f.r;
    struct session *s = f.s[0];
    /* its re-sync sent; id 3 as known before the broker went away */
    struct lmember *m = pending_member(&f, 7);
    m->epoch_known = true;
    memcpy(m->epoch, EPOCH, 17);

    struct cf_wire_msg ev[3] = {message(4), presence(2), message(5)};
    for (int i = 0; i < 3; i++)
        lrooms_deliver(r, &ev[i]);
    assert_int_equal(sess_queued_bytes(s), 0); /* held */
    assert_true(*sess_held_bytes(s) > 0);

    lrooms_forget_held_messages(m); /* refused */
    m->q = 8;                       /* the retry, sent */
    /* the retry's snapshot: the same epoch, last id 3 (what Redis has) */
    lrooms_go_live(r, m);
    assert_int_equal(resyncs, 0);
    struct cf_buf *p = v1_encode_event(SESS_V1_JSON, &ev[1]);
    assert_non_null(p);
    size_t frame = sess_queued_bytes(s);
    assert_true(frame > p->len);           /* the presence change went out */
    assert_true(frame < 2 * (p->len + 8)); /* and nothing else */
    assert_int_equal(*sess_held_bytes(s), 0);
    cf_buf_unref(p);

    /* the real message 4 is not taken for a repeat */
    struct cf_wire_msg real = message(4);
    lrooms_deliver(r, &real);
    assert_true(sess_queued_bytes(s) > frame);
    assert_int_equal(m->last_id, 4);

    fix_down(&f);
}

/* A member whose re-sync waits for its turn (pending, no request sent yet)
 * holds no message with an id: the snapshot it will ask for is taken after
 * those were stored, and brings them. Held, a member kept waiting in a busy
 * room filled its session's bound and was closed. Presence changes are
 * held as before. */
static void test_a_member_awaiting_its_turn_holds_no_messages(void **state)
{
    (void)state;
    struct fix f;
    fix_up(&f, 1);
    struct lrooms *r = f.r;
    struct session *s = f.s[0];
    struct lmember *m = pending_member(&f, 0);

    struct cf_wire_msg ev[3] = {message(4), presence(2), message(5)};
    for (int i = 0; i < 3; i++)
        lrooms_deliver(r, &ev[i]);
    struct cf_buf *p = v1_encode_event(SESS_V1_JSON, &ev[1]);
    assert_non_null(p);
    size_t one = p->len;
    cf_buf_unref(p);
    assert_int_equal(*sess_held_bytes(s), one); /* the presence change alone */

    /* its turn: the request sent, a message arriving now is held */
    m->q = 9;
    struct cf_wire_msg later = message(6);
    lrooms_deliver(r, &later);
    assert_true(*sess_held_bytes(s) > one);

    fix_down(&f);
}

/* lrooms_walk_members: bounded by what fn takes, resumable, every member of
 * the rooms wanted visited once per walk. */
enum { WALK_ROOMS = 5, WALK_SESSIONS = 3 };
static int visits[WALK_ROOMS][WALK_SESSIONS];

static bool walk_want(void *ud, struct cf_str room)
{
    (void)ud;
    return room.p[1] != '2'; /* "r2" is not wanted */
}

static bool walk_take(void *ud, struct cf_str room, struct lmember *m)
{
    (void)ud;
    int k = (int)sess_id(m->s) - 1;
    visits[room.p[1] - '0'][k]++;
    return k != 1; /* session 2's members are passed over: they cost nothing */
}

static void test_walk_members(void **state)
{
    (void)state;
    struct fix f;
    fix_up(&f, WALK_SESSIONS);
    struct lrooms *r = f.r;
    for (int k = 0; k < WALK_SESSIONS; k++)
        for (int i = 0; i < WALK_ROOMS; i++) {
            char name[3] = {'r', (char)('0' + i), 0};
            int err;
            assert_non_null(lrooms_join(r, f.s[k], name, 2, false, &err));
        }
    for (int round = 0; round < 2; round++) {
        memset(visits, 0, sizeof visits);
        struct lrooms_cursor c = {0, 0};
        int calls = 0;
        while (!lrooms_walk_members(r, &c, walk_want, walk_take, NULL, 3))
            calls++;
        /* 4 rooms wanted, 2 members taken in each: 8 taken, 3 a call */
        assert_int_equal(calls, 2);
        assert_int_equal(c.room, 0);
        assert_int_equal(c.member, 0);
        for (int i = 0; i < WALK_ROOMS; i++)
            for (int k = 0; k < WALK_SESSIONS; k++)
                assert_int_equal(visits[i][k], i == 2 ? 0 : 1);
    }
    /* a bound of 0 stops at the first member; with no rooms, the end */
    struct lrooms_cursor c = {0, 0};
    assert_false(lrooms_walk_members(r, &c, walk_want, walk_take, NULL, 0));
    for (int k = 0; k < WALK_SESSIONS; k++)
        lrooms_leave_all(r, f.s[k]);
    assert_true(lrooms_walk_members(r, &c, walk_want, walk_take, NULL, 3));
    fix_down(&f);
}

/* A member that leaves between two calls of a walk makes none of the room's
 * others missed: walked from the first member up, the last one moved into
 * a visited member's place and was never visited. */
enum { LEAVE_SESSIONS = 5 };
static int leave_visits[LEAVE_SESSIONS];

static bool any_room(void *ud, struct cf_str room)
{
    (void)ud;
    (void)room;
    return true;
}

static bool count_visit(void *ud, struct cf_str room, struct lmember *m)
{
    (void)ud;
    (void)room;
    leave_visits[sess_id(m->s) - 1]++;
    return true;
}

static void test_a_leave_during_a_walk_misses_no_one(void **state)
{
    (void)state;
    struct fix f;
    fix_up(&f, LEAVE_SESSIONS);
    for (int k = 0; k < LEAVE_SESSIONS; k++) {
        int err;
        assert_non_null(lrooms_join(f.r, f.s[k], "room", 4, false, &err));
    }
    struct lrooms_cursor c = {0, 0};
    assert_false(lrooms_walk_members(f.r, &c, any_room, count_visit, NULL, 2));
    int gone = -1;
    for (int k = 0; k < LEAVE_SESSIONS && gone < 0; k++)
        if (leave_visits[k])
            gone = k; /* a member already visited leaves */
    assert_true(gone >= 0);
    lrooms_leave_all(f.r, f.s[gone]);
    while (!lrooms_walk_members(f.r, &c, any_room, count_visit, NULL, 2))
        ;
    for (int k = 0; k < LEAVE_SESSIONS; k++)
        if (k != gone && leave_visits[k] == 0)
            fail_msg("session %d's member was not visited", k + 1);
    fix_down(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_refused_resync_forgets_held_messages),
        cmocka_unit_test(test_a_member_awaiting_its_turn_holds_no_messages),
        cmocka_unit_test(test_walk_members),
        cmocka_unit_test(test_a_leave_during_a_walk_misses_no_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
