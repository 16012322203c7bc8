/* upgreq: recognizes the one request nearly every connection starts with, a
 * plain WebSocket upgrade of /ws carrying its token, so that the gateway can
 * answer it without lws (front.h says why).
 *
 * It is a recognizer, not an HTTP parser: anything it is not sure of
 * (another method or path, HTTP/1.0, a folded or non-ASCII header line, a
 * duplicate of a header it reads, a body, a percent-encoded query, a
 * subprotocol list it would have to guess at, a key that is not 16 bytes of
 * base64, ...) is "not mine" and goes to lws, which stays the one full HTTP
 * parser of the gateway and answers every refusal. Both must therefore agree
 * on every request taken here; the unit tests hold that list.
 *
 * Pure functions, no allocation: the result points into the caller's
 * buffer. */
#ifndef GW_UPGREQ_H
#define GW_UPGREQ_H

#include <stddef.h>

/* The longest request looked at: longer ones are lws'. */
#define UPG_MAX_REQUEST 4096

struct upg_req {
    const char *key;      /* Sec-WebSocket-Key, 24 characters */
    const char *token;    /* from ?token= or Authorization: Bearer; NULL: none */
    size_t token_len;
    const char *origin;   /* NULL: no Origin header */
    size_t origin_len;
    const char *host;     /* never NULL when taken */
    size_t host_len;
    int proto;            /* index into the names given, -1: none asked for */
};

/* > 0: buf[0..n) is a whole request this path takes, n its length with the
 * blank line (bytes after it are not looked at); 0: it may become one, more
 * bytes are needed; -1: not mine. `protos` is the NULL-terminated list of
 * subprotocols served, in lws' protocol order. */
int upg_parse(const char *buf, size_t len, const char *const *protos, struct upg_req *out);

/* The Sec-WebSocket-Accept value for a 24-character key (RFC 6455 4.2.2):
 * 28 characters and a NUL into out. -1 if the digest fails. */
int upg_accept(const char *key, char out[29]);

#endif
