/* fresh: validators of a static file, and whether a conditional GET may be
 * answered 304 Not Modified (RFC 9110 sections 8.8 and 13.1).
 *
 * The frontend is served with "cache-control: no-cache": a browser asks
 * again on every load, and these validators let the answer be a 304 with
 * no body instead of the whole file again.
 *
 * A file's validators come from its stat alone: a weak ETag of its size and
 * modification time to the nanosecond, and Last-Modified, its modification
 * time to the second. Weak, because two files of equal size and time are
 * not proven to be byte for byte the same.
 *
 * Pure functions on caller-owned memory; no allocation, no I/O. */
#ifndef GW_FRESH_H
#define GW_FRESH_H

#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#define FRESH_ETAG_MAX 64 /* W/"<size>-<seconds>.<nanoseconds>" in hex, NUL included */
#define FRESH_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

struct fresh_tags {
    char etag[FRESH_ETAG_MAX]; /* as sent in ETag, W/ and quotes included */
    char last_modified[FRESH_DATE_LEN + 1];
    time_t mtime; /* the seconds Last-Modified names */
};

/* Fills t with the validators of a file whose stat is st. */
void fresh_tags_of(const struct stat *st, struct fresh_tags *t);

/* Whether the client's copy is current: with an If-None-Match (NULL when
 * absent), when it lists the ETag (weak comparison) or is "*"; without
 * one, when If-Modified-Since (NULL when absent) names exactly the
 * Last-Modified time. An exact match rather than "not older": a file put
 * back to an older version (a package keeps its build's times) is older
 * than the copy the client holds, and must still be sent. Anything that
 * does not parse counts as not current: a full answer is never wrong. */
bool fresh_not_modified(const struct fresh_tags *t, const char *if_none_match,
                        const char *if_modified_since);

/* Writes an HTTP date (IMF-fixdate, always GMT) of time `when` into out
 * (FRESH_DATE_LEN + 1 bytes). Returns 0, or -1 for a time gmtime cannot
 * break down or a year outside 0-9999. */
int fresh_format_date(time_t when, char *out);

/* Parses an IMF-fixdate into *out. Returns 0, or -1 when s is not one. */
int fresh_parse_date(const char *s, time_t *out);

#endif
