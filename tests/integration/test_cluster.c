/* Scale-out: several gateway processes on one node (separate ports, and
 * workers sharing one port with SO_REUSEPORT), and two nodes sharing one
 * Redis. Every member gets every message exactly once. */
#include "common.h"

#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

static struct h_redis redis;

static int setup(void **state)
{
    *state = &redis;
    return h_redis_start(&redis, h_tmpdir());
}

static void test_gateway_processes_on_separate_ports_share_brokers(void **state)
{
    (void)state;
    struct h_node n;
    h_node_init(&n, redis.addr);
    assert_int_equal(h_node_start(&n), 0);
    /* A second gateway process of the same node, on its own port. */
    struct h_node second = n;
    second.port = h_free_port();
    assert_int_equal(h_gateway_start(&second), 0);
    assert_int_equal(h_wait_health(second.port, 200, 10000), 0);

    struct wsc *a = member(n.port, "alice", "shared"), *b = member(second.port, "bob", "shared");
    settle_room((struct wsc *[]){a, b}, 2);
    exactly_once(a, (struct wsc *[]){a, b}, 2, "from the first process", "alice");
    exactly_once(b, (struct wsc *[]){b, a}, 2, "from the second process", "bob");
    wsc_close(a);
    wsc_close(b);
    assert_int_equal(h_stop_clean(&second.gateway), 0);
    h_node_dump_logs(&n);
    assert_int_equal(h_node_stop(&n), 0);
}

/* {pid, connections} of whichever worker answers /healthz. */
static void health_of(int port, int *pid, int *conns)
{
    struct h_resp r;
    assert_int_equal(h_http(port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    json_t *j = json_loads(r.body, 0, NULL);
    *pid = (int)json_integer_value(json_object_get(j, "pid"));
    *conns = (int)json_integer_value(json_object_get(j, "connections"));
    json_decref(j);
    h_resp_free(&r);
}

static void test_workers_share_one_port(void **state)
{
    (void)state;
    enum { N = 16 };
    struct h_node n;
    h_node_init(&n, redis.addr);
    n.workers = 2;
    assert_int_equal(h_node_start(&n), 0);

    struct wsc *c[N];
    for (int i = 0; i < N; i++) {
        char user[16];
        snprintf(user, sizeof user, "user%d", i);
        c[i] = member(n.port, user, "reuseport");
    }
    settle_room(c, N);

    /* Both workers answer on the port and hold some of the connections. */
    int pids[2] = {0, 0}, conns[2] = {0, 0};
    int64_t deadline = h_now_ms() + 10000;
    while ((!pids[0] || !pids[1]) && h_now_ms() < deadline) {
        int pid, k;
        health_of(n.port, &pid, &k);
        if (!pids[0] || pids[0] == pid) {
            pids[0] = pid;
            conns[0] = k;
        } else {
            pids[1] = pid;
            conns[1] = k;
        }
    }
    assert_true(pids[0] && pids[1] && pids[0] != pids[1]);
    printf("worker %d holds %d connections, worker %d holds %d\n", pids[0], conns[0], pids[1],
           conns[1]);
    assert_int_equal(conns[0] + conns[1], N);
    assert_true(conns[0] > 0 && conns[1] > 0);

    /* So a message necessarily crosses processes, and arrives once each. */
    exactly_once(c[0], c, N, "to all sixteen", "user0");
    exactly_once(c[N - 1], c, N, "and back", "user15");
    for (int i = 0; i < N; i++)
        wsc_close(c[i]);
    h_node_dump_logs(&n);
    assert_int_equal(h_node_stop(&n), 0);
}

static void test_two_nodes_share_one_redis(void **state)
{
    (void)state;
    struct h_node a, b;
    h_node_init(&a, redis.addr);
    h_node_init(&b, redis.tcp_addr); /* the same Redis, over TCP this time */
    b.brokers = 3;                   /* shard counts are a node's own business */
    assert_int_equal(h_node_start(&a), 0);
    assert_int_equal(h_node_start(&b), 0);
    assert_true(h_log_contains(&b.broker[0], "subscriber connected to 127.0.0.1:", 5000));

    struct wsc *a1 = member(a.port, "ann", "cross"), *a2 = member(a.port, "abe", "cross"),
               *b1 = member(b.port, "ben", "cross"), *b2 = member(b.port, "bea", "elsewhere");
    struct wsc *room[] = {a1, a2, b1};
    settle_room(room, 3);
    ready(b2, "b2"); /* alone in its room */
    exactly_once(a1, room, 3, "from node a", "ann");
    exactly_once(b1, room, 3, "from node b", "ben");
    assert_true(wsc_quiet(b2, 100)); /* not a member */

    /* Many in a row from both sides: nothing lost, nothing doubled, each
     * sender's order kept. */
    interleaved(a1, 'A', b1, 'B', 100, room, 3, NULL);
    for (int i = 0; i < 3; i++)
        wsc_close(room[i]);
    wsc_close(b2);
    h_node_dump_logs(&a);
    h_node_dump_logs(&b);
    assert_int_equal(h_node_stop(&a), 0);
    assert_int_equal(h_node_stop(&b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_processes_on_separate_ports_share_brokers),
        cmocka_unit_test(test_workers_share_one_port),
        cmocka_unit_test(test_two_nodes_share_one_redis),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, redis_down));
}
