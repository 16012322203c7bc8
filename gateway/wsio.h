/* wsio: the readiness of the WebSockets the gateway owns itself.
 *
 * Established plain-TCP WebSockets leave lws (ws.c hands them over): lws
 * keeps about 1.1 KB of state per connection and polls every socket on each
 * pass, while an established WebSocket needs only a socket, a parser state
 * and its queue. Their sockets sit in one epoll set; the epoll descriptor is
 * itself adopted into lws' loop as a raw descriptor, so the process still has
 * one loop (lws' poll() wakes when any of them is ready) and lws' timers,
 * HTTP and broker links are untouched.
 *
 * Ownership: a registered descriptor stays the caller's; `ptr` is handed back
 * with each event and must stay valid until the descriptor is closed (which
 * takes it out of the set: a registered descriptor must be its socket's only
 * one). wsio_forget takes out a descriptor that stays open (handed on). */
#ifndef GW_WSIO_H
#define GW_WSIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws;
struct lws_vhost;
struct wsio;

#define WSIO_PROTOCOL "confab owned sockets"

/* What happened on a descriptor: readable (or closed by the peer), and/or
 * writable (only while asked for). */
typedef void (*wsio_event_fn)(void *ptr, bool readable, bool writable);

/* Creates the epoll set and adopts it into vh's loop (WSIO_PROTOCOL must be
 * one of vh's protocols). NULL after logging. */
struct wsio *wsio_new(struct lws_vhost *vh, wsio_event_fn on_event);
void wsio_free(struct wsio *io); /* NULL is a no-op; descriptors stay open */

/* Watches fd for input; `out` also for room to write. 0 or -errno. */
int wsio_add(struct wsio *io, int fd, void *ptr, bool out);
/* The same for a descriptor already watched; without `in` no input is
 * watched (after the peer's end of file, which leaves the socket readable
 * for good), though a hangup or an error still comes as `readable`. */
int wsio_mod(struct wsio *io, int fd, void *ptr, bool in, bool out);
int wsio_forget(struct wsio *io, int fd);

/* Makes lws' poll() return at mono_us (CLOCK_MONOTONIC, cf_mono_us) or
 * soon after, through a timer in the set: lws 4.1 turns the time to its next
 * timer into poll()'s milliseconds by truncating, so a timer of its own due
 * in under a millisecond makes it poll without waiting until then (a spin).
 * One wake-up at a time: a later call replaces the earlier one. 0 or -errno. */
int wsio_wake_at(struct wsio *io, int64_t mono_us);

/* A periodic tick through another timer in the set, for the same reason: an
 * lws timer due every second made lws spin poll(0) through the last
 * millisecond before it (about 2400 calls a second in the steady benchmark,
 * the deliveries of that millisecond held 1-2 ms). wsio_tick_every arms it
 * every period_us (a later call replaces the period); wsio_tick_take says,
 * once, that it fired since the last call (expirations missed meanwhile
 * count as one). 0 or -errno. */
int wsio_tick_every(struct wsio *io, int64_t period_us);
bool wsio_tick_take(struct wsio *io);

/* The lws callback of WSIO_PROTOCOL. */
int wsio_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);

#endif
