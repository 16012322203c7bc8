/* mpsink: a msgpack-c write callback appending to a cf_bytes. msgpack-c keeps
 * packing after a failed write, so the sink remembers the first failure and
 * refuses everything after it; check `err` once at the end.
 *
 *   struct cf_mpsink sink = {out, 0};
 *   msgpack_packer pk;
 *   msgpack_packer_init(&pk, &sink, cf_mpsink_write);
 *
 * For the modules that include msgpack.h (wire.c, gateway/mpjson.c). */
#ifndef CF_MPSINK_H
#define CF_MPSINK_H

#include <stddef.h>

#include "bytes.h"

struct cf_mpsink {
    struct cf_bytes *out;
    int err;
};

static inline int cf_mpsink_write(void *data, const char *buf, size_t len)
{
    struct cf_mpsink *s = data;
    if (!s->err)
        s->err = cf_bytes_append(s->out, buf, len);
    return s->err;
}

#endif
