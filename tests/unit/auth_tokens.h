/* auth_tokens: what the unit tests of gateway/auth share (test_auth.c,
 * test_auth_forms.c): the secret and the clock they verify with, one
 * struct auth made before each group, tokens signed with libjwt or put
 * together by hand from raw JSON. */
#ifndef CONFAB_TEST_AUTH_TOKENS_H
#define CONFAB_TEST_AUTH_TOKENS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jwt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"

#define SECRET "unit-test-secret-0123456789abcdef-0123456789"
#define OTHER_SECRET "another-secret-entirely-0123456789abcdef-01"
#define NOW 1795860000L
#define TTL 3600

struct claims {
    const char *sub; /* NULL: no sub */
    bool has_nbf, has_exp;
    long iat, nbf, exp;
    const char *extra_json; /* more grants, or NULL */
};

static inline struct claims good_claims(void)
{
    return (struct claims){"alice", true, true, NOW, NOW, NOW + TTL, NULL};
}

/* Signs a token with libjwt. */
static inline char *craft(jwt_alg_t alg, const void *key, size_t keylen, const struct claims *c)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, key, (int)keylen), 0);
    if (c->sub)
        assert_int_equal(jwt_add_grant(jwt, "sub", c->sub), 0);
    assert_int_equal(jwt_add_grant_int(jwt, "iat", c->iat), 0);
    if (c->has_nbf)
        assert_int_equal(jwt_add_grant_int(jwt, "nbf", c->nbf), 0);
    if (c->has_exp)
        assert_int_equal(jwt_add_grant_int(jwt, "exp", c->exp), 0);
    if (c->extra_json)
        assert_int_equal(jwt_add_grants_json(jwt, c->extra_json), 0);
    char *out = jwt_encode_str(jwt);
    assert_non_null(out);
    jwt_free(jwt);
    return out;
}

static inline char *craft_hs256(const struct claims *c)
{
    return craft(JWT_ALG_HS256, SECRET, strlen(SECRET), c);
}

static struct auth *g_auth;

static inline int setup(void **state)
{
    (void)state;
    g_auth = auth_new(SECRET, TTL);
    return g_auth ? 0 : -1;
}

static inline int teardown(void **state)
{
    (void)state;
    auth_free(g_auth);
    g_auth = NULL;
    return 0;
}

static inline enum auth_result verify_at(const char *token, long now, char *user)
{
    memset(user, 'X', 130);
    return auth_verify(g_auth, token, token ? strlen(token) : 0, now, user, 130);
}

static inline enum auth_result verify(const char *token)
{
    char user[130];
    return verify_at(token, NOW, user);
}

/* base64url without padding, as JWTs use it. */
static inline void b64url(const void *in, size_t len, char *out)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
    }
    out[o] = '\0';
}

/* Every buffer given to make_token holds this much. */
enum { TOKEN_BUF = 2048 };

/* header.payload.signature from raw JSON parts (the signature as given). */
static inline void make_token(char *out, const char *header_json, const char *payload_json,
                              const char *sig)
{
    char h[512], p[1024];
    b64url(header_json, strlen(header_json), h);
    b64url(payload_json, strlen(payload_json), p);
    int n = snprintf(out, TOKEN_BUF, "%s.%s.%s", h, p, sig);
    assert_true(n > 0 && n < TOKEN_BUF);
}

#endif
