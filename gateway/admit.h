/* admit: the gateway's front door. Every accepted TCP connection is checked
 * against its client address's limits (iplimit.h) before lws sees it, and
 * /login and WebSocket upgrades draw from that address's rate budgets.
 * Refusals are real HTTP answers (429 or 503 with Retry-After) where the
 * connection can carry one, and are counted for /metrics. */
#ifndef GW_ADMIT_H
#define GW_ADMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "iplimit.h"

struct gw;
struct lws;
struct listener;

/* Creates gw->ipl from the settings and hooks the listener. -1 when out of
 * memory. */
int admit_init(struct gw *gw, struct listener *l);
void admit_free(struct gw *gw);

/* Before serving /login or an upgrade: true to go on; false after the 429
 * was written (the caller returns what http_error-style helpers return:
 * *rc). */
bool admit_request(struct gw *gw, struct lws *wsi, enum ipl_kind kind, int *rc);

/* Once a second from the gateway's tick. */
void admit_tick(struct gw *gw);

#endif
