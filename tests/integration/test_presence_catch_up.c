/* A Redis server back (here restarted empty: every presence entry lost)
 * gets its rooms' presence back from a catch-up walk of 10,000 rooms a
 * second (broker.c, CATCH_UP_ROOMS_PER_S), not all at once: the refreshes
 * of every room used to be queued ahead of that server's first sends,
 * seconds of them at 100 k rooms. Nor does it wait for the heartbeat's
 * round (PRESENCE_TTL/3: 30 s here). The "gateway" is the test on the
 * broker's socket (blink.h), registering a connection in ROOMS rooms. */
#include "common.h"
#include "blink.h"
#include "servers.h"

#include <hiredis/hiredis.h>

#include "bytes.h"
#include "clock.h"

enum { ROOMS = 20000, BATCH = 500 };

static struct h_redis redis[1];
static struct h_node node;
static char list[400];

static int setup(void **state)
{
    (void)state;
    static const char *const env[] = {"PRESENCE_TTL=90", NULL};
    return sv_up(redis, 1, list, sizeof list, &node, 1, env);
}

static int teardown(void **state)
{
    (void)state;
    return sv_down(redis, 1, &node);
}

/* How many rooms have their presence in Redis; -1 while it is down. */
static long long rooms_present(void)
{
    redisContext *rc = redisConnectUnix(redis[0].sock);
    long long n = -1;
    if (rc && !rc->err) {
        redisReply *r = redisCommand(rc, "EVAL %s 0", "return #redis.call('KEYS', 'cf:*:pz')");
        if (r && r->type == REDIS_REPLY_INTEGER)
            n = r->integer;
        freeReplyObject(r);
    }
    redisFree(rc);
    return n;
}

/* Reads frames until the answer (sent, subbed or fail) to q; its type. */
static int answer_to(struct bl_reader *rd, uint64_t q, int64_t deadline)
{
    struct cf_wire_msg m;
    while (bl_reader_next(rd, &m, deadline))
        if (m.q == q &&
            (m.type == CF_WIRE_SENT || m.type == CF_WIRE_SUBBED || m.type == CF_WIRE_FAIL))
            return m.type;
    fail_msg("no answer to request %llu", (unsigned long long)q);
    return -1;
}

static void test_a_server_back_gets_its_presence_back_paced(void **state)
{
    (void)state;
    int fd = bl_connect(node.run_dir, 0);
    bl_hello(fd, 0, 1);
    struct bl_reader rd;
    bl_reader_init(&rd, fd);
    struct cf_bytes out;
    cf_bytes_init(&out, 8 << 20);
    char room[32];
    int64_t t0 = h_now_ms();
    for (int i = 0; i < ROOMS; i += BATCH) { /* in batches: the answers must be read */
        for (int k = i; k < i + BATCH; k++) {
            snprintf(room, sizeof room, "cu-%d", k);
            struct cf_wire_msg m = {.type = CF_WIRE_SUB,
                                    .q = (uint64_t)k + 1,
                                    .room = {room, (uint32_t)strlen(room)},
                                    .user = {"ghost", 5},
                                    .conn = {"c-ghost", 7},
                                    .budget = 4096};
            assert_int_equal(cf_wire_encode(&out, &m), 0);
        }
        bl_send_bytes(fd, cf_bytes_data(&out), cf_bytes_len(&out));
        cf_bytes_consume(&out, cf_bytes_len(&out));
        for (int k = i; k < i + BATCH; k++)
            assert_int_equal(answer_to(&rd, (uint64_t)k + 1, h_now_ms() + 30000), CF_WIRE_SUBBED);
    }
    assert_int_equal(rooms_present(), ROOMS);
    printf("%d rooms joined in %lld ms\n", ROOMS, (long long)(h_now_ms() - t0));

    /* Redis restarted empty; a send is tried until one is taken */
    char dir[300];
    snprintf(dir, sizeof dir, "%s/r0", h_tmpdir());
    h_redis_stop(&redis[0]);
    assert_int_equal(h_redis_restart(&redis[0], dir), 0);
    int64_t back = h_now_ms(), sent_at = 0;
    long long at_first_send = -1;
    for (uint64_t q = 100000; !sent_at && h_now_ms() - back < 20000; q++) {
        struct cf_wire_msg m = {.type = CF_WIRE_SEND,
                                .q = q,
                                .room = {"cu-0", 4},
                                .from = {"ghost", 5},
                                .text = {"hello", 5},
                                .ts = cf_wall_ms()};
        assert_int_equal(cf_wire_encode(&out, &m), 0);
        bl_send_bytes(fd, cf_bytes_data(&out), cf_bytes_len(&out));
        cf_bytes_consume(&out, cf_bytes_len(&out));
        if (answer_to(&rd, q, h_now_ms() + 20000) == CF_WIRE_SENT) {
            sent_at = h_now_ms();
            at_first_send = rooms_present();
        } else {
            h_sleep_ms(20);
        }
    }
    assert_true(sent_at > 0);
    assert_true(at_first_send >= 0);
    printf("the first send was taken %lld ms after the restart, with %lld of %d rooms' "
           "presence back\n",
           (long long)(sent_at - back), at_first_send, ROOMS);
    if (at_first_send >= ROOMS)
        fail_msg("every room's presence was back before the first send was taken: the "
                 "refreshes went ahead of it all at once");

    /* and every room's presence comes back, long before the round's 30 s */
    long long now = at_first_send;
    while (now < ROOMS && h_now_ms() - sent_at < 15000) {
        h_sleep_ms(100);
        now = rooms_present();
    }
    printf("every room's presence back %lld ms after the first send\n",
           (long long)(h_now_ms() - sent_at));
    if (now < ROOMS)
        fail_msg("%lld of %d rooms' presence back 15 s after the first send", now, ROOMS);
    cf_bytes_free(&out);
    bl_reader_free(&rd);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_server_back_gets_its_presence_back_paced),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
