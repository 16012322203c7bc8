/* fresh: see fresh.h. */
#include "fresh.h"

#include <stdio.h>
#include <string.h>

/* The names of days and months are fixed by RFC 9110, whatever the locale. */
static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int fresh_format_date(time_t when, char *out)
{
    struct tm tm;
    if (!gmtime_r(&when, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        return -1;
    /* formatted apart and measured: gcc cannot see that each field fits
     * (-Wformat-truncation at -O0), and a date that does not is no date */
    char tmp[80];
    int n = snprintf(tmp, sizeof tmp, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                     tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
    if (n != FRESH_DATE_LEN)
        return -1;
    memcpy(out, tmp, FRESH_DATE_LEN + 1);
    return 0;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int fresh_parse_date(const char *s, time_t *out)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT": fixed positions, so checked by hand
     * rather than by sscanf, which would take " 6" for "06" and more. */
    if (strlen(s) != FRESH_DATE_LEN || memcmp(s + 3, ", ", 2) || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT"))
        return -1;
    int wday = -1, mon = -1;
    for (int i = 0; i < 7; i++)
        if (!memcmp(s, days[i], 3))
            wday = i;
    for (int i = 0; i < 12; i++)
        if (!memcmp(s + 8, months[i], 3))
            mon = i;
    int mday = digits(s + 5, 2), year = digits(s + 12, 4), hour = digits(s + 17, 2),
        min = digits(s + 20, 2), sec = digits(s + 23, 2);
    if (wday < 0 || mon < 0 || mday < 1 || mday > 31 || year < 0 || hour < 0 || hour > 23 ||
        min < 0 || min > 59 || sec < 0 || sec > 60)
        return -1;
    struct tm tm = {.tm_sec = sec,
                    .tm_min = min,
                    .tm_hour = hour,
                    .tm_mday = mday,
                    .tm_mon = mon,
                    .tm_year = year - 1900};
    time_t t = timegm(&tm);
    /* timegm normalises 31 Feb into March: such a date is not one. */
    if (t == (time_t)-1 || tm.tm_mday != mday || tm.tm_mon != mon)
        return -1;
    *out = t;
    return 0;
}

void fresh_tags_of(const struct stat *st, struct fresh_tags *t)
{
    snprintf(t->etag, sizeof t->etag, "W/\"%llx-%llx.%lx\"", (unsigned long long)st->st_size,
             (unsigned long long)st->st_mtim.tv_sec, (unsigned long)st->st_mtim.tv_nsec);
    t->mtime = st->st_mtim.tv_sec;
    if (fresh_format_date(t->mtime, t->last_modified) < 0)
        t->last_modified[0] = '\0'; /* a time with no HTTP date: no Last-Modified */
}

/* Whether the If-None-Match list names etag (its opaque part, quotes
 * included). Tags are compared weakly: "x" and W/"x" are the same. */
static bool etag_listed(const char *list, const char *etag)
{
    const char *opaque = etag + 2; /* past W/ */
    size_t olen = strlen(opaque);
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return false;
        if (*p == '*')
            return true;
        if (!strncmp(p, "W/", 2))
            p += 2;
        if (*p != '"')
            return false; /* not an entity tag: the rest cannot be trusted */
        const char *close = strchr(p + 1, '"');
        if (!close)
            return false;
        size_t len = (size_t)(close - p) + 1;
        if (len == olen && !memcmp(p, opaque, len))
            return true;
        p = close + 1;
    }
}

bool fresh_not_modified(const struct fresh_tags *t, const char *if_none_match,
                        const char *if_modified_since)
{
    /* With both, If-None-Match decides (RFC 9110 section 13.2.2): the
     * nanoseconds in the ETag see a change within the same second. */
    if (if_none_match)
        return etag_listed(if_none_match, t->etag);
    time_t since;
    return if_modified_since && t->last_modified[0] &&
           fresh_parse_date(if_modified_since, &since) == 0 && since == t->mtime;
}
