/* fmt: integers in decimal without printf, for text built once per message
 * (the id in a client's message event, the numbers of a Redis command):
 * snprintf parses its format on every call, and with the RFC 3339 time it
 * was ~1.5 % of a busy gateway's profile (docs/benchmarks.md). */
#ifndef CF_FMT_H
#define CF_FMT_H

#include <stddef.h>
#include <stdint.h>

#define CF_FMT_I64_MAX 20 /* "-9223372036854775808" */

/* Writes v in decimal, as printf's "%" PRId64 would, without a NUL, into
 * the caller's out (at least CF_FMT_I64_MAX bytes). Returns the length. */
static inline size_t cf_fmt_i64(char *out, int64_t v)
{
    char rev[CF_FMT_I64_MAX];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;
    do {
        rev[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = rev[--n];
    return len;
}

#endif
