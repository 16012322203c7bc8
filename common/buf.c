#include "buf.h"

#include <stdlib.h>

struct cf_buf *cf_buf_new(size_t head, size_t cap)
{
    if (head > UINT32_MAX / 2 || cap > UINT32_MAX / 2)
        return NULL;
    struct cf_buf *b = malloc(sizeof *b + head + cap);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = 0;
    b->head = (uint32_t)head;
    b->cap = (uint32_t)(head + cap);
    return b;
}

struct cf_buf *cf_buf_ref(struct cf_buf *b)
{
    b->refs++;
    return b;
}

void cf_buf_unref(struct cf_buf *b)
{
    if (b && --b->refs == 0)
        free(b);
}
