/* step: one ramp step's figures and the verdict on them.
 *
 * account.c fills a step_stats while the step runs and at its end, main.c
 * judges it, report.c prints it; all three read loss and rates through the
 * functions here, so that a step cannot show one figure in the report and
 * be judged on another. Pure: no clock, no I/O; the caller owns the struct.
 *
 * A step passes only when it measured what it claims: every scheduled
 * message was sent on time by a generator that kept up, to a population
 * that the server neither refused nor cut, and it came back. Each way to
 * fail is a reason (STEP_REASONS), reported by name. */
#ifndef BENCH_STEP_H
#define BENCH_STEP_H

#include "hist.h"

#include <stdint.h>

/* X(bit name, name in the report) */
#define STEP_REASONS(X)                                                                            \
    X(NOTHING_EXPECTED, "nothing_expected")                                                        \
    X(LOSS, "loss")                                                                                \
    X(P99, "p99")                                                                                  \
    X(SEND_BLOCKED, "send_blocked")                                                                \
    X(SENT_BELOW_SCHEDULE, "sent_below_schedule")                                                  \
    X(BEHIND_SCHEDULE, "generator_behind_schedule")                                                \
    X(CLOSED, "closed")                                                                            \
    X(SERVER_ERRORS, "server_errors")                                                              \
    X(CONNECT_ERRORS, "connect_errors")                                                            \
    X(JOIN_ERRORS, "join_errors")

enum step_reason_bit {
#define STEP_X_BIT(n, s) STEP_B_##n,
    STEP_REASONS(STEP_X_BIT)
#undef STEP_X_BIT
        STEP_NREASONS
};

/* The generator keeps latency stamped at the actual send, so a late send
 * does not add to it; but a generator 50 ms behind its schedule has sent the
 * messages of those 50 ms as one burst: the load was not the one claimed,
 * and the generator, not the server, was the limit for that moment. 50 ms is
 * a dozen scheduler ticks (4 ms here) and many loop passes, a fifth of the
 * 250 ms latency bound; a quick steady run on this 2-core machine, busy with
 * other work, saw 33-37 ms. */
#define STEP_PACE_LAG_MS 50.0
/* Sent below this share of the scheduled messages: the step's rate was not
 * offered (the same bound as the default loss bound, 0.1 %). */
#define STEP_SENT_FRACTION 0.999

typedef struct step_limits {
    double loss, p99_ms;  /* --stop-loss, --stop-p99-ms */
    double pace_lag_ms;   /* STEP_PACE_LAG_MS */
    double sent_fraction; /* STEP_SENT_FRACTION */
} step_limits;

typedef struct step_stats {
    double rate, seconds; /* msg/s asked; length of the send phase, s */
    double gen_cpu;       /* generator CPU per wall second, send phase and drain */
    double gen_cpu_send;  /* the same over the send phase only (drain dilutes it) */
    uint64_t t0, t_last;  /* ns: step start, last first-copy delivery of it (0: none) */
    uint64_t scheduled;   /* messages due by the schedule: rate x seconds */
    uint64_t sent, send_blocked;
    uint64_t expected;     /* sent x members of the sender's room at that instant */
    uint64_t delivered;    /* first copies of this step's messages */
    uint64_t lost;         /* per (sender, receiver) pair, at the step's end */
    uint64_t lost_evicted; /* part of lost: gaps that left a pair's window */
    uint64_t duplicated, out_of_order, late, stale;
    uint64_t server_errors, closed;       /* during the step, or since the step before */
    uint64_t connect_errors, join_errors; /* of the run, at the step's end */
    uint64_t pace_lag_max;                /* ns a send was behind its schedule, at worst */
    uint32_t fail;                        /* 1 << STEP_B_*; 0: passed */
    int pass;
    int rerun;   /* 1: the second run of a rate whose first was step_only_late */
    bh_hist lat; /* ns; last: step_begin clears what is above it */
} step_stats;

/* lost / expected; 1 when nothing was expected (nothing was measured, and
 * the verdict says so: it is never shown as a clean 0). */
double step_loss(const step_stats *s);
/* Messages actually sent per second of the send phase. */
double step_sent_per_s(const step_stats *s);
/* From the step's start to its last first-copy delivery, at least the send
 * phase: deliveries in the drain came after the step's seconds. */
double step_delivery_seconds(const step_stats *s);
/* delivered / step_delivery_seconds. */
double step_delivered_per_s(const step_stats *s);
/* Judges s against l: sets s->fail and s->pass; returns s->fail. */
uint32_t step_judge(step_stats *s, const step_limits *l);
/* Whether s failed only because the generator fell behind its schedule
 * (and so may have sent below it): the step measured the generator, not the
 * server. A ramp run with --rerun-late-steps runs such a step once more
 * before it stops: a single stall of this VM (tens of ms, at any rate) would
 * otherwise end a ramp at its first steps and report that as capacity. A
 * generator that cannot keep up fails the second run too. */
int step_only_late(const step_stats *s);

enum step_next { STEP_NEXT_RATE, STEP_SAME_RATE, STEP_STOP };
/* What a ramp does after the judged step s: the next rate once it passed,
 * the same rate once more when rerun_late is set and s is a first run that
 * failed step_only_late, else stop. */
enum step_next step_after(const step_stats *s, int rerun_late);
/* The report's name of reason bit b (< STEP_NREASONS). */
const char *step_reason_name(unsigned b);

#endif
