/* auth: see auth.h. */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hsjwt.h"
#include "log.h"
#include "validate.h"

struct auth;
static bool auth_pair_matches(const struct auth *a);

struct auth {
    jwt_alg_t alg;
    unsigned char *vkey; /* verifies: the secret or the public PEM */
    int vkeylen;
    unsigned char *skey; /* signs: the secret, the private PEM, or NULL */
    int skeylen;
    struct hsjwt *hs; /* HS*: verifies (libjwt only issues) */
    char *issuer, *audience, *claim; /* NULL = not checked */
    int leeway, ttl;
};

static unsigned char *dup_key(const char *k, int *len)
{
    size_t n = k ? strlen(k) : 0;
    unsigned char *p = n && n <= AUTH_MAX_PEM ? malloc(n + 1) : NULL;
    if (p) {
        memcpy(p, k, n + 1);
        *len = (int)n;
    }
    return p;
}

static char *dup_opt(const char *s, bool *oom)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

/* libjwt reports an unreadable key only as a failed verification, token by
 * token: a wrong file would look like every client's fault. */
static bool public_key_fits(const char *pem, jwt_alg_t alg)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    bool rsa = alg == JWT_ALG_RS256 || alg == JWT_ALG_RS384 || alg == JWT_ALG_RS512;
    bool ok = key && EVP_PKEY_get_base_id(key) == (rsa ? EVP_PKEY_RSA : EVP_PKEY_EC);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return ok;
}

struct auth *auth_new_opts(const struct auth_opts *o, const char **err)
{
    *err = "out of memory";
    jwt_alg_t alg = jwt_str_alg(o->alg && *o->alg ? o->alg : "HS256");
    if (alg == JWT_ALG_NONE || alg == JWT_ALG_INVAL || alg == JWT_ALG_TERM) {
        *err = "unknown algorithm";
        return NULL;
    }
    bool hmac = alg == JWT_ALG_HS256 || alg == JWT_ALG_HS384 || alg == JWT_ALG_HS512;
    const char *verify = hmac ? o->secret : o->public_pem;
    const char *sign = hmac ? o->secret : o->private_pem;
    if (!verify || !*verify) {
        *err = hmac ? "no secret" : "no public key";
        return NULL;
    }
    if (!hmac && !public_key_fits(verify, alg)) {
        *err = "the public key is not a PEM public key of this algorithm's type (RSA for RS*, "
               "EC for ES*)";
        return NULL;
    }
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    bool oom = false;
    a->alg = alg;
    a->leeway = o->leeway_s;
    a->ttl = o->ttl_s;
    a->vkey = dup_key(verify, &a->vkeylen);
    a->skey = sign && *sign ? dup_key(sign, &a->skeylen) : NULL;
    a->issuer = dup_opt(o->issuer, &oom);
    a->audience = dup_opt(o->audience, &oom);
    a->claim = dup_opt(o->user_claim && *o->user_claim ? o->user_claim : "sub", &oom);
    if (!a->vkey || (sign && *sign && !a->skey) || oom) {
        *err = strlen(verify) > AUTH_MAX_PEM ? "key over 64 KiB" : "out of memory";
        auth_free(a);
        return NULL;
    }
    if (hmac && !(a->hs = hsjwt_new(jwt_alg_str(alg), a->vkey, (size_t)a->vkeylen))) {
        *err = "cannot set up HMAC (OpenSSL)";
        auth_free(a);
        return NULL;
    }
    if (!hmac && a->skey && !auth_pair_matches(a)) {
        *err = "the private key does not match the public key (or is not a PEM key for this "
               "algorithm)";
        auth_free(a);
        return NULL;
    }
    return a;
}

struct auth *auth_new(const char *secret, int ttl_s)
{
    const char *err;
    struct auth_opts o = {.alg = "HS256", .secret = secret, .leeway_s = AUTH_LEEWAY_S,
                          .ttl_s = ttl_s};
    return auth_new_opts(&o, &err);
}

bool auth_can_issue(const struct auth *a)
{
    return a->skey != NULL;
}

static void wipe_free(unsigned char *k, int len)
{
    if (k)
        explicit_bzero(k, (size_t)len);
    free(k);
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    hsjwt_free(a->hs);
    wipe_free(a->vkey, a->vkeylen);
    wipe_free(a->skey, a->skeylen);
    free(a->issuer);
    free(a->audience);
    free(a->claim);
    free(a);
}

char *auth_issue(const struct auth *a, const char *user, int64_t now)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    if (!a->skey || jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_set_alg(jwt, a->alg, a->skey, a->skeylen) == 0 &&
        jwt_add_grant(jwt, a->claim, user) == 0 &&
        (!a->issuer || jwt_add_grant(jwt, "iss", a->issuer) == 0) &&
        (!a->audience || jwt_add_grant(jwt, "aud", a->audience) == 0) &&
        jwt_add_grant_int(jwt, "iat", (long)now) == 0 &&
        jwt_add_grant_int(jwt, "nbf", (long)now) == 0 &&
        jwt_add_grant_int(jwt, "exp", (long)(now + a->ttl)) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

/* Signs a probe with the private key and verifies it with the public one, so
 * a mismatched pair fails at start-up rather than at every login. */
static bool auth_pair_matches(const struct auth *a)
{
    char *t = auth_issue(a, "probe", 0);
    jwt_t *jwt = NULL;
    bool ok = t && jwt_decode(&jwt, t, a->vkey, a->vkeylen) == 0 && jwt &&
              jwt_get_alg(jwt) == a->alg;
    jwt_free(jwt);
    free(t);
    return ok;
}

/* A table, eight bytes a step and no early exit: a token is checked whole
 * anyway, and the byte-wise loop with a branch a byte was ~10% of an HS256
 * token's check. */
static bool b64url_segment(const char *s, size_t len)
{
    static const unsigned char ok[256] = {
        ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['0' ... '9'] = 1,
        ['-'] = 1,         ['_'] = 1,         ['.'] = 1}; /* no '=': JWS segments are unpadded */
    const unsigned char *u = (const unsigned char *)s;
    unsigned all = 1;
    size_t i = 0;
    for (; i + 8 <= len; i += 8)
        all &= ok[u[i]] & ok[u[i + 1]] & ok[u[i + 2]] & ok[u[i + 3]] & ok[u[i + 4]] & ok[u[i + 5]] &
               ok[u[i + 6]] & ok[u[i + 7]];
    for (; i < len; i++)
        all &= ok[u[i]];
    return all != 0;
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
static enum auth_result classify_failure(const struct auth *a, const char *token)
{
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, NULL, 0) != 0 || !jwt)
        return AUTH_MALFORMED;
    const char *alg = jwt_get_header(jwt, "alg");
    enum auth_result r = alg && jwt_str_alg(alg) == a->alg ? AUTH_BAD_SIGNATURE : AUTH_BAD_ALG;
    jwt_free(jwt);
    return r;
}

/* A NumericDate claim; JSON allows fractions, which round down. */
static int claim_time(const struct claims *c, const char *name, int64_t *out)
{
    struct claim v;
    if (!claims_get(c, name, &v))
        return -1;
    if (v.kind == CLAIM_INTEGER)
        *out = v.i;
    else if (v.kind == CLAIM_REAL && v.r > -9e15 && v.r < 9e15)
        *out = (int64_t)v.r;
    else
        return -1;
    return 0;
}

static bool is_string(const struct claim *v, const char *want)
{
    return v->kind == CLAIM_STRING && v->n == strlen(want) && memcmp(v->s, want, v->n) == 0;
}

static bool audience_ok(const struct claims *c, const char *want)
{
    struct claim v;
    if (!claims_get(c, "aud", &v))
        return false;
    if (v.kind != CLAIM_OTHER)
        return is_string(&v, want);
    size_t i;
    json_t *e;
    json_array_foreach(v.j, i, e) if (json_is_string(e) && !strcmp(json_string_value(e), want))
        return true;
    return false;
}

static enum auth_result check_claims(const struct auth *a, const struct claims *c, int64_t now,
                                     char *user, size_t cap)
{
    int64_t exp, nbf;
    struct claim v;
    /* compared on `now`'s side: exp + leeway could overflow */
    if (claim_time(c, "exp", &exp) < 0 || exp <= now - a->leeway) /* valid before exp */
        return AUTH_EXPIRED;
    /* nbf is optional, but one that is not a time fails closed, as exp does */
    if (claims_get(c, "nbf", &v) && (claim_time(c, "nbf", &nbf) < 0 || nbf > now + a->leeway))
        return AUTH_NOT_YET_VALID;
    if (a->issuer && !(claims_get(c, "iss", &v) && is_string(&v, a->issuer)))
        return AUTH_BAD_ISSUER;
    if (a->audience && !audience_ok(c, a->audience))
        return AUTH_BAD_AUDIENCE;
    if (!claims_get(c, a->claim, &v) || v.kind != CLAIM_STRING ||
        !cf_username_valid(v.s, v.n) || v.n + 1 > cap)
        return AUTH_BAD_SUBJECT;
    memcpy(user, v.s, v.n + 1);
    return AUTH_OK;
}

enum auth_result auth_verify(const struct auth *a, const char *token, size_t len, int64_t now,
                             char *user, size_t cap)
{
    if (!token || len == 0)
        return AUTH_MISSING;
    if (len > AUTH_MAX_TOKEN || !looks_like_jwt(token, len))
        return AUTH_MALFORMED;
    struct claims claims;
    if (a->hs) {
        switch (hsjwt_verify(a->hs, token, len, &claims)) {
        case HSJWT_OK: {
            enum auth_result r = check_claims(a, &claims, now, user, cap);
            claims_release(&claims);
            return r;
        }
        case HSJWT_BAD_ALG: return AUTH_BAD_ALG;
        case HSJWT_BAD_SIGNATURE: return AUTH_BAD_SIGNATURE;
        default: return AUTH_MALFORMED;
        }
    }
    char buf[AUTH_MAX_TOKEN + 1];
    memcpy(buf, token, len);
    buf[len] = '\0';

    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, buf, a->vkey, a->vkeylen) != 0 || !jwt) {
        jwt_free(jwt);
        return classify_failure(a, buf);
    }
    enum auth_result r = AUTH_MALFORMED;
    /* e.g. alg "none", or HMAC keyed with our public PEM: libjwt accepts both */
    if (jwt_get_alg(jwt) != a->alg) {
        r = AUTH_BAD_ALG;
    } else {
        /* Read from the token, not from libjwt, whose parser keeps the last
         * of duplicate keys ({"sub":"bob","sub":"eve"} would be eve); its
         * header may name no critical extension (hsjwt.h). */
        const char *d1 = strchr(buf, '.'), *d2 = strchr(d1 + 1, '.');
        json_t *hdr = hsjwt_segment_json(buf, (size_t)(d1 - buf));
        if (hdr && !json_object_get(hdr, "crit") &&
            claims_adopt(&claims, hsjwt_segment_json(d1 + 1, (size_t)(d2 - d1 - 1))) == 0) {
            r = check_claims(a, &claims, now, user, cap);
            claims_release(&claims);
        }
        json_decref(hdr);
    }
    jwt_free(jwt);
    return r;
}

const char *auth_result_str(enum auth_result r)
{
    static const char *const names[AUTH_RESULT_COUNT] = {
        "ok",      "missing",         "malformed",    "bad_algorithm", "bad_signature",
        "expired", "not_yet_valid", "bad_subject",  "bad_issuer",    "bad_audience"};
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

/* A PEM file, whole (bounded: keys are a few KiB). */
static char *read_pem(const char *path, const char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = strerror(errno);
        return NULL;
    }
    char *buf = malloc(AUTH_MAX_PEM + 1);
    size_t n = buf ? fread(buf, 1, AUTH_MAX_PEM + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > AUTH_MAX_PEM) {
        *err = !buf ? "out of memory" : n ? "larger than 64 KiB" : "empty";
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

struct auth *auth_from_config(const struct cf_config *cfg)
{
    const char *err = NULL;
    char *pub = NULL, *priv = NULL;
    struct auth *a = NULL;
    if (cfg->jwt_public_key[0] && !(pub = read_pem(cfg->jwt_public_key, &err))) {
        CF_ERROR("auth", "cannot read JWT_PUBLIC_KEY %s: %s", cfg->jwt_public_key, err);
        goto out;
    }
    if (cfg->jwt_private_key[0] && !(priv = read_pem(cfg->jwt_private_key, &err))) {
        CF_ERROR("auth", "cannot read JWT_PRIVATE_KEY %s: %s", cfg->jwt_private_key, err);
        goto out;
    }
    struct auth_opts o = {.alg = cfg->jwt_alg, .secret = cfg->jwt_secret, .public_pem = pub,
                          .private_pem = priv, .issuer = cfg->jwt_issuer,
                          .audience = cfg->jwt_audience, .user_claim = cfg->jwt_user_claim,
                          .leeway_s = cfg->jwt_leeway, .ttl_s = cfg->jwt_ttl};
    a = auth_new_opts(&o, &err);
    if (!a)
        CF_ERROR("auth", "cannot set up %s token verification: %s; check JWT_ALG, "
                 "JWT_PUBLIC_KEY and JWT_PRIVATE_KEY", cfg->jwt_alg, err);
out:
    if (pub)
        explicit_bzero(pub, strlen(pub));
    if (priv)
        explicit_bzero(priv, strlen(priv));
    free(pub);
    free(priv);
    return a;
}
