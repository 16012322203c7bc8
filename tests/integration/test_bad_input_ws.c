/* Bad WebSocket framing on every client protocol (legacy, confab.v1,
 * confab.msgpack.v1): control frames with bad lengths or fragmented, floods
 * of pings, oversized and fragmented-oversized messages, invalid UTF-8,
 * binary frames where text is expected. Each case asserts the close code
 * (or that the frame is ignored), and then that the gateway and brokers are
 * alive and two witnesses that were connected all along still chat. */
#include "bad_input.h"

static struct h_fixture fx;
static struct witness wit;

static int setup(void **state)
{
    (void)state;
    static const char *const env[] = {"PING_INTERVAL=120", NULL};
    return witnessed_up(&fx, &wit, env);
}

static int teardown(void **state)
{
    (void)state;
    return witnessed_down(&fx, &wit);
}

/* A fresh connection of each protocol. */
enum proto { LEGACY, V1_TEXT, V1_PACK, NPROTO };
static const char *const proto_name[] = {"legacy", "confab.v1", "confab.msgpack.v1"};

/* The v1 client behind the connection open_as made last (NULL: legacy),
 * so that it is freed with it. */
static struct v1c *last_v1;

static struct wsc *open_as(enum proto p, const char *user)
{
    last_v1 = NULL;
    if (p == LEGACY)
        return member(fx.node.port, user, "bad-ws");
    last_v1 = v1_member(fx.node.port, user, p == V1_TEXT ? V1_JSON : V1_MSGPACK);
    return v1_wsc(last_v1);
}

/* Frees what open_as made: with a close frame, or by dropping the socket. */
static void done(struct wsc *c, bool abort)
{
    if (last_v1 && v1_wsc(last_v1) == c)
        abort ? v1_abort(last_v1) : v1_close(last_v1);
    else
        abort ? wsc_abort(c) : wsc_close(c);
    last_v1 = NULL;
}

/* The close code the gateway answers with (0: it just dropped the TCP
 * connection); fails when it neither closes nor drops within 5 s. */
static int closed_with(struct wsc *c, const char *what)
{
    int code = wsc_wait_close(c, 5000);
    done(c, true);
    if (code < 0)
        fail_msg("%s: the connection stayed open", what);
    return code;
}

static void expect_close(struct wsc *c, int want, const char *what, enum proto p)
{
    int code = closed_with(c, what);
    if (code != want)
        fail_msg("%s on %s: close code %d, expected %d", what, proto_name[p], code, want);
}

static int recv_exact(int fd, void *buf, size_t n, int64_t deadline)
{
    for (size_t got = 0; got < n;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (h_now_ms() > deadline)
            return -1;
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* One unmasked server frame read straight from a socket within 5 s.
 * Returns its opcode, or -1 on timeout or EOF. */
static int fd_server_frame(int fd, unsigned char *payload, size_t cap, size_t *len)
{
    int64_t deadline = h_now_ms() + 5000;
    unsigned char h[4];
    if (recv_exact(fd, h, 2, deadline) < 0)
        return -1;
    size_t n = h[1] & 0x7fu;
    if (n == 126) {
        if (recv_exact(fd, h + 2, 2, deadline) < 0)
            return -1;
        n = (size_t)h[2] << 8 | h[3];
    }
    assert_true(n <= cap);
    if (recv_exact(fd, payload, n, deadline) < 0)
        return -1;
    *len = n;
    return h[0] & 0x0f;
}

/* The same on a wsc connection (the test has made wsc read nothing on it
 * yet, so nothing is buffered there). */
static int raw_server_frame(struct wsc *c, unsigned char *payload, size_t cap, size_t *len)
{
    return fd_server_frame(wsc_fd(c), payload, cap, len);
}

/* RFC 6455 5.5: control frames carry at most 125 bytes and are never
 * fragmented; a peer breaking that is failed (1002, or just dropped). */
static void test_control_frames_with_bad_lengths(void **state)
{
    (void)state;
    char big[200];
    memset(big, 'p', sizeof big);
    for (enum proto p = 0; p < NPROTO; p++) {
        /* At the limit: answered with a pong carrying the same bytes. */
        struct wsc *c = open_as(p, "pinger");
        assert_int_equal(wsc_send_frame(c, WS_PING, true, big, 125), 0);
        unsigned char got[200];
        size_t n = 0;
        int op = raw_server_frame(c, got, sizeof got, &n);
        if (op != WS_PONG || n != 125 || memcmp(got, big, 125) != 0)
            fail_msg("%s: a 125-byte ping got opcode %d with %zu bytes", proto_name[p], op, n);
        done(c, false);

        static const struct {
            const char *what;
            int opcode;
            bool fin;
            size_t len;
        } bad[] = {
            {"a 126-byte ping", WS_PING, true, 126},
            {"a 200-byte pong", WS_PONG, true, 200},
            {"a 200-byte close", WS_CLOSE, true, 200},
            {"a fragmented ping", WS_PING, false, 4},
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            c = open_as(p, "pinger");
            assert_int_equal(wsc_send_frame(c, bad[i].opcode, bad[i].fin, big, bad[i].len), 0);
            if (!bad[i].fin)
                wsc_send_frame(c, WS_CONT, true, big, 4);
            int code = closed_with(c, bad[i].what);
            if (code != 1002 && code != 0)
                fail_msg("%s on %s: close code %d, expected 1002 or a dropped connection",
                         bad[i].what, proto_name[p], code);
        }
    }
    witness_check(&wit, &fx.node);
}

/* Thousands of pings: the connection is served (one pong at least, the
 * last one echoing the last ping, and it can still chat) or closed; the
 * gateway stays responsive to everybody else meanwhile. */
static void test_ping_floods(void **state)
{
    (void)state;
    enum { PINGS = 20000 };
    for (enum proto p = 0; p < NPROTO; p++) {
        struct wsc *c = open_as(p, "flooder");
        char ping[32];
        int sent = 0;
        for (; sent < PINGS; sent++) {
            int n = snprintf(ping, sizeof ping, "ping-%d", sent);
            if (wsc_send_frame(c, WS_PING, true, ping, (size_t)n) < 0)
                break; /* dropped mid-flood: allowed */
        }
        /* Others are served while the flood is being worked through. */
        witness_check(&wit, &fx.node);
        if (sent < PINGS) {
            printf("%s: dropped after %d pings\n", proto_name[p], sent);
            done(c, true);
            continue;
        }
        /* Pongs, the last one for the last ping (lws coalesces them). */
        unsigned char got[200];
        size_t n = 0;
        int op, pongs = 0;
        char last[32] = "";
        while ((op = raw_server_frame(c, got, sizeof got - 1, &n)) == WS_PONG) {
            pongs++;
            got[n] = '\0';
            snprintf(last, sizeof last, "%.31s", (char *)got);
            if (!strcmp(last, ping))
                break;
        }
        printf("%s: %d pings, %d pongs\n", proto_name[p], PINGS, pongs);
        if (op == WS_CLOSE || op < 0) {
            done(c, true);
            continue; /* closed: allowed */
        }
        assert_string_equal(last, ping);
        if (p == LEGACY) {
            say(c, "after the flood");
            expect_message(c, "after the flood", "flooder");
        } else {
            const char *join = p == V1_TEXT ? "{\"type\":\"join\",\"payload\":{\"room\":\"flood\"}}"
                                            : "\x82\xa4type\xa4join\xa7payload\x81\xa4room\xa5"
                                              "flood";
            assert_int_equal(
                wsc_send_frame(c, p == V1_TEXT ? WS_TEXT : WS_BINARY, true, join, strlen(join)), 0);
            char *m = NULL;
            assert_int_equal(wsc_recv(c, 5000, &m, NULL), p == V1_TEXT ? WS_TEXT : WS_BINARY);
            free(m);
        }
        done(c, false);
    }
    witness_check(&wit, &fx.node);
}

/* A frame header announcing `announced` bytes (zero mask key), followed by
 * only `n` of them. */
static void send_partial_frame(struct wsc *c, int op, bool fin, uint64_t announced,
                               const char *bytes, size_t n)
{
    unsigned char hdr[14] = {(unsigned char)((fin ? 0x80 : 0) | op), 0x80 | 127};
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (unsigned char)(announced >> (8 * (7 - i)));
    assert_int_equal(h_send_all(wsc_fd(c), hdr, sizeof hdr), 0);
    assert_int_equal(h_send_all(wsc_fd(c), bytes, n), 0);
}

/* After a protocol error the gateway's FIN follows its close frame: a
 * browser learns of the close (and our client reconnects after a 1009) at
 * once. The socket used to stay open, the client's answer discarded, until
 * the 3 s grace ended. */
static void test_a_protocol_error_ends_the_connection_at_once(void **state)
{
    (void)state;
    char bytes[4097];
    memset(bytes, 'x', sizeof bytes);
    for (enum proto p = 0; p < NPROTO; p++) {
        struct wsc *c = open_as(p, "quick");
        int64_t t0 = h_now_ms();
        assert_int_equal(wsc_send_frame(c, p == V1_PACK ? WS_BINARY : WS_TEXT, true, bytes, 4097), 0);
        assert_int_equal(wsc_wait_close(c, 5000), 1009); /* answered with a close frame */
        int fd = wsc_fd(c);
        bool eof = false;
        while (!eof && h_now_ms() - t0 < 2500) {
            struct pollfd pf = {fd, POLLIN, 0};
            char b[64];
            eof = poll(&pf, 1, 50) == 1 && recv(fd, b, sizeof b, MSG_DONTWAIT) <= 0;
        }
        int64_t took = h_now_ms() - t0;
        done(c, true);
        if (!eof || took > 1000)
            fail_msg("%s: the TCP connection ended %lld ms after the 1009 (eof %d)", proto_name[p],
                     (long long)took, eof);
    }
}

/* A message over MAX_MESSAGE_BYTES (4096) is 1009 however it comes: in one
 * frame, in one announcing a huge length, in many small fragments or in a
 * first fragment already too big. (The gateway closes as soon as byte 4097
 * arrives, so the test never sends more: bytes arriving after the close
 * would make the kernel reset the connection and lose the close frame.) */
static void test_oversized_messages_are_1009_on_every_protocol(void **state)
{
    (void)state;
    char bytes[4097];
    memset(bytes, 'x', sizeof bytes);
    for (enum proto p = 0; p < NPROTO; p++) {
        int op = p == V1_PACK ? WS_BINARY : WS_TEXT;

        struct wsc *c = open_as(p, "big");
        assert_int_equal(wsc_send_frame(c, op, true, bytes, 4097), 0);
        expect_close(c, 1009, "one 4097-byte frame", p);

        c = open_as(p, "big");
        send_partial_frame(c, op, true, 1 << 20, bytes, 4097);
        expect_close(c, 1009, "a 1 MiB frame", p);

        /* lws hands no length over before the payload arrives: a header
         * alone waits (the ping timeout reaps it); its first 4097 bytes
         * are refused. */
        c = open_as(p, "big");
        send_partial_frame(c, op, true, 1ull << 62, bytes, 4097);
        expect_close(c, 1009, "a frame announcing 2^62 bytes", p);

        /* 82 fragments of 50 bytes: 4100. */
        c = open_as(p, "big");
        for (int i = 0; i < 82; i++)
            assert_int_equal(wsc_send_frame(c, i ? WS_CONT : op, i == 81, bytes, 50), 0);
        expect_close(c, 1009, "82 fragments of 50 bytes", p);

        c = open_as(p, "big");
        assert_int_equal(wsc_send_frame(c, op, false, bytes, 4097), 0);
        expect_close(c, 1009, "a first fragment of 4097 bytes", p);

        c = open_as(p, "big");
        send_partial_frame(c, op, false, 1 << 20, bytes, 4097);
        expect_close(c, 1009, "a first fragment announcing 1 MiB", p);
    }
    witness_check(&wit, &fx.node);
}

/* Invalid UTF-8 in a text frame is 1007 on both text protocols: truncated,
 * overlong, an encoded surrogate, past U+10FFFF, and a character split
 * across fragments whose second half is wrong. A character split across
 * fragments correctly is fine. */
static void test_invalid_utf8_is_1007(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xc3\x28", "\xc0\xae", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\xc3",
    };
    for (enum proto p = LEGACY; p <= V1_TEXT; p++) {
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            char frame[128];
            int n = snprintf(frame, sizeof frame,
                             "{\"type\":\"send\",\"payload\":{\"room\":\"x\",\"message\":\"%s\"}}",
                             bad[i]);
            struct wsc *c = open_as(p, "utf8");
            assert_int_equal(wsc_send_frame(c, WS_TEXT, true, frame, (size_t)n), 0);
            expect_close(c, 1007, "invalid UTF-8", p);
        }
        struct wsc *c = open_as(p, "utf8");
        const char *a = p == LEGACY
                            ? "{\"type\":\"send_message\",\"payload\":{\"message\":\"caf\xc3"
                            : "{\"type\":\"join\",\"payload\":{\"room\":\"caf\xc3";
        assert_int_equal(wsc_send_frame(c, WS_TEXT, false, a, strlen(a)), 0);
        assert_int_equal(wsc_send_frame(c, WS_CONT, true, "(\"}}", 4), 0);
        expect_close(c, 1007, "invalid UTF-8 across fragments", p);
    }
    /* Split correctly: reassembled and served. */
    struct wsc *c = open_as(LEGACY, "utf8");
    const char *a = "{\"type\":\"send_message\",\"payload\":{\"message\":\"caf\xc3";
    assert_int_equal(wsc_send_frame(c, WS_TEXT, false, a, strlen(a)), 0);
    assert_int_equal(wsc_send_frame(c, WS_CONT, true, "\xa9\"}}", 4), 0);
    expect_message(c, "caf\xc3\xa9", "utf8");
    done(c, false);
    witness_check(&wit, &fx.node);
}

/* Binary frames on the JSON protocols: the legacy protocol ignores them
 * (and the connection keeps working, in its room), confab.v1 closes 1003;
 * a msgpack string that is not UTF-8 is bad_json on confab.msgpack.v1. */
static void test_binary_frames_on_json_protocols(void **state)
{
    (void)state;
    struct wsc *l = open_as(LEGACY, "binary");
    ready(l, "in bad-ws");
    static const char ev[] = "{\"type\":\"send_message\",\"payload\":{\"message\":\"as binary\"}}";
    assert_int_equal(wsc_send_frame(l, WS_BINARY, true, ev, sizeof ev - 1), 0);
    assert_int_equal(wsc_send_frame(l, WS_BINARY, true, "", 0), 0);
    assert_int_equal(wsc_send_frame(l, WS_BINARY, false, "\x82\xa1", 2), 0);
    assert_int_equal(wsc_send_frame(l, WS_CONT, true, "v\x01", 2), 0);
    assert_true(wsc_quiet(l, 300)); /* nothing said, nothing answered */
    say(l, "text still works");
    expect_message(l, "text still works", "binary");
    done(l, false);

    struct wsc *j = open_as(V1_TEXT, "binary");
    assert_int_equal(wsc_send_frame(j, WS_BINARY, true, ev, sizeof ev - 1), 0);
    expect_close(j, 1003, "a binary frame", V1_TEXT);
    j = open_as(V1_TEXT, "binary");
    assert_int_equal(wsc_send_frame(j, WS_BINARY, false, "\x82", 1), 0);
    assert_int_equal(wsc_send_frame(j, WS_CONT, true, "\xa1", 1), 0);
    expect_close(j, 1003, "a fragmented binary frame", V1_TEXT);

    struct v1c *m = v1_member(fx.node.port, "packer", V1_MSGPACK);
    static const char bad_str[] = "\x82\xa4type\xa4join\xa7payload\x81\xa4room\xa2\xc3\x28";
    assert_int_equal(wsc_send_frame(v1_wsc(m), WS_BINARY, true, bad_str, sizeof bad_str - 1), 0);
    expect_error(m, "bad_json", NULL, NULL);
    json_decref(join_ok(m, "packed-ok"));
    v1_close(m);
    witness_check(&wit, &fx.node);
}

/* An empty message in two empty fragments reaches the parsers with nothing
 * allocated for it: refused like any frame that is not JSON (bad_json on
 * confab.v1 and confab.msgpack.v1, the legacy protocol's error on it), and the
 * connection goes on. It used to give the parsers a null pointer, which the
 * sanitizers' build of the suite stops on. */
static void test_an_empty_fragmented_message(void **state)
{
    (void)state;
    for (enum proto p = LEGACY; p < NPROTO; p++) {
        struct wsc *c = open_as(p, "empty");
        if (p == LEGACY)
            ready(c, "in bad-ws");
        int op = p == V1_PACK ? WS_BINARY : WS_TEXT;
        assert_int_equal(wsc_send_frame(c, op, false, "", 0), 0);
        assert_int_equal(wsc_send_frame(c, WS_CONT, true, "", 0), 0);
        if (p == LEGACY) {
            say(c, "after nothing");
            read_until(c, "after nothing"); /* what the legacy protocol says of it aside */
        } else {
            expect_error(last_v1, "bad_json", NULL, NULL);
            json_decref(join_ok(last_v1, "empty-ok"));
        }
        done(c, false);
    }
    witness_check(&wit, &fx.node);
}

/* A message may come in up to 256 frames; past that it is closed with 1008
 * (endless empty continuation frames made a message that never ended and
 * cost the gateway a parse each, without any limit). */
static void test_a_message_in_too_many_frames_is_1008(void **state)
{
    (void)state;
    static const char join[] = "{\"type\":\"join\",\"payload\":{\"room\":\"frames\"}}";
    for (int extra = 0; extra < 2; extra++) {
        struct wsc *c = open_as(V1_TEXT, "fragmenter");
        /* the join's bytes in its first frames, then empty ones: 256 frames
         * in all, or 257 */
        size_t n = sizeof join - 1;
        int frames = 256 + extra;
        for (int i = 0; i < frames; i++) {
            const char *p = i < (int)n ? join + i : "";
            bool fin = i == frames - 1;
            assert_int_equal(wsc_send_frame(c, i ? WS_CONT : WS_TEXT, fin, p, i < (int)n), 0);
        }
        if (extra) {
            expect_close(c, 1008, "a message in 257 frames", V1_TEXT);
            continue;
        }
        json_t *ev = v1_wait(last_v1, V1_WAIT, "joined", "room", "frames", NULL);
        V1_MUST(last_v1, ev, "joined, from a join in 256 frames");
        json_decref(ev);
        done(c, false);
    }
    witness_check(&wit, &fx.node);
}

/* ---- the close handshake and the upgrade, on raw sockets ----------------- */

/* A masked client frame (zero mask key) into out; returns its length. */
static size_t client_frame(unsigned char *out, int opcode, const void *data, size_t len)
{
    out[0] = (unsigned char)(0x80 | opcode);
    out[1] = (unsigned char)(0x80 | len); /* len < 126 here */
    memset(out + 2, 0, 4);
    memcpy(out + 6, data, len);
    return 6 + len;
}

/* An upgraded raw socket asking for `protocol` (NULL: a legacy client),
 * with `extra` bytes sent in the same write as the request (NULL: none). */
static int raw_upgrade_as(const char *user, const char *protocol, const void *extra,
                          size_t extra_len)
{
    char *token = h_login(fx.node.port, user);
    assert_non_null(token);
    int fd = h_tcp_connect(fx.node.port, 0);
    assert_true(fd >= 0);
    char req[8192];
    int n = snprintf(req, sizeof req,
                     "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     token, protocol ? "Sec-WebSocket-Protocol: " : "", protocol ? protocol : "",
                     protocol ? "\r\n" : "");
    free(token);
    assert_true(n > 0 && (size_t)n + extra_len < sizeof req);
    if (extra)
        memcpy(req + n, extra, extra_len);
    assert_int_equal(h_send_all(fd, req, (size_t)n + extra_len), 0);
    /* the 101, byte by byte so that no frame after it is consumed */
    char resp[1024];
    size_t got = 0;
    int64_t deadline = h_now_ms() + 5000;
    while (got < 4 || memcmp(resp + got - 4, "\r\n\r\n", 4) != 0) {
        assert_true(got < sizeof resp - 1);
        assert_int_equal(recv_exact(fd, resp + got, 1, deadline), 0);
        got++;
    }
    resp[got] = '\0';
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0)
        fail_msg("upgrade refused: %.60s", resp);
    return fd;
}

static int raw_upgrade(const char *user, const void *extra, size_t extra_len)
{
    return raw_upgrade_as(user, NULL, extra, extra_len);
}

/* Reads server frames until a close; returns its code (0: none given, -1:
 * EOF or timeout first). */
static int raw_close_code(int fd)
{
    unsigned char payload[200];
    size_t n;
    int op;
    while ((op = fd_server_frame(fd, payload, sizeof payload, &n)) >= 0)
        if (op == WS_CLOSE)
            return n >= 2 ? payload[0] << 8 | payload[1] : 0;
    return -1;
}

/* Whether the server closes the TCP connection within ms. */
static bool raw_eof_within(int fd, int ms)
{
    int64_t deadline = h_now_ms() + ms;
    char buf[256];
    while (h_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            return true;
    }
    return false;
}

/* After the gateway's close for another reason than a protocol error (here
 * 1003), a protocol error in what the client sends before its answer still
 * brings the FIN at once: the client's input is discarded from then on, its
 * answer with it, so nothing else would end the connection before the 3 s
 * grace, and then with a reset. */
static void test_a_protocol_error_after_our_close_ends_the_connection_at_once(void **state)
{
    (void)state;
    int fd = raw_upgrade_as("late-error", "confab.v1", NULL, 0);
    unsigned char f[64];
    size_t n = client_frame(f, WS_BINARY, "{}", 2);
    assert_int_equal(h_send_all(fd, f, n), 0);
    assert_int_equal(raw_close_code(fd), 1003);
    int64_t t0 = h_now_ms();
    assert_int_equal(h_send_all(fd, "\x81\x02hi", 4), 0); /* unmasked: 1002 */
    bool eof = raw_eof_within(fd, 2500);
    int64_t took = h_now_ms() - t0;
    close(fd);
    if (!eof || took > 1000)
        fail_msg("the TCP connection ended %lld ms after the protocol error (eof %d)",
                 (long long)took, eof);
    witness_check(&wit, &fx.node);
}

/* RFC 6455 4.1: a client sends frames only once it has the 101. Frames that
 * arrive with the upgrade request are a protocol error (1002), not lost in
 * silence; nothing else is affected. */
static void test_frames_before_the_handshake_response_are_1002(void **state)
{
    (void)state;
    unsigned char f[64];
    size_t n = client_frame(f, WS_TEXT, "{\"type\":\"x\"}", 12);
    int fd = raw_upgrade("eager", f, n);
    assert_int_equal(raw_close_code(fd), 1002);
    close(fd);
    witness_check(&wit, &fx.node);
}

/* The client's close is answered with the same code, then the server closes
 * the TCP connection; a close without a code is answered without one. 1012
 * to 1014 are in IANA's registry, not in RFC 6455, and the gateway closes
 * with 1012 itself: a client answering with it is no protocol error. */
static void test_client_close_is_echoed_then_the_socket_closed(void **state)
{
    (void)state;
    static const struct {
        const char *payload;
        size_t len;
        int want;
    } cases[] = {
        {"\x03\xe8" "bye", 5, 1000}, {"\x0f\xa0", 2, 4000}, {"", 0, 0},
        {"\x03\xf4", 2, 1012}, {"\x03\xf5", 2, 1013}, {"\x03\xf6", 2, 1014},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int fd = raw_upgrade("closer", NULL, 0);
        unsigned char f[64];
        size_t n = client_frame(f, WS_CLOSE, cases[i].payload, cases[i].len);
        assert_int_equal(h_send_all(fd, f, n), 0);
        assert_int_equal(raw_close_code(fd), cases[i].want);
        assert_true(raw_eof_within(fd, 3000));
        close(fd);
    }
}

/* A client may half-close right after its close frame (it still reads):
 * the gateway must answer before it ends the connection, also while it is
 * busy and paces its flushes (a message every member of a wide room gets
 * makes the next flush wait about as long as that one took). */
static void test_a_close_then_half_close_is_answered_while_paced(void **state)
{
    (void)state;
    enum { MEMBERS = 150, ROUNDS = 5 };
    struct wsc *p = member(fx.node.port, "pacer", NULL);
    struct wsc **m = silent_members(fx.node.port, "listener", MEMBERS);
    ready(p, "all-in");
    int answered = 0;
    for (int r = 0; r < ROUNDS; r++) {
        int fd = raw_upgrade("halfcloser", NULL, 0);
        unsigned char f[64];
        size_t n = client_frame(f, WS_CLOSE, "\x03\xe8", 2);
        char wide[16];
        snprintf(wide, sizeof wide, "wide-%d", r);
        ready(p, wide); /* flushed to every member: the next flush waits */
        assert_int_equal(h_send_all(fd, f, n), 0);
        assert_int_equal(shutdown(fd, SHUT_WR), 0);
        int code = raw_close_code(fd);
        if (code == 1000)
            answered++;
        else
            printf("round %d: %s\n", r,
                   code < 0 ? "no close frame before the end" : "another code");
        assert_true(raw_eof_within(fd, 3000));
        close(fd);
    }
    close_all(m, MEMBERS);
    wsc_close(p);
    assert_int_equal(answered, ROUNDS);
    witness_check(&wit, &fx.node);
}

/* The gateway's connections (/healthz), or -1. */
static long gateway_connections(void)
{
    struct h_resp r;
    if (h_http(fx.node.port, "GET", "/healthz", NULL, NULL, 0, &r) < 0)
        return -1;
    json_t *j = json_loads(r.body, 0, NULL);
    long n = j ? (long)json_integer_value(json_object_get(j, "connections")) : -1;
    json_decref(j);
    h_resp_free(&r);
    return n;
}

/* After the server's close (here for a protocol error) a client that never
 * answers sees the FIN behind the close frame at once, and the gateway
 * still lets the connection go: within the 3 s grace and the 1 s tick. */
static void test_a_close_left_unanswered_ends_the_connection(void **state)
{
    (void)state;
    long before = gateway_connections();
    int fd = raw_upgrade("silent", NULL, 0);
    assert_int_equal(gateway_connections(), before + 1);
    assert_int_equal(h_send_all(fd, "\x81\x02hi", 4), 0); /* unmasked */
    assert_int_equal(raw_close_code(fd), 1002);
    int64_t t0 = h_now_ms();
    assert_true(raw_eof_within(fd, 1000));
    long n = before + 1;
    while (h_now_ms() - t0 < 6000 && (n = gateway_connections()) > before)
        h_sleep_ms(100);
    assert_int_equal(n, before);
    assert_true(h_now_ms() - t0 >= 1500); /* it waited for an answer first */
    close(fd);
    witness_check(&wit, &fx.node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_frames_with_bad_lengths),
        cmocka_unit_test(test_ping_floods),
        cmocka_unit_test(test_a_message_in_too_many_frames_is_1008),
        cmocka_unit_test(test_oversized_messages_are_1009_on_every_protocol),
        cmocka_unit_test(test_a_protocol_error_ends_the_connection_at_once),
        cmocka_unit_test(test_invalid_utf8_is_1007),
        cmocka_unit_test(test_binary_frames_on_json_protocols),
        cmocka_unit_test(test_an_empty_fragmented_message),
        cmocka_unit_test(test_frames_before_the_handshake_response_are_1002),
        cmocka_unit_test(test_client_close_is_echoed_then_the_socket_closed),
        cmocka_unit_test(test_a_close_then_half_close_is_answered_while_paced),
        cmocka_unit_test(test_a_close_left_unanswered_ends_the_connection),
        cmocka_unit_test(test_a_protocol_error_after_our_close_ends_the_connection_at_once),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
