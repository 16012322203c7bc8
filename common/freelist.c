#include "freelist.h"

#include <stdlib.h>

#include "asan.h"

void *cf_fl_get(struct cf_freelist *f)
{
    void *p = f->head;
    if (!p)
        return malloc(f->size < sizeof(void *) ? sizeof(void *) : f->size);
    f->head = *(void **)p;
    if (--f->n < f->low)
        f->low = f->n;
    return p;
}

void cf_fl_put(struct cf_freelist *f, void *p)
{
    if (!p)
        return;
#ifndef CF_ASAN
    if (f->n < f->keep) {
        *(void **)p = f->head;
        f->head = p;
        f->n++;
        return;
    }
#endif
    free(p);
}

/* Frees the chain from *link on. */
static void free_from(void **link)
{
    void *p = *link;
    *link = NULL;
    while (p) {
        void *next = *(void **)p;
        free(p);
        p = next;
    }
}

size_t cf_fl_trim(struct cf_freelist *f)
{
    size_t idle = f->low < f->n ? f->low : f->n;
    /* the blocks put last are warm in the cache: keep those, free the rest */
    void **link = &f->head;
    for (size_t i = idle; i < f->n; i++)
        link = (void **)*link;
    free_from(link);
    f->n -= idle;
    f->low = f->n;
    return idle;
}

void cf_fl_drain(struct cf_freelist *f)
{
    free_from(&f->head);
    f->n = f->low = 0;
}
