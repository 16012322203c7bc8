/* jalloc: see jalloc.h. */
#include "jalloc.h"

#include <jansson.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asan.h"

#define ALIGN alignof(max_align_t)
#ifdef CF_ASAN
/* A poisoned header before each block: an overrun of the block before
 * shows, and it holds the size, so that a block freed while others live is
 * poisoned at once (a use after its free shows too). */
#define HDR ALIGN
#else
#define HDR 0
#endif

static alignas(max_align_t) unsigned char g_arena[JALLOC_ARENA_BYTES];
static size_t g_top;
static bool g_on;
static struct jalloc_stats g_st;

static bool in_arena(const void *p)
{
    const unsigned char *c = p;
    return c >= g_arena && c < g_arena + sizeof g_arena;
}

static void *ja_malloc(size_t n)
{
    /* (the bound first: rounding a size near SIZE_MAX up would wrap) */
    size_t need = n <= sizeof g_arena ? HDR + (n + ALIGN - 1) / ALIGN * ALIGN : SIZE_MAX;
    if (!g_on || need > sizeof g_arena - g_top) {
        g_st.fallback += g_on;
        return malloc(n);
    }
    unsigned char *p = g_arena + g_top + HDR;
    g_top += need;
    g_st.live++;
    g_st.arena++;
#ifdef CF_ASAN
    CF_UNPOISON(p - HDR, sizeof(size_t));
    memcpy(p - HDR, &n, sizeof n);
    CF_POISON(p - HDR, sizeof(size_t));
#endif
    CF_UNPOISON(p, n);
    return p;
}

static void ja_free(void *p)
{
    if (!in_arena(p)) {
        free(p);
        return;
    }
#ifdef CF_ASAN
    unsigned char *c = p;
    size_t n;
    size_t off = (size_t)(c - g_arena);
    if (off < HDR || off % ALIGN) {
        fprintf(stderr, "jalloc: %p is not a block of the arena\n", p);
        abort();
    }
    CF_UNPOISON(c - HDR, sizeof n);
    memcpy(&n, c - HDR, sizeof n);
    CF_POISON(c - HDR, sizeof n);
    if (n > sizeof g_arena - off || (n && __asan_address_is_poisoned(c))) {
        fprintf(stderr, "jalloc: %p freed twice, or not a block of the arena\n", p);
        abort();
    }
    CF_POISON(c, n);
#endif
    if (g_st.live && --g_st.live == 0) { /* (0: a block freed twice) */
        /* nothing of the arena is alive: it starts over */
        CF_POISON(g_arena, g_top);
        g_top = 0;
    }
}

void jalloc_install(void)
{
    CF_POISON(g_arena, sizeof g_arena);
    json_set_alloc_funcs(ja_malloc, ja_free);
}

void jalloc_begin(void)
{
    g_on = true;
}

void jalloc_end(void)
{
    g_on = false;
}

struct jalloc_stats jalloc_stats(void)
{
    struct jalloc_stats s = g_st;
    s.used = g_top;
    return s;
}
