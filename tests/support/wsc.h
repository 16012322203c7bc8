/* wsc: a minimal RFC 6455 client for tests, on a blocking socket with
 * timeouts. It can also misbehave on purpose (raw frames, no pongs, not
 * reading) so tests can check how the server treats bad clients. */
#ifndef TEST_WSC_H
#define TEST_WSC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define WS_TEXT 0x1
#define WS_BINARY 0x2
#define WS_CONT 0x0
#define WS_CLOSE 0x8
#define WS_PING 0x9
#define WS_PONG 0xA

/* wsc_recv results besides a positive opcode */
#define WSC_TIMEOUT 0
#define WSC_CLOSED -1 /* a close frame arrived: see wsc_close_code */
#define WSC_EOF -2    /* the connection ended without a close frame, or failed */

struct wsc;

/* Opens ws://127.0.0.1:port<path>. `headers` are extra request header lines
 * ("Name: v\r\n"...) or NULL. rcvbuf > 0 shrinks the socket receive buffer
 * (to make a slow reader). Returns the client, or NULL with *http_status set
 * to the status the server answered (0 when it did not answer). */
struct wsc *wsc_connect(int port, const char *path, const char *headers, int rcvbuf,
                        int *http_status);
/* Connects with ?token=<login(user)>. NULL on failure. */
struct wsc *wsc_connect_user(int port, const char *user);

/* Sends one masked frame. Returns 0 or -1. */
int wsc_send_frame(struct wsc *c, int opcode, bool fin, const void *data, size_t len);
int wsc_send_text(struct wsc *c, const char *s);
/* Sends n text frames in one write, so that the server reads them together. */
int wsc_send_texts(struct wsc *c, const char *const *texts, int n);

/* Receives the next data message (fragments joined). Pings are answered
 * unless autopong is off. Returns WS_TEXT/WS_BINARY with a malloc'd payload in
 * *out (NUL-terminated), or WSC_TIMEOUT / WSC_CLOSED / WSC_EOF. */
int wsc_recv(struct wsc *c, int timeout_ms, char **out, size_t *len);
/* The next text message as JSON (NULL on timeout, close, or bad JSON). */
json_t *wsc_recv_json(struct wsc *c, int timeout_ms);
/* True when nothing arrives for `ms` milliseconds. */
bool wsc_quiet(struct wsc *c, int ms);
/* Waits for the server to close; returns the close code (0 when the
 * connection ended without one), or -1 on timeout. Skips data messages. */
int wsc_wait_close(struct wsc *c, int timeout_ms);

void wsc_set_autopong(struct wsc *c, bool on);
/* Pings received so far (wsc_recv reads them). */
unsigned wsc_pings(const struct wsc *c);
int wsc_close_code(const struct wsc *c);
int wsc_fd(const struct wsc *c);
/* The subprotocol the server selected (its Sec-WebSocket-Protocol answer),
 * or "" when it selected none. */
const char *wsc_protocol(const struct wsc *c);
/* Sends a close frame (1000) and frees the client. NULL is a no-op. */
void wsc_close(struct wsc *c);
/* Drops the TCP connection without a close frame. */
void wsc_abort(struct wsc *c);

/* Builds {"type":type,"payload":{key:value}} and sends it. */
int wsc_send_event(struct wsc *c, const char *type, const char *key, const char *value);

#endif
