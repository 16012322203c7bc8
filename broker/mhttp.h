/* mhttp: the broker's small HTTP endpoint for probes and Prometheus
 * (BROKER_METRICS_PORT): GET /metrics, /healthz and /readyz only.
 *
 * It reads one request of at most 4 KiB per connection (5 s to send it),
 * answers and closes; at most 32 connections at once. Only the request
 * line is interpreted, so there is no general HTTP parser to get wrong; a
 * full HTTP library for three read-only paths on a private port was not
 * worth a dependency in the broker. */
#ifndef BROKER_MHTTP_H
#define BROKER_MHTTP_H

#include <systemd/sd-event.h>

#include "bytes.h"

/* Fills body (and *ctype) for a GET of path; returns the HTTP status. */
typedef int (*mhttp_fn)(void *ud, const char *path, struct cf_bytes *body, const char **ctype);

struct mhttp;

/* Listens on addr:port (addr "" = all). NULL after logging why. */
struct mhttp *mhttp_new(sd_event *ev, const char *addr, int port, mhttp_fn fn, void *ud);
void mhttp_free(struct mhttp *h); /* NULL is a no-op */

#endif
