/* presence: see presence.h. */
#include "presence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "validate.h"

struct group; /* the entries of one room */

/* One per member and connection: small, there is one per idle client. */
struct entry {
    uint64_t link_id;
    uint64_t reg; /* the registration that made or last took it */
    struct group *g;
    uint32_t gi;      /* index in g->v */
    uint8_t roomlen;  /* <= CF_ROOM_MAX */
    uint8_t userlen;  /* <= CF_USERNAME_BYTES_MAX */
    uint16_t connlen; /* <= CF_WIRE_MAX_TOKEN */
    char key[];       /* room '\0' conn (the map's key), then user '\0' */
};

_Static_assert(CF_ROOM_MAX <= UINT8_MAX && CF_USERNAME_BYTES_MAX <= UINT8_MAX &&
                   CF_WIRE_MAX_TOKEN <= UINT16_MAX,
               "presence entry lengths");

static size_t keylen(const struct entry *e)
{
    return (size_t)e->roomlen + 1 + e->connlen;
}

static const char *user_of(const struct entry *e)
{
    return e->key + keylen(e) + 1;
}

struct group {
    char name[CF_ROOM_MAX + 1];
    uint32_t len;
    struct entry **v;
    uint32_t n, cap;
    struct group *prev, *next; /* the refresh ring */
};

/* How many entries a link owns: a closed link that owns none has nothing
 * to wait for (leaves.c), and dropping a link's entries can stop at its
 * last instead of walking every room. */
struct lcount {
    char key[sizeof(uint64_t)]; /* the link id's bytes */
    uint64_t n;                 /* > 0: a link that owns none has no record */
};

struct presence {
    struct cf_map *entries; /* room '\0' conn -> entry */
    struct cf_map *groups;  /* room -> group */
    struct cf_map *links;   /* link id -> lcount */
    /* Every group in a ring; `cursor` is the next to refresh. A new group
     * goes in just before it, so it comes last in the current round: its
     * entries were just written. */
    struct group *cursor;
    uint64_t regs; /* the last registration number given */
    /* Where the last presence_drop_link that stopped short stopped, and
     * for which link (0: none): where the next call for it goes on. */
    struct group *drop_at;
    uint64_t drop_link;
    /* The catch-up walk (presence_catch_up_*): its next room, and how many
     * it has still to visit (0: none under way). */
    struct group *catch_at;
    uint64_t catch_left;
};

static void ring_add(struct presence *p, struct group *g)
{
    /* A room made during a catch-up walk may go where the walk has still
     * to go (before the round's cursor, which may be ahead of the walk):
     * counted, so that the walk still reaches every room it began with. */
    if (p->catch_left)
        p->catch_left++;
    if (!p->cursor) {
        g->prev = g->next = g;
        p->cursor = g;
        return;
    }
    g->next = p->cursor;
    g->prev = p->cursor->prev;
    g->prev->next = g;
    p->cursor->prev = g;
}

static void ring_del(struct presence *p, struct group *g)
{
    if (g->next == g) {
        p->cursor = p->drop_at = p->catch_at = NULL;
        p->catch_left = 0;
        return;
    }
    g->prev->next = g->next;
    g->next->prev = g->prev;
    if (p->cursor == g)
        p->cursor = g->next;
    if (p->drop_at == g)
        p->drop_at = g->next;
    if (p->catch_at == g) {
        p->catch_at = g->next;
        p->catch_left -= p->catch_left > 0; /* one fewer to visit */
    }
}

static struct lcount *lc_get(const struct presence *p, uint64_t link_id)
{
    char key[sizeof link_id];
    memcpy(key, &link_id, sizeof key);
    return cf_map_get(p->links, key, sizeof key);
}

/* 0 or -ENOMEM (nothing changed). */
static int lc_inc(struct presence *p, uint64_t link_id)
{
    struct lcount *c = lc_get(p, link_id);
    if (!c) {
        if (!(c = malloc(sizeof *c)))
            return -ENOMEM;
        memcpy(c->key, &link_id, sizeof c->key);
        c->n = 0;
        if (cf_map_put(p->links, c->key, sizeof c->key, c) < 0) {
            free(c);
            return -ENOMEM;
        }
    }
    c->n++;
    return 0;
}

static void lc_dec(struct presence *p, uint64_t link_id)
{
    struct lcount *c = lc_get(p, link_id);
    if (c && --c->n == 0) {
        cf_map_del(p->links, c->key, sizeof c->key);
        free(c);
    }
}

static void drop_group(struct presence *p, struct group *g)
{
    cf_map_del(p->groups, g->name, g->len);
    ring_del(p, g);
    free(g->v);
    free(g);
}

struct presence *presence_new(void)
{
    struct presence *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->entries = cf_map_new();
    p->groups = cf_map_new();
    p->links = cf_map_new();
    if (!p->entries || !p->groups || !p->links) {
        presence_free(p);
        return NULL;
    }
    return p;
}

static void *all_values(struct cf_map *m, size_t *n)
{
    *n = cf_map_count(m);
    void **v = malloc((*n ? *n : 1) * sizeof *v);
    size_t it = 0, k = 0;
    void *x;
    while (v && (x = cf_map_next(m, &it)))
        v[k++] = x;
    return v;
}

void presence_free(struct presence *p)
{
    if (!p)
        return;
    size_t n;
    if (p->entries) {
        void **v = all_values(p->entries, &n);
        for (size_t i = 0; v && i < n; i++)
            free(v[i]);
        free(v);
    }
    if (p->groups) {
        struct group **v = all_values(p->groups, &n);
        for (size_t i = 0; v && i < n; i++) {
            free(v[i]->v);
            free(v[i]);
        }
        free(v);
    }
    if (p->links) {
        void **v = all_values(p->links, &n);
        for (size_t i = 0; v && i < n; i++)
            free(v[i]);
        free(v);
    }
    cf_map_free(p->entries);
    cf_map_free(p->groups);
    cf_map_free(p->links);
    free(p);
}

static size_t make_key(char *out, struct cf_str room, struct cf_str conn)
{
    memcpy(out, room.p, room.len);
    out[room.len] = '\0';
    memcpy(out + room.len + 1, conn.p, conn.len);
    return room.len + 1 + conn.len;
}

/* A connection's newest registration owns its entry: link ids only grow, so
 * a request read late from a link that has since been replaced (its
 * gateway re-linked and re-synced) does not take the entry back, to be
 * dropped with that link while the connection lives on. One from the
 * owner's own link (a re-sync after a refusal) is newer than the one that
 * made the entry, so it gets a number of its own. So does a presence-only
 * registration (q = 0, a broker ready again) that comes while the join that
 * made the entry is still in flight: that join's late failure then leaves
 * the entry, and the gateway's leave for the refused join removes it (while
 * it drains it sends none, and the entry ends with its link's grace).
 * Returns the number given (0: none, also when the new owner's count could
 * not be allocated: the entry stays its old link's). */
static uint64_t take_over(struct presence *p, struct entry *e, uint64_t link_id)
{
    if (link_id < e->link_id)
        return 0;
    if (link_id != e->link_id) {
        if (lc_inc(p, link_id) < 0)
            return 0;
        lc_dec(p, e->link_id);
        e->link_id = link_id;
    }
    return e->reg = ++p->regs;
}

int presence_add(struct presence *p, uint64_t link_id, struct cf_str room, struct cf_str conn,
                 struct cf_str user, uint64_t *reg)
{
    uint64_t unused;
    if (!reg)
        reg = &unused;
    *reg = 0;
    if (room.len > CF_ROOM_MAX || conn.len > CF_WIRE_MAX_TOKEN ||
        user.len > CF_USERNAME_BYTES_MAX)
        return -EINVAL;
    char key[CF_ROOM_MAX + 1 + CF_WIRE_MAX_TOKEN];
    size_t klen = make_key(key, room, conn);
    struct entry *old = cf_map_get(p->entries, key, klen);
    if (old) {
        *reg = take_over(p, old, link_id);
        return -EEXIST;
    }
    struct group *g = cf_map_get(p->groups, room.p, room.len);
    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g)
            return -ENOMEM;
        memcpy(g->name, room.p, room.len);
        g->len = room.len;
        if (cf_map_put(p->groups, g->name, g->len, g) < 0) {
            free(g);
            return -ENOMEM;
        }
        ring_add(p, g);
    }
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 4;
        struct entry **v = realloc(g->v, cap * sizeof *v);
        if (!v)
            goto fail;
        g->v = v;
        g->cap = cap;
    }
    if (lc_inc(p, link_id) < 0)
        goto fail;
    struct entry *e = malloc(sizeof *e + klen + 1 + user.len + 1);
    if (!e)
        goto fail_counted;
    e->link_id = link_id;
    e->reg = 0;
    e->roomlen = (uint8_t)room.len;
    e->connlen = (uint16_t)conn.len;
    e->userlen = (uint8_t)user.len;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    memcpy(e->key + klen + 1, user.p, user.len);
    e->key[klen + 1 + user.len] = '\0';
    if (cf_map_put(p->entries, e->key, klen, e) < 0) {
        free(e);
        goto fail_counted;
    }
    e->g = g;
    e->gi = g->n;
    g->v[g->n++] = e;
    *reg = e->reg = ++p->regs;
    return 0;
fail_counted:
    lc_dec(p, link_id);
fail:
    if (g->n == 0)
        drop_group(p, g);
    return -ENOMEM;
}

static void remove_entry(struct presence *p, struct entry *e)
{
    struct group *g = e->g;
    cf_map_del(p->entries, e->key, keylen(e));
    lc_dec(p, e->link_id);
    g->v[e->gi] = g->v[--g->n];
    g->v[e->gi]->gi = e->gi;
    if (g->n == 0)
        drop_group(p, g);
    free(e);
}

static struct entry *find(struct presence *p, struct cf_str room, struct cf_str conn)
{
    if (room.len > CF_ROOM_MAX || conn.len > CF_WIRE_MAX_TOKEN)
        return NULL;
    char key[CF_ROOM_MAX + 1 + CF_WIRE_MAX_TOKEN];
    size_t klen = make_key(key, room, conn);
    return cf_map_get(p->entries, key, klen);
}

bool presence_give(struct presence *p, struct cf_str room, struct cf_str conn, uint64_t owner)
{
    struct entry *e = find(p, room, conn);
    if (!e)
        return false;
    if (e->link_id != owner) {
        if (lc_inc(p, owner) < 0)
            return false;
        lc_dec(p, e->link_id);
        e->link_id = owner;
    }
    e->reg = ++p->regs;
    return true;
}

uint64_t presence_owner(struct presence *p, struct cf_str room, struct cf_str conn)
{
    const struct entry *e = find(p, room, conn);
    return e ? e->link_id : 0;
}

bool presence_del(struct presence *p, struct cf_str room, struct cf_str conn)
{
    struct entry *e = find(p, room, conn);
    if (!e)
        return false;
    remove_entry(p, e);
    return true;
}

bool presence_take_over(struct presence *p, struct cf_str room, struct cf_str conn,
                        uint64_t link_id)
{
    struct entry *e = find(p, room, conn);
    if (e)
        take_over(p, e, link_id);
    return e != NULL;
}

bool presence_may_remove(struct presence *p, struct cf_str room, struct cf_str conn,
                         uint64_t link_id)
{
    const struct entry *e = find(p, room, conn);
    return e && e->link_id <= link_id;
}

bool presence_is_reg(struct presence *p, struct cf_str room, struct cf_str conn, uint64_t reg)
{
    const struct entry *e = find(p, room, conn);
    return e && reg != 0 && e->reg == reg;
}

bool presence_del_reg(struct presence *p, struct cf_str room, struct cf_str conn, uint64_t reg)
{
    struct entry *e = find(p, room, conn);
    if (!e || reg == 0 || e->reg != reg)
        return false;
    remove_entry(p, e);
    return true;
}

static enum presence_drop ask(presence_drop_fn fn, void *ud, const struct entry *e)
{
    if (!fn)
        return PRESENCE_DROP;
    return fn(ud, (struct cf_str){e->key, e->roomlen},
              (struct cf_str){e->key + e->roomlen + 1, e->connlen});
}

uint64_t presence_drop_link(struct presence *p, uint64_t link_id, uint64_t max, presence_drop_fn fn,
                            void *ud)
{
    /* Walks the ring, allocating nothing: a snapshot of the entries that
     * could not be allocated left them here, refreshed by the heartbeat
     * forever, their link gone. Each group's entries from its end, since
     * removing one moves the last into its place. A closed link gets no new
     * entries, so the groups made since a call stopped (put anywhere in the
     * ring) hold none of its: going on from where it stopped, one round
     * finds them all. */
    const struct lcount *c = lc_get(p, link_id);
    uint64_t owned = c ? c->n : 0;
    bool mine = p->drop_link == link_id;
    struct group *g = mine && p->drop_at ? p->drop_at : p->cursor;
    uint64_t skipped = 0;
    for (size_t left = cf_map_count(p->groups); owned > skipped && left > 0 && g; left--) {
        struct group *next = g->next; /* g may be freed below */
        for (uint32_t i = g->n; owned > skipped && i-- > 0;) {
            struct entry *e = g->v[i];
            if (e->link_id != link_id)
                continue;
            enum presence_drop d = max == 0 ? PRESENCE_STOP : ask(fn, ud, e);
            if (d == PRESENCE_STOP) {
                p->drop_link = link_id; /* this group again, from its end */
                p->drop_at = g;
                return owned;
            }
            if (d == PRESENCE_SKIP) {
                skipped++;
                continue;
            }
            bool last = g->n == 1;
            remove_entry(p, e);
            owned--;
            max--;
            if (last)
                break; /* the group went with it */
        }
        g = next;
    }
    if (mine) { /* done with it: another link's call that stops short keeps its place */
        p->drop_link = 0;
        p->drop_at = NULL;
    }
    return owned;
}

bool presence_merge_link(struct presence *p, uint64_t from, uint64_t to)
{
    struct lcount *f = lc_get(p, from), *t = lc_get(p, to);
    if (!f || !t || from == to)
        return false;
    uint64_t owned = f->n;
    struct group *g = p->cursor;
    for (size_t left = cf_map_count(p->groups); owned > 0 && left > 0 && g; left--, g = g->next)
        for (uint32_t i = 0; owned > 0 && i < g->n; i++)
            if (g->v[i]->link_id == from) {
                g->v[i]->link_id = to;
                owned--;
            }
    t->n += f->n;
    cf_map_del(p->links, f->key, sizeof f->key);
    free(f);
    /* a drop that stopped short went on from its place for one link only:
     * the next call for `to` walks from the start (the ring's order does
     * not follow the links) */
    if (p->drop_link == from || p->drop_link == to) {
        p->drop_link = 0;
        p->drop_at = NULL;
    }
    return true;
}

/* Calls fn with one group's entries; false when out of memory. */
static bool visit(struct group *g, presence_room_fn fn, void *ud)
{
    struct cf_str *conns = malloc(g->n * sizeof *conns), *users = malloc(g->n * sizeof *users);
    bool ok = conns && users;
    if (ok) {
        for (uint32_t i = 0; i < g->n; i++) {
            struct entry *e = g->v[i];
            conns[i] = (struct cf_str){e->key + e->roomlen + 1, e->connlen};
            users[i] = (struct cf_str){user_of(e), e->userlen};
        }
        fn(ud, (struct cf_str){g->name, g->len}, conns, users, g->n);
    }
    free(conns);
    free(users);
    return ok;
}

uint32_t presence_refresh_next(struct presence *p, uint32_t max_rooms, presence_room_fn fn,
                               void *ud)
{
    uint32_t done = 0;
    size_t n = cf_map_count(p->groups);
    /* fn does not change presence, so the ring stays as it is meanwhile */
    while (p->cursor && done < max_rooms && done < n) {
        struct group *g = p->cursor;
        if (!visit(g, fn, ud))
            break; /* out of memory: this room again next time */
        p->cursor = g->next;
        done++;
    }
    return done;
}

void presence_catch_up_start(struct presence *p)
{
    /* A walk under way goes on from where it is: a whole round from any
     * room reaches every room, and one started over at the cursor would
     * walk again the rooms it has just done. */
    if (!p->catch_left)
        p->catch_at = p->cursor;
    p->catch_left = p->cursor ? cf_map_count(p->groups) : 0;
}

bool presence_catch_up_next(struct presence *p, uint32_t max_rooms, uint32_t max_looked,
                            presence_want_fn want, presence_room_fn fn, void *ud)
{
    /* The count may run ahead of the rooms the walk has still to visit
     * (rooms made behind it, or removed before it elsewhere than at
     * catch_at): those few get a second visit at the end. Never past a
     * whole round from here. */
    uint64_t n = cf_map_count(p->groups);
    if (p->catch_left > n)
        p->catch_left = n;
    for (uint32_t done = 0, looked = 0; p->catch_left && done < max_rooms && looked < max_looked;
         looked++) {
        struct group *g = p->catch_at;
        if (!want || want(ud, (struct cf_str){g->name, g->len})) {
            if (!visit(g, fn, ud))
                return false; /* out of memory: this room again next time */
            done++;
        }
        p->catch_at = g->next;
        p->catch_left--;
    }
    if (p->catch_left)
        return false;
    p->catch_at = NULL;
    return true;
}

uint64_t presence_rooms(const struct presence *p)
{
    return cf_map_count(p->groups);
}

uint64_t presence_link_entries(const struct presence *p, uint64_t link_id)
{
    const struct lcount *c = lc_get(p, link_id);
    return c ? c->n : 0;
}

uint64_t presence_count(const struct presence *p)
{
    return cf_map_count(p->entries);
}
