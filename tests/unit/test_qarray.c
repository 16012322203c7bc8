/* qarray: a session queue's array given back is the one handed out next for
 * its size, what each size keeps is bounded, other sizes are not kept, and
 * what a burst left is given back once idle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "asan.h"
#include "qarray.h"

static void test_an_array_given_back_is_reused(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {4, 8, 16, 32};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct cf_buf **q = qarray_get(sizes[i]);
        assert_non_null(q);
        memset(q, 0xab, sizes[i] * sizeof *q); /* all of it is the caller's */
        qarray_put(q, sizes[i]);
#ifdef CF_ASAN
        assert_int_equal(qarray_held(), 0); /* ASan: every put is a free */
#else
        assert_int_equal(qarray_held(), 1);
        struct cf_buf **again = qarray_get(sizes[i]);
        assert_ptr_equal(again, q); /* no malloc for the next flush's queue */
        assert_int_equal(qarray_held(), 0);
        qarray_put(again, sizes[i]);
        /* not handed out for another size (the next one is kept too, but
         * for 32 slots: that one goes to malloc) */
        struct cf_buf **other = qarray_get(sizes[i] * 2);
        assert_ptr_not_equal(other, q);
        qarray_put(other, sizes[i] * 2);
        assert_int_equal(qarray_held(), sizes[i] < 32 ? 2 : 1);
        assert_ptr_equal(qarray_get(sizes[i]), q);
        if (sizes[i] < 32)
            assert_ptr_equal(qarray_get(sizes[i] * 2), other);
        assert_int_equal(qarray_held(), 0);
        free(q); /* malloc's blocks, as every array is */
        if (sizes[i] < 32)
            free(other);
#endif
    }
}

/* A slow reader's long queue goes back to malloc; and each size keeps at
 * most 256 KiB, so a burst of thousands of busy sessions leaves a bounded
 * amount behind. */
static void test_what_is_kept_is_bounded(void **state)
{
    (void)state;
    struct cf_buf **big = qarray_get(64);
    assert_non_null(big);
    qarray_put(big, 64);
    assert_int_equal(qarray_held(), 0);
    enum { N = 9000 };
    static struct cf_buf **q[N];
    for (int i = 0; i < N; i++)
        assert_non_null(q[i] = qarray_get(4));
    for (int i = 0; i < N; i++)
        qarray_put(q[i], 4);
#ifdef CF_ASAN
    assert_int_equal(qarray_held(), 0);
#else
    assert_int_equal(qarray_held(), 256 * 1024 / (4 * sizeof(struct cf_buf *)));
#endif
    qarray_put(NULL, 4); /* a no-op */
}

/* Arrays no queue took for a whole interval go back to malloc: after a
 * burst, two trims leave nothing held. */
static void test_idle_arrays_are_trimmed(void **state)
{
    (void)state;
    qarray_trim();
    qarray_trim(); /* whatever the tests before left */
    assert_int_equal(qarray_held(), 0);
    struct cf_buf **q[5];
    for (int i = 0; i < 5; i++)
        assert_non_null(q[i] = qarray_get(i < 3 ? 4 : 16));
    for (int i = 0; i < 5; i++)
        qarray_put(q[i], i < 3 ? 4 : 16);
#ifdef CF_ASAN
    assert_int_equal(qarray_held(), 0);
    assert_int_equal(qarray_trim(), 0);
#else
    assert_int_equal(qarray_held(), 5);
    assert_int_equal(qarray_trim(), 0); /* in use during this interval */
    assert_int_equal(qarray_held(), 5);
    assert_int_equal(qarray_trim(), 5);
    assert_int_equal(qarray_held(), 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_array_given_back_is_reused),
        cmocka_unit_test(test_what_is_kept_is_bounded),
        cmocka_unit_test(test_idle_arrays_are_trimmed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
