/* hsjwt: see hsjwt.h. */
#include "hsjwt.h"

#include "hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEG_MAX 4096 /* bytes of one decoded segment (tokens are bounded smaller) */

#define HDR_MEMO_MAX 128 /* the usual header is 36 characters */

struct hsjwt {
    struct hmac *mac;
    char alg[8];
    /* The last header segment that passed: one issuer's tokens all carry
     * the same one, and its decoding and JSON parse were ~15% of a
     * token's check. A pure function of the text and alg, so a byte-equal
     * segment has the same verdict. */
    char hdr_ok[HDR_MEMO_MAX];
    size_t hdr_ok_len; /* 0: none yet */
};

struct hsjwt *hsjwt_new(const char *alg, const unsigned char *key, size_t keylen)
{
    const char *digest = !strcmp(alg, "HS256")   ? "SHA256"
                         : !strcmp(alg, "HS384") ? "SHA384"
                         : !strcmp(alg, "HS512") ? "SHA512"
                                                 : NULL;
    if (!digest)
        return NULL;
    struct hsjwt *h = calloc(1, sizeof *h);
    if (!h || !(h->mac = hmac_new(digest, key, keylen))) {
        hsjwt_free(h);
        return NULL;
    }
    snprintf(h->alg, sizeof h->alg, "%s", alg);
    return h;
}

void hsjwt_free(struct hsjwt *h)
{
    if (!h)
        return;
    hmac_free(h->mac); /* wipes the key */
    free(h);
}

/* Each base64url character's six bits; 0x80 for any other byte, '='
 * included (RFC 7515 segments are unpadded). The cast: clang checks every
 * arm against the element type, and an arm not taken can be over 255. */
#define B64V(c)                                                                                    \
    (unsigned char)((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                         \
                    : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                    \
                    : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                    \
                    : (c) == '-'               ? 62                                                \
                    : (c) == '_'               ? 63                                                \
                                               : 0x80)
#define R4(b) B64V(b), B64V((b) + 1), B64V((b) + 2), B64V((b) + 3)
#define R16(b) R4(b), R4((b) + 4), R4((b) + 8), R4((b) + 12)
#define R64(b) R16(b), R16((b) + 16), R16((b) + 32), R16((b) + 48)
static const unsigned char b64v[256] = {R64(0), R64(64), R64(128), R64(192)};

/* base64url without padding -> bytes; -1 when it is not valid. Decoded here
 * rather than by EVP_DecodeBlock, which needs the text translated to
 * base64 and padded first: the two passes were ~10% of a token's check.
 * Like EVP_DecodeBlock (and libjwt), the unused low bits of a last partial
 * group are not looked at: only signed segments get here after the header,
 * and the signature is compared as text (signature_ok). */
static int b64url_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    size_t rem = len % 4, n = len / 4 * 3 + (rem ? rem - 1 : 0);
    if (rem == 1 || n > cap)
        return -1;
    const unsigned char *u = (const unsigned char *)s;
    unsigned bad = 0;
    size_t i = 0, o = 0;
    for (; i + 4 <= len; i += 4, o += 3) {
        unsigned a = b64v[u[i]], b = b64v[u[i + 1]], c = b64v[u[i + 2]], d = b64v[u[i + 3]];
        bad |= a | b | c | d;
        unsigned v = a << 18 | b << 12 | c << 6 | d;
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
    }
    if (rem) {
        unsigned a = b64v[u[i]], b = b64v[u[i + 1]], c = rem == 3 ? b64v[u[i + 2]] : 0;
        bad |= a | b | c;
        unsigned v = a << 18 | b << 12 | c << 6;
        out[o] = (unsigned char)(v >> 16);
        if (rem == 3)
            out[o + 1] = (unsigned char)(v >> 8);
    }
    return bad & 0x80 ? -1 : (int)n;
}

json_t *hsjwt_segment_json(const char *s, size_t len)
{
    unsigned char buf[SEG_MAX];
    int n = b64url_decode(s, len, buf, sizeof buf);
    if (n < 0)
        return NULL;
    json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static enum hsjwt_result check_header(struct hsjwt *h, const char *s, size_t len)
{
    if (len && len == h->hdr_ok_len && memcmp(s, h->hdr_ok, len) == 0)
        return HSJWT_OK;
    json_t *hdr = hsjwt_segment_json(s, len);
    if (!hdr)
        return HSJWT_MALFORMED;
    json_t *alg = json_object_get(hdr, "alg"), *typ = json_object_get(hdr, "typ");
    enum hsjwt_result r = HSJWT_OK;
    /* "crit" names extensions the verifier must understand (RFC 7515
     * 4.1.11): confab understands none */
    if (!json_is_string(alg) || (typ && !json_is_string(typ)) ||
        (typ && strcasecmp(json_string_value(typ), "JWT") != 0) || json_object_get(hdr, "crit"))
        r = HSJWT_MALFORMED;
    else if (strcmp(json_string_value(alg), h->alg) != 0)
        r = HSJWT_BAD_ALG;
    json_decref(hdr);
    if (r == HSJWT_OK && len <= sizeof h->hdr_ok) {
        memcpy(h->hdr_ok, s, len);
        h->hdr_ok_len = len;
    }
    return r;
}

/* The signature is compared as text, the MAC encoded the one canonical way:
 * decoding the token's text instead would accept variants of one signature
 * (base64's unused low bits of the last character, '=' decoded as 'A'),
 * which libjwt refuses. */
static bool signature_ok(const struct hsjwt *h, const char *signed_part, size_t slen,
                         const char *sig, size_t siglen)
{
    unsigned char mac[HMAC_MAX_SIZE];
    char want[(HMAC_MAX_SIZE + 2) / 3 * 4 + 1];
    size_t mlen = hmac_size(h->mac);
    hmac_compute(h->mac, signed_part, slen, mac);
    int n = EVP_EncodeBlock((unsigned char *)want, mac, (int)mlen);
    while (n > 0 && want[n - 1] == '=')
        n--;
    for (int i = 0; i < n; i++)
        want[i] = want[i] == '+' ? '-' : want[i] == '/' ? '_' : want[i];
    return (size_t)n == siglen && CRYPTO_memcmp(want, sig, siglen) == 0;
}

/* Is the payload a JSON object? For a token whose signature failed: one
 * that is not is "malformed" whatever its signature, as libjwt classifies
 * it. */
static bool payload_is_object(const char *s, size_t len)
{
    json_t *j = hsjwt_segment_json(s, len);
    json_decref(j);
    return j != NULL;
}

enum hsjwt_result hsjwt_verify(struct hsjwt *h, const char *token, size_t len,
                               struct claims *claims)
{
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return HSJWT_MALFORMED;
    enum hsjwt_result r = check_header(h, token, (size_t)(d1 - token));
    if (r != HSJWT_OK)
        return r;
    const char *payload = d1 + 1;
    size_t plen = (size_t)(d2 - d1 - 1);
    /* the signature first: only a payload signed with the key is read
     * (claims.h) */
    if (!signature_ok(h, token, (size_t)(d2 - token), d2 + 1, len - (size_t)(d2 + 1 - token)))
        return payload_is_object(payload, plen) ? HSJWT_BAD_SIGNATURE : HSJWT_MALFORMED;
    unsigned char buf[SEG_MAX];
    int n = b64url_decode(payload, plen, buf, sizeof buf);
    if (n < 0 || claims_read(claims, (const char *)buf, (size_t)n) < 0)
        return HSJWT_MALFORMED;
    return HSJWT_OK;
}
