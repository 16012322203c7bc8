/* Protocol v1 and a room's history on one node with two gateway processes
 * (v1_pair.h): recovered:false once the history is gone (trimmed, or lost
 * with Redis' data); HISTORY_SIZE kept with its slack and the TTLs a join
 * sets; a gap in ids recovered, also as a quiet room's last message, and
 * a gap in presence versions; a largest message read over a small budget,
 * and joins sent together within the client's queue. */
#include "v1.h"
#include "v1_pair.h"

#include <time.h>

/* The epoch a history page of room says its messages are of ("" for none). */
static void page_epoch(struct v1c *c, const char *room, const char *id, char *out, size_t cap)
{
    assert_int_equal(v1_send(c, "history", json_pack("{s:s, s:s}", "room", room, "id", id)), 0);
    json_t *ev = v1_wait(c, V1_WAIT, "history", "id", id, NULL);
    V1_MUST(c, ev, "history");
    assert_true(json_array_size(json_object_get(pl(ev), "messages")) > 0);
    const char *e = pstr(ev, "epoch");
    snprintf(out, cap, "%s", e ? e : "");
    json_decref(ev);
}

static void test_not_recovered_once_the_history_is_gone(void **state)
{
    (void)state;
    gateway_up();
    const char *room = "trimmed";
    struct v1c *s = v1_member(fx.node.port, "alice", V1_JSON);
    char epoch[128];
    join_epoch(s, "flushed", epoch, sizeof epoch);
    json_t *ev;
    ev = join_ok(s, room);
    char epoch_t[128];
    snprintf(epoch_t, sizeof epoch_t, "%s", pstr(ev, "epoch"));
    json_decref(ev);

    /* Older than what is kept: the latest `limit`, not recovered. */
    for (int i = 1; i <= HISTORY + 5; i++)
        send_req(s, room, "t", NULL);
    for (int i = 1; i <= HISTORY + 5; i++)
        json_decref(expect_ack(s, room, NULL));
    struct v1c *c = v1_member(gw2.port, "bob", V1_JSON);
    ev = rejoin(c, room, 2, epoch_t, 5);
    assert_false(json_is_true(json_object_get(pl(ev), "recovered")));
    assert_string_equal(pstr(ev, "epoch"), epoch_t);
    json_t *msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), 5);
    assert_int_equal(msg_id(json_array_get(msgs, 0)), HISTORY + 1);
    json_decref(ev);
    /* Just inside what is kept: recovered. */
    struct v1c *c2 = v1_member(gw2.port, "carol", V1_JSON);
    ev = rejoin(c2, room, 5, epoch_t, 5);
    assert_true(json_is_true(json_object_get(pl(ev), "recovered")));
    assert_int_equal(json_array_size(json_object_get(pl(ev), "messages")), HISTORY);
    json_decref(ev);
    v1_close(c2);

    /* Redis loses everything: a new epoch, not recovered. */
    for (int i = 1; i <= 3; i++)
        send_ok(s, "flushed", "before the flush", NULL);
    char page[128];
    page_epoch(s, "flushed", "f-1", page, sizeof page);
    assert_string_equal(page, epoch);
    static const char *const flush[] = {"FLUSHALL", NULL};
    assert_int_equal(h_redis_cli(&fx.redis, flush), 0);
    json_int_t after = send_ok(s, "flushed", "after the flush", NULL);
    printf("after FLUSHALL the next message got id %lld\n", (long long)after);
    struct v1c *c3 = v1_member(gw2.port, "dave", V1_JSON);
    ev = rejoin(c3, "flushed", 3, epoch, -1);
    assert_false(json_is_true(json_object_get(pl(ev), "recovered")));
    assert_string_not_equal(pstr(ev, "epoch"), epoch);
    msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), 1);
    assert_string_equal(msg_text(json_array_get(msgs, 0)), "after the flush");
    /* A page says which epoch its ids are of: for the member that joined
     * before the loss, not the one it knows (its unasked joined may not have
     * come yet), so that it does not take them for the old epoch's. */
    page_epoch(s, "flushed", "f-2", page, sizeof page);
    assert_string_equal(page, pstr(ev, "epoch"));
    json_decref(ev);
    /* A member that stayed joined through the loss hears the room's new
     * messages too, although their ids start again. */
    bool resync = delivered_after_loss(s, "flushed", "after the flush", epoch);
    printf("the member stayed joined got it %s\n", resync ? "in a fresh joined" : "live");
    json_int_t next = send_ok(s, "flushed", "after the flush, 2", NULL);
    assert_int_equal(next, after + 1);
    assert_int_equal(expect_new(c3, "flushed", "after the flush, 2", "alice"), next);
    assert_int_equal(expect_new(s, "flushed", "after the flush, 2", "alice"), next);
    V1_NONE(s, 200, "new_message", "room", "flushed", "message", "after the flush", NULL);
    v1_close(c3);
    v1_close(c);
    v1_close(s);
}


static int64_t redis_int(const char *cmd, const char *key)
{
    const char *const args[] = {cmd, key, NULL};
    int64_t v = h_redis_int(&fx.redis, args);
    assert_true(v != INT64_MIN);
    return v;
}

/* The ids a history request for the latest `limit` returns. */
static void latest_ids(struct v1c *c, const char *room, int limit, json_int_t *lo, json_int_t *hi,
                       size_t *n)
{
    assert_int_equal(v1_send(c, "history", json_pack("{s:s, s:i}", "room", room, "limit", limit)),
                     0);
    json_t *ev = v1_wait(c, V1_WAIT, "history", "room", room, NULL);
    V1_MUST(c, ev, "history");
    json_t *msgs = json_object_get(pl(ev), "messages");
    *n = json_array_size(msgs);
    assert_true(*n > 0);
    *lo = msg_id(json_array_get(msgs, 0));
    *hi = msg_id(json_array_get(msgs, *n - 1));
    assert_false(json_is_true(json_object_get(pl(ev), "has_more")));
    json_decref(ev);
}

/* Redis keeps up to HISTORY_SIZE/8 more messages than HISTORY_SIZE (a trim
 * per message cost more than the rest of a send), but users see exactly the
 * newest HISTORY_SIZE in joins, pages and recovery, and the list never grows
 * past the slack. A room's keys outlive its last activity by HISTORY_TTL (at
 * most an eighth more), though not every send sets the TTLs again. */
static void test_history_holds_history_size_with_slack(void **state)
{
    (void)state;
    gateway_up();
    const char *room = "slack";
    char hist[64], meta[64], text[32], epoch[128];
    snprintf(hist, sizeof hist, "cf:{%s}:hist", room);
    snprintf(meta, sizeof meta, "cf:{%s}:meta", room);
    struct v1c *a = v1_member(fx.node.port, "alice", V1_JSON);
    join_epoch(a, room, epoch, sizeof epoch);
    enum { SLACK = HISTORY / 8 };
    for (int i = 1; i <= HISTORY + SLACK; i++) {
        text_of(text, sizeof text, "s", i);
        assert_int_equal(send_ok(a, room, text, NULL), i);
    }
    /* In the slack: one more stored than anyone sees. */
    assert_int_equal(redis_int("LLEN", hist), HISTORY + SLACK);
    json_int_t lo, hi;
    size_t n;
    latest_ids(a, room, 100, &lo, &hi, &n);
    assert_int_equal(n, HISTORY);
    assert_int_equal(lo, SLACK + 1);
    assert_int_equal(hi, HISTORY + SLACK);
    struct v1c *b = v1_member(fx.node.port, "bob", V1_JSON);
    json_t *ev = join_ok(b, room);
    json_t *msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), HISTORY);
    assert_int_equal(msg_id(json_array_get(msgs, 0)), SLACK + 1);
    json_decref(ev);
    /* Recovery reaches back exactly HISTORY_SIZE messages. */
    struct v1c *c = v1_member(fx.node.port, "carol", V1_JSON);
    ev = rejoin(c, room, SLACK - 1, epoch, -1);
    assert_false(json_is_true(json_object_get(pl(ev), "recovered")));
    json_decref(ev);
    leave_ok(c, room);
    ev = rejoin(c, room, SLACK, epoch, -1);
    assert_true(json_is_true(json_object_get(pl(ev), "recovered")));
    assert_int_equal(json_array_size(json_object_get(pl(ev), "messages")), HISTORY);
    json_decref(ev);

    /* One past the slack: trimmed back to HISTORY_SIZE. */
    assert_int_equal(send_ok(a, room, "over", NULL), HISTORY + SLACK + 1);
    assert_int_equal(redis_int("LLEN", hist), HISTORY);
    latest_ids(a, room, 100, &lo, &hi, &n);
    assert_int_equal(n, HISTORY);
    assert_int_equal(lo, SLACK + 2);

    /* TTLs: HISTORY_TTL (default 86400 s) plus at most an eighth ... */
    int64_t keep_ms = 86400LL * 1000, slack_ms = keep_ms / 8;
    int64_t p_meta = redis_int("PTTL", meta), p_hist = redis_int("PTTL", hist);
    assert_true(p_meta > keep_ms && p_meta <= keep_ms + slack_ms);
    assert_true(p_hist > keep_ms && p_hist <= keep_ms + slack_ms);
    /* ... and a send soon after the last touch does not set them again. */
    usleep(1100 * 1000);
    send_ok(a, room, "later", NULL);
    assert_true(redis_int("PTTL", hist) <= p_hist - 1000);
    assert_true(redis_int("PTTL", meta) <= p_meta - 1000);
    v1_close(a);
    v1_close(b);
    v1_close(c);
}

/* A join sets the room's TTLs, but not each time: the history keys' when
 * the room is new or once per HISTORY_TTL/8 (as a send does), the presence
 * keys' when they are new or half of theirs has run out. The member count it
 * answers with is the room's. */
static void test_a_join_sets_the_ttls_once(void **state)
{
    (void)state;
    gateway_up();
    const char *room = "ttls";
    static const char *const what[4] = {"pz", "pu", "pc", "pv"};
    char meta[64], keys[4][64];
    snprintf(meta, sizeof meta, "cf:{%s}:meta", room);
    for (int i = 0; i < 4; i++)
        snprintf(keys[i], sizeof keys[i], "cf:{%s}:%s", room, what[i]);
    struct v1c *a = v1_member(fx.node.port, "alice", V1_JSON);
    json_decref(join_ok(a, room));
    int64_t keep_ms = 86400LL * 1000, slack_ms = keep_ms / 8;
    int64_t p_meta = redis_int("PTTL", meta), p_keys[4];
    assert_true(p_meta > keep_ms && p_meta <= keep_ms + slack_ms);
    for (int i = 0; i < 4; i++) {
        p_keys[i] = redis_int("PTTL", keys[i]);
        if (p_keys[i] <= 0)
            fail_msg("%s has no TTL after the room's first join (PTTL %lld)", keys[i],
                     (long long)p_keys[i]);
    }
    usleep(1100 * 1000);
    struct v1c *b = v1_member(fx.node.port, "bob", V1_JSON);
    json_t *ev = join_ok(b, room);
    assert_int_equal(pint(ev, "count"), 2);
    assert_int_equal(redis_int("HLEN", keys[2]), 2);
    json_decref(ev);
    assert_true(redis_int("PTTL", meta) <= p_meta - 1000);
    for (int i = 0; i < 4; i++)
        if (redis_int("PTTL", keys[i]) > p_keys[i] - 1000)
            fail_msg("%s's TTL was set again by the second join", keys[i]);
    v1_close(a);
    v1_close(b);
}

/* A member whose node missed a message (its broker's subscription was down
 * while another node published) notices the jump in ids and re-syncs: it
 * gets the missed message, then the live one, in order, each once. The
 * miss is made exactly: a script stores a message without publishing it. */
static void test_a_gap_in_ids_is_recovered(void **state)
{
    (void)state;
    gateway_up();
    const char *room = "gap";
    struct v1c *m, *n;
    alice_and_bob_in(room, &m, &n);
    json_int_t first = send_ok(n, room, "before", NULL);
    assert_int_equal(expect_new(m, room, "before", "bob"), first);

    store_unpublished(&fx.redis, room, "missed");

    json_int_t after = send_ok(n, room, "after", NULL);
    assert_int_equal(after, first + 2);
    assert_int_equal(expect_new(m, room, "missed", "ghost"), first + 1);
    assert_int_equal(expect_new(m, room, "after", "bob"), first + 2);
    V1_NONE(m, 300, "new_message", NULL);
    v1_close(m);
    v1_close(n);
}

/* A presence change made without publishing it: what a node whose
 * subscription was down misses when `user` joins room. */
static void join_unannounced(const char *room, const char *user)
{
    char k[4][96], exp[24];
    static const char *const what[4] = {"pz", "pu", "pc", "pv"};
    for (int i = 0; i < 4; i++)
        snprintf(k[i], sizeof k[i], "cf:{%s}:%s", room, what[i]);
    /* an expiry on Redis' clock (wall time): h_now_ms is monotonic */
    snprintf(exp, sizeof exp, "%lld", (long long)time(NULL) * 1000 + 60000);
    static const char script[] =
        "redis.call('ZADD', KEYS[1], ARGV[1], 'c-' .. ARGV[2])\n"
        "redis.call('HSET', KEYS[2], 'c-' .. ARGV[2], ARGV[2])\n"
        "redis.call('HINCRBY', KEYS[3], ARGV[2], 1)\n"
        "return redis.call('INCR', KEYS[4])\n";
    const char *const args[] = {"EVAL", script, "4", k[0], k[1], k[2], k[3], exp, user, NULL};
    assert_int_equal(h_redis_cli(&fx.redis, args), 0);
}

/* Likewise a missed presence change: the next one comes with a version past
 * the next, and the member re-syncs into a whole joined with the members as
 * they are. It used to be given the next change alone, and ann's list went
 * on without the one who came unseen. */
static void test_a_gap_in_presence_versions_is_recovered(void **state)
{
    (void)state;
    gateway_up();
    const char *room = "pgap";
    struct v1c *a = v1_member(fx.node.port, "ann", V1_JSON);
    join_quietly(a, room);
    join_unannounced(room, "ghost");
    struct v1c *b = v1_member(gw2.port, "bob", V1_JSON);
    join_quietly(b, room);
    json_t *ev = v1_wait(a, V1_WAIT, "joined", "room", room, NULL);
    V1_MUST(a, ev, "a joined after the gap in presence versions");
    assert_int_equal(pint(ev, "count"), 3);
    assert_true(has_member(ev, "ghost") && has_member(ev, "bob"));
    json_decref(ev);
    V1_NONE(a, 300, "presence", "user", "bob", NULL); /* in the joined, not again */
    v1_close(b);
    assert_int_equal(expect_presence(a, room, "bob", "leave", V1_WAIT), 2);
    v1_close(a);
}

/* The same miss as the last message of a quiet room: no later id reveals
 * it. The broker's subscriber connection is cut; when its broker is ready
 * again, the gateway re-syncs the room's members, who get it then. */
static void test_a_missed_last_message_arrives_when_the_broker_is_ready_again(void **state)
{
    (void)state;
    gateway_up();
    const char *room = "quiet";
    struct v1c *m = v1_member(fx.node.port, "carol", V1_MSGPACK);
    join_quietly(m, room);
    json_int_t first = send_ok(m, room, "hello", NULL);
    assert_int_equal(expect_new(m, room, "hello", "carol"), first);
    store_unpublished(&fx.redis, room, "unseen");
    V1_NONE(m, 300, "new_message", NULL); /* nothing tells it yet */
    const char *const kill_sub[] = {"CLIENT", "KILL", "TYPE", "pubsub", NULL};
    assert_int_equal(h_redis_cli(&fx.redis, kill_sub), 0);
    json_t *ev = v1_wait(m, 20000, "new_message", "message", "unseen", NULL);
    V1_MUST(m, ev, "the message missed while the subscription was down");
    assert_int_equal(pint(ev, "id"), first + 1);
    json_decref(ev);
    V1_NONE(m, 300, "new_message", NULL);
    v1_close(m);
}

/* A history page of req `id` (before > 0: before that id) on c. */
static json_t *page_of(struct v1c *c, const char *room, const char *id, json_int_t before)
{
    json_t *p = json_pack("{s:s, s:s}", "room", room, "id", id);
    if (before > 0)
        json_object_set_new(p, "before", json_integer(before));
    assert_int_equal(v1_send(c, "history", p), 0);
    json_t *ev = v1_wait(c, V1_WAIT, "history", "id", id, NULL);
    V1_MUST(c, ev, "history");
    return ev;
}

/* A client queue at its floor (4 x MAX_MESSAGE_BYTES) gives pages and
 * snapshots a budget of MAX_MESSAGE_BYTES, which a largest message, stored
 * with its framing, is over. Such a message came as an empty page with more
 * to come, which the client's gap fetch reported as ids lost though the
 * history holds them (and "load older" stopped there), and a join's
 * snapshot came without it. */
static struct h_node gw3; /* a gateway of the smallest client queue */

/* Stops gw3 also after a failed assertion: left running, it would outlive
 * the test. */
static int stop_gw3(void **state)
{
    (void)state;
    return gw3.gateway.pid > 0 && h_stop_clean(&gw3.gateway) ? -1 : 0;
}

static void test_a_largest_message_is_read_over_a_small_budget(void **state)
{
    (void)state;
    gateway_up();
    gw3 = fx.node;
    gw3.gateway.pid = 0; /* not fx.node's: stop_gw3 stops only what started here */
    gw3.port = h_free_port();
    gw3.gateway_name = "gateway-3";
    int k = 0;
    while (gw3.extra_env[k])
        k++;
    gw3.extra_env[k] = "MAX_CLIENT_QUEUE_BYTES=16384"; /* MAX_MESSAGE_BYTES is 4096 */
    gw3.extra_env[k + 1] = NULL;
    assert_int_equal(h_gateway_start(&gw3), 0);
    assert_int_equal(h_wait_health(gw3.port, 200, 15000), 0);

    const char *room = "largest";
    enum { TEXT = 4040 }; /* a frame of 4084 bytes in msgpack, within 4096 */
    char *text = malloc(TEXT + 1);
    memset(text, 'l', TEXT);
    text[TEXT] = '\0';
    struct v1c *a = v1_member(fx.node.port, "alice", V1_MSGPACK);
    join_quietly(a, room);
    json_int_t small = send_ok(a, room, "small", NULL);
    json_int_t big = send_ok(a, room, text, NULL);

    struct v1c *c = v1_member(gw3.port, "carol", V1_JSON);
    json_t *ev = join_ok(c, room);
    json_t *msgs = json_object_get(pl(ev), "messages");
    assert_true(json_array_size(msgs) >= 1);
    assert_int_equal(msg_id(json_array_get(msgs, json_array_size(msgs) - 1)), big);
    json_decref(ev);

    ev = page_of(c, room, "newest", 0);
    msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), 1);
    assert_int_equal(msg_id(json_array_get(msgs, 0)), big);
    assert_string_equal(msg_text(json_array_get(msgs, 0)), text);
    assert_true(json_is_true(json_object_get(pl(ev), "has_more")));
    json_decref(ev);
    ev = page_of(c, room, "older", big);
    msgs = json_object_get(pl(ev), "messages");
    assert_int_equal(json_array_size(msgs), 1);
    assert_int_equal(msg_id(json_array_get(msgs, 0)), small);
    json_decref(ev);

    v1_close(c);
    v1_close(a);
    free(text);
}

/* Stores n messages of `len` bytes from "ghost" in room's history (the
 * room made already), without publishing them. */
static void fill_history(const char *room, int n, size_t len)
{
    char ts[24], meta[96], hist[96], count[16];
    snprintf(ts, sizeof ts, "%lld", (long long)h_now_ms());
    snprintf(meta, sizeof meta, "cf:{%s}:meta", room);
    snprintf(hist, sizeof hist, "cf:{%s}:hist", room);
    snprintf(count, sizeof count, "%d", n);
    char *text = malloc(len + 1);
    memset(text, 'h', len);
    text[len] = '\0';
    static const char script[] =
        "local epoch = redis.call('HGET', KEYS[1], 'epoch')\n"
        "for i = 1, tonumber(ARGV[4]) do\n"
        "  local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)\n"
        "  redis.call('RPUSH', KEYS[2], cmsgpack.pack({v = 1, t = 'msg', room = ARGV[1],\n"
        "    from = 'ghost', text = ARGV[3], ts = tonumber(ARGV[2]), epoch = epoch, id = id}))\n"
        "end\n"
        "return 0\n";
    const char *const args[] = {"EVAL", script, "2", meta, hist, room, ts, text, count, NULL};
    assert_int_equal(h_redis_cli(&fx.redis, args), 0);
    free(text);
}

/* The joins a client sends together (a reconnect's rejoins) share its
 * queue: each snapshot used to carry up to a quarter of it, so eight rooms
 * of full histories came to twice its bound in one loop pass, and over TLS
 * (nothing written within a pass) the client was closed as a slow consumer
 * at each reconnect. Together they now stay within the bound. */
static void test_joins_sent_together_share_the_queue(void **state)
{
    (void)state;
    gateway_up();
    enum { ROOMS = 8, TEXT = 3500 };
    struct v1c *a = v1_member(fx.node.port, "alice", V1_JSON);
    char rooms[ROOMS][16], *frames[ROOMS];
    for (int i = 0; i < ROOMS; i++) {
        snprintf(rooms[i], sizeof rooms[i], "shared%d", i);
        join_quietly(a, rooms[i]);
        fill_history(rooms[i], HISTORY, TEXT); /* 70 KB each: over a 64 KiB budget */
        char id[16];
        snprintf(id, sizeof id, "j%d", i);
        json_t *join =
            json_pack("{s:s, s:{s:s, s:s}}", "type", "join", "payload", "room", rooms[i], "id", id);
        frames[i] = json_dumps(join, JSON_COMPACT);
        json_decref(join);
    }
    struct v1c *c = v1_member(fx.node.port, "carol", V1_JSON);
    assert_int_equal(wsc_send_texts(v1_wsc(c), (const char *const *)frames, ROOMS), 0);
    size_t total = 0, most = 0;
    for (int i = 0; i < ROOMS; i++) {
        json_t *ev = v1_wait(c, V1_WAIT, "joined", "room", rooms[i], NULL);
        V1_MUST(c, ev, "joined");
        size_t n = json_array_size(json_object_get(pl(ev), "messages"));
        assert_true(n >= 1); /* the newest at least */
        most = n > most ? n : most;
        char *js = json_dumps(ev, JSON_COMPACT);
        total += strlen(js);
        free(js);
        json_decref(ev);
        free(frames[i]);
    }
    printf("%d snapshots together: %zu bytes, the largest of %zu messages\n", ROOMS, total, most);
    assert_true(most >= 15); /* the first took a quarter of the queue, as one alone */
    if (total > 262144)      /* MAX_CLIENT_QUEUE_BYTES' default */
        fail_msg("%d snapshots sent together came to %zu bytes", ROOMS, total);
    v1_close(c);
    v1_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_holds_history_size_with_slack),
        cmocka_unit_test(test_a_join_sets_the_ttls_once),
        cmocka_unit_test(test_a_gap_in_ids_is_recovered),
        cmocka_unit_test(test_a_gap_in_presence_versions_is_recovered),
        cmocka_unit_test(test_a_missed_last_message_arrives_when_the_broker_is_ready_again),
        cmocka_unit_test_teardown(test_a_largest_message_is_read_over_a_small_budget, stop_gw3),
        cmocka_unit_test(test_joins_sent_together_share_the_queue),
        cmocka_unit_test(test_not_recovered_once_the_history_is_gone),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
