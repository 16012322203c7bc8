/* auth: see auth.h. */
#include "auth.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

struct auth {
    unsigned char *key;
    int keylen;
    int ttl;
};

struct auth *auth_new(const char *secret, int ttl_s)
{
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->keylen = (int)strlen(secret);
    a->key = malloc((size_t)a->keylen + 1);
    if (!a->key) {
        free(a);
        return NULL;
    }
    memcpy(a->key, secret, (size_t)a->keylen + 1);
    a->ttl = ttl_s;
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    explicit_bzero(a->key, (size_t)a->keylen);
    free(a->key);
    free(a);
}

char *auth_issue(const struct auth *a, const char *user, int64_t now)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, a->key, a->keylen) == 0 &&
        jwt_add_grant(jwt, "sub", user) == 0 && jwt_add_grant_int(jwt, "iat", (long)now) == 0 &&
        jwt_add_grant_int(jwt, "nbf", (long)now) == 0 &&
        jwt_add_grant_int(jwt, "exp", (long)(now + a->ttl)) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

static bool b64url_segment(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '=' || c == '.'))
            return false;
    }
    return true;
}

/* header.payload.signature, each base64url. */
static bool looks_like_jwt(const char *t, size_t len)
{
    const char *d1 = memchr(t, '.', len);
    if (!d1)
        return false;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - t));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - t)))
        return false;
    return d1 > t && d2 > d1 + 1 && b64url_segment(t, len);
}

/* Why did a keyed decode fail? Decoding again without a key (which libjwt
 * takes as "do not verify") tells a wrong algorithm from a wrong signature.
 * Without a key libjwt resets the decoded algorithm to "none", so the
 * algorithm the token names is read from its header instead. */
static enum auth_result classify_failure(const char *token)
{
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, NULL, 0) != 0 || !jwt)
        return AUTH_MALFORMED;
    const char *alg = jwt_get_header(jwt, "alg");
    enum auth_result r =
        alg && jwt_str_alg(alg) == JWT_ALG_HS256 ? AUTH_BAD_SIGNATURE : AUTH_BAD_ALG;
    jwt_free(jwt);
    return r;
}

static int claim_int(jwt_t *jwt, const char *name, long *out)
{
    errno = 0;
    long v = jwt_get_grant_int(jwt, name);
    if (errno != 0)
        return -1;
    *out = v;
    return 0;
}

enum auth_result auth_verify(const struct auth *a, const char *token, size_t len, int64_t now,
                             char *user, size_t cap)
{
    if (!token || len == 0)
        return AUTH_MISSING;
    if (len > AUTH_MAX_TOKEN || !looks_like_jwt(token, len))
        return AUTH_MALFORMED;
    char buf[AUTH_MAX_TOKEN + 1];
    memcpy(buf, token, len);
    buf[len] = '\0';

    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, buf, a->key, a->keylen) != 0 || !jwt) {
        jwt_free(jwt);
        return classify_failure(buf);
    }
    enum auth_result r = AUTH_OK;
    long exp, nbf;
    const char *sub;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        r = AUTH_BAD_ALG; /* e.g. alg "none", which libjwt accepts with a key */
    else if (claim_int(jwt, "exp", &exp) < 0 || exp < now - AUTH_LEEWAY_S)
        r = AUTH_EXPIRED; /* compared on `now`'s side: exp + leeway could overflow */
    else if (claim_int(jwt, "nbf", &nbf) == 0 && nbf > now + AUTH_LEEWAY_S)
        r = AUTH_NOT_YET_VALID;
    else if (!(sub = jwt_get_grant(jwt, "sub")) || !cf_username_valid(sub, strlen(sub)) ||
             strlen(sub) + 1 > cap)
        r = AUTH_BAD_SUBJECT;
    else
        memcpy(user, sub, strlen(sub) + 1); /* sub belongs to jwt: copy before freeing */
    jwt_free(jwt);
    return r;
}

const char *auth_result_str(enum auth_result r)
{
    static const char *const names[AUTH_RESULT_COUNT] = {
        "ok",      "missing",         "malformed",    "bad_algorithm", "bad_signature",
        "expired", "not_yet_valid", "bad_subject"};
    return (r >= 0 && r < AUTH_RESULT_COUNT) ? names[r] : "unknown";
}

const char *auth_login_parse(const char *body, size_t len, char *user, size_t cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *err = NULL;
    json_t *name = root ? json_object_get(root, "username") : NULL;
    if (!root || !json_is_object(root))
        err = "body must be a JSON object like {\"username\":\"alice\"}";
    else if (!name)
        err = "missing \"username\"";
    else if (!json_is_string(name))
        err = "\"username\" must be a string";
    else {
        int rc = cf_username_clean(json_string_value(name), json_string_length(name), user, cap);
        if (rc < 0)
            err = cf_name_error_str(rc);
    }
    json_decref(root);
    return err;
}
