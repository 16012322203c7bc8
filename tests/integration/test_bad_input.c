/* Bad input that does not come over a WebSocket or Redis: HTTP requests
 * (unknown paths, wrong methods, traversal out of FRONTEND_DIR, oversized
 * or too many headers, bad bodies) and frames with wrong types on a
 * broker's Unix socket (settings: test_bad_input_config.c). Each gets a
 * clear, specific answer; the processes survive, and two witnesses
 * connected all along keep chatting. The WebSocket side is in
 * test_bad_input_ws.c and test_bad_input_json.c, Redis' in
 * test_bad_input_redis.c. */
#include "bad_input.h"

#include <sys/stat.h>
#include <sys/un.h>

#include "bytes.h"
#include "wire.h"

static struct h_fixture fx;
static struct witness wit;

/* FRONTEND_DIR with a file, a symlink to a file outside and a symlink to a
 * directory outside; "outside" content marks anything that must not leak. */
static int make_frontend(char fe[static 400], size_t cap)
{
    const char *t = h_tmpdir();
    char p[600], q[700];
    snprintf(fe, cap, "%s/www", t);
    snprintf(p, sizeof p, "%s/outside", t);
    if (mkdir(fe, 0755) < 0 || mkdir(p, 0755) < 0)
        return -1;
    static const char *const files[][2] = {
        {"www/index.html", "<!doctype html>in"},
        {"secret.txt", "outside-secret"},
        {"outside/file.txt", "outside-dir"},
    };
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", t, files[i][0]);
        FILE *f = fopen(p, "w");
        if (!f)
            return -1;
        fputs(files[i][1], f);
        fclose(f);
    }
    snprintf(p, sizeof p, "%s/secret.txt", t);
    snprintf(q, sizeof q, "%s/escape.txt", fe);
    if (symlink(p, q) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/outside", t);
    snprintf(q, sizeof q, "%s/linkdir", fe);
    return symlink(p, q);
}

static int setup(void **state)
{
    (void)state;
    static char fe_env[700], fe[600];
    if (make_frontend(fe, sizeof fe) < 0)
        return -1;
    snprintf(fe_env, sizeof fe_env, "FRONTEND_DIR=%s", fe);
    static const char *env[] = {fe_env, "PING_INTERVAL=120", NULL};
    return witnessed_up(&fx, &wit, env);
}

static int teardown(void **state)
{
    (void)state;
    return witnessed_down(&fx, &wit);
}

/* ---- HTTP -------------------------------------------------------------- */

/* Sends raw bytes and reads until the server closes: returns how many bytes
 * came (into out, NUL-terminated), or -1 when it was still open after
 * timeout_ms. */
static int exchange(const void *req, size_t len, char *out, size_t cap, int timeout_ms)
{
    int fd = h_tcp_connect(fx.node.port, 0);
    assert_true(fd >= 0);
    h_send_all(fd, req, len); /* may fail once the server gave up */
    size_t got = 0;
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (h_now_ms() > deadline) {
            close(fd);
            return -1;
        }
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap - 1)
            break;
    }
    out[got] = '\0';
    close(fd);
    return (int)got;
}

static int status_of(const char *resp)
{
    int st = 0;
    return sscanf(resp, "HTTP/1.%*d %d", &st) == 1 ? st : 0;
}

/* An answer that closes says so once: two "connection: close" lines came
 * from a refusal of a body that both its caller and the reply added. */
static void assert_closes_once(const char *resp)
{
    int n = h_header_count(resp, "connection");
    if (n != 1)
        fail_msg("%d Connection headers in: %.300s", n, resp);
}

/* GET path (raw, as is); the status, with the whole answer in out. */
static int get_raw(const char *path, char *out, size_t cap)
{
    char req[2048];
    int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    int got = exchange(req, (size_t)n, out, cap, 5000);
    if (got < 0)
        fail_msg("GET %s: no answer and not closed within 5 s", path);
    return status_of(out);
}

/* JSON error bodies name the problem: {"error":"<something>"}. */
static void assert_json_error(const char *resp, const char *what)
{
    const char *body = strstr(resp, "\r\n\r\n");
    json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(j, "error"));
    if (!e || !*e)
        fail_msg("%s: the answer has no {\"error\": reason}: %s", what, resp);
    json_decref(j);
}

static void test_unknown_paths_and_wrong_methods(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        int status;
        const char *allow;
    } cases[] = {
        {"GET", "/nope", 404, NULL},      {"GET", "/nope/", 404, NULL},
        {"GET", "/api", 404, NULL},       {"GET", "/api/nope", 404, NULL},
        {"GET", "/login/x", 404, NULL},   {"GET", "/healthz/x", 404, NULL},
        {"GET", "/ws/x", 404, NULL},      {"GET", "/index.html/", 404, NULL},
        {"GET", "/login", 405, "POST"},   {"PUT", "/login", 405, "POST"},
        {"PATCH", "/login", 405, "POST"}, {"OPTIONS", "/ws", 405, "GET"},
        {"POST", "/healthz", 405, "GET"}, {"POST", "/", 405, "GET"},
        {"DELETE", "/", 405, "GET"},      {"POST", "/nope", 405, "GET"},
        {"POST", "/ws", 405, "GET"},      {"POST", "/readyz", 405, "GET"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char req[256], resp[8192], what[64], allow[64];
        snprintf(what, sizeof what, "%s %s", cases[i].method, cases[i].path);
        int n = snprintf(req, sizeof req,
                         "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: "
                         "close\r\n\r\n{}",
                         cases[i].method, cases[i].path);
        assert_true(exchange(req, (size_t)n, resp, sizeof resp, 5000) > 0);
        if (status_of(resp) != cases[i].status)
            fail_msg("%s: %d, expected %d", what, status_of(resp), cases[i].status);
        assert_json_error(resp, what);
        if (cases[i].allow) {
            struct h_resp r = {.head = resp};
            const char *a = h_resp_header(&r, "allow", allow, sizeof allow);
            if (!a || !strstr(a, cases[i].allow))
                fail_msg("%s: Allow is %s, expected it to list %s", what, a ? a : "missing",
                         cases[i].allow);
        }
    }
    /* Methods and request lines HTTP does not know: refused, never served. */
    static const char *const weird[] = {"BREW / HTTP/1.1", "TRACE / HTTP/1.1",
                                        "GET ../secret.txt HTTP/1.1",
                                        "GET http://x/../secret.txt HTTP/1.1", "\x01\x02 garbage"};
    for (size_t i = 0; i < sizeof weird / sizeof *weird; i++) {
        char req[256], resp[8192];
        int n = snprintf(req, sizeof req, "%s\r\nHost: x\r\nConnection: close\r\n\r\n", weird[i]);
        assert_true(exchange(req, (size_t)n, resp, sizeof resp, 5000) >= 0);
        int st = status_of(resp);
        if (st < 400 || strstr(resp, "outside"))
            fail_msg("%s: status %d", weird[i], st);
    }
    /* CONNECT: nothing to tunnel to. lws would keep it as a raw socket with
     * no timeout at all; it is closed at once. */
    static const char tunnel[] = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    char resp[512];
    int64_t t0 = h_now_ms();
    int got = exchange(tunnel, sizeof tunnel - 1, resp, sizeof resp, 5000);
    if (got < 0 || h_now_ms() - t0 > 2000)
        fail_msg("CONNECT was held open for %lld ms", (long long)(h_now_ms() - t0));
    witness_check(&wit, &fx.node);
}

/* Nothing outside FRONTEND_DIR, however it is asked for: 404 (with the
 * JSON error) for every origin-form path; a NUL byte makes lws drop the
 * request. */
static void test_no_path_leaves_frontend_dir(void **state)
{
    (void)state;
    static const char *const evil[] = {
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%2fsecret.txt",
        "/..%2F..%2F..%2Fetc%2Fpasswd",
        "/%252e%252e%252fsecret.txt",
        "/%252e%252e/secret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/%2e%2e%5csecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/....//secret.txt",
        "//etc/passwd",
        "/%2fetc/passwd",
        "/escape.txt",
        "/linkdir/file.txt",
        "/linkdir/",
        "/linkdir/../secret.txt",
        "/./index.html/../../secret.txt",
    };
    char resp[8192];
    for (size_t i = 0; i < sizeof evil / sizeof *evil; i++) {
        int st = get_raw(evil[i], resp, sizeof resp);
        if (st != 404 || strstr(resp, "outside") || strstr(resp, "root:"))
            fail_msg("%s: status %d, expected 404:\n%s", evil[i], st, resp);
        assert_json_error(resp, evil[i]);
    }
    int got =
        exchange("GET /index.html%00.js HTTP/1.1\r\nHost: x\r\n\r\n", 43, resp, sizeof resp, 5000);
    assert_true(got >= 0);
    assert_true(got == 0 || status_of(resp) >= 400);
    /* What is inside is still served. */
    assert_int_equal(get_raw("/index.html", resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "<!doctype html>in"));
    witness_check(&wit, &fx.node);
}

/* Request heads past lws's 8 KiB (max_http_header_data), or with too many
 * copies of a header it keeps, are dropped at once without an answer (lws
 * has no 431); many headers it does not keep are fine. */
static void test_oversized_and_numerous_headers(void **state)
{
    (void)state;
    enum { CAP = 400000 };
    char *req = malloc(CAP), *resp = malloc(65536);
    const struct {
        const char *what;
        const char *line;
        int count;
        bool served;
    } cases[] = {
        {"a 9000-byte header", "X-Big: ", -9000, false},
        {"a 9000-byte cookie", "Cookie: ", -9000, false},
        {"100 Accept headers", "Accept: a\r\n", 100, false},
        {"5000 Accept headers", "Accept: a\r\n", 5000, false},
        {"300 unknown headers", "X-Filler: v\r\n", 300, true},
        {"10000 unknown headers (130 KB)", "X-Filler: v\r\n", 10000, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = (size_t)snprintf(req, CAP, "GET /index.html HTTP/1.1\r\nHost: x\r\n");
        if (cases[i].count < 0) {
            n += (size_t)snprintf(req + n, CAP - n, "%s", cases[i].line);
            memset(req + n, 'a', (size_t)-cases[i].count);
            n += (size_t)-cases[i].count;
            n += (size_t)snprintf(req + n, CAP - n, "\r\n");
        } else {
            for (int k = 0; k < cases[i].count; k++)
                n += (size_t)snprintf(req + n, CAP - n, "%s", cases[i].line);
        }
        n += (size_t)snprintf(req + n, CAP - n, "Connection: close\r\n\r\n");
        int64_t t0 = h_now_ms();
        int got = exchange(req, n, resp, 65536, 5000);
        int st = got > 0 ? status_of(resp) : 0;
        printf("%s: %d bytes, status %d after %lld ms\n", cases[i].what, got, st,
               (long long)(h_now_ms() - t0));
        if (got < 0)
            fail_msg("%s: neither answered nor closed within 5 s", cases[i].what);
        if (cases[i].served ? st != 200 : !(got == 0 || st == 431 || st == 400))
            fail_msg("%s: status %d", cases[i].what, st);
    }
    /* A request line (URL) past the limit. */
    size_t n = (size_t)snprintf(req, CAP, "GET /");
    memset(req + n, 'a', 9000);
    n += 9000;
    n += (size_t)snprintf(req + n, CAP - n, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    int got = exchange(req, n, resp, 65536, 5000);
    assert_true(got == 0 || status_of(resp) == 414 || status_of(resp) == 431);
    free(req);
    free(resp);
    witness_check(&wit, &fx.node);
}

static int post_login(const char *headers, const void *body, size_t len, char *resp, size_t cap,
                      int timeout_ms)
{
    size_t hl = strlen(headers);
    char *req = malloc(256 + hl + len);
    int n = snprintf(req, 256 + hl,
                     "POST /login HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", headers);
    memcpy(req + n, body, len);
    int got = exchange(req, (size_t)n + len, resp, cap, timeout_ms);
    free(req);
    return got;
}

/* Bodies of /login: too big in every way it can be announced (413), and
 * every kind of bad JSON (400), each with the reason in {"error"}. */
static void test_login_bodies(void **state)
{
    (void)state;
    char resp[8192];
    enum { MB = 1 << 20 };
    char *big = malloc(MB);
    memset(big, 'a', MB);
    assert_true(post_login("Content-Length: 1048576\r\n", big, MB, resp, sizeof resp, 5000) > 0);
    assert_int_equal(status_of(resp), 413);
    assert_json_error(resp, "1 MiB body");
    assert_closes_once(resp);
    assert_true(post_login("Content-Length: 99999999999\r\n", big, 100, resp, sizeof resp, 5000) >
                0);
    assert_int_equal(status_of(resp), 413);
    assert_json_error(resp, "Content-Length 99999999999");
    char chunked[9000];
    int cn = snprintf(chunked, sizeof chunked, "2000\r\n");
    memset(chunked + cn, 'a', 8192);
    cn += 8192;
    cn += snprintf(chunked + cn, sizeof chunked - (size_t)cn, "\r\n0\r\n\r\n");
    assert_true(post_login("Transfer-Encoding: chunked\r\n", chunked, (size_t)cn, resp, sizeof resp,
                           5000) > 0);
    assert_int_equal(status_of(resp), 411); /* lws 4.1 cannot decode chunked bodies */
    assert_json_error(resp, "8 KiB chunked body");
    assert_closes_once(resp);
    free(big);

    char deep[4001];
    memset(deep, '[', 4000);
    deep[4000] = '\0';
    const char *const bad[] = {
        "",
        "{",
        "null",
        "[]",
        "\"alice\"",
        "{\"username\":\"\xc3(\"}",
        "{\"username\":\"a\0\"}",
        "{\"username\":\"\\ud800ab\"}",
        "{\"username\":[\"alice\"]}",
        "{\"username\":null}",
        "{\"user\":\"alice\"}",
        deep,
    };
    static const size_t len_nul = 17; /* the raw NUL one */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t len = i == 6 ? len_nul : strlen(bad[i]);
        char hdr[64];
        snprintf(hdr, sizeof hdr, "Content-Length: %zu\r\n", len);
        assert_true(post_login(hdr, bad[i], len, resp, sizeof resp, 5000) > 0);
        if (status_of(resp) != 400)
            fail_msg("login body #%zu: status %d, expected 400", i, status_of(resp));
        assert_json_error(resp, "bad login body");
    }
    witness_check(&wit, &fx.node);
}

/* A Content-Length that is not a number is a bad request (400), not "body
 * larger than 4096 bytes" (413); a POST with neither Content-Length nor
 * chunked encoding has an empty body (RFC 9112 6.3) and is answered at
 * once, not after the 10 s idle timeout. */
static void test_login_framing_errors_are_400(void **state)
{
    (void)state;
    char resp[8192];
    int wrong = 0;
    static const char *const lengths[] = {"Content-Length: -1\r\n", "Content-Length: abc\r\n",
                                          "Content-Length: 1x\r\n"};
    for (size_t i = 0; i < 3; i++) {
        assert_true(post_login(lengths[i], "{}", 2, resp, sizeof resp, 5000) > 0);
        if (status_of(resp) != 400) {
            printf("BUG: %.*s: status %d (expected 400): %s\n", (int)strlen(lengths[i]) - 2,
                   lengths[i], status_of(resp), strstr(resp, "{\"error"));
            wrong++;
        } else {
            assert_closes_once(resp); /* its body is not read */
        }
    }
    int64_t t0 = h_now_ms();
    int got = post_login("", "", 0, resp, sizeof resp, 3000);
    if (got <= 0 || (status_of(resp) != 400 && status_of(resp) != 411)) {
        printf("BUG: POST /login without Content-Length: %s after %lld ms (expected 400 or 411 at "
               "once)\n",
               got < 0    ? "no answer"
               : got == 0 ? "closed without an answer"
                          : "wrong status",
               (long long)(h_now_ms() - t0));
        wrong++;
    }
    /* A body shorter than announced waits for the rest, but not forever. */
    got =
        post_login("Content-Length: 50\r\n", "{\"username\":\"a\"}", 16, resp, sizeof resp, 15000);
    assert_true(got >= 0);
    assert_true(got == 0 || status_of(resp) >= 400);
    witness_check(&wit, &fx.node);
    if (wrong)
        fail_msg("%d badly framed /login requests got the wrong answer (see above)", wrong);
}

/* ---- broker wire ------------------------------------------------------- */

static int link_to(int shard)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n =
        snprintf(sa.sun_path, sizeof sa.sun_path, "%.90s/broker-%d.sock", fx.node.run_dir, shard);
    assert_true(n > 0 && (size_t)n < sizeof sa.sun_path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Sends a msgpack payload with its 4-byte length prefix. */
static void send_framed(int fd, const void *mp, size_t len)
{
    unsigned char hdr[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                            (unsigned char)(len >> 8), (unsigned char)len};
    assert_int_equal(send(fd, hdr, 4, MSG_NOSIGNAL), 4);
    assert_int_equal(send(fd, mp, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void send_hello(int fd, uint32_t shard)
{
    struct cf_wire_msg m = {.type = CF_WIRE_HELLO, .shard = shard, .shards = 2, .node = {"bad", 3}};
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 16);
    assert_int_equal(cf_wire_encode(&out, &m), 0);
    assert_int_equal(send(fd, cf_bytes_data(&out), cf_bytes_len(&out), MSG_NOSIGNAL),
                     (ssize_t)cf_bytes_len(&out));
    cf_bytes_free(&out);
}

/* After a good hello, frames whose fields have the wrong msgpack types or
 * an unknown version: the broker closes that link and logs why; the real
 * gateway's links keep working (test_broker_wire covers framing errors). */
static void test_broker_link_wrong_types(void **state)
{
    (void)state;
    static const struct {
        const char *b;
        size_t n;
    } bad[] = {
        MP("\x83\xa1v\x01\xa1t\xa4join\xa4room\x05"),      /* room: int */
        MP("\x83\xa1v\x01\xa1t\xa4join\xa4room\xc4\x01x"), /* room: bin */
        MP("\x82\xa1v\x01\xa1t\x07"),                      /* t: int */
        MP("\x82\xa1v\xa1\x31\xa1t\xa4join"),              /* v: "1" */
        MP("\x83\xa1v\x02\xa1t\xa4join\xa4room\xa1x"),     /* v: 2 */
        MP("\x83\xa1v\xcf\xff\xff\xff\xff\xff\xff\xff\xff\xa1t\xa4join\xa4room\xa1x"),
        MP("\x83\xa1v\x01\xa1t\xa5nope!\xa4room\xa1x"), /* unknown t */
        MP("\x86\xa1v\x01\xa1t\xa3msg\xa4room\xa1x\xa4"
           "from\x07\xa4text\xa1y\xa2ts\xa3now"),
        MP("\x83\xa1v\x01\xa1t\xa4join\xa4room\x91\xa1x"), /* room: array */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int shard = (int)(i % 2);
        long mark = h_log_mark(&fx.node.broker[shard]);
        int fd = link_to(shard);
        send_hello(fd, (uint32_t)shard);
        send_framed(fd, bad[i].b, bad[i].n);
        if (!peer_closes(fd, 5000))
            fail_msg("frame #%zu did not close the link", i);
        close(fd);
        if (!h_log_contains_from(&fx.node.broker[shard], mark, "closing link", 2000))
            fail_msg("frame #%zu: the broker did not log why it closed the link", i);
    }
    witness_check(&wit, &fx.node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_paths_and_wrong_methods),
        cmocka_unit_test(test_no_path_leaves_frontend_dir),
        cmocka_unit_test(test_oversized_and_numerous_headers),
        cmocka_unit_test(test_login_bodies),
        cmocka_unit_test(test_broker_link_wrong_types),
        cmocka_unit_test(test_login_framing_errors_are_400),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
