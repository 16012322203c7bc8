/* Unit tests for gateway/auth: the forms a token can take. Headers and
 * segments put together by hand, "alg": "none", algorithms other than
 * HS256, and RS256 tokens held to the HS rules. Issuing and verifying, the
 * time claims, tampering and the subject are test_auth.c's. */
#include "auth_tokens.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdlib.h>

/* A throwaway 2048-bit RSA key pair made with `openssl genrsa 2048` for these
 * tests only. */
static const char rsa_private_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDFT9YVp0T3mIAr\n"
    "iawul3JnBW/rvN3LJD4EoBBgYvWAgiMJJ3HYentlWtKBGbywX6zHxjwESiVWDt7+\n"
    "KzKTdl//pUnFAcaWz5yw+vur+rvLXwEGFtWE4Rcorsr29oRryiity4zJ3Aj8WsaL\n"
    "PKH5FWd+cGhI2S2AhOSrdhDFya/OT9KuzBq9aHH4FfgN6HcB34XGj84SbkprPIPH\n"
    "lkxYwMG64lG/fwHXvshnQqHnEgNj9r+IEqmhprqpgE+yMuwFAThE/HJWtgFyWJTY\n"
    "f1fbTK9Lr/fYXCJ3bYDksYE4JSdlpdPu4B+5dUOLrhcZu2OjCOhCim/LCGJLyepV\n"
    "8WLhvgtbAgMBAAECggEACtiBZndNumTOxskU7Qq0f/OaKO8cxSNpqH9tgJ7WUW+i\n"
    "oi77RwouHKG9aHNHUYdj/ycz+iUvoDQsQo34hCD01FL7/X3d5XRMCXGb9XwdNOfO\n"
    "YQAbhIGK8Fi+hCZQz38xQgkqSzFytpkwYku9UeyNrJmPlR5UlF5TSeMXhCFUYWOE\n"
    "NVWq/OgR+zaqPqtZPVN62xTOxXGxjKTUnzj/f1FnB2Fzh3NCT1kKu74X9/hwluo0\n"
    "0A8RLU3XO1ocMTptmqSse8AuSFh0yH7U+uZkhNk9+aXtaP1tMPxkznk2B1xLzIRF\n"
    "5e44vkQYaJS+19gulkntLxMdzNQT/f1ZL774iCWEgQKBgQD7RMllc8ZlhCfRTdhU\n"
    "VeO2j3dLb02Jl5f25MTQIEAhLYSg0b9xYu7gBIhyJyr5IusJqn2hS6GvN2hz+Jc1\n"
    "Ot5It3YCyerOzp49p1D/1S9Gupiy8DGniXsxrpfbWhPQxRa4KQrfGeLy2M0Ey9qt\n"
    "uEF7JyIju1n2hWHmY0ymVQ018QKBgQDJBvTe1VNyJz/MqQnx9ZyDphfA170qO5/p\n"
    "jKF68pGSkWzViJUy6/YFRF3wGbKyhaMCn7ygcWDDnW6WpCjmshjg2uizR2lVens+\n"
    "rhIEOPwtaCpEeOCldACQujE0lGTph3uM+iCeDTv+9K/+QDBp2G++Gvz1BrxnpgUK\n"
    "H6iGmpZaCwKBgDFnpwnRp9LSF1oqKjz63llJADXO3roNGo4rER+zF6juYEOWukO7\n"
    "JijZ+1ImrWZrHTe7VBRg4JupE1qqKGEJACfgGs4VkZu0OJz6xwxmiHMpwVh9reW5\n"
    "PIXaRHWW0oqcFgmD2GVhm6QQSM+GnarGrelfGnFYJyo3s7YvFCUoV/6hAoGAdkTm\n"
    "edct4eIfkev9kuG6dGWaYfVLMHalzUTUmD3v0ThHvJU/mhbixhSD48dqr8cZsWiD\n"
    "FC3ADTYpIu1vttIe+uMvtpIT8Zs+uRC2Ps+75Yb8Hw6ytAS8dGlmm5WWjSINWVKr\n"
    "L/F/U69nf4EKOquAimrcWdfdrmkpW9xmTNLUFCMCgYA30JeX0JS6HGN3XUejo1Po\n"
    "Q8qNNr2a6oYEZQ9iEMFE6Yx4EY8SJO2zIOZl29TA1FkOMQT3cBmgRr8CUdO9+2Ao\n"
    "OmruBE7tz47Z9lJ7aDoJ9L7Two35C8kBKq0i3Gcsci7XGGml5xH3BhIPr2fVnpVF\n"
    "YgKUO9F9NuFwFzajEivcNw==\n"
    "-----END PRIVATE KEY-----\n"
    ;

static const char rsa_public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxU/WFadE95iAK4msLpdy\n"
    "ZwVv67zdyyQ+BKAQYGL1gIIjCSdx2Hp7ZVrSgRm8sF+sx8Y8BEolVg7e/isyk3Zf\n"
    "/6VJxQHGls+csPr7q/q7y18BBhbVhOEXKK7K9vaEa8oorcuMydwI/FrGizyh+RVn\n"
    "fnBoSNktgITkq3YQxcmvzk/SrswavWhx+BX4Deh3Ad+Fxo/OEm5KazyDx5ZMWMDB\n"
    "uuJRv38B177IZ0Kh5xIDY/a/iBKpoaa6qYBPsjLsBQE4RPxyVrYBcliU2H9X20yv\n"
    "S6/32Fwid22A5LGBOCUnZaXT7uAfuXVDi64XGbtjowjoQopvywhiS8nqVfFi4b4L\n"
    "WwIDAQAB\n"
    "-----END PUBLIC KEY-----\n"
    ;

static void test_alg_none(void **state)
{
    (void)state;
    char token[TOKEN_BUF];
    static const char payload[] =
        "{\"sub\":\"alice\",\"iat\":1795860000,\"nbf\":1795860000,\"exp\":1795863600}";
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"none\"}",
        "{\"alg\":\"None\",\"typ\":\"JWT\"}",
        "{\"alg\":\"NONE\",\"typ\":\"JWT\"}",
        "{\"typ\":\"JWT\"}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        make_token(token, headers[i], payload, "");
        enum auth_result r = verify(token);
        if (r != AUTH_BAD_ALG && r != AUTH_MALFORMED)
            fail_msg("header %s: %s", headers[i], auth_result_str(r));
        /* With a signature that is not there, or a bogus one. */
        make_token(token, headers[i], payload, "c2lnbmF0dXJl");
        r = verify(token);
        if (r != AUTH_BAD_ALG && r != AUTH_MALFORMED)
            fail_msg("header %s with a signature: %s", headers[i], auth_result_str(r));
    }
    make_token(token, "{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, "");
    assert_int_equal(verify(token), AUTH_BAD_ALG);
}

/* header.payload signed with HMAC-SHA256 and SECRET. */
static void sign_hs256(char *out, const char *header_json, const char *payload_json)
{
    make_token(out, header_json, payload_json, "");
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    size_t n = strlen(out) - 1; /* without the final '.' */
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)out, n, mac, &mlen);
    b64url(mac, mlen, out + n + 1);
}

/* HS tokens are verified without libjwt (hsjwt.c): the same headers and
 * payloads are accepted or refused as libjwt does, with the same reason. */
static void test_hs_header_forms(void **state)
{
    (void)state;
    char token[TOKEN_BUF], user[130];
    static const char payload[] =
        "{\"sub\":\"alice\",\"iat\":1795860000,\"nbf\":1795860000,\"exp\":1795863600}";
    static const struct {
        const char *header;
        enum auth_result want;
    } cases[] = {
        {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}", AUTH_OK},
        {"{\"alg\":\"HS256\"}", AUTH_OK},
        {"{\"typ\":\"jwt\",\"alg\":\"HS256\",\"kid\":\"k1\"}", AUTH_OK},
        {"{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", AUTH_MALFORMED},
        {"{\"alg\":\"HS256\",\"typ\":7}", AUTH_MALFORMED},
        {"{\"alg\":\"HS384\",\"typ\":\"JWT\"}", AUTH_BAD_ALG},
        {"{\"alg\":\"hs256\",\"typ\":\"JWT\"}", AUTH_BAD_ALG},
        {"{\"alg\":256}", AUTH_MALFORMED},
        {"[\"HS256\"]", AUTH_MALFORMED},
        {"{\"alg\":\"HS256\",\"alg\":\"none\"}", AUTH_MALFORMED},
        {"{\"alg\":\"HS256\",\"crit\":[\"exp2\"],\"exp2\":1}", AUTH_MALFORMED},
        {"not json", AUTH_MALFORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sign_hs256(token, cases[i].header, payload);
        enum auth_result r = auth_verify(g_auth, token, strlen(token), NOW, user, sizeof user);
        if (r != cases[i].want)
            fail_msg("header %s: %s, want %s", cases[i].header, auth_result_str(r),
                     auth_result_str(cases[i].want));
        if (r == AUTH_OK) {
            assert_string_equal(user, "alice");
            /* libjwt agrees that it is valid */
            jwt_t *jwt = NULL;
            assert_int_equal(jwt_decode(&jwt, token, (const unsigned char *)SECRET,
                                        (int)strlen(SECRET)),
                             0);
            jwt_free(jwt);
        }
    }
    /* Payloads: duplicate keys, not an object. */
    sign_hs256(token, "{\"alg\":\"HS256\"}",
               "{\"sub\":\"alice\",\"sub\":\"mallory\",\"exp\":1795863600}");
    assert_int_equal(verify(token), AUTH_MALFORMED);
    sign_hs256(token, "{\"alg\":\"HS256\"}", "[1,2]");
    assert_int_equal(verify(token), AUTH_MALFORMED);
    /* ... also when the signature fails too: the payload decides first */
    char *flip = token + strlen(token) - 3;
    *flip = *flip == 'A' ? 'B' : 'A';
    assert_int_equal(verify(token), AUTH_MALFORMED);
    /* The header that passed last is remembered (hsjwt.c): one of the same
     * length that differs is checked all the same. */
    sign_hs256(token, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload);
    assert_int_equal(verify(token), AUTH_OK);
    sign_hs256(token, "{\"alg\":\"HS384\",\"typ\":\"JWT\"}", payload);
    assert_int_equal(verify(token), AUTH_BAD_ALG);
    sign_hs256(token, "{\"alg\":\"HS256\",\"typ\":\"JWS\"}", payload);
    assert_int_equal(verify(token), AUTH_MALFORMED);
    sign_hs256(token, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload);
    assert_int_equal(verify(token), AUTH_OK);
    /* The signature: cut, one byte longer, flipped, padded. */
    sign_hs256(token, "{\"alg\":\"HS256\"}", payload);
    size_t n = strlen(token);
    assert_int_equal(auth_verify(g_auth, token, n - 2, NOW, user, sizeof user),
                     AUTH_BAD_SIGNATURE);
    char longer[sizeof token + 2];
    snprintf(longer, sizeof longer, "%sAA", token);
    assert_int_equal(verify(longer), AUTH_BAD_SIGNATURE);
    /* Other spellings of the same bytes: the last character's unused low
     * bits, and '=' where base64 decoders read 'A' (libjwt refuses both). */
    char variant[2048];
    snprintf(variant, sizeof variant, "%s", token);
    char last = variant[n - 1];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    variant[n - 1] = b64[(strchr(b64, last) - b64) ^ 1];
    assert_int_equal(verify(variant), AUTH_BAD_SIGNATURE);
    snprintf(variant, sizeof variant, "%s", token);
    char *a = strchr(strrchr(variant, '.'), 'A');
    if (a) {
        *a = '=';
        assert_int_equal(verify(variant), AUTH_BAD_SIGNATURE);
    }
    token[n - 5] = token[n - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(token), AUTH_BAD_SIGNATURE);
}

/* header.payload from segments already encoded, signed with SECRET. */
static void sign_segments(char *out, const char *hseg, const char *pseg)
{
    int n = snprintf(out, TOKEN_BUF, "%s.%s", hseg, pseg);
    assert_true(n > 0 && n + 2 + 86 < TOKEN_BUF);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)out, (size_t)n, mac,
         &mlen);
    out[n] = '.';
    b64url(mac, mlen, out + n + 1);
}

/* hsjwt.c decodes the header and payload itself: every length a segment
 * can have is read, and only unpadded base64url is (a signed segment with
 * '=' or a length no encoding has is malformed, as libjwt finds it). */
static void test_hs_segment_encodings(void **state)
{
    (void)state;
    char token[TOKEN_BUF], user[130], h[512], p[1024];
    static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    b64url(hdr, strlen(hdr), h);
    /* JSON of three lengths in a row: segments of 4k, 4k+2 and 4k+3 characters */
    bool seen[4] = {false};
    static const char *const users[] = {"alice", "alicea", "aliceab"};
    for (size_t i = 0; i < 3; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"sub\":\"%s\",\"exp\":1795863600}", users[i]);
        b64url(json, strlen(json), p);
        seen[strlen(p) % 4] = true;
        sign_segments(token, h, p);
        assert_int_equal(auth_verify(g_auth, token, strlen(token), NOW, user, sizeof user),
                         AUTH_OK);
        assert_string_equal(user, users[i]);
    }
    assert_true(seen[0] && seen[2] && seen[3]);
    /* The same payload, padded, or with a character made '=' or cut to a
     * length of 4k+1; and a padded header. All signed. */
    for (size_t i = 0; i < 3; i++) { /* the one of 4k+2 characters */
        char json[256];
        snprintf(json, sizeof json, "{\"sub\":\"%s\",\"exp\":1795863600}", users[i]);
        b64url(json, strlen(json), p);
        if (strlen(p) % 4 == 2)
            break;
    }
    size_t pn = strlen(p);
    assert_int_equal(pn % 4, 2);
    char bad[sizeof p + 4];
    snprintf(bad, sizeof bad, "%s==", p);
    sign_segments(token, h, bad);
    assert_int_equal(verify(token), AUTH_MALFORMED);
    /* '=' where an 'A' was: a decoder that reads '=' as 'A' would find the
     * same JSON */
    bad[0] = '\0';
    for (int64_t exp = 1795863600; !strchr(bad, 'A'); exp++) {
        char j[256];
        snprintf(j, sizeof j, "{\"sub\":\"alice\",\"exp\":%lld}", (long long)exp);
        b64url(j, strlen(j), bad);
    }
    sign_segments(token, h, bad);
    assert_int_equal(verify(token), AUTH_OK);
    *strchr(bad, 'A') = '=';
    sign_segments(token, h, bad);
    assert_int_equal(verify(token), AUTH_MALFORMED);
    snprintf(bad, sizeof bad, "%.*s", (int)(pn - 1), p);
    sign_segments(token, h, bad);
    assert_int_equal(verify(token), AUTH_MALFORMED);
    char hpad[520];
    snprintf(hpad, sizeof hpad, "%s%s", h, strlen(h) % 4 == 2 ? "==" : "=");
    sign_segments(token, hpad, p);
    assert_int_equal(verify(token), AUTH_MALFORMED);
    /* unpadded, the same segments pass */
    sign_segments(token, h, p);
    assert_int_equal(verify(token), AUTH_OK);
}

static void test_other_algorithms(void **state)
{
    (void)state;
    struct claims c = good_claims();
    char *t;

    t = craft(JWT_ALG_HS384, SECRET, strlen(SECRET), &c);
    assert_int_equal(verify(t), AUTH_BAD_ALG);
    free(t);
    t = craft(JWT_ALG_HS512, SECRET, strlen(SECRET), &c);
    assert_int_equal(verify(t), AUTH_BAD_ALG);
    free(t);

    t = craft(JWT_ALG_RS256, rsa_private_pem, strlen(rsa_private_pem), &c);
    assert_int_equal(verify(t), AUTH_BAD_ALG);
    free(t);

    /* Key confusion: HS256 keyed with the RSA public key a verifier might
     * hold. */
    t = craft(JWT_ALG_HS256, rsa_public_pem, strlen(rsa_public_pem), &c);
    assert_int_not_equal(verify(t), AUTH_OK);
    assert_int_equal(verify(t), AUTH_BAD_SIGNATURE);
    free(t);
    struct auth *pub = auth_new(rsa_public_pem, TTL);
    assert_non_null(pub);
    t = craft(JWT_ALG_RS256, rsa_private_pem, strlen(rsa_private_pem), &c);
    char user[130];
    assert_int_equal(auth_verify(pub, t, strlen(t), NOW, user, sizeof user), AUTH_BAD_ALG);
    free(t);
    auth_free(pub);
}

/* header.payload signed RS256 with rsa_private_pem. */
static void sign_rs256(char *out, const char *header_json, const char *payload_json)
{
    make_token(out, header_json, payload_json, "");
    size_t n = strlen(out) - 1;
    BIO *bio = BIO_new_mem_buf(rsa_private_pem, -1);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(key);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[512];
    size_t slen = sizeof sig;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &slen, (const unsigned char *)out, n), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    assert_true(n + 2 + (slen + 2) / 3 * 4 < TOKEN_BUF);
    b64url(sig, slen, out + n + 1);
}

/* RS and ES tokens are verified by libjwt, whose JSON parser keeps the last
 * of duplicate keys: the claims are read from the token instead, with the
 * rules HS tokens have (duplicates, crit, padding refused). */
static void test_rs_tokens_follow_the_hs_rules(void **state)
{
    (void)state;
    const char *err = NULL;
    struct auth_opts o = {.alg = "RS256", .public_pem = rsa_public_pem, .ttl_s = TTL};
    struct auth *rs = auth_new_opts(&o, &err);
    assert_non_null(rs);
    char token[TOKEN_BUF], user[130];
    static const char payload[] = "{\"sub\":\"bob\",\"exp\":1795863600}";
    sign_rs256(token, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload);
    assert_int_equal(auth_verify(rs, token, strlen(token), NOW, user, sizeof user), AUTH_OK);
    assert_string_equal(user, "bob");
    /* padded: another spelling of the same token */
    char padded[TOKEN_BUF + 2];
    snprintf(padded, sizeof padded, "%s=", token);
    assert_int_equal(auth_verify(rs, padded, strlen(padded), NOW, user, sizeof user),
                     AUTH_MALFORMED);
    sign_rs256(token, "{\"alg\":\"RS256\"}",
               "{\"sub\":\"bob\",\"sub\":\"eve\",\"exp\":1795863600}");
    assert_int_equal(auth_verify(rs, token, strlen(token), NOW, user, sizeof user), AUTH_MALFORMED);
    sign_rs256(token, "{\"alg\":\"RS256\",\"crit\":[\"exp2\"],\"exp2\":1}", payload);
    assert_int_equal(auth_verify(rs, token, strlen(token), NOW, user, sizeof user), AUTH_MALFORMED);
    auth_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs_header_forms),
        cmocka_unit_test(test_hs_segment_encodings),
        cmocka_unit_test(test_other_algorithms),
        cmocka_unit_test(test_rs_tokens_follow_the_hs_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
