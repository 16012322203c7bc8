/* A Redis server back (here restarted empty: every presence entry lost)
 * gets its rooms' presence back from a catch-up walk of 10,000 rooms a
 * second (broker.c, CATCH_UP_ROOMS_PER_S), not all at once: the refreshes
 * of every room used to be queued ahead of that server's first sends,
 * seconds of them at 100 k rooms. Nor does it wait for the heartbeat's
 * round (PRESENCE_TTL/3: 30 s here). The "gateway" is the test on the
 * broker's socket (blink.h), registering a connection in ROOMS rooms.
 * With two servers, the walk refreshes the rooms of the one back there. */
#include "common.h"
#include "blink.h"
#include "servers.h"

#include <hiredis/hiredis.h>

#include "bytes.h"
#include "clock.h"
#include "ring.h"

enum { ROOMS = 20000, BATCH = 500, TWO = 2, ROOMS_OF_TWO = 2000 };

static struct h_redis redis[TWO];
static struct h_node node;
static char list[400];
static int nservers;

static int setup(void **state)
{
    (void)state;
    static const char *const env[] = {"PRESENCE_TTL=90", NULL};
    return sv_up(redis, nservers, list, sizeof list, &node, 1, env);
}

static int teardown(void **state)
{
    (void)state;
    return sv_down(redis, nservers, &node);
}

/* How many rooms have their presence on server s; -1 while it is down. */
static long long rooms_present(int s)
{
    redisContext *rc = redisConnectUnix(redis[s].sock);
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

/* The test as a gateway on the broker's socket, its frames encoded in out. */
struct ghost {
    int fd;
    struct bl_reader rd;
    struct cf_bytes out;
};

static void ghost_open(struct ghost *g)
{
    g->fd = bl_connect(node.run_dir, 0);
    bl_hello(g->fd, 0, 1);
    bl_reader_init(&g->rd, g->fd);
    cf_bytes_init(&g->out, 8 << 20);
}

static void ghost_close(struct ghost *g)
{
    cf_bytes_free(&g->out);
    bl_reader_free(&g->rd);
    close(g->fd);
}

/* Registers the ghost's connection in rooms prefix0 .. prefix(n-1), in
 * batches: the answers must be read. */
static void join_rooms(struct ghost *g, const char *prefix, int n)
{
    struct cf_bytes *out = &g->out;
    char room[32];
    for (int i = 0; i < n; i += BATCH) {
        for (int k = i; k < i + BATCH && k < n; k++) {
            snprintf(room, sizeof room, "%s%d", prefix, k);
            struct cf_wire_msg m = {.type = CF_WIRE_SUB,
                                    .q = (uint64_t)k + 1,
                                    .room = {room, (uint32_t)strlen(room)},
                                    .user = {"ghost", 5},
                                    .conn = {"c-ghost", 7},
                                    .budget = 4096};
            assert_int_equal(cf_wire_encode(out, &m), 0);
        }
        bl_send_bytes(g->fd, cf_bytes_data(out), cf_bytes_len(out));
        cf_bytes_consume(out, cf_bytes_len(out));
        /* in any order: each server answers its own rooms' */
        int want = (i + BATCH < n ? i + BATCH : n) - i;
        struct cf_wire_msg m;
        int64_t deadline = h_now_ms() + 30000;
        while (want > 0 && bl_reader_next(&g->rd, &m, deadline))
            if (m.q > (uint64_t)i && m.q <= (uint64_t)(i + BATCH) &&
                (m.type == CF_WIRE_SUBBED || m.type == CF_WIRE_FAIL)) {
                assert_int_equal(m.type, CF_WIRE_SUBBED);
                want--;
            }
        if (want > 0)
            fail_msg("%d joins of rooms %s%d on unanswered", want, prefix, i);
    }
}

static void test_a_server_back_gets_its_presence_back_paced(void **state)
{
    (void)state;
    struct ghost g;
    ghost_open(&g);
    int64_t t0 = h_now_ms();
    join_rooms(&g, "cu-", ROOMS);
    assert_int_equal(rooms_present(0), ROOMS);
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
        assert_int_equal(cf_wire_encode(&g.out, &m), 0);
        bl_send_bytes(g.fd, cf_bytes_data(&g.out), cf_bytes_len(&g.out));
        cf_bytes_consume(&g.out, cf_bytes_len(&g.out));
        if (answer_to(&g.rd, q, h_now_ms() + 20000) == CF_WIRE_SENT) {
            sent_at = h_now_ms();
            at_first_send = rooms_present(0);
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
        now = rooms_present(0);
    }
    printf("every room's presence back %lld ms after the first send\n",
           (long long)(h_now_ms() - sent_at));
    if (now < ROOMS)
        fail_msg("%lld of %d rooms' presence back 15 s after the first send", now, ROOMS);
    ghost_close(&g);
}

/* Two servers, the second restarted empty: the catch-up walk refreshes its
 * rooms there (the heartbeat's round would take 30 s), and none of them on
 * the first. */
static void test_the_walk_refreshes_each_room_on_its_server(void **state)
{
    (void)state;
    struct ghost g;
    ghost_open(&g);
    join_rooms(&g, "cs-", ROOMS_OF_TWO);
    long long on[TWO] = {0, 0};
    for (int k = 0; k < ROOMS_OF_TWO; k++) {
        char room[32];
        snprintf(room, sizeof room, "cs-%d", k);
        on[cf_ring_server_of(room, strlen(room), TWO)]++;
    }
    assert_true(on[0] > 0 && on[1] > 0);
    assert_int_equal(rooms_present(0), on[0]);
    assert_int_equal(rooms_present(1), on[1]);

    char dir[300];
    snprintf(dir, sizeof dir, "%s/r1", h_tmpdir());
    h_redis_stop(&redis[1]);
    assert_int_equal(h_redis_restart(&redis[1], dir), 0);
    int64_t back = h_now_ms();
    long long now = 0;
    while ((now = rooms_present(1)) < on[1] && h_now_ms() - back < 10000)
        h_sleep_ms(100);
    if (now < on[1])
        fail_msg("%lld of the %lld rooms of the server back have their presence there 10 s "
                 "after its restart",
                 now, on[1]);
    assert_int_equal(rooms_present(0), on[0]); /* none of its rooms went to the other */
    ghost_close(&g);
}

int main(void)
{
    const struct CMUnitTest one[] = {
        cmocka_unit_test(test_a_server_back_gets_its_presence_back_paced),
    };
    const struct CMUnitTest two[] = {
        cmocka_unit_test(test_the_walk_refreshes_each_room_on_its_server),
    };
    nservers = 1;
    int failed = cmocka_run_group_tests_name("one server", one, setup, teardown);
    nservers = TWO;
    failed += cmocka_run_group_tests_name("two servers", two, setup, teardown);
    return h_finish(failed);
}
