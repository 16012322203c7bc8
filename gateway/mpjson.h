/* mpjson: MessagePack <-> jansson, for the confab.msgpack.v1 subprotocol.
 *
 * A msgpack client frame is turned into the same json_t tree a JSON client's
 * frame gives, so one validator serves both protocols; server events built as
 * json_t are written out as msgpack for those clients.
 *
 * What JSON cannot express is made something the validator refuses in a
 * field and ignores elsewhere, so that a msgpack client's unknown keys are
 * ignored as a JSON client's are: a bin or ext value, or a float that is
 * NaN or infinite, decodes as an empty array (no field of the protocol
 * takes an array), and a map entry whose key
 * is not a string, or holds a NUL, is left out (no field has such a name).
 * Nesting is bounded by msgpack-c's parser (MPJSON_MAX_DEPTH maps and arrays,
 * empty ones too, and the placeholder counts as one; jansson allows 2048), and container sizes are
 * checked against the frame before anything is built. */
#ifndef GW_MPJSON_H
#define GW_MPJSON_H

#include <jansson.h>
#include <stddef.h>

#include "bytes.h"

/* msgpack-c's own limit (MSGPACK_EMBED_STACK_SIZE): a deeper frame does not
 * parse. */
#define MPJSON_MAX_DEPTH 32

/* Returns a new reference, or NULL (with *why set) for anything refused.
 * Decodes through one zone kept for the process's life (2 KiB): not
 * thread-safe, like the gateway's loop that calls it. */
json_t *mpjson_decode(const void *p, size_t len, const char **why);

/* The same, for a frame mpjson_decode refused, with integers past int64
 * (valid msgpack that jansson cannot hold) taken as reals: what the frame
 * says of its request id and room, so that its refusal can name them, as
 * a JSON client's is. NULL when the frame is refused for anything else. */
json_t *mpjson_rescue(const void *p, size_t len);

/* Appends the msgpack encoding of v to out. 0, -ENOBUFS, -ENOMEM, or
 * -EINVAL for a value msgpack cannot hold here (e.g. too deep). */
int mpjson_encode(struct cf_bytes *out, const json_t *v);

#endif
