/* Unit tests for the load generator (bench/gen): the latency histogram,
 * RFC 6455 frame parsing and writing, the upgrade check, base64 and HS256
 * tokens, the message text a receiver parses; and its accounting, driven
 * through account.c with connections that never touch a socket and a clock
 * the test sets: what counts as lost, duplicated or late, and when a step
 * fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen.h"
#include "hist.h"
#include "msgtext.h"
#include "seqwin.h"
#include "step.h"
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

/* ---- accounting ------------------------------------------------------------ */

/* The loop's clock and random values (main.c has the real ones). */
static uint64_t fake_now = 1000ull * 1000000000ull;

uint64_t gen_clock(void)
{
    return fake_now;
}

uint32_t gen_rand(gen *g)
{
    (void)g;
    return 0x9e3779b9u;
}

#define MS 1000000ull

/* n connections in `rooms` rooms, the first `pubs` publishing, all joined.
 * Their fds are /dev/null, never written: output only piles up in `out`. */
static gen *mk_gen(uint32_t n, uint32_t rooms, uint32_t pubs)
{
    gen *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->o = (gen_opts){.conns = n, .rooms = rooms, .publishers = pubs, .nrates = 1,
                      .rates = {1}, .step_s = 1, .msg_bytes = 16, .stop_loss = 0.001,
                      .stop_p99_ms = 250, .hold_s = -1};
    g->n = n;
    g->c = calloc(n, sizeof *g->c);
    g->members = calloc(rooms, sizeof *g->members);
    g->dirty = calloc(n, sizeof *g->dirty);
    assert_true(g->c && g->members && g->dirty);
    for (uint32_t i = 0; i < n; i++) {
        g->c[i].fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        assert_true(g->c[i].fd >= 0);
        g->c[i].gidx = i;
        g->c[i].room = i % rooms;
        g->c[i].state = CS_JOINED;
        g->members[i % rooms]++;
    }
    g->joined = n;
    assert_int_equal(acct_init(g), 0);
    g->now = fake_now;
    return g;
}

static void free_gen(gen *g)
{
    for (uint32_t i = 0; i < g->n; i++)
        conn_close(g, &g->c[i]);
    free(g->c[0].pairs); /* the first connection's pairs start the one block */
    free(g->pubs);
    free(g->c);
    free(g->members);
    free(g->dirty);
    free(g);
}

/* The send phase of a step at `rate`, the 1 ms tick on time except for
 * [stall_from, stall_to) ms into it, when the generator does not run. */
static void send_phase_stalled(gen *g, step_stats *st, double rate, uint64_t stall_from,
                               uint64_t stall_to)
{
    acct_step_begin(g, st, rate);
    uint64_t t0 = g->step_t0;
    for (uint64_t ms = 0; ms <= (uint64_t)(g->o.step_s * 1000); ms++) {
        if (ms >= stall_from && ms < stall_to)
            continue;
        g->now = fake_now = t0 + ms * MS;
        acct_publish_due(g);
    }
    g->sending = 0;
    for (uint32_t i = 0; i < g->n; i++)
        g->c[i].out_len = 0; /* as if written */
}

/* The send phase of a step at `rate`, the 1 ms tick on time. */
static void send_phase(gen *g, step_stats *st, double rate)
{
    send_phase_stalled(g, st, rate, 0, 0);
}

/* Receiver r gets sender s's seq q, sent 1 ms ago. */
static void deliver(gen *g, uint32_t r, uint32_t s, uint32_t q)
{
    char b[256];
    int n = snprintf(b, sizeof b,
                     "{\"type\":\"new_message\",\"payload\":{\"room\":\"bench-%u\","
                     "\"message\":\"%u %u %llu xxxx\"}}",
                     s % g->o.rooms, s, q, (unsigned long long)(g->now - MS));
    acct_on_message(g, &g->c[r], (const uint8_t *)b, (size_t)n);
}

/* Every member of s's room gets s's seqs [lo, hi]. */
static void deliver_all(gen *g, uint32_t s, uint32_t lo, uint32_t hi)
{
    for (uint32_t r = 0; r < g->n; r++)
        if (g->c[r].room == g->c[s].room)
            for (uint32_t q = lo; q <= hi; q++)
                deliver(g, r, s, q);
}

static step_limits limits(const gen *g)
{
    return (step_limits){.loss = g->o.stop_loss, .p99_ms = g->o.stop_p99_ms,
                         .pace_lag_ms = STEP_PACE_LAG_MS, .sent_fraction = STEP_SENT_FRACTION};
}

/* Ends the step and judges it. */
static uint32_t end_step(gen *g, step_stats *st)
{
    g->now = fake_now += 100 * MS;
    acct_step_end(g);
    step_limits l = limits(g);
    return step_judge(st, &l);
}

#define BIT(n) (1u << STEP_B_##n)

static void test_seqwin_a_late_copy_fills_only_its_own_gap(void **state)
{
    (void)state;
    sw_pair p = {0};
    uint64_t lost = 0;
    assert_int_equal(sizeof p, 16); /* the cost per pair seqwin.h states */
    assert_int_equal(sw_receive(&p, 1, 1, &lost), SW_NEW);
    assert_int_equal(sw_receive(&p, 4, 1, &lost), SW_NEW); /* gaps 2 and 3 */
    assert_int_equal(sw_missing(&p, 1, 4), 2);
    assert_int_equal(sw_receive(&p, 3, 1, &lost), SW_FILLED);
    /* a second copy of 3 is a duplicate: it does not fill 2's gap */
    assert_int_equal(sw_receive(&p, 3, 1, &lost), SW_DUPLICATE);
    assert_int_equal(sw_missing(&p, 1, 4), 1);
    assert_int_equal(sw_receive(&p, 4, 1, &lost), SW_DUPLICATE);
    assert_int_equal(sw_receive(&p, 1, 1, &lost), SW_DUPLICATE);
    assert_int_equal(sw_missing(&p, 1, 4), 1);
    assert_int_equal(sw_receive(&p, 2, 1, &lost), SW_FILLED);
    assert_int_equal(sw_missing(&p, 1, 4), 0);
    assert_int_equal(sw_missing(&p, 1, 6), 2); /* 5 and 6, above the highest */
    assert_int_equal(sw_missing(&p, 6, 5), 0);
    assert_int_equal(lost, 0);
}

static void test_seqwin_gaps_leave_the_window_lost_once(void **state)
{
    (void)state;
    sw_pair p = {0};
    uint64_t lost = 0;
    sw_receive(&p, 1, 1, &lost);
    /* 2..99 skipped: the window keeps 36..99, 2..35 are lost for good */
    assert_int_equal(sw_receive(&p, 100, 1, &lost), SW_NEW);
    assert_int_equal(lost, 34);
    assert_int_equal(sw_missing(&p, 1, 100), 64);
    assert_int_equal(sw_missing(&p, 50, 120), 50 + 20);
    assert_int_equal(sw_receive(&p, 10, 1, &lost), SW_STALE); /* counted already */
    assert_int_equal(sw_receive(&p, 36, 1, &lost), SW_FILLED);
    /* only gaps at or above the floor (the step's first seq) are this step's */
    sw_pair p2 = p;
    uint64_t lost2 = 0;
    assert_int_equal(sw_receive(&p2, 200, 90, &lost2), SW_NEW); /* 90..99, 101..135 */
    assert_int_equal(lost2, 10 + 35);
    lost = 0;
    assert_int_equal(sw_receive(&p, 200, 1, &lost), SW_NEW); /* 37..99, 101..135 */
    assert_int_equal(lost, 63 + 35);
    assert_int_equal(sw_missing(&p, 1, 250), 64 + 50);
    /* a jump of more than a window from nothing */
    sw_pair p3 = {0};
    lost = 0;
    assert_int_equal(sw_receive(&p3, 1000, 1, &lost), SW_NEW);
    assert_int_equal(lost, 1000 - 1 - 64);
    assert_int_equal(sw_missing(&p3, 1, 1000), 64);
}

static void test_a_duplicate_does_not_hide_a_loss(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 10);
    assert_int_equal(st->sent, 10);
    assert_int_equal(st->expected, 20);
    deliver_all(g, 0, 1, 4);
    deliver_all(g, 0, 6, 10);
    deliver(g, 0, 0, 5); /* the sender has its 5, the other member never */
    deliver(g, 1, 0, 7); /* a second copy */
    uint32_t f = end_step(g, st);
    assert_int_equal(st->delivered, 19);
    assert_int_equal(st->duplicated, 1);
    assert_int_equal(st->out_of_order, 1);
    assert_int_equal(st->lost, 1);
    assert_true(f & BIT(LOSS));
    free(st);
    free_gen(g);
}

static void test_a_late_delivery_fills_its_own_gap(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 10);
    deliver_all(g, 0, 1, 10);
    g->o.stop_loss = 1; /* this test is about the counts */
    uint32_t fail = end_step(g, st);
    assert_int_equal(fail, 0);
    assert_int_equal(st->lost, 0);

    /* the next step: the other member misses 13 and 17; 17 comes late, twice */
    send_phase(g, st, 10);
    deliver_all(g, 0, 11, 12);
    deliver_all(g, 0, 14, 16);
    deliver_all(g, 0, 18, 20);
    deliver(g, 0, 0, 13);
    deliver(g, 0, 0, 17);
    deliver(g, 1, 0, 17);
    deliver(g, 1, 0, 17);
    end_step(g, st);
    assert_int_equal(st->out_of_order, 3); /* the sender's 13 and 17, the other's 17 */
    assert_int_equal(st->duplicated, 1);
    assert_int_equal(st->delivered, 19);
    assert_int_equal(st->lost, 1); /* 13, per pair */

    /* and in the step after, 13 arrives: late, neither delivered nor lost */
    send_phase(g, st, 10);
    deliver(g, 1, 0, 13);
    deliver_all(g, 0, 21, 30);
    end_step(g, st);
    assert_int_equal(st->late, 1);
    assert_int_equal(st->delivered, 20);
    assert_int_equal(st->lost, 0);
    free(st);
    free_gen(g);
}

static void test_a_step_with_send_blocked_fails(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    /* the publisher's output is nearly full: the kernel took nothing */
    static uint8_t filler[GEN_OUT_CAP - 200];
    assert_int_equal(conn_send(g, &g->c[0], WS_BIN, filler, sizeof filler), 0);
    acct_step_begin(g, st, 10);
    uint64_t t0 = g->step_t0;
    for (uint64_t ms = 0; ms <= 1000; ms++) {
        g->now = fake_now = t0 + ms * MS;
        acct_publish_due(g);
    }
    assert_true(st->sent > 0 && st->sent < 10);
    assert_int_equal(st->sent + st->send_blocked, 10);
    deliver_all(g, 0, 1, (uint32_t)st->sent); /* everything sent came back */
    uint32_t f = end_step(g, st);
    assert_int_equal(st->lost, 0);
    assert_int_equal(f, BIT(SEND_BLOCKED) | BIT(SENT_BELOW_SCHEDULE));
    assert_false(st->pass);
    free(st);
    free_gen(g);
}

static void test_a_generator_behind_schedule_fails(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 100);
    deliver_all(g, 0, 1, 100);
    assert_int_equal(end_step(g, st), 0);
    assert_true(st->pace_lag_max <= 1 * MS);
    /* the generator does not run for 60 ms: those sends go out late */
    send_phase_stalled(g, st, 100, 300, 360);
    assert_int_equal(st->sent, 100);
    deliver_all(g, 0, 101, 200);
    assert_int_equal(end_step(g, st), BIT(BEHIND_SCHEDULE));
    assert_true(st->pace_lag_max >= 59 * MS);
    free(st);
    free_gen(g);
}

static void test_a_step_fails_on_closed_and_errors(void **state)
{
    (void)state;
    gen *g = mk_gen(3, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 10);
    deliver_all(g, 0, 1, 10);
    conn_close(g, &g->c[2]); /* the server hung up on a member */
    const char err[] = "{\"type\":\"error\",\"payload\":{\"code\":\"too_many_requests\"}}";
    acct_on_message(g, &g->c[0], (const uint8_t *)err, sizeof err - 1);
    assert_int_equal(end_step(g, st), BIT(CLOSED) | BIT(SERVER_ERRORS));
    assert_int_equal(st->lost, 0);
    /* a refused connection or join at set-up fails every step after it */
    g->connect_errors = 1;
    g->join_errors = 2;
    send_phase(g, st, 10);
    deliver_all(g, 0, 11, 20);
    assert_int_equal(end_step(g, st), BIT(CONNECT_ERRORS) | BIT(JOIN_ERRORS));
    assert_int_equal(st->join_errors, 2);
    free(st);
    free_gen(g);
}

/* A step the verdict would pass: 1000 of 1000 sent, nothing lost, 1 ms. */
static void clean_step(step_stats *s)
{
    memset(s, 0, offsetof(step_stats, lat));
    bh_reset(&s->lat);
    s->rate = 1000;
    s->seconds = 1;
    s->scheduled = s->sent = 1000;
    s->expected = s->delivered = 10000;
    for (int i = 0; i < 100; i++)
        bh_record(&s->lat, MS);
}

/* confab-bench's limits with its default --stop-loss and --stop-p99-ms */
static const step_limits default_limits = {.loss = 0.001,
                                           .p99_ms = 250,
                                           .pace_lag_ms = STEP_PACE_LAG_MS,
                                           .sent_fraction = STEP_SENT_FRACTION};

static void test_step_verdict(void **state)
{
    (void)state;
    static step_stats s;
    const step_limits l = default_limits;
    clean_step(&s);
    assert_int_equal(step_judge(&s, &l), 0);
    assert_true(s.pass);
    s.sent = 999; /* 99.9 % of the schedule is enough */
    assert_int_equal(step_judge(&s, &l), 0);
    s.sent = 998;
    assert_int_equal(step_judge(&s, &l), BIT(SENT_BELOW_SCHEDULE));
    assert_false(s.pass);
    clean_step(&s);
    s.pace_lag_max = 50 * MS;
    assert_int_equal(step_judge(&s, &l), 0);
    s.pace_lag_max = 51 * MS;
    assert_int_equal(step_judge(&s, &l), BIT(BEHIND_SCHEDULE));
    clean_step(&s);
    s.lost = 10;
    assert_int_equal(step_judge(&s, &l), 0);
    s.lost = 11;
    assert_int_equal(step_judge(&s, &l), BIT(LOSS));
    clean_step(&s);
    bh_record(&s.lat, 300 * MS);
    bh_record(&s.lat, 300 * MS);
    assert_int_equal(step_judge(&s, &l), BIT(P99));
    assert_string_equal(step_reason_name(STEP_B_SEND_BLOCKED), "send_blocked");
    assert_string_equal(step_reason_name(STEP_B_BEHIND_SCHEDULE), "generator_behind_schedule");
    assert_string_equal(step_reason_name(STEP_NREASONS), "?");
}

/* A ramp runs a step once more only when the generator alone failed it, and
 * only once: a server that is slow, or a generator that cannot keep up,
 * still ends the ramp. */
static void test_a_ramp_reruns_only_the_generators_own_lateness(void **state)
{
    (void)state;
    static step_stats s;
    const step_limits l = default_limits;
    clean_step(&s);
    step_judge(&s, &l);
    assert_false(step_only_late(&s));
    assert_int_equal(step_after(&s, 1), STEP_NEXT_RATE);
    s.pace_lag_max = 68 * MS; /* one stall of the VM, as at 2000 msg/s in a full run */
    assert_int_equal(step_judge(&s, &l), BIT(BEHIND_SCHEDULE));
    assert_true(step_only_late(&s));
    assert_int_equal(step_after(&s, 1), STEP_SAME_RATE);
    assert_int_equal(step_after(&s, 0), STEP_STOP); /* without --rerun-late-steps */
    s.rerun = 1; /* late again on its second run */
    assert_int_equal(step_after(&s, 1), STEP_STOP);
    s.rerun = 0;
    s.sent = 998; /* a late generator may also send below its schedule */
    assert_int_equal(step_judge(&s, &l), BIT(BEHIND_SCHEDULE) | BIT(SENT_BELOW_SCHEDULE));
    assert_int_equal(step_after(&s, 1), STEP_SAME_RATE);
    bh_record(&s.lat, 300 * MS); /* and the server over the p99 bound: a failure */
    bh_record(&s.lat, 300 * MS);
    assert_true(step_judge(&s, &l) & BIT(P99));
    assert_false(step_only_late(&s));
    assert_int_equal(step_after(&s, 1), STEP_STOP);
    clean_step(&s);
    s.pace_lag_max = 68 * MS;
    s.lost = 11;
    step_judge(&s, &l);
    assert_int_equal(step_after(&s, 1), STEP_STOP);
    clean_step(&s);
    s.sent = 998; /* below schedule without being late: not the stall case */
    step_judge(&s, &l);
    assert_false(step_only_late(&s));
    assert_int_equal(step_after(&s, 1), STEP_STOP);
}

static void test_a_step_with_nothing_expected_fails(void **state)
{
    (void)state;
    static step_stats s;
    const step_limits l = {.loss = 1, .p99_ms = 1e6, .pace_lag_ms = STEP_PACE_LAG_MS,
                           .sent_fraction = STEP_SENT_FRACTION};
    clean_step(&s);
    s.expected = s.delivered = 0;
    /* the same loss for the verdict and the report: not a clean 0 */
    assert_true(step_loss(&s) == 1.0);
    assert_int_equal(step_judge(&s, &l), BIT(NOTHING_EXPECTED));
    /* through the accounting: no publisher is in its room */
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    g->c[0].state = CS_JOINING;
    send_phase(g, st, 10);
    assert_int_equal(end_step(g, st), BIT(NOTHING_EXPECTED) | BIT(LOSS) | BIT(SENT_BELOW_SCHEDULE));
    assert_int_equal(st->sent, 0);
    g->c[0].state = CS_JOINED;
    free(st);
    free_gen(g);
}

static void test_rates_over_the_time_they_took(void **state)
{
    (void)state;
    static step_stats s;
    clean_step(&s);
    s.t0 = 5000 * MS;
    s.t_last = s.t0 + 2000 * MS; /* the server was still delivering a second after */
    assert_true(step_delivery_seconds(&s) == 2.0);
    assert_true(step_delivered_per_s(&s) == 5000.0);
    s.t_last = s.t0 + 900 * MS; /* never less than the step */
    assert_true(step_delivered_per_s(&s) == 10000.0);
    s.t_last = 0;
    assert_true(step_delivered_per_s(&s) == 10000.0);
    s.sent = 500;
    assert_true(step_sent_per_s(&s) == 500.0);
    s.seconds = 2;
    assert_true(step_sent_per_s(&s) == 250.0);
    /* through the accounting: the time of the last delivery is kept */
    gen *g = mk_gen(2, 1, 1);
    step_stats *st = calloc(1, sizeof *st);
    send_phase(g, st, 10);
    g->now = st->t0 + 4000 * MS;
    deliver_all(g, 0, 1, 10);
    end_step(g, st);
    assert_true(st->t_last == st->t0 + 4000 * MS);
    assert_true(step_delivered_per_s(st) == 5.0);
    free(st);
    free_gen(g);
}

static void test_receive_times_are_taken_per_read(void **state)
{
    (void)state;
    gen *g = mk_gen(2, 1, 1);
    g->rbuf = malloc(GEN_MAX_FRAME + 64 + GEN_READ_SIZE);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conn *c = &g->c[1];
    close(c->fd);
    c->fd = sv[0];

    /* the handshake: epoll_wait returned at 10 ms, this socket is read at 14 */
    uint64_t t = fake_now;
    c->state = CS_UPGRADING;
    c->t0 = t;
    g->inflight = 1;
    g->t_setup0 = t;
    ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", c->accept);
    char ok[256];
    int n = snprintf(ok, sizeof ok, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                     "Sec-WebSocket-Protocol: confab.v1\r\n\r\n", c->accept);
    assert_int_equal(write(sv[1], ok, (size_t)n), n);
    g->now = t + 10 * MS;
    fake_now = t + 14 * MS;
    conn_event(g, 1, EPOLLIN);
    assert_int_equal(c->state, CS_JOINING);
    assert_int_equal(g->hs.max, 14 * MS);
    assert_true(g->t_last_handshake == t + 14 * MS);
    const char joined[] = "{\"type\":\"joined\",\"payload\":{}}";
    acct_on_message(g, c, (const uint8_t *)joined, sizeof joined - 1);
    assert_int_equal(c->state, CS_JOINED);

    /* a delivery sent at 15 ms: epoll_wait returned at 16, the read is at 19 */
    step_stats *st = calloc(1, sizeof *st);
    acct_step_begin(g, st, 10);
    g->c[0].seq = 1; /* as if published */
    char msg[200];
    uint8_t frame[256] = {0x81};
    n = snprintf(msg, sizeof msg,
                 "{\"type\":\"new_message\",\"payload\":{\"message\":\"0 1 %llu x\"}}",
                 (unsigned long long)(t + 15 * MS));
    frame[1] = (uint8_t)n;
    memcpy(frame + 2, msg, (size_t)n);
    assert_int_equal(write(sv[1], frame, (size_t)n + 2), n + 2);
    g->now = t + 16 * MS;
    fake_now = t + 19 * MS;
    conn_event(g, 1, EPOLLIN);
    assert_int_equal(st->delivered, 1);
    assert_int_equal(st->lat.max, 4 * MS);
    g->cur = NULL;
    close(sv[1]);
    free(st);
    free(g->rbuf);
    free_gen(g);
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
        cmocka_unit_test(test_seqwin_a_late_copy_fills_only_its_own_gap),
        cmocka_unit_test(test_seqwin_gaps_leave_the_window_lost_once),
        cmocka_unit_test(test_a_duplicate_does_not_hide_a_loss),
        cmocka_unit_test(test_a_late_delivery_fills_its_own_gap),
        cmocka_unit_test(test_a_step_with_send_blocked_fails),
        cmocka_unit_test(test_a_generator_behind_schedule_fails),
        cmocka_unit_test(test_a_step_fails_on_closed_and_errors),
        cmocka_unit_test(test_step_verdict),
        cmocka_unit_test(test_a_ramp_reruns_only_the_generators_own_lateness),
        cmocka_unit_test(test_a_step_with_nothing_expected_fails),
        cmocka_unit_test(test_rates_over_the_time_they_took),
        cmocka_unit_test(test_receive_times_are_taken_per_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
