/* ring: see ring.h. */
#include "ring.h"

#include "shard.h"

/* MurmurHash3's fmix64: every input bit affects every output bit, so keys
 * that differ little (FNV-1a of similar names) land far apart, and the result
 * is unrelated to the shard that jump-hashes the unscrambled FNV-1a. */
static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

uint64_t cf_ring_key(const char *name, size_t len)
{
    return fmix64(cf_fnv1a64(name, len) ^ 0x9e3779b97f4a7c15ULL);
}

uint32_t cf_ring_server_of(const char *name, size_t len, uint32_t servers)
{
    return servers <= 1 ? 0 : cf_jump_hash(cf_ring_key(name, len), servers);
}
