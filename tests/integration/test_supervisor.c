/* The supervisor of forked gateway workers and broker shards as their
 * watchdog (SUPERVISOR_WATCHDOG, common/supervisor.h): where no service
 * manager watches them (containers, run-all), a stuck child is aborted and
 * restarted, and the others are left alone. */
#include "common.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static struct h_redis g_redis;

static int setup(void **state)
{
    *state = &g_redis;
    return h_redis_start(&g_redis, h_tmpdir());
}

/* Stops one of master's two children (as a stuck loop would stop pinging)
 * and expects it aborted and replaced within a few seconds, the other one
 * untouched. */
static void expect_stuck_child_replaced(struct h_proc *master, const char *what)
{
    pid_t kids[4];
    int64_t deadline = h_now_ms() + 10000;
    while (h_children(master->pid, kids, 4) < 2 && h_now_ms() < deadline)
        h_sleep_ms(50);
    assert_int_equal(h_children(master->pid, kids, 4), 2);
    pid_t stuck = kids[0], other = kids[1];
    long mark = h_log_mark(master);
    assert_int_equal(kill(stuck, SIGSTOP), 0);
    /* 2 s without a ping, then SIGABRT (pending while stopped), SIGKILL 5 s
     * later, a restart after a backoff */
    if (!h_log_contains_from(master, mark, "sent no watchdog ping", 6000)) {
        kill(stuck, SIGKILL);
        h_dump_log(master, 20);
        fail_msg("%s: a stopped child was not noticed", what);
    }
    deadline = h_now_ms() + 12000;
    bool replaced = false;
    while (!replaced && h_now_ms() < deadline) {
        int n = h_children(master->pid, kids, 4);
        replaced = n == 2 && kids[0] != stuck && kids[1] != stuck;
        h_sleep_ms(50);
    }
    if (!replaced) {
        kill(stuck, SIGKILL);
        h_dump_log(master, 20);
        fail_msg("%s: the stuck child was not replaced", what);
    }
    assert_true(kids[0] == other || kids[1] == other); /* the live one stayed */
    assert_int_equal(h_log_count_from(master, mark, "sent no watchdog ping"), 1);
}

static void test_stuck_gateway_worker_is_restarted(void **state)
{
    (void)state;
    struct h_node n;
    h_node_init(&n, g_redis.addr);
    n.brokers = 1;
    n.workers = 2;
    n.extra_env[0] = "SUPERVISOR_WATCHDOG=2";
    assert_int_equal(h_node_start(&n), 0);
    n.gateway.kills_children = true; /* the aborted worker's restart is the point */
    expect_stuck_child_replaced(&n.gateway, "gateway");
    /* the node serves on: a chat through whichever worker takes it */
    struct wsc *a = member(n.port, "alice", NULL), *b = member(n.port, "bob", NULL);
    /* both joins in effect first: they may have gone to different workers,
     * one of them just started */
    settle((struct wsc *[]){a, b}, 2);
    say(a, "after");
    expect_message(b, "after", "alice");
    wsc_close(a);
    wsc_close(b);
    h_node_stop(&n);
}

static void test_stuck_broker_shard_is_restarted(void **state)
{
    (void)state;
    char run_dir[400], redis_env[400], run_env[420];
    snprintf(run_dir, sizeof run_dir, "%s/sup-broker", h_tmpdir());
    snprintf(redis_env, sizeof redis_env, "REDIS_ADDR=%s", g_redis.addr);
    snprintf(run_env, sizeof run_env, "RUN_DIR=%s", run_dir);
    const char *env[] = {
        redis_env, run_env, "BROKERS=2", "SUPERVISOR_WATCHDOG=2", "CONFAB_ENV_FILE=/dev/null",
        NULL};
    char *argv[] = {(char *)h_bin("broker"), NULL};
    struct h_proc b;
    assert_int_equal(h_spawn(&b, "sup-broker", h_tmpdir(), argv, env), 0);
    expect_stuck_child_replaced(&b, "broker");
    int status = h_stop(&b, SIGTERM, 15000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* More workers than the notify socket queues datagrams (max_dgram_qlen)
 * all say STOPPING=1 at once on SIGTERM: the master must go on reading
 * them, or the ones past the queue block in sd_notify and are killed at the
 * grace's end (10 s) instead of draining. */
static void test_many_workers_stop_at_once(void **state)
{
    (void)state;
    int qlen = 10;
    FILE *f = fopen("/proc/sys/net/unix/max_dgram_qlen", "r");
    if (f) {
        if (fscanf(f, "%d", &qlen) != 1)
            qlen = 10;
        fclose(f);
    }
    if (qlen > 40) {
        printf("max_dgram_qlen is %d here: this case needs more workers than it runs\n", qlen);
        return;
    }
    struct h_node n;
    h_node_init(&n, g_redis.addr);
    n.brokers = 1;
    n.workers = qlen + 6;
    assert_int_equal(h_node_start(&n), 0);
    pid_t kids[64];
    int64_t deadline = h_now_ms() + 20000;
    while (h_children(n.gateway.pid, kids, 64) < n.workers && h_now_ms() < deadline)
        h_sleep_ms(50);
    assert_int_equal(h_children(n.gateway.pid, kids, 64), n.workers);
    h_sleep_ms(1500); /* past their start-up's READY and STATUS */
    int64_t t0 = h_now_ms();
    int status = h_stop(&n.gateway, SIGTERM, 15000);
    int64_t ms = h_now_ms() - t0;
    /* 8 s: well past a loaded machine's clean stop (sanitizers' exit costs
     * each of them), well short of the 10 s grace the fault ends at */
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || ms > 8000 ||
        h_log_contains(&n.gateway, "did not stop in", 0)) {
        h_dump_log(&n.gateway, 30);
        fail_msg("%d workers: the gateway stopped after %lld ms (status %d), expected a clean "
                 "stop well within its 10 s grace",
                 n.workers, (long long)ms, status);
    }
    h_node_stop(&n);
}

/* A worker that cannot stop (stopped here, as a hung one would be) is
 * killed at the grace's end, and the master says so in its exit status: it
 * exited 0 as after a clean drain, so a service manager or a script could
 * not tell the two apart. */
static void test_a_drain_cut_short_fails_the_exit_status(void **state)
{
    (void)state;
    struct h_node n;
    h_node_init(&n, g_redis.addr);
    n.brokers = 1;
    n.workers = 2;
    n.extra_env[0] = "DRAIN_TIMEOUT_MS=500"; /* a grace of 5.5 s */
    n.extra_env[1] = "SUPERVISOR_WATCHDOG=0";
    assert_int_equal(h_node_start(&n), 0);
    pid_t kids[4];
    int64_t deadline = h_now_ms() + 10000;
    while (h_children(n.gateway.pid, kids, 4) < 2 && h_now_ms() < deadline)
        h_sleep_ms(50);
    assert_int_equal(h_children(n.gateway.pid, kids, 4), 2);
    assert_int_equal(kill(kids[0], SIGSTOP), 0);
    int status = h_stop(&n.gateway, SIGTERM, 15000);
    printf("the master's status: %d\n", status);
    assert_true(h_log_contains(&n.gateway, "did not stop in", 0));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3); /* CF_SUP_EXIT_CUT_SHORT */
    h_node_stop(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stuck_gateway_worker_is_restarted),
        cmocka_unit_test(test_stuck_broker_shard_is_restarted),
        cmocka_unit_test(test_many_workers_stop_at_once),
        cmocka_unit_test(test_a_drain_cut_short_fails_the_exit_status),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, redis_down));
}
