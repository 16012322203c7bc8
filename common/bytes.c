#include "bytes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MIN_CAP 4096

void cf_bytes_init(struct cf_bytes *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
    b->keep = MIN_CAP;
}

void cf_bytes_keep(struct cf_bytes *b, size_t keep)
{
    b->keep = keep;
}

void cf_bytes_free(struct cf_bytes *b)
{
    free(b->data);
    b->data = NULL;
    b->head = b->tail = b->cap = 0;
}

unsigned char *cf_bytes_reserve(struct cf_bytes *b, size_t n)
{
    size_t live = b->tail - b->head;
    if (n > b->max || live > b->max - n)
        return NULL;
    if (b->cap - b->tail >= n)
        return b->data + b->tail;
    /* Slide live bytes to the front when that makes room; grow otherwise. */
    if (b->head > 0 && b->cap - live >= n) {
        memmove(b->data, b->data + b->head, live);
        b->head = 0;
        b->tail = live;
        return b->data + b->tail;
    }
    size_t need = live + n, cap = b->cap ? b->cap : MIN_CAP;
    while (cap < need)
        cap *= 2;
    if (cap > b->max && need <= b->max)
        cap = b->max > MIN_CAP ? b->max : MIN_CAP;
    unsigned char *d = malloc(cap);
    if (!d)
        return NULL;
    if (live)
        memcpy(d, b->data + b->head, live);
    free(b->data);
    b->data = d;
    b->cap = cap;
    b->head = 0;
    b->tail = live;
    return b->data + b->tail;
}

void cf_bytes_commit(struct cf_bytes *b, size_t n)
{
    b->tail += n;
}

int cf_bytes_append(struct cf_bytes *b, const void *p, size_t n)
{
    if (n == 0)
        return 0; /* p may be NULL, and a fresh buffer has no memory to point into */
    size_t live = b->tail - b->head;
    if (n > b->max || live > b->max - n)
        return -ENOBUFS;
    unsigned char *dst = cf_bytes_reserve(b, n);
    if (!dst)
        return -ENOMEM;
    memcpy(dst, p, n);
    b->tail += n;
    return 0;
}

void cf_bytes_consume(struct cf_bytes *b, size_t n)
{
    b->head += n;
    if (b->head >= b->tail) {
        /* Drained: give the memory back unless it is small enough to keep. */
        b->head = b->tail = 0;
        if (b->cap > b->keep)
            cf_bytes_free(b);
    }
}

void cf_bytes_truncate(struct cf_bytes *b, size_t mark)
{
    if (mark < b->tail - b->head)
        b->tail = b->head + mark;
}

ssize_t cf_bytes_read_fd(struct cf_bytes *b, int fd, size_t max_read, bool *more)
{
    if (more)
        *more = false;
    size_t room = b->max - (b->tail - b->head);
    if (room == 0)
        return -ENOBUFS;
    size_t want = max_read < room ? max_read : room, live = b->tail - b->head;
    /* What is left of a frame that straddles two reads goes to the front,
     * and the read takes what then fits: making room for a whole chunk
     * behind it would double the buffer, which its next drain gives back
     * and the next read allocates again. A frame longer than half the
     * buffer still grows it. */
    if (b->cap > 0 && live <= b->cap / 2 && b->cap - live < want)
        want = b->cap - live;
    unsigned char *dst = cf_bytes_reserve(b, want);
    if (!dst)
        return -ENOMEM;
    ssize_t r;
    do
        r = read(fd, dst, want);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    b->tail += (size_t)r;
    if (more)
        *more = (size_t)r == want;
    return r;
}

ssize_t cf_bytes_write_fd(struct cf_bytes *b, int fd)
{
    size_t total = 0;
    while (b->tail > b->head) {
        ssize_t w = send(fd, b->data + b->head, b->tail - b->head, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -errno;
        }
        cf_bytes_consume(b, (size_t)w);
        total += (size_t)w;
    }
    return (ssize_t)total;
}

int cf_bytes_printf(struct cf_bytes *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    return cf_bytes_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}
