/* clock: wall-clock and monotonic time (ms, and us for timing short work),
 * and the RFC 3339 form clients see. */
#ifndef CF_CLOCK_H
#define CF_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t cf_wall_ms(void);
/* Milliseconds from an arbitrary origin that never jumps (CLOCK_MONOTONIC). */
int64_t cf_mono_ms(void);
/* The same clock in microseconds (for timing short work). */
int64_t cf_mono_us(void);

#define CF_RFC3339_LEN 24 /* "2026-11-28T10:00:00.123Z" */
/* The times it can write: 0000-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z */
#define CF_RFC3339_MIN_MS (-62167219200000LL)
#define CF_RFC3339_MAX_MS 253402300799999LL

/* Writes ms as UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" plus a NUL into out (>= 25
 * bytes). Returns the length (24), or -1 for a time outside years 0000-9999.
 * Keeps the date of the last second it wrote (per thread): a burst of
 * events within one second works it out once. */
int cf_rfc3339_ms(int64_t ms, char *out, size_t cap);

#endif
