/* metrics: this gateway process's numbers in the Prometheus text format
 * (GET /metrics), and the publish-to-delivery latency histogram they
 * include.
 *
 * Every gateway process keeps its own counters and labels them with its
 * worker index and pid. Several processes share the public port, so one
 * scrape there reaches one of them: scrape each process on its own
 * METRICS_PORT + worker (docs/monitoring.md). */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdint.h>

#include "bytes.h"
#include "gateway.h"

/* A room message reached this gateway `ms` after its sender's gateway
 * accepted it (clocks of different nodes may disagree). */
void metrics_observe_delivery(int64_t ms);

/* Appends every metric to out. */
void metrics_render(struct gw *gw, struct cf_bytes *out);

#endif
