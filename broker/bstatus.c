/* bstatus: what the broker's HTTP port (METRICS_ADDR) answers. See
 * broker_int.h. */
#include "broker_int.h"

#include <stdio.h>
#include <string.h>

#include "bmetrics.h"
#include "links.h"
#include "presence.h"
#include "rbatch.h"
#include "rooms.h"
#include "rset.h"
#include "store.h"

int broker_serve_http(void *ud, const char *path, struct cf_bytes *o, const char **ctype)
{
    struct broker *b = ud;
    if (!strcmp(path, "/healthz")) {
        cf_bytes_append(o, "ok\n", 3);
        return 200;
    }
    if (!strcmp(path, "/readyz")) {
        uint32_t n = rset_count(b->redis), up = rset_up(b->redis);
        char t[160];
        if (b->ready)
            snprintf(t, sizeof t, "ready\n");
        else if (b->serving)
            snprintf(t, sizeof t,
                     "degraded: %u of %u Redis servers down or failing their "
                     "delivery canary; their rooms answer unavailable\n",
                     n - up, n);
        else
            snprintf(t, sizeof t, "not ready: Redis or the delivery canary is failing\n");
        cf_bytes_append(o, t, strlen(t));
        return b->serving ? 200 : 503;
    }
    if (strcmp(path, "/metrics") != 0) {
        static const char nf[] = "not found: /metrics, /healthz, /readyz\n";
        cf_bytes_append(o, nf, sizeof nf - 1);
        return 404;
    }
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    struct bmetrics m = {.shard = b->shard,
                         .ready = b->ready,
                         .serving = b->serving,
                         .links = gwlinks_count(b->links),
                         .presence = presence_count(b->presence),
                         .requests = b->requests,
                         .failed = b->failed,
                         .foreign = b->foreign,
                         .dropped = b->publish_dropped,
                         .misrouted = b->misrouted,
                         .held_requests = b->pendings.n,
                         .held_boxes = store_boxes_held(),
                         .held_batches = rbatch_records_held()};
    rooms_stats(b->rooms, &m.rooms);
    struct rset_server_stats sv[CF_REDIS_MAX_SERVERS];
    m.nservers = rset_count(b->redis);
    for (uint32_t i = 0; i < m.nservers; i++)
        rset_stats(b->redis, i, &sv[i]);
    m.servers = sv;
    m.awaiting = b->awaiting;
    bmetrics_render(&m, o);
    return 200;
}
