/* Unit tests for the time and chance helpers of common/: backoff, random
 * values (across fork) and the clocks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "child_wait.h"
#include "clock.h"
#include "logcap.h"

/* ---- random values ---------------------------------------------------------- */

/* Values come from a pool of getrandom() output: a forked child (each broker
 * and gateway worker is one) must not hand out the values its parent would
 * hand out next, or two brokers could give rooms the same epoch. */
static void test_random_not_shared_across_fork(void **state)
{
    (void)state;
    uint64_t seen[64];
    for (int i = 0; i < 64; i++) { /* the pool is refilled along the way */
        seen[i] = cf_random_u64();
        for (int j = 0; j < i; j++)
            assert_true(seen[j] != seen[i]);
    }
    (void)cf_random_u64(); /* the pool now holds values the parent has not given */
    int pv[2];
    assert_int_equal(pipe(pv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint64_t child[4];
        for (int i = 0; i < 4; i++)
            child[i] = cf_random_u64();
        _exit(write(pv[1], child, sizeof child) == (ssize_t)sizeof child ? 0 : 1);
    }
    close(pv[1]);
    uint64_t child[4], parent[4];
    child_wait_readable(pv[0], pid);
    assert_int_equal(read(pv[0], child, sizeof child), (ssize_t)sizeof child);
    close(pv[0]);
    assert_int_equal(child_wait_exit(pid), 0);
    for (int i = 0; i < 4; i++)
        parent[i] = cf_random_u64();
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            assert_true(child[i] != parent[j]);
}

/* ---- backoff --------------------------------------------------------------- */

static void test_backoff(void **state)
{
    (void)state;
    uint32_t first_values[64];
    for (int run = 0; run < 64; run++) {
        struct cf_backoff b;
        cf_backoff_init(&b, 100, 1000);
        uint32_t d = cf_backoff_next(&b);
        first_values[run] = d;
        assert_in_range(d, 50, 100);
        assert_in_range(cf_backoff_next(&b), 100, 200);
        assert_in_range(cf_backoff_next(&b), 200, 400);
        assert_in_range(cf_backoff_next(&b), 400, 800);
        for (int i = 0; i < 200; i++) /* capped from here on, forever */
            assert_in_range(cf_backoff_next(&b), 500, 1000);
        cf_backoff_reset(&b);
        assert_in_range(cf_backoff_next(&b), 50, 100);
        assert_in_range(cf_backoff_next(&b), 100, 200);
    }
    /* There is jitter: 64 first delays are not all the same. */
    int distinct = 0;
    for (int i = 1; i < 64; i++)
        distinct += first_values[i] != first_values[0];
    assert_true(distinct > 0);

    /* Degenerate parameters. */
    struct cf_backoff b;
    cf_backoff_init(&b, 0, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(cf_backoff_next(&b), 1);
    cf_backoff_init(&b, 500, 100); /* a cap below base means base */
    for (int i = 0; i < 10; i++)
        assert_in_range(cf_backoff_next(&b), 250, 500);
    cf_backoff_init(&b, 1, UINT32_MAX);
    uint32_t last = 0;
    for (int i = 0; i < 200; i++) {
        uint32_t v = cf_backoff_next(&b);
        if (i >= 40) /* 2^32 > cap: capped */
            assert_true(v >= UINT32_MAX / 2);
        last = v;
    }
    assert_true(last >= UINT32_MAX / 2);
    cf_backoff_init(&b, 3, 1000);
    assert_in_range(cf_backoff_next(&b), 2, 3);
    assert_in_range(cf_backoff_next(&b), 3, 6);

    /* Only a connection that stayed up CF_BACKOFF_STABLE_MS starts afresh. */
    cf_backoff_init(&b, 100, 1000);
    for (int i = 0; i < 4; i++)
        cf_backoff_next(&b);
    assert_false(cf_backoff_settle(&b, CF_BACKOFF_STABLE_MS - 1));
    assert_in_range(cf_backoff_next(&b), 500, 1000);
    assert_true(cf_backoff_settle(&b, CF_BACKOFF_STABLE_MS));
    assert_in_range(cf_backoff_next(&b), 50, 100);
}

/* ---- clock ----------------------------------------------------------------- */

static void expect_rfc3339(int64_t ms, const char *want)
{
    char out[CF_RFC3339_LEN + 1];
    memset(out, 'X', sizeof out);
    assert_int_equal(cf_rfc3339_ms(ms, out, sizeof out), CF_RFC3339_LEN);
    assert_string_equal(out, want);
}

/* The monotonic clock in us and ms is one clock: never going back, and
 * ms the us divided down (read in between, so within one ms). */
static void test_mono_us_and_ms(void **state)
{
    (void)state;
    int64_t prev = cf_mono_us();
    for (int i = 0; i < 1000; i++) {
        int64_t us = cf_mono_us(), ms = cf_mono_ms(), us2 = cf_mono_us();
        assert_true(us >= prev);
        assert_true(ms >= us / 1000 && ms <= us2 / 1000);
        prev = us2;
    }
    struct timespec pause = {0, 2000000}; /* 2 ms */
    int64_t before = cf_mono_us();
    nanosleep(&pause, NULL);
    assert_true(cf_mono_us() - before >= 2000);
}

static void test_rfc3339(void **state)
{
    (void)state;
    expect_rfc3339(0, "1970-01-01T00:00:00.000Z");
    expect_rfc3339(1795860000123LL, "2026-11-28T10:00:00.123Z");
    expect_rfc3339(-1, "1969-12-31T23:59:59.999Z");
    expect_rfc3339(-999, "1969-12-31T23:59:59.001Z");
    expect_rfc3339(-1000, "1969-12-31T23:59:59.000Z");
    expect_rfc3339(-1001, "1969-12-31T23:59:58.999Z");
    expect_rfc3339(951782400001LL, "2000-02-29T00:00:00.001Z");
    expect_rfc3339(31536000000LL, "1971-01-01T00:00:00.000Z");
    expect_rfc3339(253402300799999LL, "9999-12-31T23:59:59.999Z");
    expect_rfc3339(-62167219200000LL, "0000-01-01T00:00:00.000Z");

    char out[64];
    assert_int_equal(cf_rfc3339_ms(253402300800000LL, out, sizeof out), -1);
    assert_int_equal(cf_rfc3339_ms(-62167219200001LL, out, sizeof out), -1);
    assert_int_equal(cf_rfc3339_ms(INT64_MAX, out, sizeof out), -1);
    assert_int_equal(cf_rfc3339_ms(INT64_MIN, out, sizeof out), -1);
    /* Too small an output buffer. */
    assert_int_equal(cf_rfc3339_ms(0, out, CF_RFC3339_LEN), -1);
    assert_int_equal(cf_rfc3339_ms(0, out, CF_RFC3339_LEN + 1), CF_RFC3339_LEN);
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t wall = cf_wall_ms();
    int64_t now = (int64_t)time(NULL) * 1000;
    assert_true(wall >= now - 2000 && wall <= now + 2000);
    int64_t m1 = cf_mono_ms();
    int64_t m2 = cf_mono_ms();
    assert_true(m1 >= 0);
    assert_true(m2 >= m1);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_true(cf_mono_ms() - m1 >= 20);
}

/* A line a second at most, the others counted into the next one; the
 * first event ever, at any clock value, gets its line. */
static void test_logcap(void **state)
{
    (void)state;
    struct cf_logcap c = {0};
    uint64_t held = 99;
    assert_true(cf_logcap_take(&c, 0, &held));
    assert_int_equal(held, 0);
    for (int i = 0; i < 500; i++)
        assert_false(cf_logcap_take(&c, 1 + i, &held));
    assert_false(cf_logcap_take(&c, 999, &held));
    assert_true(cf_logcap_take(&c, 1000, &held));
    assert_int_equal(held, 501);
    assert_false(cf_logcap_take(&c, 1999, &held));
    assert_true(cf_logcap_take(&c, 5000, &held)); /* a quiet while: at once */
    assert_int_equal(held, 1);
    struct cf_logcap late = {0};
    assert_true(cf_logcap_take(&late, 123456789, &held));
    assert_false(cf_logcap_take(&late, 123456790, &held));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_not_shared_across_fork),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_mono_us_and_ms),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_logcap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
