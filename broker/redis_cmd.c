/* redis_cmd: the commands callers queue on a bridge (redis.h), over the
 * connections redis.c keeps, and how their error replies are told apart. */
#include <errno.h>
#include <hiredis/sds.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "fmt.h"
#include "redis.h"
#include "redis_int.h"
#include "validate.h"

/* One request at a time is framed here and handed to hiredis at once. The
 * buffer is kept up to the size of a full batch (rbatch.c: 64 KiB of
 * arguments and their framing), so a busy broker allocates nothing per
 * request; a larger one is given back. The bound only catches a runaway
 * caller: a batch is far below it (RBRIDGE_MAX_ARGS). */
#define REQUEST_MAX ((size_t)256 << 20)
#define REQUEST_KEEP ((size_t)128 << 10)
static struct cf_bytes g_request = {.max = REQUEST_MAX};

static char *put_count(char *p, char lead, size_t n)
{
    *p++ = lead;
    p += cf_fmt_i64(p, (int64_t)n);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

int rb__append(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    if (argc < 1)
        return -EINVAL;
    /* "*argc" and per argument "$len", each with its CRLF, and the bytes */
    size_t need = 3 + CF_FMT_I64_MAX;
    for (int i = 0; i < argc; i++) {
        if (lens[i] > REQUEST_MAX)
            return -ENOBUFS;
        need += 5 + CF_FMT_I64_MAX + lens[i];
    }
    char *start = (char *)cf_bytes_reserve(&g_request, need), *p = start;
    if (!p)
        return need > REQUEST_MAX ? -ENOBUFS : -ENOMEM;
    p = put_count(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        p = put_count(p, '$', lens[i]);
        if (lens[i]) /* an empty argument may come with argv[i] NULL */
            memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    int rc = redisAppendFormattedCommand(c, start, (size_t)(p - start)) == REDIS_OK ? 0 : -ENOMEM;
    if (g_request.cap > REQUEST_KEEP) /* nothing was committed: it holds no bytes */
        cf_bytes_free(&g_request);
    return rc;
}

static int channel_cmd(struct rconn *rc, const char *cmd, const char *name, size_t len,
                       const void *payload, size_t plen)
{
    char chan[ROOM_PREFIX_LEN + CF_ROOM_MAX];
    if (len > CF_ROOM_MAX)
        return -EINVAL;
    memcpy(chan, ROOM_PREFIX, ROOM_PREFIX_LEN);
    memcpy(chan + ROOM_PREFIX_LEN, name, len);
    const char *argv[] = {cmd, chan, payload};
    size_t lens[] = {strlen(cmd), ROOM_PREFIX_LEN + len, plen};
    return rb__queue(rc, payload ? 3 : 2, argv, lens, (struct waiter){NULL, NULL, -1});
}

int rbridge_subscribe(struct rbridge *b, const char *name, size_t len)
{
    return channel_cmd(&b->sub, "SUBSCRIBE", name, len, NULL, 0);
}

int rbridge_unsubscribe(struct rbridge *b, const char *name, size_t len)
{
    return channel_cmd(&b->sub, "UNSUBSCRIBE", name, len, NULL, 0);
}

int rbridge_publish(struct rbridge *b, const char *name, size_t len, const void *payload,
                    size_t plen)
{
    return channel_cmd(&b->pub, "PUBLISH", name, len, payload, plen);
}

uint32_t rbridge_inflight(const struct rbridge *b)
{
    return b->pub.st == C_UP ? b->pub.w_count : 0;
}

bool rbridge_ready(const struct rbridge *b)
{
    return b->ready;
}

void rbridge_stats(const struct rbridge *b, struct rbridge_stats *out)
{
    out->sub_up = b->sub.st == C_UP;
    out->pub_up = b->pub.st == C_UP;
    out->reconnects = b->reconnects;
    out->published = b->published;
    out->publish_errors = b->publish_errors;
    out->received = b->received;
    out->canary_ok = rbridge_canary_ok(b);
    out->canary_rtt_ms = b->canary_rtt_ms;
    out->canary_failures = b->canary_failures;
    out->reply_fallbacks =
        rreply_stats(b->sub.arena).fallback + rreply_stats(b->pub.arena).fallback;
}

int rbridge_publish_first(struct rbridge *b)
{
    static const char *argv[] = {"PING"};
    static const size_t lens[] = {4};
    enum { PING_BYTES = 14 }; /* "*1\r\n$4\r\nPING\r\n" */
    if (b->pub.st != C_UP)
        return -ENOTCONN;
    /* The command it goes before was taken while the queue had room (a
     * batch's calls, rbatch_add): the PING must not use that room up and
     * get it refused, nor the last place among the commands in flight. */
    if (rb__queued(&b->pub) + PING_BYTES > b->max_queue ||
        b->pub.w_count + 2 > RBRIDGE_MAX_INFLIGHT)
        return -ENOBUFS;
    return rb__queue(&b->pub, 1, argv, lens, (struct waiter){NULL, NULL, -1});
}

int rbridge_eval_slots(struct rbridge *b, int script, int argc, const char **av, size_t *al,
                       rbridge_reply_fn fn, void *ud)
{
    if (script < 0 || script >= b->nscripts || argc < 0 || argc > RBRIDGE_MAX_ARGS)
        return -EINVAL;
    if (b->pub.st != C_UP)
        return -ENOTCONN;
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = b->shas[script];
    al[1] = 40;
    return rb__queue(&b->pub, argc + 2, av, al, (struct waiter){fn, ud, -1});
}

int rbridge_eval(struct rbridge *b, int script, int argc, const char **argv, const size_t *lens,
                 rbridge_reply_fn fn, void *ud)
{
    enum { MAX_ARGS = 64 };
    if (argc < 0 || argc > MAX_ARGS - 2)
        return -EINVAL;
    const char *av[MAX_ARGS];
    size_t al[MAX_ARGS];
    if (argc) {
        memcpy(av + 2, argv, sizeof *argv * (size_t)argc);
        memcpy(al + 2, lens, sizeof *lens * (size_t)argc);
    }
    return rbridge_eval_slots(b, script, argc, av, al, fn, ud);
}

void rbridge_set_hook(struct rbridge *b, struct rbridge_hook hook)
{
    b->hook = hook;
}

struct rbridge_hook rbridge_hook(const struct rbridge *b)
{
    return b->hook;
}

int rbridge_room(const struct rbridge *b)
{
    if (b->pub.st != C_UP)
        return -ENOTCONN;
    /* a batch taken now goes as two commands (rbridge_publish_first) */
    bool full = rb__queued(&b->pub) > b->max_queue || b->pub.w_count + 2 > RBRIDGE_MAX_INFLIGHT;
    return full ? -ENOBUFS : 0;
}

void rbridge_kick(struct rbridge *b)
{
    rb__kick(&b->pub);
}

void rbridge_call_failed(struct rbridge *b, const redisReply *e)
{
    b->publish_errors++;
    b->call_fatal = b->call_fatal || rb__fatal_error(e);
}

struct cf_logcap *rbridge_call_log(struct rbridge *b)
{
    return &b->call_log;
}

const char *rbridge_name(const struct rbridge *b)
{
    return b->addr_str;
}

bool rbridge_error_is(const redisReply *r, const char *code)
{
    if (!r || r->type != REDIS_REPLY_ERROR || !r->str)
        return false;
    size_t n = strlen(code);
    for (size_t i = 0; i + n <= r->len; i++) {
        if (i && r->str[i - 1] != ' ' && r->str[i - 1] != ':' && r->str[i - 1] != '-')
            continue;
        if (!memcmp(r->str + i, code, n) &&
            (i + n == r->len || r->str[i + n] == ' ' || r->str[i + n] == '\r'))
            return true;
    }
    return false;
}

bool rb__fatal_error(const redisReply *r)
{
    /* A replica after failover, a loading server, lost auth, flushed
     * scripts: reconnect (which reloads the scripts). */
    static const char *const codes[] = {"READONLY", "LOADING", "MASTERDOWN", "NOAUTH", "NOSCRIPT"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (rbridge_error_is(r, codes[i]))
            return true;
    return false;
}
