/* v1_pair: the fixture of the v1 tests on one node with two gateway
 * processes (each on its own port, sharing the node's brokers) and
 * HISTORY_SIZE=20, with what those tests share. One per test program: it
 * defines the fixture's state. Include after v1.h. */
#ifndef TEST_INTEGRATION_V1_PAIR_H
#define TEST_INTEGRATION_V1_PAIR_H

static struct h_fixture fx;
static struct h_node gw2; /* a second gateway process of fx.node */

enum { HISTORY = 20 };

static int setup(void **state)
{
    (void)state;
    static const char *const env[] = {"HISTORY_SIZE=20", NULL};
    if (h_fixture_up(&fx, env) < 0)
        return -1;
    gw2 = fx.node;
    gw2.port = h_free_port();
    gw2.gateway_name = "gateway-2";
    if (h_gateway_start(&gw2) < 0 || h_wait_health(gw2.port, 200, 15000) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    /* a test that failed while Redis was stopped (SIGSTOP) left it so, and
     * the stops below would wait on it */
    h_kill(&fx.redis.proc, SIGCONT);
    h_dump_log(&gw2.gateway, 25);
    int bad = h_stop_clean(&gw2.gateway);
    return h_fixture_down(&fx) < 0 || bad ? -1 : 0;
}

/* Restarts the first gateway if a test killed it; fails when it died of
 * something else (a crash after a test's last assertion shows only here). */
static inline void gateway_up(void)
{
    if (fx.node.gateway.pid > 0 && h_alive(&fx.node.gateway))
        return;
    char how[128];
    if (h_death_report(&fx.node.gateway, how, sizeof how)) {
        h_dump_log(&fx.node.gateway, 40);
        fail_msg("%s %s since it was last checked, and no test stopped it (log %s)",
                 fx.node.gateway.name, how, fx.node.gateway.log);
    }
    assert_int_equal(h_gateway_start(&fx.node), 0);
    assert_int_equal(h_wait_health(fx.node.port, 200, 15000), 0);
}

/* The joined event of a recovering join. */
static inline json_t *rejoin(struct v1c *c, const char *room, json_int_t since,
                             const char *epoch, int limit)
{
    json_t *p =
        json_pack("{s:s, s:I, s:s}", "room", room, "since", (json_int_t)since, "epoch", epoch);
    if (limit >= 0)
        json_object_set_new(p, "limit", json_integer(limit));
    return join_with(c, p);
}

/* alice on the first gateway and bob on the second, both in room: a
 * sender and a listener that share no gateway process. */
static inline void alice_and_bob_in(const char *room, struct v1c **a, struct v1c **b)
{
    *a = v1_member(fx.node.port, "alice", V1_JSON);
    *b = v1_member(gw2.port, "bob", V1_JSON);
    join_quietly(*a, room);
    join_quietly(*b, room);
}

static inline void text_of(char *out, size_t cap, const char *prefix, int i)
{
    snprintf(out, cap, "%s-%d", prefix, i);
}

#endif
