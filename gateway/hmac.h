/* hmac: HMAC-SHA-256, -384 and -512 (RFC 2104) with a key set once, for
 * hsjwt.c's token checks.
 *
 * Why not OpenSSL's EVP_MAC: re-initialised per token with the key already
 * set, it still allocates and frees a digest context, wipes two, and walks
 * its parameter layers; that was ~340 ns of a ~600 ns HS256 token check
 * here, against ~170 ns for the same two hashes done below. Only RFC 2104's
 * two passes are written here: the hashing is OpenSSL's SHA-2 (with the
 * CPU's SHA extensions where it has them), whose contexts are plain
 * structs that are copied rather than re-created. Those SHA functions are
 * deprecated in OpenSSL 3 (not removed); hmac.c alone uses them, and
 * test_hmac holds this module to RFC 4231's vectors and to OpenSSL's
 * HMAC(). Tokens are still issued by libjwt.
 *
 * Ownership: a struct hmac is the caller's, from hmac_new to hmac_free; it
 * holds the key's pad states, wiped by hmac_free. Not thread safe (hsjwt
 * keeps one per process). */
#ifndef GW_HMAC_H
#define GW_HMAC_H

#include <stddef.h>

#define HMAC_MAX_SIZE 64 /* bytes of the longest MAC (SHA-512's) */

struct hmac;

/* digest: "SHA256", "SHA384" or "SHA512"; the key is any length (longer
 * than the hash's block, it is hashed first, as RFC 2104 says). NULL for
 * another digest or when out of memory. */
struct hmac *hmac_new(const char *digest, const unsigned char *key, size_t keylen);
void hmac_free(struct hmac *h); /* NULL is a no-op */

/* Bytes of the MAC: 32, 48 or 64. */
size_t hmac_size(const struct hmac *h);

/* The MAC of msg[0..len) into out (hmac_size bytes). */
void hmac_compute(const struct hmac *h, const void *msg, size_t len,
                  unsigned char out[HMAC_MAX_SIZE]);

#endif
