#include "rel.h"

#include <stdlib.h>

static int end_push(struct cf_rel_end *e, struct cf_rel_edge *edge, uint32_t *pos)
{
    if (e->n == e->cap) {
        /* from 2: a session is usually in one or two rooms, and every
         * idle connection's bytes count */
        uint32_t cap = e->cap ? e->cap * 2 : 2;
        struct cf_rel_edge **v = realloc(e->v, cap * sizeof *v);
        if (!v)
            return -1;
        e->v = v;
        e->cap = cap;
    }
    *pos = e->n;
    e->v[e->n++] = edge;
    return 0;
}

/* Removes position pos from end e, moving its last edge into the hole. */
static void end_remove(struct cf_rel_end *e, uint32_t pos)
{
    struct cf_rel_edge *last = e->v[--e->n];
    if (pos != e->n) {
        e->v[pos] = last;
        if (last->lend == e)
            last->li = pos;
        else
            last->ri = pos;
    }
    if (e->n == 0) {
        free(e->v);
        e->v = NULL;
        e->cap = 0;
    }
}

int cf_rel_link_at(struct cf_rel_edge *edge, struct cf_rel_end *l, void *left,
                   struct cf_rel_end *r, void *right)
{
    edge->left = left;
    edge->right = right;
    edge->lend = l;
    edge->rend = r;
    if (end_push(l, edge, &edge->li) < 0)
        return -1;
    if (end_push(r, edge, &edge->ri) < 0) {
        end_remove(l, edge->li);
        return -1;
    }
    return 0;
}

void cf_rel_unlink_at(struct cf_rel_edge *e)
{
    end_remove(e->lend, e->li);
    end_remove(e->rend, e->ri);
}

struct cf_rel_edge *cf_rel_link(struct cf_rel_end *l, void *left, struct cf_rel_end *r,
                                void *right)
{
    struct cf_rel_edge *edge = malloc(sizeof *edge);
    if (edge && cf_rel_link_at(edge, l, left, r, right) < 0) {
        free(edge);
        return NULL;
    }
    return edge;
}

void cf_rel_unlink(struct cf_rel_edge *e)
{
    cf_rel_unlink_at(e);
    free(e);
}

struct cf_rel_edge *cf_rel_find(const struct cf_rel_end *e, const void *peer)
{
    for (uint32_t i = 0; i < e->n; i++) {
        struct cf_rel_edge *edge = e->v[i];
        const void *other = edge->lend == e ? edge->right : edge->left;
        if (other == peer)
            return edge;
    }
    return NULL;
}

void cf_rel_end_free(struct cf_rel_end *e)
{
    free(e->v);
    e->v = NULL;
    e->n = e->cap = 0;
}
