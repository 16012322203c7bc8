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

/* Refusals of the broker's own, which no errno names: outside the errno
 * range, so that no code from below (store.c, rbatch.c, the bridge) can be
 * taken for one of them. The first three count as BM_FAIL_QUEUE_FULL; a
 * misrouted frame is counted apart (confab_broker_misrouted_frames_total),
 * not as a failed request. */
#define BM_ERR_HOLD_FULL (-4096)  /* requests held for rooms' SUBSCRIBEs at their budget */
#define BM_ERR_TAKEN_BACK (-4097) /* a held join taken back by its connection's leave */
#define BM_ERR_AWAITING (-4098)   /* BROKER_MAX_AWAITING requests wait for the server */
#define BM_ERR_MISROUTED (-4099)  /* a frame for a room of another shard */

/* Why a gateway's request was answered with an error (send_fail's errno, or
 * a BM_ERR_ code). */
enum bm_fail {
    BM_FAIL_REDIS_DOWN,    /* -ENOTCONN: no connection to the room's Redis server */
    BM_FAIL_REDIS_DROPPED, /* -ECONNRESET: it dropped with the command in flight */
    BM_FAIL_REDIS_BUSY,    /* -EAGAIN: Redis refuses for now (OOM, read-only, loading) */
    BM_FAIL_REDIS_ERROR,   /* -EIO: an error reply, or a reply the broker could not pass on */
    BM_FAIL_QUEUE_FULL,    /* -ENOBUFS (the queue toward Redis), BM_ERR_HOLD_FULL,
                              BM_ERR_TAKEN_BACK, BM_ERR_AWAITING */
    BM_FAIL_DRAINING,      /* -ESHUTDOWN: the broker is stopping */
    BM_FAIL_INTERNAL,      /* out of memory, anything else */
    BM_FAIL_N
};

enum bm_fail bm_fail_of(int err);

struct bmetrics {
    uint32_t shard;
    bool ready, serving;
    size_t links;
    uint64_t presence, requests, foreign, dropped, misrouted;
    const uint64_t *failed; /* BM_FAIL_N counts, by enum bm_fail */
    /* blocks kept for reuse after a burst, per pool (freelist.h) */
    size_t held_requests, held_boxes, held_batches;
    struct rooms_stats rooms;
    /* One per Redis server of REDIS_ADDR: their series carry server="<i>". */
    uint32_t nservers;
    const struct rset_server_stats *servers;
    /* requests waiting for each of them (BROKER_MAX_AWAITING), nservers */
    const uint32_t *awaiting;
};

void bmetrics_render(const struct bmetrics *m, struct cf_bytes *out);

#endif
