/* session: one client WebSocket connection: who it is, which rooms it is in,
 * and its bounded outbound queue.
 *
 * Outbound messages are shared, reference-counted buffers (encoded once per
 * message, not per recipient); a session holds one reference per queued
 * message. The queue is bounded in bytes (MAX_CLIENT_QUEUE_BYTES): a client
 * that does not read fast enough is disconnected with close code 1008 instead
 * of making anyone wait or memory grow. Once per loop pass (sess_flush)
 * every queued message that fits in 64 KiB is framed and sent in one send()
 * (binary frames for confab.msgpack.v1, text otherwise); a send cut short is
 * held (at most one batch, or the rest of one larger frame such as a big
 * history page, beyond the queue bound) and finished before anything else is
 * written.
 *
 * Two modes. Own mode (plain TCP, the usual case): once established, the
 * gateway owns the socket (in the wsio epoll set): sessio.c reads and parses
 * client frames (wsframe.h), answers pings, keeps the unsent end of a short
 * send, and runs the close handshake (close frame, then the socket is closed
 * when the client answers or after 3 s). lws mode (TLS): lws keeps the
 * connection; it parses frames, and holds the end of a short send.
 *
 * Ownership: the gateway creates a session when it accepts the upgrade. In
 * lws mode it frees it when lws destroys the connection; in own mode when
 * sess_reap reports its end. The session must have left every room by then. */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "rel.h"

struct lws;
struct session;

/* How the client speaks. Fan-out encodes a message once per kind in use. */
enum sess_proto { SESS_LEGACY = 0, SESS_V1_JSON, SESS_V1_MSGPACK, SESS_PROTO_COUNT };

static inline bool sess_proto_is_v1(enum sess_proto p)
{
    return p != SESS_LEGACY;
}

/* A session starts with a struct conn_head (conn.h). */

/* RATE_MSGS for one connection: each request takes a token; without one it
 * is refused (the client is told). Refusals draw from a second bucket of
 * SESS_REFUSALS_PER_BURST x `burst`, refilled at `rate`: a connection that
 * empties it (keeps sending far over its rate after being told) is to be
 * closed with 1008. */
#define SESS_REFUSALS_PER_BURST 4
enum sess_rate { SESS_RATE_OK, SESS_RATE_REFUSE, SESS_RATE_CLOSE };
enum sess_rate sess_rate_take(struct session *s, int rate, int burst, int64_t now_ms);

struct session *sess_new(uint64_t id, const char *user, size_t max_queue);
void sess_free(struct session *s); /* NULL is a no-op */

/* The WebSocket is established. Own mode (fd >= 0, plain TCP): the gateway
 * owns the socket fd from now on and wsi is the lws connection it was taken
 * from, which lws closes soon (sess_handover_done). lws mode (fd -1, TLS):
 * lws keeps the connection wsi. */
void sess_attach(struct session *s, struct lws *wsi, int fd, enum sess_proto proto,
                 int64_t now_ms); /* now_ms: cf_mono_ms(), the keepalive's start */
/* The connection is gone: drop the queue; later sends are ignored. */
void sess_detach(struct session *s);

/* Queues b (taking a reference) and asks for a WRITEABLE callback. Returns 0;
 * -ENOBUFS when the queue bound was hit (the session is then closing with 1008
 * and its queue was released); -EPIPE, dropping b, when the session is
 * already closing or gone. */
int sess_send(struct session *s, struct cf_buf *b);
/* Closes the session with 1008 and `reason` (a static string) as a slow
 * consumer: logged and counted as sess_send does at its bound. */
void sess_close_slow(struct session *s, const char *reason);
/* Whether sess_send would close the session as a slow consumer for a frame
 * of len bytes now (it first hands the socket what it takes, as sess_send
 * does). False when the session is closing or gone: sess_send drops then. */
bool sess_would_overflow(struct session *s, size_t len);

/* The WRITEABLE callback: writes what is queued (see above), or the pending
 * close. Returns -1 when lws must close the connection. */
int sess_on_writable(struct session *s);

/* Direct mode (ctx not NULL): a session with new output is written by
 * sess_flush once per loop pass (the loop calls it after each lws_service;
 * a zero-delay lws timer on ctx also runs it before the next wait) instead
 * of asking lws for a WRITEABLE callback, which costs a poll round and a
 * callback per delivery; a pass's messages for one client leave in one
 * send. lws' callback is still used while lws holds the tail of a short
 * send, for the rest of a queue over one batch, and for closes. NULL before
 * the context is destroyed. */
struct lws_context;
void sess_direct_writes(struct lws_context *ctx);
void sess_flush(void);
/* sess_flush without waiting for the pacing (pace.h): a drain's closes. */
void sess_flush_now(void);

/* The connection is closing outside sess_close: the client sent a close
 * frame (lws answers it), or lws closes it after a protocol error. Nothing
 * more is written, pings included (RFC 6455: no data after a close). */
void sess_stop_output(struct session *s);

/* Keep-alive, driven by the gateway's tick instead of lws: lws 4.1 keeps a
 * timer per connection in one sorted list that every re-arm walks, so with
 * thousands of connections each new connection and each pong cost
 * O(connections). sess_seen records a frame (any, pongs included) from the
 * client. sess_keepalive, called about once a second: after `interval_s`
 * without a frame it queues a ping (SESS_PINGED); when the ping has gone
 * unanswered for `timeout_s`, SESS_DEAD: the caller drops the connection. */
enum sess_alive { SESS_ALIVE, SESS_PINGED, SESS_DEAD };
void sess_seen(struct session *s, int64_t now_ms);
enum sess_alive sess_keepalive(struct session *s, int64_t now_ms, int interval_s, int timeout_s);
/* True for the first pong after a keep-alive ping of ours (and forgets it):
 * that pong is the server's asking, so it costs the client no RATE_MSGS
 * token; any other ping or pong does. */
bool sess_pong_owed(struct session *s);

/* Closes with a WebSocket close code and a short reason, a string literal
 * (kept, not copied; deferred to the next
 * WRITEABLE callback; forced after a few seconds if the client never reads). */
void sess_close(struct session *s, int code, const char *reason);
bool sess_closing(const struct session *s);

/* Frames one data message may come in, in either mode: empty continuation
 * frames would otherwise make a message that costs a parse each and never
 * ends. Browsers send a message in one; libraries that fragment do it in
 * pieces of kilobytes. */
#define SESS_MAX_FRAMES 256

/* Reassembles a message from the pieces of its frames (lws RECEIVE chunks,
 * or wsframe's pieces in own mode). Returns 1 with the whole message in msg
 * and msglen (valid until sess_rx_done), 0 when more fragments follow, -1
 * when it would exceed `max` bytes (close with 1009), or -2 when it comes in
 * more than SESS_MAX_FRAMES frames (close with 1008; a piece with
 * `remaining` 0 ends a frame). */
int sess_rx(struct session *s, const void *in, size_t len, bool first, bool final,
            size_t remaining, size_t max, const void **msg, size_t *msglen);
void sess_rx_done(struct session *s);

/* The client's address for a log line ("?" when unknown); a system call
 * in own mode. */
void sess_peer(const struct session *s, char *buf, size_t cap);
uint64_t sess_id(const struct session *s);
const char *sess_user(const struct session *s);
enum sess_proto sess_proto(const struct session *s);
struct lws *sess_wsi(const struct session *s);
struct cf_rel_end *sess_rooms(struct session *s);
/* The session's outstanding broker requests (owned by reqs.c). */
struct req;
struct req **sess_reqs(struct session *s);
uint32_t *sess_nreqs(struct session *s);
size_t sess_queued_bytes(const struct session *s);
/* How many re-syncs of its rooms have given the client something (their
 * whole joined, or missed messages), modulo 256: while that moves, a member
 * whose whole joined waits for room is waiting its turn (lrooms_full_round). */
uint8_t sess_resynced(const struct session *s);
void sess_note_resynced(struct session *s);
/* Bytes of events held for the session's pending joins, over all its rooms
 * (kept by lrooms.c): with its queue, bounded by sess_max_queue. */
uint32_t *sess_held_bytes(struct session *s);
size_t sess_max_queue(const struct session *s);

/* ---- own mode ----
 * What the socket engine tells the gateway: a whole message from the client
 * (binary or text, valid UTF-8, within the size limit), and the end of a
 * connection, reported from sess_reap (never from inside a loop over
 * sessions): the gateway then leaves its rooms and frees it. */
struct sess_handlers {
    void (*message)(void *ud, struct session *s, bool binary, const void *msg, size_t len);
    /* A ping or pong from the client: 0 to take it, 1 to ignore it (a ping
     * gets no pong), or the close code to end the connection with (and
     * *why, a static string). They carry no request, but cost a read and a
     * pong each: without a limit a client could send them without end. */
    int (*control)(void *ud, struct session *s, const char **why);
    void (*ended)(void *ud, struct session *s);
};
struct wsio;
/* The set owned sessions live in, or with h NULL (TLS: no session is owned)
 * a set used only for the paced flush's wake-up. NULL io: none. */
void sess_io_init(struct wsio *io, const struct sess_handlers *h, void *ud, size_t max_msg);
/* The wsio event callback of an owned session. */
void sess_on_io(void *session, bool readable, bool writable);
/* lws has closed the connection the session was taken from: the socket is
 * watched from now on (bytes lws had read early were reported to ws.c as
 * lws RECEIVE callbacks before this). in_set: the socket is in the set
 * already, under another pointer (ws_open): its entry is changed to the
 * session's, not added (one system call instead of a removal and an add). */
void sess_handover_done(struct session *s, bool in_set);
/* Whether the gateway owns the socket (own mode). */
bool sess_owned(const struct session *s);
/* Reports the connections that ended since the last call (see above). */
void sess_reap(void);
/* Drops the connection now, without a close handshake (a dead peer). */
void sess_drop(struct session *s);

/* Totals over every session of this process, for /metrics. */
struct sess_counters {
    uint64_t frames_out, bytes_out, slow_consumers;
    uint64_t saturated_flushes; /* flushes that found the gateway short of CPU (pace.h) */
};
void sess_counters(struct sess_counters *out);

/* An intrusive list of live sessions (for drain and counts). */
void sess_list_add(struct session **head, struct session *s);
void sess_list_del(struct session **head, struct session *s);
struct session *sess_list_next(const struct session *s);

#endif
