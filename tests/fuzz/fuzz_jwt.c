/* fuzz_jwt: tokens presented at the WebSocket upgrade, verified by
 * auth_verify with a fixed key at a fixed time.
 *
 * The first input byte picks the mode; the rest is
 *   mode 0: the token itself, any bytes;
 *   mode 1: a JSON object of claims, signed HS256 with the gateway's key
 *           (random bytes almost never carry a valid signature, so this is
 *           how the claim checks get fuzzed);
 *   mode 2: the same claims signed with another key: never accepted;
 *   mode 3: the same claims with alg "none": never accepted.
 * The verifier requires iss and aud (JWT_ISSUER, JWT_AUDIENCE). Whatever is
 * accepted names a valid user, and in mode 1 exactly the "sub" claim, only
 * while exp and nbf allow and with that iss and an aud naming that audience. */
#include <jwt.h>

#include "auth.h"
#include "fuzz.h"
#include "validate.h"

#define NOW 1800000000
#define KEY "fuzz-secret-0123456789abcdef0123456789"
#define OTHER_KEY "another-secret-0123456789abcdef012345"
#define ISSUER "https://idp.test"
#define AUDIENCE "confab"

static struct auth *auth;

/* A token for the claims (a NUL-terminated JSON object), or NULL. */
static char *sign(const char *claims, jwt_alg_t alg, const char *key)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_grants_json(jwt, claims) == 0 &&
        jwt_set_alg(jwt, alg, key ? (const unsigned char *)key : NULL,
                    key ? (int)strlen(key) : 0) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

static enum auth_result verify(const char *token, size_t len, char *user, size_t cap)
{
    memset(user, 0x5a, cap);
    enum auth_result r = auth_verify(auth, token, len, NOW, user, cap);
    FUZZ_CHECK(r >= AUTH_OK && r < AUTH_RESULT_COUNT);
    if (r == AUTH_OK) {
        size_t n = strnlen(user, cap);
        FUZZ_CHECK(n < cap && cf_username_valid(user, n));
    }
    return r;
}

/* A NumericDate as RFC 7519 allows it: an integer or a fraction (rounded
 * down), within what a double holds exactly. -1 when it is neither. */
static int numeric_date(const json_t *v, int64_t *out)
{
    if (json_is_integer(v))
        *out = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) > -9e15 && json_real_value(v) < 9e15)
        *out = (int64_t)json_real_value(v);
    else
        return -1;
    return 0;
}

/* In mode 1, acceptance must agree with the claims themselves. */
static void check_claims_agree(const char *claims, const char *user)
{
    json_error_t err;
    json_t *c = json_loads(claims, 0, &err);
    FUZZ_CHECK(c != NULL);
    json_t *sub = json_object_get(c, "sub");
    FUZZ_CHECK(json_is_string(sub) && json_string_length(sub) == strlen(user) &&
               memcmp(json_string_value(sub), user, strlen(user)) == 0);
    int64_t exp, nbf;
    FUZZ_CHECK(numeric_date(json_object_get(c, "exp"), &exp) == 0 && exp >= NOW - AUTH_LEEWAY_S);
    FUZZ_CHECK(numeric_date(json_object_get(c, "nbf"), &nbf) < 0 || nbf <= NOW + AUTH_LEEWAY_S);
    json_t *iss = json_object_get(c, "iss"), *aud = json_object_get(c, "aud");
    FUZZ_CHECK(json_is_string(iss) && strcmp(json_string_value(iss), ISSUER) == 0);
    bool named = json_is_string(aud) && strcmp(json_string_value(aud), AUDIENCE) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v) named = named || (json_is_string(v) &&
                                                    strcmp(json_string_value(v), AUDIENCE) == 0);
    FUZZ_CHECK(named);
    json_decref(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (!auth) {
        const char *err;
        struct auth_opts o = {.alg = "HS256", .secret = KEY, .issuer = ISSUER,
                              .audience = AUDIENCE, .leeway_s = AUTH_LEEWAY_S, .ttl_s = 3600};
        auth = auth_new_opts(&o, &err);
        FUZZ_CHECK(auth != NULL);
    }
    if (size < 1 || size > AUTH_MAX_TOKEN + 1)
        return 0;
    int mode = data[0] & 3;
    char user[CF_USERNAME_BYTES_MAX + 1];
    if (mode == 0) {
        /* A caller's buffer: exactly the bytes, no NUL after them. */
        char *t = malloc(size - 1 ? size - 1 : 1);
        FUZZ_CHECK(t != NULL);
        memcpy(t, data + 1, size - 1);
        verify(t, size - 1, user, sizeof user);
        free(t);
        return 0;
    }
    char *claims = malloc(size);
    FUZZ_CHECK(claims != NULL);
    memcpy(claims, data + 1, size - 1);
    claims[size - 1] = '\0';
    char *token = mode == 1   ? sign(claims, JWT_ALG_HS256, KEY)
                  : mode == 2 ? sign(claims, JWT_ALG_HS256, OTHER_KEY)
                              : sign(claims, JWT_ALG_NONE, NULL);
    if (token) {
        enum auth_result r = verify(token, strlen(token), user, sizeof user);
        if (mode == 1 && r == AUTH_OK)
            check_claims_agree(claims, user);
        if (mode == 2)
            FUZZ_CHECK(r == AUTH_BAD_SIGNATURE || r == AUTH_MALFORMED);
        if (mode == 3)
            FUZZ_CHECK(r != AUTH_OK);
        free(token);
    }
    free(claims);
    return 0;
}
