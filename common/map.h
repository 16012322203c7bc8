/* map: a hash table from byte-string keys to pointers (rooms by name).
 *
 * Ownership: the map stores the key pointer, not a copy; the key bytes must
 * stay valid and unchanged while the entry exists (the usual pattern: the
 * value owns its name). Values are never freed by the map. The hash is seeded
 * per process, so names chosen by clients cannot be precomputed to collide. */
#ifndef CF_MAP_H
#define CF_MAP_H

#include <stddef.h>
#include <stdint.h>

struct cf_map;

struct cf_map *cf_map_new(void);
void cf_map_free(struct cf_map *m); /* NULL is a no-op; values are not touched */

void *cf_map_get(const struct cf_map *m, const char *key, size_t len);
/* 0, -EEXIST when the key is present (nothing changes), or -ENOMEM. */
int cf_map_put(struct cf_map *m, const char *key, size_t len, void *value);
/* Removes the key; returns its value or NULL when absent. */
void *cf_map_del(struct cf_map *m, const char *key, size_t len);
size_t cf_map_count(const struct cf_map *m);

/* The map's hash of a key: seeded per process, never 0. For other tables
 * whose keys peers choose (per-address limits). */
uint64_t cf_map_hash(const void *key, size_t len);

/* Iteration: start with *it = 0; returns values until NULL. The map must not
 * be changed while iterating. */
void *cf_map_next(const struct cf_map *m, size_t *it);

#endif
