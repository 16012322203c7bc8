/* shard: which broker owns a room.
 *
 * shard = jump consistent hash (Lamping & Veach, 2014) of the 64-bit FNV-1a hash
 * of the room name's bytes, over the number of shards. It is a pure function of
 * (name, shards), identical on every node of a cluster, and moving from N to
 * N+1 shards moves only ~1/(N+1) of the rooms. */
#ifndef CF_SHARD_H
#define CF_SHARD_H

#include <stddef.h>
#include <stdint.h>

uint64_t cf_fnv1a64(const void *data, size_t len);

/* Returns a bucket in [0, buckets); buckets must be >= 1. */
uint32_t cf_jump_hash(uint64_t key, uint32_t buckets);

/* The shard that owns room `name` (len bytes) among `shards` brokers. */
uint32_t cf_shard_of(const char *name, size_t len, uint32_t shards);

#endif
