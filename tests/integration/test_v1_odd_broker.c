/* A gateway against a broker played by the test (on the broker's socket,
 * speaking the wire format): every v1 request still gets exactly one answer
 * when the broker's answer is odd. A join answered with a frame of the wrong
 * type is refused `internal` (it was dropped, and the join stayed pending,
 * holding its events), and an error whose text is longer than the gateway
 * passes on is cut at a character's start (half a character made the
 * error's JSON fail to build, and the request went unanswered). A broker
 * that drops the link after each welcome is tried again with backoff. */
#include "v1.h"
#include "blink.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct h_node node;
static int lfd = -1, link_fd = -1;
static struct bl_reader rd;

/* Listens where the gateway looks for shard 0 of 1. */
static int listen_as_broker(const char *run_dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%.80s/broker-0.sock", run_dir);
    assert_true(n > 0 && (size_t)n < sizeof sa.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    return fd;
}

/* The next frame of type `type` from the gateway (others, such as presence
 * registrations, are passed over). */
static void next_of(int type, struct cf_wire_msg *m)
{
    int64_t deadline = h_now_ms() + 5000;
    while (bl_reader_next(&rd, m, deadline))
        if ((int)m->type == type)
            return;
    fail_msg("no %s frame from the gateway", cf_wire_type_name((enum cf_wire_type)type));
}

static int setup(void **state)
{
    (void)state;
    h_node_init(&node, "unix:/nonexistent/redis.sock"); /* no broker of ours uses it */
    node.brokers = 1;
    lfd = listen_as_broker(node.run_dir);
    if (h_gateway_start(&node) < 0)
        return -1;
    struct pollfd p = {lfd, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1)
        return -1;
    link_fd = accept(lfd, NULL, NULL);
    if (link_fd < 0)
        return -1;
    bl_reader_init(&rd, link_fd);
    struct cf_wire_msg m;
    next_of(CF_WIRE_HELLO, &m);
    struct cf_wire_msg w = {
        .type = CF_WIRE_WELCOME, .shard = 0, .shards = 1, .node = {"fake-broker", 11}};
    bl_send_msg(link_fd, &w);
    struct cf_wire_msg st = {.type = CF_WIRE_STATE, .ready = true, .serving = true};
    st.has |= CF_WIRE_HAS_SERVING;
    bl_send_msg(link_fd, &st);
    return h_wait_health(node.port, 200, 15000);
}

static int teardown(void **state)
{
    (void)state;
    int bad = h_stop_clean(&node.gateway);
    bl_reader_free(&rd);
    close(link_fd);
    close(lfd);
    return bad ? -1 : 0;
}

/* `user` asks to join `room` (request `id`); m: the SUB the broker gets. */
static struct v1c *join_asked(const char *user, const char *room, const char *id,
                              struct cf_wire_msg *m)
{
    struct v1c *c = v1_member(node.port, user, V1_JSON);
    assert_int_equal(v1_send(c, "join", json_pack("{s:s, s:s}", "room", room, "id", id)), 0);
    next_of(CF_WIRE_SUB, m);
    return c;
}

static void test_a_join_answered_with_the_wrong_frame_is_refused(void **state)
{
    (void)state;
    struct cf_wire_msg m;
    struct v1c *a = join_asked("alice", "odd", "j1", &m);
    struct cf_wire_msg h = {.type = CF_WIRE_HISTR, .q = m.q, .room = {"odd", 3}};
    bl_send_msg(link_fd, &h);
    expect_error(a, "internal", "j1", "odd");
    next_of(CF_WIRE_UNSUB, &m); /* the gateway leaves what it never joined */
    v1_close(a);
}

static void test_a_long_error_text_is_cut_between_characters(void **state)
{
    (void)state;
    struct cf_wire_msg m;
    struct v1c *a = join_asked("bob", "long", "j2", &m);
    static char text[201]; /* 100 x U+00E9: its 160-byte cut would split one */
    for (int i = 0; i < 100; i++)
        memcpy(text + 2 * i, "\xc3\xa9", 2);
    struct cf_wire_msg f = {
        .type = CF_WIRE_FAIL, .q = m.q, .code = {"unavailable", 11}, .text = {text, 200}};
    bl_send_msg(link_fd, &f);
    json_t *ev = v1_wait(a, V1_WAIT, "error", "ref", "j2", NULL);
    V1_MUST(a, ev, "the refused join's error");
    assert_string_equal(pstr(ev, "code"), "unavailable");
    const char *msg = pstr(ev, "message");
    assert_int_equal(strlen(msg), 158); /* 79 whole characters */
    assert_memory_equal(msg, text, 158);
    json_decref(ev);
    v1_close(a);
}

/* The fake broker drops the link and welcomes the gateway's next one,
 * telling `queue` as its bound; the re-syncs the gateway then sends within
 * 2 s (none answered). */
static int relink_with_queue(uint64_t queue)
{
    close(link_fd);
    bl_reader_free(&rd);
    struct pollfd p = {lfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 10000), 1);
    link_fd = accept(lfd, NULL, NULL);
    assert_true(link_fd >= 0);
    bl_reader_init(&rd, link_fd);
    struct cf_wire_msg m;
    next_of(CF_WIRE_HELLO, &m);
    struct cf_wire_msg w = {.type = CF_WIRE_WELCOME,
                            .shard = 0,
                            .shards = 1,
                            .node = {"fake-broker", 11},
                            .link_queue = queue,
                            .has = CF_WIRE_HAS_LINK_QUEUE};
    bl_send_msg(link_fd, &w);
    int subs = 0;
    int64_t deadline = h_now_ms() + 2000;
    while (bl_reader_next(&rd, &m, deadline))
        subs += m.type == CF_WIRE_SUB;
    return subs;
}

/* A broker whose MAX_LINK_QUEUE_BYTES is under the gateway's says so in its
 * welcome, and the re-syncs in flight to it keep within half of its queue:
 * sized on the gateway's own (64 MiB, 256 in flight), a round of answers
 * overflowed the broker's queue (1 MiB here: 7 in flight), which closed the
 * link, and the gateway sent the same round again. */
static void test_a_broker_s_smaller_queue_narrows_the_re_sync_window(void **state)
{
    (void)state;
    enum { ROOMS = 20 };
    struct v1c *c = v1_member(node.port, "carol", V1_JSON);
    for (int i = 0; i < ROOMS; i++) {
        char room[16], id[16];
        snprintf(room, sizeof room, "w%d", i);
        snprintf(id, sizeof id, "jw%d", i);
        assert_int_equal(v1_send(c, "join", json_pack("{s:s, s:s}", "room", room, "id", id)), 0);
        struct cf_wire_msg m;
        next_of(CF_WIRE_SUB, &m);
        struct cf_wire_msg a = {
            .type = CF_WIRE_SUBBED, .q = m.q, .room = m.room, .epoch = {"0123456789abcdef", 16}};
        bl_send_msg(link_fd, &a);
        json_t *ev = v1_wait(c, V1_WAIT, "joined", "room", room, NULL);
        V1_MUST(c, ev, "a joined");
        json_decref(ev);
    }
    /* the broker restarts with a smaller queue; every member re-syncs:
     * none answered, so the window is what comes */
    int subs = relink_with_queue(1u << 20);
    printf("%d re-syncs in flight to a broker with a 1 MiB queue\n", subs);
    assert_int_equal(subs, 7); /* 512 KiB over answers of 64 KiB + 5 KiB */
    assert_true(h_log_contains(&node.gateway, "MAX_LINK_QUEUE_BYTES (1048576) is under", 2000));
    /* ... and says so once: a relink to the same broker does not repeat it */
    long mark = h_log_mark(&node.gateway);
    assert_int_equal(relink_with_queue(1u << 20), 7);
    assert_int_equal(h_log_count_from(&node.gateway, mark, "is under this gateway's"), 0);
    /* ... but says it again, naming the new bound, when the broker's queue
     * changes, also when the window comes out the same (the line named the
     * old queue, or none was logged) */
    assert_int_equal(relink_with_queue((1u << 20) + (32u << 10)), 7); /* 528 KiB over 69 KiB */
    assert_true(h_log_contains(&node.gateway, "MAX_LINK_QUEUE_BYTES (1081344) is under", 2000));
    v1_close(c);
}

/* A broker that welcomes the gateway and then drops the link (its queue
 * to the gateway overflowing at each re-sync, say) is tried again with a
 * growing backoff: the backoff was reset at each welcome, and such a link
 * was tried again every 50-100 ms for good, each time with a rejoin of the
 * shard's rooms and a re-sync of its members. Last: it ends the link. */
static void test_a_link_dropped_after_its_welcome_backs_off(void **state)
{
    (void)state;
    close(link_fd); /* rd stays for the teardown to free */
    link_fd = -1;
    int links = 0;
    int64_t end = h_now_ms() + 7000;
    for (;;) {
        int64_t left = end - h_now_ms();
        struct pollfd p = {lfd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            break;
        int fd = accept(lfd, NULL, NULL);
        assert_true(fd >= 0);
        struct bl_reader r;
        bl_reader_init(&r, fd);
        struct cf_wire_msg m;
        if (bl_reader_next(&r, &m, h_now_ms() + 2000) && m.type == CF_WIRE_HELLO) {
            struct cf_wire_msg w = {
                .type = CF_WIRE_WELCOME, .shard = 0, .shards = 1, .node = {"fake-broker", 11}};
            bl_send_msg(fd, &w);
            links++;
            h_sleep_ms(20); /* the welcome read before the close */
        }
        bl_reader_free(&r);
        close(fd);
    }
    printf("%d links welcomed and dropped in 7 s\n", links);
    /* After the test before's three relinks (each up 2 s, under the 10 s
     * that settles the backoff), the delays go on doubling from 400-800 ms:
     * 7 s hold 3 or 4 (with the reset, 50-100 ms each: over 50). */
    assert_in_range(links, 3, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_join_answered_with_the_wrong_frame_is_refused),
        cmocka_unit_test(test_a_long_error_text_is_cut_between_characters),
        cmocka_unit_test(test_a_broker_s_smaller_queue_narrows_the_re_sync_window),
        cmocka_unit_test(test_a_link_dropped_after_its_welcome_backs_off),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
