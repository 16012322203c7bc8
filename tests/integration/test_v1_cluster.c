/* Protocol v1 on two nodes sharing one Redis: every member sees the same id
 * order; dedup holds across nodes; typing and presence are per user across
 * nodes; a dead gateway's or a dead node's users leave within PRESENCE_TTL;
 * presence changes missed while a node's broker was down come with the
 * re-sync. */
#include "v1.h"

static struct h_redis redis;
static struct h_node na, nb;

enum { PRESENCE_TTL_S = 3 };

static const char *const env[] = {"PRESENCE_TTL=3", NULL};

static int setup(void **state)
{
    (void)state;
    if (h_redis_start(&redis, h_tmpdir()) < 0)
        return -1;
    h_node_init(&na, redis.addr);
    h_node_init(&nb, redis.tcp_addr); /* the same Redis over TCP */
    nb.brokers = 3;                   /* shard counts are a node's own business */
    na.extra_env[0] = nb.extra_env[0] = env[0];
    return h_node_start(&na) < 0 || h_node_start(&nb) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    h_node_dump_logs(&na);
    h_node_dump_logs(&nb);
    int bad = h_node_stop(&na) + h_node_stop(&nb);
    h_redis_stop(&redis);
    return bad ? -1 : 0;
}

/* ann on node a and ben on node b, both in room. */
static void ann_and_ben_in(const char *room, struct v1c **a, struct v1c **b)
{
    *a = v1_member(na.port, "ann", V1_JSON);
    *b = v1_member(nb.port, "ben", V1_JSON);
    join_quietly(*a, room);
    join_quietly(*b, room);
}

/* A newcomer c joins room and finds ann, ben and itself. */
static void newcomer_finds_ann_and_ben(struct v1c *c, const char *room)
{
    json_t *ev = join_ok(c, room);
    assert_int_equal(pint(ev, "count"), 3);
    assert_true(has_member(ev, "ann") && has_member(ev, "ben"));
    json_decref(ev);
}

/* A newcomer c joins room and finds two members, ben not among them. */
static void newcomer_finds_ben_gone(struct v1c *c, const char *room)
{
    json_t *ev = join_ok(c, room);
    assert_int_equal(pint(ev, "count"), 2);
    assert_false(has_member(ev, "ben"));
    json_decref(ev);
}

static void test_every_member_sees_the_same_id_order(void **state)
{
    (void)state;
    enum { N = 50, NRX = 4 };
    const char *room = "cross";
    struct v1c *a1 = v1_member(na.port, "ann", V1_JSON), *a2 = v1_member(na.port, "abe", V1_JSON),
               *b1 = v1_member(nb.port, "ben", V1_JSON),
               *b2 = v1_member(nb.port, "bea", V1_MSGPACK);
    struct v1c *rx[NRX] = {a1, a2, b1, b2};
    for (int i = 0; i < NRX; i++)
        join_quietly(rx[i], room);
    for (int i = 0; i < N; i++) {
        char text[16], id[16];
        snprintf(text, sizeof text, "A%d", i);
        snprintf(id, sizeof id, "a-%d", i);
        send_req(a1, room, text, id);
        snprintf(text, sizeof text, "B%d", i);
        snprintf(id, sizeof id, "b-%d", i);
        send_req(b1, room, text, id);
    }
    char *order[2 * N + 1] = {0};
    for (int r = 0; r < NRX; r++) {
        int next_a = 0, next_b = 0;
        for (int i = 1; i <= 2 * N; i++) {
            json_t *ev = v1_wait(rx[r], V1_WAIT, "new_message", "room", room, NULL);
            V1_MUST(rx[r], ev, "new_message");
            if (pint(ev, "id") != i)
                fail_msg("receiver %d: id %lld at position %d", r, (long long)pint(ev, "id"), i);
            const char *m = pstr(ev, "message");
            assert_string_equal(pstr(ev, "from"), m[0] == 'A' ? "ann" : "ben");
            assert_int_equal(atoi(m + 1), m[0] == 'A' ? next_a++ : next_b++);
            if (r == 0)
                order[i] = strdup(m);
            else if (strcmp(m, order[i]) != 0)
                fail_msg("receiver %d has %s as id %d, receiver 0 has %s", r, m, i, order[i]);
            json_decref(ev);
        }
        V1_NONE(rx[r], r ? 20 : 300, "new_message", NULL);
    }
    for (int i = 0; i < N; i++)
        for (int s = 0; s < 2; s++) {
            char id[16], text[16];
            snprintf(id, sizeof id, "%c-%d", s ? 'b' : 'a', i);
            snprintf(text, sizeof text, "%c%d", s ? 'B' : 'A', i);
            json_t *ack = expect_ack(s ? b1 : a1, room, id);
            assert_string_equal(order[pint(ack, "message_id")], text);
            json_decref(ack);
        }
    for (int i = 0; i <= 2 * N; i++)
        free(order[i]);
    for (int i = 0; i < NRX; i++)
        v1_close(rx[i]);
}

static void test_dedup_holds_across_nodes(void **state)
{
    (void)state;
    const char *room = "dedup-x";
    struct v1c *a = v1_member(na.port, "ann", V1_JSON), *w = v1_member(nb.port, "wes", V1_JSON);
    join_quietly(a, room);
    join_quietly(w, room);
    send_req(a, room, "once across", "x-1");
    json_t *first = expect_ack(a, room, "x-1");
    expect_new(w, room, "once across", "ann");
    v1_close(a);
    a = v1_member(nb.port, "ann", V1_JSON);
    join_quietly(a, room);
    send_req(a, room, "once across", "x-1");
    json_t *again = expect_ack(a, room, "x-1");
    assert_int_equal(pint(again, "message_id"), pint(first, "message_id"));
    assert_string_equal(pstr(again, "sent"), pstr(first, "sent"));
    V1_NONE(w, 300, "new_message", NULL);
    V1_NONE(a, 20, "new_message", NULL);
    json_decref(first);
    json_decref(again);
    v1_close(a);
    v1_close(w);
}

/* Typing is per user across nodes: never to the typist's connection on the
 * other node, and one relay per 2 s whichever node the typing comes from. */
static void test_typing_across_nodes(void **state)
{
    (void)state;
    const char *room = "typing-x";
    struct v1c *a1 = v1_member(na.port, "ann", V1_JSON), *a2 = v1_member(nb.port, "ann", V1_JSON),
               *b = v1_member(nb.port, "ben", V1_JSON), *c = v1_member(na.port, "cal", V1_JSON);
    struct v1c *all[] = {a1, a2, b, c};
    for (int i = 0; i < 4; i++)
        join_quietly(all[i], room);
    assert_int_equal(v1_send(a1, "typing", json_pack("{s:s}", "room", room)), 0);
    assert_int_equal(v1_send(a2, "typing", json_pack("{s:s}", "room", room)), 0);
    for (int i = 2; i < 4; i++) {
        json_t *ev = v1_wait(all[i], V1_WAIT, "typing", "room", room, "user", "ann", NULL);
        V1_MUST(all[i], ev, "typing");
        json_decref(ev);
    }
    V1_NONE(a1, 500, "typing", NULL);
    V1_NONE(a2, 20, "typing", NULL);
    int nb_ = v1_count(b, 300, "typing", NULL), nc = v1_count(c, 50, "typing", NULL);
    if (nb_ || nc)
        fail_msg("ann typing on both nodes at once was relayed %d more time(s) to ben (node b) "
                 "and %d more to cal (node a), want 0 within 2 s",
                 nb_, nc);
    for (int i = 0; i < 4; i++)
        v1_close(all[i]);
}

static void test_presence_is_per_user_across_nodes(void **state)
{
    (void)state;
    const char *room = "pres-x";
    struct v1c *a = v1_member(na.port, "ann", V1_JSON), *b = v1_member(nb.port, "ben", V1_JSON);
    join_quietly(a, room);
    json_t *ev = join_ok(b, room);
    assert_int_equal(pint(ev, "count"), 2);
    assert_true(has_member(ev, "ann") && has_member(ev, "ben"));
    json_decref(ev);
    assert_int_equal(expect_presence(a, room, "ben", "join", V1_WAIT), 2);

    /* Ben's second connection, on the other node: still one ben. */
    struct v1c *b2 = v1_member(na.port, "ben", V1_JSON);
    ev = join_ok(b2, room);
    assert_int_equal(pint(ev, "count"), 2);
    json_decref(ev);
    V1_NONE(a, 300, "presence", "user", "ben", NULL);
    v1_close(b);
    V1_NONE(a, 500, "presence", "user", "ben", NULL);
    v1_close(b2);
    assert_int_equal(expect_presence(a, room, "ben", "leave", V1_WAIT), 1);
    v1_close(a);
}

/* The heartbeat refreshes presence a slice of rooms at a time: every room
 * of many, on both nodes, stays present past twice PRESENCE_TTL, with no
 * leave announced. */
static void test_presence_outlives_its_ttl(void **state)
{
    (void)state;
    enum { ROOMS = 30 };
    char room[ROOMS][32];
    struct v1c *a = v1_member(na.port, "ann", V1_JSON), *b = v1_member(nb.port, "ben", V1_JSON);
    for (int i = 0; i < ROOMS; i++) {
        snprintf(room[i], sizeof room[i], "kept-%d", i);
        join_quietly(a, room[i]);
        join_quietly(b, room[i]);
    }
    V1_NONE(a, (2 * PRESENCE_TTL_S + 1) * 1000, "presence", "action", "leave", NULL);
    V1_NONE(b, 0, "presence", "action", "leave", NULL);
    struct v1c *c = v1_member(na.port, "cat", V1_JSON);
    for (int i = 0; i < ROOMS; i++)
        newcomer_finds_ann_and_ben(c, room[i]);
    v1_close(c);
    v1_close(b);
    v1_close(a);
}

/* A room's presence keys lost in Redis (a failover to an empty replica, a
 * flush): the next heartbeat puts every member back, from both nodes, with
 * the keys' TTLs set again, and a newcomer sees them. */
static void test_presence_comes_back_when_redis_loses_it(void **state)
{
    (void)state;
    const char *room = "lost";
    struct v1c *a, *b;
    ann_and_ben_in(room, &a, &b);
    static const char *const keys[4] = {"cf:{lost}:pz", "cf:{lost}:pu", "cf:{lost}:pc",
                                        "cf:{lost}:pv"};
    assert_int_equal(h_redis_int(&redis, (const char *const[]){"ZCARD", keys[0], NULL}), 2);
    assert_int_equal(
        h_redis_int(&redis, (const char *const[]){"DEL", keys[0], keys[1], keys[2], keys[3], NULL}),
        4);
    /* a heartbeat round is PRESENCE_TTL/3 */
    int64_t deadline = h_now_ms() + (PRESENCE_TTL_S + 2) * 1000;
    while (h_redis_int(&redis, (const char *const[]){"ZCARD", keys[0], NULL}) < 2 &&
           h_now_ms() < deadline)
        h_sleep_ms(50);
    assert_int_equal(h_redis_int(&redis, (const char *const[]){"ZCARD", keys[0], NULL}), 2);
    h_sleep_ms(200); /* both nodes' refreshes, if they came in separate rounds */
    for (int i = 0; i < 4; i++)
        assert_true(h_redis_int(&redis, (const char *const[]){"TTL", keys[i], NULL}) > 0);
    struct v1c *c = v1_member(na.port, "cat", V1_JSON);
    newcomer_finds_ann_and_ben(c, room);
    v1_close(c);
    v1_close(b);
    v1_close(a);
}

/* Waits for ben's leave at `a` and returns how long it took. */
static int64_t leave_latency(struct v1c *a, const char *room, int64_t t0)
{
    int limit = (PRESENCE_TTL_S + 5) * 1000;
    assert_int_equal(expect_presence(a, room, "ben", "leave", limit), 1);
    return h_now_ms() - t0;
}

static void test_presence_leave_when_a_gateway_dies(void **state)
{
    (void)state;
    const char *room = "gw-dies";
    struct v1c *a, *b;
    ann_and_ben_in(room, &a, &b);
    assert_int_equal(expect_presence(a, room, "ben", "join", V1_WAIT), 2);
    int64_t t0 = h_now_ms();
    h_stop(&nb.gateway, SIGKILL, 5000);
    v1_abort(b);
    printf("leave announced %lld ms after the gateway died\n",
           (long long)leave_latency(a, room, t0));
    struct v1c *c = v1_member(na.port, "cat", V1_JSON);
    newcomer_finds_ben_gone(c, room);
    assert_int_equal(h_gateway_start(&nb), 0);
    assert_int_equal(h_wait_health(nb.port, 200, 15000), 0);
    v1_close(c);
    v1_close(a);
}

static void test_presence_leave_when_a_node_dies(void **state)
{
    (void)state;
    const char *room = "node-dies";
    struct v1c *a, *b;
    ann_and_ben_in(room, &a, &b);
    assert_int_equal(expect_presence(a, room, "ben", "join", V1_WAIT), 2);
    /* Let ben's presence be refreshed at least once before the node dies. */
    V1_NONE(a, 1000, "presence", "user", "ben", NULL);
    int64_t t0 = h_now_ms();
    for (int i = 0; i < nb.brokers; i++)
        h_stop(&nb.broker[i], SIGKILL, 5000);
    h_stop(&nb.gateway, SIGKILL, 5000);
    v1_abort(b);
    int64_t took = leave_latency(a, room, t0);
    printf("leave announced %lld ms after the node died\n", (long long)took);
    struct v1c *c = v1_member(na.port, "cat", V1_JSON);
    newcomer_finds_ben_gone(c, room);
    /* The room still works on the surviving node. */
    send_ok(c, room, "still here", NULL);
    expect_new(a, room, "still here", "cat");
    v1_close(c);
    v1_close(a);
}

/* Presence changes made while a member's broker was down went by with the
 * rest of that outage's events. The member's re-sync then brings a whole
 * `joined` (recovered, with the missed messages) and the members as they
 * are now: it used to bring the messages alone, and ann went on seeing ben,
 * who had left, and not cat, who had come. */
static void test_presence_missed_in_an_outage_comes_with_the_resync(void **state)
{
    (void)state;
    char room[32];
    room_on_shard(room, sizeof room, "outage-", 0, (uint32_t)na.brokers);
    struct v1c *a, *b;
    ann_and_ben_in(room, &a, &b);
    expect_presence(a, room, "ben", "join", V1_WAIT);
    send_ok(b, room, "before", NULL);
    expect_new(a, room, "before", "ben");

    h_stop(&na.broker[0], SIGKILL, 5000);
    struct v1c *c = v1_member(nb.port, "cat", V1_JSON);
    join_quietly(c, room);
    const char *text = "while ann's broker was down";
    json_int_t missed = send_ok(c, room, text, NULL);
    v1_close(b);
    expect_presence(c, room, "ben", "leave", V1_WAIT);
    V1_NONE(a, 0, "presence", NULL); /* ann's node heard none of it */

    assert_int_equal(h_broker_start(&na, 0), 0);
    json_t *ev = v1_wait(a, 20000, "joined", "room", room, NULL);
    V1_MUST(a, ev, "a joined with the members after the re-sync");
    check_joined(ev, room);
    assert_true(json_is_true(json_object_get(pl(ev), "recovered")));
    assert_true(has_member(ev, "cat"));
    assert_false(has_member(ev, "ben"));
    json_t *msgs = json_object_get(pl(ev), "messages");
    bool has = false;
    for (size_t i = 0; i < json_array_size(msgs); i++)
        has |= msg_id(json_array_get(msgs, i)) == missed;
    assert_true(has);
    json_decref(ev);
    V1_NONE(a, 300, "new_message", "message", text, NULL); /* not again as live */
    send_ok(c, room, "after", NULL);
    expect_new(a, room, "after", "cat");
    v1_close(c);
    v1_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_member_sees_the_same_id_order),
        cmocka_unit_test(test_dedup_holds_across_nodes),
        cmocka_unit_test(test_typing_across_nodes),
        cmocka_unit_test(test_presence_is_per_user_across_nodes),
        cmocka_unit_test(test_presence_outlives_its_ttl),
        cmocka_unit_test(test_presence_comes_back_when_redis_loses_it),
        cmocka_unit_test(test_presence_missed_in_an_outage_comes_with_the_resync),
        cmocka_unit_test(test_presence_leave_when_a_gateway_dies),
        cmocka_unit_test(test_presence_leave_when_a_node_dies), /* leaves node b down */
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
