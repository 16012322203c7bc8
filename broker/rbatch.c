/* rbatch: see rbatch.h. */
#include "rbatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "freelist.h"
#include "log.h"
#include "logcap.h"
#include "scripts.h"

/* Bounds on what is held: a batch runs in Redis without a break, and its
 * bytes come on top of the connection's own queue bound. */
#define MAX_CALLS 64
#define MAX_BYTES (64 * 1024)
/* keys and arguments of one call (a send has 3 and 9, a presence refresh 4
 * and up to 52), and of a batch: each call adds its own two counts, the
 * batch its numkeys; a batch that would pass MAX_ARGV is queued first */
#define MAX_CALL_ARGS 64
#define MAX_ARGV 2177
_Static_assert(MAX_ARGV <= RBRIDGE_MAX_ARGS, "a batch fits a call");

struct call {
    rbridge_reply_fn fn;
    void *ud;
};

struct span {
    uint32_t off, len;
};

/* The calls of one queued EVALSHA, until its reply; recycled, so that a
 * quiet broker's batches of one allocate nothing. */
struct inflight {
    struct rbridge *rb; /* outlives the reply: its end fails every waiter first */
    uint32_t n;
    struct call calls[MAX_CALLS];
};

static struct cf_freelist g_inflight = CF_FREELIST_INIT(sizeof(struct inflight), 64);

size_t rbatch_records_held(void)
{
    return g_inflight.n;
}

size_t rbatch_trim(void)
{
    return cf_fl_trim(&g_inflight);
}

struct rbatch {
    struct rbridge *rb;
    int script; /* of the calls held */
    /* held: the arguments' bytes, where each key and argument lies in them,
     * and who waits */
    char *bytes;
    size_t len, cap;
    struct span keys[MAX_ARGV], args[MAX_ARGV];
    uint32_t nkeys, nargs, ncalls;
    struct call calls[MAX_CALLS];
    /* the EVALSHA's arguments while it is queued (rbridge_eval_slots: the
     * first two are the bridge's) */
    const char *av[2 + MAX_ARGV];
    size_t al[2 + MAX_ARGV];
};

/* The bytes are kept for the next batch: at most MAX_BYTES and one call. */
static int hold(struct rbatch *q, const void *p, size_t n, struct span *out)
{
    *out = (struct span){(uint32_t)q->len, (uint32_t)n};
    if (!n)
        return 0;
    if (q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + n)
            cap *= 2;
        char *m = realloc(q->bytes, cap);
        if (!m)
            return -ENOMEM;
        q->bytes = m;
        q->cap = cap;
    }
    memcpy(q->bytes + q->len, p, n);
    q->len += n;
    return 0;
}

static int hold_num(struct rbatch *q, int64_t v, struct span *out)
{
    char t[CF_FMT_I64_MAX];
    return hold(q, t, cf_fmt_i64(t, v), out);
}

static void forget(struct rbatch *q)
{
    q->len = 0;
    q->nkeys = q->nargs = q->ncalls = 0;
}

/* The replies of calls that never left the broker (rbatch_unqueued), one
 * per reason: callers compare the pointer, the log and tests read the text.
 * The last one stands for any reason not listed (the bridge refusing a call
 * it cannot make: a broker bug). */
#define UNQUEUED(err, text)                                                                        \
    {                                                                                              \
        err, { .type = REDIS_REPLY_ERROR, .str = (char *)(text), .len = sizeof(text) - 1 }         \
    }
static const struct {
    int err;
    redisReply r;
} g_unqueued[] = {
    UNQUEUED(-ENOTCONN, "ERR not queued: the Redis connection is down"),
    UNQUEUED(-ENOBUFS, "ERR not queued: the queue toward Redis is full"),
    UNQUEUED(-ENOMEM, "ERR not queued: the broker is out of memory"),
    UNQUEUED(-ECANCELED, "ERR not queued: the broker could not make the call"),
};

static const redisReply *unqueued(int err)
{
    size_t i = 0;
    while (i + 1 < sizeof g_unqueued / sizeof g_unqueued[0] && g_unqueued[i].err != err)
        i++;
    return &g_unqueued[i].r;
}

int rbatch_unqueued(const redisReply *r)
{
    for (size_t i = 0; i < sizeof g_unqueued / sizeof g_unqueued[0]; i++)
        if (r == &g_unqueued[i].r)
            return g_unqueued[i].err;
    return 0;
}

/* Tells every held call it was not run (err says why), after taking them
 * out of q: the callbacks may hold new calls. */
static void fail_held(struct rbatch *q, int err)
{
    struct call c[MAX_CALLS];
    uint32_t n = q->ncalls;
    memcpy(c, q->calls, sizeof c[0] * n);
    forget(q);
    for (uint32_t i = 0; i < n; i++)
        if (c[i].fn)
            c[i].fn(c[i].ud, unqueued(err));
}

/* The length of the name of the room whose key failed the send, pointed at
 * by *room (script_send names a damaged key: "... (key cf:{room}:meta)"),
 * or 0. */
static size_t damaged_room(const redisReply *e, const char **room)
{
    static const char tag[] = SCRIPT_DAMAGED_KEY "cf:{";
    const char *p = memmem(e->str, e->len, tag, sizeof tag - 1);
    if (!p)
        return 0;
    p += sizeof tag - 1;
    const char *end = memchr(p, '}', e->len - (size_t)(p - e->str));
    *room = p;
    return end ? (size_t)(end - p) : 0;
}

static void on_reply(void *ud, const redisReply *r)
{
    struct inflight *f = ud;
    /* an error reply (or anything else) is the whole batch's answer */
    bool each = r && r->type == REDIS_REPLY_ARRAY && r->elements == f->n;
    for (uint32_t i = 0; i < f->n; i++) {
        const redisReply *e = each ? r->element[i] : r;
        /* one line for the call that failed; the batch's own error reply is
         * logged by the bridge, and the calls after a failure were not run */
        if (each && e->type == REDIS_REPLY_ERROR &&
            strncmp(e->str, SCRIPT_NOT_RUN, sizeof SCRIPT_NOT_RUN - 1)) {
            rbridge_call_failed(f->rb, e);
            const char *room;
            size_t room_len = damaged_room(e, &room);
            if (room_len)
                CF_LOG_CAPPED(rbridge_call_log(f->rb), CF_LOG_ERROR, "redis",
                              "room %.*s: a send failed on %s: %.*s; the key was changed "
                              "from outside confab: delete it to let the room's sends through "
                              "(deleting :meta starts a new epoch, :hist loses the history); the "
                              "room's later sends in this batch were not run, other rooms' ran",
                              (int)room_len, room, rbridge_name(f->rb), (int)e->len, e->str);
            else
                CF_LOG_CAPPED(rbridge_call_log(f->rb), CF_LOG_ERROR, "redis",
                              "a script call failed on %s: %.*s (in a batch of sends, the ones "
                              "after it were not run)",
                              rbridge_name(f->rb), (int)e->len, e->str);
        }
        if (f->calls[i].fn)
            f->calls[i].fn(f->calls[i].ud, e);
    }
    cf_fl_put(&g_inflight, f);
}

/* Queues what q holds as one EVALSHA. */
static void queue(struct rbatch *q)
{
    if (!q->ncalls)
        return;
    uint32_t argc = 1 + q->nkeys + q->nargs;
    struct inflight *f = cf_fl_get(&g_inflight);
    if (!f) {
        CF_ERROR("redis", "out of memory queueing %u calls for %s; they fail", q->ncalls,
                 rbridge_name(q->rb));
        fail_held(q, -ENOMEM);
        return;
    }
    f->rb = q->rb;
    f->n = q->ncalls;
    memcpy(f->calls, q->calls, sizeof f->calls[0] * q->ncalls);
    const char **av = q->av + 2;
    size_t *al = q->al + 2;
    char nk[CF_FMT_I64_MAX];
    av[0] = nk;
    al[0] = cf_fmt_i64(nk, q->nkeys);
    for (uint32_t i = 0; i < q->nkeys; i++) {
        av[1 + i] = q->bytes + q->keys[i].off;
        al[1 + i] = q->keys[i].len;
    }
    for (uint32_t i = 0; i < q->nargs; i++) {
        av[1 + q->nkeys + i] = q->bytes + q->args[i].off;
        al[1 + q->nkeys + i] = q->args[i].len;
    }
    /* emptied first: queueing runs the hook, which must find nothing held;
     * the bytes stay where they are until the next hold */
    forget(q);
    /* the messages before the replies; if this fails, so does the call */
    (void)rbridge_publish_first(q->rb);
    int rc = rbridge_eval_slots(q->rb, q->script, (int)argc, q->av, q->al, on_reply, f);
    if (rc < 0) {
        CF_ERROR("redis", "could not queue %u calls for %s: %s; they fail", f->n,
                 rbridge_name(q->rb), strerror(-rc));
        for (uint32_t i = 0; i < f->n; i++)
            if (f->calls[i].fn)
                f->calls[i].fn(f->calls[i].ud, unqueued(rc));
        cf_fl_put(&g_inflight, f);
    }
}

static void on_event(void *ud, enum rbridge_event ev)
{
    struct rbatch *q = ud;
    if (ev == RBRIDGE_FLUSH) {
        queue(q);
        return;
    }
    fail_held(q, -ENOTCONN);
    if (ev == RBRIDGE_FREE) {
        free(q->bytes);
        free(q);
    }
}

struct rbatch *rbatch_new(struct rbridge *rb)
{
    struct rbatch *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->rb = rb;
    rbridge_set_hook(rb, (struct rbridge_hook){on_event, q});
    return q;
}

struct rbatch *rbatch_of(const struct rbridge *rb)
{
    struct rbridge_hook h = rbridge_hook(rb);
    return h.fn == on_event ? h.ud : NULL;
}

/* Whether a call of script with argc keys and arguments, of `bytes` bytes,
 * must wait for what q holds to be queued. */
static bool full(const struct rbatch *q, int script, int argc, size_t bytes)
{
    return q->ncalls &&
           (q->ncalls == MAX_CALLS || q->len + bytes > MAX_BYTES ||
            1 + q->nkeys + q->nargs + 2 + (uint32_t)argc > MAX_ARGV || q->script != script);
}

int rbatch_add(struct rbatch *q, int script, int nkeys, int argc, const char *const *argv,
               const size_t *lens, rbridge_reply_fn fn, void *ud)
{
    if (nkeys < 0 || argc < nkeys || argc - nkeys > MAX_CALL_ARGS || nkeys > MAX_CALL_ARGS)
        return -EINVAL;
    int rc = rbridge_room(q->rb);
    if (rc < 0)
        return rc;
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += lens[i];
    if (full(q, script, argc, bytes)) {
        queue(q);
        /* a batch that could not be queued failed its calls, whose
         * callbacks may have held new ones, or the connection went down */
        if ((rc = rbridge_room(q->rb)) < 0)
            return rc;
        if (full(q, script, argc, bytes))
            return -ENOBUFS;
    }
    q->script = script;
    uint32_t k0 = q->nkeys, a0 = q->nargs;
    size_t len0 = q->len;
    rc = hold_num(q, nkeys, &q->args[q->nargs++]);
    if (!rc)
        rc = hold_num(q, argc - nkeys, &q->args[q->nargs++]);
    for (int i = 0; i < argc && !rc; i++)
        rc = hold(q, argv[i], lens[i], i < nkeys ? &q->keys[q->nkeys++] : &q->args[q->nargs++]);
    if (rc < 0) { /* as if it had not been asked */
        q->nkeys = k0;
        q->nargs = a0;
        q->len = len0;
        return rc;
    }
    q->calls[q->ncalls++] = (struct call){fn, ud};
    rbridge_kick(q->rb);
    return 0;
}
