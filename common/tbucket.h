/* tbucket: a token bucket, the rate limiter behind every "N per second with a
 * burst of B" setting. Eight bytes, no allocation, monotonic milliseconds.
 *
 * The state is a time in nanoseconds, so that any rate up to a million per
 * second refills smoothly and near exactly in integer arithmetic. */
#ifndef CF_TBUCKET_H
#define CF_TBUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct cf_tbucket {
    int64_t stamp; /* ns at which the bucket would be empty; 0 = never used (full) */
};

/* Takes one token at `now` if one is there. rate = tokens per second (> 0),
 * burst = capacity (>= 1). */
bool cf_tb_take(struct cf_tbucket *b, int64_t rate, int64_t burst, int64_t now_ms);

/* Milliseconds until the next token (0 when one is there now). */
int64_t cf_tb_wait_ms(const struct cf_tbucket *b, int64_t rate, int64_t burst, int64_t now_ms);

/* True when the bucket is full at `now` (its state can be forgotten). */
bool cf_tb_full(const struct cf_tbucket *b, int64_t rate, int64_t burst, int64_t now_ms);

#endif
