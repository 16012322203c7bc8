/* bmetrics: a broker's numbers in the Prometheus text format (served on
 * BROKER_METRICS_PORT + shard by mhttp). */
#ifndef BROKER_BMETRICS_H
#define BROKER_BMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "rooms.h"
#include "rset.h"

struct bmetrics {
    uint32_t shard;
    bool ready, serving;
    size_t links;
    uint64_t presence, requests, foreign, dropped, misrouted;
    /* blocks kept for reuse after a burst, per pool (freelist.h) */
    size_t held_requests, held_boxes, held_batches;
    struct rooms_stats rooms;
    /* One per Redis server of REDIS_ADDR: their series carry server="<i>". */
    uint32_t nservers;
    const struct rset_server_stats *servers;
};

void bmetrics_render(const struct bmetrics *m, struct cf_bytes *out);

#endif
