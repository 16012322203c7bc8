/* v1codec: reading client requests and writing server events of protocol v1
 * (docs/protocol.md), in both encodings: JSON text frames (confab.v1) and
 * MessagePack binary frames (confab.msgpack.v1). Both go through the same
 * jansson tree (mpjson.h converts msgpack), so validation and event shapes
 * are written once.
 *
 * v1_parse validates everything the protocol promises to check and, for a
 * refused request, fills a v1_error with the code and message the client gets
 * and, when present and well-formed, the request's id (as ref) and room. */
#ifndef GW_V1CODEC_H
#define GW_V1CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "session.h"
#include "wire.h"

#define V1_DEFAULT_LIMIT 50
#define V1_MAX_LIMIT 100
#define V1_MAX_ID_CHARS 64

enum v1_type { V1_JOIN = 1, V1_LEAVE, V1_SEND, V1_HISTORY, V1_TYPING, V1_CHANGE_ROOM, V1_PING };

struct v1_req {
    enum v1_type type;
    struct cf_str room; /* change_room: the "name" */
    struct cf_str message, id, epoch;
    bool has_id, has_since, has_epoch, has_before;
    uint64_t since, before;
    uint32_t limit;
    void *doc; /* owns the strings */
};

struct v1_error {
    const char *code, *message;
    struct cf_str ref, room; /* empty when unknown */
};

/* 0 (free with v1_req_free) or -1 with *e filled (strings valid until
 * v1_error_free). */
int v1_parse(enum sess_proto p, const void *in, size_t len, struct v1_req *r, struct v1_error *e,
             void **edoc);
void v1_req_free(struct v1_req *r);
void v1_error_free(void *edoc);

/* Events. Each returns a buffer (one reference, LWS_PRE headroom) encoded
 * for protocol p, or NULL when out of memory. */
struct cf_buf *v1_encode_event(enum sess_proto p, const struct cf_wire_msg *ev); /* msg, typing,
                                                                                     presence */
struct cf_buf *v1_encode_error(enum sess_proto p, const char *code, const char *message,
                               struct cf_str ref, struct cf_str room);
struct cf_buf *v1_encode_ack(enum sess_proto p, struct cf_str id, struct cf_str room,
                             uint64_t message_id, int64_t ts);
struct cf_buf *v1_encode_left(enum sess_proto p, struct cf_str room);
/* pong: the answer to a ping, echoing its id (empty: none) */
struct cf_buf *v1_encode_pong(enum sess_proto p, struct cf_str id);

/* joined / history: `messages` are stored wire "msg" payloads, oldest first;
 * ones that do not decode are skipped (and counted in *bad). history echoes
 * the request's `id` when it had one (empty: none), so that a client with
 * several pages of a room in flight can tell the answers apart, and gives
 * the `epoch` of its messages when they have one. */
struct cf_wire_decoder;
struct cf_buf *v1_encode_joined(enum sess_proto p, struct cf_wire_decoder *d,
                                const struct cf_wire_msg *snap, size_t *bad);
struct cf_buf *v1_encode_history(enum sess_proto p, struct cf_wire_decoder *d,
                                 const struct cf_wire_msg *page, struct cf_str id, size_t *bad);

#endif
