/* pace: when a busy gateway writes its clients again.
 *
 * One send() per delivery costs ~10 us on loopback, and a bare server
 * reaches its figures because a busy loop pass has several messages for each
 * client by the time it writes. The gateway's passes are short (epoll), so
 * a busy gateway would write each message on its own; session.c flushes
 * every client with output once per pass, and asks this module when the
 * next flush may begin.
 *
 * - A flush under PACE_FROM_US: the next one may begin at once, so light
 *   load keeps its latency.
 * - A longer one (it wrote many clients): the next waits as long as it took,
 *   at most PACE_MAX_US, and clients get several messages per send().
 * - A gateway short of CPU: its passes outlast the waits, so a flush begins
 *   late, at the end of the pass that was running when its time came, with
 *   output waiting since before then. When a flush began PACE_LATE_US late
 *   and took as long, the next waits twice as long, at most
 *   PACE_SATURATED_MAX_US. A flush that is long for another reason (one room
 *   of thousands, or the process descheduled in the middle) began on time,
 *   and keeps the plain wait: a longer wait after a stall only adds to it.
 *   (A stall that falls between a flush's due time and its start does make
 *   it late; it is taken for saturation only if the flush also took
 *   PACE_LATE_US, which at light load it does not.)
 * - A flush counts as at most PACE_SEND_US a client it wrote: one that took
 *   longer was held up (the process descheduled in the middle, a VM's stall:
 *   a few a second on the development VM), and waiting as long again after
 *   it held the messages that came meanwhile for the length of the stall a
 *   second time (docs/benchmarks.md, "What each change bought").
 * - A client's queue past half its bound, or a drain, lets the next flush go
 *   at once (pace_release).
 *
 * Times are CLOCK_MONOTONIC microseconds (cf_mono_us). Not thread-safe:
 * one per loop. */
#ifndef CONFAB_GATEWAY_PACE_H
#define CONFAB_GATEWAY_PACE_H

#include <stdbool.h>
#include <stdint.h>

#define PACE_FROM_US 30
#define PACE_MAX_US 10000
#define PACE_LATE_US 1000
#define PACE_SATURATED_MAX_US 50000
/* More than a write to one client takes here (~10 us on loopback, 20-30 on
 * a bad hour), so that it bounds only a flush that was held up. */
#define PACE_SEND_US 40

struct pace {
    int64_t due_us;        /* the next flush may begin then; 0: at once */
    int64_t waiting_since; /* when output began waiting for the next flush */
    uint64_t saturated;    /* flushes that found the gateway short of CPU */
};

/* Output was queued while none was waiting for a flush. */
void pace_output(struct pace *p, int64_t now_us);

/* Whether a flush may begin at now_us. */
static inline bool pace_may_flush(const struct pace *p, int64_t now_us)
{
    return now_us >= p->due_us;
}

/* The next flush may begin at once: a client's queue is near its bound (a
 * wait must not turn a reader into a slow consumer), or the gateway drains. */
static inline void pace_release(struct pace *p)
{
    p->due_us = 0;
}

/* A flush ran from start_us to end_us and wrote to `clients` clients: sets
 * when the next may begin. */
void pace_flushed(struct pace *p, int64_t start_us, int64_t end_us, uint32_t clients);

#endif
