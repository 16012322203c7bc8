/* listener: the gateway's TCP listening socket, shared by every gateway
 * process on the port.
 *
 * lws 4.1 cannot share a port between processes (it never sets SO_REUSEPORT)
 * and cannot take an existing listening socket. So each process opens its own
 * SO_REUSEPORT socket (the kernel spreads new connections over them), adopts
 * it into the lws loop as a raw descriptor, accepts in batches itself and
 * hands each connection to lws for HTTP/WebSocket handling. Running out of
 * file descriptors does not spin the loop: a reserve descriptor is released to
 * accept and immediately close the connection that could not be served. */
#ifndef GW_LISTENER_H
#define GW_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct lws;
struct lws_vhost;
struct listener;

#define LISTENER_PROTOCOL "confab listener"

/* Opens addr:port (addr "" = all), or takes `fd` when it is >= 0 (a
 * listening socket handed over by systemd socket activation; it is then
 * owned here). Returns NULL after logging. Nothing is accepted before
 * listener_accept: connections wait in the kernel's queue until then. */
struct listener *listener_new(struct lws_vhost *vh, const char *addr, int port, int fd);

/* Starts accepting (adopts the socket into vh's loop). Idempotent; -1 after
 * logging when lws refused the socket. */
int listener_accept(struct listener *l);
void listener_free(struct listener *l); /* closes the socket; NULL is a no-op */

/* Optional admission control for each accepted connection: admit returns 0
 * and the opaque pointer the connection starts with, or -1 after closing fd
 * itself (refused). When lws cannot take an admitted connection, release is
 * called with that opaque pointer; else adopted is, with the new wsi, and
 * sets it (lws destroys a connection it could not finish adopting before
 * returning, so the pointer is attached only once lws kept it: exactly one
 * of release and the destroy callback sees it). */
struct listener_hooks {
    /* now_ms: cf_mono_ms() read once at the accept, for every hook that
     * follows (a clock read was ~30 ns here, and a handshake took four) */
    int (*admit)(void *ud, int fd, const struct sockaddr *sa, socklen_t len, int64_t now_ms,
                 void **opaque);
    void (*release)(void *ud, void *opaque);
    void (*adopted)(void *ud, struct lws *wsi, void *opaque); /* lws took it */
    /* Optional, after admit: true when the connection is taken elsewhere
     * (fd and opaque with it); it may come back later through
     * listener_adopt. */
    bool (*take)(void *ud, int fd, void *opaque, int64_t now_ms);
    void *ud;
};
void listener_set_hooks(struct listener *l, const struct listener_hooks *h);

/* Hands an admitted connection (fd and the opaque pointer admit gave it) to
 * lws, as if take had declined it: release or adopted follows. fd is
 * consumed either way (it may move to another number first). */
void listener_adopt(struct listener *l, int fd, void *opaque);

/* Connections on descriptors >= cap cannot go to lws (its table ends
 * there): unless the take hook keeps them, they move under it (see
 * listener_set_lowfd), or, with no number free there, are refused like those
 * that find no descriptor at all. 0 (the default): no cap. NULL l is a
 * no-op. */
void listener_set_fd_cap(struct listener *l, int cap);

/* Where a connection for lws that landed at or above the cap moves to, and
 * the fillers given back when accept runs out of descriptors (lowfd.h): lf
 * must outlive l's accepting. NULL: none. NULL l is a no-op. */
struct lowfd;
void listener_set_lowfd(struct listener *l, struct lowfd *lf);

/* Caps the kernel's send buffer of every connection accepted from now on
 * (Linux copies SO_SNDBUF from the listening socket), so that what waits for
 * a client that does not read is bounded by the gateway's queue bound plus
 * this, not by the kernel's autotuning (up to tcp_wmem's maximum, 4 MiB: on
 * loopback, at once). The kernel doubles `bytes` and caps it at
 * net.core.wmem_max. NULL l is a no-op. */
void listener_set_sndbuf(struct listener *l, int bytes);

/* Stops accepting (for a graceful drain): new connections go to the other
 * processes sharing the port, or are refused once none is left. */
void listener_stop(struct listener *l);

/* The lws callback for LISTENER_PROTOCOL. */
int listener_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);

#endif
