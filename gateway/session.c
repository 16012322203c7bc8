/* session: see session.h. */
#include "session.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"
#include "pace.h"
#include "qarray.h"
#include "session_int.h"
#include "validate.h"
#include "wsframe.h"

struct session *sess_new(uint64_t id, const char *user, size_t max_queue)
{
    size_t ulen = strnlen(user, CF_USERNAME_BYTES_MAX);
    struct session *s = calloc(1, sizeof *s + ulen + 1);
    if (!s)
        return NULL;
    s->head.kind = CONN_SESSION;
    s->id = id;
    s->fd = -1;
    s->q = s->qinline;
    s->qcap = QINLINE;
    memcpy(s->user, user, ulen);
    s->qmax = max_queue;
    return s;
}

void sess__queue_shrink(struct session *s)
{
    if (s->q != s->qinline) {
        qarray_put(s->q, s->qcap);
        s->q = s->qinline;
        s->qcap = QINLINE;
    }
    s->qhead = 0;
}

void sess__queue_release(struct session *s)
{
    for (uint32_t i = 0; i < s->qlen; i++)
        cf_buf_unref(s->q[(s->qhead + i) % s->qcap]);
    s->qhead = s->qlen = 0;
    s->qbytes = 0;
    sess__queue_shrink(s);
}

void sess_free(struct session *s)
{
    if (!s)
        return;
    sess__undirty(s);
    sess__queue_release(s);
    free(s->rx);
    free(s->tail);
    free(s->pong);
    wsf_rx_reset(&s->wsf);
    if (s->fd >= 0)
        close(s->fd);
    cf_rel_end_free(&s->rooms);
    free(s);
}

void sess_attach(struct session *s, struct lws *wsi, int fd, enum sess_proto proto,
                 int64_t now_ms)
{
    s->wsi = wsi;
    s->fd = fd;
    s->proto = proto;
    s->seen_ms = now_ms;
}

void sess_detach(struct session *s)
{
    sess__undirty(s);
    sess__queue_release(s);
    s->wsi = NULL;
}

/* Each queued frame also costs its slot: count it so that tiny frames cannot
 * grow the ring past what the byte bound suggests. */
#define SLOT_COST 16

struct sess_counters sess__counters; /* one loop per process */
/* When the next flush may begin: a busy gateway waits, so that clients get
 * several messages per send() (pace.h) */
static struct pace g_pace;

void sess_counters(struct sess_counters *out)
{
    *out = sess__counters;
    out->saturated_flushes = g_pace.saturated;
}

/* Sessions with output to write at the end of this loop pass (direct
 * mode). Slots of sessions that went away meanwhile are NULL. */
static struct session **g_dirty;
static uint32_t g_ndirty, g_capdirty;
static struct lws_context *g_direct; /* NULL: direct mode off */
/* lws 4.1 runs due timers before it polls: a zero-delay timer makes the
 * flush of output queued by timer callbacks (pings, request timeouts) happen
 * before the next wait rather than after it */
static lws_sorted_usec_list_t g_flush_sul;

static void flush_cb(lws_sorted_usec_list_t *sul);

/* The flush timer: now, or when pacing allows. A paced flush is woken by
 * the gateway's epoll set (wsio_wake_at) and done by the loop pass that the
 * wake-up ends (gateway.c calls sess_flush after each), not by an lws timer:
 * lws 4.1 would poll() without waiting through the last millisecond before
 * it, a spin that took more CPU than the flushes it paced. A gateway that
 * only serves TLS has a set for this timer alone (ws.c); the lws timer is
 * the fallback when the set is gone (shutdown) or the timer cannot be
 * armed. */
static void schedule_flush(void)
{
    int64_t wait = g_pace.due_us ? g_pace.due_us - cf_mono_us() : 0;
    if (wait > 1 && sess__wake_at(g_pace.due_us) == 0)
        return;
    lws_sul_schedule(g_direct, 0, &g_flush_sul, flush_cb, wait > 1 ? wait : 1);
}

static void flush_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    sess_flush();
}

void sess_direct_writes(struct lws_context *ctx)
{
    if (!ctx && g_direct)
        lws_sul_cancel(&g_flush_sul);
    g_direct = ctx;
}

void sess__undirty(struct session *s)
{
    if (s->dirty) {
        g_dirty[s->dirty - 1] = NULL;
        s->dirty = 0;
        /* trailing slots go: once none is left, output queued from now on
         * starts a new wait (pace.h) */
        while (g_ndirty && !g_dirty[g_ndirty - 1])
            g_ndirty--;
    }
}

/* Asks for a write: in direct mode at the end of this pass (sess_flush), else
 * from lws' WRITEABLE callback. */
static void want_write(struct session *s)
{
    if (s->dirty || s->ended)
        return;
    if (!g_direct && s->fd >= 0) /* own mode without a loop: shutting down */
        return;
    if (!g_direct)
        goto lws;
    if (g_ndirty == g_capdirty) {
        uint32_t cap = g_capdirty ? g_capdirty * 2 : 256;
        struct session **d = realloc(g_dirty, cap * sizeof *d);
        if (!d)
            goto lws;
        g_dirty = d;
        g_capdirty = cap;
    }
    if (g_ndirty == 0) {
        pace_output(&g_pace, cf_mono_us());
        schedule_flush();
    }
    g_dirty[g_ndirty++] = s;
    s->dirty = g_ndirty;
    return;
lws:
    if (s->fd >= 0)
        sess__want_out(s); /* own mode: when the socket has room */
    else
        lws_callback_on_writable(s->wsi);
}

void sess__kick(struct session *s)
{
    want_write(s);
}

/* Not kept: an idle connection's bytes count. */
void sess_peer(const struct session *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "?");
    if (s->fd < 0) {
        if (s->wsi)
            lws_get_peer_simple(s->wsi, buf, cap);
        if (strncmp(buf, "::ffff:", 7) == 0 && strchr(buf + 7, '.')) /* dual stack */
            memmove(buf, buf + 7, strlen(buf + 7) + 1);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(s->fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
    if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) /* dual stack */
        inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], buf, (socklen_t)cap);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &v6->sin6_addr, buf, (socklen_t)cap);
    else if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)cap);
}

/* Hands the socket what it takes now. A burst delivered in one loop pass
 * can pass the queue's bound before the socket was offered any of it, and a
 * client that reads is not a slow consumer: only one whose socket is full
 * is. Own mode only (lws writes only from its callbacks), and only at the
 * bound, so the usual pass still writes once per session. */
static void drain_now(struct session *s)
{
    while (s->qlen && s->fd >= 0 && !s->tail && !s->ended && !s->close_code) {
        uint32_t before = s->qlen;
        if (sess__write_batch(s) < 0) {
            sess__end(s);
            return;
        }
        if (s->qlen == before)
            return;
    }
}

bool sess_would_overflow(struct session *s, size_t len)
{
    if (s->close_code || s->no_output || s->ended || (!s->wsi && s->fd < 0))
        return false;
    if (s->qbytes + len + SLOT_COST > s->qmax)
        drain_now(s);
    return !s->ended && s->qbytes + len + SLOT_COST > s->qmax;
}

void sess_close_slow(struct session *s, const char *reason)
{
    char peer[INET6_ADDRSTRLEN + 8];
    sess_peer(s, peer, sizeof peer);
    CF_WARN("session", "conn %llu (%s, %s): %s, %zu bytes queued; disconnecting",
            (unsigned long long)s->id, s->user, peer, reason, (size_t)s->qbytes);
    sess__counters.slow_consumers++;
    sess_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, reason);
}

int sess_send(struct session *s, struct cf_buf *b)
{
    if (s->close_code || s->no_output || s->ended || (!s->wsi && s->fd < 0))
        return -EPIPE;
    size_t cost = (size_t)b->len + SLOT_COST;
    if (s->qbytes + cost > s->qmax)
        drain_now(s);
    if (s->ended)
        return -EPIPE;
    if (s->qbytes + cost > s->qmax) {
        sess_close_slow(s, "slow consumer");
        return -ENOBUFS;
    }
    if (s->qlen == s->qcap) {
        uint32_t cap = s->qcap * 2;
        struct cf_buf **q = qarray_get(cap);
        if (!q) {
            sess_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < s->qlen; i++)
            q[i] = s->q[(s->qhead + i) % s->qcap];
        if (s->q != s->qinline)
            qarray_put(s->q, s->qcap);
        s->q = q;
        s->qcap = cap;
        s->qhead = 0;
    }
    s->q[(s->qhead + s->qlen) % s->qcap] = cf_buf_ref(b);
    s->qlen++;
    s->qbytes += cost;
    if (s->qlen == 1)
        want_write(s);
    if (s->qbytes > s->qmax / 2)
        pace_release(&g_pace); /* a wait must not make a reader a slow consumer */
    return 0;
}

void sess__dequeue(struct session *s)
{
    struct cf_buf *b = s->q[s->qhead];
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qlen--;
    s->qbytes -= (size_t)b->len + SLOT_COST;
    cf_buf_unref(b);
}

int sess_on_writable(struct session *s)
{
    if (s->close_code) {
        lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
                         (unsigned char *)s->close_reason, strlen(s->close_reason));
        return -1;
    }
    sess__undirty(s); /* written now */
    if ((!s->qlen && !s->ping_due) || s->no_output)
        return 0;
    return sess__write_batch(s);
}

void sess_flush(void)
{
    if (!g_ndirty)
        return;
    int64_t start = cf_mono_us();
    if (!pace_may_flush(&g_pace, start)) {
        if (g_direct)
            schedule_flush();
        return;
    }
    uint32_t wrote = 0;
    for (uint32_t i = 0; i < g_ndirty; i++) {
        struct session *s = g_dirty[i];
        if (!s)
            continue;
        s->dirty = 0;
        if (s->fd >= 0) { /* own mode */
            if (s->tail || s->ended)
                continue; /* the rest goes when the socket has room */
            wrote++;
            if (sess__write_batch(s) < 0)
                sess__end(s);
            continue;
        }
        if (!s->wsi || s->close_code || s->no_output || (!s->qlen && !s->ping_due))
            continue;
        /* lws still holds the tail of an earlier send: it goes first */
        if (lws_partial_buffered(s->wsi)) {
            lws_callback_on_writable(s->wsi);
            continue;
        }
        wrote++;
        if (sess__write_batch(s) < 0) {
            /* not inside an lws callback: have lws close it from its loop */
            sess__queue_release(s);
            s->no_output = true;
            lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
    g_ndirty = 0;
    pace_flushed(&g_pace, start, cf_mono_us(), wrote);
}

void sess_flush_now(void)
{
    pace_release(&g_pace);
    sess_flush();
}

void sess_stop_output(struct session *s)
{
    s->no_output = true;
    sess__undirty(s);
    sess__queue_release(s);
}

void sess_close(struct session *s, int code, const char *reason)
{
    if (s->close_code || s->ended || (!s->wsi && s->fd < 0))
        return;
    s->close_code = code;
    s->close_reason = reason;
    sess__queue_release(s);
    if (s->fd >= 0) {
        s->ping_ms = cf_mono_ms() + CLOSE_GRACE_S * 1000;
        want_write(s);
        return;
    }
    lws_callback_on_writable(s->wsi);
    /* A client that never reads never gets a WRITEABLE: force it. */
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
}

bool sess_closing(const struct session *s)
{
    return s->close_code != 0;
}

int sess_rx(struct session *s, const void *in, size_t len, bool first, bool final,
            size_t remaining, size_t max, const void **msg, size_t *msglen)
{
    if (first)
        s->rx_frames = 0;
    if (remaining == 0 && ++s->rx_frames > SESS_MAX_FRAMES)
        return -2;
    if (first) {
        sess_rx_done(s);
        if (len > max || remaining > max - len)
            return -1;
        if (final) { /* the common case: no copy */
            *msg = in ? in : "";
            *msglen = len;
            return 1;
        }
    }
    if (len > max || s->rxlen > max - len || remaining > max - len - s->rxlen)
        return -1;
    /* lws hands a message over in pieces of its small receive buffer: grow
     * to what this frame announces, and at least double, so a long message
     * costs a few reallocations rather than one per piece */
    size_t need = s->rxlen + len;
    if (need > s->rxcap) {
        size_t cap = need + remaining;
        if (cap < 2 * s->rxcap)
            cap = 2 * s->rxcap;
        if (cap > max)
            cap = max;
        unsigned char *rx = realloc(s->rx, cap);
        if (!rx)
            return -1;
        s->rx = rx;
        s->rxcap = cap;
    }
    if (len)
        memcpy(s->rx + s->rxlen, in, len);
    s->rxlen += len;
    if (!final)
        return 0;
    /* empty fragments allocate nothing: the parsers get a valid pointer */
    *msg = s->rx ? (const void *)s->rx : "";
    *msglen = s->rxlen;
    return 1;
}

void sess_rx_done(struct session *s)
{
    free(s->rx);
    s->rx = NULL;
    s->rxlen = s->rxcap = 0;
}

uint64_t sess_id(const struct session *s) { return s->id; }
const char *sess_user(const struct session *s) { return s->user; }
enum sess_proto sess_proto(const struct session *s) { return s->proto; }
struct lws *sess_wsi(const struct session *s) { return s->wsi; }
struct cf_rel_end *sess_rooms(struct session *s) { return &s->rooms; }
struct req **sess_reqs(struct session *s) { return &s->reqs; }
uint32_t *sess_nreqs(struct session *s) { return &s->nreqs; }
size_t sess_queued_bytes(const struct session *s) { return s->qbytes; }
uint8_t sess_resynced(const struct session *s)
{
    return s->resynced;
}

void sess_note_resynced(struct session *s)
{
    s->resynced++;
}
uint32_t *sess_held_bytes(struct session *s) { return &s->held; }
size_t sess_max_queue(const struct session *s) { return s->qmax; }

void sess_list_add(struct session **head, struct session *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

void sess_list_del(struct session **head, struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (*head == s)
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

struct session *sess_list_next(const struct session *s)
{
    return s->next;
}

void sess_seen(struct session *s, int64_t now_ms)
{
    s->seen_ms = now_ms;
    if (!s->close_code) /* else ping_ms is the close deadline */
        s->ping_ms = 0;
}

enum sess_alive sess_keepalive(struct session *s, int64_t now_ms, int interval_s, int timeout_s)
{
    if (s->fd >= 0 && s->close_code && now_ms >= s->ping_ms) {
        sess__end(s); /* the client never completed the close */
        return SESS_ALIVE;
    }
    if ((!s->wsi && s->fd < 0) || s->ended || s->close_code || s->no_output)
        return SESS_ALIVE;
    if (s->ping_ms)
        return now_ms - s->ping_ms >= (int64_t)timeout_s * 1000 ? SESS_DEAD : SESS_ALIVE;
    if (now_ms - s->seen_ms < (int64_t)interval_s * 1000)
        return SESS_ALIVE;
    s->ping_ms = now_ms;
    s->ping_due = true;
    s->pong_owed = true;
    want_write(s);
    return SESS_PINGED;
}

bool sess_pong_owed(struct session *s)
{
    bool owed = s->pong_owed;
    s->pong_owed = false;
    return owed;
}

enum sess_rate sess_rate_take(struct session *s, int rate, int burst, int64_t now_ms)
{
    if (rate <= 0 || cf_tb_take(&s->rate, rate, burst, now_ms))
        return SESS_RATE_OK;
    /* Told about each refusal. A client flushing a backlog, even one that
     * retries each refused request on its own timer, stays well inside
     * SESS_REFUSALS_PER_BURST bursts of refusals forgiven at the same rate;
     * one that keeps sending regardless runs out. */
    return cf_tb_take(&s->refusals, rate, (int64_t)burst * SESS_REFUSALS_PER_BURST, now_ms)
               ? SESS_RATE_REFUSE
               : SESS_RATE_CLOSE;
}
