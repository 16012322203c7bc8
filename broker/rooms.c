/* rooms: see rooms.h. */
#include "rooms.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "validate.h"

struct held {
    struct held *next;
    uint64_t link_id, tag;
    size_t len;
    unsigned char payload[];
};

struct room {
    char name[CF_ROOM_MAX + 1];
    size_t len;
    struct cf_rel_end links;
    uint32_t unconfirmed; /* SUBSCRIBE/UNSUBSCRIBE sent, reply not yet seen */
    uint32_t stale;       /* replies still owed to commands sent before a reset
                           * that kept the subscriber (sub_reset): they come
                           * first, and answer none of the room's later ones */
    bool active;          /* the last command was a confirmed SUBSCRIBE */
    bool sub_sent;        /* the last command that went out was a SUBSCRIBE */
    bool unsub_due;       /* an UNSUBSCRIBE found the queue full: rooms_retry */
    bool sub_due;         /* a SUBSCRIBE found the queue full: rooms_retry */
    struct held *held_head, *held_tail;
};

struct rooms {
    const struct rooms_ops *ops;
    void *ud;
    struct cf_map *by_name;
    size_t held_bytes, max_held;
    uint64_t held_dropped, delivered, no_member;
    bool resubscribe; /* a (UN)SUBSCRIBE found the subscriber's queue full */
};

struct rooms *rooms_new(const struct rooms_ops *ops, void *ud, size_t max_held_bytes)
{
    struct rooms *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->by_name = cf_map_new();
    if (!r->by_name) {
        free(r);
        return NULL;
    }
    r->ops = ops;
    r->ud = ud;
    r->max_held = max_held_bytes;
    return r;
}

static void room_free(struct rooms *r, struct room *rm)
{
    cf_map_del(r->by_name, rm->name, rm->len);
    for (struct held *h = rm->held_head, *n; h; h = n) {
        n = h->next;
        r->held_bytes -= h->len;
        free(h);
    }
    cf_rel_end_free(&rm->links);
    free(rm);
}

void rooms_free(struct rooms *r)
{
    if (!r)
        return;
    size_t it = 0;
    struct room *rm;
    /* Collect first: freeing while iterating would reshape the table. */
    size_t n = cf_map_count(r->by_name), k = 0;
    struct room **all = n ? malloc(n * sizeof *all) : NULL;
    while (all && (rm = cf_map_next(r->by_name, &it)))
        all[k++] = rm;
    for (size_t i = 0; i < k; i++)
        room_free(r, all[i]);
    free(all);
    cf_map_free(r->by_name);
    free(r);
}

/* Runs what was held for rm, in order. */
static void release_held(struct rooms *r, struct room *rm)
{
    while (rm->held_head) {
        struct held *h = rm->held_head;
        rm->held_head = h->next;
        if (!rm->held_head)
            rm->held_tail = NULL;
        r->held_bytes -= h->len;
        r->ops->run(r->ud, h->link_id, h->payload, h->len, NULL);
        free(h);
    }
}

/* Frees rm when nothing refers to it any more; otherwise keeps it. */
static void maybe_free(struct rooms *r, struct room *rm)
{
    if (rm->links.n == 0 && rm->unconfirmed == 0 && rm->stale == 0 && !rm->unsub_due) {
        release_held(r, rm);
        room_free(r, rm);
    }
}

static void subscribe(struct rooms *r, struct room *rm)
{
    rm->active = false;
    rm->unsub_due = false; /* wanted again: the channel stays */
    int rc = r->ops->subscribe(r->ud, rm->name, rm->len);
    /* A full queue (or no memory): rooms_retry, within a second. The
     * room's requests wait for it as for a SUBSCRIBE in flight (refused,
     * as they were, a legacy message was lost, and a v1 one told "Redis is
     * not connected"). */
    rm->sub_due = rc != 0 && rc != -ENOTCONN;
    if (rc == 0) {
        rm->unconfirmed++;
        rm->sub_sent = true;
    } else if (rm->sub_due)
        r->resubscribe = true;
    /* else: the subscriber is down; rooms_on_sub_ready subscribes again. */
}

/* A channel left subscribed would bring every message of a room nobody here
 * is in, for as long as the connection lasts: one that does not fit the
 * queue is kept (with the room) for rooms_retry. A subscriber that is down
 * has no channel left to leave. */
static void unsubscribe(struct rooms *r, struct room *rm)
{
    int rc = r->ops->unsubscribe(r->ud, rm->name, rm->len);
    rm->unsub_due = rc != 0 && rc != -ENOTCONN;
    if (rc == 0) {
        rm->unconfirmed++;
        rm->sub_sent = false;
    } else if (rm->unsub_due)
        r->resubscribe = true;
}

/* The edge between rm and link (whose end is `end`), or NULL. cf_rel_find is
 * linear, so it searches the shorter side: usually the room's links (one per
 * gateway process), but a link can be in 100 k rooms, and searching its end
 * made each join or leave O(rooms), a whole resync O(rooms^2). */
static struct cf_rel_edge *membership(struct room *rm, void *link, struct cf_rel_end *end)
{
    return rm->links.n <= end->n ? cf_rel_find(&rm->links, link) : cf_rel_find(end, rm);
}

int rooms_join(struct rooms *r, void *link, struct cf_rel_end *end, const char *name,
               size_t len)
{
    if (len > CF_ROOM_MAX)
        return -EINVAL;
    struct room *rm = cf_map_get(r->by_name, name, len);
    if (rm && membership(rm, link, end))
        return 0;
    bool created = false;
    if (!rm) {
        rm = calloc(1, sizeof *rm);
        if (!rm)
            return -ENOMEM;
        memcpy(rm->name, name, len);
        rm->len = len;
        if (cf_map_put(r->by_name, rm->name, rm->len, rm) < 0) {
            free(rm);
            return -ENOMEM;
        }
        created = true;
    }
    if (!cf_rel_link(&rm->links, rm, end, link)) {
        if (created)
            room_free(r, rm);
        return -ENOMEM;
    }
    if (rm->links.n == 1)
        subscribe(r, rm);
    return 0;
}

static void unlink_edge(struct rooms *r, struct cf_rel_edge *e)
{
    struct room *rm = e->left;
    cf_rel_unlink(e);
    if (rm->links.n > 0)
        return;
    /* Last link gone: nobody here needs the channel any more. Requests still
     * held (messages for other nodes, presence changes) run now. */
    rm->active = false;
    release_held(r, rm);
    unsubscribe(r, rm);
    maybe_free(r, rm);
}

void rooms_leave(struct rooms *r, void *link, struct cf_rel_end *end, const char *name,
                 size_t len)
{
    struct room *rm = cf_map_get(r->by_name, name, len);
    struct cf_rel_edge *e = rm ? membership(rm, link, end) : NULL;
    if (e)
        unlink_edge(r, e);
}

void rooms_drop_link(struct rooms *r, struct cf_rel_end *end)
{
    while (end->n > 0)
        unlink_edge(r, end->v[end->n - 1]);
}

int rooms_submit(struct rooms *r, const char *name, size_t len, uint64_t link_id, uint64_t tag,
                 const void *payload, size_t plen, const void *ctx)
{
    struct room *rm = cf_map_get(r->by_name, name, len);
    /* Straight on unless the room waits for its subscription, or older
     * requests of it are still held (order first). */
    if (!rm || (!rm->held_head && (rm->links.n == 0 || rm->active))) {
        r->ops->run(r->ud, link_id, payload, plen, ctx);
        return 0;
    }
    if (rm->unconfirmed == 0 && !rm->sub_due)
        return -ENOTCONN; /* no SUBSCRIBE in flight or due: the subscriber is down */
    if (plen > r->max_held || r->held_bytes > r->max_held - plen) {
        r->held_dropped++;
        return -ENOBUFS;
    }
    struct held *h = malloc(sizeof *h + plen);
    if (!h)
        return -ENOMEM;
    h->next = NULL;
    h->link_id = link_id;
    h->tag = tag;
    h->len = plen;
    memcpy(h->payload, payload, plen);
    if (rm->held_tail)
        rm->held_tail->next = h;
    else
        rm->held_head = h;
    rm->held_tail = h;
    r->held_bytes += plen;
    return 0;
}

size_t rooms_unhold_if(struct rooms *r, const char *name, size_t len, uint64_t tag,
                       rooms_held_fn pick, void *ud)
{
    struct room *rm = cf_map_get(r->by_name, name, len);
    size_t taken = 0;
    struct held **pp = rm ? &rm->held_head : NULL, *prev = NULL;
    while (pp && *pp) {
        struct held *h = *pp;
        if (h->tag != tag || !pick(ud, h->link_id, h->payload, h->len)) {
            prev = h;
            pp = &h->next;
            continue;
        }
        *pp = h->next;
        if (rm->held_tail == h)
            rm->held_tail = prev;
        r->held_bytes -= h->len;
        free(h);
        taken++;
    }
    return taken;
}

void rooms_on_message(struct rooms *r, const char *name, size_t len, const void *payload,
                      size_t plen)
{
    struct room *rm = cf_map_get(r->by_name, name, len);
    if (!rm || rm->links.n == 0) {
        r->no_member++; /* unsubscribed a moment ago: nobody to give it to */
        return;
    }
    for (uint32_t i = 0; i < rm->links.n; i++)
        r->delivered += r->ops->deliver(r->ud, rm->links.v[i]->right, payload, plen);
    CF_DEBUG("rooms", "room %s: event forwarded once to each of %u gateway links", rm->name,
             rm->links.n);
}

void rooms_on_confirm(struct rooms *r, const char *name, size_t len)
{
    struct room *rm = cf_map_get(r->by_name, name, len);
    if (rm && rm->stale > 0) {
        rm->stale--;
        maybe_free(r, rm);
        return;
    }
    if (!rm || rm->unconfirmed == 0)
        return; /* a reply from before the subscriber reconnected */
    if (--rm->unconfirmed > 0)
        return;
    if (rm->links.n == 0) {
        maybe_free(r, rm);
        return;
    }
    if (!rm->sub_sent) {
        /* The reply was an UNSUBSCRIBE's: the room was joined again while it
         * was on its way and that SUBSCRIBE could not go out (the server not
         * usable yet, a full queue). Taking the room for subscribed here left
         * it without its channel until the subscriber reconnected. */
        subscribe(r, rm);
        if (rm->unconfirmed == 0 && !rm->sub_due)
            release_held(r, rm); /* as when a subscription is lost */
        return;
    }
    rm->active = true;
    release_held(r, rm);
}

void rooms_on_sub_lost(struct rooms *r)
{
    rooms_on_sub_lost_if(r, NULL, NULL, false);
}

/* A room whose subscription was lost: subscribed again at rooms_on_sub_ready. */
static void sub_reset(struct room *rm, bool kept)
{
    /* A connection that lives on still answers what was sent on it, in
     * order, before anything sent after: counted as replies of the room's
     * new SUBSCRIBE (after one left, the room freed and joined again),
     * they had its held requests run before its channel was live. A
     * connection that went answers nothing more. */
    rm->stale = kept ? rm->stale + rm->unconfirmed : 0;
    rm->unconfirmed = 0;
    rm->active = false;
    rm->sub_sent = false;
    rm->sub_due = false;
    /* a connection that went took its channels with it; one that stays must
     * still leave those it was to leave */
    rm->unsub_due = kept && rm->unsub_due;
}

void rooms_on_sub_lost_if(struct rooms *r, rooms_pick_fn pick, void *ud, bool kept)
{
    size_t n = cf_map_count(r->by_name), k = 0, it = 0;
    if (!n)
        return;
    struct room **all = malloc(n * sizeof *all), *rm;
    if (!all) {
        /* Reset in place all the same, or the rooms that were subscribed
         * are never subscribed again; what they hold waits for that
         * (releasing and freeing run callbacks and reshape the table: not
         * during a walk). A room without links is left by rooms_retry: its
         * UNSUBSCRIBE's answer frees it, whether or not the channel was
         * still there. */
        CF_ERROR("rooms", "out of memory while resetting subscriptions: requests held for them "
                 "wait for the resubscription");
        while ((rm = cf_map_next(r->by_name, &it)))
            if (!pick || pick(ud, rm->name, rm->len)) {
                sub_reset(rm, kept);
                rm->unsub_due = rm->unsub_due || rm->links.n == 0;
            }
        r->resubscribe = true;
        return;
    }
    while ((rm = cf_map_next(r->by_name, &it)))
        if (!pick || pick(ud, rm->name, rm->len))
            all[k++] = rm;
    for (size_t i = 0; i < k; i++) {
        sub_reset(all[i], kept);
        /* What waited for the lost subscription runs now rather than
         * whenever Redis is back: a send is stored (or refused) at once, and
         * the members here recover the message by its id. */
        release_held(r, all[i]);
        maybe_free(r, all[i]);
    }
    free(all);
}

void rooms_on_sub_ready(struct rooms *r)
{
    rooms_on_sub_ready_if(r, NULL, NULL);
}

/* A room that held requests for a SUBSCRIBE due, which now found the
 * subscriber down: no SUBSCRIBE holds them any more. */
static bool stranded(const struct room *rm)
{
    return rm->held_head && !rm->active && rm->unconfirmed == 0 && !rm->sub_due;
}

void rooms_on_sub_ready_if(struct rooms *r, rooms_pick_fn pick, void *ud)
{
    size_t it = 0, n = 0;
    struct room *rm;
    while ((rm = cf_map_next(r->by_name, &it)))
        if (rm->links.n > 0 && !rm->active && rm->unconfirmed == 0 &&
            (!pick || pick(ud, rm->name, rm->len))) {
            subscribe(r, rm);
            n += stranded(rm);
        }
    if (!n)
        return;
    /* The subscriber can be down without its loss told to the rooms (the
     * server found unusable through its publisher): what was held runs now,
     * as at a loss, not whenever the server is back. After the walk:
     * running may reshape the table. */
    struct room **all = malloc(n * sizeof *all);
    if (!all) {
        r->resubscribe = true; /* the next retry finds them again */
        return;
    }
    size_t k = 0;
    it = 0;
    while (k < n && (rm = cf_map_next(r->by_name, &it)))
        if (rm->links.n > 0 && (!pick || pick(ud, rm->name, rm->len)) && stranded(rm))
            all[k++] = rm; /* the first walk's rooms alone (a loss without memory keeps
                            * other servers' held for their resubscription) */
    for (size_t i = 0; i < k; i++)
        release_held(r, all[i]);
    free(all);
}

/* Sends the UNSUBSCRIBEs that did not fit, freeing the rooms they kept. */
static void retry_unsubscribes(struct rooms *r)
{
    size_t n = cf_map_count(r->by_name), k = 0, it = 0;
    struct room **due = n ? malloc(n * sizeof *due) : NULL, *rm;
    if (!due) {
        r->resubscribe = n > 0; /* out of memory: try again next time */
        return;
    }
    while ((rm = cf_map_next(r->by_name, &it)))
        if (rm->unsub_due)
            due[k++] = rm;
    /* Freed after the walk: freeing during it would reshape the table. */
    for (size_t i = 0; i < k; i++) {
        unsubscribe(r, due[i]);
        maybe_free(r, due[i]);
    }
    free(due);
}

void rooms_retry(struct rooms *r)
{
    if (!r->resubscribe)
        return;
    r->resubscribe = false; /* set again by a command that still does not fit */
    rooms_on_sub_ready_if(r, NULL, NULL);
    retry_unsubscribes(r);
}

void rooms_stats(const struct rooms *r, struct rooms_stats *out)
{
    out->rooms = cf_map_count(r->by_name);
    out->held_bytes = r->held_bytes;
    out->held_dropped = r->held_dropped;
    out->delivered_frames = r->delivered;
    out->no_member_drops = r->no_member;
}
