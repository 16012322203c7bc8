/* conn: one WebSocket client connection of the generator, from connect() to
 * close, over non-blocking sockets on the generator's epoll (level-triggered).
 *
 * A connection is opened (bound to its source address), sends the upgrade
 * request once connected, checks the 101, sends its join and from then on
 * hands every whole text message to account.c. Pings are answered, a close
 * from the server is echoed and the socket closed. Output goes through the
 * connection's bounded `out` buffer, written once per loop pass; EPOLLOUT is
 * registered only while some of it is pending. */
#include "gen.h"
#include "token.h"
#include "wsproto.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int watch(gen *g, conn *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - g->c)};
    return epoll_ctl(g->ep, op, c->fd, &ev);
}

/* Grows *buf (capacity *cap) to hold need bytes, doubling from min. */
static int reserve(uint8_t **buf, uint32_t *cap, size_t need, uint32_t min)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : min;
    while (n < need)
        n *= 2;
    uint8_t *p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *cap = (uint32_t)n;
    return 0;
}

void conn_close(gen *g, conn *c)
{
    switch (c->state) {
    case CS_CONNECTING:
    case CS_UPGRADING:
        g->connect_errors++;
        g->inflight--;
        break;
    case CS_JOINING:
        g->join_errors++;
        g->joining--;
        break;
    case CS_JOINED:
        g->members[c->room]--;
        /* fall through */
    case CS_OPEN: /* --no-join: a storm's connection is to stay open too */
        g->closed_total++;
        if (g->cur)
            g->cur->closed++;
        else
            g->closed_unstepped++;
        break;
    default:
        break;
    }
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->state = CS_CLOSED;
    free(c->out);
    free(c->in);
    free(c->frag);
    c->out = c->in = c->frag = NULL;
    c->out_len = c->out_cap = c->in_len = c->in_cap = c->frag_len = c->frag_cap = 0;
    c->frag_op = 0;
}

void conn_open(gen *g, uint32_t i)
{
    conn *c = &g->c[i];
    c->state = CS_CONNECTING; /* from here a failure counts as a connect error */
    c->t0 = gen_clock();
    g->inflight++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_close(g, c);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* many source addresses only on loopback, where 127.0.0.x all exist */
    if ((ntohl(g->dst.sin_addr.s_addr) >> 24) == 127) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        uint32_t span = g->o.src_hi - g->o.src_lo + 1;
        src.sin_addr.s_addr = htonl(0x7f000000u | (g->o.src_lo + c->gidx % span));
        /* the port is chosen at connect() for the whole 4-tuple, so one
         * source address is not limited to the ephemeral range once */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
            conn_close(g, c);
            return;
        }
    }
    if (connect(c->fd, (struct sockaddr *)&g->dst, sizeof g->dst) < 0 && errno != EINPROGRESS) {
        conn_close(g, c);
        return;
    }
    if (watch(g, c, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT) < 0)
        conn_close(g, c);
}

/* connect() finished: send the upgrade request with a fresh token. */
static void send_upgrade(gen *g, conn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
        conn_close(g, c);
        return;
    }
    char sub[32], tok[512], path[1024], req[1400], key[32];
    snprintf(sub, sizeof sub, "bench-%u", c->gidx);
    if (tk_hs256(g->o.secret, sub, (int64_t)time(NULL), 3600, tok, sizeof tok) < 0) {
        conn_close(g, c);
        return;
    }
    snprintf(path, sizeof path, "%s%ctoken=%s", g->path, strchr(g->path, '?') ? '&' : '?', tok);
    uint8_t raw[16];
    for (int k = 0; k < 16; k += 4) {
        uint32_t r = gen_rand(g);
        memcpy(raw + k, &r, 4);
    }
    tk_base64(raw, sizeof raw, 0, key, sizeof key);
    ws_accept_for(key, c->accept);
    int n = ws_request(req, sizeof req, g->host, path, key, "confab.v1");
    /* a fresh socket's buffer takes a 1 KiB request whole */
    if (n < 0 || write(c->fd, req, (size_t)n) != n || watch(g, c, EPOLL_CTL_MOD, EPOLLIN) < 0) {
        conn_close(g, c);
        return;
    }
    c->state = CS_UPGRADING;
}

static void process(gen *g, conn *c, uint8_t *buf, size_t n);

/* The 101 arrived whole: the connection is open; join its room. */
static void upgraded(gen *g, conn *c, size_t hdr_len)
{
    g->inflight--;
    g->connected++;
    g->joining++;
    bh_record(&g->hs, g->now - c->t0);
    if (g->now > g->t_last_handshake)
        g->t_last_handshake = g->now;
    if (g->o.no_join) { /* frames the server sends are read and ignored */
        g->joining--;
        c->state = CS_OPEN;
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        return;
    }
    c->state = CS_JOINING;
    c->t0 = g->now;
    char join[96];
    size_t jn = mt_build_join(join, c->room);
    if (conn_send(g, c, WS_TEXT, (const uint8_t *)join, jn) < 0) {
        conn_close(g, c);
        return;
    }
    size_t rest = c->in_len - hdr_len; /* frames right behind the 101 */
    memcpy(g->rbuf, c->in + hdr_len, rest);
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    if (rest)
        process(g, c, g->rbuf, rest);
}

static void read_upgrade(gen *g, conn *c)
{
    if (reserve(&c->in, &c->in_cap, c->in_len + 1024, 1024) < 0) {
        conn_close(g, c);
        return;
    }
    ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    g->now = gen_clock(); /* the handshake's end, per read as for deliveries */
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0 || c->in_len + (size_t)r > 16384) {
        conn_close(g, c);
        return;
    }
    c->in_len += (uint32_t)r;
    int status = 0;
    int hl = ws_check_response((const char *)c->in, c->in_len, c->accept, &status);
    if (hl < 0) {
        if (status != 101)
            g->bad_status[status >= 100 && status < 600 ? status / 100 : 0]++;
        conn_close(g, c);
    } else if (hl > 0) {
        upgraded(g, c, (size_t)hl);
    }
}

/* Appends a message fragment; the whole message is bounded like a frame. */
static int frag_append(conn *c, const uint8_t *p, size_t n)
{
    if (c->frag_len + n > GEN_MAX_FRAME || reserve(&c->frag, &c->frag_cap, c->frag_len + n, 256))
        return -1;
    memcpy(c->frag + c->frag_len, p, n);
    c->frag_len += (uint32_t)n;
    return 0;
}

/* One whole frame; returns -1 when the connection must be dropped. */
static int on_frame(gen *g, conn *c, const ws_frame *f, const uint8_t *p)
{
    size_t n = (size_t)f->len;
    switch (f->opcode) {
    case WS_TEXT:
    case WS_BIN:
        if (c->frag_op)
            return -1; /* a new message inside a fragmented one */
        if (f->fin) {
            if (f->opcode == WS_TEXT)
                acct_on_message(g, c, p, n);
            return 0;
        }
        c->frag_op = (uint8_t)f->opcode;
        return frag_append(c, p, n);
    case WS_CONT:
        if (!c->frag_op || frag_append(c, p, n) < 0)
            return -1;
        if (f->fin) {
            if (c->frag_op == WS_TEXT)
                acct_on_message(g, c, c->frag, c->frag_len);
            c->frag_op = 0;
            c->frag_len = 0;
        }
        return 0;
    case WS_PING:
        if (conn_send(g, c, WS_PONG, p, n) < 0)
            return -1;
        return 0;
    case WS_CLOSE:
        /* echo the code, flush what fits and hang up */
        conn_send(g, c, WS_CLOSE, p, n >= 2 ? 2 : 0);
        if (c->out_len && write(c->fd, c->out, c->out_len) < 0)
            errno = 0;
        g->server_closes++;
        return -1;
    default: /* pong */
        return 0;
    }
}

/* Parses whole frames in buf and keeps a trailing partial one in c->in. */
static void process(gen *g, conn *c, uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ws_frame f;
        int k = ws_parse(buf + off, n - off, GEN_MAX_FRAME, &f);
        if (k == WS_NEED_MORE)
            break;
        if (k == WS_ERROR) {
            g->bad_frames++;
            conn_close(g, c);
            return;
        }
        if (on_frame(g, c, &f, buf + off + f.hdr) < 0 || c->state == CS_CLOSED) {
            conn_close(g, c);
            return;
        }
        off += f.hdr + (size_t)f.len;
    }
    size_t rest = n - off;
    if (rest && reserve(&c->in, &c->in_cap, rest, 256) < 0) {
        conn_close(g, c);
        return;
    }
    if (rest)
        memmove(c->in, buf + off, rest);
    c->in_len = (uint32_t)rest;
}

static void read_frames(gen *g, conn *c)
{
    uint8_t *buf = g->rbuf;
    size_t carried = c->in_len;
    if (carried)
        memcpy(buf, c->in, carried);
    ssize_t r = read(c->fd, buf + carried, GEN_READ_SIZE);
    /* every delivery in these bytes is stamped now: a time taken once per
     * loop pass, before up to 1024 sockets' reads, made the later sockets'
     * deliveries look earlier than they were (a vDSO call costs ~20 ns) */
    g->now = gen_clock();
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        conn_close(g, c);
        return;
    }
    g->bytes_in += (uint64_t)r;
    process(g, c, buf, carried + (size_t)r);
}

/* One write() of everything pending; EPOLLOUT follows what is left. */
static void flush(gen *g, conn *c)
{
    if (c->out_len) {
        ssize_t w = write(c->fd, c->out, c->out_len);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            conn_close(g, c);
            return;
        }
        if (w > 0) {
            c->out_len -= (uint32_t)w;
            if (c->out_len)
                memmove(c->out, c->out + w, c->out_len);
        }
    }
    int want = c->out_len > 0;
    if (want != c->out_armed) {
        c->out_armed = (uint8_t)want;
        if (watch(g, c, EPOLL_CTL_MOD, want ? EPOLLIN | EPOLLOUT : EPOLLIN) < 0)
            conn_close(g, c);
    }
}

void conn_event(gen *g, uint32_t i, uint32_t events)
{
    conn *c = &g->c[i];
    switch (c->state) {
    case CS_CONNECTING:
        send_upgrade(g, c);
        return;
    case CS_UPGRADING:
        read_upgrade(g, c);
        return;
    case CS_JOINING:
    case CS_JOINED:
    case CS_OPEN:
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            read_frames(g, c);
        if (c->state != CS_CLOSED && events & EPOLLOUT)
            flush(g, c);
        return;
    default:
        return;
    }
}

int conn_send(gen *g, conn *c, int opcode, const uint8_t *p, size_t n)
{
    size_t need = ws_client_hdr_len(n) + n;
    if (c->fd < 0 || c->out_len + need > GEN_OUT_CAP ||
        reserve(&c->out, &c->out_cap, c->out_len + need, 512) < 0)
        return -1;
    c->out_len += (uint32_t)ws_write_frame(c->out + c->out_len, opcode, p, n, gen_rand(g));
    if (!c->dirty && !c->out_armed) {
        c->dirty = 1;
        g->dirty[g->ndirty++] = (uint32_t)(c - g->c);
    }
    return 0;
}

void conn_flush_all(gen *g)
{
    for (uint32_t k = 0; k < g->ndirty; k++) {
        conn *c = &g->c[g->dirty[k]];
        c->dirty = 0;
        if (c->state != CS_CLOSED && !c->out_armed)
            flush(g, c);
    }
    g->ndirty = 0;
}

void conn_check_timeouts(gen *g)
{
    for (uint32_t i = 0; i < g->n; i++) {
        conn *c = &g->c[i];
        if ((c->state == CS_CONNECTING || c->state == CS_UPGRADING) &&
            g->now - c->t0 > GEN_HANDSHAKE_TIMEOUT_NS)
            conn_close(g, c);
        else if (c->state == CS_JOINING && g->now - c->t0 > GEN_JOIN_TIMEOUT_NS)
            conn_close(g, c);
    }
}
