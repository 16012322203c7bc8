#include "cpusched.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "log.h"

static const char *policy_name(int p)
{
    switch (p) {
    case SCHED_OTHER:
        return "SCHED_OTHER";
    case SCHED_BATCH:
        return "SCHED_BATCH";
    case SCHED_IDLE:
        return "SCHED_IDLE";
    case SCHED_FIFO:
        return "SCHED_FIFO";
    case SCHED_RR:
        return "SCHED_RR";
    default:
        return "a policy of its own";
    }
}

int cf_cpusched_apply(bool want)
{
    int cur = sched_getscheduler(0);
    if (cur < 0) {
        int err = errno;
        CF_WARN("sched", "cannot read the CPU scheduling policy (%s); keeping it", strerror(err));
        return -err;
    }
    cur &= ~SCHED_RESET_ON_FORK;
    if (!want) {
        CF_INFO("sched", "SCHED_BATCH=0: keeping %s", policy_name(cur));
        return 0;
    }
    if (cur != SCHED_OTHER) {
        CF_INFO("sched", "keeping %s, set by whoever started this process", policy_name(cur));
        return 0;
    }
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(0, SCHED_BATCH, &sp) < 0) {
        int err = errno;
        CF_WARN("sched",
                "cannot switch to SCHED_BATCH (%s); running under SCHED_OTHER, where "
                "confab's processes preempt each other and latency is higher when they share "
                "CPUs. Start it under SCHED_BATCH (systemd CPUSchedulingPolicy=batch, chrt "
                "--batch 0) or allow sched_setscheduler; SCHED_BATCH=0 silences this",
                strerror(err));
        return -err;
    }
    CF_INFO("sched", "running under SCHED_BATCH (SCHED_BATCH=0 keeps SCHED_OTHER)");
    return 0;
}
