/* frames: reading a stream of wire frames (common/wire.h's length-prefixed
 * payloads) from a non-blocking socket, as both ends of a gateway–broker
 * link do at each wakeup.
 *
 * A wakeup reads until the socket is empty or CF_FRAMES_BUDGET bytes have
 * been read (the loop's other work is not starved by one busy link; the
 * watch is level-triggered, so what is left wakes it again), handing each
 * whole frame to the caller as it completes. A read shortened to fit behind
 * a frame not yet whole is not taken for an empty socket: stopping there
 * read a burst 64 KiB a wakeup.
 *
 * Ownership: the caller owns the buffer and the socket; a frame's payload
 * points into the buffer and is valid only during its callback. */
#ifndef CF_FRAMES_H
#define CF_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define CF_FRAMES_CHUNK 65536          /* bytes asked of one read(2) */
#define CF_FRAMES_BUDGET (512u * 1024) /* bytes read in one wakeup, at most */

enum cf_frames_rc {
    CF_FRAMES_WAIT = 0,     /* the socket is empty or the budget spent */
    CF_FRAMES_EOF = -1,     /* the peer closed the stream */
    CF_FRAMES_ERROR = -2,   /* a read failed: *err holds its errno */
    CF_FRAMES_TOO_BIG = -3, /* a frame announced over the limit: the stream is unusable */
    CF_FRAMES_STOPPED = -4, /* on_frame returned nonzero */
};

struct cf_frames_ops {
    /* A whole frame's payload. Nonzero stops the read (the link is being
     * closed); the frame is consumed either way, so the callback must not
     * free or reset the buffer (a link closing frees it later). */
    int (*on_frame)(void *ud, const unsigned char *p, size_t len);
    /* The largest payload accepted for the next frame, checked as soon as
     * its header is read (a peer that has proven nothing may be held to
     * less than the wire's bound). NULL: CF_WIRE_MAX_FRAME. */
    uint32_t (*max_frame)(void *ud);
};

/* One wakeup's reads of fd into in. `*got` (may be NULL) is set to the
 * bytes read, whatever the result: the caller's sign of life. */
enum cf_frames_rc cf_frames_read(struct cf_bytes *in, int fd, const struct cf_frames_ops *ops,
                                 void *ud, size_t *got, int *err);

#endif
