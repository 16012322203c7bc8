/* blinks: see blinks.h. */
#include "blinks.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "frames.h"
#include "gateway.h"
#include "log.h"
#include "shard.h"
#include "sock.h"

#define HANDSHAKE_TIMEOUT_MS 5000
#define PING_EVERY_MS 10000
#define SILENCE_TIMEOUT_MS 30000

enum bstate { BL_DOWN, BL_HANDSHAKE, BL_UP };

struct blink {
    struct blinks *bs;
    uint32_t shard;
    char path[108];
    enum bstate st;
    struct lws *wsi;
    int fd;
    struct cf_bytes in, out;
    struct cf_backoff bo;
    lws_sorted_usec_list_t sul_retry;
    lws_sorted_usec_list_t sul_write;
    bool want_out; /* the socket was full: the rest goes at POLLOUT */
    int64_t opened, up_since, last_rx, last_ping;
    uint64_t peer_queue; /* the broker's queue bound, from its welcome (0: not told) */
    bool peer_queue_changed; /* the last welcome's bound differs from the one before */
    uint64_t ping_seq;
    uint32_t failures;
    bool broker_ready;   /* the broker's last "state": Redis and its canary are fine */
    bool broker_serving; /* ... or at least one of its Redis servers is */
    bool had_state;      /* a state frame came on this connection */
    /* This connection is ending (its queue was full, or a write failed):
     * it takes no more frames, so that what would be lost with it is
     * refused now (the caller says "retry later") rather than timed out. */
    bool resetting;
};

struct blinks {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    const struct cf_config *cfg;
    uint32_t n, up;
    struct blink *links;
    struct blinks_cbs cbs;
    void *ud;
    char node[CF_WIRE_MAX_NODE + 1];
    struct cf_wire_decoder *dec;
    lws_sorted_usec_list_t sul_flush; /* see link_send */
};

static void flush_cb(lws_sorted_usec_list_t *sul);

/* The longest wait between two attempts to reach a broker that went away. */
#define LINK_RETRY_CAP_MS 5000
static void link_connect(struct blink *l);

static void schedule_retry_cb(lws_sorted_usec_list_t *sul)
{
    struct blink *l = lws_container_of(sul, struct blink, sul_retry);
    link_connect(l);
}

static void schedule_retry(struct blink *l, const char *why)
{
    uint32_t delay = cf_backoff_next(&l->bo);
    l->failures++;
    if (l->failures == 1 || l->failures % 30 == 0)
        CF_WARN("link", "broker %u (%s): %s; retrying with backoff (attempt %u, next in %u ms)",
                l->shard, l->path, why, l->failures, delay);
    lws_sul_schedule(l->bs->ctx, 0, &l->sul_retry, schedule_retry_cb,
                     (lws_usec_t)delay * LWS_US_PER_MS);
}

/* Frames the broker's state needs (reset_on_full: joins, leaves, presence
 * unregistrations; and the link's own hello, ping and pong) may take this
 * share of the bound more: a queue filled
 * by messages while a broker stalls a moment must not cost a reset, and
 * with it a re-sync of the shard's members, each time someone leaves. */
#define STATE_RESERVE_DIV 16

/* Ends l's connection at lws' next service (not from inside a callback of
 * another connection); it takes no more frames meanwhile. */
static void link_kill(struct blink *l)
{
    l->resetting = true;
    lws_set_timeout(l->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Hands l's socket what it takes now; the rest waits for lws to say it is
 * writable. */
static void flush_one(struct blink *l)
{
    if (!l->wsi || l->want_out || !cf_bytes_len(&l->out))
        return;
    ssize_t w = cf_bytes_write_fd(&l->out, l->fd);
    if (w < 0) {
        CF_WARN("link", "broker %u: write failed: %s; resetting the link", l->shard,
                strerror((int)-w));
        l->want_out = true; /* nothing more until lws has closed it */
        link_kill(l);
    } else if (cf_bytes_len(&l->out)) { /* the socket is full */
        l->want_out = true;
        if (lws_callback_on_writable(l->wsi) < 0) {
            CF_WARN("link", "broker %u: cannot wait for room to write; resetting the link",
                    l->shard);
            link_kill(l);
        }
    }
}

void blinks_flush(struct blinks *b)
{
    if (!b)
        return;
    lws_sul_cancel(&b->sul_flush); /* link_send schedules it again if need be */
    for (uint32_t i = 0; i < b->n; i++)
        flush_one(&b->links[i]);
}

/* Queues a frame. A state frame past the reserve resets the link: its
 * state (joined rooms, presence) is rebuilt on reconnect, which is safer
 * than running with a hole in it. */
static int link_send(struct blink *l, const struct cf_wire_msg *m, bool reset_on_full)
{
    if (l->st == BL_DOWN || !l->wsi || l->resetting)
        return -ENOTCONN;
    bool was_empty = !cf_bytes_len(&l->out);
    size_t bound = l->out.max;
    if (reset_on_full) /* for this frame only: the others stay refused above the bound */
        l->out.max = bound + bound / STATE_RESERVE_DIV;
    int rc = cf_wire_encode(&l->out, m);
    if (rc == -ENOBUFS && !l->want_out) {
        /* Full before the pass's end wrote any of it (a relink's joins for
         * every local room of the shard, in one pass): the socket is
         * offered what is queued first, as a client's queue is. */
        size_t before = cf_bytes_len(&l->out);
        flush_one(l);
        if (cf_bytes_len(&l->out) < before)
            rc = cf_wire_encode(&l->out, m);
    }
    l->out.max = bound;
    if (rc < 0 && l->resetting) /* the flush's write failed */
        return -ENOTCONN;
    if (rc < 0) {
        if (rc == -ENOBUFS && reset_on_full) {
            CF_ERROR("link",
                     "broker %u: output queue full (%zu bytes, MAX_LINK_QUEUE_BYTES and "
                     "its reserve for room and presence changes); resetting the link",
                     l->shard, cf_bytes_len(&l->out));
            link_kill(l);
        }
        return rc;
    }
    /* Written by blinks_flush at the end of this loop pass. A frame queued
     * where no pass end follows before the next wait (an lws timer runs
     * before lws polls; sess_reap runs after blinks_flush) is written by a
     * timer due at once, which lws runs before it waits. */
    if (was_empty)
        lws_sul_schedule(l->bs->ctx, 0, &l->bs->sul_flush, flush_cb, 1);
    return 0;
}

static void link_connect(struct blink *l)
{
    struct blinks *b = l->bs;
    int fd = cf_sock_unix_connect(l->path);
    if (fd < 0) {
        schedule_retry(l,
                       fd == -ENOENT || fd == -ECONNREFUSED ? "broker not running" : strerror(-fd));
        return;
    }
    l->st = BL_HANDSHAKE;
    l->resetting = false;
    l->opened = l->last_rx = l->last_ping = cf_mono_ms();
    l->wsi = gw_adopt_raw(b->vh, &fd, BLINKS_PROTOCOL, l);
    l->fd = fd;
    if (!l->wsi) {
        if (fcntl(fd, F_GETFD) >= 0)
            close(fd);
        l->st = BL_DOWN;
        schedule_retry(l, "cannot adopt the socket into the event loop");
        return;
    }
    struct cf_wire_msg hello = {.type = CF_WIRE_HELLO, .shard = l->shard, .shards = b->n};
    hello.node = (struct cf_str){b->node, (uint32_t)strlen(b->node)};
    link_send(l, &hello, true);
}

static void link_down(struct blink *l)
{
    struct blinks *b = l->bs;
    bool was_up = l->st == BL_UP;
    lws_sul_cancel(&l->sul_write);
    l->want_out = false;
    l->st = BL_DOWN;
    l->broker_ready = false;
    l->broker_serving = false;
    l->had_state = false;
    l->wsi = NULL;
    l->fd = -1;
    cf_bytes_free(&l->in);
    cf_bytes_free(&l->out);
    if (was_up) {
        /* Not reset at the welcome: a broker that welcomes and then drops
         * the link (its queue to this gateway overflowing at each re-sync,
         * a frame it refuses) was tried again every 50-100 ms for good,
         * each time with a rejoin of the shard's rooms and a re-sync of its
         * members. */
        if (cf_backoff_settle(&l->bo, cf_mono_ms() - l->up_since))
            l->failures = 0;
        b->up--;
        CF_WARN("link", "broker %u link lost; reconnecting", l->shard);
        if (b->cbs.on_down)
            b->cbs.on_down(b->ud, l->shard);
    }
    schedule_retry(l, was_up ? "link lost" : "link closed during handshake");
}

static int handle_frame(struct blink *l, const unsigned char *p, size_t len)
{
    struct blinks *b = l->bs;
    struct cf_wire_msg m;
    const char *why;
    if (cf_wire_decode(b->dec, p, len, &m, &why) < 0) {
        CF_ERROR("link", "broker %u sent a bad frame (%s); resetting the link", l->shard, why);
        return -1;
    }
    if (l->st == BL_HANDSHAKE) {
        if (m.type != CF_WIRE_WELCOME || m.shard != l->shard || m.shards != b->n) {
            CF_ERROR("link",
                     "broker at %s did not welcome us as shard %u of %u (BROKERS "
                     "must match on every process); resetting",
                     l->path, l->shard, b->n);
            return -1;
        }
        l->st = BL_UP;
        l->up_since = cf_mono_ms();
        uint64_t peer_queue = (m.has & CF_WIRE_HAS_LINK_QUEUE) ? m.link_queue : 0;
        l->peer_queue_changed = peer_queue != l->peer_queue;
        l->peer_queue = peer_queue;
        if (l->bo.cap_ms != LINK_RETRY_CAP_MS) {
            /* the first link: the attempts of the start (every 250 ms at
             * most, while the broker came up) must not make the next
             * drop's first retry wait seconds */
            cf_backoff_reset(&l->bo);
            l->bo.cap_ms = LINK_RETRY_CAP_MS;
        }
        b->up++;
        CF_INFO("link", "broker %u linked (%.*s)", l->shard, (int)m.node.len, m.node.p);
        if (b->cbs.on_up)
            b->cbs.on_up(b->ud, l->shard);
        return 0;
    }
    switch (m.type) {
    case CF_WIRE_MSG:
    case CF_WIRE_TYPING:
    case CF_WIRE_PRESENCE:
    case CF_WIRE_SENT:
    case CF_WIRE_FAIL:
    case CF_WIRE_SUBBED:
    case CF_WIRE_HISTR:
        b->cbs.on_msg(b->ud, &m);
        return 0;
    case CF_WIRE_STATE:
        if (m.ready != l->broker_ready)
            CF_INFO("link", "broker %u is %s", l->shard,
                    m.ready ? "ready" : "NOT ready (its Redis or delivery canary is failing)");
        /* Ready again: the whole shard re-syncs. One of its Redis servers
         * usable again (while another is down, ready stays false): what that
         * server's rooms published meanwhile did not reach this gateway. */
        bool again = l->had_state && !l->broker_ready && m.ready;
        bool back = l->had_state && !again && (m.has & CF_WIRE_HAS_BACK) &&
                    (m.has & CF_WIRE_HAS_SERVERS) && m.back < m.servers;
        l->broker_ready = m.ready;
        l->broker_serving = (m.has & CF_WIRE_HAS_SERVING) ? m.serving || m.ready : m.ready;
        l->had_state = true;
        if ((again || back) && b->cbs.on_ready_again)
            b->cbs.on_ready_again(b->ud, l->shard, back ? (int)m.back : -1, m.servers);
        return 0;
    case CF_WIRE_PING: {
        struct cf_wire_msg pong = {.type = CF_WIRE_PONG, .seq = m.seq};
        return link_send(l, &pong, true) == -ENOBUFS ? -1 : 0;
    }
    case CF_WIRE_PONG:
        return 0;
    default:
        CF_ERROR("link", "broker %u sent an unexpected %s frame; resetting", l->shard,
                 cf_wire_type_name(m.type));
        return -1;
    }
}

static int on_frame(void *ud, const unsigned char *p, size_t len)
{
    return handle_frame(ud, p, len) < 0;
}

static int link_read(struct blink *l)
{
    static const struct cf_frames_ops ops = {on_frame, NULL};
    size_t got;
    int err = 0;
    enum cf_frames_rc rc = cf_frames_read(&l->in, l->fd, &ops, l, &got, &err);
    if (got)
        l->last_rx = cf_mono_ms();
    if (rc == CF_FRAMES_EOF)
        CF_DEBUG("link", "broker %u closed the link", l->shard);
    else if (rc == CF_FRAMES_ERROR)
        CF_WARN("link", "broker %u: read failed: %s", l->shard, strerror(err));
    else if (rc == CF_FRAMES_TOO_BIG)
        CF_ERROR("link", "broker %u sent an oversized frame; resetting", l->shard);
    return rc == CF_FRAMES_WAIT ? 0 : -1;
}

/* lws 4.1's raw-file role clears POLLOUT right after the WRITEABLE callback,
 * so a request made inside it is lost: ask again from outside. */
static void rearm_write_cb(lws_sorted_usec_list_t *sul)
{
    struct blink *l = lws_container_of(sul, struct blink, sul_write);
    if (l->wsi && cf_bytes_len(&l->out))
        lws_callback_on_writable(l->wsi);
}

static void flush_cb(lws_sorted_usec_list_t *sul)
{
    blinks_flush(lws_container_of(sul, struct blinks, sul_flush));
}

int blinks_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct blink *l = lws_get_opaque_user_data(wsi);
    if (!l)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        return link_read(l);
    case LWS_CALLBACK_RAW_WRITEABLE_FILE: {
        l->want_out = false;
        ssize_t w = cf_bytes_write_fd(&l->out, l->fd);
        if (w < 0) {
            CF_WARN("link", "broker %u: write failed: %s", l->shard, strerror((int)-w));
            return -1;
        }
        if (cf_bytes_len(&l->out)) { /* the socket is full: try when it drains */
            l->want_out = true;
            lws_sul_schedule(l->bs->ctx, 0, &l->sul_write, rearm_write_cb, 1);
        }
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (l->wsi == wsi)
            link_down(l);
        return 0;
    default:
        return 0;
    }
}

void blinks_tick(struct blinks *b)
{
    if (!b)
        return;
    int64_t now = cf_mono_ms();
    for (uint32_t i = 0; i < b->n; i++) {
        struct blink *l = &b->links[i];
        if (!l->wsi)
            continue;
        const char *why = NULL;
        if (l->st == BL_HANDSHAKE && now - l->opened > HANDSHAKE_TIMEOUT_MS)
            why = "no welcome within 5 s";
        else if (l->st == BL_UP && now - l->last_rx > SILENCE_TIMEOUT_MS)
            why = "broker silent for 30 s";
        if (why) {
            CF_WARN("link", "broker %u: %s; resetting the link", l->shard, why);
            link_kill(l);
            continue;
        }
        if (l->st == BL_UP && now - l->last_ping >= PING_EVERY_MS) {
            struct cf_wire_msg ping = {.type = CF_WIRE_PING, .seq = ++l->ping_seq};
            l->last_ping = now;
            link_send(l, &ping, true);
        }
    }
}

struct blinks *blinks_new(struct lws_context *ctx, struct lws_vhost *vh,
                          const struct cf_config *cfg, const char *node,
                          const struct blinks_cbs *cbs, void *ud)
{
    struct blinks *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ctx = ctx;
    b->vh = vh;
    b->cfg = cfg;
    b->n = (uint32_t)cfg->brokers;
    b->cbs = *cbs;
    b->ud = ud;
    snprintf(b->node, sizeof b->node, "%s", node);
    b->links = calloc(b->n, sizeof *b->links);
    b->dec = cf_wire_decoder_new();
    if (!b->links || !b->dec) {
        blinks_free(b);
        return NULL;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        struct blink *l = &b->links[i];
        l->bs = b;
        l->shard = i;
        l->fd = -1;
        cf_broker_socket_path(cfg, (int)i, l->path, sizeof l->path);
        cf_bytes_init(&l->in, CF_WIRE_HDR + CF_WIRE_MAX_FRAME);
        cf_bytes_keep(&l->in, CF_FRAMES_CHUNK); /* what every read reserves */
        cf_bytes_init(&l->out, (size_t)cfg->max_link_queue_bytes);
        /* Until first linked, retries stay under a quarter second: brokers
         * started with or just after the gateway (systemd starts them side
         * by side) are linked at once, and the gateway accepts no client
         * until they are (gateway.c, ACCEPT_HOLD_MS). LINK_RETRY_CAP_MS
         * applies from the first link on. */
        cf_backoff_init(&l->bo, 100, 250);
    }
    return b;
}

void blinks_start(struct blinks *b)
{
    for (uint32_t i = 0; i < b->n; i++)
        link_connect(&b->links[i]);
}

void blinks_free(struct blinks *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; b->links && i < b->n; i++) {
        struct blink *l = &b->links[i];
        lws_sul_cancel(&l->sul_retry);
        lws_sul_cancel(&l->sul_write);
        if (l->wsi)
            lws_set_opaque_user_data(l->wsi, NULL);
        cf_bytes_free(&l->in);
        cf_bytes_free(&l->out);
    }
    lws_sul_cancel(&b->sul_flush);
    free(b->links);
    cf_wire_decoder_free(b->dec);
    free(b);
}

uint32_t blinks_shard_of(const struct blinks *b, const char *room, size_t len)
{
    return cf_shard_of(room, len, b->n);
}

static struct blink *owner(struct blinks *b, const char *room, size_t len)
{
    return &b->links[cf_shard_of(room, len, b->n)];
}

static int room_op(struct blinks *b, enum cf_wire_type t, const char *room, size_t len)
{
    struct blink *l = owner(b, room, len);
    if (l->st != BL_UP)
        return -ENOTCONN; /* replayed by the owner's on_up */
    struct cf_wire_msg m = {.type = t, .room = {room, (uint32_t)len}};
    return link_send(l, &m, true);
}

int blinks_join(struct blinks *b, const char *room, size_t len)
{
    return room_op(b, CF_WIRE_JOIN, room, len);
}

int blinks_leave(struct blinks *b, const char *room, size_t len)
{
    return room_op(b, CF_WIRE_LEAVE, room, len);
}

static int publish(struct blinks *b, const struct cf_wire_msg *m, bool reset_on_full)
{
    struct blink *l = owner(b, m->room.p, m->room.len);
    if (l->st != BL_UP)
        return -ENOTCONN;
    return link_send(l, m, reset_on_full);
}

int blinks_publish(struct blinks *b, const struct cf_wire_msg *m)
{
    return publish(b, m, false);
}

int blinks_publish_state(struct blinks *b, const struct cf_wire_msg *m)
{
    return publish(b, m, true);
}

uint32_t blinks_count(const struct blinks *b)
{
    return b->n;
}

uint32_t blinks_up(const struct blinks *b)
{
    return b->up;
}

uint32_t blinks_ready(const struct blinks *b)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->n; i++)
        n += b->links[i].st == BL_UP && b->links[i].broker_ready;
    return n;
}

uint32_t blinks_serving(const struct blinks *b)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->n; i++)
        n += b->links[i].st == BL_UP && b->links[i].broker_serving;
    return n;
}

uint64_t blinks_peer_queue(const struct blinks *b, uint32_t shard)
{
    return b && shard < b->n ? b->links[shard].peer_queue : 0;
}

bool blinks_peer_queue_changed(const struct blinks *b, uint32_t shard)
{
    return b && shard < b->n && b->links[shard].peer_queue_changed;
}

bool blinks_link_up(const struct blinks *b, uint32_t shard)
{
    return shard < b->n && b->links[shard].st == BL_UP;
}

bool blinks_link_ready(const struct blinks *b, uint32_t shard)
{
    return shard < b->n && b->links[shard].st == BL_UP && b->links[shard].broker_ready;
}

size_t blinks_link_queued(const struct blinks *b, uint32_t shard)
{
    return shard < b->n ? cf_bytes_len(&b->links[shard].out) : 0;
}
