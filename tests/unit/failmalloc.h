/* failmalloc: makes the code under test see malloc fail while fail_malloc
 * is set. For a test linked with -Wl,--wrap=malloc (tests/unit/CMakeLists.txt):
 * the linker sends the calls of the code linked into it here, while
 * cmocka's and libc's own allocations (in shared libraries) go on as usual.
 * Include it in one file of the test. */
#ifndef TEST_FAILMALLOC_H
#define TEST_FAILMALLOC_H

#include <stdbool.h>
#include <stddef.h>

static bool fail_malloc;

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);

void *__wrap_malloc(size_t n)
{
    return fail_malloc ? NULL : __real_malloc(n);
}

#endif
