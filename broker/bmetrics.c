/* bmetrics: see bmetrics.h. */
#include "bmetrics.h"

#include <stdio.h>


#define METRIC(o, type, name, help, fmt, ...)                                                     \
    cf_bytes_printf(o, "# HELP " name " " help "\n# TYPE " name " " type "\n" name fmt "\n", __VA_ARGS__)

void bmetrics_render(const struct bmetrics *m, struct cf_bytes *o)
{
    const struct rooms_stats rs = m->rooms;
    const struct rbridge_stats st = m->redis;
    char l[48];
    snprintf(l, sizeof l, "{shard=\"%u\"}", m->shard);
    METRIC(o, "gauge", "confab_broker_ready", "1 when Redis is connected and the canary passes",
           "%s %d", l, m->ready);
    cf_bytes_printf(o, "# HELP confab_broker_redis_up Redis connection state\n# TYPE confab_broker_redis_up "
           "gauge\nconfab_broker_redis_up{shard=\"%u\",conn=\"subscriber\"} %d\n"
           "confab_broker_redis_up{shard=\"%u\",conn=\"publisher\"} %d\n",
        m->shard, st.sub_up, m->shard, st.pub_up);
    METRIC(o, "counter", "confab_broker_redis_reconnects_total", "Redis connections lost", "%s %llu",
           l, (unsigned long long)st.reconnects);
    METRIC(o, "counter", "confab_broker_redis_errors_total", "error replies from Redis",
           "%s %llu", l, (unsigned long long)st.publish_errors);
    METRIC(o, "gauge", "confab_broker_canary_ok", "1 when the delivery canary came back in time",
           "%s %d", l, st.canary_ok);
    METRIC(o, "gauge", "confab_broker_canary_rtt_seconds", "last delivery canary round trip",
           "%s %.3f", l, (double)st.canary_rtt_ms / 1000.0);
    METRIC(o, "counter", "confab_broker_canary_failures_total", "times the canary stopped coming",
           "%s %llu", l, (unsigned long long)st.canary_failures);
    METRIC(o, "gauge", "confab_broker_rooms", "rooms subscribed on Redis (channels)", "%s %llu", l,
           (unsigned long long)rs.rooms);
    METRIC(o, "gauge", "confab_broker_gateway_links", "linked gateway processes", "%s %zu", l,
           m->links);
    METRIC(o, "gauge", "confab_broker_presence_entries", "connections this broker keeps present",
           "%s %llu", l, (unsigned long long)m->presence);
    METRIC(o, "counter", "confab_broker_requests_total", "room requests from gateways carried out",
           "%s %llu", l, (unsigned long long)m->requests);
    METRIC(o, "counter", "confab_broker_messages_in_total", "events received from Redis",
           "%s %llu", l, (unsigned long long)st.received);
    METRIC(o, "counter", "confab_broker_messages_out_total", "events forwarded to gateway links",
           "%s %llu", l, (unsigned long long)rs.delivered_frames);
    METRIC(o, "counter", "confab_broker_dropped_foreign_total",
           "payloads on room channels that were not valid events", "%s %llu", l,
           (unsigned long long)m->foreign);
    METRIC(o, "counter", "confab_broker_dropped_messages_total",
           "legacy messages that could not be stored (Redis down)", "%s %llu", l,
           (unsigned long long)m->dropped);
    METRIC(o, "gauge", "confab_broker_held_bytes", "requests held until their room is subscribed",
           "%s %llu", l, (unsigned long long)rs.held_bytes);
}
