#include "clock.h"

#include <stdio.h>
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

int cf_rfc3339_ms(int64_t ms, char *out, size_t cap)
{
    /* 0000-01-01 .. 9999-12-31 keeps the fixed width clients rely on. */
    if (cap < CF_RFC3339_LEN + 1 || ms < -62167219200000LL || ms > 253402300799999LL)
        return -1;
    int64_t msec = ms % 1000;
    time_t secs = (time_t)(ms / 1000);
    if (msec < 0) {
        msec += 1000;
        secs -= 1;
    }
    struct tm tm;
    if (!gmtime_r(&secs, &tm))
        return -1;
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)msec);
    return n == CF_RFC3339_LEN ? n : -1;
}
