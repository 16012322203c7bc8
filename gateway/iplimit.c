/* iplimit: see iplimit.h.
 *
 * Entries live in one array (indices are the handles connections keep, so
 * they never move) chained from a power-of-two hash table; free entries form
 * a list. The array and the table grow by doubling up to IPL_MAX_ADDRS. */
#include "iplimit.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "tbucket.h"

#define SWEEP_BUDGET 4096
/* After a sweep at a full table found nothing idle, new addresses are let in
 * untracked without sweeping again for this long, unless a connection ended
 * meanwhile: with the table full of busy addresses (cheap IPv6 /64s doing
 * logins), every accept from a new address paid a SWEEP_BUDGET scan. */
#define DRY_MS 100

struct ent {
    uint8_t key[16];
    uint32_t next;  /* chain or free list; 0 = end (entry 0 is never used) */
    uint32_t conns; /* open connections; UINT32_MAX marks a free entry */
    struct cf_tbucket b[2];
};

struct ipl {
    struct ipl_limits lim;
    struct ent *e;
    uint32_t cap, used, free_head; /* e[1..cap) exist */
    uint32_t *heads, mask;         /* hash table, mask + 1 slots */
    size_t live;
    uint32_t sweep_at;
    uint64_t emptied;     /* addresses whose last connection ended */
    uint64_t dry_emptied; /* ... as of the last sweep that freed nothing */
    int64_t dry_at;       /* when it ran */
    bool dry;
};

struct ipl *ipl_new(const struct ipl_limits *lim)
{
    struct ipl *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->lim = *lim;
    return t;
}

void ipl_free(struct ipl *t)
{
    if (!t)
        return;
    free(t->e);
    free(t->heads);
    free(t);
}

static bool tracking(const struct ipl *t)
{
    return t->lim.max_conns > 0 || t->lim.login_rate > 0 || t->lim.upgrade_rate > 0;
}

/* IPv4 (also v4-mapped IPv6) as ::ffff:a.b.c.d, IPv6 as its /64. */
static bool key_of(const struct sockaddr *sa, socklen_t len, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        /* NAT64's well-known prefix (RFC 6052): one IPv4 client each, not
         * every IPv4 client behind the translator sharing one /64's budget */
        static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
        if (memcmp(a, nat64, 12) == 0) {
            key[10] = key[11] = 0xff;
            memcpy(key + 12, a + 12, 4);
        } else
            memcpy(key, a, memcmp(a, mapped, 12) == 0 ? 16 : 8);
        return true;
    }
    return false;
}

static uint32_t slot_of(const struct ipl *t, const uint8_t key[16])
{
    return (uint32_t)cf_map_hash(key, 16) & t->mask; /* seeded: addresses are the peers' choice */
}

static int grow(struct ipl *t)
{
    uint32_t ncap = t->cap ? t->cap * 2 : 64;
    if (ncap > IPL_MAX_ADDRS + 1)
        return -1;
    struct ent *e = realloc(t->e, ncap * sizeof *e);
    if (!e)
        return -1;
    t->e = e;
    uint32_t *heads = calloc(ncap, sizeof *heads);
    if (!heads)
        return -1;
    free(t->heads);
    t->heads = heads;
    t->mask = ncap - 1;
    for (uint32_t i = 1; i < t->cap; i++)
        if (t->e[i].conns != UINT32_MAX) {
            uint32_t s = slot_of(t, t->e[i].key);
            t->e[i].next = t->heads[s];
            t->heads[s] = i;
        }
    for (uint32_t i = ncap - 1; i >= (t->cap ? t->cap : 1); i--) {
        t->e[i].conns = UINT32_MAX;
        t->e[i].next = t->free_head;
        t->free_head = i;
    }
    t->cap = ncap;
    return 0;
}

static bool idle(const struct ipl *t, const struct ent *e, int64_t now_ms);
static void unlink_ent(struct ipl *t, uint32_t i);

/* Frees idle entries from the sweep position on, looking at most at `budget`
 * entries; returns how many were freed. */
static uint32_t sweep(struct ipl *t, int64_t now_ms, uint32_t budget)
{
    uint32_t freed = 0;
    for (uint32_t n = 0; n < budget && t->cap > 1; n++) {
        uint32_t i = t->sweep_at;
        t->sweep_at = i + 1 >= t->cap ? 1 : i + 1;
        if (i && t->e[i].conns != UINT32_MAX && idle(t, &t->e[i], now_ms)) {
            unlink_ent(t, i);
            freed++;
        }
    }
    return freed;
}

static uint32_t find_or_add(struct ipl *t, const uint8_t key[16], int64_t now_ms)
{
    if (t->cap) {
        for (uint32_t i = t->heads[slot_of(t, key)]; i; i = t->e[i].next)
            if (memcmp(t->e[i].key, key, 16) == 0)
                return i;
    }
    /* full: forget idle addresses now rather than wait for the sweep */
    if (!t->free_head && grow(t) < 0) {
        if (t->dry && t->emptied == t->dry_emptied && now_ms - t->dry_at < DRY_MS)
            return 0;
        t->dry = !sweep(t, now_ms, SWEEP_BUDGET);
        t->dry_emptied = t->emptied;
        t->dry_at = now_ms;
        if (t->dry)
            return 0;
    }
    uint32_t i = t->free_head;
    struct ent *e = &t->e[i];
    t->free_head = e->next;
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, 16);
    uint32_t s = slot_of(t, key);
    e->next = t->heads[s];
    t->heads[s] = i;
    t->live++;
    return i;
}

enum ipl_verdict ipl_open(struct ipl *t, const struct sockaddr *sa, socklen_t len,
                          int64_t now_ms, uint32_t *handle)
{
    uint8_t key[16];
    *handle = 0;
    if (!tracking(t) || !key_of(sa, len, key))
        return IPL_OK;
    uint32_t i = find_or_add(t, key, now_ms);
    if (!i)
        return IPL_UNTRACKED; /* admitted: a full table must not lock everybody out */
    if (t->lim.max_conns > 0 && t->e[i].conns >= (uint32_t)t->lim.max_conns)
        return IPL_TOO_MANY; /* the entry stays: ipl_sweep forgets it when idle */
    t->e[i].conns++;
    *handle = i;
    return IPL_OK;
}

void ipl_close(struct ipl *t, uint32_t handle)
{
    if (handle && handle < t->cap && t->e[handle].conns && t->e[handle].conns != UINT32_MAX &&
        --t->e[handle].conns == 0)
        t->emptied++;
}

bool ipl_allow(struct ipl *t, uint32_t handle, enum ipl_kind kind, int64_t now_ms, int *retry_s)
{
    int rate = kind == IPL_LOGIN ? t->lim.login_rate : t->lim.upgrade_rate;
    int burst = kind == IPL_LOGIN ? t->lim.login_burst : t->lim.upgrade_burst;
    if (rate <= 0 || !handle || handle >= t->cap || t->e[handle].conns == UINT32_MAX)
        return true;
    struct cf_tbucket *b = &t->e[handle].b[kind];
    if (cf_tb_take(b, rate, burst, now_ms))
        return true;
    int64_t wait = cf_tb_wait_ms(b, rate, burst, now_ms);
    *retry_s = (int)((wait + 999) / 1000) > 0 ? (int)((wait + 999) / 1000) : 1;
    return false;
}

bool ipl_can(const struct ipl *t, uint32_t handle, enum ipl_kind kind, int64_t now_ms)
{
    int rate = kind == IPL_LOGIN ? t->lim.login_rate : t->lim.upgrade_rate;
    int burst = kind == IPL_LOGIN ? t->lim.login_burst : t->lim.upgrade_burst;
    if (rate <= 0 || !handle || handle >= t->cap || t->e[handle].conns == UINT32_MAX)
        return true;
    return cf_tb_wait_ms(&t->e[handle].b[kind], rate, burst, now_ms) == 0;
}

static bool idle(const struct ipl *t, const struct ent *e, int64_t now_ms)
{
    const struct ipl_limits *l = &t->lim;
    return e->conns == 0 &&
           (l->login_rate <= 0 || cf_tb_full(&e->b[IPL_LOGIN], l->login_rate, l->login_burst,
                                             now_ms)) &&
           (l->upgrade_rate <= 0 ||
            cf_tb_full(&e->b[IPL_UPGRADE], l->upgrade_rate, l->upgrade_burst, now_ms));
}

static void unlink_ent(struct ipl *t, uint32_t i)
{
    uint32_t *p = &t->heads[slot_of(t, t->e[i].key)];
    while (*p != i)
        p = &t->e[*p].next;
    *p = t->e[i].next;
    t->e[i].conns = UINT32_MAX;
    t->e[i].next = t->free_head;
    t->free_head = i;
    t->live--;
}

void ipl_sweep(struct ipl *t, int64_t now_ms)
{
    sweep(t, now_ms, SWEEP_BUDGET);
}

size_t ipl_count(const struct ipl *t)
{
    return t->live;
}
