/* tbucket: see tbucket.h.
 *
 * The state is one time stamp: the moment the bucket would have been empty
 * had no tokens been taken since. Tokens available at `now` are
 * (now - stamp) * rate, capped at burst (the "virtual scheduling" form of the
 * algorithm), so taking a token moves the stamp by 1/rate. In whole
 * nanoseconds, rates up to a million per second are within 0.1 % (300,000/s
 * is 3,333 ns a token; in microseconds it was 3 µs, 333,333/s, and 400,000/s
 * was 500,000/s). */
#include "tbucket.h"

static int64_t cost_ns(int64_t rate)
{
    return 1000000000 / rate > 0 ? 1000000000 / rate : 1;
}

static int64_t level_stamp(const struct cf_tbucket *b, int64_t rate, int64_t burst, int64_t now)
{
    int64_t full = now - burst * cost_ns(rate); /* older counts as a full bucket */
    return b->stamp == 0 || b->stamp < full ? full : b->stamp;
}

bool cf_tb_take(struct cf_tbucket *b, int64_t rate, int64_t burst, int64_t now_ms)
{
    int64_t now = now_ms * 1000000;
    int64_t stamp = level_stamp(b, rate, burst, now) + cost_ns(rate);
    if (stamp > now)
        return false;
    b->stamp = stamp ? stamp : 1; /* 0 means "never used" */
    return true;
}

int64_t cf_tb_wait_ms(const struct cf_tbucket *b, int64_t rate, int64_t burst, int64_t now_ms)
{
    int64_t now = now_ms * 1000000;
    int64_t ready = level_stamp(b, rate, burst, now) + cost_ns(rate);
    return ready > now ? (ready - now + 999999) / 1000000 : 0;
}

bool cf_tb_full(const struct cf_tbucket *b, int64_t rate, int64_t burst, int64_t now_ms)
{
    return b->stamp == 0 || b->stamp <= now_ms * 1000000 - burst * cost_ns(rate);
}
