/* listener: see listener.h. */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "gateway.h"
#include "log.h"
#include "logcap.h"
#include "lowfd.h"
#include "sock.h"

#define ACCEPT_BUDGET 128
#define BACKLOG 4096
#define RELEASE_BATCH 64 /* fillers given back at once when out of descriptors */

struct listener {
    struct lws_vhost *vh;
    struct lws *wsi;
    int fd, reserve;
    int fd_cap;          /* 0: none */
    struct lowfd *lowfd; /* where sockets for lws move under fd_cap; NULL: none */
    int64_t last_emfile_log;
    unsigned long emfile_drops;
    struct cf_logcap accept_log;
    struct listener_hooks hooks;
    unsigned long adopt_failures;
    int64_t last_adopt_log;
};

void listener_set_hooks(struct listener *l, const struct listener_hooks *h)
{
    l->hooks = *h;
}

void listener_set_fd_cap(struct listener *l, int cap)
{
    if (l)
        l->fd_cap = cap;
}

void listener_set_lowfd(struct listener *l, struct lowfd *lf)
{
    if (l)
        l->lowfd = lf;
}

void listener_set_sndbuf(struct listener *l, int bytes)
{
    if (l && setsockopt(l->fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) < 0)
        CF_WARN("listen",
                "cannot set SO_SNDBUF on the listening socket (%s): a client that "
                "does not read may hold up to the kernel's maximum send buffer",
                strerror(errno));
}

/* Hands an accepted socket to lws for HTTP (and TLS when the vhost has it). */
static void log_drops(struct listener *l);

void listener_adopt(struct listener *l, int fd, void *opaque)
{
    int low = lowfd_lower(l->lowfd, fd); /* fd itself when under the cap or no lowfd */
    if (low >= 0)
        fd = low;
    if (l->fd_cap && fd >= l->fd_cap) {
        /* every descriptor lws can hold is taken (connections being set up,
         * or WebSockets that found none free above the cap): full */
        close(fd);
        l->emfile_drops++;
        log_drops(l);
        if (l->hooks.release)
            l->hooks.release(l->hooks.ud, opaque);
        return;
    }
    lws_adopt_desc_t info;
    memset(&info, 0, sizeof info);
    info.vh = l->vh;
    info.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | LWS_ADOPT_ALLOW_SSL;
    info.fd.sockfd = fd;
    struct lws *wsi = lws_adopt_descriptor_vhost_via_info(&info);
    if (!wsi) {
        /* lws has closed fd: e.g. a TLS client that sent plain text or reset
         * at once (health checks, scanners), so no more than one line a
         * minute about it */
        l->adopt_failures++;
        int64_t now = cf_mono_ms();
        if (now - l->last_adopt_log > 60000) {
            l->last_adopt_log = now;
            CF_INFO("listen",
                    "%lu connections ended while being set up (TLS handshake failed "
                    "or the peer left)",
                    l->adopt_failures);
        }
        if (l->hooks.release)
            l->hooks.release(l->hooks.ud, opaque);
    } else if (l->hooks.adopted) {
        l->hooks.adopted(l->hooks.ud, wsi, opaque);
    }
}

struct listener *listener_new(struct lws_vhost *vh, const char *addr, int port, int fd)
{
    struct listener *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->vh = vh;
    l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        /* systemd's socket: ours to accept on, non-blocking like our own */
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        l->fd = fd;
    } else {
        l->fd = cf_sock_tcp_listen(addr, port, BACKLOG);
    }
    if (l->fd < 0) {
        CF_ERROR(
            "listen", "cannot listen on %s:%d: %s%s", *addr ? addr : "*", port, strerror(-l->fd),
            l->fd == -EADDRINUSE ? " (another program holds the port without SO_REUSEPORT)" : "");
        if (l->reserve >= 0)
            close(l->reserve);
        free(l);
        return NULL;
    }
    /* lws sets TCP_NODELAY only on sockets it accepted itself: without it
     * Nagle holds a frame written while the previous one is unacknowledged
     * until the client's delayed ACK (up to 40 ms a message under load).
     * Linux copies it from the listening socket to each accepted one, which
     * saves a system call per connection (~2% of a connect storm's CPU). */
    int one = 1;
    if (setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        CF_WARN("listen",
                "cannot set TCP_NODELAY on the listening socket (%s): messages to "
                "clients may wait for their ACKs",
                strerror(errno));
    return l;
}

int listener_accept(struct listener *l)
{
    if (!l || l->wsi || l->fd < 0)
        return 0;
    l->wsi = gw_adopt_raw(l->vh, &l->fd, LISTENER_PROTOCOL, l);
    if (!l->wsi) {
        CF_ERROR("listen", "cannot add the listening socket to the event loop");
        return -1;
    }
    return 0;
}

void listener_stop(struct listener *l)
{
    if (!l)
        return;
    if (!l->wsi) {
        if (l->fd >= 0) /* never accepted on: still ours */
            close(l->fd);
        l->fd = -1;
        return;
    }
    lws_set_opaque_user_data(l->wsi, NULL);
    lws_set_timeout(l->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC); /* closes l->fd */
    l->wsi = NULL;
    l->fd = -1;
}

void listener_free(struct listener *l)
{
    if (!l)
        return;
    listener_stop(l);
    if (l->reserve >= 0)
        close(l->reserve);
    free(l);
}

static void log_drops(struct listener *l)
{
    int64_t now = cf_mono_ms();
    if (now - l->last_emfile_log > 10000) {
        l->last_emfile_log = now;
        CF_ERROR("listen",
                 "out of file descriptors: refused %lu connections so far (raise "
                 "LimitNOFILE or add gateway processes)",
                 l->emfile_drops);
    }
}

static void shed_one(struct listener *l)
{
    /* Out of descriptors: accept with the reserve's slot and close at once, so
     * the peer gets a clean refusal and the loop does not spin on POLLIN. */
    l->emfile_drops++;
    if (l->reserve >= 0) {
        close(l->reserve);
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            close(fd);
        l->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    log_drops(l);
}

/* Linux hands the network error of a pending connection to accept()
 * (accept(2)), and a firewall's refusal as EPERM: that connection is gone,
 * the next may be fine, so they are taken like EAGAIN, and silently. */
static bool gone_before_accept(int e)
{
    switch (e) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENETUNREACH:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENONET:
    case EOPNOTSUPP:
        return true;
    default:
        return false;
    }
}

int listener_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct listener *l = lws_get_opaque_user_data(wsi);
    if (!l || reason != LWS_CALLBACK_RAW_RX_FILE)
        return 0;
    for (int i = 0; i < ACCEPT_BUDGET; i++) {
        struct sockaddr_storage ss;
        socklen_t slen = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            /* the fillers under lws' table first (lowfd.h): they hold
             * numbers, not files, so only EMFILE frees anything */
            if (errno == EMFILE && lowfd_release(l->lowfd, RELEASE_BATCH, cf_mono_ms()) > 0)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                shed_one(l);
            else if (gone_before_accept(errno))
                continue;
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                /* the kernel short of memory (ENOBUFS, ENOMEM): the listener
                 * stays readable, so this comes at every loop pass */
                CF_LOG_CAPPED(&l->accept_log, CF_LOG_ERROR, "listen",
                              "accept failed: %s (the kernel is short of memory or socket "
                              "buffers: see dmesg)",
                              strerror(errno));
            break;
        }
        /* past the cap, only a connection the take hook answers is served
         * (listener_adopt refuses the rest) */
        void *opaque = NULL;
        int64_t now = cf_mono_ms();
        if (l->hooks.admit &&
            l->hooks.admit(l->hooks.ud, fd, (struct sockaddr *)&ss, slen, now, &opaque) < 0)
            continue;
        if (!l->hooks.take || !l->hooks.take(l->hooks.ud, fd, opaque, now))
            listener_adopt(l, fd, opaque);
    }
    return 0;
}
