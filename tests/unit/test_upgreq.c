/* Unit tests for gateway/upgreq: which requests the gateway answers itself
 * and what it reads from them. Every request it is not sure of must come out
 * "not mine" (lws then answers it); a request cut anywhere before its blank
 * line is "more bytes needed" unless its start already rules it out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "upgreq.h"

static const char *const protos[] = {"confab", "confab.v1", "confab.msgpack.v1", NULL};

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define TOKEN "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln-_x"

/* The usual request with `line` (a request line) and `extra` header lines. */
static int build(char *buf, size_t cap, const char *line, const char *extra)
{
    return snprintf(buf, cap,
                    "%s\r\nHost: example.org:8080\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                    "Sec-WebSocket-Version: 13\r\n%s\r\n",
                    line, extra);
}

static int parse(const char *req, struct upg_req *r)
{
    return upg_parse(req, strlen(req), protos, r);
}

static void test_the_usual_request_is_taken(void **state)
{
    (void)state;
    char req[2048];
    struct upg_req r;
    int n = build(req, sizeof req, "GET /ws?token=" TOKEN " HTTP/1.1", "");
    assert_int_equal(parse(req, &r), n);
    assert_memory_equal(r.key, KEY, 24);
    assert_int_equal(r.token_len, strlen(TOKEN));
    assert_memory_equal(r.token, TOKEN, r.token_len);
    assert_null(r.origin);
    assert_int_equal(r.host_len, strlen("example.org:8080"));
    assert_memory_equal(r.host, "example.org:8080", r.host_len);
    assert_int_equal(r.proto, -1);

    /* the first token= argument, other arguments ignored; header names in
     * any case, values trimmed, unknown headers skipped */
    n = snprintf(req, sizeof req,
                 "GET /ws?a=1&token=" TOKEN "&token=other HTTP/1.1\r\nhOsT:x\r\n"
                 "UPGRADE: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
                 "User-Agent: Mozilla/5.0 (X11)\t\r\nsec-websocket-key:   " KEY "\r\n"
                 "Sec-WebSocket-Version: 13\r\nOrigin: https://chat.example.org\r\n"
                 "Sec-WebSocket-Protocol: confab.msgpack.v1, confab.v1\r\n"
                 "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
    assert_int_equal(parse(req, &r), n);
    assert_memory_equal(r.token, TOKEN, r.token_len);
    assert_int_equal(r.token_len, strlen(TOKEN));
    assert_int_equal(r.origin_len, strlen("https://chat.example.org"));
    assert_memory_equal(r.origin, "https://chat.example.org", r.origin_len);
    assert_int_equal(r.proto, 2);

    /* the token as a bearer token */
    n = build(req, sizeof req, "GET /ws HTTP/1.1", "Authorization: Bearer  " TOKEN "\r\n");
    assert_int_equal(parse(req, &r), n);
    assert_memory_equal(r.token, TOKEN, r.token_len);

    /* bytes after the blank line are not looked at */
    n = build(req, sizeof req, "GET /ws?token=" TOKEN " HTTP/1.1", "");
    strcat(req, "\x81\x80garbage");
    assert_int_equal(parse(req, &r), n);
}

static void test_a_cut_request_needs_more(void **state)
{
    (void)state;
    char req[2048];
    struct upg_req r;
    int n = build(req, sizeof req, "GET /ws?token=" TOKEN " HTTP/1.1", "");
    for (int cut = 0; cut < n; cut++)
        assert_int_equal(upg_parse(req, (size_t)cut, protos, &r), 0);
    /* but a start that is not GET /ws is not mine at once */
    assert_int_equal(upg_parse("POST /login", 4, protos, &r), -1);
    assert_int_equal(upg_parse("GET /x", 6, protos, &r), -1);
}

static void test_anything_unusual_is_not_mine(void **state)
{
    (void)state;
    static const struct {
        const char *line, *extra;
    } cases[] = {
        {"GET /ws?token=" TOKEN " HTTP/1.0", ""},
        {"GET /wss?token=" TOKEN " HTTP/1.1", ""},
        {"GET /ws/?token=" TOKEN " HTTP/1.1", ""},
        {"GET /ws?token=" TOKEN "  HTTP/1.1", ""},
        {"GET /ws?token=a%2Eb HTTP/1.1", ""},
        {"GET /ws?token=a+b HTTP/1.1", ""},
        {"GET /ws?token= HTTP/1.1", ""},
        {"GET /ws?token=a\"b HTTP/1.1", ""},
        {"GET /ws HTTP/1.1", ""},                                   /* no token: lws' 401 */
        {"GET /ws HTTP/1.1", "Authorization: Basic eDp5\r\n"},
        {"GET /ws HTTP/1.1", "Authorization: Bearer a b\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Host: twice\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Content-Length: 0\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Transfer-Encoding: chunked\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "X-Folded: a\r\n b\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "X-Space : a\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "NoColon\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "X-Bin: caf\xc3\xa9\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "X-Ctl: a\x01\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "X-Lf: a\nb\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Sec-WebSocket-Protocol: chat\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Sec-WebSocket-Protocol: confab.v1, chat\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Sec-WebSocket-Protocol: confab listener\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Sec-WebSocket-Protocol: \r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Origin: a\r\nOrigin: b\r\n"},
        /* where lws reads differently from a trimming reader */
        {"GET /ws?x;token=" TOKEN " HTTP/1.1", ""},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Origin: http://a \r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Origin:\thttp://a\r\n"},
        {"GET /ws HTTP/1.1", "Authorization: Bearer " TOKEN "\t\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Sec-WebSocket-Protocol: confab.v1\t,confab\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Sec-WebSocket-Origin: http://a\r\n"},
        {"GET /ws?token=" TOKEN " HTTP/1.1", "Connection: a=b\r\n"},
        /* the other arguments are looked at too, a second token= with them */
        {"GET /ws?token=" TOKEN "&a=%41 HTTP/1.1", ""},
        {"GET /ws?token=" TOKEN "&a=b;c HTTP/1.1", ""},
        {"GET /ws?token=" TOKEN "&a=\x80 HTTP/1.1", ""},
        {"GET /ws?token=" TOKEN "&token=a+b HTTP/1.1", ""},
        {"GET /ws?a=\x7f&token=" TOKEN " HTTP/1.1", ""},
    };
    char req[2048];
    struct upg_req r;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        build(req, sizeof req, cases[i].line, cases[i].extra);
        if (parse(req, &r) != -1)
            fail_msg("case %zu taken: %s / %s", i, cases[i].line, cases[i].extra);
    }
    /* the required headers, each missing or wrong */
    static const char *const bad[] = {
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
        "\r\nSec-WebSocket-Version: 13\r\n",
        "Host: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
        "\r\nSec-WebSocket-Version: 13\r\n",
        "Host: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: " KEY
        "\r\nSec-WebSocket-Version: 13\r\n",
        "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
        "\r\nSec-WebSocket-Version: 8\r\n",
        "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc\r\n"
        "Sec-WebSocket-Version: 13\r\n",
        "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
        "dGhlIHNhbXBsZSBub25jZQ=!\r\nSec-WebSocket-Version: 13\r\n",
        "Host: \r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
        "\r\nSec-WebSocket-Version: 13\r\n",
        /* a trailing space or a tab on a header read (lws keeps them) */
        "Host: x\r\nUpgrade: websocket \r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
        "\r\nSec-WebSocket-Version: 13\r\n",
        "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY
        "\t\r\nSec-WebSocket-Version: 13\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(req, sizeof req, "GET /ws?token=" TOKEN " HTTP/1.1\r\n%s\r\n", bad[i]);
        if (parse(req, &r) != -1)
            fail_msg("headers %zu taken", i);
    }
    /* lists longer than lws takes, too many header lines or arguments */
    /* a Connection list of 129 bytes is over, one of 119 is taken */
    char extra[300];
    for (int filler = 120; filler >= 110; filler -= 10) {
        snprintf(req, sizeof req,
                 "GET /ws?token=" TOKEN " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 "Connection: %0*d, Upgrade\r\nSec-WebSocket-Key: " KEY
                 "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 filler, 0);
        assert_int_equal(parse(req, &r) > 0, filler == 110);
    }
    snprintf(extra, sizeof extra, "X: y\r\n");
    char many[2048] = "";
    for (int i = 0; i < 33; i++)
        strcat(many, extra);
    build(req, sizeof req, "GET /ws?token=" TOKEN " HTTP/1.1", many);
    assert_int_equal(parse(req, &r), -1);
    build(req, sizeof req, "GET /ws?a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p&token=" TOKEN " HTTP/1.1",
          "");
    assert_int_equal(parse(req, &r), -1);

    /* longer than UPG_MAX_REQUEST, or a bare LF ending the head */
    char big[UPG_MAX_REQUEST + 200];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /ws?token=", 14);
    assert_int_equal(upg_parse(big, sizeof big, protos, &r), -1);
    assert_int_equal(parse("GET /ws?token=" TOKEN " HTTP/1.1\n\n", &r), 0);
}

static void test_accept_key(void **state)
{
    (void)state;
    char out[29];
    assert_int_equal(upg_accept(KEY, out), 0); /* RFC 6455 1.3's example */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_usual_request_is_taken),
        cmocka_unit_test(test_a_cut_request_needs_more),
        cmocka_unit_test(test_anything_unusual_is_not_mine),
        cmocka_unit_test(test_accept_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
