/* A broker facing bad peers: malformed, truncated, oversized or unexpected
 * frames on its Unix socket close that link only; garbage published into a
 * room channel on Redis is dropped; a well-formed payload published by a
 * backend straight into Redis reaches the room. What a peer can repeat at
 * will is logged once a second at most. */
#include "common.h"
#include "blink.h"
#include "blink_fixture.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bytes.h"
#include "clock.h"
#include "httpc.h"
#include "prom.h"
#include "shard.h"
#include "wire.h"

static void chat_still_works(void)
{
    struct wsc *a = wsc_connect_user(fx.node.port, "alice");
    assert_non_null(a);
    assert_int_equal(wsc_send_event(a, "send_message", "message", "still fine"), 0);
    expect_message(a, "still fine", "alice");
    wsc_close(a);
}

static void test_bad_frames_close_only_that_link(void **state)
{
    (void)state;
    struct {
        const char *what;
        unsigned char bytes[64];
        size_t len;
        bool with_hello;
    } cases[] = {
        {"not framed msgpack", "GET / HTTP/1.1\r\n\r\n", 18, false},
        {"frame over the limit", {0x7f, 0xff, 0xff, 0xff, 0x80}, 5, false},
        {"truncated msgpack", {0, 0, 0, 3, 0x82, 0xa1, 'v'}, 7, false},
        {"map claiming 4 billion entries", {0, 0, 0, 5, 0xdf, 0xff, 0xff, 0xff, 0xff}, 9, false},
        {"not a map", {0, 0, 0, 1, 0x05}, 5, false},
        {"unknown version",
         {0, 0, 0, 9, 0x82, 0xa1, 'v', 0x07, 0xa1, 't', 0xa2, 'h', 'i'},
         13,
         false},
        {"join before hello", {0}, 0, false},
        {"hello twice", {0}, 0, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = link_to(0);
        if (!strcmp(cases[i].what, "join before hello")) {
            struct cf_wire_msg m = {.type = CF_WIRE_JOIN, .room = {"x", 1}};
            bl_send_msg(fd, &m);
        } else if (cases[i].with_hello) {
            bl_hello(fd, 0, 2);
            bl_hello(fd, 0, 2);
        } else {
            bl_send_bytes(fd, cases[i].bytes, cases[i].len);
        }
        if (!bl_closed_by_peer(fd, 5000))
            fail_msg("link not closed after: %s", cases[i].what);
        close(fd);
    }
    /* Before hello, a frame larger than a hello is refused at its header,
     * not held until the hello's 5 s are over. */
    int fd = link_to(0);
    static const unsigned char big[] = {0, 0x20, 0, 0, 0x82}; /* 2 MiB announced */
    bl_send_bytes(fd, big, sizeof big);
    if (!bl_closed_by_peer(fd, 1000))
        fail_msg("a link announcing a 2 MiB first frame is still open after 1 s");
    close(fd);
    assert_true(h_log_contains(&fx.node.broker[0], "first frame too large for a hello", 1000));

    /* A gateway that disagrees on the shard count is refused. */
    fd = link_to(1);
    bl_hello(fd, 1, 3);
    assert_true(bl_closed_by_peer(fd, 5000));
    close(fd);
    assert_true(h_log_contains(&fx.node.broker[1], "shard mismatch", 1000));

    assert_true(h_alive(&fx.node.broker[0]));
    assert_true(h_alive(&fx.node.broker[1]));
    chat_still_works();
}

static void test_a_good_link_speaks_the_protocol(void **state)
{
    (void)state;
    const char *room = "wire-room";
    int shard = (int)cf_shard_of(room, strlen(room), 2);
    int fd = link_to(shard);
    bl_hello(fd, (uint32_t)shard, 2);
    struct cf_wire_msg join = {.type = CF_WIRE_JOIN, .room = {room, (uint32_t)strlen(room)}};
    bl_send_msg(fd, &join);
    struct cf_wire_msg msg = {.type = CF_WIRE_MSG,
                              .room = join.room,
                              .from = {"robot", 5},
                              .text = {"beep", 4},
                              .ts = cf_wall_ms()};
    bl_send_msg(fd, &msg);

    /* Expect welcome, then our msg back through Redis. */
    struct bl_reader rd;
    bl_reader_init(&rd, fd);
    int got = 0;
    int64_t deadline = h_now_ms() + 5000;
    struct cf_wire_msg m;
    while (got < 2 && bl_reader_next(&rd, &m, deadline)) {
        if (m.type == CF_WIRE_STATE) { /* readiness, after welcome and on changes */
            assert_true(got >= 1);
            continue;
        }
        if (got == 0) {
            assert_int_equal(m.type, CF_WIRE_WELCOME);
            assert_int_equal(m.shard, (uint32_t)shard);
        } else {
            assert_int_equal(m.type, CF_WIRE_MSG);
            assert_memory_equal(m.text.p, "beep", 4);
        }
        got++;
    }
    assert_int_equal(got, 2);
    bl_reader_free(&rd);
    close(fd);
}

/* Alice, in room "news" (its subscription up: her message came back), and
 * a connection to the node's Redis in *rc. */
static struct wsc *alice_in_news(redisContext **rc)
{
    struct wsc *a = wsc_connect_user(fx.node.port, "alice");
    assert_non_null(a);
    assert_int_equal(wsc_send_event(a, "change_room", "name", "news"), 0);
    assert_int_equal(wsc_send_event(a, "send_message", "message", "joined"), 0);
    expect_message(a, "joined", "alice");
    *rc = redisConnectUnix(fx.redis.sock);
    assert_non_null(*rc);
    assert_int_equal((*rc)->err, 0);
    return a;
}

static void test_redis_payloads(void **state)
{
    (void)state;
    redisContext *rc;
    struct wsc *a = alice_in_news(&rc);

    /* Garbage, a message for another room, and a malformed sender: dropped. */
    static const char *const junk[] = {"hello", "{\"json\":true}", "\x82\xa1v\x01"};
    for (int i = 0; i < 3; i++) {
        redisReply *r = redisCommand(rc, "PUBLISH room:news %b", junk[i], strlen(junk[i]));
        freeReplyObject(r);
    }
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 20);
    struct cf_wire_msg wrong = {.type = CF_WIRE_MSG,
                                .room = {"sports", 6},
                                .from = {"x", 1},
                                .text = {"misrouted", 9},
                                .ts = 1};
    assert_int_equal(cf_wire_encode(&out, &wrong), 0);
    redisReply *r = redisCommand(rc, "PUBLISH room:news %b", cf_bytes_data(&out) + CF_WIRE_HDR,
                                 cf_bytes_len(&out) - CF_WIRE_HDR);
    freeReplyObject(r);
    cf_bytes_consume(&out, cf_bytes_len(&out));

    /* A backend publishing the documented payload reaches the room. */
    struct cf_wire_msg good = {.type = CF_WIRE_MSG,
                               .room = {"news", 4},
                               .from = {"newsbot", 7},
                               .text = {"extra, extra", 12},
                               .ts = cf_wall_ms()};
    assert_int_equal(cf_wire_encode(&out, &good), 0);
    r = redisCommand(rc, "PUBLISH room:news %b", cf_bytes_data(&out) + CF_WIRE_HDR,
                     cf_bytes_len(&out) - CF_WIRE_HDR);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    cf_bytes_free(&out);
    redisFree(rc);

    expect_message(a, "extra, extra", "newsbot");
    assert_true(wsc_quiet(a, 300));
    int shard = (int)cf_shard_of("news", 4, 2);
    assert_true(h_log_contains(&fx.node.broker[shard], "dropped a message on Redis channel", 2000));
    wsc_close(a);
}

/* Publishes `text` from "newsbot" into room "news" straight through Redis. */
static void publish_good(redisContext *rc, const char *text)
{
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 16);
    struct cf_wire_msg good = {.type = CF_WIRE_MSG,
                               .room = {"news", 4},
                               .from = {"newsbot", 7},
                               .text = {text, (uint32_t)strlen(text)},
                               .ts = cf_wall_ms()};
    assert_int_equal(cf_wire_encode(&out, &good), 0);
    freeReplyObject(redisCommand(rc, "PUBLISH room:news %b", cf_bytes_data(&out) + CF_WIRE_HDR,
                                 cf_bytes_len(&out) - CF_WIRE_HDR));
    cf_bytes_free(&out);
}

/* Whoever may publish into Redis can send garbage at any rate: the broker
 * logs one line a second about it, which counts the others. */
static void test_garbage_is_logged_once_a_second(void **state)
{
    (void)state;
    redisContext *rc;
    struct wsc *a = alice_in_news(&rc);
    const struct h_proc *broker = &fx.node.broker[cf_shard_of("news", 4, 2)];
    /* a capped line, not one of the DEBUG lines for the others */
    static const char line[] = "dropped a message on Redis channel news: ";
    static const char capped[] = "dropped so far) (";

    h_sleep_ms(1100); /* past any line of the case before */
    long mark = h_log_mark(broker);
    for (int i = 0; i < 20; i++)
        freeReplyObject(redisCommand(rc, "PUBLISH room:news %b", "junk", (size_t)4));
    publish_good(rc, "after the junk"); /* read after all of it: one channel */
    expect_message(a, "after the junk", "newsbot");
    assert_true(h_log_contains_from(broker, mark, line, 2000));
    assert_int_equal(h_log_count_from(broker, mark, capped), 1);

    h_sleep_ms(1100);
    freeReplyObject(redisCommand(rc, "PUBLISH room:news %b", "junk", (size_t)4));
    assert_true(h_log_contains_from(broker, mark, "(and 19 more since the last such line", 2000));
    assert_int_equal(h_log_count_from(broker, mark, capped), 2);
    redisFree(rc);
    wsc_close(a);
}

/* The sum of the series of broker `shard`'s /metrics named `name` (and
 * matching `match`, NULL: all); `series` of them are expected (-1: one or
 * more). */
static double broker_metric(int shard, const char *name, const char *match, int series)
{
    struct h_resp r;
    assert_int_equal(h_http(g_bport + shard, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    int n;
    double v = prom_sum(r.body, name, match, &n);
    h_resp_free(&r);
    if (series < 0)
        assert_true(n > 0);
    else
        assert_int_equal(n, series);
    return v;
}

static double broker_counter(int shard, const char *name)
{
    return broker_metric(shard, name, NULL, 1);
}

/* A gateway whose BROKERS differs from the brokers' sends rooms to the
 * wrong shard: each such frame is dropped and counted, and logged once a
 * second at most. */
static void test_misrouted_frames_are_counted_and_logged_once_a_second(void **state)
{
    (void)state;
    int shard = 0;
    const char *room = cf_shard_of("elsewhere-0", 11, 2) != 0 ? "elsewhere-0" : "elsewhere-1";
    assert_int_not_equal(cf_shard_of(room, 11, 2), 0);
    const struct h_proc *broker = &fx.node.broker[shard];
    static const char capped[] = "such frames dropped) (";
    int fd = link_to(shard);
    bl_hello(fd, (uint32_t)shard, 2);
    h_sleep_ms(1100); /* past any line of the cases before */
    long mark = h_log_mark(broker);
    double before = broker_counter(shard, "confab_broker_misrouted_frames_total");
    struct cf_wire_msg join = {.type = CF_WIRE_JOIN, .room = {room, 11}};
    for (int i = 0; i < 5; i++)
        bl_send_msg(fd, &join);
    assert_true(h_log_contains_from(broker, mark, "which shard 0 does not own", 2000));
    for (int t = 0; t < 200; t++) { /* the scrape may come before the last frame is read */
        if (broker_counter(shard, "confab_broker_misrouted_frames_total") >= before + 5)
            break;
        h_sleep_ms(10);
    }
    assert_int_equal(broker_counter(shard, "confab_broker_misrouted_frames_total"), before + 5);
    assert_int_equal(h_log_count_from(broker, mark, capped), 1);
    h_sleep_ms(1100);
    bl_send_msg(fd, &join);
    assert_true(h_log_contains_from(broker, mark, "(and 4 more since the last such line", 2000));
    assert_int_equal(h_log_count_from(broker, mark, capped), 2);
    assert_false(bl_closed_by_peer(fd, 300)); /* a frame dropped, not the link */

    /* A request among them is answered, and counted as misrouted only: not
     * also as a failed request, which the broker did not fail. */
    const char *failed = "confab_broker_failed_requests_total";
    double failed0 = broker_metric(shard, failed, NULL, -1); /* one series per reason */
    double misrouted0 = broker_counter(shard, "confab_broker_misrouted_frames_total");
    struct cf_wire_msg send = {.type = CF_WIRE_SEND,
                               .q = 77,
                               .room = {room, 11},
                               .from = {"x", 1},
                               .text = {"lost", 4},
                               .ts = 1};
    bl_send_msg(fd, &send);
    struct bl_reader rd;
    bl_reader_init(&rd, fd);
    struct cf_wire_msg m;
    int64_t deadline = h_now_ms() + 3000;
    bool answered = false;
    while (!answered && bl_reader_next(&rd, &m, deadline)) {
        if (m.type != CF_WIRE_FAIL || m.q != 77)
            continue;
        answered = true;
        char code[32], text[200];
        snprintf(code, sizeof code, "%.*s", (int)m.code.len, m.code.p);
        snprintf(text, sizeof text, "%.*s", (int)m.text.len, m.text.p);
        assert_string_equal(code, "internal");
        assert_non_null(strstr(text, "does not own its room"));
    }
    assert_true(answered);
    bl_reader_free(&rd);
    assert_int_equal(broker_counter(shard, "confab_broker_misrouted_frames_total"), misrouted0 + 1);
    assert_int_equal(broker_metric(shard, failed, NULL, -1), failed0);
    close(fd);
}

static void test_socket_is_not_world_accessible(void **state)
{
    (void)state;
    char path[400];
    struct stat st;
    snprintf(path, sizeof path, "%s/broker-0.sock", fx.node.run_dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);
}

static long long numsub(redisContext *rc, const char *room)
{
    redisReply *r = redisCommand(rc, "PUBSUB NUMSUB room:%s", room);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    long long n = r->element[1]->integer;
    freeReplyObject(r);
    return n;
}

static void wait_numsub(redisContext *rc, const char *room, long long want)
{
    int64_t deadline = h_now_ms() + 5000;
    while (numsub(rc, room) != want) {
        if (h_now_ms() > deadline)
            fail_msg("room:%s has %lld subscribers, expected %lld", room, numsub(rc, room), want);
        h_sleep_ms(20);
    }
}

static void test_subscriptions_follow_membership(void **state)
{
    (void)state;
    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_non_null(rc);
    assert_int_equal(numsub(rc, "members"), 0);
    struct wsc *a = wsc_connect_user(fx.node.port, "alice"),
               *b = wsc_connect_user(fx.node.port, "bob");
    assert_int_equal(wsc_send_event(a, "change_room", "name", "members"), 0);
    wait_numsub(rc, "members", 1); /* the room's broker subscribed */
    assert_int_equal(wsc_send_event(b, "change_room", "name", "members"), 0);
    assert_int_equal(wsc_send_event(b, "send_message", "message", "in"), 0);
    expect_message(b, "in", "bob");
    expect_message(a, "in", "bob");
    assert_int_equal(numsub(rc, "members"), 1); /* still one: one per fx.node, not per member */
    assert_int_equal(wsc_send_event(a, "change_room", "name", "away"), 0);
    assert_int_equal(wsc_send_event(a, "send_message", "message", "x"), 0);
    expect_message(a, "x", "alice");
    assert_int_equal(numsub(rc, "members"), 1);
    wsc_close(b); /* the last member leaves by disconnecting */
    wait_numsub(rc, "members", 0);
    wsc_close(a);
    wait_numsub(rc, "away", 0);
    redisFree(rc);
}

static void test_one_frame_per_gateway_link_one_encoding_per_message(void **state)
{
    (void)state;
    enum { N = 5 };
    struct wsc *c[N];
    for (int i = 0; i < N; i++) {
        char user[16];
        snprintf(user, sizeof user, "fan%d", i);
        c[i] = wsc_connect_user(fx.node.port, user);
        assert_non_null(c[i]);
        assert_int_equal(wsc_send_event(c[i], "change_room", "name", "fanout"), 0);
        char tag[16];
        snprintf(tag, sizeof tag, "hi%d", i);
        assert_int_equal(wsc_send_event(c[i], "send_message", "message", tag), 0);
        for (;;) { /* until our own tag is back: our join is live */
            json_t *ev = wsc_recv_json(c[i], 5000);
            assert_non_null(ev);
            bool mine = !strcmp(payload_str(ev, "message"), tag);
            json_decref(ev);
            if (mine)
                break;
        }
    }
    for (int i = 0; i < N; i++)
        drain_until_quiet(c[i], 100);
    int shard = (int)cf_shard_of("fanout", 6, 2);
    long gmark = h_log_mark(&fx.node.gateway), bmark = h_log_mark(&fx.node.broker[shard]);
    assert_int_equal(wsc_send_event(c[0], "send_message", "message", "to all five"), 0);
    for (int i = 0; i < N; i++)
        expect_message(c[i], "to all five", "fan0");
    h_sleep_ms(200); /* let the debug lines reach the files */
    assert_int_equal(
        h_log_count_from(&fx.node.broker[shard], bmark,
                         "room fanout: event forwarded once to each of 1 gateway links"),
        1);
    assert_int_equal(
        h_log_count_from(&fx.node.gateway, gmark,
                         "room fanout: msg queued for 5 local members, encoded 1 time(s)"),
        1);
    for (int i = 0; i < N; i++)
        wsc_close(c[i]);
}

static void test_a_stuck_gateway_link_is_reset_at_its_bound(void **state)
{
    (void)state;
    const char *room = "flood";
    int shard = (int)cf_shard_of(room, strlen(room), 2);
    int fd = link_to(shard);
    bl_hello(fd, (uint32_t)shard, 2);
    struct cf_wire_msg join = {.type = CF_WIRE_JOIN, .room = {room, (uint32_t)strlen(room)}};
    bl_send_msg(fd, &join);
    /* ...and never read again. A real client floods the room meanwhile. */
    struct wsc *a = wsc_connect_user(fx.node.port, "flooder");
    assert_non_null(a);
    assert_int_equal(wsc_send_event(a, "change_room", "name", room), 0);
    long mark = h_log_mark(&fx.node.broker[shard]);
    char text[1100];
    memset(text, 'f', 1000);
    bool reset = false;
    for (int i = 0; i < 4000 && !reset; i++) {
        snprintf(text + 1000, 100, "-%d", i);
        assert_int_equal(wsc_send_event(a, "send_message", "message", text), 0);
        json_t *ev = wsc_recv_json(a, 5000); /* the real gateway's link keeps flowing */
        assert_non_null(ev);
        json_decref(ev);
        if (i % 100 == 99)
            reset = h_log_contains_from(&fx.node.broker[shard], mark, "output queue full", 0);
    }
    assert_true(reset);
    assert_true(bl_closed_by_peer(fd, 5000));
    close(fd);
    assert_true(h_alive(&fx.node.broker[shard]));
    wsc_close(a);
}

/* The first member of a new room sends at once. Its broker must not PUBLISH
 * before Redis has confirmed the room's SUBSCRIBE (they travel on two
 * connections), or the sender never hears its own message. To make the race
 * real, another "gateway" has just asked the same broker for 20000 other
 * rooms, so the new room's SUBSCRIBE waits behind them on the subscriber
 * connection while the PUBLISH has the publisher connection to itself. */
static void test_first_message_waits_for_its_subscription(void **state)
{
    (void)state;
    const char *room = "racer";
    uint32_t shard = cf_shard_of(room, strlen(room), 2);
    struct wsc *a = member(fx.node.port, "alice", NULL);
    ready(a, "connected");

    struct cf_bytes out;
    cf_bytes_init(&out, 4 << 20);
    char names[20000][16];
    int n = 0;
    for (int i = 0; n < 20000; i++) {
        snprintf(names[n], sizeof names[n], "bulk-%d", i);
        if (cf_shard_of(names[n], strlen(names[n]), 2) != shard)
            continue;
        struct cf_wire_msg j = {.type = CF_WIRE_JOIN,
                                .room = {names[n], (uint32_t)strlen(names[n])}};
        assert_int_equal(cf_wire_encode(&out, &j), 0);
        n++;
    }
    int fd = link_to((int)shard);
    bl_hello(fd, shard, 2);
    bl_send_bytes(fd, cf_bytes_data(&out), cf_bytes_len(&out));
    cf_bytes_free(&out);

    assert_int_equal(wsc_send_event(a, "change_room", "name", room), 0);
    say(a, "first words");
    expect_message(a, "first words", "alice");
    close(fd);
    wsc_close(a);
}

/* A typing frame from a peer goes to Redis as the broker encodes it, not as
 * it came: unknown keys (skipped by the decoder) would otherwise be
 * published to every node in the room, at up to the frame bound's size. */
static void test_typing_goes_to_redis_reencoded(void **state)
{
    (void)state;
    const char *room = "typing-room";
    int shard = (int)cf_shard_of(room, strlen(room), 2);
    redisContext *sub = redisConnectUnix(fx.redis.sock);
    assert_non_null(sub);
    assert_int_equal(sub->err, 0);
    redisReply *r = redisCommand(sub, "SUBSCRIBE room:%s", room);
    assert_non_null(r);
    freeReplyObject(r);
    struct timeval tv = {5, 0};
    assert_int_equal(redisSetTimeout(sub, tv), REDIS_OK);

    int fd = link_to(shard);
    bl_hello(fd, (uint32_t)shard, 2);
    struct cf_wire_msg join = {.type = CF_WIRE_JOIN, .room = {room, (uint32_t)strlen(room)}};
    bl_send_msg(fd, &join);
    /* a typing event with a 100 KiB key of its own: its map announces one
     * entry more, then the key and a bin 32 value follow */
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 20);
    struct cf_wire_msg ty = {.type = CF_WIRE_TYPING, .room = join.room, .user = {"mallory", 7}};
    assert_int_equal(cf_wire_encode(&out, &ty), 0);
    size_t plen = cf_bytes_len(&out) - CF_WIRE_HDR, junk = 100 * 1024;
    unsigned char *p = malloc(plen + 16 + junk);
    assert_non_null(p);
    memcpy(p, cf_bytes_data(&out) + CF_WIRE_HDR, plen);
    assert_true(p[0] >= 0x80 && p[0] < 0x8f); /* a fixmap */
    p[0]++;
    static const unsigned char key[] = {0xa4, 'j', 'u', 'n', 'k', 0xc6, 0, 1, 0x90, 0};
    memcpy(p + plen, key, sizeof key);
    memset(p + plen + sizeof key, 'x', junk);
    cf_bytes_consume(&out, cf_bytes_len(&out));
    assert_int_equal(cf_wire_frame_raw(&out, p, plen + sizeof key + junk), 0);
    free(p);
    bl_send_bytes(fd, cf_bytes_data(&out), cf_bytes_len(&out));
    cf_bytes_free(&out);

    r = NULL;
    assert_int_equal(redisGetReply(sub, (void **)&r), REDIS_OK);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    size_t got = r->element[2]->len;
    struct cf_wire_decoder *d = cf_wire_decoder_new();
    struct cf_wire_msg m;
    const char *why;
    assert_int_equal(cf_wire_decode(d, r->element[2]->str, got, &m, &why), 0);
    assert_int_equal(m.type, CF_WIRE_TYPING);
    assert_int_equal(m.user.len, 7);
    assert_memory_equal(m.user.p, "mallory", 7);
    cf_wire_decoder_free(d);
    freeReplyObject(r);
    if (got > 256)
        fail_msg("the typing event published to Redis is %zu bytes", got);
    redisFree(sub);
    close(fd);
}

/* A broker takes MAX_LINKS (1024) links at once, those before hello
 * included; the ones past that are closed at the door, with a line a
 * second in the log, and the real gateway's links keep working. */
static void test_links_past_the_cap_are_refused(void **state)
{
    (void)state;
    enum { N = 1100 };
    static int fds[N];
    /* this process holds the N ends; the broker, under the same limit,
     * the other N */
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < N + 200)
        skip(); /* the machine's limit: the broker runs out of descriptors first */
    if (rl.rlim_cur < N + 200) {
        rl.rlim_cur = N + 200;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    long mark = h_log_mark(&fx.node.broker[1]);
    for (int i = 0; i < N; i++) {
        fds[i] = link_to(1);
        assert_true(fds[i] >= 0);
    }
    h_sleep_ms(1000); /* all accepted (none says hello: 5 s before that closes them) */
    int closed = 0;
    for (int i = 0; i < N; i++) {
        char c;
        closed += recv(fds[i], &c, 1, MSG_DONTWAIT) == 0;
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    printf("%d of %d connections closed at once\n", closed, N);
    /* the node's own gateway holds a link too */
    assert_true(closed >= N - 1024 && closed <= N - 1024 + 8);
    assert_true(h_log_contains_from(&fx.node.broker[1], mark, "links already", 1000));
    chat_still_works();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_frames_close_only_that_link),
        cmocka_unit_test(test_a_good_link_speaks_the_protocol),
        cmocka_unit_test(test_redis_payloads),
        cmocka_unit_test(test_garbage_is_logged_once_a_second),
        cmocka_unit_test(test_misrouted_frames_are_counted_and_logged_once_a_second),
        cmocka_unit_test(test_socket_is_not_world_accessible),
        cmocka_unit_test(test_subscriptions_follow_membership),
        cmocka_unit_test(test_one_frame_per_gateway_link_one_encoding_per_message),
        cmocka_unit_test(test_a_stuck_gateway_link_is_reset_at_its_bound),
        cmocka_unit_test(test_first_message_waits_for_its_subscription),
        cmocka_unit_test(test_typing_goes_to_redis_reencoded),
        cmocka_unit_test(test_links_past_the_cap_are_refused),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
