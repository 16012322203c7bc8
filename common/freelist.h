/* freelist: recycles fixed-size blocks so that a hot path (a request per
 * message) does not go to malloc for each one.
 *
 * At most `keep` freed blocks are held for reuse; a block freed beyond that
 * goes back to malloc, so the list never holds more than the peak it is
 * allowed to remember. Under AddressSanitizer every get is a malloc and every
 * put a free, so a block used after its put is still caught.
 *
 * What a burst left behind is given back by cf_fl_trim, called about once a
 * second: it frees the blocks no get needed since its last call, so the list
 * settles at the peak in use over the last interval instead of the largest
 * burst ever seen.
 *
 * Not thread-safe: one list per event loop. Blocks from cf_fl_get are the
 * caller's until cf_fl_put; those still held are freed by cf_fl_drain. */
#ifndef CF_FREELIST_H
#define CF_FREELIST_H

#include <stddef.h>

struct cf_freelist {
    void *head;  /* freed blocks, linked through their first bytes */
    size_t n;    /* how many are held */
    size_t size; /* block size (at least a pointer) */
    size_t keep; /* most held */
    size_t low;  /* fewest held since the last cf_fl_trim: untouched since */
};

#define CF_FREELIST_INIT(block, keep_max) {NULL, 0, (block), (keep_max), 0}

/* A block of f->size bytes (contents undefined), or NULL when out of memory. */
void *cf_fl_get(struct cf_freelist *f);
/* Gives p (from cf_fl_get on the same list, or NULL) back. */
void cf_fl_put(struct cf_freelist *f, void *p);
/* Frees the blocks that stayed in the list since the last call (as many as
 * the fewest it held since then); returns how many. */
size_t cf_fl_trim(struct cf_freelist *f);
/* Frees every held block. */
void cf_fl_drain(struct cf_freelist *f);

#endif
