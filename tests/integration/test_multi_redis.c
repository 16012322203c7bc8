/* Several Redis servers (REDIS_ADDR lists three): rooms spread over them by
 * common/ring, two nodes with the same list (one over Unix sockets, one over
 * TCP), messages crossing nodes exactly once on every server; a node with
 * another list refuses to start; a server down takes only its own rooms
 * away; a server whose ring key changes under a running node is treated as
 * down, not crash-looped on. */
#include "v1.h"

#include <hiredis/hiredis.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "prom.h"
#include "ring.h"

enum { NSERVERS = 3, A_BROKERS = 2, B_BROKERS = 3 };

static struct h_redis redis[NSERVERS];
static char dirs[NSERVERS][300];
static char list_unix[1024], list_tcp[256];
static struct h_node a, b;
static int a_metrics; /* node a's BROKER_METRICS_PORT */
static char a_metrics_env[48];

/* ---- Redis, directly ------------------------------------------------------ */

static redisContext *rc_of(int server)
{
    redisContext *c = redisConnectUnix(redis[server].sock);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    return c;
}

/* The integer reply of a command on one server. */
static long long rint_of(int server, const char *fmt, const char *arg)
{
    redisContext *c = rc_of(server);
    redisReply *r = redisCommand(c, fmt, arg);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) /* PUBSUB NUMSUB */
        r->integer = r->element[1]->integer;
    else
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

/* The string value of a key on one server ("" when absent). */
static void rget(int server, const char *key, char *out, size_t cap)
{
    redisContext *c = rc_of(server);
    redisReply *r = redisCommand(c, "GET %s", key);
    assert_non_null(r);
    snprintf(out, cap, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    redisFree(c);
}

static void rset_key(int server, const char *key, const char *value)
{
    redisContext *c = rc_of(server);
    redisReply *r = redisCommand(c, "SET %s %s", key, value);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* ---- rooms ----------------------------------------------------------------- */

/* A room name starting with `prefix` that lives on `server` (of 3) and whose
 * shard on node a (of 2 brokers) is `shard` (-1: any). */
static void room_on(char *out, size_t cap, const char *prefix, int server, int shard)
{
    for (int i = 0; i < 100000; i++) {
        snprintf(out, cap, "%s%d", prefix, i);
        if ((int)cf_ring_server_of(out, strlen(out), NSERVERS) == server &&
            (shard < 0 || (int)cf_shard_of(out, strlen(out), A_BROKERS) == shard))
            return;
    }
    fail_msg("no room for server %d shard %d", server, shard);
}

/* ---- fixture --------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    size_t u = 0, t = 0;
    for (int i = 0; i < NSERVERS; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/r%d", h_tmpdir(), i);
        mkdir(dirs[i], 0700);
        if (h_redis_start(&redis[i], dirs[i]) < 0)
            return -1;
        u += (size_t)snprintf(list_unix + u, sizeof list_unix - u, "%s%s", i ? "," : "",
                              redis[i].addr);
        t += (size_t)snprintf(list_tcp + t, sizeof list_tcp - t, "%s%s", i ? ", " : "",
                              redis[i].tcp_addr);
    }
    /* Same servers, same order; one node over Unix sockets, the other over
     * TCP: addresses are not what the ring check compares. */
    h_node_init(&a, list_unix);
    a.brokers = A_BROKERS;
    a_metrics = h_free_ports(A_BROKERS);
    snprintf(a_metrics_env, sizeof a_metrics_env, "BROKER_METRICS_PORT=%d", a_metrics);
    a.extra_env[0] = a_metrics_env;
    h_node_init(&b, list_tcp);
    b.brokers = B_BROKERS;
    if (h_node_start(&a) < 0 || h_node_start(&b) < 0) {
        h_node_dump_logs(&a);
        h_node_dump_logs(&b);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h_node_dump_logs(&a);
    h_node_dump_logs(&b);
    int bad = h_node_stop(&a) + h_node_stop(&b);
    for (int i = 0; i < NSERVERS; i++)
        h_redis_stop(&redis[i]);
    return bad ? -1 : 0;
}

/* Every server records, at each place of the list, the confab:id that
 * server holds now (polled: records are corrected on the next checks). */
static bool records_agree(int ms)
{
    int64_t deadline = h_now_ms() + ms;
    char want[200], got[200];
    do {
        size_t n = 0;
        for (int i = 0; i < NSERVERS; i++) {
            char id[40];
            rget(i, "confab:id", id, sizeof id);
            n += (size_t)snprintf(want + n, sizeof want - n, "%s%s", i ? "," : "", id);
        }
        bool all = true;
        for (int i = 0; i < NSERVERS && all; i++) {
            rget(i, "confab:ring:ids", got, sizeof got);
            all = strcmp(got, want) == 0;
        }
        if (all)
            return true;
        h_sleep_ms(100);
    } while (h_now_ms() < deadline);
    for (int i = 0; i < NSERVERS; i++) {
        rget(i, "confab:ring:ids", got, sizeof got);
        printf("server %d records %s; the servers hold %s\n", i, got, want);
    }
    return false;
}

/* ---- exactly once, on every server ---------------------------------------- */

enum { PER_SENDER = 15 };

/* In `room`, ann (node a) and bob (node b) each say PER_SENDER messages;
 * every member (two per node) gets each exactly once, each sender's in order. */
static void cross_exactly_once(const char *room)
{
    struct wsc *m[4] = {member(a.port, "ann", room), member(a.port, "amy", room),
                        member(b.port, "bob", room), member(b.port, "bea", room)};
    settle_room(m, 4);
    for (int i = 0; i < PER_SENDER; i++) {
        char text[256];
        snprintf(text, sizeof text, "%s/a/%d", room, i);
        say(m[0], text);
        snprintf(text, sizeof text, "%s/b/%d", room, i);
        say(m[2], text);
    }
    for (int r = 0; r < 4; r++) {
        int next[2] = {0, 0};
        for (int i = 0; i < 2 * PER_SENDER; i++) {
            json_t *ev = wsc_recv_json(m[r], 5000);
            if (!ev)
                fail_msg("member %d of room %s got %d of %d messages", r, room, i,
                         2 * PER_SENDER);
            const char *text = payload_str(ev, "message");
            assert_non_null(text);
            size_t rl = strlen(room);
            assert_true(strncmp(text, room, rl) == 0 && text[rl] == '/');
            int who = text[rl + 1] == 'a' ? 0 : 1;
            /* in order and never twice: the next one expected from that sender */
            assert_int_equal(atoi(text + rl + 3), next[who]);
            next[who]++;
            json_decref(ev);
        }
        assert_true(wsc_quiet(m[r], r == 0 ? 300 : 30)); /* nothing doubled late */
    }
    for (int r = 0; r < 4; r++)
        wsc_close(m[r]);
}

static void test_rooms_on_every_server_cross_nodes_exactly_once(void **state)
{
    (void)state;
    /* One room per (server, shard of node a): every broker of a uses every
     * server, and every server carries rooms of both shards. */
    char rooms[NSERVERS][A_BROKERS][32];
    for (int s = 0; s < NSERVERS; s++) {
        for (int sh = 0; sh < A_BROKERS; sh++) {
            char prefix[16];
            snprintf(prefix, sizeof prefix, "x%d%d-", s, sh);
            room_on(rooms[s][sh], sizeof rooms[s][sh], prefix, s, sh);
        }
    }
    for (int s = 0; s < NSERVERS; s++)
        for (int sh = 0; sh < A_BROKERS; sh++)
            cross_exactly_once(rooms[s][sh]);

    /* Each room's state is on its own server only, and each server knows
     * every node's subscription to its rooms and nothing of the others'. */
    for (int s = 0; s < NSERVERS; s++) {
        char key[64], v[32];
        snprintf(v, sizeof v, "%d/%d", s, NSERVERS);
        char ring[32];
        rget(s, "confab:ring", ring, sizeof ring);
        assert_string_equal(ring, v);
        for (int o = 0; o < NSERVERS; o++)
            for (int sh = 0; sh < A_BROKERS; sh++) {
                snprintf(key, sizeof key, "cf:{%s}:meta", rooms[o][sh]);
                long long exists = rint_of(s, "EXISTS %s", key);
                if (exists != (o == s))
                    fail_msg("room %s (server %d): its meta key %s on server %d", rooms[o][sh], o,
                             exists ? "is" : "is not", s);
            }
    }
}

/* While members stay, each room's channel is subscribed by one broker per
 * node, on its own server only (PUBSUB NUMSUB). */
static void test_subscriptions_are_on_the_rooms_server(void **state)
{
    (void)state;
    struct wsc *m[2 * NSERVERS];
    char rooms[NSERVERS][32];
    for (int s = 0; s < NSERVERS; s++) {
        room_on(rooms[s], sizeof rooms[s], "sub-", s, -1);
        m[2 * s] = member(a.port, "ann", rooms[s]);
        m[2 * s + 1] = member(b.port, "bob", rooms[s]);
    }
    for (int s = 0; s < NSERVERS; s++)
        settle_room(m + 2 * s, 2); /* one room a pair */
    for (int s = 0; s < NSERVERS; s++)
        for (int o = 0; o < NSERVERS; o++) {
            char chan[128];
            snprintf(chan, sizeof chan, "room:%s", rooms[o]);
            long long n = rint_of(s, "PUBSUB NUMSUB %s", chan);
            if (n != (o == s ? 2 : 0))
                fail_msg("%s (server %d) has %lld subscribers on server %d", chan, o, n, s);
        }
    for (int i = 0; i < 2 * NSERVERS; i++)
        wsc_close(m[i]);
}

/* ---- another list: refused ------------------------------------------------- */

/* Starts shard 0 of a node with REDIS_ADDR = list; it must exit 2 naming
 * the server, what it holds and what was expected: one of the n pairs
 * holds[i]/expects[i] (whichever server answers its check first). */
static struct h_proc *refused(const char *list, int n, const char *const holds[],
                              const char *const expects[], bool supervised)
{
    static int count;
    static struct h_proc p; /* the last one, for the caller to read its log */
    char run_dir[320], name[32], addr[1100], rd[340];
    snprintf(run_dir, sizeof run_dir, "%s/refused-%d", h_tmpdir(), count);
    snprintf(name, sizeof name, "refused-%d-broker", count++);
    mkdir(run_dir, 0750);
    snprintf(addr, sizeof addr, "REDIS_ADDR=%s", list);
    snprintf(rd, sizeof rd, "RUN_DIR=%s", run_dir);
    /* supervised: confab-broker runs every shard (2) under its supervisor,
     * which must stop them all and exit 2 too, not restart them. */
    const char *env[] = {addr, rd, supervised ? "BROKERS=2" : "BROKERS=1",
                         "JWT_SECRET=" H_JWT_SECRET, NULL};
    char *one[] = {(char *)h_bin("broker"), "--shard", "0", "--shards", "1", NULL};
    char *all[] = {(char *)h_bin("broker"), NULL};
    char **argv = supervised ? all : one;
    assert_int_equal(h_spawn(&p, name, run_dir, argv, env), 0);
    int st = h_wait_exit(&p, 15000);
    h_dump_log(&p, 3);
    if (st < 0) {
        h_stop(&p, SIGKILL, 2000);
        fail_msg("a broker with REDIS_ADDR=%s kept running", list);
    }
    if (WIFSIGNALED(st)) { /* seen once in CI, not reproduced: say which signal */
        h_dump_log(&p, 60);
        fail_msg("the refused broker (REDIS_ADDR=%s) died of signal %d (%s) instead of exiting "
                 "with 2", list, WTERMSIG(st), strsignal(WTERMSIG(st)));
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    bool named = false;
    for (int i = 0; i < n && !named; i++) {
        char want[160];
        snprintf(want, sizeof want, "holds confab:ring = \"%s\", but this node expects \"%s\"",
                 holds[i], expects[i]);
        named = h_log_contains(&p, want, i ? 10 : 1000);
    }
    assert_true(named);
    assert_true(h_log_contains(&p, "same REDIS_ADDR list, in the same order", 100));
    return &p;
}

static void test_a_node_with_another_list_refuses_to_start(void **state)
{
    (void)state;
    char list[1024];
    /* Another order: server 1 first. */
    snprintf(list, sizeof list, "%s,%s,%s", redis[1].addr, redis[0].addr, redis[2].addr);
    refused(list, 2, (const char *const[]){"1/3", "0/3"}, (const char *const[]){"0/3", "1/3"},
            false);
    refused(list, 2, (const char *const[]){"1/3", "0/3"}, (const char *const[]){"0/3", "1/3"},
            true);
    /* Another count: the first two only. */
    snprintf(list, sizeof list, "%s,%s", redis[0].tcp_addr, redis[1].tcp_addr);
    refused(list, 2, (const char *const[]){"0/3", "1/3"}, (const char *const[]){"0/2", "1/2"},
            false);
    /* One server twice (its socket and its TCP address): the error says so. */
    snprintf(list, sizeof list, "%s,%s,%s", redis[0].addr, redis[0].tcp_addr, redis[2].addr);
    struct h_proc *p = refused(list, 1, (const char *const[]){"0/3"},
                               (const char *const[]){"1/3"}, false);
    char hint[400];
    snprintf(hint, sizeof hint, "If %s (index 0 of this list) is the same server, REDIS_ADDR "
             "names it twice", redis[0].addr);
    assert_true(h_log_contains(p, hint, 100));
    /* The running nodes were not disturbed. */
    for (int s = 0; s < NSERVERS; s++) {
        char ring[32], v[32];
        rget(s, "confab:ring", ring, sizeof ring);
        snprintf(v, sizeof v, "%d/%d", s, NSERVERS);
        assert_string_equal(ring, v);
    }
    char room[32];
    room_on(room, sizeof room, "after-", 1, -1);
    struct wsc *m[2] = {member(a.port, "ann", room), member(b.port, "bob", room)};
    settle_room(m, 2);
    exactly_once(m[1], m, 2, "still fine", "bob");
    wsc_close(m[0]);
    wsc_close(m[1]);
}

/* ---- the same place, another server --------------------------------------- */

/* Node c lists a fresh server where the others list server 1: the same count
 * and places, so the ring keys agree, but a room of place 1 would live on
 * two servers and its members on c and on a would not hear each other. The
 * other servers' records tell: on c those rooms answer unavailable (loudly,
 * not split), the other rooms work across nodes, the records are untouched. */
static void test_another_server_at_the_same_place_is_not_used(void **state)
{
    (void)state;
    assert_true(records_agree(15000));
    char before[200];
    rget(0, "confab:ring:ids", before, sizeof before);
    char dir[320];
    snprintf(dir, sizeof dir, "%s/other", h_tmpdir());
    mkdir(dir, 0700);
    struct h_redis other;
    assert_int_equal(h_redis_start(&other, dir), 0);
    char list[1100];
    snprintf(list, sizeof list, "%s,%s,%s", redis[0].addr, other.addr, redis[2].addr);
    struct h_node c;
    h_node_init(&c, list);
    c.brokers = 1;
    if (h_node_start(&c) < 0) {
        h_node_dump_logs(&c);
        fail_msg("node c did not start");
    }
    assert_true(h_log_contains(&c.broker[0], "is not the server the other nodes list there",
                               15000));
    char r0[32], r1[32];
    room_on(r0, sizeof r0, "place0-", 0, -1);
    room_on(r1, sizeof r1, "place1-", 1, -1);
    struct v1c *x = v1_member(a.port, "xena", V1_JSON), *z = v1_member(c.port, "zoe", V1_JSON);
    join_quietly(x, r0);
    join_quietly(z, r0);
    json_int_t id = send_ok(z, r0, "from c", NULL);
    assert_int_equal(expect_new(x, r0, "from c", NULL), id);
    assert_int_equal(expect_new(z, r0, "from c", NULL), id);
    /* place 1 on c: refused, nothing goes to the other server */
    join_quietly(x, r1);
    assert_int_equal(v1_send(z, "join", json_pack("{s:s, s:s}", "room", r1, "id", "j1")), 0);
    json_t *ev = v1_wait(z, V1_WAIT, "error", "ref", "j1", NULL);
    V1_MUST(z, ev, "an error for joining a room of the disputed server");
    assert_string_equal(pstr(ev, "code"), "unavailable");
    json_decref(ev);
    id = send_ok(x, r1, "only on a's server", NULL);
    assert_int_equal(expect_new(x, r1, "only on a's server", NULL), id);
    V1_NONE(z, 300, "new_message", NULL);
    /* The other server loses its identity: c sees it change and would
     * record the new one, but only where the record names the one c saw
     * before; here it names server 1, so the record stays as it is. */
    long mark = h_log_mark(&c.broker[0]);
    redisContext *oc = redisConnectUnix(other.sock);
    assert_non_null(oc);
    freeReplyObject(redisCommand(oc, "DEL confab:id"));
    redisFree(oc);
    assert_true(h_log_contains_from(&c.broker[0], mark, "is not the server it was", 15000));
    h_sleep_ms(1500); /* c's checks that carry it (sent at once; 1.5 s for a slow machine) */
    char after[200];
    rget(0, "confab:ring:ids", after, sizeof after);
    assert_string_equal(after, before);
    rget(2, "confab:ring:ids", after, sizeof after);
    assert_string_equal(after, before);
    assert_int_equal(v1_send(z, "join", json_pack("{s:s, s:s}", "room", r1, "id", "j2")), 0);
    ev = v1_wait(z, V1_WAIT, "error", "ref", "j2", NULL);
    V1_MUST(z, ev, "still an error for the disputed server");
    assert_string_equal(pstr(ev, "code"), "unavailable");
    json_decref(ev);
    v1_close(x);
    v1_close(z);
    h_node_dump_logs(&c);
    assert_int_equal(h_node_stop(&c), 0);
    h_redis_stop(&other);
}

/* ---- one server down ------------------------------------------------------- */

/* node a's broker shard `shard` metric, summed over samples matching `match`. */
static double a_metric(int shard, const char *name, const char *match)
{
    struct h_resp r;
    assert_int_equal(h_http(a_metrics + shard, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(prom_check(r.body));
    char m[96];
    snprintf(m, sizeof m, "shard=\"%d\"%s%s", shard, match ? "," : "", match ? match : "");
    double v = prom_sum(r.body, name, m, NULL);
    h_resp_free(&r);
    return v;
}

/* GET `path` on `port` answers `status` with `needle` in its body (polled). */
static bool answers(int port, const char *path, int status, const char *needle, int ms)
{
    int64_t deadline = h_now_ms() + ms;
    do {
        struct h_resp r;
        if (h_http(port, "GET", path, NULL, NULL, 0, &r) == 0) {
            bool ok = r.status == status && strstr(r.body, needle);
            if (!ok && h_now_ms() + 50 >= deadline)
                printf("GET :%d%s: %d %s\n", port, path, r.status, r.body);
            h_resp_free(&r);
            if (ok)
                return true;
        }
        h_sleep_ms(50);
    } while (h_now_ms() < deadline);
    return false;
}

static bool a_metric_is(int shard, const char *name, const char *match, double want, int ms)
{
    int64_t deadline = h_now_ms() + ms;
    do {
        if (a_metric(shard, name, match) == want)
            return true;
        h_sleep_ms(50);
    } while (h_now_ms() < deadline);
    return false;
}

/* Sends with a client id until acked (a server coming back may answer
 * unavailable for a moment); returns the message id. */
static json_int_t send_until_acked(struct v1c *c, const char *room, const char *text,
                                   const char *id, int ms)
{
    int64_t deadline = h_now_ms() + ms;
    for (;;) {
        send_req(c, room, text, id);
        json_t *ack = v1_wait(c, 3000, "ack", "id", id, NULL);
        if (ack) {
            json_int_t mid = pint(ack, "message_id");
            json_decref(ack);
            return mid;
        }
        json_t *err = v1_take(c, "error", "ref", id, NULL);
        if (err && strcmp(pstr(err, "code"), "unavailable") && strcmp(pstr(err, "code"), "timeout"))
            fail_msg("send %s: error %s", id, pstr(err, "code"));
        json_decref(err);
        if (h_now_ms() > deadline) {
            v1_dump(c, "resends");
            fail_msg("send %s not acked within %d ms", id, ms);
        }
        h_sleep_ms(200);
    }
}

/* A send refused while a server is away must say unavailable (nothing done). */
static void send_unavailable(struct v1c *c, const char *room, const char *id)
{
    send_req(c, room, "into the void", id);
    json_t *ev = v1_wait(c, V1_WAIT, "error", "ref", id, NULL);
    V1_MUST(c, ev, "error while the room's Redis is down");
    assert_string_equal(pstr(ev, "code"), "unavailable");
    if (!strstr(pstr(ev, "message"), "Redis is not connected"))
        fail_msg("the reason given: \"%s\"", pstr(ev, "message"));
    json_decref(ev);
}

/* Every room on a server that works carries a message both ways. */
static void rooms_work(struct v1c *x, struct v1c *y, char rooms[][32], int skip, const char *tag)
{
    for (int s = 0; s < NSERVERS; s++) {
        if (s == skip)
            continue;
        char text[64];
        snprintf(text, sizeof text, "%s on server %d", tag, s);
        json_int_t id = send_ok(x, rooms[s], text, NULL);
        assert_int_equal(expect_new(x, rooms[s], text, NULL), id);
        assert_int_equal(expect_new(y, rooms[s], text, NULL), id);
    }
}

static void test_one_server_down_takes_only_its_rooms(void **state)
{
    (void)state;
    enum { DOWN = 1 };
    char rooms[NSERVERS][32];
    struct v1c *x = v1_member(a.port, "xena", V1_JSON), *y = v1_member(b.port, "yuri", V1_JSON);
    for (int s = 0; s < NSERVERS; s++) {
        room_on(rooms[s], sizeof rooms[s], "down-", s, -1);
        join_quietly(x, rooms[s]);
        join_quietly(y, rooms[s]);
    }
    rooms_work(x, y, rooms, -1, "before");
    int shard = (int)cf_shard_of(rooms[DOWN], strlen(rooms[DOWN]), A_BROKERS);
    assert_true(a_metric_is(shard, "confab_broker_ready", NULL, 1, 5000));

    long mark = h_log_mark(&a.broker[shard]);
    h_stop(&redis[DOWN].proc, SIGKILL, 5000);
    char lost[400];
    snprintf(lost, sizeof lost, "connection to %s lost", redis[DOWN].addr);
    assert_true(h_log_contains_from(&a.broker[shard], mark, lost, 10000));

    /* Its rooms: unavailable, at once, from both nodes. */
    send_unavailable(x, rooms[DOWN], "d-1");
    send_unavailable(y, rooms[DOWN], "d-2");
    /* The other servers' rooms: as before, both ways. */
    rooms_work(x, y, rooms, DOWN, "during");
    rooms_work(y, x, rooms, DOWN, "during, back");
    /* Reported per server: that server down, the broker not ready. */
    char srv[32];
    snprintf(srv, sizeof srv, "server=\"%d\"", DOWN);
    assert_true(a_metric_is(shard, "confab_broker_redis_up", srv, 0, 5000));
    assert_true(a_metric_is(shard, "confab_broker_redis_up", "server=\"0\"", 2, 1000));
    assert_true(a_metric_is(shard, "confab_broker_ready", NULL, 0, 1000));
    /* Degraded, not out of service: every node is hit alike, and a load
     * balancer left with no node would refuse the rooms that work too. */
    assert_true(a_metric_is(shard, "confab_broker_serving", NULL, 1, 1000));
    assert_true(answers(a_metrics + shard, "/readyz", 200, "degraded: 1 of 3 Redis servers", 1000));
    assert_true(answers(a.port, "/readyz", 200, "\"status\":\"degraded\"", 5000));
    assert_true(answers(b.port, "/readyz", 200, "\"status\":\"degraded\"", 5000));

    /* Back, empty (no persistence): the ring key is set again, the rooms
     * are subscribed again, and the send goes through. */
    assert_int_equal(h_redis_restart(&redis[DOWN], dirs[DOWN]), 0);
    char ready[80];
    snprintf(ready, sizeof ready, "ready: Redis connected (server %d of %d)", DOWN, NSERVERS);
    assert_true(h_log_contains_from(&a.broker[shard], mark, ready, 15000));
    /* Once the brokers are ready again the gateways re-sync the members of
     * their rooms; the room's history went with the server (no persistence
     * here), so they start over: a fresh joined, recovered false. */
    struct v1c *both[2] = {x, y};
    for (int i = 0; i < 2; i++) {
        json_t *ev = v1_wait(both[i], 20000, "joined", "room", rooms[DOWN], NULL);
        V1_MUST(both[i], ev, "joined after the server came back");
        assert_false(json_is_true(json_object_get(pl(ev), "recovered")));
        json_decref(ev);
    }
    json_int_t id = send_until_acked(x, rooms[DOWN], "back again", "d-3", 15000);
    assert_int_equal(expect_new(y, rooms[DOWN], "back again", "xena"), id);
    assert_int_equal(expect_new(x, rooms[DOWN], "back again", "xena"), id);
    char ring[32], v[32];
    rget(DOWN, "confab:ring", ring, sizeof ring);
    snprintf(v, sizeof v, "%d/%d", DOWN, NSERVERS);
    assert_string_equal(ring, v);
    assert_true(a_metric_is(shard, "confab_broker_ready", NULL, 1, 15000));
    assert_true(answers(a.port, "/readyz", 200, "\"status\":\"ready\"", 5000));
    rooms_work(y, x, rooms, -1, "after");
    /* It came back as another server (a new confab:id): the nodes that saw
     * it record the new one on the other servers. */
    assert_true(records_agree(15000));
    V1_NONE(y, 300, "new_message", "message", "back again", NULL); /* once only */
    V1_NONE(x, 30, "new_message", "message", "back again", NULL);
    v1_close(x);
    v1_close(y);
}

/* ---- the ring key changed under a running node ------------------------------ */

/* PUBSUB NUMSUB of a channel on one server reaches `want` (polled). */
static bool numsub_is(int server, const char *chan, long long want, int ms)
{
    long long n = -1;
    for (int64_t until = h_now_ms() + ms; h_now_ms() < until; h_sleep_ms(100))
        if ((n = rint_of(server, "PUBSUB NUMSUB %s", chan)) == want)
            return true;
    printf("%s has %lld subscribers on server %d, not %lld\n", chan, n, server, want);
    return false;
}

static void test_ring_key_changed_while_running(void **state)
{
    (void)state;
    enum { BAD = 2 };
    char rooms[NSERVERS][32];
    struct v1c *x = v1_member(a.port, "xena", V1_JSON), *y = v1_member(b.port, "yuri", V1_JSON);
    for (int s = 0; s < NSERVERS; s++) {
        room_on(rooms[s], sizeof rooms[s], "ring-", s, -1);
        join_quietly(x, rooms[s]);
        join_quietly(y, rooms[s]);
    }
    int shard = (int)cf_shard_of(rooms[BAD], strlen(rooms[BAD]), A_BROKERS);
    long mark = h_log_mark(&a.broker[shard]);
    rset_key(BAD, "confab:ring", "0/4"); /* as if a node with 4 servers took it */
    assert_true(h_log_contains_from(&a.broker[shard], mark, "now holds confab:ring = \"0/4\"",
                                    15000));
    send_unavailable(x, rooms[BAD], "r-1");
    rooms_work(x, y, rooms, BAD, "ring mismatch");
    char srv[32];
    snprintf(srv, sizeof srv, "server=\"%d\"", BAD);
    assert_true(a_metric_is(shard, "confab_broker_redis_ring_ok", srv, 0, 1000));
    assert_true(h_alive(&a.broker[shard])); /* treated as down, not exited */
    /* Not used means not listened to either: neither node keeps the room's
     * channel on that server (its messages are another list's now) */
    char chan[48];
    snprintf(chan, sizeof chan, "room:%s", rooms[BAD]);
    assert_true(numsub_is(BAD, chan, 0, 11000)); /* node b checks every 5 s on its own phase */
    /* Node a's last member of the room leaves while its server is not used
     * there: no channel of the room may stay behind on that server's
     * subscriber (it would bring node a every message of the room, for
     * nobody, for as long as the connection lasts). */
    leave_ok(x, rooms[BAD]);

    /* Put right again (here: the key deleted, as docs/operations.md says):
     * the next check sets it and the rooms come back. */
    redisContext *c = rc_of(BAD);
    freeReplyObject(redisCommand(c, "DEL confab:ring"));
    redisFree(c);
    assert_true(h_log_contains_from(&a.broker[shard], mark, "as expected", 15000));
    json_int_t id = send_until_acked(y, rooms[BAD], "ring fixed", "r-2", 15000);
    assert_int_equal(expect_new(y, rooms[BAD], "ring fixed", "yuri"), id);
    assert_true(a_metric_is(shard, "confab_broker_redis_ring_ok", srv, 1, 1000));
    /* subscribed again by node b alone (yuri): node a has no member left */
    assert_true(numsub_is(BAD, chan, 1, 5000));
    V1_NONE(x, 300, "new_message", "message", "ring fixed", NULL); /* x left */
    v1_close(x);
    v1_close(y);
}

/* The same, found while the server's publisher was away: its subscriber,
 * kept through the publisher's drop so that the rooms went on hearing their
 * live messages, kept the channels when the publisher came back to find
 * another list's key (the server was not usable before, nor after: nothing
 * changed, nothing was reset). Both nodes went on hearing that server's
 * traffic for the room, another list's now. */
static void test_ring_key_changed_while_the_publisher_was_away(void **state)
{
    (void)state;
    enum { BAD = 1 };
    char room[32];
    room_on(room, sizeof room, "away-", BAD, -1);
    struct v1c *x = v1_member(a.port, "xena", V1_JSON), *y = v1_member(b.port, "yuri", V1_JSON);
    join_quietly(x, room);
    join_quietly(y, room);
    char chan[48];
    snprintf(chan, sizeof chan, "room:%s", room);
    assert_true(numsub_is(BAD, chan, 2, 5000));

    /* In one step: the key another list's, every publisher cut (the
     * subscribers, of type pubsub, stay) */
    int shard = (int)cf_shard_of(room, strlen(room), A_BROKERS);
    char srv[32];
    snprintf(srv, sizeof srv, "server=\"%d\"", BAD);
    double seen = a_metric(shard, "confab_broker_redis_ring_mismatches_total", srv);
    redisContext *c = rc_of(BAD);
    freeReplyObject(redisCommand(c, "MULTI"));
    freeReplyObject(redisCommand(c, "SET confab:ring 0/4"));
    freeReplyObject(redisCommand(c, "CLIENT KILL TYPE normal"));
    redisReply *r = redisCommand(c, "EXEC");
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    assert_true(r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer >= 2);
    freeReplyObject(r);
    redisFree(c);
    /* the check on the new publisher found it (its log line is shown once
     * in 60 mismatches of a server not verified, so counted here) */
    int64_t until = h_now_ms() + 15000;
    while (a_metric(shard, "confab_broker_redis_ring_mismatches_total", srv) <= seen &&
           h_now_ms() < until)
        h_sleep_ms(100);
    assert_true(a_metric(shard, "confab_broker_redis_ring_mismatches_total", srv) > seen);
    assert_true(numsub_is(BAD, chan, 0, 11000));
    send_unavailable(x, room, "a-1");

    c = rc_of(BAD);
    freeReplyObject(redisCommand(c, "DEL confab:ring"));
    redisFree(c);
    json_int_t id = send_until_acked(y, room, "away fixed", "a-2", 15000);
    assert_int_equal(expect_new(x, room, "away fixed", "yuri"), id);
    assert_int_equal(expect_new(y, room, "away fixed", "yuri"), id);
    assert_true(numsub_is(BAD, chan, 2, 5000));
    v1_close(x);
    v1_close(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rooms_on_every_server_cross_nodes_exactly_once),
        cmocka_unit_test(test_subscriptions_are_on_the_rooms_server),
        cmocka_unit_test(test_a_node_with_another_list_refuses_to_start),
        cmocka_unit_test(test_another_server_at_the_same_place_is_not_used),
        cmocka_unit_test(test_one_server_down_takes_only_its_rooms),
        cmocka_unit_test(test_ring_key_changed_while_running),
        cmocka_unit_test(test_ring_key_changed_while_the_publisher_was_away),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
