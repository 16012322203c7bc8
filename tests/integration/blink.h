/* blink: a test playing a gateway on a broker's Unix socket (wire.h
 * frames, written and read by hand), for tests of what a broker does with
 * its links. Include after common.h. */
#ifndef TEST_INTEGRATION_BLINK_H
#define TEST_INTEGRATION_BLINK_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bytes.h"
#include "wire.h"

/* A link to broker `shard` of the node whose run directory is run_dir. */
static inline int bl_connect(const char *run_dir, int shard)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char path[400];
    snprintf(path, sizeof path, "%s/broker-%d.sock", run_dir, shard);
    assert_true(strlen(path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static inline void bl_send_bytes(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static inline void bl_send_msg(int fd, const struct cf_wire_msg *m)
{
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 20);
    assert_int_equal(cf_wire_encode(&out, m), 0);
    bl_send_bytes(fd, cf_bytes_data(&out), cf_bytes_len(&out));
    cf_bytes_free(&out);
}

static inline void bl_hello(int fd, uint32_t shard, uint32_t shards)
{
    struct cf_wire_msg m = {
        .type = CF_WIRE_HELLO, .shard = shard, .shards = shards, .node = {"test", 4}};
    bl_send_msg(fd, &m);
}

/* True when the broker closes the link within timeout_ms (reading and
 * discarding whatever it sends first). */
static inline bool bl_closed_by_peer(int fd, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    char buf[4096];
    while (h_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno == ECONNRESET))
                return true;
        }
    }
    return false;
}

/* Frames from a broker, read as they come. */
struct bl_reader {
    int fd;
    struct cf_bytes in;
    struct cf_wire_decoder *dec;
    size_t last; /* bytes of the frame handed out last */
};

static inline void bl_reader_init(struct bl_reader *r, int fd)
{
    r->fd = fd;
    cf_bytes_init(&r->in, 1 << 20);
    r->dec = cf_wire_decoder_new();
    r->last = 0;
}

static inline void bl_reader_free(struct bl_reader *r)
{
    cf_wire_decoder_free(r->dec);
    cf_bytes_free(&r->in);
}

/* The next frame (valid until the next call), or false once the deadline
 * has passed without one. */
static inline bool bl_reader_next(struct bl_reader *r, struct cf_wire_msg *m, int64_t deadline)
{
    cf_bytes_consume(&r->in, r->last);
    r->last = 0;
    for (;;) {
        const unsigned char *payload;
        size_t len;
        if (cf_wire_frame_peek(&r->in, &payload, &len) == 1) {
            const char *why;
            assert_int_equal(cf_wire_decode(r->dec, payload, len, m, &why), 0);
            r->last = CF_WIRE_HDR + len;
            return true;
        }
        if (h_now_ms() >= deadline)
            return false;
        struct pollfd p = {r->fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0)
            assert_true(cf_bytes_read_fd(&r->in, r->fd, 65536, NULL) > 0);
    }
}

#endif
