/* Bad JSON (and msgpack) on both client protocols: a wrong type or value
 * for every field of every v1 request, in both v1 encodings; nesting
 * 10000 levels deep; huge strings; NUL characters and lone surrogates;
 * legacy events with the wrong shapes. v1 answers each with the `error`
 * event and code docs/protocol.md gives (with `ref` and `room` where the
 * request had them); the legacy protocol ignores them. After each, the
 * connection still works and two witnesses still chat. */
#include "bad_input.h"

static struct h_fixture fx;
static struct h_node big; /* MAX_MESSAGE_BYTES=65536, to get deep nesting through */
static struct witness wit;

static int setup(void **state)
{
    (void)state;
    static const char *const env[] = {"PING_INTERVAL=120", NULL};
    if (h_fixture_up(&fx, env) < 0)
        return -1;
    h_node_init(&big, fx.redis.addr);
    big.extra_env[0] = "MAX_MESSAGE_BYTES=65536";
    big.extra_env[1] = "PING_INTERVAL=120";
    if (h_node_start(&big) < 0)
        return -1;
    witness_open(&wit, fx.node.port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    witness_close(&wit);
    h_node_dump_logs(&big);
    int bad = h_node_stop(&big);
    return h_fixture_down(&fx) < 0 || bad ? -1 : 0;
}

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, err.text);
    return v;
}

/* ---- every field of every v1 request ---------------------------------- */

/* A valid request of each type; each case below spoils one field of it. */
static const struct {
    const char *type, *payload, *room;
} base[] = {
    {"join", "{\"room\":\"bi-new\"}", "bi-new"},
    {"leave", "{\"room\":\"bi\"}", "bi"},
    {"send", "{\"room\":\"bi\",\"message\":\"hi\"}", "bi"},
    {"history", "{\"room\":\"bi\"}", "bi"},
    {"typing", "{\"room\":\"bi\"}", "bi"},
    {"change_room", "{\"name\":\"bi\"}", NULL},
};

#define ROOM65 "\"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\""
#define ID65 "\"iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii\""
#define EPOCH65 "\"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\""

/* Field, the request types that have it, bad values and the code each gets. */
static const struct {
    const char *field;
    const char *types; /* space-separated */
    const char *values[10];
    const char *code;
} spoil[] = {
    {"room",
     "join leave send history typing",
     {"5", "1.5", "true", "null", "[]", "{}", "[\"bi\"]"},
     "bad_request"},
    {"room",
     "join leave send history typing",
     {"\"\"", "\"a b\"", "\"a/b\"", "\"caf\\u00e9\"", "\"a\\nb\"", ROOM65},
     "bad_room"},
    {"name", "change_room", {"5", "true", "null", "[]", "{}"}, "bad_request"},
    {"name", "change_room", {"\"\"", "\"a b\"", "\"../x\"", ROOM65}, "bad_room"},
    {"id",
     "join leave send history typing change_room",
     {"5", "true", "[]", "{}", "\"\"", ID65},
     "bad_id"},
    {"message", "send", {"5", "true", "null", "[]", "{}", "1.5"}, "bad_request"},
    {"message",
     "send",
     {"\"\"", "\" \\t\\r\\n\"", "\"\\u00a0\\u3000\"", "\"\\u200b\""},
     "empty_message"},
    {"since", "join", {"\"3\"", "-1", "1.5", "true", "[]", "{}", "1e300"}, "bad_request"},
    {"epoch", "join", {"5", "\"\"", EPOCH65, "true", "[]", "{}"}, "bad_request"},
    {"limit", "join history", {"\"5\"", "-1", "1.5", "true", "[]", "{}"}, "bad_request"},
    {"before", "history", {"\"5\"", "-1", "1.5", "false", "[]", "{}"}, "bad_request"},
};

static bool has_type(const char *list, const char *type)
{
    size_t n = strlen(type);
    for (const char *p = strstr(list, type); p; p = strstr(p + 1, type))
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* Runs every spoiled request on one client; returns how many were sent. */
static int every_field(struct v1c *c)
{
    int n = 0;
    for (size_t f = 0; f < sizeof spoil / sizeof *spoil; f++) {
        for (size_t b = 0; b < sizeof base / sizeof *base; b++) {
            if (!has_type(spoil[f].types, base[b].type))
                continue;
            for (size_t v = 0; v < 10 && spoil[f].values[v]; v++) {
                bool is_id = !strcmp(spoil[f].field, "id");
                char ref[16];
                snprintf(ref, sizeof ref, "f%d", ++n);
                json_t *p = parse(base[b].payload);
                json_object_set_new(p, spoil[f].field, parse(spoil[f].values[v]));
                if (!is_id)
                    json_object_set_new(p, "id", json_string(ref));
                assert_int_equal(v1_send(c, base[b].type, p), 0);
                /* The room is named when it was valid; never for bad ids
                 * (checked first) nor for bad rooms. */
                bool room_ok = !is_id && strcmp(spoil[f].field, "room") != 0 &&
                               strcmp(spoil[f].field, "name") != 0;
                json_t *ev = v1_wait(c, V1_WAIT, "error", NULL);
                if (!ev) {
                    v1_dump(c, "every field");
                    fail_msg("%s with %s=%s: no error", base[b].type, spoil[f].field,
                             spoil[f].values[v]);
                }
                const char *code = pstr(ev, "code"), *got_ref = pstr(ev, "ref"),
                           *room = pstr(ev, "room");
                bool ok = code && !strcmp(code, spoil[f].code) &&
                          json_is_string(json_object_get(pl(ev), "message")) &&
                          (is_id ? !got_ref : got_ref && !strcmp(got_ref, ref)) &&
                          (room_ok && base[b].room ? room && !strcmp(room, base[b].room) : !room);
                if (!ok) {
                    char *s = json_dumps(ev, JSON_COMPACT);
                    fail_msg("%s with %s=%s: got %s; expected %s%s%s", base[b].type, spoil[f].field,
                             spoil[f].values[v], s, spoil[f].code, is_id ? "" : " with ref ",
                             is_id ? "" : ref);
                }
                json_decref(ev);
            }
        }
    }
    return n;
}

static void test_v1_wrong_values_for_every_field(void **state)
{
    (void)state;
    for (int enc = V1_JSON; enc <= V1_MSGPACK; enc++) {
        struct v1c *c = v1_member(fx.node.port, "fields", (enum v1_enc)enc),
                   *other = v1_member(fx.node.port, "other", V1_JSON);
        join_quietly(c, "bi");
        join_quietly(other, "bi");
        int n = every_field(c);
        printf("%s: %d refused requests\n", enc == V1_JSON ? "confab.v1" : "confab.msgpack.v1", n);
        /* None of them did anything. */
        V1_NONE(c, 200, "joined", NULL);
        V1_NONE(c, 0, "left", NULL);
        V1_NONE(c, 0, "ack", NULL);
        V1_NONE(other, 0, "new_message", NULL);
        V1_NONE(other, 0, "typing", NULL);
        assert_int_equal(v1_bad_frames(c), 0);
        send_ok(c, "bi", "still in bi", enc == V1_JSON ? "ok-json" : "ok-msgpack");
        expect_new(other, "bi", "still in bi", "fields");
        v1_close(c);
        v1_close(other);
    }
    witness_check(&wit, &fx.node);
}

/* ---- nesting and size ----------------------------------------------- */

static char *repeat(const char *head, char c, size_t n, const char *tail)
{
    size_t h = strlen(head), t = strlen(tail);
    char *s = malloc(h + n + t + 1);
    memcpy(s, head, h);
    memset(s + h, c, n);
    memcpy(s + h + n, tail, t + 1);
    return s;
}

/* 10000 and 60000 levels of `[`, alone and inside a valid request: the
 * parser refuses them (bad_json) instead of recursing; msgpack the same.
 * A message of 60000 characters is fine when MAX_MESSAGE_BYTES allows it. */
static void test_v1_deep_nesting_and_huge_strings(void **state)
{
    (void)state;
    struct v1c *j = v1_member(big.port, "deep", V1_JSON),
               *m = v1_member(big.port, "deep", V1_MSGPACK);
    static const size_t depths[] = {4000, 10000, 60000};
    for (size_t i = 0; i < 3; i++) {
        char *s = repeat("", '[', depths[i], "");
        raw_error(j, s, "bad_json");
        free(s);
        s = repeat("{\"type\":\"join\",\"payload\":{\"room\":\"deep\",\"x\":", '[', depths[i], "");
        raw_error(j, s, "bad_json");
        free(s);
        /* msgpack: fixarray(1) nested */
        char *mp = repeat("", (char)0x91, depths[i], "");
        assert_int_equal(wsc_send_frame(v1_wsc(m), WS_BINARY, true, mp, depths[i]), 0);
        expect_error(m, "bad_json", NULL, NULL);
        free(mp);
    }
    /* Deep but closed, inside an unknown payload key: still refused, not
     * silently accepted after a deep recursion. */
    char *open = repeat("{\"type\":\"join\",\"payload\":{\"room\":\"deep\",\"x\":", '[', 10000, "");
    char *s = repeat(open, ']', 10000, "}}");
    raw_error(j, s, "bad_json");
    free(open);
    free(s);

    json_decref(join_ok(j, "deep"));
    json_decref(join_ok(m, "deep"));
    char *text = repeat("", 'y', 60000, "");
    send_ok(j, "deep", text, "huge-1");
    expect_new(m, "deep", text, "deep");
    expect_new(j, "deep", text, "deep");
    free(text);
    assert_int_equal(v1_bad_frames(m), 0);
    v1_close(j);
    v1_close(m);
    assert_true(h_alive(&big.gateway));
    assert_int_equal(h_wait_health(big.port, 200, 5000), 0);
    witness_check(&wit, &fx.node);
}

/* ---- valid JSON that holds values the server cannot use ---------------- */

/* `\u0000` and lone surrogates are valid JSON (RFC 8259) and
 * integers past 2^63 are too; they are a wrong value in one field, so the
 * answer is that field's code with the request's ref (as the msgpack
 * encoding already answers for NUL), not bad_json without a ref, which a
 * client cannot match to its request (confab-client.js resends it until
 * ackTimeout, forever). */
static void test_v1_unusable_values_are_refused_with_their_ref(void **state)
{
    (void)state;
    struct v1c *j = v1_member(fx.node.port, "nul", V1_JSON),
               *m = v1_member(fx.node.port, "nul", V1_MSGPACK),
               *other = v1_member(fx.node.port, "other", V1_JSON);
    join_quietly(j, "nul");
    join_quietly(m, "nul");
    join_quietly(other, "nul");

    /* msgpack: NUL in the message and in a room name. */
    json_t *p = json_pack("{s:s, s:s}", "room", "nul", "id", "m1");
    json_object_set_new(p, "message", json_stringn("a\0b", 3));
    assert_int_equal(v1_send(m, "send", p), 0);
    expect_error(m, "bad_request", "m1", "nul");
    p = json_pack("{s:s}", "id", "m2");
    json_object_set_new(p, "room", json_stringn("a\0b", 3));
    assert_int_equal(v1_send(m, "join", p), 0);
    expect_error(m, "bad_room", "m2", NULL);
    /* A control character other than tab, LF or CR: JSON members would get
     * it as six bytes (\u0001), a way to flood their queues. */
    p = json_pack("{s:s, s:s, s:s}", "room", "nul", "id", "m3", "message", "a\001b");
    assert_int_equal(v1_send(m, "send", p), 0);
    expect_error(m, "bad_request", "m3", "nul");

    /* The same in JSON, and the other values JSON can hold. */
    static const struct {
        const char *frame, *code, *ref, *room;
    } cases[] = {
        {"{\"type\":\"send\",\"payload\":{\"room\":\"nul\",\"message\":\"a\\u0000b\",\"id\":\"j1\"}"
         "}",
         "bad_request", "j1", "nul"},
        {"{\"type\":\"join\",\"payload\":{\"room\":\"a\\u0000b\",\"id\":\"j2\"}}", "bad_room", "j2",
         NULL},
        {"{\"type\":\"send\",\"payload\":{\"room\":\"nul\",\"message\":\"a\\ud800b\",\"id\":\"j3\"}"
         "}",
         "bad_request", "j3", "nul"},
        {"{\"type\":\"send\",\"payload\":{\"room\":\"nul\",\"message\":\"\\udc00\",\"id\":\"j4\"}}",
         "bad_request", "j4", "nul"},
        {"{\"type\":\"send\",\"payload\":{\"room\":\"nul\",\"message\":\"a\\u001bb\",\"id\":\"j6\"}"
         "}",
         "bad_request", "j6", "nul"},
        {"{\"type\":\"join\",\"payload\":{\"room\":\"nul-2\",\"since\":99999999999999999999,"
         "\"id\":\"j5\"}}",
         "bad_request", "j5", "nul-2"},
    };
    int wrong = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(wsc_send_text(v1_wsc(j), cases[i].frame), 0);
        json_t *ev = v1_wait(j, V1_WAIT, "error", NULL);
        V1_MUST(j, ev, "error");
        const char *code = pstr(ev, "code"), *ref = pstr(ev, "ref"), *room = pstr(ev, "room");
        if (!code || strcmp(code, cases[i].code) || !ref || strcmp(ref, cases[i].ref) ||
            (cases[i].room ? !room || strcmp(room, cases[i].room) : room != NULL)) {
            char *s = json_dumps(ev, JSON_COMPACT);
            printf("BUG: %s\n  answered %s\n  expected code %s, ref %s\n", cases[i].frame, s,
                   cases[i].code, cases[i].ref);
            free(s);
            wrong++;
        }
        json_decref(ev);
    }
    V1_NONE(other, 200, "new_message", NULL);
    send_ok(j, "nul", "json still works", NULL);
    send_ok(m, "nul", "msgpack still works", NULL);
    send_ok(j, "nul", "tab\there\r\nnext line", NULL);
    v1_close(j);
    v1_close(m);
    v1_close(other);
    witness_check(&wit, &fx.node);
    if (wrong)
        fail_msg("%d valid JSON frames were refused without their ref (see above)", wrong);
}

/* ---- legacy ------------------------------------------------------------ */

/* Every wrong shape of the two legacy events is ignored: nothing is sent
 * back, nothing reaches the room, and the connection stays in its room. */
static void test_legacy_wrong_shapes_are_ignored(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "alice", "calm"), *b = member(fx.node.port, "bob", "calm");
    settle((struct wsc *[]){a, b}, 2);
    static const char *const values[] = {"5",
                                         "1.5",
                                         "true",
                                         "null",
                                         "[]",
                                         "{}",
                                         "[\"x\"]",
                                         "\"\"",
                                         "\" \\t\\r\\n \"",
                                         "\"\\u00a0\\u200b\"",
                                         "\"a\\u0000b\"",
                                         "\"a\\u0001b\"",
                                         "\"\\u001b[31mred\"",
                                         "\"\\ud800\"",
                                         "\"\\udc00x\""};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        char frame[160];
        snprintf(frame, sizeof frame, "{\"type\":\"send_message\",\"payload\":{\"message\":%s}}",
                 values[i]);
        assert_int_equal(wsc_send_text(a, frame), 0);
        snprintf(frame, sizeof frame, "{\"type\":\"change_room\",\"payload\":{\"name\":%s}}",
                 values[i]);
        assert_int_equal(wsc_send_text(a, frame), 0);
        snprintf(frame, sizeof frame, "{\"type\":\"send_message\",\"payload\":%s}", values[i]);
        assert_int_equal(wsc_send_text(a, frame), 0);
        snprintf(frame, sizeof frame, "{\"type\":%s,\"payload\":{\"message\":\"typed\"}}",
                 values[i]);
        assert_int_equal(wsc_send_text(a, frame), 0);
    }
    static const char *const names[] = {"\"a b\"", "\"../x\"", "\"caf\\u00e9\"", ROOM65,
                                        "\"a\\u0000b\""};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char frame[160];
        snprintf(frame, sizeof frame, "{\"type\":\"change_room\",\"payload\":{\"name\":%s}}",
                 names[i]);
        assert_int_equal(wsc_send_text(a, frame), 0);
    }
    static const char *const other[] = {
        "{\"type\":\"join\",\"payload\":{\"room\":\"x\"}}",
        "{\"type\":\"new_message\",\"payload\":{\"message\":\"forged\",\"from\":\"bob\"}}",
        "{\"type\":\"SEND_MESSAGE\",\"payload\":{\"message\":\"case\"}}",
        "{\"type\":\"send_message\",\"payload\":{\"message\":\"1\"},\"type\":\"change_room\"}",
        "{\"payload\":{\"message\":\"no type\"}}",
        "{\"type\":\"send_message\",\"payload\":{\"message\":\"x\"}} trailing",
        "\xef\xbb\xbf{\"type\":\"send_message\",\"payload\":{\"message\":\"bom\"}}",
        "",
    };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        assert_int_equal(wsc_send_text(a, other[i]), 0);
    assert_true(wsc_quiet(a, 300));
    assert_true(wsc_quiet(b, 0));
    say(a, "still calm");
    expect_message(a, "still calm", "alice");
    expect_message(b, "still calm", "alice");
    /* of the control characters, tab, line feed and carriage return pass */
    say(a, "tab\there\r\nnext line");
    expect_message(a, "tab\there\r\nnext line", "alice");
    expect_message(b, "tab\there\r\nnext line", "alice");
    wsc_close(a);
    wsc_close(b);
    witness_check(&wit, &fx.node);
}

/* 10000 and 60000 levels of `[` (alone and as the message) and a 60000
 * character message on the legacy protocol, where MAX_MESSAGE_BYTES lets
 * them through: the deep ones are ignored, the long one is delivered. */
static void test_legacy_deep_nesting_and_huge_strings(void **state)
{
    (void)state;
    struct wsc *a = member(big.port, "alice", "deep"), *b = member(big.port, "bob", "deep");
    settle((struct wsc *[]){a, b}, 2);
    static const size_t depths[] = {10000, 60000};
    for (size_t i = 0; i < 2; i++) {
        char *s = repeat("", '[', depths[i], "");
        assert_int_equal(wsc_send_text(a, s), 0);
        free(s);
        s = repeat("{\"type\":\"send_message\",\"payload\":{\"message\":", '[', depths[i], "");
        assert_int_equal(wsc_send_text(a, s), 0);
        free(s);
    }
    assert_true(wsc_quiet(a, 300));
    assert_true(wsc_quiet(b, 0));
    char *text = repeat("", 'z', 60000, "");
    say(a, text);
    expect_message(b, text, "alice");
    expect_message(a, text, "alice");
    free(text);
    wsc_close(a);
    wsc_close(b);
    assert_true(h_alive(&big.gateway));
    witness_check(&wit, &fx.node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_wrong_values_for_every_field),
        cmocka_unit_test(test_v1_deep_nesting_and_huge_strings),
        cmocka_unit_test(test_legacy_wrong_shapes_are_ignored),
        cmocka_unit_test(test_legacy_deep_nesting_and_huge_strings),
        cmocka_unit_test(test_v1_unusable_values_are_refused_with_their_ref),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
