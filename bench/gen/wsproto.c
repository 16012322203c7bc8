/* wsproto: see wsproto.h. */
#include "wsproto.h"

#include "token.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int ws_parse(const uint8_t *p, size_t n, uint64_t max_len, ws_frame *f)
{
    f->hdr = 0;
    f->len = 0;
    if (n < 2)
        return WS_NEED_MORE;
    uint8_t b0 = p[0], b1 = p[1];
    if (b0 & 0x70 || b1 & 0x80)
        return WS_ERROR; /* RSV without an extension, or a masked server frame */
    f->fin = b0 >> 7;
    f->opcode = b0 & 0x0f;
    switch (f->opcode) {
    case WS_CONT:
    case WS_TEXT:
    case WS_BIN:
        break;
    case WS_CLOSE:
    case WS_PING:
    case WS_PONG:
        if (!f->fin || (b1 & 0x7f) > 125)
            return WS_ERROR;
        break;
    default:
        return WS_ERROR;
    }
    uint64_t len = b1 & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
        if (n < 4)
            return WS_NEED_MORE;
        len = (uint64_t)p[2] << 8 | p[3];
        hdr = 4;
    } else if (len == 127) {
        if (n < 10)
            return WS_NEED_MORE;
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | p[i];
        hdr = 10;
        if (len >> 63)
            return WS_ERROR;
    }
    if (len > max_len)
        return WS_ERROR;
    f->hdr = hdr;
    f->len = len;
    return n - hdr >= len ? WS_COMPLETE : WS_NEED_MORE;
}

size_t ws_client_hdr_len(size_t n)
{
    return (n <= 125 ? 2 : n <= 0xffff ? 4 : 10) + 4;
}

void ws_mask(uint8_t *p, size_t n, uint32_t mask, size_t phase)
{
    uint8_t m[4];
    memcpy(m, &mask, 4);
    size_t i = 0;
    /* word at a time once aligned to the mask's phase: most of the cost of
     * sending is here and in the kernel */
    for (; i < n && (i + phase) % 4; i++)
        p[i] ^= m[(i + phase) % 4];
    uint32_t w;
    memcpy(&w, m, 4);
    uint64_t w2 = (uint64_t)w << 32 | w;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= w2;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] ^= m[(i + phase) % 4];
}

size_t ws_write_frame(uint8_t *out, int opcode, const uint8_t *payload, size_t n, uint32_t mask)
{
    size_t o = 0;
    out[o++] = (uint8_t)(0x80 | opcode);
    if (n <= 125) {
        out[o++] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        out[o++] = 0x80 | 126;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)n;
    } else {
        out[o++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[o++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(out + o, &mask, 4);
    o += 4;
    if (n)
        memcpy(out + o, payload, n);
    ws_mask(out + o, n, mask, 0);
    return o + n;
}

int ws_request(char *out, size_t cap, const char *host, const char *path, const char *key,
               const char *subprotocol)
{
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     path, host, key, subprotocol ? "Sec-WebSocket-Protocol: " : "",
                     subprotocol ? subprotocol : "", subprotocol ? "\r\n" : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

void ws_accept_for(const char *key, char out[29])
{
    static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[128];
    size_t kl = strlen(key);
    if (kl > sizeof buf - sizeof GUID)
        kl = sizeof buf - sizeof GUID;
    memcpy(buf, key, kl);
    memcpy(buf + kl, GUID, sizeof GUID - 1);
    uint8_t md[SHA_DIGEST_LENGTH];
    SHA1((const uint8_t *)buf, kl + sizeof GUID - 1, md);
    tk_base64(md, sizeof md, 0, out, 29);
}

/* The value of header `name` in the block [p, end), trimmed, or NULL. */
static const char *header_value(const char *p, const char *end, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *line = memchr(p, '\n', (size_t)(end - p));
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && isspace((unsigned char)ve[-1]))
                ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

int ws_check_response(const char *p, size_t n, const char *accept, int *status)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    end += 4;
    int code = 0;
    if (n >= 12 && memcmp(p, "HTTP/1.", 7) == 0 && p[8] == ' ')
        code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (status)
        *status = code;
    if (code != 101)
        return -1;
    size_t vl = 0;
    const char *v = header_value(p, end, "Upgrade", &vl);
    if (!v || vl != 9 || strncasecmp(v, "websocket", 9) != 0)
        return -1;
    v = header_value(p, end, "Sec-WebSocket-Accept", &vl);
    if (!v || vl != strlen(accept) || memcmp(v, accept, vl) != 0)
        return -1;
    return (int)(end - p);
}
