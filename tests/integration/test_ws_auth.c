/* The WebSocket upgrade accepts exactly the tokens this gateway issued and
 * that are still valid; everything else gets HTTP 401 without upgrading. */
#include "common.h"

#include <jwt.h>
#include <time.h>

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
    (void)state;
    return h_fixture_up(&fx, NULL);
}

static int teardown(void **state)
{
    (void)state;
    return h_fixture_down(&fx);
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

static void expect_refused(const char *token, const char *why)
{
    int status = upgrade_status("/ws", token);
    if (status != 401)
        fail_msg("%s: expected 401, got %d", why, status);
}

static void test_valid_tokens_upgrade(void **state)
{
    (void)state;
    char *t = h_login(fx.node.port, "alice");
    assert_non_null(t);
    assert_int_equal(upgrade_status("/ws", t), 101);

    /* The same token in an Authorization header. */
    char hdr[4200];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", t);
    int status = 0;
    struct wsc *c = wsc_connect(fx.node.port, "/ws", hdr, 0, &status);
    assert_int_equal(status, 101);
    assert_non_null(c);
    wsc_close(c);

    /* A token made elsewhere with the right key and claims is fine too. */
    char *own = make_token(JWT_ALG_HS256, H_JWT_SECRET, "bob", 60, 0);
    assert_int_equal(upgrade_status("/ws", own), 101);
    free(own);
    free(t);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_tokens_upgrade),
        cmocka_unit_test(test_bad_tokens_get_401),
        cmocka_unit_test(test_refusal_is_a_real_http_answer),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
