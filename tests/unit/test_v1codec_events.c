/* Unit tests for gateway/v1codec's events: what the gateway sends a
 * protocol v1 client, in both encodings, confab.v1 (JSON text) and
 * confab.msgpack.v1 (read back with mpjson). Event shapes are checked
 * against the examples of docs/protocol.md. The requests are
 * test_v1codec's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <stdio.h>
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

/* ---- events ------------------------------------------------------------------ */

/* Decodes an event buffer (consuming it) back into a tree. */
static json_t *event_of(enum sess_proto p, struct cf_buf *b)
{
    assert_non_null(b);
    assert_int_equal(b->head, LWS_PRE);
    assert_int_equal(b->refs, 1);
    assert_true(b->len > 0);
    json_t *v;
    if (p == SESS_V1_MSGPACK) {
        const char *why = NULL;
        v = mpjson_decode(cf_buf_payload(b), b->len, &why);
        if (!v)
            fail_msg("event is not msgpack we read: %s", why ? why : "?");
    } else {
        json_error_t err;
        v = json_loadb((const char *)cf_buf_payload(b), b->len, JSON_REJECT_DUPLICATES, &err);
        if (!v)
            fail_msg("event is not JSON: %s", err.text);
        assert_null(memchr(cf_buf_payload(b), '\n', b->len)); /* compact */
    }
    cf_buf_unref(b);
    return v;
}

static void expect_event(enum sess_proto p, struct cf_buf *b, const char *want_json)
{
    json_t *got = event_of(p, b);
    json_error_t err;
    json_t *want = json_loads(want_json, 0, &err);
    if (!want)
        fail_msg("bad test JSON: %s", err.text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("%s event\n got  %s\n want %s", pname(p), g, w);
    }
    json_decref(got);
    json_decref(want);
}

static struct cf_str S(const char *s)
{
    return (struct cf_str){s, (uint32_t)strlen(s)};
}

static const struct cf_str NONE = {NULL, 0};

static void test_encode_events(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        enum sess_proto p = protos[i];
        struct cf_wire_msg m = {.type = CF_WIRE_MSG, .room = S("lobby"), .from = S("alice"),
                                .text = S("hi"), .ts = 1795860002500LL, .has = CF_WIRE_HAS_ID,
                                .id = 44};
        expect_event(p, v1_encode_event(p, &m),
                     "{\"type\":\"new_message\",\"payload\":{\"room\":\"lobby\",\"id\":44,"
                     "\"message\":\"hi\",\"from\":\"alice\",\"sent\":\"2026-11-28T10:00:02.500Z\"}}");
        /* A message published straight to Redis has no id; text is kept as is. */
        m.has = 0;
        m.text = S("<b>\"x\"</b>\n\xf0\x9f\x98\x80");
        expect_event(p, v1_encode_event(p, &m),
                     "{\"type\":\"new_message\",\"payload\":{\"room\":\"lobby\","
                     "\"message\":\"<b>\\\"x\\\"</b>\\n\\ud83d\\ude00\",\"from\":\"alice\","
                     "\"sent\":\"2026-11-28T10:00:02.500Z\"}}");

        struct cf_wire_msg t = {.type = CF_WIRE_TYPING, .room = S("lobby"), .user = S("alice")};
        expect_event(p, v1_encode_event(p, &t),
                     "{\"type\":\"typing\",\"payload\":{\"room\":\"lobby\",\"user\":\"alice\"}}");
        struct cf_wire_msg pr = {.type = CF_WIRE_PRESENCE, .room = S("lobby"), .user = S("carol"),
                                 .action = S("join"), .count = 3, .pv = 9};
        expect_event(p, v1_encode_event(p, &pr),
                     "{\"type\":\"presence\",\"payload\":{\"room\":\"lobby\",\"user\":\"carol\","
                     "\"action\":\"join\",\"count\":3}}");
        pr.action = S("leave");
        pr.count = 2;
        expect_event(p, v1_encode_event(p, &pr),
                     "{\"type\":\"presence\",\"payload\":{\"room\":\"lobby\",\"user\":\"carol\","
                     "\"action\":\"leave\",\"count\":2}}");
        /* Not a client event. */
        struct cf_wire_msg ping = {.type = CF_WIRE_PING, .seq = 1};
        assert_null(v1_encode_event(p, &ping));
    }
}

static void test_encode_error_ack_left(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        enum sess_proto p = protos[i];
        expect_event(p,
                     v1_encode_error(p, "not_member", "join the room first", S("c-1701-8"),
                                     S("lobby")),
                     "{\"type\":\"error\",\"payload\":{\"code\":\"not_member\","
                     "\"message\":\"join the room first\",\"ref\":\"c-1701-8\",\"room\":\"lobby\"}}");
        expect_event(p, v1_encode_error(p, "bad_json", "not JSON", NONE, NONE),
                     "{\"type\":\"error\",\"payload\":{\"code\":\"bad_json\","
                     "\"message\":\"not JSON\"}}");
        expect_event(p, v1_encode_error(p, "bad_id", "bad id", NONE, S("r")),
                     "{\"type\":\"error\",\"payload\":{\"code\":\"bad_id\",\"message\":\"bad id\","
                     "\"room\":\"r\"}}");
        expect_event(p, v1_encode_error(p, "unknown_type", "no", S("x"), NONE),
                     "{\"type\":\"error\",\"payload\":{\"code\":\"unknown_type\",\"message\":\"no\","
                     "\"ref\":\"x\"}}");

        expect_event(p, v1_encode_ack(p, S("c-1701-7"), S("lobby"), 44, 1795860002500LL),
                     "{\"type\":\"ack\",\"payload\":{\"id\":\"c-1701-7\",\"room\":\"lobby\","
                     "\"message_id\":44,\"sent\":\"2026-11-28T10:00:02.500Z\"}}");
        expect_event(p, v1_encode_ack(p, NONE, S("lobby"), 45, 1795860000123LL),
                     "{\"type\":\"ack\",\"payload\":{\"room\":\"lobby\",\"message_id\":45,"
                     "\"sent\":\"2026-11-28T10:00:00.123Z\"}}");

        expect_event(p, v1_encode_left(p, S("lobby")),
                     "{\"type\":\"left\",\"payload\":{\"room\":\"lobby\"}}");
        expect_event(p, v1_encode_pong(p, S("ping-3")),
                     "{\"type\":\"pong\",\"payload\":{\"id\":\"ping-3\"}}");
        expect_event(p, v1_encode_pong(p, NONE), "{\"type\":\"pong\",\"payload\":{}}");
    }
}

/* A stored message as the broker's Lua script leaves it in Redis. */
static void stored(struct cf_bytes *b, uint64_t id, const char *from, const char *text,
                   int64_t ts)
{
    struct cf_wire_msg m = {.type = CF_WIRE_MSG, .room = S("lobby"), .from = S(from),
                            .text = S(text), .ts = ts};
    cf_bytes_init(b, 4096);
    assert_int_equal(cf_wire_msg_prefix(b, &m), 0);
    unsigned char tail[6 + 17 + 12] = "\xa5" "epoch\xb0" "5f0c2a9e1b7d4c3a\xa2id\xcf";
    for (int i = 0; i < 8; i++)
        tail[27 + i] = (unsigned char)(id >> (56 - 8 * i));
    assert_int_equal(cf_bytes_append(b, tail, sizeof tail), 0);
}

static void test_encode_joined_history(void **state)
{
    (void)state;
    struct cf_wire_decoder *d = cf_wire_decoder_new();
    assert_non_null(d);
    struct cf_bytes m42, m43, typing;
    stored(&m42, 42, "bob", "hi", 1795860000123LL);
    stored(&m43, 43, "alice", "hello", 1795860001001LL);
    struct cf_wire_msg t = {.type = CF_WIRE_TYPING, .room = S("lobby"), .user = S("bob")};
    cf_bytes_init(&typing, 4096);
    assert_int_equal(cf_wire_encode(&typing, &t), 0);
    struct cf_str msgs[] = {
        {(const char *)cf_bytes_data(&m42), (uint32_t)cf_bytes_len(&m42)},
        {"\x93\x01\x02", 3}, /* not a wire payload at all */
        {(const char *)cf_bytes_data(&m43), (uint32_t)cf_bytes_len(&m43)},
    };
    struct cf_str members[] = {S("alice"), S("bob")};
    const char *msgs_json =
        "[{\"room\":\"lobby\",\"id\":42,\"message\":\"hi\",\"from\":\"bob\","
        "\"sent\":\"2026-11-28T10:00:00.123Z\"},"
        "{\"room\":\"lobby\",\"id\":43,\"message\":\"hello\",\"from\":\"alice\","
        "\"sent\":\"2026-11-28T10:00:01.001Z\"}]";
    char want[1024];
    for (size_t i = 0; i < 2; i++) {
        enum sess_proto p = protos[i];
        struct cf_wire_msg snap = {.type = CF_WIRE_SUBBED, .q = 1, .room = S("lobby"),
                                   .epoch = S("5f0c2a9e1b7d4c3a"), .last_id = 43, .pv = 7,
                                   .count = 2, .members = members, .nmembers = 2,
                                   .messages = msgs, .nmessages = 3, .recovered = true};
        size_t bad = 0;
        snprintf(want, sizeof want,
                 "{\"type\":\"joined\",\"payload\":{\"room\":\"lobby\",\"epoch\":"
                 "\"5f0c2a9e1b7d4c3a\",\"last_id\":43,\"members\":[{\"user\":\"alice\"},"
                 "{\"user\":\"bob\"}],\"count\":2,\"recovered\":true,\"messages\":%s}}",
                 msgs_json);
        expect_event(p, v1_encode_joined(p, d, &snap, &bad), want);
        assert_int_equal(bad, 1);

        /* Nothing at all: empty arrays, not missing keys. */
        struct cf_wire_msg empty = {.type = CF_WIRE_SUBBED, .room = S("lobby"), .epoch = S("e")};
        bad = 0;
        expect_event(p, v1_encode_joined(p, d, &empty, &bad),
                     "{\"type\":\"joined\",\"payload\":{\"room\":\"lobby\",\"epoch\":\"e\","
                     "\"last_id\":0,\"members\":[],\"count\":0,\"recovered\":false,"
                     "\"messages\":[]}}");
        assert_int_equal(bad, 0);

        /* history: a valid payload of another type is skipped too; bad adds up. */
        struct cf_str page[] = {msgs[0], msgs[2],
                                {(const char *)cf_bytes_data(&typing) + CF_WIRE_HDR,
                                 (uint32_t)(cf_bytes_len(&typing) - CF_WIRE_HDR)}};
        struct cf_wire_msg pg = {.type = CF_WIRE_HISTR, .room = S("lobby"), .messages = page,
                                 .nmessages = 3, .has_more = true};
        bad = 5;
        /* The epoch of the stored messages: their ids mean something only in it. */
        snprintf(want, sizeof want,
                 "{\"type\":\"history\",\"payload\":{\"room\":\"lobby\",\"has_more\":true,"
                 "\"epoch\":\"5f0c2a9e1b7d4c3a\",\"messages\":%s}}",
                 msgs_json);
        expect_event(p, v1_encode_history(p, d, &pg, NONE, &bad), want);
        assert_int_equal(bad, 6);
        pg.nmessages = 0;
        pg.has_more = false;
        expect_event(p, v1_encode_history(p, d, &pg, NONE, &bad),
                     "{\"type\":\"history\",\"payload\":{\"room\":\"lobby\",\"has_more\":false,"
                     "\"messages\":[]}}");
        /* No message, no epoch. The request's id is echoed, as ack echoes a send's. */
        expect_event(p, v1_encode_history(p, d, &pg, S("h-7"), &bad),
                     "{\"type\":\"history\",\"payload\":{\"room\":\"lobby\",\"has_more\":false,"
                     "\"messages\":[],\"id\":\"h-7\"}}");
    }
    cf_bytes_free(&m42);
    cf_bytes_free(&m43);
    cf_bytes_free(&typing);
    cf_wire_decoder_free(d);
}

int main(void)
{
    jalloc_install(); /* as in the gateway: events are jansson trees */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_events),
        cmocka_unit_test(test_encode_error_ack_left),
        cmocka_unit_test(test_encode_joined_history),
    };
    return jalloc_check_all_freed(cmocka_run_group_tests(tests, NULL, NULL));
}
