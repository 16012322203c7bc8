/* The legacy JSON protocol end to end through gateway -> broker -> Redis ->
 * broker -> gateway, as the old Go chat's clients speak it. */
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <regex.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static struct h_fixture fx;

static int setup(void **state)
{
    *state = &fx;
    return h_fixture_up(&fx, NULL);
}

static void test_message_reaches_everyone_in_the_room(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "alice", "lobby"),
               *b = member(fx.node.port, "bob", "lobby");
    settle((struct wsc *[]){a, b}, 2);
    /* The client's claimed "from" is ignored: the token decides. */
    assert_int_equal(
        wsc_send_text(a, "{\"type\":\"send_message\",\"payload\":{\"message\":"
                         "\"hi <b>bob</b> \\\"quoted\\\" \\u00e9\",\"from\":\"mallory\"}}"),
        0);
    int64_t before = (int64_t)time(NULL);
    for (int i = 0; i < 2; i++) {
        json_t *ev = wsc_recv_json(i ? b : a, 5000);
        assert_non_null(ev);
        /* Exactly the old shape, with room added. */
        assert_int_equal(json_object_size(ev), 2);
        assert_string_equal(json_string_value(json_object_get(ev, "type")), "new_message");
        json_t *p = json_object_get(ev, "payload");
        assert_int_equal(json_object_size(p), 4);
        assert_string_equal(payload_str(ev, "message"), "hi <b>bob</b> \"quoted\" \xc3\xa9");
        assert_string_equal(payload_str(ev, "from"), "alice");
        assert_string_equal(payload_str(ev, "room"), "lobby");
        const char *sent = payload_str(ev, "sent");
        regex_t re;
        regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                REG_EXTENDED | REG_NOSUB);
        assert_int_equal(regexec(&re, sent, 0, NULL, 0), 0);
        regfree(&re);
        struct tm tm = {0};
        strptime(sent, "%Y-%m-%dT%H:%M:%S", &tm);
        int64_t t = (int64_t)timegm(&tm);
        assert_true(t >= before - 5 && t <= before + 5);
        json_decref(ev);
    }
    assert_true(wsc_quiet(a, 200));
    assert_true(wsc_quiet(b, 200));
    wsc_close(a);
    wsc_close(b);
}

static void test_new_connections_start_in_the_default_room(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "alice", NULL), *b = member(fx.node.port, "bob", NULL),
               *c = member(fx.node.port, "carol", "elsewhere");
    settle((struct wsc *[]){a, b, c}, 3);
    say(b, "in general"); /* a and b are both in "general" */
    expect_message(a, "in general", "bob");
    expect_message(b, "in general", "bob");
    assert_true(wsc_quiet(c, 300)); /* carol left general */
    wsc_close(a);
    wsc_close(b);
    wsc_close(c);
}

static void test_change_room_moves_between_rooms_on_every_shard(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "alice", NULL), *b = member(fx.node.port, "bob", NULL);
    /* The old client's rooms "0".."9" land on both brokers. */
    for (int i = 0; i < 10; i++) {
        char room[4], text[32];
        snprintf(room, sizeof room, "%d", i);
        assert_int_equal(wsc_send_event(a, "change_room", "name", room), 0);
        assert_int_equal(wsc_send_event(b, "change_room", "name", room), 0);
        settle((struct wsc *[]){a, b}, 2);
        snprintf(text, sizeof text, "msg-%d", i);
        say(a, text);
        expect_message(a, text, "alice");
        expect_message(b, text, "alice");
    }
    /* After leaving, nothing more from the old room. */
    assert_int_equal(wsc_send_event(b, "change_room", "name", "other"), 0);
    settle((struct wsc *[]){b}, 1);
    say(a, "only-for-9");
    expect_message(a, "only-for-9", "alice");
    assert_true(wsc_quiet(b, 300));
    wsc_close(a);
    wsc_close(b);
}

static void test_first_member_hears_its_own_first_message(void **state)
{
    (void)state;
    /* A brand-new room: its Redis subscription is made by this very join, and
     * the message sent right after must still reach its sender (the race
     * itself is forced in test_broker_wire's
     * test_first_message_waits_for_its_subscription). */
    struct wsc *a = member(fx.node.port, "alice", NULL);
    for (int i = 0; i < 20; i++) {
        char room[32], text[32];
        snprintf(room, sizeof room, "fresh-%d", i);
        snprintf(text, sizeof text, "first-%d", i);
        assert_int_equal(wsc_send_event(a, "change_room", "name", room), 0);
        say(a, text);
        expect_message(a, text, "alice");
    }
    wsc_close(a);
}

static void test_bad_input_is_ignored_and_the_connection_stays(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "alice", "calm"), *b = member(fx.node.port, "bob", "calm");
    settle((struct wsc *[]){a, b}, 2);
    static const char *const bad[] = {
        "not json",
        "{",
        "[]",
        "42",
        "{\"type\":\"send_message\"}",
        "{\"type\":\"send_message\",\"payload\":[]}",
        "{\"type\":\"send_message\",\"payload\":{\"message\":5}}",
        "{\"type\":\"send_message\",\"payload\":{\"message\":\"\"}}",
        "{\"type\":\"send_message\",\"payload\":{\"message\":\"  \\n\\t \"}}",
        "{\"type\":\"send_message\",\"payload\":{\"message\":\"a\\u0000b\"}}",
        "{\"type\":\"send_message\",\"payload\":{\"message\":\"\\ud800\"}}",
        "{\"type\":\"change_room\",\"payload\":{\"name\":\"a b\"}}",
        "{\"type\":\"change_room\",\"payload\":{\"name\":\"\"}}",
        "{\"type\":\"change_room\",\"payload\":{\"name\":\"../etc\"}}",
        "{\"type\":\"change_room\",\"payload\":{\"name\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}",
        "{\"type\":\"change_room\",\"payload\":{\"name\":7}}",
        "{\"type\":\"dance\",\"payload\":{}}",
        "{\"type\":5,\"payload\":{}}",
        "{\"type\":\"send_message\",\"type\":\"x\",\"payload\":{\"message\":\"dup\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(wsc_send_text(a, bad[i]), 0);
    assert_int_equal(wsc_send_frame(a, WS_BINARY, true, "\x01\x02", 2), 0);
    /* Deep nesting */
    char deep[3000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    assert_int_equal(wsc_send_text(a, deep), 0);

    /* Still connected, still in "calm", and nothing else was sent. */
    say(a, "still here");
    expect_message(a, "still here", "alice");
    expect_message(b, "still here", "alice");
    assert_true(wsc_quiet(a, 300));
    assert_true(wsc_quiet(b, 100));
    wsc_close(a);
    wsc_close(b);
}

static void test_one_senders_order_is_kept_for_everyone(void **state)
{
    (void)state;
    enum { N = 300 };
    struct wsc *a = member(fx.node.port, "alice", "ordered"),
               *b = member(fx.node.port, "bob", "ordered"),
               *c = member(fx.node.port, "carol", "ordered");
    settle((struct wsc *[]){a, b, c}, 3);
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof text, "%d", i);
        say(a, text);
    }
    struct wsc *rx[] = {a, b, c};
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < N; i++) {
            char text[16];
            snprintf(text, sizeof text, "%d", i);
            expect_message(rx[r], text, "alice");
        }
    wsc_close(a);
    wsc_close(b);
    wsc_close(c);
}

static void test_everyone_sees_the_same_order(void **state)
{
    (void)state;
    enum { N = 150 };
    struct wsc *a = member(fx.node.port, "alice", "busy"), *b = member(fx.node.port, "bob", "busy"),
               *c = member(fx.node.port, "carol", "busy"),
               *d = member(fx.node.port, "dave", "busy");
    struct wsc *all[] = {a, b, c, d};
    settle(all, 4);
    /* Every member gets all 2N, in one and the same order, in which each
     * sender's own messages are in the order sent. */
    char *seen[4][2 * N];
    interleaved(a, 'a', b, 'b', N, all, 4, &seen[0][0]);
    for (int r = 1; r < 4; r++)
        for (int i = 0; i < 2 * N; i++)
            assert_string_equal(seen[r][i], seen[0][i]);
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < 2 * N; i++)
            free(seen[r][i]);
        wsc_close(all[r]);
    }
}

/* The gateway worker's end of the connection whose client end is `fd`: a
 * descriptor of this process for the same socket (pidfd_getfd); -1 when the
 * worker holds no such socket, -2 when this process may not look (no
 * pidfd_open, or every pidfd_getfd refused). */
static int gateway_end_of(int fd)
{
    struct sockaddr_storage mine, peer;
    socklen_t ml = sizeof mine;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&mine, &ml), 0);
    char path[64], kids[256] = "";
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)fx.node.gateway.pid,
             (int)fx.node.gateway.pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    if (!fgets(kids, sizeof kids, f))
        kids[0] = '\0';
    fclose(f);
    /* GATEWAY_WORKERS=1: the process itself, or its one worker */
    int worker = atoi(kids) > 0 ? atoi(kids) : (int)fx.node.gateway.pid;
    int pidfd = (int)syscall(SYS_pidfd_open, worker, 0);
    if (pidfd < 0)
        return errno == EPERM || errno == ENOSYS ? -2 : -1;
    snprintf(path, sizeof path, "/proc/%d/fd", worker);
    DIR *d = opendir(path);
    assert_non_null(d);
    int found = -1, got = 0, denied = 0;
    for (struct dirent *e; found < 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        int theirs = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
        if (theirs < 0) {
            denied += errno == EPERM;
            continue;
        }
        got++;
        socklen_t pl = sizeof peer;
        if (getpeername(theirs, (struct sockaddr *)&peer, &pl) == 0 && pl == ml &&
            memcmp(&peer, &mine, ml) == 0)
            found = theirs;
        else
            close(theirs);
    }
    closedir(d);
    close(pidfd);
    return found >= 0 ? found : !got && denied ? -2 : -1;
}

/* Nagle would hold a message written while the previous one is not yet
 * acknowledged until the client's delayed ACK: up to 40 ms a message for a
 * busy room. The gateway's socket of an established WebSocket must have
 * TCP_NODELAY. */
static void test_messages_are_not_held_back_by_nagle(void **state)
{
    (void)state;
    struct wsc *a = member(fx.node.port, "nagle", "lobby");
    settle((struct wsc *[]){a}, 1);
    int theirs = gateway_end_of(wsc_fd(a));
    if (theirs == -2) {
        wsc_close(a);
        skip(); /* no right to look into another process here */
    }
    if (theirs < 0)
        fail_msg("the gateway holds no socket connected to this client");
    int on = 0;
    socklen_t len = sizeof on;
    assert_int_equal(getsockopt(theirs, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    close(theirs);
    wsc_close(a);
    if (!on)
        fail_msg("the gateway's socket of a WebSocket has no TCP_NODELAY");
}

/* A busy gateway paces its writes: after a flush to many clients the next
 * waits about as long as that one took, and its own loop wakes for it
 * (wsio_wake_at). A message that lands in that window must still go out
 * then, not whenever something else happens to wake the gateway (its
 * 1-second tick): here nothing else does. */
static void test_a_paced_message_goes_out_without_other_traffic(void **state)
{
    (void)state;
    enum { MEMBERS = 800, ROUNDS = 5 };
    struct wsc *p = member(fx.node.port, "pacer", NULL);
    settle((struct wsc *[]){p}, 1);
    struct wsc **m = silent_members(fx.node.port, "listener", MEMBERS);
    int64_t worst = paced_worst_ms(p, "pacer", ROUNDS);
    close_all(m, MEMBERS);
    wsc_close(p);
    if (worst >= 400)
        fail_msg("a message sent right after a wide one took %lld ms to come back", (long long)worst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_reaches_everyone_in_the_room),
        cmocka_unit_test(test_new_connections_start_in_the_default_room),
        cmocka_unit_test(test_change_room_moves_between_rooms_on_every_shard),
        cmocka_unit_test(test_first_member_hears_its_own_first_message),
        cmocka_unit_test(test_bad_input_is_ignored_and_the_connection_stays),
        cmocka_unit_test(test_one_senders_order_is_kept_for_everyone),
        cmocka_unit_test(test_everyone_sees_the_same_order),
        cmocka_unit_test(test_messages_are_not_held_back_by_nagle),
        cmocka_unit_test(test_a_paced_message_goes_out_without_other_traffic),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, fixture_down));
}
