/* rooms_fake: what test_rooms.c and test_rooms_requests.c share: a fake
 * rooms_ops table that records every call, four gateway links, per-test
 * setup and teardown, and short helpers that drive broker/rooms. Include
 * after cmocka.h. */
#ifndef TEST_ROOMS_FAKE_H
#define TEST_ROOMS_FAKE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "rel.h"
#include "rooms.h"
#include "validate.h"

/* ---- the fake ------------------------------------------------------------ */

enum { MAX_CALLS = 1024 };

struct call {
    char kind; /* 'S'ubscribe, 'U'nsubscribe, 'R'un, 'D'eliver */
    char name[CF_ROOM_MAX + 1];
    void *link;
    uint64_t link_id;
    char payload[64];
    size_t plen;
    bool ctx; /* 'R': run at once with the submitter's context (not held) */
};

struct fake {
    struct call calls[MAX_CALLS];
    int n;
    int sub_rc, unsub_rc;
};

static struct fake g_fake;

static struct call *record(void *ud, char kind, const char *name, size_t len)
{
    assert_ptr_equal(ud, &g_fake);
    assert_true(g_fake.n < MAX_CALLS);
    struct call *c = &g_fake.calls[g_fake.n++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    if (name) {
        assert_true(len <= CF_ROOM_MAX);
        memcpy(c->name, name, len);
    }
    return c;
}

static int fake_subscribe(void *ud, const char *name, size_t len)
{
    record(ud, 'S', name, len);
    return g_fake.sub_rc;
}

static int fake_unsubscribe(void *ud, const char *name, size_t len)
{
    record(ud, 'U', name, len);
    return g_fake.unsub_rc;
}

static void fake_run(void *ud, uint64_t link_id, const void *payload, size_t plen, const void *ctx)
{
    /* the caller's context comes along only when the request was not held */
    if (ctx)
        assert_ptr_equal(ctx, payload);
    struct call *c = record(ud, 'R', NULL, 0);
    c->link_id = link_id;
    c->ctx = ctx != NULL;
    assert_true(plen < sizeof c->payload);
    memcpy(c->payload, payload, plen);
    c->plen = plen;
}

static bool fake_deliver(void *ud, void *link, const void *payload, size_t plen)
{
    struct call *c = record(ud, 'D', NULL, 0);
    c->link = link;
    assert_true(plen < sizeof c->payload);
    memcpy(c->payload, payload, plen);
    c->plen = plen;
    return true;
}

static const struct rooms_ops fake_ops = {
    .subscribe = fake_subscribe,
    .unsubscribe = fake_unsubscribe,
    .run = fake_run,
    .deliver = fake_deliver,
};

/* The end is not the first member, as in broker/links.c: a link and its end
 * are different pointers, so mixing them up fails. */
struct link {
    int id;
    struct cf_rel_end end;
};

static struct rooms *g_rooms;
static struct link g_links[4];

static int setup(void **state)
{
    (void)state;
    memset(&g_fake, 0, sizeof g_fake);
    memset(g_links, 0, sizeof g_links);
    for (int i = 0; i < 4; i++)
        g_links[i].id = i;
    g_rooms = rooms_new(&fake_ops, &g_fake, 1u << 20);
    return g_rooms ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        rooms_drop_link(g_rooms, &g_links[i].end);
    rooms_free(g_rooms);
    g_rooms = NULL;
    for (int i = 0; i < 4; i++)
        cf_rel_end_free(&g_links[i].end);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

/* The link id the gateway link at index `link` submits requests under. */
#define LID(link) (100u + (uint64_t)(link))

static inline int join(int link, const char *room)
{
    return rooms_join(g_rooms, &g_links[link], &g_links[link].end, room, strlen(room));
}

static inline void leave(int link, const char *room)
{
    rooms_leave(g_rooms, &g_links[link], &g_links[link].end, room, strlen(room));
}

/* A request from the gateway link with id link_id for room. */
static inline int submit_from(uint64_t link_id, const char *room, const char *payload)
{
    return rooms_submit(g_rooms, room, strlen(room), link_id, 0, payload, strlen(payload),
                        payload);
}

/* A request whose link id does not matter to the test. */
static inline int submit(const char *room, const char *payload)
{
    return submit_from(LID(0), room, payload);
}

static inline void confirm(const char *room)
{
    rooms_on_confirm(g_rooms, room, strlen(room));
}

static inline void message(const char *room, const char *payload)
{
    rooms_on_message(g_rooms, room, strlen(room), payload, strlen(payload));
}

static inline struct rooms_stats stats(void)
{
    struct rooms_stats s;
    memset(&s, 0x5a, sizeof s);
    rooms_stats(g_rooms, &s);
    return s;
}

/* Checks call i: kind, room (or NULL) and payload (or NULL). */
static inline void assert_call(int i, char kind, const char *room, const char *payload)
{
    assert_true(i < g_fake.n);
    const struct call *c = &g_fake.calls[i];
    if (c->kind != kind)
        fail_msg("call %d is '%c', expected '%c'", i, c->kind, kind);
    if (room)
        assert_string_equal(c->name, room);
    if (payload) {
        assert_int_equal(c->plen, strlen(payload));
        assert_memory_equal(c->payload, payload, c->plen);
    }
}

/* Checks that call i runs payload for link_id. */
static inline void assert_run(int i, uint64_t link_id, const char *payload)
{
    assert_call(i, 'R', NULL, payload);
    assert_int_equal(g_fake.calls[i].link_id, link_id);
}

static inline int count_kind(char kind)
{
    int n = 0;
    for (int i = 0; i < g_fake.n; i++)
        n += g_fake.calls[i].kind == kind;
    return n;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

#endif
