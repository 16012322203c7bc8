/* apause: a listening socket's pause when accept(2) keeps failing.
 *
 * A listener is watched level-triggered: while a connection waits in its
 * backlog it fires every loop iteration. When accept fails for want of
 * descriptors (EMFILE, ENFILE) or memory, returning and trying again at once
 * spins the loop at 100 % CPU and logs a line per turn. Instead the
 * listener's source is turned off for a jittered backoff (100 ms doubling to
 * 1 s, from the start again after an accept succeeds) and the connections
 * wait in the backlog until descriptors are free. One line is logged when
 * such an episode starts and one when accepting works again.
 *
 * Embeddable. The owner keeps the listener's source; the pause owns its
 * timer (made up front, so a pause needs no descriptor or memory). */
#ifndef BROKER_APAUSE_H
#define BROKER_APAUSE_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "backoff.h"

struct apause {
    sd_event_source *listener; /* not owned */
    sd_event_source *timer;
    struct cf_backoff bo;
    const char *tag; /* the log subsystem: a string literal */
    char what[160];  /* what is being accepted, for logs */
    int64_t since;   /* start of the current episode, 0: none */
    uint32_t pauses; /* in the current episode */
    bool stopped;
};

/* 0, or -errno when the timer cannot be made (then nothing to free). */
int apause_init(struct apause *p, sd_event *ev, sd_event_source *listener, const char *tag,
                const char *what);
/* accept failed with err: pauses the listener unless err concerns only that
 * one connection or means "nothing left" (EAGAIN, EINTR, ECONNABORTED).
 * The caller stops accepting in this turn either way. */
void apause_failed(struct apause *p, int err);
/* An accept succeeded: ends an episode (logged) and resets the backoff. */
void apause_accepted(struct apause *p);
/* Accepting is over for good (draining): the listener is not turned on again. */
void apause_stop(struct apause *p);
void apause_free(struct apause *p); /* an apause never initialised (zeroed) is a no-op */

#endif
