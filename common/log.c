/* log: see log.h. Kept free of allocation so it is safe on any error path. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static enum cf_log_level g_level = CF_LOG_INFO;
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

int cf_log_enabled(enum cf_log_level level)
{
    return level >= g_level;
}

void cf_log_v(enum cf_log_level level, const char *tag, const char *fmt, va_list ap)
{
    if (level < g_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s[%ld] %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], g_process,
                     (long)getpid(), tag);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line - 1) {
        int m = vsnprintf(line + n, sizeof line - 1 - (size_t)n, fmt, ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2; /* truncated: keep one line */
    /* One event, one line: a stray newline in a value must not forge a line. */
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void cf_log(enum cf_log_level level, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cf_log_v(level, tag, fmt, ap);
    va_end(ap);
}
