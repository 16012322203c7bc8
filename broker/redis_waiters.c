/* redis_waiters: the publisher connection's ring of waiters (redis_int.h),
 * one per command queued or sent and not answered yet, in command order. */
#include <errno.h>
#include <stdlib.h>

#include "redis_int.h"

/* The ring moved into `cap` places (a power of 2, at least w_count). */
static bool resize(struct rconn *rc, uint32_t cap)
{
    struct waiter *n = malloc(sizeof *n * cap);
    if (!n)
        return false;
    for (uint32_t i = 0; i < rc->w_count; i++)
        n[i] = rc->w[(rc->w_head + i) & (rc->w_cap - 1)];
    free(rc->w);
    rc->w = n;
    rc->w_head = 0;
    rc->w_cap = cap;
    return true;
}

int rb__push_waiter(struct rconn *rc, struct waiter w, bool bounded)
{
    if (bounded && rc->w_count >= RBRIDGE_MAX_INFLIGHT)
        return -ENOBUFS;
    if (rc->w_count == rc->w_cap && !resize(rc, rc->w_cap ? rc->w_cap * 2 : 64))
        return -ENOMEM;
    rc->w[(rc->w_head + rc->w_count) & (rc->w_cap - 1)] = w;
    rc->w_count++;
    return 0;
}

bool rb__pop_waiter(struct rconn *rc, struct waiter *out)
{
    if (!rc->w_count)
        return false;
    *out = rc->w[rc->w_head];
    rc->w_head = (rc->w_head + 1) & (rc->w_cap - 1);
    rc->w_count--;
    return true;
}

void rb__shrink_waiters(struct rconn *rc)
{
    uint32_t cap = 64;
    while (cap < rc->w_count * 2u)
        cap *= 2;
    if (rc->w_cap > 1024 && rc->w_cap >= cap * 4u)
        resize(rc, cap); /* out of memory: keeps the larger one */
}
