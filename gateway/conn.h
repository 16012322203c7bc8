/* conn: what the opaque pointer of a client connection (a wsi of the main
 * vhost) holds over its life:
 *   accepted      a tag: the connection's iplimit handle, no allocation
 *   HTTP body     a struct http_req (http.c)
 *   WebSocket     a struct session (session.c)
 * A connection whose request front.c waits for (no wsi yet) is a struct
 * front_conn, also in the gateway's epoll set (wsio.h) like sessions.
 * Both structs start with a conn_head, so whichever is there tells what to
 * free and which client address to release when the connection goes. */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdint.h>

enum conn_kind { CONN_HTTP = 0x48545450, CONN_SESSION = 0x53455353, CONN_WAITING = 0x57414954 };

struct conn_head {
    enum conn_kind kind;
    uint32_t ip; /* iplimit handle (0 = untracked) */
};

/* Objects are at least 4-aligned, so an odd pointer is a tag. */
static inline void *conn_tag(uint32_t ip)
{
    return ip ? (void *)(((uintptr_t)ip << 1) | 1u) : (void *)0;
}

static inline struct conn_head *conn_head_of(void *opaque)
{
    return opaque && !((uintptr_t)opaque & 1u) ? (struct conn_head *)opaque : (void *)0;
}

static inline uint32_t conn_ip_of(void *opaque)
{
    if ((uintptr_t)opaque & 1u)
        return (uint32_t)((uintptr_t)opaque >> 1);
    return opaque ? ((struct conn_head *)opaque)->ip : 0;
}

#endif
