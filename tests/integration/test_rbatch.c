/* The broker's batcher of script calls (broker/rbatch.h) on a real Redis:
 * calls held in one loop pass become one EVALSHA and each still gets its own
 * reply, in order; a full batch is queued and a new one started; calls held
 * when the connection goes away hear so, once each; a bridge that is down
 * refuses new calls at once; each batch is preceded by the PING that makes
 * Redis write a script's published message before the script's reply. */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "config.h"
#include "rbatch.h"
#include "redis.h"

static struct h_redis redis;

/* One reply per call: its key's new count and its one argument; and one
 * count per script run, to see how many calls Redis got. */
static const char script[] = "redis.call('INCR', 'batches')\n"
                             "local out, k, a = {}, 1, 1\n"
                             "while a <= #ARGV do\n"
                             "  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])\n"
                             "  out[#out + 1] = {redis.call('INCR', KEYS[k]), ARGV[a + 2]}\n"
                             "  k, a = k + nk, a + 2 + na\n"
                             "end\n"
                             "return out\n";
/* The same shape for another kind of call: its own count, its argument
 * doubled. */
static const char script2[] =
    "redis.call('INCR', 'batches2')\n"
    "local out, k, a = {}, 1, 1\n"
    "while a <= #ARGV do\n"
    "  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])\n"
    "  out[#out + 1] = {redis.call('INCR', KEYS[k]), ARGV[a + 2] .. ARGV[a + 2]}\n"
    "  k, a = k + nk, a + 2 + na\n"
    "end\n"
    "return out\n";
static const char *const scripts[] = {script, script2};

struct got {
    int calls;
    bool null;
    int unqueued; /* rbatch_unqueued of the reply */
    char error[80]; /* an error reply's text */
    long long count;
    char arg[32];
};

static void on_reply(void *ud, const redisReply *r)
{
    struct got *g = ud;
    g->calls++;
    g->null = r == NULL;
    g->unqueued = rbatch_unqueued(r);
    if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(g->error, sizeof g->error, "%.*s", (int)r->len, r->str);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        g->count = r->element[0]->integer;
        snprintf(g->arg, sizeof g->arg, "%.*s", (int)r->element[1]->len, r->element[1]->str);
    }
}

static void on_message(void *ud, const char *name, size_t len, const char *p, size_t plen)
{
    (void)ud, (void)name, (void)len, (void)p, (void)plen;
}

static sd_event *ev;
static struct rbridge *rb;

static void run_until(bool (*done)(void *), void *ud)
{
    int64_t deadline = h_now_ms() + 5000;
    while (!done(ud) && h_now_ms() < deadline)
        assert_true(sd_event_run(ev, 50 * 1000) >= 0);
    assert_true(done(ud));
}

static bool bridge_ready(void *ud)
{
    (void)ud;
    return rbridge_room(rb) == 0;
}

/* With max_queue bytes of room for the commands waiting to be sent. */
static void bridge_up_bounded(size_t max_queue)
{
    assert_int_equal(sd_event_new(&ev), 0);
    struct cf_redis_addr addr;
    assert_int_equal(cf_redis_addr_parse(redis.addr, &addr), 0);
    const struct rbridge_cbs cbs = {.on_message = on_message};
    rb = rbridge_new(ev, &addr, NULL, max_queue, scripts, 2, &cbs, NULL);
    assert_non_null(rb);
    run_until(bridge_ready, NULL);
}

static bool nothing_in_flight(void *ud)
{
    (void)ud;
    return rbridge_inflight(rb) == 0;
}

static void bridge_up(void)
{
    bridge_up_bounded(1 << 20);
}

static void bridge_down(void)
{
    rbridge_free(rb);
    rb = NULL;
    ev = sd_event_unref(ev);
}

static int64_t batches(void)
{
    return h_redis_int(&redis, (const char *const[]){"GET", "batches", NULL});
}

static const char *g_key;
static int64_t g_want;
static bool key_reached(void *ud)
{
    (void)ud;
    return h_redis_int(&redis, (const char *const[]){"GET", g_key, NULL}) >= g_want;
}

/* Until the key's count reaches want (a call without a callback ran). */
static void run_until_count(const char *key, int64_t want)
{
    g_key = key;
    g_want = want;
    run_until(key_reached, NULL);
}

static int add(struct rbatch *q, const char *key, const char *arg, struct got *g)
{
    const char *argv[] = {key, arg};
    size_t lens[] = {strlen(key), strlen(arg)};
    return rbatch_add(q, 0, 1, 2, argv, lens, on_reply, g);
}

struct all {
    struct got *g;
    int n;
};

static bool all_answered(void *ud)
{
    struct all *a = ud;
    for (int i = 0; i < a->n; i++)
        if (!a->g[i].calls)
            return false;
    return true;
}

static void test_one_pass_one_call_each_its_own_reply(void **state)
{
    (void)state;
    bridge_up();
    struct rbatch *q = rbatch_new(rb);
    assert_non_null(q);
    assert_ptr_equal(rbatch_of(rb), q);
    h_redis_cli(&redis, (const char *const[]){"DEL", "batches", "a", "b", NULL});
    struct got g[5] = {0};
    static const char *const keys[5] = {"a", "b", "a", "a", "b"};
    for (int i = 0; i < 5; i++) {
        char arg[8];
        snprintf(arg, sizeof arg, "call%d", i);
        assert_int_equal(add(q, keys[i], arg, &g[i]), 0);
    }
    run_until(all_answered, &(struct all){g, 5});
    static const long long counts[5] = {1, 1, 2, 3, 2}; /* run in the order held */
    for (int i = 0; i < 5; i++) {
        char arg[8];
        snprintf(arg, sizeof arg, "call%d", i);
        assert_int_equal(g[i].calls, 1);
        assert_false(g[i].null);
        assert_int_equal(g[i].count, counts[i]);
        assert_string_equal(g[i].arg, arg);
    }
    assert_int_equal(batches(), 1);

    /* 64 calls fill a batch: the 65th starts the next one */
    enum { N = 65 };
    struct got many[N] = {{0}};
    for (int i = 0; i < N; i++)
        assert_int_equal(add(q, "c", "x", &many[i]), 0);
    run_until(all_answered, &(struct all){many, N});
    for (int i = 0; i < N; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_int_equal(many[i].count, i + 1);
    }
    assert_int_equal(batches(), 3);

    /* long calls fill a batch by their arguments: 1 key and 60 arguments
     * each, 34 of them fit one EVALSHA of at most 2177 */
    enum { L = 35 };
    struct got longs[L] = {{0}};
    const char *argv[61];
    size_t lens[61];
    argv[0] = "l";
    lens[0] = 1;
    for (int i = 1; i < 61; i++) {
        argv[i] = "y";
        lens[i] = 1;
    }
    for (int i = 0; i < L; i++)
        assert_int_equal(rbatch_add(q, 0, 1, 61, argv, lens, on_reply, &longs[i]), 0);
    run_until(all_answered, &(struct all){longs, L});
    for (int i = 0; i < L; i++)
        assert_int_equal(longs[i].count, i + 1);
    assert_int_equal(batches(), 5);
    bridge_down();
}

/* Calls of two scripts in one pass: each run of one script is one EVALSHA,
 * in the order held, and each call gets its own script's reply; a call
 * nobody waits for (no callback) runs all the same. */
static void test_a_new_script_starts_a_new_batch(void **state)
{
    (void)state;
    bridge_up();
    struct rbatch *q = rbatch_new(rb);
    h_redis_cli(&redis, (const char *const[]){"DEL", "batches", "batches2", "f", NULL});
    struct got g[5] = {0};
    static const int script_of[5] = {0, 0, 1, 1, 0};
    for (int i = 0; i < 5; i++) {
        const char *argv[] = {"f", "ab"};
        size_t lens[] = {1, 2};
        assert_int_equal(rbatch_add(q, script_of[i], 1, 2, argv, lens, on_reply, &g[i]), 0);
    }
    const char *argv[] = {"f", "ab"};
    size_t lens[] = {1, 2};
    assert_int_equal(rbatch_add(q, 0, 1, 2, argv, lens, NULL, NULL), 0);
    run_until(all_answered, &(struct all){g, 5});
    for (int i = 0; i < 5; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].count, i + 1); /* run in the order held */
        assert_string_equal(g[i].arg, script_of[i] ? "abab" : "ab");
    }
    run_until_count("f", 6);
    assert_int_equal(batches(), 2); /* [0 0] and [0 0] around [1 1] */
    assert_int_equal(h_redis_int(&redis, (const char *const[]){"GET", "batches2", NULL}), 1);
    bridge_down();
}

static void test_held_calls_hear_of_the_end_once(void **state)
{
    (void)state;
    bridge_up();
    struct rbatch *q = rbatch_new(rb);
    struct got g[3] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(add(q, "d", "held", &g[i]), 0);
    bridge_down(); /* before the loop could queue them */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].calls, 1);
        /* not "unknown" (NULL): they never left, so a retry is safe */
        assert_false(g[i].null);
        assert_int_equal(g[i].unqueued, -ENOTCONN);
    }
}

/* A call queued and then lost with the connection may have run: NULL, not
 * the batcher's "not queued". */
static void test_a_call_lost_after_queueing_is_unknown(void **state)
{
    (void)state;
    bridge_up();
    struct rbatch *q = rbatch_new(rb);
    struct got g = {0};
    assert_int_equal(add(q, "f", "queued", &g), 0);
    rbridge_flush(rb); /* queued and written, not yet answered */
    bridge_down();
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.unqueued, 0);
}

/* A batch the bridge refuses for a reason of its own (here a script it
 * was not given: a broker bug) fails its calls as not queued, and does not
 * blame the broker's memory. */
static void test_a_batch_the_bridge_refuses_is_not_queued(void **state)
{
    (void)state;
    bridge_up();
    struct rbatch *q = rbatch_new(rb);
    struct got g = {0};
    const char *argv[] = {"k", "v"};
    size_t lens[] = {1, 1};
    assert_int_equal(rbatch_add(q, 7, 1, 2, argv, lens, on_reply, &g), 0);
    run_until(all_answered, &(struct all){&g, 1});
    assert_int_equal(g.unqueued, -ECANCELED);
    assert_null(strstr(g.error, "memory"));
    assert_non_null(strstr(g.error, "not queued"));
    bridge_down();
}

static void test_a_bridge_that_is_down_refuses(void **state)
{
    (void)state;
    bridge_up();
    struct rbatch *q = rbatch_new(rb);
    struct got g = {0};
    const char *argv[140] = {0};
    size_t lens[140] = {0};
    for (int i = 0; i < 140; i++)
        argv[i] = "k";
    assert_int_equal(rbatch_add(q, 0, 70, 140, argv, lens, on_reply, &g), -EINVAL); /* keys */
    assert_int_equal(rbatch_add(q, 0, 1, 70, argv, lens, on_reply, &g), -EINVAL); /* arguments */
    h_redis_stop(&redis);
    bool down = false;
    for (int i = 0; i < 100 && !down; i++) { /* the bridge notices the close */
        sd_event_run(ev, 50 * 1000);
        down = rbridge_room(rb) == -ENOTCONN;
    }
    assert_true(down);
    assert_int_equal(add(q, "e", "refused", &g), -ENOTCONN);
    assert_int_equal(g.calls, 0);
    bridge_down();
    assert_int_equal(g.calls, 0);
    assert_int_equal(h_redis_restart(&redis, h_tmpdir()), 0);
}

/* A call taken while the connection had room is sent, even when what
 * waits to be sent is within a PING of the bound: the PING that goes first
 * is left out then, not the call. Each round waits with a PUBLISH of a
 * different size (not sent until the loop runs), so that some round falls
 * in those last bytes. */
static void test_a_call_taken_is_not_refused_for_its_ping(void **state)
{
    (void)state;
    enum { BOUND = 1000 };
    bridge_up_bounded(BOUND);
    struct rbatch *q = rbatch_new(rb);
    static char payload[BOUND];
    memset(payload, 'p', sizeof payload);
    int taken = 0;
    for (size_t plen = BOUND - 60; plen < BOUND - 20; plen++) {
        assert_int_equal(rbridge_publish(rb, "c", 1, payload, plen), 0);
        struct got g = {0};
        int rc = add(q, "pinged", "x", &g);
        if (rc == -ENOBUFS) { /* no room left by the PUBLISH: refused at once */
            assert_int_equal(g.calls, 0);
        } else {
            assert_int_equal(rc, 0);
            taken++;
            run_until(all_answered, &(struct all){&g, 1});
            assert_false(g.null);
            assert_int_equal(g.count, taken);
        }
        run_until(nothing_in_flight, NULL); /* all written and answered */
    }
    assert_true(taken > 14);
    bridge_down();
}

/* ---- raw connections to the test's Redis -------------------------------- */

/* Over TCP with SO_TIMESTAMPNS: on loopback a segment is stamped when the
 * sender's write queues it, so two connections' stamps tell which of them
 * Redis wrote first. */
static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)redis.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int one = 1;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one), 0);
    return fd;
}

static void raw_send(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Reads until `want` is in what this call read (5 s at most) and returns
 * the stamp of the read that completed it, in ns; 0 when it had none (the
 * kernel turns stamping on a moment after the first socket asks). */
static int64_t raw_wait(int fd, const char *want)
{
    char buf[8192];
    size_t len = 0;
    int64_t stamp = 0, deadline = h_now_ms() + 5000;
    buf[0] = 0;
    while (!strstr(buf, want)) {
        assert_true(h_now_ms() < deadline);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        char ctl[CMSG_SPACE(sizeof(struct timespec))];
        struct iovec iov = {buf + len, sizeof buf - 1 - len};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        ssize_t n = recvmsg(fd, &m, 0);
        assert_true(n > 0);
        len += (size_t)n;
        buf[len] = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                stamp = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
            }
    }
    return stamp;
}

/* What the PING is for (redis.h, rbridge_publish_first), on this Redis: a
 * script's reply goes out before what it published, unless its caller had
 * a reply pending already. Should a Redis write them the other way round,
 * the first half fails, and the PING is no longer needed. */
static void test_a_ping_first_puts_the_message_before_the_reply(void **state)
{
    (void)state;
    int sub = raw_connect(), pub = raw_connect();
    raw_send(sub, "*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\nroom:t\r\n");
    raw_wait(sub, "room:t\r\n:1\r\n");
    static const char eval[] = "*3\r\n$4\r\nEVAL\r\n$43\r\n"
                               "redis.call('PUBLISH','room:t','m') return 7\r\n$1\r\n0\r\n";
    char both[sizeof eval + 16];
    snprintf(both, sizeof both, "*1\r\n$4\r\nPING\r\n%s", eval);
    bool stamped = false;
    for (int i = 0; i < 50 && !stamped; i++) {
        raw_send(pub, eval);
        int64_t reply = raw_wait(pub, ":7\r\n"), message = raw_wait(sub, "$1\r\nm\r\n");
        raw_send(pub, both);
        int64_t reply2 = raw_wait(pub, "+PONG\r\n:7\r\n");
        int64_t message2 = raw_wait(sub, "$1\r\nm\r\n");
        stamped = reply && message && reply2 && message2;
        if (!stamped) {
            usleep(20 * 1000);
            continue;
        }
        assert_true(reply < message);
        assert_true(message2 < reply2);
    }
    assert_true(stamped);
    close(sub);
    close(pub);
}

/* The batcher sends that PING right before each batch. */
static void test_each_batch_follows_a_ping(void **state)
{
    (void)state;
    bridge_up();
    struct rbatch *q = rbatch_new(rb);
    int mon = raw_connect();
    raw_send(mon, "*1\r\n$7\r\nMONITOR\r\n");
    raw_wait(mon, "+OK\r\n");
    for (int round = 0; round < 2; round++) {
        struct got g[3] = {0};
        for (int i = 0; i < 3; i++)
            assert_int_equal(add(q, "f", "x", &g[i]), 0);
        run_until(all_answered, &(struct all){g, 3});
    }
    /* MONITOR shows each command as it runs: "PING" then "EVALSHA", twice */
    char buf[16384];
    size_t len = 0;
    int64_t deadline = h_now_ms() + 5000;
    int evals = 0;
    while (evals < 2 && h_now_ms() < deadline) {
        struct pollfd p = {.fd = mon, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(mon, buf + len, sizeof buf - 1 - len);
        assert_true(n > 0);
        len += (size_t)n;
        buf[len] = 0;
        evals = 0;
        for (const char *e = buf; (e = strstr(e, "\"EVALSHA\"")); e++) {
            const char *line = e;
            while (line > buf && line[-1] != '\n')
                line--;
            assert_true(line - buf >= 8);
            const char *prev = line - 2; /* the previous line ends in "\r\n" */
            while (prev > buf && prev[-1] != '\n')
                prev--;
            assert_non_null(strstr(prev, "\"PING\"\r\n"));
            assert_true(strstr(prev, "\"PING\"\r\n") < line);
            evals++;
        }
    }
    assert_int_equal(evals, 2);
    close(mon);
    bridge_down();
}

static int setup(void **state)
{
    *state = &redis;
    return h_redis_start(&redis, h_tmpdir());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_pass_one_call_each_its_own_reply),
        cmocka_unit_test(test_a_new_script_starts_a_new_batch),
        cmocka_unit_test(test_held_calls_hear_of_the_end_once),
        cmocka_unit_test(test_a_call_lost_after_queueing_is_unknown),
        cmocka_unit_test(test_a_batch_the_bridge_refuses_is_not_queued),
        cmocka_unit_test(test_a_bridge_that_is_down_refuses),
        cmocka_unit_test(test_a_call_taken_is_not_refused_for_its_ping),
        cmocka_unit_test(test_a_ping_first_puts_the_message_before_the_reply),
        cmocka_unit_test(test_each_batch_follows_a_ping),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, redis_down));
}
