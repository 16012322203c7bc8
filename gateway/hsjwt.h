/* hsjwt: verifies HS256/384/512 JSON Web Tokens (compact JWS) with an HMAC
 * keyed once.
 *
 * Why not libjwt here: for every token libjwt 1.10 has OpenSSL 3 look up
 * the HMAC implementation again (EVP_Q_mac), and auth then printed and
 * re-parsed the claims to read them; a connect storm spent more time in
 * that than in the rest of the handshake. The HMAC is hmac.h's, keyed once
 * per process over OpenSSL's SHA-2, the comparison constant time (OpenSSL's
 * CRYPTO_memcmp). libjwt still issues tokens and verifies RS and ES ones
 * (auth.c).
 *
 * Accepts what libjwt accepts, a little more strictly: a header that is a
 * JSON object whose "alg" is the configured algorithm and whose "typ", if
 * present, is the string "JWT" (any case), and no "crit" (it names
 * extensions the verifier must understand: none here); a payload that is a
 * JSON object;
 * duplicate keys refused in both; each segment unpadded base64url ('='
 * refused); the signature exactly the canonical base64url of the HMAC.
 *
 * The last header that passed is remembered: an issuer's tokens all carry
 * the same one, so its decoding and JSON are skipped after the first.
 *
 * Ownership: the context is the caller's (one per process: not thread
 * safe). */
#ifndef GW_HSJWT_H
#define GW_HSJWT_H

#include <stddef.h>

#include "claims.h"

struct hsjwt;

/* A token segment (unpadded base64url of at most 4 KiB decoded) as a JSON
 * object, duplicate keys refused: a new reference, or NULL when it is not
 * one. Also for the RS and ES tokens libjwt verifies (auth.c): its parser
 * keeps the last of duplicate keys. */
json_t *hsjwt_segment_json(const char *s, size_t len);

enum hsjwt_result { HSJWT_OK, HSJWT_MALFORMED, HSJWT_BAD_ALG, HSJWT_BAD_SIGNATURE };

/* alg: "HS256", "HS384" or "HS512"; the key is copied. NULL on failure. */
struct hsjwt *hsjwt_new(const char *alg, const unsigned char *key, size_t keylen);
void hsjwt_free(struct hsjwt *h); /* NULL is a no-op */

/* token: len bytes of the three base64url segments (the caller has checked
 * their alphabet and bounded len). The signature is checked before the
 * payload is read. On HSJWT_OK, *claims holds the payload's members (the
 * caller's storage, released with claims_release); otherwise nothing. */
enum hsjwt_result hsjwt_verify(struct hsjwt *h, const char *token, size_t len,
                               struct claims *claims);

#endif
