/* mhttp: see mhttp.h. */
#include "mhttp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apause.h"
#include "log.h"
#include "sock.h"

#define MAX_REQUEST 4096
#define MAX_CONNS 32
#define REQUEST_TIMEOUT_US (5 * 1000 * 1000)

struct mconn {
    struct mhttp *h;
    struct mconn *prev, *next;
    int fd;
    sd_event_source *io, *timer;
    size_t len;
    char buf[MAX_REQUEST + 1];
};

struct mhttp {
    sd_event *ev;
    int fd;
    sd_event_source *io;
    mhttp_fn fn;
    void *ud;
    int conns;
    struct mconn *head;
    struct apause pause; /* accepting, after running out of descriptors */
};

static void conn_free(struct mconn *c)
{
    sd_event_source_disable_unref(c->io);
    sd_event_source_disable_unref(c->timer);
    close(c->fd);
    c->h->conns--;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->h->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void respond(struct mconn *c, int status, const char *ctype, const void *body, size_t len)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 503 ? "Service Unavailable"
                                         : "Bad Request";
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason, ctype, len);
    /* Small answers to a private scraper: what the socket does not take at
     * once is dropped rather than buffered. */
    if (send(c->fd, head, (size_t)n, MSG_NOSIGNAL) == n && len)
        (void)!send(c->fd, body, len, MSG_NOSIGNAL);
}

static void handle(struct mconn *c)
{
    char method[8], path[256];
    if (sscanf(c->buf, "%7s %255s HTTP/1.%*c", method, path) != 2) {
        respond(c, 400, "text/plain", "bad request\n", 12);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        respond(c, 405, "text/plain", "method not allowed\n", 19);
        return;
    }
    struct cf_bytes body;
    cf_bytes_init(&body, 4 << 20);
    const char *ctype = "text/plain; charset=utf-8";
    int status = c->h->fn(c->h->ud, path, &body, &ctype);
    respond(c, status, ctype, strcmp(method, "HEAD") ? cf_bytes_data(&body) : NULL,
            strcmp(method, "HEAD") ? cf_bytes_len(&body) : 0);
    cf_bytes_free(&body);
}

static int on_conn(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)revents;
    struct mconn *c = ud;
    ssize_t n = read(fd, c->buf + c->len, MAX_REQUEST - c->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        conn_free(c);
        return 0;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n"))
        handle(c);
    else if (c->len < MAX_REQUEST)
        return 0; /* more to come */
    else
        respond(c, 400, "text/plain", "request too large\n", 18);
    conn_free(c);
    return 0;
}

static int on_conn_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    conn_free(ud);
    return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)revents;
    struct mhttp *h = ud;
    for (int i = 0; i < 16; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            apause_failed(&h->pause, errno); /* level-triggered: do not spin */
            return 0;
        }
        apause_accepted(&h->pause);
        struct mconn *c = h->conns < MAX_CONNS ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            close(cfd); /* too many scrapers at once: they retry */
            continue;
        }
        c->h = h;
        c->fd = cfd;
        h->conns++;
        c->next = h->head;
        if (h->head)
            h->head->prev = c;
        h->head = c;
        if (sd_event_add_io(h->ev, &c->io, cfd, EPOLLIN, on_conn, c) < 0 ||
            sd_event_add_time_relative(h->ev, &c->timer, CLOCK_MONOTONIC, REQUEST_TIMEOUT_US,
                                       100000, on_conn_timeout, c) < 0)
            conn_free(c);
    }
    return 0;
}

struct mhttp *mhttp_new(sd_event *ev, const char *addr, int port, mhttp_fn fn, void *ud)
{
    struct mhttp *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->ev = ev;
    h->fn = fn;
    h->ud = ud;
    h->fd = cf_sock_tcp_listen(addr, port, 64);
    if (h->fd < 0) {
        CF_ERROR("metrics", "cannot listen on %s:%d for metrics: %s; check BROKER_METRICS_PORT",
                 *addr ? addr : "*", port, strerror(-h->fd));
        free(h);
        return NULL;
    }
    char what[80];
    snprintf(what, sizeof what, "metrics requests on port %d", port);
    if (sd_event_add_io(ev, &h->io, h->fd, EPOLLIN, on_accept, h) < 0 ||
        apause_init(&h->pause, ev, h->io, "metrics", what) < 0) {
        sd_event_source_disable_unref(h->io);
        close(h->fd);
        free(h);
        return NULL;
    }
    return h;
}

void mhttp_free(struct mhttp *h)
{
    if (!h)
        return;
    while (h->head)
        conn_free(h->head);
    apause_free(&h->pause);
    sd_event_source_disable_unref(h->io);
    close(h->fd);
    free(h);
}
