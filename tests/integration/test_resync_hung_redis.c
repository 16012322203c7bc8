/* A Redis server that hangs (one of two) while a broker's whole shard
 * re-syncs holds the shard's re-sync window for one reply timeout, not one
 * per window's worth of its rooms' members.
 *
 * Each shard has RS_WINDOW (256) re-syncs in flight at most
 * (gateway/resync.h). The re-syncs of the hung server's rooms take places
 * that come free only when their requests end: at the bridge's reply
 * timeout or the gateway's request deadline (both 10 s). If the next
 * window's worth were then sent to the same hung server and waited as long,
 * the other server's members behind them would wait 10 s per 256. They do
 * not: once its connection has been reset the hung server's rooms are
 * refused at once (the bridge is reconnecting), and those members go to the
 * 5 s retry, which leaves the window to the rest.
 *
 * The whole shard is made to re-sync as it is when a gateway links to a
 * restarted broker. The gateway is stopped meanwhile (SIGSTOP), and the hung
 * server is stopped once the new broker has it up and checked: when the
 * gateway runs again and links, the broker still takes that server for up
 * and sends it the re-syncs of its rooms. (A broker that is merely ready
 * again would not do: with one server hung, another's readiness waits for
 * that one's record, so the broker is not ready again until the hung one is
 * reset.) */
#include "v1.h"

#include <signal.h>

#include "ring.h"
#include "servers.h"

enum {
    HUNG = 0,
    WORKS = 1,
    NSERVERS = 2,
    ROOMS = 64,        /* per client: MAX_ROOMS_PER_CONN */
    HUNG_CLIENTS = 12, /* 768 memberships on the hung server: three windows */
    /* the bridge's reply timeout and the gateway's request deadline */
    DEADLINE_MS = 10000,
};

static struct h_redis redis[NSERVERS];
static struct h_node node;
static char list[700];
static char g_rooms[HUNG_CLIENTS + 1][ROOMS][32];
static struct v1c *g_c[HUNG_CLIENTS + 1]; /* the last one's rooms are on WORKS */

static int setup(void **state)
{
    (void)state;
    /* every room in one shard, one window; the clients are read one after
     * another: none pinged meanwhile */
    static const char *const env[] = {"MAX_ROOMS_PER_CONN=64", "PING_INTERVAL=3600", NULL};
    return sv_up(redis, NSERVERS, list, sizeof list, &node, 1, env);
}

static int teardown(void **state)
{
    (void)state;
    /* in case a test failed while they were stopped */
    h_kill(&redis[HUNG].proc, SIGCONT);
    h_kill(&node.gateway, SIGCONT);
    return sv_down(redis, NSERVERS, &node);
}

/* Client i's rooms: all on the hung server but the last client's. */
static void name_rooms(void)
{
    int n = 0;
    for (int i = 0; i <= HUNG_CLIENTS; i++) {
        int server = i < HUNG_CLIENTS ? HUNG : WORKS;
        for (int r = 0; r < ROOMS; r++) {
            char *out = g_rooms[i][r];
            do
                snprintf(out, sizeof g_rooms[i][r], "hang-%05d", n++);
            while ((int)cf_ring_server_of(out, strlen(out), NSERVERS) != server);
        }
    }
}

static void join_all(void)
{
    name_rooms();
    for (int i = 0; i <= HUNG_CLIENTS; i++) {
        char user[32];
        snprintf(user, sizeof user, "member-%02d", i);
        g_c[i] = v1_member(node.port, user, V1_JSON);
        for (int r = 0; r < ROOMS; r++)
            assert_int_equal(v1_send(g_c[i], "join", json_pack("{s:s}", "room", g_rooms[i][r])), 0);
        for (int r = 0; r < ROOMS; r++) {
            json_t *ev = v1_wait(g_c[i], V1_WAIT, "joined", "room", g_rooms[i][r], NULL);
            V1_MUST(g_c[i], ev, "joined");
            json_decref(ev);
        }
        v1_forget(g_c[i]);
    }
}

/* c sends `text` in each of its rooms (again while refused: a server just
 * back may answer unavailable for a moment). */
static void send_everywhere(struct v1c *c, char rooms[][32], const char *text, int ms)
{
    static int n;
    for (int r = 0; r < ROOMS; r++) {
        char id[16];
        snprintf(id, sizeof id, "s-%d", n++);
        resend_until_acked(c, rooms[r], text, id, ms);
    }
}

/* Reads c until `text` reached it in each of its rooms: live, or among the
 * messages a re-sync hands over. A member waiting for its re-sync gets none
 * of its rooms' messages, so this is when its re-sync was through. The time
 * the last came, in ms after t0, or -1 if not all came within ms. */
static int64_t heard_everywhere_at(struct v1c *c, char rooms[][32], const char *text, int64_t t0,
                                   int ms)
{
    bool seen[ROOMS] = {false};
    int left = ROOMS;
    int64_t end = t0 + ms, last = -1;
    for (int64_t now; left > 0 && (now = h_now_ms()) < end;) {
        json_t *ev = v1_next(c, (int)(end - now));
        if (!ev)
            break;
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (type && !strcmp(type, "new_message") && !strcmp(pstr(ev, "message"), text))
            for (int r = 0; r < ROOMS; r++)
                if (!seen[r] && !strcmp(pstr(ev, "room"), rooms[r])) {
                    seen[r] = true;
                    left--;
                    last = h_now_ms() - t0;
                }
        json_decref(ev);
    }
    if (left > 0)
        printf("# \"%s\" reached %d of %d rooms' member within %d ms\n", text, ROOMS - left, ROOMS,
               ms);
    return left > 0 ? -1 : last;
}

/* The broker restarts while the gateway is stopped; once the new broker
 * has both servers up and checked, the one is stopped. */
static void restart_broker_then_hang(void)
{
    assert_int_equal(h_kill(&node.gateway, SIGSTOP), 0);
    long mark = h_log_mark(&node.broker[0]);
    h_stop(&node.broker[0], SIGKILL, 5000);
    assert_int_equal(h_broker_start(&node, 0), 0);
    for (int i = 0; i < NSERVERS; i++) {
        char ready[80];
        snprintf(ready, sizeof ready, "ready: Redis connected (server %d of %d)", i, NSERVERS);
        assert_true(h_log_contains_from(&node.broker[0], mark, ready, 10000));
    }
    assert_int_equal(h_kill(&redis[HUNG].proc, SIGSTOP), 0);
}

static void test_a_hung_server_holds_the_window_one_deadline(void **state)
{
    (void)state;
    join_all();
    long gmark = h_log_mark(&node.gateway);
    restart_broker_then_hang();
    long bmark = h_log_mark(&node.broker[0]);
    /* The gateway finds its link gone, links again and re-syncs the whole
     * shard; the broker still takes the stopped server for up. */
    assert_int_equal(h_kill(&node.gateway, SIGCONT), 0);
    int64_t t0 = h_now_ms();
    char line[96];
    snprintf(line, sizeof line, "re-syncing %d memberships, at most", (HUNG_CLIENTS + 1) * ROOMS);
    assert_true(h_log_contains_from(&node.gateway, gmark, line, 5000));

    /* The working server's members: through within one deadline (and the
     * time it takes to refuse the rest), though behind them waited three
     * windows' worth of the hung server's, whose places came free only when
     * their requests ended. */
    struct v1c *w = g_c[HUNG_CLIENTS];
    send_everywhere(w, g_rooms[HUNG_CLIENTS], "on the server that works", 5000);
    int64_t at = heard_everywhere_at(w, g_rooms[HUNG_CLIENTS], "on the server that works", t0,
                                     4 * DEADLINE_MS);
    printf("# the working server's %d members re-synced within %lld ms\n", ROOMS, (long long)at);
    assert_true(at >= 0);
    assert_true(at <= DEADLINE_MS + 5000);
    /* what this covers: places held by requests the hung server never
     * answered, ended by a deadline (the gateway's or the bridge's) */
    assert_true(h_log_contains_from(&node.gateway, gmark, "re-sync refused (timeout", 0) ||
                h_log_contains_from(&node.broker[0], bmark, "no reply from Redis for 10 s", 0));

    /* Running again, the hung server's members catch up at their retry or
     * when the broker is ready again; no one was sent away. */
    assert_int_equal(h_kill(&redis[HUNG].proc, SIGCONT), 0);
    for (int i = 0; i < HUNG_CLIENTS; i++) {
        int64_t t1 = h_now_ms();
        send_everywhere(g_c[i], g_rooms[i], "after the hang", 30000);
        int64_t back = heard_everywhere_at(g_c[i], g_rooms[i], "after the hang", t1, 45000);
        if (back < 0)
            v1_dump(g_c[i], "after the hang");
        assert_true(back >= 0);
    }
    for (int i = 0; i <= HUNG_CLIENTS; i++) {
        assert_int_equal(wsc_close_code(v1_wsc(g_c[i])), 0);
        v1_close(g_c[i]);
    }
    assert_false(h_log_contains_from(&node.gateway, gmark, "could not re-sync", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_hung_server_holds_the_window_one_deadline, setup,
                                        teardown),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
