/* seqwin: which seqs of one sender one receiver has not had yet.
 *
 * One sw_pair per (sender, receiver) pair: the highest seq received and a
 * bitmap of the SW_WINDOW seqs just below it, a bit set for each one still
 * missing. A seq above the highest opens a gap for each seq it skips; one
 * below fills its own gap when its bit is set and is a second copy when it
 * is not. A gap that falls more than SW_WINDOW behind the highest is lost for
 * good: sw_receive tells the caller how many, and a copy arriving after that
 * is SW_STALE (a late first copy cannot be told from a duplicate there; it
 * was counted lost when it left the window, and stays so).
 *
 * Why a set and not a count of open gaps: with a count, any copy at or below
 * the highest filled "a" gap, so a duplicate cancelled a loss and a late
 * message filled another's gap.
 *
 * Cost: 16 bytes a pair (the 64-bit map, the 32-bit highest, padding), no
 * allocation; 10^6 pairs (1000 members of one room all publishing) take
 * 16 MiB. SW_WINDOW = 64 seqs is 160 ms at 400 msg/s from one sender (the
 * fan-out scenario's top step: 1600 msg/s from 4 publishers) and seconds in
 * small rooms. Both servers deliver one sender's messages to a member over
 * one path, in order, so a gap is a loss, not a reordering, and the window
 * only has to outlast a reordering a server might make.
 *
 * Seqs start at 1; 0 means "none received". Pure functions, no state. */
#ifndef BENCH_SEQWIN_H
#define BENCH_SEQWIN_H

#include <stdint.h>

#define SW_WINDOW 64u

typedef struct sw_pair {
    uint64_t miss; /* bit i set: seq last - 1 - i not received yet */
    uint32_t last; /* highest seq received, 0 before any */
} sw_pair;

enum sw_kind {
    SW_NEW,       /* above the highest: a first copy (seqs skipped become gaps) */
    SW_FILLED,    /* below the highest, filling its own gap: a first copy, out of order */
    SW_DUPLICATE, /* received before */
    SW_STALE      /* below the window: counted lost when it left it */
};

/* Seq `seq` arrived. Adds to *lost the gaps with a seq >= floor that this
 * arrival pushes out of the window (the caller passes the first seq of the
 * current step, so that gaps of earlier steps, counted then, are not counted
 * again). */
enum sw_kind sw_receive(sw_pair *p, uint32_t seq, uint32_t floor, uint64_t *lost);

/* How many seqs in [lo, hi] (lo >= 1) have not been received, as far as the
 * window knows: those above the highest and the gaps inside the window. Seqs
 * below the window are not counted: sw_receive reported those that were
 * missing when they left it. */
uint64_t sw_missing(const sw_pair *p, uint32_t lo, uint32_t hi);

#endif
