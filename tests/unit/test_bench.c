/* Unit tests for the load generator's accounting (bench/gen), driven
 * through account.c with connections that never touch a socket and a clock
 * the test sets: what counts as lost, duplicated or late, and when a step
 * fails. Its codecs are in test_bench_codec.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen.h"
#include "hist.h"
#include "seqwin.h"
#include "step.h"
#include "wsproto.h"

/* The loop's clock and random values (main.c has the real ones). */
static uint64_t fake_now = 1000ull * 1000000000ull;

uint64_t gen_clock(void)
{
    return fake_now;
}

uint32_t gen_rand(gen *g)
{
    (void)g;
    return 0x9e3779b9u;
}

#define MS 1000000ull

/* n connections in `rooms` rooms, the first `pubs` publishing, all joined.
 * Their fds are /dev/null, never written: output only piles up in `out`. */
static gen *mk_gen(uint32_t n, uint32_t rooms, uint32_t pubs)
{
    gen *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->o = (gen_opts){.conns = n, .rooms = rooms, .publishers = pubs, .nrates = 1,
                      .rates = {1}, .step_s = 1, .msg_bytes = 16, .stop_loss = 0.001,
                      .stop_p99_ms = 250, .hold_s = -1};
    g->n = n;
    g->c = calloc(n, sizeof *g->c);
    g->members = calloc(rooms, sizeof *g->members);
    g->dirty = calloc(n, sizeof *g->dirty);
    assert_true(g->c && g->members && g->dirty);
    for (uint32_t i = 0; i < n; i++) {
        g->c[i].fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        assert_true(g->c[i].fd >= 0);
        g->c[i].gidx = i;
        g->c[i].room = i % rooms;
        g->c[i].state = CS_JOINED;
        g->members[i % rooms]++;
    }
    g->joined = n;
    assert_int_equal(acct_init(g), 0);
    g->now = fake_now;
    return g;
}

static void free_gen(gen *g)
{
    for (uint32_t i = 0; i < g->n; i++)
        conn_close(g, &g->c[i]);
    free(g->c[0].pairs); /* the first connection's pairs start the one block */
    free(g->pubs);
    free(g->c);
    free(g->members);
    free(g->dirty);
    free(g);
}

/* The send phase of a step at `rate`, the 1 ms tick on time except for
 * [stall_from, stall_to) ms into it, when the generator does not run. */
static void send_phase_stalled(gen *g, step_stats *st, double rate, uint64_t stall_from,
                               uint64_t stall_to)
{
    acct_step_begin(g, st, rate);
    uint64_t t0 = g->step_t0;
    for (uint64_t ms = 0; ms <= (uint64_t)(g->o.step_s * 1000); ms++) {
        if (ms >= stall_from && ms < stall_to)
            continue;
        g->now = fake_now = t0 + ms * MS;
        acct_publish_due(g);
    }
    g->sending = 0;
    for (uint32_t i = 0; i < g->n; i++)
        g->c[i].out_len = 0; /* as if written */
}

/* The send phase of a step at `rate`, the 1 ms tick on time. */
static void send_phase(gen *g, step_stats *st, double rate)
{
    send_phase_stalled(g, st, rate, 0, 0);
}

/* Receiver r gets sender s's seq q, sent 1 ms ago. */
static void deliver(gen *g, uint32_t r, uint32_t s, uint32_t q)
{
    char b[256];
    int n = snprintf(b, sizeof b,
                     "{\"type\":\"new_message\",\"payload\":{\"room\":\"bench-%u\","
                     "\"message\":\"%u %u %llu xxxx\"}}",
                     s % g->o.rooms, s, q, (unsigned long long)(g->now - MS));
    acct_on_message(g, &g->c[r], (const uint8_t *)b, (size_t)n);
}

/* Every member of s's room gets s's seqs [lo, hi]. */
static void deliver_all(gen *g, uint32_t s, uint32_t lo, uint32_t hi)
{
    for (uint32_t r = 0; r < g->n; r++)
        if (g->c[r].room == g->c[s].room)
            for (uint32_t q = lo; q <= hi; q++)
                deliver(g, r, s, q);
}

static step_limits limits(const gen *g)
{
    return (step_limits){.loss = g->o.stop_loss, .p99_ms = g->o.stop_p99_ms,
                         .pace_lag_ms = STEP_PACE_LAG_MS, .sent_fraction = STEP_SENT_FRACTION};
}

/* Ends the step and judges it. */
static uint32_t end_step(gen *g, step_stats *st)
{
    g->now = fake_now += 100 * MS;
    acct_step_end(g);
    step_limits l = limits(g);
    return step_judge(st, &l);
}

#define BIT(n) (1u << STEP_B_##n)

static void test_seqwin_a_late_copy_fills_only_its_own_gap(void **state)
{
    (void)state;
    sw_pair p = {0};
    uint64_t lost = 0;
    assert_int_equal(sizeof p, 16); /* the cost per pair seqwin.h states */
    assert_int_equal(sw_receive(&p, 1, 1, &lost), SW_NEW);
    assert_int_equal(sw_receive(&p, 4, 1, &lost), SW_NEW); /* gaps 2 and 3 */
    assert_int_equal(sw_missing(&p, 1, 4), 2);
    assert_int_equal(sw_receive(&p, 3, 1, &lost), SW_FILLED);
    /* a second copy of 3 is a duplicate: it does not fill 2's gap */
    assert_int_equal(sw_receive(&p, 3, 1, &lost), SW_DUPLICATE);
    assert_int_equal(sw_missing(&p, 1, 4), 1);
    assert_int_equal(sw_receive(&p, 4, 1, &lost), SW_DUPLICATE);
    assert_int_equal(sw_receive(&p, 1, 1, &lost), SW_DUPLICATE);
    assert_int_equal(sw_missing(&p, 1, 4), 1);
    assert_int_equal(sw_receive(&p, 2, 1, &lost), SW_FILLED);
    assert_int_equal(sw_missing(&p, 1, 4), 0);
    assert_int_equal(sw_missing(&p, 1, 6), 2); /* 5 and 6, above the highest */
    assert_int_equal(sw_missing(&p, 6, 5), 0);
    assert_int_equal(lost, 0);
}

static void test_seqwin_gaps_leave_the_window_lost_once(void **state)
{
    (void)state;
    sw_pair p = {0};
    uint64_t lost = 0;
    sw_receive(&p, 1, 1, &lost);
    /* 2..99 skipped: the window keeps 36..99, 2..35 are lost for good */
    assert_int_equal(sw_receive(&p, 100, 1, &lost), SW_NEW);
    assert_int_equal(lost, 34);
    assert_int_equal(sw_missing(&p, 1, 100), 64);
    assert_int_equal(sw_missing(&p, 50, 120), 50 + 20);
    assert_int_equal(sw_receive(&p, 10, 1, &lost), SW_STALE); /* counted already */
    assert_int_equal(sw_receive(&p, 36, 1, &lost), SW_FILLED);
    /* only gaps at or above the floor (the step's first seq) are this step's */
    sw_pair p2 = p;
    uint64_t lost2 = 0;
    assert_int_equal(sw_receive(&p2, 200, 90, &lost2), SW_NEW); /* 90..99, 101..135 */
    assert_int_equal(lost2, 10 + 35);
    lost = 0;
    assert_int_equal(sw_receive(&p, 200, 1, &lost), SW_NEW); /* 37..99, 101..135 */
    assert_int_equal(lost, 63 + 35);
    assert_int_equal(sw_missing(&p, 1, 250), 64 + 50);
    /* a jump of more than a window from nothing */
    sw_pair p3 = {0};
    lost = 0;
    assert_int_equal(sw_receive(&p3, 1000, 1, &lost), SW_NEW);
    assert_int_equal(lost, 1000 - 1 - 64);
    assert_int_equal(sw_missing(&p3, 1, 1000), 64);
}

static void test_a_duplicate_does_not_hide_a_loss(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 10);
    assert_int_equal(st->sent, 10);
    assert_int_equal(st->expected, 20);
    deliver_all(g, 0, 1, 4);
    deliver_all(g, 0, 6, 10);
    deliver(g, 0, 0, 5); /* the sender has its 5, the other member never */
    deliver(g, 1, 0, 7); /* a second copy */
    uint32_t f = end_step(g, st);
    assert_int_equal(st->delivered, 19);
    assert_int_equal(st->duplicated, 1);
    assert_int_equal(st->out_of_order, 1);
    assert_int_equal(st->lost, 1);
    assert_true(f & BIT(LOSS));
    free(st);
    free_gen(g);
}

static void test_a_late_delivery_fills_its_own_gap(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 10);
    deliver_all(g, 0, 1, 10);
    g->o.stop_loss = 1; /* this test is about the counts */
    uint32_t fail = end_step(g, st);
    assert_int_equal(fail, 0);
    assert_int_equal(st->lost, 0);

    /* the next step: the other member misses 13 and 17; 17 comes late, twice */
    send_phase(g, st, 10);
    deliver_all(g, 0, 11, 12);
    deliver_all(g, 0, 14, 16);
    deliver_all(g, 0, 18, 20);
    deliver(g, 0, 0, 13);
    deliver(g, 0, 0, 17);
    deliver(g, 1, 0, 17);
    deliver(g, 1, 0, 17);
    end_step(g, st);
    assert_int_equal(st->out_of_order, 3); /* the sender's 13 and 17, the other's 17 */
    assert_int_equal(st->duplicated, 1);
    assert_int_equal(st->delivered, 19);
    assert_int_equal(st->lost, 1); /* 13, per pair */

    /* and in the step after, 13 arrives: late, neither delivered nor lost */
    send_phase(g, st, 10);
    deliver(g, 1, 0, 13);
    deliver_all(g, 0, 21, 30);
    end_step(g, st);
    assert_int_equal(st->late, 1);
    assert_int_equal(st->delivered, 20);
    assert_int_equal(st->lost, 0);
    free(st);
    free_gen(g);
}

static void test_a_step_with_send_blocked_fails(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    /* the publisher's output is nearly full: the kernel took nothing */
    static uint8_t filler[GEN_OUT_CAP - 200];
    assert_int_equal(conn_send(g, &g->c[0], WS_BIN, filler, sizeof filler), 0);
    acct_step_begin(g, st, 10);
    uint64_t t0 = g->step_t0;
    for (uint64_t ms = 0; ms <= 1000; ms++) {
        g->now = fake_now = t0 + ms * MS;
        acct_publish_due(g);
    }
    assert_true(st->sent > 0 && st->sent < 10);
    assert_int_equal(st->sent + st->send_blocked, 10);
    deliver_all(g, 0, 1, (uint32_t)st->sent); /* everything sent came back */
    uint32_t f = end_step(g, st);
    assert_int_equal(st->lost, 0);
    assert_int_equal(f, BIT(SEND_BLOCKED) | BIT(SENT_BELOW_SCHEDULE));
    assert_false(st->pass);
    free(st);
    free_gen(g);
}

static void test_a_generator_behind_schedule_fails(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 100);
    deliver_all(g, 0, 1, 100);
    assert_int_equal(end_step(g, st), 0);
    assert_true(st->pace_lag_max <= 1 * MS);
    /* the generator does not run for 60 ms: those sends go out late */
    send_phase_stalled(g, st, 100, 300, 360);
    assert_int_equal(st->sent, 100);
    deliver_all(g, 0, 101, 200);
    assert_int_equal(end_step(g, st), BIT(BEHIND_SCHEDULE));
    assert_true(st->pace_lag_max >= 59 * MS);
    free(st);
    free_gen(g);
}

static void test_a_step_fails_on_closed_and_errors(void **state)
{
    (void)state;
    gen *g = mk_gen(3, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 10);
    deliver_all(g, 0, 1, 10);
    conn_close(g, &g->c[2]); /* the server hung up on a member */
    const char err[] = "{\"type\":\"error\",\"payload\":{\"code\":\"too_many_requests\"}}";
    acct_on_message(g, &g->c[0], (const uint8_t *)err, sizeof err - 1);
    assert_int_equal(end_step(g, st), BIT(CLOSED) | BIT(SERVER_ERRORS));
    assert_int_equal(st->lost, 0);
    /* a refused connection or join at set-up fails every step after it */
    g->connect_errors = 1;
    g->join_errors = 2;
    send_phase(g, st, 10);
    deliver_all(g, 0, 11, 20);
    assert_int_equal(end_step(g, st), BIT(CONNECT_ERRORS) | BIT(JOIN_ERRORS));
    assert_int_equal(st->join_errors, 2);
    /* a member closed, or an error event, outside any step (at set-up or
     * between steps) fails the next step: it runs with fewer receivers */
    g->connect_errors = g->join_errors = 0;
    conn_close(g, &g->c[1]);
    acct_on_message(g, &g->c[0], (const uint8_t *)err, sizeof err - 1);
    send_phase(g, st, 10);
    deliver_all(g, 0, 21, 30);
    assert_int_equal(end_step(g, st), BIT(CLOSED) | BIT(SERVER_ERRORS));
    assert_int_equal(st->closed, 1);
    assert_int_equal(st->server_errors, 1);
    send_phase(g, st, 10); /* and only that one */
    deliver_all(g, 0, 31, 40);
    assert_int_equal(end_step(g, st), 0);
    free(st);
    free_gen(g);
}

/* A step the verdict would pass: 1000 of 1000 sent, nothing lost, 1 ms. */
static void clean_step(step_stats *s)
{
    memset(s, 0, offsetof(step_stats, lat));
    bh_reset(&s->lat);
    s->rate = 1000;
    s->seconds = 1;
    s->scheduled = s->sent = 1000;
    s->expected = s->delivered = 10000;
    for (int i = 0; i < 100; i++)
        bh_record(&s->lat, MS);
}

/* confab-bench's limits with its default --stop-loss and --stop-p99-ms */
static const step_limits default_limits = {.loss = 0.001,
                                           .p99_ms = 250,
                                           .pace_lag_ms = STEP_PACE_LAG_MS,
                                           .sent_fraction = STEP_SENT_FRACTION};

static void test_step_verdict(void **state)
{
    (void)state;
    static step_stats s;
    const step_limits l = default_limits;
    clean_step(&s);
    assert_int_equal(step_judge(&s, &l), 0);
    assert_true(s.pass);
    s.sent = 999; /* 99.9 % of the schedule is enough */
    assert_int_equal(step_judge(&s, &l), 0);
    s.sent = 998;
    assert_int_equal(step_judge(&s, &l), BIT(SENT_BELOW_SCHEDULE));
    assert_false(s.pass);
    clean_step(&s);
    s.pace_lag_max = 50 * MS;
    assert_int_equal(step_judge(&s, &l), 0);
    s.pace_lag_max = 51 * MS;
    assert_int_equal(step_judge(&s, &l), BIT(BEHIND_SCHEDULE));
    clean_step(&s);
    s.lost = 10;
    assert_int_equal(step_judge(&s, &l), 0);
    s.lost = 11;
    assert_int_equal(step_judge(&s, &l), BIT(LOSS));
    clean_step(&s);
    bh_record(&s.lat, 300 * MS);
    bh_record(&s.lat, 300 * MS);
    assert_int_equal(step_judge(&s, &l), BIT(P99));
    assert_string_equal(step_reason_name(STEP_B_SEND_BLOCKED), "send_blocked");
    assert_string_equal(step_reason_name(STEP_B_BEHIND_SCHEDULE), "generator_behind_schedule");
    assert_string_equal(step_reason_name(STEP_NREASONS), "?");
}

/* A ramp runs a step once more only when the generator alone failed it, and
 * only once: a server that is slow, or a generator that cannot keep up,
 * still ends the ramp. */
static void test_a_ramp_reruns_only_the_generators_own_lateness(void **state)
{
    (void)state;
    static step_stats s;
    const step_limits l = default_limits;
    clean_step(&s);
    step_judge(&s, &l);
    assert_false(step_only_late(&s));
    assert_int_equal(step_after(&s, 1), STEP_NEXT_RATE);
    s.pace_lag_max = 68 * MS; /* one stall of the VM, as at 2000 msg/s in a full run */
    assert_int_equal(step_judge(&s, &l), BIT(BEHIND_SCHEDULE));
    assert_true(step_only_late(&s));
    assert_int_equal(step_after(&s, 1), STEP_SAME_RATE);
    assert_int_equal(step_after(&s, 0), STEP_STOP); /* without --rerun-late-steps */
    s.rerun = 1; /* late again on its second run */
    assert_int_equal(step_after(&s, 1), STEP_STOP);
    s.rerun = 0;
    s.sent = 998; /* a late generator may also send below its schedule */
    assert_int_equal(step_judge(&s, &l), BIT(BEHIND_SCHEDULE) | BIT(SENT_BELOW_SCHEDULE));
    assert_int_equal(step_after(&s, 1), STEP_SAME_RATE);
    bh_record(&s.lat, 300 * MS); /* and the server over the p99 bound: a failure */
    bh_record(&s.lat, 300 * MS);
    assert_true(step_judge(&s, &l) & BIT(P99));
    assert_false(step_only_late(&s));
    assert_int_equal(step_after(&s, 1), STEP_STOP);
    clean_step(&s);
    s.pace_lag_max = 68 * MS;
    s.lost = 11;
    step_judge(&s, &l);
    assert_int_equal(step_after(&s, 1), STEP_STOP);
    clean_step(&s);
    s.sent = 998; /* below schedule without being late: not the stall case */
    step_judge(&s, &l);
    assert_false(step_only_late(&s));
    assert_int_equal(step_after(&s, 1), STEP_STOP);
}

static void test_a_step_with_nothing_expected_fails(void **state)
{
    (void)state;
    static step_stats s;
    const step_limits l = {.loss = 1, .p99_ms = 1e6, .pace_lag_ms = STEP_PACE_LAG_MS,
                           .sent_fraction = STEP_SENT_FRACTION};
    clean_step(&s);
    s.expected = s.delivered = 0;
    /* the same loss for the verdict and the report: not a clean 0 */
    assert_true(step_loss(&s) == 1.0);
    assert_int_equal(step_judge(&s, &l), BIT(NOTHING_EXPECTED));
    /* through the accounting: no publisher is in its room */
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    g->c[0].state = CS_JOINING;
    send_phase(g, st, 10);
    assert_int_equal(end_step(g, st), BIT(NOTHING_EXPECTED) | BIT(LOSS) | BIT(SENT_BELOW_SCHEDULE));
    assert_int_equal(st->sent, 0);
    g->c[0].state = CS_JOINED;
    free(st);
    free_gen(g);
}

static void test_rates_over_the_time_they_took(void **state)
{
    (void)state;
    static step_stats s;
    clean_step(&s);
    s.t0 = 5000 * MS;
    s.t_last = s.t0 + 2000 * MS; /* the server was still delivering a second after */
    assert_true(step_delivery_seconds(&s) == 2.0);
    assert_true(step_delivered_per_s(&s) == 5000.0);
    s.t_last = s.t0 + 900 * MS; /* never less than the step */
    assert_true(step_delivered_per_s(&s) == 10000.0);
    s.t_last = 0;
    assert_true(step_delivered_per_s(&s) == 10000.0);
    s.sent = 500;
    assert_true(step_sent_per_s(&s) == 500.0);
    s.seconds = 2;
    assert_true(step_sent_per_s(&s) == 250.0);
    /* through the accounting: the time of the last delivery is kept */
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 10);
    g->now = st->t0 + 4000 * MS;
    deliver_all(g, 0, 1, 10);
    end_step(g, st);
    assert_true(st->t_last == st->t0 + 4000 * MS);
    assert_true(step_delivered_per_s(st) == 5.0);
    free(st);
    free_gen(g);
}

static void test_receive_times_are_taken_per_read(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    g->rbuf = malloc(GEN_MAX_FRAME + 64 + GEN_READ_SIZE);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conn *c = &g->c[1];
    close(c->fd);
    c->fd = sv[0];

    /* the handshake: epoll_wait returned at 10 ms, this socket is read at 14 */
    uint64_t t = fake_now;
    c->state = CS_UPGRADING;
    c->t0 = t;
    g->inflight = 1;
    g->t_setup0 = t;
    ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", c->accept);
    char ok[256];
    int n = snprintf(ok, sizeof ok, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                     "Sec-WebSocket-Protocol: confab.v1\r\n\r\n", c->accept);
    assert_int_equal(write(sv[1], ok, (size_t)n), n);
    g->now = t + 10 * MS;
    fake_now = t + 14 * MS;
    conn_event(g, 1, EPOLLIN);
    assert_int_equal(c->state, CS_JOINING);
    assert_int_equal(g->hs.max, 14 * MS);
    assert_true(g->t_last_handshake == t + 14 * MS);
    const char joined[] = "{\"type\":\"joined\",\"payload\":{}}";
    acct_on_message(g, c, (const uint8_t *)joined, sizeof joined - 1);
    assert_int_equal(c->state, CS_JOINED);

    /* a delivery sent at 15 ms: epoll_wait returned at 16, the read is at 19 */
    step_stats *st = calloc(1, sizeof *st);
    acct_step_begin(g, st, 10);
    g->c[0].seq = 1; /* as if published */
    char msg[200];
    uint8_t frame[256] = {0x81};
    n = snprintf(msg, sizeof msg,
                 "{\"type\":\"new_message\",\"payload\":{\"message\":\"0 1 %llu x\"}}",
                 (unsigned long long)(t + 15 * MS));
    frame[1] = (uint8_t)n;
    memcpy(frame + 2, msg, (size_t)n);
    assert_int_equal(write(sv[1], frame, (size_t)n + 2), n + 2);
    g->now = t + 16 * MS;
    fake_now = t + 19 * MS;
    conn_event(g, 1, EPOLLIN);
    assert_int_equal(st->delivered, 1);
    assert_int_equal(st->lat.max, 4 * MS);
    g->cur = NULL;
    close(sv[1]);
    free(st);
    free(g->rbuf);
    free_gen(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seqwin_a_late_copy_fills_only_its_own_gap),
        cmocka_unit_test(test_seqwin_gaps_leave_the_window_lost_once),
        cmocka_unit_test(test_a_duplicate_does_not_hide_a_loss),
        cmocka_unit_test(test_a_late_delivery_fills_its_own_gap),
        cmocka_unit_test(test_a_step_with_send_blocked_fails),
        cmocka_unit_test(test_a_generator_behind_schedule_fails),
        cmocka_unit_test(test_a_step_fails_on_closed_and_errors),
        cmocka_unit_test(test_step_verdict),
        cmocka_unit_test(test_a_ramp_reruns_only_the_generators_own_lateness),
        cmocka_unit_test(test_a_step_with_nothing_expected_fails),
        cmocka_unit_test(test_rates_over_the_time_they_took),
        cmocka_unit_test(test_receive_times_are_taken_per_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
