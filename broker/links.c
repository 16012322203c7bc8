/* links: see links.h. */
#include "links.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apause.h"
#include "clock.h"
#include "frames.h"
#include "log.h"
#include "logcap.h"
#include "sock.h"

#define HELLO_TIMEOUT_MS 5000
#define SILENCE_TIMEOUT_MS 35000 /* gateways ping every 10 s */
#define ACCEPT_BUDGET 64
/* A peer that has not said hello has proven nothing: its first frame may be
 * a hello's size (a few dozen bytes), not the wire's 4 MiB, held for the
 * hello's 5 s on each of as many connections as it opens. */
#define HELLO_MAX_FRAME 1024
/* Links at once, those before hello included. A node runs at most 64
 * gateway processes (GATEWAY_WORKERS), each with one link to each broker,
 * twice that during a restart: more is a local process opening connections
 * (each may hold a read buffer and a queue), refused at the door. */
#define MAX_LINKS 1024

enum lstate { L_HELLO, L_UP };

struct gwlink {
    struct gwlinks *g;
    uint64_t id;
    int fd;
    sd_event_source *io;
    enum lstate st;
    bool closing, dirty;
    struct cf_bytes in, out;
    struct cf_rel_end rooms;
    char node[CF_WIRE_MAX_NODE + 1];
    int64_t opened, last_rx;
    struct gwlink *prev, *next; /* all open links */
    struct gwlink *dirty_next;  /* links with output to flush this iteration */
    struct gwlink *dead_next;   /* links to free this iteration */
};

struct gwlinks {
    sd_event *ev;
    int lfd;
    int lock_fd; /* the socket path's flock, held while listening */
    sd_event_source *lio, *tick, *post;
    char path[108];
    uint32_t shard, shards;
    size_t max_queue;
    struct gwlinks_cbs cbs;
    void *ud;
    struct gwlink *head;
    size_t count; /* open, before hello and closing included */
    size_t up;    /* past hello, not closing */
    uint64_t next_id;
    struct gwlink *dirty, *dead;
    struct cf_wire_decoder *dec;
    uint64_t frames_in;  /* for memtrim (broker.c): work that allocates */
    struct apause pause; /* accepting, after running out of descriptors */
    struct cf_logcap refused_log;
};

static void arm_post(struct gwlinks *g)
{
    sd_event_source_set_enabled(g->post, SD_EVENT_ONESHOT);
}

static void link_close(struct gwlink *l, const char *why, bool error)
{
    if (l->closing)
        return;
    l->closing = true;
    if (l->st == L_UP)
        l->g->up--;
    if (error)
        CF_WARN("links", "closing link %llu (gateway %s): %s", (unsigned long long)l->id,
                l->node[0] ? l->node : "?", why);
    else if (l->st == L_HELLO) /* a probe (health check, test) that never said hello */
        CF_DEBUG("links", "link %llu closed before hello", (unsigned long long)l->id);
    else
        CF_INFO("links", "link %llu (gateway %s) closed: %s", (unsigned long long)l->id,
                l->node[0] ? l->node : "?", why);
    sd_event_source_set_enabled(l->io, SD_EVENT_OFF);
    l->dead_next = l->g->dead;
    l->g->dead = l;
    arm_post(l->g);
}

/* Takes l off the list of links to flush. Linear, but that list holds only
 * links written to in this iteration, out of a handful of gateways. */
static void undirty(struct gwlink *l)
{
    struct gwlink **pp = &l->g->dirty;
    while (*pp && *pp != l)
        pp = &(*pp)->dirty_next;
    if (*pp)
        *pp = l->dirty_next;
    l->dirty = false;
}

static void link_free(struct gwlink *l)
{
    struct gwlinks *g = l->g;
    if (g->cbs.on_close && l->st == L_UP) /* before its hello it holds nothing */
        g->cbs.on_close(g->ud, l);
    /* Written to and then closed in this iteration (or by the on_close just
     * above, through another link's answers): the list must not keep it. */
    if (l->dirty)
        undirty(l);
    if (l->prev)
        l->prev->next = l->next;
    else
        g->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    g->count--;
    sd_event_source_disable_unref(l->io);
    close(l->fd);
    cf_bytes_free(&l->in);
    cf_bytes_free(&l->out);
    cf_rel_end_free(&l->rooms);
    free(l);
}

static void mark_dirty(struct gwlink *l)
{
    if (l->dirty || l->closing)
        return;
    l->dirty = true;
    l->dirty_next = l->g->dirty;
    l->g->dirty = l;
    arm_post(l->g);
}

static void flush_link(struct gwlink *l)
{
    ssize_t w = cf_bytes_write_fd(&l->out, l->fd);
    if (w < 0) {
        link_close(l, strerror((int)-w), true);
        return;
    }
    sd_event_source_set_io_events(l->io, cf_bytes_len(&l->out) ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* End of a loop iteration: write what was queued, then free closed links.
 * Freeing a link runs on_close, which may answer other links' requests (and
 * close one whose queue overflows): so round again until both lists are
 * empty. It ends: a link is closed, and freed, only once. */
static int on_post(sd_event_source *s, void *ud)
{
    (void)s;
    struct gwlinks *g = ud;
    while (g->dirty || g->dead) {
        while (g->dirty) {
            struct gwlink *l = g->dirty;
            g->dirty = l->dirty_next;
            l->dirty = false;
            if (!l->closing)
                flush_link(l);
        }
        while (g->dead) {
            struct gwlink *l = g->dead;
            g->dead = l->dead_next;
            link_free(l);
        }
    }
    return 0;
}

void gwlinks_flush(struct gwlinks *g)
{
    if (!g->dirty && !g->dead)
        return;
    on_post(NULL, g);
    sd_event_source_set_enabled(g->post, SD_EVENT_OFF); /* on_post left nothing */
}

static int send_msg(struct gwlink *l, const struct cf_wire_msg *m)
{
    int rc = cf_wire_encode(&l->out, m);
    if (rc == -EINVAL) {
        /* a value that cannot go on the wire (e.g. from a tampered Redis):
         * refuse this one message, keep the link */
        CF_ERROR("links", "link %llu: cannot encode a %s frame (a field is out of range); "
                 "not sent", (unsigned long long)l->id, cf_wire_type_name(m->type));
        return rc;
    }
    if (rc < 0) {
        link_close(l, "output queue full: the gateway is not reading", true);
        return rc;
    }
    mark_dirty(l);
    return 0;
}

int gwlink_send(struct gwlink *l, const struct cf_wire_msg *m)
{
    if (l->closing || l->st != L_UP)
        return -EPIPE;
    return send_msg(l, m);
}

struct gwlink *gwlinks_find(struct gwlinks *g, uint64_t id)
{
    for (struct gwlink *l = g->head; l; l = l->next)
        if (l->id == id && !l->closing && l->st == L_UP)
            return l;
    return NULL;
}

bool gwlink_send_payload(struct gwlink *l, const void *payload, size_t len)
{
    if (l->closing || l->st != L_UP)
        return false;
    if (cf_wire_frame_raw(&l->out, payload, len) < 0) {
        link_close(l, "output queue full: the gateway is not reading", true);
        return false;
    }
    mark_dirty(l);
    return true;
}

static int handle_hello(struct gwlink *l, const struct cf_wire_msg *m)
{
    struct gwlinks *g = l->g;
    snprintf(l->node, sizeof l->node, "%.*s", (int)m->node.len, m->node.p);
    if (m->shard != g->shard || m->shards != g->shards) {
        CF_ERROR("links",
                 "gateway %s expects shard %u of %u, but this broker is shard %u of %u: every "
                 "process of a node must use the same BROKERS",
                 l->node, m->shard, m->shards, g->shard, g->shards);
        link_close(l, "shard mismatch", true);
        return -1;
    }
    struct cf_wire_msg w = {.type = CF_WIRE_WELCOME,
                            .shard = g->shard,
                            .shards = g->shards,
                            .link_queue = g->max_queue,
                            .has = CF_WIRE_HAS_LINK_QUEUE};
    char node[32];
    int n = snprintf(node, sizeof node, "broker-%u-%d", g->shard, (int)getpid());
    w.node = (struct cf_str){node, (uint32_t)n};
    if (send_msg(l, &w) < 0)
        return -1;
    l->st = L_UP;
    g->up++;
    CF_INFO("links", "link %llu up: gateway %s", (unsigned long long)l->id, l->node);
    if (g->cbs.on_up)
        g->cbs.on_up(g->ud, l);
    return 0;
}

static int handle_frame(struct gwlink *l, const unsigned char *p, size_t len)
{
    struct gwlinks *g = l->g;
    struct cf_wire_msg m;
    const char *why;
    if (cf_wire_decode(g->dec, p, len, &m, &why) < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "bad frame: %s", why);
        link_close(l, msg, true);
        return -1;
    }
    if (l->st == L_HELLO) {
        if (m.type != CF_WIRE_HELLO) {
            link_close(l, "first frame is not hello", true);
            return -1;
        }
        return handle_hello(l, &m);
    }
    switch (m.type) {
    case CF_WIRE_PING: {
        struct cf_wire_msg pong = {.type = CF_WIRE_PONG, .seq = m.seq};
        return send_msg(l, &pong);
    }
    case CF_WIRE_PONG:
        return 0;
    case CF_WIRE_JOIN:
    case CF_WIRE_LEAVE:
    case CF_WIRE_MSG:
    case CF_WIRE_SEND:
    case CF_WIRE_SUB:
    case CF_WIRE_UNSUB:
    case CF_WIRE_HIST:
    case CF_WIRE_TYPING:
        g->frames_in++;
        g->cbs.on_frame(g->ud, l, &m, p, len);
        return l->closing ? -1 : 0;
    default:
        link_close(l, "unexpected frame type after handshake", true);
        return -1;
    }
}

static int on_frame(void *ud, const unsigned char *p, size_t len)
{
    struct gwlink *l = ud;
    return handle_frame(l, p, len) < 0 || l->closing;
}

static uint32_t max_frame(void *ud)
{
    const struct gwlink *l = ud;
    return l->st == L_HELLO ? HELLO_MAX_FRAME : CF_WIRE_MAX_FRAME;
}

static void link_read(struct gwlink *l)
{
    static const struct cf_frames_ops ops = {on_frame, max_frame};
    if (l->closing)
        return;
    size_t got;
    int err = 0;
    enum cf_frames_rc rc = cf_frames_read(&l->in, l->fd, &ops, l, &got, &err);
    if (got)
        l->last_rx = cf_mono_ms();
    if (rc == CF_FRAMES_EOF)
        link_close(l, "gateway closed the link", false);
    else if (rc == CF_FRAMES_ERROR)
        link_close(l, strerror(err), true);
    else if (rc == CF_FRAMES_TOO_BIG)
        link_close(l,
                   l->st == L_HELLO ? "first frame too large for a hello"
                                    : "frame larger than the wire limit",
                   true);
}

static int on_link_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)fd;
    struct gwlink *l = ud;
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
        link_read(l);
    if (!l->closing && (revents & EPOLLOUT))
        flush_link(l);
    return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)revents;
    struct gwlinks *g = ud;
    for (int i = 0; i < ACCEPT_BUDGET; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            /* the listener is level-triggered: out of descriptors, trying
             * again at once would spin; the gateway waits in the backlog */
            apause_failed(&g->pause, errno);
            break;
        }
        apause_accepted(&g->pause);
        if (g->count >= MAX_LINKS) {
            CF_LOG_CAPPED(&g->refused_log, CF_LOG_WARN, "links",
                          "refused a connection to %s: %d links already (a gateway process "
                          "has one; is something else connecting?)",
                          g->path, MAX_LINKS);
            close(cfd);
            continue;
        }
        struct gwlink *l = calloc(1, sizeof *l);
        if (!l || sd_event_add_io(g->ev, &l->io, cfd, EPOLLIN, on_link_io, l) < 0) {
            CF_ERROR("links", "out of memory accepting a gateway link");
            free(l);
            close(cfd);
            continue;
        }
        l->g = g;
        l->id = ++g->next_id;
        l->fd = cfd;
        l->st = L_HELLO;
        l->opened = l->last_rx = cf_mono_ms();
        cf_bytes_init(&l->in, CF_WIRE_HDR + CF_WIRE_MAX_FRAME);
        cf_bytes_keep(&l->in, CF_FRAMES_CHUNK); /* what every read reserves */
        cf_bytes_init(&l->out, g->max_queue);
        l->next = g->head;
        if (g->head)
            g->head->prev = l;
        g->head = l;
        g->count++;
        CF_DEBUG("links", "link %llu accepted", (unsigned long long)l->id);
    }
    return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)usec;
    struct gwlinks *g = ud;
    int64_t now = cf_mono_ms();
    for (struct gwlink *l = g->head; l; l = l->next) {
        if (l->closing)
            continue;
        if (l->st == L_HELLO && now - l->opened > HELLO_TIMEOUT_MS)
            link_close(l, "no hello within 5 s", true);
        else if (l->st == L_UP && now - l->last_rx > SILENCE_TIMEOUT_MS)
            link_close(l, "gateway silent for 35 s", true);
    }
    sd_event_source_set_time_relative(s, 1000 * 1000);
    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
    return 0;
}

struct gwlinks *gwlinks_new(sd_event *ev, const char *path, uint32_t shard, uint32_t shards,
                            size_t max_queue, const struct gwlinks_cbs *cbs, void *ud)
{
    struct gwlinks *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->ev = ev;
    g->shard = shard;
    g->shards = shards;
    g->max_queue = max_queue;
    g->cbs = *cbs;
    g->ud = ud;
    g->lfd = -1;
    g->lock_fd = -1;
    g->next_id = GWLINK_ID_FIRST - 1;
    snprintf(g->path, sizeof g->path, "%s", path);
    g->dec = cf_wire_decoder_new();
    if (!g->dec)
        goto fail;
    char dir[sizeof g->path];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    int drc = slash && slash != dir ? cf_sock_dir_private(dir) : 0;
    if (drc < 0) {
        CF_ERROR("links", "RUN_DIR %s cannot be made private (no access for others): %s; "
                 "create it owned by this user with mode 0750", dir, strerror(-drc));
        goto fail;
    }
    if (drc > 0)
        CF_WARN("links", "RUN_DIR %s is open to other users and belongs to another user, so "
                "it stays so; the sockets are 0660. Give the service its own directory "
                "(mode 0750) unless only trusted processes share this one", dir);
    g->lfd = cf_sock_unix_listen(path, 0660, 128, &g->lock_fd);
    if (g->lfd < 0) {
        if (g->lfd == -EADDRINUSE)
            CF_ERROR("links", "%s is in use by a running broker: is shard %u already running?",
                     path, shard);
        else
            CF_ERROR("links",
                     "cannot listen on %s: %s (is RUN_DIR writable, and are the socket "
                     "and its lock file %s.lock this user's? A stale one another user left, "
                     "e.g. from a run with sudo, must be removed)",
                     path, strerror(-g->lfd), path);
        goto fail;
    }
    if (sd_event_add_io(ev, &g->lio, g->lfd, EPOLLIN, on_accept, g) < 0 ||
        sd_event_add_defer(ev, &g->post, on_post, g) < 0 ||
        sd_event_add_time_relative(ev, &g->tick, CLOCK_MONOTONIC, 1000 * 1000, 100 * 1000,
                                   on_tick, g) < 0)
        goto fail;
    char what[sizeof g->path + 32];
    snprintf(what, sizeof what, "gateway links on %s", path);
    if (apause_init(&g->pause, ev, g->lio, "links", what) < 0)
        goto fail;
    /* Normal priority on purpose: sd-event dispatches one source per
     * iteration, so an idle-priority flush could starve under steady input. */
    sd_event_source_set_enabled(g->post, SD_EVENT_OFF);
    return g;
fail:
    gwlinks_free(g);
    return NULL;
}

void gwlinks_free(struct gwlinks *g)
{
    if (!g)
        return;
    for (struct gwlink *l = g->head; l; l = l->next)
        if (!l->closing)
            cf_bytes_write_fd(&l->out, l->fd); /* best effort, never blocks */
    while (g->head)
        link_free(g->head);
    apause_free(&g->pause);
    g->lio = sd_event_source_disable_unref(g->lio);
    g->tick = sd_event_source_disable_unref(g->tick);
    g->post = sd_event_source_disable_unref(g->post);
    cf_sock_unix_unlisten(g->path, g->lfd, g->lock_fd);
    cf_wire_decoder_free(g->dec);
    free(g);
}

struct cf_rel_end *gwlink_rooms(struct gwlink *l)
{
    return &l->rooms;
}

uint64_t gwlink_id(const struct gwlink *l)
{
    return l->id;
}

const char *gwlink_node(const struct gwlink *l)
{
    return l->node;
}

void gwlinks_stop_accepting(struct gwlinks *g)
{
    apause_stop(&g->pause); /* a pause ending later must not accept again */
    if (g->lio)
        sd_event_source_set_enabled(g->lio, SD_EVENT_OFF);
}

bool gwlinks_flushed(const struct gwlinks *g)
{
    for (const struct gwlink *l = g->head; l; l = l->next)
        if (!l->closing && cf_bytes_len(&l->out))
            return false;
    return true;
}

void gwlinks_broadcast(struct gwlinks *g, const struct cf_wire_msg *m)
{
    for (struct gwlink *l = g->head; l; l = l->next)
        gwlink_send(l, m);
}

uint64_t gwlinks_activity(const struct gwlinks *g)
{
    return g->frames_in + g->next_id;
}

size_t gwlinks_count(const struct gwlinks *g)
{
    return g->up;
}
