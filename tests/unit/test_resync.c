/* Unit tests for gateway/resync: the per-shard windows and waiting lists of
 * v1 members' re-syncs, and of the presence registrations that go again
 * when a broker is back. Rooms and sessions are real (lrooms, sess_new on a
 * socketpair nothing reads); the broker links are the ops below: a room
 * "a..." is on shard 0, "b..." on shard 1, and a send records the member
 * and answers what the test set. The clock is the tick's argument. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "lrooms.h"
#include "resync.h"
#include "session.h"

enum { ROOMS = 300, SHARDS = 2 };

static bool g_up[SHARDS] = {true, true};
static int g_rc;          /* the next send's answer (once), 0: sent */
static uint64_t g_q;      /* request ids */
static int g_sent[SHARDS];
static int g_since;       /* sends with `since` */
static int g_times[SHARDS][ROOMS];
static int g_seq[SHARDS][4 * ROOMS]; /* the rooms sent, in turn */

static void on_room(void *ud, const char *name, size_t len)
{
    (void)ud, (void)name, (void)len;
}

static void on_resync(void *ud, struct cf_str room, struct lmember *m, bool since, bool later)
{
    (void)ud, (void)room, (void)m, (void)since, (void)later;
}

static const struct lrooms_ops room_ops = {on_room, on_room, on_resync};

static uint32_t shard_of(void *ud, struct cf_str room)
{
    (void)ud;
    return room.p[0] == 'b';
}

static bool link_up(void *ud, uint32_t shard)
{
    (void)ud;
    return g_up[shard];
}

static int send_one(void *ud, struct cf_str room, struct lmember *m, bool since)
{
    (void)ud;
    int rc = g_rc;
    g_rc = 0;
    if (rc)
        return rc;
    m->pending = true;
    m->q = ++g_q;
    uint32_t shard = room.p[0] == 'b';
    g_seq[shard][g_sent[shard] % (4 * ROOMS)] = atoi(room.p + 1);
    g_sent[shard]++;
    g_since += since;
    g_times[shard][atoi(room.p + 1)]++;
    return 0;
}

static int g_presence[SHARDS][ROOMS]; /* presence registrations sent */
static int g_room_space = -1;         /* registrations the link takes before -ENOBUFS; -1: any */

static int send_presence(void *ud, struct cf_str room, struct lmember *m)
{
    (void)ud;
    uint32_t shard = room.p[0] == 'b';
    if (!g_up[shard])
        return -ENOTCONN;
    if (g_room_space == 0)
        return -ENOBUFS;
    if (g_room_space > 0)
        g_room_space--;
    assert_false(m->pending && m->q == 0); /* never a member waiting to re-sync */
    g_presence[shard][atoi(room.p + 1)]++;
    return 0;
}

static const struct rs_ops ops = {shard_of, link_up, send_one, send_presence};

struct fix {
    int sv[2];
    struct lrooms *rooms;
    struct session *s;
    struct rs *r;
    struct lmember *m[SHARDS][ROOMS];
};

static struct fix f;

/* One session in ROOMS rooms of each shard, every member live. */
static int setup(void **state)
{
    (void)state;
    memset(g_sent, 0, sizeof g_sent);
    memset(g_times, 0, sizeof g_times);
    memset(g_presence, 0, sizeof g_presence);
    g_room_space = -1;
    g_since = g_rc = 0;
    g_up[0] = g_up[1] = true;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f.sv), 0);
    f.rooms = lrooms_new(&room_ops, NULL);
    assert_non_null(f.rooms);
    f.s = sess_new(1, "alice", 1 << 20);
    assert_non_null(f.s);
    sess_attach(f.s, NULL, f.sv[0], SESS_V1_JSON, cf_mono_ms());
    for (int sh = 0; sh < SHARDS; sh++)
        for (int i = 0; i < ROOMS; i++) {
            char name[8];
            int n = snprintf(name, sizeof name, "%c%03d", sh ? 'b' : 'a', i);
            int err;
            f.m[sh][i] = lrooms_join(f.rooms, f.s, name, (size_t)n, false, &err);
            assert_non_null(f.m[sh][i]);
        }
    f.r = rs_new(f.rooms, SHARDS, RS_WINDOW, &ops, NULL);
    assert_non_null(f.r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lrooms_leave_all(f.rooms, f.s);
    rs_free(f.r);
    sess_free(f.s);
    lrooms_free(f.rooms);
    close(f.sv[0]);
    close(f.sv[1]);
    return 0;
}

/* The broker answers every re-sync of the shard in flight. */
static void answer_all(uint32_t shard)
{
    for (size_t n = rs_in_flight(f.r); n > 0; n--)
        rs_ended(f.r, shard);
    rs_pump(f.r, shard);
}

/* Both shards' brokers come back: each sends its own window's worth, the
 * rest as its broker answers, every member once. A broker that answers
 * nothing holds only its own shard's places: with one window for the
 * process, shard 0's 256 unanswered requests (each until its 10 s
 * deadline) kept shard 1's members waiting. */
static void test_each_shard_has_its_own_window(void **state)
{
    (void)state;
    for (int sh = 0; sh < SHARDS; sh++)
        for (int i = 0; i < ROOMS; i++)
            rs_wait(f.r, f.m[sh][i]);
    assert_int_equal(rs_waiting(f.r), 2 * ROOMS);
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_sent[0], RS_WINDOW);
    assert_int_equal(g_sent[1], 0); /* its link came back, not shard 1's */
    rs_shard_back(f.r, 1, true);
    assert_int_equal(g_sent[1], RS_WINDOW); /* shard 0's 256 hold none of its places */
    assert_int_equal(rs_in_flight(f.r), 2 * RS_WINDOW);

    /* one answer, one more sent, in that shard alone */
    rs_ended(f.r, 1);
    rs_pump(f.r, 1);
    assert_int_equal(g_sent[1], RS_WINDOW + 1);
    assert_int_equal(g_sent[0], RS_WINDOW);
    /* the tick sends nothing past a full window */
    rs_tick(f.r, cf_mono_ms());
    assert_int_equal(g_sent[0] + g_sent[1], 2 * RS_WINDOW + 1);

    /* shard 1 answers everything: the rest of it goes */
    for (int k = 0; k < 3; k++) {
        while (rs_in_flight(f.r) > RS_WINDOW) /* shard 0's stay */
            rs_ended(f.r, 1);
        rs_pump(f.r, 1);
    }
    assert_int_equal(g_sent[1], ROOMS);
    assert_int_equal(g_sent[0], RS_WINDOW);
    for (int i = 0; i < ROOMS; i++)
        assert_int_equal(g_times[1][i], 1);
    assert_int_equal(g_since, RS_WINDOW + ROOMS); /* waiting members ask from their last id */
    assert_int_equal(rs_waiting(f.r), ROOMS - RS_WINDOW);
}

/* The window keeps a round's answers to half the link's queue: 256 always,
 * a broker's answers to one round of snapshots could fill its queue toward
 * the gateway, which it then closed, and the gateway, relinked, sent the
 * same round again. */
static void test_the_window_keeps_answers_to_half_the_link_queue(void **state)
{
    (void)state;
    assert_int_equal(rs_window(64u << 20, 70656), RS_WINDOW); /* the defaults */
    assert_int_equal(rs_window(8u << 20, 70656), 59);
    assert_int_equal(rs_window(1u << 20, 1u << 20), 1); /* never none */
    rs_free(f.r);
    f.r = rs_new(f.rooms, SHARDS, 3, &ops, NULL);
    assert_non_null(f.r);
    for (int i = 0; i < ROOMS; i++)
        rs_wait(f.r, f.m[0][i]);
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_sent[0], 3);
    rs_ended(f.r, 0);
    rs_pump(f.r, 0);
    assert_int_equal(g_sent[0], 4);
    rs_tick(f.r, cf_mono_ms());
    assert_int_equal(g_sent[0], 4);
    /* one shard's own (its broker's link queue is smaller): the others keep
     * theirs */
    rs_set_window(f.r, 1, 2);
    for (int i = 0; i < ROOMS; i++)
        rs_wait(f.r, f.m[1][i]);
    rs_shard_back(f.r, 1, true);
    assert_int_equal(g_sent[1], 2);
    rs_ended(f.r, 0);
    rs_pump(f.r, 0);
    assert_int_equal(g_sent[0], 5);
    rs_set_window(f.r, 1, 0); /* never none */
    rs_ended(f.r, 1);
    rs_ended(f.r, 1);
    rs_pump(f.r, 1);
    assert_int_equal(g_sent[1], 3);
}

/* A refused member waits for the shard's retry, then goes after the
 * members that never had a try; its broker's return sends it at once. */
static void test_a_refused_member_waits_for_the_retry(void **state)
{
    (void)state;
    for (int i = 0; i < 10; i++)
        rs_wait(f.r, f.m[0][i]);
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_sent[0], 10);
    /* member 3 is refused (unavailable), the others answered */
    rs_later(f.r, f.m[0][3], RS_RETRY_MS);
    assert_true(f.m[0][3]->pending);
    assert_int_equal(f.m[0][3]->q, 0);
    for (int n = 0; n < 10; n++)
        rs_ended(f.r, 0);
    rs_pump(f.r, 0);
    int64_t now = cf_mono_ms();
    rs_tick(f.r, now + RS_RETRY_MS / 2);
    assert_int_equal(g_times[0][3], 1); /* not yet */
    assert_int_equal(rs_waiting(f.r), 1);
    rs_tick(f.r, now + RS_RETRY_MS + 1000);
    assert_int_equal(g_times[0][3], 2);
    assert_int_equal(rs_waiting(f.r), 0);

    /* refused again; then the broker is ready again: at once */
    rs_later(f.r, f.m[0][3], RS_RETRY_MS);
    rs_ended(f.r, 0);
    rs_shard_back(f.r, 0, false); /* ready again, the same link */
    assert_int_equal(g_times[0][3], 3);
    /* the first refusal of each round is told */
    assert_true(rs_first_refusal(f.r, 0));
    assert_false(rs_first_refusal(f.r, 0));
    assert_true(rs_first_refusal(f.r, 1));
}

/* One of the broker's Redis servers is back while another is down: the
 * members put in the ready list for it go at once, and a member refused
 * before (its server may be the one still down) keeps its retry's time;
 * the next refusal is news again. */
static void test_a_server_back_leaves_the_refused_to_their_retry(void **state)
{
    (void)state;
    rs_wait(f.r, f.m[0][3]);
    rs_shard_back(f.r, 0, true);
    rs_later(f.r, f.m[0][3], RS_RETRY_MS); /* refused: its server is down */
    rs_ended(f.r, 0);
    assert_true(rs_first_refusal(f.r, 0));
    /* the other server is back: its rooms' members wait in the ready list */
    rs_wait(f.r, f.m[0][5]);
    rs_wait(f.r, f.m[0][6]);
    rs_server_back(f.r, 0);
    assert_int_equal(g_times[0][5], 1);
    assert_int_equal(g_times[0][6], 1);
    assert_int_equal(g_times[0][3], 1); /* not sent again: it waits its retry */
    assert_true(rs_first_refusal(f.r, 0));
    rs_ended(f.r, 0);
    rs_ended(f.r, 0);
    int64_t now = cf_mono_ms();
    rs_tick(f.r, now + RS_RETRY_MS / 2);
    assert_int_equal(g_times[0][3], 1);
    rs_tick(f.r, now + RS_RETRY_MS + 1000);
    assert_int_equal(g_times[0][3], 2); /* at its time */
}

/* A link's full queue pauses its shard for RS_SOON_MS: the member that did
 * not fit waits, and is sent with the rest once the pause is over. */
static void test_a_full_link_pauses_its_shard(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++)
        rs_wait(f.r, f.m[0][i]);
    g_rc = -ENOBUFS;
    int64_t now = cf_mono_ms();
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_sent[0], 0); /* the first did not fit: none more tried */
    assert_true(f.m[0][0]->pending);
    assert_int_equal(f.m[0][0]->q, 0);
    assert_int_equal(rs_waiting(f.r), 20);
    rs_pump(f.r, 0);
    assert_int_equal(g_sent[0], 0); /* paused */
    /* a gap meanwhile waits behind them */
    f.m[1][0]->pending = true;
    rs_gap(f.r, f.m[1][0], true);
    assert_int_equal(g_sent[1], 1); /* another shard: not paused */
    rs_tick(f.r, now + RS_SOON_MS + 100);
    assert_int_equal(g_sent[0], 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(g_times[0][i], 1);
        assert_int_equal(g_seq[0][i], i); /* the one that did not fit kept its turn */
    }
}

/* A full link is no news about the broker: members it refused keep their
 * retry's time (with it brought forward to the pause's end, a broker whose
 * Redis was away got the refused shard again every 200 ms). */
static void test_a_full_link_does_not_hasten_the_refused(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++)
        rs_wait(f.r, f.m[0][i]);
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_sent[0], 5);
    int64_t now = cf_mono_ms();
    rs_later(f.r, f.m[0][1], RS_RETRY_MS); /* refused */
    for (int n = 0; n < 5; n++)
        rs_ended(f.r, 0);
    f.m[0][5]->pending = true;
    g_rc = -ENOBUFS;
    rs_gap(f.r, f.m[0][5], true);
    assert_int_equal(g_times[0][5], 0);
    rs_tick(f.r, now + RS_SOON_MS + 100);
    assert_int_equal(g_times[0][5], 1); /* after the pause */
    assert_int_equal(g_times[0][1], 1); /* not yet */
    rs_tick(f.r, now + RS_RETRY_MS + 100);
    assert_int_equal(g_times[0][1], 2);
}

/* A full link's pause holds when the refused members' retry comes due
 * within it, and when the broker says it is ready again on that link: both
 * are news about the broker, not about its queue (with the retry ending the
 * pause, the members went into a queue still full). A new link's queue is
 * empty: its return ends the pause. */
static void test_a_retry_within_a_pause_waits_for_its_end(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        rs_wait(f.r, f.m[0][i]);
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_sent[0], 3);
    int64_t now = cf_mono_ms();
    rs_later(f.r, f.m[0][1], 50); /* refused, retried in 50 ms */
    for (int n = 0; n < 3; n++)
        rs_ended(f.r, 0);
    f.m[0][5]->pending = true;
    g_rc = -ENOBUFS;
    rs_gap(f.r, f.m[0][5], true); /* the queue is full: a pause of RS_SOON_MS */
    assert_int_equal(g_times[0][5], 0);
    rs_tick(f.r, now + 100); /* the retry is due, the pause is not over */
    assert_int_equal(g_times[0][1], 1);
    assert_int_equal(g_times[0][5], 0);
    rs_shard_back(f.r, 0, false); /* ready again, on the same link */
    assert_int_equal(g_times[0][1], 1);
    assert_int_equal(g_times[0][5], 0);
    rs_tick(f.r, now + RS_SOON_MS + 100);
    assert_int_equal(g_times[0][5], 1); /* first: it was first to go */
    assert_int_equal(g_times[0][1], 2);
    assert_int_equal(g_seq[0][3], 5);
    assert_int_equal(g_seq[0][4], 1);

    /* paused again; the link drops and comes back: at once */
    rs_ended(f.r, 0);
    rs_ended(f.r, 0);
    f.m[0][7]->pending = true;
    g_rc = -ENOBUFS;
    rs_gap(f.r, f.m[0][7], true);
    assert_int_equal(g_times[0][7], 0);
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_times[0][7], 1);
}

/* A gap re-syncs at once when the shard's window has room and no one
 * waits before it (without `since` for a new epoch), and waits its turn
 * otherwise. A link that is down sends nothing until it is back. */
static void test_gaps_go_at_once_or_wait_their_turn(void **state)
{
    (void)state;
    f.m[0][0]->pending = true;
    rs_gap(f.r, f.m[0][0], false);
    assert_int_equal(g_sent[0], 1);
    assert_int_equal(g_since, 0);
    for (int i = 1; i < ROOMS; i++) {
        f.m[0][i]->pending = true;
        rs_gap(f.r, f.m[0][i], true);
    }
    assert_int_equal(g_sent[0], RS_WINDOW);
    assert_int_equal(rs_waiting(f.r), ROOMS - RS_WINDOW);
    /* the link drops: places free, nothing sent */
    g_up[0] = false;
    answer_all(0);
    assert_int_equal(g_sent[0], RS_WINDOW);
    g_up[0] = true;
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_sent[0], ROOMS);
    for (int i = 0; i < ROOMS; i++)
        assert_int_equal(g_times[0][i], 1);
}

/* A waiting member that leaves its room is never sent; one whose session
 * is closing is passed over. */
static void test_gone_members_are_not_sent(void **state)
{
    (void)state;
    for (int i = 0; i < 10; i++)
        rs_wait(f.r, f.m[0][i]);
    lrooms_leave_member(f.rooms, f.m[0][4]);
    f.m[0][4] = NULL;
    assert_int_equal(rs_waiting(f.r), 9);
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_sent[0], 9);
    assert_int_equal(g_times[0][4], 0);

    for (int i = 0; i < 5; i++)
        rs_wait(f.r, f.m[1][i]);
    sess_close(f.s, 1001, "going away");
    rs_shard_back(f.r, 1, true);
    assert_int_equal(g_sent[1], 0);
    assert_int_equal(rs_waiting(f.r), 0);
}

/* A gap in a closing session's room sends nothing: it held a place for a
 * client that is gone, and registered its presence anew. */
static void test_a_closing_session_s_gap_is_not_sent(void **state)
{
    (void)state;
    sess_close(f.s, 1001, "going away");
    f.m[0][0]->pending = true;
    rs_gap(f.r, f.m[0][0], true);
    assert_int_equal(g_sent[0], 0);
    assert_int_equal(rs_in_flight(f.r), 0);
    assert_int_equal(rs_waiting(f.r), 0);
}

/* The member a full link sent back leaves before the pause ends: once it
 * has ended, a gap goes at once. The pause used to be forgotten only by a
 * pump that found members waiting, so with none left it stayed, and every
 * later gap of the shard waited for the next member to queue. */
static void test_a_pause_ends_though_its_member_left(void **state)
{
    (void)state;
    rs_wait(f.r, f.m[0][0]);
    g_rc = -ENOBUFS;
    int64_t now = cf_mono_ms();
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_sent[0], 0);
    assert_int_equal(rs_waiting(f.r), 1);
    lrooms_leave_member(f.rooms, f.m[0][0]);
    f.m[0][0] = NULL;
    assert_int_equal(rs_waiting(f.r), 0);
    rs_tick(f.r, now + RS_SOON_MS + 100); /* the pause is over */
    f.m[0][1]->pending = true;
    rs_gap(f.r, f.m[0][1], true);
    assert_int_equal(g_sent[0], 1);
    assert_int_equal(g_times[0][1], 1);
    assert_int_equal(rs_waiting(f.r), 0);
}

static int presence_sent(uint32_t shard)
{
    int n = 0;
    for (int i = 0; i < ROOMS; i++)
        n += g_presence[shard][i];
    return n;
}

/* Presence registrations after a link's return are not held by the window
 * (no answer comes) but by the link's queue: those that do not fit wait for
 * the pause after a full queue, and none is lost or sent twice. Sent in one
 * pass, the ones past a full queue were dropped. */
static void test_presence_registrations_wait_for_room_in_the_link(void **state)
{
    (void)state;
    for (int i = 0; i < ROOMS; i++)
        rs_wait_presence(f.r, f.m[0][i]);
    rs_wait_presence(f.r, f.m[0][0]); /* listed once */
    assert_int_equal(rs_waiting(f.r), ROOMS);
    assert_false(f.m[0][0]->pending); /* not made pending */
    /* the link is still down: nothing goes, nothing is lost */
    g_up[0] = false;
    rs_pump(f.r, 0);
    assert_int_equal(presence_sent(0), 0);
    assert_int_equal(rs_waiting(f.r), ROOMS);
    /* it is back, with room for 100 in its queue */
    g_up[0] = true;
    g_room_space = 100;
    int64_t now = cf_mono_ms();
    rs_shard_back(f.r, 0, true);
    assert_int_equal(presence_sent(0), 100); /* more than a window's worth is not the limit */
    assert_int_equal(rs_waiting(f.r), ROOMS - 100);
    assert_int_equal(rs_in_flight(f.r), 0); /* no answer awaited */
    /* paused: the queue drains meanwhile */
    g_room_space = -1;
    rs_pump(f.r, 0);
    assert_int_equal(presence_sent(0), 100);
    rs_tick(f.r, now + RS_SOON_MS + 100);
    assert_int_equal(presence_sent(0), ROOMS);
    for (int i = 0; i < ROOMS; i++)
        assert_int_equal(g_presence[0][i], 1);
    assert_int_equal(rs_waiting(f.r), 0);
    assert_int_equal(g_sent[0], 0); /* no re-sync for them */
}

/* A member waiting to re-sync is not listed for presence (its re-sync
 * registers it); one listed for presence that gaps re-syncs instead. */
static void test_a_resync_takes_the_place_of_a_presence_registration(void **state)
{
    (void)state;
    g_up[0] = false;
    rs_wait(f.r, f.m[0][1]);
    rs_wait_presence(f.r, f.m[0][1]);
    rs_wait_presence(f.r, f.m[0][2]);
    f.m[0][2]->pending = true;
    rs_gap(f.r, f.m[0][2], true); /* the link is down: it waits to re-sync */
    g_up[0] = true;
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_times[0][1], 1);
    assert_int_equal(g_times[0][2], 1);
    assert_int_equal(presence_sent(0), 0);
    assert_int_equal(rs_waiting(f.r), 0);
    /* with room in the window, a gap goes at once and leaves the presence list */
    rs_wait_presence(f.r, f.m[1][5]);
    g_up[1] = false;
    rs_pump(f.r, 1);
    g_up[1] = true;
    f.m[1][5]->pending = true;
    rs_gap(f.r, f.m[1][5], true);
    assert_int_equal(g_times[1][5], 1);
    assert_int_equal(rs_waiting(f.r), 0);
    rs_pump(f.r, 1);
    assert_int_equal(presence_sent(1), 0);
}

/* A legacy client's join that does not fit the link's queue waits for
 * room in it, and the joins after it wait behind it; one whose link is down
 * is registered when the link is back. Dropped, those users were missing
 * from their rooms' presence until their broker was back. */
static void test_a_legacy_join_waits_for_room_in_the_link(void **state)
{
    (void)state;
    rs_presence(f.r, f.m[0][5]); /* room in the link: at once */
    assert_int_equal(g_presence[0][5], 1);
    assert_int_equal(rs_waiting(f.r), 0);
    g_room_space = 0;
    int64_t now = cf_mono_ms();
    rs_presence(f.r, f.m[0][3]);
    g_room_space = -1;
    rs_presence(f.r, f.m[0][4]); /* there is room again, but 3 waits before it */
    assert_int_equal(presence_sent(0), 1);
    assert_int_equal(rs_waiting(f.r), 2);
    assert_false(f.m[0][3]->pending); /* a legacy member is not made pending */
    rs_presence(f.r, f.m[1][7]);      /* another shard's link is not held */
    assert_int_equal(g_presence[1][7], 1);
    rs_pump(f.r, 0); /* paused */
    assert_int_equal(presence_sent(0), 1);
    rs_tick(f.r, now + RS_SOON_MS + 100);
    assert_int_equal(g_presence[0][3], 1);
    assert_int_equal(g_presence[0][4], 1);
    assert_int_equal(rs_waiting(f.r), 0);
    /* a link that is down */
    g_up[0] = false;
    rs_presence(f.r, f.m[0][6]);
    rs_tick(f.r, now + 2 * RS_SOON_MS + 200);
    assert_int_equal(g_presence[0][6], 0);
    assert_int_equal(rs_waiting(f.r), 1);
    g_up[0] = true;
    rs_shard_back(f.r, 0, true);
    assert_int_equal(g_presence[0][6], 1);
    assert_int_equal(presence_sent(0), 4);
    assert_int_equal(g_sent[0] + g_sent[1], 0); /* no re-sync for them */
}

/* A member whose client had no room for what it missed (rs_soon) re-syncs
 * RS_SOON_MS later, and does not take the refused members along: in the
 * later list it pulled their retry forward to its time, so a member with
 * a slow client made a refused shard retry every 200 ms, not 5 s. */
static void test_a_member_with_no_room_waits_a_little_alone(void **state)
{
    (void)state;
    int64_t now = cf_mono_ms();
    rs_later(f.r, f.m[0][1], RS_RETRY_MS); /* refused */
    f.m[0][2]->pending = true;
    rs_soon(f.r, f.m[0][2]);
    assert_int_equal(g_times[0][2], 0); /* not at once: the client reads first */
    rs_tick(f.r, now + RS_SOON_MS / 2);
    assert_int_equal(g_times[0][2], 0);
    rs_tick(f.r, now + RS_SOON_MS + 100);
    assert_int_equal(g_times[0][2], 1);
    assert_int_equal(g_times[0][1], 0); /* keeps its own time */
    rs_tick(f.r, now + RS_RETRY_MS + 100);
    assert_int_equal(g_times[0][1], 1);
    assert_int_equal(g_times[0][2], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_shard_has_its_own_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_window_keeps_answers_to_half_the_link_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_member_waits_for_the_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_server_back_leaves_the_refused_to_their_retry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_full_link_pauses_its_shard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_link_does_not_hasten_the_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_retry_within_a_pause_waits_for_its_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_member_with_no_room_waits_a_little_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gaps_go_at_once_or_wait_their_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_members_are_not_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_closing_session_s_gap_is_not_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_pause_ends_though_its_member_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_presence_registrations_wait_for_room_in_the_link,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_resync_takes_the_place_of_a_presence_registration,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_legacy_join_waits_for_room_in_the_link, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
