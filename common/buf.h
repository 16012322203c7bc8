/* buf: a reference-counted byte buffer, so that a message sent to many sockets
 * is encoded once and shared by every queue that holds it.
 *
 * Ownership: cf_buf_new returns a buffer with one reference owned by the
 * caller; every holder that keeps it takes cf_buf_ref and gives it back with
 * cf_buf_unref, which frees it at zero. Single-threaded (one loop per process). */
#ifndef CF_BUF_H
#define CF_BUF_H

#include <stddef.h>
#include <stdint.h>

struct cf_buf {
    uint32_t refs;
    uint32_t len; /* bytes of payload, starting at data + head */
    uint32_t head; /* headroom reserved before the payload (e.g. LWS_PRE) */
    uint32_t cap;  /* bytes allocated in data */
    unsigned char data[];
};

/* A buffer with `head` bytes of headroom and room for `cap` payload bytes;
 * len starts at 0. Returns NULL when out of memory. */
struct cf_buf *cf_buf_new(size_t head, size_t cap);
struct cf_buf *cf_buf_ref(struct cf_buf *b);
void cf_buf_unref(struct cf_buf *b); /* NULL is a no-op */

static inline unsigned char *cf_buf_payload(struct cf_buf *b)
{
    return b->data + b->head;
}

#endif
