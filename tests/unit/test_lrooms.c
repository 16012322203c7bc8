/* Unit tests for gateway/lrooms: what a pending v1 member holds, and what
 * goes out once it is live. Sessions are real (sess_new works without
 * libwebsockets); their socket is one end of a socketpair nothing writes to
 * (no loop: frames stay queued, sess_queued_bytes counts them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "lrooms.h"
#include "session.h"
#include "v1codec.h"

static int resyncs;

static void on_first(void *ud, const char *name, size_t len)
{
    (void)ud, (void)name, (void)len;
}

static int later_resyncs;

static void on_resync(void *ud, struct cf_str room, struct lmember *m, bool since, bool later)
{
    (void)ud, (void)room, (void)m, (void)since;
    resyncs++;
    later_resyncs += later;
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

static size_t fix_qmax = 1 << 20; /* each session's queue bound */

static void fix_up(struct fix *f, int n)
{
    assert_true(n <= MAX_SESSIONS);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv), 0);
    f->r = lrooms_new(&ops, NULL);
    assert_non_null(f->r);
    f->n = n;
    for (int k = 0; k < n; k++) {
        f->s[k] = sess_new((uint64_t)k + 1, "alice", fix_qmax);
        assert_non_null(f->s[k]);
        sess_attach(f->s[k], NULL, f->sv[0], SESS_V1_JSON, cf_mono_ms());
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
    m->full_rounds = 3; /* earlier rounds that found no room */
    lrooms_go_live(r, m);
    assert_int_equal(resyncs, 0);
    assert_int_equal(m->full_rounds & 0x0f,
                     0); /* live with all it missed: the count starts again */
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

/* A frame of n bytes, queued to s. */
static void send_bytes(struct session *s, size_t n)
{
    struct cf_buf *b = cf_buf_new(0, n);
    assert_non_null(b);
    memset(b->data, 'x', n);
    b->len = (uint32_t)n;
    assert_int_equal(sess_send(s, b), 0);
    cf_buf_unref(b);
}

/* A member whose whole joined waits behind what is queued is not counted
 * toward a slow consumer while re-syncs of its client's other rooms give it
 * something: one that reads, in many rooms that each needed a whole joined
 * at once (about four fit a round), was closed after the eighth round of the
 * later ones. Such a round is counted while nothing is given, and the other
 * rounds always are: a client that cannot keep up with its rooms empties
 * its queue too, while their events are held for the re-syncs, and
 * uncounted it re-synced forever. */
static void test_a_member_waiting_its_turn_is_not_counted(void **state)
{
    (void)state;
    struct fix f;
    fix_up(&f, 1);
    struct session *s = f.s[0];
    struct lmember *m = pending_member(&f, 7);
    m->full_rounds = (uint8_t)((sess_resynced(s) & 0x0f) << 4); /* as after going live */
    for (int round = 0; round < 3 * LROOMS_MAX_FULL_ROUNDS; round++) {
        sess_note_resynced(s); /* another room's whole joined went out */
        assert_false(lrooms_full_round(m, true));
    }
    /* nothing given from now on: the ninth such round in a row closes it */
    for (int round = 0; round < LROOMS_MAX_FULL_ROUNDS; round++)
        assert_false(lrooms_full_round(m, true));
    assert_true(lrooms_full_round(m, true));

    /* the member's own rounds find no room: counted whatever is given */
    m->full_rounds = (uint8_t)((sess_resynced(s) & 0x0f) << 4);
    for (int round = 0; round < LROOMS_MAX_FULL_ROUNDS; round++) {
        sess_note_resynced(s);
        assert_false(lrooms_full_round(m, false));
    }
    sess_note_resynced(s);
    assert_true(lrooms_full_round(m, false));
    fix_down(&f);
}

/* What the join's snapshot leaves no room for in the session's queue is not
 * given out when the member goes live: the member re-syncs from the last id
 * it got. Sent, it closed the member as a slow consumer right after its join
 * whenever nothing could be written in between: over TLS, which writes only
 * in its writable callback; here, a socket that takes nothing more and a
 * session that already keeps a write's rest. */
/* One session with a 64 KiB queue bound whose client reads nothing (its
 * socket takes no more), 24 KiB of it queued. */
static struct session *stuck_session(struct fix *f)
{
    fix_qmax = 64 * 1024;
    fix_up(f, 1);
    fix_qmax = 1 << 20;
    struct session *s = f->s[0];
    assert_int_equal(fcntl(f->sv[0], F_SETFL, O_NONBLOCK), 0);
    static char junk[4096];
    while (write(f->sv[0], junk, sizeof junk) > 0)
        ;
    while (write(f->sv[0], junk, 1) > 0) /* what is left of the buffer */
        ;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    /* what it was sent before: the first frame became the rest of a write,
     * the second is queued */
    send_bytes(s, 40 * 1024);
    send_bytes(s, 24 * 1024);
    assert_true(sess_queued_bytes(s) < 25 * 1024);
    return s;
}

static void snapshot_leaves_no_room(bool presence_changes, uint8_t rounds_before)
{
    struct fix f;
    struct session *s = stuck_session(&f);
    struct lrooms *r = f.r;

    struct lmember *m = pending_member(&f, 7);
    m->epoch_known = true;
    memcpy(m->epoch, EPOCH, 17);
    int before = resyncs, later_before = later_resyncs;
    /* held while the join was pending: under the bound with the queue */
    for (uint64_t id = 4; id < 234; id++) {
        struct cf_wire_msg ev = presence_changes ? presence(id - 2) : message(id);
        lrooms_deliver(r, &ev);
    }
    assert_true(*sess_held_bytes(s) > 18 * 1024);
    assert_false(sess_closing(s));

    send_bytes(s, 20 * 1024); /* the joined, its last id 3 */
    m->full_rounds = (uint8_t)((sess_resynced(s) & 0x0f) << 4 | rounds_before); /* none since */
    lrooms_go_live(r, m);
    if (rounds_before == LROOMS_MAX_FULL_ROUNDS) {
        /* as many rounds in a row without room: a slow consumer */
        assert_true(sess_closing(s));
        assert_int_equal(resyncs, before);
        fix_down(&f);
        return;
    }
    assert_int_equal(m->full_rounds & 0x0f, rounds_before + 1);
    assert_false(sess_closing(s));
    assert_true(sess_queued_bytes(s) <= sess_max_queue(s));
    assert_int_equal(resyncs, before + 1); /* for the rest */
    assert_int_equal(later_resyncs, later_before + 1); /* once the client had time to read */
    assert_true(m->pending);
    /* what fitted went out */
    if (presence_changes)
        assert_true(m->pv > 1 && m->pv < 231);
    else
        assert_true(m->last_id > 3 && m->last_id < 233);
    assert_int_equal(*sess_held_bytes(s), 0);

    fix_down(&f);
}

static void test_what_the_snapshot_leaves_no_room_for_waits_for_a_resync(void **state)
{
    (void)state;
    snapshot_leaves_no_room(false, 0); /* messages */
    snapshot_leaves_no_room(true, 0);  /* presence changes: the re-sync's joined lists members */
    snapshot_leaves_no_room(false, LROOMS_MAX_FULL_ROUNDS - 1);
    snapshot_leaves_no_room(false, LROOMS_MAX_FULL_ROUNDS); /* closed, not re-synced again */
}

/* Messages in no history (a backend's, published straight into Redis
 * without an id) held for a pending join: what the snapshot leaves
 * no room for is dropped for this member when it goes live. Sent, the first
 * that did not fit closed the member as a slow consumer; a re-sync cannot
 * bring them, and a closed client loses them too. */
static void test_events_in_no_history_past_the_bound_are_dropped(void **state)
{
    (void)state;
    struct fix f;
    struct session *s = stuck_session(&f);
    struct lmember *m = pending_member(&f, 7);
    int before = resyncs;
    for (int i = 0; i < 230; i++) {
        struct cf_wire_msg ev = message(0);
        ev.has = 0; /* no id, no epoch */
        lrooms_deliver(f.r, &ev);
    }
    uint32_t held = *sess_held_bytes(s);
    assert_true(held > 12 * 1024);
    /* typing is not held for a pending join at all */
    struct cf_wire_msg typing = {.type = CF_WIRE_TYPING, .room = {ROOM, 5}, .user = {"bob", 3}};
    lrooms_deliver(f.r, &typing);
    assert_int_equal(*sess_held_bytes(s), held);
    assert_false(sess_closing(s));
    send_bytes(s, 20 * 1024 + 8 * 1024); /* the joined */
    size_t queued = sess_queued_bytes(s);
    assert_true(lrooms_go_live(f.r, m) > 0); /* what fitted went out */
    assert_true(sess_queued_bytes(s) > queued);
    assert_false(sess_closing(s));
    assert_true(sess_queued_bytes(s) <= sess_max_queue(s));
    assert_int_equal(resyncs, before); /* nothing for a re-sync to bring */
    assert_false(m->pending);
    assert_int_equal(*sess_held_bytes(s), 0);
    fix_down(&f);
}

/* An event held for a pending join that finds the queue at its bound first
 * offers the socket what is queued, as sess_send does: a client that reads
 * is not a slow consumer. (A burst of joined snapshots queued in one pass
 * closed a reading client with 1008 when one more event came for a join
 * still pending.) */
static void test_holding_first_offers_the_socket_what_is_queued(void **state)
{
    (void)state;
    struct fix f;
    fix_qmax = 64 * 1024;
    fix_up(&f, 1);
    fix_qmax = 1 << 20;
    struct session *s = f.s[0];
    for (int i = 0; i < 6; i++)
        send_bytes(s, 10 * 1024);
    send_bytes(s, 3900); /* at the bound, but under it: nothing written yet */
    assert_true(sess_queued_bytes(s) > 65400);
    struct lmember *m = pending_member(&f, 7);
    struct cf_wire_msg ev = message(4);
    lrooms_deliver(f.r, &ev);
    assert_false(sess_closing(s));
    assert_true(*sess_held_bytes(s) > 0);
    assert_true(sess_queued_bytes(s) < 10 * 1024); /* the socket took the rest */
    (void)m;
    fix_down(&f);
}

/* Waiting lists: the member added last is taken first, each once; a move
 * puts the moved members after those there; a member is in one list at
 * most; a member that leaves its room leaves its list. */
enum { WAIT_SESSIONS = 4, WAIT_ROOMS = 40 };

static void join_grid(struct fix *f, struct lmember *m[WAIT_SESSIONS][WAIT_ROOMS])
{
    for (int k = 0; k < WAIT_SESSIONS; k++)
        for (int i = 0; i < WAIT_ROOMS; i++) {
            char name[8];
            int n = snprintf(name, sizeof name, "r%02d", i);
            int err;
            m[k][i] = lrooms_join(f->r, f->s[k], name, (size_t)n, false, &err);
            assert_non_null(m[k][i]);
        }
}

static void test_waiting_lists(void **state)
{
    (void)state;
    struct fix f;
    fix_up(&f, WAIT_SESSIONS);
    struct lmember *m[WAIT_SESSIONS][WAIT_ROOMS];
    join_grid(&f, m);
    assert_null(lrooms_wait_take(f.r, 5)); /* a list never used is empty */
    /* sessions 1 and 2 in list 5 (past the end of the table: it grows),
     * sessions 3 and 4 in list 2; more than a list's first allocation */
    for (int k = 0; k < WAIT_SESSIONS; k++)
        for (int i = 0; i < WAIT_ROOMS; i++)
            assert_int_equal(lrooms_wait(f.r, m[k][i], k < 2 ? 5 : 2), 0);
    assert_int_equal(lrooms_wait_count(f.r, 5), 2 * WAIT_ROOMS);
    assert_int_equal(lrooms_wait_count(f.r, 2), 2 * WAIT_ROOMS);
    assert_true(lrooms_waits(m[0][0]));
    /* one list at most: putting it in another moves it */
    assert_int_equal(lrooms_wait(f.r, m[0][0], 2), 0);
    assert_int_equal(lrooms_wait(f.r, m[0][0], 2), 0); /* already there: no-op */
    assert_int_equal(lrooms_wait_count(f.r, 5), 2 * WAIT_ROOMS - 1);
    assert_int_equal(lrooms_wait_count(f.r, 2), 2 * WAIT_ROOMS + 1);
    /* the first added comes first */
    assert_ptr_equal(lrooms_wait_take(f.r, 2), m[2][0]);
    assert_false(lrooms_waits(m[2][0]));
    lrooms_unwait(f.r, m[2][0]); /* in none: a no-op */
    /* session 2 leaves its rooms: its members leave list 5 */
    lrooms_leave_all(f.r, f.s[1]);
    assert_int_equal(lrooms_wait_count(f.r, 5), WAIT_ROOMS - 1);
    /* list 5 moves into list 2, to be taken after list 2's own */
    assert_int_equal(lrooms_wait_move(f.r, 5, 2), 0);
    assert_int_equal(lrooms_wait_count(f.r, 5), 0);
    assert_int_equal(lrooms_wait_count(f.r, 2), 3 * WAIT_ROOMS - 1);
    /* one of session 4's members leaves its room: out of the list too */
    lrooms_leave_member(f.r, m[3][7]);
    int taken[WAIT_SESSIONS][WAIT_ROOMS] = {{0}};
    size_t n = 0;
    struct lmember *x;
    while ((x = lrooms_wait_take(f.r, 2))) {
        int k = (int)sess_id(x->s) - 1;
        struct cf_str room = lrooms_member_room(x);
        int i = (room.p[1] - '0') * 10 + (room.p[2] - '0');
        assert_ptr_equal(m[k][i], x);
        taken[k][i]++;
        /* in the order they were put in: list 2's own (sessions 3 and 4,
         * then m[0][0], moved there last), then list 5's (session 1's) */
        struct lmember *want;
        if (n < WAIT_ROOMS - 1)
            want = m[2][n + 1];
        else if (n < 2 * WAIT_ROOMS - 2)
            want = m[3][n - (WAIT_ROOMS - 1) + (n - (WAIT_ROOMS - 1) >= 7)];
        else if (n == 2 * WAIT_ROOMS - 2)
            want = m[0][0];
        else
            want = m[0][n - (2 * WAIT_ROOMS - 2)];
        if (x != want)
            fail_msg("take %zu: session %d room %d, out of turn", n, k + 1, i);
        n++;
    }
    assert_int_equal(n, 3 * WAIT_ROOMS - 2);
    for (int k = 0; k < WAIT_SESSIONS; k++)
        for (int i = 0; i < WAIT_ROOMS; i++) {
            int want = k == 1 || (k == 3 && i == 7) || (k == 2 && i == 0) ? 0 : 1;
            if (taken[k][i] != want)
                fail_msg("session %d room %d taken %d times", k + 1, i, taken[k][i]);
        }
    m[3][7] = NULL;
    fix_down(&f);
}

/* A reference of one list: the members in their turn. */
struct turns {
    struct lmember *v[WAIT_SESSIONS * WAIT_ROOMS];
    int n;
};

static void turns_drop(struct turns *t, struct lmember *x)
{
    for (int i = 0; i < t->n; i++)
        if (t->v[i] == x) {
            memmove(&t->v[i], &t->v[i + 1], (size_t)(t->n - i - 1) * sizeof *t->v);
            t->n--;
            return;
        }
}

/* Members come, leave, are put back at the front and are taken in a long
 * mixed run, with the lists' holes squeezed out and the arrays grown on the
 * way: every take must give the member whose turn it is, so a member that
 * waited long is never passed over by later ones. */
static void test_waiting_lists_keep_the_order_members_came_in(void **state)
{
    (void)state;
    struct fix f;
    fix_up(&f, WAIT_SESSIONS);
    struct lmember *m[WAIT_SESSIONS][WAIT_ROOMS];
    join_grid(&f, m);
    struct turns t[2] = {{.n = 0}, {.n = 0}};
    int where[WAIT_SESSIONS * WAIT_ROOMS]; /* -1, or the list (0 or 1) */
    for (int i = 0; i < WAIT_SESSIONS * WAIT_ROOMS; i++)
        where[i] = -1;
    uint32_t seed = 12345;
    int takes = 0, compared = 0, fronts = 0;
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r = seed >> 8;
        int l = (int)(r & 1);
        if (r % 7 == 0) { /* take the next of list l */
            struct lmember *x = lrooms_wait_take(f.r, (uint32_t)l);
            if (t[l].n == 0) {
                assert_null(x);
                continue;
            }
            if (x != t[l].v[0])
                fail_msg("step %d: list %d gave a member out of its turn", step, l);
            turns_drop(&t[l], x);
            for (int i = 0; i < WAIT_SESSIONS * WAIT_ROOMS; i++)
                if (m[i / WAIT_ROOMS][i % WAIT_ROOMS] == x)
                    where[i] = -1;
            takes++;
            continue;
        }
        if (r % 13 == 2) { /* one put back at the front of list l */
            int i = (int)((r >> 4) % (WAIT_SESSIONS * WAIT_ROOMS));
            struct lmember *x = m[i / WAIT_ROOMS][i % WAIT_ROOMS];
            assert_int_equal(lrooms_wait_front(f.r, x, (uint32_t)l), 0);
            if (where[i] >= 0)
                turns_drop(&t[where[i]], x);
            memmove(&t[l].v[1], &t[l].v[0], (size_t)t[l].n * sizeof *t[l].v);
            t[l].v[0] = x;
            t[l].n++;
            where[i] = l;
            fronts++;
            continue;
        }
        if (r % 97 == 1) { /* all of list l behind the other's */
            assert_int_equal(lrooms_wait_move(f.r, (uint32_t)l, (uint32_t)!l), 0);
            for (int i = 0; i < t[l].n; i++)
                t[!l].v[t[!l].n++] = t[l].v[i];
            t[l].n = 0;
            for (int i = 0; i < WAIT_SESSIONS * WAIT_ROOMS; i++)
                if (where[i] == l)
                    where[i] = !l;
            continue;
        }
        int i = (int)((r >> 4) % (WAIT_SESSIONS * WAIT_ROOMS));
        struct lmember *x = m[i / WAIT_ROOMS][i % WAIT_ROOMS];
        if (where[i] >= 0 && r % 3 == 0) { /* leaves its list */
            lrooms_unwait(f.r, x);
            turns_drop(&t[where[i]], x);
            where[i] = -1;
        } else if (where[i] != l) { /* comes, or goes over to list l */
            assert_int_equal(lrooms_wait(f.r, x, (uint32_t)l), 0);
            if (where[i] >= 0)
                turns_drop(&t[where[i]], x);
            t[l].v[t[l].n++] = x;
            where[i] = l;
        }
        assert_int_equal(lrooms_wait_count(f.r, 0), t[0].n);
        assert_int_equal(lrooms_wait_count(f.r, 1), t[1].n);
        compared++;
    }
    /* what is left comes out in its turn too */
    for (int l = 0; l < 2; l++) {
        for (int k = 0; k < t[l].n; k++)
            assert_ptr_equal(lrooms_wait_take(f.r, (uint32_t)l), t[l].v[k]);
        assert_null(lrooms_wait_take(f.r, (uint32_t)l));
    }
    assert_true(takes > 10000 && compared > 100000 && fronts > 5000);
    fix_down(&f);
}

/* A list an outage filled gives most of its array back once most of its
 * members are taken, before the last of them is: the few left may wait long.
 * The ones left still come out in their turn. */
static void test_a_drained_waiting_list_gives_back_its_array(void **state)
{
    (void)state;
    struct fix f;
    fix_up(&f, WAIT_SESSIONS);
    struct lmember *m[WAIT_SESSIONS][WAIT_ROOMS];
    join_grid(&f, m);
    size_t empty = lrooms_wait_bytes(f.r);
    for (int k = 0; k < WAIT_SESSIONS; k++)
        for (int i = 0; i < WAIT_ROOMS; i++)
            assert_int_equal(lrooms_wait(f.r, m[k][i], 0), 0);
    size_t full = lrooms_wait_bytes(f.r);
    /* 160 members: an array of 256 */
    assert_true(full >= empty + 256 * sizeof(void *));
    /* every other one leaves its list (holes), then all but 12 are taken */
    for (int k = 0; k < WAIT_SESSIONS; k++)
        for (int i = 1; i < WAIT_ROOMS; i += 2)
            lrooms_unwait(f.r, m[k][i]);
    for (int n = 0; n < 80 - 12; n++)
        assert_non_null(lrooms_wait_take(f.r, 0));
    assert_int_equal(lrooms_wait_count(f.r, 0), 12);
    size_t left = lrooms_wait_bytes(f.r);
    if (left - empty > (full - empty) / 3) /* a quarter of the array, and the list itself */
        fail_msg("12 members waiting hold %zu bytes of array (%zu when full)", left - empty,
                 full - empty);
    /* the last 12 put in (session 4's even rooms 16..38), in their turn */
    for (int i = 16; i < WAIT_ROOMS; i += 2)
        assert_ptr_equal(lrooms_wait_take(f.r, 0), m[3][i]);
    assert_null(lrooms_wait_take(f.r, 0));
    fix_down(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_refused_resync_forgets_held_messages),
        cmocka_unit_test(test_a_member_waiting_its_turn_is_not_counted),
        cmocka_unit_test(test_a_member_awaiting_its_turn_holds_no_messages),
        cmocka_unit_test(test_what_the_snapshot_leaves_no_room_for_waits_for_a_resync),
        cmocka_unit_test(test_events_in_no_history_past_the_bound_are_dropped),
        cmocka_unit_test(test_holding_first_offers_the_socket_what_is_queued),
        cmocka_unit_test(test_waiting_lists),
        cmocka_unit_test(test_waiting_lists_keep_the_order_members_came_in),
        cmocka_unit_test(test_a_drained_waiting_list_gives_back_its_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
