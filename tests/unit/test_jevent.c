/* jevent: the message events and acks written without jansson must be, byte
 * for byte, what jansson's compact dump writes for the same tree (the
 * encoders they replaced), for any text a client may send. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jevent.h"
#include "v1codec.h"
#include "validate.h"

static struct cf_str str(const char *s, size_t n)
{
    return (struct cf_str){s, (uint32_t)n};
}

/* {"type":type,"payload":payload} as jansson's compact dump writes it
 * (takes payload; the caller frees the text). */
static char *event_text(const char *type, json_t *payload, size_t *len)
{
    json_t *root = json_pack("{s:s, s:o}", "type", type, "payload", payload);
    assert_non_null(root);
    size_t need = json_dumpb(root, NULL, 0, JSON_COMPACT);
    char *out = malloc(need + 1);
    assert_non_null(out);
    assert_int_equal(json_dumpb(root, out, need, JSON_COMPACT), need);
    json_decref(root);
    *len = need;
    return out;
}

/* What the jansson encoders wrote: the reference. */
static char *reference(const struct cf_wire_msg *m, bool v1, size_t *len)
{
    char sent[CF_RFC3339_LEN + 1];
    if (cf_rfc3339_ms(m->ts, sent, sizeof sent) < 0)
        return NULL;
    json_t *p = json_object();
    json_t *text = json_stringn(m->text.p ? m->text.p : "", m->text.len),
           *from = json_stringn(m->from.p, m->from.len), *room = json_stringn(m->room.p, m->room.len);
    if (!text || !from || !room) {
        json_decref(text);
        json_decref(from);
        json_decref(room);
        json_decref(p);
        return NULL;
    }
    if (v1) {
        json_object_set_new(p, "room", room);
        if (m->has & CF_WIRE_HAS_ID)
            json_object_set_new(p, "id", json_integer((json_int_t)m->id));
        json_object_set_new(p, "message", text);
        json_object_set_new(p, "from", from);
        json_object_set_new(p, "sent", json_string(sent));
    } else {
        json_object_set_new(p, "message", text);
        json_object_set_new(p, "from", from);
        json_object_set_new(p, "sent", json_string(sent));
        json_object_set_new(p, "room", room);
    }
    return event_text("new_message", p, len);
}

static void same_as_jansson(const struct cf_wire_msg *m)
{
    for (int v1 = 0; v1 < 2; v1++) {
        size_t want_len = 0;
        char *want = reference(m, v1, &want_len);
        struct cf_buf *b = v1 ? jev_v1_message(m, 16) : jev_legacy_message(m, 16);
        if (!want) {
            assert_null(b);
            continue;
        }
        assert_non_null(b);
        assert_int_equal(b->head, 16);
        assert_int_equal(b->refs, 1);
        assert_true(b->head + b->len <= b->cap);
        if (b->len != want_len || memcmp(cf_buf_payload(b), want, want_len) != 0)
            fail_msg("%s event differs:\n got  %.*s\n want %s", v1 ? "v1" : "legacy", (int)b->len,
                     (const char *)cf_buf_payload(b), want);
        cf_buf_unref(b);
        free(want);
    }
}

/* Pieces texts are made of: everything JSON escapes, multi-byte UTF-8
 * (two, three and four bytes, U+2028 which JavaScript minds), DEL, slash. */
static const char *const pieces[] = {
    "a", "Z", "0", " ", "\"", "\\", "/", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xe2\x80\xa8",
    "\xf0\x9f\x98\x80", "<b>", "\\u0000", "{}", ":", ",",
};

static size_t random_text(char *out, size_t cap, unsigned *seed)
{
    size_t n = 0, want = (size_t)(rand_r(seed) % 40);
    for (size_t i = 0; i < want; i++) {
        char one[2] = {0};
        const char *p;
        if (rand_r(seed) % 4 == 0) { /* any control character, NUL included */
            one[0] = (char)(rand_r(seed) % 0x20);
            p = one;
        } else {
            p = pieces[rand_r(seed) % (sizeof pieces / sizeof pieces[0])];
        }
        size_t len = p == one ? 1 : strlen(p);
        if (n + len > cap)
            break;
        memcpy(out + n, p, len);
        n += len;
    }
    return n;
}

static void test_matches_jansson_for_any_text(void **state)
{
    (void)state;
    unsigned seed = 20261129;
    char text[256], from[256], room[256];
    for (int i = 0; i < 20000; i++) {
        struct cf_wire_msg m = {.type = CF_WIRE_MSG};
        m.text = str(text, random_text(text, sizeof text, &seed));
        m.from = str(from, random_text(from, sizeof from, &seed));
        m.room = str(room, random_text(room, sizeof room, &seed));
        m.ts = (int64_t)rand_r(&seed) * 1000003 - 1000000000LL;
        if (rand_r(&seed) % 2) {
            m.has |= CF_WIRE_HAS_ID;
            m.id = (uint64_t)rand_r(&seed) * (rand_r(&seed) % 3 ? 1 : 0x100000001ULL);
        }
        same_as_jansson(&m);
    }
}

static void test_edges(void **state)
{
    (void)state;
    struct cf_wire_msg m = {.type = CF_WIRE_MSG,
                            .room = str("general", 7),
                            .from = str("alice", 5),
                            .text = str("hi", 2),
                            .ts = 1795860000123LL};
    same_as_jansson(&m);
    /* (test_legacy holds the exact legacy text clients of the old chat parse) */
    m.has = CF_WIRE_HAS_ID;
    static const uint64_t ids[] = {0, 1, INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        m.id = ids[i];
        same_as_jansson(&m);
    }
    /* msgpack-c gives an empty string a NULL pointer: an empty text */
    m.text = str(NULL, 0);
    same_as_jansson(&m);
    /* not UTF-8, or a time with no RFC 3339 form: no event */
    m.text = str("bad \xff", 5);
    assert_null(jev_legacy_message(&m, 0));
    assert_null(jev_v1_message(&m, 0));
    m.text = str("\xed\xa0\x80", 3); /* a UTF-16 surrogate */
    assert_null(jev_v1_message(&m, 0));
    m.text = str("ok", 2);
    m.ts = INT64_MAX;
    assert_null(jev_legacy_message(&m, 0));
    assert_null(jev_v1_message(&m, 0));
    /* the longest text a message may carry, every byte escaped */
    static char big[64 * 1024];
    memset(big, '\n', sizeof big);
    m.ts = 0;
    m.text = str(big, sizeof big);
    same_as_jansson(&m);
}

/* The ack as v1codec built it with jansson: a field jansson refuses (a
 * string that is not UTF-8, a time with no RFC 3339 form) is left out. */
static char *reference_ack(struct cf_str id, struct cf_str room, uint64_t mid, int64_t ts,
                           size_t *len)
{
    json_t *o = json_object();
    if (id.len)
        json_object_set_new(o, "id", json_stringn(id.p, id.len));
    json_object_set_new(o, "room", json_stringn(room.p ? room.p : "", room.len));
    json_object_set_new(o, "message_id", json_integer((json_int_t)mid));
    char sent[CF_RFC3339_LEN + 1];
    json_object_set_new(o, "sent",
                        cf_rfc3339_ms(ts, sent, sizeof sent) < 0 ? NULL : json_string(sent));
    return event_text("ack", o, len);
}

static void expect_text(struct cf_buf *b, const char *want, size_t want_len)
{
    assert_non_null(b);
    if (b->len != want_len || memcmp(cf_buf_payload(b), want, want_len) != 0)
        fail_msg("ack differs:\n got  %.*s\n want %s", (int)b->len,
                 (const char *)cf_buf_payload(b), want);
    cf_buf_unref(b);
}

/* The direct writer (whenever every field is one jansson takes) and v1codec,
 * which falls back to jansson otherwise, against jansson's text. */
static void ack_same_as_jansson(struct cf_str id, struct cf_str room, uint64_t mid, int64_t ts)
{
    size_t want_len = 0;
    char *want = reference_ack(id, room, mid, ts, &want_len);
    char sent[CF_RFC3339_LEN + 1];
    if (cf_utf8_valid(id.p, id.len) && cf_utf8_valid(room.p, room.len) &&
        cf_rfc3339_ms(ts, sent, sizeof sent) == CF_RFC3339_LEN)
        expect_text(jev_v1_ack(id, room, mid, ts, 16), want, want_len);
    expect_text(v1_encode_ack(SESS_V1_JSON, id, room, mid, ts), want, want_len);
    free(want);
}

static void test_acks_match_jansson(void **state)
{
    (void)state;
    unsigned seed = 7;
    char id[256], room[256];
    for (int i = 0; i < 20000; i++) {
        struct cf_str sid = str(id, rand_r(&seed) % 4 ? random_text(id, 64, &seed) : 0);
        struct cf_str sroom = str(room, random_text(room, sizeof room, &seed));
        uint64_t mid = (uint64_t)rand_r(&seed) * (rand_r(&seed) % 3 ? 1 : 0x100000001ULL);
        /* 1970 ± 68 years, within what RFC 3339 times can show */
        int64_t ts = ((int64_t)rand_r(&seed) - RAND_MAX / 2) * 1000 + rand_r(&seed) % 1000;
        ack_same_as_jansson(sid, sroom, mid, ts);
    }
    static const uint64_t mids[] = {0, 1, INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof mids / sizeof mids[0]; i++)
        ack_same_as_jansson(str("r1", 2), str("general", 7), mids[i], 1795860000123LL);
    /* what jansson refuses it leaves out, and so does the ack */
    ack_same_as_jansson(str("bad \xff", 5), str("general", 7), 3, 0);
    ack_same_as_jansson(str("r1", 2), str("\xff", 1), 3, 0);
    ack_same_as_jansson(str("r1", 2), str("general", 7), 3, INT64_MAX);
    ack_same_as_jansson(str("r1", 2), str("general", 7), 3, -62167219200001LL);
    assert_null(jev_v1_ack(str("bad \xff", 5), str("general", 7), 3, 0, 0));
    assert_null(jev_v1_ack(str("r1", 2), str("\xff", 1), 3, 0, 0));
    assert_null(jev_v1_ack(str("r1", 2), str("general", 7), 3, INT64_MAX, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_jansson_for_any_text),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_acks_match_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
