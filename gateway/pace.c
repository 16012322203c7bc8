/* pace: see pace.h. */
#include "pace.h"

void pace_output(struct pace *p, int64_t now_us)
{
    p->waiting_since = now_us;
}

void pace_flushed(struct pace *p, int64_t start_us, int64_t end_us)
{
    int64_t took = end_us - start_us;
    /* late only when output was waiting as the wait ended: a flush after a
     * quiet spell begins whenever the output came */
    bool late = p->due_us && p->waiting_since <= p->due_us && start_us - p->due_us >= PACE_LATE_US;
    bool saturated = late && took >= PACE_LATE_US;
    int64_t wait = saturated ? 2 * took : took;
    int64_t cap = saturated ? PACE_SATURATED_MAX_US : PACE_MAX_US;
    p->saturated += saturated;
    p->due_us = took < PACE_FROM_US ? 0 : end_us + (wait < cap ? wait : cap);
}
