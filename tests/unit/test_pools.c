/* Unit tests for common/'s pools: the free list (freelist.h) and the
 * arena (arena.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "asan.h"
#include "freelist.h"

/* Recycled blocks come back (except under ASan, where every put frees), at
 * most `keep` are held, and drain frees them all. */
static void test_freelist(void **state)
{
    (void)state;
    struct cf_freelist f = CF_FREELIST_INIT(40, 3);
    void *p[5];
    for (int i = 0; i < 5; i++) {
        p[i] = cf_fl_get(&f);
        assert_non_null(p[i]);
        memset(p[i], 0xab, 40); /* the whole block is the caller's */
    }
    for (int i = 0; i < 5; i++)
        cf_fl_put(&f, p[i]);
    cf_fl_put(&f, NULL);
#ifdef CF_ASAN
    assert_int_equal(f.n, 0);
#else
    assert_int_equal(f.n, 3); /* the last two went back to malloc */
    void *q = cf_fl_get(&f);
    assert_ptr_equal(q, p[2]); /* the last one kept comes first */
    assert_int_equal(f.n, 2);
    cf_fl_put(&f, q);
#endif
    cf_fl_drain(&f);
    assert_int_equal(f.n, 0);
    assert_null(f.head);
    /* a block smaller than a pointer still holds the link */
    struct cf_freelist tiny = CF_FREELIST_INIT(1, 2);
    void *t = cf_fl_get(&tiny);
    assert_non_null(t);
    cf_fl_put(&tiny, t);
    cf_fl_drain(&tiny);
}

/* Trim frees what no get needed since the trim before: a burst's blocks go
 * back two trims after it, the peak in use over an interval stays, and the
 * blocks kept are the ones put last (the chain's head). */
static void test_freelist_trim(void **state)
{
    (void)state;
    struct cf_freelist f = CF_FREELIST_INIT(32, 100);
    void *p[10];
    for (int i = 0; i < 10; i++)
        assert_non_null(p[i] = cf_fl_get(&f)); /* from malloc: the list is empty */
    for (int i = 0; i < 10; i++)
        cf_fl_put(&f, p[i]);
    assert_int_equal(cf_fl_trim(&f), 0); /* just used */
#ifdef CF_ASAN
    assert_int_equal(f.n, 0);
    assert_int_equal(cf_fl_trim(&f), 0);
#else
    assert_int_equal(f.n, 10);
    /* an interval in which at most three were out at once */
    void *a = cf_fl_get(&f), *b = cf_fl_get(&f), *c = cf_fl_get(&f);
    cf_fl_put(&f, c);
    cf_fl_put(&f, b);
    cf_fl_put(&f, a);
    assert_int_equal(f.n, 10);
    assert_int_equal(cf_fl_trim(&f), 7);
    assert_int_equal(f.n, 3);
    assert_ptr_equal(f.head, a);
    assert_ptr_equal(*(void **)a, b);
    assert_ptr_equal(*(void **)b, c);
    assert_null(*(void **)c);
    /* all three out, then back: none was idle */
    for (int i = 0; i < 3; i++)
        p[i] = cf_fl_get(&f);
    assert_null(f.head);
    for (int i = 2; i >= 0; i--)
        cf_fl_put(&f, p[i]);
    assert_int_equal(cf_fl_trim(&f), 0);
    /* an interval without a get: the rest goes */
    assert_int_equal(cf_fl_trim(&f), 3);
    assert_int_equal(f.n, 0);
    assert_null(f.head);
    assert_int_equal(cf_fl_trim(&f), 0);
#endif
    cf_fl_drain(&f);
}

/* The arena: aligned blocks while they fit, NULL once full; it starts over
 * only when every block is freed, never under one that lives; blocks of
 * cf_arena_alloc_or_malloc come from it or from malloc() and are freed
 * alike */
static void test_arena(void **state)
{
    (void)state;
    static _Alignas(max_align_t) unsigned char block[1024];
    struct cf_arena a;
    cf_arena_init(&a, block, sizeof block);
    unsigned char *p = cf_arena_alloc(&a, 10), *q = cf_arena_alloc(&a, 100);
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    assert_int_equal((uintptr_t)q % _Alignof(max_align_t), 0);
    assert_true(q >= p + 10);
    assert_true(cf_arena_holds(&a, p) && cf_arena_holds(&a, q));
    memset(p, 'p', 10);
    memset(q, 'q', 100);
    assert_int_equal(a.live, 2);
    cf_arena_free(p);
    assert_true(a.top > 0); /* q lives: no start over */
    unsigned char *r = cf_arena_alloc(&a, 10);
    assert_true(r > q); /* after q, not over p's place while q lives */
    assert_int_equal(q[0], 'q');
    assert_int_equal(q[99], 'q');
    cf_arena_free(q);
    cf_arena_free(r);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.top, 0);
    /* full: NULL, and a size past the block (or near SIZE_MAX) too */
    assert_null(cf_arena_alloc(&a, sizeof block));
    assert_null(cf_arena_alloc(&a, SIZE_MAX));
    void *many[64];
    size_t n = 0;
    while (n < 64 && (many[n] = cf_arena_alloc(&a, 48)))
        n++;
    assert_true(n > 4 && n < 64);
    for (size_t i = 0; i < n; i++)
        cf_arena_free(many[i]);
    assert_int_equal(a.top, 0);
#ifndef CF_ASAN
    /* a block costs its size rounded up to the alignment and a header of
     * two words, no more: a 48-byte redisReply takes 64 bytes, not 80 */
    assert_true(sizeof(struct cf_arena_hdr) <= 16);
    void *one = cf_arena_alloc(&a, 48);
    assert_int_equal(a.top, 48 + sizeof(struct cf_arena_hdr));
    cf_arena_free(one);
#endif
    /* zero bytes: each its own block inside the arena, up to the last one
     * (else a free would take it for malloc()'s) */
    n = 0;
    while (n < 64 && (many[n] = cf_arena_alloc(&a, 0))) {
        assert_true(cf_arena_holds(&a, many[n]));
        n++;
    }
    assert_true(n > 4 && n < 64);
    for (size_t i = 0; i < n; i++)
        cf_arena_free(many[i]);
    assert_int_equal(a.top, 0);
#ifdef CF_ASAN
    /* a live block's header is poisoned: a write before the block shows */
    unsigned char *h = cf_arena_alloc(&a, 8);
    assert_false(__asan_address_is_poisoned(h));
    assert_true(__asan_address_is_poisoned(h - 1));
    assert_true(__asan_address_is_poisoned(h - sizeof(struct cf_arena_hdr)));
    cf_arena_free(h);
    assert_true(__asan_address_is_poisoned(h));
#endif
    /* either source, freed alike (LSan checks the malloc()ed one) */
    struct cf_arena_stats st = cf_arena_stats(&a);
    void *x = cf_arena_alloc_or_malloc(&a, 16);
    assert_true(cf_arena_holds(&a, x));
    void *y = cf_arena_alloc_or_malloc(&a, 4096);
    assert_false(cf_arena_holds(&a, y));
    memset(y, 0, 4096);
    void *z = cf_arena_alloc_or_malloc(NULL, 8);
    assert_non_null(z);
    /* counted: one handed out, one that did not fit (NULL has no arena) */
    assert_int_equal(cf_arena_stats(&a).arena, st.arena + 1);
    assert_int_equal(cf_arena_stats(&a).fallback, st.fallback + 1);
    assert_int_equal(cf_arena_stats(NULL).arena, 0);
    cf_arena_release(y);
    cf_arena_release(z);
    assert_int_equal(a.live, 1);
    cf_arena_release(x);
    assert_int_equal(a.live, 0);
    assert_int_equal(a.top, 0);
    cf_arena_done(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freelist),
        cmocka_unit_test(test_freelist_trim),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
