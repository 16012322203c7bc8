/* ring: which Redis server holds a room, when REDIS_ADDR lists several.
 *
 * server = jump consistent hash (Lamping & Veach) of a 64-bit key of the room
 * name, over the number of servers. It is a pure function of (name, servers):
 * every broker of every node computes the same server for a room as long as
 * they all have the same list in the same order. Going from N to N+1 servers
 * moves only ~1/(N+1) of the rooms, all of them to the new server.
 *
 * The key is not the shard hash (common/shard.h): FNV-1a of the name is
 * scrambled by a 64-bit finaliser first, so the rooms of any one broker shard
 * spread over every server instead of all landing on the same one when the
 * shard and server counts are equal. */
#ifndef CF_RING_H
#define CF_RING_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit key the server is chosen by. */
uint64_t cf_ring_key(const char *name, size_t len);

/* The server of room `name` (len bytes) among `servers` (>= 1). */
uint32_t cf_ring_server_of(const char *name, size_t len, uint32_t servers);

#endif
