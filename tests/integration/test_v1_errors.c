/* Protocol v1 refusals and limits: every error code a client can provoke,
 * with its `ref` and `room`, and the connection staying open after each; the
 * caps on limit and members; the close codes of v1 (1003 for the wrong frame
 * kind, 1007, 1009); the msgpack encoding end to end; too_many_requests and
 * timeout while a broker is stopped, and the other shard working meanwhile. */
#include "v1.h"
#include "prom.h"

#include <unistd.h>

static struct h_fixture fx;

enum { MAX_ROOMS = 3 };

static int setup(void **state)
{
    static const char *const env[] = {"MAX_ROOMS_PER_CONN=3", "HISTORY_SIZE=150", NULL};
    *state = &fx;
    return h_fixture_up(&fx, env);
}

static struct v1c *user(const char *name)
{
    return v1_member(fx.node.port, name, V1_JSON);
}

/* After any refusal the connection still works: a join and a send. */
static void still_works(struct v1c *c, const char *room)
{
    json_decref(join_ok(c, room));
    send_ok(c, room, "still here", "still-1");
    expect_new(c, room, "still here", NULL);
}

/* Sends {"type":type,"payload":payload} with payload given as JSON text. */
static void request(struct v1c *c, const char *type, const char *payload_json)
{
    json_error_t err;
    json_t *p = json_loads(payload_json, 0, &err);
    if (!p)
        fail_msg("bad test JSON %s: %s", payload_json, err.text);
    assert_int_equal(v1_send(c, type, p), 0);
}

static void test_bad_json(void **state)
{
    (void)state;
    struct v1c *c = user("alice");
    static const char *const frames[] = {
        "not json",
        "{\"type\":\"join\",\"payload\":{\"room\":\"x\"}", /* cut short */
        "[\"join\",{\"room\":\"x\"}]",
        "\"join\"",
        "{\"type\":1,\"payload\":{}}",
        "{\"payload\":{\"room\":\"x\"}}",
        "{\"type\":\"join\"}",
        "{\"type\":\"join\",\"payload\":\"x\"}",
        "{\"type\":\"join\",\"payload\":[]}",
    };
    for (size_t i = 0; i < sizeof frames / sizeof *frames; i++)
        raw_error(c, frames[i], "bad_json");
    still_works(c, "bj");
    v1_close(c);
}

static void test_unknown_type(void **state)
{
    (void)state;
    struct v1c *c = user("alice");
    request(c, "fly", "{\"id\":\"u1\"}");
    expect_error(c, "unknown_type", "u1", NULL);
    /* Legacy and server-side types are not v1 requests. */
    request(c, "send_message", "{\"message\":\"hi\",\"id\":\"u2\"}");
    expect_error(c, "unknown_type", "u2", NULL);
    request(c, "new_message", "{\"room\":\"x\",\"id\":\"u3\"}");
    expect_error(c, "unknown_type", "u3", NULL);
    request(c, "JOIN", "{\"room\":\"x\"}");
    expect_error(c, "unknown_type", NULL, NULL);
    still_works(c, "ut");
    v1_close(c);
}

/* ping is answered by the gateway itself with pong (its id echoed), also
 * while every broker is stopped and in msgpack: what a client uses to tell a
 * live link from a dead one, since a browser cannot see WebSocket pings. */
static void test_ping_is_answered_by_the_gateway(void **state)
{
    (void)state;
    struct v1c *c = user("alice"), *m = v1_member(fx.node.port, "mia", V1_MSGPACK);
    for (int i = 0; i < fx.node.brokers; i++)
        stop_process(&fx.node.broker[i]);
    request(c, "ping", "{\"id\":\"p1\"}");
    json_t *with_id = v1_wait(c, V1_WAIT, "pong", "id", "p1", NULL);
    request(c, "ping", "{}");
    json_t *bare = v1_wait(c, V1_WAIT, "pong", NULL);
    request(m, "ping", "{\"id\":\"p2\"}");
    json_t *packed = v1_wait(m, V1_WAIT, "pong", "id", "p2", NULL);
    for (int i = 0; i < fx.node.brokers; i++)
        h_kill(&fx.node.broker[i], SIGCONT);
    V1_MUST(c, with_id, "pong p1");
    V1_MUST(c, bare, "pong");
    assert_null(json_object_get(pl(bare), "id"));
    V1_MUST(m, packed, "pong p2 (msgpack)");
    json_decref(with_id);
    json_decref(bare);
    json_decref(packed);
    assert_true(v1_none(c, 200, "error", NULL));
    still_works(c, "pinged");
    v1_close(c);
    v1_close(m);
}

static void test_bad_request(void **state)
{
    (void)state;
    struct v1c *c = user("alice");
    join_quietly(c, "br");
    static const char *const cases[][2] = {
        {"join", "{\"id\":\"b1\"}"},
        {"join", "{\"room\":5,\"id\":\"b2\"}"},
        {"join", "{\"room\":\"br-2\",\"limit\":-1,\"id\":\"b3\"}"},
        {"join", "{\"room\":\"br-2\",\"limit\":\"5\",\"id\":\"b4\"}"},
        {"join", "{\"room\":\"br-2\",\"since\":\"3\",\"epoch\":\"e\",\"id\":\"b5\"}"},
        {"join", "{\"room\":\"br-2\",\"since\":3,\"epoch\":7,\"id\":\"b6\"}"},
        {"leave", "{\"id\":\"b7\"}"},
        {"send", "{\"room\":\"br\",\"id\":\"b8\"}"},
        {"send", "{\"room\":\"br\",\"message\":5,\"id\":\"b9\"}"},
        {"send", "{\"message\":\"hi\",\"id\":\"b10\"}"},
        {"history", "{\"room\":\"br\",\"limit\":\"x\",\"id\":\"b11\"}"},
        {"history", "{\"room\":\"br\",\"before\":\"x\",\"id\":\"b12\"}"},
        {"history", "{\"room\":\"br\",\"limit\":-5,\"id\":\"b13\"}"},
        {"history", "{\"id\":\"b14\"}"},
        {"typing", "{\"id\":\"b15\"}"},
        {"change_room", "{\"id\":\"b16\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        request(c, cases[i][0], cases[i][1]);
        char ref[8];
        snprintf(ref, sizeof ref, "b%zu", i + 1);
        expect_error(c, "bad_request", ref, NULL);
    }
    /* None of these joined anything or sent anything. */
    V1_NONE(c, 200, "joined", NULL);
    V1_NONE(c, 0, "new_message", NULL);
    still_works(c, "br-3");
    v1_close(c);
}

static void test_bad_room(void **state)
{
    (void)state;
    struct v1c *c = user("alice");
    char long_name[66];
    memset(long_name, 'r', 65);
    long_name[65] = '\0';
    const char *rooms[] = {"", "has space", "slash/room", "caf\xc3\xa9", long_name};
    for (size_t i = 0; i < sizeof rooms / sizeof *rooms; i++) {
        char ref[8];
        snprintf(ref, sizeof ref, "r%zu", i);
        assert_int_equal(v1_send(c, "join", json_pack("{s:s, s:s}", "room", rooms[i], "id", ref)),
                         0);
        expect_error(c, "bad_room", ref, NULL);
        snprintf(ref, sizeof ref, "s%zu", i);
        send_req(c, rooms[i], "hi", ref);
        expect_error(c, "bad_room", ref, NULL);
    }
    /* 64 bytes of every allowed character class are fine. */
    char ok[65];
    memset(ok, 'a', 64);
    memcpy(ok, "Az09_.:-", 8);
    ok[64] = '\0';
    json_decref(join_ok(c, ok));
    still_works(c, "room-ok");
    v1_close(c);
}

static void test_bad_id(void **state)
{
    (void)state;
    struct v1c *c = user("alice");
    join_quietly(c, "ids");
    char id64[65], id65[66];
    memset(id64, 'i', 64);
    id64[64] = '\0';
    memset(id65, 'i', 65);
    id65[65] = '\0';
    send_req(c, "ids", "empty id", "");
    expect_error(c, "bad_id", V1_ANY_REF, NULL);
    send_req(c, "ids", "long id", id65);
    expect_error(c, "bad_id", V1_ANY_REF, NULL);
    request(c, "send", "{\"room\":\"ids\",\"message\":\"numeric id\",\"id\":7}");
    expect_error(c, "bad_id", V1_ANY_REF, NULL);
    request(c, "join", "{\"room\":\"ids-2\",\"id\":\"\"}");
    expect_error(c, "bad_id", V1_ANY_REF, NULL);
    V1_NONE(c, 200, "new_message", NULL);
    /* 64 characters are fine (and so are non-ASCII ones). */
    send_ok(c, "ids", "longest id", id64);
    send_ok(c, "ids", "utf-8 id", "\xc3\xa9t\xc3\xa9-1");
    v1_close(c);
}

static void test_empty_message(void **state)
{
    (void)state;
    struct v1c *c = user("alice"), *other = user("bob");
    join_quietly(c, "empty");
    join_quietly(other, "empty");
    send_req(c, "empty", "", "e1");
    expect_error(c, "empty_message", "e1", "empty");
    send_req(c, "empty", " \t\r\n ", "e2");
    expect_error(c, "empty_message", "e2", "empty");
    send_req(c, "empty", "   ", NULL);
    expect_error(c, "empty_message", NULL, "empty");
    V1_NONE(other, 200, "new_message", NULL);
    /* Surrounding whitespace is allowed around real text. */
    send_ok(c, "empty", "  x  ", "e3");
    expect_new(other, "empty", "  x  ", "alice");
    v1_close(c);
    v1_close(other);
}

static void test_not_member(void **state)
{
    (void)state;
    struct v1c *c = user("alice"), *b = user("bob");
    join_quietly(b, "members-only");
    send_req(c, "members-only", "hi", "n1");
    expect_error(c, "not_member", "n1", "members-only");
    request(c, "history", "{\"room\":\"members-only\",\"id\":\"n2\"}");
    expect_error(c, "not_member", "n2", "members-only");
    request(c, "typing", "{\"room\":\"members-only\",\"id\":\"n3\"}");
    expect_error(c, "not_member", "n3", "members-only");
    request(c, "leave", "{\"room\":\"members-only\",\"id\":\"n4\"}");
    expect_error(c, "not_member", "n4", "members-only");
    request(c, "leave", "{\"room\":\"members-only\"}");
    expect_error(c, "not_member", NULL, "members-only");
    V1_NONE(b, 200, "new_message", NULL);
    V1_NONE(b, 0, "typing", NULL);
    still_works(c, "members-only");
    v1_close(c);
    v1_close(b);
}

static void test_already_joined(void **state)
{
    (void)state;
    struct v1c *c = user("alice");
    join_quietly(c, "twice");
    request(c, "join", "{\"room\":\"twice\",\"id\":\"j1\"}");
    expect_error(c, "already_joined", "j1", "twice");
    /* A join still in flight counts too: two at once, one joined. */
    request(c, "join", "{\"room\":\"twice-2\",\"id\":\"j2\"}");
    request(c, "join", "{\"room\":\"twice-2\",\"id\":\"j3\"}");
    expect_error(c, "already_joined", "j3", "twice-2");
    json_t *ev = v1_wait(c, V1_WAIT, "joined", "room", "twice-2", NULL);
    V1_MUST(c, ev, "joined");
    json_decref(ev);
    V1_NONE(c, 300, "joined", NULL);
    /* The same user's other connection is a separate member. */
    struct v1c *c2 = user("alice");
    json_decref(join_ok(c2, "twice"));
    v1_close(c2);
    v1_close(c);
}

static void test_too_many_rooms(void **state)
{
    (void)state;
    struct v1c *c = user("alice");
    char room[16];
    for (int i = 0; i < MAX_ROOMS; i++) {
        snprintf(room, sizeof room, "many-%d", i);
        join_quietly(c, room);
    }
    request(c, "join", "{\"room\":\"many-x\",\"id\":\"m1\"}");
    expect_error(c, "too_many_rooms", "m1", "many-x");
    /* Per connection: another one of the same user may join it. */
    struct v1c *c2 = user("alice");
    json_decref(join_ok(c2, "many-x"));
    v1_close(c2);
    leave_ok(c, "many-0");
    json_decref(join_ok(c, "many-x"));
    send_ok(c, "many-x", "in again", NULL);
    v1_close(c);

    /* Joins still in flight count: MAX_ROOMS + 2 at once, exactly two refused. */
    c = user("alice");
    for (int i = 0; i < MAX_ROOMS + 2; i++) {
        char id[16];
        snprintf(room, sizeof room, "burst-%d", i);
        snprintf(id, sizeof id, "mb-%d", i);
        assert_int_equal(v1_send(c, "join", json_pack("{s:s, s:s}", "room", room, "id", id)), 0);
    }
    int joined = 0, refused = 0;
    for (int i = 0; i < MAX_ROOMS + 2; i++) {
        json_t *ev = v1_wait(c, V1_WAIT, NULL, NULL);
        V1_MUST(c, ev, "an answer");
        const char *t = json_string_value(json_object_get(ev, "type"));
        if (!strcmp(t, "joined"))
            joined++;
        else if (!strcmp(t, "error") && !strcmp(pstr(ev, "code"), "too_many_rooms"))
            refused++;
        else
            i--; /* presence and the like */
        json_decref(ev);
    }
    assert_int_equal(joined, MAX_ROOMS);
    assert_int_equal(refused, 2);
    v1_close(c);
}

/* The answer to request `id` in room: the event of `type` for room, or the
 * error with ref `id`; other events are dropped. */
static json_t *answer(struct v1c *c, const char *type, const char *room, const char *id)
{
    for (int64_t deadline = h_now_ms() + V1_WAIT; h_now_ms() < deadline;) {
        json_t *ev = v1_next(c, 100);
        const char *t = ev ? json_string_value(json_object_get(ev, "type")) : NULL;
        if (t && ((!strcmp(t, type) && pstr(ev, "room") && !strcmp(pstr(ev, "room"), room)) ||
                  (!strcmp(t, "error") && pstr(ev, "ref") && !strcmp(pstr(ev, "ref"), id))))
            return ev;
        json_decref(ev);
    }
    fail_msg("no answer to %s", id);
    return NULL;
}

/* limit is at most 100 (here the room keeps 150): a bigger one is either
 * refused as bad_request or capped, never more. */
static void test_limits_are_capped_at_100(void **state)
{
    (void)state;
    const char *room = "capped";
    struct v1c *c = user("alice"), *d = user("dave");
    join_quietly(c, room);
    for (int batch = 0; batch < 2; batch++) { /* under 64 waiting at a time */
        for (int i = 0; i < 60; i++)
            send_req(c, room, "c", NULL);
        for (int i = 0; i < 60; i++)
            json_decref(expect_ack(c, room, NULL));
    }
    assert_int_equal(
        v1_send(d, "join",
                json_pack("{s:s, s:i, s:s}", "room", room, "limit", 1000, "id", "cap-1")),
        0);
    json_t *ev = answer(d, "joined", room, "cap-1");
    printf("join with limit 1000: %s\n", json_string_value(json_object_get(ev, "type")));
    if (!strcmp(json_string_value(json_object_get(ev, "type")), "joined")) {
        json_t *msgs = json_object_get(pl(ev), "messages");
        assert_int_equal(json_array_size(msgs), 100);
        assert_int_equal(msg_id(json_array_get(msgs, 99)), 120);
    } else {
        assert_string_equal(pstr(ev, "code"), "bad_request");
        json_decref(join_ok(d, room));
    }
    json_decref(ev);
    assert_int_equal(
        v1_send(d, "history",
                json_pack("{s:s, s:i, s:s}", "room", room, "limit", 1000, "id", "cap-2")),
        0);
    ev = answer(d, "history", room, "cap-2");
    printf("history with limit 1000: %s\n", json_string_value(json_object_get(ev, "type")));
    if (!strcmp(json_string_value(json_object_get(ev, "type")), "history")) {
        json_t *msgs = json_object_get(pl(ev), "messages");
        assert_int_equal(json_array_size(msgs), 100);
        assert_int_equal(msg_id(json_array_get(msgs, 0)), 21);
        assert_true(json_is_true(json_object_get(pl(ev), "has_more")));
    } else {
        assert_string_equal(pstr(ev, "code"), "bad_request");
    }
    json_decref(ev);
    v1_close(c);
    v1_close(d);
}

/* joined.members lists at most 100 users; count has them all. */
static void test_members_are_capped_at_100(void **state)
{
    (void)state;
    enum { N = 102 };
    const char *room = "crowd";
    struct v1c *c[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", i);
        c[i] = user(name);
        assert_int_equal(v1_send(c[i], "join", json_pack("{s:s}", "room", room)), 0);
    }
    for (int i = 0; i < N; i++) {
        json_t *ev = v1_wait(c[i], V1_WAIT, "joined", "room", room, NULL);
        V1_MUST(c[i], ev, "joined");
        json_decref(ev);
    }
    struct v1c *last = user("zed");
    json_t *ev = join_ok(last, room);
    assert_int_equal(pint(ev, "count"), N + 1);
    assert_int_equal(json_array_size(json_object_get(pl(ev), "members")), 100);
    json_decref(ev);
    v1_close(last);
    for (int i = 0; i < N; i++)
        v1_close(c[i]);
}

static void test_binary_frame_on_json_closes_1003(void **state)
{
    (void)state;
    struct v1c *c = user("alice");
    char *mp;
    size_t n;
    json_t *ev = json_pack("{s:s, s:{s:s}}", "type", "join", "payload", "room", "x");
    assert_int_equal(v1_to_msgpack(ev, &mp, &n), 0);
    json_decref(ev);
    assert_int_equal(wsc_send_frame(v1_wsc(c), WS_BINARY, true, mp, n), 0);
    free(mp);
    assert_int_equal(wsc_wait_close(v1_wsc(c), V1_WAIT), 1003);
    v1_abort(c);
}

static void test_text_frame_on_msgpack_closes_1003(void **state)
{
    (void)state;
    struct v1c *c = v1_member(fx.node.port, "alice", V1_MSGPACK);
    assert_int_equal(wsc_send_text(v1_wsc(c), "{\"type\":\"join\",\"payload\":{\"room\":\"x\"}}"),
                     0);
    assert_int_equal(wsc_wait_close(v1_wsc(c), V1_WAIT), 1003);
    v1_abort(c);
}

static void test_bad_utf8_is_1007_and_too_big_is_1009(void **state)
{
    (void)state;
    struct v1c *c = user("alice");
    const char bad[] = "{\"type\":\"join\",\"payload\":{\"room\":\"\xc3\x28\"}}";
    assert_int_equal(wsc_send_frame(v1_wsc(c), WS_TEXT, true, bad, sizeof bad - 1), 0);
    assert_int_equal(wsc_wait_close(v1_wsc(c), V1_WAIT), 1007);
    v1_abort(c);

    c = user("alice");
    join_quietly(c, "big");
    char text[4200];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    send_req(c, "big", text, "big-1");
    assert_int_equal(wsc_wait_close(v1_wsc(c), V1_WAIT), 1009);
    v1_abort(c);
}

/* The msgpack encoding carries the same events: a msgpack and a JSON client
 * chat in one room; msgpack requests get msgpack answers and errors. */
static void test_msgpack_end_to_end(void **state)
{
    (void)state;
    const char *room = "packed";
    struct v1c *m = v1_member(fx.node.port, "mia", V1_MSGPACK), *j = user("jay");
    json_decref(join_ok(j, room));
    json_t *ev = join_ok(m, room); /* every integer decoded as an integer */
    assert_int_equal(pint(ev, "count"), 2);
    assert_true(has_member(ev, "jay") && has_member(ev, "mia"));
    json_decref(ev);
    assert_int_equal(expect_presence(j, room, "mia", "join", V1_WAIT), 2);

    json_int_t id = send_ok(m, room, "from msgpack \xf0\x9f\x8e\x89", "mp-1");
    assert_int_equal(expect_new(j, room, "from msgpack \xf0\x9f\x8e\x89", "mia"), id);
    assert_int_equal(expect_new(m, room, "from msgpack \xf0\x9f\x8e\x89", "mia"), id);
    json_int_t id2 = send_ok(j, room, "from json", "j-1");
    assert_int_equal(id2, id + 1);
    assert_int_equal(expect_new(m, room, "from json", "jay"), id2);

    assert_int_equal(v1_send(m, "history", json_pack("{s:s, s:i}", "room", room, "limit", 10)), 0);
    ev = v1_wait(m, V1_WAIT, "history", "room", room, NULL);
    V1_MUST(m, ev, "history");
    assert_int_equal(json_array_size(json_object_get(pl(ev), "messages")), 2);
    assert_false(json_is_true(json_object_get(pl(ev), "has_more")));
    json_decref(ev);
    assert_int_equal(v1_send(m, "typing", json_pack("{s:s}", "room", room)), 0);
    ev = v1_wait(j, V1_WAIT, "typing", "room", room, "user", "mia", NULL);
    V1_MUST(j, ev, "typing");
    json_decref(ev);

    /* Refusals in msgpack. */
    static const unsigned char garbage[] = {0xc1, 0x00, 0x01};
    static const unsigned char array[] = {0x92, 0xa4, 'j', 'o', 'i', 'n', 0x80};
    static const unsigned char no_type[] = {0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0x80};
    const struct {
        const unsigned char *b;
        size_t n;
    } bad[] = {{garbage, sizeof garbage}, {array, sizeof array}, {no_type, sizeof no_type}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(wsc_send_frame(v1_wsc(m), WS_BINARY, true, bad[i].b, bad[i].n), 0);
        expect_error(m, "bad_json", NULL, NULL);
    }
    assert_int_equal(v1_send(m, "fly", json_pack("{s:s}", "id", "mp-2")), 0);
    expect_error(m, "unknown_type", "mp-2", NULL);
    send_req(m, "not-joined", "x", "mp-3");
    expect_error(m, "not_member", "mp-3", "not-joined");
    send_req(m, room, " ", "mp-4");
    expect_error(m, "empty_message", "mp-4", room);

    /* Nothing above came as text, nor anything undecodable. */
    V1_NONE(m, 200, "no such event", NULL);
    assert_int_equal(v1_bad_frames(m), 0);
    leave_ok(m, room);
    assert_int_equal(expect_presence(j, room, "mia", "leave", V1_WAIT), 1);
    v1_close(m);
    v1_close(j);
}

/* More than 64 requests waiting (the room's broker is stopped): the rest
 * are refused at once; the 64 are answered once the broker resumes. */
static void test_too_many_requests(void **state)
{
    (void)state;
    char room[32];
    room_on_shard(room, sizeof room, "queue-", 1, 2);
    struct v1c *c = user("alice");
    join_quietly(c, room);
    stop_process(&fx.node.broker[1]);
    enum { N = 70, MAX = 64 };
    for (int i = 0; i < N; i++) {
        char id[16], text[16];
        snprintf(id, sizeof id, "q-%d", i);
        snprintf(text, sizeof text, "queued %d", i);
        send_req(c, room, text, id);
    }
    /* Look before resuming the broker, assert after (a failed assertion
     * must not leave it stopped). */
    int refused = 0;
    for (int i = MAX; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "q-%d", i);
        json_t *ev = v1_wait(c, V1_WAIT, "error", "code", "too_many_requests", "ref", id, NULL);
        refused += ev != NULL;
        json_decref(ev);
    }
    bool nothing_else = v1_none(c, 300, "error", NULL) && v1_none(c, 0, "ack", NULL);
    h_kill(&fx.node.broker[1], SIGCONT);
    if (refused != N - MAX || !nothing_else) {
        v1_dump(c, "too_many_requests");
        fail_msg("%d of the %d requests over %d refused; other answers while stopped: %s", refused,
                 N - MAX, MAX, nothing_else ? "none" : "some");
    }
    for (int i = 0; i < MAX; i++) {
        char id[16];
        snprintf(id, sizeof id, "q-%d", i);
        json_decref(expect_ack(c, room, id));
    }
    for (int i = 0; i < MAX; i++) {
        char text[16];
        snprintf(text, sizeof text, "queued %d", i);
        expect_new(c, room, text, "alice");
    }
    V1_NONE(c, 200, "new_message", NULL);
    V1_NONE(c, 0, "error", NULL);
    v1_close(c);
}

/* No answer within 10 s: timeout, outcome unknown; resending the same id
 * then gives the message exactly once. */
static void test_timeout_then_resend_is_exactly_once(void **state)
{
    (void)state;
    char room[32];
    room_on_shard(room, sizeof room, "slow-", 0, 2);
    struct v1c *a = user("alice"), *b = user("bob");
    join_quietly(a, room);
    join_quietly(b, room);
    stop_process(&fx.node.broker[0]);
    int64_t t0 = h_now_ms();
    send_req(a, room, "maybe sent", "t-1");
    json_t *ev = v1_wait(a, 13000, "error", NULL);
    int64_t waited = h_now_ms() - t0;
    h_kill(&fx.node.broker[0], SIGCONT);
    V1_MUST(a, ev, "timeout error");
    assert_string_equal(pstr(ev, "code"), "timeout");
    assert_string_equal(pstr(ev, "ref"), "t-1");
    json_decref(ev);
    printf("timeout after %lld ms\n", (long long)waited);
    assert_true(waited >= 9000);

    /* Resend as a client would (the broker may say unavailable for a moment
     * while it finds its feet again). */
    json_int_t id = resend_until_acked(a, room, "maybe sent", "t-1", 10000);
    for (int i = 0; i < 2; i++) {
        struct v1c *c = i ? b : a;
        assert_int_equal(expect_new(c, room, "maybe sent", "alice"), id);
        V1_NONE(c, i ? 50 : 500, "new_message", NULL);
    }
    v1_close(a);
    v1_close(b);
}

/* confab_gateway_broker_link_queued_bytes of shards 0 and 1. */
static void link_queued(double out[2])
{
    struct h_resp r;
    if (h_http(fx.node.port, "GET", "/metrics", NULL, NULL, 0, &r) < 0 || r.status != 200)
        fail_msg("GET /metrics failed");
    for (int i = 0; i < 2; i++) {
        char match[16];
        snprintf(match, sizeof match, "shard=\"%d\"", i);
        int n = 0;
        out[i] = prom_sum(r.body, "confab_gateway_broker_link_queued_bytes", match, &n);
        if (n != 1)
            out[i] = -1;
    }
    h_resp_free(&r);
}

/* One shard wedged (its broker stopped) next to a healthy one. The wedged
 * shard's link fills past what its socket holds, and the healthy shard's
 * rooms go on as before: for a client that also waits on the wedged shard,
 * and for one that connects and joins meanwhile. Once the broker resumes,
 * every request it was sent is answered. */
static void test_a_wedged_shard_leaves_the_other_working(void **state)
{
    (void)state;
    enum { FLOODERS = 6, EACH = 40 };
    char ra[32], rb[32], rf[FLOODERS][32], big[3901];
    room_on_shard(ra, sizeof ra, "wedged-", 0, 2);
    room_on_shard(rb, sizeof rb, "healthy-", 1, 2);
    memset(big, 'w', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct v1c *a = user("alice"), *b = user("bob"), *f[FLOODERS];
    join_quietly(a, ra);
    join_quietly(a, rb);
    join_quietly(b, rb);
    for (int i = 0; i < FLOODERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "flood%d-", i);
        /* a room each: a member that is not read takes only its own 156 KB,
         * under the gateway's slow-consumer bound */
        room_on_shard(rf[i], sizeof rf[i], name, 0, 2);
        f[i] = user(name);
        join_quietly(f[i], rf[i]);
    }
    stop_process(&fx.node.broker[0]);
    /* ~0.9 MB for shard 0: more than its link's socket buffers hold */
    for (int i = 0; i < FLOODERS; i++)
        for (int k = 0; k < EACH; k++) {
            char id[16];
            snprintf(id, sizeof id, "f-%d", k);
            send_req(f[i], rf[i], big, id);
        }
    send_req(a, ra, "waits", "w-1");
    /* Look before resuming the broker, assert after (a failed assertion
     * must not leave it stopped). */
    double queued[2] = {-1, -1};
    for (int64_t until = h_now_ms() + V1_WAIT; h_now_ms() < until; h_sleep_ms(20)) {
        link_queued(queued);
        if (queued[0] > 0)
            break; /* the gateway holds what the wedged broker's socket would not take */
    }
    int64_t t0 = h_now_ms();
    send_req(a, rb, "goes through", "g-1");
    json_t *ack = v1_wait(a, V1_WAIT, "ack", "id", "g-1", NULL);
    json_t *seen = v1_wait(b, V1_WAIT, "new_message", "room", rb, "message", "goes through", NULL);
    int64_t took = h_now_ms() - t0;
    struct v1c *c = v1_open(fx.node.port, "carol", V1_JSON);
    json_t *joined = NULL, *heard = NULL;
    if (c) {
        assert_int_equal(v1_send(c, "join", json_pack("{s:s}", "room", rb)), 0);
        joined = v1_wait(c, V1_WAIT, "joined", "room", rb, NULL);
        send_req(b, rb, "hello carol", "h-1");
        heard = v1_wait(c, V1_WAIT, "new_message", "room", rb, "message", "hello carol", NULL);
    }
    bool none_yet = v1_none(a, 0, "ack", "id", "w-1", NULL) && v1_none(a, 0, "error", NULL);
    double healthy_queued[2];
    link_queued(healthy_queued);
    h_kill(&fx.node.broker[0], SIGCONT);
    printf("healthy shard's send acked and delivered in %lld ms while the other was stopped "
           "with %.0f bytes queued for it\n",
           (long long)took, queued[0]);
    assert_true(queued[0] > 0);
    assert_true(healthy_queued[1] == 0);
    V1_MUST(a, ack, "ack of the healthy shard's send");
    V1_MUST(b, seen, "the healthy shard's message");
    assert_non_null(c);
    V1_MUST(c, joined, "a join on the healthy shard");
    V1_MUST(c, heard, "a message heard by the member who joined meanwhile");
    assert_true(none_yet); /* the wedged shard's request is neither done nor refused */
    json_decref(ack);
    json_decref(seen);
    json_decref(joined);
    json_decref(heard);
    /* the wedged shard's requests, all answered once it resumes */
    json_decref(expect_ack(a, ra, "w-1"));
    expect_new(a, ra, "waits", "alice");
    for (int i = 0; i < FLOODERS; i++) {
        for (int k = 0; k < EACH; k++) {
            char id[16];
            snprintf(id, sizeof id, "f-%d", k);
            json_decref(expect_ack(f[i], rf[i], id));
        }
        assert_int_equal(v1_count(f[i], 500, "new_message", "room", rf[i], "message", big, NULL),
                         EACH);
        V1_NONE(f[i], 0, "error", NULL);
        v1_close(f[i]);
    }
    v1_close(a);
    v1_close(b);
    v1_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_ping_is_answered_by_the_gateway),
        cmocka_unit_test(test_bad_request),
        cmocka_unit_test(test_bad_room),
        cmocka_unit_test(test_bad_id),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_not_member),
        cmocka_unit_test(test_already_joined),
        cmocka_unit_test(test_too_many_rooms),
        cmocka_unit_test(test_limits_are_capped_at_100),
        cmocka_unit_test(test_members_are_capped_at_100),
        cmocka_unit_test(test_binary_frame_on_json_closes_1003),
        cmocka_unit_test(test_text_frame_on_msgpack_closes_1003),
        cmocka_unit_test(test_bad_utf8_is_1007_and_too_big_is_1009),
        cmocka_unit_test(test_msgpack_end_to_end),
        cmocka_unit_test(test_too_many_requests),
        cmocka_unit_test(test_timeout_then_resend_is_exactly_once),
        cmocka_unit_test(test_a_wedged_shard_leaves_the_other_working),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, fixture_down));
}
