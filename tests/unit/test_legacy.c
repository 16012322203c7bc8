/* Unit tests for gateway/legacy: the JSON protocol of the original chat. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jalloc_check.h"
#include "legacy.h"
#include "wire.h"

static int parse(const char *json, struct legacy_event *ev, const char **why)
{
    *why = NULL;
    return legacy_parse(json, strlen(json), ev, why);
}

static void expect_refused(const char *json, size_t len, const char *want_why)
{
    struct legacy_event ev;
    const char *why = NULL;
    memset(&ev, 0x5a, sizeof ev);
    int rc = legacy_parse(json, len, &ev, &why);
    if (rc != -1)
        fail_msg("accepted: %.*s", (int)(len > 200 ? 200 : len), json);
    assert_non_null(why);
    assert_null(ev.doc);
    if (want_why)
        assert_string_equal(why, want_why);
}

#define REFUSED(json, why) expect_refused(json, strlen(json), why)

#define WHY_JSON "malformed JSON"
#define WHY_OBJECT "event is not a JSON object"
#define WHY_TYPE "missing or non-string \"type\""
#define WHY_PAYLOAD "missing or non-object \"payload\""
#define WHY_UNKNOWN "unknown event type"
#define WHY_MSG_TYPE "send_message without a string \"message\""
#define WHY_MSG_EMPTY "send_message with an empty message"
#define WHY_NAME_TYPE "change_room without a string \"name\""
#define WHY_NAME "change_room with an invalid room name"

static void test_parse_send_message(void **state)
{
    (void)state;
    struct legacy_event ev;
    const char *why;
    assert_int_equal(parse("{\"type\":\"send_message\",\"payload\":{\"message\":\"hi\","
                           "\"from\":\"mallory\"}}",
                           &ev, &why),
                     0);
    assert_int_equal(ev.type, LEGACY_SEND_MESSAGE);
    assert_int_equal(ev.text.len, 2);
    assert_memory_equal(ev.text.p, "hi", 2);
    assert_int_equal(ev.room.len, 0);
    assert_non_null(ev.doc);
    legacy_event_free(&ev);
    assert_null(ev.doc);

    /* Escapes are decoded; whitespace around is kept; key order is free. */
    assert_int_equal(parse(" { \"payload\" : { \"message\" : \" caf\\u00e9 \\\"q\\\" \\n\\ud83d\\ude00 \" } ,"
                           " \"type\" : \"send_message\" } ",
                           &ev, &why),
                     0);
    assert_int_equal(ev.type, LEGACY_SEND_MESSAGE);
    static const char want[] = " caf\xc3\xa9 \"q\" \n\xf0\x9f\x98\x80 ";
    assert_int_equal(ev.text.len, sizeof want - 1);
    assert_memory_equal(ev.text.p, want, sizeof want - 1);
    legacy_event_free(&ev);

    /* Extra fields are ignored. */
    assert_int_equal(parse("{\"type\":\"send_message\",\"payload\":{\"message\":\"x\",\"room\":\"y\"},"
                           "\"id\":7}",
                           &ev, &why),
                     0);
    assert_int_equal(ev.text.len, 1);
    legacy_event_free(&ev);

    /* Only len bytes are parsed. */
    static const char two[] = "{\"type\":\"send_message\",\"payload\":{\"message\":\"a\"}}GARBAGE";
    assert_int_equal(legacy_parse(two, sizeof two - 1 - 7, &ev, &why), 0);
    assert_memory_equal(ev.text.p, "a", 1);
    legacy_event_free(&ev);
}

static void test_parse_change_room(void **state)
{
    (void)state;
    struct legacy_event ev;
    const char *why;
    assert_int_equal(parse("{\"type\":\"change_room\",\"payload\":{\"name\":\"lobby\"}}", &ev, &why),
                     0);
    assert_int_equal(ev.type, LEGACY_CHANGE_ROOM);
    assert_int_equal(ev.room.len, 5);
    assert_memory_equal(ev.room.p, "lobby", 5);
    assert_int_equal(ev.text.len, 0);
    legacy_event_free(&ev);

    char json[200], room[65];
    memset(room, 'r', 64);
    room[64] = '\0';
    snprintf(json, sizeof json, "{\"type\":\"change_room\",\"payload\":{\"name\":\"%s\"}}", room);
    assert_int_equal(parse(json, &ev, &why), 0);
    assert_int_equal(ev.room.len, 64);
    assert_memory_equal(ev.room.p, room, 64);
    legacy_event_free(&ev);

    assert_int_equal(parse("{\"type\":\"change_room\",\"payload\":{\"name\":\"a.B-c_d:9\"}}", &ev,
                           &why),
                     0);
    assert_memory_equal(ev.room.p, "a.B-c_d:9", 9);
    legacy_event_free(&ev);
}

static void test_parse_refused(void **state)
{
    (void)state;
    REFUSED("", WHY_JSON);
    REFUSED("{", WHY_JSON);
    REFUSED("nope", WHY_JSON);
    REFUSED("{\"type\":\"send_message\",}", WHY_JSON);
    REFUSED("{'type':'send_message'}", WHY_JSON);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":\"hi\"}} {}", WHY_JSON);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":\"bad \xff utf8\"}}", WHY_JSON);

    REFUSED("[]", WHY_OBJECT);
    REFUSED("[{\"type\":\"send_message\",\"payload\":{\"message\":\"hi\"}}]", WHY_OBJECT);
    REFUSED("\"send_message\"", NULL);
    REFUSED("5", NULL);
    REFUSED("null", NULL);

    REFUSED("{}", WHY_TYPE);
    REFUSED("{\"payload\":{\"message\":\"hi\"}}", WHY_TYPE);
    REFUSED("{\"type\":5,\"payload\":{\"message\":\"hi\"}}", WHY_TYPE);
    REFUSED("{\"type\":null,\"payload\":{\"message\":\"hi\"}}", WHY_TYPE);
    REFUSED("{\"type\":[\"send_message\"],\"payload\":{\"message\":\"hi\"}}", WHY_TYPE);

    REFUSED("{\"type\":\"send_message\"}", WHY_PAYLOAD);
    REFUSED("{\"type\":\"send_message\",\"payload\":\"hi\"}", WHY_PAYLOAD);
    REFUSED("{\"type\":\"send_message\",\"payload\":[\"hi\"]}", WHY_PAYLOAD);
    REFUSED("{\"type\":\"send_message\",\"payload\":null}", WHY_PAYLOAD);
    REFUSED("{\"type\":\"change_room\",\"payload\":5}", WHY_PAYLOAD);

    REFUSED("{\"type\":\"send_messages\",\"payload\":{\"message\":\"hi\"}}", WHY_UNKNOWN);
    REFUSED("{\"type\":\"SEND_MESSAGE\",\"payload\":{\"message\":\"hi\"}}", WHY_UNKNOWN);
    REFUSED("{\"type\":\"\",\"payload\":{\"message\":\"hi\"}}", WHY_UNKNOWN);
    REFUSED("{\"type\":\"new_message\",\"payload\":{\"message\":\"hi\"}}", WHY_UNKNOWN);

    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":\"\"}}", WHY_MSG_EMPTY);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":\"   \"}}", WHY_MSG_EMPTY);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":\" \\n\\t\\r \"}}", WHY_MSG_EMPTY);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":\"\\u3000\\u00a0\"}}",
            WHY_MSG_EMPTY);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":5}}", WHY_MSG_TYPE);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":null}}", WHY_MSG_TYPE);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":[\"hi\"]}}", WHY_MSG_TYPE);
    REFUSED("{\"type\":\"send_message\",\"payload\":{}}", WHY_MSG_TYPE);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"text\":\"hi\"}}", WHY_MSG_TYPE);

    REFUSED("{\"type\":\"change_room\",\"payload\":{\"name\":\"a b\"}}", WHY_NAME);
    REFUSED("{\"type\":\"change_room\",\"payload\":{\"name\":\"\"}}", WHY_NAME);
    REFUSED("{\"type\":\"change_room\",\"payload\":{\"name\":\"caf\\u00e9\"}}", WHY_NAME);
    REFUSED("{\"type\":\"change_room\",\"payload\":{\"name\":\"../etc\"}}", WHY_NAME);
    REFUSED("{\"type\":\"change_room\",\"payload\":{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}",
            WHY_NAME); /* 65 characters */
    REFUSED("{\"type\":\"change_room\",\"payload\":{}}", WHY_NAME_TYPE);
    REFUSED("{\"type\":\"change_room\",\"payload\":{\"name\":5}}", WHY_NAME_TYPE);
    REFUSED("{\"type\":\"change_room\",\"payload\":{\"room\":\"lobby\"}}", WHY_NAME_TYPE);

    /* Duplicate keys, at the top and inside the payload. */
    REFUSED("{\"type\":\"send_message\",\"type\":\"change_room\",\"payload\":{\"name\":\"x\"}}",
            WHY_JSON);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":\"a\",\"message\":\"b\"}}",
            WHY_JSON);
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":\"a\"},\"payload\":{}}", WHY_JSON);

    /* NUL characters, escaped or raw. */
    REFUSED("{\"type\":\"send_message\",\"payload\":{\"message\":\"a\\u0000b\"}}", WHY_JSON);
    REFUSED("{\"type\":\"change_room\",\"payload\":{\"name\":\"lobby\\u0000x\"}}", WHY_JSON);
    REFUSED("{\"type\":\"send_message\\u0000\",\"payload\":{\"message\":\"a\"}}", WHY_JSON);
    static const char raw_nul[] = "{\"type\":\"send_message\",\"payload\":{\"message\":\"a\0b\"}}";
    expect_refused(raw_nul, sizeof raw_nul - 1, WHY_JSON);
}

static void test_parse_deep_nesting(void **state)
{
    (void)state;
    enum { DEPTH = 5000 };
    char *s = malloc(2 * DEPTH + 200);
    assert_non_null(s);
    memset(s, '[', DEPTH);
    expect_refused(s, DEPTH, NULL);
    memset(s + DEPTH, ']', DEPTH);
    expect_refused(s, 2 * DEPTH, NULL);
    memset(s, '{', DEPTH);
    expect_refused(s, DEPTH, NULL);

    /* Nesting inside an otherwise valid event. */
    size_t n = (size_t)sprintf(s, "{\"type\":\"send_message\",\"payload\":{\"message\":\"hi\",\"x\":");
    memset(s + n, '[', DEPTH);
    memset(s + n + DEPTH, ']', DEPTH);
    memcpy(s + n + 2 * DEPTH, "}}", 3);
    expect_refused(s, strlen(s), NULL);
    free(s);
}

static struct cf_wire_msg make_msg(const char *room, const char *from, const char *text,
                                   int64_t ts)
{
    struct cf_wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = CF_WIRE_MSG;
    m.room = (struct cf_str){room, (uint32_t)strlen(room)};
    m.from = (struct cf_str){from, (uint32_t)strlen(from)};
    m.text = (struct cf_str){text, (uint32_t)strlen(text)};
    m.ts = ts;
    return m;
}

/* Parses what legacy_encode_message produced and checks its exact shape. */
static void check_encoded(struct cf_buf *b, size_t headroom, const struct cf_wire_msg *m,
                          const char *sent)
{
    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->head, headroom);
    assert_true(b->cap >= b->head + b->len);
    const char *json = (const char *)cf_buf_payload(b);
    assert_null(memchr(json, '\0', b->len)); /* len is the JSON's strlen */
    json_error_t err;
    json_t *root = json_loadb(json, b->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!root)
        fail_msg("not JSON: %s", err.text);
    assert_true(json_is_object(root));
    assert_int_equal(json_object_size(root), 2);
    assert_string_equal(json_string_value(json_object_get(root, "type")), "new_message");
    json_t *p = json_object_get(root, "payload");
    assert_true(json_is_object(p));
    assert_int_equal(json_object_size(p), 4);
    json_t *message = json_object_get(p, "message"), *from = json_object_get(p, "from"),
           *jsent = json_object_get(p, "sent"), *room = json_object_get(p, "room");
    assert_true(json_is_string(message) && json_is_string(from) && json_is_string(jsent) &&
                json_is_string(room));
    assert_int_equal(json_string_length(message), m->text.len);
    assert_memory_equal(json_string_value(message), m->text.p, m->text.len);
    assert_int_equal(json_string_length(from), m->from.len);
    assert_memory_equal(json_string_value(from), m->from.p, m->from.len);
    assert_int_equal(json_string_length(room), m->room.len);
    assert_memory_equal(json_string_value(room), m->room.p, m->room.len);
    assert_string_equal(json_string_value(jsent), sent);
    json_decref(root);
}

static void test_encode_message(void **state)
{
    (void)state;
    struct cf_wire_msg m = make_msg("general", "alice", "hi", 1795860000123LL);
    struct cf_buf *b = legacy_encode_message(&m, 16);
    check_encoded(b, 16, &m, "2026-11-28T10:00:00.123Z");
    static const char exact[] = "{\"type\":\"new_message\",\"payload\":{\"message\":\"hi\","
                                "\"from\":\"alice\",\"sent\":\"2026-11-28T10:00:00.123Z\","
                                "\"room\":\"general\"}}";
    assert_int_equal(b->len, strlen(exact));
    assert_memory_equal(cf_buf_payload(b), exact, b->len);
    cf_buf_unref(b);

    b = legacy_encode_message(&m, 0);
    check_encoded(b, 0, &m, "2026-11-28T10:00:00.123Z");
    cf_buf_unref(b);

    m.ts = 0;
    b = legacy_encode_message(&m, 7);
    check_encoded(b, 7, &m, "1970-01-01T00:00:00.000Z");
    cf_buf_unref(b);
    m.ts = -1;
    b = legacy_encode_message(&m, 7);
    check_encoded(b, 7, &m, "1969-12-31T23:59:59.999Z");
    cf_buf_unref(b);

    /* A time with no RFC 3339 form. */
    m.ts = INT64_MAX;
    assert_null(legacy_encode_message(&m, 16));
    /* Text that is not UTF-8 cannot be put in JSON. */
    m = make_msg("general", "alice", "bad \xff", 0);
    assert_null(legacy_encode_message(&m, 16));
}

static void test_encode_escaping(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "he said \"hi\"",
        "back\\slash \\\\ \\n",
        "line1\nline2\r\nline3",
        "ctl \x01\x02\x1f\x7f tab\t end",
        "<script>alert('x')</script> & </b>",
        "emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87",
        "\xe2\x80\xa8 line separators \xe2\x80\xa9",
        "slash / and unicode escape text \\u0041",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct cf_wire_msg m = make_msg("room.1", "J\xc3\xa9r\xc3\xb4me \"the\" <b>", texts[i],
                                        1795860000123LL);
        struct cf_buf *b = legacy_encode_message(&m, 16);
        check_encoded(b, 16, &m, "2026-11-28T10:00:00.123Z");
        cf_buf_unref(b);
    }
    /* A NUL inside the text (valid UTF-8 on the wire) becomes \u0000. */
    struct cf_wire_msg m = make_msg("r", "u", "", 0);
    m.text = (struct cf_str){"a\0b", 3};
    struct cf_buf *b = legacy_encode_message(&m, 4);
    check_encoded(b, 4, &m, "1970-01-01T00:00:00.000Z");
    cf_buf_unref(b);
}

static void test_encode_sizes(void **state)
{
    (void)state;
    /* Around the size of the encoder's stack buffer, and far beyond it. */
    struct cf_wire_msg m = make_msg("general", "alice", "", 1795860000123LL);
    struct cf_buf *b = legacy_encode_message(&m, 16);
    assert_non_null(b);
    size_t base = b->len; /* the JSON with an empty message */
    cf_buf_unref(b);
    char *text = malloc(200001);
    assert_non_null(text);
    for (size_t i = 0; i < 200000; i++)
        text[i] = (char)('a' + i % 26);
    text[200000] = '\0';
    for (size_t total = 8180; total <= 8200; total++) {
        size_t n = total - base;
        m.text = (struct cf_str){text, (uint32_t)n};
        b = legacy_encode_message(&m, 16);
        check_encoded(b, 16, &m, "2026-11-28T10:00:00.123Z");
        assert_int_equal(b->len, total);
        cf_buf_unref(b);
    }
    m.text = (struct cf_str){text, 200000};
    b = legacy_encode_message(&m, 32);
    check_encoded(b, 32, &m, "2026-11-28T10:00:00.123Z");
    assert_int_equal(b->len, base + 200000);
    cf_buf_unref(b);
    /* Escapes make the JSON longer than the text. */
    for (size_t i = 0; i < 5000; i++)
        text[i] = '"';
    text[5000] = '\0';
    m.text = (struct cf_str){text, 5000};
    b = legacy_encode_message(&m, 16);
    check_encoded(b, 16, &m, "2026-11-28T10:00:00.123Z");
    assert_int_equal(b->len, base + 10000);
    cf_buf_unref(b);
    free(text);
}

int main(void)
{
    jalloc_install(); /* as the gateway parses frames */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_send_message),
        cmocka_unit_test(test_parse_change_room),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_parse_deep_nesting),
        cmocka_unit_test(test_encode_message),
        cmocka_unit_test(test_encode_escaping),
        cmocka_unit_test(test_encode_sizes),
    };
    return jalloc_check_all_freed(cmocka_run_group_tests(tests, NULL, NULL));
}
