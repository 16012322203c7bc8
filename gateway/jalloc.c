/* jalloc: see jalloc.h. */
#include "jalloc.h"

#include <jansson.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

static alignas(max_align_t) unsigned char g_block[JALLOC_ARENA_BYTES];
static struct cf_arena g_arena;
static bool g_on;

static void *ja_malloc(size_t n)
{
    void *p = g_on ? cf_arena_alloc(&g_arena, n) : NULL;
    return p ? p : malloc(n);
}

static void ja_free(void *p)
{
    if (cf_arena_holds(&g_arena, p))
        cf_arena_free(p);
    else
        free(p);
}

void jalloc_install(void)
{
    cf_arena_init(&g_arena, g_block, sizeof g_block);
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

struct cf_arena_stats jalloc_stats(void)
{
    return cf_arena_stats(&g_arena);
}
