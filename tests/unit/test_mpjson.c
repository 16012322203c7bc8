/* Unit tests for gateway/mpjson: MessagePack <-> jansson for the
 * confab.msgpack.v1 subprotocol. Only what JSON can express is accepted;
 * nesting and declared sizes are bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "mpjson.h"

#define WHY_MALFORMED "malformed msgpack"
#define WHY_INVALID "invalid value (bad UTF-8, or out of range)"
#define WHY_RANGE "integer out of range"

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, err.text);
    return v;
}

static void assert_json_equal(const json_t *got, const json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;
        char *w = json_dumps(want, JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", g ? g : "NULL", w ? w : "?");
    }
}

/* Decodes bytes that must be refused, for the reason given (NULL: any). */
static void expect_refused(const void *p, size_t len, const char *want_why)
{
    const char *why = NULL;
    json_t *v = mpjson_decode(p, len, &why);
    if (v) {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        fail_msg("accepted as %s", s ? s : "?");
    }
    assert_non_null(why);
    if (want_why)
        assert_string_equal(why, want_why);
}

static json_t *expect_decoded(const void *p, size_t len)
{
    const char *why = NULL;
    json_t *v = mpjson_decode(p, len, &why);
    if (!v)
        fail_msg("refused: %s", why ? why : "?");
    return v;
}

/* ---- round trips ------------------------------------------------------------ */

static void test_roundtrip_values(void **state)
{
    (void)state;
    static const char *values[] = {
        "{}", "[]", "null", "true", "false", "0", "1", "-1", "127", "128", "-32", "-33", "255",
        "65536", "-2147483649", "9223372036854775807", "-9223372036854775808", "1.5", "-0.25",
        "1e300", "\"h\\u00e9llo \\ud83d\\ude00\"", "\"a\\u0000b\"",
        "{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"since\":41,\"limit\":20}}",
        "[1,[2,[3,[]]],{\"a\":null,\"b\":[true,false],\"\\u00e9\":{}}]",
        "{\"\":\"empty key\",\"k\":\"v\"}",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        json_t *v = load(values[i]);
        struct cf_bytes out;
        cf_bytes_init(&out, 1u << 16);
        assert_int_equal(mpjson_encode(&out, v), 0);
        const char *why = NULL;
        json_t *back = mpjson_decode(cf_bytes_data(&out), cf_bytes_len(&out), &why);
        if (!back)
            fail_msg("%s refused: %s", values[i], why ? why : "?");
        assert_json_equal(back, v);
        json_decref(back);
        json_decref(v);
        cf_bytes_free(&out);
    }
}

/* Frames decode through one zone kept across calls: a frame that outgrows
 * its first chunk, one refused once unpacked, and the small ones after them all decode
 * whole (under ASan, a chunk used after the zone freed it would show) */
static void test_zone_reused_across_frames(void **state)
{
    (void)state;
    enum { N = 3000 }; /* ~72 KB of msgpack objects: past the zone's 2 KiB */
    json_t *big = json_array();
    for (int i = 0; i < N; i++)
        json_array_append_new(big, json_pack("{s:i}", "n", i));
    json_t *small = load("{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"text\":\"hi\"}}");
    struct cf_bytes bb, sb;
    cf_bytes_init(&bb, 1u << 20);
    cf_bytes_init(&sb, 1u << 16);
    assert_int_equal(mpjson_encode(&bb, big), 0);
    assert_int_equal(mpjson_encode(&sb, small), 0);
    for (int round = 0; round < 3; round++) {
        json_t *v = expect_decoded(cf_bytes_data(&sb), cf_bytes_len(&sb));
        assert_json_equal(v, small);
        json_decref(v);
        v = expect_decoded(cf_bytes_data(&bb), cf_bytes_len(&bb));
        assert_json_equal(v, big);
        json_decref(v);
        /* refused after the unpack, with objects in the zone */
        expect_refused("\x82\xa1k\x01\xa1k\x02", 7, "duplicate key");
        v = expect_decoded(cf_bytes_data(&sb), cf_bytes_len(&sb));
        assert_json_equal(v, small);
        json_decref(v);
    }
    cf_bytes_free(&bb);
    cf_bytes_free(&sb);
    json_decref(big);
    json_decref(small);
}

/* The empty string is a string. msgpack-c hands out a NULL pointer (size 0)
 * for an empty fixstr met before any other sized value in the buffer, and
 * json_stringn(NULL, 0) returns NULL: mpjson_decode must not take that for
 * invalid UTF-8. */
static void test_empty_strings(void **state)
{
    (void)state;
    static const struct {
        const char *mp, *json;
        size_t n;
    } cases[] = {
        {"\x81\xa1k\xa0", "{\"k\":\"\"}", 4},  /* after a sized string: fine */
        {"\xd9\x00", "\"\"", 2},              /* str8 of 0 */
        {"\xa0", "\"\"", 1},                  /* fixstr of 0 */
        {"\x92\xa0\xa1x", "[\"\",\"x\"]", 4},
        {"\x81\xa0\xa0", "{\"\":\"\"}", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = NULL;
        json_t *v = mpjson_decode(cases[i].mp, cases[i].n, &why);
        if (!v)
            fail_msg("%s refused: %s", cases[i].json, why ? why : "?");
        json_t *want = load(cases[i].json);
        assert_json_equal(v, want);
        json_decref(want);
        json_decref(v);
    }
}

static void test_encoding_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *mp;
        size_t n;
    } cases[] = {
        {"{\"a\":1}", "\x81\xa1" "a\x01", 4},
        {"[]", "\x90", 1},
        {"null", "\xc0", 1},
        {"true", "\xc3", 1},
        {"false", "\xc2", 1},
        {"-1", "\xff", 1},
        {"\"x\"", "\xa1x", 2},
        {"300", "\xcd\x01\x2c", 3},
        {"1.5", "\xcb\x3f\xf8\0\0\0\0\0\0", 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = load(cases[i].json);
        struct cf_bytes out;
        cf_bytes_init(&out, 1024);
        assert_int_equal(cf_bytes_append(&out, "ab", 2), 0);
        assert_int_equal(mpjson_encode(&out, v), 0); /* appends */
        assert_int_equal(cf_bytes_len(&out), 2 + cases[i].n);
        assert_memory_equal(cf_bytes_data(&out), "ab", 2);
        assert_memory_equal(cf_bytes_data(&out) + 2, cases[i].mp, cases[i].n);
        cf_bytes_free(&out);
        json_decref(v);
    }
}

static void test_decode_msgpack_forms(void **state)
{
    (void)state;
    /* Every integer width, float32, str8/16/32, array16, map16. */
    msgpack_sbuffer sb;
    msgpack_packer p;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
    msgpack_sbuffer_write(&sb, "\xde\x00\x05", 3); /* map16 of 5 */
    msgpack_sbuffer_write(&sb, "\xa1u", 2);
    msgpack_sbuffer_write(&sb, "\xdc\x00\x04", 3); /* array16 of 4 */
    msgpack_sbuffer_write(&sb, "\xcc\xff\xcd\xff\xff\xce\xff\xff\xff\xff", 10);
    msgpack_sbuffer_write(&sb, "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9);
    msgpack_sbuffer_write(&sb, "\xa1i", 2);
    msgpack_sbuffer_write(&sb, "\x94\xd0\x80\xd1\x80\x00\xd2\x80\0\0\0", 11);
    msgpack_sbuffer_write(&sb, "\xd3\x80\0\0\0\0\0\0\0", 9);
    msgpack_sbuffer_write(&sb, "\xa1" "f\xca\x3f\xc0\0\0", 7); /* float32 1.5 */
    msgpack_sbuffer_write(&sb, "\xd9\x01s\xda\x00\x02hi", 8);   /* str8 key, str16 value */
    msgpack_sbuffer_write(&sb, "\xdb\0\0\0\x01k\xdb\0\0\0\x03\xc3\xa9!", 14); /* str32 */
    json_t *v = expect_decoded(sb.data, sb.size);
    json_t *want = load("{\"u\":[255,65535,4294967295,9223372036854775807],"
                        "\"i\":[-128,-32768,-2147483648,-9223372036854775808],"
                        "\"f\":1.5,\"s\":\"hi\",\"k\":\"\\u00e9!\"}");
    assert_json_equal(v, want);
    json_decref(v);
    json_decref(want);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- limits ------------------------------------------------------------------ */

/* n nested containers (arrays, or maps under key "a") around the integer 1. */
static void pack_nested(msgpack_sbuffer *sb, int n, bool maps)
{
    for (int i = 0; i < n; i++)
        msgpack_sbuffer_write(sb, maps ? "\x81\xa1" "a" : "\x91", maps ? 3 : 1);
    msgpack_sbuffer_write(sb, "\x01", 1);
}

static json_t *json_nested(int n, bool maps)
{
    json_t *v = json_integer(1);
    for (int i = 0; i < n; i++) {
        json_t *c = maps ? json_object() : json_array();
        if (maps)
            json_object_set_new(c, "a", v);
        else
            json_array_append_new(c, v);
        v = c;
    }
    return v;
}

static void test_nesting_limit(void **state)
{
    (void)state;
    /* A value may sit MPJSON_MAX_DEPTH containers deep, not one more: msgpack-c
     * parses no deeper. */
    for (int maps = 0; maps <= 1; maps++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        pack_nested(&sb, MPJSON_MAX_DEPTH, maps);
        json_t *v = expect_decoded(sb.data, sb.size);
        json_t *want = json_nested(MPJSON_MAX_DEPTH, maps);
        assert_json_equal(v, want);
        json_decref(v);
        msgpack_sbuffer_destroy(&sb);

        /* The encoder accepts what the decoder does ... */
        struct cf_bytes out;
        cf_bytes_init(&out, 1u << 16);
        assert_int_equal(mpjson_encode(&out, want), 0);
        cf_bytes_free(&out);
        json_decref(want);

        msgpack_sbuffer_init(&sb);
        pack_nested(&sb, MPJSON_MAX_DEPTH + 1, maps);
        expect_refused(sb.data, sb.size, WHY_MALFORMED);
        msgpack_sbuffer_destroy(&sb);

        /* ... and refuses what it refuses, leaving out as it was. */
        want = json_nested(MPJSON_MAX_DEPTH + 1, maps);
        cf_bytes_init(&out, 1u << 16);
        assert_int_equal(cf_bytes_append(&out, "xy", 2), 0);
        assert_int_equal(mpjson_encode(&out, want), -EINVAL);
        assert_int_equal(cf_bytes_len(&out), 2);
        cf_bytes_free(&out);
        json_decref(want);
    }
    /* What JSON cannot hold becomes an empty array, a container: at the
     * deepest place it would not decode again (the fuzzer's round trip). */
    for (int n = MPJSON_MAX_DEPTH - 1; n <= MPJSON_MAX_DEPTH; n++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        for (int i = 0; i < n; i++)
            msgpack_sbuffer_write(&sb, "\x91", 1);
        msgpack_sbuffer_write(&sb, "\xc4\x00", 2); /* an empty bin */
        if (n == MPJSON_MAX_DEPTH) {
            expect_refused(sb.data, sb.size, "nested too deeply");
        } else {
            json_t *v = expect_decoded(sb.data, sb.size);
            struct cf_bytes out;
            cf_bytes_init(&out, 1u << 16);
            assert_int_equal(mpjson_encode(&out, v), 0);
            json_t *again = expect_decoded(cf_bytes_data(&out), cf_bytes_len(&out));
            assert_true(json_equal(v, again));
            json_decref(again);
            json_decref(v);
            cf_bytes_free(&out);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    /* Far deeper than any stack would like. */
    enum { DEEP = 100000 };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_nested(&sb, DEEP, false);
    expect_refused(sb.data, sb.size, NULL);
    msgpack_sbuffer_destroy(&sb);
}

static void test_bin_ext_as_empty_arrays(void **state)
{
    (void)state;
    static const struct {
        const char *b;
        size_t n;
    } values[] = {
        {"\xc4\x01x", 3},                     /* bin8 */
        {"\xc4\x00", 2},                      /* empty bin8 */
        {"\xc5\x00\x01x", 4},                 /* bin16 */
        {"\xc6\x00\x00\x00\x01x", 6},         /* bin32 */
        {"\xd4\x01x", 3},                     /* fixext1 */
        {"\xd5\x01xy", 4},                    /* fixext2 */
        {"\xd6\xff\0\0\0\0", 6},              /* fixext4 (a timestamp) */
        {"\xc7\x01\x05x", 4},                 /* ext8 */
        {"\xc8\x00\x01\x05x", 5},             /* ext16 */
        {"\xc9\x00\x00\x00\x01\x05x", 7},     /* ext32 */
    };
    /* JSON cannot hold them: an empty array, which no field of the protocol
     * takes, so a field refuses it and an unknown key's is ignored (mpjson.h) */
    json_t *alone = load("[]"), *in_map = load("{\"k\":[]}"), *in_array = load("[1,[]]");
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        json_t *v = expect_decoded(values[i].b, values[i].n);
        assert_json_equal(v, alone);
        json_decref(v);
        /* Nested as a map value and in an array. */
        unsigned char buf[32] = {0x81, 0xa1, 'k'};
        memcpy(buf + 3, values[i].b, values[i].n);
        v = expect_decoded(buf, 3 + values[i].n);
        assert_json_equal(v, in_map);
        json_decref(v);
        buf[0] = 0x92;
        buf[1] = 0x01;
        memcpy(buf + 2, values[i].b, values[i].n);
        v = expect_decoded(buf, 2 + values[i].n);
        assert_json_equal(v, in_array);
        json_decref(v);
        /* Truncated: still malformed. */
        expect_refused(buf, 1 + values[i].n, NULL);
    }
    json_decref(alone);
    json_decref(in_map);
    json_decref(in_array);
}

static void test_keys(void **state)
{
    (void)state;
    static const struct {
        const char *b;
        size_t n;
    } keys[] = {
        {"\x01", 1},          /* int */
        {"\xc0", 1},          /* nil */
        {"\xc3", 1},          /* true */
        {"\xc4\x01k", 3},     /* bin "k" */
        {"\x90", 1},          /* [] */
        {"\x80", 1},          /* {} */
        {"\xcb\0\0\0\0\0\0\0\0", 9},
        {"\xa3" "a\0b", 4},   /* a string holding a NUL */
    };
    /* No field has such a name: the entry is left out (mpjson.h). */
    json_t *none = load("{}"), *a = load("{\"a\":1}");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        unsigned char buf[32] = {0x81};
        memcpy(buf + 1, keys[i].b, keys[i].n);
        buf[1 + keys[i].n] = 0x01;
        json_t *v = expect_decoded(buf, 2 + keys[i].n);
        assert_json_equal(v, none);
        json_decref(v);
        /* Also when an acceptable key comes first: that one is kept. */
        unsigned char two[40] = {0x82, 0xa1, 'a', 0x01};
        memcpy(two + 4, keys[i].b, keys[i].n);
        two[4 + keys[i].n] = 0x01;
        v = expect_decoded(two, 5 + keys[i].n);
        assert_json_equal(v, a);
        json_decref(v);
        /* Its value is still checked as a frame's. */
        two[4 + keys[i].n] = 0xc1;
        expect_refused(two, 5 + keys[i].n, NULL);
    }
    json_decref(none);
    json_decref(a);
    /* Keys of any length, as JSON's, and a duplicate found past 256 bytes. */
    for (size_t len = 254; len <= 1000; len += 373) {
        unsigned char buf[2100] = {0x82, 0xda, (unsigned char)(len >> 8), (unsigned char)len};
        memset(buf + 4, 'k', len);
        buf[4 + len] = 0x01;
        buf[0] = 0x81;
        json_t *v = expect_decoded(buf, 5 + len);
        assert_int_equal(json_object_size(v), 1);
        assert_non_null(json_object_getn(v, (const char *)buf + 4, len));
        json_decref(v);
        buf[0] = 0x82;
        memcpy(buf + 5 + len, buf + 1, 4 + len);
        buf[8 + 2 * len] = 0x02;
        expect_refused(buf, 9 + 2 * len, "duplicate key");
        buf[7 + 2 * len] = 'j'; /* differs in its last byte */
        v = expect_decoded(buf, 9 + 2 * len);
        assert_int_equal(json_object_size(v), 2);
        json_decref(v);
    }
    /* A key that is not UTF-8. */
    expect_refused("\x81\xa1\xff\x01", 4, NULL);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *bad[] = {
        "\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xe2\x82", "a\x80",
        "\xf4\x90\x80\x80", /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i]);
        unsigned char buf[16] = {(unsigned char)(0xa0 + n)};
        memcpy(buf + 1, bad[i], n);
        expect_refused(buf, 1 + n, WHY_INVALID);
        unsigned char in_map[20] = {0x81, 0xa1, 'm', (unsigned char)(0xa0 + n)};
        memcpy(in_map + 4, bad[i], n);
        expect_refused(in_map, 4 + n, WHY_INVALID);
    }
    /* Valid multi-byte UTF-8 right at the edges is fine. */
    json_t *v = expect_decoded("\xa9\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf", 10);
    assert_int_equal(json_string_length(v), 9);
    json_decref(v);
}

static void test_malformed_and_sizes(void **state)
{
    (void)state;
    expect_refused("", 0, WHY_MALFORMED);
    expect_refused("\xc1", 1, WHY_MALFORMED);
    expect_refused("\x01\x02", 2, WHY_MALFORMED); /* trailing bytes */
    expect_refused("\x80\x80", 2, WHY_MALFORMED); /* two objects */
    /* Every truncation of a valid frame. */
    json_t *v = load("{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"message\":\"hi\","
                     "\"n\":[1,300,70000,5000000000,-5,1.5,null,true]}}");
    struct cf_bytes out;
    cf_bytes_init(&out, 4096);
    assert_int_equal(mpjson_encode(&out, v), 0);
    for (size_t n = 0; n < cf_bytes_len(&out); n++)
        expect_refused(cf_bytes_data(&out), n, WHY_MALFORMED);
    json_t *back = expect_decoded(cf_bytes_data(&out), cf_bytes_len(&out));
    assert_json_equal(back, v);
    json_decref(back);
    json_decref(v);
    cf_bytes_free(&out);

    /* Container and string headers announcing more than is there. */
    static const struct {
        const char *b;
        size_t n;
    } sizes[] = {
        {"\xdd\xff\xff\xff\xff", 5},         /* array32 of 2^32-1 */
        {"\xdd\x00\x80\x00\x00\xc0\xc0", 7}, /* array32 of 8M, two present */
        {"\xdf\xff\xff\xff\xff\xa1k", 7},    /* map32 */
        {"\xde\x00\x02\xa1k\xc0", 6},        /* map16 of 2, one present */
        {"\xdc\x00\x03\xc0\xc0", 5},         /* array16 of 3, two present */
        {"\x93\xc0\xc0", 3},                 /* fixarray of 3 */
        {"\xdb\xff\xff\xff\xff", 5},         /* str32 */
        {"\xda\x00\x05" "ab", 5},            /* str16 of 5 */
        {"\xd9\x05" "ab", 4},                /* str8 of 5 */
        {"\xa5" "ab", 3},                    /* fixstr of 5 */
        {"\xcf\x00\x01", 3},                 /* uint64 cut short */
        {"\xcb\x00", 2},                     /* float64 cut short */
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        expect_refused(sizes[i].b, sizes[i].n, WHY_MALFORMED);
        unsigned char buf[32] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b'};
        memcpy(buf + 6, sizes[i].b, sizes[i].n);
        expect_refused(buf, 6 + sizes[i].n, WHY_MALFORMED);
    }
}

static void test_integer_limits(void **state)
{
    (void)state;
    json_t *v = expect_decoded("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9);
    assert_true(json_integer_value(v) == INT64_MAX);
    json_decref(v);
    v = expect_decoded("\xd3\x80\0\0\0\0\0\0\0", 9);
    assert_true(json_integer_value(v) == INT64_MIN);
    json_decref(v);
    expect_refused("\xcf\x80\0\0\0\0\0\0\0", 9, WHY_RANGE); /* INT64_MAX + 1 */
    expect_refused("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, WHY_RANGE);
    expect_refused("\x91\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 10, WHY_RANGE);
    /* Floats JSON cannot hold: an empty array, as bin and ext (mpjson.h). */
    static const char *const odd[] = {"\xcb\x7f\xf8\0\0\0\0\0\0", /* NaN */
                                      "\xcb\x7f\xf0\0\0\0\0\0\0", /* +inf */
                                      "\xca\xff\x80\0\0"};        /* float32 -inf */
    for (size_t i = 0; i < 3; i++) {
        v = expect_decoded(odd[i], i < 2 ? 9 : 5);
        assert_true(json_is_array(v) && json_array_size(v) == 0);
        json_decref(v);
    }
    /* Integers keep their type: a float is not an integer. */
    v = expect_decoded("\xcb\x40\x45\0\0\0\0\0\0", 9); /* 42.0 */
    assert_true(json_is_real(v));
    json_decref(v);
}

static void test_encode_bounds(void **state)
{
    (void)state;
    json_t *v = load("{\"type\":\"new_message\",\"payload\":{\"message\":\"a long enough text\"}}");
    struct cf_bytes out;
    cf_bytes_init(&out, 20);
    assert_int_equal(cf_bytes_append(&out, "xy", 2), 0);
    assert_int_equal(mpjson_encode(&out, v), -ENOBUFS);
    assert_int_equal(cf_bytes_len(&out), 2);
    assert_memory_equal(cf_bytes_data(&out), "xy", 2);
    cf_bytes_free(&out);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_values),
        cmocka_unit_test(test_zone_reused_across_frames),
        cmocka_unit_test(test_empty_strings),
        cmocka_unit_test(test_encoding_bytes),
        cmocka_unit_test(test_decode_msgpack_forms),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_bin_ext_as_empty_arrays),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_malformed_and_sizes),
        cmocka_unit_test(test_integer_limits),
        cmocka_unit_test(test_encode_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
