/* ws: the client WebSocket endpoint (GET /ws).
 *
 * The token (?token= or "Authorization: Bearer") is verified before the
 * upgrade, and a bad one gets a real HTTP 401 without upgrading. After that
 * each connection is a session. Without a subprotocol it starts in
 * DEFAULT_ROOM and speaks the legacy JSON protocol (legacy.h); with
 * confab.v1 (JSON text) or confab.msgpack.v1 (binary) it speaks protocol v1
 * (v1.h). A browser's Origin must be allowed (ALLOWED_ORIGINS, default the
 * request's own host) or the upgrade gets 403. Once established, a plain-TCP
 * connection leaves lws for the gateway's own socket handling (session.h,
 * own mode); over TLS lws keeps it. A session is closed when it breaks the
 * WebSocket protocol (1002), sends a message over MAX_MESSAGE_BYTES (1009) or
 * invalid UTF-8 (1007), stops reading (1008), or is dropped when it stops
 * answering pings. */
#ifndef GW_WS_H
#define GW_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway.h"

/* "confab": the legacy protocol asked for by name (lws' first protocol) */
#define WS_PROTO_LEGACY "confab"
#define WS_PROTO_V1_JSON "confab.v1"
#define WS_PROTO_V1_MSGPACK "confab.msgpack.v1"

/* Handles LWS_CALLBACK_HTTP_CONFIRM_UPGRADE and the WebSocket server
 * callbacks. Returns what the lws callback must return. */
int ws_callback(struct gw *gw, struct lws *wsi, int reason, void *in, size_t len);

/* Answers a plain GET /ws (no upgrade), which tells a client whether its
 * token would be let in: 426 (with "Upgrade: websocket") when it would, 401
 * when it is refused, 400 without a token, 429 or 503 as an upgrade would
 * get them (the address's upgrade rate, draining). A browser cannot read
 * why an upgrade failed, so its client asks this before it logs in again
 * (frontend/client/connection.js). Returns http_error's result. */
int ws_check(struct gw *gw, struct lws *wsi);

/* Answers an upgrade on a plain-TCP socket that lws never saw (front.h):
 * `peeked` is all the client has sent so far (n bytes, still on the
 * socket). When it is not exactly one upgrade the gateway takes
 * (upgreq.h), or on any refusal confirm_upgrade would make (draining, over
 * the address's upgrade rate, origin, token, out of memory), returns 0
 * having changed nothing, for lws to answer it. Else reads the request off
 * the socket, writes the 101 and returns 1 with the socket a session's
 * (address handle `ip` included), or -1 when the peer was gone (socket
 * closed, handle released). `watched`: fd is in the gateway's wsio set
 * already (front.h's wait for the request), under a pointer that is no
 * longer valid: a 1 has pointed its entry at the session, a 0 has left it
 * for the caller to remove. now_ms: cf_mono_ms() at the accept (or at the
 * wait's wake-up). */
int ws_open(struct gw *gw, int fd, uint32_t ip, const char *peeked, size_t n, bool watched,
            int64_t now_ms);

/* Sets up the gateway's own handling of established plain-TCP WebSockets
 * (session.h, own mode; wsio.h); with TLS every connection stays with lws.
 * 0 or -1 after logging. ws_shutdown drops the connections still open
 * (before the lws context goes); ws_free releases the rest after it. */
int ws_init(struct gw *gw);
void ws_shutdown(struct gw *gw);
void ws_free(struct gw *gw);

/* lws destroys a session's connection: in lws mode the session is freed
 * (leaving its rooms first if the close callback never ran) and its address
 * released; in own mode this ends the hand-over (sess_handover_done). */
struct session;
void ws_destroy(struct gw *gw, struct session *s);

/* Pings sessions that have been silent for PING_INTERVAL and drops those
 * that left a ping unanswered for PING_TIMEOUT. Each call looks at the next
 * 1/`slices` of the sessions, so that calling it `slices` times a second
 * looks at each about once a second: one walk over every session took
 * ~0.2 ms at 5000 connections (about 45 ns each, a cache miss), and the
 * messages arriving meanwhile waited for it. */
void ws_keepalive(struct gw *gw, unsigned slices);

/* Sends every session close 1001 (going away): the gateway is draining. */
void ws_drain_all(struct gw *gw);

#endif
