/* redis: see redis.h. */
#include "redis.h"
#include "redis_int.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "validate.h"

#define CONNECT_TIMEOUT_MS 5000
#define REPLY_TIMEOUT_MS 10000 /* a command unanswered this long: the link is wedged */
#define IDLE_PING_MS 5000
#define HEALTH_TICK_MS 1000
#define READ_CHUNK 65536
#define READ_BUDGET (512 * 1024) /* bytes read per wakeup, for fairness */
static void conn_start(struct rconn *rc);
static void without_lookup(struct rconn *rc, const char *why);
static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud);

static int on_timer(sd_event_source *s, uint64_t usec, void *ud);
static void read_replies(struct rconn *rc);

/* One timer per connection; what it means depends on the state: retry when
 * down, give up when connecting, check health when up. */
static void timer_in(struct rconn *rc, int64_t ms)
{
    uint64_t usec = (uint64_t)ms * 1000;
    if (!rc->timer) {
        if (sd_event_add_time_relative(rc->b->ev, &rc->timer, CLOCK_MONOTONIC, usec, 1000, on_timer,
                                       rc) < 0)
            CF_ERROR("redis", "cannot arm a timer; Redis reconnection may stall");
        return;
    }
    sd_event_source_set_time_relative(rc->timer, usec);
    sd_event_source_set_enabled(rc->timer, SD_EVENT_ONESHOT);
}

static void update_state(struct rbridge *b)
{
    bool ready = b->sub.st == C_UP && b->pub.st == C_UP;
    if (ready != b->ready) {
        b->ready = ready;
        /* After any reconnect, readiness needs a fresh round trip: an old
         * one says nothing about the new connections. */
        b->canary_ok_at = 0;
        b->canary_was_ok = false;
        if (ready) {
            b->ready_since = cf_mono_ms();
            rb__canary_send(b); /* readiness should not wait for the next round */
        }
        if (b->cbs.on_state)
            b->cbs.on_state(b->ud, ready);
    }
}

/* The batcher holds calls not yet queued: they go before whatever is queued
 * next, so Redis runs every command in the order it was asked for. */
static void run_hook(struct rbridge *b, enum rbridge_event ev)
{
    if (!b->hook.fn)
        return;
    if (b->in_hook) {
        b->hook_down |= ev == RBRIDGE_DOWN;
        return;
    }
    b->in_hook = true;
    b->hook.fn(b->hook.ud, ev);
    while (b->hook_down) { /* the connection failed under the hook */
        b->hook_down = false;
        b->hook.fn(b->hook.ud, RBRIDGE_DOWN);
    }
    b->in_hook = false;
}

/* ---- writing ---------------------------------------------------------- */

static void set_events(struct rconn *rc, uint32_t ev)
{
    if (rc->io)
        sd_event_source_set_io_events(rc->io, ev);
}

size_t rb__queued(const struct rconn *rc)
{
    return sdslen(rc->c->obuf) - rc->woff;
}

/* An output buffer this large is freed once written, not kept. */
#define OBUF_KEEP (64 * 1024)

/* Written here, not by hiredis' redisBufferWrite, which moves what is left
 * of the buffer to its front after every partial write: against a Redis
 * that reads slowly, a queue of MAX_LINK_QUEUE_BYTES (64 MiB) was copied
 * once per socket buffer's worth written, gigabytes to drain it. Here the
 * written part is skipped (woff) and moved out once it is most of the
 * buffer or half the queue's bound: a byte written costs at most two moved,
 * and the buffer stays under 1.5 times the bound (the queue refills as it
 * drains). The move is by hand: hiredis 0.14's sdsrange takes int offsets,
 * which a buffer past 2 GiB (the bound may be 1 GiB) would overflow. */
static void flush_now(struct rconn *rc)
{
    if (!rc->c || rc->st == C_DOWN || rc->st == C_CONNECTING)
        return;
    redisContext *c = rc->c;
    for (size_t len = sdslen(c->obuf); rc->woff < len;) {
        ssize_t n = write(c->fd, c->obuf + rc->woff, len - rc->woff);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break; /* the socket is full */
        if (n <= 0) {
            char why[128]; /* rb__fail frees the context */
            snprintf(why, sizeof why, "write failed: %s", n < 0 ? strerror(errno) : "wrote 0");
            rb__fail(rc, why);
            return;
        }
        rc->woff += (size_t)n;
    }
    bool done = rc->woff == sdslen(c->obuf);
    if (done && sdsalloc(c->obuf) > OBUF_KEEP) {
        sds fresh = sdsempty();
        if (!fresh) {
            rb__fail(rc, "out of memory");
            return;
        }
        sdsfree(c->obuf);
        c->obuf = fresh;
        rc->woff = 0;
    } else if (done) {
        sdsclear(c->obuf);
        rc->woff = 0;
    } else if (rc->woff > sdslen(c->obuf) / 2 || rc->woff >= rc->b->max_queue / 2) {
        size_t left = sdslen(c->obuf) - rc->woff;
        memmove(c->obuf, c->obuf + rc->woff, left);
        sdssetlen(c->obuf, left);
        c->obuf[left] = '\0';
        rc->woff = 0;
    }
    set_events(rc, done ? EPOLLIN : EPOLLIN | EPOLLOUT);
}

static int on_flush(sd_event_source *s, void *ud)
{
    (void)s;
    struct rconn *rc = ud;
    if (!rc->is_sub && rc->st == C_UP)
        run_hook(rc->b, RBRIDGE_FLUSH);
    flush_now(rc);
    return 0;
}

static void flush_due(struct rconn *rc)
{
    int on = SD_EVENT_OFF;
    if (!rc->flush || sd_event_source_get_enabled(rc->flush, &on) < 0 || on == SD_EVENT_OFF)
        return;
    on_flush(NULL, rc);
    /* after: queueing what the batcher held asked for this flush again */
    if (rc->flush)
        sd_event_source_set_enabled(rc->flush, SD_EVENT_OFF);
}

void rbridge_drop_sub(struct rbridge *b, const char *why)
{
    if (b->sub.st == C_UP)
        rb__fail(&b->sub, why);
}

void rbridge_flush(struct rbridge *b)
{
    flush_due(&b->pub);
    flush_due(&b->sub);
}

/* Tells everyone still waiting that their command's outcome is unknown. */
static void fail_waiters(struct rconn *rc)
{
    struct waiter w;
    while (rb__pop_waiter(rc, &w))
        if (w.fn)
            w.fn(w.ud, NULL);
}

static int queue(struct rconn *rc, int argc, const char **argv, const size_t *lens, struct waiter w,
                 bool bounded)
{
    bool allowed = rc->st == C_UP || (rc->st == C_AUTH && !strcmp(argv[0], "AUTH")) ||
                   (rc->st == C_SCRIPTS && !strcmp(argv[0], "SCRIPT"));
    if (!allowed)
        return -ENOTCONN;
    if (!rc->is_sub && rc->st == C_UP)
        run_hook(rc->b, RBRIDGE_FLUSH);
    if (rc->st != C_UP && rc->st != C_AUTH && rc->st != C_SCRIPTS)
        return -ENOTCONN; /* writing what the batcher held (at once, rb__kick) failed */
    if (bounded && rb__queued(rc) > rc->b->max_queue)
        return -ENOBUFS;
    int pushed = rc->is_sub ? 0 : rb__push_waiter(rc, w, bounded);
    if (pushed < 0)
        return pushed;
    int rv = rb__append(rc->c, argc, argv, lens);
    if (rv < 0) {
        if (!rc->is_sub)
            rc->w_count--; /* take back the waiter just pushed */
        return rv;
    }
    rc->last_tx = cf_mono_ms();
    if (rc->pending++ == 0)
        rc->busy_since = rc->last_tx;
    rb__kick(rc);
    return 0;
}

int rb__queue(struct rconn *rc, int argc, const char **argv, const size_t *lens, struct waiter w)
{
    return queue(rc, argc, argv, lens, w, true);
}

int rb__queue_past_bound(struct rconn *rc, int argc, const char **argv, const size_t *lens)
{
    return queue(rc, argc, argv, lens, (struct waiter){NULL, NULL, -1}, false);
}

void rb__kick(struct rconn *rc)
{
    if (!rc->flush && sd_event_add_defer(rc->b->ev, &rc->flush, on_flush, rc) < 0) {
        on_flush(NULL, rc);
        return;
    }
    sd_event_source_set_enabled(rc->flush, SD_EVENT_ONESHOT);
}

static int queue_cmd(struct rconn *rc, int argc, const char **argv, const size_t *lens)
{
    return rb__queue(rc, argc, argv, lens, (struct waiter){NULL, NULL, -1});
}

/* ---- connection life cycle --------------------------------------------- */

/* How long Redis has owed a reply: since the last reply, or since the
 * command was sent if nothing was in flight before it. Never more than the
 * oldest command's age (replies come in order), so the timeout runs from that
 * command at the earliest. The last reply alone would not do: after an idle
 * spell it can be ~5-6 s old (the idle PING, the canary), and a command sent
 * then was declared lost after only ~4-5 s. */
static int64_t unanswered_ms(const struct rconn *rc, int64_t now)
{
    return now - (rc->last_rx > rc->busy_since ? rc->last_rx : rc->busy_since);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct rconn *rc = ud;
    int64_t now = cf_mono_ms();
    if (rc->st == C_DOWN) {
        conn_start(rc);
        return 0;
    }
    if (rc->st == C_CONNECTING && rc->rs) { /* a resolver that does not answer */
        resolve_cancel(rc->rs);
        rc->rs = NULL;
        char why[sizeof rc->b->addr.host + 60];
        snprintf(why, sizeof why, "looking %s up timed out", rc->b->addr.host);
        without_lookup(rc, why);
        return 0;
    }
    if (rc->st == C_CONNECTING || rc->st == C_AUTH || rc->st == C_SCRIPTS) {
        rb__fail(rc, "connection attempt timed out");
        return 0;
    }
    if (rc->st != C_UP)
        return 0;
    cf_backoff_settle(&rc->bo, now - rc->up_since);
    if (!rc->is_sub)
        rb__shrink_waiters(rc);
    if (rc->pending > 0 && unanswered_ms(rc, now) > REPLY_TIMEOUT_MS) {
        /* Replies may be sitting in the socket: after this process was
         * stopped (SIGSTOP, a long GC-like stall) the timer can run first. */
        read_replies(rc);
        if (rc->st != C_UP)
            return 0;
        if (rc->pending > 0 && unanswered_ms(rc, cf_mono_ms()) > REPLY_TIMEOUT_MS) {
            rb__fail(rc, "no reply from Redis for 10 s");
            return 0;
        }
    }
    if (rc->pending == 0 && now - rc->last_rx >= IDLE_PING_MS &&
        now - rc->last_tx >= IDLE_PING_MS) {
        const char *argv[] = {"PING"};
        size_t lens[] = {4};
        queue_cmd(rc, 1, argv, lens);
    }
    timer_in(rc, HEALTH_TICK_MS);
    return 0;
}

static void conn_teardown(struct rconn *rc)
{
    resolve_cancel(rc->rs);
    rc->rs = NULL;
    rc->io = sd_event_source_disable_unref(rc->io);
    if (rc->flush)
        sd_event_source_set_enabled(rc->flush, SD_EVENT_OFF);
    if (rc->c) {
        redisFree(rc->c);
        rc->c = NULL;
    }
    rc->woff = 0;
    rc->pending = 0;
    rc->st = C_DOWN; /* before the waiters hear of it: they may queue again */
    fail_waiters(rc);
    rb__shrink_waiters(rc);
    if (!rc->is_sub)
        run_hook(rc->b, RBRIDGE_DOWN); /* held calls came after every waiter */
}

void rb__fail(struct rconn *rc, const char *why)
{
    struct rbridge *b = rc->b;
    bool was_up = rc->st == C_UP;
    conn_teardown(rc);
    rc->st = C_DOWN;
    uint32_t delay = cf_backoff_next(&rc->bo);
    rc->failures++;
    if (was_up) {
        b->reconnects++;
        CF_WARN("redis", "%s connection to %s lost: %s; reconnecting in %u ms", rc->role,
                b->addr_str, why, delay);
    } else if (rc->failures == 1 || rc->failures % 20 == 0) {
        CF_WARN("redis", "cannot connect %s to %s: %s; retrying with backoff (attempt %u)",
                rc->role, b->addr_str, why, rc->failures);
    }
    timer_in(rc, delay);
    update_state(b);
    if (was_up && rc->is_sub && b->cbs.on_sub_lost)
        b->cbs.on_sub_lost(b->ud);
    if (was_up && !rc->is_sub && b->cbs.on_pub_lost)
        b->cbs.on_pub_lost(b->ud);
}

static void conn_up(struct rconn *rc);

/* The publisher loads the scripts before it counts as up, so that EVALSHA
 * never races SCRIPT LOAD (and a restarted Redis gets them again). */
static void conn_authed(struct rconn *rc)
{
    struct rbridge *b = rc->b;
    if (rc->is_sub || b->nscripts == 0) {
        conn_up(rc);
        return;
    }
    rc->st = C_SCRIPTS;
    b->scripts_pending = b->nscripts;
    for (int i = 0; i < b->nscripts; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", b->scripts[i]};
        size_t lens[] = {6, 4, strlen(b->scripts[i])};
        if (rb__queue(rc, 3, argv, lens, (struct waiter){NULL, NULL, i}) < 0) {
            rb__fail(rc, "cannot queue SCRIPT LOAD");
            return;
        }
    }
}

static void conn_up(struct rconn *rc)
{
    struct rbridge *b = rc->b;
    rc->st = C_UP;
    rc->failures = 0;
    /* The backoff is reset only once the connection has proved stable (see
     * on_timer): a server that accepts and then fails at once (maxclients,
     * a refused command) must not be hammered. */
    rc->last_rx = rc->last_tx = rc->up_since = cf_mono_ms();
    CF_INFO("redis", "%s connected to %s", rc->role, b->addr_str);
    timer_in(rc, HEALTH_TICK_MS);
    if (rc->is_sub) {
        const char *argv[] = {"SUBSCRIBE", b->canary};
        size_t lens[] = {9, strlen(b->canary)};
        queue_cmd(rc, 2, argv, lens);
    }
    update_state(b);
    if (rc->is_sub && b->cbs.on_sub_ready)
        b->cbs.on_sub_ready(b->ud);
    if (!rc->is_sub && b->cbs.on_pub_ready)
        b->cbs.on_pub_ready(b->ud);
}

/* Connects to `host` (a socket path, or a numeric address: no lookup). */
static void conn_open(struct rconn *rc, const char *host)
{
    struct rbridge *b = rc->b;
    rc->woff = 0;
    rc->c = b->addr.is_unix ? redisConnectUnixNonBlock(host)
                            : redisConnectNonBlock(host, b->addr.port);
    if (!rc->c || rc->c->err) {
        char why[160];
        snprintf(why, sizeof why, "%s", rc->c ? rc->c->errstr : "out of memory");
        rb__fail(rc, why);
        return;
    }
    rreply_use(rc->c->reader, rc->arena);
    if (sd_event_add_io(b->ev, &rc->io, rc->c->fd, EPOLLOUT, on_io, rc) < 0) {
        rb__fail(rc, "cannot watch the socket");
        return;
    }
    rc->st = C_CONNECTING;
    timer_in(rc, CONNECT_TIMEOUT_MS);
}

/* The host could not be looked up (`why`): connect to the address it had,
 * if it had one; Redis may well be up there while DNS is not. */
static void without_lookup(struct rconn *rc, const char *why)
{
    struct rbridge *b = rc->b;
    if (!b->last_ip[0]) {
        rb__fail(rc, why);
        return;
    }
    if (rc->failures <= 1 || rc->failures % 20 == 0) /* the drop counted one */
        CF_WARN("redis", "%s; connecting %s to the address it had, %s", why, rc->role,
                b->last_ip);
    conn_open(rc, b->last_ip);
}

static void on_resolved(void *ud, const char *ip, const char *err)
{
    struct rconn *rc = ud;
    struct rbridge *b = rc->b;
    rc->rs = NULL;
    if (!ip) {
        without_lookup(rc, err);
        return;
    }
    snprintf(b->last_ip, sizeof b->last_ip, "%s", ip);
    conn_open(rc, ip);
}

static void conn_start(struct rconn *rc)
{
    struct rbridge *b = rc->b;
    if (b->addr.is_unix || resolve_is_numeric(b->addr.host)) {
        conn_open(rc, b->addr.host);
        return;
    }
    rc->rs = resolve_start(b->ev, b->addr.host, on_resolved, rc);
    if (!rc->rs) { /* e.g. lookups that hang fill RESOLVE_MAX_RUNNING */
        char why[sizeof b->addr.host + 100];
        snprintf(why, sizeof why, "cannot start looking %s up: %s", b->addr.host,
                 strerror(errno));
        without_lookup(rc, why);
        return;
    }
    rc->st = C_CONNECTING; /* the lookup's time limit; connecting gets its own after it */
    timer_in(rc, CONNECT_TIMEOUT_MS);
}

static void connected(struct rconn *rc)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(rc->c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        rb__fail(rc, strerror(err));
        return;
    }
    if (!rc->b->addr.is_unix)
        redisEnableKeepAlive(rc->c); /* a dead peer is noticed even when idle */
    set_events(rc, EPOLLIN);
    if (rc->b->password[0]) {
        rc->st = C_AUTH;
        bool user = rc->b->user[0] != '\0';
        const char *argv[] = {"AUTH", user ? rc->b->user : rc->b->password, rc->b->password};
        size_t lens[] = {4, strlen(argv[1]), strlen(rc->b->password)};
        if (queue_cmd(rc, user ? 3 : 2, argv, lens) < 0)
            rb__fail(rc, "cannot queue AUTH");
        return;
    }
    conn_authed(rc);
}

/* ---- replies ----------------------------------------------------------- */

static bool str_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           (size_t)r->len == n && strncasecmp(r->str, s, n) == 0;
}

/* The room of a "room:<name>" channel; false for any other channel. */
static bool room_of(const redisReply *ch, const char **name, size_t *len)
{
    if (!ch || ch->type != REDIS_REPLY_STRING || (size_t)ch->len <= ROOM_PREFIX_LEN ||
        memcmp(ch->str, ROOM_PREFIX, ROOM_PREFIX_LEN) != 0)
        return false;
    *name = ch->str + ROOM_PREFIX_LEN;
    *len = (size_t)ch->len - ROOM_PREFIX_LEN;
    return cf_room_valid(*name, *len);
}

/* Returns -1 when the connection must be reset. */
static int handle_sub_reply(struct rconn *rc, redisReply *r)
{
    struct rbridge *b = rc->b;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && str_is(r->element[0], "message")) {
        const redisReply *ch = r->element[1], *pl = r->element[2];
        if (pl->type != REDIS_REPLY_STRING)
            return 0;
        const char *name;
        size_t len;
        if (rb__is_canary(b, ch)) {
            rb__canary_back(b, pl->str, (size_t)pl->len);
            return 0;
        }
        b->received++;
        if (room_of(ch, &name, &len))
            b->cbs.on_message(b->ud, name, len, pl->str, (size_t)pl->len);
        else if (ch->type == REDIS_REPLY_STRING && b->cbs.on_foreign)
            b->cbs.on_foreign(b->ud, ch->str, (size_t)ch->len);
        return 0;
    }
    if (rc->pending > 0)
        rc->pending--;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
        (str_is(r->element[0], "subscribe") || str_is(r->element[0], "unsubscribe"))) {
        const char *name;
        size_t len;
        const redisReply *ch = r->element[1];
        if (rb__is_canary(b, ch))
            rb__canary_send(b); /* subscribed: the first round can start now */
        else if (room_of(ch, &name, &len) && b->cbs.on_confirm)
            b->cbs.on_confirm(b->ud, name, len);
        return 0;
    }
    if (str_is(r, "PONG") ||
        (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && str_is(r->element[0], "pong")))
        return 0;
    if (r->type == REDIS_REPLY_ERROR) {
        CF_ERROR("redis", "subscriber got an error from Redis: %.*s", (int)r->len, r->str);
        return -1;
    }
    return 0;
}

static int handle_pub_reply(struct rconn *rc, redisReply *r)
{
    struct rbridge *b = rc->b;
    if (rc->pending > 0)
        rc->pending--;
    struct waiter w = {NULL, NULL, -1};
    rb__pop_waiter(rc, &w);
    if (w.script >= 0) {
        if (r->type != REDIS_REPLY_STRING || r->len != 40) {
            CF_ERROR("redis", "SCRIPT LOAD failed on %s: %.*s; is scripting disabled?",
                     b->addr_str, r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
                     r->type == REDIS_REPLY_ERROR ? r->str : "");
            return -1;
        }
        memcpy(b->shas[w.script], r->str, 40);
        b->shas[w.script][40] = '\0';
        if (--b->scripts_pending == 0)
            conn_up(rc);
        return 0;
    }
    if (w.fn) {
        if (r->type == REDIS_REPLY_ERROR) {
            b->publish_errors++;
            CF_LOG_CAPPED(&b->script_log, CF_LOG_ERROR, "redis", "a script failed on %s: %.*s",
                          b->addr_str, (int)r->len, r->str);
        }
        b->call_fatal = false;
        w.fn(w.ud, r);
        bool fatal = b->call_fatal || (r->type == REDIS_REPLY_ERROR && rb__fatal_error(r));
        b->call_fatal = false;
        return fatal ? -1 : 0;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        b->published++;
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        b->publish_errors++;
        CF_LOG_CAPPED(&b->publish_log, CF_LOG_ERROR, "redis",
                      "a PUBLISH or PING failed on %s (%llu errors so far): %.*s", b->addr_str,
                      (unsigned long long)b->publish_errors, (int)r->len, r->str);
        if (rb__fatal_error(r))
            return -1;
    }
    return 0;
}

static void read_replies(struct rconn *rc)
{
    char buf[READ_CHUNK];
    size_t total = 0;
    while (total < READ_BUDGET) {
        ssize_t n = read(rc->c->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            rb__fail(rc, n == 0 ? "server closed the connection" : strerror(errno));
            return;
        }
        total += (size_t)n;
        if (redisReaderFeed(rc->c->reader, buf, (size_t)n) != REDIS_OK) {
            rb__fail(rc, "out of memory");
            return;
        }
        void *reply;
        for (;;) {
            if (redisReaderGetReply(rc->c->reader, &reply) != REDIS_OK) {
                rb__fail(rc, rreply_refused(rc->arena) ? rreply_too_big(rc->arena)
                                                       : "protocol error from Redis");
                return;
            }
            if (!reply)
                break;
            rc->last_rx = cf_mono_ms();
            int rv;
            if (rc->st == C_AUTH) {
                rc->pending = 0;
                struct waiter w;
                if (!rc->is_sub)
                    rb__pop_waiter(rc, &w); /* AUTH's own: the FIFO stays in step */
                redisReply *r = reply;
                if (r->type == REDIS_REPLY_ERROR) {
                    CF_ERROR("redis", "AUTH rejected by %s: %.*s; check REDIS_PASSWORD%s",
                             rc->b->addr_str, (int)r->len, r->str,
                             rc->b->user[0] ? " and REDIS_USERNAME (and the user's ACL)" : "");
                    rv = -1;
                } else {
                    rv = 0;
                    rreply_free(reply);
                    conn_authed(rc);
                    if (rc->st == C_DOWN)
                        return;
                    continue;
                }
            } else {
                rv = rc->is_sub ? handle_sub_reply(rc, reply) : handle_pub_reply(rc, reply);
            }
            rreply_free(reply);
            if (rv < 0) {
                rb__fail(rc, "error reply");
                return;
            }
            if (rc->st == C_DOWN)
                return; /* a callback reset us */
        }
        if (rreply_pending_over(rc->c->reader)) {
            rb__fail(rc, rreply_too_big(rc->arena));
            return;
        }
        /* A short read emptied the socket: asking again would only say so
         * (the watch is level-triggered, so what comes later wakes us). */
        if ((size_t)n < sizeof buf)
            break;
    }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)fd;
    struct rconn *rc = ud;
    if (rc->st == C_CONNECTING) {
        connected(rc);
        return 0;
    }
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        read_replies(rc);
        if (rc->st == C_DOWN)
            return 0;
        /* Redis writes a send's reply and then, microseconds later, its
         * message to the subscribers. When the message has arrived, reading
         * it now, while the acks are still queued for the gateways, puts it
         * into the same write: one gateway pass and one client send() for
         * both instead of two of each. The watch is level-triggered, so
         * nothing is lost when it has not arrived yet. */
        if (!rc->is_sub && rc->b->sub.st == C_UP)
            read_replies(&rc->b->sub);
    }
    if (revents & EPOLLOUT)
        flush_now(rc);
    return 0;
}

/* ---- public API -------------------------------------------------------- */

static void conn_init(struct rbridge *b, struct rconn *rc, bool is_sub)
{
    rc->b = b;
    rc->is_sub = is_sub;
    rc->role = is_sub ? "subscriber" : "publisher";
    cf_backoff_init(&rc->bo, 100, 5000);
    /* (it also holds each reply's bound) */
    rc->arena = rreply_arena_new(is_sub ? RREPLY_SUB_MAX_BYTES : RREPLY_MAX_BYTES);
}

struct rbridge *rbridge_new(sd_event *ev, const struct cf_redis_addr *addr,
                            const struct rbridge_auth *auth, size_t max_queue,
                            const char *const *scripts, int nscripts, const struct rbridge_cbs *cbs,
                            void *ud)
{
    struct rbridge *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->scripts = scripts;
    b->nscripts = nscripts;
    b->shas = calloc((size_t)(nscripts ? nscripts : 1), sizeof *b->shas);
    if (!b->shas) {
        free(b);
        return NULL;
    }
    b->ev = ev;
    b->addr = *addr;
    if (addr->is_unix)
        snprintf(b->addr_str, sizeof b->addr_str, "unix:%s", addr->host);
    else
        snprintf(b->addr_str, sizeof b->addr_str, "%s:%d", addr->host, addr->port);
    snprintf(b->user, sizeof b->user, "%s", auth && auth->user ? auth->user : "");
    snprintf(b->password, sizeof b->password, "%s", auth && auth->password ? auth->password : "");
    b->max_queue = max_queue;
    b->cbs = *cbs;
    b->ud = ud;
    conn_init(b, &b->sub, true);
    conn_init(b, &b->pub, false);
    if (!b->sub.arena || !b->pub.arena) {
        rreply_arena_free(b->sub.arena);
        rreply_arena_free(b->pub.arena);
        explicit_bzero(b->password, sizeof b->password);
        free(b->shas);
        free(b);
        return NULL;
    }
    rb__canary_start(b, ev);
    conn_start(&b->sub);
    conn_start(&b->pub);
    return b;
}

static void conn_free(struct rconn *rc)
{
    conn_teardown(rc); /* frees the reader first: what it holds is in the arena */
    rc->timer = sd_event_source_disable_unref(rc->timer);
    rc->flush = sd_event_source_disable_unref(rc->flush);
    free(rc->w);
    rreply_arena_free(rc->arena);
}

void rbridge_free(struct rbridge *b)
{
    if (!b)
        return;
    b->canary_timer = sd_event_source_disable_unref(b->canary_timer);
    conn_free(&b->sub);
    conn_free(&b->pub);
    run_hook(b, RBRIDGE_FREE);
    explicit_bzero(b->password, sizeof b->password);
    free(b->shas);
    free(b);
}

