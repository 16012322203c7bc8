/* A broker that comes back has every v1 member of its shard re-synced: one
 * `sub` per member and room. Sent in one pass, those frames did not fit the
 * gateway's link past MAX_LINK_QUEUE_BYTES, nor the broker's queue toward
 * Redis, and the members they were for waited for a retry (before that,
 * they were closed with 1012, a share of the shard's clients sent back at
 * once). The gateway now sends them as the broker answers, at most
 * RESYNC_WINDOW at a time (gateway/v1.c): none waits, none is refused. */
#include "v1.h"

#include "shard.h"

static struct h_fixture fx;

/* Each client in rooms of its own (no presence of the others to read): ~8300
 * memberships on shard 1, their re-sync frames ~1.4 MB together. */
enum { CLIENTS = 130, ROOMS = 64 };

static int setup(void **state)
{
    (void)state;
    /* the clients are read one after another: none pinged meanwhile */
    static const char *const env[] = {"MAX_LINK_QUEUE_BYTES=1048576", "MAX_ROOMS_PER_CONN=64",
                                      "PING_INTERVAL=3600", NULL};
    return h_fixture_up(&fx, env);
}

static int teardown(void **state)
{
    (void)state;
    return h_fixture_down(&fx);
}

static char g_rooms[CLIENTS][ROOMS][65]; /* CF_ROOM_MAX + 1 */

/* Client i's rooms: long names (bigger frames), all on shard 1. */
static void name_rooms(void)
{
    int n = 0;
    for (int i = 0; i < CLIENTS; i++)
        for (int r = 0; r < ROOMS; r++) {
            char *out = g_rooms[i][r];
            do
                snprintf(out, sizeof g_rooms[i][r],
                         "a-room-with-a-long-name-so-that-its-frames-are-big-%06d", n++);
            while (cf_shard_of(out, strlen(out), 2) != 1);
        }
}

/* The message "after the restart" in room reached the client: live, or in
 * the messages of a re-sync's joined. */
static bool got_message(struct v1c *c, const char *room, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    for (int64_t now; (now = h_now_ms()) < end;) {
        json_t *ev = v1_next(c, (int)(end - now));
        if (!ev)
            return false;
        const char *type = json_string_value(json_object_get(ev, "type"));
        bool found = false;
        if (type && !strcmp(type, "new_message"))
            found = !strcmp(pstr(ev, "room"), room) &&
                    !strcmp(pstr(ev, "message"), "after the restart");
        if (type && !strcmp(type, "joined") && !strcmp(pstr(ev, "room"), room)) {
            size_t k;
            json_t *msg;
            json_array_foreach(json_object_get(pl(ev), "messages"), k, msg)
                found = found || !strcmp(json_string_value(json_object_get(msg, "message")),
                                         "after the restart");
        }
        json_decref(ev);
        if (found)
            return true;
    }
    return false;
}

static void test_a_mass_resync_is_paced_and_closes_no_one(void **state)
{
    (void)state;
    static struct v1c *c[CLIENTS];
    name_rooms();
    for (int i = 0; i < CLIENTS; i++) {
        char user[32];
        snprintf(user, sizeof user, "member-%03d", i);
        c[i] = v1_member(fx.node.port, user, V1_JSON);
        /* a client at a time: all at once would fill the queues this
         * node's small bound sets before the restart */
        for (int r = 0; r < ROOMS; r++)
            assert_int_equal(v1_send(c[i], "join", json_pack("{s:s}", "room", g_rooms[i][r])), 0);
        for (int r = 0; r < ROOMS; r++) {
            json_t *ev = v1_wait(c[i], V1_WAIT, "joined", "room", g_rooms[i][r], NULL);
            V1_MUST(c[i], ev, "joined");
            json_decref(ev);
        }
        v1_forget(c[i]);
    }

    long mark = h_log_mark(&fx.node.gateway);
    h_stop(&fx.node.broker[1], SIGKILL, 5000);
    assert_int_equal(h_broker_start(&fx.node, 1), 0);
    assert_int_equal(h_wait_health(fx.node.port, 200, 15000), 0);

    /* Every member hears its message in every room, sent after the
     * restart (those that waited, once their next try is through). A
     * member closed with 1012 can send nothing more. */
    int closed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        for (int r = 0; r < ROOMS; r++) {
            if (wsc_close_code(v1_wsc(c[i])) != 0) {
                printf("# member-%03d: closed with %d\n", i, wsc_close_code(v1_wsc(c[i])));
                closed++;
                break;
            }
            char id[16];
            snprintf(id, sizeof id, "after-%d", r);
            resend_until_acked(c[i], g_rooms[i][r], "after the restart", id, 20000);
            if (!got_message(c[i], g_rooms[i][r], 60000)) { /* a few tries of 5 s */
                v1_dump(c[i], "the message");
                fail_msg("member-%03d did not get its message in %s", i, g_rooms[i][r]);
            }
        }
        v1_forget(c[i]);
    }
    assert_int_equal(closed, 0);
    /* the case this tests: the whole shard re-synced ... */
    char line[96];
    snprintf(line, sizeof line, "re-syncing %d memberships, at most", CLIENTS * ROOMS);
    assert_true(h_log_contains_from(&fx.node.gateway, mark, line, 0));
    /* ... paced: nothing that had to wait for a retry */
    assert_false(h_log_contains_from(&fx.node.gateway, mark, "do not fit the broker link", 0));
    assert_false(h_log_contains_from(&fx.node.gateway, mark, "re-sync refused", 0));
    assert_false(h_log_contains_from(&fx.node.gateway, mark, "could not re-sync", 0));
    for (int i = 0; i < CLIENTS; i++)
        v1_close(c[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_mass_resync_is_paced_and_closes_no_one),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
