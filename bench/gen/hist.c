/* hist: see hist.h. */
#include "hist.h"

#include <math.h>
#include <string.h>

void bh_reset(bh_hist *h)
{
    memset(h, 0, sizeof *h);
}

uint32_t bh_index(uint64_t v)
{
    if (v > BH_MAX)
        v = BH_MAX;
    if (v < BH_SUB)
        return (uint32_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= BH_SUB_BITS */
    unsigned shift = e - BH_SUB_BITS;
    return ((e - BH_SUB_BITS + 1) << BH_SUB_BITS) + (uint32_t)((v >> shift) & (BH_SUB - 1));
}

uint64_t bh_lower(uint32_t idx)
{
    if (idx < BH_SUB)
        return idx;
    unsigned e = (idx >> BH_SUB_BITS) + BH_SUB_BITS - 1;
    return (uint64_t)(BH_SUB + (idx & (BH_SUB - 1))) << (e - BH_SUB_BITS);
}

uint64_t bh_width(uint32_t idx)
{
    if (idx < BH_SUB)
        return 1;
    unsigned e = (idx >> BH_SUB_BITS) + BH_SUB_BITS - 1;
    return 1ull << (e - BH_SUB_BITS);
}

void bh_record(bh_hist *h, uint64_t v)
{
    if (v > BH_MAX)
        v = BH_MAX;
    h->b[bh_index(v)]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
}

void bh_merge(bh_hist *dst, const bh_hist *src)
{
    if (src->count == 0)
        return;
    for (uint32_t i = 0; i < BH_BUCKETS; i++)
        dst->b[i] += src->b[i];
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
}

uint64_t bh_quantile(const bh_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < BH_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t mid = bh_lower(i) + bh_width(i) / 2;
            if (mid > h->max)
                mid = h->max;
            if (mid < h->min)
                mid = h->min;
            return mid;
        }
    }
    return h->max;
}
