/* Faults on a cluster of two nodes sharing one Redis (see faults.h for the
 * clients and the ledger): one node loses every process at once under
 * traffic and comes back. Its clients reconnect (to the other node, or to
 * it once it is back) and recover every room by message id; the other
 * node's clients never notice. Every acked message reaches every member
 * exactly once, in id order without a gap. */
#include "faults.h"

static struct h_redis redis;
static struct h_node na, nb;
static struct f_world world;

static const char *const env[] = {"HISTORY_SIZE=5000", "RATE_MSGS=0", NULL};

static int up(void **state)
{
    (void)state;
    if (h_redis_start(&redis, h_tmpdir()) < 0)
        return -1;
    h_node_init(&na, redis.addr);
    h_node_init(&nb, redis.tcp_addr); /* the same Redis over TCP */
    for (int i = 0; env[i]; i++)
        na.extra_env[i] = nb.extra_env[i] = env[i];
    return h_node_start(&na) < 0 || h_node_start(&nb) < 0 ? -1 : 0;
}

static int down(void **state)
{
    (void)state;
    f_world_free(&world);
    h_node_dump_logs(&na);
    h_node_dump_logs(&nb);
    int bad = h_node_stop(&na) + h_node_stop(&nb);
    h_redis_stop(&redis);
    return bad ? -1 : 0;
}

/* The test's SIGKILL is how p ended: not an exit or another signal first
 * (h_stop takes any end as the test's once it has sent one). */
static void assert_killed(const struct h_proc *p, int status)
{
    if (status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        return;
    char how[128];
    h_describe_status(status, how, sizeof how);
    fail_msg("%s was sent SIGKILL but %s (log %s)", p->name,
             status == -1 ? "was reaped before, or still ran 5 s after it" : how, p->log);
}

/* Starts node n's brokers and gateway again without blocking the world. */
static void restart_node(struct h_node *n)
{
    for (int i = 0; i < n->brokers; i++)
        assert_int_equal(h_broker_start(n, i), 0);
    assert_int_equal(h_gateway_start(n), 0);
    if (!f_run_until_health(&world, n->port, 200, 15000)) {
        h_node_dump_logs(n);
        fail_msg("node on port %d did not come back", n->port);
    }
}


static void test_a_node_killed_and_restarted_under_traffic(void **state)
{
    (void)state;
    char ra[32], rb[32];
    room_on_shard(ra, sizeof ra, "kn-a", 0, 2);
    room_on_shard(rb, sizeof rb, "kn-b", 1, 2);
    const char *rooms[] = {ra, rb};
    f_world_init(&world, rooms, 2);
    world.interval_ms = 40;
    /* A's clients stay on A. Of B's, one waits for B to come back, two fall
     * over to A. Two senders on each node; everyone in both rooms. */
    int a_only[] = {na.port}, b_only[] = {nb.port}, b_then_a[] = {nb.port, na.port};
    f_client_add(&world, "knA0", a_only, 1, 3, true);
    f_client_add(&world, "knA1", a_only, 1, 3, true);
    f_client_add(&world, "knA2", a_only, 1, 3, false);
    f_client_add(&world, "knB0", b_only, 1, 3, true);
    f_client_add(&world, "knB1", b_then_a, 2, 3, true);
    f_client_add(&world, "knB2", b_then_a, 2, 3, false);
    f_start(&world);
    world.sending = true;
    f_run(&world, 1000);

    /* B's brokers die first, so its clients' sends in flight are answered
     * with errors; 100 ms later its gateway dies under them. */
    f_note(&world, "SIGKILL every process of node B");
    for (int i = 0; i < nb.brokers; i++)
        h_kill(&nb.broker[i], SIGKILL);
    f_run(&world, 100);
    assert_killed(&nb.gateway, h_stop(&nb.gateway, SIGKILL, 5000));
    for (int i = 0; i < nb.brokers; i++)
        assert_killed(&nb.broker[i], h_stop(&nb.broker[i], SIGKILL, 5000));
    f_run(&world, 1500);
    f_note(&world, "starting node B again");
    restart_node(&nb);
    f_note(&world, "node B is back");
    assert_true(f_run_until(&world, f_all_joined, &world, 20, 10000));
    f_run(&world, 2000);
    bool settled = f_settle(&world, 20000);
    F_ASSERT_LEDGER(&world);
    if (!settled)
        fail_msg("the outboxes did not drain or the members did not catch up within 20 s");

    /* B's clients reconnected and recovered both rooms by id; A's clients
     * never had to. */
    for (int i = 0; i < world.n; i++)
        if (!strncmp(world.cl[i]->user, "knB", 3) && world.cl[i]->reconnects < 1)
            fail_msg("%s did not reconnect", world.cl[i]->user);
    assert_true(f_recovered_joins(&world, "knB") >= 3 * 2);
    assert_int_equal(f_reconnects(&world, "knA"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_node_killed_and_restarted_under_traffic, up,
                                        down),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
