/* auth: guest tokens. Issues HS256 JWTs and verifies them before a WebSocket
 * upgrade.
 *
 * libjwt 1.10 checks only the signature, and only when given a key; it also
 * accepts whatever algorithm the token names. So verification here pins the
 * algorithm to HS256 (rejecting "none" and asymmetric algorithms), always
 * passes the key, and checks exp and nbf (with a small leeway for clock skew)
 * and the subject itself. */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_LEEWAY_S 5
#define AUTH_MAX_TOKEN 4096

enum auth_result {
    AUTH_OK = 0,
    AUTH_MISSING,       /* no token at all */
    AUTH_MALFORMED,     /* not a JWT */
    AUTH_BAD_ALG,       /* not HS256 (includes "none") */
    AUTH_BAD_SIGNATURE, /* signed with another key, or tampered with */
    AUTH_EXPIRED,       /* exp missing or in the past */
    AUTH_NOT_YET_VALID, /* nbf in the future */
    AUTH_BAD_SUBJECT,   /* sub missing or not a valid username */
    AUTH_RESULT_COUNT
};

struct auth;

/* The secret is copied. Returns NULL when out of memory. */
struct auth *auth_new(const char *secret, int ttl_s);
void auth_free(struct auth *a); /* NULL is a no-op; wipes the key */

/* Issues a token for an already-validated username, valid from `now` for the
 * configured TTL. Returns a malloc'd string (the caller frees it) or NULL. */
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
