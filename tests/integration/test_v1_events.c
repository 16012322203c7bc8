/* Protocol v1 events on one node: subprotocol negotiation, join/joined,
 * leave/left, send/ack/new_message with gapless ids, history pages (and the
 * request id their answers echo), typing and its throttle, presence (a user
 * with two connections is one member), change_room, and the end of
 * DEDUP_WINDOW. Each test uses rooms of its own. */
#include "v1.h"

static struct h_fixture fx;

enum { HISTORY = 20 };

static int setup(void **state)
{
    static const char *const env[] = {"HISTORY_SIZE=20", "DEDUP_WINDOW=2", NULL};
    *state = &fx;
    return h_fixture_up(&fx, env);
}

static struct v1c *user(const char *name)
{
    return v1_member(fx.node.port, name, V1_JSON);
}

static void test_subprotocols_are_negotiated(void **state)
{
    (void)state;
    /* v1_open fails unless the server selects exactly what was offered. */
    struct v1c *j = user("alice");
    assert_string_equal(wsc_protocol(v1_wsc(j)), "confab.v1");
    struct v1c *m = v1_member(fx.node.port, "bob", V1_MSGPACK);
    assert_string_equal(wsc_protocol(v1_wsc(m)), "confab.msgpack.v1");
    /* No subprotocol offered: the legacy protocol, none selected. */
    struct wsc *legacy = wsc_connect_user(fx.node.port, "carol");
    assert_non_null(legacy);
    assert_string_equal(wsc_protocol(legacy), "");
    wsc_close(legacy);
    v1_close(j);
    v1_close(m);
}

static void test_a_v1_connection_starts_in_no_room(void **state)
{
    (void)state;
    struct v1c *v = user("vera");
    /* The legacy client is in DEFAULT_ROOM and hears itself there. */
    struct wsc *legacy = member(fx.node.port, "lenny", NULL);
    ready(legacy, "in general");
    V1_NONE(v, 300, NULL);
    send_req(v, "general", "not joined yet", "s-1");
    expect_error(v, "not_member", "s-1", "general");
    assert_true(wsc_quiet(legacy, 200));
    wsc_close(legacy);
    v1_close(v);
}

static void test_join_of_a_fresh_room(void **state)
{
    (void)state;
    struct v1c *a = user("alice");
    json_t *ev = join_ok(a, "fresh-room");
    assert_int_equal(pint(ev, "last_id"), 0);
    assert_int_equal(pint(ev, "count"), 1);
    assert_int_equal(json_array_size(json_object_get(pl(ev), "members")), 1);
    assert_true(has_member(ev, "alice"));
    assert_int_equal(json_array_size(json_object_get(pl(ev), "messages")), 0);
    assert_false(json_is_true(json_object_get(pl(ev), "recovered")));
    json_decref(ev);
    v1_close(a);
}

static void test_join_brings_the_latest_messages(void **state)
{
    (void)state;
    const char *room = "join-latest";
    struct v1c *a = user("alice");
    json_t *first = join_ok(a, room);
    char epoch[128];
    snprintf(epoch, sizeof epoch, "%s", pstr(first, "epoch"));
    json_decref(first);
    for (int i = 1; i <= 5; i++) {
        char text[16];
        snprintf(text, sizeof text, "m%d", i);
        assert_int_equal(send_ok(a, room, text, NULL), i);
    }

    /* Default limit: all five, oldest first, and both members. */
    struct v1c *b = user("bob");
    json_t *ev = join_ok(b, room);
    assert_string_equal(pstr(ev, "epoch"), epoch);
    assert_int_equal(pint(ev, "last_id"), 5);
    assert_int_equal(pint(ev, "count"), 2);
    assert_true(has_member(ev, "alice") && has_member(ev, "bob"));
    json_t *msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), 5);
    for (int i = 0; i < 5; i++) {
        char text[16];
        snprintf(text, sizeof text, "m%d", i + 1);
        assert_int_equal(msg_id(json_array_get(msgs, i)), i + 1);
        assert_string_equal(msg_text(json_array_get(msgs, i)), text);
        assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, i), "from")),
                            "alice");
    }
    json_decref(ev);

    /* limit picks the latest; 0 means none. */
    struct v1c *c = user("carol");
    ev = join_with(c, json_pack("{s:s, s:i}", "room", room, "limit", 2));
    msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_int_equal(msg_id(json_array_get(msgs, 0)), 4);
    assert_int_equal(msg_id(json_array_get(msgs, 1)), 5);
    json_decref(ev);
    struct v1c *d = user("dave");
    ev = join_with(d, json_pack("{s:s, s:i}", "room", room, "limit", 0));
    assert_int_equal(json_array_size(json_object_get(pl(ev), "messages")), 0);
    assert_int_equal(pint(ev, "last_id"), 5);
    assert_int_equal(pint(ev, "count"), 4);
    json_decref(ev);

    /* Only the last HISTORY_SIZE are kept. */
    for (int i = 6; i <= 5 + HISTORY; i++)
        send_req(a, room, "more", NULL);
    for (int i = 6; i <= 5 + HISTORY; i++)
        json_decref(expect_ack(a, room, NULL));
    struct v1c *e = user("erin");
    ev = join_ok(e, room);
    msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), HISTORY);
    assert_int_equal(msg_id(json_array_get(msgs, 0)), 6);
    assert_int_equal(pint(ev, "last_id"), 5 + HISTORY);
    json_decref(ev);
    v1_close(a);
    v1_close(b);
    v1_close(c);
    v1_close(d);
    v1_close(e);
}

static void test_leave_stops_the_room(void **state)
{
    (void)state;
    const char *room = "leaving";
    struct v1c *a = user("alice"), *b = user("bob");
    join_quietly(a, room);
    join_quietly(b, room);
    leave_ok(b, room);
    send_ok(a, room, "after bob left", "x1");
    expect_new(a, room, "after bob left", "alice");
    V1_NONE(b, 300, "new_message", NULL);
    send_req(b, room, "not a member", "x2");
    expect_error(b, "not_member", "x2", room);
    assert_int_equal(v1_send(b, "leave", json_pack("{s:s, s:s}", "room", room, "id", "x3")), 0);
    expect_error(b, "not_member", "x3", room);
    /* Joining again works and hears the room again. */
    json_t *ev = join_ok(b, room);
    assert_int_equal(pint(ev, "last_id"), 1);
    json_decref(ev);
    send_ok(a, room, "welcome back", NULL);
    expect_new(b, room, "welcome back", "alice");
    v1_close(a);
    v1_close(b);
}

static void test_send_is_acked_and_reaches_every_member(void **state)
{
    (void)state;
    const char *room = "sending";
    struct v1c *a = user("alice"), *b = user("bob"), *outsider = user("olga");
    join_quietly(a, room);
    join_quietly(b, room);
    join_quietly(outsider, "elsewhere");
    /* The claimed "from" is ignored; unknown payload keys are ignored. */
    assert_int_equal(v1_send(a, "send",
                             json_pack("{s:s, s:s, s:s, s:s, s:b}", "room", room, "message",
                                       "hi <b>bob</b> \"q\" \xc3\xa9", "id", "c-1701-7", "from",
                                       "mallory", "x-extra", 1)),
                     0);
    json_t *ack = expect_ack(a, room, "c-1701-7");
    json_int_t id = pint(ack, "message_id");
    assert_int_equal(id, 1);
    for (int i = 0; i < 2; i++)
        expect_new_exactly(i ? b : a, room, id, "hi <b>bob</b> \"q\" \xc3\xa9", "alice",
                           pstr(ack, "sent"));
    json_decref(ack);
    V1_NONE(outsider, 200, "new_message", NULL);

    /* Without an id: acked, the ack has no id. */
    assert_int_equal(send_ok(b, room, "no id", NULL), 2);
    assert_int_equal(expect_new(a, room, "no id", "bob"), 2);
    assert_int_equal(expect_new(b, room, "no id", "bob"), 2);
    V1_NONE(a, 200, "new_message", NULL);
    V1_NONE(b, 20, "new_message", NULL);
    v1_close(a);
    v1_close(b);
    v1_close(outsider);
}

/* Two senders at once, three receivers (one user twice): every receiver gets
 * ids 1..2N in order with no gap, the same text for the same id, and each
 * ack names the id its message got. */
static void test_ids_are_gapless_and_the_same_everywhere(void **state)
{
    (void)state;
    enum { N = 30 };
    const char *room = "ordering";
    struct v1c *a = user("alice"), *b = user("bob"), *b2 = user("bob");
    struct v1c *rx[] = {a, b, b2};
    for (int i = 0; i < 3; i++)
        join_quietly(rx[i], room);
    for (int i = 0; i < N; i++) {
        char text[16], id[16];
        snprintf(text, sizeof text, "A%d", i);
        snprintf(id, sizeof id, "a-%d", i);
        send_req(a, room, text, id);
        snprintf(text, sizeof text, "B%d", i);
        snprintf(id, sizeof id, "b-%d", i);
        send_req(b, room, text, id);
    }
    char *order[2 * N + 1] = {0};
    for (int r = 0; r < 3; r++) {
        int next_a = 0, next_b = 0;
        for (int i = 1; i <= 2 * N; i++) {
            json_t *ev = v1_wait(rx[r], V1_WAIT, "new_message", "room", room, NULL);
            V1_MUST(rx[r], ev, "new_message");
            assert_int_equal(pint(ev, "id"), i);
            const char *m = pstr(ev, "message");
            assert_int_equal(atoi(m + 1), m[0] == 'A' ? next_a++ : next_b++);
            if (r == 0)
                order[i] = strdup(m);
            else
                assert_string_equal(m, order[i]);
            json_decref(ev);
        }
        V1_NONE(rx[r], r ? 20 : 200, "new_message", NULL);
    }
    for (int i = 0; i < N; i++) {
        for (int s = 0; s < 2; s++) {
            char id[16], text[16];
            snprintf(id, sizeof id, "%c-%d", s ? 'b' : 'a', i);
            snprintf(text, sizeof text, "%c%d", s ? 'B' : 'A', i);
            json_t *ack = expect_ack(s ? b : a, room, id);
            json_int_t mid = pint(ack, "message_id");
            assert_true(mid >= 1 && mid <= 2 * N);
            assert_string_equal(order[mid], text);
            json_decref(ack);
        }
    }
    for (int i = 0; i <= 2 * N; i++)
        free(order[i]);
    for (int i = 0; i < 3; i++)
        v1_close(rx[i]);
}

/* One history request; returns the answer (shape checked). */
static json_t *history(struct v1c *c, const char *room, int before, int limit)
{
    json_t *p = json_pack("{s:s}", "room", room);
    if (before >= 0)
        json_object_set_new(p, "before", json_integer(before));
    if (limit >= 0)
        json_object_set_new(p, "limit", json_integer(limit));
    assert_int_equal(v1_send(c, "history", p), 0);
    json_t *ev = v1_wait(c, V1_WAIT, "history", "room", room, NULL);
    V1_MUST(c, ev, "history");
    assert_true(json_is_boolean(json_object_get(pl(ev), "has_more")));
    check_messages(json_object_get(pl(ev), "messages"), room);
    return ev;
}

/* The page's first and last ids and has_more, as "first-last/more". */
static void expect_page(struct v1c *c, const char *room, int before, int limit, int first, int last,
                        bool more)
{
    json_t *ev = history(c, room, before, limit);
    json_t *msgs = json_object_get(pl(ev), "messages");
    size_t n = json_array_size(msgs);
    char got[64], want[64];
    snprintf(got, sizeof got, "%lld-%lld/%d", n ? (long long)msg_id(json_array_get(msgs, 0)) : 0,
             n ? (long long)msg_id(json_array_get(msgs, n - 1)) : 0,
             json_is_true(json_object_get(pl(ev), "has_more")));
    snprintf(want, sizeof want, "%d-%d/%d", first, last, more);
    if (strcmp(got, want) != 0)
        fail_msg("history before=%d limit=%d: got %s, want %s", before, limit, got, want);
    json_decref(ev);
}

static void test_history_pages_backwards(void **state)
{
    (void)state;
    const char *room = "pages";
    struct v1c *a = user("alice");
    join_quietly(a, room);
    expect_page(a, room, -1, -1, 0, 0, false); /* nothing yet */
    for (int i = 1; i <= 7; i++) {
        char text[16];
        snprintf(text, sizeof text, "p%d", i);
        send_ok(a, room, text, NULL);
    }
    expect_page(a, room, -1, 3, 5, 7, true);
    expect_page(a, room, 5, 3, 2, 4, true);
    expect_page(a, room, 2, 3, 1, 1, false);
    expect_page(a, room, 1, 3, 0, 0, false);
    expect_page(a, room, -1, -1, 1, 7, false); /* default limit 50 */
    expect_page(a, room, 4, -1, 1, 3, false);
    json_t *ev = history(a, room, 3, 1);
    assert_string_equal(msg_text(json_array_get(json_object_get(pl(ev), "messages"), 0)), "p2");
    json_decref(ev);

    /* Once trimmed to HISTORY_SIZE, the oldest kept one ends the pages. */
    const char *big = "pages-trimmed";
    join_quietly(a, big);
    for (int i = 1; i <= HISTORY + 5; i++)
        send_req(a, big, "t", NULL);
    for (int i = 1; i <= HISTORY + 5; i++)
        json_decref(expect_ack(a, big, NULL));
    expect_page(a, big, -1, 100, 6, HISTORY + 5, false);
    expect_page(a, big, 12, 5, 7, 11, true);
    expect_page(a, big, 11, 5, 6, 10, false);
    v1_close(a);
}

/* A history answer echoes the request's id (as ack does a send's), in both
 * encodings: a client with several pages of one room in flight tells the
 * answers apart by it. A request without an id gets an answer without one.
 * A page with messages gives their epoch. */
static void test_history_echoes_the_request_id(void **state)
{
    (void)state;
    const char *room = "history-id";
    for (int e = 0; e < 2; e++) {
        struct v1c *c = v1_member(fx.node.port, "alice", e ? V1_MSGPACK : V1_JSON);
        char epoch[128];
        join_epoch(c, room, epoch, sizeof epoch);
        if (e == 0)
            for (int i = 1; i <= 3; i++)
                send_ok(c, room, "h", NULL);
        v1_forget(c);
        assert_int_equal(v1_send(c, "history", json_pack("{s:s, s:i, s:i, s:s}", "room", room,
                                                         "before", 3, "limit", 1, "id", "h-1")),
                         0);
        assert_int_equal(v1_send(c, "history", json_pack("{s:s, s:i, s:s}", "room", room, "limit",
                                                         2, "id", "h-2")),
                         0);
        assert_int_equal(v1_send(c, "history", json_pack("{s:s, s:i}", "room", room, "limit", 3)),
                         0);
        /* Taken out of arrival order: each by its id. */
        json_t *ev = v1_wait(c, V1_WAIT, "history", "id", "h-2", NULL);
        V1_MUST(c, ev, "history h-2");
        json_t *msgs = json_object_get(pl(ev), "messages");
        assert_int_equal(json_array_size(msgs), 2);
        assert_int_equal(msg_id(json_array_get(msgs, 0)), 2);
        assert_non_null(pstr(ev, "epoch"));
        assert_string_equal(pstr(ev, "epoch"), epoch); /* the one its ids are of */
        json_decref(ev);
        ev = v1_wait(c, V1_WAIT, "history", "id", "h-1", NULL);
        V1_MUST(c, ev, "history h-1");
        msgs = json_object_get(pl(ev), "messages");
        assert_int_equal(json_array_size(msgs), 1);
        assert_int_equal(msg_id(json_array_get(msgs, 0)), 2);
        json_decref(ev);
        ev = v1_wait(c, V1_WAIT, "history", "room", room, NULL);
        V1_MUST(c, ev, "history without an id");
        assert_null(json_object_get(pl(ev), "id"));
        assert_int_equal(json_array_size(json_object_get(pl(ev), "messages")), 3);
        json_decref(ev);
        /* No message, no epoch. */
        assert_int_equal(v1_send(c, "history", json_pack("{s:s, s:i, s:s}", "room", room,
                                                         "before", 1, "id", "h-3")),
                         0);
        ev = v1_wait(c, V1_WAIT, "history", "id", "h-3", NULL);
        V1_MUST(c, ev, "history h-3");
        assert_int_equal(json_array_size(json_object_get(pl(ev), "messages")), 0);
        assert_null(json_object_get(pl(ev), "epoch"));
        json_decref(ev);
        V1_NONE(c, 200, "history", NULL);
        v1_close(c);
    }
}

/* Typing goes to the other users' connections, never to the typist's own
 * (both of them), and at most once per user per room every 2 s. */
static void test_typing_is_relayed_to_others_and_throttled(void **state)
{
    (void)state;
    const char *room = "typing";
    struct v1c *a1 = user("alice"), *a2 = user("alice"), *b = user("bob");
    join_quietly(a1, room);
    join_quietly(a2, room);
    join_quietly(b, room);
    v1_forget(a1);
    v1_forget(a2);
    v1_forget(b);

    int64_t seen[8];
    int n = 0;
    int64_t t0 = h_now_ms();
    for (int i = 0; h_now_ms() - t0 < 3000; i++) {
        /* typing for 2.7 s, then listening for what is still on its way */
        if (h_now_ms() - t0 < 2700)
            assert_int_equal(
                v1_send(i % 2 ? a2 : a1, "typing", json_pack("{s:s}", "room", room)), 0);
        json_t *ev = v1_wait(b, 100, "typing", "room", room, NULL);
        if (ev) {
            assert_string_equal(pstr(ev, "user"), "alice");
            if (n < 8)
                seen[n] = h_now_ms();
            n++;
            json_decref(ev);
        }
    }
    /* Whoever keeps typing keeps showing as typing: one relay at once and
     * the next after 2 s, not one per keystroke and not only the first. */
    if (n != 2)
        fail_msg("bob got %d typing events in 2.7 s of alice typing every 100 ms, want 2", n);
    /* The second relay cannot leave before 2 s after the first, which left
     * after t0: bounded by t0, not by the first's receive time, the check
     * has no margin for a late first delivery to eat. 10 ms: Redis' expiry
     * clock in whole milliseconds against ours. */
    if (seen[1] - t0 < 1990)
        fail_msg("the second typing relay came %lld ms after alice began, want >= 2 s",
                 (long long)(seen[1] - t0));
    V1_NONE(a1, 100, "typing", NULL);
    V1_NONE(a2, 20, "typing", NULL);

    /* Bob typing reaches both of alice's connections. */
    assert_int_equal(v1_send(b, "typing", json_pack("{s:s}", "room", room)), 0);
    for (int i = 0; i < 2; i++) {
        struct v1c *c = i ? a2 : a1;
        json_t *ev = v1_wait(c, V1_WAIT, "typing", "room", room, "user", "bob", NULL);
        V1_MUST(c, ev, "typing");
        json_decref(ev);
    }
    V1_NONE(b, 200, "typing", NULL);
    v1_close(a1);
    v1_close(a2);
    v1_close(b);
}

static void test_presence_counts_users_not_connections(void **state)
{
    (void)state;
    const char *room = "presence";
    struct v1c *a = user("alice"), *b1 = user("bob"), *b2 = user("bob"), *c = user("carol");
    join_quietly(a, room);

    json_t *ev = join_ok(b1, room);
    assert_int_equal(pint(ev, "count"), 2);
    assert_true(has_member(ev, "alice") && has_member(ev, "bob"));
    json_decref(ev);
    assert_int_equal(expect_presence(a, room, "bob", "join", V1_WAIT), 2);

    /* Bob's second tab: still one bob, and no presence event. */
    ev = join_ok(b2, room);
    assert_int_equal(pint(ev, "count"), 2);
    assert_int_equal(json_array_size(json_object_get(pl(ev), "members")), 2);
    assert_true(has_member(ev, "bob"));
    json_decref(ev);
    ev = join_ok(c, room);
    assert_int_equal(pint(ev, "count"), 3);
    json_decref(ev);
    assert_int_equal(expect_presence(a, room, "carol", "join", V1_WAIT), 3);
    V1_NONE(a, 200, "presence", "user", "bob", NULL);

    /* One of bob's tabs leaves: nothing; the last one goes away: leave. */
    leave_ok(b1, room);
    V1_NONE(a, 300, "presence", "user", "bob", NULL);
    v1_close(b2);
    assert_int_equal(expect_presence(a, room, "bob", "leave", V1_WAIT), 2);
    assert_int_equal(expect_presence(c, room, "bob", "leave", V1_WAIT), 2);
    leave_ok(c, room);
    assert_int_equal(expect_presence(a, room, "carol", "leave", V1_WAIT), 1);

    struct v1c *d = user("dave");
    ev = join_ok(d, room);
    assert_int_equal(pint(ev, "count"), 2);
    assert_true(has_member(ev, "alice") && has_member(ev, "dave"));
    assert_false(has_member(ev, "bob") || has_member(ev, "carol"));
    json_decref(ev);
    v1_close(a);
    v1_close(b1);
    v1_close(c);
    v1_close(d);
}

/* A connection that goes away queues its leave for the broker after the
 * pass has written the links; it must still go out at once, not when
 * something else wakes the gateway (its 1-second tick on a quiet one). */
static void test_a_closed_connections_leave_goes_out_at_once(void **state)
{
    (void)state;
    const char *room = "prompt-leave";
    struct v1c *a = user("alice");
    join_quietly(a, room);
    int64_t worst = 0;
    for (int r = 0; r < 4; r++) {
        struct v1c *b = user("bob");
        json_t *ev = join_ok(b, room);
        json_decref(ev);
        assert_int_equal(expect_presence(a, room, "bob", "join", V1_WAIT), 2);
        h_sleep_ms(100 + 150 * r); /* somewhere else in the tick's second */
        int64_t t0 = h_now_ms();
        v1_close(b);
        assert_int_equal(expect_presence(a, room, "bob", "leave", V1_WAIT), 1);
        int64_t took = h_now_ms() - t0;
        if (took > worst)
            worst = took;
    }
    v1_close(a);
    if (worst >= 400)
        fail_msg("a closed connection's leave took %lld ms to reach the room", (long long)worst);
}

static void test_change_room_leaves_every_room(void **state)
{
    (void)state;
    struct v1c *a = user("alice"), *b = user("bob");
    join_quietly(a, "cr-1");
    join_quietly(a, "cr-2");
    join_quietly(b, "cr-1");
    join_quietly(b, "cr-3");
    send_ok(b, "cr-3", "before alice came", NULL);
    assert_int_equal(v1_send(a, "change_room", json_pack("{s:s}", "name", "cr-3")), 0);
    json_t *ev = v1_wait(a, V1_WAIT, "joined", "room", "cr-3", NULL);
    V1_MUST(a, ev, "joined");
    check_joined(ev, "cr-3");
    /* with the room's history, as a join's (it came with none) */
    json_t *msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), 1);
    assert_string_equal(msg_text(json_array_get(msgs, 0)), "before alice came");
    json_decref(ev);
    assert_int_equal(expect_presence(b, "cr-1", "alice", "leave", V1_WAIT), 1);
    send_ok(b, "cr-1", "alice is gone", NULL);
    V1_NONE(a, 300, "new_message", "room", "cr-1", NULL);
    send_req(a, "cr-2", "left too", "z1");
    expect_error(a, "not_member", "z1", "cr-2");
    send_ok(a, "cr-3", "here now", NULL);
    expect_new(a, "cr-3", "here now", "alice");
    v1_close(a);
    v1_close(b);
}

/* Within DEDUP_WINDOW (2 s here) a resend is the same message; after it,
 * the same id makes a new one. */
static void test_dedup_window_ends(void **state)
{
    (void)state;
    const char *room = "window";
    struct v1c *a = user("alice");
    join_quietly(a, room);
    int64_t t0 = h_now_ms();
    json_int_t first = send_ok(a, room, "w", "w-1");
    assert_int_equal(send_ok(a, room, "w", "w-1"), first);
    json_int_t again = first;
    while (again == first && h_now_ms() - t0 < 6000) {
        h_sleep_ms(250);
        again = send_ok(a, room, "w", "w-1");
    }
    int64_t took = h_now_ms() - t0;
    printf("the id was new again after %lld ms\n", (long long)took);
    assert_int_equal(again, first + 1);
    assert_true(took >= 1500);
    expect_new(a, room, "w", "alice");
    assert_int_equal(expect_new(a, room, "w", "alice"), first + 1);
    V1_NONE(a, 200, "new_message", NULL);
    v1_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subprotocols_are_negotiated),
        cmocka_unit_test(test_a_v1_connection_starts_in_no_room),
        cmocka_unit_test(test_join_of_a_fresh_room),
        cmocka_unit_test(test_join_brings_the_latest_messages),
        cmocka_unit_test(test_leave_stops_the_room),
        cmocka_unit_test(test_send_is_acked_and_reaches_every_member),
        cmocka_unit_test(test_ids_are_gapless_and_the_same_everywhere),
        cmocka_unit_test(test_history_pages_backwards),
        cmocka_unit_test(test_history_echoes_the_request_id),
        cmocka_unit_test(test_typing_is_relayed_to_others_and_throttled),
        cmocka_unit_test(test_presence_counts_users_not_connections),
        cmocka_unit_test(test_a_closed_connections_leave_goes_out_at_once),
        cmocka_unit_test(test_change_room_leaves_every_room),
        cmocka_unit_test(test_dedup_window_ends),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, fixture_down));
}
