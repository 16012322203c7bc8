/* logcap: at most one log line a second for an event that a client, or an
 * outage, can make happen at any rate (a message dropped, a frame refused).
 * The others are counted, and the next line says how many it stands for;
 * they are logged at DEBUG. Sixteen bytes, no allocation; the caller owns
 * the struct (zeroed: the first event is logged). Monotonic ms, >= 0.
 * CF_LOG_CAPPED is the whole use; the functions are its parts. */
#ifndef CF_LOGCAP_H
#define CF_LOGCAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "clock.h"
#include "log.h"

struct cf_logcap {
    int64_t next;  /* ms from which the next line may go; 0: at once */
    uint64_t held; /* events since the last line without a line of their own */
};

/* Whether the event at now_ms gets a line: true once a second at most,
 * with *held set to the events counted since the last line (to be told in
 * this one); false, counted, otherwise. */
static inline bool cf_logcap_take(struct cf_logcap *c, int64_t now_ms, uint64_t *held)
{
    if (now_ms < c->next) {
        c->held++;
        return false;
    }
    *held = c->held;
    c->held = 0;
    c->next = now_ms + 1000;
    return true;
}

/* The line's tail: how many events it stands for besides its own. */
#define CF_LOGCAP_TAIL 96
static inline const char *cf_logcap_tail(char out[CF_LOGCAP_TAIL], uint64_t held)
{
    if (held)
        snprintf(out, CF_LOGCAP_TAIL,
                 " (and %llu more since the last such line; at most one a second)",
                 (unsigned long long)held);
    else
        snprintf(out, CF_LOGCAP_TAIL, " (at most one such line a second)");
    return out;
}

/* cf_log(level, tag, fmt, ...) for the first event of a second, with the
 * count of the others in its tail; CF_DEBUG, untold, for the others. */
#define CF_LOG_CAPPED(cap, level, tag, fmt, ...)                                                   \
    do {                                                                                           \
        uint64_t cf_held_;                                                                         \
        char cf_tail_[CF_LOGCAP_TAIL];                                                             \
        if (cf_logcap_take((cap), cf_mono_ms(), &cf_held_))                                        \
            cf_log((level), (tag), fmt "%s", __VA_ARGS__, cf_logcap_tail(cf_tail_, cf_held_));     \
        else                                                                                       \
            CF_DEBUG((tag), fmt, __VA_ARGS__);                                                     \
    } while (0)

#endif
