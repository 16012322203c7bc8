/* cpusched: the CPU scheduling policy a confab process runs under.
 *
 * A message makes five stops in turn (gateway, broker, Redis,
 * broker, gateway), and each hand-over is a socket write that wakes the
 * next one. Linux wakes a socket's reader as a "sync" wake-up: it puts the
 * reader on the writer's CPU and lets it preempt the writer, which is right
 * when the writer is about to sleep and wrong here, where the writer is a
 * gateway in the middle of writing a batch to its clients. Under SCHED_BATCH
 * a woken process does not preempt the one running; it runs when that one
 * sleeps or on another CPU. With the gateway and the broker under it, the
 * steady benchmark's p50 fell from ~0.35 to ~0.25 ms and its p99 by about
 * a third in alternating runs (docs/steady.md); the baseline server, a
 * single process, did not move. It does not help, and may hurt a little,
 * where the cores are shared with unrelated busy processes. The policy
 * keeps the nice value and needs no privilege; children and threads
 * inherit it. */
#ifndef CF_CPUSCHED_H
#define CF_CPUSCHED_H

#include <stdbool.h>

/* With want, moves the calling thread (and so every process and thread it
 * creates afterwards) from SCHED_OTHER to SCHED_BATCH. Any other policy an
 * operator chose (real-time, idle, batch already) is kept. Logs what it did
 * on one line. Returns 0, or -errno when the kernel refused; the process
 * then carries on under its policy. */
int cf_cpusched_apply(bool want);

#endif
