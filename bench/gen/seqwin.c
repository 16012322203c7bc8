/* seqwin: see seqwin.h. */
#include "seqwin.h"

/* Bits from..to (0 <= from <= to <= 63) set. */
static uint64_t span_mask(uint64_t from, uint64_t to)
{
    return (~0ull >> (63 - to)) & (~0ull << from);
}

/* Gaps among seqs [lo, hi] inside the window below `last` (map `miss`). */
static uint64_t window_gaps(uint64_t miss, uint64_t last, uint64_t lo, uint64_t hi)
{
    uint64_t wlo = last > SW_WINDOW ? last - SW_WINDOW : 1;
    uint64_t s_lo = lo > wlo ? lo : wlo, s_hi = last && hi > last - 1 ? last - 1 : hi;
    if (last == 0 || s_lo > s_hi)
        return 0;
    return (uint64_t)__builtin_popcountll(miss & span_mask(last - 1 - s_hi, last - 1 - s_lo));
}

/* Seqs in [lo, hi] above `last` (never received: all missing). */
static uint64_t above(uint64_t last, uint64_t lo, uint64_t hi)
{
    uint64_t a = lo > last + 1 ? lo : last + 1;
    return hi >= a ? hi - a + 1 : 0;
}

enum sw_kind sw_receive(sw_pair *p, uint32_t seq, uint32_t floor, uint64_t *lost)
{
    uint64_t q = seq, last = p->last;
    if (q > last) {
        uint64_t d = q - last;
        if (q > SW_WINDOW + 1) { /* seqs up to q - SW_WINDOW - 1 leave the window */
            uint64_t lo = floor > 1 ? floor : 1, out = q - SW_WINDOW - 1;
            *lost += window_gaps(p->miss, last, lo, out) + above(last, lo, out);
        }
        /* old gaps move up by d; the seqs skipped, last+1..q-1, are bits d-2..0 */
        uint64_t moved = d < 64 ? p->miss << d : 0;
        uint64_t skipped = d - 1 >= 64 ? ~0ull : (1ull << (d - 1)) - 1;
        p->miss = moved | skipped;
        p->last = seq;
        return SW_NEW;
    }
    if (q == last)
        return SW_DUPLICATE;
    uint64_t i = last - 1 - q;
    if (i >= SW_WINDOW)
        return SW_STALE;
    if (!(p->miss & (1ull << i)))
        return SW_DUPLICATE;
    p->miss &= ~(1ull << i);
    return SW_FILLED;
}

uint64_t sw_missing(const sw_pair *p, uint32_t lo, uint32_t hi)
{
    if (hi < lo)
        return 0;
    return window_gaps(p->miss, p->last, lo, hi) + above(p->last, lo, hi);
}
