/* The text written without printf on the per-message path: integers
 * (common/fmt.h) and RFC 3339 times (common/clock.c, which keeps the last
 * second it formatted), each against what the C library writes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "fmt.h"

static void expect_i64(int64_t v)
{
    char want[32], got[CF_FMT_I64_MAX + 8];
    int n = snprintf(want, sizeof want, "%" PRId64, v);
    memset(got, 'X', sizeof got);
    size_t len = cf_fmt_i64(got, v);
    assert_int_equal(len, (size_t)n);
    assert_memory_equal(got, want, len);
    assert_int_equal(got[len], 'X'); /* nothing past it */
}

static void test_i64_like_printf(void **state)
{
    (void)state;
    static const int64_t edges[] = {0,         1,          -1,         9,         10,
                                    -10,       99,         100,        1000000000, INT64_MAX,
                                    INT64_MIN, INT64_MAX - 1, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        expect_i64(edges[i]);
    for (int64_t p = 1;; p *= 10) { /* up to 10^18 */
        expect_i64(p);
        expect_i64(p - 1);
        expect_i64(-p);
        if (p > INT64_MAX / 10)
            break;
    }
    unsigned seed = 7;
    for (int i = 0; i < 100000; i++) {
        uint64_t u = ((uint64_t)rand_r(&seed) << 33) ^ ((uint64_t)rand_r(&seed) << 2) ^
                     (uint64_t)rand_r(&seed);
        expect_i64((int64_t)(u >> (rand_r(&seed) % 64)));
        expect_i64((int64_t)u);
    }
}

/* What cf_rfc3339_ms must write, from gmtime_r and strftime. */
static void reference(int64_t ms, char *out)
{
    int64_t msec = ms % 1000;
    time_t secs = (time_t)(ms / 1000);
    if (msec < 0) {
        msec += 1000;
        secs -= 1;
    }
    struct tm tm;
    assert_non_null(gmtime_r(&secs, &tm));
    char head[32];
    /* %Y is not zero-padded to four digits below year 1000 */
    snprintf(head, sizeof head, "%04d", tm.tm_year + 1900);
    strftime(head + 4, sizeof head - 4, "-%m-%dT%H:%M:%S", &tm);
    char all[64];
    snprintf(all, sizeof all, "%s.%03dZ", head, (int)msec);
    assert_int_equal(strlen(all), CF_RFC3339_LEN);
    memcpy(out, all, CF_RFC3339_LEN + 1);
}

static void expect_time(int64_t ms)
{
    char want[CF_RFC3339_LEN + 1], got[CF_RFC3339_LEN + 1];
    reference(ms, want);
    assert_int_equal(cf_rfc3339_ms(ms, got, sizeof got), CF_RFC3339_LEN);
    assert_string_equal(got, want);
}

/* The cached second must never leak into another one: runs of the same
 * second, steps forward and back by one ms across second, day and year
 * boundaries, and random times over the whole range in between. */
static void test_rfc3339_across_seconds(void **state)
{
    (void)state;
    /* first in the process: second 0 must not be taken for an empty cache */
    expect_time(0);
    static const int64_t around[] = {0,
                                     1795860000000LL,   /* 2026-11-28T10:00:00 */
                                     1798761599000LL,   /* 2026-12-31T23:59:59 */
                                     951868799999LL,    /* 2000-02-29T23:59:59.999 */
                                     -62167219200000LL, /* 0000-01-01 */
                                     253402300799000LL}; /* 9999-12-31T23:59:59 */
    for (size_t i = 0; i < sizeof around / sizeof around[0]; i++)
        for (int64_t d = -1500; d <= 1500; d += 7) {
            int64_t ms = around[i] + d;
            if (ms < -62167219200000LL + 1001 || ms > 253402300799999LL)
                continue;
            expect_time(ms);
            expect_time(ms - 1001); /* back a second, then on again */
            expect_time(ms);
        }
    unsigned seed = 11;
    for (int i = 0; i < 20000; i++) {
        int64_t span = 253402300799999LL + 62167219200000LL;
        uint64_t r = ((uint64_t)rand_r(&seed) << 31) ^ (uint64_t)rand_r(&seed);
        int64_t ms = -62167219200000LL + (int64_t)(r % (uint64_t)span);
        expect_time(ms);
        expect_time(ms + 1); /* usually the same second */
    }
    char out[64];
    /* a refused time leaves the cache as it was: the same second after it */
    expect_time(253402300799000LL);
    assert_int_equal(cf_rfc3339_ms(253402300800000LL, out, sizeof out), -1);
    expect_time(253402300799999LL);
    expect_time(-62167219200000LL);
    assert_int_equal(cf_rfc3339_ms(-62167219200001LL, out, sizeof out), -1);
    expect_time(-62167219199999LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i64_like_printf),
        cmocka_unit_test(test_rfc3339_across_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
