#include "freelist.h"

#include <stdlib.h>

#include "asan.h"

void *cf_fl_get(struct cf_freelist *f)
{
    void *p = f->head;
    if (!p)
        return malloc(f->size < sizeof(void *) ? sizeof(void *) : f->size);
    f->head = *(void **)p;
    f->n--;
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

void cf_fl_drain(struct cf_freelist *f)
{
    while (f->head) {
        void *p = f->head;
        f->head = *(void **)p;
        free(p);
    }
    f->n = 0;
}
