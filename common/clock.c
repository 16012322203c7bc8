#include "clock.h"

#include <string.h>
#include <time.h>

int64_t cf_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cf_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cf_mono_ms(void)
{
    return cf_mono_us() / 1000;
}

/* Writes v as exactly n decimal digits (v < 10^n). */
static void put_digits(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

int cf_rfc3339_ms(int64_t ms, char *out, size_t cap)
{
    /* 0000-01-01 .. 9999-12-31 keeps the fixed width clients rely on. */
    if (cap < CF_RFC3339_LEN + 1 || ms < CF_RFC3339_MIN_MS || ms > CF_RFC3339_MAX_MS)
        return -1;
    int64_t msec = ms % 1000;
    time_t secs = (time_t)(ms / 1000);
    if (msec < 0) {
        msec += 1000;
        secs -= 1;
    }
    /* Every message event carries its time, and a burst of messages shares
     * its second: the date and time of day are worked out once per second
     * (per thread) and only the milliseconds are written each time. */
    static _Thread_local time_t cached_secs;
    static _Thread_local char cached[20]; /* "YYYY-MM-DDTHH:MM:SS", empty: none */
    if (!cached[0] || secs != cached_secs) {
        struct tm tm;
        if (!gmtime_r(&secs, &tm))
            return -1;
        put_digits(cached, (unsigned)(tm.tm_year + 1900), 4);
        cached[4] = '-';
        put_digits(cached + 5, (unsigned)(tm.tm_mon + 1), 2);
        cached[7] = '-';
        put_digits(cached + 8, (unsigned)tm.tm_mday, 2);
        cached[10] = 'T';
        put_digits(cached + 11, (unsigned)tm.tm_hour, 2);
        cached[13] = ':';
        put_digits(cached + 14, (unsigned)tm.tm_min, 2);
        cached[16] = ':';
        put_digits(cached + 17, (unsigned)tm.tm_sec, 2);
        cached_secs = secs;
    }
    memcpy(out, cached, 19);
    out[19] = '.';
    put_digits(out + 20, (unsigned)msec, 3);
    out[23] = 'Z';
    out[24] = '\0';
    return CF_RFC3339_LEN;
}
