/* Unit tests for common/shard: FNV-1a 64 and jump consistent hashing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "shard.h"

static uint32_t shard_of_str(const char *s, uint32_t shards)
{
    return cf_shard_of(s, strlen(s), shards);
}

static void test_fnv1a64_vectors(void **state)
{
    (void)state;
    assert_true(cf_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(cf_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(cf_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
    /* Only len bytes count, not what follows them. */
    assert_true(cf_fnv1a64("foobarbaz", 6) == 0x85944171f73967e8ULL);
    assert_true(cf_fnv1a64("ab", 1) == 0xaf63dc4c8601ec8cULL);
}

static void test_jump_hash_pinned(void **state)
{
    (void)state;
    /* Expected values computed with an independent Python implementation of
     * Lamping & Veach's algorithm. */
    assert_int_equal(cf_jump_hash(0, 1), 0);
    assert_int_equal(cf_jump_hash(0, 10), 0);
    assert_int_equal(cf_jump_hash(1, 10), 6);
    assert_int_equal(cf_jump_hash(0xdeadbeefULL, 100), 87);
    assert_int_equal(cf_jump_hash(0xab54a98ceb1f0ad2ULL, 1000), 294);
    assert_int_equal(cf_jump_hash(UINT64_MAX, 2147483648u), 699554662);
    assert_int_equal(cf_jump_hash(256, 1024), 520);
    assert_int_equal(cf_jump_hash(42, 7), 2);
}

static void test_shard_of_pinned(void **state)
{
    (void)state;
    assert_int_equal(cf_shard_of("general", 7, 2), 1);
    assert_int_equal(cf_shard_of("lobby", 5, 4), 2);
    assert_int_equal(shard_of_str("general", 7), 6);
    assert_int_equal(shard_of_str("lobby", 5), 2);

    static const uint32_t over2[10] = {0, 1, 1, 0, 0, 0, 1, 1, 1, 1};
    static const uint32_t over16[10] = {12, 2, 9, 11, 8, 6, 13, 7, 8, 8};
    for (int i = 0; i < 10; i++) {
        char name[2] = {(char)('0' + i), '\0'};
        assert_int_equal(cf_shard_of(name, 1, 2), over2[i]);
        assert_int_equal(cf_shard_of(name, 1, 16), over16[i]);
    }
}

static void test_range_and_single_bucket(void **state)
{
    (void)state;
    uint64_t key = 0x9e3779b97f4a7c15ULL;
    for (uint32_t buckets = 1; buckets <= 300; buckets++) {
        for (int k = 0; k < 50; k++) {
            key = key * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t b = cf_jump_hash(key, buckets);
            assert_true(b < buckets);
            if (buckets == 1)
                assert_int_equal(b, 0);
        }
    }
    assert_int_equal(cf_jump_hash(UINT64_MAX, 1), 0);
    assert_int_equal(shard_of_str("anything", 1), 0);
    assert_int_equal(shard_of_str("", 1), 0);
    assert_true(cf_jump_hash(UINT64_MAX, UINT32_MAX) < UINT32_MAX);
}

static void test_spread(void **state)
{
    (void)state;
    enum { NAMES = 20000, SHARDS = 8 };
    unsigned counts[SHARDS] = {0};
    char name[32];
    for (int i = 0; i < NAMES; i++) {
        int n = snprintf(name, sizeof name, "room-%d", i);
        uint32_t s = cf_shard_of(name, (size_t)n, SHARDS);
        assert_true(s < SHARDS);
        counts[s]++;
    }
    const unsigned mean = NAMES / SHARDS; /* 2500 */
    for (int s = 0; s < SHARDS; s++) {
        assert_true(counts[s] >= mean - mean / 10);
        assert_true(counts[s] <= mean + mean / 10);
    }
}

static void test_consistency(void **state)
{
    (void)state;
    char name[32];
    for (uint32_t n = 1; n <= 15; n++) {
        unsigned moved = 0;
        for (int i = 0; i < 2000; i++) {
            int len = snprintf(name, sizeof name, "room-%d", i);
            uint32_t before = cf_shard_of(name, (size_t)len, n);
            uint32_t after = cf_shard_of(name, (size_t)len, n + 1);
            if (after != before) {
                assert_int_equal(after, n);
                moved++;
            }
        }
        /* About 1/(n+1) of the names move: never none, never most of them. */
        assert_true(moved > 0);
        assert_true(moved < 2 * 2000 / (n + 1));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a64_vectors),
        cmocka_unit_test(test_jump_hash_pinned),
        cmocka_unit_test(test_shard_of_pinned),
        cmocka_unit_test(test_range_and_single_bucket),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_consistency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
