/* Unit tests for gateway/wsframe: client frames parsed from any split of the
 * byte stream, every rule of RFC 6455 the gateway enforces (with the close
 * code it ends the connection with), UTF-8 across fragments, close frames,
 * and server frame headers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "wsframe.h"

/* What the sink saw: messages reassembled, control frames in order. */
struct seen {
    char msg[8][4200];
    size_t msglen[8];
    bool binary[8];
    int nmsg;
    size_t cur;
    char events[256]; /* 'P' ping, 'O' pong, 'C' close */
    int nev;
    int close_code;
    char ping[130];
    size_t pinglen;
};

static int on_data(void *ud, bool binary, const uint8_t *p, size_t n, bool first, bool final,
                   uint64_t remaining)
{
    (void)remaining;
    struct seen *s = ud;
    if (first)
        s->cur = 0;
    assert_true(s->cur + n <= sizeof s->msg[0]);
    memcpy(s->msg[s->nmsg] + s->cur, p, n);
    s->cur += n;
    if (final) {
        s->msglen[s->nmsg] = s->cur;
        s->binary[s->nmsg] = binary;
        s->nmsg++;
    }
    return 0;
}

static int on_ping(void *ud, const uint8_t *p, size_t n)
{
    struct seen *s = ud;
    s->events[s->nev++] = 'P';
    memcpy(s->ping, p, n);
    s->pinglen = n;
    return 0;
}

static int on_pong(void *ud)
{
    struct seen *s = ud;
    s->events[s->nev++] = 'O';
    return 0;
}

static int on_close(void *ud, int code, const uint8_t *reason, size_t n)
{
    (void)reason;
    (void)n;
    struct seen *s = ud;
    s->events[s->nev++] = 'C';
    s->close_code = code;
    return 1; /* nothing follows a close */
}

static const struct wsf_sink sink = {on_data, on_ping, on_pong, on_close};

/* A client frame: masked with a fixed, non-trivial key. */
static size_t frame(uint8_t *out, int b0, const void *payload, uint64_t len, bool mask)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = 0;
    out[h++] = (uint8_t)b0;
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        out[h++] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        out[h++] = m | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = m | 127;
        for (int i = 0; i < 8; i++)
            out[h++] = (uint8_t)(len >> (56 - 8 * i));
    }
    if (mask) {
        memcpy(out + h, key, 4);
        h += 4;
    }
    const uint8_t *p = payload;
    if (payload)
        for (uint64_t i = 0; i < len; i++)
            out[h + i] = mask ? p[i] ^ key[i & 3] : p[i];
    return h + (payload ? (size_t)len : 0);
}

/* Feeds `len` bytes in pieces of `step` (the parser sees every split). */
static int feed(struct wsf_rx *st, struct seen *s, const uint8_t *bytes, size_t len, size_t step,
                const char **why)
{
    uint8_t *copy = malloc(len + 1);
    memcpy(copy, bytes, len);
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i += step) {
        size_t n = len - i < step ? len - i : step;
        rc = wsf_feed(st, copy + i, n, 4096, &sink, s, why);
    }
    free(copy);
    return rc;
}

/* A fresh parser over the whole stream in pieces of `step`; s is cleared. */
static int parse_all(struct seen *s, const uint8_t *bytes, size_t len, size_t step,
                     const char **why)
{
    struct wsf_rx st;
    memset(&st, 0, sizeof st);
    memset(s, 0, sizeof *s);
    *why = NULL;
    int rc = feed(&st, s, bytes, len, step, why);
    wsf_rx_reset(&st);
    return rc;
}

static void test_messages_survive_every_split(void **state)
{
    (void)state;
    uint8_t stream[2048];
    size_t n = 0;
    n += frame(stream + n, 0x81, "hello", 5, true);
    n += frame(stream + n, 0x01, "frag", 4, true);         /* text, not final */
    n += frame(stream + n, 0x89, "p1", 2, true);           /* a ping in between */
    n += frame(stream + n, 0x00, "mented \xc3", 8, true);  /* UTF-8 split across frames */
    n += frame(stream + n, 0x80, "\xa9!", 2, true);
    n += frame(stream + n, 0x82, "\x00\x01\x02", 3, true); /* binary */
    n += frame(stream + n, 0x81, "", 0, true);             /* empty */
    char big[300];
    memset(big, 'x', sizeof big);
    n += frame(stream + n, 0x81, big, sizeof big, true);   /* 16-bit length */
    n += frame(stream + n, 0x8a, "", 0, true);             /* pong */
    n += frame(stream + n, 0x88, "\x03\xe8" "bye", 5, true);
    for (size_t step = 1; step <= n; step = step < 20 ? step + 1 : step * 3) {
        static struct seen s;
        const char *why;
        int rc = parse_all(&s, stream, n, step, &why);
        if (rc != -1) /* stopped at the close */
            fail_msg("pieces of %zu: %d (%s) after %d messages", step, rc, why, s.nmsg);
        assert_int_equal(s.nmsg, 5);
        assert_memory_equal(s.msg[0], "hello", 5);
        assert_int_equal(s.msglen[1], 14);
        assert_memory_equal(s.msg[1], "fragmented \xc3\xa9!", 14);
        assert_true(s.binary[2] && !s.binary[1]);
        assert_memory_equal(s.msg[2], "\x00\x01\x02", 3);
        assert_int_equal(s.msglen[3], 0);
        assert_int_equal(s.msglen[4], 300);
        assert_string_equal(s.events, "POC");
        assert_int_equal(s.pinglen, 2);
        assert_memory_equal(s.ping, "p1", 2);
        assert_int_equal(s.close_code, 1000);
    }
}

/* A control frame whose header ends one read and whose payload comes whole
 * in the next takes no buffer: one was allocated at the header and, the
 * payload then taking the no-copy path, kept for the connection's life
 * (some clients write a frame's header and payload separately). */
static void test_a_control_frame_after_its_header_leaves_no_buffer(void **state)
{
    (void)state;
    uint8_t f[32];
    size_t n = frame(f, 0x89, "ping", 4, true);
    size_t h = n - 4;
    static struct seen s;
    memset(&s, 0, sizeof s);
    struct wsf_rx st;
    memset(&st, 0, sizeof st);
    const char *why = NULL;
    assert_int_equal(wsf_feed(&st, f, h, 4096, &sink, &s, &why), 0);
    assert_int_equal(wsf_feed(&st, f + h, 4, 4096, &sink, &s, &why), 0);
    assert_int_equal(s.pinglen, 4);
    assert_null(st.ctl);
    /* split inside the payload it is gathered, and given back after */
    n = frame(f, 0x89, "ping", 4, true);
    assert_int_equal(wsf_feed(&st, f, h + 2, 4096, &sink, &s, &why), 0);
    assert_non_null(st.ctl);
    assert_int_equal(wsf_feed(&st, f + h + 2, 2, 4096, &sink, &s, &why), 0);
    assert_null(st.ctl);
    wsf_rx_reset(&st);
}

struct bad {
    const char *what;
    int b0;
    const char *payload;
    uint64_t len;
    bool mask;
    int code;
};

static void test_violations_end_with_their_close_code(void **state)
{
    (void)state;
    static char big[200];
    memset(big, 'p', sizeof big);
    static const struct bad cases[] = {
        {"unmasked", 0x81, "hi", 2, false, 1002},
        {"RSV1", 0xc1, "hi", 2, true, 1002},
        {"RSV3", 0x91, "hi", 2, true, 1002},
        {"opcode 3", 0x83, "hi", 2, true, 1002},
        {"opcode 11", 0x8b, "hi", 2, true, 1002},
        {"126-byte ping", 0x89, big, 126, true, 1002},
        {"fragmented ping", 0x09, "hi", 2, true, 1002},
        {"continuation first", 0x80, "hi", 2, true, 1002},
        {"over the limit", 0x82, NULL, 4097, true, 1009},
        {"2^62 bytes", 0x82, NULL, (uint64_t)1 << 62, true, 1009},
        {"length with the top bit", 0x82, NULL, (uint64_t)1 << 63, true, 1002},
        {"overlong", 0x81, "\xc0\x80", 2, true, 1007},
        {"surrogate", 0x81, "\xed\xa0\x80", 3, true, 1007},
        {"past U+10FFFF", 0x81, "\xf4\x90\x80\x80", 4, true, 1007},
        {"truncated at the end", 0x81, "ok\xe2\x82", 4, true, 1007},
        {"stray continuation", 0x81, "\x80", 1, true, 1007},
        {"close of 1 byte", 0x88, "\x03", 1, true, 1002},
        {"close 1005", 0x88, "\x03\xed", 2, true, 1002},
        {"close 999", 0x88, "\x03\xe7", 2, true, 1002},
        {"close 2000", 0x88, "\x07\xd0", 2, true, 1002},
        {"close reason not UTF-8", 0x88, "\x03\xe8\xff", 3, true, 1007},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t buf[512];
        size_t n = frame(buf, cases[i].b0, cases[i].payload, cases[i].len,
                         cases[i].mask);
        for (size_t step = 1; step <= n; step = step * 2 + 1) {
            static struct seen s;
            const char *why;
            int rc = parse_all(&s, buf, n, step, &why);
            if (rc != cases[i].code)
                fail_msg("%s (pieces of %zu): got %d, expected %d", cases[i].what, step, rc,
                         cases[i].code);
            assert_non_null(why);
            assert_int_equal(s.nmsg, 0);
        }
    }
}

/* A new message inside a fragmented one, and a message over the limit
 * reached through fragments: refused at the header that crosses it. */
static void test_fragment_rules(void **state)
{
    (void)state;
    uint8_t buf[8192];
    size_t n = frame(buf, 0x01, "a", 1, true);
    n += frame(buf + n, 0x81, "b", 1, true);
    struct wsf_rx st;
    memset(&st, 0, sizeof st);
    static struct seen s;
    memset(&s, 0, sizeof s);
    const char *why;
    assert_int_equal(feed(&st, &s, buf, n, n, &why), 1002);
    wsf_rx_reset(&st);

    static char chunk[1000];
    memset(chunk, 'c', sizeof chunk);
    n = 0;
    for (int i = 0; i < 4; i++)
        n += frame(buf + n, i ? 0x00 : 0x01, chunk, sizeof chunk, true);
    size_t ok = n;
    n += frame(buf + n, 0x80, chunk, 97, true); /* 4097 in all */
    memset(&s, 0, sizeof s);
    assert_int_equal(feed(&st, &s, buf, ok, ok, &why), 0);
    assert_int_equal(feed(&st, &s, buf + ok, 6, 6, &why), 1009); /* its header alone */
    wsf_rx_reset(&st);

    /* 4096 exactly is fine */
    n = ok + frame(buf + ok, 0x80, chunk, 96, true);
    memset(&s, 0, sizeof s);
    assert_int_equal(feed(&st, &s, buf, n, 7, &why), 0);
    assert_int_equal(s.nmsg, 1);
    assert_int_equal(s.msglen[0], 4096);
    wsf_rx_reset(&st);
}

static void test_close_without_code_is_1005(void **state)
{
    (void)state;
    uint8_t buf[16];
    size_t n = frame(buf, 0x88, "", 0, true);
    struct wsf_rx st;
    memset(&st, 0, sizeof st);
    static struct seen s;
    memset(&s, 0, sizeof s);
    const char *why;
    assert_int_equal(feed(&st, &s, buf, n, 1, &why), -1);
    assert_int_equal(s.close_code, 1005);
    assert_true(wsf_close_code_ok(1012) && wsf_close_code_ok(1013) && wsf_close_code_ok(1014));
    assert_true(wsf_close_code_ok(1000) && wsf_close_code_ok(4999) && !wsf_close_code_ok(1006) &&
                !wsf_close_code_ok(1015) && !wsf_close_code_ok(5000));
}

static int on_close_going_on(void *ud, int code, const uint8_t *reason, size_t n)
{
    on_close(ud, code, reason, n);
    return 0; /* a sink that parses on after a close */
}

/* A close inside a fragmented text message checks its reason alone, and
 * leaves the message's UTF-8 state as it was: a sink that went on parsing
 * would otherwise take E2 82 | close | 41 for a valid text. */
static void test_a_close_leaves_the_message_s_utf8_state(void **state)
{
    (void)state;
    static const struct wsf_sink going_on = {on_data, on_ping, on_pong, on_close_going_on};
    uint8_t buf[64];
    size_t n = frame(buf, 0x01, "\xe2\x82", 2, true);
    n += frame(buf + n, 0x88, "\x03\xe8", 2, true);
    n += frame(buf + n, 0x80, "A", 1, true);
    struct wsf_rx st;
    memset(&st, 0, sizeof st);
    static struct seen s;
    memset(&s, 0, sizeof s);
    const char *why = NULL;
    assert_int_equal(wsf_feed(&st, buf, n, 4096, &going_on, &s, &why), 1007);
    assert_int_equal(s.close_code, 1000);
    assert_int_equal(s.nmsg, 0);
    wsf_rx_reset(&st);
}

static void test_server_headers(void **state)
{
    (void)state;
    uint8_t h[WSF_MAX_HEADER];
    static const struct {
        size_t len, hlen;
        uint8_t b1;
    } c[] = {{0, 2, 0}, {125, 2, 125}, {126, 4, 126}, {65535, 4, 126}, {65536, 10, 127}};
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        assert_int_equal(wsf_header(h, WSF_BINARY, c[i].len), c[i].hlen);
        assert_int_equal(wsf_header_len(c[i].len), c[i].hlen);
        assert_int_equal(h[0], 0x82);
        assert_int_equal(h[1], c[i].b1);
    }
    wsf_header(h, WSF_TEXT, 65536);
    assert_memory_equal(h + 2, "\0\0\0\0\0\x01\0\0", 8);
}

static void test_utf8_accepts_every_valid_form(void **state)
{
    (void)state;
    static const char *ok[] = {"plain", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf",
                               "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
                               "\xf4\x8f\xbf\xbf", "caf\xc3\xa9 \xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint32_t st = 0;
        assert_true(wsf_utf8(&st, (const uint8_t *)ok[i], strlen(ok[i])));
        assert_int_equal(st, 0);
        /* byte by byte too */
        st = 0;
        for (size_t k = 0; ok[i][k]; k++)
            assert_true(wsf_utf8(&st, (const uint8_t *)ok[i] + k, 1));
        assert_int_equal(st, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_survive_every_split),
        cmocka_unit_test(test_a_control_frame_after_its_header_leaves_no_buffer),
        cmocka_unit_test(test_violations_end_with_their_close_code),
        cmocka_unit_test(test_fragment_rules),
        cmocka_unit_test(test_close_without_code_is_1005),
        cmocka_unit_test(test_a_close_leaves_the_message_s_utf8_state),
        cmocka_unit_test(test_server_headers),
        cmocka_unit_test(test_utf8_accepts_every_valid_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
