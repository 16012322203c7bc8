/* log: see log.h. Kept free of allocation so it is safe on any error path. */
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/types.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "validate.h"

static enum cf_log_level g_level = CF_LOG_INFO;
static enum cf_log_format g_format = CF_LOG_TEXT;
static char g_process[32] = "confab";

static const char *const level_names[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

void cf_log_set_process(const char *name)
{
    snprintf(g_process, sizeof g_process, "%s", name);
}

void cf_log_set_level(enum cf_log_level level)
{
    g_level = level;
}

enum cf_log_level cf_log_get_level(void)
{
    return g_level;
}

int cf_log_level_parse(const char *name, enum cf_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *out = (enum cf_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = CF_LOG_WARN;
        return 0;
    }
    return -1;
}

void cf_log_set_format(enum cf_log_format f)
{
    g_format = f;
}

int cf_log_format_parse(const char *name, enum cf_log_format *out)
{
    if (strcasecmp(name, "text") == 0)
        *out = CF_LOG_TEXT;
    else if (strcasecmp(name, "json") == 0)
        *out = CF_LOG_JSON;
    else
        return -1;
    return 0;
}

int cf_log_detect_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0 ||
        (unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino)
        return 0;
    g_format = CF_LOG_JOURNAL;
    return 1;
}

int cf_log_enabled(enum cf_log_level level)
{
    return level >= g_level;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* a prefix of the caller's format */
/* The end of the printf conversion that starts at the '%' at c. */
static const char *conversion_end(const char *c)
{
    c++;
    c += strspn(c, "-+ #0");
    c += strspn(c, "0123456789*");
    if (*c == '.')
        c += 1 + strspn(c + 1, "0123456789*");
    c += strspn(c, "hlLqjzt");
    return *c ? c + 1 : c;
}

/* The length of fmt's first n bytes formatted from ap (not consumed). */
static int formatted_len(const char *fmt, size_t n, va_list ap)
{
    char pre[512];
    if (n >= sizeof pre)
        return -1;
    memcpy(pre, fmt, n);
    pre[n] = '\0';
    va_list cp;
    va_copy(cp, ap);
    int len = vsnprintf(NULL, 0, pre, cp);
    va_end(cp);
    return len;
}

/* See log.h. The conversion's place in msg is the length of the format's
 * text before it, formatted with the same arguments. */
void cf_log_field(const char *fmt, va_list ap, const char *msg, size_t mlen, const char *key,
                  int digits, char *out, size_t cap)
{
    out[0] = '\0';
    size_t kl = strlen(key);
    const char *p = fmt;
    while ((p = strstr(p, key)) && (p[kl] != '%' || (p > fmt && isalnum((unsigned char)p[-1]))))
        p++;
    if (!p)
        return;
    const char *conv = p + kl;
    int from = formatted_len(fmt, (size_t)(conv - fmt), ap);
    int to = formatted_len(fmt, (size_t)(conversion_end(conv) - fmt), ap);
    if (from < 0 || to <= from || (size_t)to > mlen || (size_t)(to - from) >= cap)
        return; /* cut short with the line, or longer than any room or id */
    const char *v = msg + from;
    size_t k = (size_t)(to - from);
    for (size_t i = 0; i < k; i++)
        if (digits ? !(v[i] >= '0' && v[i] <= '9') : !cf_room_valid(v + i, 1))
            return;
    memcpy(out, v, k);
    out[k] = '\0';
}
#pragma GCC diagnostic pop

static void to_journal(enum cf_log_level level, const char *tag, const char *msg, const char *room,
                       const char *conn)
{
    static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
    char f[6][1700];
    struct iovec iov[6];
    int n = 0;
    snprintf(f[n++], sizeof f[0], "MESSAGE=%s: %s", tag, msg);
    snprintf(f[n++], sizeof f[0], "PRIORITY=%d", prio[level]);
    snprintf(f[n++], sizeof f[0], "SYSLOG_IDENTIFIER=confab-%s", g_process);
    snprintf(f[n++], sizeof f[0], "CONFAB_MODULE=%s", tag);
    if (room[0]) /* fields only when the line names a room or a connection */
        snprintf(f[n++], sizeof f[0], "CONFAB_ROOM=%s", room);
    if (conn[0])
        snprintf(f[n++], sizeof f[0], "CONFAB_CONN=%s", conn);
    for (int i = 0; i < n; i++)
        iov[i] = (struct iovec){f[i], strlen(f[i])};
    sd_journal_sendv(iov, n);
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
                                 : (s[0] & 0xf8) == 0xf0                   ? 4
                                                                           : 0;
    for (size_t i = 1; i < n; i++)
        if (!s[i]) /* a sequence cut short by the end of the string */
            return 0;
    return n && cf_utf8_valid((const char *)s, n) ? n : 0;
}

/* Whether the valid UTF-8 sequence p[0..k) is a C1 control (U+0080-U+009F),
 * a bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069) or a
 * line or paragraph separator (U+2028, U+2029): characters that change how
 * a line shows (or is split) rather than show. Its code point in *cp. */
static bool misleads(const unsigned char *p, size_t k, unsigned *cp)
{
    if (k == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
        *cp = p[1];
        return true;
    }
    if (k == 3 && p[0] == 0xe2 &&
        ((p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae) ||
         (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))) {
        *cp = 0x2000u | (unsigned)(p[1] & 0x3f) << 6 | (p[2] & 0x3fu);
        return true;
    }
    return false;
}

/* Makes s[0..n) safe to show on a terminal or in journalctl, in place, and
 * returns its new length (never longer): C0 controls and DEL, C1 controls
 * (U+0080-U+009F, which some terminals obey as escapes), bytes that are not
 * UTF-8 (a raw 0x9b is CSI to an 8-bit terminal), the bidirectional
 * overrides and isolates (U+202A-U+202E, U+2066-U+2069: they reorder what a
 * reader sees) and the line and paragraph separators (U+2028, U+2029) each
 * become one '?'. The names and texts in lines come from peers and clients. */
static size_t plain(char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *p = (const unsigned char *)s + i;
        if (p[0] < 0x80) {
            s[w++] = p[0] < 0x20 || p[0] == 0x7f ? '?' : (char)p[0];
            i++;
            continue;
        }
        size_t k = utf8_seq(p);
        unsigned cp;
        if (k == 0 || k > n - i || misleads(p, k, &cp)) {
            s[w++] = '?';
            i += k && k <= n - i ? k : 1;
            continue;
        }
        memmove(s + w, p, k);
        w += k;
        i += k;
    }
    return w;
}

/* Appends s to out as the inside of a JSON string: quotes, backslashes and
 * control characters escaped, and bytes that are not UTF-8 (a hostile header,
 * or a value cut mid-character) replaced by U+FFFD, so every line parses.
 * What plain() replaces among valid UTF-8 is escaped as \uXXXX: the value is
 * kept, and the raw line, read with less or grep, shows no control. */
static size_t json_escape(char *out, size_t n, size_t cap, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p && n + 7 < cap) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
            p++;
        } else if (c < 0x20 || c == 0x7f) { /* DEL too: no control character shows raw */
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            out[n++] = (char)c;
            p++;
        } else {
            size_t k = utf8_seq(p);
            unsigned cp;
            if (k && misleads(p, k, &cp)) {
                n += (size_t)snprintf(out + n, cap - n, "\\u%04x", cp);
                p += k;
            } else if (k) {
                memcpy(out + n, p, k);
                n += k;
                p += k;
            } else {
                memcpy(out + n, "\xef\xbf\xbd", 3);
                n += 3;
                p++;
            }
        }
    }
    return n;
}

void cf_log_v(enum cf_log_level level, const char *tag, const char *fmt, va_list ap)
{
    if (level < g_level)
        return;
    char msg[1536];
    va_list again; /* for the journal's fields, which read the arguments again */
    va_copy(again, ap);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    if (m < 0) {
        va_end(again);
        return;
    }
    /* One event, one line: a stray newline in a value must not forge a line. */
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    if (g_format == CF_LOG_JOURNAL) {
        size_t len = strlen(msg);
        char room[CF_ROOM_MAX + 1], conn[24]; /* before plain(), which may shorten msg */
        cf_log_field(fmt, again, msg, len, "room ", 0, room, sizeof room);
        cf_log_field(fmt, again, msg, len, "conn ", 1, conn, sizeof conn);
        va_end(again);
        msg[plain(msg, len)] = '\0';
        to_journal(level, tag, msg, room, conn);
        return;
    }
    va_end(again);
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    size_t n;
    if (g_format == CF_LOG_JSON) {
        static const char *const lower[] = {"debug", "info", "warn", "error"};
        int k = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"process\":\"", when,
                         lower[level]);
        n = json_escape(line, (size_t)k, sizeof line - 64, g_process);
        n += (size_t)snprintf(line + n, sizeof line - n, "\",\"pid\":%ld,\"module\":\"",
                              (long)getpid());
        n = json_escape(line, n, sizeof line - 16, tag);
        n += (size_t)snprintf(line + n, sizeof line - n, "\",\"msg\":\"");
        n = json_escape(line, n, sizeof line - 4, msg);
        line[n++] = '"';
        line[n++] = '}';
    } else {
        int k = snprintf(line, sizeof line, "%s %s %s[%ld] %s: %s", when, level_names[level],
                         g_process, (long)getpid(), tag, msg);
        if (k < 0)
            return;
        n = (size_t)k < sizeof line - 1 ? (size_t)k : sizeof line - 2; /* truncated: one line */
        /* one event, one line, and no terminal escapes from a client's bytes */
        n = plain(line, n);
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void cf_log(enum cf_log_level level, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cf_log_v(level, tag, fmt, ap);
    va_end(ap);
}
