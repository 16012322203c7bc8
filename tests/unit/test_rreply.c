/* Unit tests for broker/rreply: Redis replies built in an arena through
 * hiredis' own reader, the same trees its default functions build, and an
 * arena that never overwrites a reply still alive or still being read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rreply.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ON 0 /* every object is malloc()ed: the arena's figures stay 0 */
#else
#define ARENA_ON 1
#endif

static redisReader *reader(void)
{
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    rreply_use(r);
    return r;
}

static void feed(redisReader *r, const char *resp)
{
    assert_int_equal(redisReaderFeed(r, resp, strlen(resp)), REDIS_OK);
}

/* The next whole reply, or NULL if its end has not arrived. */
static redisReply *next(redisReader *r)
{
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    return reply;
}

static void assert_str(const redisReply *e, int type, const char *want)
{
    assert_non_null(e);
    assert_int_equal(e->type, type);
    assert_int_equal(e->len, strlen(want));
    assert_memory_equal(e->str, want, e->len);
    assert_int_equal(e->str[e->len], '\0');
}

static const char MESSAGE[] = "*3\r\n$7\r\nmessage\r\n$10\r\nroom:lobby\r\n$5\r\nh\0llo\r\n";

/* A subscriber's message: the array of three strings hiredis' default
 * functions build (a NUL inside a payload kept), from the arena, which is
 * empty again once it is freed */
static void test_a_message_is_built_in_the_arena(void **state)
{
    (void)state;
    redisReader *r = reader();
    assert_int_equal(redisReaderFeed(r, MESSAGE, sizeof MESSAGE - 1), REDIS_OK);
    struct rreply_stats before = rreply_stats();
    redisReply *m = next(r);
    assert_non_null(m);
    assert_int_equal(m->type, REDIS_REPLY_ARRAY);
    assert_int_equal(m->elements, 3);
    assert_str(m->element[0], REDIS_REPLY_STRING, "message");
    assert_str(m->element[1], REDIS_REPLY_STRING, "room:lobby");
    assert_int_equal(m->element[2]->len, 5);
    assert_memory_equal(m->element[2]->str, "h\0llo", 5);
    struct rreply_stats in = rreply_stats();
    if (ARENA_ON) {
        assert_int_equal(in.arena - before.arena, 4);
        assert_int_equal(in.fallback, before.fallback);
        assert_int_equal(in.live, 4);
        assert_true(in.used > 0);
    }
    rreply_free(m);
    assert_int_equal(rreply_stats().live, 0);
    assert_int_equal(rreply_stats().used, 0);
    redisReaderFree(r);
}

/* Every kind of reply the broker gets: status, error, integer, nil, an
 * empty and a nil array, and arrays nested in arrays */
static void test_every_kind_of_reply(void **state)
{
    (void)state;
    redisReader *r = reader();
    feed(r, "+OK\r\n-ERR out of memory\r\n:-42\r\n$-1\r\n*0\r\n*-1\r\n"
            "*3\r\n:7\r\n*2\r\n$1\r\na\r\n$-1\r\n*1\r\n+QUEUED\r\n");
    redisReply *x = next(r);
    assert_str(x, REDIS_REPLY_STATUS, "OK");
    rreply_free(x);
    x = next(r);
    assert_str(x, REDIS_REPLY_ERROR, "ERR out of memory");
    rreply_free(x);
    x = next(r);
    assert_int_equal(x->type, REDIS_REPLY_INTEGER);
    assert_int_equal(x->integer, -42);
    rreply_free(x);
    x = next(r);
    assert_int_equal(x->type, REDIS_REPLY_NIL);
    rreply_free(x);
    x = next(r);
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    assert_int_equal(x->elements, 0);
    rreply_free(x);
    x = next(r);
    assert_int_equal(x->type, REDIS_REPLY_NIL);
    rreply_free(x);
    x = next(r);
    assert_int_equal(x->type, REDIS_REPLY_ARRAY);
    assert_int_equal(x->elements, 3);
    assert_int_equal(x->element[0]->integer, 7);
    assert_int_equal(x->element[1]->elements, 2);
    assert_str(x->element[1]->element[0], REDIS_REPLY_STRING, "a");
    assert_int_equal(x->element[1]->element[1]->type, REDIS_REPLY_NIL);
    assert_str(x->element[2]->element[0], REDIS_REPLY_STATUS, "QUEUED");
    rreply_free(x);
    assert_null(next(r));
    assert_int_equal(rreply_stats().live, 0);
    assert_int_equal(rreply_stats().used, 0);
    rreply_free(NULL);
    redisReaderFree(r);
}

/* A reply whose end has not arrived keeps its objects: another reader's
 * replies come and go meanwhile without the arena starting over under it,
 * and a reader freed in the middle of a reply gives its objects back */
static void test_a_reply_being_read_is_never_overwritten(void **state)
{
    (void)state;
    redisReader *a = reader(), *b = reader();
    feed(a, "*3\r\n$7\r\nmessage\r\n$10\r\nroom:first\r\n"); /* the payload still to come */
    assert_null(next(a));
    if (ARENA_ON)
        assert_int_equal(rreply_stats().live, 3);
    for (int i = 0; i < 50; i++) {
        feed(b, "*3\r\n$7\r\nmessage\r\n$11\r\nroom:second\r\n$20\r\nZZZZZZZZZZZZZZZZZZZZ\r\n");
        redisReply *m = next(b);
        assert_str(m->element[1], REDIS_REPLY_STRING, "room:second");
        rreply_free(m);
        if (ARENA_ON)
            assert_true(rreply_stats().used > 0); /* a's objects live */
    }
    feed(a, "$7\r\npayload\r\n");
    redisReply *m = next(a);
    assert_str(m->element[0], REDIS_REPLY_STRING, "message");
    assert_str(m->element[1], REDIS_REPLY_STRING, "room:first");
    assert_str(m->element[2], REDIS_REPLY_STRING, "payload");
    rreply_free(m);
    assert_int_equal(rreply_stats().live, 0);
    assert_int_equal(rreply_stats().used, 0);

    feed(a, "*2\r\n$5\r\nfirst\r\n"); /* cut short, then the reader goes */
    assert_null(next(a));
    redisReaderFree(a);
    assert_int_equal(rreply_stats().live, 0);
    assert_int_equal(rreply_stats().used, 0);
    redisReaderFree(b);
}

/* A reply larger than the arena reads whole: what does not fit is
 * malloc()ed, and freeing the mix leaves the arena empty */
static void test_a_reply_larger_than_the_arena_falls_back_to_malloc(void **state)
{
    (void)state;
    enum { N = 200, LEN = 1000 }; /* ~200 KB: three times the arena */
    size_t cap = 32 + (size_t)N * (LEN + 16);
    char *resp = malloc(cap);
    assert_non_null(resp);
    size_t n = (size_t)snprintf(resp, cap, "*%d\r\n", N);
    for (int i = 0; i < N; i++) {
        n += (size_t)snprintf(resp + n, cap - n, "$%d\r\n", LEN);
        memset(resp + n, 'a' + i % 26, LEN);
        n += LEN;
        n += (size_t)snprintf(resp + n, cap - n, "\r\n");
    }
    redisReader *r = reader();
    r->maxbuf = 0;
    assert_int_equal(redisReaderFeed(r, resp, n), REDIS_OK);
    free(resp);
    uint64_t fallback = rreply_stats().fallback;
    redisReply *x = next(r);
    assert_int_equal(x->elements, N);
    assert_true(rreply_stats().fallback > fallback);
    for (int i = 0; i < N; i++) {
        assert_int_equal(x->element[i]->len, LEN);
        assert_int_equal(x->element[i]->str[0], 'a' + i % 26);
        assert_int_equal(x->element[i]->str[LEN - 1], 'a' + i % 26);
    }
    rreply_free(x);
    assert_int_equal(rreply_stats().live, 0);
    assert_int_equal(rreply_stats().used, 0);
    redisReaderFree(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_message_is_built_in_the_arena),
        cmocka_unit_test(test_every_kind_of_reply),
        cmocka_unit_test(test_a_reply_being_read_is_never_overwritten),
        cmocka_unit_test(test_a_reply_larger_than_the_arena_falls_back_to_malloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
