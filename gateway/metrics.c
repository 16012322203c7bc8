/* metrics: see metrics.h. */
#include "metrics.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blinks.h"
#include "front.h"
#include "iplimit.h"
#include "lowfd.h"
#include "lrooms.h"
#include "qarray.h"
#include "reqs.h"
#include "resync.h"
#include "session.h"

/* Upper bounds in milliseconds; the last bucket is +Inf. */
static const int64_t bounds_ms[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define NBUCKETS (sizeof bounds_ms / sizeof bounds_ms[0])
static uint64_t g_buckets[NBUCKETS + 1];
static uint64_t g_count;
static double g_sum_s;

void metrics_observe_delivery(int64_t ms)
{
    if (ms < 0)
        ms = 0; /* another node's clock runs ahead */
    size_t i = 0;
    while (i < NBUCKETS && ms > bounds_ms[i])
        i++;
    g_buckets[i]++;
    g_count++;
    g_sum_s += (double)ms / 1000.0;
}

static void head(struct cf_bytes *o, const char *name, const char *type, const char *help)
{
    cf_bytes_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_render(struct gw *gw, struct cf_bytes *o)
{
    char l[64];
    snprintf(l, sizeof l, "worker=\"%d\",pid=\"%d\"", gw->worker, (int)getpid());
    struct sess_counters sc;
    sess_counters(&sc);
    const struct gw_stats *st = &gw->stats;
    struct {
        const char *name, *type, *help;
        uint64_t v;
    } simple[] = {
        {"confab_gateway_connections", "gauge", "open WebSocket connections", gw->nsessions},
        {"confab_gateway_connections_total", "counter", "WebSocket connections accepted",
         st->connections_total},
        {"confab_gateway_rooms", "gauge", "rooms with members on this process",
         lrooms_count(gw->rooms)},
        {"confab_gateway_messages_in_total", "counter", "messages sent by clients",
         st->messages_in},
        {"confab_gateway_messages_out_total", "counter", "room events queued to clients",
         st->messages_out},
        {"confab_gateway_frames_out_total", "counter", "WebSocket data frames written",
         sc.frames_out},
        {"confab_gateway_bytes_out_total", "counter", "WebSocket payload bytes written",
         sc.bytes_out},
        {"confab_gateway_slow_consumers_total", "counter",
         "connections closed for not reading (1008)", sc.slow_consumers},
        {"confab_gateway_saturated_flushes_total", "counter",
         "writes to clients that found this process short of CPU (the next one waited longer)",
         sc.saturated_flushes},
        {"confab_gateway_sends_dropped_total", "counter",
         "client sends refused because a broker was unreachable", st->sends_dropped},
        {"confab_gateway_bad_frames_total", "counter", "client frames refused", st->bad_frames},
        {"confab_gateway_logins_total", "counter", "guest tokens issued", st->logins},
        {"confab_gateway_login_errors_total", "counter", "refused logins", st->login_errors},
        {"confab_gateway_api_key_refusals_total", "counter",
         "POST /api/publish requests refused for a wrong API key", st->api_key_refusals},
        {"confab_gateway_requests_limited_total", "counter", "client requests refused by RATE_MSGS",
         st->requests_limited},
        {"confab_gateway_rate_closes_total", "counter",
         "connections closed (1008) for going on over RATE_MSGS", st->rate_closes},
        {"confab_gateway_ping_timeouts_total", "counter",
         "connections dropped for leaving a ping unanswered for PING_TIMEOUT", st->ping_timeouts},
        {"confab_gateway_loop_passes_total", "counter",
         "passes of the event loop (each one a wake-up of this process)", st->loop_passes},
        {"confab_gateway_ticks_total", "counter",
         "runs of the housekeeping tick, ten a second (keep-alive, deadlines, watchdog)",
         st->ticks},
        {"confab_gateway_direct_upgrades_total", "counter",
         "WebSocket upgrades answered by the gateway itself (the rest by libwebsockets)",
         st->direct_upgrades},
        {"confab_gateway_upgrades_waiting", "gauge",
         "connections accepted whose request has not arrived yet", front_waiting(gw->front)},
        {"confab_gateway_fd_fillers", "gauge",
         "descriptor numbers under libwebsockets' table held while unused, so that accepted "
         "sockets land above it (docs/operations.md)",
         (uint64_t)lowfd_fillers(gw->lowfd)},
        {"confab_gateway_client_addresses", "gauge", "client addresses tracked for limits",
         gw->ipl ? ipl_count(gw->ipl) : 0},
        {"confab_gateway_untracked_connections_total", "counter",
         "connections admitted without per address limits (the address table was full)",
         st->conns_untracked},
        {"confab_gateway_requests_pending", "gauge", "requests waiting for a broker",
         reqs_count(gw->reqs)},
        {"confab_gateway_resyncs_pending", "gauge",
         "of those, re-syncs of members (at most 256 at a time per broker)",
         reqs_resyncs(gw->reqs)},
        {"confab_gateway_queue_arrays_held", "gauge",
         "client queue arrays kept for reuse (given back once unused for a second)", qarray_held()},
        {"confab_gateway_resyncs_waiting", "gauge",
         "members waiting for their re-sync to be sent: behind a broker's window, or refused "
         "and waiting for the retry",
         gw->rs ? rs_waiting(gw->rs) : 0},
        {"confab_gateway_draining", "gauge", "1 while shutting down", gw->draining},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        head(o, simple[i].name, simple[i].type, simple[i].help);
        cf_bytes_printf(o, "%s{%s} %llu\n", simple[i].name, l, (unsigned long long)simple[i].v);
    }
    head(o, "confab_gateway_auth_failures_total", "counter", "refused upgrades by token problem");
    for (int r = 1; r < AUTH_RESULT_COUNT; r++)
        cf_bytes_printf(o, "confab_gateway_auth_failures_total{%s,reason=\"%s\"} %llu\n", l,
                        auth_result_str((enum auth_result)r),
                        (unsigned long long)st->auth_failures[r]);
    head(o, "confab_gateway_refused_total", "counter", "refused by the per address limits");
    static const char *const why[] = {"max_conns_per_ip", "login_rate", "upgrade_rate"};
    const uint64_t nref[] = {st->conns_refused, st->rate_refused[IPL_LOGIN],
                             st->rate_refused[IPL_UPGRADE]};
    for (int i = 0; i < 3; i++)
        cf_bytes_printf(o, "confab_gateway_refused_total{%s,reason=\"%s\"} %llu\n", l, why[i],
                        (unsigned long long)nref[i]);
    head(o, "confab_gateway_broker_link_up", "gauge", "1 when the link to a broker shard is up");
    for (uint32_t i = 0; i < blinks_count(gw->links); i++)
        cf_bytes_printf(o, "confab_gateway_broker_link_up{%s,shard=\"%u\"} %d\n", l, i,
                        blinks_link_up(gw->links, i));
    head(o, "confab_gateway_broker_ready", "gauge",
         "1 when that broker reports Redis and its canary fine");
    for (uint32_t i = 0; i < blinks_count(gw->links); i++)
        cf_bytes_printf(o, "confab_gateway_broker_ready{%s,shard=\"%u\"} %d\n", l, i,
                        blinks_link_ready(gw->links, i));
    head(o, "confab_gateway_broker_link_queued_bytes", "gauge",
         "bytes queued for that broker shard and not yet written");
    for (uint32_t i = 0; i < blinks_count(gw->links); i++)
        cf_bytes_printf(o, "confab_gateway_broker_link_queued_bytes{%s,shard=\"%u\"} %zu\n", l, i,
                        blinks_link_queued(gw->links, i));
    head(o, "confab_gateway_delivery_latency_seconds", "histogram",
         "from the sender's gateway accepting a message to this gateway queueing it");
    uint64_t cum = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        cum += g_buckets[i];
        cf_bytes_printf(o, "confab_gateway_delivery_latency_seconds_bucket{%s,le=\"%g\"} %llu\n", l,
                        (double)bounds_ms[i] / 1000.0, (unsigned long long)cum);
    }
    cf_bytes_printf(o, "confab_gateway_delivery_latency_seconds_bucket{%s,le=\"+Inf\"} %llu\n", l,
                    (unsigned long long)g_count);
    cf_bytes_printf(o, "confab_gateway_delivery_latency_seconds_sum{%s} %.6f\n", l, g_sum_s);
    cf_bytes_printf(o, "confab_gateway_delivery_latency_seconds_count{%s} %llu\n", l,
                    (unsigned long long)g_count);
}
