/* rreply: see rreply.h. */
#include "rreply.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rreply_arena {
    struct cf_arena ar;
    size_t elements; /* the arrays' elements of the reply being read */
    size_t bytes;    /* its strings' bytes */
    size_t max_bytes; /* the bound of bytes */
    bool refused;    /* a bound refused the reply being read */
    char why[192];   /* rreply_too_big()'s */
    alignas(max_align_t) unsigned char buf[RREPLY_ARENA_BYTES];
};

#define TOO_BIG_FMT                                                                                \
    "a reply larger than any the broker asks for (over %zu KiB or 65536 elements): is it a "       \
    "Redis server, and does nothing but confab publish to its channels?"
#define KIB(n) ((size_t)(n) >> 10)
_Static_assert(RREPLY_MAX_ELEMENTS == 65536, "TOO_BIG_FMT names it");

struct rreply_arena *rreply_arena_new(size_t max_bytes)
{
    /* (not calloc: the block's pages are touched only as replies use them) */
    struct rreply_arena *a = malloc(sizeof *a);
    if (a) {
        cf_arena_init(&a->ar, a->buf, sizeof a->buf);
        a->elements = 0;
        a->bytes = 0;
        a->max_bytes = max_bytes < RREPLY_MAX_BYTES ? max_bytes : RREPLY_MAX_BYTES;
        a->refused = false;
        snprintf(a->why, sizeof a->why, TOO_BIG_FMT, KIB(a->max_bytes));
    }
    return a;
}

static size_t max_bytes(const struct rreply_arena *a)
{
    return a ? a->max_bytes : RREPLY_MAX_BYTES;
}

void rreply_arena_free(struct rreply_arena *a)
{
    if (a)
        cf_arena_done(&a->ar);
    free(a);
}

/* A reply object, zeroed, and `extra` bytes after it for a string's bytes
 * or an array's element pointers (zeroed too when `zero`: the elements of
 * an array whose end has not arrived must read NULL). */
static redisReply *obj_new(struct rreply_arena *a, int type, size_t extra, bool zero)
{
    if (extra > SIZE_MAX - sizeof(redisReply))
        return NULL;
    size_t n = sizeof(redisReply) + extra;
    redisReply *r = cf_arena_alloc_or_malloc(a ? &a->ar : NULL, n);
    if (!r)
        return NULL;
    memset(r, 0, zero ? n : sizeof *r);
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
    struct rreply_arena *a = task->privdata;
    size_t before = a && task->parent ? a->bytes : 0;
    if (len > max_bytes(a) - before) {
        if (a)
            a->refused = true;
        return NULL;
    }
    if (a)
        a->bytes = before + len;
    redisReply *r = obj_new(a, task->type, len + 1, false);
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
    struct rreply_arena *a = task->privdata;
    size_t n = elements > 0 ? (size_t)elements : 0;
    /* Each nested header is allocated as it comes: the bound is the whole
     * reply's, or eight levels of headers (hiredis' depth) would cost eight
     * times it, and a reply of arrays of arrays would have none. A reply
     * begins with the task that has no parent. */
    size_t before = a && task->parent ? a->elements : 0;
    if (n > RREPLY_MAX_ELEMENTS - before) {
        if (a)
            a->refused = true;
        return NULL;
    }
    if (a) {
        a->elements = before + n;
        if (!task->parent)
            a->bytes = 0; /* a reply begins */
    }
    redisReply *r = obj_new(a, REDIS_REPLY_ARRAY, n * sizeof(redisReply *), true);
    if (!r)
        return NULL;
    r->elements = n;
    r->element = n ? (redisReply **)(r + 1) : NULL;
    return link_in(task, r);
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = obj_new(task->privdata, REDIS_REPLY_INTEGER, 0, false);
    if (r)
        r->integer = value;
    return link_in(task, r);
}

static void *create_nil(const redisReadTask *task)
{
    return link_in(task, obj_new(task->privdata, REDIS_REPLY_NIL, 0, false));
}

void rreply_free(void *reply)
{
    redisReply *r = reply;
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            rreply_free(r->element[i]); /* (NULL where a reply was cut short) */
    cf_arena_release(r);
}

static redisReplyObjectFunctions g_fns = {
    create_string, create_array, create_integer, create_nil, rreply_free,
};

void rreply_use(redisReader *r, struct rreply_arena *a)
{
    r->fn = &g_fns;
    r->privdata = a;
    if (a)
        a->refused = false; /* (the arena outlives a connection's reader) */
}

bool rreply_pending_over(const redisReader *r)
{
    return r->len - r->pos > max_bytes(r->privdata);
}

bool rreply_refused(const struct rreply_arena *a)
{
    return a && a->refused;
}

const char *rreply_too_big(const struct rreply_arena *a)
{
    static char why[192];
    if (a)
        return a->why;
    if (!why[0])
        snprintf(why, sizeof why, TOO_BIG_FMT, KIB(RREPLY_MAX_BYTES));
    return why;
}

struct cf_arena_stats rreply_stats(const struct rreply_arena *a)
{
    return cf_arena_stats(a ? &a->ar : NULL);
}
