/* broker: see broker.h. The path of a message through here:
 *   gateway link --msg--> rooms_publish --PUBLISH--> Redis
 *   Redis --message--> on_redis_message (validated) --> rooms --> each gateway link
 */
#include "broker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "links.h"
#include "log.h"
#include "redis.h"
#include "rooms.h"
#include "shard.h"
#include "wire.h"

struct broker {
    const struct cf_config *cfg;
    uint32_t shard, shards;
    sd_event *ev;
    struct gwlinks *links;
    struct rooms *rooms;
    struct rbridge *redis;
    struct cf_wire_decoder *dec;
    uint64_t foreign, publish_dropped, misrouted;
};

/* ---- rooms -> I/O ------------------------------------------------------ */

static int op_subscribe(void *ud, const char *name, size_t len)
{
    struct broker *b = ud;
    return rbridge_subscribe(b->redis, name, len);
}

static int op_unsubscribe(void *ud, const char *name, size_t len)
{
    struct broker *b = ud;
    return rbridge_unsubscribe(b->redis, name, len);
}

static int op_publish(void *ud, const char *name, size_t len, const void *p, size_t plen)
{
    struct broker *b = ud;
    return rbridge_publish(b->redis, name, len, p, plen);
}

static void op_deliver(void *ud, void *link, const void *p, size_t plen)
{
    (void)ud;
    gwlink_send_payload(link, p, plen);
}

static const struct rooms_ops room_ops = {op_subscribe, op_unsubscribe, op_publish, op_deliver};

/* ---- gateway links ----------------------------------------------------- */

static bool owned(struct broker *b, struct gwlink *l, const struct cf_wire_msg *m)
{
    if (cf_shard_of(m->room.p, m->room.len, b->shards) == b->shard)
        return true;
    if (b->misrouted++ % 1000 == 0)
        CF_WARN("broker", "gateway %s sent %s for room %.*s, which shard %u does not own "
                "(%llu such frames dropped)", gwlink_node(l), cf_wire_type_name(m->type),
                (int)m->room.len, m->room.p, b->shard, (unsigned long long)b->misrouted);
    return false;
}

static void on_frame(void *ud, struct gwlink *l, const struct cf_wire_msg *m,
                     const unsigned char *payload, size_t len)
{
    struct broker *b = ud;
    if (!owned(b, l, m))
        return;
    switch (m->type) {
    case CF_WIRE_JOIN:
        if (rooms_join(b->rooms, l, gwlink_rooms(l), m->room.p, m->room.len) < 0)
            CF_ERROR("broker", "out of memory: gateway %s could not join room %.*s",
                     gwlink_node(l), (int)m->room.len, m->room.p);
        break;
    case CF_WIRE_LEAVE:
        rooms_leave(b->rooms, l, gwlink_rooms(l), m->room.p, m->room.len);
        break;
    case CF_WIRE_MSG: {
        int rc = rooms_publish(b->rooms, m->room.p, m->room.len, payload, len);
        if (rc < 0 && b->publish_dropped++ % 1000 == 0)
            CF_WARN("broker", "message for room %.*s dropped: %s (%llu dropped so far)",
                    (int)m->room.len, m->room.p,
                    rc == -ENOTCONN ? "Redis is not connected" : strerror(-rc),
                    (unsigned long long)b->publish_dropped);
        break;
    }
    default:
        break;
    }
}

static void on_link_close(void *ud, struct gwlink *l)
{
    struct broker *b = ud;
    rooms_drop_link(b->rooms, gwlink_rooms(l));
}

/* ---- Redis ------------------------------------------------------------- */

static void count_foreign(struct broker *b, const char *what, const char *chan, size_t len)
{
    if (b->foreign++ % 1000 == 0)
        CF_WARN("broker", "dropped a message on Redis channel %.*s: %s (%llu dropped so far)",
                (int)(len > 80 ? 80 : len), chan, what, (unsigned long long)b->foreign);
}

static void on_redis_message(void *ud, const char *name, size_t len, const char *payload,
                             size_t plen)
{
    struct broker *b = ud;
    struct cf_wire_msg m;
    const char *why;
    /* Anyone with access to Redis can PUBLISH here: only well-formed room
     * messages for this very room go on to gateways. */
    if (cf_wire_decode(b->dec, payload, plen, &m, &why) < 0) {
        count_foreign(b, why, name, len);
        return;
    }
    if (m.type != CF_WIRE_MSG || m.room.len != len || memcmp(m.room.p, name, len) != 0) {
        count_foreign(b, "not a message for this room", name, len);
        return;
    }
    rooms_on_message(b->rooms, name, len, payload, plen);
}

static void on_foreign(void *ud, const char *chan, size_t len)
{
    count_foreign(ud, "not a room channel", chan, len);
}

static void on_confirm(void *ud, const char *name, size_t len)
{
    struct broker *b = ud;
    rooms_on_confirm(b->rooms, name, len);
}

static void on_sub_lost(void *ud)
{
    struct broker *b = ud;
    rooms_on_sub_lost(b->rooms);
}

static void on_sub_ready(void *ud)
{
    struct broker *b = ud;
    rooms_on_sub_ready(b->rooms);
}

static void on_pub_ready(void *ud)
{
    struct broker *b = ud;
    rooms_on_pub_ready(b->rooms);
}

static void on_state(void *ud, bool ready)
{
    struct broker *b = ud;
    struct rooms_stats rs;
    rooms_stats(b->rooms, &rs);
    if (ready)
        CF_INFO("broker", "shard %u of %u ready: Redis connected, %llu rooms, %zu gateway links",
                b->shard, b->shards, (unsigned long long)rs.rooms, gwlinks_count(b->links));
    else
        CF_WARN("broker", "shard %u of %u degraded: Redis is not fully connected", b->shard,
                b->shards);
}

/* ---- life cycle -------------------------------------------------------- */

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
    (void)ud;
    CF_INFO("broker", "received %s; shutting down", strsignal((int)si->ssi_signo));
    sd_event_exit(sd_event_source_get_event(s), 0);
    return 0;
}

int broker_run(const struct cf_config *cfg, uint32_t shard, uint32_t shards)
{
    struct broker b = {.cfg = cfg, .shard = shard, .shards = shards};
    int rc = 1;
    char path[128];
    struct cf_redis_addr addr;
    if (cf_broker_socket_path(cfg, (int)shard, path, sizeof path) < 0 ||
        cf_redis_addr_parse(cfg->redis_addr, &addr) < 0)
        return 1; /* validated at config load */

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (sd_event_new(&b.ev) < 0 || sd_event_add_signal(b.ev, NULL, SIGTERM, on_signal, &b) < 0 ||
        sd_event_add_signal(b.ev, NULL, SIGINT, on_signal, &b) < 0) {
        CF_ERROR("broker", "cannot create the event loop");
        goto out;
    }
    b.dec = cf_wire_decoder_new();
    b.rooms = rooms_new(&room_ops, &b, (size_t)cfg->max_link_queue_bytes);
    if (!b.dec || !b.rooms) {
        CF_ERROR("broker", "out of memory at start-up");
        goto out;
    }
    const struct rbridge_cbs rcbs = {.on_message = on_redis_message,
                                     .on_foreign = on_foreign,
                                     .on_confirm = on_confirm,
                                     .on_sub_lost = on_sub_lost,
                                     .on_sub_ready = on_sub_ready,
                                     .on_pub_ready = on_pub_ready,
                                     .on_state = on_state};
    b.redis = rbridge_new(b.ev, &addr, cfg->redis_password, (size_t)cfg->max_link_queue_bytes,
                          &rcbs, &b);
    if (!b.redis)
        goto out;
    const struct gwlinks_cbs lcbs = {on_frame, on_link_close};
    b.links = gwlinks_new(b.ev, path, shard, shards, (size_t)cfg->max_link_queue_bytes, &lcbs, &b);
    if (!b.links)
        goto out;
    CF_INFO("broker", "shard %u of %u listening on %s, Redis at %s", shard, shards, path,
            cfg->redis_addr);
    rc = sd_event_loop(b.ev) < 0 ? 1 : 0;
out:
    gwlinks_free(b.links); /* drops every membership through on_link_close */
    rbridge_free(b.redis);
    rooms_free(b.rooms);
    cf_wire_decoder_free(b.dec);
    sd_event_unref(b.ev);
    return rc;
}
