/* hsjwt: see hsjwt.h. */
#include "hsjwt.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEG_MAX 4096 /* bytes of one decoded segment (tokens are bounded smaller) */

#define HDR_MEMO_MAX 128 /* the usual header is 36 characters */

struct hsjwt {
    EVP_MAC_CTX *mac;
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
    EVP_MAC *mac = h ? EVP_MAC_fetch(NULL, "HMAC", NULL) : NULL;
    if (mac) {
        h->mac = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac); /* the context keeps its own reference */
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (!h || !h->mac || !EVP_MAC_init(h->mac, key, keylen, params)) {
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
    EVP_MAC_CTX_free(h->mac); /* clears the key */
    free(h);
}

/* base64url without padding -> bytes; -1 when it is not valid. */
static int b64url_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    char tmp[SEG_MAX + 4];
    if (len % 4 == 1 || len + 3 > sizeof tmp || (len + 3) / 4 * 3 > cap)
        return -1;
    for (size_t i = 0; i < len; i++)
        tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    size_t pad = (4 - len % 4) % 4;
    memset(tmp + len, '=', pad);
    int n = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)(len + pad));
    return n < 0 ? -1 : n - (int)pad; /* EVP_DecodeBlock counts padding as bytes */
}

static json_t *segment_json(const char *s, size_t len)
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
    json_t *hdr = segment_json(s, len);
    if (!hdr)
        return HSJWT_MALFORMED;
    json_t *alg = json_object_get(hdr, "alg"), *typ = json_object_get(hdr, "typ");
    enum hsjwt_result r = HSJWT_OK;
    if (!json_is_string(alg) || (typ && !json_is_string(typ)) ||
        (typ && strcasecmp(json_string_value(typ), "JWT") != 0))
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
static bool signature_ok(struct hsjwt *h, const char *signed_part, size_t slen, const char *sig,
                         size_t siglen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    char want[(EVP_MAX_MD_SIZE + 2) / 3 * 4 + 1];
    size_t mlen = 0;
    /* a NULL key re-initialises with the key already set: no new lookup */
    if (!EVP_MAC_init(h->mac, NULL, 0, NULL) ||
        !EVP_MAC_update(h->mac, (const unsigned char *)signed_part, slen) ||
        !EVP_MAC_final(h->mac, mac, &mlen, sizeof mac))
        return false;
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
    json_t *j = segment_json(s, len);
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
