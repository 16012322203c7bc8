/* bytes: a bounded, growable byte queue for stream sockets: bytes are appended
 * at the tail and consumed from the head. Used for link input (reassembling
 * frames across reads) and output (frames waiting for the socket).
 *
 * The bound is hard: an append that would hold more than `max` bytes fails
 * with -ENOBUFS and changes nothing, so the caller decides what a full queue
 * means (close a slow peer, refuse a send). A queue that grew past what it
 * keeps (4 KiB, or cf_bytes_keep) gives its memory back when it drains, so an
 * idle link holds at most one small buffer. Embeddable; not thread-safe. */
#ifndef CF_BYTES_H
#define CF_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cf_bytes {
    unsigned char *data;
    size_t head, tail; /* live bytes are data[head, tail) */
    size_t cap, max;
    size_t keep; /* a drained queue keeps a buffer up to this size */
};

void cf_bytes_init(struct cf_bytes *b, size_t max);
void cf_bytes_free(struct cf_bytes *b); /* releases memory; the queue stays usable */
/* A drained queue keeps a buffer of up to `keep` bytes (from init: 4 KiB) for
 * the next bytes. A socket read into the queue with a chunk larger than that
 * would otherwise allocate and free a chunk-sized buffer for every read. */
void cf_bytes_keep(struct cf_bytes *b, size_t keep);

static inline size_t cf_bytes_len(const struct cf_bytes *b)
{
    return b->tail - b->head;
}
static inline const unsigned char *cf_bytes_data(const struct cf_bytes *b)
{
    return b->data + b->head;
}

/* Makes room for n more bytes and returns where they go (write them, then
 * cf_bytes_commit). Returns NULL when that would exceed max or on OOM. */
unsigned char *cf_bytes_reserve(struct cf_bytes *b, size_t n);
void cf_bytes_commit(struct cf_bytes *b, size_t n);
/* 0, or -ENOBUFS (over the bound; nothing appended) / -ENOMEM. */
/* Appends formatted text (at most 1 KiB per call; longer is cut). Returns
 * what cf_bytes_append returns. */
__attribute__((format(printf, 2, 3))) int cf_bytes_printf(struct cf_bytes *b, const char *fmt,
                                                          ...);
int cf_bytes_append(struct cf_bytes *b, const void *p, size_t n);
void cf_bytes_consume(struct cf_bytes *b, size_t n);
/* Drops the bytes appended after `mark` (a previous cf_bytes_len value). */
void cf_bytes_truncate(struct cf_bytes *b, size_t mark);

/* One read(2) into the queue of at most `max_read` bytes, or of what fits
 * in the buffer while bytes left from earlier reads (a frame not yet whole)
 * fill at most half of it: the buffer is not grown for those. Returns bytes
 * read, 0 at end of stream, -EAGAIN when nothing is ready, -ENOBUFS when the
 * queue is full, or another -errno. `more` (may be NULL) is set when the read
 * took all it asked for, so the socket may hold more: a read shortened for a
 * frame not yet whole says nothing of the socket. */
ssize_t cf_bytes_read_fd(struct cf_bytes *b, int fd, size_t max_read, bool *more);
/* Writes as much as the socket takes. Returns bytes written (0 if it would
 * block), or -errno on a real error. */
ssize_t cf_bytes_write_fd(struct cf_bytes *b, int fd);

#endif
