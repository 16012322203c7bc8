/* http: the gateway's plain HTTP routes.
 *
 *   POST /login    {"username":"alice"} -> 200 {"token":"<JWT>","username":"alice"}
 *   POST /api/publish  (Bearer API_KEY) {"room","message","from"} -> 200 {"room",
 *                  "message_id","sent"} once Redis has it (the answer is deferred)
 *   GET  /healthz  200 when linked to every broker, else 503 (alive)
 *   GET  /readyz   200 when every broker is linked and ready, and not draining
 *   GET  /metrics  Prometheus text (metrics.h)
 *   GET  /ws       the WebSocket upgrade (see ws.h); without one, a token check (ws_check)
 *   GET  /...      static files from FRONTEND_DIR
 *
 * Every error is a JSON body {"error":"..."} with a 4xx/5xx status. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway.h"

#define LOGIN_MAX_BODY 4096
#define PUBLISH_MAX_BODY 65536

/* Handles LWS_CALLBACK_HTTP, _HTTP_BODY and _HTTP_BODY_COMPLETION. Returns
 * what the lws callback must return. */
int http_callback(struct gw *gw, struct lws *wsi, int reason, void *in, size_t len);

/* Writes a complete response with a JSON body; `extra` holds extra header
 * lines ("name: value\r\n"...) or NULL. Returns 0, or -1 when the connection
 * must be closed. Does not complete the transaction. */
int http_reply(struct lws *wsi, unsigned status, const char *json, const char *extra);
/* http_reply with {"error": msg}. */
int http_error(struct lws *wsi, unsigned status, const char *msg, const char *extra);

/* Answers a request that offers an upgrade other than to a WebSocket (lws
 * 4.1 cannot serve it as plain HTTP): 400, saying what to send instead.
 * Returns http_reply's result. */
int http_upgrade_refused(struct lws *wsi, const char *what);

/* For LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, in place of its `in`: the upgrade
 * asked for (websocket or h2c) into buf; false when lws has answered the
 * request itself, and the connection must be hung up (return -1). lws
 * 4.1.6 answers any other upgrade with its own 403, completes that
 * transaction (which frees or resets the header table `in` points into)
 * and still asks: read, `in` was freed memory, and on a kept-alive
 * connection a second answer followed lws' 403. */
bool http_upgrade_asked(struct lws *wsi, char *buf, size_t cap);

/* A publish was handed to a broker as request q / its answer came (status
 * 200 with id and ts, or an error status with code and message). */
void http_publish_started(void *http, uint64_t q);
void http_publish_done(void *http, unsigned status, const char *code, const char *message,
                       uint64_t id, int64_t ts);

/* The operations routes only (/metrics, /healthz, /readyz), for the
 * METRICS_PORT listener. */
int http_ops_route(struct gw *gw, struct lws *wsi, const char *url);

/* Once a second: closes the connections whose request body did not come
 * whole within HANDSHAKE_TIMEOUT of its headers (body_chunk sends the 408
 * when a late piece comes; this covers a body that stopped). */
void http_tick(struct gw *gw, int64_t now);

/* Frees the per-request state hung on a connection (from the destroy callback). */
void http_req_free(void *opaque);

#endif
