/* backoff: exponential reconnect delays with jitter, so that many processes
 * that lost the same peer do not reconnect in lockstep. Embeddable. */
#ifndef CF_BACKOFF_H
#define CF_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

struct cf_backoff {
    uint32_t base_ms, cap_ms, attempt;
    uint64_t rng;
};

void cf_backoff_init(struct cf_backoff *b, uint32_t base_ms, uint32_t cap_ms);
/* The delay before the next attempt: a random value in [d/2, d] where
 * d = min(cap, base * 2^attempts so far). */
uint32_t cf_backoff_next(struct cf_backoff *b);
/* Call after a success: the next failure starts again from base. */
void cf_backoff_reset(struct cf_backoff *b);

/* A connection counts as a success only once it has stayed up this long:
 * reset at every connect, a peer that accepts and then drops each
 * connection would be retried at base rate for good. */
#define CF_BACKOFF_STABLE_MS 10000
/* Resets b when a connection has been up for `up_ms` >= CF_BACKOFF_STABLE_MS
 * (at its loss, or while it is up). True when it did. */
bool cf_backoff_settle(struct cf_backoff *b, int64_t up_ms);

/* A process-wide random 64-bit value (getrandom, drawn 32 at a time; a forked
 * child draws its own; falls back to time and pid). Not thread-safe. */
uint64_t cf_random_u64(void);

#endif
