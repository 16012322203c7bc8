/* lowfd: the descriptors under lws' table, kept taken while lws does not use
 * them.
 *
 * lws 4.1 can hold only descriptors below its table's end (gateway.c
 * LWS_FD_TABLE), and the kernel gives each new socket the lowest free
 * number. The gateway's own WebSockets never enter lws, yet without this
 * module each would land under the table and have to move above it (a
 * fcntl and a close per connection, ~2 % of a connect storm's CPU), to keep
 * the low numbers free for lws. Here every free number under the table is
 * taken by a copy of one filler descriptor instead, so accept() hands
 * sockets out above the table at once, and what lws must hold (an HTTP
 * request, a broker link) moves down into a filler's number: dup3 replaces
 * the filler atomically.
 *
 * A number that lws frees when it closes a connection is a hole: the next
 * socket the kernel makes takes it (and is moved up or kept as before), or
 * lowfd_refill fills it again. Fillers never cost the process a connection
 * or an open: they are taken only while the top 64 numbers of the limit are
 * free, and given back (lowfd_release) when accept runs out or the refill
 * finds those numbers taken, so the process still holds as many sockets as
 * its limit allows, as before.
 *
 * Not thread-safe; one per process (the fillers are that process'). */
#ifndef GW_LOWFD_H
#define GW_LOWFD_H

#include <stdint.h>

struct lowfd;

/* Fills every free number under cap (unless the limit is within 64 of the
 * cap: then none). NULL when out of memory, or when cap
 * is 0 (no table: nothing to do); a NULL lowfd is valid for every call
 * below and does nothing. */
struct lowfd *lowfd_new(int cap);
/* Closes the fillers (the numbers they hold become free). NULL: no-op. */
void lowfd_free(struct lowfd *lf);

/* fd itself when it is under the table; otherwise the socket moved to a
 * number under it (fd is closed then), or -1 when none is free (fd is left
 * open and still the caller's). */
int lowfd_lower(struct lowfd *lf, int fd);

/* Out of descriptors: closes up to n fillers and stops refilling for a
 * minute; the number closed. Logs a warning once a hold. */
int lowfd_release(struct lowfd *lf, int n, int64_t now_ms);

/* Once a second: takes the free numbers under the table again, unless a
 * release was less than a minute ago; or, when the top of the limit is
 * taken, gives 64 fillers back instead. */
void lowfd_refill(struct lowfd *lf, int64_t now_ms);

/* Fillers held now (for metrics and tests). */
int lowfd_fillers(const struct lowfd *lf);

#endif
