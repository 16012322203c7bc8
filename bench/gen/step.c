/* step: see step.h. */
#include "step.h"

double step_loss(const step_stats *s)
{
    return s->expected ? (double)s->lost / (double)s->expected : 1.0;
}

double step_sent_per_s(const step_stats *s)
{
    return s->seconds > 0 ? (double)s->sent / s->seconds : 0;
}

double step_delivery_seconds(const step_stats *s)
{
    double span = s->t_last > s->t0 ? (double)(s->t_last - s->t0) / 1e9 : 0;
    return span > s->seconds ? span : s->seconds;
}

double step_delivered_per_s(const step_stats *s)
{
    double span = step_delivery_seconds(s);
    return span > 0 ? (double)s->delivered / span : 0;
}

/* Bit b when cond holds. */
static uint32_t when(int cond, unsigned b)
{
    return cond ? 1u << b : 0;
}

uint32_t step_judge(step_stats *s, const step_limits *l)
{
    double p99_ms = (double)bh_quantile(&s->lat, 0.99) / 1e6;
    uint32_t f = when(s->expected == 0, STEP_B_NOTHING_EXPECTED) |
                 when(step_loss(s) > l->loss, STEP_B_LOSS) | when(p99_ms > l->p99_ms, STEP_B_P99) |
                 when(s->send_blocked > 0, STEP_B_SEND_BLOCKED) |
                 when((double)s->sent < l->sent_fraction * (double)s->scheduled,
                      STEP_B_SENT_BELOW_SCHEDULE) |
                 when((double)s->pace_lag_max / 1e6 > l->pace_lag_ms, STEP_B_BEHIND_SCHEDULE) |
                 when(s->closed > 0, STEP_B_CLOSED) |
                 when(s->server_errors > 0, STEP_B_SERVER_ERRORS) |
                 when(s->connect_errors > 0, STEP_B_CONNECT_ERRORS) |
                 when(s->join_errors > 0, STEP_B_JOIN_ERRORS);
    s->fail = f;
    s->pass = f == 0;
    return f;
}

int step_only_late(const step_stats *s)
{
    uint32_t late = 1u << STEP_B_BEHIND_SCHEDULE;
    return (s->fail & late) && !(s->fail & ~(late | 1u << STEP_B_SENT_BELOW_SCHEDULE));
}

enum step_next step_after(const step_stats *s, int rerun_late)
{
    if (s->pass)
        return STEP_NEXT_RATE;
    return rerun_late && !s->rerun && step_only_late(s) ? STEP_SAME_RATE : STEP_STOP;
}

const char *step_reason_name(unsigned b)
{
    static const char *const names[] = {
#define STEP_X_NAME(n, s) s,
        STEP_REASONS(STEP_X_NAME)
#undef STEP_X_NAME
    };
    return b < STEP_NREASONS ? names[b] : "?";
}
