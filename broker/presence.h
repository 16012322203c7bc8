/* presence: the connections this broker has registered in Redis presence,
 * so that it can refresh them (a heartbeat keeps them from expiring) and
 * remove them when their gateway link closes.
 *
 * An entry is one connection in one room, owned here (names are copied).
 * The Redis side is store.h's business; this is only the local record. */
#ifndef BROKER_PRESENCE_H
#define BROKER_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

struct presence;

struct presence *presence_new(void);
void presence_free(struct presence *p); /* NULL is a no-op */

/* 0, -EEXIST (already recorded) or -ENOMEM. */
int presence_add(struct presence *p, uint64_t link_id, struct cf_str room, struct cf_str conn,
                 struct cf_str user);
/* True when the entry existed (and is now gone). */
bool presence_del(struct presence *p, struct cf_str room, struct cf_str conn);

/* Removes every entry of a link, calling fn for each first. */
void presence_drop_link(struct presence *p, uint64_t link_id,
                        void (*fn)(void *ud, struct cf_str room, struct cf_str conn), void *ud);

/* Calls fn once per room with its entries (arrays valid during the call). */
void presence_foreach_room(struct presence *p,
                           void (*fn)(void *ud, struct cf_str room, const struct cf_str *conns,
                                      const struct cf_str *users, uint32_t n),
                           void *ud);

uint64_t presence_count(const struct presence *p);

#endif
