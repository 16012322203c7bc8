/* rreply: see rreply.h. */
#include "rreply.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define RR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RR_ASAN 1
#endif
#endif

#define ALIGN alignof(max_align_t)

static alignas(max_align_t) unsigned char g_arena[RREPLY_ARENA_BYTES];
static size_t g_top;
static struct rreply_stats g_st;

static bool in_arena(const void *p)
{
    const unsigned char *c = p;
    return c >= g_arena && c < g_arena + sizeof g_arena;
}

/* A reply object and `extra` bytes after it (a string's bytes or an
 * array's element pointers), zeroed. */
static redisReply *obj_new(int type, size_t extra)
{
    redisReply *r = NULL;
    size_t n = sizeof *r + extra;
#ifndef RR_ASAN
    /* (the bound first: rounding a size near SIZE_MAX up would wrap) */
    size_t need = n <= sizeof g_arena ? (n + ALIGN - 1) / ALIGN * ALIGN : SIZE_MAX;
    if (need <= sizeof g_arena - g_top) {
        r = (redisReply *)(g_arena + g_top);
        g_top += need;
        g_st.live++;
        g_st.arena++;
        memset(r, 0, n);
    }
#endif
    if (!r) {
        if (extra > SIZE_MAX - sizeof *r || !(r = calloc(1, n)))
            return NULL;
        g_st.fallback++;
    }
    r->type = type;
    return r;
}

static void *link_in(const redisReadTask *task, redisReply *r)
{
    if (r && task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    redisReply *r = obj_new(task->type, len + 1);
    if (!r)
        return NULL;
    r->str = (char *)(r + 1);
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return link_in(task, r);
}

static void *create_array(const redisReadTask *task, int elements)
{
    size_t n = elements > 0 ? (size_t)elements : 0;
    if (n > SIZE_MAX / sizeof(redisReply *))
        return NULL;
    redisReply *r = obj_new(REDIS_REPLY_ARRAY, n * sizeof(redisReply *));
    if (!r)
        return NULL;
    r->elements = n;
    r->element = n ? (redisReply **)(r + 1) : NULL;
    return link_in(task, r);
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = obj_new(REDIS_REPLY_INTEGER, 0);
    if (r)
        r->integer = value;
    return link_in(task, r);
}

static void *create_nil(const redisReadTask *task)
{
    return link_in(task, obj_new(REDIS_REPLY_NIL, 0));
}

void rreply_free(void *reply)
{
    redisReply *r = reply;
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            rreply_free(r->element[i]); /* (NULL where a reply was cut short) */
    if (!in_arena(r)) {
        free(r);
        return;
    }
    if (g_st.live && --g_st.live == 0) /* (0: an object freed twice) */
        g_top = 0;                     /* nothing of the arena is alive: it starts over */
}

static redisReplyObjectFunctions g_fns = {
    create_string, create_array, create_integer, create_nil, rreply_free,
};

void rreply_use(redisReader *r)
{
    r->fn = &g_fns;
}

struct rreply_stats rreply_stats(void)
{
    struct rreply_stats s = g_st;
    s.used = g_top;
    return s;
}
