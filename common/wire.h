/* wire: the gateway <-> broker protocol and the room payload on Redis.
 *
 * Every message is one msgpack map with string keys: "v" (wire version, 1) and
 * "t" (type) first, then the type's fields (docs/wire.md has the table). On a
 * stream socket each message is framed by a 4-byte big-endian length. The
 * payload of a "msg" is exactly what brokers PUBLISH to Redis channel
 * "room:<name>", so a message travels gateway -> broker -> Redis -> brokers ->
 * gateways without being re-encoded.
 *
 * Decoding is defensive: frames are bounded (CF_WIRE_MAX_FRAME), container
 * sizes are checked against the bytes present before msgpack-c allocates
 * anything (it trusts declared sizes), trailing bytes, unknown versions and
 * types, missing fields and fields of the wrong type are all errors, and names
 * are validated with the same rules the gateway applies to clients. Unknown
 * keys are ignored so that a newer peer can add fields.
 *
 * cf_wire_msg_prefix supports the broker's Lua scripts, which append the
 * "epoch" and "id" a message gets in Redis to bytes encoded here.
 *
 * This and gateway/mpjson.c (client msgpack frames) are the only modules that
 * include msgpack.h. */
#ifndef CF_WIRE_H
#define CF_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define CF_WIRE_VERSION 1
#define CF_WIRE_HDR 4
#define CF_WIRE_MAX_FRAME (4u * 1024u * 1024u) /* payload bytes */
#define CF_WIRE_MAX_TEXT (128u * 1024u)        /* bytes of a message's text */
#define CF_WIRE_MAX_NODE 64                    /* bytes of a node name */
#define CF_WIRE_MAX_SHARDS 1024
/* Redis servers of a broker (state.servers; CF_REDIS_MAX_SERVERS) */
#define CF_WIRE_MAX_SERVERS 64
#define CF_WIRE_MAX_TOKEN 256 /* bytes of conn, cid, epoch, code */
#define CF_WIRE_MAX_ITEMS 10000
/* Bytes of a payload on a room's Redis channel. The largest event, a msg with
 * CF_WIRE_MAX_TEXT of text, a room and sender of the longest names, an epoch
 * and an id, takes CF_WIRE_MAX_TEXT + 273 (test_wire_v1 builds it); the
 * rest is room for fields a newer version may add. Bigger payloads are
 * foreign: a byte of msgpack can cost tens of bytes of decoder memory, and an
 * accepted event is forwarded to every gateway of the room and decoded again
 * there. */
#define CF_WIRE_MAX_EVENT (CF_WIRE_MAX_TEXT + 1024u)
#define CF_WIRE_EPOCH_LEN 16 /* lowercase hex digits of a room's epoch (broker/scripts.c) */

enum cf_wire_type {
    CF_WIRE_HELLO = 1, /* gateway -> broker, first on a link: shard, shards, node */
    CF_WIRE_WELCOME,   /* broker -> gateway, answer to hello: shard, shards, node, link_queue? */
    CF_WIRE_JOIN,      /* gateway -> broker: room (the gateway's first member joined) */
    CF_WIRE_LEAVE,     /* gateway -> broker: room (the gateway's last member left) */
    CF_WIRE_MSG,       /* a room message, both ways and on Redis: room, from, text, ts,
                          epoch? id? (set in Redis) */
    CF_WIRE_PING,      /* either way: seq */
    CF_WIRE_PONG,      /* answer to ping: seq */
    CF_WIRE_SEND,      /* gateway -> broker: q, room, from, text, ts, cid? (answer: sent/fail) */
    CF_WIRE_SENT,      /* broker -> gateway: q, room, id, ts, dup */
    CF_WIRE_FAIL,      /* broker -> gateway: q, code, text (a request was not done) */
    CF_WIRE_SUB,       /* gateway -> broker: q, room, user, conn, limit, budget, since?, epoch? */
    CF_WIRE_SUBBED,    /* broker -> gateway: q, room, epoch, last_id, pv, count, members,
                          messages, recovered */
    CF_WIRE_UNSUB,     /* gateway -> broker: room, conn (that connection left the room) */
    CF_WIRE_HIST,      /* gateway -> broker: q, room, limit, budget, before? */
    CF_WIRE_HISTR,     /* broker -> gateway: q, room, messages, has_more */
    CF_WIRE_TYPING,    /* both ways and on Redis: room, user */
    CF_WIRE_PRESENCE,  /* on Redis and broker -> gateway: room, user, action, count, pv */
    CF_WIRE_STATE,     /* broker -> gateway: ready (Redis connected, delivery canary passing) */
};
#define CF_WIRE_TYPE_MAX CF_WIRE_STATE

/* Optional fields present in a message (cf_wire_msg.has). */
enum {
    CF_WIRE_HAS_ID = 1u << 0,        /* msg.id */
    CF_WIRE_HAS_CID = 1u << 1,       /* send.cid */
    CF_WIRE_HAS_SINCE = 1u << 2,     /* sub.since */
    CF_WIRE_HAS_EPOCH = 1u << 3,     /* sub.epoch, msg.epoch */
    CF_WIRE_HAS_BEFORE = 1u << 4,    /* hist.before */
    CF_WIRE_HAS_SERVING = 1u << 5,   /* state.serving */
    CF_WIRE_HAS_BACK = 1u << 6,      /* state.back */
    CF_WIRE_HAS_SERVERS = 1u << 7,   /* state.servers */
    CF_WIRE_HAS_LINK_QUEUE = 1u << 8 /* welcome.link_queue */
};

/* A string inside a decoded payload: not NUL-terminated, valid only while the
 * payload bytes are. */
struct cf_str {
    const char *p;
    uint32_t len;
};

struct cf_wire_msg {
    enum cf_wire_type type;
    unsigned has; /* CF_WIRE_HAS_* */
    struct cf_str room, from, text, node, user, conn, cid, epoch, code, action;
    int64_t ts; /* ms since the epoch, set by the process that accepted the message */
    uint32_t shard, shards, limit, budget;
    uint64_t seq, q, id, since, before, last_id, pv, count;
    bool recovered, has_more, dup, ready;
    /* state: at least one of the broker's Redis servers works (ready: every
     * one does); absent from older brokers: take `ready` */
    bool serving;
    /* state: the broker's Redis server `back` (of `servers`) became usable
     * again, its rooms subscribed anew: what it published meanwhile did not
     * reach the broker, and the gateway re-syncs the members of its rooms
     * (cf_ring_server_of) */
    uint32_t back, servers;
    /* welcome: the broker's bound on its queue toward this gateway
     * (MAX_LINK_QUEUE_BYTES), which its answers in flight must fit; absent
     * from older brokers */
    uint64_t link_queue;
    /* subbed: users online (strings); subbed/histr: encoded "msg" payloads
     * (binary), oldest first. Decoded arrays live in the decoder's memory. */
    const struct cf_str *members, *messages;
    uint32_t nmembers, nmessages;
};

const char *cf_wire_type_name(enum cf_wire_type t);

/* Appends one framed message (header + payload) to out. Returns 0, -ENOBUFS
 * when out is at its bound, -ENOMEM, or -EINVAL for an unknown type or a
 * field over its limit. On error out is unchanged. */
int cf_wire_encode(struct cf_bytes *out, const struct cf_wire_msg *m);

/* Encodes a "msg" payload (no frame header) whose map header announces two
 * entries more than it holds, so that appending "epoch" with a string and
 * "id" with an integer (msgpack) completes it. */
int cf_wire_msg_prefix(struct cf_bytes *out, const struct cf_wire_msg *m);

/* Appends a frame holding an already-encoded payload (e.g. one from Redis). */
int cf_wire_frame_raw(struct cf_bytes *out, const void *payload, size_t len);

/* Looks at the front of a stream buffer. Returns 1 and sets payload and len when
 * a whole frame is there (the caller consumes CF_WIRE_HDR + len bytes when
 * done with it), 0 when more bytes are needed, or -EMSGSIZE when the header
 * announces more than CF_WIRE_MAX_FRAME bytes (the stream is unusable). */
int cf_wire_frame_peek(const struct cf_bytes *in, const unsigned char **payload, size_t *len);

/* 0 when p[0, len) is exactly one msgpack object whose declared container
 * sizes fit in the bytes present (safe to hand to msgpack-c), else -1. */
int cf_wire_prescan(const void *p, size_t len);

struct cf_wire_decoder;

struct cf_wire_decoder *cf_wire_decoder_new(void);
void cf_wire_decoder_free(struct cf_wire_decoder *d); /* NULL is a no-op */

/* Decodes one payload. Returns 0 and fills *m (strings point into payload),
 * or -EBADMSG and sets *why to a static description of what was wrong. The
 * decoder's memory is reused by the next call. */
int cf_wire_decode(struct cf_wire_decoder *d, const void *payload, size_t len,
                   struct cf_wire_msg *m, const char **why);

/* A payload that arrived on room `room`'s Redis channel, where anyone who can
 * reach Redis can PUBLISH: NULL when it is at most CF_WIRE_MAX_EVENT bytes
 * and decodes (into *m, valid as for cf_wire_decode) to a msg, typing or
 * presence event of that very room, else why it must be dropped. A msg has
 * both an epoch (CF_WIRE_EPOCH_LEN lowercase hex digits) and an id (from 1),
 * as the send script stores it, or neither, as a backend publishes it:
 * gateways order and skip messages by id, so one PUBLISH with a made-up id
 * could otherwise mute a room for v1 clients. */
const char *cf_wire_room_event(struct cf_wire_decoder *d, const void *payload, size_t len,
                               const char *room, size_t room_len, struct cf_wire_msg *m);

#endif
