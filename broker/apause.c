/* apause: see apause.h. */
#include "apause.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define PAUSE_BASE_MS 100
#define PAUSE_CAP_MS 1000

static int on_resume(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)s;
    (void)usec;
    struct apause *p = ud;
    if (!p->stopped)
        sd_event_source_set_enabled(p->listener, SD_EVENT_ON);
    return 0;
}

int apause_init(struct apause *p, sd_event *ev, sd_event_source *listener, const char *tag,
                const char *what)
{
    memset(p, 0, sizeof *p);
    p->listener = listener;
    p->tag = tag;
    snprintf(p->what, sizeof p->what, "%s", what);
    cf_backoff_init(&p->bo, PAUSE_BASE_MS, PAUSE_CAP_MS);
    int rc = sd_event_add_time_relative(ev, &p->timer, CLOCK_MONOTONIC, 0, 10 * 1000, on_resume, p);
    if (rc >= 0)
        rc = sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
    if (rc < 0)
        apause_free(p);
    return rc;
}

void apause_failed(struct apause *p, int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED)
        return;
    uint32_t ms = cf_backoff_next(&p->bo);
    if (!p->since) {
        p->since = cf_mono_ms();
        p->pauses = 0;
        if (err == EMFILE || err == ENFILE)
            CF_ERROR(p->tag,
                     "out of file descriptors accepting %s (%s): pausing accepts, "
                     "retrying every 0.1-1 s while connections wait in the backlog; raise "
                     "LimitNOFILE (ulimit -n) or look for a descriptor leak (ls /proc/%d/fd)",
                     p->what, strerror(err), (int)getpid());
        else
            CF_ERROR(p->tag, "accepting %s failed: %s; pausing accepts, retrying every 0.1-1 s",
                     p->what, strerror(err));
    }
    p->pauses++;
    sd_event_source_set_enabled(p->listener, SD_EVENT_OFF);
    sd_event_source_set_time_relative(p->timer, (uint64_t)ms * 1000);
    sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
}

void apause_accepted(struct apause *p)
{
    if (!p->since)
        return;
    CF_INFO(p->tag, "accepting %s again after %lld ms (%u pauses)", p->what,
            (long long)(cf_mono_ms() - p->since), p->pauses);
    p->since = 0;
    cf_backoff_reset(&p->bo);
}

void apause_stop(struct apause *p)
{
    p->stopped = true;
    if (p->timer)
        sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
}

void apause_free(struct apause *p)
{
    p->timer = sd_event_source_disable_unref(p->timer);
}
