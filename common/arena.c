/* arena: see arena.h. */
#include "arena.h"

#include "asan.h"

void cf_arena_init(struct cf_arena *a, void *buf, size_t size)
{
    a->buf = buf;
    a->size = size;
    a->top = 0;
    a->live = 0;
    CF_POISON(buf, size);
}

void cf_arena_done(struct cf_arena *a)
{
    CF_UNPOISON(a->buf, a->size);
}
