/* Unit tests for common/wire, protocol v1 types: send/sent/fail, sub/subbed/
 * unsub, hist/histr, typing, presence; round trips with optional fields (has
 * bits) and the members/messages arrays, the encoder's refusals, and
 * cf_wire_msg_prefix as the broker's Lua script completes it. (test_wire.c
 * covers framing and the original types; test_wire_v1_bad.c the decoder's
 * refusals of v1 messages.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "clock.h"
#include "validate.h"
#include "wire.h"

#include "wire_fixture.h"

/* Encodes m as a frame into q (returned so decoded strings stay valid) and
 * decodes it into *out. */
static void roundtrip(const struct cf_wire_msg *m, struct cf_bytes *q, struct cf_wire_msg *out)
{
    cf_bytes_init(q, 1u << 22);
    assert_int_equal(cf_wire_encode(q, m), 0);
    const unsigned char *payload = NULL;
    size_t len = 0;
    assert_int_equal(cf_wire_frame_peek(q, &payload, &len), 1);
    assert_int_equal(len + CF_WIRE_HDR, cf_bytes_len(q));
    const char *why = NULL;
    int rc = cf_wire_decode(g_dec, payload, len, out, &why);
    if (rc != 0)
        fail_msg("decode failed: %s", why ? why : "?");
    assert_int_equal(out->type, m->type);
}

static void test_type_names(void **state)
{
    (void)state;
    static const char *names[] = {"send", "sent",  "fail", "sub",    "subbed",
                                  "unsub", "hist", "histr", "typing", "presence"};
    for (int t = CF_WIRE_SEND; t <= CF_WIRE_PRESENCE; t++)
        assert_string_equal(cf_wire_type_name((enum cf_wire_type)t), names[t - CF_WIRE_SEND]);
}

/* ---- round trips --------------------------------------------------------- */

/* The has bits a type can carry. */
static unsigned opt_bits(enum cf_wire_type t)
{
    switch (t) {
    case CF_WIRE_MSG: return CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH;
    case CF_WIRE_SEND: return CF_WIRE_HAS_CID;
    case CF_WIRE_SUB: return CF_WIRE_HAS_SINCE | CF_WIRE_HAS_EPOCH;
    case CF_WIRE_HIST: return CF_WIRE_HAS_BEFORE;
    case CF_WIRE_STATE:
        return CF_WIRE_HAS_SERVING | CF_WIRE_HAS_BACK | CF_WIRE_HAS_SERVERS;
    default: return 0;
    }
}

static void assert_same_str(struct cf_str a, struct cf_str b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.p, b.p, a.len);
}

static void assert_same_strs(const struct cf_str *a, uint32_t na, const struct cf_str *b,
                             uint32_t nb)
{
    assert_int_equal(na, nb);
    for (uint32_t i = 0; i < na; i++)
        assert_same_str(a[i], b[i]);
}

/* Round-trips m (every field it does not carry must be zero) and checks the
 * decoded message equals it field by field. */
static void check_roundtrip(const struct cf_wire_msg *m)
{
    struct cf_bytes q;
    struct cf_wire_msg o;
    roundtrip(m, &q, &o);
    assert_int_equal(o.has & opt_bits(m->type), m->has & opt_bits(m->type));
    const struct cf_str *si[] = {&m->room, &m->from, &m->text, &m->node,  &m->user,
                                 &m->conn, &m->cid,  &m->epoch, &m->code, &m->action};
    const struct cf_str *so[] = {&o.room, &o.from, &o.text, &o.node,  &o.user,
                                 &o.conn, &o.cid,  &o.epoch, &o.code, &o.action};
    for (size_t i = 0; i < sizeof si / sizeof si[0]; i++)
        assert_same_str(*si[i], *so[i]);
    assert_true(o.ts == m->ts);
    assert_int_equal(o.shard, m->shard);
    assert_int_equal(o.shards, m->shards);
    assert_int_equal(o.limit, m->limit);
    assert_int_equal(o.budget, m->budget);
    const uint64_t ui[] = {m->seq, m->q, m->id, m->since, m->before, m->last_id, m->pv, m->count};
    const uint64_t uo[] = {o.seq, o.q, o.id, o.since, o.before, o.last_id, o.pv, o.count};
    for (size_t i = 0; i < sizeof ui / sizeof ui[0]; i++)
        assert_true(ui[i] == uo[i]);
    assert_int_equal(o.recovered, m->recovered);
    assert_int_equal(o.has_more, m->has_more);
    assert_int_equal(o.dup, m->dup);
    assert_int_equal(o.ready, m->ready);
    assert_int_equal(o.serving, m->serving);
    assert_int_equal(o.back, m->back);
    assert_int_equal(o.servers, m->servers);
    assert_same_strs(m->members, m->nmembers, o.members, o.nmembers);
    assert_same_strs(m->messages, m->nmessages, o.messages, o.nmessages);
    cf_bytes_free(&q);
}

static void test_roundtrip_send_sent_fail(void **state)
{
    (void)state;
    struct cf_wire_msg in = {.type = CF_WIRE_SEND, .q = UINT64_MAX, .room = str_of("lobby"),
                             .from = str_of("alice"), .text = str_of("h\xc3\xa9llo"),
                             .ts = 1795860000123LL};
    check_roundtrip(&in);
    /* cid present, from 1 to CF_WIRE_MAX_TOKEN bytes. */
    char cid[CF_WIRE_MAX_TOKEN + 1];
    memset(cid, 'k', CF_WIRE_MAX_TOKEN);
    static const uint32_t lens[] = {1, 9, CF_WIRE_MAX_TOKEN};
    for (size_t i = 0; i < 3; i++) {
        in.has = CF_WIRE_HAS_CID;
        in.cid = (struct cf_str){cid, lens[i]};
        check_roundtrip(&in);
    }
    /* A value without its has bit is not sent; has bits of fields the type
     * does not carry are ignored. */
    in.has = CF_WIRE_HAS_SINCE | CF_WIRE_HAS_BEFORE;
    in.since = 5;
    struct cf_bytes q;
    struct cf_wire_msg out;
    roundtrip(&in, &q, &out);
    assert_int_equal(out.has, 0);
    assert_int_equal(out.cid.len, 0);
    assert_true(out.since == 0);
    cf_bytes_free(&q);

    for (int dup = 0; dup <= 1; dup++) {
        struct cf_wire_msg sent = {.type = CF_WIRE_SENT, .q = 42, .room = str_of("r"),
                                   .id = UINT64_MAX - (uint64_t)dup, .ts = -7, .dup = dup};
        check_roundtrip(&sent);
    }
    struct cf_wire_msg f = {.type = CF_WIRE_FAIL, .q = 3, .code = str_of("unavailable"),
                            .text = str_of("redis is down")};
    check_roundtrip(&f);
    f.text = str_of(""); /* an empty explanation is allowed */
    check_roundtrip(&f);
}

static void test_roundtrip_sub_unsub(void **state)
{
    (void)state;
    static const unsigned combos[] = {0, CF_WIRE_HAS_SINCE, CF_WIRE_HAS_EPOCH,
                                      CF_WIRE_HAS_SINCE | CF_WIRE_HAS_EPOCH};
    for (size_t i = 0; i < 4; i++) {
        bool since = combos[i] & CF_WIRE_HAS_SINCE, epoch = combos[i] & CF_WIRE_HAS_EPOCH;
        struct cf_wire_msg in = {.type = CF_WIRE_SUB, .q = 9, .room = str_of("lobby"),
                                 .user = str_of("J\xc3\xa9r\xc3\xb4me"), .conn = str_of("gw1:77"),
                                 .limit = CF_WIRE_MAX_ITEMS, .budget = CF_WIRE_MAX_FRAME,
                                 .has = combos[i], .since = !since ? 0 : i == 3 ? 0 : UINT64_MAX,
                                 .epoch = epoch ? str_of("5f0c2a9e1b7d4c3a") : str_of("")};
        check_roundtrip(&in); /* since 0 is a value, not absence */
    }
    struct cf_wire_msg u = {.type = CF_WIRE_UNSUB, .room = str_of("a.b"), .conn = str_of("x")};
    check_roundtrip(&u);
}

static void test_roundtrip_subbed_hist_histr(void **state)
{
    (void)state;
    struct cf_wire_msg in = {.type = CF_WIRE_SUBBED, .q = 1, .room = str_of("lobby"),
                             .epoch = str_of("e")};
    check_roundtrip(&in); /* empty arrays */
    /* Several of each; messages are opaque bytes (NULs, non-UTF-8, empty). */
    struct cf_str members[] = {str_of("alice"), str_of("bob"), str_of("\xf0\x9f\x98\x80 z")};
    static const char m0[] = {'\x85', '\x00', '\xff', 'a'};
    struct cf_str msgs[] = {{m0, sizeof m0}, {"", 0}, {"\xc1\xc1", 2}};
    in = (struct cf_wire_msg){.type = CF_WIRE_SUBBED, .q = 77, .room = str_of("lobby"),
                              .epoch = str_of("5f0c2a9e1b7d4c3a"), .last_id = 43,
                              .pv = UINT64_MAX, .count = 100000, .members = members,
                              .nmembers = 3, .messages = msgs, .nmessages = 3,
                              .recovered = true};
    check_roundtrip(&in);

    struct cf_wire_msg h = {.type = CF_WIRE_HIST, .q = 5, .room = str_of("lobby")};
    check_roundtrip(&h);
    h = (struct cf_wire_msg){.type = CF_WIRE_HIST, .q = 5, .room = str_of("lobby"), .limit = 100,
                             .budget = 65536, .has = CF_WIRE_HAS_BEFORE, .before = 42};
    check_roundtrip(&h);
    for (int more = 0; more <= 1; more++) {
        struct cf_wire_msg r = {.type = CF_WIRE_HISTR, .q = 5, .room = str_of("lobby"),
                                .messages = msgs, .nmessages = (uint32_t)more * 3,
                                .has_more = more};
        check_roundtrip(&r);
    }
}

static void test_roundtrip_typing_presence(void **state)
{
    (void)state;
    struct cf_wire_msg t = {.type = CF_WIRE_TYPING, .room = str_of("lobby"),
                            .user = str_of("carol")};
    check_roundtrip(&t);
    static const char *actions[] = {"join", "leave"};
    for (size_t i = 0; i < 2; i++) {
        struct cf_wire_msg p = {.type = CF_WIRE_PRESENCE, .room = str_of("lobby"),
                                .user = str_of("carol"), .action = str_of(actions[i]),
                                .count = 3 - i, .pv = 1000 + i};
        check_roundtrip(&p);
    }
}

/* "serving", "back" and "servers" are optional: a broker from before them
 * sends only "ready". */
static void test_roundtrip_state(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        struct cf_wire_msg s = {.type = CF_WIRE_STATE, .ready = i & 1, .serving = (i & 2) != 0,
                                .has = CF_WIRE_HAS_SERVING};
        check_roundtrip(&s);
        s.has |= CF_WIRE_HAS_BACK | CF_WIRE_HAS_SERVERS;
        s.back = i == 3 ? CF_WIRE_MAX_SERVERS - 1 : (uint32_t)i;
        s.servers = i == 3 ? CF_WIRE_MAX_SERVERS : 4;
        check_roundtrip(&s);
    }
    struct cf_wire_msg old = {.type = CF_WIRE_STATE, .ready = true};
    check_roundtrip(&old);
}

static void test_roundtrip_msg_optional(void **state)
{
    (void)state;
    static const unsigned combos[] = {0, CF_WIRE_HAS_ID, CF_WIRE_HAS_EPOCH,
                                      CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH};
    for (size_t i = 0; i < 4; i++) {
        bool id = combos[i] & CF_WIRE_HAS_ID, epoch = combos[i] & CF_WIRE_HAS_EPOCH;
        struct cf_wire_msg in = {.type = CF_WIRE_MSG, .room = str_of("lobby"),
                                 .from = str_of("bob"), .text = str_of("hi"), .ts = 1,
                                 .has = combos[i], .id = id ? 44 : 0,
                                 .epoch = epoch ? str_of("5f0c2a9e1b7d4c3a") : str_of("")};
        check_roundtrip(&in);
    }
}

/* ---- encoder refusals ------------------------------------------------------ */

static void expect_encode_einval(const struct cf_wire_msg *m)
{
    struct cf_bytes q;
    cf_bytes_init(&q, 1u << 20);
    assert_int_equal(cf_bytes_append(&q, "xy", 2), 0);
    assert_int_equal(cf_wire_encode(&q, m), -EINVAL);
    assert_int_equal(cf_bytes_len(&q), 2);
    cf_bytes_free(&q);
}

/* m with one field changed must be refused. */
#define REFUSED(base, field, value)                                                                \
    do {                                                                                           \
        struct cf_wire_msg m_ = (base);                                                            \
        m_.field = (value);                                                                        \
        expect_encode_einval(&m_);                                                                 \
    } while (0)

static void encodes(const struct cf_wire_msg *m)
{
    struct cf_bytes q;
    cf_bytes_init(&q, 1u << 20);
    assert_int_equal(cf_wire_encode(&q, m), 0);
    cf_bytes_free(&q);
}

static void test_encode_refusals(void **state)
{
    (void)state;
    char tok[CF_WIRE_MAX_TOKEN + 2];
    memset(tok, 't', sizeof tok - 1);
    tok[sizeof tok - 1] = '\0'; /* 257 bytes */
    struct cf_wire_msg sub = {.type = CF_WIRE_SUB, .q = 1, .room = str_of("lobby"),
                              .user = str_of("alice"), .conn = str_of("c"), .limit = 1,
                              .budget = 1, .has = CF_WIRE_HAS_EPOCH, .epoch = str_of("e")};
    REFUSED(sub, room, str_of("bad room"));
    REFUSED(sub, conn, str_of(tok));
    REFUSED(sub, conn, str_of("")); /* tokens are at least 1 byte */
    REFUSED(sub, epoch, str_of(tok));
    /* tokens never carry control characters (they go into keys and logs) */
    REFUSED(sub, epoch, ((struct cf_str){"a\0b", 3}));
    REFUSED(sub, conn, str_of("c\n1"));
    REFUSED(sub, limit, CF_WIRE_MAX_ITEMS + 1);
    REFUSED(sub, budget, CF_WIRE_MAX_FRAME + 1);
    REFUSED(sub, user, str_of(""));
    struct cf_wire_msg send = {.type = CF_WIRE_SEND, .q = 1, .room = str_of("r"),
                               .from = str_of("a"), .text = str_of("t"), .has = CF_WIRE_HAS_CID,
                               .cid = str_of("k")};
    REFUSED(send, cid, str_of(tok));
    REFUSED(send, cid, str_of("k\x1b[2J"));
    struct cf_wire_msg fail = {.type = CF_WIRE_FAIL, .q = 1, .code = str_of("x"),
                               .text = str_of("")};
    REFUSED(fail, code, str_of(tok));
    struct cf_wire_msg pres = {.type = CF_WIRE_PRESENCE, .room = str_of("r"),
                               .user = str_of("a"), .action = str_of("join")};
    REFUSED(pres, action, str_of("kick"));
    REFUSED(pres, action, str_of("joined"));
    REFUSED(pres, action, str_of(""));
    struct cf_wire_msg hist = {.type = CF_WIRE_HIST, .q = 1, .room = str_of("r")};
    REFUSED(hist, limit, CF_WIRE_MAX_ITEMS + 1);
    struct cf_str one = str_of("x");
    struct cf_wire_msg histr = {.type = CF_WIRE_HISTR, .q = 1, .room = str_of("r"),
                                .messages = &one};
    REFUSED(histr, nmessages, CF_WIRE_MAX_ITEMS + 1);
    struct cf_wire_msg subbed = {.type = CF_WIRE_SUBBED, .q = 1, .room = str_of("r"),
                                 .epoch = str_of("e"), .members = &one};
    REFUSED(subbed, nmembers, CF_WIRE_MAX_ITEMS + 1);
    /* ... while each base message is fine as it is. */
    const struct cf_wire_msg *bases[] = {&sub, &send, &fail, &pres, &hist, &histr, &subbed};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
        encodes(bases[i]);
}

/* wire.c promises that the encoder checks every field against the limits the
 * decoder applies; the decoder refuses a "subbed" whose members include an
 * invalid username, so the encoder must refuse to produce one (a broker that
 * sent it would get its gateway link reset). */
static void test_encode_refuses_invalid_members(void **state)
{
    (void)state;
    struct cf_str bad[] = {str_of("alice"), str_of("")};
    struct cf_wire_msg m = {.type = CF_WIRE_SUBBED, .q = 1, .room = str_of("r"),
                            .epoch = str_of("e"), .members = bad, .nmembers = 2};
    expect_encode_einval(&m);
    bad[1] = str_of("tab\there");
    expect_encode_einval(&m);
}

/* ---- cf_wire_msg_prefix ---------------------------------------------------- */

/* What the broker's Lua script appends (broker/store.c): "epoch" with the
 * room's epoch as a msgpack str, then "id" with the id as a msgpack uint64
 * (0xcf + 8 bytes big-endian). */
static void append_epoch(struct cf_bytes *b, const char *epoch)
{
    size_t n = strlen(epoch);
    assert_true(n < 32);
    unsigned char h = (unsigned char)(0xa0 + n);
    assert_int_equal(cf_bytes_append(b, "\xa5" "epoch", 6), 0);
    assert_int_equal(cf_bytes_append(b, &h, 1), 0);
    assert_int_equal(cf_bytes_append(b, epoch, n), 0);
}

static void append_id(struct cf_bytes *b, uint64_t id)
{
    unsigned char t[12] = {0xa2, 'i', 'd', 0xcf};
    for (int i = 0; i < 8; i++)
        t[4 + i] = (unsigned char)(id >> (56 - 8 * i));
    assert_int_equal(cf_bytes_append(b, t, sizeof t), 0);
}

static void test_msg_prefix_plus_id(void **state)
{
    (void)state;
    static const uint64_t ids[] = {0, 1, 44, 4294967301ull, (uint64_t)INT64_MAX, UINT64_MAX};
    struct cf_wire_msg in = {.type = CF_WIRE_MSG, .room = str_of("lobby"),
                             .from = str_of("alice"), .text = str_of("hi"),
                             .ts = 1795860002500LL};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct cf_bytes b;
        cf_bytes_init(&b, 1u << 16);
        assert_int_equal(cf_bytes_append(&b, "ab", 2), 0); /* appends after what is there */
        assert_int_equal(cf_wire_msg_prefix(&b, &in), 0);
        assert_memory_equal(cf_bytes_data(&b), "ab", 2);
        cf_bytes_consume(&b, 2);
        /* Alone, or with only the epoch, it is short of entries. */
        assert_int_equal(cf_wire_prescan(cf_bytes_data(&b), cf_bytes_len(&b)), -1);
        append_epoch(&b, "5f0c2a9e1b7d4c3a");
        assert_int_equal(cf_wire_prescan(cf_bytes_data(&b), cf_bytes_len(&b)), -1);
        append_id(&b, ids[i]);
        assert_int_equal(cf_wire_prescan(cf_bytes_data(&b), cf_bytes_len(&b)), 0);
        struct cf_wire_msg out;
        const char *why = NULL;
        int rc = cf_wire_decode(g_dec, cf_bytes_data(&b), cf_bytes_len(&b), &out, &why);
        if (rc != 0)
            fail_msg("decode failed: %s", why ? why : "?");
        assert_int_equal(out.type, CF_WIRE_MSG);
        assert_int_equal(out.has, CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH);
        assert_true(out.id == ids[i]);
        assert_str_is(out.epoch, "5f0c2a9e1b7d4c3a");
        assert_str_is(out.room, "lobby");
        assert_str_is(out.from, "alice");
        assert_str_is(out.text, "hi");
        assert_true(out.ts == 1795860002500LL);
        cf_bytes_free(&b);
    }

    /* The smallest integer form completes it too. */
    struct cf_bytes b;
    cf_bytes_init(&b, 1u << 16);
    assert_int_equal(cf_wire_msg_prefix(&b, &in), 0);
    append_epoch(&b, "e");
    assert_int_equal(cf_bytes_append(&b, "\xa2id\x2a", 4), 0);
    struct cf_wire_msg out;
    const char *why;
    assert_int_equal(cf_wire_decode(g_dec, cf_bytes_data(&b), cf_bytes_len(&b), &out, &why), 0);
    assert_true(out.id == 42);
    assert_str_is(out.epoch, "e");
    cf_bytes_free(&b);
}

static void test_msg_prefix_refusals(void **state)
{
    (void)state;
    struct cf_bytes b;
    cf_bytes_init(&b, 1u << 16);
    assert_int_equal(cf_bytes_append(&b, "xy", 2), 0);
    struct cf_wire_msg in = {.type = CF_WIRE_MSG, .room = str_of("lobby"),
                             .from = str_of("alice"), .text = str_of("hi"), .ts = 1};
    struct cf_wire_msg m = in;
    m.has = CF_WIRE_HAS_ID; /* it already has an id */
    assert_int_equal(cf_wire_msg_prefix(&b, &m), -EINVAL);
    m.has = CF_WIRE_HAS_EPOCH; /* or an epoch */
    m.epoch = str_of("e");
    assert_int_equal(cf_wire_msg_prefix(&b, &m), -EINVAL);
    m = in;
    m.type = CF_WIRE_SEND;
    m.q = 1;
    assert_int_equal(cf_wire_msg_prefix(&b, &m), -EINVAL);
    m = in;
    m.room = str_of("bad room");
    assert_int_equal(cf_wire_msg_prefix(&b, &m), -EINVAL);
    assert_int_equal(cf_bytes_len(&b), 2);
    cf_bytes_free(&b);
    /* Out of room: nothing is left behind. */
    cf_bytes_init(&b, 12);
    assert_int_equal(cf_bytes_append(&b, "xy", 2), 0);
    assert_int_equal(cf_wire_msg_prefix(&b, &in), -ENOBUFS);
    assert_int_equal(cf_bytes_len(&b), 2);
    cf_bytes_free(&b);
}

/* ---- events on a room's Redis channel -------------------------------------- */

#define WHY_FORGED "msg with an id or epoch the send script did not write"

/* cf_wire_room_event on m's payload, encoded by cf_wire_encode. */
static const char *room_event_of(const struct cf_wire_msg *m)
{
    struct cf_bytes b;
    cf_bytes_init(&b, 1u << 20);
    assert_int_equal(cf_wire_encode(&b, m), 0);
    struct cf_wire_msg out;
    const char *why = cf_wire_room_event(g_dec, (const char *)cf_bytes_data(&b) + CF_WIRE_HDR,
                                         cf_bytes_len(&b) - CF_WIRE_HDR, "lobby", 5, &out);
    cf_bytes_free(&b);
    return why;
}

static void expect_forged(const struct cf_wire_msg *m)
{
    const char *why = room_event_of(m);
    if (!why || strcmp(why, WHY_FORGED) != 0)
        fail_msg("id %llu, epoch \"%.*s\": %s", (unsigned long long)m->id, (int)m->epoch.len,
                 m->epoch.p ? m->epoch.p : "", why ? why : "accepted");
}

/* Anyone who can PUBLISH to a room's channel can make up a msg. One with an
 * id and no epoch went through to gateways, whose v1 members then skipped
 * every real message below its id (INT64_MAX: all of them) until they
 * rejoined. A msg on Redis carries what the send script appends, an epoch of
 * 16 lowercase hex digits and an id from 1, or neither. */
static void test_room_event_ids_and_epochs(void **state)
{
    (void)state;
    const struct cf_wire_msg in = {.type = CF_WIRE_MSG,
                                   .room = str_of("lobby"),
                                   .from = str_of("x"),
                                   .text = str_of("y"),
                                   .ts = 1795860002500LL};
    /* A backend's message: neither. */
    assert_null(room_event_of(&in));

    /* As the send script writes it, for every id it can write. */
    static const uint64_t ids[] = {1, 44, 4294967301ull, 1ull << 53};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct cf_bytes b;
        cf_bytes_init(&b, 1u << 16);
        assert_int_equal(cf_wire_msg_prefix(&b, &in), 0);
        append_epoch(&b, "5f0c2a9e1b7d4c3a");
        append_id(&b, ids[i]);
        struct cf_wire_msg out;
        const char *why =
            cf_wire_room_event(g_dec, cf_bytes_data(&b), cf_bytes_len(&b), "lobby", 5, &out);
        if (why)
            fail_msg("a stored msg was refused: %s", why);
        assert_int_equal(out.has, CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH);
        assert_true(out.id == ids[i]);
        cf_bytes_free(&b);
    }

    /* One without the other. */
    struct cf_wire_msg m = in;
    m.has = CF_WIRE_HAS_ID;
    m.id = INT64_MAX;
    expect_forged(&m);
    m.id = 2;
    expect_forged(&m);
    m = in;
    m.has = CF_WIRE_HAS_EPOCH;
    m.epoch = str_of("5f0c2a9e1b7d4c3a");
    expect_forged(&m);

    /* Both, but not as the script writes them. */
    static const char *const epochs[] = {
        "5f0c2a9e1b7d4c3",  "5f0c2a9e1b7d4c3a0", "5F0C2A9E1B7D4C3A",
        "5f0c2a9e1b7d4c3g", "5f0c2a9e1b7d4c3 ",  "e1",
        "not-the-epoch-16",
    };
    m = in;
    m.has = CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH;
    m.id = 3;
    for (size_t i = 0; i < sizeof epochs / sizeof epochs[0]; i++) {
        m.epoch = str_of(epochs[i]);
        expect_forged(&m);
    }
    m.epoch = str_of("5f0c2a9e1b7d4c3a");
    assert_null(room_event_of(&m));
    m.id = 0; /* ids count from 1 */
    expect_forged(&m);

    /* The link between gateways and brokers still takes either alone. */
    m = in;
    m.has = CF_WIRE_HAS_ID;
    m.id = 5;
    struct cf_bytes q;
    struct cf_wire_msg out;
    roundtrip(&m, &q, &out);
    assert_int_equal(out.has, CF_WIRE_HAS_ID);
    cf_bytes_free(&q);
}

/* A payload over CF_WIRE_MAX_EVENT is refused before it is decoded; the
 * largest event confab writes is well under it. */
static void test_room_event_size(void **state)
{
    (void)state;
    char room[CF_ROOM_MAX + 1], from[CF_USERNAME_BYTES_MAX + 1];
    memset(room, 'r', CF_ROOM_MAX);
    room[CF_ROOM_MAX] = '\0';
    for (size_t i = 0; i < CF_USERNAME_MAX; i++)
        memcpy(from + 4 * i, "\xf0\x9f\x98\x80", 4); /* U+1F600 */
    from[CF_USERNAME_BYTES_MAX] = '\0';
    char *text = malloc(CF_WIRE_MAX_TEXT);
    assert_non_null(text);
    memset(text, 't', CF_WIRE_MAX_TEXT);
    const struct cf_wire_msg in = {.type = CF_WIRE_MSG,
                                   .room = str_of(room),
                                   .from = str_of(from),
                                   .text = {text, CF_WIRE_MAX_TEXT},
                                   .ts = CF_RFC3339_MIN_MS};
    struct cf_bytes b;
    cf_bytes_init(&b, 1u << 20);
    assert_int_equal(cf_wire_msg_prefix(&b, &in), 0);
    append_epoch(&b, "5f0c2a9e1b7d4c3a");
    append_id(&b, UINT64_MAX);
    struct cf_wire_msg out;
    const char *why =
        cf_wire_room_event(g_dec, cf_bytes_data(&b), cf_bytes_len(&b), room, CF_ROOM_MAX, &out);
    if (why)
        fail_msg("the largest msg was refused: %s", why);
    assert_int_equal(cf_bytes_len(&b), CF_WIRE_MAX_TEXT + 273); /* as wire.h says */
    cf_bytes_free(&b);

    /* The largest presence: far smaller (typing has a subset of its fields). */
    const struct cf_wire_msg pres = {.type = CF_WIRE_PRESENCE,
                                     .room = str_of(room),
                                     .user = str_of(from),
                                     .action = str_of("leave"),
                                     .count = UINT64_MAX,
                                     .pv = UINT64_MAX};
    cf_bytes_init(&b, 1u << 20);
    assert_int_equal(cf_wire_encode(&b, &pres), 0);
    assert_true(cf_bytes_len(&b) - CF_WIRE_HDR < 1024);
    cf_bytes_free(&b);

    /* A valid msg padded with a key nobody reads, holding fixints (each a
     * byte, each a msgpack_object once decoded): up to the bound it is taken,
     * one byte more and it is refused. */
    for (size_t over = 0; over <= 1; over++) {
        static const char head[] = "\x87\xa1v\x01\xa1t\xa3msg\xa4room\xa5lobby\xa4"
                                   "from\xa1x\xa4text\xa1y\xa2ts\x01\xa3pad\xdd";
        size_t h = sizeof head - 1, n = CF_WIRE_MAX_EVENT + over - h - 4;
        unsigned char *p = calloc(1, h + 4 + n);
        assert_non_null(p);
        memcpy(p, head, h);
        for (int i = 0; i < 4; i++)
            p[h + (size_t)i] = (unsigned char)(n >> (24 - 8 * i));
        why = cf_wire_room_event(g_dec, p, h + 4 + n, "lobby", 5, &out);
        if (over)
            assert_string_equal(why ? why : "accepted", "larger than any room event");
        else if (why)
            fail_msg("a padded msg of CF_WIRE_MAX_EVENT bytes was refused: %s", why);
        free(p);
    }
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_roundtrip_send_sent_fail),
        cmocka_unit_test(test_roundtrip_sub_unsub),
        cmocka_unit_test(test_roundtrip_subbed_hist_histr),
        cmocka_unit_test(test_roundtrip_typing_presence),
        cmocka_unit_test(test_roundtrip_state),
        cmocka_unit_test(test_roundtrip_msg_optional),
        cmocka_unit_test(test_encode_refusals),
        cmocka_unit_test(test_encode_refuses_invalid_members),
        cmocka_unit_test(test_msg_prefix_plus_id),
        cmocka_unit_test(test_msg_prefix_refusals),
        cmocka_unit_test(test_room_event_ids_and_epochs),
        cmocka_unit_test(test_room_event_size),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
