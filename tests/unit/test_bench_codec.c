/* Unit tests for the load generator's codecs (bench/gen): the latency
 * histogram, RFC 6455 frame parsing and writing, the upgrade check, base64
 * and HS256 tokens, and the message text a receiver parses. Its accounting
 * is in test_bench.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "msgtext.h"
#include "token.h"
#include "wsproto.h"

static void test_hist_buckets_are_contiguous_and_tight(void **state)
{
    (void)state;
    for (uint32_t i = 0; i + 1 < BH_BUCKETS; i++)
        assert_true(bh_lower(i) + bh_width(i) == bh_lower(i + 1));
    /* every value lands in the bucket that covers it, within 1/128 */
    for (uint64_t v = 1; v < BH_MAX; v = v * 3 / 2 + 1) {
        uint32_t i = bh_index(v);
        assert_true(bh_lower(i) <= v && v < bh_lower(i) + bh_width(i));
        assert_true(bh_width(i) * 128 <= (v < 128 ? 128 : v));
    }
    assert_int_equal(bh_index(BH_MAX * 5), bh_index(BH_MAX));
    assert_true(bh_index(BH_MAX) < BH_BUCKETS);
}

static void test_hist_quantiles(void **state)
{
    (void)state;
    static bh_hist h, h2;
    bh_reset(&h);
    assert_int_equal(bh_quantile(&h, 0.99), 0);
    /* 1..100000 µs: quantile q is q * 100 ms within 1% */
    for (uint64_t us = 1; us <= 100000; us++)
        bh_record(&h, us * 1000);
    assert_int_equal(h.count, 100000);
    assert_int_equal(h.min, 1000);
    assert_int_equal(h.max, 100000000);
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        double want = qs[k] * 1e8, got = (double)bh_quantile(&h, qs[k]);
        assert_true(got > want * 0.99 && got < want * 1.01);
    }
    assert_int_equal(bh_quantile(&h, 1.0), 100000000);
    /* one huge outlier is the max but not the p99 */
    bh_reset(&h2);
    for (int i = 0; i < 999; i++)
        bh_record(&h2, 500);
    bh_record(&h2, 7000000000ull);
    assert_true(bh_quantile(&h2, 0.99) >= 500 && bh_quantile(&h2, 0.99) <= 505);
    assert_int_equal(bh_quantile(&h2, 1.0), 7000000000ull);
    bh_merge(&h, &h2);
    assert_int_equal(h.count, 101000);
    assert_int_equal(h.min, 500);
    assert_int_equal(h.max, 7000000000ull);
}

static void test_ws_parse_lengths(void **state)
{
    (void)state;
    uint8_t b[70000] = {0x81, 5, 'h', 'e', 'l', 'l', 'o'};
    ws_frame f;
    assert_int_equal(ws_parse(b, 7, 1 << 20, &f), WS_COMPLETE);
    assert_int_equal(f.hdr, 2);
    assert_int_equal(f.len, 5);
    assert_int_equal(f.opcode, WS_TEXT);
    assert_true(f.fin);
    /* every proper prefix asks for more; the header is known from 2 bytes */
    assert_int_equal(ws_parse(b, 1, 1 << 20, &f), WS_NEED_MORE);
    assert_int_equal(f.hdr, 0);
    assert_int_equal(ws_parse(b, 6, 1 << 20, &f), WS_NEED_MORE);
    assert_int_equal(f.hdr, 2);
    assert_int_equal(f.len, 5);
    /* 16-bit length */
    b[0] = 0x01; /* not final */
    b[1] = 126;
    b[2] = 0x01;
    b[3] = 0x2c; /* 300 */
    assert_int_equal(ws_parse(b, 3, 1 << 20, &f), WS_NEED_MORE);
    assert_int_equal(f.hdr, 0);
    assert_int_equal(ws_parse(b, 303, 1 << 20, &f), WS_NEED_MORE);
    assert_int_equal(f.len, 300);
    assert_int_equal(ws_parse(b, 304, 1 << 20, &f), WS_COMPLETE);
    assert_false(f.fin);
    /* 64-bit length */
    uint8_t l8[10] = {0x80, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}; /* cont, fin, 70000 */
    memcpy(b, l8, sizeof l8);
    assert_int_equal(ws_parse(b, 9, 1 << 20, &f), WS_NEED_MORE);
    assert_int_equal(ws_parse(b, 10, 1 << 20, &f), WS_NEED_MORE);
    assert_int_equal(f.hdr, 10);
    assert_int_equal(f.len, 70000);
    assert_int_equal(f.opcode, WS_CONT);
    assert_int_equal(ws_parse(b, 10, 1000, &f), WS_ERROR); /* over max_len */
}

static void test_ws_parse_refuses_what_a_server_may_not_send(void **state)
{
    (void)state;
    ws_frame f;
    const uint8_t masked[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
    const uint8_t rsv[] = {0xc1, 0};
    const uint8_t opcode3[] = {0x83, 0};
    const uint8_t frag_ping[] = {0x09, 0};
    const uint8_t long_close[] = {0x88, 126, 0, 200};
    const uint8_t huge[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(ws_parse(masked, sizeof masked, 1 << 20, &f), WS_ERROR);
    assert_int_equal(ws_parse(rsv, sizeof rsv, 1 << 20, &f), WS_ERROR);
    assert_int_equal(ws_parse(opcode3, sizeof opcode3, 1 << 20, &f), WS_ERROR);
    assert_int_equal(ws_parse(frag_ping, sizeof frag_ping, 1 << 20, &f), WS_ERROR);
    assert_int_equal(ws_parse(long_close, sizeof long_close, 1 << 20, &f), WS_ERROR);
    assert_int_equal(ws_parse(huge, sizeof huge, UINT64_MAX, &f), WS_ERROR);
    const uint8_t ping[] = {0x89, 0};
    assert_int_equal(ws_parse(ping, sizeof ping, 1 << 20, &f), WS_COMPLETE);
    assert_int_equal(f.opcode, WS_PING);
}

/* Unmasks a client frame written by ws_write_frame into its payload. */
static size_t unmask(const uint8_t *fr, size_t n, uint8_t *out)
{
    size_t len = fr[1] & 0x7f, h = 2;
    assert_true(fr[1] & 0x80);
    if (len == 126) {
        len = (size_t)fr[2] << 8 | fr[3];
        h = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | fr[i];
        h = 10;
    }
    assert_int_equal(h + 4 + len, n);
    for (size_t i = 0; i < len; i++)
        out[i] = fr[h + 4 + i] ^ fr[h + (i % 4)];
    return len;
}

static void test_ws_client_frames_are_masked(void **state)
{
    (void)state;
    static uint8_t payload[70000], out[70100], back[70000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    const size_t sizes[] = {0, 1, 5, 125, 126, 300, 65535, 65536, 70000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        size_t w = ws_write_frame(out, WS_TEXT, payload, n, 0xa1b2c3d4u);
        assert_int_equal(w, ws_client_hdr_len(n) + n);
        assert_int_equal(out[0], 0x81);
        assert_int_equal(unmask(out, w, back), n);
        assert_memory_equal(back, payload, n);
        if (n > 16)
            assert_memory_not_equal(out + ws_client_hdr_len(n), payload, 16);
    }
    /* a mask applied at any phase equals byte-by-byte masking */
    uint8_t a[37], b[37], m[4] = {9, 8, 7, 6};
    uint32_t mask;
    memcpy(&mask, m, 4);
    for (size_t phase = 0; phase < 4; phase++) {
        memcpy(a, payload, sizeof a);
        ws_mask(a, sizeof a, mask, phase);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = payload[i] ^ m[(i + phase) % 4];
        assert_memory_equal(a, b, sizeof a);
    }
}

static void test_ws_upgrade(void **state)
{
    (void)state;
    char acc[29], req[512];
    /* RFC 6455 §1.3 */
    ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", acc);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    int n = ws_request(req, sizeof req, "127.0.0.1:8080", "/ws?token=t",
                       "dGhlIHNhbXBsZSBub25jZQ==", "confab.v1");
    assert_true(n > 0);
    assert_non_null(strstr(req, "GET /ws?token=t HTTP/1.1\r\n"));
    assert_non_null(strstr(req, "\r\nSec-WebSocket-Protocol: confab.v1\r\n"));
    assert_int_equal(req[n - 1], '\n');
    assert_int_equal(ws_request(req, 20, "h", "/", "k", NULL), -1);

    const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n"
                      "Sec-WebSocket-Protocol: confab.v1\r\n\r\n\x81\x02hi";
    int status = 0;
    assert_int_equal(ws_check_response(ok, sizeof ok - 1, acc, &status), (int)sizeof ok - 5);
    assert_int_equal(status, 101);
    assert_int_equal(ws_check_response(ok, 40, acc, &status), 0); /* incomplete */
    assert_int_equal(ws_check_response(ok, sizeof ok - 1, "AAAApLMBiTxaQ9kYGzzhZRbK+xOo=", NULL), -1);
    const char denied[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(ws_check_response(denied, sizeof denied - 1, acc, &status), -1);
    assert_int_equal(status, 401);
}

static void test_base64_and_hs256(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(tk_base64((const uint8_t *)"foobar", 6, 0, out, sizeof out), 8);
    assert_string_equal(out, "Zm9vYmFy");
    tk_base64((const uint8_t *)"fooba", 5, 0, out, sizeof out);
    assert_string_equal(out, "Zm9vYmE=");
    tk_base64((const uint8_t *)"foob", 4, 0, out, sizeof out);
    assert_string_equal(out, "Zm9vYg==");
    tk_base64((const uint8_t *)"\xfb\xff", 2, 1, out, sizeof out);
    assert_string_equal(out, "-_8");
    assert_int_equal(tk_base64((const uint8_t *)"foobar", 6, 0, out, 8), -1);
    /* the same token as Python's hmac/hashlib over the same claims */
    char tok[512];
    int n = tk_hs256("0123456789abcdef0123456789abcdef", "bench-17", 1700000000, 3600, tok,
                     sizeof tok);
    assert_string_equal(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                             "eyJzdWIiOiJiZW5jaC0xNyIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ."
                             "rUugomkOy3uLWyPoOCl-kSGG_xg9_pCzKH_aRGTAMi8");
    assert_int_equal(n, (int)strlen(tok));
    assert_int_equal(tk_hs256("k", "bench-17", 1700000000, 3600, tok, 60), -1);
}

static void test_message_text(void **state)
{
    (void)state;
    char send[512];
    size_t n = mt_build_send(send, sizeof send, 3, 17, 42, 123456789012ull, 100);
    send[n] = '\0';
    const char head[] = "{\"type\":\"send\",\"payload\":{\"room\":\"bench-3\",\"message\":\"17 42 "
                        "123456789012 xxx";
    assert_memory_equal(send, head, sizeof head - 1);
    const char *m = strstr(send, "\"message\":\"") + 11;
    assert_int_equal(strchr(m, '"') - m, 100);
    assert_string_equal(send + n - 3, "\"}}");
    /* a text shorter than its head is just the head */
    n = mt_build_send(send, sizeof send, 0, 1, 2, 3, 4);
    send[n] = '\0';
    assert_string_equal(send, "{\"type\":\"send\",\"payload\":{\"room\":\"bench-0\",\"message\":\"1 2 3 \"}}");
    assert_int_equal(mt_build_send(send, 100, 0, 1, 2, 3, 100), 0);
    n = mt_build_join(send, 12);
    send[n] = '\0';
    assert_string_equal(send, "{\"type\":\"join\",\"payload\":{\"room\":\"bench-12\"}}");

    /* what confab and the baseline send back */
    const char confab[] = "{\"type\":\"new_message\",\"payload\":{\"room\":\"bench-3\",\"id\":44,"
                          "\"message\":\"17 42 123456789012 xxxx\",\"from\":\"bench-17\"}}";
    const char base[] = "{\"type\":\"new_message\",\"payload\":{\"room\":\"bench-3\","
                        "\"message\":\"18 1 5 x\"}}";
    uint32_t s, q;
    uint64_t t;
    assert_int_equal(mt_type((const uint8_t *)confab, sizeof confab - 1), MT_NEW_MESSAGE);
    assert_int_equal(mt_parse((const uint8_t *)confab, sizeof confab - 1, &s, &q, &t), 0);
    assert_int_equal(s, 17);
    assert_int_equal(q, 42);
    assert_true(t == 123456789012ull);
    assert_int_equal(mt_parse((const uint8_t *)base, sizeof base - 1, &s, &q, &t), 0);
    assert_int_equal(s, 18);
    assert_int_equal(t, 5);
    const char *bad[] = {"{\"message\":\"17 42\"}", "{\"message\":\"x 1 2 \"}",
                         "{\"message\":\"99999999999 1 2 \"}", "{\"message\":\"1 2 3",
                         "{\"msg\":\"1 2 3 \"}"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_int_equal(mt_parse((const uint8_t *)bad[k], strlen(bad[k]), &s, &q, &t), -1);
    const char joined[] = "{\"type\":\"joined\",\"payload\":{\"room\":\"r\"}}";
    const char err[] = "{\"type\":\"error\",\"payload\":{}}";
    const char ack[] = "{\"type\":\"ack\",\"payload\":{}}";
    assert_int_equal(mt_type((const uint8_t *)joined, sizeof joined - 1), MT_JOINED);
    assert_int_equal(mt_type((const uint8_t *)err, sizeof err - 1), MT_ERROR);
    assert_int_equal(mt_type((const uint8_t *)ack, sizeof ack - 1), MT_OTHER);
    assert_int_equal(mt_type((const uint8_t *)"{\"type\":\"new_mess", 17), MT_OTHER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets_are_contiguous_and_tight),
        cmocka_unit_test(test_hist_quantiles),
        cmocka_unit_test(test_ws_parse_lengths),
        cmocka_unit_test(test_ws_parse_refuses_what_a_server_may_not_send),
        cmocka_unit_test(test_ws_client_frames_are_masked),
        cmocka_unit_test(test_ws_upgrade),
        cmocka_unit_test(test_base64_and_hs256),
        cmocka_unit_test(test_message_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
