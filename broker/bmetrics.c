/* bmetrics: see bmetrics.h. */
#include "bmetrics.h"

#include <errno.h>
#include <stdio.h>


#define METRIC(o, type, name, help, fmt, ...)                                                     \
    cf_bytes_printf(o, "# HELP " name " " help "\n# TYPE " name " " type "\n" name fmt "\n", __VA_ARGS__)

#define HEAD(o, type, name, help) cf_bytes_printf(o, "# HELP " name " " help "\n# TYPE " name " " type "\n")

/* A family with one sample per Redis server, each labelled server="<i>". The
 * value of server i is what `get` returns for it, with `digits` decimals. */
static void per_server(struct cf_bytes *o, const struct bmetrics *m, const char *name,
                       const char *type, const char *help,
                       double (*get)(const struct rset_server_stats *s), int digits)
{
    cf_bytes_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (uint32_t i = 0; i < m->nservers; i++) {
        cf_bytes_printf(o, "%s{shard=\"%u\",server=\"%u\"} %.*f\n", name, m->shard, i, digits,
                        get(&m->servers[i]));
    }
}

static double reconnects(const struct rset_server_stats *s) { return (double)s->redis.reconnects; }
static double errors(const struct rset_server_stats *s) { return (double)s->redis.publish_errors; }
static double canary_ok(const struct rset_server_stats *s) { return s->redis.canary_ok; }
static double canary_rtt(const struct rset_server_stats *s)
{
    return (double)s->redis.canary_rtt_ms / 1000.0;
}
static double canary_failures(const struct rset_server_stats *s)
{
    return (double)s->redis.canary_failures;
}
static double received(const struct rset_server_stats *s) { return (double)s->redis.received; }
static double reply_fallbacks(const struct rset_server_stats *s)
{
    return (double)s->redis.reply_fallbacks;
}
static double ring_ok(const struct rset_server_stats *s) { return s->ring_ok; }
static double ring_mismatches(const struct rset_server_stats *s)
{
    return (double)s->ring_mismatches;
}

static void redis_metrics(const struct bmetrics *m, struct cf_bytes *o)
{
    HEAD(o, "gauge", "confab_broker_redis_up", "Redis connection state");
    for (uint32_t i = 0; i < m->nservers; i++)
        cf_bytes_printf(o, "confab_broker_redis_up{shard=\"%u\",server=\"%u\",conn=\"subscriber\"} "
                        "%d\nconfab_broker_redis_up{shard=\"%u\",server=\"%u\",conn=\"publisher\"} "
                        "%d\n", m->shard, i, m->servers[i].redis.sub_up, m->shard, i,
                        m->servers[i].redis.pub_up);
    per_server(o, m, "confab_broker_redis_reconnects_total", "counter", "Redis connections lost",
               reconnects, 0);
    HEAD(o, "gauge", "confab_broker_requests_awaiting_redis",
         "requests sent to the server and not answered yet (more are refused at 131072)");
    for (uint32_t i = 0; i < m->nservers; i++)
        cf_bytes_printf(o, "confab_broker_requests_awaiting_redis{shard=\"%u\",server=\"%u\"} %u\n",
                        m->shard, i, m->awaiting[i]);
    per_server(o, m, "confab_broker_redis_errors_total", "counter", "error replies from Redis",
               errors, 0);
    per_server(o, m, "confab_broker_redis_ring_ok", "gauge",
               "1 when the server holds this node's place in the REDIS_ADDR list (confab:ring)",
               ring_ok, 0);
    per_server(o, m, "confab_broker_redis_ring_mismatches_total", "counter",
               "ring checks that found another node's list on the server", ring_mismatches,
               0);
    per_server(o, m, "confab_broker_canary_ok", "gauge",
               "1 when the delivery canary came back in time", canary_ok, 0);
    per_server(o, m, "confab_broker_canary_rtt_seconds", "gauge", "last delivery canary round trip",
               canary_rtt, 3);
    per_server(o, m, "confab_broker_canary_failures_total", "counter",
               "times the canary stopped coming", canary_failures, 0);
    per_server(o, m, "confab_broker_messages_in_total", "counter", "events received from Redis",
               received, 0);
    per_server(o, m, "confab_broker_redis_reply_fallbacks_total", "counter",
               "Redis reply objects allocated outside the connection's reply arena",
               reply_fallbacks, 0);
}

enum bm_fail bm_fail_of(int err)
{
    switch (err) {
    case -ENOTCONN:
        return BM_FAIL_REDIS_DOWN;
    case -ECONNRESET:
        return BM_FAIL_REDIS_DROPPED;
    case -EAGAIN:
        return BM_FAIL_REDIS_BUSY;
    case -EIO:
        return BM_FAIL_REDIS_ERROR;
    case -ENOBUFS:
    case BM_ERR_HOLD_FULL:
    case BM_ERR_TAKEN_BACK:
    case BM_ERR_AWAITING:
        return BM_FAIL_QUEUE_FULL;
    case -ESHUTDOWN:
        return BM_FAIL_DRAINING;
    case BM_ERR_MISROUTED: /* (never asked: send_fail counts it as misrouted) */
    default:
        return BM_FAIL_INTERNAL;
    }
}

static void failed_requests(const struct bmetrics *m, struct cf_bytes *o)
{
    static const char *const reason[BM_FAIL_N] = {
        [BM_FAIL_REDIS_DOWN] = "redis_down", [BM_FAIL_REDIS_DROPPED] = "redis_dropped",
        [BM_FAIL_REDIS_BUSY] = "redis_busy", [BM_FAIL_REDIS_ERROR] = "redis_error",
        [BM_FAIL_QUEUE_FULL] = "queue_full", [BM_FAIL_DRAINING] = "draining",
        [BM_FAIL_INTERNAL] = "internal"};
    HEAD(o, "counter", "confab_broker_failed_requests_total",
         "requests from gateways answered with an error, by reason");
    for (int i = 0; i < BM_FAIL_N; i++)
        cf_bytes_printf(o, "confab_broker_failed_requests_total{shard=\"%u\",reason=\"%s\"} %llu\n",
                        m->shard, reason[i], (unsigned long long)m->failed[i]);
}

void bmetrics_render(const struct bmetrics *m, struct cf_bytes *o)
{
    const struct rooms_stats rs = m->rooms;
    char l[48];
    snprintf(l, sizeof l, "{shard=\"%u\"}", m->shard);
    METRIC(o, "gauge", "confab_broker_ready",
           "1 when every Redis server is connected and its canary passes", "%s %d", l, m->ready);
    METRIC(o, "gauge", "confab_broker_serving",
           "1 when at least one Redis server is connected and its canary passes (/readyz 200)",
           "%s %d", l, m->serving);
    METRIC(o, "gauge", "confab_broker_redis_servers", "Redis servers in REDIS_ADDR", "%s %u", l,
           m->nservers);
    redis_metrics(m, o);
    METRIC(o, "gauge", "confab_broker_rooms", "rooms subscribed on Redis (channels)", "%s %llu", l,
           (unsigned long long)rs.rooms);
    METRIC(o, "gauge", "confab_broker_gateway_links", "linked gateway processes", "%s %zu", l,
           m->links);
    METRIC(o, "gauge", "confab_broker_presence_entries", "connections this broker keeps present",
           "%s %llu", l, (unsigned long long)m->presence);
    METRIC(o, "counter", "confab_broker_requests_total",
           "requests from gateways for this shard's rooms (those failed included)", "%s %llu", l,
           (unsigned long long)m->requests);
    failed_requests(m, o);
    METRIC(o, "counter", "confab_broker_messages_out_total", "events forwarded to gateway links",
           "%s %llu", l, (unsigned long long)rs.delivered_frames);
    METRIC(o, "counter", "confab_broker_dropped_foreign_total",
           "payloads on room channels that were not valid events", "%s %llu", l,
           (unsigned long long)m->foreign);
    METRIC(o, "counter", "confab_broker_dropped_messages_total",
           "legacy messages that could not be stored (Redis down)", "%s %llu", l,
           (unsigned long long)m->dropped);
    METRIC(o, "counter", "confab_broker_misrouted_frames_total",
           "gateway frames for rooms of another shard, dropped (the gateway's BROKERS differs)",
           "%s %llu", l, (unsigned long long)m->misrouted);
    METRIC(o, "gauge", "confab_broker_held_bytes", "requests held until their room is subscribed",
           "%s %llu", l, (unsigned long long)rs.held_bytes);
    HEAD(o, "gauge", "confab_broker_pool_blocks_held",
         "freed blocks kept for reuse; those unused for a second go back to malloc");
    const struct {
        const char *pool;
        size_t n;
    } pools[] = {
        {"requests", m->held_requests}, {"replies", m->held_boxes}, {"batches", m->held_batches}};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
        cf_bytes_printf(o, "confab_broker_pool_blocks_held{shard=\"%u\",pool=\"%s\"} %zu\n",
                        m->shard, pools[i].pool, pools[i].n);
}
