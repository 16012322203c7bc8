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

#include <sys/wait.h>

#define GRACE_MS 10000 /* leaves.c's LINK_GRACE_MS */

static struct h_fixture fx;

static int setup(void **state)
{
    (void)state;
    /* the least queue toward Redis the settings allow (~4,700 leaves) */
    static const char *const env[] = {"MAX_LINK_QUEUE_BYTES=1048576", NULL};
    return h_fixture_up(&fx, env);
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

/* ghost and `user` registered in room through a link, both announced to
 * watcher; then the link is reset and the gateway back at once, having
 * registered ghost again on the new link (returned), *cut the close's time.
 * user's connection is not registered again. */
static int reset_with_ghost(struct v1c *watcher, const char *room, const char *user,
                            const char *conn, int64_t *cut)
{
    int fd = link_for(room);
    sub(fd, room, "ghost", "c-ghost", 1);
    sub(fd, room, user, conn, 2);
    expect_presence(watcher, room, "ghost", "join", V1_WAIT);
    expect_presence(watcher, room, user, "join", V1_WAIT);
    close(fd);
    *cut = h_now_ms();
    fd = link_for(room);
    sub(fd, room, "ghost", "c-ghost", 3);
    return fd;
}

static void test_a_link_back_at_once_shows_no_leave(void **state)
{
    (void)state;
    const char *room = "grace";
    struct v1c *alice = v1_member(fx.node.port, "alice", V1_JSON);
    join_quietly(alice, room);

    /* The link is reset; the gateway is back at once, and only ghost's
     * connection is still open to be registered again. */
    int64_t cut;
    int fd = reset_with_ghost(alice, room, "phantom", "c-phantom", &cut);
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

/* Waits for the broker's answer to request q on a link (a join answered
 * is one the broker has done). */
static void wait_answer(int fd, uint64_t q)
{
    struct bl_reader r;
    bl_reader_init(&r, fd);
    struct cf_wire_msg m;
    bool got = false;
    for (int64_t deadline = h_now_ms() + V1_WAIT; !got && bl_reader_next(&r, &m, deadline);)
        got = m.q == q;
    bl_reader_free(&r);
    assert_true(got);
}

/* A link that registers no one: up (the broker has sent its state), then
 * closed. */
static void empty_link_flaps(const char *room)
{
    int fd = link_for(room);
    struct bl_reader r;
    bl_reader_init(&r, fd);
    struct cf_wire_msg m;
    assert_true(bl_reader_next(&r, &m, h_now_ms() + V1_WAIT));
    bl_reader_free(&r);
    close(fd);
}

/* A link whose only member leaves before it closes: the watcher sees the
 * join and the leave, and the link owns nothing when it closes. */
static void emptied_link_flaps(struct v1c *watcher, const char *room, const char *user,
                               const char *conn)
{
    int fd = link_for(room);
    sub(fd, room, user, conn, 1);
    wait_answer(fd, 1);
    expect_presence(watcher, room, user, "join", V1_WAIT);
    struct cf_wire_msg m = {.type = CF_WIRE_UNSUB, .room = str(room), .conn = str(conn)};
    bl_send_msg(fd, &m);
    expect_presence(watcher, room, user, "leave", V1_WAIT);
    close(fd);
}

/* A connection that leaves before its gateway registered it again on the
 * new link (its registration waited behind others after the reset): the
 * leave comes on the new link, for an entry the closed link still owns.
 * It is announced at once; it used to be ignored (only the owner could
 * remove an entry), and the user stayed present until the grace ended. A
 * leave on the closed link's side cannot come: it is closed. */
static void test_a_leave_before_the_re_registration_is_announced_at_once(void **state)
{
    (void)state;
    const char *room = "grace-leave";
    struct v1c *alice = v1_member(fx.node.port, "alice", V1_JSON);
    join_quietly(alice, room);

    int64_t cut;
    int fd = reset_with_ghost(alice, room, "quitter", "c-quitter", &cut);
    struct cf_wire_msg m = {.type = CF_WIRE_UNSUB, .room = str(room), .conn = str("c-quitter")};
    bl_send_msg(fd, &m);
    expect_presence(alice, room, "quitter", "leave", GRACE_MS / 2);
    printf("quitter's leave came %lld ms after the link closed\n", (long long)(h_now_ms() - cut));
    V1_NONE(alice, 500, "presence", "room", room, NULL); /* ghost stays, unannounced */

    /* An older link's leave still does not remove a newer link's entry:
     * ghost is the new link's now, and a third link comes and goes first. */
    int old = fd;
    fd = link_for(room);
    sub(fd, room, "ghost", "c-ghost", 4); /* link 3 takes it over */
    wait_answer(fd, 4);
    m.conn = str("c-ghost");
    bl_send_msg(old, &m); /* link 2's late leave: not its entry any more */
    V1_NONE(alice, 1000, "presence", "room", room, NULL);
    close(old);
    close(fd);
    v1_close(alice);
}

/* A broker keeps at most 64 closed links in their grace (GONE_LINKS_MAX).
 * Links that flap past that: at the 65th close the two links due soonest
 * share a place, and no one's grace ends early (it used to end the grace of
 * the link due soonest). They share it under the older link's id, so that
 * a link opened between the two (a gateway that re-linked, re-syncing) can
 * still take its connections' entries back. A link that owns no entry when
 * it closes takes no place, and a waiting link whose entries were all taken
 * over gives its place up first. */
static void test_a_65th_closed_link_ends_no_grace_early(void **state)
{
    (void)state;
    const char *room = "flapping";
    enum { GONE = 64 };
    struct v1c *alice = v1_member(fx.node.port, "alice", V1_JSON);
    join_quietly(alice, room);

    int fd[GONE], between = -1;
    char user[GONE][16], conn[GONE][16];
    for (int i = 0; i < GONE; i++) {
        snprintf(user[i], sizeof user[i], "user-%02d", i);
        snprintf(conn[i], sizeof conn[i], "c-%02d", i);
        fd[i] = link_for(room);
        sub(fd[i], room, user[i], conn[i], 1);
        expect_presence(alice, room, user[i], "join", V1_WAIT);
        if (i == 1) /* user-01's gateway, linked again, its re-sync yet to come */
            between = link_for(room);
    }
    sub(fd[0], room, "keeper", "c-keeper", 2);
    expect_presence(alice, room, "keeper", "join", V1_WAIT);

    /* 64 links close, a few ms apart: all in their grace, no one left */
    int64_t first_cut = h_now_ms();
    for (int i = 0; i < GONE; i++) {
        close(fd[i]);
        usleep(5000);
    }
    V1_NONE(alice, 1000, "presence", "room", room, "action", "leave", NULL);

    /* Links that own no entry take no place: their closes end no one's
     * grace, whether no presence was registered through them or their
     * members left. */
    for (int i = 0; i < 3; i++)
        empty_link_flaps(room);
    emptied_link_flaps(alice, room, "brief-1", "c-brief-1");
    emptied_link_flaps(alice, room, "brief-2", "c-brief-2");
    V1_NONE(alice, 1000, "presence", "room", room, "action", "leave", NULL);

    /* A new link takes keeper's entry over: the first link's grace goes on
     * 10 s from now, so the link due soonest is the second. */
    int last = link_for(room);
    sub(last, room, "keeper", "c-keeper", 3);
    wait_answer(last, 3);

    /* The 65th close: user-01's link and user-02's share a place. No one
     * leaves now: user-01's grace used to end at once, ~9 s early (and
     * before that, every grace due by the first closed link's). */
    close(last);
    V1_NONE(alice, 3000, "presence", "room", room, "action", "leave", NULL);
    /* user-01's re-sync comes now, on a link opened after user-01's and
     * before user-02's: it takes the entry back, and user-01 never leaves
     * (merged under user-02's link, it could not, and user-01 left at that
     * grace's end while connected) */
    sub(between, room, user[1], conn[1], 7);
    wait_answer(between, 7);

    /* A link that stays open takes user-05's entry over: the sixth link,
     * waiting, owns nothing now. The next close at the cap frees its place
     * rather than merge two others. */
    int holder = link_for(room);
    sub(holder, room, user[5], conn[5], 4);
    wait_answer(holder, 4);
    int late = link_for(room);
    sub(late, room, "late", "c-late", 5);
    expect_presence(alice, room, "late", "join", V1_WAIT);
    close(late);
    V1_NONE(alice, 1000, "presence", "room", room, "action", "leave", NULL);

    /* All leave at the end of their grace, each once: user-00 to user-63
     * but user-01 and user-05 (held), keeper with the 65th link, and late. */
    enum { LEAVING = GONE - 2 + 2 };
    bool left[GONE + 2] = {false};
    int nleft = 0;
    int64_t first_other = 0, deadline = h_now_ms() + GRACE_MS + 8000;
    while (nleft < LEAVING && h_now_ms() < deadline) {
        json_t *ev = v1_wait(alice, (int)(deadline - h_now_ms()), "presence", "room", room,
                             "action", "leave", NULL);
        if (!ev)
            break;
        const char *u = pstr(ev, "user");
        int i = !u                            ? -1
                : strcmp(u, "keeper") == 0    ? GONE
                : strcmp(u, "late") == 0      ? GONE + 1
                : strncmp(u, "user-", 5) == 0 ? atoi(u + 5)
                                              : -1;
        if (i < 0 || i == 1 || i == 5 || left[i])
            fail_msg("unexpected leave of %s", u ? u : "(none)");
        if (!nleft)
            first_other = h_now_ms();
        left[i] = true;
        nleft++;
        json_decref(ev);
    }
    printf("%d of %d left, the first %lld ms after the first close\n", nleft, LEAVING,
           (long long)(first_other - first_cut));
    assert_int_equal(nleft, LEAVING);
    assert_true(first_other - first_cut >= GRACE_MS - 500);
    close(holder);
    close(between);
    v1_close(alice);
}

/* How many rooms named prefix* have presence entries in Redis. */
static int64_t rooms_present(const char *prefix)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "cf:{%s*}:pz", prefix);
    return h_redis_int(
        &fx.redis,
        (const char *const[]){"EVAL", "return #redis.call(\"KEYS\", ARGV[1])", "0", pattern, NULL});
}

/* A gateway process that exits holding many memberships of a shard (a
 * restart, a crash). At the end of its grace their leaves all went to
 * Redis in one go: those past the broker's queue toward Redis (1 MiB here,
 * ~4,700 leaves) were lost, their users shown until PRESENCE_TTL, and the
 * rest held Redis for as long as they took. They go out a share each
 * heartbeat slice now (5,000 a second), every one of them. */
/* A link to the first shard's broker with n members, one in each of n rooms
 * of that shard named prefix<k>, all registered. */
static int link_with_many(const char *prefix, int n)
{
    enum { CHUNK = 250 };
    char room[32];
    int fd = -1, k = 0;
    struct bl_reader r;
    for (int at = 0; at < n; at += CHUNK) {
        int chunk = n - at < CHUNK ? n - at : CHUNK;
        for (int i = at; i < at + chunk; k++) {
            snprintf(room, sizeof room, "%s%d", prefix, k);
            if (cf_shard_of(room, strlen(room), 2) != 0)
                continue; /* one broker's */
            if (fd < 0) {
                fd = link_for(room);
                bl_reader_init(&r, fd);
            }
            char conn[16];
            snprintf(conn, sizeof conn, "c-%d", i);
            sub(fd, room, "someone", conn, (uint64_t)++i);
        }
        int answered = 0;
        struct cf_wire_msg m;
        while (answered < chunk && bl_reader_next(&r, &m, h_now_ms() + V1_WAIT))
            answered += m.q > (uint64_t)at && m.q <= (uint64_t)(at + chunk);
        assert_int_equal(answered, chunk);
    }
    bl_reader_free(&r);
    return fd;
}

static void test_a_mass_grace_end_loses_no_leave(void **state)
{
    (void)state;
    enum { N = 8000 };
    int fd = link_with_many("mass-", N);
    assert_int_equal(rooms_present("mass-"), N);

    close(fd);
    int64_t cut = h_now_ms(), first = 0, last = 0, n = N;
    while (n > 0 && h_now_ms() - cut < GRACE_MS + 20000) {
        usleep(50000);
        n = rooms_present("mass-");
        assert_true(n >= 0);
        if (n < N && !first)
            first = h_now_ms();
    }
    last = h_now_ms();
    printf("%d leaves: the first %lld ms after the close, the last %lld ms after the first; "
           "%lld not announced\n",
           N, (long long)(first - cut), (long long)(last - first), (long long)n);
    assert_int_equal(n, 0); /* every leave went out */
    assert_true(first - cut >= GRACE_MS - 500);
    /* spread over the slices: 8,000 at 5,000 a second take 1.6 s */
    assert_true(last - first >= 1000);
}

/* With all 64 places taken, the 65th close used to announce one waiting
 * link's entries at once, the draining one with the fewest left first:
 * those past the queue toward Redis (~4,700 here) were lost, their users
 * shown until PRESENCE_TTL. Two draining links now share a place, their
 * leaves still paced, every one of them sent. */
static void test_full_places_lose_no_leave(void **state)
{
    (void)state;
    enum { N = 8000, SMALL = 62 };
    int a = link_with_many("both-a-", N), b = link_with_many("both-b-", N);
    assert_int_equal(rooms_present("both-"), 2 * N);
    /* links of one member each, to the same broker, to close later */
    char room[32];
    for (int k = 0;; k++) {
        snprintf(room, sizeof room, "small-%d", k);
        if (cf_shard_of(room, strlen(room), 2) == 0)
            break;
    }
    int small[SMALL + 1];
    for (int i = 0; i <= SMALL; i++) {
        char conn[16];
        snprintf(conn, sizeof conn, "c-small-%d", i);
        small[i] = link_for(room);
        sub(small[i], room, "small", conn, 1);
        wait_answer(small[i], 1);
    }

    close(a);
    close(b);
    int64_t cut = h_now_ms();
    sleep(3); /* the small links' graces end later */
    for (int i = 0; i < SMALL; i++)
        close(small[i]);
    /* 64 places taken; once a's and b's graces are over and their leaves
     * going out, the 65th close */
    int64_t n = 2 * N;
    while (n == 2 * N && h_now_ms() - cut < GRACE_MS + 5000) {
        usleep(20000);
        n = rooms_present("both-");
    }
    assert_true(n < 2 * N);
    close(small[SMALL]);
    int64_t closed = h_now_ms();
    while (n > 0 && h_now_ms() - closed < 15000) {
        usleep(100000);
        n = rooms_present("both-");
        assert_true(n >= 0);
    }
    printf("%d leaves of two draining links: %lld not announced %lld ms after the 65th close\n",
           2 * N, (long long)n, (long long)(h_now_ms() - closed));
    assert_int_equal(n, 0);
}

/* Registers "leaver" (connection c-leaver) in room through a new link,
 * announced to alice; then stops Redis and fills the queue toward it of
 * room's broker, and sends c-leaver's leave, which finds it full. Returns
 * the link; Redis is left stopped. */
static int leave_into_a_full_queue(struct v1c *alice, const char *room)
{
    char fill[64];
    for (int k = 0;; k++) { /* a room of the same broker to fill its queue with */
        snprintf(fill, sizeof fill, "%s-fill-%d", room, k);
        if (cf_shard_of(fill, strlen(fill), 2) == cf_shard_of(room, strlen(room), 2))
            break;
    }
    join_quietly(alice, room);
    int fd = link_for(room);
    sub(fd, room, "leaver", "c-leaver", 1);
    wait_answer(fd, 1);
    expect_presence(alice, room, "leaver", "join", V1_WAIT);
    struct cf_wire_msg join = {.type = CF_WIRE_JOIN, .room = str(fill)};
    bl_send_msg(fd, &join);
    h_sleep_ms(200); /* subscribed */

    assert_int_equal(h_kill(&fx.redis.proc, SIGSTOP), 0);
    static char text[3001];
    memset(text, 'x', sizeof text - 1);
    struct bl_reader r;
    bl_reader_init(&r, fd);
    bool full = false;
    uint64_t q = 100;
    for (int i = 0; i < 200 && !full; i++) {
        for (int k = 0; k < 50; k++) {
            struct cf_wire_msg m = {.type = CF_WIRE_SEND,
                                    .q = q++,
                                    .room = str(fill),
                                    .from = str("filler"),
                                    .text = str(text),
                                    .ts = cf_wall_ms()};
            bl_send_msg(fd, &m);
        }
        struct cf_wire_msg a;
        while (!full && bl_reader_next(&r, &a, h_now_ms() + 20))
            full = a.type == CF_WIRE_FAIL &&
                   memmem(a.text.p, a.text.len, "queue toward Redis is full", 26);
    }
    bl_reader_free(&r);
    if (!full) {
        h_kill(&fx.redis.proc, SIGCONT);
        fail_msg("the broker's queue toward Redis never filled");
    }
    struct cf_wire_msg leave = {.type = CF_WIRE_UNSUB, .room = str(room), .conn = str("c-leaver")};
    bl_send_msg(fd, &leave);
    h_sleep_ms(300);
    return fd;
}

/* A gateway's leave that finds the broker's queue toward Redis full (Redis
 * stalled) is sent once there is room: the broker keeps the entry as a
 * leave owed. It was dropped with the entry, and the user stayed present to
 * everyone in the room until the entry expired in Redis. */
static void test_a_leave_that_finds_the_queue_full_is_sent_later(void **state)
{
    (void)state;
    struct v1c *alice = v1_member(fx.node.port, "alice", V1_JSON);
    int fd = leave_into_a_full_queue(alice, "owed");
    assert_int_equal(h_kill(&fx.redis.proc, SIGCONT), 0);
    expect_presence(alice, "owed", "leaver", "leave", 5000);
    close(fd);
    v1_close(alice);
}

/* Whether Redis lists user among room's members (a hash by user). */
static bool listed_in_redis(const char *room, const char *user)
{
    char cmd[512], line[256];
    snprintf(cmd, sizeof cmd, "timeout 5 redis-cli -s '%s' HKEYS 'cf:{%s}:pc'", fx.redis.sock,
             room);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    bool found = false;
    while (fgets(line, sizeof line, p))
        found |= strncmp(line, user, strlen(user)) == 0 && line[strlen(user)] == '\n';
    pclose(p);
    return found;
}

/* ... also when the broker is stopped meanwhile: its drain sends the leaves
 * still owed before it exits. It exited once Redis had answered what was in
 * flight, the owed leave unsent, and the user showed until PRESENCE_TTL. */
static void test_a_drain_sends_the_leaves_owed(void **state)
{
    (void)state;
    const char *room = "owed-drain";
    int shard = (int)cf_shard_of(room, strlen(room), 2);
    struct v1c *alice = v1_member(fx.node.port, "alice", V1_JSON);
    int fd = leave_into_a_full_queue(alice, room); /* Redis stopped */
    assert_int_equal(h_kill(&fx.node.broker[shard], SIGTERM), 0);
    h_sleep_ms(100); /* draining */
    assert_int_equal(h_kill(&fx.redis.proc, SIGCONT), 0);
    int status = h_wait_exit(&fx.node.broker[shard], 10000);
    assert_true(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (listed_in_redis(room, "leaver"))
        fail_msg("the broker exited with leaver's leave unsent: still listed in Redis");
    close(fd);
    v1_close(alice);
    /* the check can see a listed connection */
    assert_int_equal(h_broker_start(&fx.node, shard), 0);
    fd = -1;
    for (int64_t end = h_now_ms() + 5000; fd < 0 && h_now_ms() < end; h_sleep_ms(100))
        fd = bl_connect(fx.node.run_dir, shard);
    assert_true(fd >= 0);
    bl_hello(fd, (uint32_t)shard, 2);
    sub(fd, room, "stayer", "c-stayer", 1);
    wait_answer(fd, 1);
    assert_true(listed_in_redis(room, "stayer"));
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_link_back_at_once_shows_no_leave),
        cmocka_unit_test(test_a_slow_resync_keeps_the_grace_going),
        cmocka_unit_test(test_a_leave_before_the_re_registration_is_announced_at_once),
        cmocka_unit_test(test_a_65th_closed_link_ends_no_grace_early),
        cmocka_unit_test(test_a_mass_grace_end_loses_no_leave),
        cmocka_unit_test(test_full_places_lose_no_leave),
        cmocka_unit_test(test_a_leave_that_finds_the_queue_full_is_sent_later),
        cmocka_unit_test(test_a_drain_sends_the_leaves_owed),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
