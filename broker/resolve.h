/* resolve: a Redis server's host name looked up without stalling the loop.
 *
 * hiredis resolves a host with a blocking getaddrinfo() before its
 * non-blocking connect. With a DNS server that does not answer, that held
 * the broker's whole loop (every room, every gateway link, the systemd
 * watchdog) for the resolver's timeout times its attempts and servers, at
 * each reconnection attempt. A lookup here runs on a thread of its own and
 * ends in the event loop; the caller then connects to the numeric address,
 * which getaddrinfo() takes without a lookup. An IPv4 address is preferred,
 * as hiredis does. */
#ifndef BROKER_RESOLVE_H
#define BROKER_RESOLVE_H

#include <stdbool.h>

#include <systemd/sd-event.h>

/* Room for a numeric IPv4 or IPv6 address and its NUL. */
#define RESOLVE_IP_MAX 46

struct resolve;

/* Called once, from the loop: `ip` is the first IPv4 address getaddrinfo()
 * returned, else the first IPv6 one (numeric), or NULL with `err` saying
 * why. The lookup is over and
 * freed by then: the caller forgets its pointer. */
typedef void (*resolve_fn)(void *ud, const char *ip, const char *err);

/* Starts looking `host` up. NULL (nothing started, fn never called) when
 * out of memory, out of threads, or with RESOLVE_MAX_RUNNING lookups still
 * running in the process (those given up on included). */
#define RESOLVE_MAX_RUNNING 16
struct resolve *resolve_start(sd_event *ev, const char *host, resolve_fn fn, void *ud);

/* Gives the lookup up: fn is not called. Its thread finishes by itself (a
 * blocked getaddrinfo() cannot be interrupted) and frees what is left. NULL
 * is a no-op. */
void resolve_cancel(struct resolve *r);

/* True when host is a numeric IPv4 or IPv6 address: nothing to look up. */
bool resolve_is_numeric(const char *host);

#endif
