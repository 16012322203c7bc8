/* jalloc_check: for the unit tests of modules that parse client frames in
 * gateway/jalloc's arena. */
#ifndef CONFAB_TEST_JALLOC_CHECK_H
#define CONFAB_TEST_JALLOC_CHECK_H

#include <stdio.h>

#include "jalloc.h"

/* failed (cmocka's count), or 1 if a parsed tree was never freed: LSan
 * cannot see into the arena, and in the gateway such a leak would hold the
 * arena for good. */
static inline int jalloc_check_all_freed(int failed)
{
    if (jalloc_stats().live) {
        fprintf(stderr, "%u blocks of parsed frames never freed\n", jalloc_stats().live);
        return 1;
    }
    return failed;
}

#endif
