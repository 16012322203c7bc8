/* ws: the client WebSocket endpoint (GET /ws).
 *
 * The token (?token= or "Authorization: Bearer") is verified before the
 * upgrade, and a bad one gets a real HTTP 401 without upgrading. After that
 * each connection is a session: it starts in DEFAULT_ROOM, speaks the legacy
 * JSON protocol (legacy.h), and is dropped when it sends frames over
 * MAX_MESSAGE_BYTES (1009), invalid UTF-8 (1007, by lws), stops answering
 * pings, or stops reading (1008). */
#ifndef GW_WS_H
#define GW_WS_H

#include <stddef.h>

#include "gateway.h"

/* Handles LWS_CALLBACK_HTTP_CONFIRM_UPGRADE and the WebSocket server
 * callbacks. Returns what the lws callback must return. */
int ws_callback(struct gw *gw, struct lws *wsi, int reason, void *in, size_t len);

/* Frees a session when lws destroys its connection (leaving its rooms first
 * if the close callback never ran). */
struct session;
void ws_destroy(struct gw *gw, struct session *s);

/* Sends every session close 1001 (going away): the gateway is draining. */
void ws_drain_all(struct gw *gw);

#endif
