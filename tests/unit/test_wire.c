/* Unit tests for common/wire: round trips, framing and the encoder's
 * refusals. (test_wire_bad.c feeds the decoder bad input.) */
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

/* ---- round trips --------------------------------------------------------- */

/* Encodes m into a fresh queue, peeks the frame, decodes it into *out. The
 * queue is returned so that the strings in *out stay valid. */
static void roundtrip(const struct cf_wire_msg *m, struct cf_bytes *q, struct cf_wire_msg *out)
{
    cf_bytes_init(q, 1u << 20);
    assert_int_equal(cf_wire_encode(q, m), 0);
    const unsigned char *payload = NULL;
    size_t len = 0;
    assert_int_equal(cf_wire_frame_peek(q, &payload, &len), 1);
    assert_ptr_equal(payload, cf_bytes_data(q) + CF_WIRE_HDR);
    assert_int_equal(len + CF_WIRE_HDR, cf_bytes_len(q));
    const char *why = "untouched";
    assert_int_equal(cf_wire_decode(g_dec, payload, len, out, &why), 0);
    assert_int_equal(out->type, m->type);
    /* Decoded strings point into the payload. */
    const struct cf_str *strs[] = {&out->room, &out->from, &out->text, &out->node};
    for (size_t i = 0; i < 4; i++)
        if (strs[i]->len)
            assert_true((const unsigned char *)strs[i]->p >= payload &&
                        (const unsigned char *)strs[i]->p + strs[i]->len <= payload + len);
}

static void test_roundtrip_hello_welcome(void **state)
{
    (void)state;
    struct cf_bytes q;
    struct cf_wire_msg in = {0}, out;

    in.type = CF_WIRE_HELLO;
    in.shard = 3;
    in.shards = 4;
    in.node = str_of("gateway-7@host");
    roundtrip(&in, &q, &out);
    assert_int_equal(out.shard, 3);
    assert_int_equal(out.shards, 4);
    assert_str_is(out.node, "gateway-7@host");
    assert_int_equal(out.room.len, 0);
    cf_bytes_free(&q);

    in.type = CF_WIRE_WELCOME;
    in.shard = 0;
    in.shards = 1;
    in.node = str_of("broker-0 \xc3\xa9");
    roundtrip(&in, &q, &out);
    assert_int_equal(out.shard, 0);
    assert_int_equal(out.shards, 1);
    assert_str_is(out.node, "broker-0 \xc3\xa9");
    assert_false(out.has & CF_WIRE_HAS_LINK_QUEUE); /* as from an older broker */
    cf_bytes_free(&q);
    in.link_queue = 1ull << 30;
    in.has = CF_WIRE_HAS_LINK_QUEUE;
    roundtrip(&in, &q, &out);
    assert_true(out.has & CF_WIRE_HAS_LINK_QUEUE);
    assert_true(out.link_queue == 1ull << 30);
    cf_bytes_free(&q);
    in.has = 0;

    in.shard = CF_WIRE_MAX_SHARDS - 1;
    in.shards = CF_WIRE_MAX_SHARDS;
    in.node = (struct cf_str){NULL, 0};
    roundtrip(&in, &q, &out);
    assert_int_equal(out.shard, CF_WIRE_MAX_SHARDS - 1);
    assert_int_equal(out.shards, CF_WIRE_MAX_SHARDS);
    assert_int_equal(out.node.len, 0);
    cf_bytes_free(&q);
}

static void test_roundtrip_join_leave(void **state)
{
    (void)state;
    struct cf_bytes q;
    struct cf_wire_msg in = {0}, out;
    in.type = CF_WIRE_JOIN;
    in.room = str_of("general");
    roundtrip(&in, &q, &out);
    assert_str_is(out.room, "general");
    cf_bytes_free(&q);

    char room[CF_ROOM_MAX + 1];
    memset(room, 'r', CF_ROOM_MAX);
    room[CF_ROOM_MAX] = '\0';
    in.type = CF_WIRE_LEAVE;
    in.room = str_of(room);
    roundtrip(&in, &q, &out);
    assert_str_is(out.room, room);
    cf_bytes_free(&q);
}

static void test_roundtrip_msg(void **state)
{
    (void)state;
    /* Every time clients can be shown (years 0000-9999, cf_rfc3339_ms) */
    static const int64_t stamps[] = {
        1795860000123LL,  0, -1, -1795860000123LL, 127, -32, -33, 4294967296LL, CF_RFC3339_MIN_MS,
        CF_RFC3339_MAX_MS};
    struct cf_bytes q;
    struct cf_wire_msg in = {0}, out;
    in.type = CF_WIRE_MSG;
    in.room = str_of("lobby.main:1-2_3");
    in.from = str_of("J\xc3\xa9r\xc3\xb4me \xf0\x9f\x98\x80");
    in.text = str_of("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \"quoted\"\n\ttab\\");
    for (size_t i = 0; i < sizeof stamps / sizeof stamps[0]; i++) {
        in.ts = stamps[i];
        roundtrip(&in, &q, &out);
        assert_str_is(out.room, "lobby.main:1-2_3");
        assert_str_is(out.from, "J\xc3\xa9r\xc3\xb4me \xf0\x9f\x98\x80");
        assert_str_is(out.text, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \"quoted\"\n\ttab\\");
        assert_true(out.ts == stamps[i]);
        cf_bytes_free(&q);
    }

    /* A name of blanks alone: refused at login since 9b269da, but one an
     * older version let in may still be in Redis or come from an older
     * gateway, and must not make its frames fail. */
    in.ts = 5;
    in.from = str_of("\xe3\x80\x80");
    roundtrip(&in, &q, &out);
    assert_str_is(out.from, "\xe3\x80\x80");
    cf_bytes_free(&q);
    in.from = str_of("bob");

    /* Empty text and the biggest allowed text. */
    in.ts = 5;
    in.text = (struct cf_str){"", 0};
    roundtrip(&in, &q, &out);
    assert_int_equal(out.text.len, 0);
    cf_bytes_free(&q);

    char *big = malloc(CF_WIRE_MAX_TEXT);
    assert_non_null(big);
    memset(big, 'z', CF_WIRE_MAX_TEXT);
    in.text = (struct cf_str){big, CF_WIRE_MAX_TEXT};
    roundtrip(&in, &q, &out);
    assert_int_equal(out.text.len, CF_WIRE_MAX_TEXT);
    assert_memory_equal(out.text.p, big, CF_WIRE_MAX_TEXT);
    cf_bytes_free(&q);
    free(big);
}

static void test_roundtrip_ping_pong(void **state)
{
    (void)state;
    static const uint64_t seqs[] = {0, 1, 255, 65536, UINT64_MAX};
    struct cf_bytes q;
    struct cf_wire_msg in = {0}, out;
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        in.type = (i % 2) ? CF_WIRE_PONG : CF_WIRE_PING;
        in.seq = seqs[i];
        roundtrip(&in, &q, &out);
        assert_true(out.seq == seqs[i]);
        cf_bytes_free(&q);
        in.type = (i % 2) ? CF_WIRE_PING : CF_WIRE_PONG;
        roundtrip(&in, &q, &out);
        assert_true(out.seq == seqs[i]);
        cf_bytes_free(&q);
    }
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(cf_wire_type_name(CF_WIRE_HELLO), "hello");
    assert_string_equal(cf_wire_type_name(CF_WIRE_WELCOME), "welcome");
    assert_string_equal(cf_wire_type_name(CF_WIRE_JOIN), "join");
    assert_string_equal(cf_wire_type_name(CF_WIRE_LEAVE), "leave");
    assert_string_equal(cf_wire_type_name(CF_WIRE_MSG), "msg");
    assert_string_equal(cf_wire_type_name(CF_WIRE_PING), "ping");
    assert_string_equal(cf_wire_type_name(CF_WIRE_PONG), "pong");
    assert_string_equal(cf_wire_type_name((enum cf_wire_type)0), "unknown");
    assert_string_equal(cf_wire_type_name(CF_WIRE_SEND), "send");
    assert_string_equal(cf_wire_type_name(CF_WIRE_PRESENCE), "presence");
    assert_string_equal(cf_wire_type_name((enum cf_wire_type)(CF_WIRE_TYPE_MAX + 1)), "unknown");
}

/* ---- framing ------------------------------------------------------------- */

static void test_several_frames_in_one_buffer(void **state)
{
    (void)state;
    struct cf_bytes q;
    cf_bytes_init(&q, 1u << 16);
    struct cf_wire_msg hello = {.type = CF_WIRE_HELLO, .shard = 1, .shards = 2,
                                .node = str_of("gw")};
    struct cf_wire_msg join = {.type = CF_WIRE_JOIN, .room = str_of("general")};
    struct cf_wire_msg msg = {.type = CF_WIRE_MSG, .room = str_of("general"),
                              .from = str_of("bob"), .text = str_of("hi"), .ts = -42};
    struct cf_wire_msg ping = {.type = CF_WIRE_PING, .seq = 99};
    assert_int_equal(cf_wire_encode(&q, &hello), 0);
    assert_int_equal(cf_wire_encode(&q, &join), 0);
    assert_int_equal(cf_wire_encode(&q, &msg), 0);
    assert_int_equal(cf_wire_encode(&q, &ping), 0);

    static const enum cf_wire_type want[] = {CF_WIRE_HELLO, CF_WIRE_JOIN, CF_WIRE_MSG,
                                             CF_WIRE_PING};
    for (size_t i = 0; i < 4; i++) {
        const unsigned char *p;
        size_t len;
        struct cf_wire_msg m;
        const char *why = NULL;
        assert_int_equal(cf_wire_frame_peek(&q, &p, &len), 1);
        assert_int_equal(cf_wire_decode(g_dec, p, len, &m, &why), 0);
        assert_int_equal(m.type, want[i]);
        switch (m.type) {
        case CF_WIRE_HELLO:
            assert_int_equal(m.shard, 1);
            assert_int_equal(m.shards, 2);
            assert_str_is(m.node, "gw");
            break;
        case CF_WIRE_JOIN:
            assert_str_is(m.room, "general");
            break;
        case CF_WIRE_MSG:
            assert_str_is(m.from, "bob");
            assert_str_is(m.text, "hi");
            assert_true(m.ts == -42);
            break;
        default:
            assert_true(m.seq == 99);
            break;
        }
        cf_bytes_consume(&q, CF_WIRE_HDR + len);
    }
    assert_int_equal(cf_bytes_len(&q), 0);
    const unsigned char *p = NULL;
    size_t len = 0;
    assert_int_equal(cf_wire_frame_peek(&q, &p, &len), 0);
    cf_bytes_free(&q);
}

static void test_frame_byte_at_a_time(void **state)
{
    (void)state;
    struct cf_bytes whole, in;
    cf_bytes_init(&whole, 1u << 16);
    cf_bytes_init(&in, 1u << 16);
    struct cf_wire_msg msg = {.type = CF_WIRE_MSG, .room = str_of("r"),
                              .from = str_of("carol"), .text = str_of("one byte at a time"),
                              .ts = 1795860000123LL};
    assert_int_equal(cf_wire_encode(&whole, &msg), 0);
    size_t total = cf_bytes_len(&whole);
    const unsigned char *src = cf_bytes_data(&whole);
    const unsigned char *p = NULL;
    size_t len = 0;
    assert_int_equal(cf_wire_frame_peek(&in, &p, &len), 0);
    for (size_t i = 0; i < total; i++) {
        assert_int_equal(cf_bytes_append(&in, src + i, 1), 0);
        int rc = cf_wire_frame_peek(&in, &p, &len);
        if (i + 1 < total) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, 1);
            assert_int_equal(len, total - CF_WIRE_HDR);
            assert_memory_equal(p, src + CF_WIRE_HDR, len);
        }
    }
    struct cf_wire_msg m;
    const char *why = NULL;
    assert_int_equal(cf_wire_decode(g_dec, p, len, &m, &why), 0);
    assert_str_is(m.text, "one byte at a time");
    cf_bytes_free(&whole);
    cf_bytes_free(&in);
}

static void test_frame_header_limits(void **state)
{
    (void)state;
    struct cf_bytes q;
    const unsigned char *p = NULL;
    size_t len = 0;

    cf_bytes_init(&q, 64);
    static const unsigned char too_big[] = {0x00, 0x40, 0x00, 0x01}; /* MAX + 1 */
    assert_int_equal(cf_bytes_append(&q, too_big, 3), 0);
    assert_int_equal(cf_wire_frame_peek(&q, &p, &len), 0); /* header incomplete */
    assert_int_equal(cf_bytes_append(&q, too_big + 3, 1), 0);
    assert_int_equal(cf_wire_frame_peek(&q, &p, &len), -EMSGSIZE);
    cf_bytes_free(&q);

    static const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff};
    cf_bytes_init(&q, 64);
    assert_int_equal(cf_bytes_append(&q, huge, 4), 0);
    assert_int_equal(cf_wire_frame_peek(&q, &p, &len), -EMSGSIZE);
    cf_bytes_free(&q);

    static const unsigned char at_max[] = {0x00, 0x04, 0x00, 0x00, 0x80}; /* exactly MAX */
    cf_bytes_init(&q, 64);
    assert_int_equal(cf_bytes_append(&q, at_max, sizeof at_max), 0);
    assert_int_equal(cf_wire_frame_peek(&q, &p, &len), 0); /* legal, just incomplete */
    cf_bytes_free(&q);

    static const unsigned char empty_frame[] = {0, 0, 0, 0};
    cf_bytes_init(&q, 64);
    assert_int_equal(cf_bytes_append(&q, empty_frame, 4), 0);
    len = 99;
    assert_int_equal(cf_wire_frame_peek(&q, &p, &len), 1);
    assert_int_equal(len, 0);
    cf_bytes_free(&q);
}

static void test_encode_errors(void **state)
{
    (void)state;
    struct cf_bytes q;
    struct cf_wire_msg msg = {.type = CF_WIRE_MSG, .room = str_of("general"),
                              .from = str_of("alice"), .text = str_of("a message of some length"),
                              .ts = 1};

    /* Not even the header fits. */
    cf_bytes_init(&q, 3);
    assert_int_equal(cf_wire_encode(&q, &msg), -ENOBUFS);
    assert_int_equal(cf_bytes_len(&q), 0);
    cf_bytes_free(&q);

    /* The header fits, the payload does not. */
    cf_bytes_init(&q, 16);
    assert_int_equal(cf_wire_encode(&q, &msg), -ENOBUFS);
    assert_int_equal(cf_bytes_len(&q), 0);
    cf_bytes_free(&q);

    /* Bytes already queued stay exactly as they were. */
    unsigned char junk[50];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 7 + 1);
    cf_bytes_init(&q, 64);
    assert_int_equal(cf_bytes_append(&q, junk, sizeof junk), 0);
    assert_int_equal(cf_wire_encode(&q, &msg), -ENOBUFS);
    assert_int_equal(cf_bytes_len(&q), sizeof junk);
    assert_memory_equal(cf_bytes_data(&q), junk, sizeof junk);
    /* ... and a message that fits is still appended after them. */
    struct cf_wire_msg ping = {.type = CF_WIRE_PING, .seq = 1};
    cf_bytes_consume(&q, 30);
    assert_int_equal(cf_wire_encode(&q, &ping), 0);
    assert_memory_equal(cf_bytes_data(&q), junk + 30, 20);
    cf_bytes_free(&q);

    /* Fields over their limits. */
    cf_bytes_init(&q, 1u << 20);
    assert_int_equal(cf_bytes_append(&q, "xy", 2), 0);
    char room[CF_ROOM_MAX + 2];
    memset(room, 'a', sizeof room - 1);
    room[sizeof room - 1] = '\0';
    struct cf_wire_msg bad = msg;
    bad.room = str_of(room); /* 65 bytes */
    assert_int_equal(cf_wire_encode(&q, &bad), -EINVAL);
    assert_int_equal(cf_bytes_len(&q), 2);

    bad = msg;
    bad.type = CF_WIRE_JOIN;
    bad.room = str_of(room);
    assert_int_equal(cf_wire_encode(&q, &bad), -EINVAL);

    char from[CF_USERNAME_BYTES_MAX + 2];
    memset(from, 'f', sizeof from - 1);
    from[sizeof from - 1] = '\0';
    bad = msg;
    bad.from = str_of(from);
    assert_int_equal(cf_wire_encode(&q, &bad), -EINVAL);

    bad = msg;
    bad.text = (struct cf_str){"x", CF_WIRE_MAX_TEXT + 1};
    assert_int_equal(cf_wire_encode(&q, &bad), -EINVAL);

    /* A time with no RFC 3339 form, which the decoder refuses too. */
    static const int64_t no_date[] = {INT64_MIN, CF_RFC3339_MIN_MS - 1, CF_RFC3339_MAX_MS + 1,
                                      INT64_MAX};
    for (size_t i = 0; i < sizeof no_date / sizeof no_date[0]; i++) {
        bad = msg;
        bad.ts = no_date[i];
        assert_int_equal(cf_wire_encode(&q, &bad), -EINVAL);
    }

    char node[CF_WIRE_MAX_NODE + 2];
    memset(node, 'n', sizeof node - 1);
    node[sizeof node - 1] = '\0';
    struct cf_wire_msg hello = {.type = CF_WIRE_HELLO, .shard = 0, .shards = 1,
                                .node = str_of(node)};
    assert_int_equal(cf_wire_encode(&q, &hello), -EINVAL);
    /* A shard not below the count (none at all included), as the decoder. */
    hello.node = str_of("node-1");
    hello.shards = 0;
    assert_int_equal(cf_wire_encode(&q, &hello), -EINVAL);
    hello.shard = 1;
    hello.shards = 1;
    assert_int_equal(cf_wire_encode(&q, &hello), -EINVAL);
    /* A string with a length and no bytes. */
    bad = msg;
    bad.text = (struct cf_str){NULL, 3};
    assert_int_equal(cf_wire_encode(&q, &bad), -EINVAL);

    bad = msg;
    bad.type = (enum cf_wire_type)0;
    assert_int_equal(cf_wire_encode(&q, &bad), -EINVAL);
    bad.type = (enum cf_wire_type)(CF_WIRE_TYPE_MAX + 1);
    assert_int_equal(cf_wire_encode(&q, &bad), -EINVAL);
    assert_int_equal(cf_bytes_len(&q), 2);
    assert_memory_equal(cf_bytes_data(&q), "xy", 2);
    cf_bytes_free(&q);
}

static void test_frame_raw(void **state)
{
    (void)state;
    struct cf_bytes enc, q;
    cf_bytes_init(&enc, 1u << 16);
    cf_bytes_init(&q, 1u << 16);
    struct cf_wire_msg msg = {.type = CF_WIRE_MSG, .room = str_of("general"),
                              .from = str_of("dave"), .text = str_of("from redis"), .ts = 7};
    assert_int_equal(cf_wire_encode(&enc, &msg), 0);
    const unsigned char *payload;
    size_t plen;
    assert_int_equal(cf_wire_frame_peek(&enc, &payload, &plen), 1);

    assert_int_equal(cf_bytes_append(&q, "\0\0\0\0", 4), 0); /* an empty frame first */
    assert_int_equal(cf_wire_frame_raw(&q, payload, plen), 0);
    assert_int_equal(cf_bytes_len(&q), 4 + CF_WIRE_HDR + plen);
    /* Byte-identical to what cf_wire_encode produced. */
    assert_memory_equal(cf_bytes_data(&q) + 4, cf_bytes_data(&enc), CF_WIRE_HDR + plen);

    const unsigned char *p;
    size_t len;
    assert_int_equal(cf_wire_frame_peek(&q, &p, &len), 1);
    assert_int_equal(len, 0);
    cf_bytes_consume(&q, CF_WIRE_HDR);
    assert_int_equal(cf_wire_frame_peek(&q, &p, &len), 1);
    assert_int_equal(len, plen);
    assert_memory_equal(p, payload, plen);
    cf_bytes_free(&q);

    /* Over the frame limit, over the queue bound. */
    cf_bytes_init(&q, 1u << 20);
    assert_int_equal(cf_wire_frame_raw(&q, payload, CF_WIRE_MAX_FRAME + 1), -EINVAL);
    assert_int_equal(cf_bytes_len(&q), 0);
    cf_bytes_free(&q);
    cf_bytes_init(&q, CF_WIRE_HDR + plen - 1);
    assert_int_equal(cf_wire_frame_raw(&q, payload, plen), -ENOBUFS);
    assert_int_equal(cf_bytes_len(&q), 0);
    cf_bytes_free(&q);
    cf_bytes_init(&q, CF_WIRE_HDR + plen + 3);
    assert_int_equal(cf_bytes_append(&q, "abcd", 4), 0);
    assert_int_equal(cf_wire_frame_raw(&q, payload, plen), -ENOBUFS);
    assert_int_equal(cf_bytes_len(&q), 4);
    cf_bytes_consume(&q, 1);
    assert_int_equal(cf_wire_frame_raw(&q, payload, plen), 0);
    assert_int_equal(cf_bytes_len(&q), 3 + CF_WIRE_HDR + plen);
    cf_bytes_free(&q);
    cf_bytes_free(&enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_hello_welcome),
        cmocka_unit_test(test_roundtrip_join_leave),
        cmocka_unit_test(test_roundtrip_msg),
        cmocka_unit_test(test_roundtrip_ping_pong),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_several_frames_in_one_buffer),
        cmocka_unit_test(test_frame_byte_at_a_time),
        cmocka_unit_test(test_frame_header_limits),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_frame_raw),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
