/* qarray: see qarray.h. */
#include "qarray.h"

#include <stdlib.h>

#include "freelist.h"

#define SLOT sizeof(struct cf_buf *)

static struct cf_freelist lists[] = {
    CF_FREELIST_INIT(4 * SLOT, 8192),
    CF_FREELIST_INIT(8 * SLOT, 4096),
    CF_FREELIST_INIT(16 * SLOT, 2048),
    CF_FREELIST_INIT(32 * SLOT, 1024),
};
#define NLISTS (sizeof lists / sizeof lists[0])

static struct cf_freelist *list_of(uint32_t slots)
{
    for (size_t i = 0; i < NLISTS; i++)
        if (lists[i].size == slots * SLOT)
            return &lists[i];
    return NULL;
}

struct cf_buf **qarray_get(uint32_t slots)
{
    struct cf_freelist *f = list_of(slots);
    return f ? cf_fl_get(f) : malloc(slots * SLOT);
}

void qarray_put(struct cf_buf **q, uint32_t slots)
{
    struct cf_freelist *f = list_of(slots);
    if (f)
        cf_fl_put(f, q);
    else
        free(q);
}

size_t qarray_trim(void)
{
    size_t n = 0;
    for (size_t i = 0; i < NLISTS; i++)
        n += cf_fl_trim(&lists[i]);
    return n;
}

size_t qarray_held(void)
{
    size_t n = 0;
    for (size_t i = 0; i < NLISTS; i++)
        n += lists[i].n;
    return n;
}
