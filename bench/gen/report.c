/* report: the result of a run, as the JSON object of the benchmark contract
 * (docs/benchmarks.md) with --json, else as a table for people. Extra keys
 * beyond the contract are diagnostics (joined, send_blocked, late, ...).
 * Loss and rates come from step.h, the functions the verdict uses. */
#include "gen.h"

#include <stdio.h>

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void json_hist(const bh_hist *h)
{
    printf("{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"count\":%llu}",
           ms(bh_quantile(h, 0.5)), ms(bh_quantile(h, 0.9)), ms(bh_quantile(h, 0.99)),
           ms(bh_quantile(h, 0.999)), ms(h->max), (unsigned long long)h->count);
}

/* "fail_reasons":[...] of a step, by name, in STEP_REASONS order. */
static void json_reasons(const step_stats *s)
{
    printf("\"fail_reasons\":[");
    const char *sep = "";
    for (unsigned b = 0; b < STEP_NREASONS; b++)
        if (s->fail & (1u << b)) {
            printf("%s\"%s\"", sep, step_reason_name(b));
            sep = ",";
        }
    printf("]");
}

/* The buckets themselves, sparse ([[index, count], ...]), so that the
 * histograms of several generators can be merged exactly (bench.py). */
static void json_buckets(const bh_hist *h)
{
    printf("{\"min\":%llu,\"max\":%llu,\"b\":[", (unsigned long long)h->min,
           (unsigned long long)h->max);
    const char *sep = "";
    for (uint32_t i = 0; i < BH_BUCKETS; i++)
        if (h->b[i]) {
            printf("%s[%u,%llu]", sep, i, (unsigned long long)h->b[i]);
            sep = ",";
        }
    printf("]}");
}

static double hs_rate(const gen *g)
{
    double span = (double)(g->t_last_handshake - g->t_setup0) / 1e9;
    return g->connected && span > 0 ? g->connected / span : 0;
}

static void print_json(const gen *g, const step_stats *steps, int nsteps, double cpu,
                       double capacity)
{
    printf("{\"conns\":%u,\"connected\":%u,\"connect_errors\":%u,\"joined\":%u,"
           "\"join_errors\":%u,\"handshakes_per_s\":%.1f,\"handshake_ms\":",
           g->n, g->connected, g->connect_errors, g->joined, g->join_errors, hs_rate(g));
    json_hist(&g->hs);
    /* monotonic ns: the span of several generators storming at once (bench.py) */
    printf(",\"t_start_ns\":%llu,\"t_last_handshake_ns\":%llu,\"gen_cpu_setup\":%.3f,"
           "\"handshake_ns_buckets\":",
           (unsigned long long)g->t_setup0, (unsigned long long)g->t_last_handshake,
           g->setup_cpu);
    json_buckets(&g->hs);
    printf(",\"refused_by_status\":{\"unreadable\":%llu,\"1xx\":%llu,\"2xx\":%llu,\"3xx\":%llu,"
           "\"4xx\":%llu,\"5xx\":%llu},\"steps\":[",
           (unsigned long long)g->bad_status[0], (unsigned long long)g->bad_status[1],
           (unsigned long long)g->bad_status[2], (unsigned long long)g->bad_status[3],
           (unsigned long long)g->bad_status[4], (unsigned long long)g->bad_status[5]);
    for (int k = 0; k < nsteps; k++) {
        const step_stats *s = &steps[k];
        printf("%s{\"rate\":%g,\"scheduled\":%llu,\"sent\":%llu,\"sent_per_s\":%.1f,"
               "\"send_blocked\":%llu,\"expected\":%llu,\"delivered\":%llu,"
               "\"delivered_per_s\":%.1f,\"delivery_s\":%.3f,\"lost\":%llu,"
               "\"lost_evicted\":%llu,\"duplicated\":%llu,\"out_of_order\":%llu,\"late\":%llu,"
               "\"stale\":%llu,\"loss\":%.6f,\"latency_ms\":",
               k ? "," : "", s->rate, (unsigned long long)s->scheduled, (unsigned long long)s->sent,
               step_sent_per_s(s), (unsigned long long)s->send_blocked,
               (unsigned long long)s->expected, (unsigned long long)s->delivered,
               step_delivered_per_s(s), step_delivery_seconds(s), (unsigned long long)s->lost,
               (unsigned long long)s->lost_evicted, (unsigned long long)s->duplicated,
               (unsigned long long)s->out_of_order, (unsigned long long)s->late,
               (unsigned long long)s->stale, step_loss(s));
        json_hist(&s->lat);
        printf(",\"pace_lag_ms_max\":%.3f,\"server_errors\":%llu,\"closed\":%llu,"
               "\"connect_errors\":%llu,\"join_errors\":%llu,\"gen_cpu\":%.3f,"
               "\"gen_cpu_send\":%.3f,\"rerun\":%s,\"pass\":%s,",
               ms(s->pace_lag_max), (unsigned long long)s->server_errors,
               (unsigned long long)s->closed, (unsigned long long)s->connect_errors,
               (unsigned long long)s->join_errors, s->gen_cpu, s->gen_cpu_send,
               s->rerun ? "true" : "false", s->pass ? "true" : "false");
        json_reasons(s);
        printf("}");
    }
    printf("],\"server_error_codes\":{");
    for (size_t i = 0; i < sizeof g->err_codes / sizeof g->err_codes[0] && g->err_codes[i].count;
         i++)
        printf("%s\"%s\":%llu", i ? "," : "", g->err_codes[i].code,
               (unsigned long long)g->err_codes[i].count);
    printf("}");
    printf(",\"limits\":{\"loss\":%g,\"p99_ms\":%g,\"pace_lag_ms\":%g,\"sent_fraction\":%g}",
           g->o.stop_loss, g->o.stop_p99_ms, STEP_PACE_LAG_MS, STEP_SENT_FRACTION);
    printf(",\"capacity_rate\":%g,\"gen_cpu_total\":%.3f,\"bad_frames\":%llu,\"foreign\":%llu,"
           "\"outside_steps\":%llu,\"server_closes\":%llu,\"closed\":%llu}\n",
           capacity, cpu, (unsigned long long)g->bad_frames, (unsigned long long)g->foreign,
           (unsigned long long)g->outside_steps, (unsigned long long)g->server_closes,
           (unsigned long long)g->closed_total);
}

static void print_table(const gen *g, const step_stats *steps, int nsteps, double cpu,
                        double capacity)
{
    printf("connections: %u opened, %u connected, %u connect errors, %u joined, %u join "
           "errors\n",
           g->n, g->connected, g->connect_errors, g->joined, g->join_errors);
    printf("handshakes: %.0f/s, ms p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
           hs_rate(g), ms(bh_quantile(&g->hs, 0.5)), ms(bh_quantile(&g->hs, 0.9)),
           ms(bh_quantile(&g->hs, 0.99)), ms(bh_quantile(&g->hs, 0.999)), ms(g->hs.max));
    if (nsteps)
        printf("%9s %9s %11s %12s %9s %6s %6s %8s %8s %8s %8s %5s %s\n", "rate", "sent",
               "delivered", "deliv/s", "loss", "dup", "ooo", "p50 ms", "p99 ms", "p999 ms",
               "max ms", "cpu", "pass");
    for (int k = 0; k < nsteps; k++) {
        const step_stats *s = &steps[k];
        printf("%9g %9llu %11llu %12.0f %9.6f %6llu %6llu %8.2f %8.2f %8.2f %8.2f %5.2f %s",
               s->rate, (unsigned long long)s->sent, (unsigned long long)s->delivered,
               step_delivered_per_s(s), step_loss(s), (unsigned long long)s->duplicated,
               (unsigned long long)s->out_of_order, ms(bh_quantile(&s->lat, 0.5)),
               ms(bh_quantile(&s->lat, 0.99)), ms(bh_quantile(&s->lat, 0.999)), ms(s->lat.max),
               s->gen_cpu, s->pass ? "yes" : "NO:");
        for (unsigned b = 0; b < STEP_NREASONS; b++)
            if (s->fail & (1u << b))
                printf(" %s", step_reason_name(b));
        printf("%s\n", s->rerun ? " (second run)" : "");
    }
    if (nsteps)
        printf("capacity: %g msg/s\n", capacity);
    for (size_t i = 0; i < sizeof g->err_codes / sizeof g->err_codes[0] && g->err_codes[i].count;
         i++)
        printf("server errors \"%s\": %llu\n", g->err_codes[i].code,
               (unsigned long long)g->err_codes[i].count);
    printf("generator CPU: %.2f of a core\n", cpu);
}

void report_print(const gen *g, const step_stats *steps, int nsteps, double gen_cpu_total,
                  double capacity)
{
    if (g->o.json)
        print_json(g, steps, nsteps, gen_cpu_total, capacity);
    else
        print_table(g, steps, nsteps, gen_cpu_total, capacity);
    fflush(stdout);
}
