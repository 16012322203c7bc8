/* Unit tests for the rate limiters: common/tbucket (token buckets) and
 * gateway/iplimit (per client address connections, logins and upgrades,
 * IPv6 by /64, a bounded table that forgets idle addresses). Time is passed
 * in, so every case is exact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "iplimit.h"
#include "tbucket.h"

static void test_bucket_burst_then_rate(void **state)
{
    (void)state;
    struct cf_tbucket b = {0};
    int64_t t = 1000000;
    for (int i = 0; i < 5; i++)
        assert_true(cf_tb_take(&b, 2, 5, t)); /* a fresh bucket is full */
    assert_false(cf_tb_take(&b, 2, 5, t));
    assert_int_equal(cf_tb_wait_ms(&b, 2, 5, t), 500);
    assert_false(cf_tb_take(&b, 2, 5, t + 499));
    assert_true(cf_tb_take(&b, 2, 5, t + 500));
    assert_false(cf_tb_take(&b, 2, 5, t + 500));
    /* a long pause refills to the burst, never beyond */
    assert_false(cf_tb_full(&b, 2, 5, t + 2000));
    assert_true(cf_tb_full(&b, 2, 5, t + 100000));
    int n = 0;
    while (cf_tb_take(&b, 2, 5, t + 100000))
        n++;
    assert_int_equal(n, 5);
}

static void test_bucket_high_rates(void **state)
{
    (void)state;
    struct cf_tbucket b = {0};
    int n = 0;
    /* 100000/s with a burst of 10: 10 at once, then 100 per millisecond */
    while (cf_tb_take(&b, 100000, 10, 5000))
        n++;
    assert_int_equal(n, 10);
    n = 0;
    while (cf_tb_take(&b, 100000, 1000, 5001))
        n++;
    assert_int_equal(n, 100);
    /* Rates that do not divide a second in microseconds: 400,000/s was
     * 500,000/s and 300,000/s was 333,333/s. Over one second, a take
     * every millisecond until refused: the rate, within 0.1 %. */
    static const int64_t rates[] = {300000, 400000, 700000, 1000000, 999999, 3};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        struct cf_tbucket r = {0};
        while (cf_tb_take(&r, rates[i], 1000000, 10000)) /* empty it */
            ;
        int64_t got = 0;
        for (int64_t ms = 10001; ms <= 11000; ms++)
            while (cf_tb_take(&r, rates[i], 1000000, ms))
                got++;
        if (got < rates[i] - rates[i] / 1000 - 1 || got > rates[i] + rates[i] / 1000 + 1)
            fail_msg("%lld/s gave %lld in a second", (long long)rates[i], (long long)got);
    }
}

static struct sockaddr_in v4(const char *a)
{
    struct sockaddr_in s = {.sin_family = AF_INET};
    inet_pton(AF_INET, a, &s.sin_addr);
    return s;
}

static struct sockaddr_in6 v6(const char *a)
{
    struct sockaddr_in6 s = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, a, &s.sin6_addr);
    return s;
}

#define OPEN(t, sa, h) ipl_open((t), (const struct sockaddr *)&(sa), sizeof(sa), 0, (h))

static void test_connections_per_address(void **state)
{
    (void)state;
    struct ipl_limits lim = {.max_conns = 2};
    struct ipl *t = ipl_new(&lim);
    uint32_t h1, h2, h3, o;
    struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2");
    assert_int_equal(OPEN(t, a, &h1), IPL_OK);
    assert_int_equal(OPEN(t, a, &h2), IPL_OK);
    assert_int_equal(h1, h2); /* one address, one entry */
    assert_int_equal(OPEN(t, a, &h3), IPL_TOO_MANY);
    assert_int_equal(OPEN(t, b, &o), IPL_OK);
    /* the same address as a v4-mapped IPv6 socket address counts together */
    struct sockaddr_in6 mapped = v6("::ffff:192.0.2.1");
    assert_int_equal(OPEN(t, mapped, &h3), IPL_TOO_MANY);
    ipl_close(t, h1);
    assert_int_equal(OPEN(t, mapped, &h3), IPL_OK);
    assert_int_equal(h3, h1);
    ipl_close(t, h2);
    ipl_close(t, h3);
    ipl_close(t, o);
    assert_int_equal(ipl_count(t), 2);
    ipl_sweep(t, 1000); /* no rate limits: idle entries go at once */
    assert_int_equal(ipl_count(t), 0);
    ipl_free(t);
}

static void test_ipv6_counts_by_64(void **state)
{
    (void)state;
    struct ipl_limits lim = {.max_conns = 1};
    struct ipl *t = ipl_new(&lim);
    uint32_t h;
    struct sockaddr_in6 a = v6("2001:db8:1:2::1"), same64 = v6("2001:db8:1:2:ffff::9"),
                        other64 = v6("2001:db8:1:3::1");
    assert_int_equal(OPEN(t, a, &h), IPL_OK);
    assert_int_equal(OPEN(t, same64, &h), IPL_TOO_MANY);
    assert_int_equal(OPEN(t, other64, &h), IPL_OK);
    /* behind NAT64 (64:ff9b::/96), each IPv4 client counts on its own, and
     * as itself */
    struct sockaddr_in6 n1 = v6("64:ff9b::192.0.2.7"), n2 = v6("64:ff9b::192.0.2.8");
    struct sockaddr_in n1v4 = v4("192.0.2.7");
    assert_int_equal(OPEN(t, n1, &h), IPL_OK);
    assert_int_equal(OPEN(t, n2, &h), IPL_OK);
    assert_int_equal(OPEN(t, n1v4, &h), IPL_TOO_MANY);
    ipl_free(t);
}

static void test_login_and_upgrade_budgets(void **state)
{
    (void)state;
    struct ipl_limits lim = {.login_rate = 1, .login_burst = 2, .upgrade_rate = 10,
                             .upgrade_burst = 1};
    struct ipl *t = ipl_new(&lim);
    uint32_t h, g;
    struct sockaddr_in a = v4("198.51.100.7"), b = v4("198.51.100.8");
    assert_int_equal(OPEN(t, a, &h), IPL_OK);
    assert_int_equal(OPEN(t, b, &g), IPL_OK);
    int retry = 0;
    int64_t now = 50000;
    assert_true(ipl_allow(t, h, IPL_LOGIN, now, &retry));
    assert_true(ipl_allow(t, h, IPL_LOGIN, now, &retry));
    assert_false(ipl_allow(t, h, IPL_LOGIN, now, &retry));
    assert_int_equal(retry, 1);
    /* the two budgets are separate, and so are addresses */
    assert_true(ipl_allow(t, h, IPL_UPGRADE, now, &retry));
    assert_false(ipl_allow(t, h, IPL_UPGRADE, now, &retry));
    assert_true(ipl_allow(t, g, IPL_LOGIN, now, &retry));
    assert_true(ipl_allow(t, h, IPL_LOGIN, now + 1000, &retry));
    /* an address with no connection left is kept until its budgets refill */
    ipl_close(t, h);
    ipl_sweep(t, now + 1000);
    assert_int_equal(ipl_count(t), 2);
    ipl_close(t, g);
    ipl_sweep(t, now + 10000);
    assert_int_equal(ipl_count(t), 0);
    ipl_free(t);
}

static void test_the_table_is_bounded_and_grows(void **state)
{
    (void)state;
    struct ipl_limits lim = {.max_conns = 1};
    struct ipl *t = ipl_new(&lim);
    uint32_t h;
    /* many addresses: the table grows, handles stay valid */
    for (uint32_t i = 0; i < 5000; i++) {
        struct sockaddr_in s = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000 + i)};
        assert_int_equal(OPEN(t, s, &h), IPL_OK);
        assert_int_not_equal(h, 0);
    }
    assert_int_equal(ipl_count(t), 5000);
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000 + 42)};
    assert_int_equal(OPEN(t, s, &h), IPL_TOO_MANY); /* still found after growing */
    /* full of busy addresses: a new one is let in untracked, known ones are
     * still limited */
    uint32_t i = 5000;
    enum ipl_verdict v = IPL_OK;
    for (; v == IPL_OK && i < 2 * IPL_MAX_ADDRS; i++) {
        struct sockaddr_in n = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000 + i)};
        v = OPEN(t, n, &h);
    }
    assert_int_equal(v, IPL_UNTRACKED);
    assert_int_equal(h, 0);
    assert_int_equal(ipl_count(t), IPL_MAX_ADDRS - 1);
    assert_int_equal(OPEN(t, s, &h), IPL_TOO_MANY);
    /* once some have closed, a new address takes an idle one's place at
     * once, without waiting for the sweep */
    struct sockaddr_in old = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000 + 7)};
    uint32_t hold;
    assert_int_equal(OPEN(t, old, &hold), IPL_TOO_MANY); /* max_conns = 1: 7 is busy */
    for (uint32_t k = 1; k < IPL_MAX_ADDRS; k++)
        ipl_close(t, k); /* every address's one connection ends */
    struct sockaddr_in fresh = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0b000001)};
    assert_int_equal(OPEN(t, fresh, &h), IPL_OK);
    assert_int_not_equal(h, 0);
    /* off: nothing tracked */
    struct ipl_limits off = {0};
    struct ipl *u = ipl_new(&off);
    assert_int_equal(OPEN(u, s, &h), IPL_OK);
    assert_int_equal(h, 0);
    assert_int_equal(ipl_count(u), 0);
    ipl_close(u, 0);
    ipl_free(u);
    ipl_free(t);
}

/* A table full of busy addresses: a new address's sweep that frees nothing
 * is not repeated for the next new addresses for 100 ms (each cost a
 * 4,096-entry scan), unless a connection ends. */
static void test_a_dry_sweep_is_not_repeated_at_once(void **state)
{
    (void)state;
    struct ipl_limits lim = {.max_conns = 1, .login_rate = 100, .login_burst = 1};
    struct ipl *t = ipl_new(&lim);
    uint32_t h;
    for (uint32_t i = 0; i < IPL_MAX_ADDRS - 1; i++) {
        struct sockaddr_in s = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000 + i)};
        assert_int_equal(ipl_open(t, (struct sockaddr *)&s, sizeof s, 0, &h), IPL_OK);
        assert_int_equal(h, i + 1);
    }
    /* 5000 has no connection but has just logged in: idle 10 ms from now,
     * and past the first sweep's 4,096 entries */
    int retry;
    assert_true(ipl_allow(t, 5000, IPL_LOGIN, 0, &retry));
    ipl_close(t, 5000);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0b000001)};
    struct sockaddr_in b = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0b000002)};
    assert_int_equal(ipl_open(t, (struct sockaddr *)&a, sizeof a, 0, &h), IPL_UNTRACKED);
    /* 5000 is idle now, but no sweep runs before 100 ms */
    assert_int_equal(ipl_open(t, (struct sockaddr *)&b, sizeof b, 50, &h), IPL_UNTRACKED);
    assert_int_equal(ipl_open(t, (struct sockaddr *)&b, sizeof b, 100, &h), IPL_OK);
    assert_int_equal(h, 5000);
    /* a connection that ends lets the next new address sweep at once (each
     * sweep goes on where the last one stopped) */
    struct sockaddr_in c = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0b000003)};
    assert_int_equal(ipl_open(t, (struct sockaddr *)&c, sizeof c, 100, &h), IPL_UNTRACKED);
    ipl_close(t, 13000);
    assert_int_equal(ipl_open(t, (struct sockaddr *)&c, sizeof c, 101, &h), IPL_OK);
    assert_int_equal(h, 13000);
    ipl_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_burst_then_rate),
        cmocka_unit_test(test_bucket_high_rates),
        cmocka_unit_test(test_connections_per_address),
        cmocka_unit_test(test_ipv6_counts_by_64),
        cmocka_unit_test(test_login_and_upgrade_budgets),
        cmocka_unit_test(test_the_table_is_bounded_and_grows),
        cmocka_unit_test(test_a_dry_sweep_is_not_repeated_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
