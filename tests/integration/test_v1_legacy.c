/* The legacy protocol untouched beside Protocol v1 clients in the same room:
 * legacy sends reach v1 members as new_message with an id (and land in the
 * history), v1 sends reach legacy clients in the old shape only, and no v1
 * event (ack, presence, typing, joined, error) ever reaches a legacy client. */
#include "v1.h"

static struct h_fixture fx;

static int setup(void **state)
{
    *state = &fx;
    return h_fixture_up(&fx, NULL);
}

/* The next legacy event: exactly {"type":"new_message","payload":{message,
 * from,sent,room}}. */
static void expect_old_shape(struct wsc *c, const char *text, const char *from, const char *room)
{
    json_t *ev = wsc_recv_json(c, V1_WAIT);
    assert_non_null(ev);
    char *s = json_dumps(ev, JSON_COMPACT);
    json_t *p = json_object_get(ev, "payload");
    if (json_object_size(ev) != 2 || json_object_size(p) != 4 ||
        strcmp(json_string_value(json_object_get(ev, "type")), "new_message") != 0)
        fail_msg("not the legacy shape: %s", s);
    free(s);
    assert_string_equal(payload_str(ev, "message"), text);
    assert_string_equal(payload_str(ev, "from"), from);
    assert_string_equal(payload_str(ev, "room"), room);
    assert_true(is_rfc3339_ms(payload_str(ev, "sent")));
    json_decref(ev);
}

static void test_legacy_and_v1_chat_in_one_room(void **state)
{
    (void)state;
    const char *room = "mixed";
    struct wsc *l = member(fx.node.port, "lenny", room);
    ready(l, "legacy here");
    struct v1c *v = v1_member(fx.node.port, "vera", V1_JSON);
    struct v1c *m = v1_member(fx.node.port, "max", V1_MSGPACK);
    json_t *ev = join_ok(v, room);
    json_int_t last = pint(ev, "last_id");
    json_decref(ev);
    join_quietly(m, room);
    assert_true(wsc_quiet(l, 300)); /* no presence, no joined */

    /* v1 → legacy: the old shape, nothing else (no ack, no id). */
    json_int_t id1 = send_ok(v, room, "from v1", "v-1");
    assert_int_equal(id1, last + 1);
    expect_old_shape(l, "from v1", "vera", room);
    assert_int_equal(expect_new(v, room, "from v1", "vera"), id1);
    assert_int_equal(expect_new(m, room, "from v1", "vera"), id1);
    json_int_t id2 = send_ok(m, room, "from msgpack", "m-1");
    expect_old_shape(l, "from msgpack", "max", room);

    /* legacy → v1: new_message with the next id, in both encodings. */
    say(l, "from legacy");
    expect_old_shape(l, "from legacy", "lenny", room);
    assert_int_equal(expect_new(v, room, "from legacy", "lenny"), id2 + 1);
    assert_int_equal(expect_new(m, room, "from legacy", "lenny"), id2 + 1);
    assert_true(wsc_quiet(l, 300));

    /* The legacy message is in the history like the others. */
    assert_int_equal(v1_send(v, "history", json_pack("{s:s, s:i}", "room", room, "limit", 3)), 0);
    ev = v1_wait(v, V1_WAIT, "history", "room", room, NULL);
    V1_MUST(v, ev, "history");
    json_t *msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), 3);
    assert_string_equal(msg_text(json_array_get(msgs, 0)), "from v1");
    assert_string_equal(msg_text(json_array_get(msgs, 2)), "from legacy");
    assert_int_equal(msg_id(json_array_get(msgs, 2)), id2 + 1);
    json_decref(ev);
    wsc_close(l);
    v1_close(v);
    v1_close(m);
}

static void test_legacy_clients_see_no_v1_events(void **state)
{
    (void)state;
    const char *room = "mixed-quiet";
    struct wsc *l = member(fx.node.port, "lenny", room);
    ready(l, "legacy here");
    drain(l);
    struct v1c *a = v1_member(fx.node.port, "alice", V1_JSON),
               *b = v1_member(fx.node.port, "bob", V1_JSON);
    join_quietly(a, room);
    join_quietly(b, room);
    expect_presence(a, room, "bob", "join", V1_WAIT); /* whether lenny counts is open */
    assert_int_equal(v1_send(a, "typing", json_pack("{s:s}", "room", room)), 0);
    json_t *ev = v1_wait(b, V1_WAIT, "typing", "room", room, NULL);
    V1_MUST(b, ev, "typing");
    json_decref(ev);
    send_req(a, room, " ", "e-1");
    expect_error(a, "empty_message", "e-1", room);
    send_ok(a, room, "dedup me", "d-1");
    send_ok(a, room, "dedup me", "d-1");
    leave_ok(b, room);
    expect_presence(a, room, "bob", "leave", V1_WAIT);
    /* All the legacy client got is the one message. */
    expect_old_shape(l, "dedup me", "alice", room);
    assert_true(wsc_quiet(l, 500));
    wsc_close(l);
    v1_close(a);
    v1_close(b);
}

static void test_v1_hears_the_legacy_default_room(void **state)
{
    (void)state;
    struct v1c *v = v1_member(fx.node.port, "vera", V1_JSON);
    join_quietly(v, "general");
    struct wsc *l = member(fx.node.port, "lenny", NULL);
    ready(l, "hello general");
    json_int_t id = expect_new(v, "general", "hello general", "lenny");
    assert_true(id > 0);
    send_ok(v, "general", "hi lenny", NULL);
    expect_old_shape(l, "hi lenny", "vera", "general");
    /* Bad input on the legacy protocol is still ignored silently. */
    assert_int_equal(wsc_send_text(l, "not json"), 0);
    assert_int_equal(wsc_send_text(l, "{\"type\":\"join\",\"payload\":{\"room\":\"x\"}}"), 0);
    assert_int_equal(wsc_send_text(l, "{\"type\":\"send\",\"payload\":{\"room\":\"general\","
                                      "\"message\":\"v1 request on legacy\"}}"),
                     0);
    assert_true(wsc_quiet(l, 300));
    V1_NONE(v, 100, "new_message", "message", "v1 request on legacy", NULL);
    say(l, "still legacy");
    expect_old_shape(l, "still legacy", "lenny", "general");
    expect_new(v, "general", "still legacy", "lenny");
    wsc_close(l);
    v1_close(v);
}

/* A change into the room the client is in changes nothing: it used to
 * leave and join again, which v1 members saw as the user leaving and
 * joining. */
static void test_a_change_into_the_same_room_changes_nothing(void **state)
{
    (void)state;
    const char *room = "same-room";
    struct v1c *v = v1_member(fx.node.port, "vera", V1_JSON);
    join_quietly(v, room);
    struct wsc *l = member(fx.node.port, "lenny", room);
    ready(l, "lenny here");
    expect_presence(v, room, "lenny", "join", V1_WAIT);
    expect_new(v, room, "lenny here", "lenny");
    assert_int_equal(wsc_send_event(l, "change_room", "name", room), 0);
    say(l, "after the change");
    expect_old_shape(l, "after the change", "lenny", room);
    expect_new(v, room, "after the change", "lenny");
    V1_NONE(v, 500, "presence", "room", room, "user", "lenny", NULL);
    send_ok(v, room, "still hearing you", NULL);
    expect_old_shape(l, "still hearing you", "vera", room);
    wsc_close(l);
    v1_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy_and_v1_chat_in_one_room),
        cmocka_unit_test(test_legacy_clients_see_no_v1_events),
        cmocka_unit_test(test_v1_hears_the_legacy_default_room),
        cmocka_unit_test(test_a_change_into_the_same_room_changes_nothing),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, fixture_down));
}
