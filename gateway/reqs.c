/* reqs: see reqs.h. */
#include "reqs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "map.h"

struct reqs {
    struct cf_map *by_q; /* key: the 8 bytes of req.q */
    uint64_t next_q;
    uint32_t per_session;
    size_t resyncs; /* of them */
};

struct reqs *reqs_new(uint32_t per_session)
{
    struct reqs *t = calloc(1, sizeof *t);
    if (!t || !(t->by_q = cf_map_new())) {
        free(t);
        return NULL;
    }
    t->per_session = per_session;
    return t;
}

void reqs_free(struct reqs *t)
{
    if (!t)
        return;
    /* One walk: the map goes whole, and a walk reads no key (each a
     * request's q). Deleting each and walking again from the first slot
     * took seconds at exit with tens of thousands waiting. */
    size_t it = 0;
    struct req *r;
    while ((r = cf_map_next(t->by_q, &it)))
        free(r);
    cf_map_free(t->by_q);
    free(t);
}

/* Takes r out of its session's list; r->s stays set only if keep. */
static void unlink_session(struct req *r, bool keep)
{
    if (!r->s)
        return;
    struct req **pp = sess_reqs(r->s);
    while (*pp && *pp != r)
        pp = &(*pp)->snext;
    if (*pp)
        *pp = r->snext;
    if (!r->resync)
        (*sess_nreqs(r->s))--;
    if (!keep)
        r->s = NULL;
    r->snext = NULL;
}

/* A re-sync is neither held to the session's cap nor counted in it. */
static struct req *add(struct reqs *t, enum req_kind kind, struct session *s, void *http,
                       struct cf_str room, struct cf_str id, bool resync, int *err)
{
    *err = -EBUSY;
    if (s && !resync && *sess_nreqs(s) >= t->per_session)
        return NULL;
    *err = -ENOMEM;
    if (room.len > CF_ROOM_MAX)
        return NULL;
    struct req *r = calloc(1, sizeof *r + id.len + 1);
    if (!r)
        return NULL;
    r->q = ++t->next_q;
    r->kind = kind;
    r->resync = resync;
    r->http = http;
    r->deadline = cf_mono_ms() + REQ_TIMEOUT_MS;
    r->room_len = room.len;
    memcpy(r->room, room.p, room.len);
    r->id_len = id.len;
    if (id.len)
        memcpy(r->id, id.p, id.len);
    if (cf_map_put(t->by_q, (const char *)&r->q, sizeof r->q, r) < 0) {
        free(r);
        return NULL;
    }
    if (s) {
        r->s = s;
        r->snext = *sess_reqs(s);
        *sess_reqs(s) = r;
        if (!resync)
            (*sess_nreqs(s))++;
    }
    *err = 0;
    return r;
}

struct req *reqs_add(struct reqs *t, enum req_kind kind, struct session *s, void *http,
                     struct cf_str room, struct cf_str id, int *err)
{
    return add(t, kind, s, http, room, id, false, err);
}

struct req *reqs_add_resync(struct reqs *t, struct session *s, struct cf_str room, int *err)
{
    struct req *r = add(t, REQ_SUB, s, NULL, room, (struct cf_str){"", 0}, true, err);
    if (r)
        t->resyncs++;
    return r;
}

struct req *reqs_get(struct reqs *t, uint64_t q)
{
    return cf_map_get(t->by_q, (const char *)&q, sizeof q);
}

struct req *reqs_take(struct reqs *t, uint64_t q)
{
    struct req *r = cf_map_del(t->by_q, (const char *)&q, sizeof q);
    if (r) {
        unlink_session(r, true); /* the session is alive: it was still in its list */
        t->resyncs -= r->resync;
    }
    return r;
}

void reqs_release(struct req *r)
{
    free(r);
}

void reqs_cancel(struct reqs *t, struct req *r)
{
    reqs_release(reqs_take(t, r->q));
}

void reqs_drop_session(struct reqs *t, struct session *s)
{
    (void)t;
    while (*sess_reqs(s))
        unlink_session(*sess_reqs(s), false);
}

void reqs_take_if(struct reqs *t, bool (*pred)(void *ud, const struct req *r),
                  void (*fn)(void *ud, struct req *r), void *ud)
{
    enum { BATCH = 256 };
    for (;;) {
        uint64_t qs[BATCH];
        size_t n = 0, it = 0;
        struct req *r;
        while (n < BATCH && (r = cf_map_next(t->by_q, &it)))
            if (pred(ud, r))
                qs[n++] = r->q;
        for (size_t i = 0; i < n; i++) {
            struct req *old = reqs_take(t, qs[i]);
            fn(ud, old);
            reqs_release(old);
        }
        if (n < BATCH)
            return;
    }
}

struct expiry {
    int64_t now;
    void (*fn)(void *ud, struct req *r);
    void *ud;
};

static bool is_late(void *ud, const struct req *r)
{
    return r->deadline <= ((struct expiry *)ud)->now;
}

static void expire_one(void *ud, struct req *r)
{
    struct expiry *e = ud;
    e->fn(e->ud, r);
}

void reqs_expire(struct reqs *t, int64_t now, void (*fn)(void *ud, struct req *r), void *ud)
{
    struct expiry e = {now, fn, ud};
    reqs_take_if(t, is_late, expire_one, &e);
}

size_t reqs_count(const struct reqs *t)
{
    return cf_map_count(t->by_q);
}

size_t reqs_resyncs(const struct reqs *t)
{
    return t->resyncs;
}
