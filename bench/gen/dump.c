/* dump: see dump.h. */
#include "dump.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    uint64_t now, lat;
    uint32_t sender, seq, receiver;
} rec;

struct gen_dump {
    FILE *f;
    rec *r;
    size_t n, cap;
    uint64_t dropped;
};

gen_dump *dump_open(const char *path)
{
    gen_dump *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->f = fopen(path, "w");
    if (!d->f) {
        int e = errno;
        free(d);
        errno = e;
        return NULL;
    }
    return d;
}

void dump_add(gen_dump *d, uint64_t now, uint64_t lat, uint32_t sender, uint32_t seq,
              uint32_t receiver)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 65536;
        if (cap > DUMP_MAX_RECORDS)
            cap = DUMP_MAX_RECORDS;
        rec *r = cap > d->cap ? realloc(d->r, cap * sizeof *r) : NULL;
        if (!r) {
            d->dropped++;
            return;
        }
        d->r = r;
        d->cap = cap;
    }
    d->r[d->n++] = (rec){now, lat, sender, seq, receiver};
}

dump_mark dump_here(const gen_dump *d)
{
    return (dump_mark){d->n, d->dropped};
}

void dump_rewind(gen_dump *d, dump_mark m)
{
    d->n = m.n;
    d->dropped = m.dropped;
}

int dump_finish(gen_dump *d, const char *path)
{
    for (size_t i = 0; i < d->n; i++) {
        const rec *r = &d->r[i];
        fprintf(d->f, "%llu %llu %u %u %u\n", (unsigned long long)r->now,
                (unsigned long long)r->lat, r->sender, r->seq, r->receiver);
    }
    int failed = ferror(d->f);
    int e = errno;
    if (fclose(d->f) != 0 && !failed) {
        failed = 1;
        e = errno;
    }
    int rc = 0;
    if (failed) {
        fprintf(stderr, "confab-bench: writing --dump %s failed: %s\n", path, strerror(e));
        rc = -1;
    } else if (d->dropped) {
        fprintf(stderr,
                "confab-bench: --dump %s is incomplete: %llu deliveries past its %u records "
                "(or past the memory) were not kept\n",
                path, (unsigned long long)d->dropped, DUMP_MAX_RECORDS);
        rc = -1;
    }
    free(d->r);
    free(d);
    return rc;
}
