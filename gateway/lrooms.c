/* lrooms: see lrooms.h. */
#include "lrooms.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "legacy.h"
#include "log.h"
#include "map.h"
#include "shard.h"
#include "v1codec.h"
#include "validate.h"

#define PV_WINDOW_MS 5000 /* how long presence versions are compared after a snapshot */

struct lroom {
    char name[CF_ROOM_MAX + 1];
    size_t len;
    struct cf_rel_end members;
};

struct lheld {
    struct cf_buf *b;
    enum cf_wire_type type;
    uint64_t id, pv; /* msg id (0: none) / presence version */
    uint64_t epoch;  /* msg: hash of its epoch (0: none) */
};

struct wlist {
    struct lmember **v;
    uint32_t head, end; /* v[head, end): members and holes, in turn */
    uint32_t n, cap;    /* members; slots */
};

struct lrooms {
    const struct lrooms_ops *ops;
    void *ud;
    struct cf_map *by_name;
    struct wlist *lists; /* waiting lists, by number */
    uint32_t nlists;
};

struct lrooms *lrooms_new(const struct lrooms_ops *ops, void *ud)
{
    struct lrooms *r = calloc(1, sizeof *r);
    if (!r || !(r->by_name = cf_map_new())) {
        free(r);
        return NULL;
    }
    r->ops = ops;
    r->ud = ud;
    return r;
}

void lrooms_free(struct lrooms *r)
{
    if (!r)
        return;
    size_t it = 0;
    struct lroom *rm;
    while ((rm = cf_map_next(r->by_name, &it))) {
        cf_rel_end_free(&rm->members);
        free(rm);
    }
    cf_map_free(r->by_name);
    for (uint32_t i = 0; i < r->nlists; i++)
        free(r->lists[i].v);
    free(r->lists);
    free(r);
}

struct lmember *lrooms_find(struct lrooms *r, struct session *s, const char *name, size_t len)
{
    struct lroom *rm = cf_map_get(r->by_name, name, len);
    struct cf_rel_edge *e = rm ? cf_rel_find(sess_rooms(s), rm) : NULL;
    return e ? e->right : NULL;
}

struct lmember *lrooms_join(struct lrooms *r, struct session *s, const char *name, size_t len,
                            bool pending, int *err)
{
    *err = -EINVAL;
    if (len > CF_ROOM_MAX)
        return NULL;
    struct lroom *rm = cf_map_get(r->by_name, name, len);
    *err = -EEXIST;
    if (rm && cf_rel_find(sess_rooms(s), rm))
        return NULL;
    *err = -ENOMEM;
    struct lmember *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->s = s;
    m->pending = pending;
    m->full_rounds = (uint8_t)((sess_resynced(s) & 0x0fu) << 4); /* lrooms_full_round */
    bool created = false;
    if (!rm) {
        rm = calloc(1, sizeof *rm);
        if (!rm) {
            free(m);
            return NULL;
        }
        memcpy(rm->name, name, len);
        rm->len = len;
        if (cf_map_put(r->by_name, rm->name, len, rm) < 0) {
            free(rm);
            free(m);
            return NULL;
        }
        created = true;
    }
    if (cf_rel_link_at(&m->edge, &rm->members, rm, sess_rooms(s), m) < 0) {
        if (created) {
            cf_map_del(r->by_name, rm->name, len);
            free(rm);
        }
        free(m);
        return NULL;
    }
    if (created)
        r->ops->first(r->ud, rm->name, rm->len);
    *err = 0;
    return m;
}

static void drop_held(struct lmember *m)
{
    *sess_held_bytes(m->s) -= m->heldbytes;
    for (uint32_t i = 0; i < m->nheld; i++)
        cf_buf_unref(m->held[i].b);
    free(m->held);
    m->held = NULL;
    m->nheld = m->capheld = 0;
    m->heldbytes = 0;
}

void lrooms_forget_held_messages(struct lmember *m)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nheld; i++) {
        struct lheld *h = &m->held[i];
        if (h->type == CF_WIRE_MSG && h->id) {
            *sess_held_bytes(m->s) -= (uint32_t)h->b->len;
            m->heldbytes -= (uint32_t)h->b->len;
            cf_buf_unref(h->b);
        } else {
            m->held[k++] = *h;
        }
    }
    m->nheld = k;
}

void lrooms_leave_member(struct lrooms *r, struct lmember *m)
{
    struct lroom *rm = m->edge.left;
    lrooms_unwait(r, m);
    cf_rel_unlink_at(&m->edge);
    drop_held(m);
    free(m);
    if (rm->members.n > 0)
        return;
    r->ops->last(r->ud, rm->name, rm->len);
    cf_map_del(r->by_name, rm->name, rm->len);
    cf_rel_end_free(&rm->members);
    free(rm);
}

void lrooms_leave(struct lrooms *r, struct session *s, const char *name, size_t len)
{
    struct lmember *m = lrooms_find(r, s, name, len);
    if (m)
        lrooms_leave_member(r, m);
}

void lrooms_leave_all(struct lrooms *r, struct session *s)
{
    struct cf_rel_end *end = sess_rooms(s);
    while (end->n > 0)
        lrooms_leave_member(r, end->v[end->n - 1]->right);
}

/* Holds an event for a pending member; joins that collect more than the
 * session may queue, with what it has queued, close it (the client
 * reconnects and recovers). The bound is the session's, over all its pending
 * joins: per join, a session in 32 rooms could hold 32 times its queue. */
static void hold(struct lmember *m, struct cf_buf *b, const struct cf_wire_msg *ev)
{
    if (sess_closing(m->s))
        return; /* nothing reaches it any more */
    if (m->q == 0 && ev->type == CF_WIRE_MSG && (ev->has & CF_WIRE_HAS_ID))
        return; /* awaits a re-sync not yet asked for, whose snapshot (taken
                 * after this message was stored) brings it: held, a member
                 * kept waiting in a busy room filled its session's bound */
    uint32_t *held = sess_held_bytes(m->s);
    /* the socket is offered what is queued first, as sess_send does: a
     * burst of joined snapshots in one pass otherwise closed a client that
     * reads */
    if (sess_would_overflow(m->s, (size_t)*held + b->len)) {
        drop_held(m);
        sess_close_slow(m->s, "too many events while joining");
        return;
    }
    if (m->nheld == m->capheld) {
        uint32_t cap = m->capheld ? m->capheld * 2 : 8;
        struct lheld *h = realloc(m->held, cap * sizeof *h);
        if (!h) {
            sess_close(m->s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
            return;
        }
        m->held = h;
        m->capheld = cap;
    }
    m->held[m->nheld++] = (struct lheld){
        cf_buf_ref(b), ev->type, (ev->has & CF_WIRE_HAS_ID) ? ev->id : 0, ev->pv,
        (ev->has & CF_WIRE_HAS_EPOCH) ? cf_fnv1a64(ev->epoch.p, ev->epoch.len) : 0};
    m->heldbytes += b->len;
    *held += (uint32_t)b->len;
}

/* Whether a live v1 member gets this event (and the bookkeeping if so). */
static bool wants(struct lmember *m, const struct cf_wire_msg *ev, int64_t now)
{
    switch (ev->type) {
    case CF_WIRE_MSG:
        if (!(ev->has & CF_WIRE_HAS_ID))
            return true;
        if (ev->id <= m->last_id)
            return false; /* already in the snapshot, or a replay */
        m->last_id = ev->id;
        return true;
    case CF_WIRE_TYPING:
        return !(ev->user.len == strlen(sess_user(m->s)) &&
                 memcmp(ev->user.p, sess_user(m->s), ev->user.len) == 0);
    case CF_WIRE_PRESENCE:
        if (now < m->pv_until && ev->pv <= m->pv)
            return false; /* the snapshot already counted it */
        if (ev->pv > m->pv)
            m->pv = ev->pv;
        return true;
    default:
        return false;
    }
}

size_t lrooms_deliver(struct lrooms *r, const struct cf_wire_msg *ev)
{
    struct lroom *rm = cf_map_get(r->by_name, ev->room.p, ev->room.len);
    if (!rm)
        return 0; /* the last member left while the event was on its way */
    struct cf_buf *enc[SESS_PROTO_COUNT] = {0};
    bool failed[SESS_PROTO_COUNT] = {0};
    size_t queued = 0;
    int64_t now = cf_mono_ms();
    /* sess_send never unlinks (a slow consumer's close is deferred), so the
     * member array is stable during this loop. */
    for (uint32_t i = 0; i < rm->members.n; i++) {
        struct lmember *m = rm->members.v[i]->right;
        enum sess_proto p = sess_proto(m->s);
        if (p == SESS_LEGACY && ev->type != CF_WIRE_MSG)
            continue; /* the old protocol has messages only */
        if (sess_proto_is_v1(p) && !m->pending && ev->type == CF_WIRE_MSG &&
            (ev->has & CF_WIRE_HAS_ID) && m->epoch_known) {
            bool other_epoch = (ev->has & CF_WIRE_HAS_EPOCH) &&
                               (ev->epoch.len != strlen(m->epoch) ||
                                memcmp(ev->epoch.p, m->epoch, ev->epoch.len) != 0);
            /* Ids are gapless in an epoch: a jump means this member missed
             * messages (its broker's subscription was down meanwhile). */
            if (other_epoch || ev->id > m->last_id + 1) {
                m->pending = true; /* this message waits for the snapshot */
                r->ops->resync(r->ud, (struct cf_str){rm->name, (uint32_t)rm->len}, m, !other_epoch,
                               false);
            }
        }
        /* Presence versions have no gaps either (one per announced change,
         * published with it): one past the next means changes went by. (One
         * at or below what the client knows is a late duplicate of what its
         * snapshot counted, or the room's presence started again; it never
         * re-syncs, or a lagging subscription would re-sync a busy room's
         * members over and over.) */
        if (sess_proto_is_v1(p) && !m->pending && ev->type == CF_WIRE_PRESENCE && ev->pv &&
            m->pv && ev->pv > m->pv + 1) {
            m->pending = true; /* the snapshot brings the members as they are */
            r->ops->resync(r->ud, (struct cf_str){rm->name, (uint32_t)rm->len}, m, true, false);
        }
        if (sess_proto_is_v1(p) && !m->pending && !wants(m, ev, now))
            continue;
        if (m->pending && ev->type == CF_WIRE_TYPING)
            continue;
        if (!enc[p] && !failed[p]) {
            enc[p] = p == SESS_LEGACY ? legacy_encode_message(ev, LWS_PRE) : v1_encode_event(p, ev);
            if (!enc[p]) {
                failed[p] = true;
                CF_ERROR("rooms", "cannot encode a %s for room %s; dropped",
                         cf_wire_type_name(ev->type), rm->name);
            }
        }
        if (!enc[p])
            continue;
        if (m->pending) {
            hold(m, enc[p], ev);
            continue;
        }
        if (sess_send(m->s, enc[p]) == 0)
            queued++;
    }
    int encodings = 0;
    for (int p = 0; p < SESS_PROTO_COUNT; p++) {
        encodings += enc[p] != NULL;
        cf_buf_unref(enc[p]);
    }
    CF_DEBUG("rooms", "room %s: %s queued for %zu local members, encoded %d time(s)", rm->name,
             cf_wire_type_name(ev->type), queued, encodings);
    return queued;
}

size_t lrooms_go_live(struct lrooms *r, struct lmember *m)
{
    size_t queued = 0;
    m->pending = false;
    m->pv_until = cf_mono_ms() + PV_WINDOW_MS;
    uint64_t epoch = m->epoch_known ? cf_fnv1a64(m->epoch, strlen(m->epoch)) : 0;
    /* After the snapshot, a room's messages follow its last id one by one
     * (the send script numbers and publishes them in one step). A held one
     * that does not (another epoch: the history was lost since; a gap: the
     * subscription missed some, or someone who can PUBLISH made the id up)
     * stops the release of messages with ids, and the member re-syncs: given
     * out, it would become the last id, and every real message up to it
     * would be dropped as already seen.
     * What the snapshot left no room for in the session's queue (over TLS
     * nothing is written before the next writable callback) is not given
     * out either: sent, it closed the member as a slow consumer right after
     * its join; the re-sync, from the last id given out, brings it once
     * the client has read (what is in no history is dropped). */
    bool resync = false, since = false, pgap = false, full = false;
    for (uint32_t i = 0; i < m->nheld; i++) {
        struct lheld *h = &m->held[i];
        bool send = true;
        if (h->type == CF_WIRE_MSG && h->id) {
            if (resync)
                send = false; /* the re-sync brings it */
            else if (h->epoch && epoch && h->epoch != epoch)
                send = false, resync = true;
            else if (h->id > m->last_id + 1)
                send = false, resync = since = true;
            else if (h->id > m->last_id && sess_would_overflow(m->s, h->b->len))
                send = false, resync = since = full = true;
            else if ((send = h->id > m->last_id))
                m->last_id = h->id;
        } else if (h->type == CF_WIRE_PRESENCE) {
            /* released even past a re-sync's start for messages (a re-sync
             * that recovers the messages brings no member list), but not
             * past a gap in versions: that re-sync's snapshot counts them,
             * and comes as a whole joined */
            if (pgap)
                send = false;
            else if (h->pv && m->pv && h->pv > m->pv + 1)
                send = false, pgap = resync = since = true;
            else if (h->pv > m->pv && sess_would_overflow(m->s, h->b->len))
                send = false, pgap = resync = since = full = true;
            else if ((send = h->pv > m->pv))
                m->pv = h->pv;
        } else {
            /* in no history (a backend's message without an id): given
             * out if it fits; past the bound, dropped for this member
             * (a re-sync cannot bring it, and a client closed as a slow
             * consumer loses it too) */
            send = !sess_would_overflow(m->s, h->b->len);
        }
        if (send && sess_send(m->s, h->b) == 0)
            queued++;
    }
    drop_held(m);
    if (!resync) {
        m->full_rounds = (uint8_t)((sess_resynced(m->s) & 0x0fu) << 4); /* counted from here */
        return queued;
    }
    if (full && lrooms_full_round(m, false)) {
        sess_close_slow(m->s, "slow consumer (cannot keep up with its rooms)");
        return queued;
    }
    m->pending = true;
    r->ops->resync(r->ud, lrooms_member_room(m), m, since, full);
    return queued;
}

_Static_assert(LROOMS_MAX_FULL_ROUNDS < 15, "the count must fit full_rounds' low bits");

bool lrooms_full_round(struct lmember *m, bool waiting)
{
    unsigned now = sess_resynced(m->s) & 0x0fu, count = m->full_rounds & 0x0fu;
    bool moved = (unsigned)m->full_rounds >> 4 != now;
    if (!(waiting && moved) && count <= LROOMS_MAX_FULL_ROUNDS)
        count++;
    m->full_rounds = (uint8_t)(now << 4 | count);
    return count > LROOMS_MAX_FULL_ROUNDS;
}

void lrooms_foreach(struct lrooms *r, void (*fn)(void *ud, const char *name, size_t len),
                    void *ud)
{
    size_t it = 0;
    struct lroom *rm;
    while ((rm = cf_map_next(r->by_name, &it)))
        fn(ud, rm->name, rm->len);
}

void lrooms_foreach_member(struct lrooms *r, bool (*want)(void *ud, struct cf_str room),
                           void (*fn)(void *ud, struct cf_str room, struct lmember *m), void *ud)
{
    size_t it = 0;
    struct lroom *rm;
    while ((rm = cf_map_next(r->by_name, &it))) {
        struct cf_str name = {rm->name, (uint32_t)rm->len};
        if (!want(ud, name))
            continue;
        for (uint32_t i = 0; i < rm->members.n; i++)
            fn(ud, name, rm->members.v[i]->right);
    }
}

/* ---- waiting lists ---- */

/* v[head, end) holds the list in the order members were put in; a member
 * that leaves it leaves a hole (NULL), so the others keep their turn. When
 * the array is full and holes outnumber the members they are squeezed out,
 * so it grows only while at least half its used slots hold members. */
#define WLIST_FIRST 64

static void wlist_compact(struct wlist *w)
{
    uint32_t j = 0;
    for (uint32_t i = w->head; i < w->end; i++)
        if (w->v[i]) {
            w->v[j] = w->v[i];
            w->v[j]->wslot = j + 1;
            j++;
        }
    w->head = 0;
    w->end = j;
}

/* Room for `more` members at the end of list l (the lists table grows to
 * hold l). */
static struct wlist *wlist_room(struct lrooms *r, uint32_t l, uint32_t more)
{
    if (l >= r->nlists) {
        struct wlist *t = realloc(r->lists, (size_t)(l + 1) * sizeof *t);
        if (!t)
            return NULL;
        memset(t + r->nlists, 0, (size_t)(l + 1 - r->nlists) * sizeof *t);
        r->lists = t;
        r->nlists = l + 1;
    }
    struct wlist *w = &r->lists[l];
    if (w->cap - w->end >= more)
        return w;
    if (w->end - w->n > w->n) /* more holes than members */
        wlist_compact(w);
    if (w->cap - w->end >= more)
        return w;
    if (more > UINT32_MAX / 2 - w->end)
        return NULL;
    uint32_t cap = w->cap ? w->cap : WLIST_FIRST;
    while (cap - w->end < more)
        cap *= 2;
    struct lmember **v = realloc(w->v, (size_t)cap * sizeof *v);
    if (!v)
        return NULL;
    w->v = v;
    w->cap = cap;
    return w;
}

/* A shard's outage can fill a list with every membership of the shard, and
 * a few of them may then wait long (their room's shard still refusing): an
 * empty list gives its memory back, and one down to an eighth of its slots
 * keeps a quarter of them. Shrinking leaves it half full at most, so it takes
 * as many members again before it grows or shrinks once more. */
static void wlist_trim(struct wlist *w)
{
    if (w->n == 0) {
        free(w->v);
        w->v = NULL;
        w->cap = w->head = w->end = 0;
        return;
    }
    if (w->cap <= WLIST_FIRST || w->n > w->cap / 8)
        return;
    wlist_compact(w);
    uint32_t cap = w->cap / 4 < WLIST_FIRST ? WLIST_FIRST : w->cap / 4;
    struct lmember **v = realloc(w->v, (size_t)cap * sizeof *v);
    if (v) { /* else it keeps the larger array, compacted */
        w->v = v;
        w->cap = cap;
    }
}

int lrooms_wait(struct lrooms *r, struct lmember *m, uint32_t list)
{
    if (m->wslot && m->wlist == list)
        return 0;
    lrooms_unwait(r, m);
    struct wlist *w = wlist_room(r, list, 1);
    if (!w)
        return -ENOMEM;
    w->v[w->end++] = m;
    w->n++;
    m->wlist = list;
    m->wslot = w->end;
    return 0;
}

int lrooms_wait_front(struct lrooms *r, struct lmember *m, uint32_t list)
{
    lrooms_unwait(r, m);
    struct wlist *w = wlist_room(r, list, 1);
    if (!w)
        return -ENOMEM;
    if (w->head == 0) { /* no free slot before the first: rare, as a member put back
                         * was just taken, which freed one (unless a compaction followed) */
        memmove(w->v + 1, w->v, (size_t)w->end * sizeof *w->v);
        w->end++;
        w->head = 1;
        for (uint32_t i = 1; i < w->end; i++)
            if (w->v[i])
                w->v[i]->wslot = i + 1;
    }
    w->v[--w->head] = m;
    w->n++;
    m->wlist = list;
    m->wslot = w->head + 1;
    return 0;
}

void lrooms_unwait(struct lrooms *r, struct lmember *m)
{
    if (!m->wslot)
        return;
    struct wlist *w = &r->lists[m->wlist];
    w->v[m->wslot - 1] = NULL;
    m->wslot = 0;
    w->n--;
    wlist_trim(w);
}

struct lmember *lrooms_wait_take(struct lrooms *r, uint32_t list)
{
    if (list >= r->nlists || r->lists[list].n == 0)
        return NULL;
    struct wlist *w = &r->lists[list];
    while (!w->v[w->head])
        w->head++;
    struct lmember *m = w->v[w->head++];
    m->wslot = 0;
    w->n--;
    wlist_trim(w);
    return m;
}

int lrooms_wait_move(struct lrooms *r, uint32_t from, uint32_t to)
{
    if (from == to || from >= r->nlists || r->lists[from].n == 0)
        return 0;
    uint32_t k = r->lists[from].n;
    struct wlist *d = wlist_room(r, to, k); /* may move r->lists */
    if (!d)
        return -ENOMEM;
    struct wlist *f = &r->lists[from];
    for (uint32_t i = f->head; i < f->end; i++) {
        struct lmember *m = f->v[i];
        if (!m)
            continue;
        d->v[d->end++] = m;
        m->wlist = to;
        m->wslot = d->end;
    }
    d->n += k;
    f->n = 0;
    wlist_trim(f);
    return 0;
}

size_t lrooms_wait_count(const struct lrooms *r, uint32_t list)
{
    return list < r->nlists ? r->lists[list].n : 0;
}

size_t lrooms_wait_bytes(const struct lrooms *r)
{
    size_t b = (size_t)r->nlists * sizeof *r->lists;
    for (uint32_t l = 0; l < r->nlists; l++)
        b += (size_t)r->lists[l].cap * sizeof *r->lists[l].v;
    return b;
}

size_t lrooms_count(const struct lrooms *r)
{
    return cf_map_count(r->by_name);
}

struct cf_str lrooms_edge_name(const struct cf_rel_edge *e)
{
    const struct lroom *rm = e->left;
    return (struct cf_str){rm->name, (uint32_t)rm->len};
}

struct cf_str lrooms_member_room(const struct lmember *m)
{
    return lrooms_edge_name(&m->edge);
}

bool lrooms_knows_pv(const struct lmember *m, uint64_t pv)
{
    if (pv == m->pv)
        return true;
    if (pv < m->pv)
        return false; /* the room's presence started again (its keys were lost) */
    /* The held versions must follow what it knows one by one up to pv
     * (they were held in the order they were published). */
    uint64_t next = m->pv + 1;
    for (uint32_t i = 0; i < m->nheld && next <= pv; i++) {
        const struct lheld *h = &m->held[i];
        if (h->type != CF_WIRE_PRESENCE || h->pv < next)
            continue; /* not presence, or a duplicate */
        if (h->pv > next)
            return false;
        next++;
    }
    return next > pv;
}
