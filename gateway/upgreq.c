/* upgreq: see upgreq.h. */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA1_Init and friends: upg_accept says why */
#include "upgreq.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define NOT_MINE (-1)

/* Character classes, one table lookup a byte: a request is ~500 bytes and
 * each is looked at once or twice, and the branchy tests this replaces cost
 * ~25 instructions a byte (a fifth of a handshake's user time). */
enum {
    C_TCHAR = 1,   /* RFC 9110 token: header names, Connection elements */
    C_JWT = 2,     /* what a JWT is made of: base64url segments and dots */
    C_B64 = 4,     /* base64 (the key) */
    C_VALUE = 8,   /* may stand in a header value: visible ASCII, space, tab */
    C_TARGET = 16, /* may stand in the request target: visible ASCII */
    C_QBAD = 32,   /* what lws decodes or splits at in a query: %xx, '+', ';' */
};
#define ALNUM(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9'))
#define TPUNCT(c)                                                                              \
    ((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' ||      \
     (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||       \
     (c) == '`' || (c) == '|' || (c) == '~')
#define CLS(c)                                                                                 \
    ((ALNUM(c) || TPUNCT(c) ? C_TCHAR : 0) |                                                   \
     (ALNUM(c) || (c) == '-' || (c) == '_' || (c) == '.' ? C_JWT : 0) |                        \
     (ALNUM(c) || (c) == '+' || (c) == '/' ? C_B64 : 0) |                                      \
     (((c) >= 0x20 && (c) < 0x7f) || (c) == '\t' ? C_VALUE : 0) |                              \
     ((c) > 0x20 && (c) < 0x7f ? C_TARGET : 0) |                                               \
     ((c) == '%' || (c) == '+' || (c) == ';' ? C_QBAD : 0))
#define R4(b) CLS(b), CLS((b) + 1), CLS((b) + 2), CLS((b) + 3)
#define R16(b) R4(b), R4((b) + 4), R4((b) + 8), R4((b) + 12)
#define R64(b) R16(b), R16((b) + 16), R16((b) + 32), R16((b) + 48)
static const unsigned char cls[256] = {R64(0), R64(64), R64(128), R64(192)};

static bool is(char c, unsigned mask)
{
    return (cls[(unsigned char)c] & mask) != 0;
}

/* Every byte of p[0..n) in all of the classes `want` and in none of
 * `unwanted`. No early exit: a request that is ours is scanned whole anyway,
 * and four bytes a step without branches is twice as fast. */
static bool all_are(const char *p, size_t n, unsigned want, unsigned unwanted)
{
    const unsigned char *u = (const unsigned char *)p;
    unsigned all = 0xff, any = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        unsigned a = cls[u[i]], b = cls[u[i + 1]], c = cls[u[i + 2]], d = cls[u[i + 3]];
        all &= a & b & c & d;
        any |= a | b | c | d;
    }
    for (; i < n; i++) {
        all &= cls[u[i]];
        any |= cls[u[i]];
    }
    return (all & want) == want && !(any & unwanted);
}

/* p[0..n) is `lit` in any case. lit: lower-case letters, digits and '-';
 * p: token characters or a header value, neither of which holds the bytes
 * that equal one of those once 0x20 is set ('\r' for '-', NUL for ' '). */
static bool ieq(const char *p, size_t n, const char *lit)
{
    for (size_t i = 0; i < n; i++)
        if (!lit[i] || (p[i] | 0x20) != lit[i])
            return false;
    return lit[n] == '\0';
}

static bool all_token_chars(const char *p, size_t n)
{
    return n > 0 && all_are(p, n, C_JWT, 0);
}

/* "/ws" or "/ws?args": the first `token=` argument, plain characters only
 * (lws decodes %xx and '+', which a token never needs). */
#define UPG_MAX_ARGS 16
#define UPG_MAX_LINES 32
/* lws copies Connection and Sec-WebSocket-Protocol into 128-byte buffers
 * and fails the connection when they do not fit */
#define UPG_MAX_LIST 126
static int parse_target(const char *t, size_t n, struct upg_req *r)
{
    if (n < 3 || memcmp(t, "/ws", 3) != 0)
        return NOT_MINE;
    if (n == 3)
        return 0;
    if (t[3] != '?')
        return NOT_MINE;
    const char *p = t + 4, *end = t + n;
    int args = 0;
    while (p < end) {
        if (++args > UPG_MAX_ARGS)
            return NOT_MINE;
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *arg_end = amp ? amp : end;
        if (!r->token && arg_end - p >= 6 && memcmp(p, "token=", 6) == 0) {
            r->token = p + 6;
            r->token_len = (size_t)(arg_end - p - 6);
            if (!all_token_chars(r->token, r->token_len)) /* token characters are target ones */
                return NOT_MINE;
        } else if (!all_are(p, (size_t)(arg_end - p), C_TARGET, C_QBAD)) {
            /* lws would decode %xx and '+', and split at ';' */
            return NOT_MINE;
        }
        p = arg_end + (amp ? 1 : 0);
    }
    return 0;
}

/* Is `tok` one of the comma-separated elements of a Connection value?
 * False too when an element is not a plain token (lws' tokenizer stops
 * there). */
static bool has_element(const char *v, size_t n, const char *tok)
{
    const char *p = v, *end = v + n;
    bool found = false;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c ? c : end;
        const char *a = p, *b = e;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (!all_are(a, (size_t)(b - a), C_TCHAR, 0))
            return false;
        found = found || ieq(a, (size_t)(b - a), tok);
        p = e + (c ? 1 : 0);
    }
    return found;
}

/* Sec-WebSocket-Protocol: every element must be a name served; the first
 * is chosen (lws would choose it too). */
static int parse_protocols(const char *v, size_t n, const char *const *protos, int *chosen)
{
    const char *p = v, *end = v + n;
    *chosen = -1;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c ? c : end;
        const char *a = p, *b = e;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        int found = -1;
        for (int i = 0; protos && protos[i]; i++)
            if (strlen(protos[i]) == (size_t)(b - a) && memcmp(protos[i], a, (size_t)(b - a)) == 0)
                found = i;
        if (found < 0)
            return NOT_MINE;
        if (*chosen < 0)
            *chosen = found;
        p = e + (c ? 1 : 0);
    }
    return *chosen < 0 ? NOT_MINE : 0;
}

enum hdr {
    H_HOST,
    H_UPGRADE,
    H_CONNECTION,
    H_KEY,
    H_VERSION,
    H_PROTOCOL,
    H_ORIGIN,
    H_AUTHORIZATION,
    H_COUNT,
    H_REFUSE, /* a body (Content-Length, Transfer-Encoding) is never ours;
                 lws reads Sec-WebSocket-Origin as Origin */
    H_OTHER,
};

/* By length first: one comparison a line instead of eleven. */
static enum hdr header_of(const char *name, size_t n)
{
    switch (n) {
    case 4: return ieq(name, n, "host") ? H_HOST : H_OTHER;
    case 6: return ieq(name, n, "origin") ? H_ORIGIN : H_OTHER;
    case 7: return ieq(name, n, "upgrade") ? H_UPGRADE : H_OTHER;
    case 10: return ieq(name, n, "connection") ? H_CONNECTION : H_OTHER;
    case 13: return ieq(name, n, "authorization") ? H_AUTHORIZATION : H_OTHER;
    case 14: return ieq(name, n, "content-length") ? H_REFUSE : H_OTHER;
    case 17:
        return ieq(name, n, "sec-websocket-key")   ? H_KEY
               : ieq(name, n, "transfer-encoding") ? H_REFUSE
                                                   : H_OTHER;
    case 20: return ieq(name, n, "sec-websocket-origin") ? H_REFUSE : H_OTHER;
    case 21: return ieq(name, n, "sec-websocket-version") ? H_VERSION : H_OTHER;
    case 22: return ieq(name, n, "sec-websocket-protocol") ? H_PROTOCOL : H_OTHER;
    default: return H_OTHER;
    }
}

static int check_headers(const char *v[H_COUNT], const size_t vn[H_COUNT],
                         const char *const *protos, struct upg_req *r)
{
    if (!v[H_HOST] || !vn[H_HOST] || !v[H_UPGRADE] || !ieq(v[H_UPGRADE], vn[H_UPGRADE], "websocket"))
        return NOT_MINE;
    if (!v[H_CONNECTION] || vn[H_CONNECTION] > UPG_MAX_LIST ||
        !has_element(v[H_CONNECTION], vn[H_CONNECTION], "upgrade"))
        return NOT_MINE;
    if (v[H_PROTOCOL] && vn[H_PROTOCOL] > UPG_MAX_LIST)
        return NOT_MINE;
    if (!v[H_VERSION] || vn[H_VERSION] != 2 || memcmp(v[H_VERSION], "13", 2) != 0)
        return NOT_MINE;
    /* 16 bytes in base64: 22 characters and "==" */
    if (!v[H_KEY] || vn[H_KEY] != 24 || memcmp(v[H_KEY] + 22, "==", 2) != 0)
        return NOT_MINE;
    if (!all_are(v[H_KEY], 22, C_B64, 0))
        return NOT_MINE;
    r->key = v[H_KEY];
    r->host = v[H_HOST];
    r->host_len = vn[H_HOST];
    r->origin = v[H_ORIGIN];
    r->origin_len = vn[H_ORIGIN];
    r->proto = -1;
    if (v[H_PROTOCOL] && parse_protocols(v[H_PROTOCOL], vn[H_PROTOCOL], protos, &r->proto) < 0)
        return NOT_MINE;
    if (!r->token && v[H_AUTHORIZATION]) {
        const char *a = v[H_AUTHORIZATION];
        size_t n = vn[H_AUTHORIZATION];
        if (n < 7 || strncasecmp(a, "Bearer ", 7) != 0)
            return NOT_MINE;
        a += 7;
        n -= 7;
        while (n && *a == ' ') {
            a++;
            n--;
        }
        if (!all_token_chars(a, n))
            return NOT_MINE;
        r->token = a;
        r->token_len = n;
    }
    return r->token ? 0 : NOT_MINE; /* without one, lws answers the 401 */
}

int upg_parse(const char *buf, size_t len, const char *const *protos, struct upg_req *r)
{
    static const char start[] = "GET /ws";
    memset(r, 0, sizeof *r);
    size_t cmp = len < sizeof start - 1 ? len : sizeof start - 1;
    if (memcmp(buf, start, cmp) != 0)
        return NOT_MINE;
    if (len > UPG_MAX_REQUEST)
        len = UPG_MAX_REQUEST;
    const char *end = NULL;
    for (const char *p = buf, *lim = buf + len;
         (p = memchr(p, '\r', (size_t)(lim - p))) && lim - p >= 4; p++)
        if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n') {
            end = p + 2; /* the blank line */
            break;
        }
    if (!end)
        return len >= UPG_MAX_REQUEST ? NOT_MINE : 0;

    /* request line: GET <target> HTTP/1.1 */
    const char *eol = memchr(buf, '\r', (size_t)(end - buf));
    if (!eol || eol[1] != '\n' || eol - buf < 4 + 3 + 9 || memcmp(eol - 9, " HTTP/1.1", 9) != 0)
        return NOT_MINE;
    const char *t = buf + 4, *te = eol - 9;
    /* parse_target looks at every byte of the target */
    if (parse_target(t, (size_t)(te - t), r) < 0)
        return NOT_MINE;

    const char *v[H_COUNT] = {0};
    size_t vn[H_COUNT] = {0};
    int lines = 0;
    for (const char *line = eol + 2; line < end;) {
        /* a bare LF stops the name's scan or fails the value's */
        const char *le = memchr(line, '\r', (size_t)(end - line));
        if (!le || le[1] != '\n')
            return NOT_MINE; /* a bare CR */
        const char *colon = line;
        while (colon < le && is(*colon, C_TCHAR))
            colon++;
        if (colon == line || colon == le || *colon != ':')
            return NOT_MINE; /* no name, a folded line, a space before the colon */
        const char *a = colon + 1, *b = le;
        if (!all_are(a, (size_t)(b - a), C_VALUE, 0))
            return NOT_MINE;
        while (a < b && *a == ' ') /* lws skips leading spaces only, and keeps the rest */
            a++;
        enum hdr h = header_of(line, (size_t)(colon - line));
        /* where lws would read the spaces and tabs around a value, or tabs
         * inside a list, differently from a trimming reader */
        if (h < H_COUNT && a < b && (b[-1] == ' ' || memchr(a, '\t', (size_t)(b - a))))
            return NOT_MINE;
        if (++lines > UPG_MAX_LINES)
            return NOT_MINE;
        if (h == H_REFUSE)
            return NOT_MINE;
        if (h < H_COUNT) {
            if (v[h])
                return NOT_MINE; /* which one would lws read? */
            v[h] = a;
            vn[h] = (size_t)(b - a);
        }
        line = le + 2;
    }
    if (check_headers(v, vn, protos, r) < 0)
        return NOT_MINE;
    return (int)(end + 2 - buf);
}

int upg_accept(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[SHA_DIGEST_LENGTH];
    /* SHA-1's own functions, deprecated in OpenSSL 3 but not removed: EVP's
     * digest allocated and freed a context on every call, even re-used
     * (~50 ns of ~180 here; hmac.h does the same for the token's HMAC) */
    SHA_CTX c;
    if (!SHA1_Init(&c) || !SHA1_Update(&c, key, 24) || !SHA1_Update(&c, guid, sizeof guid - 1) ||
        !SHA1_Final(md, &c))
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, md, sizeof md) == 28 ? 0 : -1;
}
