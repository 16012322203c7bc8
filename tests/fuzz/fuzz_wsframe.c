/* fuzz_wsframe: client WebSocket frames as the gateway reads them from its
 * own sockets (gateway/wsframe.c).
 *
 * The first input byte picks how many bytes each read delivers (1 to 256),
 * the rest is the stream. It is parsed twice: in reads of that size, and in
 * one read. Both parses must report the same messages (reassembled, at most
 * MAX_MSG bytes, text ones valid UTF-8), the same control frames in the same
 * order, and end the same way (every byte taken, a close frame, or the same
 * close code). */
#include "fuzz.h"
#include "wsframe.h"

#define MAX_MSG 4096
#define MAX_EVENTS 64

struct run {
    /* a digest of everything reported, in order */
    uint64_t digest;
    uint32_t events;
    /* the message being reassembled */
    uint8_t msg[MAX_MSG];
    size_t len;
    bool in_msg;
};

static void mix(struct run *r, const void *p, size_t n, uint64_t tag)
{
    uint64_t h = r->digest ^ (tag * 0x9e3779b97f4a7c15ull);
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    r->digest = h ^ n;
    r->events++;
}

static int on_data(void *ud, bool binary, const uint8_t *p, size_t n, bool first, bool final,
                   uint64_t remaining)
{
    struct run *r = ud;
    FUZZ_CHECK(first == !r->in_msg);
    if (first)
        r->len = 0;
    r->in_msg = !final;
    FUZZ_CHECK(r->len + n + remaining <= MAX_MSG);
    memcpy(r->msg + r->len, p, n);
    r->len += n;
    if (final) {
        uint32_t st = 0;
        if (!binary)
            FUZZ_CHECK(wsf_utf8(&st, r->msg, r->len) && st == 0);
        mix(r, r->msg, r->len, binary ? 2 : 1);
    }
    return 0;
}

static int on_ping(void *ud, const uint8_t *p, size_t n)
{
    FUZZ_CHECK(n <= 125);
    mix(ud, p, n, 9);
    return 0;
}

static int on_pong(void *ud)
{
    mix(ud, "", 0, 10);
    return 0;
}

static int on_close(void *ud, int code, const uint8_t *reason, size_t n)
{
    FUZZ_CHECK(code == 1005 || wsf_close_code_ok(code));
    uint32_t st = 0;
    FUZZ_CHECK(n <= 123 && wsf_utf8(&st, reason, n) && st == 0);
    mix(ud, reason, n, 8 + (uint64_t)code * 16);
    return 1; /* nothing follows a close */
}

static const struct wsf_sink sink = {on_data, on_ping, on_pong, on_close};

static int parse(struct run *r, const uint8_t *data, size_t size, size_t step)
{
    struct wsf_rx st;
    memset(&st, 0, sizeof st);
    memset(r, 0, sizeof *r);
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy);
    memcpy(copy, data, size);
    int rc = 0;
    for (size_t i = 0; i < size && rc == 0; i += step) {
        size_t n = size - i < step ? size - i : step;
        const char *why = NULL;
        rc = wsf_feed(&st, copy + i, n, MAX_MSG, &sink, r, &why);
        FUZZ_CHECK(rc <= 0 || why != NULL);
        FUZZ_CHECK(rc <= 0 || rc == 1002 || rc == 1007 || rc == 1009);
    }
    wsf_rx_reset(&st);
    free(copy);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    static struct run chunked, whole;
    int a = parse(&chunked, data + 1, size - 1, step);
    int b = parse(&whole, data + 1, size - 1, size);
    FUZZ_CHECK(a == b);
    FUZZ_CHECK(chunked.events == whole.events && chunked.digest == whole.digest);
    return 0;
}
