/* claims: see claims.h. */
#include "claims.h"

#include <string.h>

#define INT_DIGITS_MAX 18 /* below 10^18: no overflow to think about */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string of printable ASCII without escapes, *pp at its opening quote.
 * Its closing quote becomes its NUL (the text is the recognizer's copy). */
static bool take_string(char **pp, const char *end, const char **s, size_t *n)
{
    char *p = *pp + 1, *q = p;
    while (q < end && *q != '"') {
        unsigned char ch = (unsigned char)*q;
        if (ch < 0x20 || ch >= 0x80 || ch == '\\')
            return false;
        q++;
    }
    if (q >= end)
        return false;
    *q = '\0';
    *s = p;
    *n = (size_t)(q - p);
    *pp = q + 1;
    return true;
}

/* -?[1-9][0-9]{0,17} or 0, not followed by a fraction, an exponent or
 * another digit (a leading zero: jansson refuses it). */
static bool take_integer(char **pp, const char *end, int64_t *v)
{
    char *p = *pp;
    bool neg = p < end && *p == '-';
    if (neg)
        p++;
    if (p >= end || *p < '0' || *p > '9' || (neg && *p == '0'))
        return false;
    int64_t x = 0;
    int digits = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (++digits > INT_DIGITS_MAX)
                return false;
            x = x * 10 + (*p++ - '0');
        }
    }
    if (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E'))
        return false;
    *v = neg ? -x : x;
    *pp = p;
    return true;
}

bool claims_recognize(struct claims *c, const char *json, size_t len)
{
    c->doc = NULL;
    c->n = 0;
    if (len > CLAIMS_TEXT_MAX)
        return false;
    memcpy(c->text, json, len);
    c->text[len] = '\0';
    char *p = c->text;
    const char *end = c->text + len;
    p = (char *)skip_ws(p, end);
    if (p >= end || *p != '{')
        return false;
    p = (char *)skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (p >= end || *p != '"' || c->n == CLAIMS_MAX)
                return false;
            const char *key;
            size_t key_len;
            if (!take_string(&p, end, &key, &key_len))
                return false;
            for (unsigned i = 0; i < c->n; i++) /* jansson refuses duplicates */
                if (c->m[i].key_len == key_len && memcmp(c->m[i].key, key, key_len) == 0)
                    return false;
            p = (char *)skip_ws(p, end);
            if (p >= end || *p != ':')
                return false;
            p = (char *)skip_ws(p + 1, end);
            struct claim v = {0};
            if (p < end && *p == '"') {
                v.kind = CLAIM_STRING;
                if (!take_string(&p, end, &v.s, &v.n))
                    return false;
            } else {
                v.kind = CLAIM_INTEGER;
                if (!take_integer(&p, end, &v.i))
                    return false;
            }
            c->m[c->n].key = key;
            c->m[c->n].key_len = key_len;
            c->m[c->n].v = v;
            c->n++;
            p = (char *)skip_ws(p, end);
            if (p < end && *p == ',') {
                p = (char *)skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return false;
        }
    }
    return skip_ws(p, end) == end;
}

int claims_read(struct claims *c, const char *json, size_t len)
{
    if (claims_recognize(c, json, len))
        return 0;
    return claims_adopt(c, json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL));
}

int claims_adopt(struct claims *c, json_t *doc)
{
    c->n = 0;
    c->doc = NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return -1;
    }
    c->doc = doc;
    return 0;
}

static void member_of(json_t *j, struct claim *out)
{
    *out = (struct claim){.kind = CLAIM_OTHER, .j = j};
    if (json_is_string(j)) {
        out->kind = CLAIM_STRING;
        out->s = json_string_value(j);
        out->n = json_string_length(j);
    } else if (json_is_integer(j)) {
        out->kind = CLAIM_INTEGER;
        out->i = (int64_t)json_integer_value(j);
    } else if (json_is_real(j)) {
        out->kind = CLAIM_REAL;
        out->r = json_real_value(j);
    }
}

bool claims_get(const struct claims *c, const char *key, struct claim *out)
{
    if (c->doc) {
        json_t *j = json_object_get(c->doc, key);
        if (!j)
            return false;
        member_of(j, out);
        return true;
    }
    size_t n = strlen(key);
    for (unsigned i = 0; i < c->n; i++)
        if (c->m[i].key_len == n && memcmp(c->m[i].key, key, n) == 0) {
            *out = c->m[i].v;
            return true;
        }
    return false;
}

void claims_release(struct claims *c)
{
    json_decref(c->doc);
    c->doc = NULL;
    c->n = 0;
}
