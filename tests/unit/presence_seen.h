/* What the unit tests of broker/presence (test_presence.c,
 * test_presence_drop.c) share: a fixture, and callbacks that record what
 * the module handed them. Included once per test executable. */
#ifndef TESTS_UNIT_PRESENCE_SEEN_H
#define TESTS_UNIT_PRESENCE_SEEN_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failmalloc.h"
#include "presence.h"
#include "validate.h"
#include "wire.h"

static inline struct cf_str S(const char *s) {
    return (struct cf_str){s, (uint32_t)strlen(s)};
}

static inline int
setup(void **state)
{
    *state = presence_new();
    return *state ? 0 : -1;
}

static inline int teardown(void **state)
{
    presence_free(*state);
    return 0;
}

/* ---- what the callbacks saw -------------------------------------------------- */

#define MAX_SEEN 512

struct entry_seen {
    char room[CF_ROOM_MAX + 1];
    char conn[CF_WIRE_MAX_TOKEN + 1];
    char user[CF_USERNAME_BYTES_MAX + 1];
};

struct group_seen {
    char room[CF_ROOM_MAX + 1];
    uint32_t n;
    struct entry_seen e[64];
};

struct seen {
    struct entry_seen e[MAX_SEEN];
    size_t n;
    struct group_seen g[16];
    size_t ng;
    struct presence *p;
};

static inline void copy(char *dst, size_t cap, struct cf_str s)
{
    assert_true(s.len < cap);
    memcpy(dst, s.p, s.len);
    dst[s.len] = '\0';
}

static inline enum presence_drop on_drop(void *ud, struct cf_str room, struct cf_str conn)
{
    struct seen *x = ud;
    assert_true(x->n < MAX_SEEN);
    copy(x->e[x->n].room, sizeof x->e[0].room, room);
    copy(x->e[x->n].conn, sizeof x->e[0].conn, conn);
    x->n++;
    return PRESENCE_DROP;
}

/* Takes `refuse` calls without keeping them (a full queue), then as on_drop. */
struct picky {
    struct seen *x;
    int refuse;
};

static inline enum presence_drop on_drop_picky(void *ud, struct cf_str room, struct cf_str conn)
{
    struct picky *k = ud;
    if (k->refuse > 0) {
        k->refuse--;
        return PRESENCE_STOP;
    }
    return on_drop(k->x, room, conn);
}

static inline void on_room(void *ud, struct cf_str room, const struct cf_str *conns,
                           const struct cf_str *users, uint32_t n)
{
    struct seen *x = ud;
    assert_true(x->ng < 16);
    assert_true(n >= 1);
    assert_true(n <= 64);
    struct group_seen *g = &x->g[x->ng++];
    copy(g->room, sizeof g->room, room);
    for (size_t i = 0; i + 1 < x->ng; i++)
        assert_string_not_equal(x->g[i].room, g->room); /* once per room */
    g->n = n;
    for (uint32_t i = 0; i < n; i++) {
        copy(g->e[i].conn, sizeof g->e[i].conn, conns[i]);
        copy(g->e[i].user, sizeof g->e[i].user, users[i]);
    }
}

static inline bool dropped(const struct seen *x, const char *room, const char *conn)
{
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->e[i].room, room) == 0 && strcmp(x->e[i].conn, conn) == 0)
            return true;
    return false;
}

static inline const struct group_seen *group(const struct seen *x, const char *room)
{
    for (size_t i = 0; i < x->ng; i++)
        if (strcmp(x->g[i].room, room) == 0)
            return &x->g[i];
    return NULL;
}

/* The user recorded for conn in a group, or NULL. */
static inline const char *user_of(const struct group_seen *g, const char *conn)
{
    for (uint32_t i = 0; g && i < g->n; i++)
        if (strcmp(g->e[i].conn, conn) == 0)
            return g->e[i].user;
    return NULL;
}

static inline void snapshot(struct presence *p, struct seen *x)
{
    memset(x, 0, sizeof *x);
    /* every room once, as a server back has them refreshed */
    presence_catch_up_start(p);
    assert_true(presence_catch_up_next(p, UINT32_MAX, UINT32_MAX, NULL, on_room, x));
}

/* A presence_room_fn that looks at nothing. */
static inline void no_room(void *ud, struct cf_str room, const struct cf_str *conns,
                           const struct cf_str *users, uint32_t n)
{
    (void)ud, (void)room, (void)conns, (void)users, (void)n;
}

#endif
