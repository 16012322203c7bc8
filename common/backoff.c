#include "backoff.h"

#include <pthread.h>
#include <stdbool.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* The broker takes a value for every message it sends (a room's epoch
 * candidate): one getrandom() per 32 values instead of one each. A forked
 * child must not hand out its parent's values: it starts with an empty pool. */
#define POOL 32
static uint64_t g_pool[POOL];
static unsigned g_left;
static bool g_atfork;

static void pool_drop(void)
{
    g_left = 0;
}

uint64_t cf_random_u64(void)
{
    if (!g_atfork)
        g_atfork = pthread_atfork(NULL, NULL, pool_drop) == 0;
    if (!g_left && g_atfork &&
        getrandom(g_pool, sizeof g_pool, GRND_NONBLOCK) == (ssize_t)sizeof g_pool)
        g_left = POOL;
    if (g_left)
        return g_pool[--g_left];
    uint64_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
}

void cf_backoff_init(struct cf_backoff *b, uint32_t base_ms, uint32_t cap_ms)
{
    b->base_ms = base_ms ? base_ms : 1;
    b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
    b->attempt = 0;
    b->rng = cf_random_u64() | 1;
}

static uint64_t xorshift64s(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint32_t cf_backoff_next(struct cf_backoff *b)
{
    uint64_t d = b->base_ms;
    for (uint32_t i = 0; i < b->attempt && d < b->cap_ms; i++)
        d *= 2;
    if (d > b->cap_ms)
        d = b->cap_ms;
    if (b->attempt < 64)
        b->attempt++;
    uint64_t half = d / 2;
    return (uint32_t)(d - half + xorshift64s(&b->rng) % (half + 1));
}

void cf_backoff_reset(struct cf_backoff *b)
{
    b->attempt = 0;
}

bool cf_backoff_settle(struct cf_backoff *b, int64_t up_ms)
{
    if (up_ms < CF_BACKOFF_STABLE_MS)
        return false;
    cf_backoff_reset(b);
    return true;
}
