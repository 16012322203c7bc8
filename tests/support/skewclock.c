/* skewclock: an LD_PRELOAD shim that sets a process' wall clock SKEW_MS
 * milliseconds behind (a node whose clock drifted), for
 * test_presence_clock. Only CLOCK_REALTIME moves; monotonic time, which
 * timers run on, does not. */
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

typedef int (*cg_fn)(clockid_t, struct timespec *);

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    cg_fn real = (cg_fn)dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real ? real(clk, ts) : -1;
    if (rc == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) {
        const char *s = getenv("SKEW_MS");
        long long ms = s ? atoll(s) : 0;
        long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec - ms * 1000000LL;
        ts->tv_sec = (time_t)(ns / 1000000000LL);
        ts->tv_nsec = (long)(ns % 1000000000LL);
    }
    return rc;
}
