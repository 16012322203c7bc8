/* wsio: see wsio.h. */
#include "wsio.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "gateway.h"
#include "log.h"

/* Events taken per epoll_wait: the loop comes back for the rest (epoll is
 * level-triggered), so lws' own work is never starved by a busy set. */
#define BATCH 512

struct wsio {
    int ep;
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
    io->ep = epoll_create1(EPOLL_CLOEXEC);
    if (io->ep < 0) {
        CF_ERROR("wsio", "cannot create an epoll set: %s", strerror(errno));
        free(io);
        return NULL;
    }
    io->wsi = gw_adopt_raw(vh, io->ep, WSIO_PROTOCOL, io);
    if (!io->wsi) {
        CF_ERROR("wsio", "cannot adopt the epoll set into the lws loop");
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
    if (io->wsi) /* lws closes the descriptor with the wsi */
        lws_set_opaque_user_data(io->wsi, NULL);
    else if (io->ep >= 0)
        close(io->ep);
    free(io);
}

static int ctl(struct wsio *io, int op, int fd, void *ptr, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u),
                             .data.ptr = ptr};
    return epoll_ctl(io->ep, op, fd, &ev) < 0 ? -errno : 0;
}

int wsio_add(struct wsio *io, int fd, void *ptr, bool out)
{
    return ctl(io, EPOLL_CTL_ADD, fd, ptr, out);
}

int wsio_mod(struct wsio *io, int fd, void *ptr, bool out)
{
    return ctl(io, EPOLL_CTL_MOD, fd, ptr, out);
}

int wsio_forget(struct wsio *io, int fd)
{
    return epoll_ctl(io->ep, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

static void service(struct wsio *io)
{
    int n = epoll_wait(io->ep, io->ev, BATCH, 0);
    for (int i = 0; i < n; i++) {
        uint32_t e = io->ev[i].events;
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
