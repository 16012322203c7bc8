/* wire_fixture: what test_wire.c and test_wire_v1.c share: one decoder for
 * the group, and string helpers. Include after cmocka.h. */
#ifndef TEST_WIRE_FIXTURE_H
#define TEST_WIRE_FIXTURE_H

#include <string.h>

#include "wire.h"

static struct cf_wire_decoder *g_dec;

static int group_setup(void **state)
{
    (void)state;
    g_dec = cf_wire_decoder_new();
    return g_dec ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    cf_wire_decoder_free(g_dec);
    g_dec = NULL;
    return 0;
}

static inline struct cf_str str_of(const char *s)
{
    return (struct cf_str){s, (uint32_t)strlen(s)};
}

static inline void assert_str_is(struct cf_str got, const char *want)
{
    assert_int_equal(got.len, strlen(want));
    if (got.len)
        assert_memory_equal(got.p, want, got.len);
}

#endif
