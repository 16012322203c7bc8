/* The WebSocket upgrade accepts exactly the tokens this gateway issued and
 * that are still valid; everything else gets HTTP 401 without upgrading. */
#include "common.h"

#include <jwt.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "prom.h"

static struct h_fixture fx;

/* A throwaway RSA key, only for making RS256 tokens the gateway must refuse. */
static const char rsa_key[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDjkQ9e3sMkx25S\n"
                              "T8nkcSkGw6CDYiR2lDo16cZ4aL2XUF7e75vDl4zWWHf8hMM4BpNjtreJozLSRa0C\n"
                              "EjLKh3ickslHTaqnpcKsdxrUycdN7Zn94I+uN9p2hY8I9F3behzcW9wR4BEEgOpS\n"
                              "bJ9seO0EjxzBjIGclzYRxdPmgJIvTIuGhFL3quL2RwbjCl1nH8kUgrJrH5wDi4mN\n"
                              "osgIjq7U6AaDjmMtLevkJaTdJ61yFsax/N1BFT1AOnUDo/x1rK18BFsqUdqIh4yo\n"
                              "OrnmOByVJKtWCXG0OYlv0Pw4r/zOvrbv/7gYlcePAn0UqT5fVg67rf2G/LuxAfgA\n"
                              "ma5gcn/nAgMBAAECggEASu2H1JJfSXxawEJiNNPnkMEX2DqXy+1ZT0gWX64JAsnl\n"
                              "Ot1E+b0sE6VUeHIUPx23KOVQAEMaaC6l3OE2FQZO+arBGDej4YhMFXIwBPEdLPT3\n"
                              "N6bZWCEuzsiCBI5FWw8Vcp7SUpZmtAdoX9RBF7unOtGOQ9IqGO+Wz3pGH4ak22pn\n"
                              "L+siBImrirHAU/Kg7LRpnOla34wmR6KSmX5Dz2t2dTcv4uTnazx4hSIcvDv+5q6o\n"
                              "k9FIdgvWV/tSF6k0EH/UuPKSU0nzGY0eYOArXpD9j/EHXkBsC42qa8uYXGM/8JDX\n"
                              "/raJnLGwNOp0+iIeLUw7P4fDEro1nigLgQTT0y9p/QKBgQD0Hp+ALJnL1b7Z4qri\n"
                              "F89+gvix+0j0A+f6MQt+VXNf3PSnEhLqBownWVkw2wgisJdbrD6lJoKeJKtx11Cx\n"
                              "25A+Fa4PEAMg2bEZYYk02J3z7HftDB0wW+pBzzoqxQE9K8OKMQ6R4gbQFUkOfmB0\n"
                              "XiwYVzI8szrE5v8HD9OibOdkQwKBgQDupDX4uy9djquyAKoFx0x3qI+WC3Kr3mMG\n"
                              "W/5TfCalSVPmeXmYVrwDV1sywo4S+my/XIoLn37erN/qboPgWUDxZHud+0HOn0++\n"
                              "xUczXPQ1WpNBqeJzzSiHBvRcfP6Io48ht8muUnhYCFdl3Dm06XYe5dtELod0S96D\n"
                              "C/MHlFWtjQKBgB30rAnkbzLuFa9S+zknRtT1aWMdvMQEvrCa2Bg2kCPRT0w5EY0a\n"
                              "JJSniCRQnFz1Yn1jU4Schya0xT0A+Ov6T2bu7h73Dgs361179IRBmJBYEhdKh0Jp\n"
                              "5QMSVMbuycoh1qrcfjc0jzV1hzN6GoftDmgmOwnrzGhhGCZbsNKbnoFVAoGAVSuq\n"
                              "T5GPABcRVEBEbjeJJRO121lOneSK9xQSGv2uVUNsfE9ShHpAM/kThXRGfKN/+HQw\n"
                              "mKFeCF8us16qFoIEWaMBM4sfG31kWrPSC5TbW8dt0vus5KOOGVL0F6ZMubuWM/SC\n"
                              "OIMajGC9wI7u0ZCZJcHnldf9ZBZH3gF/xW69fWkCgYEA2pPGJwvKO1T0+s6FtX/B\n"
                              "IMV/yz575+LTfMrqwKzhJT9M06/63dr7JrJHO8ao1OoJ4VOlTJi3ZnJhP4pNtLXc\n"
                              "i1RzWyEkFqibNwq7A2gl6Ukd0mff4pae9reR7j2tUvggsmg3p3cV5/9BCh5qbRww\n"
                              "FkI9DMxEqudRgEKFlszCSME=\n"
                              "-----END PRIVATE KEY-----\n";

static int setup(void **state)
{
    *state = &fx;
    return h_fixture_up(&fx, NULL);
}

/* A token with the given algorithm, key and claims (exp/nbf relative to now;
 * INT32_MIN leaves the claim out). */
static char *make_token(jwt_alg_t alg, const char *key, const char *sub, int exp_in, int nbf_in)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    long now = (long)time(NULL);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
    if (sub)
        jwt_add_grant(jwt, "sub", sub);
    jwt_add_grant_int(jwt, "iat", now);
    if (exp_in != INT32_MIN)
        jwt_add_grant_int(jwt, "exp", now + exp_in);
    if (nbf_in != INT32_MIN)
        jwt_add_grant_int(jwt, "nbf", now + nbf_in);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(t);
    return t;
}

static void b64url(const char *in, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(in), j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[j++] = tbl[(v >> 18) & 63];
        out[j++] = tbl[(v >> 12) & 63];
        if (i + 1 < n)
            out[j++] = tbl[(v >> 6) & 63];
        if (i + 2 < n)
            out[j++] = tbl[v & 63];
    }
    out[j] = '\0';
}

/* Connects to endpoint?token=<token>; returns the HTTP status. */
static int upgrade_status(const char *endpoint, const char *token)
{
    char path[8192];
    snprintf(path, sizeof path, "%s?token=%s", endpoint, token ? token : "");
    int status = 0;
    struct wsc *c = wsc_connect(fx.node.port, path, NULL, 0, &status);
    if (c) {
        /* Upgraded: prove the session is live by talking in it. */
        wsc_close(c);
    }
    return status;
}

/* A plain GET of endpoint?token=<token> (no upgrade): its status, and
 * whether it carried `Upgrade: websocket` or a Bearer challenge. */
static int check_status(const char *token, const char *headers, bool *upgrade, bool *challenge)
{
    char path[8192], v[128];
    snprintf(path, sizeof path, "/ws%s%s", token ? "?token=" : "", token ? token : "");
    struct h_resp r;
    assert_int_equal(h_http(fx.node.port, "GET", path, headers, NULL, 0, &r), 0);
    *upgrade = h_resp_header(&r, "upgrade", v, sizeof v) && !strcasecmp(v, "websocket");
    *challenge = h_resp_header(&r, "www-authenticate", v, sizeof v) && !strncmp(v, "Bearer", 6);
    int status = r.status;
    h_resp_free(&r);
    return status;
}

/* Refused as an upgrade, and as a plain GET (the check a browser client
 * makes before logging in again, since it cannot see an upgrade's status). */
static void expect_refused(const char *token, const char *why)
{
    int status = upgrade_status("/ws", token);
    if (status != 401)
        fail_msg("%s: expected 401, got %d", why, status);
    if (!token)
        return;
    bool upgrade, challenge;
    status = check_status(token, NULL, &upgrade, &challenge);
    if (status != 401 || upgrade || !challenge)
        fail_msg("%s: the plain GET got %d (upgrade %d, challenge %d), expected a 401 with a "
                 "Bearer challenge",
                 why, status, upgrade, challenge);
}

/* A token the upgrade takes: a plain GET with it says 426 Upgrade Required. */
static void expect_checked_ok(const char *token, const char *headers)
{
    bool upgrade, challenge;
    int status = check_status(token, headers, &upgrade, &challenge);
    assert_int_equal(status, 426);
    assert_true(upgrade);
    assert_false(challenge);
}

static void test_valid_tokens_upgrade(void **state)
{
    (void)state;
    char *t = h_login(fx.node.port, "alice");
    assert_non_null(t);
    expect_checked_ok(t, NULL);
    assert_int_equal(upgrade_status("/ws", t), 101);

    /* The same token in an Authorization header. */
    char hdr[4200];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", t);
    expect_checked_ok(NULL, hdr);
    int status = 0;
    struct wsc *c = wsc_connect(fx.node.port, "/ws", hdr, 0, &status);
    assert_int_equal(status, 101);
    assert_non_null(c);
    wsc_close(c);

    /* A token made elsewhere with the right key and claims is fine too. */
    char *own = make_token(JWT_ALG_HS256, H_JWT_SECRET, "bob", 60, 0);
    expect_checked_ok(own, NULL);
    assert_int_equal(upgrade_status("/ws", own), 101);
    free(own);
    free(t);
}

/* A plain GET of /ws?<query>: 426, as for a good token. */
static void expect_checked_ok_path(const char *query)
{
    char path[8192];
    snprintf(path, sizeof path, "/ws?%s", query);
    struct h_resp r;
    assert_int_equal(h_http(fx.node.port, "GET", path, NULL, NULL, 0, &r), 0);
    if (r.status != 426)
        fail_msg("GET /ws?<%zu bytes>: %d %s", strlen(query), r.status, r.body);
    h_resp_free(&r);
}

static void test_bad_tokens_get_401(void **state)
{
    (void)state;
    expect_refused(NULL, "no token");
    expect_refused("garbage", "garbage");
    expect_refused("a.b.c", "three junk segments");

    char *t = make_token(JWT_ALG_HS256, H_JWT_SECRET, "alice", -3600, -7200);
    expect_refused(t, "expired");
    free(t);
    t = make_token(JWT_ALG_HS256, H_JWT_SECRET, "alice", INT32_MIN, INT32_MIN);
    expect_refused(t, "no exp");
    free(t);
    t = make_token(JWT_ALG_HS256, H_JWT_SECRET, "alice", 7200, 3600);
    expect_refused(t, "not yet valid");
    free(t);
    t = make_token(JWT_ALG_HS256, "another-secret-of-sufficient-length-xyz", "alice", 60, 0);
    expect_refused(t, "signed with another key");
    free(t);
    t = make_token(JWT_ALG_HS384, H_JWT_SECRET, "alice", 60, 0);
    expect_refused(t, "HS384");
    free(t);
    t = make_token(JWT_ALG_RS256, rsa_key, "alice", 60, 0);
    expect_refused(t, "RS256");
    free(t);
    t = make_token(JWT_ALG_HS256, H_JWT_SECRET, "evil\x01name", 60, 0);
    expect_refused(t, "control character in sub");
    free(t);
    t = make_token(JWT_ALG_HS256, H_JWT_SECRET, NULL, 60, 0);
    expect_refused(t, "no sub");
    free(t);

    /* Tampered: a valid token whose payload names someone else. */
    t = h_login(fx.node.port, "alice");
    char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
    char payload[256], forged[2048];
    snprintf(payload, sizeof payload, "{\"sub\":\"admin\",\"exp\":%ld}", (long)time(NULL) + 600);
    char p64[400];
    b64url(payload, p64);
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(dot1 - t), t, p64, dot2);
    expect_refused(forged, "tampered payload");
    free(t);

    /* alg "none" with no signature. */
    char h64[100], none[1024];
    b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}", h64);
    snprintf(none, sizeof none, "%s.%s.", h64, p64);
    expect_refused(none, "alg none");

    /* A token too long to be one is malformed, not missing; as a plain GET
     * too (it was taken for no token: "this endpoint takes a WebSocket
     * upgrade"). */
    static char long_token[5001];
    memset(long_token, 'a', sizeof long_token - 1);
    expect_refused(long_token, "a token of 5000 bytes");
    struct h_resp r;
    char path[6000];
    snprintf(path, sizeof path, "/ws?token=%s", long_token);
    assert_int_equal(h_http(fx.node.port, "GET", path, NULL, NULL, 0, &r), 0);
    if (!strstr(r.body, "malformed"))
        fail_msg("a token of 5000 bytes: %s", r.body);
    h_resp_free(&r);
    /* A long argument before the token does not hide it. */
    t = h_login(fx.node.port, "alice");
    char padded[7000];
    snprintf(padded, sizeof padded, "%.4500s&token=%s", long_token, t);
    expect_checked_ok_path(padded);
    free(t);

    /* Authorization header with the wrong scheme. */
    int status = 0;
    struct wsc *c =
        wsc_connect(fx.node.port, "/ws", "Authorization: Basic YWxpY2U6eA==\r\n", 0, &status);
    assert_null(c);
    assert_int_equal(status, 401);
}

static void test_refusal_is_a_real_http_answer(void **state)
{
    (void)state;
    const char req[] = "GET /ws?token=nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n";
    struct h_resp r;
    assert_int_equal(h_http_raw(fx.node.port, req, sizeof req - 1, &r), 0);
    assert_int_equal(r.status, 401);
    char v[128];
    assert_non_null(h_resp_header(&r, "www-authenticate", v, sizeof v));
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "malformed"));
    json_decref(j);
    assert_null(h_resp_header(&r, "sec-websocket-accept", v, sizeof v));
    h_resp_free(&r);

    /* Upgrades elsewhere than /ws are not found, even with a good token. */
    char *t = h_login(fx.node.port, "alice");
    assert_int_equal(upgrade_status("/chat", t), 404);
    free(t);
}

/* ---- upgrades answered by the gateway itself (gateway/front.h) ---------- */

static double direct_upgrades(void)
{
    struct h_resp r;
    assert_int_equal(h_http(fx.node.port, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    int n = 0;
    double v = prom_sum(r.body, "confab_gateway_direct_upgrades_total", NULL, &n);
    h_resp_free(&r);
    assert_int_equal(n, 1);
    return v;
}

/* Sends req on a new connection, in two pieces `pause_ms` apart when
 * split_at > 0 (after `delay_ms` first); returns the response head. */
static void upgrade_raw(const char *req, size_t split_at, int delay_ms, int pause_ms, char *out,
                        size_t cap, int *fd_out)
{
    int fd = h_tcp_connect(fx.node.port, 0);
    assert_true(fd >= 0);
    h_sleep_ms(delay_ms);
    size_t len = strlen(req);
    if (split_at) {
        assert_int_equal(h_send_all(fd, req, split_at), 0);
        h_sleep_ms(pause_ms);
    }
    assert_int_equal(h_send_all(fd, req + split_at, len - split_at), 0);
    size_t got = 0;
    int64_t deadline = h_now_ms() + 5000;
    while (got < 4 || memcmp(out + got - 4, "\r\n\r\n", 4) != 0) {
        assert_true(got < cap - 1 && h_now_ms() < deadline);
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        assert_int_equal(recv(fd, out + got, 1, 0), 1); /* byte by byte: no frame consumed */
        got++;
    }
    out[got] = '\0';
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
}

/* A masked ping is answered with its pong: the session is live. */
static void expect_pong(int fd)
{
    const unsigned char ping[] = {0x89, 0x82, 0, 0, 0, 0, 'h', 'i'};
    assert_int_equal(h_send_all(fd, ping, sizeof ping), 0);
    unsigned char pong[4];
    size_t got = 0;
    int64_t deadline = h_now_ms() + 5000;
    while (got < sizeof pong && h_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, pong + got, sizeof pong - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(got, sizeof pong);
    assert_memory_equal(pong, "\x8a\x02hi", 4);
}

/* The usual upgrade is answered without lws, with the very response lws
 * gives (the same request in pieces goes to lws); a client that connects
 * before sending its request is answered directly too, and either way the
 * session works. */
static void test_direct_upgrades_answer_as_lws_does(void **state)
{
    (void)state;
    char *t = h_login(fx.node.port, "direct");
    assert_non_null(t);
    static const char *const protos[] = {NULL, "confab.v1", "confab.msgpack.v1, confab.v1",
                                         "confab"};
    for (size_t i = 0; i < sizeof protos / sizeof *protos; i++) {
        char req[4096], proto[96] = "", direct[1024], via_lws[1024];
        if (protos[i])
            snprintf(proto, sizeof proto, "Sec-WebSocket-Protocol: %s\r\n", protos[i]);
        snprintf(req, sizeof req,
                 "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n%sUser-Agent: test\r\n\r\n",
                 t, proto);
        double before = direct_upgrades();
        int fd;
        upgrade_raw(req, 0, 0, 0, direct, sizeof direct, &fd);
        expect_pong(fd);
        close(fd);
        assert_true(direct_upgrades() == before + 1);
        upgrade_raw(req, 20, 0, 300, via_lws, sizeof via_lws, &fd);
        expect_pong(fd);
        close(fd);
        assert_true(direct_upgrades() == before + 1);
        assert_string_equal(direct, via_lws);
        assert_non_null(strstr(direct, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        /* connected first, request 300 ms later: it waited, then went
         * direct, its wait's epoll entry handed to the session. Idle
         * connections take the holes lws' closed connections left under
         * its descriptor table first: a socket there is moved above it
         * (a new entry), which would leave the hand-over untested. */
        int idle[16];
        for (int k = 0; k < 16; k++)
            assert_true((idle[k] = h_tcp_connect(fx.node.port, 0)) >= 0);
        upgrade_raw(req, 0, 300, 0, via_lws, sizeof via_lws, &fd);
        expect_pong(fd);
        close(fd);
        for (int k = 0; k < 16; k++)
            close(idle[k]);
        /* and, most likely, in one of those holes now */
        upgrade_raw(req, 0, 300, 0, via_lws, sizeof via_lws, &fd);
        expect_pong(fd);
        close(fd);
        assert_true(direct_upgrades() == before + 3);
        assert_string_equal(direct, via_lws);
    }
    /* A request that waited and is not the gateway's own goes to lws whole:
     * a bad token gets its 401, any other request its answer. */
    char out[1024];
    upgrade_raw("GET /ws?token=x.y.z HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n",
                0, 300, 0, out, sizeof out, NULL);
    int status = 0;
    assert_int_equal(sscanf(out, "HTTP/1.%*d %d", &status), 1);
    assert_int_equal(status, 401);
    upgrade_raw("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0, 300, 0, out, sizeof out,
                NULL);
    assert_int_equal(sscanf(out, "HTTP/1.%*d %d", &status), 1);
    assert_int_equal(status, 200);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_tokens_upgrade),
        cmocka_unit_test(test_bad_tokens_get_401),
        cmocka_unit_test(test_refusal_is_a_real_http_answer),
        cmocka_unit_test(test_direct_upgrades_answer_as_lws_does),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, fixture_down));
}
