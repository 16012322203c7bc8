/* Unit tests for common/wire: defensive decoding. Each payload is built by
 * hand, mostly as a valid message with one field changed, so that the one
 * change is what the decoder must refuse, for the reason it gives. (test_wire.c
 * covers round trips and framing.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "wire.h"

#include "wire_fields.h"
#include "wire_fixture.h"

/* ---- malformed payloads ------------------------------------------------------ */

static struct fset msg_fields(void)
{
    return (struct fset){{FU("v", 1), FS("t", "msg"), FS("room", "general"), FS("from", "alice"),
                          FS("text", "hello"), FI("ts", 1795860000123LL)},
                         6};
}

static struct fset hello_fields(void)
{
    return (struct fset){{FU("v", 1), FS("t", "hello"), FU("shard", 1), FU("shards", 2),
                          FS("node", "gw-0")},
                         5};
}

static struct fset join_fields(void)
{
    return (struct fset){{FU("v", 1), FS("t", "join"), FS("room", "general")}, 3};
}

static struct fset ping_fields(void)
{
    return (struct fset){{FU("v", 1), FS("t", "ping"), FU("seq", 7)}, 3};
}

static void expect_bad_raw(const void *p, size_t len, const char *want_why)
{
    struct cf_wire_msg m;
    const char *why;
    int rc = decode_raw(p, len, &m, &why);
    assert_int_equal(rc, -EBADMSG);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    if (want_why)
        assert_string_equal(why, want_why);
}

static void expect_bad_fields(const struct fset *s, const char *want_why)
{
    struct pk k;
    pk_begin(&k);
    pk_fields(&k, s, 0);
    expect_bad_raw(k.sb.data, k.sb.size, want_why);
    pk_end(&k);
}

static void expect_ok_fields(const struct fset *s, enum cf_wire_type type)
{
    struct cf_wire_msg m;
    const char *why = NULL;
    int rc = decode_fields(s, &m, &why);
    if (rc != 0)
        fail_msg("decode failed: %s", why ? why : "(no reason)");
    assert_int_equal(m.type, type);
}

static void test_templates_are_valid(void **state)
{
    (void)state;
    struct fset s = msg_fields();
    struct cf_wire_msg m;
    const char *why = NULL;
    assert_int_equal(decode_fields(&s, &m, &why), 0);
    assert_int_equal(m.type, CF_WIRE_MSG);
    assert_str_is(m.room, "general");
    assert_str_is(m.from, "alice");
    assert_str_is(m.text, "hello");
    assert_true(m.ts == 1795860000123LL);
    s = hello_fields();
    assert_int_equal(decode_fields(&s, &m, &why), 0);
    assert_int_equal(m.type, CF_WIRE_HELLO);
    assert_int_equal(m.shard, 1);
    assert_int_equal(m.shards, 2);
    assert_str_is(m.node, "gw-0");
    s = join_fields();
    expect_ok_fields(&s, CF_WIRE_JOIN);
    s = ping_fields();
    expect_ok_fields(&s, CF_WIRE_PING);
    fs_set(&s, "t", FS("t", "leave"));
    fs_set(&s, "seq", FS("room", "x"));
    expect_ok_fields(&s, CF_WIRE_LEAVE);
    s = hello_fields();
    fs_set(&s, "t", FS("t", "welcome"));
    expect_ok_fields(&s, CF_WIRE_WELCOME);
    s = ping_fields();
    fs_set(&s, "t", FS("t", "pong"));
    expect_ok_fields(&s, CF_WIRE_PONG);
    /* Field order does not matter. */
    s = msg_fields();
    struct fset r;
    r.n = 0;
    for (size_t i = s.n; i-- > 0;)
        fs_add(&r, s.f[i]);
    expect_ok_fields(&r, CF_WIRE_MSG);
}

static void test_unknown_keys_ignored(void **state)
{
    (void)state;
    struct fset s = msg_fields();
    fs_add(&s, FS("x-trace", "abc"));
    fs_add(&s, FK("nil", K_NIL));
    fs_add(&s, FK("flag", K_TRUE));
    fs_add(&s, FK("ratio", K_DOUBLE));
    fs_add(&s, FK("list", K_ARRAY0));
    fs_add(&s, FK("obj", K_MAP0));
    fs_add(&s, FK("blob", K_BIN));
    fs_add(&s, FI("neg", -5));
    fs_add(&s, FS("", ""));
    fs_add(&s, FS("shard ", "space makes it another key"));
    struct cf_wire_msg m;
    const char *why = NULL;
    assert_int_equal(decode_fields(&s, &m, &why), 0);
    assert_int_equal(m.type, CF_WIRE_MSG);
    assert_str_is(m.text, "hello");

    /* Every msgpack type as the value of an unknown key: the pre-scan must
     * step over each one exactly. */
    static const unsigned char all_types[] = {
        0xdc, 0x00, 0x23,                         /* array16 of 35 */
        0x00, 0x7f, 0xe0, 0xc0, 0xc2, 0xc3,       /* fixints, nil, bools */
        0xcc, 0xff, 0xcd, 0x01, 0x00,             /* uint8, uint16 */
        0xce, 0, 0, 1, 0,                         /* uint32 */
        0xcf, 0, 0, 0, 0, 0, 0, 1, 0,             /* uint64 */
        0xd0, 0x80, 0xd1, 0x80, 0x00,             /* int8, int16 */
        0xd2, 0x80, 0, 0, 0,                      /* int32 */
        0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,          /* int64 */
        0xca, 0x3f, 0xc0, 0, 0,                   /* float32 */
        0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,       /* float64 */
        0xa3, 'a', 'b', 'c',                      /* fixstr */
        0xd9, 0x02, 'h', 'i',                     /* str8 */
        0xda, 0x00, 0x01, 'x',                    /* str16 */
        0xdb, 0x00, 0x00, 0x00, 0x01, 'y',        /* str32 */
        0xc4, 0x01, 0xaa,                         /* bin8 */
        0xc5, 0x00, 0x02, 0xaa, 0xbb,             /* bin16 */
        0xc6, 0x00, 0x00, 0x00, 0x01, 0xcc,       /* bin32 */
        0xd4, 0x01, 0x11,                         /* fixext1 */
        0xd5, 0x01, 0x11, 0x22,                   /* fixext2 */
        0xd6, 0x01, 1, 2, 3, 4,                   /* fixext4 */
        0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8,       /* fixext8 */
        0xd8, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* fixext16 */
        0xc7, 0x02, 0x01, 0xaa, 0xbb,             /* ext8 */
        0xc8, 0x00, 0x01, 0x01, 0xaa,             /* ext16 */
        0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0xaa, /* ext32 */
        0x92, 0x81, 0xa1, 'k', 0x90, 0x80,        /* [ {"k": []}, {} ] */
        0xde, 0x00, 0x01, 0xa1, 'k', 0xc0,        /* map16 {"k": nil} */
        0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0,       /* array32 [nil] */
        0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 'k', 0xc0, /* map32 {"k": nil} */
    };
    s = ping_fields();
    struct pk k;
    pk_begin(&k);
    pk_fields(&k, &s, 1);
    pk_strn(&k, "future", 6);
    pk_raw(&k, all_types, sizeof all_types);
    assert_int_equal(decode_raw(k.sb.data, k.sb.size, &m, &why), 0);
    assert_int_equal(m.type, CF_WIRE_PING);
    assert_true(m.seq == 7);
    pk_end(&k);
}

static void test_bad_empty_and_size(void **state)
{
    (void)state;
    expect_bad_raw("", 0, WHY_SIZE);
    unsigned char *big = calloc(1, CF_WIRE_MAX_FRAME + 1);
    assert_non_null(big);
    expect_bad_raw(big, CF_WIRE_MAX_FRAME + 1, WHY_SIZE);
    free(big);
}

static void test_bad_truncated_prefixes(void **state)
{
    (void)state;
    struct fset s = msg_fields();
    struct pk k;
    pk_begin(&k);
    pk_fields(&k, &s, 0);
    for (size_t n = 1; n < k.sb.size; n++)
        expect_bad_raw(k.sb.data, n, WHY_PRESCAN);
    struct cf_wire_msg m;
    const char *why;
    assert_int_equal(decode_raw(k.sb.data, k.sb.size, &m, &why), 0);
    pk_end(&k);
}

static long vm_size_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void test_bad_declared_sizes(void **state)
{
    (void)state;
    /* A map32 announcing 2^32-1 entries with nothing behind it. msgpack-c
     * would allocate entries for all of them up front. */
    static const unsigned char map32_huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    expect_bad_raw(map32_huge, sizeof map32_huge, NULL);

    /* 8M entries (256 MB of msgpack_object_kv) announced in a few bytes: the
     * decoder must refuse before anything of that size is reserved. The
     * decoder's zone keeps its memory until the next decode, so the address
     * space would show it. */
    unsigned char map32_big[64] = {0xdf, 0x00, 0x80, 0x00, 0x00};
    for (size_t i = 5; i + 1 < sizeof map32_big; i += 2) {
        map32_big[i] = 0xa1;
        map32_big[i + 1] = 'k';
    }
    long before = vm_size_kb();
    assert_true(before > 0);
    expect_bad_raw(map32_big, sizeof map32_big, NULL);
    long after = vm_size_kb();
    assert_true(after - before < 64 * 1024);

    static const unsigned char array32_big[] = {0xdd, 0x00, 0x80, 0x00, 0x00, 0xc0, 0xc0};
    before = vm_size_kb();
    expect_bad_raw(array32_big, sizeof array32_big, NULL);
    after = vm_size_kb();
    assert_true(after - before < 64 * 1024);
    /* ... and for the right reason. */
    expect_bad_raw(map32_huge, sizeof map32_huge, WHY_PRESCAN);
    expect_bad_raw(map32_big, sizeof map32_big, WHY_PRESCAN);
    expect_bad_raw(array32_big, sizeof array32_big, WHY_PRESCAN);

    /* Inside an otherwise valid message, as the value of an unknown key, so
     * that only the declared size can be what is wrong. */
    static const struct {
        unsigned char b[12];
        size_t n;
    } cases[] = {
        {{0xdd, 0x00, 0x01, 0x00, 0x00, 0xc0}, 6},       /* array32 of 65536, 1 present */
        {{0xdd, 0xff, 0xff, 0xff, 0xff}, 5},             /* array32 of 2^32-1, none */
        {{0xdc, 0x00, 0x03, 0xc0, 0xc0}, 5},             /* array16 of 3, 2 present */
        {{0x93, 0xc0, 0xc0}, 3},                         /* fixarray of 3, 2 present */
        {{0xdb, 0x00, 0x00, 0x01, 0x00, 'a', 'b'}, 7},   /* str32 of 256, 2 present */
        {{0xdb, 0xff, 0xff, 0xff, 0xff}, 5},             /* str32 of 2^32-1 */
        {{0xda, 0x00, 0x05, 'a'}, 4},                    /* str16 of 5 */
        {{0xd9, 0x05, 'a'}, 3},                          /* str8 of 5 */
        {{0xa5, 'a', 'b'}, 3},                           /* fixstr of 5 */
        {{0xc6, 0x00, 0x00, 0x01, 0x00, 0x01}, 6},       /* bin32 of 256 */
        {{0xc6, 0xff, 0xff, 0xff, 0xff}, 5},             /* bin32 of 2^32-1 */
        {{0xc4, 0x02, 0x01}, 3},                         /* bin8 of 2 */
        {{0xc9, 0x00, 0x00, 0x01, 0x00, 0x01, 0x02}, 7}, /* ext32 of 256 */
        {{0xde, 0x00, 0x02, 0xa1, 'k', 0xc0}, 6},        /* map16 of 2, 1 present */
        {{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'k'}, 7},  /* map32 of 2^32-1 */
        {{0xcf, 0x00, 0x01}, 3},                         /* uint64 cut short */
        {{0xcb, 0x00}, 2},                               /* float64 cut short */
        {{0xd8, 0x01, 0x02}, 3},                         /* fixext16 cut short */
        {{0xc1}, 1},                                     /* never used */
    };
    struct fset s = ping_fields();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct pk k;
        pk_begin(&k);
        pk_fields(&k, &s, 1);
        pk_strn(&k, "future", 6);
        pk_raw(&k, cases[c].b, cases[c].n);
        expect_bad_raw(k.sb.data, k.sb.size, WHY_PRESCAN);
        pk_end(&k);
    }
}

static void test_bad_trailing_and_shape(void **state)
{
    (void)state;
    struct fset s = ping_fields();
    struct pk k;
    pk_begin(&k);
    pk_fields(&k, &s, 0);
    pk_raw(&k, "\xc0", 1);
    expect_bad_raw(k.sb.data, k.sb.size, WHY_PRESCAN);
    pk_raw(&k, "garbage", 7);
    expect_bad_raw(k.sb.data, k.sb.size, WHY_PRESCAN);
    pk_end(&k);
    /* Two whole messages in one payload. */
    pk_begin(&k);
    pk_fields(&k, &s, 0);
    pk_fields(&k, &s, 0);
    expect_bad_raw(k.sb.data, k.sb.size, WHY_PRESCAN);
    pk_end(&k);

    /* Well-formed msgpack that is not a map. */
    expect_bad_raw("\x92\x01\x02", 3, WHY_NOT_MAP);  /* [1, 2] */
    expect_bad_raw("\x90", 1, WHY_NOT_MAP);          /* [] */
    expect_bad_raw("\x05", 1, WHY_NOT_MAP);          /* 5 */
    expect_bad_raw("\xd0\x80", 2, WHY_NOT_MAP);      /* -128 */
    expect_bad_raw("\xa3" "abc", 4, WHY_NOT_MAP);    /* "abc" */
    expect_bad_raw("\xc0", 1, WHY_NOT_MAP);          /* nil */
    expect_bad_raw("\xc3", 1, WHY_NOT_MAP);          /* true */
    expect_bad_raw("\xc4\x01\x00", 3, WHY_NOT_MAP);  /* bin */
    /* An array holding a valid message is still not a map. */
    pk_begin(&k);
    msgpack_pack_array(&k.p, 1);
    pk_fields(&k, &s, 0);
    expect_bad_raw(k.sb.data, k.sb.size, WHY_NOT_MAP);
    pk_end(&k);
    /* The empty map is a map without "v". */
    expect_bad_raw("\x80", 1, WHY_NO_V);
}

static void test_bad_nesting(void **state)
{
    (void)state;
    /* Deeply nested arrays as the value of an unknown key. */
    enum { DEPTH = 100000 };
    struct fset s = ping_fields();
    struct pk k;
    pk_begin(&k);
    pk_fields(&k, &s, 1);
    pk_strn(&k, "deep", 4);
    for (int i = 0; i < DEPTH; i++)
        pk_raw(&k, "\x91", 1);
    pk_raw(&k, "\xc0", 1);
    struct cf_wire_msg m;
    const char *why = NULL;
    int rc = decode_raw(k.sb.data, k.sb.size, &m, &why);
    assert_int_equal(rc, -EBADMSG);
    assert_non_null(why);
    pk_end(&k);
}

static void test_bad_keys(void **state)
{
    (void)state;
    struct fset s = ping_fields();
    static const unsigned char *const bad_keys[] = {
        (const unsigned char *)"\x01",         /* int */
        (const unsigned char *)"\xc0",         /* nil */
        (const unsigned char *)"\xc4\x01v",    /* bin "v" */
        (const unsigned char *)"\x90",         /* [] */
    };
    static const size_t key_len[] = {1, 1, 3, 1};
    for (size_t i = 0; i < 4; i++) {
        struct pk k;
        pk_begin(&k);
        pk_fields(&k, &s, 1);
        pk_raw(&k, bad_keys[i], key_len[i]);
        pk_raw(&k, "\x01", 1);
        expect_bad_raw(k.sb.data, k.sb.size, WHY_KEY);
        pk_end(&k);
    }
    /* A non-string key first, before "v". */
    struct pk k;
    pk_begin(&k);
    msgpack_pack_map(&k.p, 4);
    msgpack_pack_int(&k.p, 7);
    msgpack_pack_int(&k.p, 7);
    for (size_t i = 0; i < s.n; i++) {
        pk_strn(&k, s.f[i].key, strlen(s.f[i].key));
        pk_value(&k, &s.f[i]);
    }
    expect_bad_raw(k.sb.data, k.sb.size, WHY_KEY);
    pk_end(&k);
}

static void test_bad_field_types(void **state)
{
    (void)state;
    static const struct {
        struct fset (*tmpl)(void);
        struct field f;
    } cases[] = {
        {msg_fields, FI("room", 5)},
        {msg_fields, FK("room", K_NIL)},
        {msg_fields, FK("room", K_BIN)},
        {msg_fields, FI("from", 5)},
        {msg_fields, FK("from", K_ARRAY0)},
        {msg_fields, FK("text", K_BIN)},
        {msg_fields, FK("text", K_TRUE)},
        {msg_fields, FS("ts", "x")},
        {msg_fields, FK("ts", K_DOUBLE)},
        {msg_fields, FK("ts", K_NIL)},
        {msg_fields, FU("ts", UINT64_MAX)}, /* does not fit an int64 */
        /* times clients cannot be shown (outside years 0000-9999): every
         * gateway would fail to encode each one and log an error */
        {msg_fields, FI("ts", INT64_MAX)},
        {msg_fields, FU("ts", (uint64_t)CF_RFC3339_MAX_MS + 1)},
        {msg_fields, FI("ts", CF_RFC3339_MIN_MS - 1)},
        {msg_fields, FI("ts", INT64_MIN)},
        {msg_fields, FS("v", "1")},
        {msg_fields, FI("v", -1)},
        {msg_fields, FK("v", K_DOUBLE)},
        {msg_fields, FI("t", 5)},
        {msg_fields, FK("t", K_BIN)},
        {hello_fields, FI("shard", -1)},
        {hello_fields, FS("shard", "0")},
        {hello_fields, FU("shard", CF_WIRE_MAX_SHARDS)},
        {hello_fields, FU("shard", UINT64_MAX)},
        {hello_fields, FU("shards", 0)},
        {hello_fields, FI("shards", -2)},
        {hello_fields, FU("shards", CF_WIRE_MAX_SHARDS + 1)},
        {hello_fields, FU("shards", 0x100000002ULL)}, /* 2 when truncated to 32 bits */
        {hello_fields, FI("node", 3)},
        {ping_fields, FI("seq", -1)},
        {ping_fields, FS("seq", "1")},
        {ping_fields, FK("seq", K_DOUBLE)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fset s = cases[i].tmpl();
        fs_set(&s, cases[i].f.key, cases[i].f);
        expect_bad_fields(&s, WHY_TYPE);
    }
}

static void test_bad_version_and_type(void **state)
{
    (void)state;
    struct fset s = msg_fields();
    fs_del(&s, "v");
    expect_bad_fields(&s, WHY_NO_V);

    s = msg_fields();
    fs_set(&s, "v", FU("v", 2));
    expect_bad_fields(&s, WHY_VERSION);
    fs_set(&s, "v", FU("v", 0));
    expect_bad_fields(&s, WHY_VERSION);
    fs_set(&s, "v", FU("v", 257));
    expect_bad_fields(&s, WHY_VERSION);

    s = msg_fields();
    fs_del(&s, "t");
    expect_bad_fields(&s, WHY_NO_T);

    static const char *const unknown[] = {"nope", "", "MSG", "msg ", "ms", "msgs", "unknown"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        s = msg_fields();
        fs_set(&s, "t", FS("t", unknown[i]));
        expect_bad_fields(&s, WHY_UNKNOWN_T);
    }
    /* "t" with an embedded NUL after a real type name. */
    struct pk k;
    pk_begin(&k);
    msgpack_pack_map(&k.p, 3);
    pk_strn(&k, "v", 1);
    msgpack_pack_uint8(&k.p, 1);
    pk_strn(&k, "t", 1);
    pk_strn(&k, "ping\0", 5);
    pk_strn(&k, "seq", 3);
    msgpack_pack_uint8(&k.p, 1);
    expect_bad_raw(k.sb.data, k.sb.size, WHY_UNKNOWN_T);
    pk_end(&k);
}

static void test_bad_missing_fields(void **state)
{
    (void)state;
    static const char *const msg_required[] = {"room", "from", "text", "ts"};
    for (size_t i = 0; i < 4; i++) {
        struct fset s = msg_fields();
        fs_del(&s, msg_required[i]);
        expect_bad_fields(&s, WHY_MISSING);
    }
    static const char *const hello_required[] = {"shard", "shards", "node"};
    for (size_t i = 0; i < 3; i++) {
        struct fset s = hello_fields();
        fs_del(&s, hello_required[i]);
        expect_bad_fields(&s, WHY_MISSING);
        fs_set(&s, "t", FS("t", "welcome"));
        expect_bad_fields(&s, WHY_MISSING);
    }
    struct fset s = join_fields();
    fs_del(&s, "room");
    expect_bad_fields(&s, WHY_MISSING);
    fs_set(&s, "t", FS("t", "leave"));
    expect_bad_fields(&s, WHY_MISSING);
    s = ping_fields();
    fs_del(&s, "seq");
    expect_bad_fields(&s, WHY_MISSING);
    fs_set(&s, "t", FS("t", "pong"));
    expect_bad_fields(&s, WHY_MISSING);
    /* Another type's field does not stand in for a missing one. */
    s = join_fields();
    fs_set(&s, "room", FS("node", "general"));
    expect_bad_fields(&s, WHY_MISSING);
}

static void test_bad_names_and_text(void **state)
{
    (void)state;
    char room65[66];
    memset(room65, 'a', 65);
    room65[65] = '\0';
    static const char *bad_rooms[] = {"a b", "", "caf\xc3\xa9", "a/b", "room!", NULL};
    bad_rooms[5] = room65;
    for (size_t i = 0; i < 6; i++) {
        struct fset s = msg_fields();
        fs_set(&s, "room", FS("room", bad_rooms[i]));
        expect_bad_fields(&s, WHY_ROOM);
        s = join_fields();
        fs_set(&s, "room", FS("room", bad_rooms[i]));
        expect_bad_fields(&s, WHY_ROOM);
    }

    char from33[80];
    for (int i = 0; i < 33; i++)
        memcpy(from33 + 2 * i, "\xc3\xa9", 2);
    from33[66] = '\0';
    static const char *bad_senders[] = {"",           "a\x01" "b", "tab\there", " alice",
                                        "alice ",     "x\xe2\x80\xaey", "bad\xff", NULL};
    bad_senders[7] = from33;
    for (size_t i = 0; i < 8; i++) {
        struct fset s = msg_fields();
        fs_set(&s, "from", FS("from", bad_senders[i]));
        expect_bad_fields(&s, WHY_FROM);
    }

    static const char *bad_texts[] = {"\xff", "ok then \xc3", "\xed\xa0\x80", "\xc0\x80"};
    for (size_t i = 0; i < 4; i++) {
        struct fset s = msg_fields();
        fs_set(&s, "text", FS("text", bad_texts[i]));
        expect_bad_fields(&s, WHY_TEXT);
    }
    /* Text one byte over the limit. */
    char *big = malloc(CF_WIRE_MAX_TEXT + 2);
    assert_non_null(big);
    memset(big, 't', CF_WIRE_MAX_TEXT + 1);
    big[CF_WIRE_MAX_TEXT + 1] = '\0';
    struct fset s = msg_fields();
    fs_set(&s, "text", FS("text", big));
    expect_bad_fields(&s, WHY_TEXT);
    big[CF_WIRE_MAX_TEXT] = '\0';
    expect_ok_fields(&s, CF_WIRE_MSG);
    free(big);

    /* Node names. */
    char node65[66];
    memset(node65, 'n', 65);
    node65[65] = '\0';
    s = hello_fields();
    fs_set(&s, "node", FS("node", node65));
    expect_bad_fields(&s, WHY_NODE);
    node65[64] = '\0';
    expect_ok_fields(&s, CF_WIRE_HELLO);
    fs_set(&s, "node", FS("node", "gw\xff"));
    expect_bad_fields(&s, WHY_NODE);
}

static void test_bad_shard_range(void **state)
{
    (void)state;
    struct fset s = hello_fields();
    fs_set(&s, "shard", FU("shard", 2));
    expect_bad_fields(&s, WHY_SHARD);
    fs_set(&s, "shard", FU("shard", 3));
    expect_bad_fields(&s, WHY_SHARD);
    fs_set(&s, "t", FS("t", "welcome"));
    expect_bad_fields(&s, WHY_SHARD);
    fs_set(&s, "shard", FU("shard", 1));
    expect_ok_fields(&s, CF_WIRE_WELCOME);
    fs_set(&s, "shards", FU("shards", 1));
    expect_bad_fields(&s, WHY_SHARD);
    fs_set(&s, "shard", FU("shard", 0));
    expect_ok_fields(&s, CF_WIRE_WELCOME);
}

static void test_bad_duplicate_keys(void **state)
{
    (void)state;
    static const char *const keys[] = {"v", "t", "room", "from", "text", "ts"};
    for (size_t i = 0; i < 6; i++) {
        struct fset s = msg_fields();
        size_t n = s.n;
        for (size_t j = 0; j < n; j++)
            if (strcmp(s.f[j].key, keys[i]) == 0)
                fs_add(&s, s.f[j]);
        assert_int_equal(s.n, n + 1);
        expect_bad_fields(&s, WHY_DUP);
    }
    /* A duplicate with a different (valid) value. */
    struct fset s = msg_fields();
    fs_add(&s, FS("room", "other"));
    expect_bad_fields(&s, WHY_DUP);
    s = hello_fields();
    fs_add(&s, FU("shard", 0));
    expect_bad_fields(&s, WHY_DUP);
    s = ping_fields();
    fs_add(&s, FU("seq", 8));
    expect_bad_fields(&s, WHY_DUP);
}

static void test_decoder_reuse(void **state)
{
    (void)state;
    /* A failed decode does not poison the next one, and many decodes reuse
     * the decoder's memory. */
    struct cf_wire_msg m;
    const char *why;
    static const unsigned char junk[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    struct fset s = msg_fields();
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(decode_raw(junk, sizeof junk, &m, &why), -EBADMSG);
        why = NULL;
        assert_int_equal(decode_fields(&s, &m, &why), 0);
        assert_str_is(m.text, "hello");
    }
    cf_wire_decoder_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_templates_are_valid),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_bad_empty_and_size),
        cmocka_unit_test(test_bad_truncated_prefixes),
        cmocka_unit_test(test_bad_declared_sizes),
        cmocka_unit_test(test_bad_trailing_and_shape),
        cmocka_unit_test(test_bad_nesting),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_bad_field_types),
        cmocka_unit_test(test_bad_version_and_type),
        cmocka_unit_test(test_bad_missing_fields),
        cmocka_unit_test(test_bad_names_and_text),
        cmocka_unit_test(test_bad_shard_range),
        cmocka_unit_test(test_bad_duplicate_keys),
        cmocka_unit_test(test_decoder_reuse),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
