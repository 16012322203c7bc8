/* A broker's script calls on Redis: the sends of one read share one script
 * call, a damaged room's key refuses only that room, a join's snapshot reads
 * only what its budget holds, and an idle room's presence is refreshed once
 * a period. Through raw gateway links (blink.h) against a real node. */
#include "common.h"
#include "blink.h"
#include "blink_fixture.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <unistd.h>

#include "bytes.h"
#include "clock.h"
#include "shard.h"
#include "wire.h"

/* After a test that makes Redis look full: also when it failed there, the
 * tests after it get a Redis that is not. */
static int memory_unlimited(void **state)
{
    (void)state;
    const char *const unlimited[] = {"CONFIG", "SET", "maxmemory", "0", NULL};
    return h_redis_cli(&fx.redis, unlimited) < 0 ? -1 : 0;
}

/* A link to broker `shard` of the node's two, said hello, with a reader on
 * it: the caller frees the reader and closes the socket returned. */
static int open_link(uint32_t shard, struct bl_reader *rd)
{
    int fd = link_to((int)shard);
    bl_hello(fd, shard, 2);
    bl_reader_init(rd, fd);
    return fd;
}

struct answer {
    int type; /* 0: none yet */
    uint64_t id;
    bool dup;
    char room[32];
    char code[24]; /* a fail's */
};

/* Reads answers until every q in [q0, q0 + n) has one (or 5 s pass). */
static void answers(struct bl_reader *rd, uint64_t q0, int n, struct answer *out)
{
    memset(out, 0, sizeof *out * (size_t)n);
    int got = 0;
    int64_t deadline = h_now_ms() + 5000;
    struct cf_wire_msg m;
    while (got < n && bl_reader_next(rd, &m, deadline)) {
        if ((m.type == CF_WIRE_SENT || m.type == CF_WIRE_FAIL || m.type == CF_WIRE_SUBBED) &&
            m.q >= q0 && m.q < q0 + (uint64_t)n && !out[m.q - q0].type) {
            struct answer *a = &out[m.q - q0];
            a->type = m.type;
            a->id = m.type == CF_WIRE_SUBBED ? m.last_id : m.id;
            a->dup = m.dup;
            snprintf(a->room, sizeof a->room, "%.*s", (int)m.room.len, m.room.p);
            if (m.type == CF_WIRE_FAIL)
                snprintf(a->code, sizeof a->code, "%.*s", (int)m.code.len, m.code.p);
            got++;
        }
    }
    assert_int_equal(got, n);
}

/* Sends what `out` holds in one write and reads the answers to it. */
static void ask(struct bl_reader *rd, struct cf_bytes *out, uint64_t q0, int n, struct answer *a)
{
    bl_send_bytes(rd->fd, cf_bytes_data(out), cf_bytes_len(out));
    cf_bytes_consume(out, cf_bytes_len(out));
    answers(rd, q0, n, a);
}

static void put_send_at(struct cf_bytes *out, uint64_t q, const char *room, const char *text,
                        const char *cid, int64_t ts)
{
    struct cf_wire_msg m = {.type = CF_WIRE_SEND,
                            .q = q,
                            .room = {room, (uint32_t)strlen(room)},
                            .from = {"batcher", 7},
                            .text = {text, (uint32_t)strlen(text)},
                            .ts = ts};
    if (cid) {
        m.cid = (struct cf_str){cid, (uint32_t)strlen(cid)};
        m.has |= CF_WIRE_HAS_CID;
    }
    assert_int_equal(cf_wire_encode(out, &m), 0);
}

static void put_send_cid(struct cf_bytes *out, uint64_t q, const char *room, const char *text,
                         const char *cid)
{
    put_send_at(out, q, room, text, cid, cf_wall_ms());
}

static void put_send(struct cf_bytes *out, uint64_t q, const char *room, const char *text)
{
    put_send_cid(out, q, room, text, NULL);
}

static long long redis_int(redisContext *rc, const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(rc, fmt, arg);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer
                  : r->type == REDIS_REPLY_STRING ? atoll(r->str)
                                                  : -1;
    freeReplyObject(r);
    return v;
}

static long long evalsha_calls(redisContext *rc)
{
    redisReply *r = redisCommand(rc, "INFO commandstats");
    assert_non_null(r);
    const char *p = strstr(r->str, "cmdstat_evalsha:calls=");
    long long v = p ? atoll(p + strlen("cmdstat_evalsha:calls=")) : 0;
    freeReplyObject(r);
    return v;
}

/* The presence heartbeat refreshes each room once per PRESENCE_TTL / 3 (10 s
 * here), in slices of 100 ms; a lone room was refreshed in every slice, ten
 * scripts a second. */
static void test_an_idle_room_is_refreshed_once_a_period(void **state)
{
    (void)state;
    struct wsc *a = wsc_connect_user(fx.node.port, "idler");
    assert_non_null(a);
    assert_int_equal(wsc_send_event(a, "send_message", "message", "here"), 0);
    expect_message(a, "here", "idler"); /* joined, its presence kept */
    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_non_null(rc);
    long long before = evalsha_calls(rc);
    h_sleep_ms(3000);
    long long calls = evalsha_calls(rc) - before;
    printf("# script calls of an idle node with one room in 3 s: %lld\n", calls);
    assert_true(calls <= 2);
    redisFree(rc);
    wsc_close(a);
}

/* A line after `mark` says that a send of `room` failed on its key
 * cf:{room}:<what>. */
static void expect_damage_logged(long mark, const char *room, const char *what)
{
    char line[160];
    snprintf(line, sizeof line, "room %s: a send failed on", room);
    assert_true(h_log_contains_from(&fx.node.broker[0], mark, line, 2000));
    snprintf(line, sizeof line, "(key cf:{%s}:%s)", room, what);
    assert_true(h_log_contains_from(&fx.node.broker[0], mark, line, 0));
}

/* A send to `bad`, whose key cf:{bad}:<what> is damaged, then one to
 * `good` in the same write: the first fails (the log names the key), the
 * second is stored as `good_id`. */
static void damaged_first(struct bl_reader *rd, struct cf_bytes *out, uint64_t q,
                          const char *bad, const char *what, const char *good, uint64_t good_id)
{
    long mark = h_log_mark(&fx.node.broker[0]);
    put_send(out, q, bad, "refused");
    put_send(out, q + 1, good, "runs");
    struct answer a[2];
    ask(rd, out, q, 2, a);
    assert_int_equal(a[0].type, CF_WIRE_FAIL);
    assert_string_equal(a[0].code, "internal");
    assert_int_equal(a[1].type, CF_WIRE_SENT);
    assert_int_equal(a[1].id, good_id);
    expect_damage_logged(mark, bad, what);
}

/* A join of `room`, whose meta holds `what` no broker writes (NULL: whose
 * history is no list), is refused as `internal` before it writes anything
 * (the joiner is no member), and the log names the key (Redis' error). */
static void join_refused(struct bl_reader *rd, uint64_t q, const char *room, const char *what,
                         redisContext *rc)
{
    long mark = h_log_mark(&fx.node.broker[0]);
    struct cf_wire_msg sub = {.type = CF_WIRE_SUB, .q = q, .room = {room, (uint32_t)strlen(room)},
                              .user = {"damaged", 7}, .conn = {"c-damaged", 9}, .limit = 50,
                              .budget = 65536};
    bl_send_msg(rd->fd, &sub);
    struct answer a;
    answers(rd, q, 1, &a);
    assert_int_equal(a.type, CF_WIRE_FAIL);
    assert_string_equal(a.code, "internal");
    char line[160];
    if (what)
        snprintf(line, sizeof line, "%s (key cf:{%s}:meta)", what, room);
    else
        snprintf(line, sizeof line, "WRONGTYPE");
    assert_true(h_log_contains_from(&fx.node.broker[0], mark, line, 2000));
    char pz[64];
    snprintf(pz, sizeof pz, "cf:{%s}:pz", room);
    redisReply *r = redisCommand(rc, "ZSCORE %s c-damaged", pz);
    assert_true(r && r->type == REDIS_REPLY_NIL);
    freeReplyObject(r);
}

/* The sends a broker gets in one read reach Redis as one script call, and
 * still come back one answer each, with the ids each room would have given
 * them one by one. A send that fails in the middle keeps the ones before it.
 * When its room's keys are damaged, only that room's later sends are not
 * run; any other failure leaves all later sends unrun, and refuses a batch
 * it starts whole, as one send alone would be. */
static void test_sends_of_one_read_share_one_script_call(void **state)
{
    (void)state;
    enum { ROOMS = 3, PER_ROOM = 10 };
    char rooms[ROOMS + 1][24]; /* the last one is broken in Redis below */
    const uint32_t shard = 0;
    for (int i = 0, n = 0; n <= ROOMS; i++) {
        snprintf(rooms[n], sizeof rooms[n], "batch-%d", i);
        if (cf_shard_of(rooms[n], strlen(rooms[n]), 2) == shard)
            n++;
    }
    struct bl_reader rd; /* one for the whole test: a frame may span two reads */
    int fd = open_link(shard, &rd);
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 20);
    for (int r = 0; r <= ROOMS; r++) {
        struct cf_wire_msg j = {.type = CF_WIRE_JOIN,
                                .room = {rooms[r], (uint32_t)strlen(rooms[r])}};
        assert_int_equal(cf_wire_encode(&out, &j), 0);
        put_send(&out, 1 + (uint64_t)r, rooms[r], "warm-up"); /* id 1 in each */
    }
    struct answer a[ROOMS * PER_ROOM];
    ask(&rd, &out, 1, ROOMS + 1, a);
    for (int r = 0; r <= ROOMS; r++) {
        assert_int_equal(a[r].type, CF_WIRE_SENT);
        assert_int_equal(a[r].id, 1);
    }

    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_non_null(rc);
    long long before = evalsha_calls(rc);
    for (int i = 0; i < ROOMS * PER_ROOM; i++)
        put_send(&out, 100 + (uint64_t)i, rooms[i % ROOMS], "batched");
    ask(&rd, &out, 100, ROOMS * PER_ROOM, a);
    for (int i = 0; i < ROOMS * PER_ROOM; i++) {
        assert_int_equal(a[i].type, CF_WIRE_SENT);
        assert_string_equal(a[i].room, rooms[i % ROOMS]);
        assert_int_equal(a[i].id, 2 + (uint64_t)(i / ROOMS)); /* in the order sent */
    }
    long long calls = evalsha_calls(rc) - before;
    printf("# %d sends in one write: %lld script calls\n", ROOMS * PER_ROOM, calls);
    /* a read per few frames at worst; other scripts (presence refreshes,
     * the other broker) may run meanwhile */
    assert_true(calls >= 1 && calls < ROOMS * PER_ROOM / 3);

    /* A room whose key holds the wrong type: its send fails in Redis, and
     * so do its later sends in the batch (unrun: they would overtake the
     * failed one's resend); the other rooms' sends around them run. */
    char key[64];
    snprintf(key, sizeof key, "cf:{%s}:meta", rooms[ROOMS]);
    freeReplyObject(redisCommand(rc, "DEL %s", key));
    freeReplyObject(redisCommand(rc, "SET %s broken", key));
    snprintf(key, sizeof key, "cf:{%s}:meta", rooms[1]);
    long long seq1 = redis_int(rc, "HGET %s seq", key);
    long mark = h_log_mark(&fx.node.broker[shard]);
    put_send(&out, 200, rooms[0], "kept");
    put_send(&out, 201, rooms[ROOMS], "refused");
    put_send(&out, 202, rooms[1], "runs");
    put_send(&out, 203, rooms[ROOMS], "not run");
    put_send(&out, 204, rooms[1], "runs too");
    ask(&rd, &out, 200, 5, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    assert_int_equal(a[0].id, 2 + PER_ROOM);
    assert_int_equal(a[1].type, CF_WIRE_FAIL);
    assert_string_equal(a[1].code, "internal"); /* a retry would fail alike */
    assert_int_equal(a[2].type, CF_WIRE_SENT);
    assert_int_equal(a[2].id, (uint64_t)seq1 + 1);
    assert_int_equal(a[3].type, CF_WIRE_FAIL);
    assert_string_equal(a[3].code, "internal");
    assert_int_equal(a[4].type, CF_WIRE_SENT);
    assert_int_equal(a[4].id, (uint64_t)seq1 + 2);
    assert_int_equal(redis_int(rc, "HGET %s seq", key), seq1 + 2);
    /* the log names the room and the damaged key */
    expect_damage_logged(mark, rooms[ROOMS], "meta");

    /* first in its batch, it still fails alone */
    damaged_first(&rd, &out, 300, rooms[ROOMS], "meta", rooms[1], (uint64_t)seq1 + 3);

    /* The other damage a send meets (a history key of another type, a seq
     * that is no integer) fails that room alone too, and the log names the
     * key that has it. */
    char hist2[64], meta2[64];
    snprintf(hist2, sizeof hist2, "cf:{%s}:hist", rooms[2]);
    snprintf(meta2, sizeof meta2, "cf:{%s}:meta", rooms[2]);
    long long seq2 = redis_int(rc, "HGET %s seq", meta2);
    freeReplyObject(redisCommand(rc, "DEL %s", hist2));
    freeReplyObject(redisCommand(rc, "SET %s broken", hist2));
    damaged_first(&rd, &out, 320, rooms[2], "hist", rooms[1], (uint64_t)seq1 + 4);
    /* its id given back: the room's next message follows the last one */
    assert_int_equal(redis_int(rc, "HGET %s seq", meta2), seq2);
    join_refused(&rd, 325, rooms[2], NULL, rc);
    freeReplyObject(redisCommand(rc, "DEL %s", hist2));
    freeReplyObject(redisCommand(rc, "HSET %s seq lots", meta2));
    mark = h_log_mark(&fx.node.broker[shard]);
    damaged_first(&rd, &out, 330, rooms[2], "meta", rooms[1], (uint64_t)seq1 + 5);
    assert_true(h_log_contains_from(&fx.node.broker[shard], mark, "hash value is not an integer", 0));
    join_refused(&rd, 335, rooms[2], "seq is not an integer", rc);
    freeReplyObject(redisCommand(rc, "HSET %s seq 1.5", meta2)); /* a Lua number, no id */
    join_refused(&rd, 336, rooms[2], "seq is not an integer", rc);
    freeReplyObject(redisCommand(rc, "HSET %s seq %lld", meta2, seq2));

    /* An epoch not as the brokers make it (16 characters; brokers drop a
     * message with any other): a long one used to raise a Lua error in the
     * script's msgpack helper that stopped every send after it. */
    redisReply *ep = redisCommand(rc, "HGET %s epoch", meta2);
    assert_true(ep && ep->type == REDIS_REPLY_STRING && ep->len == 16);
    static char huge[70000];
    memset(huge, 'e', sizeof huge);
    freeReplyObject(redisCommand(rc, "HSET %s epoch %b", meta2, huge, sizeof huge));
    mark = h_log_mark(&fx.node.broker[shard]);
    damaged_first(&rd, &out, 340, rooms[2], "meta", rooms[1], (uint64_t)seq1 + 6);
    assert_true(h_log_contains_from(&fx.node.broker[shard], mark, "epoch is not 16 characters", 0));
    join_refused(&rd, 345, rooms[2], "epoch is not 16 characters", rc);
    freeReplyObject(redisCommand(rc, "HSET %s epoch short", meta2));
    damaged_first(&rd, &out, 350, rooms[2], "meta", rooms[1], (uint64_t)seq1 + 7);
    join_refused(&rd, 355, rooms[2], "epoch is not 16 characters", rc);
    freeReplyObject(redisCommand(rc, "HSET %s epoch %b", meta2, ep->str, ep->len));
    freeReplyObject(ep);
    assert_int_equal(redis_int(rc, "HGET %s seq", meta2), seq2); /* no id taken */

    /* A repeat (same client id) answers with the original, also when a
     * send after it in its batch is refused: only the refused one fails. */
    put_send_cid(&out, 600, rooms[0], "once", "r-1");
    ask(&rd, &out, 600, 1, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    uint64_t once = a[0].id;
    mark = h_log_mark(&fx.node.broker[shard]);
    put_send_cid(&out, 601, rooms[0], "once", "r-1");
    put_send(&out, 602, rooms[ROOMS], "refused");
    ask(&rd, &out, 601, 2, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    assert_true(a[0].dup);
    assert_int_equal(a[0].id, once);
    assert_int_equal(a[1].type, CF_WIRE_FAIL);
    assert_true(h_log_contains_from(&fx.node.broker[shard], mark, "a send failed on", 2000));
    put_send_cid(&out, 603, rooms[0], "once", "r-1");
    ask(&rd, &out, 603, 1, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    assert_true(a[0].dup);
    assert_int_equal(a[0].id, once);

    /* A send from a clock before 1970 (a time the wire allows) is one
     * message too: its repeat used to be stored again. */
    put_send_at(&out, 620, rooms[0], "early", "r-neg", -86400000);
    ask(&rd, &out, 620, 1, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    assert_false(a[0].dup);
    uint64_t early = a[0].id;
    put_send_at(&out, 621, rooms[0], "early", "r-neg", -86400000);
    ask(&rd, &out, 621, 1, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    assert_true(a[0].dup);
    assert_int_equal(a[0].id, early);

    /* A repeat whose stored time has no RFC 3339 form (a damaged key) still
     * gets its one answer: the reply could not be framed, and none came. */
    char dd[128];
    snprintf(dd, sizeof dd, "cf:{%s}:dd:7:batcher:r-far", rooms[0]);
    freeReplyObject(redisCommand(rc, "SET %s 5:999999999999999999 EX 60", dd));
    put_send_cid(&out, 630, rooms[0], "far", "r-far");
    ask(&rd, &out, 630, 1, a);
    assert_int_equal(a[0].type, CF_WIRE_FAIL);
    assert_string_equal(a[0].code, "internal");
    freeReplyObject(redisCommand(rc, "DEL %s", dd));

    /* A failure that is no room's own (Redis out of memory) would fail the
     * sends after it alike: they are not run. A repeat needs no write, so
     * it is answered first; a batch whose first send fails gets Redis' own
     * error whole, as a lone send would. */
    freeReplyObject(redisCommand(rc, "CONFIG SET maxmemory 1"));
    mark = h_log_mark(&fx.node.broker[shard]);
    put_send_cid(&out, 700, rooms[0], "once", "r-1");
    put_send(&out, 701, rooms[1], "out of memory");
    put_send(&out, 702, rooms[2], "not run");
    ask(&rd, &out, 700, 3, a);
    long mark_whole = h_log_mark(&fx.node.broker[shard]);
    put_send(&out, 710, rooms[1], "out of memory");
    put_send(&out, 711, rooms[2], "not run");
    struct answer whole[2];
    ask(&rd, &out, 710, 2, whole);
    freeReplyObject(redisCommand(rc, "CONFIG SET maxmemory 0"));
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    assert_true(a[0].dup);
    /* nothing was stored: "unavailable" (retry later), not "internal" */
    assert_int_equal(a[1].type, CF_WIRE_FAIL);
    assert_string_equal(a[1].code, "unavailable");
    assert_int_equal(a[2].type, CF_WIRE_FAIL);
    assert_string_equal(a[2].code, "unavailable");
    assert_true(h_log_contains_from(&fx.node.broker[shard], mark, "a script call failed on", 2000));
    assert_int_equal(whole[0].type, CF_WIRE_FAIL);
    assert_string_equal(whole[0].code, "unavailable");
    assert_int_equal(whole[1].type, CF_WIRE_FAIL);
    assert_string_equal(whole[1].code, "unavailable");
    assert_true(h_log_contains_from(&fx.node.broker[shard], mark_whole, "a script failed on", 2000));
    assert_int_equal(redis_int(rc, "HGET %s seq", key), seq1 + 7);

    /* Held sends go before whatever is asked after them: a join right
     * behind a send sees it in its snapshot. */
    put_send(&out, 500, rooms[0], "before the join");
    struct cf_wire_msg sub = {.type = CF_WIRE_SUB, .q = 501,
                              .room = {rooms[0], (uint32_t)strlen(rooms[0])},
                              .user = {"joiner", 6}, .conn = {"c-501", 5}, .limit = 10,
                              .budget = 65536};
    assert_int_equal(cf_wire_encode(&out, &sub), 0);
    ask(&rd, &out, 500, 2, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    assert_int_equal(a[1].type, CF_WIRE_SUBBED);
    assert_int_equal(a[1].id, a[0].id);

    put_send(&out, 400, rooms[1], "after");
    ask(&rd, &out, 400, 1, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    assert_int_equal(a[0].id, (uint64_t)seq1 + 8);
    snprintf(key, sizeof key, "cf:{%s}:meta", rooms[ROOMS]);
    freeReplyObject(redisCommand(rc, "DEL %s", key));
    assert_true(h_alive(&fx.node.broker[shard]));
    cf_bytes_free(&out);
    bl_reader_free(&rd);
    redisFree(rc);
    close(fd);
}

/* ---- join snapshots within their budget -------------------------------------- */

static long long net_output_bytes(redisContext *rc)
{
    redisReply *r = redisCommand(rc, "INFO stats");
    assert_non_null(r);
    const char *p = strstr(r->str, "total_net_output_bytes:");
    long long v = p ? atoll(p + strlen("total_net_output_bytes:")) : -1;
    freeReplyObject(r);
    return v;
}

struct snap {
    char epoch[64];
    uint64_t last_id, first_id;
    uint32_t n;
    bool recovered;
};

/* Asks for a join snapshot (with since/epoch when epoch is given) and waits
 * for it. */
static void join_snapshot(struct bl_reader *rd, uint64_t q, const char *room, const char *epoch,
                          uint64_t since, uint32_t budget, struct snap *out)
{
    struct cf_wire_msg sub = {.type = CF_WIRE_SUB, .q = q, .room = {room, (uint32_t)strlen(room)},
                              .user = {"joiner", 6}, .conn = {"c-join", 6}, .limit = 50,
                              .budget = budget};
    if (epoch) {
        sub.has |= CF_WIRE_HAS_SINCE | CF_WIRE_HAS_EPOCH;
        sub.since = since;
        sub.epoch = (struct cf_str){epoch, (uint32_t)strlen(epoch)};
    }
    bl_send_msg(rd->fd, &sub);
    struct cf_wire_msg m;
    int64_t deadline = h_now_ms() + 5000;
    while (bl_reader_next(rd, &m, deadline)) {
        if (m.type != CF_WIRE_SUBBED || m.q != q)
            continue;
        snprintf(out->epoch, sizeof out->epoch, "%.*s", (int)m.epoch.len, m.epoch.p);
        out->last_id = m.last_id;
        out->n = m.nmessages;
        out->recovered = m.recovered;
        out->first_id = 0;
        if (m.nmessages) {
            struct cf_wire_msg first;
            const char *why;
            struct cf_wire_decoder *d = cf_wire_decoder_new();
            assert_int_equal(cf_wire_decode(d, m.messages[0].p, m.messages[0].len, &first, &why), 0);
            out->first_id = first.id;
            cf_wire_decoder_free(d);
        }
        return;
    }
    fail_msg("no snapshot for request %llu", (unsigned long long)q);
}

/* Asks for the page before `before` and waits for it (its messages point
 * into the reader's buffer, good until the next read). */
static struct cf_wire_msg history_page(struct bl_reader *rd, uint64_t q, const char *room,
                                       uint64_t before, uint32_t limit, uint32_t budget)
{
    struct cf_wire_msg h = {.type = CF_WIRE_HIST,
                            .q = q,
                            .room = {room, (uint32_t)strlen(room)},
                            .limit = limit,
                            .budget = budget,
                            .before = before,
                            .has = CF_WIRE_HAS_BEFORE};
    bl_send_msg(rd->fd, &h);
    struct cf_wire_msg m;
    int64_t deadline = h_now_ms() + 5000;
    while (bl_reader_next(rd, &m, deadline))
        if (m.type == CF_WIRE_HISTR && m.q == q)
            return m;
    fail_msg("no history page for request %llu", (unsigned long long)q);
    return m;
}

/* A join reads from Redis only the newest messages that fit its budget (the
 * newest even alone over it). A
 * recovery (since) used to read every message after `since`, up to
 * HISTORY_SIZE of up to 128 KiB, which Redis built and the broker buffered
 * before keeping what fits: any client could make a 64 KiB snapshot cost
 * megabytes with its own `joined`'s epoch and an old id. A history page
 * read all the `limit` (up to 100) it asked for the same way. */
static void test_a_join_reads_only_what_its_budget_holds(void **state)
{
    (void)state;
    enum { N = 100, TEXT = 30000, BUDGET = 65536 };
    const char *room = "budgeted";
    struct bl_reader rd;
    int fd = open_link(cf_shard_of(room, strlen(room), 2), &rd);
    char *text = malloc(TEXT + 1);
    memset(text, 'x', TEXT);
    text[TEXT] = '\0';
    struct cf_bytes out;
    cf_bytes_init(&out, 8 << 20);
    struct answer a[10];
    uint64_t first = 0, last = 0;
    for (int i = 0; i < N; i += 10) { /* in tens: MAX_LINK_QUEUE_BYTES is 1 MiB here */
        for (int k = 0; k < 10; k++)
            put_send(&out, 1000 + (uint64_t)(i + k), room, text);
        ask(&rd, &out, 1000 + (uint64_t)i, 10, a);
        for (int k = 0; k < 10; k++)
            assert_int_equal(a[k].type, CF_WIRE_SENT);
        if (!first)
            first = a[0].id;
        last = a[9].id;
    }
    assert_int_equal(last - first, N - 1);

    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_non_null(rc);
    struct snap s;
    long long before = net_output_bytes(rc);
    join_snapshot(&rd, 2000, room, NULL, 0, BUDGET, &s); /* the latest 50 asked */
    long long plain = net_output_bytes(rc) - before;
    assert_int_equal(s.last_id, last);
    assert_int_equal(s.n, 2); /* 2 x 30 KB fit in 64 KiB */
    assert_int_equal(s.first_id, last - 1);

    before = net_output_bytes(rc);
    join_snapshot(&rd, 2001, room, s.epoch, first, BUDGET, &s); /* 99 missed: cut */
    long long recovery = net_output_bytes(rc) - before;
    assert_false(s.recovered);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.first_id, last - 1);
    printf("Redis wrote %lld bytes for the plain join, %lld for the recovery\n", plain,
           recovery);
    if (plain > 4 * BUDGET || recovery > 4 * BUDGET)
        fail_msg("Redis wrote %lld and %lld bytes for snapshots of %d", plain, recovery, BUDGET);

    join_snapshot(&rd, 2002, room, s.epoch, last - 1, BUDGET, &s); /* one missed: fits */
    assert_true(s.recovered);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.first_id, last);

    /* a history page of 100 asked keeps to the budget too, before `last`:
     * the two before it fit */
    before = net_output_bytes(rc);
    struct cf_wire_msg m = history_page(&rd, 2003, room, last, 100, BUDGET);
    long long page = net_output_bytes(rc) - before;
    printf("Redis wrote %lld bytes for a history page\n", page);
    assert_int_equal(m.nmessages, 2);
    assert_true(m.has_more);
    if (page > 4 * BUDGET)
        fail_msg("Redis wrote %lld bytes for a page of %d", page, BUDGET);
    struct cf_wire_msg oldest;
    const char *why;
    struct cf_wire_decoder *d = cf_wire_decoder_new();
    assert_int_equal(cf_wire_decode(d, m.messages[0].p, m.messages[0].len, &oldest, &why), 0);
    assert_int_equal(oldest.id, last - 2);

    /* a budget under one message still gets the newest: an empty page with
     * more to come made a client's gap fetch report ids the history holds
     * lost, and a snapshot or a recovery of one such message came empty */
    m = history_page(&rd, 2004, room, last + 1, 10, TEXT / 2);
    assert_int_equal(m.nmessages, 1);
    assert_true(m.has_more);
    assert_int_equal(cf_wire_decode(d, m.messages[0].p, m.messages[0].len, &oldest, &why), 0);
    assert_int_equal(oldest.id, last);
    join_snapshot(&rd, 2005, room, NULL, 0, TEXT / 2, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.first_id, last);
    join_snapshot(&rd, 2006, room, s.epoch, last - 1, TEXT / 2, &s);
    assert_true(s.recovered);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.first_id, last);
    cf_wire_decoder_free(d);

    redisFree(rc);
    cf_bytes_free(&out);
    bl_reader_free(&rd);
    free(text);
    close(fd);
}

/* A history entry longer than any room event (damage from outside) comes as
 * an empty message, which the gateway skips: kept as the newest, it made the
 * join's and the page's reply its size (over the broker's reply bound, a
 * reset of the connection at each join). */
static void test_an_entry_larger_than_any_event_comes_empty(void **state)
{
    (void)state;
    const char *room = "overgrown";
    struct bl_reader rd;
    int fd = open_link(cf_shard_of(room, strlen(room), 2), &rd);
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 20);
    struct answer a[3];
    for (int k = 0; k < 3; k++)
        put_send(&out, 5000 + (uint64_t)k, room, "short");
    ask(&rd, &out, 5000, 3, a);
    uint64_t last = a[2].id;
    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_non_null(rc);
    enum { BIG = CF_WIRE_MAX_EVENT + 1 };
    char *blob = malloc(BIG);
    memset(blob, 'x', BIG);
    redisReply *r = redisCommand(rc, "LSET cf:{%s}:hist -1 %b", room, blob, (size_t)BIG);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    free(blob);

    long long before = net_output_bytes(rc);
    struct cf_wire_msg m = history_page(&rd, 5100, room, last + 1, 10, 65536);
    assert_int_equal(m.nmessages, 3);
    assert_int_equal(m.messages[2].len, 0);
    assert_true(m.messages[1].len > 0);
    struct snap s;
    join_snapshot(&rd, 5101, room, NULL, 0, 65536, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.last_id, last);
    long long wrote = net_output_bytes(rc) - before;
    printf("Redis wrote %lld bytes for a page and a join\n", wrote);
    if (wrote > 16384)
        fail_msg("Redis wrote %lld bytes for a page and a join of 3 short messages", wrote);
    redisFree(rc);
    cf_bytes_free(&out);
    bl_reader_free(&rd);
    close(fd);
}

/* A page is read from the newest back in LRANGEs of 64, then 128: a page of
 * 100 takes two, in order and with nothing missed or twice; a page that
 * reaches the oldest kept says there is no more. */
static void test_a_history_page_is_read_in_steps(void **state)
{
    (void)state;
    enum { N = 150 };
    const char *room = "paged";
    struct bl_reader rd;
    int fd = open_link(cf_shard_of(room, strlen(room), 2), &rd);
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 20);
    struct answer a[10];
    uint64_t last = 0;
    for (int i = 0; i < N; i += 10) {
        for (int k = 0; k < 10; k++)
            put_send(&out, 3000 + (uint64_t)(i + k), room, "short");
        ask(&rd, &out, 3000 + (uint64_t)i, 10, a);
        last = a[9].id;
    }
    /* HISTORY_SIZE is 100 here: the 100 newest are kept */
    const struct {
        uint64_t before;
        uint32_t limit, n;
        bool more;
    } pages[] = {{last + 1, 100, 100, false}, {last + 1, 70, 70, true}, {last - 9, 100, 90, false}};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        struct cf_wire_msg m =
            history_page(&rd, 4000 + i, room, pages[i].before, pages[i].limit, 65536);
        assert_int_equal(m.nmessages, pages[i].n);
        assert_int_equal(m.has_more, pages[i].more);
        struct cf_wire_decoder *d = cf_wire_decoder_new();
        for (uint32_t k = 0; k < m.nmessages; k++) {
            struct cf_wire_msg e;
            const char *why;
            assert_int_equal(cf_wire_decode(d, m.messages[k].p, m.messages[k].len, &e, &why), 0);
            assert_int_equal(e.id, pages[i].before - pages[i].n + k);
        }
        cf_wire_decoder_free(d);
    }
    cf_bytes_free(&out);
    bl_reader_free(&rd);
    close(fd);
}

/* A repeat (same client id) of a send whose room's history was lost since
 * (meta evicted, a partial flush) is sent anew, in the room's new epoch:
 * answered with the old id, it named a message the room no longer has, in
 * an epoch that is gone. */
static void test_a_repeat_after_the_history_was_lost_is_sent_anew(void **state)
{
    (void)state;
    const uint32_t shard = 0;
    char room[24];
    for (int i = 0;; i++) {
        snprintf(room, sizeof room, "dedup-%d", i);
        if (cf_shard_of(room, strlen(room), 2) == shard)
            break;
    }
    struct bl_reader rd;
    int fd = open_link(shard, &rd);
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 20);
    struct cf_wire_msg j = {.type = CF_WIRE_JOIN, .room = {room, (uint32_t)strlen(room)}};
    assert_int_equal(cf_wire_encode(&out, &j), 0);
    for (int i = 0; i < 5; i++)
        put_send(&out, 1 + (uint64_t)i, room, "before");
    put_send_cid(&out, 6, room, "mine", "r-lost");
    struct answer a[8];
    ask(&rd, &out, 1, 6, a);
    assert_int_equal(a[5].type, CF_WIRE_SENT);
    assert_int_equal(a[5].id, 6);

    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_non_null(rc);
    freeReplyObject(redisCommand(rc, "DEL cf:{%s}:meta cf:{%s}:hist", room, room));
    /* the new epoch has passed id 6 by the time the repeat comes */
    for (int i = 0; i < 7; i++)
        put_send(&out, 20 + (uint64_t)i, room, "new epoch");
    ask(&rd, &out, 20, 7, a);
    assert_int_equal(a[6].id, 7);
    put_send_cid(&out, 30, room, "mine", "r-lost");
    ask(&rd, &out, 30, 1, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    if (a[0].dup)
        fail_msg("a repeat after the history was lost was answered with the old id %llu",
                 (unsigned long long)a[0].id);
    assert_int_equal(a[0].id, 8);
    /* and it is the one its next repeat names */
    put_send_cid(&out, 31, room, "mine", "r-lost");
    ask(&rd, &out, 31, 1, a);
    assert_int_equal(a[0].type, CF_WIRE_SENT);
    assert_true(a[0].dup);
    assert_int_equal(a[0].id, 8);

    /* A record an older broker wrote ("id:ts", no epoch) still answers a
     * repeat while the count has reached its id, and not past it. */
    char dd[128];
    snprintf(dd, sizeof dd, "cf:{%s}:dd:7:batcher:r-old", room);
    freeReplyObject(redisCommand(rc, "SET %s 3:1700000000000 EX 60", dd));
    put_send_cid(&out, 40, room, "old", "r-old");
    ask(&rd, &out, 40, 1, a);
    assert_true(a[0].type == CF_WIRE_SENT && a[0].dup && a[0].id == 3);
    freeReplyObject(redisCommand(rc, "SET %s 99:1700000000000 EX 60", dd));
    put_send_cid(&out, 41, room, "old", "r-old");
    ask(&rd, &out, 41, 1, a);
    assert_true(a[0].type == CF_WIRE_SENT && !a[0].dup && a[0].id == 9);
    redisFree(rc);
    cf_bytes_free(&out);
    bl_reader_free(&rd);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_idle_room_is_refreshed_once_a_period), /* first: one room */
        cmocka_unit_test_teardown(test_sends_of_one_read_share_one_script_call, memory_unlimited),
        cmocka_unit_test(test_a_join_reads_only_what_its_budget_holds),
        cmocka_unit_test(test_a_history_page_is_read_in_steps),
        cmocka_unit_test(test_an_entry_larger_than_any_event_comes_empty),
        cmocka_unit_test(test_a_repeat_after_the_history_was_lost_is_sent_anew),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
