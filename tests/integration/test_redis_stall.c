/* The broker's Redis bridge (broker/redis.c) against a real Redis that stops
 * for a while (SIGSTOP): a command that waits less than the reply timeout
 * (10 s) is answered once Redis runs again, however long the connection had
 * been idle before it was sent; one that waits longer makes the bridge
 * reset the connection (the command hears NULL) and connect again.
 *
 * Idle connections exchange a PING or the delivery canary every ~5 s, so the
 * last reply can be ~5 s old when a command is sent: the timeout must count
 * from the command, not from that reply. The bridge is linked in and its
 * connection state read (redis_int.h) to send the command when the last
 * reply is old enough to tell the two apart. The canary goes out over a
 * full queue; the commands in flight are bounded, and their ring given back
 * when the connection drops. Takes ~45 s. */
#include "common.h"

#include <signal.h>
#include <sys/resource.h>
#include <systemd/sd-event.h>

#include "clock.h"
#include "config.h"
#include "redis.h"
#include "redis_int.h"

/* the bridge's reply timeout, from redis.c */
#define REPLY_TIMEOUT_MS 10000

static struct h_redis redis;
static sd_event *ev;
static struct rbridge *rb;
static const char *const scripts[] = {"return 7"};

struct got {
    int calls;
    bool null;
    long long value;
    int64_t at;
};

static void on_reply(void *ud, const redisReply *r)
{
    struct got *g = ud;
    g->calls++;
    g->null = r == NULL;
    g->value = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    g->at = cf_mono_ms();
}

static void on_message(void *ud, const char *name, size_t len, const char *p, size_t plen)
{
    (void)ud, (void)name, (void)len, (void)p, (void)plen;
}

/* Runs the loop (as the broker's run_loop does) until done or timeout_ms. */
static bool run_until(bool (*done)(void *), void *ud, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    while (!done(ud) && h_now_ms() < deadline) {
        assert_true(sd_event_run(ev, 50 * 1000) >= 0);
        rbridge_flush(rb);
    }
    return done(ud);
}

static bool never(void *ud)
{
    (void)ud;
    return false;
}

static bool bridge_ready(void *ud)
{
    (void)ud;
    return rbridge_ready(rb) && rbridge_room(rb) == 0;
}

static bool answered(void *ud)
{
    return ((struct got *)ud)->calls > 0;
}

/* The publisher has nothing in flight and its last reply is at least ms old. */
static int64_t g_quiet_ms;
static bool quiet(void *ud)
{
    (void)ud;
    return rb->pub.pending == 0 && cf_mono_ms() - rb->pub.last_rx >= g_quiet_ms;
}

static uint64_t reconnects(void)
{
    struct rbridge_stats s;
    rbridge_stats(rb, &s);
    return s.reconnects;
}

static int eval(struct got *g)
{
    const char *argv[] = {"0"};
    size_t lens[] = {1};
    return rbridge_eval(rb, 0, 1, argv, lens, on_reply, g);
}

static int setup(void **state)
{
    (void)state;
    if (h_redis_start(&redis, h_tmpdir()) < 0)
        return -1;
    struct cf_redis_addr addr;
    if (sd_event_new(&ev) < 0 || cf_redis_addr_parse(redis.addr, &addr) < 0)
        return -1;
    const struct rbridge_cbs cbs = {.on_message = on_message};
    rb = rbridge_new(ev, &addr, NULL, 1 << 20, scripts, 1, &cbs, NULL);
    return rb ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    h_kill(&redis.proc, SIGCONT); /* in case a test failed while it was stopped */
    rbridge_free(rb);
    ev = sd_event_unref(ev);
    h_redis_stop(&redis);
    return 0;
}

/* Stopped for 8.5 s, with the last reply 3.5 s old when the command was
 * sent: counted from that reply, the timeout would pass 1.5 s before Redis
 * runs again. */
static void test_a_command_after_idle_waits_its_whole_timeout(void **state)
{
    (void)state;
    assert_true(run_until(bridge_ready, NULL, 10000));
    g_quiet_ms = 3500;
    assert_true(run_until(quiet, NULL, 10000));
    uint64_t before = reconnects();

    assert_int_equal(h_kill(&redis.proc, SIGSTOP), 0);
    struct got g = {0};
    int64_t sent = cf_mono_ms();
    int64_t idle = sent - rb->pub.last_rx;
    assert_int_equal(eval(&g), 0);
    run_until(never, NULL, 8500);
    if (g.calls)
        fail_msg("answered (%s) %lld ms after the command, %lld ms after the last reply, "
                 "while Redis was stopped",
                 g.null ? "NULL: connection reset" : "a reply", (long long)(g.at - sent),
                 (long long)(g.at - sent + idle));
    assert_int_equal(h_kill(&redis.proc, SIGCONT), 0);

    assert_true(run_until(answered, &g, 5000));
    printf("idle %lld ms before the command; answered %lld ms after it\n", (long long)idle,
           (long long)(g.at - sent));
    assert_false(g.null); /* NULL: the connection was reset, the outcome lost */
    assert_int_equal(g.value, 7);
    assert_int_equal(reconnects(), before);
}

/* Stopped for longer than the timeout: the connection is reset no sooner
 * than the timeout after the command, and comes back once Redis runs. */
static void test_a_command_unanswered_past_its_timeout_resets(void **state)
{
    (void)state;
    assert_true(run_until(bridge_ready, NULL, 10000));
    uint64_t before = reconnects();
    assert_int_equal(h_kill(&redis.proc, SIGSTOP), 0);
    struct got g = {0};
    int64_t sent = cf_mono_ms();
    assert_int_equal(eval(&g), 0);
    bool reset = run_until(answered, &g, REPLY_TIMEOUT_MS + 5000);
    assert_int_equal(h_kill(&redis.proc, SIGCONT), 0);
    assert_true(reset);
    printf("reset %lld ms after the command\n", (long long)(g.at - sent));
    assert_true(g.null);
    assert_true(g.at - sent >= REPLY_TIMEOUT_MS);
    assert_true(reconnects() > before);

    assert_true(run_until(bridge_ready, NULL, 10000));
    struct got again = {0};
    assert_int_equal(eval(&again), 0);
    assert_true(run_until(answered, &again, 5000));
    assert_int_equal(again.value, 7);
}

/* A queue of ~48 MiB toward a Redis that was stopped: written out in
 * pieces as Redis reads it, every command answered, in order. hiredis'
 * own writer moved the rest of the buffer to its front after each piece,
 * gigabytes of copying for one queue: the bridge's CPU is printed. */
struct order {
    int sent, answered, wrong;
};

static void in_order(void *ud, const redisReply *r)
{
    struct order *o = ud;
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != 7)
        o->wrong++;
    o->answered++;
}

static bool all_answered(void *ud)
{
    const struct order *o = ud;
    return o->answered == o->sent;
}

static int64_t cpu_us(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (int64_t)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000 + u.ru_utime.tv_usec +
           u.ru_stime.tv_usec;
}

/* Stops Redis and queues commands of 4 KiB until the bridge refuses one
 * for its full queue. */
static void stop_and_fill(struct order *o)
{
    static char arg[4096];
    memset(arg, 'x', sizeof arg);
    const char *argv[] = {"0", arg};
    size_t lens[] = {1, sizeof arg};
    assert_int_equal(h_kill(&redis.proc, SIGSTOP), 0);
    int rc;
    while ((rc = rbridge_eval(rb, 0, 2, argv, lens, in_order, o)) == 0) {
        if (++o->sent % 256 == 0)
            rbridge_flush(rb); /* as the loop would between batches: fills the socket */
    }
    assert_int_equal(rc, -ENOBUFS);
}

/* The setup's bridge replaced by one whose queue is bounded at max_queue. */
static void bridge_with_queue(size_t max_queue)
{
    rbridge_free(rb);
    struct cf_redis_addr addr;
    assert_int_equal(cf_redis_addr_parse(redis.addr, &addr), 0);
    const struct rbridge_cbs cbs = {.on_message = on_message};
    rb = rbridge_new(ev, &addr, NULL, max_queue, scripts, 1, &cbs, NULL);
    assert_non_null(rb);
    assert_true(run_until(bridge_ready, NULL, 10000));
}

static void test_a_full_queue_drains_in_order(void **state)
{
    (void)state;
    bridge_with_queue(48 << 20);

    struct order o = {0};
    stop_and_fill(&o);
    assert_true(o.sent > 10000);
    int64_t cpu = cpu_us(), at = h_now_ms();
    assert_int_equal(h_kill(&redis.proc, SIGCONT), 0);
    assert_true(run_until(all_answered, &o, 60000));
    printf("%d commands (%d MiB) drained in %lld ms, %lld ms of this process' CPU\n", o.sent,
           (int)((int64_t)o.sent * 4096 >> 20), (long long)(h_now_ms() - at),
           (long long)((cpu_us() - cpu) / 1000));
    assert_int_equal(o.wrong, 0);
}

static bool none_waits(void *ud)
{
    (void)ud;
    return rb->pub.w_count == 0;
}

static bool ring_shrunk(void *ud)
{
    (void)ud;
    return rb->pub.w_cap == 64;
}

/* Commands taken by a Redis that does not answer (stopped here; a proxy
 * would read them too) wait for their replies outside the queue's bytes:
 * at RBRIDGE_MAX_INFLIGHT the bridge refuses more, as for a full queue,
 * though its bytes are far from the bound; the delivery canary still goes.
 * Once they are answered, the ring of waiters, grown to hold them, is given
 * back at the next health tick. */
static void test_commands_in_flight_are_bounded(void **state)
{
    (void)state;
    bridge_with_queue(64 << 20);
    uint64_t before = reconnects();

    assert_int_equal(h_kill(&redis.proc, SIGSTOP), 0);
    int taken = 0, rc = 0;
    for (int i = 0; rb->pub.w_count < RBRIDGE_MAX_INFLIGHT - 1 && rc == 0; i++) {
        rc = rbridge_publish(rb, "c", 1, "x", 1);
        taken += rc == 0;
        if (i % 4096 == 0)
            rbridge_flush(rb); /* written, as the loop would: into Redis' socket */
    }
    assert_int_equal(rc, 0);
    /* one place left: a batch (a PING and its EVALSHA) is not taken */
    assert_int_equal(rbridge_room(rb), -ENOBUFS);
    assert_int_equal(rbridge_publish_first(rb), -ENOBUFS);
    while (rc == 0) {
        rc = rbridge_publish(rb, "c", 1, "x", 1);
        taken += rc == 0;
    }
    printf("%d commands taken, %u in flight, %zu bytes not written\n", taken, rb->pub.w_count,
           rb__queued(&rb->pub));
    assert_int_equal(rc, -ENOBUFS);
    assert_int_equal(rb->pub.w_count, RBRIDGE_MAX_INFLIGHT);
    assert_true(rb__queued(&rb->pub) < 4u << 20);        /* the bytes' bound is 64 MiB */
    assert_true(taken >= (int)RBRIDGE_MAX_INFLIGHT - 8); /* a PING or canary may be in flight */

    assert_int_equal(rb->pub.w_cap, RBRIDGE_MAX_INFLIGHT);
    /* the delivery canary still goes: refused, it would reset a server
     * that delivers once its deadline passed */
    uint64_t seq = rb->canary_seq;
    rb__canary_send(rb);
    assert_int_equal(rb->canary_seq, seq + 1);
    assert_int_equal(rb->pub.w_count, RBRIDGE_MAX_INFLIGHT + 1);
    assert_int_equal(h_kill(&redis.proc, SIGCONT), 0);
    assert_true(run_until(none_waits, NULL, 10000));
    assert_true(run_until(ring_shrunk, NULL, 2500)); /* the health tick: every second */
    assert_int_equal(reconnects(), before);
    assert_int_equal(rbridge_publish(rb, "c", 1, "x", 1), 0);
}

static bool ring_given_back(void *ud)
{
    (void)ud;
    return rb->pub.w_count == 0 && rb->pub.w_cap == 64;
}

/* A connection that drops gives its ring of waiters back at once, once their
 * commands are failed: the health tick that shrinks it on a live connection
 * does not run while the connection is down, which may be for as long as
 * its server is away. */
static void test_a_dropped_connection_gives_its_ring_back(void **state)
{
    (void)state;
    bridge_with_queue(64 << 20);
    assert_int_equal(h_kill(&redis.proc, SIGSTOP), 0);
    for (int i = 0; i < 16384; i++) {
        assert_int_equal(rbridge_publish(rb, "c", 1, "x", 1), 0);
        if (i % 4096 == 0)
            rbridge_flush(rb);
    }
    assert_true(rb->pub.w_cap >= 16384);
    assert_int_equal(h_kill(&redis.proc, SIGKILL), 0); /* its sockets close: the bridge reads EOF */
    h_wait_exit(&redis.proc, 5000);
    assert_true(run_until(ring_given_back, NULL, 5000));
    assert_true(rb->pub.st != C_UP); /* given back by the drop, not by a tick */
}

static bool canary_back(void *ud)
{
    (void)ud;
    return rbridge_canary_ok(rb);
}

/* The canary's rounds come back through the real Redis; one forged by
 * someone who may PUBLISH on its channel (listed by PUBSUB CHANNELS), a
 * round number alone or with another random part, does not count: it kept
 * a wedged subscription looking healthy. */
static void test_a_forged_canary_does_not_count(void **state)
{
    (void)state;
    assert_true(run_until(bridge_ready, NULL, 10000));
    assert_true(run_until(canary_back, NULL, 10000));
    uint64_t seq = rb->canary_seq;
    assert_true(seq >= 1);
    char forged[3][48], real[48];
    snprintf(forged[0], sizeof forged[0], "%llu", (unsigned long long)seq);
    snprintf(forged[1], sizeof forged[1], "%llu:%016llx", (unsigned long long)seq,
             (unsigned long long)(rb->canary_nonce[seq % CANARY_RING] ^ 1));
    snprintf(forged[2], sizeof forged[2], "%llu:%016llx:", (unsigned long long)seq,
             (unsigned long long)rb->canary_nonce[seq % CANARY_RING]);
    snprintf(real, sizeof real, "%llu:%016llx", (unsigned long long)seq,
             (unsigned long long)rb->canary_nonce[seq % CANARY_RING]);
    for (int i = 0; i < 3; i++) {
        rb->canary_ok_at = 0;
        rb__canary_back(rb, forged[i], strlen(forged[i]));
        if (rb->canary_ok_at != 0)
            fail_msg("the forged canary \"%s\" counted", forged[i]);
    }
    rb__canary_back(rb, real, strlen(real));
    assert_true(rb->canary_ok_at != 0);
}

static bool round_back(void *ud)
{
    uint64_t seq = *(const uint64_t *)ud;
    return rb->canary_nonce[seq % CANARY_RING] == 0; /* a round that came back is spent */
}

/* A full queue (an overloaded Redis that reads slowly) refuses commands,
 * not the canary: refused too, no round went out while it stayed full, and
 * after the canary's deadline the bridge reset the connections of a
 * server that was delivering, failing every command in flight. */
static void test_the_canary_goes_out_over_a_full_queue(void **state)
{
    (void)state;
    assert_true(run_until(bridge_ready, NULL, 10000));
    assert_true(run_until(canary_back, NULL, 10000));
    struct order o = {0};
    stop_and_fill(&o);
    uint64_t seq = rb->canary_seq;
    rb__canary_send(rb);
    assert_int_equal(rb->canary_seq, seq + 1);
    seq++;
    assert_int_equal(h_kill(&redis.proc, SIGCONT), 0);
    assert_true(run_until(all_answered, &o, 10000));
    assert_int_equal(o.wrong, 0);
    assert_true(run_until(round_back, &seq, 5000)); /* behind what was queued before it */
    assert_true(rbridge_canary_ok(rb));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_command_after_idle_waits_its_whole_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_command_unanswered_past_its_timeout_resets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_full_queue_drains_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_forged_canary_does_not_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_canary_goes_out_over_a_full_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_commands_in_flight_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_dropped_connection_gives_its_ring_back, setup,
                                        teardown),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
