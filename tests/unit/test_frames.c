/* Unit tests for common/frames: one wakeup's reads of a link, against a
 * real pipe (read(2) on it is what a socket's is to the module). Both ends
 * of the gateway–broker links read through it. */
/* (F_SETPIPE_SZ: _GNU_SOURCE is set for the whole build) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "frames.h"
#include "wire.h"

struct seen {
    int frames;
    int stop_at;        /* on_frame asks to stop at this frame (1-based); 0: never */
    uint32_t max;       /* max_frame's answer */
    uint32_t max_after; /* ... once a frame has come, when nonzero */
    size_t bytes;
    bool bad; /* a frame's payload was not what was written */
};

static int on_frame(void *ud, const unsigned char *p, size_t len)
{
    struct seen *s = ud;
    s->frames++;
    s->bytes += len;
    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)(len + i))
            s->bad = true;
    return s->stop_at && s->frames == s->stop_at;
}

static uint32_t max_frame(void *ud)
{
    const struct seen *s = ud;
    return s->frames && s->max_after ? s->max_after : s->max;
}

static const struct cf_frames_ops plain = {on_frame, NULL};
static const struct cf_frames_ops limited = {on_frame, max_frame};

/* A non-blocking pipe holding up to 1 MiB (r.fd[0] is read). */
static void pipe_of(int fd[2])
{
    assert_int_equal(pipe2(fd, O_NONBLOCK | O_CLOEXEC), 0);
    if (fcntl(fd[1], F_SETPIPE_SZ, 1 << 20) < (1 << 20))
        skip(); /* (fs.pipe-max-size under 1 MiB: nothing to tell) */
}

/* Writes n frames of `len` bytes each (byte i of a payload is len + i). */
static size_t put_frames(int fd, int n, size_t len)
{
    struct cf_bytes out;
    cf_bytes_init(&out, 8u << 20);
    unsigned char *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(len + i);
    for (int i = 0; i < n; i++)
        assert_int_equal(cf_wire_frame_raw(&out, p, len), 0);
    free(p);
    size_t all = cf_bytes_len(&out);
    assert_int_equal(write(fd, cf_bytes_data(&out), all), (ssize_t)all);
    cf_bytes_free(&out);
    return all;
}

/* A pipe and a link's read buffer, as a link sets it up. */
struct rig {
    int fd[2];
    struct cf_bytes in;
};

static void rig_open(struct rig *r)
{
    pipe_of(r->fd);
    cf_bytes_init(&r->in, CF_WIRE_HDR + CF_WIRE_MAX_FRAME);
    cf_bytes_keep(&r->in, CF_FRAMES_CHUNK);
}

static void rig_close(struct rig *r)
{
    cf_bytes_free(&r->in);
    close(r->fd[0]);
    if (r->fd[1] >= 0)
        close(r->fd[1]);
}

/* A header announcing n bytes, and none of them. */
static void put_header(int fd, uint32_t n)
{
    unsigned char h[CF_WIRE_HDR];
    for (int i = 0; i < 4; i++)
        h[i] = (unsigned char)(n >> (24 - 8 * i));
    assert_int_equal(write(fd, h, sizeof h), (ssize_t)sizeof h);
}

/* Frames that straddle the reads are all taken in one wakeup: a read
 * shortened to fit behind a frame not yet whole was taken for an empty
 * socket, and a burst was read 64 KiB a wakeup. */
static void test_a_burst_is_read_in_one_wakeup(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    size_t all = put_frames(r.fd[1], 300, 1000);
    assert_true(all > 4 * CF_FRAMES_CHUNK && all < CF_FRAMES_BUDGET);
    struct seen s = {0};
    size_t got = 0;
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &plain, &s, &got, NULL), CF_FRAMES_WAIT);
    printf("%d of 300 frames in one wakeup\n", s.frames);
    assert_int_equal(s.frames, 300);
    assert_int_equal(got, all);
    assert_false(s.bad);
    assert_int_equal(cf_bytes_len(&r.in), 0);
    /* nothing more: a wakeup with nothing to read reads nothing */
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &plain, &s, &got, NULL), CF_FRAMES_WAIT);
    assert_int_equal(got, 0);
    rig_close(&r);
}

/* A wakeup reads at most its budget (and a read's chunk past it): the rest
 * waits for the next, whole. */
static void test_a_wakeup_reads_at_most_its_budget(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    size_t all = put_frames(r.fd[1], 900, 1000);
    assert_true(all > CF_FRAMES_BUDGET + CF_FRAMES_CHUNK);
    struct seen s = {0};
    size_t got = 0, total = 0;
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &plain, &s, &got, NULL), CF_FRAMES_WAIT);
    assert_true(got >= CF_FRAMES_BUDGET && got < CF_FRAMES_BUDGET + CF_FRAMES_CHUNK);
    assert_true(s.frames > 0 && s.frames < 900);
    total += got;
    while (total < all) {
        assert_int_equal(cf_frames_read(&r.in, r.fd[0], &plain, &s, &got, NULL), CF_FRAMES_WAIT);
        assert_true(got > 0);
        total += got;
    }
    assert_int_equal(s.frames, 900);
    assert_false(s.bad);
    rig_close(&r);
}

/* The frames before the end of the stream are handed over, then the end. */
static void test_the_end_of_the_stream_comes_after_its_frames(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    put_frames(r.fd[1], 2, 100);
    close(r.fd[1]);
    struct seen s = {0};
    /* (a short read stops the wakeup; the end wakes the next, as epoll's
     * watch is level-triggered) */
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &plain, &s, NULL, NULL), CF_FRAMES_WAIT);
    assert_int_equal(s.frames, 2);
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &plain, &s, NULL, NULL), CF_FRAMES_EOF);
    assert_int_equal(s.frames, 2);
    rig_close(&r);
}

/* A frame the caller stops at is consumed; those after it wait. */
static void test_a_frame_can_stop_the_read(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    put_frames(r.fd[1], 5, 100);
    struct seen s = {.stop_at = 3};
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &plain, &s, NULL, NULL), CF_FRAMES_STOPPED);
    assert_int_equal(s.frames, 3);
    assert_int_equal(cf_bytes_len(&r.in), 2 * (CF_WIRE_HDR + 100));
    rig_close(&r);
}

/* A frame over the limit is refused as soon as its header is read, before
 * its bytes are waited for; the limit is asked again for each frame. */
static void test_an_oversized_frame_is_refused_at_its_header(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    /* over the wire's bound, without a limit of the caller's */
    put_header(r.fd[1], CF_WIRE_MAX_FRAME + 1);
    struct seen s = {0};
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &plain, &s, NULL, NULL), CF_FRAMES_TOO_BIG);
    assert_int_equal(s.frames, 0);
    rig_close(&r);

    /* the caller's: 100 bytes for the first frame, 1000 after it */
    rig_open(&r);
    s = (struct seen){.max = 100, .max_after = 1000};
    put_frames(r.fd[1], 1, 100);
    put_frames(r.fd[1], 1, 1000);
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &limited, &s, NULL, NULL), CF_FRAMES_WAIT);
    assert_int_equal(s.frames, 2);
    put_header(r.fd[1], 1001);
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &limited, &s, NULL, NULL), CF_FRAMES_TOO_BIG);
    assert_int_equal(s.frames, 2);
    rig_close(&r);

    /* each frame's header is checked, not only a read's first: a frame
     * over the limit behind one that passes, in the same read */
    rig_open(&r);
    s = (struct seen){.max = 100};
    put_frames(r.fd[1], 1, 100);
    put_frames(r.fd[1], 1, 101);
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &limited, &s, NULL, NULL), CF_FRAMES_TOO_BIG);
    assert_int_equal(s.frames, 1);
    rig_close(&r);

    /* and the first frame over its limit */
    rig_open(&r);
    s = (struct seen){.max = 100, .max_after = 1000};
    put_frames(r.fd[1], 1, 101);
    assert_int_equal(cf_frames_read(&r.in, r.fd[0], &limited, &s, NULL, NULL), CF_FRAMES_TOO_BIG);
    assert_int_equal(s.frames, 0);
    rig_close(&r);
}

/* A read that fails says why. */
static void test_a_failed_read_gives_its_errno(void **state)
{
    (void)state;
    struct rig r;
    rig_open(&r);
    struct seen s = {0};
    int err = 0;
    size_t got = 1;
    /* (a pipe's write end cannot be read) */
    assert_int_equal(cf_frames_read(&r.in, r.fd[1], &plain, &s, &got, &err), CF_FRAMES_ERROR);
    assert_int_equal(err, EBADF);
    assert_int_equal(got, 0);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_burst_is_read_in_one_wakeup),
        cmocka_unit_test(test_a_wakeup_reads_at_most_its_budget),
        cmocka_unit_test(test_the_end_of_the_stream_comes_after_its_frames),
        cmocka_unit_test(test_a_frame_can_stop_the_read),
        cmocka_unit_test(test_an_oversized_frame_is_refused_at_its_header),
        cmocka_unit_test(test_a_failed_read_gives_its_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
