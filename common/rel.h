/* rel: a many-to-many membership relation with O(1) link and unlink, indexed
 * both ways (room -> members and member -> rooms), so that a disconnect costs
 * only the member's own rooms and a fan-out walks a dense array.
 *
 * Each side embeds a struct cf_rel_end. An edge joins one end of a "left"
 * object (e.g. a room) with one end of a "right" object (e.g. a session) and
 * is owned by the relation: cf_rel_unlink frees it. An end must have no edges
 * left when its object is freed (cf_rel_end_free checks nothing; unlink first).
 * Not safe to unlink while iterating the same end by index, except the edge at
 * the current index when iterating downwards. */
#ifndef CF_REL_H
#define CF_REL_H

#include <stdint.h>

struct cf_rel_edge;

struct cf_rel_end {
    struct cf_rel_edge **v;
    uint32_t n, cap;
};

struct cf_rel_edge {
    void *left, *right;
    struct cf_rel_end *lend, *rend;
    uint32_t li, ri; /* positions in lend->v and rend->v */
};

/* Links left (through its end l) with right (through r). Returns the new edge,
 * or NULL when out of memory (nothing changed). Does not check for an existing
 * edge between the two: see cf_rel_find. */
struct cf_rel_edge *cf_rel_link(struct cf_rel_end *l, void *left, struct cf_rel_end *r,
                                void *right);
void cf_rel_unlink(struct cf_rel_edge *e);
/* The same with an edge the caller owns, embedded in its own object (one
 * allocation less per membership): 0, or -1 when out of memory (nothing
 * changed). cf_rel_unlink_at undoes it and frees nothing. */
int cf_rel_link_at(struct cf_rel_edge *edge, struct cf_rel_end *l, void *left,
                   struct cf_rel_end *r, void *right);
void cf_rel_unlink_at(struct cf_rel_edge *e);

/* The edge of end `e` whose other side is `peer`, or NULL. Linear in the end's
 * size: meant for the small side (a member's rooms). */
struct cf_rel_edge *cf_rel_find(const struct cf_rel_end *e, const void *peer);

void cf_rel_end_free(struct cf_rel_end *e);

#endif
