/* Unit tests for broker/requests: what a join's late answer does to the
 * presence record when the same connection has left and joined again
 * meanwhile; how many requests may wait for Redis; which server's bridge
 * each request asks for.
 *
 * A real Redis answers one link's join, leave and join in order, and cannot
 * be made to refuse the first join and accept the second: so the calls to
 * Redis (store_join, store_leave, store_history, store_send) and to the gateway link are replaced
 * at link time (-Wl,--wrap), and the test answers the joins itself, in the order a broker reads
 * them. Everything between (requests.c, rooms.c, presence.c) is the real code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "broker_int.h"
#include "clock.h"
#include "presence.h"

#define S(s) ((struct cf_str){(s), sizeof(s) - 1})

/* ---- the edges, recorded ------------------------------------------------- */

static struct {
    struct {
        store_joined_fn fn;
        void *ud;
    } joins[8];
    int njoins, nleaves;
    struct {
        enum cf_wire_type type;
        uint64_t q;
        char text[96]; /* a fail's */
    } sent[8];
    int nsent;
} g;

/* The stand-in for a gateway link, the link set and a Redis bridge: only
 * its address is used. It is a page nothing may touch, so that a function of
 * theirs called without a wrapper here (the next one the request path
 * calls) faults at once, in every build, instead of writing past a stand-in
 * too small for the real struct. */
static void *stand_in;

int __wrap_store_join(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                      struct cf_str conn, struct cf_str user, bool has_since, uint64_t since,
                      struct cf_str epoch, uint32_t limit, uint32_t budget,
                      uint32_t max_members, store_joined_fn fn, void *ud);
int __wrap_store_join(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                      struct cf_str conn, struct cf_str user, bool has_since, uint64_t since,
                      struct cf_str epoch, uint32_t limit, uint32_t budget,
                      uint32_t max_members, store_joined_fn fn, void *ud)
{
    (void)rb, (void)lim, (void)room, (void)conn, (void)user, (void)has_since, (void)since;
    (void)epoch, (void)limit, (void)budget, (void)max_members;
    assert_true(g.njoins < 8);
    g.joins[g.njoins].fn = fn;
    g.joins[g.njoins++].ud = ud;
    return 0;
}

/* History pages are held here, unanswered, as by a Redis that takes
 * commands and does not answer yet */
static struct {
    store_page_fn fn;
    void *ud;
} * pages;
static size_t npages, pages_cap;

int __wrap_store_history(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                         bool has_before, uint64_t before, uint32_t limit, uint32_t budget,
                         store_page_fn fn, void *ud);
int __wrap_store_history(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                         bool has_before, uint64_t before, uint32_t limit, uint32_t budget,
                         store_page_fn fn, void *ud)
{
    (void)rb, (void)lim, (void)room, (void)has_before, (void)before, (void)limit, (void)budget;
    if (npages == pages_cap) {
        pages_cap = pages_cap ? pages_cap * 2 : 1024;
        pages = realloc(pages, pages_cap * sizeof *pages);
        assert_non_null(pages);
    }
    pages[npages].fn = fn;
    pages[npages++].ud = ud;
    return 0;
}

static int leave_rc; /* what leaves are answered */

int __wrap_store_leave(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                       struct cf_str conn);
int __wrap_store_leave(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                       struct cf_str conn)
{
    (void)rb, (void)lim, (void)room, (void)conn;
    g.nleaves++;
    return leave_rc;
}

/* Sends are answered at once, as stored, each with the bridge it went to
 * recorded below */
int __wrap_store_send(struct rbridge *rb, const struct store_limits *lim,
                      const struct cf_wire_msg *m, struct cf_str cid, store_sent_fn fn, void *ud);
int __wrap_store_send(struct rbridge *rb, const struct store_limits *lim,
                      const struct cf_wire_msg *m, struct cf_str cid, store_sent_fn fn, void *ud)
{
    (void)rb, (void)lim, (void)m, (void)cid;
    struct store_sent ok = {.id = 1, .ts = 1};
    fn(ud, 0, &ok);
    return 0;
}

static unsigned hashed; /* rooms hashed to their server (below) */

struct rbridge *__wrap_rset_for(struct rset *rs, const char *name, size_t len);
struct rbridge *__wrap_rset_for(struct rset *rs, const char *name, size_t len)
{
    (void)rs, (void)name, (void)len;
    hashed++;                          /* the real one hashes the room */
    return (struct rbridge *)stand_in; /* not NULL: "connected" */
}

/* The servers' bridges by index; which index each request asked for */
static uint32_t bridge_asked[2];

struct rbridge *__wrap_rset_bridge(struct rset *rs, uint32_t server);
struct rbridge *__wrap_rset_bridge(struct rset *rs, uint32_t server)
{
    (void)rs;
    assert_true(server < 2);
    bridge_asked[server]++;
    return (struct rbridge *)stand_in;
}

/* Two Redis servers: rooms "lobby" on 0, any other on 1 */
uint32_t __wrap_rset_server_of(const struct rset *rs, const char *name, size_t len);
uint32_t __wrap_rset_server_of(const struct rset *rs, const char *name, size_t len)
{
    (void)rs;
    hashed++;
    return len == 5 && memcmp(name, "lobby", 5) == 0 ? 0 : 1;
}

struct gwlink *__wrap_gwlinks_find(struct gwlinks *links, uint64_t id);
struct gwlink *__wrap_gwlinks_find(struct gwlinks *links, uint64_t id)
{
    (void)links;
    return id == 1 ? (struct gwlink *)stand_in : NULL;
}

uint64_t __wrap_gwlink_id(const struct gwlink *l);
uint64_t __wrap_gwlink_id(const struct gwlink *l)
{
    (void)l;
    return 1;
}

int __wrap_gwlink_send(struct gwlink *l, const struct cf_wire_msg *m);
int __wrap_gwlink_send(struct gwlink *l, const struct cf_wire_msg *m)
{
    (void)l;
    if (g.nsent < 8) { /* the first 8, counted all */
        g.sent[g.nsent].type = m->type;
        g.sent[g.nsent].q = m->q;
        snprintf(g.sent[g.nsent].text, sizeof g.sent[g.nsent].text, "%.*s", (int)m->text.len,
                 m->text.p ? m->text.p : "");
    }
    g.nsent++;
    return 0;
}

/* ---- a broker of one shard, with no rooms subscribed ---------------------- */

static struct broker *b;

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    static struct broker bs;
    static const struct cf_config cfg = {.max_link_queue_bytes = 1 << 20};
    bs = (struct broker){.cfg = &cfg, .shard = 0, .shards = 1,
                         .links = (struct gwlinks *)stand_in,
                         .pendings = CF_FREELIST_INIT(sizeof(struct pending), 4)};
    b = &bs;
    b->dec = cf_wire_decoder_new();
    b->rooms = rooms_new(&requests_room_ops, b, 1 << 20);
    b->presence = presence_new();
    b->leaves = leaves_new(0); /* no server down */
    return b->dec && b->rooms && b->presence && b->leaves ? 0 : -1;
}

/* No server counts as down any more: the broker has no call for a return
 * (a leave stops waiting OWED_HOLD_MS after the fall), so its leaves start
 * afresh. */
static void all_servers_up(void)
{
    leaves_free(b->leaves);
    b->leaves = leaves_new(0);
    assert_non_null(b->leaves);
}

static int teardown(void **state)
{
    (void)state;
    cf_wire_decoder_free(b->dec);
    rooms_free(b->rooms);
    presence_free(b->presence);
    leaves_free(b->leaves);
    cf_fl_drain(&b->pendings);
    return 0;
}

/* One presence change of connection c1 in room lobby, as the gateway sends
 * it. No local link is in the room, so it runs at once. */
static void frame(enum cf_wire_type type, uint64_t q)
{
    struct cf_wire_msg m = {.type = type, .q = q, .room = S("lobby"), .conn = S("gw1:7"),
                            .user = S("alice"), .budget = 65536};
    static const unsigned char payload[1];
    requests_on_frame(b, (struct gwlink *)stand_in, &m, payload, sizeof payload);
}

static void answer(int i, int err)
{
    struct store_joined ok = {.epoch = S("0123456789abcdef"), .last_id = 0, .count = 1};
    g.joins[i].fn(g.joins[i].ud, err, err < 0 ? NULL : &ok);
}

/* ---- tests ---------------------------------------------------------------- */

/* Join (J1), leave, join again (J2), all read before J1's answer: J1 is
 * refused, J2 accepted. J2's entry must stay, or that member stays in Redis
 * with no broker refreshing it, and is shown leaving at PRESENCE_TTL while
 * still connected. */
static void check_late_failure(int err)
{
    frame(CF_WIRE_SUB, 1);
    frame(CF_WIRE_UNSUB, 0);
    frame(CF_WIRE_SUB, 2);
    assert_int_equal(g.njoins, 2);
    assert_int_equal(g.nleaves, 1);
    assert_int_equal(presence_count(b->presence), 1);

    answer(0, err);
    assert_int_equal(g.nsent, 1);
    assert_int_equal(g.sent[0].type, CF_WIRE_FAIL);
    assert_int_equal(g.sent[0].q, 1);
    assert_int_equal(presence_count(b->presence), 1); /* J2's */
    assert_int_equal(g.nleaves, 1);                  /* no leave announced for J2 */

    answer(1, 0);
    assert_int_equal(g.nsent, 2);
    assert_int_equal(g.sent[1].type, CF_WIRE_SUBBED);
    assert_int_equal(g.sent[1].q, 2);
    assert_int_equal(presence_count(b->presence), 1);

    /* and the member's own leave still removes it */
    frame(CF_WIRE_UNSUB, 0);
    assert_int_equal(presence_count(b->presence), 0);
    assert_int_equal(g.nleaves, 2);
}

static void test_a_refused_join_keeps_the_newer_one(void **state)
{
    (void)state;
    check_late_failure(-EAGAIN); /* Redis busy or out of memory */
}

static void test_a_dropped_join_keeps_the_newer_one(void **state)
{
    (void)state;
    check_late_failure(-ECONNRESET); /* its leave is announced only for its own entry */
}

/* The join that made the entry, refused, still removes it (no member). */
static void test_a_refused_join_is_no_member(void **state)
{
    (void)state;
    frame(CF_WIRE_SUB, 1);
    assert_int_equal(presence_count(b->presence), 1);
    answer(0, -EAGAIN);
    assert_int_equal(presence_count(b->presence), 0);
    assert_int_equal(g.nleaves, 0);
}

/* A join that took an existing entry over (a re-sync) leaves it when
 * refused: its member waits to re-sync again. */
static void test_a_refused_resync_keeps_the_entry(void **state)
{
    (void)state;
    frame(CF_WIRE_SUB, 1);
    answer(0, 0);
    frame(CF_WIRE_SUB, 2); /* the same connection registered again */
    answer(1, -EAGAIN);
    assert_int_equal(presence_count(b->presence), 1);
}

/* A join snapshot within its budget (a quarter of the client's queue): the
 * names take at most half, the newest messages what is left. A room of 100
 * names of 96 bytes used to go out whole, over a 16 KiB queue's budget. */
static void test_a_join_snapshot_fits_its_budget(void **state)
{
    (void)state;
    static char name[100][97], text[50][201];
    struct cf_str members[100], msgs[50];
    for (int i = 0; i < 100; i++) {
        memset(name[i], 'n', 96);
        members[i] = (struct cf_str){name[i], 96};
    }
    for (int i = 0; i < 50; i++) {
        memset(text[i], 'm', 200);
        msgs[i] = (struct cf_str){text[i], 200};
    }
    uint32_t nm, first;
    requests_fit_join(members, 100, msgs, 50, 4096, &nm, &first); /* a 16 KiB queue */
    assert_int_equal(nm, 2048 / 104);
    uint64_t used = nm * 104u + (50u - first) * 208u;
    assert_true(used <= 4096);
    assert_int_equal(50 - first, (4096 - nm * 104) / 208);       /* as many as fit, newest */
    requests_fit_join(members, 3, msgs, 50, 65536, &nm, &first); /* few names: all */
    assert_int_equal(nm, 3);
    assert_int_equal(first, 0);
    /* the newest message goes even alone over what the names left: a
     * snapshot or a page must not come empty while the history has it */
    requests_fit_join(members, 0, msgs, 50, 207, &nm, &first);
    assert_int_equal(nm, 0);
    assert_int_equal(first, 49);
    requests_fit_join(members, 1, msgs, 50, 300, &nm, &first); /* 196 left */
    assert_int_equal(nm, 1);
    assert_int_equal(first, 49);
    requests_fit_join(members, 0, msgs, 0, 0, &nm, &first); /* nothing at all */
    assert_int_equal(nm, 0);
    assert_int_equal(first, 0);
}

static void hist_in(uint64_t q, struct cf_str room)
{
    struct cf_wire_msg m = {
        .type = CF_WIRE_HIST, .q = q, .room = room, .limit = 50, .budget = 65536};
    static const unsigned char payload[1];
    requests_on_frame(b, (struct gwlink *)stand_in, &m, payload, sizeof payload);
}

static void hist(uint64_t q)
{
    hist_in(q, S("lobby"));
}

/* The requests waiting for a Redis server are bounded: one (or a proxy)
 * that takes commands and answers late let their records grow for the
 * whole reply timeout, outside every queue's bytes. Past the bound a
 * request for its rooms is refused as by a full queue, and taken again
 * once one is answered; another server's rooms are not held to it. */
static void test_requests_awaiting_redis_are_bounded(void **state)
{
    (void)state;
    npages = 0;
    for (uint64_t q = 1; q <= BROKER_MAX_AWAITING; q++)
        hist(q);
    assert_int_equal(npages, BROKER_MAX_AWAITING);
    assert_int_equal(g.nsent, 0);
    unsigned h0 = hashed;
    hist(BROKER_MAX_AWAITING + 1);
    assert_int_equal(hashed, h0 + 1); /* the refusal too hashes once */
    assert_int_equal(npages, BROKER_MAX_AWAITING);
    assert_int_equal(g.nsent, 1);
    assert_int_equal(g.sent[0].type, CF_WIRE_FAIL);
    assert_int_equal(g.sent[0].q, BROKER_MAX_AWAITING + 1);
    assert_int_equal(b->failed[BM_FAIL_QUEUE_FULL], 1);
    /* it says why: not the queue, which is empty */
    assert_string_equal(g.sent[0].text,
                        "too many requests wait for the room's Redis server to answer");
    /* an error from below that is none of the broker's own is no full queue */
    assert_int_equal(bm_fail_of(-ECANCELED), BM_FAIL_INTERNAL);
    assert_int_equal(bm_fail_of(BM_ERR_AWAITING), BM_FAIL_QUEUE_FULL);
    hist_in(BROKER_MAX_AWAITING + 2, S("elsewhere")); /* on the other server */
    assert_int_equal(npages, BROKER_MAX_AWAITING + 1);
    assert_int_equal(g.nsent, 1);
    pages[0].fn(pages[0].ud, -ECONNRESET, NULL); /* one answered */
    assert_int_equal(g.nsent, 2);
    hist(BROKER_MAX_AWAITING + 3);
    assert_int_equal(npages, BROKER_MAX_AWAITING + 2);
    assert_int_equal(g.nsent, 2);
    /* an -EINVAL from below is a failure like any other: answered and
     * counted (it was once taken for a misrouted frame, and not counted) */
    uint64_t internal0 = b->failed[BM_FAIL_INTERNAL];
    pages[1].fn(pages[1].ud, -EINVAL, NULL);
    assert_int_equal(g.nsent, 3);
    assert_int_equal(g.sent[2].type, CF_WIRE_FAIL);
    assert_int_equal(g.sent[2].q, 2);
    assert_string_equal(g.sent[2].text, "the broker failed");
    assert_int_equal(b->failed[BM_FAIL_INTERNAL], internal0 + 1);
    for (size_t i = 2; i < npages; i++)
        pages[i].fn(pages[i].ud, -ECONNRESET, NULL);
    assert_int_equal(b->awaiting[0], 0);
    assert_int_equal(b->awaiting[1], 0);
    free(pages);
    pages = NULL;
    npages = pages_cap = 0;
}

/* A request goes to its room's server's bridge, and its room is hashed to
 * that server once: with several servers a hash is an FNV pass over the name
 * and a jump hash, on every message. */
static void test_a_request_hashes_its_room_once(void **state)
{
    (void)state;
    npages = 0;
    hashed = 0;
    memset(bridge_asked, 0, sizeof bridge_asked);
    hist_in(1, S("lobby"));
    assert_int_equal(hashed, 1);
    assert_int_equal(bridge_asked[0], 1);
    assert_int_equal(bridge_asked[1], 0);
    hist_in(2, S("elsewhere"));
    assert_int_equal(hashed, 2);
    assert_int_equal(bridge_asked[1], 1);
    assert_int_equal(npages, 2);
    for (size_t i = 0; i < npages; i++)
        pages[i].fn(pages[i].ud, -ECONNRESET, NULL);
    assert_int_equal(g.nsent, 2); /* each answered once */

    /* a send, a legacy message and a join alike */
    static const unsigned char payload[1];
    const enum cf_wire_type types[] = {CF_WIRE_SEND, CF_WIRE_MSG, CF_WIRE_SUB};
    for (int i = 0; i < 3; i++) {
        struct cf_wire_msg m = {.type = types[i],
                                .q = 10 + (uint64_t)i,
                                .room = S("elsewhere"),
                                .conn = S("gw1:9"),
                                .user = S("carol"),
                                .from = S("carol"),
                                .text = S("hi"),
                                .budget = 65536};
        requests_on_frame(b, (struct gwlink *)stand_in, &m, payload, sizeof payload);
        assert_int_equal(hashed, 3 + (unsigned)i);
        assert_int_equal(bridge_asked[1], 2 + (unsigned)i);
    }
    assert_int_equal(g.njoins, 1);
    answer(0, 0);
    /* and the member's leave refused by its server, down (a leave then asks
     * whether to wait for that server): only another server went down just
     * now, so this one is not waited for, and the entry goes */
    uint64_t entries = presence_count(b->presence);
    leave_rc = -ENOTCONN;
    leaves_server_down(b, 0);
    struct cf_wire_msg leave = {.type = CF_WIRE_UNSUB, .room = S("elsewhere"), .conn = S("gw1:9")};
    requests_on_frame(b, (struct gwlink *)stand_in, &leave, payload, sizeof payload);
    assert_int_equal(g.nleaves, 1);
    assert_int_equal(hashed, 6);
    assert_int_equal(bridge_asked[1], 5);
    assert_int_equal(presence_count(b->presence), entries - 1);
    /* its own server went down just now: the leave is owed, the entry kept */
    struct cf_wire_msg join = {.type = CF_WIRE_SUB,
                               .q = 20,
                               .room = S("elsewhere"),
                               .conn = S("gw1:9"),
                               .user = S("carol"),
                               .budget = 65536};
    requests_on_frame(b, (struct gwlink *)stand_in, &join, payload, sizeof payload);
    answer(1, 0);
    all_servers_up();
    leaves_server_down(b, 1);
    requests_on_frame(b, (struct gwlink *)stand_in, &leave, payload, sizeof payload);
    assert_int_equal(g.nleaves, 2);
    assert_int_equal(presence_count(b->presence), entries);
    all_servers_up();
    leave_rc = 0;
    free(pages);
    pages = NULL;
    npages = pages_cap = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_refused_join_keeps_the_newer_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_dropped_join_keeps_the_newer_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_join_is_no_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_resync_keeps_the_entry, setup, teardown),
        cmocka_unit_test(test_a_join_snapshot_fits_its_budget),
        cmocka_unit_test_setup_teardown(test_requests_awaiting_redis_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_request_hashes_its_room_once, setup, teardown),
    };
    stand_in = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stand_in == MAP_FAILED)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
