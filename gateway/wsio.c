/* wsio: see wsio.h. */
#include "wsio.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "gateway.h"
#include "log.h"

/* Events taken per epoll_wait: the loop comes back for the rest (epoll is
 * level-triggered), so lws' own work is never starved by a busy set. */
#define BATCH 512

struct wsio {
    int ep;
    int timer;        /* timerfd of wsio_wake_at, -1 until first used */
    int64_t armed_us; /* when it fires, 0: disarmed */
    int tick;         /* timerfd of wsio_tick_every, -1 until first used */
    bool ticked;      /* it fired since wsio_tick_take last looked */
    struct lws *wsi;
    wsio_event_fn on_event;
    struct epoll_event ev[BATCH];
};

struct wsio *wsio_new(struct lws_vhost *vh, wsio_event_fn on_event)
{
    struct wsio *io = calloc(1, sizeof *io);
    if (!io)
        return NULL;
    io->on_event = on_event;
    io->timer = -1;
    io->tick = -1;
    io->ep = epoll_create1(EPOLL_CLOEXEC);
    if (io->ep < 0) {
        CF_ERROR("wsio", "cannot create an epoll set: %s", strerror(errno));
        free(io);
        return NULL;
    }
    io->wsi = gw_adopt_raw(vh, &io->ep, WSIO_PROTOCOL, io);
    if (!io->wsi) {
        CF_ERROR("wsio", "cannot adopt the epoll set into the lws loop");
        if (fcntl(io->ep, F_GETFD) >= 0) /* lws may have closed it already */
            close(io->ep);
        free(io);
        return NULL;
    }
    return io;
}

void wsio_free(struct wsio *io)
{
    if (!io)
        return;
    if (io->timer >= 0)
        close(io->timer);
    if (io->tick >= 0)
        close(io->tick);
    if (io->wsi) /* lws closes the descriptor with the wsi */
        lws_set_opaque_user_data(io->wsi, NULL);
    else if (io->ep >= 0)
        close(io->ep);
    free(io);
}

static int ctl(struct wsio *io, int op, int fd, void *ptr, bool in, bool out)
{
    struct epoll_event ev = {.events = (in ? EPOLLIN | EPOLLRDHUP : 0u) | (out ? EPOLLOUT : 0u),
                             .data.ptr = ptr};
    return epoll_ctl(io->ep, op, fd, &ev) < 0 ? -errno : 0;
}

int wsio_add(struct wsio *io, int fd, void *ptr, bool out)
{
    return ctl(io, EPOLL_CTL_ADD, fd, ptr, true, out);
}

int wsio_mod(struct wsio *io, int fd, void *ptr, bool in, bool out)
{
    return ctl(io, EPOLL_CTL_MOD, fd, ptr, in, out);
}

int wsio_forget(struct wsio *io, int fd)
{
    return epoll_ctl(io->ep, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

/* A timerfd in the set, its event data `tag`: an address inside io, which
 * no registered descriptor's data can be. The descriptor, or -errno. */
static int set_timer(struct wsio *io, void *tag)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
    if (epoll_ctl(io->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static struct timespec ts_of_us(int64_t us)
{
    return (struct timespec){.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
}

/* Empties a timer's count; false (logged) when it could not be read. */
static bool read_timer(int fd, const char *what)
{
    uint64_t fired;
    if (read(fd, &fired, sizeof fired) == (ssize_t)sizeof fired)
        return true;
    if (errno != EAGAIN) /* EAGAIN: re-armed in this batch */
        CF_WARN("wsio", "cannot read the %s timer: %s", what, strerror(errno));
    return false;
}

int wsio_wake_at(struct wsio *io, int64_t mono_us)
{
    if (!io->wsi)
        return -ENOTCONN; /* lws closed the set: nobody would wake */
    if (mono_us <= 0)
        mono_us = 1;
    if (io->armed_us == mono_us)
        return 0; /* asked again for the same time: nothing to change */
    if (io->timer < 0) {
        int fd = set_timer(io, io);
        if (fd < 0)
            return fd;
        io->timer = fd;
    }
    struct itimerspec its = {.it_value = ts_of_us(mono_us)};
    if (timerfd_settime(io->timer, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        return -errno;
    io->armed_us = mono_us;
    return 0;
}

int wsio_tick_every(struct wsio *io, int64_t period_us)
{
    if (!io->wsi)
        return -ENOTCONN;
    if (period_us <= 0)
        return -EINVAL;
    if (io->tick < 0) {
        int fd = set_timer(io, &io->tick);
        if (fd < 0)
            return fd;
        io->tick = fd;
    }
    struct timespec p = ts_of_us(period_us);
    struct itimerspec its = {.it_interval = p, .it_value = p};
    return timerfd_settime(io->tick, 0, &its, NULL) < 0 ? -errno : 0;
}

bool wsio_tick_take(struct wsio *io)
{
    if (!io || !io->ticked)
        return false;
    io->ticked = false;
    return true;
}

static void service(struct wsio *io)
{
    int n = epoll_wait(io->ep, io->ev, BATCH, 0);
    for (int i = 0; i < n; i++) {
        uint32_t e = io->ev[i].events;
        if (io->ev[i].data.ptr == io) { /* the wake-up: its work is the caller's */
            if (read_timer(io->timer, "wake-up"))
                io->armed_us = 0;
            continue;
        }
        if (io->ev[i].data.ptr == &io->tick) { /* so is the tick's */
            if (read_timer(io->tick, "tick"))
                io->ticked = true;
            continue;
        }
        io->on_event(io->ev[i].data.ptr, e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR),
                     e & EPOLLOUT);
    }
}

int wsio_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct wsio *io = lws_get_opaque_user_data(wsi);
    if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
        if (io) { /* lws closes the descriptor */
            io->wsi = NULL;
            io->ep = -1;
        }
        return 0;
    }
    if (io && reason == LWS_CALLBACK_RAW_RX_FILE)
        service(io);
    return 0;
}
