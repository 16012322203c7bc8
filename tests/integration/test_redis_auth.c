/* Redis settings the brokers meet. A password (REDIS_PASSWORD): brokers
 * authenticate both connections and then work normally (scripts loaded,
 * sends acked, history); a wrong password keeps the broker out of service,
 * says why, and never reports ready. An eviction policy other than
 * noeviction under a maxmemory: brokers warn, naming the setting. */
#include "v1.h"

#include <sys/stat.h>

#define PASSWORD "s3cret-pass-for-the-test"

static struct h_redis redis;

static int setup(void **state)
{
    (void)state;
    if (h_redis_start(&redis, h_tmpdir()) < 0)
        return -1;
    static const char *const args[] = {"CONFIG", "SET", "requirepass", PASSWORD, NULL};
    return h_redis_cli(&redis, args) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    h_redis_stop(&redis);
    return 0;
}

static int readyz(int port)
{
    struct h_resp r;
    if (h_http(port, "GET", "/readyz", NULL, NULL, 0, &r) < 0)
        return -1;
    int s = r.status;
    h_resp_free(&r);
    return s;
}

static void test_the_right_password_serves(void **state)
{
    (void)state;
    struct h_node n;
    h_node_init(&n, redis.addr);
    n.extra_env[0] = "REDIS_PASSWORD=" PASSWORD;
    assert_int_equal(h_node_start(&n), 0);
    int s = -1;
    for (int64_t end = h_now_ms() + 10000; h_now_ms() < end && (s = readyz(n.port)) != 200;)
        h_sleep_ms(50);
    assert_int_equal(s, 200);
    struct v1c *a = v1_member(n.port, "alice", V1_JSON);
    json_decref(join_ok(a, "locked"));
    json_int_t id = send_ok(a, "locked", "behind a password", "p-1");
    assert_int_equal(expect_new(a, "locked", "behind a password", "alice"), id);
    v1_close(a);
    h_node_dump_logs(&n);
    assert_false(h_log_contains(&n.broker[0], "evicts keys", 0)); /* maxmemory 0 */
    assert_int_equal(h_node_stop(&n), 0);
}

/* LRU eviction takes de-duplication ids and presence keys one at a time:
 * the broker says so when it connects, with what to set; noeviction is
 * quiet. */
static void test_an_evicting_redis_is_named(void **state)
{
    (void)state;
    struct h_redis lru;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/lru", h_tmpdir());
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(h_redis_start(&lru, dir), 0);
    static const char *const max[] = {"CONFIG", "SET", "maxmemory", "104857600", NULL};
    static const char *const policy[] = {"CONFIG", "SET", "maxmemory-policy", "allkeys-lru", NULL};
    static const char *const none[] = {"CONFIG", "SET", "maxmemory-policy", "noeviction", NULL};
    assert_int_equal(h_redis_cli(&lru, max), 0);
    assert_int_equal(h_redis_cli(&lru, policy), 0);
    struct h_node n;
    h_node_init(&n, lru.addr);
    n.brokers = 1;
    assert_int_equal(h_node_start(&n), 0);
    assert_true(h_log_contains(&n.broker[0],
                               "evicts keys once full (maxmemory 104857600 bytes, "
                               "maxmemory-policy allkeys-lru)",
                               10000));
    assert_true(h_log_contains(&n.broker[0], "set maxmemory-policy noeviction", 0));
    assert_int_equal(h_node_stop(&n), 0);

    assert_int_equal(h_redis_cli(&lru, none), 0);
    h_node_init(&n, lru.addr);
    n.brokers = 1;
    assert_int_equal(h_node_start(&n), 0);
    assert_true(h_log_contains(&n.broker[0], "as expected", 10000)); /* checked */
    h_sleep_ms(300);
    assert_false(h_log_contains(&n.broker[0], "evicts keys", 0));
    assert_int_equal(h_node_stop(&n), 0);
    h_redis_stop(&lru);
}

static void test_a_wrong_password_says_so(void **state)
{
    (void)state;
    struct h_node n;
    h_node_init(&n, redis.addr);
    n.brokers = 1;
    n.extra_env[0] = "REDIS_PASSWORD=not-the-password";
    assert_int_equal(h_node_start(&n), 0); /* linked, but not ready */
    assert_true(h_log_contains_from(&n.broker[0], 0, "AUTH rejected", 10000));
    assert_true(h_log_contains_from(&n.broker[0], 0, "check REDIS_PASSWORD", 100));
    assert_int_equal(readyz(n.port), 503);
    h_sleep_ms(1500);
    assert_int_equal(readyz(n.port), 503);
    struct v1c *a = v1_member(n.port, "alice", V1_JSON);
    assert_int_equal(v1_send(a, "join", json_pack("{s:s, s:s}", "room", "locked", "id", "j-1")),
                     0);
    expect_error(a, "unavailable", "j-1", "locked");
    v1_close(a);
    assert_int_equal(h_node_stop(&n), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_right_password_serves),
        cmocka_unit_test(test_a_wrong_password_says_so),
        cmocka_unit_test(test_an_evicting_redis_is_named),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
