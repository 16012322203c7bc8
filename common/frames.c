/* frames: see frames.h. */
#include "frames.h"

#include <errno.h>
#include <stdbool.h>

#include "wire.h"

/* The payload length the buffer's front frame announces, if its header is
 * there. */
static bool announced(const struct cf_bytes *in, uint32_t *n)
{
    if (cf_bytes_len(in) < CF_WIRE_HDR)
        return false;
    const unsigned char *h = cf_bytes_data(in);
    *n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    return true;
}

/* Hands over every whole frame in the buffer. */
static enum cf_frames_rc deliver(struct cf_bytes *in, const struct cf_frames_ops *ops, void *ud)
{
    for (;;) {
        uint32_t n;
        if (ops->max_frame && announced(in, &n) && n > ops->max_frame(ud))
            return CF_FRAMES_TOO_BIG;
        const unsigned char *p;
        size_t len;
        int rc = cf_wire_frame_peek(in, &p, &len);
        if (rc == 0)
            return CF_FRAMES_WAIT;
        if (rc < 0)
            return CF_FRAMES_TOO_BIG;
        int stop = ops->on_frame(ud, p, len);
        cf_bytes_consume(in, CF_WIRE_HDR + len);
        if (stop)
            return CF_FRAMES_STOPPED;
    }
}

enum cf_frames_rc cf_frames_read(struct cf_bytes *in, int fd, const struct cf_frames_ops *ops,
                                 void *ud, size_t *got, int *err)
{
    size_t total = 0;
    enum cf_frames_rc rc = CF_FRAMES_WAIT;
    while (total < CF_FRAMES_BUDGET) {
        bool more;
        ssize_t n = cf_bytes_read_fd(in, fd, CF_FRAMES_CHUNK, &more);
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            rc = n == 0 ? CF_FRAMES_EOF : CF_FRAMES_ERROR;
            if (err)
                *err = (int)-n;
            break;
        }
        total += (size_t)n;
        rc = deliver(in, ops, ud);
        /* A read short of what it asked emptied the socket: asking again
         * would only say so. */
        if (rc != CF_FRAMES_WAIT || !more)
            break;
    }
    if (got)
        *got = total;
    return rc;
}
