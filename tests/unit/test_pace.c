/* Unit tests for gateway/pace: when the next write to the clients may begin,
 * for a quiet, a busy and a saturated gateway. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pace.h"

#define T0 1000000000 /* an arbitrary monotonic time, us */
#define MANY 100000   /* clients a flush wrote: more than any of its time bounds */

/* A gateway that got output at `queued`, was allowed to flush at `due`
 * (0: at once), and flushed from `start` for `took` us: when the next may
 * begin. */
static int64_t next_due(struct pace *p, int64_t due, int64_t queued, int64_t start, int64_t took)
{
    p->due_us = due;
    pace_output(p, queued);
    assert_true(pace_may_flush(p, start));
    pace_flushed(p, start, start + took, MANY);
    return p->due_us;
}

/* A short flush: nothing to batch, the next write goes out at once */
static void test_quiet_gateway_writes_at_once(void **state)
{
    (void)state;
    struct pace p = {0};
    assert_int_equal(next_due(&p, 0, T0, T0 + 5, PACE_FROM_US - 1), 0);
    assert_true(pace_may_flush(&p, T0 + 6));
    assert_int_equal(p.saturated, 0);
}

/* A long flush that began on time: the next waits as long, at most
 * PACE_MAX_US */
static void test_busy_gateway_waits_as_long_as_it_wrote(void **state)
{
    (void)state;
    struct pace p = {0};
    int64_t end = T0 + 10 + 3000;
    assert_int_equal(next_due(&p, 0, T0, T0 + 10, 3000), end + 3000);
    assert_false(pace_may_flush(&p, end + 2999));
    assert_true(pace_may_flush(&p, end + 3000));
    /* on time after a wait: the output waited, but the flush began as due */
    int64_t due = p.due_us;
    assert_int_equal(next_due(&p, due, end + 5, due + PACE_LATE_US - 1, 40000),
                     due + PACE_LATE_US - 1 + 40000 + PACE_MAX_US);
    assert_int_equal(p.saturated, 0);
}

/* Passes that outlast the waits: the flush began late with output waiting,
 * so the next waits twice as long, at most PACE_SATURATED_MAX_US */
static void test_saturated_gateway_waits_twice_as_long(void **state)
{
    (void)state;
    struct pace p = {0};
    int64_t due = T0 + 20000, start = due + 13000;
    assert_int_equal(next_due(&p, due, T0, start, 20000), start + 20000 + 40000);
    assert_int_equal(p.saturated, 1);
    due = p.due_us;
    start = due + PACE_LATE_US;
    assert_int_equal(next_due(&p, due, due - 1, start, 30000),
                     start + 30000 + PACE_SATURATED_MAX_US);
    assert_int_equal(p.saturated, 2);
}

/* Late, but not a sign of a short CPU: output that came after the wait had
 * ended (a quiet spell), a start less than PACE_LATE_US late, or a short
 * flush */
static void test_late_alone_is_not_saturation(void **state)
{
    (void)state;
    struct pace p = {0};
    int64_t due = T0 + 5000;
    /* a quiet spell: the output came long after the wait ended */
    assert_int_equal(next_due(&p, due, due + 100000, due + 150000, 20000),
                     due + 150000 + 20000 + PACE_MAX_US);
    /* just under PACE_LATE_US late */
    due = T0 + 5000;
    assert_int_equal(next_due(&p, due, T0, due + PACE_LATE_US - 1, 4000),
                     due + PACE_LATE_US - 1 + 4000 + 4000);
    /* late, but a flush shorter than PACE_LATE_US */
    assert_int_equal(next_due(&p, due, T0, due + 5000, 500), due + 5000 + 500 + 500);
    assert_int_equal(p.saturated, 0);
}

/* A queue near its bound or a drain: the next flush may begin at once,
 * however long the wait was; the flush after it is paced as usual */
static void test_release_lets_the_next_flush_begin_at_once(void **state)
{
    (void)state;
    struct pace p = {0};
    int64_t due = T0 + 20000, start = due + 13000;
    next_due(&p, due, T0, start, 20000);
    assert_false(pace_may_flush(&p, start + 20001));
    pace_release(&p);
    assert_true(pace_may_flush(&p, start + 20001));
    /* not late: there was no wait to be late for, so the plain wait, and
     * the count of saturated flushes is still the first flush's one */
    assert_int_equal(next_due(&p, p.due_us, start + 20001, start + 30000, 5000),
                     start + 35000 + 5000);
    assert_int_equal(p.saturated, 1);
}

/* A flush longer than its clients' writes can take (PACE_SEND_US each) was
 * held up, by the VM or the scheduler: the next waits only what the writes
 * could have taken, and it is no sign of saturation, late or not. (Waiting
 * as long as the hold-up held what came meanwhile for as long again: in
 * steady's 2000 msg/s on the development VM, ~1.2 such flushes a second,
 * each followed by a wait of ~1.4 ms.) */
static void test_a_held_up_flush_waits_only_for_its_writes(void **state)
{
    (void)state;
    struct pace p = {0};
    /* 20 clients, on time, 4 ms: a stall in it */
    pace_output(&p, T0);
    pace_flushed(&p, T0 + 10, T0 + 10 + 4000, 20);
    assert_int_equal(p.due_us, T0 + 10 + 4000 + 20 * PACE_SEND_US);
    /* the same, begun 5 ms late with output waiting: not saturation */
    int64_t due = p.due_us, start = due + 5000;
    pace_flushed(&p, start, start + 4000, 20);
    assert_int_equal(p.due_us, start + 4000 + 20 * PACE_SEND_US);
    assert_int_equal(p.saturated, 0);
    /* 20 clients in less than their bound: the plain wait */
    pace_flushed(&p, T0 + 100000, T0 + 100000 + 500, 20);
    assert_int_equal(p.due_us, T0 + 100000 + 500 + 500);
    /* none written: nothing to batch */
    pace_flushed(&p, T0 + 200000, T0 + 200000 + 3000, 0);
    assert_int_equal(p.due_us, 0);
    /* many clients, late and long: still saturation, twice the time */
    p.due_us = T0 + 300000;
    pace_output(&p, T0 + 290000);
    start = T0 + 300000 + 2000;
    pace_flushed(&p, start, start + 8000, 400);
    assert_int_equal(p.due_us, start + 8000 + 16000);
    assert_int_equal(p.saturated, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quiet_gateway_writes_at_once),
        cmocka_unit_test(test_busy_gateway_waits_as_long_as_it_wrote),
        cmocka_unit_test(test_saturated_gateway_waits_twice_as_long),
        cmocka_unit_test(test_late_alone_is_not_saturation),
        cmocka_unit_test(test_release_lets_the_next_flush_begin_at_once),
        cmocka_unit_test(test_a_held_up_flush_waits_only_for_its_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
