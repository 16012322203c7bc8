/* jevent: a room message, and the ack of a send, as the JSON text clients
 * get, written straight into a frame buffer.
 *
 * Every message is encoded once per gateway and protocol, and every send is
 * acked, which made building a jansson tree and dumping it about a tenth of a
 * busy gateway's CPU (docs/benchmarks.md). These shapes are fixed, so they
 * are written directly:
 * byte for byte what jansson's compact dump writes for the same tree (keys in
 * the same order; `"`, `\` and control characters escaped as jansson escapes
 * them, everything else as is). tests/unit/test_jevent.c holds the output
 * against jansson's. Every other event is still built with jansson.
 *
 * Ownership: the caller owns the returned buffer (one reference, payload at
 * `headroom`). NULL when a string is not valid UTF-8, the time is out of the
 * printable range or memory runs out: a message cannot be shown; an ack is
 * then built with jansson, which leaves such a field out (v1codec.c). */
#ifndef GW_JEVENT_H
#define GW_JEVENT_H

#include <stddef.h>

#include "buf.h"
#include "wire.h"

/* {"type":"new_message","payload":{"message":…,"from":…,"sent":…,"room":…}} */
struct cf_buf *jev_legacy_message(const struct cf_wire_msg *m, size_t headroom);

/* {"type":"new_message","payload":{"room":…,["id":…,]"message":…,"from":…,"sent":…}},
 * "id" when the message has one (CF_WIRE_HAS_ID). */
struct cf_buf *jev_v1_message(const struct cf_wire_msg *m, size_t headroom);

/* {"type":"ack","payload":{["id":…,]"room":…,"message_id":…,"sent":…}}, "id"
 * when the request had one (id.len > 0). */
struct cf_buf *jev_v1_ack(struct cf_str id, struct cf_str room, uint64_t message_id, int64_t ts,
                          size_t headroom);

#endif
