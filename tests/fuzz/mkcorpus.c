/* mkcorpus: writes the seed corpus of every harness, from the project's own
 * encoders so that the valid seeds stay valid when a format changes.
 *
 *   fuzz_mkcorpus tests/fuzz/corpus
 *
 * Each seed is a small valid input or an edge case next to one; libFuzzer
 * mutates from there. The output is committed (scripts/fuzz.sh copies it to a
 * scratch directory before a run, so runs never write into the tree). Files
 * named regress-* beside the seeds are inputs that once failed a harness; this
 * program leaves them alone. */
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth.h"
#include "bytes.h"
#include "mpjson.h"
#include "wire.h"
#include "wsframe.h"

#define NOW 1800000000
#define KEY "fuzz-secret-0123456789abcdef0123456789"

static const char *root;

static void die(const char *what)
{
    fprintf(stderr, "mkcorpus: %s\n", what);
    exit(1);
}

static void put(const char *target, const char *name, const void *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, target);
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        die("cannot create a corpus directory");
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0)
        die("cannot write a seed");
}

static void put_str(const char *target, const char *name, const char *s)
{
    put(target, name, s, strlen(s));
}

static struct cf_str S(const char *s) {
    return (struct cf_str){s, (uint32_t)strlen(s)};
}

/* ---- client frames: JSON text and its msgpack twin ----------------------- */

static const struct {
    const char *name, *json;
} client[] = {
    {"join", "{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"id\":\"r1\"}}"},
    {"join_since", "{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"since\":41,"
                   "\"epoch\":\"1700000000000-1\",\"limit\":20}}"},
    {"leave", "{\"type\":\"leave\",\"payload\":{\"room\":\"a.b:c-d_e\"}}"},
    {"send", "{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"id\":\"c-17\","
             "\"message\":\"hello \\u00e9\\ud83d\\ude00\"}}"},
    {"history", "{\"type\":\"history\",\"payload\":{\"room\":\"lobby\",\"before\":100,"
                "\"limit\":1000}}"},
    {"typing", "{\"type\":\"typing\",\"payload\":{\"room\":\"lobby\"}}"},
    {"change_room", "{\"type\":\"change_room\",\"payload\":{\"name\":\"general\"}}"},
    {"ping", "{\"type\":\"ping\",\"payload\":{\"id\":\"ping-1\"}}"},
    {"legacy_send", "{\"type\":\"send_message\",\"payload\":{\"message\":\"hi\",\"from\":\"x\"}}"},
    {"legacy_change", "{\"type\":\"change_room\",\"payload\":{\"name\":\"lobby\"}}"},
    {"bad_room", "{\"type\":\"join\",\"payload\":{\"room\":\"no spaces\",\"id\":\"r2\"}}"},
    {"empty_msg", "{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"message\":\" \\t\\n\"}}"},
    {"nul_msg", "{\"type\":\"send\",\"payload\":{\"room\":\"lobby\",\"message\":\"a\\u0000b\"}}"},
    {"dup_key", "{\"type\":\"send\",\"type\":\"join\",\"payload\":{\"room\":\"lobby\"}}"},
    {"bad_limit", "{\"type\":\"join\",\"payload\":{\"room\":\"lobby\",\"limit\":-1,"
                  "\"since\":9223372036854775807}}"},
    {"unknown", "{\"type\":\"dance\",\"payload\":{\"id\":\"x\"}}"},
    {"long_id", "{\"type\":\"send\",\"payload\":{\"room\":\"r\",\"message\":\"m\",\"id\":"
                "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}}"},
    {"nested", "{\"type\":\"join\",\"payload\":{\"room\":\"r\",\"x\":[[[[[[[[{}]]]]]]]],"
               "\"y\":1.5e300,\"z\":null,\"w\":true}}"},
    {"not_object", "[\"join\",{\"room\":\"lobby\"}]"},
};

static void client_seeds(void)
{
    for (size_t i = 0; i < sizeof client / sizeof client[0]; i++) {
        put_str("fuzz_client_json", client[i].name, client[i].json);
        json_error_t err;
        json_t *v = json_loads(client[i].json, JSON_ALLOW_NUL, &err);
        if (!v)
            die(client[i].json);
        struct cf_bytes out;
        cf_bytes_init(&out, 1 << 16);
        if (mpjson_encode(&out, v) < 0)
            die("mpjson_encode");
        put("fuzz_client_msgpack", client[i].name, cf_bytes_data(&out), cf_bytes_len(&out));
        cf_bytes_free(&out);
        json_decref(v);
    }
    put_str("fuzz_client_json", "truncated", "{\"type\":\"join\",\"payload\":{\"ro");
    put_str("fuzz_client_json", "bad_utf8",
            "{\"type\":\"send\",\"payload\":{\"room\":\"r\","
            "\"message\":\"\xc3\x28\"}}");
    /* msgpack edge cases: bin and ext values, a map announcing more entries
     * than it holds, a uint64 over INT64_MAX, a float32, a non-string key. */
    static const unsigned char bin[] = {0x82, 0xa4, 't', 'y', 'p', 'e', 0xc4, 0x01, 'x',
                                        0xa7, 'p',  'a', 'y', 'l', 'o', 'a',  'd',  0x80};
    static const unsigned char short_map[] = {0x8f, 0xa4, 't', 'y', 'p', 'e'};
    static const unsigned char big[] = {0x81, 0xa1, 'n',  0xcf, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char f32[] = {0x81, 0xa1, 'f', 0xca, 0x3f, 0xc0, 0x00, 0x00};
    static const unsigned char intkey[] = {0x81, 0x01, 0xa1, 'x'};
    static const unsigned char huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    put("fuzz_client_msgpack", "bin_value", bin, sizeof bin);
    put("fuzz_client_msgpack", "short_map", short_map, sizeof short_map);
    put("fuzz_client_msgpack", "uint64_max", big, sizeof big);
    put("fuzz_client_msgpack", "float32", f32, sizeof f32);
    put("fuzz_client_msgpack", "int_key", intkey, sizeof intkey);
    put("fuzz_client_msgpack", "huge_array", huge_array, sizeof huge_array);
    /* a bin as deep as msgpack-c parses: its placeholder array would be one
     * level too deep to decode again */
    unsigned char deep_bin[34];
    memset(deep_bin, 0x91, 32);
    deep_bin[32] = 0xc4;
    deep_bin[33] = 0x00;
    put("fuzz_client_msgpack", "deep_bin", deep_bin, sizeof deep_bin);
}

/* ---- wire messages ------------------------------------------------------- */

/* Appends m's payload (no frame header) to out. */
static void payload_of(struct cf_bytes *out, const struct cf_wire_msg *m)
{
    struct cf_bytes f;
    cf_bytes_init(&f, 1 << 20);
    if (cf_wire_encode(&f, m) < 0)
        die("cf_wire_encode");
    cf_bytes_append(out, cf_bytes_data(&f) + CF_WIRE_HDR, cf_bytes_len(&f) - CF_WIRE_HDR);
    cf_bytes_free(&f);
}

static struct cf_wire_msg chat(const char *room, const char *text, uint64_t id)
{
    struct cf_wire_msg m = {.type = CF_WIRE_MSG,
                            .room = S(room),
                            .from = S("alice"),
                            .text = S(text),
                            .ts = NOW * 1000LL + 123};
    if (id) {
        m.has = CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH;
        m.id = id;
        m.epoch = S("1700000000000-1");
    }
    return m;
}

static void wire_seeds(void)
{
    static const struct cf_str members[] = {{"alice", 5}, {"bob", 3}};
    struct cf_bytes m1, m2;
    cf_bytes_init(&m1, 1 << 16);
    cf_bytes_init(&m2, 1 << 16);
    struct cf_wire_msg c1 = chat("lobby", "first", 1), c2 = chat("lobby", "second", 2);
    payload_of(&m1, &c1);
    payload_of(&m2, &c2);
    const struct cf_str stored[] = {{(const char *)cf_bytes_data(&m1), (uint32_t)cf_bytes_len(&m1)},
                                    {(const char *)cf_bytes_data(&m2), (uint32_t)cf_bytes_len(&m2)},
                                    {"\x81\xa1v\x01", 4}};
    const struct cf_wire_msg all[] = {
        {.type = CF_WIRE_HELLO, .shard = 1, .shards = 4, .node = S("gw-a")},
        {.type = CF_WIRE_WELCOME, .shard = 1, .shards = 4, .node = S("broker-1")},
        {.type = CF_WIRE_JOIN, .room = S("lobby")},
        {.type = CF_WIRE_LEAVE, .room = S("lobby")},
        chat("lobby", "hello", 0),
        chat("lobby", "hello again", 42),
        {.type = CF_WIRE_PING, .seq = 7},
        {.type = CF_WIRE_PONG, .seq = 7},
        {.type = CF_WIRE_SEND,
         .q = 3,
         .room = S("lobby"),
         .from = S("bob"),
         .text = S("yo"),
         .ts = NOW * 1000LL,
         .has = CF_WIRE_HAS_CID,
         .cid = S("c-1")},
        {.type = CF_WIRE_SENT, .q = 3, .room = S("lobby"), .id = 43, .ts = NOW * 1000LL},
        {.type = CF_WIRE_FAIL, .q = 4, .code = S("unavailable"), .text = S("redis is down")},
        {.type = CF_WIRE_SUB,
         .q = 5,
         .room = S("lobby"),
         .user = S("bob"),
         .conn = S("c9"),
         .limit = 50,
         .budget = 65536,
         .has = CF_WIRE_HAS_SINCE | CF_WIRE_HAS_EPOCH,
         .since = 40,
         .epoch = S("1700000000000-1")},
        {.type = CF_WIRE_SUBBED,
         .q = 5,
         .room = S("lobby"),
         .epoch = S("1700000000000-1"),
         .last_id = 2,
         .pv = 9,
         .count = 2,
         .members = members,
         .nmembers = 2,
         .messages = stored,
         .nmessages = 3,
         .recovered = true},
        {.type = CF_WIRE_UNSUB, .room = S("lobby"), .conn = S("c9")},
        {.type = CF_WIRE_HIST,
         .q = 6,
         .room = S("lobby"),
         .limit = 10,
         .budget = 4096,
         .has = CF_WIRE_HAS_BEFORE,
         .before = 3},
        {.type = CF_WIRE_HISTR,
         .q = 6,
         .room = S("lobby"),
         .messages = stored,
         .nmessages = 2,
         .has_more = true},
        {.type = CF_WIRE_TYPING, .room = S("lobby"), .user = S("bob")},
        {.type = CF_WIRE_PRESENCE,
         .room = S("lobby"),
         .user = S("bob"),
         .action = S("join"),
         .count = 2,
         .pv = 10},
        {.type = CF_WIRE_STATE, .ready = true},
    };

    /* fuzz_wire: the chunk-size byte, then frames; one stream of everything
     * read a byte at a time, and one per type in big reads. */
    struct cf_bytes stream;
    cf_bytes_init(&stream, 1 << 20);
    unsigned char one = 0;
    cf_bytes_append(&stream, &one, 1);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        struct cf_bytes f;
        cf_bytes_init(&f, 1 << 20);
        unsigned char big = 255;
        cf_bytes_append(&f, &big, 1);
        if (cf_wire_encode(&f, &all[i]) < 0 || cf_wire_encode(&stream, &all[i]) < 0)
            die("cf_wire_encode");
        char name[64];
        snprintf(name, sizeof name, "%02zu_%s", i, cf_wire_type_name(all[i].type));
        put("fuzz_wire", name, cf_bytes_data(&f), cf_bytes_len(&f));
        cf_bytes_free(&f);
    }
    put("fuzz_wire", "stream", cf_bytes_data(&stream), cf_bytes_len(&stream));
    cf_bytes_free(&stream);
    static const unsigned char oversized[] = {7, 0x00, 0x40, 0x00, 0x01, 0x81};
    static const unsigned char empty_frame[] = {3, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0};
    static const unsigned char wrong_version[] = {9,    0,    0,   0,    9,   0x82, 0xa1, 'v',
                                                  0x02, 0xa1, 't', 0xa3, 'j', 'o',  'i'};
    put("fuzz_wire", "oversized", oversized, sizeof oversized);
    put("fuzz_wire", "empty_frame", empty_frame, sizeof empty_frame);
    put("fuzz_wire", "wrong_version", wrong_version, sizeof wrong_version);

    /* fuzz_event: name length, room name, payload. */
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const struct cf_wire_msg *m = &all[i];
        struct cf_bytes e;
        cf_bytes_init(&e, 1 << 20);
        const char *room = m->room.len ? "lobby" : "";
        unsigned char n = (unsigned char)strlen(room);
        cf_bytes_append(&e, &n, 1);
        cf_bytes_append(&e, room, n);
        payload_of(&e, m);
        char name[64];
        snprintf(name, sizeof name, "%02zu_%s", i, cf_wire_type_name(m->type));
        put("fuzz_event", name, cf_bytes_data(&e), cf_bytes_len(&e));
        cf_bytes_free(&e);
    }
    struct cf_bytes e;
    cf_bytes_init(&e, 1 << 16);
    unsigned char n = 5;
    cf_bytes_append(&e, &n, 1);
    cf_bytes_append(&e, "other", 5);
    payload_of(&e, &c1);
    put("fuzz_event", "other_room", cf_bytes_data(&e), cf_bytes_len(&e));
    cf_bytes_free(&e);
    cf_bytes_free(&m1);
    cf_bytes_free(&m2);
}

/* ---- /login and tokens ---------------------------------------------------- */

static void login_seeds(void)
{
    put_str("fuzz_login", "ok", "{\"username\":\"alice\"}");
    put_str("fuzz_login", "trim", "{\"username\":\"  Zo\\u00eb \\u4e2d  \"}");
    put_str("fuzz_login", "empty", "{\"username\":\"\"}");
    put_str("fuzz_login", "too_long", "{\"username\":\"abcdefghijklmnopqrstuvwxyzabcdefghijk\"}");
    put_str("fuzz_login", "control", "{\"username\":\"a\\u0007b\"}");
    put_str("fuzz_login", "nul", "{\"username\":\"a\\u0000b\"}");
    put_str("fuzz_login", "not_string", "{\"username\":42}");
    put_str("fuzz_login", "dup", "{\"username\":\"a\",\"username\":\"b\"}");
    put_str("fuzz_login", "array", "[\"alice\"]");
    put_str("fuzz_login", "bad_utf8", "{\"username\":\"\xff\xfe\"}");
}

static void put_token(const char *name, unsigned char mode, const char *text)
{
    size_t n = strlen(text);
    char *buf = malloc(n + 1);
    if (!buf)
        die("out of memory");
    buf[0] = (char)mode;
    memcpy(buf + 1, text, n);
    put("fuzz_jwt", name, buf, n + 1);
    free(buf);
}

static void jwt_seeds(void)
{
    struct auth *a = auth_new(KEY, 3600), *other = auth_new("not-the-key", 3600);
    if (!a || !other)
        die("auth_new");
    char *ok = auth_issue(a, "alice", NOW - 60), *expired = auth_issue(a, "alice", NOW - 7200),
         *future = auth_issue(a, "alice", NOW + 600), *forged = auth_issue(other, "alice", NOW);
    if (!ok || !expired || !future || !forged)
        die("auth_issue");
    put_token("token_ok", 0, ok);
    put_token("token_expired", 0, expired);
    put_token("token_nbf", 0, future);
    put_token("token_other_key", 0, forged);
    put_token("token_none", 0, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.");
    put_token("token_garbage", 0, "a.b.c");
    free(ok);
    free(expired);
    free(future);
    free(forged);
    auth_free(a);
    auth_free(other);
    put_token("claims_ok", 1, "{\"sub\":\"alice\",\"exp\":1800003600,\"nbf\":1800000000}");
    put_token("claims_no_exp", 1, "{\"sub\":\"alice\"}");
    put_token("claims_bad_sub", 1, "{\"sub\":\" a\\u0000b\",\"exp\":1800003600}");
    put_token("claims_types", 1, "{\"sub\":[\"alice\"],\"exp\":\"1800003600\",\"nbf\":1.5}");
    put_token("claims_edge", 1,
              "{\"sub\":\"bob\",\"exp\":-9223372036854775808,"
              "\"nbf\":9223372036854775807}");
    put_token("claims_other_key", 2, "{\"sub\":\"alice\",\"exp\":1800003600}");
    put_token("claims_none", 3, "{\"sub\":\"alice\",\"exp\":1800003600}");
}

/* fuzz_wsframe: the read-size byte, then masked client frames, built with
 * the server's header writer (wsframe.h) plus the mask bit and a key. */
struct wstream {
    unsigned char b[1024];
    size_t n;
};

static void ws_frame(struct wstream *w, int b0, const void *payload, size_t len, bool mask)
{
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = wsf_header(w->b + w->n, WSF_CONT, len);
    w->b[w->n] = (unsigned char)b0;
    if (mask) {
        w->b[w->n + 1] |= 0x80;
        memcpy(w->b + w->n + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < len; i++)
        w->b[w->n + h + i] = ((const unsigned char *)payload)[i] ^ (mask ? key[i & 3] : 0);
    w->n += h + len;
}

static void ws_seed(const char *name, struct wstream *w)
{
    put("fuzz_wsframe", name, w->b, w->n);
}

static void wsframe_seeds(void)
{
    struct wstream w = {{7}, 1};
    ws_frame(&w, 0x81, "{\"type\":\"join\",\"payload\":{\"room\":\"r\"}}", 38, true);
    ws_seed("text", &w);
    w = (struct wstream){{0}, 1};
    ws_frame(&w, 0x82, "\x82\xa4type\xa4join", 11, true);
    ws_seed("binary", &w);
    w = (struct wstream){{2}, 1};
    ws_frame(&w, 0x01, "caf\xc3", 4, true);
    ws_frame(&w, 0x89, "p", 1, true);
    ws_frame(&w, 0x80, "\xa9!", 2, true);
    ws_seed("fragmented_utf8", &w);
    char x[300];
    memset(x, 'x', sizeof x);
    w = (struct wstream){{100}, 1};
    ws_frame(&w, 0x81, x, sizeof x, true);
    ws_seed("long", &w);
    w = (struct wstream){{3}, 1};
    ws_frame(&w, 0x89, "hello", 5, true);
    ws_frame(&w, 0x8a, "", 0, true);
    ws_frame(&w, 0x88, "\x03\xe8" "bye", 5, true);
    ws_seed("ping_pong_close", &w);
    w = (struct wstream){{1}, 1};
    ws_frame(&w, 0x81, "hi", 2, false);
    ws_seed("unmasked", &w);
    w = (struct wstream){{0}, 1};
    ws_frame(&w, 0x81, "\xed\xa0\x80", 3, true);
    ws_seed("bad_utf8", &w);
    /* a header announcing 2^40 bytes, and nothing after it */
    static const unsigned char too_big[] = {5, 0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0,
                                            0x37, 0xfa, 0x21, 0x3d};
    put("fuzz_wsframe", "too_big", too_big, sizeof too_big);
}

/* ---- first bytes of a connection (the gateway's own upgrade path) ------- */

static void upgreq_seeds(void)
{
    static const char *const seeds[][2] = {
        {"plain", "GET /ws?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln HTTP/1.1\r\n"
                  "Host: localhost:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
        {"browser", "GET /ws?token=a.b.c HTTP/1.1\r\nHost: chat.example.org\r\n"
                    "Connection: keep-alive, Upgrade\r\nPragma: no-cache\r\n"
                    "User-Agent: Mozilla/5.0\r\nUpgrade: websocket\r\n"
                    "Origin: https://chat.example.org\r\nSec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                    "Sec-WebSocket-Protocol: confab.v1, confab.msgpack.v1\r\n\r\n"},
        {"bearer", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n"
                   "Authorization: Bearer a.b.c\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n\x81\x80\0\0\0\0"},
        {"login", "POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"},
        {"folded", "GET /ws?token=a HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++)
        put_str("fuzz_upgreq", seeds[i][0], seeds[i][1]);
}

/* ---- JWT payloads (gateway/claims.c) -------------------------------------- */

static void claims_seeds(void)
{
    static const char *const seeds[][2] = {
        {"guest", "{\"sub\":\"alice\",\"iat\":1800000000,\"nbf\":1800000000,\"exp\":1800003600}"},
        {"spaced", " {\n\t\"sub\" : \"bob\" ,\r\n \"exp\":-12 } "},
        {"idp", "{\"iss\":\"https://idp.test\",\"aud\":[\"confab\",\"x\"],\"sub\":\"c\","
                "\"exp\":1.8e9}"},
        {"escaped", "{\"sub\":\"\\u00e9l\\u00e8ve\",\"exp\":0}"},
        {"duplicate", "{\"sub\":\"a\",\"sub\":\"b\"}"},
        {"leading_zero", "{\"exp\":0123}"},
        {"empty", "{}"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++)
        put_str("fuzz_claims", seeds[i][0], seeds[i][1]);
}

/* fuzz_rreply: the read-size byte, then what Redis sends the broker: a
 * subscriber's messages, a script's replies, errors, and a reply cut short */
static void rreply_seeds(void)
{
    static const struct {
        const char *name;
        unsigned char step;
        const char *resp;
    } seeds[] = {
        {"message", 255,
         "*3\r\n$7\r\nmessage\r\n$10\r\nroom:lobby\r\n$5\r\nhello\r\n"},
        {"messages_in_small_reads", 6,
         "*3\r\n$9\r\nsubscribe\r\n$10\r\nroom:lobby\r\n:1\r\n"
         "*3\r\n$7\r\nmessage\r\n$10\r\nroom:lobby\r\n$5\r\nhello\r\n"
         "*3\r\n$7\r\nmessage\r\n$10\r\nroom:lobby\r\n$0\r\n\r\n"},
        {"script_reply", 16,
         "*4\r\n:42\r\n$13\r\n1800000000123\r\n*2\r\n$1\r\na\r\n$-1\r\n*-1\r\n"},
        {"status_error_int", 0, "+OK\r\n-NOSCRIPT No matching script\r\n:-7\r\n+PONG\r\n"},
        {"nested", 3, "*2\r\n*2\r\n*1\r\n*0\r\n:1\r\n$3\r\nend\r\n"},
        {"cut_short", 255, "*3\r\n$7\r\nmessage\r\n$10\r\nroom:l"},
        {"absurd_array", 255, "*2\r\n*2000000000\r\n"},
        {"bad_type", 255, "+OK\r\n?what\r\n"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        unsigned char b[512];
        size_t n = strlen(seeds[i].resp);
        if (n + 1 > sizeof b)
            die("a fuzz_rreply seed is too long");
        b[0] = seeds[i].step;
        memcpy(b + 1, seeds[i].resp, n);
        put("fuzz_rreply", seeds[i].name, b, n + 1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) < 0 && errno != EEXIST)
        die("cannot create the corpus directory");
    client_seeds();
    wire_seeds();
    login_seeds();
    jwt_seeds();
    wsframe_seeds();
    upgreq_seeds();
    claims_seeds();
    rreply_seeds();
    return 0;
}
