/* The broker frames its Redis requests itself (rb__append in
 * broker/redis_cmd.c) and hands them to hiredis whole: what hiredis is given
 * must be byte for byte what its own redisFormatCommandArgv writes, for any
 * arguments, binary ones included. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"

/* A context that is never connected: only its output buffer is used. */
static redisContext *offline(void)
{
    redisContext *c = redisConnectUnixNonBlock("/nonexistent/confab-test.sock");
    assert_non_null(c);
    c->err = 0; /* the failed connect does not matter: nothing is written */
    return c;
}

static void expect_like_hiredis(int argc, const char **argv, const size_t *lens)
{
    redisContext *c = offline();
    size_t before = sdslen(c->obuf);
    assert_int_equal(rb__append(c, argc, argv, lens), 0);
    char *want = NULL;
    int n = redisFormatCommandArgv(&want, argc, argv, lens);
    assert_true(n > 0);
    assert_int_equal(sdslen(c->obuf) - before, (size_t)n);
    assert_memory_equal(c->obuf + before, want, (size_t)n);
    redisFreeCommand(want);
    redisFree(c);
}

static void test_plain_commands(void **state)
{
    (void)state;
    const char *ping[] = {"PING"};
    size_t ping_l[] = {4};
    expect_like_hiredis(1, ping, ping_l);
    const char *pub[] = {"PUBLISH", "room:lobby", "hello"};
    size_t pub_l[] = {7, 10, 5};
    expect_like_hiredis(3, pub, pub_l);
}

static void test_binary_and_empty_arguments(void **state)
{
    (void)state;
    /* msgpack payloads carry any byte, CRLF and NUL included */
    static const char bin[] = {'\x88', '\r', '\n', '\0', '$', '*', '\xff'};
    const char *argv[] = {"EVALSHA", "", bin, "0"};
    size_t lens[] = {7, 0, sizeof bin, 1};
    expect_like_hiredis(4, argv, lens);
}

static void test_long_and_many_arguments(void **state)
{
    (void)state;
    /* lengths across digit counts, and a batch's worth of arguments */
    enum { N = 1200 };
    static const char *argv[N];
    static size_t lens[N];
    char *big = malloc(100001);
    assert_non_null(big);
    memset(big, 'x', 100001);
    static const size_t sizes[] = {0, 1, 9, 10, 99, 100, 999, 1000, 4096, 65535, 100001};
    for (int i = 0; i < N; i++) {
        argv[i] = big;
        lens[i] = sizes[i % (sizeof sizes / sizeof sizes[0])];
    }
    expect_like_hiredis(N, argv, lens);
    /* twice in a row on one context: requests follow each other */
    redisContext *c = offline();
    const char *a[] = {"GET", "k"};
    size_t al[] = {3, 1};
    assert_int_equal(rb__append(c, 2, a, al), 0);
    assert_int_equal(rb__append(c, 2, a, al), 0);
    static const char two[] = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    assert_int_equal(sdslen(c->obuf), sizeof two - 1);
    assert_memory_equal(c->obuf, two, sizeof two - 1);
    redisFree(c);
    free(big);
}

static void test_no_command_is_refused(void **state)
{
    (void)state;
    redisContext *c = offline();
    assert_int_equal(rb__append(c, 0, NULL, NULL), -EINVAL);
    assert_int_equal(sdslen(c->obuf), 0);
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_commands),
        cmocka_unit_test(test_binary_and_empty_arguments),
        cmocka_unit_test(test_long_and_many_arguments),
        cmocka_unit_test(test_no_command_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
