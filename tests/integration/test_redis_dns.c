/* A Redis server named by a host name in REDIS_ADDR: the broker looks it up
 * off its loop (broker/resolve.h). hiredis' own lookup blocked the loop, so
 * behind a DNS server that does not answer, every room, every gateway link
 * and the systemd watchdog waited out the resolver's timeouts at each
 * reconnection attempt. Here the name takes 1.5 s to look up
 * (tests/support/slowdns.c); then lookups hang past the attempt's 5 s, then
 * fail at once, and either way the broker goes on with the address the name
 * had. */
#include "v1.h"

#include <fcntl.h>
#include <sys/stat.h>

#define DELAY_MS 1500

/* A node whose broker reaches Redis by the name redis.slowdns.test, with
 * the strings its environment points into (they live as long as it). */
struct named {
    struct h_node node;
    char addr[64], bm_env[48];
    int bm; /* the broker's metrics port */
};

static struct h_redis redis;
static struct named first, moved; /* static: what h_node_init allocates lives on */
static char dir[300], fail_file[400], delay_file[400];

static int status_of(int port, const char *path, int64_t *took_ms)
{
    struct h_resp r;
    int64_t t0 = h_now_ms();
    int rc = h_http(port, "GET", path, NULL, NULL, 0, &r);
    if (took_ms)
        *took_ms = h_now_ms() - t0;
    if (rc < 0)
        return -1;
    int s = r.status;
    h_resp_free(&r);
    return s;
}

static void wait_ready(struct h_node *node, int timeout_ms)
{
    int s = -1;
    for (int64_t end = h_now_ms() + timeout_ms;
         h_now_ms() < end && (s = status_of(node->port, "/readyz", NULL)) != 200;)
        h_sleep_ms(100);
    if (s != 200) {
        h_node_dump_logs(node);
        fail_msg("the node did not become ready again (/readyz %d)", s);
    }
}

/* Starts nd (one broker) on REDIS_ADDR redis.slowdns.test:<port>, looked
 * up through the slowdns shim with `env` (NULL-ended, kept: static
 * strings), the broker's metrics on a port of their own; waits until ready. */
static void start_named(struct named *nd, int port, const char *const *env)
{
    snprintf(nd->addr, sizeof nd->addr, "redis.slowdns.test:%d", port);
    nd->bm = h_free_port();
    snprintf(nd->bm_env, sizeof nd->bm_env, "BROKER_METRICS_PORT=%d", nd->bm);
    h_node_init(&nd->node, nd->addr);
    nd->node.brokers = 1;
    int i = 0;
    for (; env[i]; i++)
        nd->node.extra_env[i] = env[i];
    nd->node.extra_env[i] = nd->bm_env;
    h_node_preload(&nd->node, SLOWDNS_LIB);
    assert_int_equal(h_node_start(&nd->node), 0);
    wait_ready(&nd->node, 20000);
}

static void talk(struct h_node *node, const char *text)
{
    struct v1c *a = v1_member(node->port, "alice", V1_JSON);
    json_decref(join_ok(a, "named"));
    json_int_t id = send_ok(a, "named", text, NULL);
    assert_int_equal(expect_new(a, "named", text, "alice"), id);
    v1_close(a);
}

/* Redis stopped and started again: the node is ready within ready_ms, a
 * message goes through, and the broker's log says `said` meanwhile. */
static void outage(const char *text, int ready_ms, const char *said)
{
    struct h_node *n = &first.node;
    long mark = h_log_mark(&n->broker[0]);
    h_redis_stop(&redis);
    h_sleep_ms(300);
    assert_int_equal(h_redis_restart(&redis, dir), 0);
    wait_ready(n, ready_ms);
    talk(n, text);
    if (!h_log_contains_from(&n->broker[0], mark, said, 0)) {
        h_node_dump_logs(n);
        fail_msg("%s: the broker did not log \"%s\"", text, said);
    }
}

static void test_a_slow_lookup_does_not_stall_the_broker(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", h_tmpdir());
    assert_int_equal(h_redis_start(&redis, dir), 0);
    snprintf(fail_file, sizeof fail_file, "%s/dns-down", dir);
    snprintf(delay_file, sizeof delay_file, "%s/dns-delay", dir);
    static char fail_env[450], delay_env[450];
    snprintf(delay_env, sizeof delay_env, "SLOWDNS_DELAY_FILE=%s", delay_file);
    snprintf(fail_env, sizeof fail_env, "SLOWDNS_FAIL_FILE=%s", fail_file);
    static const char *env[] = {"SLOWDNS_DELAY_MS=1500", fail_env, delay_env, NULL};
    start_named(&first, redis.port, env);
    struct h_node *n = &first.node;
    talk(n, "through a name");

    /* Redis goes away: each reconnection attempt starts with a 1.5 s lookup,
     * and the broker answers meanwhile */
    h_redis_stop(&redis);
    int64_t worst = 0, took;
    int probes = 0;
    for (int64_t end = h_now_ms() + 2 * DELAY_MS + 1000; h_now_ms() < end; probes++) {
        int s = status_of(first.bm, "/healthz", &took);
        assert_true(s > 0);
        if (took > worst)
            worst = took;
        h_sleep_ms(150);
    }
    if (worst >= DELAY_MS / 2)
        fail_msg("the broker took %lld ms to answer /healthz while it looked Redis up "
                 "(%d probes)", (long long)worst, probes);
    assert_int_equal(h_redis_restart(&redis, dir), 0);
    wait_ready(n, 20000);
    talk(n, "after a reconnection");

    /* DNS does not answer: each lookup outlasts the attempt's 5 s, and the
     * broker connects to the address the name had */
    FILE *f = fopen(delay_file, "w");
    assert_non_null(f);
    fprintf(f, "8000\n");
    fclose(f);
    outage("with DNS silent", 30000, "up timed out; connecting");
    unlink(delay_file);

    /* DNS down: the lookups fail at once, and the broker connects to the
     * address the name had */
    int fd = open(fail_file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    outage("with DNS down", 20000, "to the address it had, 127.0.0.1");
    unlink(fail_file);
    assert_int_equal(h_node_stop(n), 0);
    h_redis_stop(&redis);
}

/* A failover behind the name: the old primary stays up while the name
 * moves to its promoted replica, and only the subscriber connection drops
 * (and so looks the name up again). The delivery canary, published on the
 * old server, never reaches the subscriber on the new one; resetting the
 * subscriber again cannot cure that, and the broker used to do only that,
 * every 15 s for good: the node stayed not ready, and every message was
 * stored on a server nobody listened to. Now the second reset takes the
 * publisher too, and the node is whole again within two canary deadlines. */
static void test_a_name_that_moves_takes_both_connections_along(void **state)
{
    (void)state;
    static char da[400], db[420], addr_file[420], addr_env[450];
    snprintf(da, sizeof da, "%s/moved-a", h_tmpdir());
    snprintf(db, sizeof db, "%s/moved-b", h_tmpdir());
    snprintf(addr_file, sizeof addr_file, "%s/dns-addr", h_tmpdir());
    assert_int_equal(mkdir(da, 0700), 0);
    assert_int_equal(mkdir(db, 0700), 0);
    struct h_redis a = {0}, b = {0};
    assert_int_equal(h_redis_start(&a, da), 0);
    assert_int_equal(h_redis_start_at(&b, db, "127.0.0.2", a.port), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", a.port);
    const char *replicaof[] = {"REPLICAOF", "127.0.0.1", port, NULL};
    assert_int_equal(h_redis_cli(&b, replicaof), 0);

    snprintf(addr_env, sizeof addr_env, "SLOWDNS_ADDR_FILE=%s", addr_file);
    static const char *env[] = {"SLOWDNS_DELAY_MS=0", addr_env, NULL};
    start_named(&moved, a.port, env);
    struct h_node *m = &moved.node;
    talk(m, "before the move");

    /* the replica has the node's keys (its ring record and identity) */
    const char *ring[] = {"EXISTS", "confab:ring", NULL};
    int64_t end = h_now_ms() + 10000;
    while (h_redis_int(&b, ring) != 1 && h_now_ms() < end)
        h_sleep_ms(100);
    assert_int_equal(h_redis_int(&b, ring), 1);

    FILE *f = fopen(addr_file, "w");
    assert_non_null(f);
    fprintf(f, "127.0.0.2\n");
    fclose(f);
    const char *promote[] = {"REPLICAOF", "NO", "ONE", NULL};
    assert_int_equal(h_redis_cli(&b, promote), 0);
    long mark = h_log_mark(&m->broker[0]);
    const char *kill_sub[] = {"CLIENT", "KILL", "TYPE", "pubsub", NULL};
    assert_int_equal(h_redis_cli(&a, kill_sub), 0);
    /* the new subscriber has no canary back: not ready at once */
    int s = 200;
    for (end = h_now_ms() + 5000; h_now_ms() < end && s == 200; h_sleep_ms(50))
        s = status_of(m->port, "/readyz", NULL);
    if (s == 200) {
        h_node_dump_logs(m);
        fail_msg("the node stayed ready after its subscriber moved");
    }
    /* the canary's 15 s deadline twice, and the reconnections */
    wait_ready(m, 50000);
    talk(m, "after the move");
    if (!h_log_contains_from(&m->broker[0], mark, "resetting the subscriber and publisher", 0)) {
        h_node_dump_logs(m);
        fail_msg("the broker did not reset its publisher connection");
    }
    assert_int_equal(h_node_stop(m), 0);
    h_redis_stop(&a);
    h_redis_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_slow_lookup_does_not_stall_the_broker),
        cmocka_unit_test(test_a_name_that_moves_takes_both_connections_along),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
