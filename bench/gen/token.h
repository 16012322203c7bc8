/* token: base64 and the HS256 tokens the generator signs for itself.
 *
 * The gateway verifies every token (HS256, JWT_SECRET); the generator signs
 * them with the same secret through OpenSSL's HMAC, so no login round trip
 * or JWT library sits on the measuring side. */
#ifndef BENCH_TOKEN_H
#define BENCH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* base64 of n bytes into out (NUL-terminated); url = the URL alphabet without
 * padding (RFC 4648 §5), else the standard one with '=' padding. Returns the
 * length, or -1 when out (cap bytes) is too small. */
int tk_base64(const uint8_t *in, size_t n, int url, char *out, size_t cap);

/* An HS256 JWT {"sub":sub,"iat":now,"exp":now+ttl} signed with secret, into
 * out (NUL-terminated). Returns its length, or -1 (out too small, or HMAC
 * failed). */
int tk_hs256(const char *secret, const char *sub, int64_t now, int64_t ttl, char *out,
             size_t cap);

#endif
