/* map: open addressing with linear probing and backward-shift deletion (no
 * tombstones), resized at 70% load and shrunk when mostly empty. */
#include "map.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"

struct entry {
    uint64_t hash; /* 0 marks an empty slot */
    const char *key;
    size_t len;
    void *value;
};

struct cf_map {
    struct entry *slots;
    size_t cap; /* power of two */
    size_t count;
};

static uint64_t g_seed;

uint64_t cf_map_hash(const void *key, size_t len)
{
    const unsigned char *k = key;
    if (!g_seed)
        g_seed = cf_random_u64() | 1;
    uint64_t h = 0xcbf29ce484222325ULL ^ g_seed;
    for (size_t i = 0; i < len; i++) {
        h ^= k[i];
        h *= 0x100000001b3ULL;
    }
    /* fmix64 from MurmurHash3: spread the low bits we index by. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}

struct cf_map *cf_map_new(void)
{
    struct cf_map *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void cf_map_free(struct cf_map *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

static size_t find(const struct cf_map *m, uint64_t h, const char *key, size_t len, int *found)
{
    size_t mask = m->cap - 1, i = h & mask;
    for (;;) {
        const struct entry *e = &m->slots[i];
        if (!e->hash) {
            *found = 0;
            return i;
        }
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int resize(struct cf_map *m, size_t cap)
{
    struct entry *old = m->slots;
    size_t oldcap = m->cap;
    struct entry *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].hash)
            continue;
        int found;
        size_t j = find(m, old[i].hash, old[i].key, old[i].len, &found);
        m->slots[j] = old[i];
    }
    free(old);
    return 0;
}

void *cf_map_get(const struct cf_map *m, const char *key, size_t len)
{
    int found;
    size_t i = find(m, cf_map_hash(key, len), key, len, &found);
    return found ? m->slots[i].value : NULL;
}

int cf_map_put(struct cf_map *m, const char *key, size_t len, void *value)
{
    uint64_t h = cf_map_hash(key, len);
    int found;
    size_t i = find(m, h, key, len, &found);
    if (found)
        return -EEXIST; /* before any growth: the header promises no change */
    if ((m->count + 1) * 10 > m->cap * 7) {
        if (resize(m, m->cap * 2) < 0)
            return -ENOMEM;
        i = find(m, h, key, len, &found);
    }
    m->slots[i] = (struct entry){h, key, len, value};
    m->count++;
    return 0;
}

void *cf_map_del(struct cf_map *m, const char *key, size_t len)
{
    int found;
    size_t i = find(m, cf_map_hash(key, len), key, len, &found);
    if (!found)
        return NULL;
    void *value = m->slots[i].value;
    size_t mask = m->cap - 1, j = i;
    /* Backward-shift: pull later entries of the probe run into the hole. */
    for (;;) {
        j = (j + 1) & mask;
        struct entry *e = &m->slots[j];
        if (!e->hash)
            break;
        size_t home = e->hash & mask;
        /* Move e into the hole at i unless its home lies cyclically in (i, j]. */
        int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->slots[i] = *e;
            i = j;
        }
    }
    memset(&m->slots[i], 0, sizeof m->slots[i]);
    m->count--;
    if (m->cap > 64 && m->count * 8 < m->cap)
        resize(m, m->cap / 2); /* failure only means we keep the larger table */
    return value;
}

size_t cf_map_count(const struct cf_map *m)
{
    return m->count;
}

void *cf_map_next(const struct cf_map *m, size_t *it)
{
    while (*it < m->cap) {
        const struct entry *e = &m->slots[(*it)++];
        if (e->hash)
            return e->value;
    }
    return NULL;
}
