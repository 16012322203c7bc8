/* v1c: a Protocol v1 client for tests, on top of wsc.
 *
 * It connects offering one subprotocol (confab.v1: JSON text frames, or
 * confab.msgpack.v1: MessagePack binary frames), sends requests in that
 * encoding, and hands back every event as a jansson object whatever the
 * encoding, so the same assertions serve both.
 *
 * Waiting for one kind of event keeps every other event that arrives
 * meanwhile, in arrival order, for later waits: a test can wait for an
 * `ack` and then still find the `new_message` that came before it. A frame
 * of the wrong kind for the encoding (binary on confab.v1, text on
 * confab.msgpack.v1) or one that does not decode is kept as an event of type
 * V1_BAD_FRAME, so it never matches a wait and makes v1_none() false. */
#ifndef TEST_V1C_H
#define TEST_V1C_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "wsc.h"

#define V1_BAD_FRAME "!bad-frame"

enum v1_enc { V1_JSON, V1_MSGPACK };

struct v1c;

/* The subprotocol name of an encoding. */
const char *v1_subprotocol(enum v1_enc enc);

/* Logs `user` in on port and opens /ws?token=… offering the encoding's
 * subprotocol. NULL (with the reason printed) when the login or upgrade
 * fails or the server selects another subprotocol than the one offered. */
struct v1c *v1_open(int port, const char *user, enum v1_enc enc);
/* The same with a token obtained elsewhere and extra request header lines
 * ("Name: v\r\n"…, or NULL). *http_status gets the upgrade's status. */
struct v1c *v1_open_token(int port, const char *token, enum v1_enc enc, const char *headers,
                          int *http_status);

struct wsc *v1_wsc(struct v1c *c);
enum v1_enc v1_encoding(const struct v1c *c);

/* Sends {"type":type,"payload":payload} in the client's encoding. Takes the
 * reference to payload. 0 or -1. */
int v1_send(struct v1c *c, const char *type, json_t *payload);
/* Sends any JSON value in the client's encoding (takes the reference). */
int v1_send_value(struct v1c *c, json_t *value);

/* The next event: the oldest kept one, else the next from the socket. NULL
 * on timeout, close or end of connection. The caller owns the result. */
json_t *v1_next(struct v1c *c, int timeout_ms);

/* Matching below: `type` (NULL: any) and then pairs of payload key and string
 * value ending with NULL; an event matches when its type is `type` and each
 * key's payload value is a string equal to the given one. */

/* The first matching event, among kept ones first, else read from the socket
 * until timeout_ms passes (keeping what does not match). NULL on timeout. */
json_t *v1_wait(struct v1c *c, int timeout_ms, const char *type, ...);
/* The first matching kept event, removed from the kept ones; never reads. */
json_t *v1_take(struct v1c *c, const char *type, ...);
/* How many kept events match (after reading for `ms` milliseconds); -1 when
 * the connection has ended. */
int v1_count(struct v1c *c, int ms, const char *type, ...);
/* True when no matching event is kept and none arrives within ms, and the
 * connection has not ended (before or meanwhile). */
bool v1_none(struct v1c *c, int ms, const char *type, ...);
/* Whether a read found the connection closed or ended. */
bool v1_ended(const struct v1c *c);
/* How many frames of the wrong kind or that did not decode arrived so far. */
int v1_bad_frames(const struct v1c *c);
/* Drops every kept event. */
void v1_forget(struct v1c *c);
/* Prints the kept events to stdout (for failure diagnostics). */
void v1_dump(const struct v1c *c, const char *label);

/* Sends a close frame (1000) and frees the client. NULL is a no-op. */
void v1_close(struct v1c *c);
/* Drops the TCP connection without a close frame and frees the client. */
void v1_abort(struct v1c *c);

/* MessagePack <-> JSON, as the v1 encodings map them: maps with string keys
 * are objects, str is string, int is integer, float is real, nil is null.
 * v1_from_msgpack returns NULL unless data is exactly one object (bin and ext
 * values are refused). v1_to_msgpack returns a malloc'd buffer. */
json_t *v1_from_msgpack(const void *data, size_t len);
int v1_to_msgpack(const json_t *value, char **out, size_t *len);

#endif
