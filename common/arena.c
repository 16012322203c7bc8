/* arena: see arena.h. */
#include "arena.h"

#include "asan.h"

void cf_arena_init(struct cf_arena *a, void *buf, size_t size)
{
    a->buf = buf;
    a->size = size;
    a->top = 0;
    a->live = 0;
    a->handed = 0;
    a->refused = 0;
    CF_POISON(buf, size);
}

struct cf_arena_stats cf_arena_stats(const struct cf_arena *a)
{
    if (!a)
        return (struct cf_arena_stats){0};
    return (struct cf_arena_stats){a->handed, a->refused, a->live, a->top};
}

void cf_arena_done(struct cf_arena *a)
{
    CF_UNPOISON(a->buf, a->size);
}
