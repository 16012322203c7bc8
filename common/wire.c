/* wire: see wire.h. Fields are described once, in a table, and each message
 * type lists the fields it requires and the optional ones it may carry; the
 * encoder and the decoder both walk that table. */
#include "wire.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "mpsink.h"
#include "validate.h"

struct cf_wire_decoder {
    msgpack_zone zone;
};

/* ---- the table ----------------------------------------------------------- */

enum fkind { FK_STR, FK_U32, FK_U64, FK_I64, FK_BOOL, FK_STRS, FK_BINS };
enum fcheck { FC_NONE, FC_ROOM, FC_USER, FC_TEXT, FC_NODE, FC_TOKEN, FC_ACTION };

/* Names are arrays so that a key is matched without strlen (key_is):
 * decoding looks every key of a frame up in these tables. A name has at
 * most NAME_CAP - 1 characters: one of NAME_CAP would fit the array without
 * its NUL (C allows it, GCC 12 says nothing) and never match. */
#define NAME_CAP 16

struct field {
    char name[NAME_CAP];
    enum fkind kind;
    enum fcheck check;
    size_t off;
    uint64_t max; /* integers: largest allowed value */
};

#define M(f) offsetof(struct cf_wire_msg, f)
/* The tables below are laid out by hand (clang-format would break them up). */
/* clang-format off */
enum {
    F_ROOM, F_FROM, F_TEXT, F_TS, F_SHARD, F_SHARDS, F_NODE, F_SEQ, F_Q, F_ID, F_CID, F_DUP,
    F_CODE, F_USER, F_CONN, F_LIMIT, F_BUDGET, F_SINCE, F_EPOCH, F_LAST_ID, F_PV, F_COUNT,
    F_MEMBERS, F_MESSAGES, F_RECOVERED, F_BEFORE, F_HAS_MORE, F_ACTION, F_READY, F_SERVING,
    F_BACK, F_SERVERS, F_LINK_QUEUE, F_COUNT_FIELDS
};
static const struct field fields[F_COUNT_FIELDS] = {
    [F_ROOM] = {"room", FK_STR, FC_ROOM, M(room), 0},
    [F_FROM] = {"from", FK_STR, FC_USER, M(from), 0},
    [F_TEXT] = {"text", FK_STR, FC_TEXT, M(text), 0},
    [F_TS] = {"ts", FK_I64, FC_NONE, M(ts), 0},
    [F_SHARD] = {"shard", FK_U32, FC_NONE, M(shard), CF_WIRE_MAX_SHARDS - 1},
    [F_SHARDS] = {"shards", FK_U32, FC_NONE, M(shards), CF_WIRE_MAX_SHARDS},
    [F_NODE] = {"node", FK_STR, FC_NODE, M(node), 0},
    [F_SEQ] = {"seq", FK_U64, FC_NONE, M(seq), UINT64_MAX},
    [F_Q] = {"q", FK_U64, FC_NONE, M(q), UINT64_MAX},
    [F_ID] = {"id", FK_U64, FC_NONE, M(id), UINT64_MAX},
    [F_CID] = {"cid", FK_STR, FC_TOKEN, M(cid), 0},
    [F_DUP] = {"dup", FK_BOOL, FC_NONE, M(dup), 0},
    [F_CODE] = {"code", FK_STR, FC_TOKEN, M(code), 0},
    [F_USER] = {"user", FK_STR, FC_USER, M(user), 0},
    [F_CONN] = {"conn", FK_STR, FC_TOKEN, M(conn), 0},
    [F_LIMIT] = {"limit", FK_U32, FC_NONE, M(limit), CF_WIRE_MAX_ITEMS},
    [F_BUDGET] = {"budget", FK_U32, FC_NONE, M(budget), CF_WIRE_MAX_FRAME},
    [F_SINCE] = {"since", FK_U64, FC_NONE, M(since), UINT64_MAX},
    [F_EPOCH] = {"epoch", FK_STR, FC_TOKEN, M(epoch), 0},
    [F_LAST_ID] = {"last_id", FK_U64, FC_NONE, M(last_id), UINT64_MAX},
    [F_PV] = {"pv", FK_U64, FC_NONE, M(pv), UINT64_MAX},
    [F_COUNT] = {"count", FK_U64, FC_NONE, M(count), UINT64_MAX},
    [F_MEMBERS] = {"members", FK_STRS, FC_USER, M(members), 0},
    [F_MESSAGES] = {"messages", FK_BINS, FC_NONE, M(messages), 0},
    [F_RECOVERED] = {"recovered", FK_BOOL, FC_NONE, M(recovered), 0},
    [F_BEFORE] = {"before", FK_U64, FC_NONE, M(before), UINT64_MAX},
    [F_HAS_MORE] = {"has_more", FK_BOOL, FC_NONE, M(has_more), 0},
    [F_ACTION] = {"action", FK_STR, FC_ACTION, M(action), 0},
    [F_READY] = {"ready", FK_BOOL, FC_NONE, M(ready), 0},
    [F_SERVING] = {"serving", FK_BOOL, FC_NONE, M(serving), 0},
    [F_BACK] = {"back", FK_U32, FC_NONE, M(back), CF_WIRE_MAX_SERVERS - 1},
    [F_SERVERS] = {"servers", FK_U32, FC_NONE, M(servers), CF_WIRE_MAX_SERVERS},
    [F_LINK_QUEUE] = {"link_queue", FK_U64, FC_NONE, M(link_queue), UINT64_MAX},
};
#undef M

#define B(f) (1ull << (f))
struct mtype {
    char name[NAME_CAP];
    uint64_t need, opt;
};
static const struct mtype types[CF_WIRE_TYPE_MAX + 1] = {
    [CF_WIRE_HELLO] = {"hello", B(F_SHARD) | B(F_SHARDS) | B(F_NODE), 0},
    [CF_WIRE_WELCOME] = {"welcome", B(F_SHARD) | B(F_SHARDS) | B(F_NODE), B(F_LINK_QUEUE)},
    [CF_WIRE_JOIN] = {"join", B(F_ROOM), 0},
    [CF_WIRE_LEAVE] = {"leave", B(F_ROOM), 0},
    [CF_WIRE_MSG] = {"msg", B(F_ROOM) | B(F_FROM) | B(F_TEXT) | B(F_TS), B(F_ID) | B(F_EPOCH)},
    [CF_WIRE_PING] = {"ping", B(F_SEQ), 0},
    [CF_WIRE_PONG] = {"pong", B(F_SEQ), 0},
    [CF_WIRE_SEND] = {"send", B(F_Q) | B(F_ROOM) | B(F_FROM) | B(F_TEXT) | B(F_TS), B(F_CID)},
    [CF_WIRE_SENT] = {"sent", B(F_Q) | B(F_ROOM) | B(F_ID) | B(F_TS) | B(F_DUP), 0},
    [CF_WIRE_FAIL] = {"fail", B(F_Q) | B(F_CODE) | B(F_TEXT), 0},
    [CF_WIRE_SUB] = {"sub", B(F_Q) | B(F_ROOM) | B(F_USER) | B(F_CONN) | B(F_LIMIT) | B(F_BUDGET),
                     B(F_SINCE) | B(F_EPOCH)},
    [CF_WIRE_SUBBED] = {"subbed",
                        B(F_Q) | B(F_ROOM) | B(F_EPOCH) | B(F_LAST_ID) | B(F_PV) | B(F_COUNT) |
                            B(F_MEMBERS) | B(F_MESSAGES) | B(F_RECOVERED),
                        0},
    [CF_WIRE_UNSUB] = {"unsub", B(F_ROOM) | B(F_CONN), 0},
    [CF_WIRE_HIST] = {"hist", B(F_Q) | B(F_ROOM) | B(F_LIMIT) | B(F_BUDGET), B(F_BEFORE)},
    [CF_WIRE_HISTR] = {"histr", B(F_Q) | B(F_ROOM) | B(F_MESSAGES) | B(F_HAS_MORE), 0},
    [CF_WIRE_TYPING] = {"typing", B(F_ROOM) | B(F_USER), 0},
    [CF_WIRE_PRESENCE] = {"presence",
                          B(F_ROOM) | B(F_USER) | B(F_ACTION) | B(F_COUNT) | B(F_PV), 0},
    [CF_WIRE_STATE] = {"state", B(F_READY), B(F_SERVING) | B(F_BACK) | B(F_SERVERS)},
};

/* Optional field -> its bit in cf_wire_msg.has. */
static unsigned has_bit(int f)
{
    switch (f) {
    case F_ID: return CF_WIRE_HAS_ID;
    case F_CID: return CF_WIRE_HAS_CID;
    case F_SINCE: return CF_WIRE_HAS_SINCE;
    case F_EPOCH: return CF_WIRE_HAS_EPOCH;
    case F_BEFORE: return CF_WIRE_HAS_BEFORE;
    case F_SERVING: return CF_WIRE_HAS_SERVING;
    case F_BACK: return CF_WIRE_HAS_BACK;
    case F_SERVERS: return CF_WIRE_HAS_SERVERS;
    case F_LINK_QUEUE: return CF_WIRE_HAS_LINK_QUEUE;
    default: return 0;
    }
}
/* clang-format on */

const char *cf_wire_type_name(enum cf_wire_type t)
{
    return (t >= CF_WIRE_HELLO && t <= CF_WIRE_TYPE_MAX) ? types[t].name : "unknown";
}

#define AT(m, f, T) ((T *)(void *)((char *)(m) + fields[f].off))
#define CAT(m, f, T) ((const T *)(const void *)((const char *)(m) + fields[f].off))

/* ts (the only FK_I64): a time clients can be shown (cf_rfc3339_ms). One
 * outside it would pass the broker and then fail to encode in every gateway,
 * which logs an error for each such message. */
static bool ts_ok(int64_t ms)
{
    return ms >= CF_RFC3339_MIN_MS && ms <= CF_RFC3339_MAX_MS;
}

/* Ids, epochs, codes: never control characters (they end up in Redis keys,
 * logs and client events). */
static bool no_controls(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return true;
}

static bool str_ok(enum fcheck c, const char *p, size_t len)
{
    switch (c) {
    case FC_ROOM: return cf_room_valid(p, len);
    case FC_USER:
        return cf_username_wire_valid(p, len);
    case FC_TEXT: return len <= CF_WIRE_MAX_TEXT && cf_utf8_valid(p, len);
    case FC_NODE: return len <= CF_WIRE_MAX_NODE && cf_utf8_valid(p, len);
    case FC_TOKEN:
        return len >= 1 && len <= CF_WIRE_MAX_TOKEN && no_controls(p, len) &&
               cf_utf8_valid(p, len);
    case FC_ACTION:
        return (len == 4 && memcmp(p, "join", 4) == 0) || (len == 5 && memcmp(p, "leave", 5) == 0);
    default: return true;
    }
}

/* ---- encoding ---------------------------------------------------------- */


static void pk_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static uint64_t present(const struct cf_wire_msg *m)
{
    const struct mtype *t = &types[m->type];
    uint64_t set = t->need;
    for (int f = 0; f < F_COUNT_FIELDS; f++)
        if ((t->opt & B(f)) && (m->has & has_bit(f)))
            set |= B(f);
    return set;
}

/* Checks every string and integer against the limits the decoder applies. */
static int check_fields(const struct cf_wire_msg *m, uint64_t set)
{
    for (int f = 0; f < F_COUNT_FIELDS; f++) {
        if (!(set & B(f)))
            continue;
        const struct field *d = &fields[f];
        switch (d->kind) {
        case FK_STR: {
            const struct cf_str *v = CAT(m, f, struct cf_str);
            if ((!v->p && v->len) || !str_ok(d->check, v->p ? v->p : "", v->len))
                return -EINVAL;
            break;
        }
        case FK_U32:
            if (*CAT(m, f, uint32_t) > d->max)
                return -EINVAL;
            break;
        case FK_I64:
            if (!ts_ok(*CAT(m, f, int64_t)))
                return -EINVAL;
            break;
        case FK_STRS:
        case FK_BINS: {
            uint32_t n = f == F_MEMBERS ? m->nmembers : m->nmessages;
            if (n > CF_WIRE_MAX_ITEMS)
                return -EINVAL;
            for (uint32_t i = 0; d->kind == FK_STRS && i < n; i++)
                if ((!m->members[i].p && m->members[i].len) ||
                    !str_ok(d->check, m->members[i].p ? m->members[i].p : "", m->members[i].len))
                    return -EINVAL;
            break;
        }
        default:
            break;
        }
    }
    if ((set & B(F_SHARD)) && m->shard >= m->shards)
        return -EINVAL; /* as the decoder: also refuses shards 0 */
    return 0;
}

static void pk_field(msgpack_packer *pk, const struct cf_wire_msg *m, int f)
{
    const struct field *d = &fields[f];
    pk_str(pk, d->name, strlen(d->name));
    switch (d->kind) {
    case FK_STR: {
        const struct cf_str *v = CAT(m, f, struct cf_str);
        pk_str(pk, v->p ? v->p : "", v->len);
        break;
    }
    case FK_U32: msgpack_pack_uint32(pk, *CAT(m, f, uint32_t)); break;
    case FK_U64: msgpack_pack_uint64(pk, *CAT(m, f, uint64_t)); break;
    case FK_I64: msgpack_pack_int64(pk, *CAT(m, f, int64_t)); break;
    case FK_BOOL:
        if (*CAT(m, f, bool))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case FK_STRS:
    case FK_BINS: {
        const struct cf_str *items = f == F_MEMBERS ? m->members : m->messages;
        uint32_t n = f == F_MEMBERS ? m->nmembers : m->nmessages;
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            if (d->kind == FK_STRS) {
                pk_str(pk, items[i].p, items[i].len);
            } else {
                msgpack_pack_bin(pk, items[i].len);
                msgpack_pack_bin_body(pk, items[i].p, items[i].len);
            }
        }
        break;
    }
    }
}

/* Packs m's map (with `extra` more entries announced than written). */
static int pack(struct cf_bytes *out, const struct cf_wire_msg *m, unsigned extra)
{
    if (m->type < CF_WIRE_HELLO || m->type > CF_WIRE_TYPE_MAX)
        return -EINVAL;
    uint64_t set = present(m);
    int rc = check_fields(m, set);
    if (rc < 0)
        return rc;
    struct cf_mpsink sink = {out, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sink, cf_mpsink_write);
    msgpack_pack_map(&pk, 2u + (size_t)__builtin_popcountll(set) + extra);
    pk_str(&pk, "v", 1);
    msgpack_pack_uint32(&pk, CF_WIRE_VERSION);
    pk_str(&pk, "t", 1);
    pk_str(&pk, types[m->type].name, strlen(types[m->type].name));
    for (int f = 0; f < F_COUNT_FIELDS; f++)
        if (set & B(f))
            pk_field(&pk, m, f);
    return sink.err;
}

int cf_wire_encode(struct cf_bytes *out, const struct cf_wire_msg *m)
{
    size_t mark = cf_bytes_len(out);
    unsigned char hdr[CF_WIRE_HDR] = {0};
    int rc = cf_bytes_append(out, hdr, sizeof hdr);
    if (rc < 0)
        return rc;
    if ((rc = pack(out, m, 0)) < 0) {
        cf_bytes_truncate(out, mark);
        return rc;
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

int cf_wire_msg_prefix(struct cf_bytes *out, const struct cf_wire_msg *m)
{
    if (m->type != CF_WIRE_MSG || (m->has & (CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH)))
        return -EINVAL;
    size_t mark = cf_bytes_len(out);
    int rc = pack(out, m, 2);
    if (rc < 0)
        cf_bytes_truncate(out, mark);
    return rc;
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
 * about 24 bytes (one msgpack_object) per byte of len at worst, a frame of
 * 1-byte elements: ~96 MiB for a 4 MiB frame, kept in the decoder's zone
 * until its next decode. Returns 0 or -1. */
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

int cf_wire_prescan(const void *p, size_t len)
{
    return len ? prescan(p, len) : -1;
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

/* name: a NUL-terminated string in an array of cap bytes. It is n long when
 * its NUL is at n and not before (a key "msg\0" must not match "msg"). */
static int key_is(const msgpack_object *k, const char *name, size_t cap)
{
    size_t n = k->via.str.size;
    return n < cap && name[n] == '\0' && (n == 0 || name[n - 1] != '\0') &&
           memcmp(k->via.str.ptr, name, n) == 0;
}
/* arr: an array (a string literal or a table's name), never a pointer */
#define KEY_IS(k, arr) key_is(k, arr, sizeof arr)

#define FAIL(msg)                                                                                  \
    do {                                                                                           \
        *why = (msg);                                                                              \
        return -EBADMSG;                                                                           \
    } while (0)

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

/* Reads one field's value into m. 0 or -1 (wrong type or out of range). */
static int read_value(struct cf_wire_decoder *d, const msgpack_object *v, struct cf_wire_msg *m,
                      int f)
{
    const struct field *fd = &fields[f];
    switch (fd->kind) {
    case FK_STR:
        if (v->type != MSGPACK_OBJECT_STR)
            return -1;
        *AT(m, f, struct cf_str) = (struct cf_str){v->via.str.ptr, v->via.str.size};
        return 0;
    case FK_U32:
    case FK_U64:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > fd->max ||
            (f == F_SHARDS && v->via.u64 == 0))
            return -1;
        if (fd->kind == FK_U32)
            *AT(m, f, uint32_t) = (uint32_t)v->via.u64;
        else
            *AT(m, f, uint64_t) = v->via.u64;
        return 0;
    case FK_I64:
        return get_int(v, AT(m, f, int64_t)) == 0 && ts_ok(*AT(m, f, int64_t)) ? 0 : -1;
    case FK_BOOL:
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return -1;
        *AT(m, f, bool) = v->via.boolean;
        return 0;
    case FK_STRS:
    case FK_BINS: {
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > CF_WIRE_MAX_ITEMS)
            return -1;
        uint32_t n = v->via.array.size;
        struct cf_str *items = msgpack_zone_malloc(&d->zone, sizeof *items * (n ? n : 1));
        if (!items)
            return -1;
        msgpack_object_type want = fd->kind == FK_STRS ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN;
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object *it = &v->via.array.ptr[i];
            if (it->type != want)
                return -1;
            /* str and bin share the layout of their (size, ptr) pair */
            items[i] = want == MSGPACK_OBJECT_STR
                           ? (struct cf_str){it->via.str.ptr, it->via.str.size}
                           : (struct cf_str){it->via.bin.ptr, it->via.bin.size};
            if (fd->kind == FK_STRS && !str_ok(fd->check, items[i].p, items[i].len))
                return -1;
        }
        if (f == F_MEMBERS) {
            m->members = items;
            m->nmembers = n;
        } else {
            m->messages = items;
            m->nmessages = n;
        }
        return 0;
    }
    }
    return -1;
}

/* Only the fields in `mask` (those of the frame's type) are candidates: a
 * frame is looked up against its handful of names, not all of them. */
static int find_field(const msgpack_object *k, uint64_t mask)
{
    for (; mask; mask &= mask - 1) {
        int f = __builtin_ctzll(mask);
        if (KEY_IS(k, fields[f].name))
            return f;
    }
    return -1;
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

    /* First pass: version and type, wherever they are in the map. */
    uint64_t version = 0;
    const msgpack_object *tv = NULL;
    bool have_v = false;
    for (uint32_t i = 0; i < obj.via.map.size; i++) {
        const msgpack_object *k = &obj.via.map.ptr[i].key, *v = &obj.via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            FAIL("map key is not a string");
        if (KEY_IS(k, "v")) {
            if (have_v)
                FAIL("duplicate key");
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                FAIL("a field has the wrong type or is out of range");
            have_v = true;
            version = v->via.u64;
        } else if (KEY_IS(k, "t")) {
            if (tv)
                FAIL("duplicate key");
            if (v->type != MSGPACK_OBJECT_STR)
                FAIL("a field has the wrong type or is out of range");
            tv = v;
        }
    }
    if (!have_v)
        FAIL("missing wire version \"v\"");
    if (version != CF_WIRE_VERSION)
        FAIL("unsupported wire version");
    if (!tv)
        FAIL("missing type \"t\"");
    m->type = 0;
    for (int t = CF_WIRE_HELLO; t <= CF_WIRE_TYPE_MAX && !m->type; t++)
        if (KEY_IS(tv, types[t].name))
            m->type = (enum cf_wire_type)t;
    if (!m->type)
        FAIL("unknown message type");

    /* Second pass: the type's fields; keys it does not use are ignored. */
    const struct mtype *t = &types[m->type];
    uint64_t seen = 0;
    for (uint32_t i = 0; i < obj.via.map.size; i++) {
        int f = find_field(&obj.via.map.ptr[i].key, t->need | t->opt);
        if (f < 0)
            continue;
        if (seen & B(f))
            FAIL("duplicate key");
        seen |= B(f);
        if (read_value(d, &obj.via.map.ptr[i].val, m, f) < 0)
            FAIL("a field has the wrong type or is out of range");
        if (fields[f].kind == FK_STR) {
            const struct cf_str *v = AT(m, f, struct cf_str);
            if (!str_ok(fields[f].check, v->p, v->len))
                FAIL(f == F_ROOM   ? "invalid room name"
                     : f == F_FROM ? "invalid sender name"
                     : f == F_TEXT ? "text is too long or not UTF-8"
                     : f == F_NODE ? "invalid node name"
                                   : "a string field is invalid");
        }
        m->has |= has_bit(f);
    }
    if ((seen & t->need) != t->need)
        FAIL("a required field is missing");
    if ((t->need & B(F_SHARD)) && m->shard >= m->shards)
        FAIL("shard index not below shard count");
    return 0;
}

/* Whether a msg's id and epoch are as the send script (broker/scripts.c) writes
 * them, both there, the epoch as new_epoch makes it, the id counted from 1;
 * or both absent (a backend's message, which has no place in the history). */
static bool stored_or_plain(const struct cf_wire_msg *m)
{
    unsigned both = CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH;
    if (!(m->has & both))
        return true;
    if ((m->has & both) != both || m->id == 0 || m->epoch.len != CF_WIRE_EPOCH_LEN)
        return false;
    for (uint32_t i = 0; i < m->epoch.len; i++) {
        char c = m->epoch.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

const char *cf_wire_room_event(struct cf_wire_decoder *d, const void *payload, size_t len,
                               const char *room, size_t room_len, struct cf_wire_msg *m)
{
    const char *why;
    if (len > CF_WIRE_MAX_EVENT) {
        memset(m, 0, sizeof *m);
        return "larger than any room event";
    }
    if (cf_wire_decode(d, payload, len, m, &why) < 0)
        return why;
    bool event = m->type == CF_WIRE_MSG || m->type == CF_WIRE_TYPING ||
                 m->type == CF_WIRE_PRESENCE;
    if (!event || m->room.len != room_len || memcmp(m->room.p, room, room_len) != 0)
        return "not a room event for this room";
    if (m->type == CF_WIRE_MSG && !stored_or_plain(m))
        return "msg with an id or epoch the send script did not write";
    return NULL;
}
