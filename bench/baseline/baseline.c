/* confab-baseline: the yardstick the benchmark measures confab against.
 *
 * The simplest C broadcast server that still does what a fast one must: one
 * epoll loop per process, non-blocking sockets, the WebSocket handshake and
 * RFC 6455 framing by hand, rooms in a hash table, and each message encoded
 * once and queued to every member, with ONE send() per connection per loop
 * pass. That coalescing is what lets a bare server reach ~1M deliveries/s on
 * a small machine; one send() per frame stops near 100-200k. Under load a
 * pass takes longer, more messages wait for each connection, and each send()
 * carries more of them: throughput grows with load instead of collapsing.
 *
 * No JWT, no broker, no Redis. It answers the two requests of the benchmark
 * contract (docs/benchmarks.md), found by substring search, not JSON parsing:
 *   {"type":"join","payload":{"room":"R"}}
 *       -> the joiner gets {"type":"joined","payload":{"room":"R"}}
 *   {"type":"send","payload":{"room":"R","message":"M"}}
 *       -> every member of R, the sender included, gets
 *          {"type":"new_message","payload":{"room":"R","message":"M"}}
 * R and M are copied as they were escaped by the client, so the output is
 * valid JSON whenever the input was. A connection is in at most one room (a
 * second join moves it); a send to a room nobody joined goes nowhere.
 *
 * Memory: an idle connection costs its struct conn and a slot in its room's
 * member array. Input bytes are kept per connection only while a request or
 * frame is incomplete (everything is read into one shared buffer), output
 * only while it is pending.
 *
 * Usage: confab-baseline --port P [--addr 127.0.0.1] [--procs N]
 * N processes share the port with SO_REUSEPORT (the idle scenario needs two:
 * one process may hold at most ~20000 fds here). Rooms are per process, so
 * members of one room must reach the same process: N > 1 only suits
 * scenarios that publish nothing. Prints "READY <port>" once listening;
 * exits 0 on SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MSG (64 * 1024)       /* a client message, all its fragments together */
#define MAX_REQUEST 8192          /* the HTTP upgrade request */
#define MAX_OUT (4 * 1024 * 1024) /* pending output before a slow reader is closed */
#define MAX_ROOM_NAME 256
#define ROOM_BUCKETS 4096 /* fixed: the benchmark uses at most a few thousand rooms */
#define MAX_EVENTS 512
#define MAX_PROCS 64

struct room;

struct conn {
    int fd;
    uint8_t upgraded;          /* the 101 was queued: bytes are now frames */
    uint8_t dead;              /* close at the end of this loop pass */
    uint8_t pending;           /* on the pending list (output to flush, or dead) */
    uint8_t want_out;          /* EPOLLOUT registered */
    uint8_t close_after_flush; /* a close frame or an HTTP error is queued */
    uint32_t slot;             /* index in room->members */
    struct room *room;
    char *in;  /* an incomplete request or frame, else NULL */
    char *msg; /* a fragmented message being reassembled, else NULL */
    char *out; /* pending output, else NULL */
    uint32_t in_len, msg_len, out_off, out_len, out_cap;
};

struct room {
    struct room *next; /* hash chain */
    struct conn **members;
    uint32_t n, cap, name_len;
    char name[];
};

/* One process serves one listener; its state is these few statics. */
static int ep = -1;
static int reserve_fd = -1; /* closed to accept-and-drop when out of fds */
static volatile sig_atomic_t stop;
static struct room *buckets[ROOM_BUCKETS];
static struct conn **pending; /* connections to flush or close after this pass */
static size_t npending, pending_cap;
static char rbuf[64 * 1024];          /* every read lands here first */
static char fbuf[MAX_MSG + 2 * 1024]; /* the frame being built (encoded once) */

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Out of memory is fatal: a benchmark server has nothing better to do. */
static void *xrealloc(void *p, size_t n)
{
    if (!(p = realloc(p, n)))
        die("realloc");
    return p;
}

/* ---- output: queue now, one send() per connection at the end of the pass ---- */

static void mark_pending(struct conn *c)
{
    if (c->pending)
        return;
    if (npending == pending_cap) {
        pending_cap = pending_cap ? 2 * pending_cap : 1024;
        pending = xrealloc(pending, pending_cap * sizeof *pending);
    }
    pending[npending++] = c;
    c->pending = 1;
}

/* Never frees: the connection may be in the middle of a room being iterated. */
static void conn_kill(struct conn *c)
{
    c->dead = 1;
    mark_pending(c);
}

static void conn_queue(struct conn *c, const void *data, size_t len)
{
    if (c->dead)
        return;
    size_t left = c->out_len - c->out_off;
    if (left + len > MAX_OUT) { /* it does not read: drop it rather than grow */
        conn_kill(c);
        return;
    }
    if (c->out_off && c->out_len + len > c->out_cap) {
        memmove(c->out, c->out + c->out_off, left);
        c->out_off = 0;
        c->out_len = left;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 512;
        while (cap < c->out_len + len)
            cap *= 2;
        c->out = xrealloc(c->out, cap);
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    mark_pending(c);
}

/* Writes a server frame header (FIN, no mask) for a payload of len bytes. */
static size_t ws_header(uint8_t *h, int opcode, size_t len)
{
    h[0] = 0x80 | opcode;
    if (len < 126) {
        h[1] = len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = len >> 8;
        h[3] = len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint64_t)len >> (56 - 8 * i);
    return 10;
}

static void queue_frame(struct conn *c, int opcode, const char *payload, size_t len)
{
    uint8_t h[10];
    conn_queue(c, h, ws_header(h, opcode, len));
    conn_queue(c, payload, len);
}

static void want_writable(struct conn *c, int on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->want_out = on;
}

/* One send() of everything pending; the rest waits for EPOLLOUT. */
static void conn_flush(struct conn *c)
{
    if (c->out_len > c->out_off) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            c->dead = 1;
            return;
        }
        if (n > 0)
            c->out_off += n;
    }
    if (c->out_off == c->out_len) {
        free(c->out);
        c->out = NULL;
        c->out_off = c->out_len = c->out_cap = 0;
        if (c->close_after_flush) {
            c->dead = 1;
            return;
        }
    }
    want_writable(c, c->out != NULL);
}

/* ---- rooms: name -> member array, swap-remove on leave ---- */

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (n--)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static struct room **room_find(const char *name, size_t len)
{
    struct room **r = &buckets[hash(name, len) % ROOM_BUCKETS];
    while (*r && ((*r)->name_len != len || memcmp((*r)->name, name, len)))
        r = &(*r)->next;
    return r;
}

static void room_leave(struct conn *c)
{
    struct room *r = c->room;
    if (!r)
        return;
    struct conn *last = r->members[--r->n];
    r->members[c->slot] = last;
    last->slot = c->slot;
    c->room = NULL;
    if (r->n == 0) { /* forget empty rooms so names do not pile up */
        struct room **link = room_find(r->name, r->name_len);
        *link = r->next;
        free(r->members);
        free(r);
    }
}

static void room_join(struct conn *c, const char *name, size_t len)
{
    if (c->room && c->room->name_len == len && !memcmp(c->room->name, name, len))
        return;
    room_leave(c);
    struct room **link = room_find(name, len);
    if (!*link) {
        struct room *r = xrealloc(NULL, sizeof *r + len);
        memset(r, 0, sizeof *r);
        memcpy(r->name, name, len);
        r->name_len = len;
        *link = r;
    }
    struct room *r = *link;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 8;
        r->members = xrealloc(r->members, r->cap * sizeof *r->members);
    }
    c->slot = r->n;
    r->members[r->n++] = c;
    c->room = r;
}

/* ---- the two requests of the contract ---- */

/* Finds key (e.g. "room":") and returns the still-escaped string after it. */
static int json_str(const char *m, size_t len, const char *key, const char **s, size_t *slen)
{
    size_t klen = strlen(key);
    const char *p = memmem(m, len, key, klen), *end = m + len;
    if (!p)
        return 0;
    p += klen;
    for (const char *q = p; q < end; q++) {
        if (*q == '\\')
            q++;
        else if (*q == '"') {
            *s = p;
            *slen = q - p;
            return 1;
        }
    }
    return 0;
}

/* Builds header + the concatenation of parts in fbuf; returns the frame length. */
static size_t build_text_frame(const char *const *parts, const size_t *lens, int n)
{
    size_t plen = 0, off;
    for (int i = 0; i < n; i++)
        plen += lens[i];
    off = ws_header((uint8_t *)fbuf, 0x1, plen);
    for (int i = 0; i < n; i++) {
        memcpy(fbuf + off, parts[i], lens[i]);
        off += lens[i];
    }
    return off;
}

static void on_join(struct conn *c, const char *room, size_t rlen)
{
    room_join(c, room, rlen);
    const char *parts[] = {"{\"type\":\"joined\",\"payload\":{\"room\":\"", room, "\"}}"};
    size_t lens[] = {strlen(parts[0]), rlen, 3};
    conn_queue(c, fbuf, build_text_frame(parts, lens, 3));
}

static void on_send(const char *room, size_t rlen, const char *text, size_t tlen)
{
    struct room *r = *room_find(room, rlen);
    if (!r)
        return;
    const char *parts[] = {"{\"type\":\"new_message\",\"payload\":{\"room\":\"", room,
                           "\",\"message\":\"", text, "\"}}"};
    size_t lens[] = {strlen(parts[0]), rlen, strlen(parts[2]), tlen, 3};
    size_t n = build_text_frame(parts, lens, 5); /* encoded once ... */
    for (uint32_t i = 0; i < r->n; i++)
        conn_queue(r->members[i], fbuf, n); /* ... copied to each member */
}

/* Anything that is not one of the two requests is ignored. */
static void on_message(struct conn *c, const char *m, size_t len)
{
    const char *room, *text;
    size_t rlen, tlen;
    if (!json_str(m, len, "\"room\":\"", &room, &rlen) || rlen == 0 || rlen > MAX_ROOM_NAME)
        return;
    if (memmem(m, len, "\"type\":\"join\"", 13))
        on_join(c, room, rlen);
    else if (memmem(m, len, "\"type\":\"send\"", 13) &&
             json_str(m, len, "\"message\":\"", &text, &tlen))
        on_send(room, rlen, text, tlen);
}

/* ---- RFC 6455 frames from the client ---- */

/* Acts on one complete, unmasked frame; returns -1 on a protocol error. */
static int on_frame(struct conn *c, int fin, int op, char *p, size_t len)
{
    switch (op) {
    case 0x8: /* close: answer with the same status code, then hang up */
        queue_frame(c, 0x8, p, len >= 2 ? 2 : 0);
        c->close_after_flush = 1;
        return 0;
    case 0x9: /* ping */
        if (!fin || len > 125)
            return -1;
        queue_frame(c, 0xA, p, len);
        return 0;
    case 0xA: /* pong */
        return 0;
    case 0x1: /* text; binary is treated alike */
    case 0x2:
        if (c->msg)
            return -1; /* a new message inside a fragmented one */
        if (fin) {
            on_message(c, p, len);
            return 0;
        }
        c->msg = xrealloc(NULL, len + 1);
        memcpy(c->msg, p, len);
        c->msg_len = len;
        return 0;
    case 0x0: /* continuation */
        if (!c->msg || c->msg_len + len > MAX_MSG)
            return -1;
        c->msg = xrealloc(c->msg, c->msg_len + len + 1);
        memcpy(c->msg + c->msg_len, p, len);
        c->msg_len += len;
        if (fin) {
            on_message(c, c->msg, c->msg_len);
            free(c->msg);
            c->msg = NULL;
            c->msg_len = 0;
        }
        return 0;
    default:
        return -1;
    }
}

/* Parses one frame at d; returns its size once complete (after acting on it),
 * 0 if more bytes are needed, -1 on a protocol error. */
static long handle_frame(struct conn *c, uint8_t *d, size_t len)
{
    if (len < 2)
        return 0;
    if (!(d[1] & 0x80) || (d[0] & 0x70))
        return -1; /* clients must mask; no extension was negotiated */
    uint64_t plen = d[1] & 0x7f;
    size_t hl = 2;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)d[2] << 8 | d[3];
        hl = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | d[2 + i];
        hl = 10;
    }
    if (plen > MAX_MSG)
        return -1; /* refused before it is buffered: bounds c->in */
    if (len < hl + 4 + plen)
        return 0;
    uint8_t *mask = d + hl, *p = d + hl + 4;
    for (size_t i = 0; i < plen; i++)
        p[i] ^= mask[i & 3];
    if (on_frame(c, d[0] & 0x80, d[0] & 0x0f, (char *)p, plen) < 0)
        return -1;
    return hl + 4 + plen;
}

/* ---- the HTTP upgrade ---- */

/* The trimmed value of header `name` (case-insensitive) in the request head. */
static const char *header(const char *req, size_t len, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *end = req + len, *line = memchr(req, '\n', len);
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', end - line);
        if (!eol)
            break;
        if ((size_t)(eol - line) > nlen && !strncasecmp(line, name, nlen) && line[nlen] == ':') {
            const char *v = line + nlen + 1, *e = eol;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *vlen = e - v;
            return v;
        }
        line = eol;
    }
    return NULL;
}

/* Whether the comma-separated list v contains the token tok. */
static int has_token(const char *v, size_t vlen, const char *tok)
{
    size_t tlen = strlen(tok);
    const char *end = v + vlen;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == ','))
            v++;
        const char *e = v;
        while (e < end && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - v) == tlen && !strncasecmp(v, tok, tlen))
            return 1;
        v = e;
    }
    return 0;
}

static void accept_key(const char *key, size_t klen, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[128 + sizeof guid];
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned int shalen;
    memcpy(buf, key, klen);
    memcpy(buf + klen, guid, sizeof guid - 1);
    if (!EVP_Digest(buf, klen + sizeof guid - 1, sha, &shalen, EVP_sha1(), NULL))
        die("EVP_Digest");
    EVP_EncodeBlock((unsigned char *)out, sha, shalen); /* 20 bytes -> 28 chars + NUL */
}

/* Returns the size of the request head once complete (after answering it),
 * 0 if more bytes are needed, -1 if it is too long. */
static long handle_request(struct conn *c, char *d, size_t len)
{
    const char *end = memmem(d, len, "\r\n\r\n", 4);
    if (!end)
        return len > MAX_REQUEST ? -1 : 0;
    size_t head = end + 4 - d, klen, ulen, plen;
    const char *key = header(d, head, "Sec-WebSocket-Key", &klen);
    const char *up = header(d, head, "Upgrade", &ulen);
    const char *proto = header(d, head, "Sec-WebSocket-Protocol", &plen);
    if (strncmp(d, "GET ", 4) || !key || klen == 0 || klen > 128 || !up ||
        !has_token(up, ulen, "websocket")) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";
        conn_queue(c, bad, sizeof bad - 1);
        c->close_after_flush = 1;
        return head;
    }
    char acc[29], resp[256];
    accept_key(key, klen, acc);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     acc,
                     proto && has_token(proto, plen, "confab.v1")
                         ? "Sec-WebSocket-Protocol: confab.v1\r\n"
                         : "");
    conn_queue(c, resp, n);
    c->upgraded = 1;
    return head;
}

/* ---- connections ---- */

/* Keeps the unparsed tail of data (data[used..len)) for the next read. */
static void keep_rest(struct conn *c, char *data, size_t used, size_t len)
{
    size_t left = len - used;
    if (left == 0 || c->dead || c->close_after_flush) {
        free(c->in);
        c->in = NULL;
        c->in_len = 0;
    } else if (data == c->in) {
        memmove(c->in, c->in + used, left);
        c->in_len = left;
    } else {
        c->in = xrealloc(NULL, left);
        memcpy(c->in, data + used, left);
        c->in_len = left;
    }
}

/* One read per readiness event (level-triggered: the rest comes next pass). */
static void conn_read(struct conn *c)
{
    ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_kill(c);
        return;
    }
    if (n < 0 || c->close_after_flush)
        return;
    char *data = rbuf;
    size_t len = n, used = 0;
    if (c->in) { /* an incomplete frame or request waits: append to it */
        c->in = xrealloc(c->in, c->in_len + n);
        memcpy(c->in + c->in_len, rbuf, n);
        data = c->in;
        len = c->in_len += n;
    }
    while (!c->dead && !c->close_after_flush && used < len) {
        long k = c->upgraded ? handle_frame(c, (uint8_t *)data + used, len - used)
                             : handle_request(c, data + used, len - used);
        if (k < 0)
            conn_kill(c);
        if (k <= 0)
            break;
        used += k;
    }
    keep_rest(c, data, used, len);
}

static void conn_free(struct conn *c)
{
    room_leave(c);
    close(c->fd); /* also removes it from the epoll set */
    free(c->in);
    free(c->msg);
    free(c->out);
    free(c);
}

/* End of a loop pass: one send() per connection with output, then the closes. */
static void flush_pending(void)
{
    for (size_t i = 0; i < npending; i++) {
        struct conn *c = pending[i];
        if (!c->dead)
            conn_flush(c);
        if (c->dead)
            conn_free(c);
        else
            c->pending = 0;
    }
    npending = 0;
}

/* Out of fds: accept and drop the queued connections with the reserve fd, so
 * the listener does not stay readable and spin the loop. */
static void shed(int lfd)
{
    close(reserve_fd);
    int fd;
    while ((fd = accept(lfd, NULL, NULL)) >= 0)
        close(fd);
    reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_some(int lfd)
{
    for (int i = 0; i < 256; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                shed(lfd);
            if (errno == ECONNABORTED || errno == EINTR)
                continue;
            return;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c)
            die("calloc");
        c->fd = fd;
        int one = 1; /* output is already coalesced: Nagle would only add delay */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl");
    }
}

static int serve(int lfd)
{
    struct epoll_event evs[MAX_EVENTS];
    sigset_t run; /* the mask while waiting: SIGTERM/SIGINT let through */
    sigprocmask(SIG_BLOCK, NULL, &run);
    sigdelset(&run, SIGTERM);
    sigdelset(&run, SIGINT);
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    if ((reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        die("open /dev/null");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll_ctl");
    while (!stop) {
        int n = epoll_pwait(ep, evs, MAX_EVENTS, -1, &run);
        if (n < 0 && errno != EINTR)
            die("epoll_pwait");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c)
                accept_some(lfd);
            else if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                conn_read(c);
            if (c && !c->dead && (evs[i].events & EPOLLOUT))
                mark_pending(c);
        }
        flush_pending();
    }
    return 0;
}

/* ---- processes ---- */

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int listen_on(const char *addr, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        die("socket");
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "confab-baseline: bad --addr %s\n", addr);
        exit(1);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        die("SO_REUSEPORT");
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind");
    if (listen(fd, 65535) < 0) /* the kernel caps it at net.core.somaxconn (4096 here) */
        die("listen");
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        die("getsockname");
    return ntohs(sa.sin_port);
}

/* The parent of N>1 processes waits for a signal (forwarded) or a child's death. */
static int supervise(const pid_t *pids, int procs)
{
    sigset_t set;
    int sig, status, rc = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigwait(&set, &sig);
    if (sig == SIGCHLD) {
        fprintf(stderr, "confab-baseline: a server process exited\n");
        rc = 1;
    }
    for (int i = 0; i < procs; i++)
        kill(pids[i], SIGTERM);
    for (int i = 0; i < procs; i++)
        waitpid(pids[i], &status, 0);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: confab-baseline --port P [--addr 127.0.0.1] [--procs N]\n");
    exit(1);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"addr", required_argument, NULL, 'a'},
                                         {"procs", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    const char *addr = "127.0.0.1";
    int port = -1, procs = 1, o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'p')
            port = atoi(optarg);
        else if (o == 'a')
            addr = optarg;
        else if (o == 'n')
            procs = atoi(optarg);
        else
            usage();
    }
    if (optind != argc || port < 0 || port > 65535 || procs < 1 || procs > MAX_PROCS)
        usage();

    struct rlimit rl; /* as many fds as the hard limit allows */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* SIGTERM/SIGINT stay blocked except inside epoll_pwait: no lost wake-up */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, NULL);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Output buffers come and go every loop pass: keep freed memory in the
     * heap instead of giving it back (brk/munmap) and faulting it in again,
     * which otherwise costs more than the copies themselves. */
    mallopt(M_MMAP_THRESHOLD, 2 * MAX_OUT);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);

    /* Every listener exists before READY, so no connection can be refused. */
    int lfds[MAX_PROCS];
    lfds[0] = listen_on(addr, port);
    port = bound_port(lfds[0]);
    for (int i = 1; i < procs; i++)
        lfds[i] = listen_on(addr, port);
    if (procs == 1) {
        printf("READY %d\n", port);
        fflush(stdout);
        return serve(lfds[0]);
    }
    pid_t pids[MAX_PROCS], parent = getpid();
    for (int i = 0; i < procs; i++) {
        if ((pids[i] = fork()) < 0)
            die("fork");
        if (pids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the parent */
            if (getppid() != parent)
                exit(0);
            for (int j = 0; j < procs; j++)
                if (j != i)
                    close(lfds[j]);
            exit(serve(lfds[i]));
        }
    }
    for (int i = 0; i < procs; i++)
        close(lfds[i]);
    printf("READY %d\n", port);
    fflush(stdout);
    return supervise(pids, procs);
}
