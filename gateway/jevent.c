/* jevent: see jevent.h. */
#include "jevent.h"

#include <stdbool.h>
#include <string.h>

#include "clock.h"
#include "fmt.h"
#include "validate.h"

/* A piece of the text: a literal, or a string value written quoted. */
struct part {
    const char *p;
    size_t n;
    bool quoted;
};

#define LIT(s) ((struct part){s, sizeof s - 1, false})
#define NO_PART ((struct part){"", 0, false})

static struct part value(struct cf_str s)
{
    return (struct part){s.p ? s.p : "", s.len, true};
}

/* The short escapes JSON has ('b' for \b ...), 'u' for the other control
 * characters, 0 for bytes written as they are (UTF-8 included). */
static inline char escape_of(unsigned char c)
{
    if (c >= 0x20 && c != '"' && c != '\\')
        return 0; /* nearly every byte: two passes over each text */
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return c < 0x20 ? 'u' : 0;
    }
}

static size_t quoted_len(const char *p, size_t n)
{
    size_t len = n + 2;
    for (size_t i = 0; i < n; i++) {
        char e = escape_of((unsigned char)p[i]);
        len += e == 'u' ? 5 : e ? 1 : 0;
    }
    return len;
}

static char *put_quoted(char *o, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson's \u00XX is upper case */
    *o++ = '"';
    size_t run = 0; /* bytes before i still to copy */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        char e = escape_of(c);
        if (!e) {
            run++;
            continue;
        }
        memcpy(o, p + i - run, run);
        o += run;
        run = 0;
        *o++ = '\\';
        if (e == 'u') {
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        } else {
            *o++ = e;
        }
    }
    memcpy(o, p + n - run, run);
    o += run;
    *o++ = '"';
    return o;
}

static struct cf_buf *build(const struct part *parts, size_t n, size_t headroom)
{
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].quoted && !cf_utf8_valid(parts[i].p, parts[i].n))
            return NULL; /* jansson refuses such a string too */
        need += parts[i].quoted ? quoted_len(parts[i].p, parts[i].n) : parts[i].n;
    }
    if (need > UINT32_MAX)
        return NULL;
    struct cf_buf *b = cf_buf_new(headroom, need);
    if (!b)
        return NULL;
    char *o = (char *)cf_buf_payload(b);
    for (size_t i = 0; i < n; i++) {
        if (parts[i].quoted) {
            o = put_quoted(o, parts[i].p, parts[i].n);
        } else {
            memcpy(o, parts[i].p, parts[i].n);
            o += parts[i].n;
        }
    }
    b->len = (uint32_t)need;
    return b;
}

struct cf_buf *jev_legacy_message(const struct cf_wire_msg *m, size_t headroom)
{
    char sent[CF_RFC3339_LEN + 1];
    if (cf_rfc3339_ms(m->ts, sent, sizeof sent) < 0)
        return NULL;
    const struct part parts[] = {
        LIT("{\"type\":\"new_message\",\"payload\":{\"message\":"),
        value(m->text),
        LIT(",\"from\":"),
        value(m->from),
        LIT(",\"sent\":"),
        {sent, CF_RFC3339_LEN, true},
        LIT(",\"room\":"),
        value(m->room),
        LIT("}}"),
    };
    return build(parts, sizeof parts / sizeof parts[0], headroom);
}

struct cf_buf *jev_v1_message(const struct cf_wire_msg *m, size_t headroom)
{
    char sent[CF_RFC3339_LEN + 1];
    if (cf_rfc3339_ms(m->ts, sent, sizeof sent) < 0)
        return NULL;
    /* jansson's integers are signed 64-bit, printed in decimal */
    static const char key[] = ",\"id\":";
    char id[sizeof key - 1 + CF_FMT_I64_MAX];
    size_t idlen = 0;
    if (m->has & CF_WIRE_HAS_ID) {
        memcpy(id, key, sizeof key - 1);
        idlen = sizeof key - 1 + cf_fmt_i64(id + sizeof key - 1, (int64_t)m->id);
    }
    const struct part parts[] = {
        LIT("{\"type\":\"new_message\",\"payload\":{\"room\":"),
        value(m->room),
        {id, idlen, false},
        LIT(",\"message\":"),
        value(m->text),
        LIT(",\"from\":"),
        value(m->from),
        LIT(",\"sent\":"),
        {sent, CF_RFC3339_LEN, true},
        LIT("}}"),
    };
    return build(parts, sizeof parts / sizeof parts[0], headroom);
}

struct cf_buf *jev_v1_ack(struct cf_str id, struct cf_str room, uint64_t message_id, int64_t ts,
                          size_t headroom)
{
    char sent[CF_RFC3339_LEN + 1];
    if (cf_rfc3339_ms(ts, sent, sizeof sent) < 0)
        return NULL;
    char num[CF_FMT_I64_MAX];
    size_t numlen = cf_fmt_i64(num, (int64_t)message_id); /* as jansson: signed */
    bool has_id = id.len > 0;
    const struct part parts[] = {
        LIT("{\"type\":\"ack\",\"payload\":{"),
        has_id ? LIT("\"id\":") : NO_PART,
        has_id ? value(id) : NO_PART,
        has_id ? LIT(",\"room\":") : LIT("\"room\":"),
        value(room),
        LIT(",\"message_id\":"),
        {num, numlen, false},
        LIT(",\"sent\":"),
        {sent, CF_RFC3339_LEN, true},
        LIT("}}"),
    };
    return build(parts, sizeof parts / sizeof parts[0], headroom);
}
