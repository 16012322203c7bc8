/* front: the gateway's own answer to plain WebSocket upgrades.
 *
 * In a connect storm lws 4.1 spent most of a connection's cost before ws.c
 * took the socket over: its HTTP parser, adoption (timeouts inserted into one
 * sorted list that every handshake in flight walks), an eventfd wake-up per
 * adopted socket, its header tables, and closing its side after the
 * hand-over. A connection whose first bytes are a whole, well-formed upgrade
 * of /ws with a valid token (upgreq.h) is answered here instead and goes
 * straight to the gateway's own sockets (wsio.h). Everything else (HTTP,
 * refusals, anything unusual) goes to lws exactly as before: the request is
 * only peeked at, so lws reads it from the socket as if nobody had.
 *
 * One difference remains, harmless: frames a client sends before the 101
 * (RFC 6455 forbids it) that arrive between the peek and the read of the
 * request are read as ordinary frames, where lws would close with 1002;
 * frames already there at the peek do go to lws and get that 1002.
 *
 * A connection accepted before its request arrived waits in the epoll set
 * until its first bytes (then it is decided as above, and a session takes
 * its epoll entry over) or HANDSHAKE_TIMEOUT
 * (then it is closed, as lws would). Plain TCP only: under TLS the request
 * cannot be peeked at, and every connection goes to lws.
 *
 * Ownership: a connection taken is this module's until it is either a
 * session (ws_open), handed to lws (listener_adopt), or closed; its address
 * handle (iplimit.h) travels with it. */
#ifndef GW_FRONT_H
#define GW_FRONT_H

#include <stdbool.h>
#include <stdint.h>

struct gw;
struct listener;
struct front;

/* NULL when out of memory. The listener must outlive it. */
struct front *front_new(struct gw *gw, struct listener *l);
/* Closes the connections still waiting. NULL is a no-op. */
void front_free(struct front *f);

/* The listener's take hook (listener.h): true when the connection is taken
 * (answered, waiting, or closed because the peer left); false to give it to
 * lws now. now_ms: cf_mono_ms() at the accept. */
bool front_take(struct front *f, int fd, void *opaque, int64_t now_ms);

/* The wsio event of a waiting connection (conn.h: CONN_WAITING). */
void front_on_io(void *waiting);

/* Once a second: closes connections that sent nothing in HANDSHAKE_TIMEOUT. */
void front_tick(struct front *f, int64_t now_ms);

/* Connections waiting now (for metrics and tests). */
uint64_t front_waiting(const struct front *f);

#endif
