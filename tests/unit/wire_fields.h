/* wire_fields: hand-built payloads for the decoder tests (test_wire_bad.c,
 * test_wire_v1_bad.c). A message is a list of fields that a test edits before
 * packing, so that each case is a valid message with one thing changed.
 * Packing goes through msgpack-c, not the encoder under test, which would
 * refuse most of these. Include after cmocka.h. */
#ifndef TEST_WIRE_FIELDS_H
#define TEST_WIRE_FIELDS_H

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "wire.h"
#include "wire_fixture.h"

/* K_DOUBLE, K_ARRAY0, K_MAP0 and K_BIN are fixed values (1.5, [], {}, the
 * bytes "bin"): only their type matters to the decoder. */
enum kind {
    K_STR,
    K_UINT,
    K_INT,
    K_NIL,
    K_TRUE,
    K_DOUBLE,
    K_ARRAY0,
    K_MAP0,
    K_BIN,
    K_STRS,
    K_BINS,
    K_RAW
};

struct field {
    const char *key;
    enum kind kind;
    const char *s;     /* K_STR, K_BIN; K_RAW: bytes packed as they are */
    int64_t i;         /* K_UINT, K_INT; K_RAW: length */
    const char **list; /* K_STRS, K_BINS: NULL-terminated */
};

#define FS(k, v) ((struct field){(k), K_STR, (v), 0, NULL})
#define FU(k, v) ((struct field){(k), K_UINT, NULL, (int64_t)(v), NULL})
#define FI(k, v) ((struct field){(k), K_INT, NULL, (v), NULL})
#define FK(k, kd) ((struct field){(k), (kd), "bin", 0, NULL})
#define FL(k, kd, l) ((struct field){(k), (kd), NULL, 0, (l)})
#define FR(k, b, n) ((struct field){(k), K_RAW, (b), (n), NULL})

struct fset {
    struct field f[16];
    size_t n;
};

/* The decoder's reasons, as wire.c words them: a case checks the reason too,
 * so that it cannot pass by failing on something other than its one change. */
#define WHY_SIZE "payload size out of bounds"
#define WHY_PRESCAN "malformed or truncated msgpack"
#define WHY_NOT_MAP "payload is not a map"
#define WHY_KEY "map key is not a string"
#define WHY_TYPE "a field has the wrong type or is out of range"
#define WHY_DUP "duplicate key"
#define WHY_NO_V "missing wire version \"v\""
#define WHY_VERSION "unsupported wire version"
#define WHY_NO_T "missing type \"t\""
#define WHY_UNKNOWN_T "unknown message type"
#define WHY_MISSING "a required field is missing"
#define WHY_ROOM "invalid room name"
#define WHY_FROM "invalid sender name"
#define WHY_TEXT "text is too long or not UTF-8"
#define WHY_NODE "invalid node name"
#define WHY_SHARD "shard index not below shard count"
#define WHY_STRING "a string field is invalid"

/* ---- editing a field set ------------------------------------------------- */

/* The index of the field named key, or s->n when there is none. */
static inline size_t fs_find(const struct fset *s, const char *key)
{
    size_t i = 0;
    while (i < s->n && strcmp(s->f[i].key, key) != 0)
        i++;
    return i;
}

static inline void fs_add(struct fset *s, struct field f)
{
    assert_true(s->n < 16);
    s->f[s->n++] = f;
}

/* Replaces the field named key with f, which may have another key (to test
 * a field standing in for another). The field must be there. */
static inline void fs_set(struct fset *s, const char *key, struct field f)
{
    size_t i = fs_find(s, key);
    if (i == s->n)
        fail_msg("no field %s", key);
    else
        s->f[i] = f;
}

/* Sets f's key to f, adding it when it is not there (optional fields). */
static inline void fs_put(struct fset *s, struct field f)
{
    size_t i = fs_find(s, f.key);
    if (i < s->n)
        s->f[i] = f;
    else
        fs_add(s, f);
}

static inline void fs_del(struct fset *s, const char *key)
{
    size_t i = fs_find(s, key);
    if (i == s->n) {
        fail_msg("no field %s", key);
        return;
    }
    memmove(&s->f[i], &s->f[i + 1], (s->n - i - 1) * sizeof s->f[0]);
    s->n--;
}

/* ---- packing ------------------------------------------------------------- */

struct pk {
    msgpack_sbuffer sb;
    msgpack_packer p;
};

static inline void pk_begin(struct pk *k)
{
    msgpack_sbuffer_init(&k->sb);
    msgpack_packer_init(&k->p, &k->sb, msgpack_sbuffer_write);
}

static inline void pk_end(struct pk *k)
{
    msgpack_sbuffer_destroy(&k->sb);
}

static inline void pk_strn(struct pk *k, const char *s, size_t n)
{
    msgpack_pack_str(&k->p, n);
    msgpack_pack_str_body(&k->p, s, n);
}

/* Bytes as they are, whatever msgpack they make (or fail to make). */
static inline void pk_raw(struct pk *k, const void *p, size_t n)
{
    msgpack_sbuffer_write(&k->sb, p, n);
}

static inline void pk_list(struct pk *k, enum kind kind, const char **list)
{
    size_t n = 0;
    while (list[n])
        n++;
    msgpack_pack_array(&k->p, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list[i]);
        if (kind == K_STRS) {
            pk_strn(k, list[i], len);
        } else {
            msgpack_pack_bin(&k->p, len);
            msgpack_pack_bin_body(&k->p, list[i], len);
        }
    }
}

static inline void pk_value(struct pk *k, const struct field *f)
{
    switch (f->kind) {
    case K_STR:
        pk_strn(k, f->s, strlen(f->s));
        break;
    case K_UINT:
        msgpack_pack_uint64(&k->p, (uint64_t)f->i);
        break;
    case K_INT:
        msgpack_pack_int64(&k->p, f->i);
        break;
    case K_NIL:
        msgpack_pack_nil(&k->p);
        break;
    case K_TRUE:
        msgpack_pack_true(&k->p);
        break;
    case K_DOUBLE:
        msgpack_pack_double(&k->p, 1.5);
        break;
    case K_ARRAY0:
        msgpack_pack_array(&k->p, 0);
        break;
    case K_MAP0:
        msgpack_pack_map(&k->p, 0);
        break;
    case K_BIN:
        msgpack_pack_bin(&k->p, strlen(f->s));
        msgpack_pack_bin_body(&k->p, f->s, strlen(f->s));
        break;
    case K_STRS:
    case K_BINS:
        pk_list(k, f->kind, f->list);
        break;
    case K_RAW:
        pk_raw(k, f->s, (size_t)f->i);
        break;
    }
}

/* Packs the fields as one map; extra_entries more entries are announced for
 * the caller to append. */
static inline void pk_fields(struct pk *k, const struct fset *s, size_t extra_entries)
{
    msgpack_pack_map(&k->p, s->n + extra_entries);
    for (size_t i = 0; i < s->n; i++) {
        pk_strn(k, s->f[i].key, strlen(s->f[i].key));
        pk_value(k, &s->f[i]);
    }
}

/* ---- decoding ------------------------------------------------------------ */

static inline int decode_raw(const void *p, size_t len, struct cf_wire_msg *m, const char **why)
{
    *why = NULL;
    return cf_wire_decode(g_dec, p, len, m, why);
}

static inline int decode_fields(const struct fset *s, struct cf_wire_msg *m, const char **why)
{
    struct pk k;
    pk_begin(&k);
    pk_fields(&k, s, 0);
    int rc = decode_raw(k.sb.data, k.sb.size, m, why);
    pk_end(&k);
    return rc;
}

#endif
