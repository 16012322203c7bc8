/* sessio: the session's socket: writing queued frames (both modes), and in
 * own mode reading and parsing client frames, the close handshake and the
 * end of the connection. See session.h. */
#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "session_int.h"
#include "wsio.h"

/* One loop per process: the engine's context is process-wide. */
static struct wsio *g_io;
static struct sess_handlers g_h;
static void *g_ud;
static size_t g_max_msg;
static struct session *g_reap;

void sess_io_init(struct wsio *io, const struct sess_handlers *h, void *ud, size_t max_msg)
{
    g_io = io;
    if (h)
        g_h = *h;
    g_ud = ud;
    g_max_msg = max_msg;
}

int sess__wake_at(int64_t mono_us)
{
    return g_io ? wsio_wake_at(g_io, mono_us) : -ENOTCONN;
}

bool sess_owned(const struct session *s)
{
    return s->fd >= 0 || s->ended;
}

/* ---- writing --------------------------------------------------------------- */

/* Server frames are written here, several per send(): one send per frame
 * caps a busy gateway far below what the socket can take. In lws mode,
 * lws_write(LWS_WRITE_HTTP) on an established WebSocket goes straight to the
 * socket (lws 4.1 ops-ws.c), which is right because no extension is offered;
 * a send that is cut short is kept by lws. In own mode the unsent end is kept
 * here (s->tail) and finished before anything else. */
#define TX_BATCH 65536
/* room past the batch for a close frame after the last queued frame */
static unsigned char g_tx[LWS_PRE + TX_BATCH + 128];

/* Sends (own mode); keeps what the socket did not take. -1 on failure. */
static int own_send(struct session *s, const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        w = 0;
    }
    if ((size_t)w == total)
        return 0;
    size_t rest = total - (size_t)w;
    unsigned char *t = malloc(rest);
    if (!t)
        return -1;
    size_t skip = (size_t)w, at = 0;
    for (int i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(t + at, (const unsigned char *)iov[i].iov_base + skip, l - skip);
        at += l - skip;
        skip = 0;
    }
    s->tail = t;
    s->tail_len = (uint32_t)rest;
    s->tail_off = 0;
    sess__want_out(s);
    return 0;
}

/* Packs queued frames into g_tx after its first `used` bytes while they fit;
 * returns the bytes packed. */
static size_t pack_frames(struct session *s, enum wsf_op op, size_t used, uint32_t *nframes)
{
    *nframes = 0;
    while (s->qlen) {
        struct cf_buf *b = s->q[s->qhead];
        size_t hlen = wsf_header_len(b->len);
        if (hlen + b->len > TX_BATCH - used)
            break;
        unsigned char *p = g_tx + LWS_PRE + used;
        p += wsf_header(p, op, b->len);
        memcpy(p, cf_buf_payload(b), b->len);
        used += hlen + b->len;
        (*nframes)++;
        sess__dequeue(s);
    }
    return used;
}

/* Control frames due first: a pong, our ping (with a payload: lws 4.1 does
 * not report an empty pong to the protocol, and a pong echoes the payload). */
static size_t pack_control(struct session *s)
{
    unsigned char *p = g_tx + LWS_PRE;
    size_t used = 0;
    if (s->pong) {
        used += wsf_header(p, WSF_PONG, s->pong_len);
        memcpy(p + used, s->pong, s->pong_len);
        used += s->pong_len;
        free(s->pong);
        s->pong = NULL;
    }
    if (s->ping_due) {
        static const unsigned char ping[] = {0x89, 2, 'k', 'a'};
        memcpy(p + used, ping, sizeof ping);
        used += sizeof ping;
        s->ping_due = false;
    }
    return used;
}

/* Our close frame (own mode): the code, and the reason cut to fit. */
static size_t pack_close(struct session *s, size_t used)
{
    unsigned char *p = g_tx + LWS_PRE + used;
    if (s->peer_closed && s->close_code == 1005) { /* echo a close without a code */
        p[0] = 0x88;
        p[1] = 0;
        return used + 2;
    }
    size_t rlen = strlen(s->close_reason);
    if (rlen > 123)
        rlen = 123;
    p[0] = 0x88;
    p[1] = (unsigned char)(2 + rlen);
    p[2] = (unsigned char)(s->close_code >> 8);
    p[3] = (unsigned char)s->close_code;
    memcpy(p + 4, s->close_reason, rlen);
    return used + 4 + rlen;
}

/* Own mode: our close frame is out whole. The close handshake is complete
 * when the client's came first; after a protocol error our FIN follows it at
 * once, so the client need not wait for anything more (RFC 6455 7.1.7): it
 * closes, and own_read's end of file ends the connection. */
static void close_out(struct session *s)
{
    if (s->peer_closed)
        sess__end(s);
    else if (s->rx_broken)
        shutdown(s->fd, SHUT_WR);
}

int sess__write_batch(struct session *s)
{
    enum wsf_op op = s->proto == SESS_V1_MSGPACK ? WSF_BINARY : WSF_TEXT;
    bool own = s->fd >= 0;
    size_t used = pack_control(s);
    uint32_t nframes;
    used = pack_frames(s, op, used, &nframes);
    bool closing = own && s->close_code && !s->close_sent && !s->qlen;
    if (closing)
        used = pack_close(s, used);
    int n = 0;
    if (used && own) {
        struct iovec v = {g_tx + LWS_PRE, used};
        n = own_send(s, &v, 1) < 0 ? -1 : (int)used;
    } else if (used) {
        n = lws_write(s->wsi, g_tx + LWS_PRE, used, LWS_WRITE_HTTP);
    } else if (s->qlen) {
        /* a frame bigger than the batch goes alone */
        struct cf_buf *b = s->q[s->qhead];
        if (own) {
            unsigned char h[WSF_MAX_HEADER];
            struct iovec v[2] = {{h, wsf_header(h, op, b->len)},
                                 {(void *)cf_buf_payload(b), b->len}};
            n = own_send(s, v, 2) < 0 ? -1 : (int)(v[0].iov_len + b->len);
        } else {
            /* lws writes its header into the headroom, the same bytes for
             * every recipient, so sharing the buffer is safe */
            n = lws_write(s->wsi, cf_buf_payload(b), b->len,
                          op == WSF_BINARY ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        }
        nframes = 1;
        sess__dequeue(s);
    }
    if (n < 0)
        return -1;
    if (closing)
        s->close_sent = true;
    sess__counters.frames_out += nframes;
    sess__counters.bytes_out += (uint64_t)n;
    if (s->qlen == 0)
        sess__queue_shrink(s); /* an idle connection keeps no heap for its queue */
    if (own) {
        if (s->qlen || s->tail || (s->close_code && !s->close_sent))
            sess__want_out(s);
        else if (s->close_sent)
            close_out(s);
    } else if (s->qlen) {
        lws_callback_on_writable(s->wsi); /* the rest when the socket drains */
    }
    return 0;
}

/* ---- own mode: the end of a connection -------------------------------------- */

void sess__want_out(struct session *s)
{
    /* during the hand-over the socket is not watched yet; with no loop (unit
     * tests) there is nothing to arm */
    if (s->out_armed || s->wsi || !g_io)
        return;
    if (wsio_mod(g_io, s->fd, s, !s->rx_eof, true) == 0)
        s->out_armed = true;
}

void sess__end(struct session *s)
{
    if (s->ended)
        return;
    s->ended = true;
    if (s->fd >= 0) {
        /* no wsio_del: once handed over, s->fd is the socket's only
         * descriptor (ws.c take_over), and closing it takes it out of the
         * epoll set */
        close(s->fd);
        s->fd = -1;
    }
    sess__undirty(s);
    sess__queue_release(s);
    free(s->tail);
    s->tail = NULL;
    free(s->pong);
    s->pong = NULL;
    sess_rx_done(s);
    wsf_rx_reset(&s->wsf);
    if (!s->wsi) { /* else once lws has let go of the handed-over wsi */
        s->reap_next = g_reap;
        g_reap = s;
    }
}

void sess_reap(void)
{
    while (g_reap) {
        struct session *s = g_reap;
        g_reap = s->reap_next;
        s->reap_next = NULL;
        g_h.ended(g_ud, s);
    }
}

void sess_drop(struct session *s)
{
    if (sess_owned(s))
        sess__end(s);
    if (s->wsi) /* lws mode, or a hand-over lws has not finished yet */
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void sess_handover_done(struct session *s, bool in_set)
{
    bool from_lws = s->wsi != NULL;
    s->wsi = NULL;
    if (s->ended) {
        /* its socket closed, its entry gone with it; sess__end queued it
         * already unless an lws connection still held it then */
        if (from_lws) {
            s->reap_next = g_reap;
            g_reap = s;
        }
        return;
    }
    /* whatever is due: a write during the hand-over could not ask for the
     * socket's room (sess__want_out), and a later sess_send asks only when
     * the queue was empty */
    bool out = s->tail || s->close_code || s->qlen || s->ping_due || s->pong;
    if ((in_set ? wsio_mod(g_io, s->fd, s, true, out) : wsio_add(g_io, s->fd, s, out)) < 0) {
        CF_ERROR("session", "conn %llu: cannot watch its socket: %s; closing it",
                 (unsigned long long)s->id, strerror(errno));
        sess__end(s);
        return;
    }
    s->out_armed = out;
}

/* ---- own mode: reading ------------------------------------------------------ */

/* The client broke a rule of its input (code, why: a static string): its
 * input is discarded from now on and the connection closed. */
static void input_broken(struct session *s, int code, const char *why)
{
    s->rx_broken = true;
    CF_INFO("ws", "conn %llu (%s): %s; closing with %d", (unsigned long long)s->id, s->user, why,
            code);
    sess_close(s, code, why);
    /* Our close for another reason is out whole already: the client's
     * answer will be discarded with the rest, so the FIN goes now. */
    if (s->close_sent && !s->tail && !s->ended)
        close_out(s);
}

static int on_data(void *ud, bool binary, const uint8_t *p, size_t n, bool first, bool final,
                   uint64_t remaining)
{
    struct session *s = ud;
    if (s->close_code) /* closing: only the client's close frame matters now */
        return 0;
    const void *msg;
    size_t mlen;
    int rc = sess_rx(s, p, n, first, final, (size_t)remaining, g_max_msg, &msg, &mlen);
    _Static_assert(SESS_MAX_FRAMES == 256, "the close reason below names it");
    if (rc == -2) { /* as a protocol error: the rest of the read is not looked at */
        input_broken(s, 1008, "message in more than 256 frames");
        return 1;
    }
    if (rc < 0) { /* wsframe refuses sizes first; this is out of memory */
        sess_close(s, 1011, "out of memory");
        return 0;
    }
    if (rc == 0)
        return 0;
    g_h.message(g_ud, s, binary, msg, mlen);
    sess_rx_done(s);
    /* A message that ended the session (its close could not be written)
     * stops the parse: the rest of the read is not the dead session's to
     * act on, and sess__end has reset the parser's state under it. */
    return s->ended;
}

/* A control frame the handlers refuse: 1 to ignore it, else it closed s. */
static int control_refused(struct session *s)
{
    const char *why = "";
    int rc = g_h.control(g_ud, s, &why);
    if (rc > 1)
        sess_close(s, rc, why);
    return rc;
}

static int on_ping(void *ud, const uint8_t *p, size_t n)
{
    struct session *s = ud;
    if (s->close_code || s->no_output || control_refused(s))
        return s->ended;
    unsigned char *pong = s->pong ? s->pong : malloc(125);
    if (!pong)
        return 0; /* the peer's next ping gets one */
    memcpy(pong, p, n);
    s->pong = pong;
    s->pong_len = (uint8_t)n;
    sess__kick(s);
    return s->ended; /* as on_data */
}

static int on_pong(void *ud)
{
    struct session *s = ud;
    if (!s->close_code && !sess_pong_owed(s))
        control_refused(s);
    return s->ended; /* sess_seen is recorded for every read */
}

static int on_close(void *ud, int code, const uint8_t *reason, size_t n)
{
    (void)reason;
    (void)n;
    struct session *s = ud;
    if (s->close_sent) { /* the answer to ours */
        if (s->tail) {
            /* part of our close frame still waits for room: ending now would
             * cut it, and the client would see 1006. close_out ends the
             * connection once it is out (or the close grace does). */
            s->peer_closed = true;
            return 1;
        }
        sess__end(s);
        return 1;
    }
    s->peer_closed = true;
    if (!s->close_code) {
        s->close_code = code;
        s->close_reason = "";
        s->ping_ms = cf_mono_ms() + CLOSE_GRACE_S * 1000;
    }
    sess__queue_release(s);
    free(s->pong);
    s->pong = NULL;
    s->ping_due = false;
    sess__kick(s);
    return 1; /* nothing may follow a close */
}

static const struct wsf_sink g_sink = {on_data, on_ping, on_pong, on_close};

/* One read per readiness event: level-triggered epoll brings the rest back
 * after others had their turn. */
static void own_read(struct session *s)
{
    static uint8_t buf[65536];
    if (s->rx_eof) { /* input is not watched: a hangup or an error, the client is gone */
        sess__end(s);
        return;
    }
    ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 && s->peer_closed && !s->no_output) {
        /* The client sent its close and then its FIN (half-closed: it still
         * reads). Our answer must go out whole first, or the client sees
         * 1006 after a clean close. It waits for the next flush, which a busy
         * gateway paces: it goes now. Or it waits behind the rest of a frame
         * the client's window did not take yet (and a simultaneous close's
         * own close frame may be that rest): then input stops being watched,
         * the socket staying readable at end of file, and close_out ends the
         * connection once our close is out, or the close grace does. */
        if (!s->close_sent && !s->tail) {
            sess__undirty(s);
            if (sess__write_batch(s) < 0) {
                sess__end(s);
                return;
            }
        }
        if (!s->ended && (s->tail || !s->close_sent)) {
            s->rx_eof = true;
            s->out_armed = false;
            sess__want_out(s);
            return;
        }
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        sess__end(s);
        return;
    }
    if (n < 0)
        return;
    sess_seen(s, cf_mono_ms());
    /* Discarded until the client closes or the grace ends. After a protocol
     * error our FIN follows the close frame (close_out), so the client
     * closes at once; ending on its data instead (the rest of an oversized
     * message, say) would close with bytes unread, and the kernel's RST
     * could cost the client our close frame. */
    if (s->rx_broken || s->peer_closed)
        return;
    const char *why = "";
    int code = wsf_feed(&s->wsf, buf, (size_t)n, (uint32_t)g_max_msg, &g_sink, s, &why);
    if (code > 0)
        input_broken(s, code, why);
}

static void own_writable(struct session *s)
{
    if (s->tail) {
        ssize_t w = send(s->fd, s->tail + s->tail_off, s->tail_len - s->tail_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            sess__end(s);
            return;
        }
        if (w > 0)
            s->tail_off += (uint32_t)w;
        if (s->tail_off < s->tail_len)
            return;
        free(s->tail);
        s->tail = NULL;
    }
    s->out_armed = false;
    if (s->qlen || s->ping_due || s->pong || (s->close_code && !s->close_sent)) {
        if (sess__write_batch(s) < 0)
            sess__end(s);
    } else if (s->close_sent) {
        close_out(s);
    }
    if (!s->ended && !s->out_armed && !s->wsi)
        wsio_mod(g_io, s->fd, s, !s->rx_eof, false);
}

void sess_on_io(void *ptr, bool readable, bool writable)
{
    struct session *s = ptr;
    if (!s->ended && writable)
        own_writable(s);
    if (!s->ended && readable)
        own_read(s);
}
