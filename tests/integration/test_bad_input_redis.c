/* Bad input that comes over Redis: foreign payloads published into a room's
 * channel, a reply over the subscriber's bound, messages with forged ids.
 * Each is dropped and counted or resets what it reached; the processes
 * survive, and two witnesses connected all along keep chatting. The other
 * paths are test_bad_input.c's (HTTP, a broker's socket), and
 * test_bad_input_ws.c's, test_bad_input_json.c's and
 * test_bad_input_config.c's. */
#include "bad_input.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>
#include <sys/un.h>

#include "asan.h"
#include "bytes.h"
#include "clock.h"
#include "prom.h"
#include "shard.h"
#include "wire.h"

static struct h_fixture fx;
static struct witness wit;
static int bmetrics; /* BROKER_METRICS_PORT */

static int setup(void **state)
{
    (void)state;
    static char bm_env[64];
    bmetrics = h_free_ports(2);
    snprintf(bm_env, sizeof bm_env, "BROKER_METRICS_PORT=%d", bmetrics);
    static const char *env[] = {bm_env, "PING_INTERVAL=120", NULL};
    return witnessed_up(&fx, &wit, env);
}

static int teardown(void **state)
{
    (void)state;
    return witnessed_down(&fx, &wit);
}

static double foreign_dropped(int shard)
{
    struct h_resp r;
    assert_int_equal(h_http(bmetrics + shard, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    int n = 0;
    double v = prom_sum(r.body, "confab_broker_dropped_foreign_total", NULL, &n);
    assert_int_equal(n, 1);
    h_resp_free(&r);
    return v;
}

static void publish(redisContext *rc, const char *chan, const void *p, size_t n)
{
    redisReply *r = redisCommand(rc, "PUBLISH %s %b", chan, p, n);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
}

/* Payloads in a room's channel that are not ours are dropped, counted in
 * confab_broker_dropped_foreign_total (of the room's shard, exactly once
 * each) and reach no member; a good one afterwards does. */
static void test_foreign_redis_payloads_are_dropped_and_counted(void **state)
{
    (void)state;
    const char *room = "garbage";
    int shard = (int)cf_shard_of(room, strlen(room), 2);
    struct wsc *l = member(fx.node.port, "legacy", room);
    ready(l, "here");
    struct v1c *v = v1_member(fx.node.port, "v1", V1_MSGPACK);
    join_quietly(v, room);
    drain(l);
    double before = foreign_dropped(shard), other_before = foreign_dropped(1 - shard);

    /* Text, as an operator with redis-cli would. */
    static const char *const cli[] = {"PUBLISH", "room:garbage", "hello there", NULL};
    assert_int_equal(h_redis_cli(&fx.redis, cli), 0);
    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_true(rc && !rc->err);
    static const struct {
        const char *b;
        size_t n;
    } junk[] = {
        MP("{\"type\":\"new_message\",\"payload\":{\"message\":\"forged\"}}"),
        MP(""),
        MP("\x86\xa1v\x01\xa1t\xa3msg\xa4room\xa7garbage\xa4"
           "from\xa1x\xa4text"), /* truncated */
        MP("\x86\xa1v\x01\xa1t\xa3msg\xa4room\x05\xa4"
           "from\xa1x\xa4text\xa1y\xa2ts\x01"),
        MP("\x86\xa1v\x09\xa1t\xa3msg\xa4room\xa7garbage\xa4"
           "from\xa1x\xa4text\xa1y\xa2ts\x01"),
        MP("\x86\xa1v\x01\xa1t\xa3msg\xa4room\xa6sports\xa4"
           "from\xa1x\xa4text\xa1y\xa2ts\x01"),
        MP("\xdf\xff\xff\xff\xff"),
    };
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
        publish(rc, "room:garbage", junk[i].b, junk[i].n);
    /* A message of ours, but with a text over CF_WIRE_MAX_TEXT (str32). */
    size_t tn = CF_WIRE_MAX_TEXT + 1;
    char *raw = malloc(tn + 64);
    static const char head[] = "\x86\xa1v\x01\xa1t\xa3msg\xa4room\xa7garbage\xa4"
                               "from\xa1x\xa2ts\x01\xa4text\xdb";
    size_t h = sizeof head - 1;
    memcpy(raw, head, h);
    for (int i = 3; i >= 0; i--)
        raw[h++] = (char)(tn >> (8 * i));
    memset(raw + h, 't', tn);
    publish(rc, "room:garbage", raw, h + tn);
    free(raw);
    /* A valid msg under the frame limit, padded past CF_WIRE_MAX_EVENT with a
     * key nobody reads holding ~4 M fixints: ~100 MB of decoder memory, and
     * then forwarded to every gateway, which decoded it again. */
    static const char phead[] = "\x87\xa1v\x01\xa1t\xa3msg\xa4room\xa7garbage\xa4"
                                "from\xa1x\xa4text\xa6padded\xa2ts\x01\xa3pad\xdd";
    size_t ph = sizeof phead - 1, pn = CF_WIRE_MAX_FRAME - ph - 4;
    raw = calloc(1, ph + 4 + pn);
    assert_non_null(raw);
    memcpy(raw, phead, ph);
    for (int i = 3; i >= 0; i--)
        raw[ph++] = (char)(pn >> (8 * i));
    publish(rc, "room:garbage", raw, ph + pn);
    free(raw);
    const double want = 1 + sizeof junk / sizeof *junk + 2;

    double got = 0;
    for (int64_t deadline = h_now_ms() + 5000; h_now_ms() < deadline; h_sleep_ms(20))
        if ((got = foreign_dropped(shard) - before) >= want)
            break;
    if (got != want)
        fail_msg("dropped_foreign_total grew by %.0f, expected %.0f", got, want);
    assert_true(foreign_dropped(1 - shard) == other_before);
    assert_true(wsc_quiet(l, 300));
    V1_NONE(v, 0, "new_message", NULL);
    assert_int_equal(v1_bad_frames(v), 0);

    struct cf_wire_msg good = {.type = CF_WIRE_MSG,
                               .room = {room, (uint32_t)strlen(room)},
                               .from = {"bot", 3},
                               .text = {"real", 4},
                               .ts = cf_wall_ms()};
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 16);
    assert_int_equal(cf_wire_encode(&out, &good), 0);
    publish(rc, "room:garbage", cf_bytes_data(&out) + CF_WIRE_HDR,
            cf_bytes_len(&out) - CF_WIRE_HDR);
    cf_bytes_free(&out);
    redisFree(rc);
    expect_message(l, "real", "bot");
    json_t *ev = v1_wait(v, V1_WAIT, "new_message", "room", room, "message", "real", NULL);
    V1_MUST(v, ev, "new_message");
    json_decref(ev);
    assert_true(h_log_contains(&fx.node.broker[shard], "dropped a message on Redis channel", 0));
    wsc_close(l);
    v1_close(v);
    witness_check(&wit, &fx.node);
}

/* Starts the peak over at the resident set (proc(5): clear_refs 5). */
static void hwm_reset(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

/* PUBLISH of n bytes of 'z' to chan, written in pieces over a socket of its
 * own (hiredis would copy the payload three times); waits for the answer. */
static void publish_big(const char *chan, size_t n)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(fx.redis.sock) < sizeof sa.sun_path);
    memcpy(sa.sun_path, fx.redis.sock, strlen(fx.redis.sock) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    /* a Redis that stops reading or answering fails the test, not hangs it */
    struct timeval tv = {.tv_sec = 30};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    char head[128];
    int hl = snprintf(head, sizeof head, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n",
                      strlen(chan), chan, n);
    assert_int_equal(write(fd, head, (size_t)hl), hl);
    static char piece[1 << 20];
    memset(piece, 'z', sizeof piece);
    for (size_t left = n; left > 0;) {
        size_t k = left < sizeof piece ? left : sizeof piece;
        ssize_t w = write(fd, piece, k);
        assert_true(w > 0);
        left -= (size_t)w;
    }
    assert_int_equal(write(fd, "\r\n", 2), 2);
    char answer[32];
    assert_true(read(fd, answer, sizeof answer) > 0);
    assert_int_equal(answer[0], ':'); /* the number of subscribers */
    close(fd);
}

/* A reply larger than the broker ever asks for (here a 256 MiB PUBLISH to a
 * room's channel, past Redis' own 32 MiB bound for a subscriber, which the
 * test lifts) resets that connection with a line that says why, once the
 * broker holds 8 MiB of it (the subscriber's bound; the publisher's is
 * 16 MiB), and the room works again once it is back: it was read into
 * memory whole, and a bulk string may be 512 MB. */
static void test_a_reply_over_the_bound_resets_the_connection(void **state)
{
    (void)state;
    const char *room = "huge";
    int shard = (int)cf_shard_of(room, strlen(room), 2);
    struct wsc *l = member(fx.node.port, "legacy", room);
    ready(l, "here");
    drain(l);
    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_true(rc && !rc->err);
    redisReply *r = redisCommand(rc, "CONFIG GET client-output-buffer-limit");
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    char was[256];
    snprintf(was, sizeof was, "%s", r->element[1]->str);
    freeReplyObject(r);
    r = redisCommand(rc, "CONFIG SET client-output-buffer-limit %s", "pubsub 0 0 0");
    assert_true(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    long mark = h_log_mark(&fx.node.broker[shard]);
    pid_t pid = fx.node.broker[shard].pid;
    hwm_reset(pid);
    long hwm_before = h_status_kib(pid, "VmHWM:");
    publish_big("room:huge", (256u << 20) + 1);
    /* (under ASan, with the bound at 64 MiB, it took 10 to 13 s: its
     * reallocs of the reader's growing buffer copy and fault in fresh pages
     * every time) */
    bool reset =
        h_log_contains_from(&fx.node.broker[shard], mark,
                            "a reply larger than any the broker asks for (over 8192 KiB", 60000);
    long grew = h_status_kib(pid, "VmHWM:") - hwm_before;
    /* (set back only now, and whatever came: Redis checks the bound as it
     * writes) */
    r = redisCommand(rc, "CONFIG SET client-output-buffer-limit %s", was);
    assert_true(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(rc);
    assert_true(reset);
    /* read up to the bound, not the whole bulk string */
    printf("the broker's peak resident set grew by %ld KiB\n", grew);
#ifndef CF_ASAN /* (its quarantine keeps what each realloc of the buffer freed) */
    if (grew > 32 * 1024)
        fail_msg("the broker's peak resident set grew by %ld KiB for a 256 MiB reply", grew);
#endif
    assert_int_equal(h_wait_health(fx.node.port, 200, 15000), 0);
    /* the room's subscription is back: a message said in it comes back */
    bool heard = false;
    for (int k = 0; k < 20 && !heard; k++) {
        char text[16];
        snprintf(text, sizeof text, "after %d", k);
        say(l, text);
        json_t *ev;
        while (!heard && (ev = wsc_recv_json(l, 500))) {
            const char *m = payload_str(ev, "message");
            heard = m && !strcmp(m, text);
            json_decref(ev);
        }
    }
    assert_true(heard);
    wsc_close(l);
    witness_check(&wit, &fx.node);
}

/* Publishes a msg for room "forged" from user "x" with text "forged", with
 * the id and epoch that `has` says. */
static void publish_forged(redisContext *rc, unsigned has, uint64_t id, const char *epoch)
{
    struct cf_wire_msg m = {.type = CF_WIRE_MSG,
                            .room = {"forged", 6},
                            .from = {"x", 1},
                            .text = {"forged", 6},
                            .ts = cf_wall_ms(),
                            .has = has,
                            .id = id,
                            .epoch = {epoch, (uint32_t)strlen(epoch)}};
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 16);
    assert_int_equal(cf_wire_encode(&out, &m), 0);
    publish(rc, "room:forged", cf_bytes_data(&out) + CF_WIRE_HDR, cf_bytes_len(&out) - CF_WIRE_HDR);
    cf_bytes_free(&out);
}

/* A msg published straight into a room's channel with an id the send script
 * did not write (here INT64_MAX and no epoch) used to reach the gateways:
 * their v1 members re-synced, took the made-up id as their last one, and
 * skipped every real message until they joined again. Brokers now drop it
 * (and any msg with only one of id and epoch, or an epoch not of the
 * script's shape) as foreign, and the next real message arrives. */
static void test_forged_ids_on_redis_do_not_mute_v1_members(void **state)
{
    (void)state;
    const char *room = "forged";
    int shard = (int)cf_shard_of(room, strlen(room), 2);
    struct v1c *v = v1_member(fx.node.port, "v1", V1_JSON);
    char epoch[64];
    join_epoch(v, room, epoch, sizeof epoch);
    assert_int_equal(send_ok(v, room, "before", NULL), 1);
    assert_int_equal(expect_new(v, room, "before", "v1"), 1);
    double before = foreign_dropped(shard);

    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_true(rc && !rc->err);
    publish_forged(rc, CF_WIRE_HAS_ID, (uint64_t)INT64_MAX, "");
    publish_forged(rc, CF_WIRE_HAS_EPOCH, 0, epoch);
    publish_forged(rc, CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH, (uint64_t)INT64_MAX, "not-the-epoch");
    publish_forged(rc, CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH, 0, epoch);
    redisFree(rc);
    const double want = 4;

    /* The next real message, stored with id 2, reaches the member. */
    assert_int_equal(send_ok(v, room, "after", NULL), 2);
    assert_int_equal(expect_new(v, room, "after", "v1"), 2);
    V1_NONE(v, 0, "new_message", "message", "forged", NULL);
    double got = foreign_dropped(shard) - before;
    if (got != want)
        fail_msg("dropped_foreign_total grew by %.0f, expected %.0f", got, want);

    /* Well-formed, with the room's real epoch (anyone who can SUBSCRIBE
     * learns it) and a made-up id: the broker cannot tell it from a real one.
     * The member re-syncs for the gap, and the snapshot does not have it: it
     * used to be released after the snapshot all the same, became the last
     * id, and muted the room until the member joined again. */
    rc = redisConnectUnix(fx.redis.sock);
    assert_true(rc && !rc->err);
    publish_forged(rc, CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH, (uint64_t)INT64_MAX, epoch);
    publish_forged(rc, CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH, 1000, epoch);
    redisFree(rc);
    assert_int_equal(send_ok(v, room, "still heard", NULL), 3);
    assert_int_equal(expect_new(v, room, "still heard", "v1"), 3);
    assert_int_equal(send_ok(v, room, "and again", NULL), 4);
    assert_int_equal(expect_new(v, room, "and again", "v1"), 4);
    V1_NONE(v, 0, "new_message", "message", "forged", NULL);
    v1_close(v);
    witness_check(&wit, &fx.node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreign_redis_payloads_are_dropped_and_counted),
        cmocka_unit_test(test_forged_ids_on_redis_do_not_mute_v1_members),
        cmocka_unit_test(test_a_reply_over_the_bound_resets_the_connection),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
