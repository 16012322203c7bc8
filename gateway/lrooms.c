/* lrooms: see lrooms.h. */
#include "lrooms.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "legacy.h"
#include "log.h"
#include "map.h"
#include "validate.h"

struct lroom {
    char name[CF_ROOM_MAX + 1];
    size_t len;
    struct cf_rel_end members;
};

struct lrooms {
    const struct lrooms_ops *ops;
    void *ud;
    struct cf_map *by_name;
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
    free(r);
}

int lrooms_join(struct lrooms *r, struct session *s, const char *name, size_t len)
{
    if (len > CF_ROOM_MAX)
        return -EINVAL;
    struct lroom *rm = cf_map_get(r->by_name, name, len);
    if (rm && cf_rel_find(sess_rooms(s), rm))
        return 0;
    bool created = false;
    if (!rm) {
        rm = calloc(1, sizeof *rm);
        if (!rm)
            return -ENOMEM;
        memcpy(rm->name, name, len);
        rm->len = len;
        if (cf_map_put(r->by_name, rm->name, len, rm) < 0) {
            free(rm);
            return -ENOMEM;
        }
        created = true;
    }
    if (!cf_rel_link(&rm->members, rm, sess_rooms(s), s)) {
        if (created) {
            cf_map_del(r->by_name, rm->name, len);
            free(rm);
        }
        return -ENOMEM;
    }
    if (created)
        r->ops->first(r->ud, rm->name, rm->len);
    return 0;
}

static void unlink_edge(struct lrooms *r, struct cf_rel_edge *e)
{
    struct lroom *rm = e->left;
    cf_rel_unlink(e);
    if (rm->members.n > 0)
        return;
    r->ops->last(r->ud, rm->name, rm->len);
    cf_map_del(r->by_name, rm->name, rm->len);
    cf_rel_end_free(&rm->members);
    free(rm);
}

void lrooms_leave(struct lrooms *r, struct session *s, const char *name, size_t len)
{
    struct lroom *rm = cf_map_get(r->by_name, name, len);
    struct cf_rel_edge *e = rm ? cf_rel_find(sess_rooms(s), rm) : NULL;
    if (e)
        unlink_edge(r, e);
}

void lrooms_leave_all(struct lrooms *r, struct session *s)
{
    struct cf_rel_end *end = sess_rooms(s);
    while (end->n > 0)
        unlink_edge(r, end->v[end->n - 1]);
}

size_t lrooms_deliver(struct lrooms *r, const struct cf_wire_msg *m)
{
    struct lroom *rm = cf_map_get(r->by_name, m->room.p, m->room.len);
    if (!rm)
        return 0; /* the last member left while the message was on its way */
    struct cf_buf *enc[SESS_PROTO_COUNT] = {0};
    size_t queued = 0;
    /* sess_send never unlinks (a slow consumer's close is deferred), so the
     * member array is stable during this loop. */
    for (uint32_t i = 0; i < rm->members.n; i++) {
        struct session *s = rm->members.v[i]->right;
        enum sess_proto p = sess_proto(s);
        if (!enc[p]) {
            enc[p] = legacy_encode_message(m, LWS_PRE);
            if (!enc[p]) {
                CF_ERROR("rooms", "cannot encode a message for room %s; dropped", rm->name);
                break;
            }
        }
        if (sess_send(s, enc[p]) == 0)
            queued++;
    }
    int encodings = 0;
    for (int p = 0; p < SESS_PROTO_COUNT; p++) {
        encodings += enc[p] != NULL;
        cf_buf_unref(enc[p]);
    }
    CF_DEBUG("rooms", "room %s: message queued for %zu local members, encoded %d time(s)",
             rm->name, queued, encodings);
    return queued;
}

void lrooms_foreach(struct lrooms *r, void (*fn)(void *ud, const char *name, size_t len),
                    void *ud)
{
    size_t it = 0;
    struct lroom *rm;
    while ((rm = cf_map_next(r->by_name, &it)))
        fn(ud, rm->name, rm->len);
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
