/* Unit tests for broker/rreply: Redis replies built in an arena through
 * hiredis' own reader, the same trees its default functions build, and an
 * arena of each connection's that never overwrites a reply still alive or
 * still being read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asan.h"
#include "redis.h"
#include "rreply.h"
#include "wire.h"

/* A reader on an arena of its own, bounded at max bytes (the test frees
 * both) */
static redisReader *reader_of(struct rreply_arena **a, size_t max)
{
    *a = rreply_arena_new(max);
    assert_non_null(*a);
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    rreply_use(r, *a);
    return r;
}

static redisReader *reader(struct rreply_arena **a)
{
    return reader_of(a, RREPLY_MAX_BYTES);
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

/* Nothing of the arena lives, and it has started over */
static void assert_arena_empty(const struct rreply_arena *a)
{
    assert_int_equal(rreply_stats(a).live, 0);
    assert_int_equal(rreply_stats(a).used, 0);
}

/* Frees the reader, which gives back what it holds, and the arena, which
 * must be empty by then */
static void done(redisReader *r, struct rreply_arena *a)
{
    redisReaderFree(r);
    assert_arena_empty(a);
    rreply_arena_free(a);
}

static const char MESSAGE[] = "*3\r\n$7\r\nmessage\r\n$10\r\nroom:lobby\r\n$5\r\nh\0llo\r\n";

/* A subscriber's message: the array of three strings hiredis' default
 * functions build (a NUL inside a payload kept), from the arena, which is
 * empty again once it is freed */
static void test_a_message_is_built_in_the_arena(void **state)
{
    (void)state;
    struct rreply_arena *a;
    redisReader *r = reader(&a);
    assert_int_equal(redisReaderFeed(r, MESSAGE, sizeof MESSAGE - 1), REDIS_OK);
    redisReply *m = next(r);
    assert_non_null(m);
    assert_int_equal(m->type, REDIS_REPLY_ARRAY);
    assert_int_equal(m->elements, 3);
    assert_str(m->element[0], REDIS_REPLY_STRING, "message");
    assert_str(m->element[1], REDIS_REPLY_STRING, "room:lobby");
    assert_int_equal(m->element[2]->len, 5);
    assert_memory_equal(m->element[2]->str, "h\0llo", 5);
    struct cf_arena_stats in = rreply_stats(a);
    assert_int_equal(in.arena, 4);
    assert_int_equal(in.fallback, 0);
    assert_int_equal(in.live, 4);
    assert_true(in.used > 0);
    rreply_free(m);
    done(r, a);
}

/* Every kind of reply the broker gets: status, error, integer, nil, an
 * empty and a nil array, and arrays nested in arrays */
static void test_every_kind_of_reply(void **state)
{
    (void)state;
    struct rreply_arena *a;
    redisReader *r = reader(&a);
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
    assert_arena_empty(a);
    rreply_free(NULL);
    redisReaderFree(r);
    rreply_arena_free(a);
}

/* A reply whose end has not arrived keeps its objects when the reply read
 * before it is freed: the arena does not start over under it, and its end,
 * read later, does not land on its beginning */
static void test_a_reply_being_read_is_never_overwritten(void **state)
{
    (void)state;
    struct rreply_arena *a;
    redisReader *r = reader(&a);
    feed(r, "*3\r\n$7\r\nmessage\r\n$5\r\nroom1\r\n$5\r\nfirst\r\n"
            "*3\r\n$7\r\nmessage\r\n$10\r\nroom:later\r\n"); /* the second's payload to come */
    redisReply *first = next(r);
    assert_str(first->element[2], REDIS_REPLY_STRING, "first");
    assert_null(next(r)); /* the second, begun */
    assert_int_equal(rreply_stats(a).live, 4 + 3);
    rreply_free(first);
    assert_true(rreply_stats(a).used > 0); /* the second's objects live */
    /* a payload longer than the first reply took: in an arena started over
     * it would reach the second's own objects */
    char payload[601], bulk[640];
    memset(payload, 'Z', sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';
    snprintf(bulk, sizeof bulk, "$%zu\r\n%s\r\n", sizeof payload - 1, payload);
    feed(r, bulk);
    redisReply *m = next(r);
    assert_int_equal(m->type, REDIS_REPLY_ARRAY);
    assert_int_equal(m->elements, 3);
    assert_str(m->element[0], REDIS_REPLY_STRING, "message");
    assert_str(m->element[1], REDIS_REPLY_STRING, "room:later");
    assert_str(m->element[2], REDIS_REPLY_STRING, payload);
    rreply_free(m);
    done(r, a);
}

/* Each connection's arena is its own: another reader's replies come and go
 * without touching it while one of its replies is unfinished, and a reader
 * freed in the middle of a reply gives its objects back */
static void test_each_reader_has_its_own_arena(void **state)
{
    (void)state;
    struct rreply_arena *aa, *ab;
    redisReader *a = reader(&aa), *b = reader(&ab);
    feed(a, "*3\r\n$7\r\nmessage\r\n$10\r\nroom:first\r\n"); /* the payload to come */
    assert_null(next(a));
    size_t used = rreply_stats(aa).used;
    for (int i = 0; i < 50; i++) {
        feed(b, "*3\r\n$7\r\nmessage\r\n$11\r\nroom:second\r\n$3\r\nabc\r\n");
        redisReply *m = next(b);
        assert_str(m->element[1], REDIS_REPLY_STRING, "room:second");
        rreply_free(m);
        assert_arena_empty(ab);
        assert_int_equal(rreply_stats(aa).used, used);
    }
    feed(a, "$7\r\npayload\r\n");
    redisReply *m = next(a);
    assert_str(m->element[1], REDIS_REPLY_STRING, "room:first");
    assert_str(m->element[2], REDIS_REPLY_STRING, "payload");
    rreply_free(m);
    assert_arena_empty(aa);

    feed(a, "*2\r\n$5\r\nfirst\r\n"); /* cut short, then the reader goes */
    assert_null(next(a));
    redisReaderFree(a);
    assert_arena_empty(aa);
    redisReaderFree(b);
    rreply_arena_free(aa);
    rreply_arena_free(ab);
}

/* A reply larger than the arena reads whole: what does not fit is
 * malloc()ed, and freeing the mix leaves the arena empty */
static void test_a_reply_larger_than_the_arena_falls_back_to_malloc(void **state)
{
    (void)state;
    enum { N = 64, LEN = 1000 }; /* ~64 KB: four times the arena */
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
    struct rreply_arena *a;
    redisReader *r = reader(&a);
    assert_int_equal(redisReaderFeed(r, resp, n), REDIS_OK);
    free(resp);
    redisReply *x = next(r);
    assert_int_equal(x->elements, N);
    assert_true(rreply_stats(a).fallback > 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(x->element[i]->len, LEN);
        assert_int_equal(x->element[i]->str[0], 'a' + i % 26);
        assert_int_equal(x->element[i]->str[LEN - 1], 'a' + i % 26);
    }
    rreply_free(x);
    done(r, a);
}

/* An array claiming more elements than any reply of the broker's is
 * refused before anything is allocated for it: the reader fails */
static void test_an_absurd_array_is_refused(void **state)
{
    (void)state;
    struct rreply_arena *a;
    redisReader *r = reader(&a);
    feed(r, "*2\r\n*2000000000\r\n");
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_null(reply);
    redisReaderFree(r); /* frees the outer array, begun */
    assert_arena_empty(a);
    rreply_arena_free(a);
}

/* An array of `n` integers, then `tail`, as one string (the caller frees) */
static char *ints(size_t n, const char *head, const char *tail)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + n * 4 + tl + 32);
    assert_non_null(s);
    size_t k = (size_t)sprintf(s, "%s*%zu\r\n", head, n);
    for (size_t i = 0; i < n; i++, k += 4)
        memcpy(s + k, ":1\r\n", 4);
    memcpy(s + k, tail, tl + 1);
    return s;
}

/* Fails the reader on `resp` (fed in one go); the arena ends empty */
static void assert_refused(const char *resp)
{
    struct rreply_arena *a;
    redisReader *r = reader(&a);
    assert_int_equal(redisReaderFeed(r, resp, strlen(resp)), REDIS_OK);
    void *reply = NULL;
    if (redisReaderGetReply(r, &reply) != REDIS_ERR)
        fail_msg("a reply of %.40s... was not refused", resp);
    assert_null(reply);
    redisReaderFree(r);
    assert_arena_empty(a);
    rreply_arena_free(a);
}

/* The bound is a whole reply's: nested arrays each under it, which hiredis
 * allocates as their headers come (seven levels deep at most), were each
 * accepted, and a reply of arrays of arrays had no bound at all. The next
 * reply starts its own count. */
static void test_the_element_bound_is_the_whole_reply_s(void **state)
{
    (void)state;
    /* a join's or a page's most, with every member and the reply's own */
    assert_true(RREPLY_MAX_ELEMENTS >= 4 * (CF_WIRE_MAX_ITEMS + 100 + 7));
    size_t most = RREPLY_MAX_ELEMENTS, half = most / 2 + 1;
    char head[64];
    snprintf(head, sizeof head, "*%zu\r\n*%zu\r\n", most - 1, most - 1);
    assert_refused(head); /* two headers, each under the bound */
    snprintf(head, sizeof head, "*2\r\n");
    char tail[32];
    snprintf(tail, sizeof tail, "*%zu\r\n", half);
    char *two = ints(half, head, tail); /* the second child's header passes it */
    assert_refused(two);
    free(two);

    /* each reply alone under the bound: both read, twice over */
    struct rreply_arena *a;
    redisReader *r = reader(&a);
    char *one = ints(half, "*1\r\n", "");
    for (int i = 0; i < 4; i++) {
        feed(r, one);
        redisReply *m = next(r);
        assert_non_null(m);
        assert_int_equal(m->elements, 1);
        assert_int_equal(m->element[0]->elements, half);
        assert_int_equal(m->element[0]->element[half - 1]->integer, 1);
        rreply_free(m);
    }
    free(one);
    done(r, a);
}

/* What the element bound admits costs what rreply.h says: each element is
 * an object past the arena that the byte bound does not count, so the
 * bound is what keeps a reply of many small ones (4 bytes each on the wire)
 * from costing ~88 bytes each by the million. The largest flat reply it
 * admits must cost under 8 MiB, the reader's copy of its 256 KiB on the
 * wire and the array of pointers included (~6 MiB here; ~95 MiB at 2^20
 * elements). Both of those are large enough for glibc to mmap, which its
 * in-use count leaves out: the mmapped bytes are counted too. ASan's
 * allocator keeps no such counts: there the reply is only read. */
static size_t in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void test_the_largest_reply_admitted_is_small(void **state)
{
    (void)state;
    struct rreply_arena *a;
    redisReader *r = reader(&a);
    char *flat = ints(RREPLY_MAX_ELEMENTS, "", "");
    size_t before = in_use();
    feed(r, flat);
    redisReply *m = next(r);
    size_t cost = in_use() - before;
    assert_non_null(m);
    assert_int_equal(m->elements, RREPLY_MAX_ELEMENTS);
#ifndef CF_ASAN
    printf("a reply of %u integers costs %zu KiB (%zu bytes each)\n", RREPLY_MAX_ELEMENTS,
           cost >> 10, cost / RREPLY_MAX_ELEMENTS);
    /* (the objects, 80-byte blocks but the 256 in the arena, and the
     * array of pointers) */
    assert_true(cost > (size_t)RREPLY_MAX_ELEMENTS * 80);
    assert_true(cost < 8u << 20);
#else
    (void)cost;
#endif
    rreply_free(m);
    free(flat);
    done(r, a);
}

/* "$len\r\n" and len bytes of 'x', with "\r\n" when whole; *n set to the
 * length (the test frees it) */
static char *bulk(size_t len, bool whole, size_t *n)
{
    char *s = malloc(len + 32);
    assert_non_null(s);
    size_t k = (size_t)sprintf(s, "$%zu\r\n", len);
    memset(s + k, 'x', len);
    k += len;
    if (whole) {
        memcpy(s + k, "\r\n", 2);
        k += 2;
    }
    *n = k;
    return s;
}

/* A reply's bytes are bounded as its elements are: its strings summed, and
 * what the reader holds of one not yet whole (a bulk string of 512 MB was
 * buffered whole). Each reply has its own count, and each arena its bound. */
static void byte_bound(size_t max)
{
    size_t big = max / 2 + 1, n;
    char *b = bulk(big, true, &n);

    /* two strings each under the bound, over it together */
    struct rreply_arena *a;
    redisReader *r = reader_of(&a, max);
    feed(r, "*2\r\n");
    assert_int_equal(redisReaderFeed(r, b, n), REDIS_OK);
    assert_null(next(r));
    assert_false(rreply_refused(a));
    assert_int_equal(redisReaderFeed(r, b, n), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_true(rreply_refused(a));
    done(r, a);

    /* each alone: read, reply after reply, in arrays and alone */
    r = reader_of(&a, max);
    for (int i = 0; i < 4; i++) {
        if (i % 2 == 0)
            feed(r, "*1\r\n");
        assert_int_equal(redisReaderFeed(r, b, n), REDIS_OK);
        redisReply *m = next(r);
        assert_non_null(m);
        if (i % 2 == 0)
            assert_int_equal(m->element[0]->len, big);
        else
            assert_int_equal(m->len, big);
        rreply_free(m);
        assert_false(rreply_pending_over(r));
    }
    assert_false(rreply_refused(a));
    done(r, a);
    free(b);

    /* one string over it: refused whole ... */
    b = bulk(max + 1, true, &n);
    r = reader_of(&a, max);
    assert_int_equal(redisReaderFeed(r, b, n), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_true(rreply_refused(a));
    done(r, a);
    free(b);
    /* ... and seen while it arrives: the reader holds what it has read */
    b = bulk(max + 1000, false, &n);
    r = reader_of(&a, max);
    assert_int_equal(redisReaderFeed(r, b, max - 16), REDIS_OK); /* and its header */
    assert_null(next(r));
    assert_false(rreply_pending_over(r));
    assert_int_equal(redisReaderFeed(r, b + max - 16, 32), REDIS_OK);
    assert_null(next(r));
    assert_true(rreply_pending_over(r));
    done(r, a);
    free(b);
}

static void test_the_byte_bound_is_the_whole_reply_s(void **state)
{
    (void)state;
    /* the publisher's: a join or page at the wire's largest budget, with
     * the newest message over it and the members, is read whole */
    assert_true(RREPLY_MAX_BYTES >= 2 * (CF_WIRE_MAX_FRAME + CF_WIRE_MAX_EVENT + 100 * 1024));
    byte_bound(RREPLY_MAX_BYTES);
    /* the subscriber's: a message of any frame's size is read whole (and
     * then dropped as foreign when over CF_WIRE_MAX_EVENT) */
    assert_true(RREPLY_SUB_MAX_BYTES > CF_WIRE_MAX_FRAME + 256);
    byte_bound(RREPLY_SUB_MAX_BYTES);
    /* the log names the bound; none is over RREPLY_MAX_BYTES */
    struct rreply_arena *a = rreply_arena_new(RREPLY_SUB_MAX_BYTES);
    assert_non_null(strstr(rreply_too_big(a), "over 8192 KiB"));
    rreply_arena_free(a);
    a = rreply_arena_new(SIZE_MAX);
    assert_non_null(strstr(rreply_too_big(a), "over 16384 KiB"));
    rreply_arena_free(a);
    redisReader *r = reader_of(&a, SIZE_MAX);
    size_t n;
    char *b = bulk(RREPLY_MAX_BYTES + 1, true, &n);
    assert_int_equal(redisReaderFeed(r, b, n), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_true(rreply_refused(a));
    done(r, a);
    free(b);
    assert_non_null(strstr(rreply_too_big(NULL), "over 16384 KiB"));
}

/* A connection whose arena could not be allocated reads the same replies,
 * every object malloc()ed (LSan checks they are all freed) */
static void test_without_an_arena_every_object_is_malloced(void **state)
{
    (void)state;
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    rreply_use(r, NULL);
    assert_int_equal(redisReaderFeed(r, MESSAGE, sizeof MESSAGE - 1), REDIS_OK);
    redisReply *m = next(r);
    assert_str(m->element[1], REDIS_REPLY_STRING, "room:lobby");
    rreply_free(m);
    feed(r, "*2\r\n$5\r\nfirst\r\n"); /* cut short, then the reader goes */
    assert_null(next(r));
    redisReaderFree(r);
    assert_int_equal(rreply_stats(NULL).arena, 0);
}

#ifdef CF_ASAN
/* Under ASan a reply freed while another is being read is poisoned at
 * once, not only when the arena starts over: a use of it after its free is
 * reported */
static void test_a_freed_reply_is_poisoned(void **state)
{
    (void)state;
    struct rreply_arena *a;
    redisReader *r = reader(&a);
    feed(r, "*3\r\n$7\r\nmessage\r\n$5\r\nroom1\r\n$5\r\nfirst\r\n"
            "*2\r\n$7\r\nmessage\r\n"); /* the second, begun */
    redisReply *first = next(r);
    const char *payload = first->element[2]->str;
    assert_false(__asan_address_is_poisoned(payload));
    assert_null(next(r));
    rreply_free(first);
    assert_true(rreply_stats(a).live > 0); /* the second lives: no start over */
    assert_true(__asan_address_is_poisoned(payload));
    assert_true(__asan_address_is_poisoned(first));
    redisReaderFree(r);
    assert_arena_empty(a);
    rreply_arena_free(a);
}
#endif

static redisReply err_reply(const char *text)
{
    return (redisReply){.type = REDIS_REPLY_ERROR, .str = (char *)text, .len = strlen(text)};
}

/* Error codes are found as Redis 7 writes them, and as Redis 5 and 6 report
 * a check made inside a script (a position prefix and the raw reply text):
 * a READONLY there must still reconnect the publisher. */
static void test_error_codes_in_every_form(void **state)
{
    (void)state;
    static const char *const readonly[] = {
        "READONLY You can't write against a read only replica.",
        "@user_script: 152: -READONLY You can't write against a read only replica.\r\n",
        ("ERR Error running script (call to f_0123): @user_script:1: @user_script: 1: "
         "-READONLY You can't write against a read only replica."),
        "ERR not run: an earlier send in its batch failed: READONLY You can't write",
        "READONLY",
    };
    for (size_t i = 0; i < sizeof readonly / sizeof readonly[0]; i++) {
        redisReply r = err_reply(readonly[i]);
        if (!rbridge_error_is(&r, "READONLY"))
            fail_msg("READONLY not found in \"%s\"", readonly[i]);
    }
    static const char *const not_it[] = {
        "READONLYX something",
        "ERR unknown command 'xREADONLY'",
        "WRONGTYPE Operation against a key holding the wrong kind of value (cf:{READONLY}:meta)",
        "",
    };
    for (size_t i = 0; i < sizeof not_it / sizeof not_it[0]; i++) {
        redisReply r = err_reply(not_it[i]);
        if (rbridge_error_is(&r, "READONLY"))
            fail_msg("READONLY found in \"%s\"", not_it[i]);
    }
    redisReply oom = err_reply("@user_script: 9: -OOM command not allowed when used memory > "
                               "'maxmemory'.");
    assert_true(rbridge_error_is(&oom, "OOM"));
    redisReply status = {.type = REDIS_REPLY_STATUS, .str = "READONLY", .len = 8};
    assert_false(rbridge_error_is(&status, "READONLY"));
    assert_false(rbridge_error_is(NULL, "READONLY"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_message_is_built_in_the_arena),
        cmocka_unit_test(test_error_codes_in_every_form),
        cmocka_unit_test(test_every_kind_of_reply),
        cmocka_unit_test(test_a_reply_being_read_is_never_overwritten),
        cmocka_unit_test(test_each_reader_has_its_own_arena),
        cmocka_unit_test(test_a_reply_larger_than_the_arena_falls_back_to_malloc),
        cmocka_unit_test(test_without_an_arena_every_object_is_malloced),
        cmocka_unit_test(test_an_absurd_array_is_refused),
        cmocka_unit_test(test_the_element_bound_is_the_whole_reply_s),
        cmocka_unit_test(test_the_largest_reply_admitted_is_small),
        cmocka_unit_test(test_the_byte_bound_is_the_whole_reply_s),
#ifdef CF_ASAN
        cmocka_unit_test(test_a_freed_reply_is_poisoned),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
