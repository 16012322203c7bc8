/* store: see store.h. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "bytes.h"
#include "clock.h"
#include "fmt.h"
#include "freelist.h"
#include "log.h"
#include "rbatch.h"
#include "ring.h"
#include "scripts.h"
#include "validate.h"


/* ---- helpers ------------------------------------------------------------ */

#define KEY_MAX (CF_ROOM_MAX + 16)

/* Keys, channels and epochs are put together by hand: snprintf parses its
 * format on every call, and these run four times a send (~1.5 k
 * instructions each under callgrind, 9 % of the broker's work per message).
 * Room names are valid here, so at most CF_ROOM_MAX long. */
static size_t put(char *out, size_t n, const char *s, size_t len)
{
    memcpy(out + n, s, len);
    return n + len;
}

static size_t put_room(char *out, size_t n, struct cf_str room)
{
    return put(out, n, room.p, room.len < CF_ROOM_MAX ? room.len : CF_ROOM_MAX);
}

static size_t room_key(char *out, struct cf_str room, const char *what)
{
    size_t n = put(out, 0, "cf:{", 4);
    n = put_room(out, n, room);
    n = put(out, n, "}:", 2);
    n = put(out, n, what, strlen(what)); /* at most 4 */
    out[n] = '\0';
    return n;
}

static size_t channel(char *out, struct cf_str room)
{
    size_t n = put(out, 0, "room:", 5);
    n = put_room(out, n, room);
    out[n] = '\0';
    return n;
}

/* 16 lowercase hex digits, CF_WIRE_EPOCH_LEN: brokers drop a msg on Redis
 * whose epoch has another shape (cf_wire_room_event), so the send script
 * takes an epoch of another length for damage to the room. */
static void new_epoch(char out[17])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v = cf_random_u64();
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
    out[16] = '\0';
}

/* ---- TTLs ----------------------------------------------------------------
 * A room's keys outlive its last activity by HISTORY_TTL. Setting both TTLs
 * on every send cost two of its seven commands, so each broker process sets
 * them at most once per TOUCH = HISTORY_TTL / 8 per room (script_send's
 * `touch`), to HISTORY_TTL + TOUCH: a message sent up to TOUCH after the last
 * touch still has HISTORY_TTL ahead of it. A join sets them the same way (its
 * `touch`, counted with the sends').
 *
 * When this process last touched a room: a direct-mapped table, so memory is
 * fixed; two rooms in one slot only cost an extra touch. A send that failed
 * may not have touched, nor does a duplicate: either makes every entry stale
 * (g_touch_gen). */
#define TOUCH_SLOTS 4096

struct touch {
    uint64_t key;
    int64_t at_ms;
    uint32_t gen;
};
static struct touch g_touch[TOUCH_SLOTS];
static uint32_t g_touch_gen = 1;

static uint32_t touch_every_ms(const struct store_limits *lim)
{
    return lim->history_ttl_s / 8 * 1000;
}

static int64_t keep_s(const struct store_limits *lim)
{
    return (int64_t)lim->history_ttl_s + lim->history_ttl_s / 8;
}

/* Whether this send should set the TTLs; counts it as done. */
static bool touch_due(struct cf_str room, const struct store_limits *lim)
{
    uint64_t key = cf_ring_key(room.p, room.len);
    int64_t now = cf_mono_ms();
    struct touch *t = &g_touch[key % TOUCH_SLOTS];
    if (t->gen == g_touch_gen && t->key == key && now - t->at_ms < touch_every_ms(lim))
        return false;
    t->key = key;
    t->at_ms = now;
    t->gen = g_touch_gen;
    return true;
}

static void touch_unsure(void)
{
    g_touch_gen++;
}

void store_forget_touches(void)
{
    touch_unsure();
}

/* A growing argv: strings are either borrowed or formatted into `num`. */
struct args {
    const char *v[64];
    size_t l[64];
    char num[16][24];
    int n, nn;
};

static void arg(struct args *a, const char *p, size_t len)
{
    a->v[a->n] = p;
    a->l[a->n] = len;
    a->n++;
}

static void arg_str(struct args *a, struct cf_str s)
{
    arg(a, s.p ? s.p : "", s.len);
}

static void arg_num(struct args *a, int64_t v)
{
    char *p = a->num[a->nn++];
    arg(a, p, cf_fmt_i64(p, v));
}

static bool int_of(const redisReply *r, int64_t *out)
{
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return false;
    *out = r->integer;
    return true;
}

/* Points a cf_str array at the string elements of an array reply. */
static struct cf_str *strings_of(const redisReply *r, uint32_t *n)
{
    *n = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements > CF_WIRE_MAX_ITEMS)
        return NULL;
    struct cf_str *v = calloc(r->elements ? r->elements : 1, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING) {
            free(v);
            return NULL;
        }
        v[i] = (struct cf_str){e->str, (uint32_t)e->len};
    }
    *n = (uint32_t)r->elements;
    return v;
}

/* Redis refused to write for now (out of memory under maxmemory, a replica
 * after a failover, loading its data, a failed RDB save, a busy script,
 * scripts flushed): the command did nothing, and a retry may pass. A send
 * not run because such an error stopped its batch carries that error
 * (script_send). */
static bool refused_for_now(const redisReply *r)
{
    static const char *const codes[] = {"OOM",  "READONLY", "LOADING",    "MASTERDOWN",
                                        "BUSY", "MISCONF",  "NOREPLICAS", "NOSCRIPT"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (rbridge_error_is(r, codes[i]))
            return true;
    return false;
}

static int err_of(const redisReply *r)
{
    if (!r)
        return -ECONNRESET;
    int unqueued = rbatch_unqueued(r);
    if (unqueued)
        return unqueued;
    return r->type == REDIS_REPLY_ERROR && refused_for_now(r) ? -EAGAIN : -EIO;
}

/* A small heap box carrying the caller's callback through rbridge. */
struct box {
    void (*fn)(void);
    void *ud;
    int64_t ts; /* a send's time, which its reply leaves out */
};

/* a box per request: recycled, not malloc'd per message */
static struct cf_freelist g_boxes = CF_FREELIST_INIT(sizeof(struct box), 1024);

size_t store_boxes_held(void)
{
    return g_boxes.n;
}

size_t store_trim(void)
{
    return cf_fl_trim(&g_boxes);
}

static void box_free(struct box *b)
{
    cf_fl_put(&g_boxes, b);
}

static struct box *box_new(void (*fn)(void), void *ud)
{
    struct box *b = cf_fl_get(&g_boxes);
    if (b)
        *b = (struct box){fn, ud, 0};
    return b;
}

static int eval(struct rbridge *rb, int script, struct args *a, rbridge_reply_fn done,
                struct box *box)
{
    if (!box && done)
        return -ENOMEM;
    /* no bridge: the room's Redis server is not usable (rset_for) */
    int rc = rb ? rbridge_eval(rb, script, a->n, a->v, a->l, done, box) : -ENOTCONN;
    if (rc < 0)
        box_free(box);
    return rc;
}

/* ---- send --------------------------------------------------------------- */

/* A digit string of at most 18 digits (so that it fits an int64_t). */
static bool digits_of(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* A send's reply: its id (sent at `ts`), or "id:ts" of the earlier send it
 * repeats. */
static bool sent_of(const redisReply *r, int64_t ts, struct store_sent *out)
{
    int64_t id = 0;
    bool dup = r && r->type == REDIS_REPLY_STRING;
    bool ok = false;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        id = r->integer;
        ok = id > 0;
    } else if (dup) {
        const char *colon = memchr(r->str, ':', r->len);
        const char *t = colon ? colon + 1 : NULL;
        size_t tn = colon ? r->len - (size_t)(t - r->str) : 0;
        bool neg = tn > 0 && *t == '-'; /* a time before 1970 (a clock gone wrong) */
        ok = colon && digits_of(r->str, (size_t)(colon - r->str), &id) &&
             digits_of(t + neg, tn - neg, &ts) && id > 0;
        if (ok && neg)
            ts = -ts;
    }
    if (!ok || dup)
        touch_unsure(); /* failed, or answered before the TTLs were set */
    if (ok)
        *out = (struct store_sent){(uint64_t)id, ts, dup};
    return ok;
}

static void sent_reply(void *ud, const redisReply *r)
{
    struct box *b = ud;
    store_sent_fn fn = (store_sent_fn)b->fn;
    struct store_sent s;
    if (sent_of(r, b->ts, &s))
        fn(b->ud, 0, &s);
    else
        fn(b->ud, err_of(r), NULL);
    box_free(b);
}

/* Sends go through the bridge's batcher (rbatch.h), made with the first.
 * box: the caller's, or NULL for a call nobody waits for (a refresh). */
static int batch(struct rbridge *rb, int script, int nkeys, struct args *a, rbridge_reply_fn done,
                 struct box *box)
{
    struct rbatch *q = rb ? rbatch_of(rb) : NULL;
    if (rb && !q)
        q = rbatch_new(rb);
    int rc = !rb      ? -ENOTCONN
             : !q     ? -ENOMEM
                      : rbatch_add(q, script, nkeys, a->n, a->v, a->l, done, box);
    if (rc < 0 && box)
        box_free(box);
    return rc;
}

int store_send(struct rbridge *rb, const struct store_limits *lim, const struct cf_wire_msg *m,
               struct cf_str cid, store_sent_fn fn, void *ud)
{
    /* One buffer for every send of this (single-threaded) process: the
     * batcher copies the arguments, so it is free again when that returns. */
    static struct cf_bytes prefix = {.max = CF_WIRE_MAX_FRAME};
    cf_bytes_truncate(&prefix, 0);
    int rc = cf_wire_msg_prefix(&prefix, m);
    if (rc < 0)
        return rc;
    char k_meta[KEY_MAX], k_hist[KEY_MAX], chan[KEY_MAX], epoch[17];
    char k_dd[KEY_MAX + 2 * CF_WIRE_MAX_TOKEN + 24];
    struct args a = {0};
    bool dedup = cid.len > 0;
    arg(&a, k_meta, room_key(k_meta, m->room, "meta"));
    arg(&a, k_hist, room_key(k_hist, m->room, "hist"));
    if (dedup) {
        /* the user's length first: names may contain ':' */
        int n = snprintf(k_dd, sizeof k_dd, "cf:{%.*s}:dd:%u:%.*s:%.*s", (int)m->room.len,
                         m->room.p, m->from.len, (int)m->from.len, m->from.p, (int)cid.len, cid.p);
        arg(&a, k_dd, (size_t)n);
    }
    arg(&a, chan, channel(chan, m->room));
    arg(&a, (const char *)cf_bytes_data(&prefix), cf_bytes_len(&prefix));
    arg_num(&a, m->ts);
    arg_num(&a, lim->history_size);
    arg_num(&a, keep_s(lim));
    arg_num(&a, lim->dedup_window_s);
    new_epoch(epoch);
    arg(&a, epoch, 16);
    bool touch = touch_due(m->room, lim);
    arg(&a, touch ? "1" : "0", 1);
    arg_num(&a, lim->history_size / 8);
    struct box *box = box_new((void (*)(void))fn, ud);
    if (box)
        box->ts = m->ts;
    rc = !box ? -ENOMEM : batch(rb, S_SEND, dedup ? 3 : 2, &a, sent_reply, box);
    if (rc < 0 && touch)
        touch_unsure(); /* refused before Redis saw it: the TTLs were not set */
    return rc;
}

/* ---- join --------------------------------------------------------------- */

static void joined_reply(void *ud, const redisReply *r)
{
    struct box *b = ud;
    store_joined_fn fn = (store_joined_fn)b->fn;
    struct store_joined j = {0};
    int64_t last, pv, count, rec;
    struct cf_str *members = NULL, *msgs = NULL;
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 7 &&
              r->element[0]->type == REDIS_REPLY_STRING && int_of(r->element[1], &last) &&
              int_of(r->element[2], &pv) && int_of(r->element[3], &count) &&
              int_of(r->element[4], &rec) && last >= 0 && pv >= 0 && count >= 0;
    if (ok) {
        members = strings_of(r->element[5], &j.nmembers);
        msgs = strings_of(r->element[6], &j.nmessages);
        ok = members && msgs;
    }
    if (ok) {
        j.epoch = (struct cf_str){r->element[0]->str, (uint32_t)r->element[0]->len};
        j.last_id = (uint64_t)last;
        j.pv = (uint64_t)pv;
        j.count = (uint64_t)count;
        j.recovered = rec != 0;
        j.members = members;
        j.messages = msgs;
        fn(b->ud, 0, &j);
    } else {
        touch_unsure(); /* the script may have stopped before the TTLs */
        fn(b->ud, r && r->type != REDIS_REPLY_ERROR ? -EPROTO : err_of(r), NULL);
    }
    free(members);
    free(msgs);
    box_free(b);
}

static void presence_keys(struct args *a, char k[4][KEY_MAX], struct cf_str room)
{
    static const char *const what[4] = {"pz", "pu", "pc", "pv"};
    for (int i = 0; i < 4; i++)
        arg(a, k[i], room_key(k[i], room, what[i]));
}

int store_join(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
               struct cf_str conn, struct cf_str user, bool has_since, uint64_t since,
               struct cf_str epoch, uint32_t limit, uint32_t budget, uint32_t max_members,
               store_joined_fn fn, void *ud)
{
    char k_meta[KEY_MAX], k_hist[KEY_MAX], pk[4][KEY_MAX], chan[KEY_MAX];
    char cand[17];
    struct args a = {0};
    arg_num(&a, 6);
    arg(&a, k_meta, room_key(k_meta, room, "meta"));
    arg(&a, k_hist, room_key(k_hist, room, "hist"));
    presence_keys(&a, pk, room);
    arg(&a, chan, channel(chan, room));
    arg_str(&a, room);
    arg_str(&a, conn);
    arg_str(&a, user);
    arg_num(&a, lim->presence_ttl_ms);
    arg_num(&a, keep_s(lim));
    new_epoch(cand);
    arg(&a, cand, 16);
    arg_num(&a, has_since && since <= INT64_MAX ? (int64_t)since : -1);
    arg_str(&a, epoch);
    arg_num(&a, limit);
    arg_num(&a, max_members);
    arg_num(&a, lim->history_size);
    bool touch = touch_due(room, lim);
    arg(&a, touch ? "1" : "0", 1);
    arg_num(&a, budget);
    int rc = eval(rb, S_JOIN, &a, joined_reply, box_new((void (*)(void))fn, ud));
    if (rc < 0 && touch)
        touch_unsure(); /* refused before Redis saw it: the TTLs were not set */
    return rc;
}

/* ---- presence ----------------------------------------------------------- */

/* The keys and leading arguments every presence script takes:
 * KEYS pz pu pc pv; ARGV chan room ttl (the time is Redis', scripts.c). */
static void presence_call(struct args *a, char k[4][KEY_MAX], char *chan, struct cf_str room,
                          const struct store_limits *lim)
{
    presence_keys(a, k, room);
    arg(a, chan, channel(chan, room));
    arg_str(a, room);
    arg_num(a, lim->presence_ttl_ms);
}

/* The same for a script called on its own: numkeys first. */
static void presence_head(struct args *a, char k[4][KEY_MAX], char *chan, struct cf_str room,
                          const struct store_limits *lim)
{
    arg_num(a, 4);
    presence_call(a, k, chan, room, lim);
}

int store_leave(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                struct cf_str conn)
{
    char pk[4][KEY_MAX], chan[KEY_MAX];
    struct args a = {0};
    presence_head(&a, pk, chan, room, lim);
    arg_str(&a, conn);
    return eval(rb, S_LEAVE, &a, NULL, NULL);
}

int store_refresh(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                  const struct cf_str *conns, const struct cf_str *users, uint32_t n)
{
    enum { PER_CALL = 24 }; /* pairs per call: 51 arguments (rbatch.c takes 64) */
    for (uint32_t at = 0; at < n || at == 0; at += PER_CALL) {
        char pk[4][KEY_MAX], chan[KEY_MAX];
        struct args a = {0};
        presence_call(&a, pk, chan, room, lim);
        for (uint32_t i = at; i < n && i < at + PER_CALL; i++) {
            arg_str(&a, conns[i]);
            arg_str(&a, users[i]);
        }
        int rc = batch(rb, S_REFRESH, 4, &a, NULL, NULL);
        if (rc < 0)
            return rc;
        if (n == 0)
            break;
    }
    return 0;
}

/* ---- history ------------------------------------------------------------ */

static void page_reply(void *ud, const redisReply *r)
{
    struct box *b = ud;
    store_page_fn fn = (store_page_fn)b->fn;
    struct store_page p = {0};
    int64_t more;
    struct cf_str *msgs = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && int_of(r->element[1], &more) &&
        (msgs = strings_of(r->element[0], &p.nmessages))) {
        p.messages = msgs;
        p.has_more = more != 0;
        fn(b->ud, 0, &p);
    } else {
        fn(b->ud, r && r->type != REDIS_REPLY_ERROR ? -EPROTO : err_of(r), NULL);
    }
    free(msgs);
    box_free(b);
}

int store_history(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                  bool has_before, uint64_t before, uint32_t limit, uint32_t budget,
                  store_page_fn fn, void *ud)
{
    char k_meta[KEY_MAX], k_hist[KEY_MAX];
    struct args a = {0};
    arg_num(&a, 2);
    arg(&a, k_meta, room_key(k_meta, room, "meta"));
    arg(&a, k_hist, room_key(k_hist, room, "hist"));
    arg_num(&a, has_before && before <= INT64_MAX ? (int64_t)before : -1);
    arg_num(&a, limit);
    arg_num(&a, lim->history_size);
    arg_num(&a, budget);
    return eval(rb, S_HISTORY, &a, page_reply, box_new((void (*)(void))fn, ud));
}

int store_typing(struct rbridge *rb, struct cf_str room, struct cf_str user, uint32_t gap_ms,
                 const void *payload, size_t len)
{
    char key[KEY_MAX + CF_USERNAME_BYTES_MAX + 8], chan[KEY_MAX];
    struct args a = {0};
    arg_num(&a, 1);
    int n = snprintf(key, sizeof key, "cf:{%.*s}:ty:%.*s", (int)room.len, room.p, (int)user.len,
                     user.p);
    arg(&a, key, (size_t)n);
    arg(&a, chan, channel(chan, room));
    arg(&a, payload, len);
    arg_num(&a, gap_ms);
    return eval(rb, S_TYPING, &a, NULL, NULL);
}
