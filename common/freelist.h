/* freelist: recycles fixed-size blocks so that a hot path (a request per
 * message) does not go to malloc for each one.
 *
 * At most `keep` freed blocks are held for reuse; a block freed beyond that
 * goes back to malloc, so the list never holds more than the peak it is
 * allowed to remember. Under AddressSanitizer every get is a malloc and every
 * put a free, so a block used after its put is still caught.
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
};

#define CF_FREELIST_INIT(block, keep_max) {NULL, 0, (block), (keep_max)}

/* A block of f->size bytes (contents undefined), or NULL when out of memory. */
void *cf_fl_get(struct cf_freelist *f);
/* Gives p (from cf_fl_get on the same list, or NULL) back. */
void cf_fl_put(struct cf_freelist *f, void *p);
/* Frees every held block. */
void cf_fl_drain(struct cf_freelist *f);

#endif
