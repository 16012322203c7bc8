/* wire: see wire.h. */
#include "wire.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

struct cf_wire_decoder {
    msgpack_zone zone;
};

static const char *const type_names[] = {
    [CF_WIRE_HELLO] = "hello", [CF_WIRE_WELCOME] = "welcome", [CF_WIRE_JOIN] = "join",
    [CF_WIRE_LEAVE] = "leave", [CF_WIRE_MSG] = "msg",         [CF_WIRE_PING] = "ping",
    [CF_WIRE_PONG] = "pong",
};
#define TYPE_MAX CF_WIRE_PONG

const char *cf_wire_type_name(enum cf_wire_type t)
{
    return (t >= CF_WIRE_HELLO && t <= TYPE_MAX) ? type_names[t] : "unknown";
}

/* ---- encoding ---------------------------------------------------------- */

/* msgpack-c keeps packing after a failed write, so the sink remembers the
 * first failure and refuses everything after it. */
struct sink {
    struct cf_bytes *out;
    int err;
};

static int pk_write(void *data, const char *buf, size_t len)
{
    struct sink *s = data;
    if (!s->err)
        s->err = cf_bytes_append(s->out, buf, len);
    return s->err;
}

static void pk_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void pk_key(msgpack_packer *pk, const char *key)
{
    pk_str(pk, key, strlen(key));
}

static void pk_kv_str(msgpack_packer *pk, const char *key, struct cf_str v)
{
    pk_key(pk, key);
    pk_str(pk, v.p ? v.p : "", v.len);
}

static void pk_kv_uint(msgpack_packer *pk, const char *key, uint64_t v)
{
    pk_key(pk, key);
    msgpack_pack_uint64(pk, v);
}

static int check_limits(const struct cf_wire_msg *m)
{
    if (m->type < CF_WIRE_HELLO || m->type > TYPE_MAX)
        return -EINVAL;
    if (m->room.len > CF_ROOM_MAX || m->from.len > CF_USERNAME_BYTES_MAX ||
        m->text.len > CF_WIRE_MAX_TEXT || m->node.len > CF_WIRE_MAX_NODE)
        return -EINVAL;
    return 0;
}

int cf_wire_encode(struct cf_bytes *out, const struct cf_wire_msg *m)
{
    int rc = check_limits(m);
    if (rc < 0)
        return rc;
    size_t mark = cf_bytes_len(out);
    unsigned char hdr[CF_WIRE_HDR] = {0};
    if ((rc = cf_bytes_append(out, hdr, sizeof hdr)) < 0)
        return rc;

    struct sink sink = {out, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sink, pk_write);
    int fields;
    switch (m->type) {
    case CF_WIRE_HELLO:
    case CF_WIRE_WELCOME:
        fields = 5;
        break;
    case CF_WIRE_JOIN:
    case CF_WIRE_LEAVE:
        fields = 3;
        break;
    case CF_WIRE_MSG:
        fields = 6;
        break;
    default: /* ping, pong */
        fields = 3;
        break;
    }
    msgpack_pack_map(&pk, (size_t)fields);
    pk_key(&pk, "v");
    msgpack_pack_uint32(&pk, CF_WIRE_VERSION);
    pk_key(&pk, "t");
    pk_str(&pk, type_names[m->type], strlen(type_names[m->type]));
    switch (m->type) {
    case CF_WIRE_HELLO:
    case CF_WIRE_WELCOME:
        pk_kv_uint(&pk, "shard", m->shard);
        pk_kv_uint(&pk, "shards", m->shards);
        pk_kv_str(&pk, "node", m->node);
        break;
    case CF_WIRE_JOIN:
    case CF_WIRE_LEAVE:
        pk_kv_str(&pk, "room", m->room);
        break;
    case CF_WIRE_MSG:
        pk_kv_str(&pk, "room", m->room);
        pk_kv_str(&pk, "from", m->from);
        pk_kv_str(&pk, "text", m->text);
        pk_key(&pk, "ts");
        msgpack_pack_int64(&pk, m->ts);
        break;
    default:
        pk_kv_uint(&pk, "seq", m->seq);
        break;
    }
    if (sink.err) {
        cf_bytes_truncate(out, mark);
        return sink.err;
    }
    size_t len = cf_bytes_len(out) - mark - CF_WIRE_HDR;
    if (len > CF_WIRE_MAX_FRAME) {
        cf_bytes_truncate(out, mark);
        return -EINVAL;
    }
    unsigned char *h = (unsigned char *)cf_bytes_data(out) + mark;
    h[0] = (unsigned char)(len >> 24);
    h[1] = (unsigned char)(len >> 16);
    h[2] = (unsigned char)(len >> 8);
    h[3] = (unsigned char)len;
    return 0;
}

int cf_wire_frame_raw(struct cf_bytes *out, const void *payload, size_t len)
{
    if (len > CF_WIRE_MAX_FRAME)
        return -EINVAL;
    size_t live = cf_bytes_len(out);
    if (CF_WIRE_HDR + len > out->max || live > out->max - CF_WIRE_HDR - len)
        return -ENOBUFS;
    unsigned char *dst = cf_bytes_reserve(out, CF_WIRE_HDR + len);
    if (!dst)
        return -ENOMEM;
    dst[0] = (unsigned char)(len >> 24);
    dst[1] = (unsigned char)(len >> 16);
    dst[2] = (unsigned char)(len >> 8);
    dst[3] = (unsigned char)len;
    memcpy(dst + CF_WIRE_HDR, payload, len);
    cf_bytes_commit(out, CF_WIRE_HDR + len);
    return 0;
}

int cf_wire_frame_peek(const struct cf_bytes *in, const unsigned char **payload, size_t *len)
{
    size_t have = cf_bytes_len(in);
    if (have < CF_WIRE_HDR)
        return 0;
    const unsigned char *h = cf_bytes_data(in);
    size_t n = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
    if (n > CF_WIRE_MAX_FRAME)
        return -EMSGSIZE;
    if (have - CF_WIRE_HDR < n)
        return 0;
    *payload = h + CF_WIRE_HDR;
    *len = n;
    return 1;
}

/* ---- decoding ---------------------------------------------------------- */

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Walks exactly one msgpack object spanning all of p[0, len) without building
 * it, checking that every declared size fits in the bytes that remain. Each
 * element takes at least one byte, so a container may never announce more
 * elements than bytes left: this bounds what msgpack-c allocates afterwards to
 * a small multiple of len. Returns 0 or -1. */
static int prescan(const unsigned char *p, size_t len)
{
    size_t i = 0;
    uint64_t pending = 1; /* objects still to read */
    while (pending > 0) {
        if (i >= len)
            return -1; /* truncated */
        unsigned char b = p[i++];
        pending--;
        size_t left = len - i;
        uint64_t skip = 0, items = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixints, nil, bools */
        } else if (b >= 0x80 && b <= 0x8f) {
            items = 2u * (b & 0x0f);
        } else if (b >= 0x90 && b <= 0x9f) {
            items = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: if (left < 1) return -1; skip = 1 + be(p + i, 1); break;
            case 0xc5: case 0xda: if (left < 2) return -1; skip = 2 + be(p + i, 2); break;
            case 0xc6: case 0xdb: if (left < 4) return -1; skip = 4 + be(p + i, 4); break;
            case 0xc7: if (left < 1) return -1; skip = 2 + be(p + i, 1); break;
            case 0xc8: if (left < 2) return -1; skip = 3 + be(p + i, 2); break;
            case 0xc9: if (left < 4) return -1; skip = 5 + be(p + i, 4); break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xca: case 0xce: case 0xd2: skip = 4; break;
            case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: if (left < 2) return -1; items = be(p + i, 2); skip = 2; break;
            case 0xdd: if (left < 4) return -1; items = be(p + i, 4); skip = 4; break;
            case 0xde: if (left < 2) return -1; items = 2 * be(p + i, 2); skip = 2; break;
            case 0xdf: if (left < 4) return -1; items = 2 * be(p + i, 4); skip = 4; break;
            default: return -1; /* 0xc1 is never used */
            }
        }
        if (skip > left)
            return -1;
        i += (size_t)skip;
        pending += items;
        if (pending > len - i)
            return -1; /* more elements announced than bytes left */
    }
    return i == len ? 0 : -1; /* trailing bytes */
}

struct cf_wire_decoder *cf_wire_decoder_new(void)
{
    struct cf_wire_decoder *d = malloc(sizeof *d);
    if (!d)
        return NULL;
    if (!msgpack_zone_init(&d->zone, 4096)) {
        free(d);
        return NULL;
    }
    return d;
}

void cf_wire_decoder_free(struct cf_wire_decoder *d)
{
    if (!d)
        return;
    msgpack_zone_destroy(&d->zone);
    free(d);
}

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

enum {
    F_V = 1 << 0, F_T = 1 << 1, F_ROOM = 1 << 2, F_FROM = 1 << 3, F_TEXT = 1 << 4,
    F_TS = 1 << 5, F_SHARD = 1 << 6, F_SHARDS = 1 << 7, F_NODE = 1 << 8, F_SEQ = 1 << 9,
};

static int get_str(const msgpack_object *o, struct cf_str *out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return -1;
    out->p = o->via.str.ptr;
    out->len = o->via.str.size;
    return 0;
}

static int get_uint(const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
    *out = o->via.u64;
    return 0;
}

static int get_int(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return 0;
    }
    return -1;
}

#define FAIL(msg)                                                                                  \
    do {                                                                                           \
        *why = (msg);                                                                              \
        return -EBADMSG;                                                                           \
    } while (0)

static int read_fields(const msgpack_object *map, struct cf_wire_msg *m, unsigned *seen,
                       uint64_t *version, struct cf_str *type, const char **why)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            FAIL("map key is not a string");
        uint64_t u = 0;
        unsigned bit = 0;
        int bad = 0;
        if (key_is(k, "v")) {
            bit = F_V;
            bad = get_uint(v, version);
        } else if (key_is(k, "t")) {
            bit = F_T;
            bad = get_str(v, type);
        } else if (key_is(k, "room")) {
            bit = F_ROOM;
            bad = get_str(v, &m->room);
        } else if (key_is(k, "from")) {
            bit = F_FROM;
            bad = get_str(v, &m->from);
        } else if (key_is(k, "text")) {
            bit = F_TEXT;
            bad = get_str(v, &m->text);
        } else if (key_is(k, "node")) {
            bit = F_NODE;
            bad = get_str(v, &m->node);
        } else if (key_is(k, "ts")) {
            bit = F_TS;
            bad = get_int(v, &m->ts);
        } else if (key_is(k, "shard")) {
            bit = F_SHARD;
            bad = get_uint(v, &u) || u >= CF_WIRE_MAX_SHARDS;
            m->shard = (uint32_t)u;
        } else if (key_is(k, "shards")) {
            bit = F_SHARDS;
            bad = get_uint(v, &u) || u < 1 || u > CF_WIRE_MAX_SHARDS;
            m->shards = (uint32_t)u;
        } else if (key_is(k, "seq")) {
            bit = F_SEQ;
            bad = get_uint(v, &m->seq);
        } else {
            continue; /* a newer peer's field */
        }
        if (bad)
            FAIL("a field has the wrong type or is out of range");
        if (*seen & bit)
            FAIL("duplicate key");
        *seen |= bit;
    }
    return 0;
}

int cf_wire_decode(struct cf_wire_decoder *d, const void *payload, size_t len,
                   struct cf_wire_msg *m, const char **why)
{
    memset(m, 0, sizeof *m);
    if (len == 0 || len > CF_WIRE_MAX_FRAME)
        FAIL("payload size out of bounds");
    if (prescan(payload, len) < 0)
        FAIL("malformed or truncated msgpack");
    msgpack_zone_clear(&d->zone);
    msgpack_object obj;
    size_t off = 0;
    if (msgpack_unpack(payload, len, &off, &d->zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
        off != len)
        FAIL("malformed msgpack");
    if (obj.type != MSGPACK_OBJECT_MAP)
        FAIL("payload is not a map");

    unsigned seen = 0;
    uint64_t version = 0;
    struct cf_str type = {0};
    int rc = read_fields(&obj, m, &seen, &version, &type, why);
    if (rc < 0)
        return rc;
    if (!(seen & F_V))
        FAIL("missing wire version \"v\"");
    if (version != CF_WIRE_VERSION)
        FAIL("unsupported wire version");
    if (!(seen & F_T))
        FAIL("missing type \"t\"");
    m->type = 0;
    for (int t = CF_WIRE_HELLO; t <= TYPE_MAX; t++)
        if (type.len == strlen(type_names[t]) && memcmp(type.p, type_names[t], type.len) == 0)
            m->type = (enum cf_wire_type)t;
    if (!m->type)
        FAIL("unknown message type");

    unsigned need;
    switch (m->type) {
    case CF_WIRE_HELLO:
    case CF_WIRE_WELCOME:
        need = F_SHARD | F_SHARDS | F_NODE;
        break;
    case CF_WIRE_JOIN:
    case CF_WIRE_LEAVE:
        need = F_ROOM;
        break;
    case CF_WIRE_MSG:
        need = F_ROOM | F_FROM | F_TEXT | F_TS;
        break;
    default:
        need = F_SEQ;
        break;
    }
    if ((seen & need) != need)
        FAIL("a required field is missing");
    if ((need & F_ROOM) && !cf_room_valid(m->room.p, m->room.len))
        FAIL("invalid room name");
    if ((need & F_FROM) && !cf_username_valid(m->from.p, m->from.len))
        FAIL("invalid sender name");
    if ((need & F_TEXT) &&
        (m->text.len > CF_WIRE_MAX_TEXT || !cf_utf8_valid(m->text.p, m->text.len)))
        FAIL("text is too long or not UTF-8");
    if ((need & F_NODE) &&
        (m->node.len > CF_WIRE_MAX_NODE || !cf_utf8_valid(m->node.p, m->node.len)))
        FAIL("invalid node name");
    if ((need & F_SHARD) && m->shard >= m->shards)
        FAIL("shard index not below shard count");
    return 0;
}
