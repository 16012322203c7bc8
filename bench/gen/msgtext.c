/* msgtext: see msgtext.h. */
#include "msgtext.h"

#include <string.h>

#define LIT(s) s, sizeof s - 1

enum mt_type mt_type(const uint8_t *p, size_t n)
{
    size_t scan = n < 64 ? n : 64;
    const uint8_t *t = memmem(p, scan, LIT("\"type\":\""));
    if (!t)
        return MT_OTHER;
    t += 8;
    size_t left = n - (size_t)(t - p);
    if (left >= 12 && memcmp(t, LIT("new_message\"")) == 0)
        return MT_NEW_MESSAGE;
    if (left >= 7 && memcmp(t, LIT("joined\"")) == 0)
        return MT_JOINED;
    if (left >= 6 && memcmp(t, LIT("error\"")) == 0)
        return MT_ERROR;
    return MT_OTHER;
}

/* Parses decimal digits ending in a space; returns the position after the
 * space, or NULL. */
static const uint8_t *number(const uint8_t *p, const uint8_t *end, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;
    const uint8_t *s = p;
    while (p < end && *p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (x > (max - d) / 10)
            return NULL;
        x = x * 10 + d;
        p++;
    }
    if (p == s || p == end || *p != ' ')
        return NULL;
    *v = x;
    return p + 1;
}

int mt_parse(const uint8_t *p, size_t n, uint32_t *sender, uint32_t *seq, uint64_t *t_ns)
{
    const uint8_t *m = memmem(p, n, LIT("\"message\":\""));
    if (!m)
        return -1;
    const uint8_t *end = p + n;
    uint64_t a, b, c;
    m += 11;
    if (!(m = number(m, end, UINT32_MAX, &a)) || !(m = number(m, end, UINT32_MAX, &b)) ||
        !number(m, end, UINT64_MAX, &c))
        return -1;
    *sender = (uint32_t)a;
    *seq = (uint32_t)b;
    *t_ns = c;
    return 0;
}

/* Writes v in decimal at out; returns the digits written. */
static size_t utoa(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t mt_build_send(char *out, size_t cap, uint32_t room, uint32_t sender, uint32_t seq,
                     uint64_t t_ns, uint32_t text_len)
{
    static const char A[] = "{\"type\":\"send\",\"payload\":{\"room\":\"bench-";
    static const char B[] = "\",\"message\":\"";
    static const char C[] = "\"}}";
    if (cap < sizeof A + sizeof B + sizeof C + 10 + 64 + text_len)
        return 0;
    size_t o = 0;
    memcpy(out, A, sizeof A - 1);
    o += sizeof A - 1;
    o += utoa(out + o, room);
    memcpy(out + o, B, sizeof B - 1);
    o += sizeof B - 1;
    size_t t0 = o;
    o += utoa(out + o, sender);
    out[o++] = ' ';
    o += utoa(out + o, seq);
    out[o++] = ' ';
    o += utoa(out + o, t_ns);
    out[o++] = ' ';
    if (o - t0 < text_len) {
        memset(out + o, 'x', text_len - (o - t0));
        o = t0 + text_len;
    }
    memcpy(out + o, C, sizeof C - 1);
    return o + sizeof C - 1;
}

size_t mt_build_join(char *out, uint32_t room)
{
    static const char A[] = "{\"type\":\"join\",\"payload\":{\"room\":\"bench-";
    static const char C[] = "\"}}";
    size_t o = sizeof A - 1;
    memcpy(out, A, o);
    o += utoa(out + o, room);
    memcpy(out + o, C, sizeof C - 1);
    return o + sizeof C - 1;
}
