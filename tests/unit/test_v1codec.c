/* Unit tests for gateway/v1codec's requests: protocol v1 requests
 * (validation, error codes, defaults) in both encodings, confab.v1 (JSON
 * text) and confab.msgpack.v1 (frames built here with msgpack-c). The
 * events are test_v1codec_events'. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "bytes.h"
#include "jalloc_check.h"
#include "mpjson.h"
#include "v1codec.h"
#include "wire.h"

static const enum sess_proto protos[] = {SESS_V1_JSON, SESS_V1_MSGPACK};

static const char *pname(enum sess_proto p)
{
    return p == SESS_V1_MSGPACK ? "msgpack" : "json";
}

/* ---- building msgpack frames with msgpack-c ------------------------------- */

static void pack_json(msgpack_packer *pk, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            msgpack_pack_str(pk, strlen(k));
            msgpack_pack_str_body(pk, k, strlen(k));
            pack_json(pk, x);
        }
        break;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(v));
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) pack_json(pk, x);
        break;
    }
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(v)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(v)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    default: msgpack_pack_nil(pk); break;
    }
}

/* The JSON text as it goes on the wire for p (the msgpack frame holds the
 * same tree; \u0000 in strings becomes a NUL byte there). */
struct frame {
    msgpack_sbuffer sb;
    const void *p;
    size_t len;
};

static void frame_of(enum sess_proto p, const char *json, struct frame *f)
{
    msgpack_sbuffer_init(&f->sb);
    if (p == SESS_V1_JSON) {
        f->p = json;
        f->len = strlen(json);
        return;
    }
    json_error_t err;
    json_t *v = json_loads(json, JSON_ALLOW_NUL, &err);
    if (!v)
        fail_msg("bad test JSON %s: %s", json, err.text);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &f->sb, msgpack_sbuffer_write);
    pack_json(&pk, v);
    json_decref(v);
    f->p = f->sb.data;
    f->len = f->sb.size;
}

static void assert_cf_str(struct cf_str got, const char *want)
{
    if (!want)
        want = "";
    if (got.len != strlen(want) || (got.len && memcmp(got.p, want, got.len) != 0))
        fail_msg("got \"%.*s\", want \"%s\"", (int)got.len, got.p ? got.p : "", want);
}

/* ---- requests ------------------------------------------------------------ */

/* Parses json (converted for p) and expects success. */
static void parse_ok(enum sess_proto p, const char *json, struct v1_req *r)
{
    struct frame f;
    frame_of(p, json, &f);
    struct v1_error e;
    void *edoc = (void *)1;
    int rc = v1_parse(p, f.p, f.len, r, &e, &edoc);
    msgpack_sbuffer_destroy(&f.sb);
    if (rc != 0)
        fail_msg("%s: %s refused: %s (%s)", pname(p), json, e.code, e.message);
    assert_null(edoc);
    assert_non_null(r->doc);
}

static void check_error(enum sess_proto p, const void *in, size_t len, const char *what,
                        const char *code, const char *ref, const char *room)
{
    struct v1_req r;
    struct v1_error e;
    void *edoc = NULL;
    if (v1_parse(p, in, len, &r, &e, &edoc) != -1)
        fail_msg("%s: %s accepted", pname(p), what);
    assert_null(r.doc);
    assert_non_null(e.code);
    if (strcmp(e.code, code) != 0)
        fail_msg("%s: %s: code %s, want %s", pname(p), what, e.code, code);
    assert_non_null(e.message);
    assert_true(strlen(e.message) > 0);
    assert_cf_str(e.ref, ref);
    assert_cf_str(e.room, room);
    v1_error_free(edoc);
}

/* Expects json to be refused the same way in both encodings. */
static void refused(const char *json, const char *code, const char *ref, const char *room)
{
    for (size_t i = 0; i < 2; i++) {
        struct frame f;
        frame_of(protos[i], json, &f);
        check_error(protos[i], f.p, f.len, json, code, ref, room);
        msgpack_sbuffer_destroy(&f.sb);
    }
}

static void test_parse_join(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        enum sess_proto p = protos[i];
        struct v1_req r;
        parse_ok(p, "{\"type\":\"join\",\"payload\":{\"room\":\"lobby\"}}", &r);
        assert_int_equal(r.type, V1_JOIN);
        assert_cf_str(r.room, "lobby");
        assert_int_equal(r.limit, V1_DEFAULT_LIMIT);
        assert_int_equal(r.limit, 50);
        assert_false(r.has_since);
        assert_false(r.has_epoch);
        assert_false(r.has_id);
        v1_req_free(&r);
        assert_null(r.doc);

        parse_ok(p, "{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"since\":41,"
                    "\"epoch\":\"5f0c2a9e1b7d4c3a\",\"limit\":20,\"id\":\"j-1\"}}",
                 &r);
        assert_true(r.has_since);
        assert_true(r.since == 41);
        assert_true(r.has_epoch);
        assert_cf_str(r.epoch, "5f0c2a9e1b7d4c3a");
        assert_int_equal(r.limit, 20);
        assert_true(r.has_id);
        assert_cf_str(r.id, "j-1");
        v1_req_free(&r);

        /* Limits: 0 is none, over 100 is capped; null means absent. */
        static const struct {
            const char *limit;
            uint32_t want;
        } limits[] = {{"0", 0},     {"1", 1},     {"99", 99},          {"100", 100},
                      {"101", 100}, {"1000000000000", 100}, {"null", 50}};
        for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
            char json[160];
            snprintf(json, sizeof json,
                     "{\"type\":\"join\",\"payload\":{\"room\":\"r\",\"limit\":%s,\"since\":null,"
                     "\"epoch\":null,\"id\":null}}",
                     limits[k].limit);
            parse_ok(p, json, &r);
            assert_int_equal(r.limit, limits[k].want);
            assert_false(r.has_since);
            assert_false(r.has_epoch);
            assert_false(r.has_id);
            v1_req_free(&r);
        }
        /* since 0 is a value; unknown keys are ignored. */
        parse_ok(p, "{\"type\":\"join\",\"payload\":{\"room\":\"r\",\"since\":0,\"x\":[1,{}]},"
                    "\"extra\":true}",
                 &r);
        assert_true(r.has_since);
        assert_true(r.since == 0);
        v1_req_free(&r);
    }
}

static void test_parse_other_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        enum sess_proto p = protos[i];
        struct v1_req r;
        parse_ok(p, "{\"type\":\"leave\",\"payload\":{\"room\":\"lobby\"}}", &r);
        assert_int_equal(r.type, V1_LEAVE);
        assert_cf_str(r.room, "lobby");
        v1_req_free(&r);

        parse_ok(p, "{\"payload\":{\"room\":\"lobby\",\"message\":\" h\\u00e9 \\ud83d\\ude00\","
                    "\"id\":\"c-1701-7\"},\"type\":\"send\"}",
                 &r);
        assert_int_equal(r.type, V1_SEND);
        assert_cf_str(r.room, "lobby");
        assert_cf_str(r.message, " h\xc3\xa9 \xf0\x9f\x98\x80");
        assert_true(r.has_id);
        assert_cf_str(r.id, "c-1701-7");
        v1_req_free(&r);

        parse_ok(p, "{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"message\":\"hi\"}}", &r);
        assert_false(r.has_id);
        v1_req_free(&r);

        parse_ok(p, "{\"type\":\"history\",\"payload\":{\"room\":\"lobby\",\"before\":42,"
                    "\"limit\":2}}",
                 &r);
        assert_int_equal(r.type, V1_HISTORY);
        assert_true(r.has_before);
        assert_true(r.before == 42);
        assert_int_equal(r.limit, 2);
        v1_req_free(&r);
        parse_ok(p, "{\"type\":\"history\",\"payload\":{\"room\":\"lobby\"}}", &r);
        assert_false(r.has_before);
        assert_int_equal(r.limit, 50);
        v1_req_free(&r);
        parse_ok(p, "{\"type\":\"history\",\"payload\":{\"room\":\"lobby\",\"limit\":500}}", &r);
        assert_int_equal(r.limit, V1_MAX_LIMIT);
        v1_req_free(&r);

        parse_ok(p, "{\"type\":\"typing\",\"payload\":{\"room\":\"lobby\"}}", &r);
        assert_int_equal(r.type, V1_TYPING);
        assert_cf_str(r.room, "lobby");
        v1_req_free(&r);

        parse_ok(p, "{\"type\":\"change_room\",\"payload\":{\"name\":\"a.b:c-d_e\"}}", &r);
        assert_int_equal(r.type, V1_CHANGE_ROOM);
        assert_cf_str(r.room, "a.b:c-d_e");
        v1_req_free(&r);

        /* ping: no room, an optional id, other keys ignored */
        parse_ok(p, "{\"type\":\"ping\",\"payload\":{\"id\":\"ping-3\",\"room\":7}}", &r);
        assert_int_equal(r.type, V1_PING);
        assert_true(r.has_id);
        assert_cf_str(r.id, "ping-3");
        v1_req_free(&r);
        parse_ok(p, "{\"type\":\"ping\",\"payload\":{}}", &r);
        assert_int_equal(r.type, V1_PING);
        assert_false(r.has_id);
        v1_req_free(&r);

        /* ids are 1-64 characters, not bytes. */
        char json[512];
        char id[64 * 4 + 1] = "";
        for (int k = 0; k < 64; k++)
            strcat(id, "\xf0\x9f\x98\x80");
        snprintf(json, sizeof json, "{\"type\":\"typing\",\"payload\":{\"room\":\"r\",\"id\":\"%s\"}}",
                 id);
        parse_ok(p, json, &r);
        assert_cf_str(r.id, id);
        v1_req_free(&r);
    }
}

static void test_error_bad_json(void **state)
{
    (void)state;
    static const char *not_json[] = {"", "{", "hello", "{\"type\":\"join\",}", "[] x",
                                     "{\"type\":\"join\",\"payload\":{\"room\":\"a\"}} {}"};
    for (size_t i = 0; i < sizeof not_json / sizeof not_json[0]; i++)
        check_error(SESS_V1_JSON, not_json[i], strlen(not_json[i]), not_json[i], "bad_json",
                    NULL, NULL);
    /* Duplicate keys are refused in JSON. */
    const char *dup = "{\"type\":\"join\",\"type\":\"leave\",\"payload\":{\"room\":\"a\"}}";
    check_error(SESS_V1_JSON, dup, strlen(dup), dup, "bad_json", NULL, NULL);
    /* \u0000 is valid JSON: the field's check refuses it, naming the request. */
    const char *nul =
        "{\"type\":\"send\",\"payload\":{\"room\":\"a\",\"id\":\"n-1\",\"message\":\"a\\u0000\"}}";
    check_error(SESS_V1_JSON, nul, strlen(nul), nul, "bad_request", "n-1", "a");
    const char *nulroom = "{\"type\":\"join\",\"payload\":{\"room\":\"a\\u0000b\",\"id\":\"n-2\"}}";
    check_error(SESS_V1_JSON, nulroom, strlen(nulroom), nulroom, "bad_room", "n-2", NULL);
    /* ids and epochs never carry control characters */
    const char *ctl = "{\"type\":\"send\",\"payload\":{\"room\":\"a\",\"id\":\"x\\ny\",\"message\":\"m\"}}";
    check_error(SESS_V1_JSON, ctl, strlen(ctl), ctl, "bad_id", NULL, NULL);
    const char *ep = "{\"type\":\"join\",\"payload\":{\"room\":\"a\",\"id\":\"j\",\"epoch\":\"e\\u001b\"}}";
    check_error(SESS_V1_JSON, ep, strlen(ep), ep, "bad_request", "j", "a");
    /* Valid JSON jansson cannot hold (a lone surrogate, a 20-digit integer) is
     * still answered with the request's id and room. */
    static const char *odd[] = {
        "{\"type\":\"send\",\"payload\":{\"room\":\"a\",\"id\":\"s-1\",\"message\":\"x\\ud800\"}}",
        "{\"type\":\"send\",\"payload\":{\"room\":\"a\",\"id\":\"s-1\",\"message\":\"\\udc00y\"}}",
        "{\"type\":\"join\",\"payload\":{\"room\":\"a\",\"id\":\"s-1\",\"since\":99999999999999999999}}",
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        check_error(SESS_V1_JSON, odd[i], strlen(odd[i]), odd[i], "bad_request", "s-1", "a");
    /* An integer of 400 digits (over a real's range too), and an id with an
     * escaped surrogate pair (an emoji) beside a lone one: still answered
     * with the id as it was sent. */
    char big[600];
    int n = snprintf(big, sizeof big,
                     "{\"type\":\"join\",\"payload\":{\"room\":\"a\",\"id\":\"s-2\",\"since\":");
    memset(big + n, '9', 400);
    snprintf(big + n + 400, sizeof big - (size_t)n - 400, "}}");
    check_error(SESS_V1_JSON, big, strlen(big), "a 400-digit since", "bad_request", "s-2", "a");
    const char *emoji = "{\"type\":\"send\",\"payload\":{\"room\":\"a\",\"id\":\"e\\ud83d\\ude00\","
                        "\"message\":\"\\ud800\"}}";
    check_error(SESS_V1_JSON, emoji, strlen(emoji), emoji, "bad_request", "e\xf0\x9f\x98\x80", "a");

    /* Well-formed, but not {"type": string, "payload": object}. */
    static const char *shapes[] = {
        "[]", "\"join\"", "42", "null",
        "{}",
        "{\"type\":\"join\"}",
        "{\"payload\":{\"room\":\"a\"}}",
        "{\"type\":1,\"payload\":{\"room\":\"a\"}}",
        "{\"type\":null,\"payload\":{\"room\":\"a\"}}",
        "{\"type\":\"join\",\"payload\":[\"room\",\"a\"]}",
        "{\"type\":\"join\",\"payload\":\"room=a\"}",
        "{\"type\":\"join\",\"payload\":null,\"id\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        struct frame f;
        for (size_t k = 0; k < 2; k++) {
            msgpack_sbuffer_init(&f.sb);
            if (protos[k] == SESS_V1_JSON) {
                f.p = shapes[i];
                f.len = strlen(shapes[i]);
            } else {
                json_t *v = json_loads(shapes[i], JSON_DECODE_ANY, NULL);
                assert_non_null(v);
                msgpack_packer pk;
                msgpack_packer_init(&pk, &f.sb, msgpack_sbuffer_write);
                pack_json(&pk, v);
                json_decref(v);
                f.p = f.sb.data;
                f.len = f.sb.size;
            }
            check_error(protos[k], f.p, f.len, shapes[i], "bad_json", NULL, NULL);
            msgpack_sbuffer_destroy(&f.sb);
        }
    }
    /* msgpack that is malformed, truncated, or holds what JSON cannot. */
#define MP(lit) {lit, sizeof(lit) - 1}
    static const struct {
        const char *b;
        size_t n;
    } bad_mp[] = {
        MP(""),
        MP("\xc1"),
        MP("\x82\xa4type\xa4join"), /* one entry short */
        MP("\x82\xa4type\xa4join\xa7payload\x81\xa4room\xa1"
           "a\xc0"),                                               /* trailing */
        MP("\x82\xa4type\xa4join\xa7payload\x81\xa4room\xa1\xff"), /* bad UTF-8 */
        MP("\x82\xa4type\xa4join\x01\xa1"
           "a"), /* no payload */
        MP("\xdf\xff\xff\xff\xff"),
    };
#undef MP
    for (size_t i = 0; i < sizeof bad_mp / sizeof bad_mp[0]; i++)
        check_error(SESS_V1_MSGPACK, bad_mp[i].b, bad_mp[i].n, "bad msgpack", "bad_json", NULL,
                    NULL);
    /* A JSON text on the msgpack protocol is not msgpack. */
    const char *text = "{\"type\":\"join\",\"payload\":{\"room\":\"a\"}}";
    check_error(SESS_V1_MSGPACK, text, strlen(text), text, "bad_json", NULL, NULL);
}

static void test_error_unknown_type(void **state)
{
    (void)state;
    refused("{\"type\":\"nope\",\"payload\":{}}", "unknown_type", NULL, NULL);
    refused("{\"type\":\"send_message\",\"payload\":{\"message\":\"hi\",\"id\":\"r1\"}}",
            "unknown_type", "r1", NULL);
    refused("{\"type\":\"JOIN\",\"payload\":{\"room\":\"lobby\",\"id\":\"r2\"}}", "unknown_type",
            "r2", NULL);
    refused("{\"type\":\"\",\"payload\":{\"id\":5}}", "unknown_type", NULL, NULL);
    refused("{\"type\":\"x\",\"payload\":{\"id\":\"\"}}", "unknown_type", NULL, NULL);
}

static void test_error_bad_request(void **state)
{
    (void)state;
    static const struct {
        const char *json, *ref, *room;
    } cases[] = {
        {"{\"type\":\"join\",\"payload\":{}}", NULL, NULL},
        {"{\"type\":\"join\",\"payload\":{\"room\":5,\"id\":\"a\"}}", "a", NULL},
        {"{\"type\":\"leave\",\"payload\":{\"room\":null}}", NULL, NULL},
        {"{\"type\":\"typing\",\"payload\":{\"room\":[\"lobby\"]}}", NULL, NULL},
        {"{\"type\":\"change_room\",\"payload\":{\"room\":\"lobby\",\"id\":\"c\"}}", "c", NULL},
        {"{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"limit\":-1,\"id\":\"i\"}}", "i",
         "lobby"},
        {"{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"limit\":\"5\"}}", NULL, "lobby"},
        {"{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"limit\":1.5}}", NULL, "lobby"},
        {"{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"since\":-1}}", NULL, "lobby"},
        {"{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"since\":\"41\"}}", NULL, "lobby"},
        {"{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"epoch\":5}}", NULL, "lobby"},
        {"{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"epoch\":\"\"}}", NULL, "lobby"},
        {"{\"type\":\"history\",\"payload\":{\"room\":\"lobby\",\"before\":true}}", NULL, "lobby"},
        {"{\"type\":\"history\",\"payload\":{\"room\":\"lobby\",\"limit\":-5}}", NULL, "lobby"},
        {"{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"id\":\"s\"}}", "s", "lobby"},
        {"{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"message\":7}}", NULL, "lobby"},
        {"{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"message\":null}}", NULL, "lobby"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        refused(cases[i].json, "bad_request", cases[i].ref, cases[i].room);
    char json[256];
    char epoch[66];
    memset(epoch, 'e', 65);
    epoch[65] = '\0';
    snprintf(json, sizeof json, "{\"type\":\"join\",\"payload\":{\"room\":\"r\",\"epoch\":\"%s\"}}",
             epoch);
    refused(json, "bad_request", NULL, "r");
    epoch[64] = '\0'; /* 64 is fine */
    snprintf(json, sizeof json, "{\"type\":\"join\",\"payload\":{\"room\":\"r\",\"epoch\":\"%s\"}}",
             epoch);
    struct v1_req r;
    parse_ok(SESS_V1_MSGPACK, json, &r);
    v1_req_free(&r);

    /* A NUL inside the message can only come in msgpack. */
    struct frame f;
    frame_of(SESS_V1_MSGPACK,
             "{\"type\":\"send\",\"payload\":{\"room\":\"r\",\"message\":\"a\\u0000b\",\"id\":\"n\"}}",
             &f);
    check_error(SESS_V1_MSGPACK, f.p, f.len, "NUL message", "bad_request", "n", "r");
    msgpack_sbuffer_destroy(&f.sb);
    /* An integer msgpack holds but jansson does not: refused, naming the
     * request's id and room, as a JSON client's 20-digit integer is. */
    static const char big[] = "\x82\xa4type\xa4join\xa7payload\x83\xa4room\xa1r\xa2id\xa1j"
                              "\xa5since\xcf\xff\xff\xff\xff\xff\xff\xff\xff";
    check_error(SESS_V1_MSGPACK, big, sizeof big - 1, "since 2^64-1", "bad_request", "j", "r");
    /* anything else wrong with it besides: not a frame at all */
    static const char bigbad[] = "\x82\xa4type\xa4join\xa7payload\x83\xa4room\xa1r\xa2id\xa1\xff"
                                 "\xa5since\xcf\xff\xff\xff\xff\xff\xff\xff\xff";
    check_error(SESS_V1_MSGPACK, bigbad, sizeof bigbad - 1, "since 2^64-1, bad UTF-8 id",
                "bad_json", NULL, NULL);
}

/* What JSON cannot hold (bin, ext, keys that are not strings) is ignored under
 * an unknown key, as a JSON client's unknown keys are, and refused in a field
 * as a value of the wrong type: not the whole frame. */
static void test_msgpack_beyond_json(void **state)
{
    (void)state;
    /* {"type":"send","payload":{"room":"r","message":"hi","id":"q",<extra>}} */
    static const char head[] = "\x82\xa4type\xa4send\xa7payload\x84\xa4room\xa1r"
                               "\xa7message\xa2hi\xa2id\xa1q";
    static const struct {
        const char *b;
        size_t n;
    } extras[] = {
#define MP(lit) {lit, sizeof(lit) - 1}
        MP("\xa1x\xc4\x02\x00\x01"),          /* "x": bin */
        MP("\xa1x\xd6\xff\0\0\0\0"),          /* "x": a timestamp ext */
        MP("\xa1x\x92\xc4\x00\xc7\x01\x05z"), /* "x": [bin, ext] */
        MP("\x01\xa1y"),                      /* 1: "y" */
        MP("\xc4\x01k\x01"),                  /* bin "k": 1 */
        MP("\xa3"
           "a\0b\x01"),                      /* "a\0b": 1 */
        MP("\xa1x\x81\x07\x08"),             /* "x": {7: 8} */
        MP("\xa1x\xcb\x7f\xf8\0\0\0\0\0\0"), /* "x": NaN */
#undef MP
    };
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        unsigned char buf[64];
        memcpy(buf, head, sizeof head - 1);
        memcpy(buf + sizeof head - 1, extras[i].b, extras[i].n);
        struct v1_req r;
        struct v1_error e;
        void *edoc = (void *)1;
        if (v1_parse(SESS_V1_MSGPACK, buf, sizeof head - 1 + extras[i].n, &r, &e, &edoc) != 0)
            fail_msg("extra %zu refused: %s (%s)", i, e.code, e.message);
        assert_int_equal(r.type, V1_SEND);
        assert_cf_str(r.message, "hi");
        assert_cf_str(r.id, "q");
        v1_req_free(&r);
    }
    /* A key of 300 bytes and a value 30 containers deep: JSON takes both. */
    unsigned char big[600];
    size_t n;
    memcpy(big, head, sizeof head - 1);
    n = sizeof head - 1;
    big[n++] = 0xda; /* str16 */
    big[n++] = 300 >> 8;
    big[n++] = 300 & 0xff;
    memset(big + n, 'k', 300);
    n += 300;
    for (int d = 0; d < 30; d++)
        big[n++] = 0x91;
    big[n++] = 0x01;
    struct v1_req r;
    struct v1_error e;
    void *edoc = (void *)1;
    if (v1_parse(SESS_V1_MSGPACK, big, n, &r, &e, &edoc) != 0)
        fail_msg("long key, deep value refused: %s (%s)", e.code, e.message);
    assert_cf_str(r.message, "hi");
    v1_req_free(&r);

    /* In a field: refused as that field's wrong type, naming the request. */
    static const char bin_message[] = "\x82\xa4type\xa4send\xa7payload\x83\xa4room\xa1r"
                                      "\xa7message\xc4\x02hi\xa2id\xa1q";
    check_error(SESS_V1_MSGPACK, bin_message, sizeof bin_message - 1, "bin message", "bad_request",
                "q", "r");
    static const char bin_room[] = "\x82\xa4type\xa4join\xa7payload\x82\xa4room\xc4\x01r"
                                   "\xa2id\xa1q";
    check_error(SESS_V1_MSGPACK, bin_room, sizeof bin_room - 1, "bin room", "bad_request", "q",
                NULL);
    static const char bin_id[] = "\x82\xa4type\xa4join\xa7payload\x82\xa4room\xa1r"
                                 "\xa2id\xc4\x01q";
    check_error(SESS_V1_MSGPACK, bin_id, sizeof bin_id - 1, "bin id", "bad_id", NULL, NULL);
    static const char int_key_room[] = "\x82\xa4type\xa4join\xa7payload\x81\x01\xa1r";
    check_error(SESS_V1_MSGPACK, int_key_room, sizeof int_key_room - 1, "1: room", "bad_request",
                NULL, NULL);
    static const char nan_since[] = "\x82\xa4type\xa4join\xa7payload\x83\xa4room\xa1r"
                                    "\xa2id\xa1q\xa5since\xcb\x7f\xf0\0\0\0\0\0\0";
    check_error(SESS_V1_MSGPACK, nan_since, sizeof nan_since - 1, "since +inf", "bad_request", "q",
                "r");
    static const char bin_type[] = "\x82\xa4type\xc4\x04join\xa7payload\x80";
    check_error(SESS_V1_MSGPACK, bin_type, sizeof bin_type - 1, "bin type", "bad_json", NULL, NULL);
}

static void test_error_bad_room_id_empty(void **state)
{
    (void)state;
    char room65[66];
    memset(room65, 'r', 65);
    room65[65] = '\0';
    const char *bad_rooms[] = {"", "bad room", "lobby/1", "caf\\u00e9", "a\\nb", room65};
    for (size_t i = 0; i < sizeof bad_rooms / sizeof bad_rooms[0]; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"type\":\"join\",\"payload\":{\"room\":\"%s\",\"id\":\"j\"}}",
                 bad_rooms[i]);
        refused(json, "bad_room", "j", NULL);
        snprintf(json, sizeof json, "{\"type\":\"change_room\",\"payload\":{\"name\":\"%s\"}}",
                 bad_rooms[i]);
        refused(json, "bad_room", NULL, NULL);
    }
    refused("{\"type\":\"send\",\"payload\":{\"room\":\"x y\",\"message\":\"hi\"}}", "bad_room",
            NULL, NULL);

    char id65[66];
    memset(id65, 'i', 65);
    id65[65] = '\0';
    const char *bad_ids[] = {"5", "\"\"", "true", "[\"a\"]", "{}", id65};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        char json[256];
        if (i == 5)
            snprintf(json, sizeof json,
                     "{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"message\":\"hi\","
                     "\"id\":\"%s\"}}",
                     bad_ids[i]);
        else
            snprintf(json, sizeof json,
                     "{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"message\":\"hi\","
                     "\"id\":%s}}",
                     bad_ids[i]);
        refused(json, "bad_id", NULL, NULL); /* checked first: neither is echoed */
    }
    /* A NUL inside an id can only come in msgpack. */
    struct frame f;
    frame_of(SESS_V1_MSGPACK, "{\"type\":\"leave\",\"payload\":{\"room\":\"r\",\"id\":\"a\\u0000\"}}",
             &f);
    check_error(SESS_V1_MSGPACK, f.p, f.len, "NUL id", "bad_id", NULL, NULL);
    msgpack_sbuffer_destroy(&f.sb);

    static const char *empties[] = {"", " ", " \\t\\r\\n ", "\\u00a0\\u3000\\u2003"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"message\":\"%s\","
                 "\"id\":\"c-1\"}}",
                 empties[i]);
        refused(json, "empty_message", "c-1", "lobby");
    }
}

int main(void)
{
    jalloc_install(); /* as the gateway parses frames */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_join),
        cmocka_unit_test(test_parse_other_types),
        cmocka_unit_test(test_error_bad_json),
        cmocka_unit_test(test_error_unknown_type),
        cmocka_unit_test(test_error_bad_request),
        cmocka_unit_test(test_msgpack_beyond_json),
        cmocka_unit_test(test_error_bad_room_id_empty),
    };
    return jalloc_check_all_freed(cmocka_run_group_tests(tests, NULL, NULL));
}
