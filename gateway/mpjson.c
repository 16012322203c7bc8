/* mpjson: see mpjson.h. */
#include "mpjson.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "mpsink.h"
#include "wire.h"

/* big_real: an integer past int64 becomes a real instead of refusing the
 * frame (mpjson_rescue). */
static json_t *from_obj(const msgpack_object *o, int depth, bool big_real, const char **why)
{
    if (depth > MPJSON_MAX_DEPTH) {
        *why = "nested too deeply";
        return NULL;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX && big_real)
            return json_real((double)o->via.u64);
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            *why = "integer out of range";
            return NULL;
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64))
            return json_real(o->via.f64);
        break; /* NaN and the infinities: JSON cannot hold them */
    case MSGPACK_OBJECT_STR:
        /* msgpack-c gives an empty string a NULL pointer */
        return json_stringn(o->via.str.size ? o->via.str.ptr : "", o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = from_obj(&o->via.array.ptr[i], depth + 1, big_real, why);
            if (!v || json_array_append_new(a, v) < 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR ||
                (k->via.str.size && memchr(k->via.str.ptr, '\0', k->via.str.size)))
                continue; /* see mpjson.h */
            const char *key = k->via.str.size ? k->via.str.ptr : "";
            if (json_object_getn(m, key, k->via.str.size)) {
                *why = "duplicate key"; /* as JSON_REJECT_DUPLICATES for JSON clients */
                json_decref(m);
                return NULL;
            }
            json_t *v = from_obj(&o->via.map.ptr[i].val, depth + 1, big_real, why);
            if (!v || json_object_setn_new(m, key, k->via.str.size, v) < 0) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    default:
        break; /* bin or ext */
    }
    /* What JSON cannot hold: an empty array (mpjson.h), a container, which
     * msgpack-c counts toward its depth: one deeper would not decode again */
    if (depth >= MPJSON_MAX_DEPTH) {
        *why = "nested too deeply";
        return NULL;
    }
    return json_array();
}

/* One zone for every frame: msgpack_zone_clear() keeps its first chunk and
 * frees only what a larger frame added, so a usual frame costs no malloc()
 * (a zone of its own was a 2 KiB malloc() and free() a frame). */
#define ZONE_CHUNK 2048
static msgpack_zone g_zone;
static bool g_zone_ready;

static json_t *decode(const void *p, size_t len, bool big_real, const char **why)
{
    *why = "malformed msgpack";
    if (cf_wire_prescan(p, len) < 0)
        return NULL;
    if (!g_zone_ready && !(g_zone_ready = msgpack_zone_init(&g_zone, ZONE_CHUNK)))
        return NULL;
    msgpack_object obj;
    size_t off = 0;
    json_t *v = NULL;
    if (msgpack_unpack(p, len, &off, &g_zone, &obj) == MSGPACK_UNPACK_SUCCESS && off == len) {
        *why = "invalid value (bad UTF-8, or out of range)";
        v = from_obj(&obj, 0, big_real, why);
    }
    msgpack_zone_clear(&g_zone);
    return v;
}

json_t *mpjson_decode(const void *p, size_t len, const char **why)
{
    return decode(p, len, false, why);
}

json_t *mpjson_rescue(const void *p, size_t len)
{
    const char *why;
    return decode(p, len, true, &why);
}

/* ---- encoding ------------------------------------------------------------ */


static int pack(msgpack_packer *pk, const json_t *v, int depth)
{
    if (depth > MPJSON_MAX_DEPTH)
        return -EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            size_t n = strlen(k);
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, k, n);
            if (pack(pk, x, depth + 1) < 0)
                return -EINVAL;
        }
        return 0;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(v));
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (pack(pk, x, depth + 1) < 0)
                return -EINVAL;
        }
        return 0;
    }
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        return 0;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        return 0;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    default:
        msgpack_pack_nil(pk);
        return 0;
    }
}

int mpjson_encode(struct cf_bytes *out, const json_t *v)
{
    size_t mark = cf_bytes_len(out);
    struct cf_mpsink sink = {out, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sink, cf_mpsink_write);
    int rc = pack(&pk, v, 0);
    if (rc == 0)
        rc = sink.err;
    if (rc < 0)
        cf_bytes_truncate(out, mark);
    return rc;
}
