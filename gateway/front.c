/* front: see front.h. */
#include "front.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "gateway.h"
#include "iplimit.h"
#include "listener.h"
#include "log.h"
#include "upgreq.h"
#include "ws.h"
#include "wsio.h"

struct front_conn {
    struct conn_head head; /* CONN_WAITING: how wsio events find their way here */
    int fd;
    struct front *f;
    int64_t deadline;
    struct front_conn *prev, *next; /* oldest first: deadlines in order */
};

struct front {
    struct gw *gw;
    struct listener *l;
    struct front_conn *first, *last;
    uint64_t n;
};

struct front *front_new(struct gw *gw, struct listener *l)
{
    struct front *f = calloc(1, sizeof *f);
    if (f) {
        f->gw = gw;
        f->l = l;
    }
    return f;
}

static void unlink_conn(struct front *f, struct front_conn *c)
{
    *(c->prev ? &c->prev->next : &f->first) = c->next;
    *(c->next ? &c->next->prev : &f->last) = c->prev;
    f->n--;
}

static void end_conn(struct front *f, struct front_conn *c)
{
    unlink_conn(f, c);
    close(c->fd); /* its only descriptor: out of the epoll set too */
    ipl_close(f->gw->ipl, c->head.ip);
    free(c);
}

void front_free(struct front *f)
{
    if (!f)
        return;
    while (f->first)
        end_conn(f, f->first);
    free(f);
}

uint64_t front_waiting(const struct front *f)
{
    return f ? f->n : 0;
}

enum verdict { TAKEN, WAIT, TO_LWS };

/* A waiting connection leaves the list once decided. Its socket stays in
 * the epoll set for ws_open to point the entry at the session (one
 * EPOLL_CTL_MOD where a removal and an add took two system calls); it
 * leaves the set before lws gets the socket. */
static void stop_waiting(struct front_conn *c)
{
    if (!c)
        return;
    unlink_conn(c->f, c);
    free(c);
}

/* Looks at what the client sent so far without taking it off the socket.
 * c: the connection's wait, if it was waiting. */
static enum verdict decide(struct front *f, int fd, uint32_t ip, struct front_conn *c,
                           int64_t now_ms)
{
    char buf[UPG_MAX_REQUEST];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return WAIT;
    bool watched = c != NULL;
    stop_waiting(c);
    if (n <= 0) { /* gone before it said anything, or reset */
        close(fd); /* its only descriptor: out of the epoll set too */
        ipl_close(f->gw->ipl, ip);
        return TAKEN;
    }
    enum verdict v = ws_open(f->gw, fd, ip, buf, (size_t)n, watched, now_ms) != 0 ? TAKEN : TO_LWS;
    explicit_bzero(buf, (size_t)n); /* it holds the token */
    if (v == TO_LWS && watched) /* lws polls it itself */
        wsio_forget(f->gw->io, fd);
    return v;
}

bool front_take(struct front *f, int fd, void *opaque, int64_t now_ms)
{
    if (!f || f->gw->draining)
        return false;
    uint32_t ip = conn_ip_of(opaque);
    enum verdict v = decide(f, fd, ip, NULL, now_ms);
    if (v != WAIT)
        return v == TAKEN;
    struct front_conn *c = malloc(sizeof *c);
    if (!c)
        return false;
    *c = (struct front_conn){.head = {CONN_WAITING, ip}, .fd = fd, .f = f, .prev = f->last,
                             .deadline = now_ms + 1000LL * f->gw->cfg->handshake_timeout};
    if (wsio_add(f->gw->io, fd, c, false) < 0) {
        free(c);
        return false;
    }
    *(f->last ? &f->last->next : &f->first) = c;
    f->last = c;
    f->n++;
    return true;
}

void front_on_io(void *waiting)
{
    struct front_conn *c = waiting;
    struct front *f = c->f;
    int fd = c->fd;
    uint32_t ip = c->head.ip;
    if (decide(f, fd, ip, c, cf_mono_ms()) == TO_LWS) /* WAIT: nothing yet after all */
        listener_adopt(f->l, fd, conn_tag(ip));
}

void front_tick(struct front *f, int64_t now_ms)
{
    if (!f)
        return;
    unsigned closed = 0;
    while (f->first && f->first->deadline <= now_ms) {
        end_conn(f, f->first);
        closed++;
    }
    if (closed)
        CF_DEBUG("front", "closed %u connections that sent no request in HANDSHAKE_TIMEOUT",
                 closed);
}
