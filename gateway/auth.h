/* auth: tokens. Issues guest JWTs and verifies tokens before a WebSocket
 * upgrade, either HMAC (HS256/384/512 with a shared secret) or asymmetric
 * (RS* or ES* with an identity provider's public key).
 *
 * libjwt 1.10 checks only the signature, and only when given a key; it also
 * accepts whatever algorithm the token names (even "none", and HMAC keyed
 * with an RSA public PEM). So verification here pins the algorithm to the
 * configured one, always passes the key, and checks exp, nbf (with a leeway
 * for clock skew), iss, aud and the user claim itself. HS* tokens are
 * verified by hsjwt.h (an HMAC keyed once, hmac.h: faster), RS* and ES* by
 * libjwt; libjwt issues every token. */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_LEEWAY_S 5
#define AUTH_MAX_TOKEN 4096
#define AUTH_MAX_PEM (64 * 1024)

enum auth_result {
    AUTH_OK = 0,
    AUTH_MISSING,       /* no token at all */
    AUTH_MALFORMED,     /* not a JWT */
    AUTH_BAD_ALG,       /* not the configured algorithm (includes "none") */
    AUTH_BAD_SIGNATURE, /* signed with another key, or tampered with */
    AUTH_EXPIRED,       /* exp missing or in the past */
    AUTH_NOT_YET_VALID, /* nbf in the future */
    AUTH_BAD_SUBJECT,   /* the user claim missing or not a valid username */
    AUTH_BAD_ISSUER,    /* iss is not JWT_ISSUER */
    AUTH_BAD_AUDIENCE,  /* aud does not name JWT_AUDIENCE */
    AUTH_RESULT_COUNT
};

/* Everything is copied by auth_new_opts; NULL or "" means "not set". */
struct auth_opts {
    const char *alg;         /* "HS256" (default) ... "ES512" */
    const char *secret;      /* HS*: the shared key */
    const char *public_pem;  /* RS* or ES*: verifies tokens (PEM text, not a path) */
    const char *private_pem; /* RS* or ES*: signs guest tokens; NULL = cannot issue */
    const char *issuer;      /* required iss, also put in issued tokens */
    const char *audience;    /* required aud (string or array member), also issued */
    const char *user_claim;  /* claim holding the username; default "sub" */
    int leeway_s;            /* for exp and nbf */
    int ttl_s;               /* lifetime of issued tokens */
};

struct auth;

struct cf_config;
/* From the JWT_* settings, reading the PEM files. NULL after logging why. */
struct auth *auth_from_config(const struct cf_config *cfg);

/* Returns NULL and a static reason in *err when the options are unusable
 * (unknown algorithm, missing or unreadable key, out of memory). */
struct auth *auth_new_opts(const struct auth_opts *o, const char **err);
/* HS256 with `secret`, the default leeway and claim; NULL when out of memory. */
struct auth *auth_new(const char *secret, int ttl_s);
/* False when tokens come from elsewhere (RS* or ES* without a private key). */
bool auth_can_issue(const struct auth *a);
void auth_free(struct auth *a); /* NULL is a no-op; wipes the key */

/* Issues a token for an already-validated username, valid from `now` for the
 * configured TTL, with iss and aud when configured. Returns a malloc'd string
 * (the caller frees it) or NULL (out of memory, or !auth_can_issue). */
char *auth_issue(const struct auth *a, const char *user, int64_t now);

/* Verifies token[0, len) at time `now` (seconds). On AUTH_OK writes the
 * username and a NUL into user (cap >= 129). */
enum auth_result auth_verify(const struct auth *a, const char *token, size_t len, int64_t now,
                             char *user, size_t cap);

/* Parses a /login body ({"username": "..."}) of len bytes (not
 * NUL-terminated, any bytes). Returns NULL and writes the cleaned username
 * and a NUL into user (cap >= CF_USERNAME_BYTES_MAX + 1), or returns a
 * static sentence for the client saying what is wrong. */
const char *auth_login_parse(const char *body, size_t len, char *user, size_t cap);

/* A short machine-friendly reason ("expired", "bad_signature", ...). */
const char *auth_result_str(enum auth_result r);

#endif
