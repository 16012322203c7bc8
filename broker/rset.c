/* rset: see rset.h. */
#include "rset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "ring.h"

/* Returns the key's value after setting it when it was absent: one round
 * trip, atomic, so two brokers starting together agree on who set it. */
static const char ring_script[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] end\n"
    "return v\n";

struct server {
    struct rset *rs;
    uint32_t index;
    struct rbridge *b;
    char addr[300];
    bool verified; /* the ring check passed on the current publisher connection */
    bool ever;     /* ... at least once since this process started */
    bool checking; /* a check is waiting for its reply */
    uint64_t mismatches;
};

struct rset {
    sd_event *ev;
    struct rset_cbs cbs;
    void *ud;
    uint32_t n;
    struct server *sv;
    const char **scripts; /* the caller's, then ring_script */
    int ring_script;      /* its index */
    char expect[24];      /* "<index>/<count>" without the index: "/<count>" */
    sd_event_source *timer;
    int64_t born; /* monotonic ms: a mismatch found soon after is fatal */
};

/* A mismatch stops the node only while it is starting (a wrong list is
 * refused at once). Later it is another node's wrong list that shows up, on a
 * server that was down at start: this node keeps serving the other servers'
 * rooms and says why that server's are unavailable. */
#define RSET_FATAL_WINDOW_MS 30000

static void describe(char *out, size_t cap, const char *addr, uint32_t i, uint32_t n)
{
    snprintf(out, cap, "Redis server %s (index %u of %u in REDIS_ADDR)", addr, i, n);
}

/* A value from Redis, printable and bounded, for a log line. */
static void shown(char *out, size_t cap, const char *s, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < cap; i++)
        out[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[k] = '\0';
}

static void verified(struct server *s)
{
    struct rset *rs = s->rs;
    bool first = !s->ever;
    s->verified = s->ever = true;
    if (first || s->mismatches)
        CF_INFO("redis", "%s holds %s = \"%u%s\" as expected", s->addr, RSET_RING_KEY, s->index,
                rs->expect);
    struct rset_server_stats st;
    rset_stats(rs, s->index, &st);
    if (rs->cbs.on_pub_ready)
        rs->cbs.on_pub_ready(rs->ud, s->index);
    if (st.redis.sub_up && rs->cbs.on_sub_ready)
        rs->cbs.on_sub_ready(rs->ud, s->index);
    if (rs->cbs.on_state)
        rs->cbs.on_state(rs->ud, s->index, rbridge_ready(s->b));
}

/* When the key names another position of this very list, the likeliest
 * cause is this list naming one server twice (a Unix socket and a TCP
 * address, two host names): a hint naming that position, else "". */
static void twice_hint(char *out, size_t cap, const struct server *s, const char *got,
                       size_t len)
{
    const struct rset *rs = s->rs;
    out[0] = '\0';
    uint32_t j = 0;
    size_t k = 0;
    while (k < len && k < 9 && got[k] >= '0' && got[k] <= '9') /* no overflow */
        j = j * 10 + (uint32_t)(got[k++] - '0');
    if (k == 0 || j >= rs->n || j == s->index || len - k != strlen(rs->expect) ||
        memcmp(got + k, rs->expect, len - k) != 0)
        return;
    snprintf(out, cap, " If %s (index %u of this list) is the same server, REDIS_ADDR names it "
             "twice: list each server once.", rs->sv[j].addr, j);
}

static void mismatch(struct server *s, const char *got, size_t len)
{
    struct rset *rs = s->rs;
    char what[80], who[400], hint[512];
    shown(what, sizeof what, got, len);
    describe(who, sizeof who, s->addr, s->index, rs->n);
    s->mismatches++;
    if (!s->ever && cf_mono_ms() - rs->born < RSET_FATAL_WINDOW_MS) {
        twice_hint(hint, sizeof hint, s, got, len);
        CF_ERROR("redis", "%s holds %s = \"%s\", but this node expects \"%u%s\": another node "
                 "lists the Redis servers in another order or number. Every node must have the "
                 "same REDIS_ADDR list, in the same order.%s If the list was changed on purpose, "
                 "stop every node, run `redis-cli DEL %s` on each server and start them all with "
                 "the new list (rooms then move between servers: see docs/operations.md). Not "
                 "starting.", who, RSET_RING_KEY, what, s->index, rs->expect, hint, RSET_RING_KEY);
        if (rs->cbs.on_fatal)
            rs->cbs.on_fatal(rs->ud);
        return;
    }
    if (s->verified || s->mismatches % 60 == 1)
        CF_ERROR("redis", "%s now holds %s = \"%s\" instead of \"%u%s\": a node with another "
                 "REDIS_ADDR list uses it. Its rooms are unavailable here until the key is right "
                 "again (checked every %d s).", who, RSET_RING_KEY, what, s->index, rs->expect,
                 RSET_CHECK_EVERY_MS / 1000);
    if (s->verified) {
        s->verified = false;
        if (rs->cbs.on_sub_lost)
            rs->cbs.on_sub_lost(rs->ud, s->index);
        if (rs->cbs.on_state)
            rs->cbs.on_state(rs->ud, s->index, false);
    }
}

static void on_checked(void *ud, const redisReply *r)
{
    struct server *s = ud;
    struct rset *rs = s->rs;
    s->checking = false;
    if (!r)
        return; /* the connection dropped: checked again when it is back */
    if (r->type != REDIS_REPLY_STRING) {
        char who[400];
        describe(who, sizeof who, s->addr, s->index, rs->n);
        CF_ERROR("redis", "cannot check %s on %s: %.*s; the brokers need GET and SET on that "
                 "key (retrying every %d s)", RSET_RING_KEY, who,
                 r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
                 r->type == REDIS_REPLY_ERROR ? r->str : "", RSET_CHECK_EVERY_MS / 1000);
        return;
    }
    char want[40];
    int n = snprintf(want, sizeof want, "%u%s", s->index, rs->expect);
    if ((size_t)r->len == (size_t)n && memcmp(r->str, want, (size_t)n) == 0) {
        if (!s->verified)
            verified(s);
        return;
    }
    mismatch(s, r->str, (size_t)r->len);
}

static void check(struct server *s)
{
    struct rset *rs = s->rs;
    if (s->checking)
        return;
    char want[40];
    int n = snprintf(want, sizeof want, "%u%s", s->index, rs->expect);
    const char *argv[] = {"1", RSET_RING_KEY, want};
    size_t lens[] = {1, strlen(RSET_RING_KEY), (size_t)n};
    if (rbridge_eval(s->b, rs->ring_script, 3, argv, lens, on_checked, s) == 0)
        s->checking = true;
}

static int on_timer(sd_event_source *src, uint64_t usec, void *ud)
{
    (void)usec;
    struct rset *rs = ud;
    for (uint32_t i = 0; i < rs->n; i++) {
        struct rbridge_stats st;
        rbridge_stats(rs->sv[i].b, &st);
        if (st.pub_up)
            check(&rs->sv[i]);
    }
    sd_event_source_set_time_relative(src, (uint64_t)RSET_CHECK_EVERY_MS * 1000);
    sd_event_source_set_enabled(src, SD_EVENT_ON);
    return 0;
}

/* ---- what each rbridge reports ------------------------------------------ */

static void on_message(void *ud, const char *name, size_t len, const char *payload, size_t plen)
{
    struct server *s = ud;
    s->rs->cbs.on_message(s->rs->ud, name, len, payload, plen);
}

static void on_foreign(void *ud, const char *channel, size_t len)
{
    struct server *s = ud;
    if (s->rs->cbs.on_foreign)
        s->rs->cbs.on_foreign(s->rs->ud, channel, len);
}

static void on_confirm(void *ud, const char *name, size_t len)
{
    struct server *s = ud;
    if (s->rs->cbs.on_confirm)
        s->rs->cbs.on_confirm(s->rs->ud, name, len);
}

static void on_sub_lost(void *ud)
{
    struct server *s = ud;
    if (s->rs->cbs.on_sub_lost)
        s->rs->cbs.on_sub_lost(s->rs->ud, s->index);
}

/* Rooms are subscribed only on a checked server: one in another list must
 * not receive this node's subscriptions. */
static void on_sub_ready(void *ud)
{
    struct server *s = ud;
    if (s->verified && s->rs->cbs.on_sub_ready)
        s->rs->cbs.on_sub_ready(s->rs->ud, s->index);
}

/* Passed on by verified(), once the new connection is checked. */
static void on_pub_ready(void *ud)
{
    (void)ud;
}

/* A new connection may lead to another server (a failover, a restart with
 * other data): once a connection drops, nothing is sent or subscribed there
 * until both are up again and the check has passed anew. */
static void on_state(void *ud, bool ready)
{
    struct server *s = ud;
    if (!ready) {
        s->verified = false;
    } else if (!s->verified) {
        check(s);
        return; /* up once checked: verified() tells */
    }
    if (s->rs->cbs.on_state)
        s->rs->cbs.on_state(s->rs->ud, s->index, ready);
}

/* ---- public API ---------------------------------------------------------- */

struct rset *rset_new(sd_event *ev, const struct cf_redis_addr *addrs, uint32_t n,
                      const char *password, size_t max_queue, const char *const *scripts,
                      int nscripts, const struct rset_cbs *cbs, void *ud)
{
    struct rset *rs = calloc(1, sizeof *rs);
    if (!rs || n == 0)
        goto fail;
    rs->ev = ev;
    rs->born = cf_mono_ms();
    rs->cbs = *cbs;
    rs->ud = ud;
    snprintf(rs->expect, sizeof rs->expect, "/%u", n);
    rs->sv = calloc(n, sizeof *rs->sv);
    rs->scripts = calloc((size_t)nscripts + 1, sizeof *rs->scripts);
    if (!rs->sv || !rs->scripts)
        goto fail;
    for (int i = 0; i < nscripts; i++)
        rs->scripts[i] = scripts[i];
    rs->scripts[nscripts] = ring_script;
    rs->ring_script = nscripts;
    static const struct rbridge_cbs rcbs = {on_message,   on_foreign,   on_confirm, on_sub_lost,
                                            on_sub_ready, on_pub_ready, on_state};
    for (uint32_t i = 0; i < n; i++) {
        struct server *s = &rs->sv[i];
        s->rs = rs;
        s->index = i;
        if (addrs[i].is_unix)
            snprintf(s->addr, sizeof s->addr, "unix:%s", addrs[i].host);
        else
            snprintf(s->addr, sizeof s->addr, strchr(addrs[i].host, ':') ? "[%s]:%d" : "%s:%d",
                     addrs[i].host, addrs[i].port);
        rs->n = i + 1; /* so that a failure below frees what was made */
        s->b = rbridge_new(ev, &addrs[i], password, max_queue, rs->scripts, nscripts + 1, &rcbs,
                           s);
        if (!s->b)
            goto fail;
    }
    if (sd_event_add_time_relative(ev, &rs->timer, CLOCK_MONOTONIC,
                                   (uint64_t)RSET_CHECK_EVERY_MS * 1000, 100000, on_timer, rs) < 0)
        goto fail;
    return rs;
fail:
    CF_ERROR("redis", "out of memory while setting up the Redis connections");
    rset_free(rs);
    return NULL;
}

void rset_free(struct rset *rs)
{
    if (!rs)
        return;
    rs->timer = sd_event_source_disable_unref(rs->timer);
    /* Bridges answer their waiters (our checks included) while freed: the
     * servers must still exist then. */
    for (uint32_t i = 0; rs->sv && i < rs->n; i++)
        rbridge_free(rs->sv[i].b);
    free(rs->sv);
    free(rs->scripts);
    free(rs);
}

uint32_t rset_count(const struct rset *rs)
{
    return rs->n;
}

uint32_t rset_server_of(const struct rset *rs, const char *name, size_t len)
{
    return cf_ring_server_of(name, len, rs->n);
}

struct rbridge *rset_for(struct rset *rs, const char *name, size_t len)
{
    struct server *s = &rs->sv[rset_server_of(rs, name, len)];
    return s->verified ? s->b : NULL;
}

int rset_subscribe(struct rset *rs, const char *name, size_t len)
{
    struct server *s = &rs->sv[rset_server_of(rs, name, len)];
    return s->verified ? rbridge_subscribe(s->b, name, len) : -ENOTCONN;
}

int rset_unsubscribe(struct rset *rs, const char *name, size_t len)
{
    /* Not gated on the check: a channel subscribed before a mismatch is
     * better left than kept. */
    struct server *s = &rs->sv[rset_server_of(rs, name, len)];
    return rbridge_unsubscribe(s->b, name, len);
}

uint32_t rset_up(const struct rset *rs)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < rs->n; i++)
        k += rs->sv[i].verified && rbridge_canary_ok(rs->sv[i].b);
    return k;
}

bool rset_ready(const struct rset *rs)
{
    return rset_up(rs) == rs->n;
}

uint32_t rset_inflight(const struct rset *rs)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < rs->n; i++)
        k += rbridge_inflight(rs->sv[i].b);
    return k;
}

void rset_stats(const struct rset *rs, uint32_t server, struct rset_server_stats *out)
{
    const struct server *s = &rs->sv[server];
    rbridge_stats(s->b, &out->redis);
    out->ring_ok = s->verified;
    out->ring_mismatches = s->mismatches;
}
