/* wsframe: see wsframe.h. */
#include "wsframe.h"

#include <stdlib.h>
#include <string.h>

#define MAX_CONTROL 125

size_t wsf_header(uint8_t *h, enum wsf_op op, size_t len)
{
    h[0] = (uint8_t)(0x80 | op); /* FIN; server frames are not masked */
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* The state packs the continuation bytes still expected and the range the
 * next one must fall in (which is narrower after E0, ED, F0 and F4: no
 * overlong forms, no surrogates, nothing past U+10FFFF). */
#define U8(need, lo, hi) ((uint32_t)(need) | (uint32_t)(lo) << 8 | (uint32_t)(hi) << 16)

bool wsf_utf8(uint32_t *state, const uint8_t *p, size_t n)
{
    uint32_t st = *state;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!st) {
            if (c < 0x80)
                continue;
            if (c >= 0xc2 && c <= 0xdf)
                st = U8(1, 0x80, 0xbf);
            else if (c == 0xe0)
                st = U8(2, 0xa0, 0xbf);
            else if (c == 0xed)
                st = U8(2, 0x80, 0x9f);
            else if (c >= 0xe1 && c <= 0xef)
                st = U8(2, 0x80, 0xbf);
            else if (c == 0xf0)
                st = U8(3, 0x90, 0xbf);
            else if (c >= 0xf1 && c <= 0xf3)
                st = U8(3, 0x80, 0xbf);
            else if (c == 0xf4)
                st = U8(3, 0x80, 0x8f);
            else
                return false;
            continue;
        }
        if (c < ((st >> 8) & 0xff) || c > (st >> 16))
            return false;
        uint32_t need = (st & 0xff) - 1;
        st = need ? U8(need, 0x80, 0xbf) : 0;
    }
    *state = st;
    return true;
}

/* RFC 6455 7.4 and IANA's registry: 1012-1014 came after the RFC, and the
 * gateway itself closes with 1012, so a client that answers a close with its
 * code must not be taken for a broken one. 1004-1006 and 1015 never go on
 * the wire. */
bool wsf_close_code_ok(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

void wsf_rx_reset(struct wsf_rx *st)
{
    free(st->ctl);
    memset(st, 0, sizeof *st);
}

static void unmask(struct wsf_rx *st, uint8_t *p, size_t n)
{
    size_t i = 0;
    uint8_t m0 = st->moff;
    if (n >= 16) {
        /* a word at a time, the mask rotated to where this piece starts */
        uint8_t m[8];
        for (int k = 0; k < 8; k++)
            m[k] = st->mask[(m0 + k) & 3];
        uint64_t mw;
        memcpy(&mw, m, 8);
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            w ^= mw;
            memcpy(p + i, &w, 8);
        }
    }
    for (; i < n; i++)
        p[i] ^= st->mask[(m0 + i) & 3];
    st->moff = (uint8_t)((m0 + n) & 3);
}

static int fail(const char **why, int code, const char *what)
{
    *why = what;
    return code;
}

/* Checks the first two bytes of a header, as soon as they are in: a frame
 * that breaks a rule is refused before the rest of it. */
static int check_start(struct wsf_rx *st, const char **why)
{
    uint8_t b0 = st->hdr[0], op = b0 & 0x0f, l7 = st->hdr[1] & 0x7f;
    if (b0 & 0x70)
        return fail(why, 1002, "reserved bits set (no extension was negotiated)");
    if (!(st->hdr[1] & 0x80))
        return fail(why, 1002, "unmasked client frame");
    switch (op) {
    case WSF_CLOSE:
    case WSF_PING:
    case WSF_PONG:
        if (!(b0 & 0x80) || l7 > MAX_CONTROL)
            return fail(why, 1002, "control frame fragmented or over 125 bytes");
        return 0;
    case WSF_TEXT:
    case WSF_BINARY:
        return st->msg_op ? fail(why, 1002, "new message inside a fragmented one") : 0;
    case WSF_CONT:
        return st->msg_op ? 0 : fail(why, 1002, "continuation frame outside a message");
    default:
        return fail(why, 1002, "reserved opcode");
    }
}

/* Starts the frame of a complete, checked header. */
static int start_frame(struct wsf_rx *st, uint64_t len, uint32_t max_msg, const char **why)
{
    st->fin = st->hdr[0] & 0x80;
    st->op = st->hdr[0] & 0x0f;
    st->moff = 0;
    st->in_payload = true;
    if (st->op >= WSF_CLOSE) {
        st->left = (uint32_t)len; /* at most 125 (check_start) */
        st->ctllen = 0;
        /* a message's UTF-8 state is kept: a close's reason is checked on
         * its own (control_done), and a parse that went on after it must
         * still check the message's rest */
        return 0;
    }
    if (st->op != WSF_CONT) {
        st->msg_op = st->op;
        st->msglen = 0;
        st->utf8 = 0;
    }
    if (len > max_msg || st->msglen > max_msg - len)
        return fail(why, 1009, "message too big");
    st->left = (uint32_t)len;
    st->msglen += (uint32_t)len;
    return 0;
}

/* Gathers header bytes; returns bytes taken, or -(close code). */
static long take_header(struct wsf_rx *st, const uint8_t *p, size_t n, uint32_t max_msg,
                        int *code, const char **why)
{
    size_t used = 0;
    for (;;) {
        size_t need = 2;
        if (st->hlen == 2 && (*code = check_start(st, why)) != 0)
            return -1;
        if (st->hlen >= 2) {
            uint8_t l7 = st->hdr[1] & 0x7f;
            need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + 4;
        }
        if (st->hlen == need)
            break;
        if (used == n)
            return (long)used;
        size_t k = need - st->hlen;
        if (k > n - used)
            k = n - used;
        memcpy(st->hdr + st->hlen, p + used, k);
        st->hlen = (uint8_t)(st->hlen + k);
        used += k;
    }
    uint8_t l7 = st->hdr[1] & 0x7f;
    uint64_t len = l7;
    if (l7 == 126) {
        len = (uint64_t)st->hdr[2] << 8 | st->hdr[3];
    } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | st->hdr[2 + i];
        if (len >> 63) {
            *code = fail(why, 1002, "frame length over 2^63");
            return -1;
        }
    }
    memcpy(st->mask, st->hdr + st->hlen - 4, 4);
    st->hlen = 0;
    *code = start_frame(st, len, max_msg, why);
    return *code ? -1 : (long)used;
}

static int control_done(struct wsf_rx *st, const uint8_t *p, size_t n, const struct wsf_sink *sk,
                        void *ud, const char **why)
{
    st->in_payload = false;
    if (st->op == WSF_PING)
        return sk->ping(ud, p, n) ? -1 : 0;
    if (st->op == WSF_PONG)
        return sk->pong(ud) ? -1 : 0;
    if (n == 1)
        return fail(why, 1002, "close frame with a 1-byte payload");
    int code = 1005;
    if (n >= 2) {
        code = p[0] << 8 | p[1];
        if (!wsf_close_code_ok(code))
            return fail(why, 1002, "close code a peer may not send");
        uint32_t u = 0;
        if (!wsf_utf8(&u, p + 2, n - 2) || u)
            return fail(why, 1007, "close reason is not valid UTF-8");
    }
    return sk->close(ud, code, n >= 2 ? p + 2 : p, n >= 2 ? n - 2 : 0) ? -1 : 0;
}

/* A piece of control payload (already unmasked). */
static int control_piece(struct wsf_rx *st, const uint8_t *p, size_t k, const struct wsf_sink *sk,
                         void *ud, const char **why)
{
    if (st->left == 0 && st->ctllen == 0) /* whole in this read: no copy */
        return control_done(st, p, k, sk, ud, why);
    if (k == 0)
        return 0; /* the header ended the read: the payload may still come whole */
    if (!st->ctl && !(st->ctl = malloc(MAX_CONTROL)))
        return fail(why, 1011, "out of memory");
    memcpy(st->ctl + st->ctllen, p, k);
    st->ctllen = (uint8_t)(st->ctllen + k);
    if (st->left)
        return 0;
    int rc = control_done(st, st->ctl, st->ctllen, sk, ud, why);
    free(st->ctl);
    st->ctl = NULL;
    st->ctllen = 0;
    return rc;
}

static int data_piece(struct wsf_rx *st, const uint8_t *p, size_t k, bool first,
                      const struct wsf_sink *sk, void *ud, const char **why)
{
    bool final = st->fin && st->left == 0;
    if (st->msg_op == WSF_TEXT && (!wsf_utf8(&st->utf8, p, k) || (final && st->utf8)))
        return fail(why, 1007, "text message is not valid UTF-8");
    bool binary = st->msg_op == WSF_BINARY;
    if (final)
        st->msg_op = 0;
    if (st->left == 0)
        st->in_payload = false;
    return sk->data(ud, binary, p, k, first, final, st->left) ? -1 : 0;
}

int wsf_feed(struct wsf_rx *st, uint8_t *buf, size_t len, uint32_t max_msg,
             const struct wsf_sink *sk, void *ud, const char **why)
{
    size_t i = 0;
    while (i < len || (st->in_payload && st->left == 0)) {
        if (!st->in_payload) {
            int code = 0;
            long used = take_header(st, buf + i, len - i, max_msg, &code, why);
            if (used < 0)
                return code;
            i += (size_t)used;
            if (!st->in_payload)
                return 0; /* the header continues in the next read */
            /* a data frame's first piece: the first frame of its message */
            if (st->op <= WSF_BINARY) {
                bool first = st->op != WSF_CONT;
                size_t k = st->left < len - i ? (size_t)st->left : len - i;
                unmask(st, buf + i, k);
                st->left -= (uint32_t)k;
                int rc = data_piece(st, buf + i, k, first, sk, ud, why);
                if (rc)
                    return rc;
                i += k;
                continue;
            }
        }
        size_t k = st->left < len - i ? (size_t)st->left : len - i;
        unmask(st, buf + i, k);
        st->left -= (uint32_t)k;
        int rc = st->op <= WSF_BINARY ? data_piece(st, buf + i, k, false, sk, ud, why)
                                      : control_piece(st, buf + i, k, sk, ud, why);
        if (rc)
            return rc;
        i += k;
        if (st->in_payload && st->left)
            return 0; /* only when the read ran out */
    }
    return 0;
}
