/* qarray: the arrays of session output queues past their inline slots,
 * recycled by size.
 *
 * Between two flushes a busy session's queue outgrows its inline slots, and
 * each flush drains it: a malloc and a free of its array for every flush
 * were ~40 % of a gateway's mallocs in small rooms (benchmarks.md, "What
 * each change bought"). Arrays of 4, 8, 16 and 32 slots are kept for reuse,
 * up to 256 KiB of each size; other sizes (a slow reader's long queue) come
 * from malloc and go back to it. Arrays no queue took for a second go back to
 * malloc too (qarray_trim), so a burst's peak is not held for good. Under
 * AddressSanitizer nothing is kept (freelist.h).
 *
 * Ownership: an array from qarray_get is the caller's until it is given to
 * qarray_put with the same number of slots. Not thread-safe: one list per
 * process (a gateway worker has one loop). */
#ifndef GW_QARRAY_H
#define GW_QARRAY_H

#include <stddef.h>
#include <stdint.h>

struct cf_buf;

/* An array of `slots` pointers (contents undefined), or NULL when out of
 * memory. */
struct cf_buf **qarray_get(uint32_t slots);
/* Gives q (from qarray_get(slots), or NULL) back. */
void qarray_put(struct cf_buf **q, uint32_t slots);
/* Frees the arrays held since the last call without one taken in between
 * (cf_fl_trim); returns how many. Call about once a second. */
size_t qarray_trim(void);
/* Arrays held for reuse now, all sizes. */
size_t qarray_held(void);

#endif
