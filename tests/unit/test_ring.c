/* Unit tests for common/ring: which Redis server holds a room. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ring.h"
#include "shard.h"

static uint32_t server_of(const char *s, uint32_t n)
{
    return cf_ring_server_of(s, strlen(s), n);
}

static void name_of(int i, char *out, size_t cap)
{
    snprintf(out, cap, "room-%d", i);
}

/* Pinned: every node of every version must agree, or after an upgrade rooms
 * would silently move between servers. Expected values computed with an
 * independent Python implementation (FNV-1a 64, xor 0x9e3779b97f4a7c15,
 * MurmurHash3 fmix64, Lamping & Veach's jump hash); changing them is a
 * breaking change for running clusters. */
static void test_pinned(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint64_t key;
        uint32_t of3, of10, of64;
    } v[] = {
        {"", 0x6bcb9d63eb8eab8bULL, 0, 6, 28},
        {"general", 0x1b726817c38b4549ULL, 0, 7, 19},
        {"lobby", 0xa6c1870110085e50ULL, 0, 5, 21},
        {"room-0", 0x3f07883697ac3fccULL, 1, 1, 1},
        {"room-1", 0x2ae5753f41245663ULL, 2, 6, 23},
        {"a", 0xce2a15429808ee9aULL, 2, 3, 29},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_true(cf_ring_key(v[i].name, strlen(v[i].name)) == v[i].key);
        assert_int_equal(server_of(v[i].name, 3), v[i].of3);
        assert_int_equal(server_of(v[i].name, 10), v[i].of10);
        assert_int_equal(server_of(v[i].name, 64), v[i].of64);
    }
}

static void test_deterministic_and_in_range(void **state)
{
    (void)state;
    char name[32];
    for (uint32_t n = 1; n <= 64; n++)
        for (int i = 0; i < 200; i++) {
            name_of(i, name, sizeof name);
            uint32_t s = server_of(name, n);
            assert_true(s < n);
            assert_int_equal(server_of(name, n), s);
        }
    /* One server: always server 0. */
    assert_int_equal(server_of("anything", 1), 0);
    assert_int_equal(cf_ring_server_of("", 0, 1), 0);
    /* Only len bytes count. */
    assert_int_equal(cf_ring_server_of("lobbyXYZ", 5, 7), server_of("lobby", 7));
}

/* 10000 names over 3 servers: each gets a third, within 3 %. */
static void test_spread_over_three(void **state)
{
    (void)state;
    enum { N = 10000 };
    int count[3] = {0};
    char name[32];
    for (int i = 0; i < N; i++) {
        name_of(i, name, sizeof name);
        count[server_of(name, 3)]++;
    }
    printf("10000 rooms over 3 servers: %d %d %d\n", count[0], count[1], count[2]);
    for (int s = 0; s < 3; s++)
        assert_true(count[s] > N / 3 - N * 3 / 100 && count[s] < N / 3 + N * 3 / 100);
}

/* The server does not follow the broker shard: the rooms of one shard spread
 * over every server, also when there are as many shards as servers. */
static void test_independent_of_the_shard(void **state)
{
    (void)state;
    enum { N = 9000 };
    int count[3][3] = {{0}};
    char name[32];
    for (int i = 0; i < N; i++) {
        name_of(i, name, sizeof name);
        count[cf_shard_of(name, strlen(name), 3)][server_of(name, 3)]++;
    }
    for (int sh = 0; sh < 3; sh++)
        for (int s = 0; s < 3; s++) {
            /* ~1000 each; independence gives well within 15 % */
            if (count[sh][s] < 850 || count[sh][s] > 1150)
                fail_msg("shard %d has %d rooms on server %d (expected ~1000)", sh,
                         count[sh][s], s);
        }
}

/* Adding a server moves ~1/(n+1) of the rooms, and only to the new one. */
static void test_minimal_movement(void **state)
{
    (void)state;
    enum { N = 10000 };
    char name[32];
    for (uint32_t n = 1; n < 8; n++) {
        int moved = 0;
        for (int i = 0; i < N; i++) {
            name_of(i, name, sizeof name);
            uint32_t before = server_of(name, n), after = server_of(name, n + 1);
            if (before != after) {
                assert_int_equal(after, n); /* to the new server, nowhere else */
                moved++;
            }
        }
        double expect = (double)N / (n + 1);
        printf("%u -> %u servers: %d of %d rooms moved (expected ~%.0f)\n", n, n + 1, moved, N,
               expect);
        assert_true(moved > expect * 0.9 && moved < expect * 1.1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned),
        cmocka_unit_test(test_deterministic_and_in_range),
        cmocka_unit_test(test_spread_over_three),
        cmocka_unit_test(test_independent_of_the_shard),
        cmocka_unit_test(test_minimal_movement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
