/* hist: a log-bucket latency histogram (HDR-like) for the load generator.
 *
 * Values are unsigned integers (the generator records nanoseconds). Values
 * below 128 are exact; above, each power of two is split into 128 buckets, so
 * a reported percentile is within 1/128 (< 0.8%) of the true value. Values
 * over BH_MAX (100 s in ns) are clamped to it. A histogram is a flat array of
 * counters: recording is a shift, a mask and an increment, no allocation. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define BH_SUB_BITS 7
#define BH_SUB (1u << BH_SUB_BITS)
#define BH_MAX 100000000000ull /* 100 s in ns, < 2^37 */
#define BH_BUCKETS (31u * BH_SUB) /* exponents 7..36 plus the exact range */

typedef struct bh_hist {
    uint64_t count;
    uint64_t min, max; /* exact, of the (clamped) values recorded */
    uint64_t b[BH_BUCKETS];
} bh_hist;

void bh_reset(bh_hist *h);
void bh_record(bh_hist *h, uint64_t v);
/* Adds every count of src to dst. */
void bh_merge(bh_hist *dst, const bh_hist *src);
/* The value at quantile q (0..1]: the midpoint of the bucket holding the
 * ceil(q * count)-th smallest value, never above max. 0 when empty. */
uint64_t bh_quantile(const bh_hist *h, double q);

/* Bucket arithmetic, exposed for the unit test. */
uint32_t bh_index(uint64_t v);
uint64_t bh_lower(uint32_t idx);
uint64_t bh_width(uint32_t idx);

#endif
