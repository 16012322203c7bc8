/* iplimit: per client address limits of one gateway process: open TCP
 * connections, /login requests per second and WebSocket upgrades per second.
 *
 * An address is an IPv4 address or an IPv6 /64 (one host usually owns a
 * whole /64, so limiting single IPv6 addresses would limit nothing). The
 * table is bounded: an address is forgotten once it has no connection and
 * its buckets have refilled (ipl_sweep, and at once when the table is
 * full, at most every 100 ms unless a connection ended). When IPL_MAX_ADDRS
 * busy addresses are tracked, a new one is let in untracked: someone with
 * many addresses (IPv6 /64s are cheap) must not be able to lock everybody
 * else out.
 *
 * The limits are per gateway process: connections are spread over the
 * processes sharing a port, so a node admits up to (processes x limit).
 * Behind a proxy every client has the proxy's address: limit there instead
 * (docs/security.md). */
#ifndef GW_IPLIMIT_H
#define GW_IPLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define IPL_MAX_ADDRS (1u << 17)

struct ipl_limits {
    int max_conns;                  /* 0 = no limit */
    int login_rate, login_burst;    /* rate 0 = no limit */
    int upgrade_rate, upgrade_burst;
};

enum ipl_kind { IPL_LOGIN, IPL_UPGRADE };

enum ipl_verdict {
    IPL_OK = 0,
    IPL_TOO_MANY,  /* refused: the address has max_conns connections open */
    IPL_UNTRACKED, /* admitted without limits (handle 0): the table is full of busy
                      addresses, or out of memory */
};

struct ipl;

/* The limits are copied. NULL when out of memory. */
struct ipl *ipl_new(const struct ipl_limits *lim);
void ipl_free(struct ipl *t); /* NULL is a no-op */

/* A connection from sa opens. Unless IPL_TOO_MANY, *handle names its
 * address until ipl_close (0 when nothing is tracked: every limit is off,
 * the address is not IP, or IPL_UNTRACKED). */
enum ipl_verdict ipl_open(struct ipl *t, const struct sockaddr *sa, socklen_t len,
                          int64_t now_ms, uint32_t *handle);
void ipl_close(struct ipl *t, uint32_t handle); /* handle 0 is a no-op */

/* Takes one login or upgrade from the address's budget. False when over its
 * rate; *retry_s then says when one is available (>= 1). */
bool ipl_allow(struct ipl *t, uint32_t handle, enum ipl_kind kind, int64_t now_ms, int *retry_s);

/* Whether ipl_allow would let one through now, taking nothing. */
bool ipl_can(const struct ipl *t, uint32_t handle, enum ipl_kind kind, int64_t now_ms);

/* Forgets idle addresses; call about once a second. Bounded work per call. */
void ipl_sweep(struct ipl *t, int64_t now_ms);

/* Addresses tracked now (for metrics and tests). */
size_t ipl_count(const struct ipl *t);

#endif
