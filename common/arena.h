/* arena: a bump allocator over a block its caller owns, for objects that
 * are made and freed in bursts (a parsed client frame, a Redis reply): a
 * block handed out costs a pointer bump, a free a count, and the arena
 * starts over once every block it handed out has been freed. A block still
 * alive is never overwritten: while one lives, new blocks go after it, and
 * when the arena is full its caller falls back to malloc().
 *
 * Each block is preceded by a header naming its arena and its size, so a
 * free needs only the pointer. Under AddressSanitizer the arena's unused
 * part, each block's header and a gap after it, each block once freed and
 * all of it when it starts over are poisoned, so an overrun, an underrun, a
 * use after free and a block freed twice (before its place is handed out
 * again) are reported.
 *
 * Ownership: the caller owns the arena and its block and keeps both alive
 * while any block lives. Not thread-safe: one loop per process. */
#ifndef CF_ARENA_H
#define CF_ARENA_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "asan.h"

struct cf_arena {
    unsigned char *buf; /* aligned to max_align_t */
    size_t size;
    size_t top;       /* bytes in use; 0 once it started over */
    uint32_t live;    /* blocks not yet freed */
    uint64_t handed;  /* blocks handed out, since cf_arena_init */
    uint64_t refused; /* requests that did not fit (their caller used malloc()) */
};

/* What an arena did and holds, as its owners report it. */
struct cf_arena_stats {
    uint64_t arena;    /* blocks handed out */
    uint64_t fallback; /* requests that did not fit, malloc()ed by the caller */
    uint32_t live;     /* blocks not yet freed */
    size_t used;       /* bytes in use, 0 once it started over */
};

/* All zero for NULL. */
struct cf_arena_stats cf_arena_stats(const struct cf_arena *a);

/* Over `buf` (size bytes, aligned to max_align_t), empty. */
void cf_arena_init(struct cf_arena *a, void *buf, size_t size);

/* Once no block lives: the block is plain memory again (unpoisoned), for
 * its owner to free or reuse. */
void cf_arena_done(struct cf_arena *a);

/* Before each block; aligned as malloc() aligns, so that the block after it
 * keeps that alignment. 16 bytes on x86-64: a union with max_align_t would
 * take its size, 32, where only its alignment is needed.
 * (Below: the functions on the hot paths, inline.) */
struct cf_arena_hdr {
    alignas(max_align_t) struct cf_arena *a; /* NULL: the block came from malloc() */
    size_t n;
};

#define CF_ARENA_ALIGN alignof(max_align_t)
_Static_assert(alignof(struct cf_arena_hdr) == CF_ARENA_ALIGN,
               "a block after its header keeps malloc()'s alignment");
#ifdef CF_ASAN
#define CF_ARENA_REDZONE CF_ARENA_ALIGN /* poisoned after each block: an overrun shows */
#else
#define CF_ARENA_REDZONE 0
#endif

/* n bytes aligned to max_align_t, contents undefined; NULL when they do
 * not fit (the caller then goes to malloc()). */
static inline void *cf_arena_alloc(struct cf_arena *a, size_t n)
{
    /* (the bound first: rounding a size near SIZE_MAX up would wrap) */
    if (n > a->size) {
        a->refused++;
        return NULL;
    }
    n += n == 0; /* a block of its own: not the next one's header, nor past the end */
    size_t need = sizeof(struct cf_arena_hdr) +
                  (n + CF_ARENA_ALIGN - 1) / CF_ARENA_ALIGN * CF_ARENA_ALIGN + CF_ARENA_REDZONE;
    if (need > a->size - a->top) {
        a->refused++;
        return NULL;
    }
    struct cf_arena_hdr *h = (struct cf_arena_hdr *)(a->buf + a->top);
    a->top += need;
    a->live++;
    a->handed++;
    CF_UNPOISON(h, sizeof *h + n);
    h->a = a;
    h->n = n;
    CF_POISON(h, sizeof *h); /* a write before the block shows */
    return h + 1;
}

/* Whether p lies in a's block (a block of a's, if it came from one). */
static inline bool cf_arena_holds(const struct cf_arena *a, const void *p)
{
    const unsigned char *c = p;
    return c >= a->buf && c < a->buf + a->size;
}

/* Frees a block of cf_arena_alloc. */
static inline void cf_arena_free(void *p)
{
    struct cf_arena_hdr *h = (struct cf_arena_hdr *)p - 1;
    /* A block freed twice was poisoned by the first free: reading it makes
     * ASan report the second, where the header alone would not tell. */
    if (CF_POISONED(p))
        (void)*(volatile const unsigned char *)p;
    CF_UNPOISON(h, sizeof *h);
    struct cf_arena *a = h->a;
    CF_POISON(h, sizeof *h + h->n); /* a use after free shows */
    /* nothing of the arena is alive: it starts over (live 0 already: a
     * block freed twice, which must not wrap the count) */
    if (a->live && --a->live == 0) {
        CF_POISON(a->buf, a->top);
        a->top = 0;
    }
}

/* For a caller whose frees cannot tell where a block came from (hiredis'
 * freeObject gets only the pointer): n bytes from a, or from malloc() when
 * a is NULL or full (counted as its fallback), with the same header either
 * way; cf_arena_release frees either kind. */
static inline void *cf_arena_alloc_or_malloc(struct cf_arena *a, size_t n)
{
    void *p = a ? cf_arena_alloc(a, n) : NULL;
    if (p || n > SIZE_MAX - sizeof(struct cf_arena_hdr))
        return p;
    struct cf_arena_hdr *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->a = NULL;
    h->n = n;
    return h + 1;
}

static inline void cf_arena_release(void *p)
{
    struct cf_arena_hdr *h = (struct cf_arena_hdr *)p - 1;
    /* (under ASan an arena block's header is poisoned, a malloc()ed one's
     * is not: telling them apart must not read it) */
    if (CF_POISONED(h) || h->a)
        cf_arena_free(p);
    else
        free(h);
}

#endif
