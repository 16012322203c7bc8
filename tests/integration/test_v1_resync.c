/* A broker that comes back has every v1 member of its shard re-synced: one
 * `sub` per member and room. Sent in one pass, those frames did not fit the
 * gateway's link past MAX_LINK_QUEUE_BYTES, nor the broker's queue toward
 * Redis, and the members they were for waited for a retry (before that,
 * they were closed with 1012, a share of the shard's clients sent back at
 * once). The gateway now sends them as the broker answers, at most
 * RS_WINDOW at a time per shard (gateway/resync.h): none waits, none is
 * refused.
 * Members that notice a gap in their rooms' ids all at once re-sync through
 * the same window. */
#include "v1.h"

#include <hiredis/hiredis.h>

#include "bytes.h"
#include "clock.h"
#include "shard.h"
#include "wire.h"

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
static char g_epochs[CLIENTS][ROOMS][24];
static json_int_t g_last_ids[CLIENTS][ROOMS];
static struct v1c *g_c[CLIENTS];

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

/* The message `text` in room reached the client: live, or in
 * the messages of a re-sync's joined. */
static bool got_message(struct v1c *c, const char *room, const char *text, int timeout_ms)
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
                    !strcmp(pstr(ev, "message"), text);
        if (type && !strcmp(type, "joined") && !strcmp(pstr(ev, "room"), room)) {
            size_t k;
            json_t *msg;
            json_array_foreach(json_object_get(pl(ev), "messages"), k, msg)
                found = found || !strcmp(json_string_value(json_object_get(msg, "message")), text);
        }
        json_decref(ev);
        if (found)
            return true;
    }
    return false;
}

/* Every client joins its rooms and keeps each room's epoch and last id. */
static void join_all(void)
{
    name_rooms();
    for (int i = 0; i < CLIENTS; i++) {
        char user[32];
        snprintf(user, sizeof user, "member-%03d", i);
        g_c[i] = v1_member(fx.node.port, user, V1_JSON);
        /* a client at a time: all at once would fill the queues this
         * node's small bound sets */
        for (int r = 0; r < ROOMS; r++)
            assert_int_equal(v1_send(g_c[i], "join", json_pack("{s:s}", "room", g_rooms[i][r])),
                             0);
        for (int r = 0; r < ROOMS; r++) {
            json_t *ev = v1_wait(g_c[i], V1_WAIT, "joined", "room", g_rooms[i][r], NULL);
            V1_MUST(g_c[i], ev, "joined");
            snprintf(g_epochs[i][r], sizeof g_epochs[i][r], "%s", pstr(ev, "epoch"));
            g_last_ids[i][r] = pint(ev, "last_id");
            json_decref(ev);
        }
        v1_forget(g_c[i]);
    }
}

/* Every member hears a message sent now in every room (those that waited,
 * once their next try is through); none was closed (with 1012: a member
 * that could not re-sync). */
static void everyone_hears_the_next_message(const char *text)
{
    static int round; /* request ids differ from the last round's */
    round++;
    int closed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        for (int r = 0; r < ROOMS; r++) {
            if (wsc_close_code(v1_wsc(g_c[i])) != 0) {
                printf("# member-%03d: closed with %d\n", i, wsc_close_code(v1_wsc(g_c[i])));
                closed++;
                break;
            }
            char id[16];
            snprintf(id, sizeof id, "r%d-%d", round, r);
            resend_until_acked(g_c[i], g_rooms[i][r], text, id, 20000);
            if (!got_message(g_c[i], g_rooms[i][r], text, 60000)) { /* a few tries of 5 s */
                v1_dump(g_c[i], "the message");
                fail_msg("member-%03d did not get its message in %s", i, g_rooms[i][r]);
            }
        }
        v1_forget(g_c[i]);
    }
    assert_int_equal(closed, 0);
}

/* Nothing had to wait for a retry, and no one was closed. */
static void nothing_waited(long mark)
{
    assert_false(h_log_contains_from(&fx.node.gateway, mark, "do not fit the link to broker", 0));
    assert_false(h_log_contains_from(&fx.node.gateway, mark, "re-sync refused", 0));
    assert_false(h_log_contains_from(&fx.node.gateway, mark, "could not re-sync", 0));
}

static void close_members(void)
{
    for (int i = 0; i < CLIENTS; i++)
        v1_close(g_c[i]);
}

static void test_a_mass_resync_is_paced_and_closes_no_one(void **state)
{
    (void)state;
    join_all();
    long mark = h_log_mark(&fx.node.gateway);
    h_stop(&fx.node.broker[1], SIGKILL, 5000);
    assert_int_equal(h_broker_start(&fx.node, 1), 0);
    assert_int_equal(h_wait_health(fx.node.port, 200, 15000), 0);

    everyone_hears_the_next_message("after the restart");
    /* the case this tests: the whole shard re-synced ... */
    char line[96];
    snprintf(line, sizeof line, "re-syncing %d memberships, at most", CLIENTS * ROOMS);
    assert_true(h_log_contains_from(&fx.node.gateway, mark, line, 0));
    /* ... paced: nothing that had to wait for a retry */
    nothing_waited(mark);
    close_members();
}

/* A message with the room's epoch and the id after the next, as a broker
 * whose subscription was down meets the first message past the ones it
 * missed (here published straight into the room's channel). */
static void publish_gap(redisContext *rc, const char *room, const char *epoch,
                        json_int_t last_id)
{
    struct cf_wire_msg m = {.type = CF_WIRE_MSG,
                            .room = {room, (uint32_t)strlen(room)},
                            .from = {"ghost", 5},
                            .text = {"past a gap", 10},
                            .ts = cf_wall_ms(),
                            .has = CF_WIRE_HAS_ID | CF_WIRE_HAS_EPOCH,
                            .id = (uint64_t)last_id + 2,
                            .epoch = {epoch, (uint32_t)strlen(epoch)}};
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 16);
    assert_int_equal(cf_wire_encode(&out, &m), 0);
    char chan[80];
    snprintf(chan, sizeof chan, "room:%s", room);
    assert_int_equal(redisAppendCommand(rc, "PUBLISH %s %b", chan, cf_bytes_data(&out) + CF_WIRE_HDR,
                                        cf_bytes_len(&out) - CF_WIRE_HDR),
                     REDIS_OK);
    cf_bytes_free(&out);
}

/* Gaps in every room at once: each member notices its own and re-syncs.
 * Those re-syncs go through the same window as a returning broker's: sent
 * all at once, they did not fit the link, and the members waited for a
 * retry. The log tells of the gaps in a line a second, not one per member. */
static void test_a_burst_of_gaps_is_paced(void **state)
{
    (void)state;
    join_all();
    long mark = h_log_mark(&fx.node.gateway);
    redisContext *rc = redisConnectUnix(fx.redis.sock);
    assert_true(rc && !rc->err);
    for (int i = 0; i < CLIENTS; i++)
        for (int r = 0; r < ROOMS; r++)
            publish_gap(rc, g_rooms[i][r], g_epochs[i][r], g_last_ids[i][r]);
    for (int n = 0; n < CLIENTS * ROOMS; n++) {
        redisReply *reply;
        assert_int_equal(redisGetReply(rc, (void **)&reply), REDIS_OK);
        assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
        assert_int_equal(reply->integer, 1); /* the broker of shard 1 heard it */
        freeReplyObject(reply);
    }
    redisFree(rc);

    everyone_hears_the_next_message("after the gap");
    assert_true(h_log_contains_from(&fx.node.gateway, mark, "events were missed", 0));
    /* told of the rest in a line a second: the re-syncs can all be over
     * before that second is, and the line then comes with the first of the
     * window's ticks (ten a second) after it (resync.c log_gaps_unlogged) */
    assert_true(h_log_contains_from(&fx.node.gateway, mark, "more memberships re-syncing", 3000));
    nothing_waited(mark);
    close_members();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* a node each: closing every member at once overflows the small
         * link queue, and the link is reset (blinks.c link_send) */
        cmocka_unit_test_setup_teardown(test_a_mass_resync_is_paced_and_closes_no_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_burst_of_gaps_is_paced, setup, teardown),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
