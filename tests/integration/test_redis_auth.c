/* Redis settings the brokers meet. A password (REDIS_PASSWORD), of the
 * default user or of an ACL user (REDIS_USERNAME): brokers
 * authenticate both connections and then work normally (scripts loaded,
 * sends acked, history); a wrong password keeps the broker out of service,
 * says why, and never reports ready. An eviction policy other than
 * noeviction under a maxmemory: brokers warn, naming the setting. A Redis
 * out of memory, or turned replica under a running broker, refuses new sends
 * but still acks repeats of accepted ones, and READONLY reconnects. */
#include "v1.h"

#include <hiredis/hiredis.h>
#include <strings.h>
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

static void wait_ready(int port)
{
    int s = -1;
    for (int64_t end = h_now_ms() + 15000; h_now_ms() < end && (s = readyz(port)) != 200;)
        h_sleep_ms(100);
    assert_int_equal(s, 200);
}

/* A Redis of the test's own, in a directory named `name`. */
static void own_redis(struct h_redis *r, const char *name)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/%s", h_tmpdir(), name);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(h_redis_start(r, dir), 0);
}

/* alice in `room` of a ready node, her first message sent (its id). */
static struct v1c *alice_says(int port, const char *room, const char *text, const char *id,
                              json_int_t *mid)
{
    wait_ready(port);
    struct v1c *a = v1_member(port, "alice", V1_JSON);
    json_decref(join_ok(a, room));
    *mid = send_ok(a, room, text, id);
    assert_int_equal(expect_new(a, room, text, "alice"), *mid);
    return a;
}

/* A node of one broker on r, ready, with alice in `room`, her first
 * message sent (its id in *mid). */
static struct v1c *alice_on(struct h_node *n, const struct h_redis *r, const char *room,
                            const char *text, const char *id, json_int_t *mid)
{
    h_node_init(n, r->addr);
    n->brokers = 1;
    /* the presence heartbeat refreshes a room once per PRESENCE_TTL / 3: a
     * refresh refused by a replica before the test's own batch would have
     * the broker reconnect (and the gateway's re-syncs keep it doing so)
     * while the batch arrives, which then meets no Redis at all */
    n->extra_env[0] = "PRESENCE_TTL=3600";
    assert_int_equal(h_node_start(n), 0);
    return alice_says(n->port, room, text, id, mid);
}

/* Two sends in one write, so that the broker runs them in one batch. */
static void send_two(struct v1c *a, const char *room, const char *text1, const char *id1,
                     const char *text2, const char *id2)
{
    char two[2][200];
    snprintf(two[0], sizeof two[0],
             "{\"type\":\"send\",\"payload\":{\"room\":\"%s\",\"message\":\"%s\",\"id\":\"%s\"}}",
             room, text1, id1);
    snprintf(two[1], sizeof two[1],
             "{\"type\":\"send\",\"payload\":{\"room\":\"%s\",\"message\":\"%s\",\"id\":\"%s\"}}",
             room, text2, id2);
    const char *const texts[] = {two[0], two[1]};
    assert_int_equal(wsc_send_texts(v1_wsc(a), texts, 2), 0);
}

static void test_the_right_password_serves(void **state)
{
    (void)state;
    struct h_node n;
    h_node_init(&n, redis.addr);
    n.extra_env[0] = "REDIS_PASSWORD=" PASSWORD;
    assert_int_equal(h_node_start(&n), 0);
    json_int_t id;
    v1_close(alice_says(n.port, "locked", "behind a password", "p-1", &id));
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
    own_redis(&lru, "lru");
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

/* Whether r's slow log, which logs every command while
 * slowlog-log-slower-than is 0, holds an EVALSHA naming both keys: the
 * sends whose de-duplication keys they are ran in one batch. */
static bool one_evalsha_names(const struct h_redis *r, const char *k1, const char *k2)
{
    redisContext *c = redisConnectUnix(r->sock);
    redisReply *rep = c && !c->err ? redisCommand(c, "SLOWLOG GET 1000") : NULL;
    bool both = false;
    for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements && !both; i++) {
        const redisReply *e = rep->element[i];
        const redisReply *args =
            e->type == REDIS_REPLY_ARRAY && e->elements > 3 ? e->element[3] : NULL;
        if (!args || args->type != REDIS_REPLY_ARRAY || !args->elements ||
            args->element[0]->type != REDIS_REPLY_STRING ||
            strcasecmp(args->element[0]->str, "evalsha"))
            continue;
        bool has1 = false, has2 = false;
        for (size_t j = 1; j < args->elements; j++) {
            const redisReply *a = args->element[j];
            has1 |= a->type == REDIS_REPLY_STRING && !strcmp(a->str, k1);
            has2 |= a->type == REDIS_REPLY_STRING && !strcmp(a->str, k2);
        }
        both = has1 && has2;
    }
    freeReplyObject(rep);
    redisFree(c);
    return both;
}

/* A Redis out of memory (noeviction, maxmemory reached) refuses new sends
 * (the client is told "unavailable": retry later), but a repeat of a send it accepted before is
 * still answered with its id, also when it shares a batch of sends with one that is refused: the
 * client learns that its message went out, instead of being told it failed and trying again for as
 * long as Redis stays full. Redis' slow log shows that the two shared a batch; a round where the
 * broker read them apart is tried again with another new send. */
static void test_a_full_redis_still_acks_a_repeat(void **state)
{
    (void)state;
    struct h_redis full;
    own_redis(&full, "full");
    struct h_node n;
    json_int_t id;
    struct v1c *a = alice_on(&n, &full, "full", "first", "f-1", &id);

    static const char *const every[] = {"CONFIG", "SET", "slowlog-log-slower-than", "0", NULL};
    static const char *const keep[] = {"CONFIG", "SET", "slowlog-max-len", "1000", NULL};
    static const char *const reset[] = {"SLOWLOG", "RESET", NULL};
    static const char *const max[] = {"CONFIG", "SET", "maxmemory", "1", NULL};
    assert_int_equal(h_redis_cli(&full, every), 0);
    assert_int_equal(h_redis_cli(&full, keep), 0);
    assert_int_equal(h_redis_cli(&full, max), 0);
    bool shared = false;
    for (int round = 0; round < 3 && !shared; round++) {
        char fresh[16], fresh_key[64];
        snprintf(fresh, sizeof fresh, "f-%d", round + 2);
        snprintf(fresh_key, sizeof fresh_key, "cf:{full}:dd:5:alice:%s", fresh);
        assert_int_equal(h_redis_cli(&full, reset), 0);
        send_two(a, "full", "first", "f-1", "second", fresh);
        json_t *ack = v1_wait(a, V1_WAIT, "ack", "id", "f-1", NULL);
        V1_MUST(a, ack, "the repeat's ack while Redis is full");
        assert_int_equal(pint(ack, "message_id"), id);
        json_decref(ack);
        json_t *err = v1_wait(a, V1_WAIT, "error", "ref", fresh, NULL);
        V1_MUST(a, err, "the new send refused while Redis is full");
        /* nothing was stored and a retry may pass: not "internal" */
        assert_string_equal(pstr(err, "code"), "unavailable");
        assert_non_null(strstr(pstr(err, "message"), "out of memory"));
        json_decref(err);
        shared = one_evalsha_names(&full, "cf:{full}:dd:5:alice:f-1", fresh_key);
        if (!shared)
            fprintf(stderr, "round %d: the broker ran the two sends apart; again\n", round);
    }
    assert_true(shared);
    V1_NONE(a, 200, "new_message", "message", "second", NULL);

    static const char *const unlimited[] = {"CONFIG", "SET", "maxmemory", "0", NULL};
    assert_int_equal(h_redis_cli(&full, unlimited), 0);
    assert_int_equal(send_ok(a, "full", "second", "f-2"), id + 1);
    assert_int_equal(expect_new(a, "full", "second", "alice"), id + 1);
    v1_close(a);
    assert_int_equal(h_node_stop(&n), 0);
    h_redis_stop(&full);
}

/* INFO replication on r says master_link_status:up (polled). */
static bool linked_to_master(const struct h_redis *r, int ms)
{
    for (int64_t end = h_now_ms() + ms; h_now_ms() < end; h_sleep_ms(50)) {
        redisContext *c = redisConnectUnix(r->sock);
        redisReply *rep = c && !c->err ? redisCommand(c, "INFO replication") : NULL;
        bool up = rep && rep->type == REDIS_REPLY_STRING &&
                  strstr(rep->str, "master_link_status:up");
        freeReplyObject(rep);
        redisFree(c);
        if (up)
            return true;
    }
    return false;
}

static void replicaof(const struct h_redis *r, const struct h_redis *of)
{
    char port[16];
    snprintf(port, sizeof port, "%d", of ? of->port : 0);
    const char *const args[] = {"REPLICAOF", of ? of->ip : "NO", of ? port : "ONE", NULL};
    assert_int_equal(h_redis_cli(r, args), 0);
}

/* The server turns replica under a running broker (its connections stay):
 * a batch holding a repeat of an accepted send and a new one gets the
 * repeat's id and READONLY for the new one, inside the reply, where the
 * bridge used to look for it only as the whole reply. It must reconnect
 * (after a failover the name leads elsewhere), as for a lone send. The
 * broker's own writes (the ring check every 5 s, presence) can meet READONLY
 * first and take the connection down before the batch: that round is tried
 * again. */
static void test_a_batch_refused_by_a_replica_reconnects(void **state)
{
    (void)state;
    struct h_redis p, q;
    own_redis(&p, "ro-p");
    own_redis(&q, "ro-q");
    struct h_node n;
    json_int_t id;
    struct v1c *a = alice_on(&n, &p, "ro", "hello", "ro-0", &id);
    bool acked = false;
    for (int round = 0; round < 3 && !acked; round++) {
        char first[16], second[16];
        snprintf(first, sizeof first, "ro-%d-1", round);
        snprintf(second, sizeof second, "ro-%d-2", round);
        id = send_ok(a, "ro", "first", first);
        assert_int_equal(expect_new(a, "ro", "first", "alice"), id);
        /* q takes p's data and goes its own way; p then follows q: the same
         * data, read-only now, and the broker still connected to it */
        replicaof(&q, &p);
        assert_true(linked_to_master(&q, 10000));
        replicaof(&q, NULL);
        replicaof(&p, &q);
        assert_true(linked_to_master(&p, 10000));
        long mark = h_log_mark(&n.broker[0]);
        send_two(a, "ro", "first", first, "second", second);
        json_t *err = v1_wait(a, V1_WAIT, "error", "ref", second, NULL);
        V1_MUST(a, err, "the new send refused by a replica");
        json_decref(err);
        json_t *ack = v1_take(a, "ack", "id", first, NULL);
        if (!ack) {
            json_t *e = v1_take(a, "error", "ref", first, NULL);
            printf("round %d: the repeat got %s\n", round, e ? pstr(e, "message") : "nothing");
            json_decref(e);
        } else {
            assert_int_equal(pint(ack, "message_id"), id);
            json_decref(ack);
            char lost[400];
            snprintf(lost, sizeof lost, "publisher connection to %s lost", p.addr);
            assert_true(h_log_contains_from(&n.broker[0], mark, lost, 5000));
            acked = true;
        }
        /* p primary again: the broker comes back to it and the send goes */
        replicaof(&p, NULL);
        wait_ready(n.port);
        json_int_t next = resend_until_acked(a, "ro", "second", second, 10000);
        assert_int_equal(next, id + 1);
        assert_int_equal(expect_new(a, "ro", "second", "alice"), id + 1);
    }
    if (!acked)
        fail_msg("a repeat in a batch refused by a replica never got its ack");
    v1_close(a);
    assert_int_equal(h_node_stop(&n), 0);
    h_redis_stop(&p);
    h_redis_stop(&q);
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

/* A user of Redis' ACLs (REDIS_USERNAME, with REDIS_PASSWORD): what managed
 * Redis services ask for, where the default user is off. The broker could
 * only log in as the default user. */
static void test_an_acl_user_serves(void **state)
{
    (void)state;
    struct h_redis r;
    own_redis(&r, "acl");
    static const char *const user[] = {"ACL", "SETUSER", "confab", "on", ">" PASSWORD,
                                       "~*",  "&*",      "+@all",  NULL};
    static const char *const no_default[] = {"ACL", "SETUSER", "default", "off", NULL};
    assert_int_equal(h_redis_cli(&r, user), 0);
    assert_int_equal(h_redis_cli(&r, no_default), 0);
    struct h_node n;
    h_node_init(&n, r.addr);
    n.brokers = 1;
    n.extra_env[0] = "REDIS_USERNAME=confab";
    n.extra_env[1] = "REDIS_PASSWORD=" PASSWORD;
    assert_int_equal(h_node_start(&n), 0);
    json_int_t id;
    v1_close(alice_says(n.port, "acl-room", "as an ACL user", "u-1", &id));
    assert_int_equal(h_node_stop(&n), 0);

    /* another user (the password alone would be the default user's, off) */
    h_node_init(&n, r.addr);
    n.brokers = 1;
    n.extra_env[0] = "REDIS_USERNAME=nobody";
    n.extra_env[1] = "REDIS_PASSWORD=" PASSWORD;
    assert_int_equal(h_node_start(&n), 0);
    assert_true(h_log_contains_from(&n.broker[0], 0, "AUTH rejected", 10000));
    assert_true(h_log_contains_from(&n.broker[0], 0, "REDIS_USERNAME", 100));
    assert_int_equal(readyz(n.port), 503);
    assert_int_equal(h_node_stop(&n), 0);
    h_redis_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_right_password_serves),
        cmocka_unit_test(test_an_acl_user_serves),
        cmocka_unit_test(test_a_full_redis_still_acks_a_repeat),
        cmocka_unit_test(test_a_batch_refused_by_a_replica_reconnects),
        cmocka_unit_test(test_a_wrong_password_says_so),
        cmocka_unit_test(test_an_evicting_redis_is_named),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
