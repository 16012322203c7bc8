/* validate: see validate.h. The UTF-8 decoder follows the well-formed byte
 * sequences table of the Unicode standard (chapter 3, table 3-7). */
#include "validate.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Decodes one code point at s[*i]; returns it, or -1 on an ill-formed sequence. */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c = s[*i];
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    int n;
    int32_t cp;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else {
        return -1;
    }
    if (len - *i <= (size_t)n)
        return -1;
    for (int k = 1; k <= n; k++) {
        unsigned char b = s[*i + (size_t)k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            return -1;
        cp = (cp << 6) | (b & 0x3F);
    }
    *i += (size_t)n + 1;
    return cp;
}

bool cf_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* ASCII runs eight bytes at a time (most text is ASCII; this runs on
         * every message text at each hop) */
        uint64_t w;
        while (len - i >= 8 && (memcpy(&w, u + i, 8), (w & 0x8080808080808080ull) == 0))
            i += 8;
        if (i == len)
            break;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        if (utf8_next(u, len, &i) < 0)
            return false;
    }
    return true;
}

bool cf_room_valid(const char *s, size_t len)
{
    if (len == 0 || len > CF_ROOM_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_forbidden_in_name(int32_t cp)
{
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
        return true; /* C0, DEL, C1 controls */
    if (cp == 0x00AD || cp == 0x034F || cp == 0x061C || cp == 0x180E)
        return true; /* soft hyphen, grapheme joiner, Arabic letter mark, Mongolian vs */
    if ((cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
        (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB))
        return true; /* zero-width, line/para separators, bidi controls, BOM */
    if (cp >= 0xE0000 && cp <= 0xE007F)
        return true; /* tag characters */
    return false;
}

/* More characters that render as nothing: Mongolian selectors, Khmer
 * inherent vowels, musical and shorthand format controls. Refused since
 * 2026-12-06 in new names only (name_check's `strict`). */
static bool is_invisible_format(int32_t cp)
{
    return (cp >= 0x180B && cp <= 0x180D) || cp == 0x180F || cp == 0x17B4 || cp == 0x17B5 ||
           (cp >= 0x1D173 && cp <= 0x1D17A) || (cp >= 0x1BCA0 && cp <= 0x1BCA3);
}

static bool is_variation_selector(int32_t cp)
{
    return (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0100 && cp <= 0xE01EF);
}

/* Characters a variation selector may follow: symbols and emoji that have
 * a text and an emoji look (U+00A9, U+2764, U+1F600...), and CJK ideographs
 * (ideographic variation sequences). */
static bool takes_selector(int32_t cp)
{
    return cp == 0x00A9 || cp == 0x00AE || cp == 0x203C || cp == 0x2049 || cp == 0x2122 ||
           cp == 0x2139 || (cp >= 0x2190 && cp <= 0x21FF) || (cp >= 0x2300 && cp <= 0x23FF) ||
           cp == 0x24C2 || (cp >= 0x25A0 && cp <= 0x27BF) || (cp >= 0x2900 && cp <= 0x297F) ||
           (cp >= 0x2B00 && cp <= 0x2BFF) || cp == 0x3030 || cp == 0x303D || cp == 0x3297 ||
           cp == 0x3299 || (cp >= 0x1F000 && cp <= 0x1FAFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0x20000 && cp <= 0x3FFFF);
}

/* A variation selector picks the look of the character before it: an
 * emoji's (U+2764 U+FE0F), a CJK ideograph's (U+E0100...), or a keycap's
 * ('1' U+FE0F U+20E3). After anything else it shows as nothing, and
 * "alice" U+FE0F, "josé" U+FE0F or "alice" U+00A0 U+FE0F would look like
 * a name without it. */
static bool selector_ok(int32_t prev, int32_t cp, int32_t next)
{
    if (takes_selector(prev))
        return true;
    bool keycap = (prev >= '0' && prev <= '9') || prev == '#' || prev == '*';
    return keycap && cp == 0xFE0F && next == 0x20E3;
}

static bool is_unicode_space(int32_t cp)
{
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200B) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 ||
           cp == 0xFEFF;
}

/* Letters that render as nothing: Hangul fillers, the blank braille cell. */
static bool is_blank_filler(int32_t cp)
{
    return cp == 0x115F || cp == 0x1160 || cp == 0x2800 || cp == 0x3164 || cp == 0xFFA0;
}

/* `strict` for a name a user picks or an issuer signs: it must show, and may
 * not hold the invisible characters refused since 2026-12-06; a name from a
 * peer or Redis is held to the older rules (see cf_username_wire_valid). */
static int name_check(const char *s, size_t len, bool strict)
{
    if (len == 0)
        return CF_NAME_EMPTY;
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    int count = 0;
    bool shows = false;
    int32_t prev = -1;
    while (i < len) {
        if (u[i] >= 0x20 && u[i] < 0x7F) {
            shows = shows || u[i] != ' ';
            prev = u[i++]; /* printable ASCII: allowed, no decoding */
        } else {
            int32_t cp = utf8_next(u, len, &i);
            if (cp < 0)
                return CF_NAME_BAD_UTF8;
            if (is_forbidden_in_name(cp) || (strict && is_invisible_format(cp)))
                return CF_NAME_CONTROL;
            if (strict && is_variation_selector(cp)) {
                size_t k = i;
                int32_t next = k < len ? utf8_next(u, len, &k) : -1;
                if (!selector_ok(prev, cp, next))
                    return CF_NAME_CONTROL;
            }
            shows = shows || !(is_unicode_space(cp) || is_blank_filler(cp));
            prev = cp;
        }
        if (++count > CF_USERNAME_MAX)
            return CF_NAME_TOO_LONG;
    }
    return shows || !strict ? CF_NAME_OK : CF_NAME_BLANK;
}

/* Unicode spaces and blank fillers, trimmed from a name's ends: "alice"
 * with U+3000 or U+00A0 after it would show as "alice". */
static bool is_blank(int32_t cp)
{
    /* not the zero-width ones and the BOM: those stay refused, wherever */
    return (is_unicode_space(cp) || is_blank_filler(cp)) && !is_forbidden_in_name(cp);
}

/* [b, e) of u without the blanks and ASCII whitespace at its ends; stops at
 * bytes that are not UTF-8, which name_check then refuses. */
static void trim_blanks(const unsigned char *u, size_t *b, size_t *e)
{
    while (*b < *e) {
        size_t k = *b;
        if (is_ascii_space(u[k])) {
            *b = k + 1;
            continue;
        }
        int32_t cp = u[k] < 0x80 ? -1 : utf8_next(u, *e, &k);
        if (cp < 0 || !is_blank(cp))
            break;
        *b = k;
    }
    while (*e > *b) {
        if (is_ascii_space(u[*e - 1])) {
            (*e)--;
            continue;
        }
        size_t j = *e - 1;
        while (j > *b && (u[j] & 0xC0) == 0x80 && *e - j < 4)
            j--;
        size_t k = j;
        int32_t cp = u[j] < 0x80 ? -1 : utf8_next(u, *e, &k);
        if (cp < 0 || k != *e || !is_blank(cp))
            break;
        *e = j;
    }
}

int cf_username_clean(const char *in, size_t len, char *out, size_t cap)
{
    size_t b = 0, e = len;
    while (b < e && is_ascii_space((unsigned char)in[b]))
        b++;
    while (e > b && is_ascii_space((unsigned char)in[e - 1]))
        e--;
    if (b == e)
        return CF_NAME_EMPTY;
    trim_blanks((const unsigned char *)in, &b, &e);
    if (b == e)
        return CF_NAME_BLANK;
    size_t n = e - b;
    if (n > CF_USERNAME_BYTES_MAX)
        return CF_NAME_TOO_LONG;
    int rc = name_check(in + b, n, true);
    if (rc != CF_NAME_OK)
        return rc;
    if (cap < n + 1)
        return CF_NAME_TOO_LONG;
    memcpy(out, in + b, n);
    out[n] = '\0';
    return (int)n;
}

static bool trimmed_name_ok(const char *s, size_t len, bool strict)
{
    if (len == 0 || len > CF_USERNAME_BYTES_MAX)
        return false;
    if (is_ascii_space((unsigned char)s[0]) || is_ascii_space((unsigned char)s[len - 1]))
        return false;
    if (strict) { /* blanks at the ends too; not on the wire, see the header */
        size_t b = 0, e = len;
        trim_blanks((const unsigned char *)s, &b, &e);
        if (b != 0 || e != len)
            return false;
    }
    return name_check(s, len, strict) == CF_NAME_OK;
}

bool cf_username_valid(const char *s, size_t len)
{
    return trimmed_name_ok(s, len, true);
}

bool cf_username_wire_valid(const char *s, size_t len)
{
    return trimmed_name_ok(s, len, false);
}

const char *cf_name_error_str(int err)
{
    switch (err) {
    case CF_NAME_EMPTY:
        return "username must not be empty";
    case CF_NAME_TOO_LONG:
        return "username must be at most 32 characters";
    case CF_NAME_BAD_UTF8:
        return "username must be valid UTF-8";
    case CF_NAME_CONTROL:
        return "username must not contain control or invisible formatting characters";
    case CF_NAME_BLANK:
        return "username must hold a character that shows, not only spaces or blank fillers";
    default:
        return "invalid username";
    }
}

bool cf_text_has_content(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            if (!is_ascii_space(u[i]))
                return true;
            i++;
            continue;
        }
        int32_t cp = utf8_next(u, len, &i);
        if (cp < 0)
            return true; /* not ours to judge here: callers validate UTF-8 first */
        if (!is_unicode_space(cp))
            return true;
    }
    return false;
}

bool cf_text_controls_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return false;
    }
    return true;
}

bool cf_list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; *p;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len && len == n && strncasecmp(p, item, n) == 0)
            return true;
        p += len;
    }
    return false;
}
