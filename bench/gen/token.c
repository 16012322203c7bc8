/* token: see token.h. */
#include "token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static const char B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int tk_base64(const uint8_t *in, size_t n, int url, char *out, size_t cap)
{
    const char *a = url ? B64_URL : B64_STD;
    size_t need = url ? (n * 4 + 2) / 3 : (n + 2) / 3 * 4;
    if (need + 1 > cap)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = a[(v >> 6) & 63];
        else if (!url)
            out[o++] = '=';
        if (!url)
            out[o++] = '=';
    }
    out[o] = '\0';
    return (int)o;
}

int tk_hs256(const char *secret, const char *sub, int64_t now, int64_t ttl, char *out,
             size_t cap)
{
    /* {"alg":"HS256","typ":"JWT"}, encoded once by hand */
    static const char HDR[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
    char claims[160];
    int cn = snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"iat\":%lld,\"exp\":%lld}", sub,
                      (long long)now, (long long)(now + ttl));
    if (cn < 0 || (size_t)cn >= sizeof claims)
        return -1;
    size_t hl = sizeof HDR - 1;
    if (cap < hl + 2)
        return -1;
    memcpy(out, HDR, hl);
    out[hl] = '.';
    int pl = tk_base64((const uint8_t *)claims, (size_t)cn, 1, out + hl + 1, cap - hl - 1);
    if (pl < 0)
        return -1;
    size_t signed_len = hl + 1 + (size_t)pl;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const uint8_t *)out, signed_len, mac,
              &mac_len))
        return -1;
    if (signed_len + 1 >= cap)
        return -1;
    out[signed_len] = '.';
    int sl = tk_base64(mac, mac_len, 1, out + signed_len + 1, cap - signed_len - 1);
    if (sl < 0)
        return -1;
    return (int)(signed_len + 1 + (size_t)sl);
}
