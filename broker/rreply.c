/* rreply: see rreply.h. */
#include "rreply.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "asan.h"

#define ALIGN alignof(max_align_t)
#ifdef CF_ASAN
#define REDZONE ALIGN /* poisoned bytes after each object: an overrun shows */
#else
#define REDZONE 0
#endif

struct rreply_arena {
    alignas(max_align_t) unsigned char buf[RREPLY_ARENA_BYTES];
    size_t top;
    struct rreply_stats st;
};

/* Before each object: the arena it came from (NULL: malloc()ed), so that a
 * free finds it; padded so that the object keeps malloc()'s alignment. */
union hdr {
    struct rreply_arena *a;
    max_align_t align;
};

struct rreply_arena *rreply_arena_new(void)
{
    /* (not calloc: the block's pages are touched only as replies use them) */
    struct rreply_arena *a = malloc(sizeof *a);
    if (a) {
        a->top = 0;
        a->st = (struct rreply_stats){0};
        CF_POISON(a->buf, sizeof a->buf);
    }
    return a;
}

void rreply_arena_free(struct rreply_arena *a)
{
    if (a)
        CF_UNPOISON(a->buf, sizeof a->buf); /* (malloc()'s memory again) */
    free(a);
}

/* A reply object, zeroed, and `extra` bytes after it for a string's bytes
 * or an array's element pointers (zeroed too when `zero`: the elements of
 * an array whose end has not arrived must read NULL). */
static redisReply *obj_new(struct rreply_arena *a, int type, size_t extra, bool zero)
{
    /* (room for the rounding and the redzone below, so that they cannot wrap) */
    if (extra > SIZE_MAX - sizeof(union hdr) - sizeof(redisReply) - 2 * ALIGN)
        return NULL;
    size_t n = sizeof(union hdr) + sizeof(redisReply) + extra;
    union hdr *h = NULL;
    size_t need = (n + ALIGN - 1) / ALIGN * ALIGN + REDZONE;
    if (a && need <= sizeof a->buf - a->top) {
        h = (union hdr *)(a->buf + a->top);
        a->top += need;
        a->st.live++;
        a->st.arena++;
        CF_UNPOISON(h, n);
        memset(h, 0, zero ? n : sizeof *h + sizeof(redisReply));
        h->a = a;
    }
    if (!h) {
        if (!(h = calloc(1, n)))
            return NULL;
        if (a)
            a->st.fallback++;
    }
    redisReply *r = (redisReply *)(h + 1);
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
    redisReply *r = obj_new(task->privdata, task->type, len + 1, false);
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
    if (n > RREPLY_MAX_ELEMENTS)
        return NULL;
    redisReply *r = obj_new(task->privdata, REDIS_REPLY_ARRAY, n * sizeof(redisReply *), true);
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
    union hdr *h = (union hdr *)r - 1;
    struct rreply_arena *a = h->a;
    if (!a) {
        free(h);
        return;
    }
    size_t extra = r->type == REDIS_REPLY_ARRAY ? r->elements * sizeof(redisReply *)
                   : r->str                     ? r->len + 1
                                                : 0;
    CF_POISON(h, sizeof *h + sizeof *r + extra); /* a use after free, or a second free, shows */
    (void)extra;
    /* nothing of the arena is alive: it starts over (live 0 already: an
     * object freed twice, which must not wrap the count) */
    if (a->st.live && --a->st.live == 0) {
        CF_POISON(a->buf, a->top);
        a->top = 0;
    }
}

static redisReplyObjectFunctions g_fns = {
    create_string, create_array, create_integer, create_nil, rreply_free,
};

void rreply_use(redisReader *r, struct rreply_arena *a)
{
    r->fn = &g_fns;
    r->privdata = a;
}

struct rreply_stats rreply_stats(const struct rreply_arena *a)
{
    struct rreply_stats s = {0};
    if (a) {
        s = a->st;
        s.used = a->top;
    }
    return s;
}
