/* notify: see notify.h. */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

void cf_notify_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void cf_notify_status(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sd_notifyf(0, "STATUS=%s", line);
}

void cf_notify_stopping(const char *status, uint64_t within_usec)
{
    if (within_usec)
        sd_notifyf(0, "STOPPING=1\nEXTEND_TIMEOUT_USEC=%llu\nSTATUS=%s",
                   (unsigned long long)within_usec, status);
    else
        sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

void cf_notify_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
}

uint64_t cf_notify_watchdog_interval_usec(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec / 2;
}
