/* pace: see pace.h. */
#include "pace.h"

void pace_output(struct pace *p, int64_t now_us)
{
    p->waiting_since = now_us;
}

void pace_flushed(struct pace *p, int64_t start_us, int64_t end_us, uint32_t clients)
{
    int64_t took = end_us - start_us;
    /* A flush longer than its clients' writes can take was held up (the
     * process descheduled in it, the VM's vCPU not run): it is taken as what
     * the writes could have taken, since a wait as long as the hold-up would
     * hold what came meanwhile as long again, for no batching gained. */
    int64_t work = (int64_t)clients * PACE_SEND_US;
    if (took > work)
        took = work;
    /* late only when output was waiting as the wait ended: a flush after a
     * quiet spell begins whenever the output came */
    bool late = p->due_us && p->waiting_since <= p->due_us && start_us - p->due_us >= PACE_LATE_US;
    bool saturated = late && took >= PACE_LATE_US;
    int64_t wait = saturated ? 2 * took : took;
    int64_t cap = saturated ? PACE_SATURATED_MAX_US : PACE_MAX_US;
    p->saturated += saturated;
    p->due_us = took < PACE_FROM_US ? 0 : end_us + (wait < cap ? wait : cap);
}
