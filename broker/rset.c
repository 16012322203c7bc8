/* rset: see rset.h. */
#include "rset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "ring.h"

/* One round trip, atomic, so two brokers starting together agree.
 *  1. confab:ring must say ARGV[1] ("<index>/<count>"; set when absent),
 *     else {0, value}.
 *  2. This server's identity: confab:id, set to ARGV[2] when absent (a new or
 *     emptied Redis).
 *  3. confab:ring:ids records which server sits at each place of the list,
 *     as the nodes saw them: "id,id,-,..." ('-': not known yet). ARGV[3] is
 *     the caller's view (its entry at ARGV[5], this server's place, is this
 *     server's id). Unknown places are filled in, and so is this server's
 *     own (it is the authority on itself: its confab:id may have been
 *     evicted, or mangled: it is reset unless 16 hex digits); a place whose
 *     ARGV[4] entry (comma separated, '*': none) is the recorded identity
 *     takes the caller's entry (the caller saw that server lose its data and
 *     come back as another: compare and swap, so a node with another list
 *     cannot overwrite the others' record); any other difference is a
 *     conflict, left as recorded.
 * Returns {1, id} or {2, recorded, id, conflicts ('0'/'1' per place)}. */
static const char ring_script[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then redis.call('SET', KEYS[1], ARGV[1]) v = ARGV[1] end\n"
    "if v ~= ARGV[1] then return {0, v} end\n"
    "local id = redis.call('GET', KEYS[2])\n"
    "if not id or #id ~= 16 or not string.match(id, '^%x+$') then\n"
    "  redis.call('SET', KEYS[2], ARGV[2]) id = ARGV[2]\n"
    "end\n"
    "local mine, old = {}, {}\n"
    "for x in string.gmatch(ARGV[3], '[^,]+') do mine[#mine + 1] = x end\n"
    "for x in string.gmatch(ARGV[4], '[^,]+') do old[#old + 1] = x end\n"
    "local own = tonumber(ARGV[5])\n"
    "mine[own] = id\n"
    "local rec = redis.call('GET', KEYS[3])\n"
    "local st = {}\n"
    "if rec then for x in string.gmatch(rec, '[^,]+') do st[#st + 1] = x end end\n"
    "if #st ~= #mine then st = mine rec = nil end\n"
    "local bad, conflict, changed = {}, false, rec == nil\n"
    "for p = 1, #mine do\n"
    "  bad[p] = '0'\n"
    "  if mine[p] ~= '-' and st[p] ~= mine[p] then\n"
    "    if st[p] == '-' or p == own or (old[p] and old[p] ~= '*' and st[p] == old[p]) then\n"
    "      st[p] = mine[p] changed = true\n"
    "    else bad[p] = '1' conflict = true end\n"
    "  end\n"
    "end\n"
    "local all = table.concat(st, ',')\n"
    "if changed then redis.call('SET', KEYS[3], all) end\n"
    "if conflict then return {2, all, id, table.concat(bad)} end\n"
    "return {1, id}\n";

#define ID_LEN 16 /* hex digits of a server's identity */

struct server {
    struct rset *rs;
    uint32_t index;
    struct rbridge *b;
    char addr[300];
    bool verified; /* the ring check passed on the current publisher connection */
    bool ever;     /* ... at least once since this process started */
    bool checking; /* a check is waiting for its reply */
    bool recheck;  /* ... and another is due once it is answered */
    bool usable;   /* what the callbacks were last told */
    bool disowned; /* the rooms were told its subscriptions are gone while its
                      subscriber connection lives on: reset at once (drop_subs) */
    bool sub_kept; /* not usable, and the rooms were told its subscriber kept its
                      channels (the publisher dropped, not the subscriber) */
    uint64_t mismatches;
    char id[ID_LEN + 1];      /* its confab:id as last read ("" never) */
    char prev_id[ID_LEN + 1]; /* the one before, when this node saw it change */
    bool id_live;             /* read on the current connection */
    uint64_t force;           /* places whose record this server should update */
    uint64_t force_sent;      /* ... those the check in flight carries */
    uint64_t sent_known;      /* places the check in flight gave an identity for */
    uint64_t disputes;        /* servers whose record disagrees on this one's id */
    uint64_t unconfirmed;     /* servers whose record was not read since its
                                 identity was (not usable before) */
    int64_t last_dispute_log;
};

struct rset {
    sd_event *ev;
    struct rset_cbs cbs;
    void *ud;
    uint32_t n;
    struct server *sv;
    const char **scripts; /* the caller's, then ring_script and evict_script */
    int ring_script;      /* its index */
    char expect[24];      /* "<index>/<count>" without the index: "/<count>" */
    sd_event_source *timer;
    sd_event_source *drop; /* defer: drop_subs */
    int64_t born; /* monotonic ms: a mismatch found soon after is fatal */
    bool freeing; /* rset_free: the bridges answer their waiters, nobody listens */
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

/* The server's eviction settings, from INFO (CONFIG is not allowed in
 * scripts, and is often renamed away on managed servers): {policy, maxmemory}. */
static const char evict_script[] =
    "local i = redis.call('INFO', 'memory')\n"
    "return {string.match(i, 'maxmemory_policy:([%w-]+)') or '',\n"
    "  string.match(i, 'maxmemory:(%d+)') or ''}\n";

/* Usable: its ring key checked on this connection, every other server
 * reached since its identity was read has been checked against it, and no
 * server's record disputes which server sits at its place. */
static bool usable(const struct server *s)
{
    return s->verified && !s->disputes && !s->unconfirmed;
}

/* Tells the callbacks when usable() changed. */
static void refresh(struct server *s)
{
    struct rset *rs = s->rs;
    if (rs->freeing)
        return; /* the bridges of servers before s are gone already */
    bool now = usable(s);
    if (now == s->usable)
        return;
    s->usable = now;
    s->sub_kept = false;
    struct rbridge_stats st;
    rbridge_stats(s->b, &st);
    if (now) {
        if (rs->cbs.on_pub_ready)
            rs->cbs.on_pub_ready(rs->ud, s->index);
        if (st.sub_up && rs->cbs.on_sub_ready)
            rs->cbs.on_sub_ready(rs->ud, s->index);
        if (rs->cbs.on_state)
            rs->cbs.on_state(rs->ud, s->index, rbridge_ready(s->b));
    } else {
        if (rbridge_ready(s->b)) {
            /* Both connections up, yet not usable: its check failed or is
             * disputed. The rooms forget their subscriptions here, so the
             * connection must lose them too, or this node would go on
             * hearing another list's traffic. Not from here (this may run
             * inside another server's reply, or in a walk over the
             * servers): drop_subs. When the publisher dropped instead (the
             * bridge is not ready), the subscriber is left alone with its
             * channels (`kept`): a publisher that blinks must not cost the
             * rooms their live messages. */
            s->disowned = true;
            sd_event_source_set_enabled(rs->drop, SD_EVENT_ONESHOT);
        }
        s->sub_kept = st.sub_up && !s->disowned;
        if (rs->cbs.on_sub_lost)
            rs->cbs.on_sub_lost(rs->ud, s->index, s->sub_kept);
        if (rs->cbs.on_state)
            rs->cbs.on_state(rs->ud, s->index, false);
    }
}

static int drop_subs(sd_event_source *src, void *ud)
{
    (void)src;
    struct rset *rs = ud;
    for (uint32_t i = 0; i < rs->n; i++)
        if (rs->sv[i].disowned) {
            rbridge_drop_sub(rs->sv[i].b,
                             "this node no longer uses its server (its ring check "
                             "failed or is disputed: see the error above, or it is not the "
                             "server it was and the other servers' records must confirm it); "
                             "its rooms are unavailable until the check passes");
            rs->sv[i].disowned = false; /* a connection made from now on has no channel */
        }
    return 0;
}

/* s turned out to be another list's server (its check, or another server's
 * record) while not usable already: a subscriber kept through its
 * publisher's drop must lose its channels now, as one of a usable server
 * would (refresh). Its channels stayed, and brought this node another
 * list's traffic for as long as the connection lasted. */
static void disown_kept(struct server *s)
{
    if (!s->sub_kept || s->rs->freeing)
        return;
    s->sub_kept = false;
    s->disowned = true;
    sd_event_source_set_enabled(s->rs->drop, SD_EVENT_ONESHOT);
}

static void on_evict(void *ud, const redisReply *r)
{
    struct server *s = ud;
    if (!r || s->rs->freeing)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        !r->element[0]->len) {
        CF_INFO("redis", "%s: cannot read its maxmemory-policy (%.*s); make sure it is "
                "noeviction (docs/operations.md, Redis)", s->addr,
                r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
                r->type == REDIS_REPLY_ERROR ? r->str : "");
        return;
    }
    const redisReply *policy = r->element[0], *max = r->element[1];
    if ((policy->len == 10 && memcmp(policy->str, "noeviction", 10) == 0) ||
        (max->len == 1 && max->str[0] == '0'))
        return;
    CF_WARN("redis", "%s evicts keys once full (maxmemory %.*s bytes, maxmemory-policy %.*s): "
            "eviction takes de-duplication ids and presence keys one at a time, so resent "
            "messages are stored twice and members who left still show; set maxmemory-policy "
            "noeviction and alert on used memory (docs/operations.md, Redis)", s->addr,
            (int)max->len, max->str, (int)policy->len, policy->str);
}

static void verified(struct server *s)
{
    struct rset *rs = s->rs;
    const char *argv[] = {"0"};
    const size_t lens[] = {1};
    rbridge_eval(s->b, rs->ring_script + 1, 1, argv, lens, on_evict, s); /* a hint: may fail */
    bool first = !s->ever;
    s->verified = s->ever = true;
    if (first || s->mismatches)
        CF_INFO("redis", "%s holds %s = \"%u%s\" as expected", s->addr, RSET_RING_KEY, s->index,
                rs->expect);
    refresh(s);
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

static void drop_votes(struct server *s);

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
                 "stop every node, run `redis-cli DEL %s %s` on each server and start them all "
                 "with the new list (rooms then move between servers: see docs/operations.md). "
                 "Not starting.", who, RSET_RING_KEY, what, s->index, rs->expect, hint,
                 RSET_RING_KEY, RSET_IDS_KEY);
        if (rs->cbs.on_fatal)
            rs->cbs.on_fatal(rs->ud);
        return;
    }
    if (s->verified || s->mismatches % 60 == 1)
        CF_ERROR("redis", "%s now holds %s = \"%s\" instead of \"%u%s\": a node with another "
                 "REDIS_ADDR list uses it. Its rooms are unavailable here until the key is right "
                 "again (checked every %d s).", who, RSET_RING_KEY, what, s->index, rs->expect,
                 RSET_CHECK_EVERY_MS / 1000);
    s->verified = false;
    disown_kept(s);
    drop_votes(s); /* its record is another list's */
    refresh(s);
}

static void check(struct server *s);

static bool pub_up(const struct server *s)
{
    struct rbridge_stats st;
    rbridge_stats(s->b, &st);
    return st.pub_up;
}

/* The other servers whose publisher is up: what this node knows of the list
 * changed, so they are checked again, and their records are read before s is
 * used (s->unconfirmed, cleared one by one as their checks come back). */
static uint64_t reachable_others(const struct server *s)
{
    const struct rset *rs = s->rs;
    uint64_t m = 0;
    for (uint32_t k = 0; k < rs->n; k++)
        if (k != s->index && pub_up(&rs->sv[k]))
            m |= UINT64_C(1) << k;
    return m;
}

/* Checks the servers of mask m now, or once their check in flight is back. */
static void check_set(struct rset *rs, uint64_t m)
{
    for (uint32_t k = 0; k < rs->n; k++) {
        struct server *o = &rs->sv[k];
        if (!(m & (UINT64_C(1) << k)))
            continue;
        if (o->checking)
            o->recheck = true;
        else
            check(o);
    }
}

/* The server's identity as its check read it. One that changed since this
 * node last read it lost its data (or the address now leads elsewhere):
 * the other servers' records are corrected to what this node now sees, if
 * they still name the one it saw before. */
static void learn(struct server *s, const char *id, size_t len)
{
    struct rset *rs = s->rs;
    if (len > ID_LEN)
        len = ID_LEN;
    bool known = s->id[0] != '\0';
    bool same = known && strlen(s->id) == len && memcmp(s->id, id, len) == 0;
    bool was_live = s->id_live;
    s->id_live = true;
    if (same && was_live)
        return;
    uint64_t others = reachable_others(s);
    s->unconfirmed = others;
    if (!same) {
        char now_id[ID_LEN + 1];
        shown(now_id, sizeof now_id, id, len);
        if (known) {
            CF_WARN("redis", "%s (index %u) is not the server it was (confab:id %s, was %s): it "
                    "lost its data or the address now leads to another server%s", s->addr,
                    s->index, now_id, s->id,
                    rs->n > 1 ? "; recording the new one on the other servers" : "");
            memcpy(s->prev_id, s->id, sizeof s->prev_id);
            for (uint32_t k = 0; k < rs->n; k++)
                if (k != s->index)
                    rs->sv[k].force |= UINT64_C(1) << s->index;
        }
        memcpy(s->id, now_id, strlen(now_id) + 1);
    }
    check_set(rs, others);
}

/* What the record on s says about each server (conflicts: '0'/'1' per place,
 * places past len being '0'; NULL for no vote at all), and which identities
 * it was compared with (known: places; ~0 with no vote). Each server's record is one vote,
 * counted until it says otherwise or its connection drops. */
static void votes_from(struct server *s, const char *conflicts, size_t len, uint64_t known,
                       const char *rec, size_t reclen)
{
    struct rset *rs = s->rs;
    uint64_t bit = UINT64_C(1) << s->index;
    for (uint32_t p = 0; p < rs->n; p++) {
        struct server *o = &rs->sv[p];
        if (known & (UINT64_C(1) << p))
            o->unconfirmed &= ~bit;
        bool bad = conflicts && p < len && conflicts[p] == '1';
        bool had = o->disputes & bit;
        if (bad && !had) {
            o->disputes |= bit;
            disown_kept(o);
            o->mismatches++;
            int64_t now = cf_mono_ms();
            if (now - o->last_dispute_log >= 60000) {
                o->last_dispute_log = now;
                char what[200];
                shown(what, sizeof what, rec, reclen);
                CF_ERROR("redis", "%s (index %u) records other servers at the places of this "
                         "node's REDIS_ADDR (\"%s\") than this node reaches: at index %u, %s "
                         "(confab:id %s) is not the server the other nodes list there. Every "
                         "node must list the same servers in the same order; %s's rooms are "
                         "unavailable here until they do (checked every %d s). If a server was "
                         "replaced on purpose, or lost its data while no broker was connected "
                         "to it, run `redis-cli DEL %s` on each server.", s->addr, s->index,
                         what, p, o->addr, o->id, o->addr, RSET_CHECK_EVERY_MS / 1000,
                         RSET_IDS_KEY);
            }
        } else if (!bad && had) {
            o->disputes &= ~bit;
            bool reread = conflicts && (known & (UINT64_C(1) << p));
            if (!o->disputes && reread)
                CF_INFO("redis", "%s (index %u): every server now records it at its place",
                        o->addr, p);
            else if (!o->disputes) /* not read again: the disputing record only stopped counting */
                CF_INFO("redis",
                        "%s (index %u): the record that disputed it no longer counts "
                        "(%s's connection dropped or its check did not read it)",
                        o->addr, p, s->addr);
        }
        refresh(o);
    }
}

/* s's record no longer counts (its connection dropped, its check failed or
 * found another list): nothing it said holds another server back. */
static void drop_votes(struct server *s)
{
    votes_from(s, NULL, 0, ~UINT64_C(0), NULL, 0);
}

static void on_checked(void *ud, const redisReply *r)
{
    struct server *s = ud;
    struct rset *rs = s->rs;
    s->checking = false;
    if (rs->freeing)
        return;
    if (!r) { /* the connection dropped: checked again when it is back */
        s->recheck = false;
        drop_votes(s);
        return;
    }
    const redisReply *e =
        r->type == REDIS_REPLY_ARRAY && r->elements >= 2 ? r->element[0] : NULL;
    long long kind = e && e->type == REDIS_REPLY_INTEGER ? e->integer : -1;
    bool ok = (kind == 0 && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING) ||
              (kind == 1 && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING) ||
              (kind == 2 && r->elements == 4 && r->element[1]->type == REDIS_REPLY_STRING &&
               r->element[2]->type == REDIS_REPLY_STRING &&
               r->element[3]->type == REDIS_REPLY_STRING);
    if (!ok) {
        char who[400];
        describe(who, sizeof who, s->addr, s->index, rs->n);
        CF_ERROR("redis", "cannot check %s on %s: %.*s; the brokers need GET and SET on the "
                 "keys %s, %s and %s (retrying every %d s)", RSET_RING_KEY, who,
                 r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
                 r->type == REDIS_REPLY_ERROR ? r->str : "", RSET_RING_KEY, RSET_ID_KEY,
                 RSET_IDS_KEY, RSET_CHECK_EVERY_MS / 1000);
        s->recheck = false;
        drop_votes(s);
        return;
    }
    if (kind == 0) {
        s->recheck = false;
        mismatch(s, r->element[1]->str, r->element[1]->len);
        return;
    }
    s->force &= ~s->force_sent; /* imposed where still recorded as before */
    /* learned first: a server is not used before the others' records are read */
    const redisReply *id = r->element[kind == 1 ? 1 : 2];
    learn(s, id->str, id->len);
    if (!s->verified)
        verified(s);
    if (kind == 1) /* the record agrees: a vote that disputes nothing */
        votes_from(s, "", 0, s->sent_known, NULL, 0);
    else
        votes_from(s, r->element[3]->str, r->element[3]->len, s->sent_known, r->element[1]->str,
                   r->element[1]->len);
    if (s->recheck) {
        s->recheck = false;
        check(s);
    }
}

static void check(struct server *s)
{
    struct rset *rs = s->rs;
    if (s->checking)
        return;
    enum { LIST = CF_REDIS_MAX_SERVERS * (ID_LEN + 1) + 1 };
    char want[40], cand[ID_LEN + 1], place[12], view[LIST], old[LIST];
    int n = snprintf(want, sizeof want, "%u%s", s->index, rs->expect);
    snprintf(cand, sizeof cand, "%016llx", (unsigned long long)cf_random_u64());
    int pl = snprintf(place, sizeof place, "%u", s->index + 1);
    size_t vl = 0, ol = 0;
    uint64_t known = 0, forced = 0;
    for (uint32_t j = 0; j < rs->n; j++) {
        const struct server *o = &rs->sv[j];
        uint64_t bit = UINT64_C(1) << j;
        bool live = o->id_live && o->id[0];
        bool force = live && (s->force & bit) && o->prev_id[0];
        known |= live ? bit : 0;
        forced |= force ? bit : 0;
        vl += (size_t)snprintf(view + vl, sizeof view - vl, "%s%s", j ? "," : "",
                               live ? o->id : "-");
        ol += (size_t)snprintf(old + ol, sizeof old - ol, "%s%s", j ? "," : "",
                               force ? o->prev_id : "*");
    }
    const char *argv[] = {"3", RSET_RING_KEY, RSET_ID_KEY, RSET_IDS_KEY, want, cand, view, old,
                          place};
    size_t lens[] = {1, strlen(RSET_RING_KEY), strlen(RSET_ID_KEY), strlen(RSET_IDS_KEY),
                     (size_t)n, ID_LEN, vl, ol, (size_t)pl};
    if (rbridge_eval(s->b, rs->ring_script, 9, argv, lens, on_checked, s) == 0) {
        s->checking = true;
        s->sent_known = known;
        s->force_sent = forced;
    }
}

static int on_timer(sd_event_source *src, uint64_t usec, void *ud)
{
    (void)usec;
    struct rset *rs = ud;
    for (uint32_t i = 0; i < rs->n; i++)
        if (pub_up(&rs->sv[i]))
            check(&rs->sv[i]);
    sd_event_source_set_time_relative(src, (uint64_t)RSET_CHECK_EVERY_MS * 1000);
    sd_event_source_set_enabled(src, SD_EVENT_ON);
    return 0;
}

/* ---- what each rbridge reports ------------------------------------------ */

/* What a disowned subscriber still brings (before drop_subs ends it)
 * belongs to no room here. */
static void on_message(void *ud, const char *name, size_t len, const char *payload, size_t plen)
{
    struct server *s = ud;
    if (!s->disowned)
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
    if (s->rs->cbs.on_confirm && !s->disowned)
        s->rs->cbs.on_confirm(s->rs->ud, name, len);
}

static void on_sub_lost(void *ud)
{
    struct server *s = ud;
    s->disowned = false; /* gone: the next connection starts with none */
    s->sub_kept = false;
    if (s->rs->cbs.on_sub_lost)
        s->rs->cbs.on_sub_lost(s->rs->ud, s->index, false);
}

/* What a check on s's publisher established no longer holds (a new
 * connection may reach another server): nothing is sent or subscribed there
 * until a check passes again. */
static void unchecked(struct server *s)
{
    s->verified = false;
    s->id_live = false;
    s->unconfirmed = 0;
    drop_votes(s); /* its record no longer counts until it is read again */
}

/* Rooms are subscribed only on a checked server: one in another list must
 * not receive this node's subscriptions. */
static void on_sub_ready(void *ud)
{
    struct server *s = ud;
    if (usable(s) && s->rs->cbs.on_sub_ready)
        s->rs->cbs.on_sub_ready(s->rs->ud, s->index);
}

/* A check that passed on a publisher says nothing about the next one (a
 * restarted or another server), and the server's record counts only while
 * this node is connected to it. A publisher lost while the subscriber is
 * down already gets no on_state(false) (the bridge was not ready), so the
 * loss is handled here: kept, a check passed meanwhile had the
 * subscriber's return use the server unchecked before its new publisher
 * was, and the votes of its old record held other servers back while it
 * was down (one it had not confirmed yet for good, if it never came back). */
static void on_pub_lost(void *ud)
{
    struct server *s = ud;
    unchecked(s);
    refresh(s);
}

/* A new connection may lead to another server (a failover, a restart with
 * other data): once a connection drops, nothing is sent or subscribed there
 * until both are up again and the check has passed anew. */
static void on_state(void *ud, bool ready)
{
    struct server *s = ud;
    struct rset *rs = s->rs;
    if (!ready) {
        unchecked(s);
        s->usable = false;
    } else if (!s->verified) {
        check(s);
        return; /* up once checked: verified() tells */
    }
    if (rs->cbs.on_state)
        rs->cbs.on_state(rs->ud, s->index, ready && usable(s));
}

/* ---- public API ---------------------------------------------------------- */

struct rset *rset_new(sd_event *ev, const struct cf_redis_addr *addrs, uint32_t n,
                      const struct rbridge_auth *auth, size_t max_queue, const char *const *scripts,
                      int nscripts, const struct rset_cbs *cbs, void *ud)
{
    if (n == 0 || n > CF_REDIS_MAX_SERVERS) /* the masks and lists of the check */
        return NULL;
    struct rset *rs = calloc(1, sizeof *rs);
    if (!rs)
        goto fail;
    rs->ev = ev;
    rs->born = cf_mono_ms();
    rs->cbs = *cbs;
    rs->ud = ud;
    snprintf(rs->expect, sizeof rs->expect, "/%u", n);
    rs->sv = calloc(n, sizeof *rs->sv);
    rs->scripts = calloc((size_t)nscripts + 2, sizeof *rs->scripts);
    if (!rs->sv || !rs->scripts)
        goto fail;
    for (int i = 0; i < nscripts; i++)
        rs->scripts[i] = scripts[i];
    rs->scripts[nscripts] = ring_script;
    rs->scripts[nscripts + 1] = evict_script;
    rs->ring_script = nscripts;
    static const struct rbridge_cbs rcbs = {.on_message = on_message,
                                            .on_foreign = on_foreign,
                                            .on_confirm = on_confirm,
                                            .on_sub_lost = on_sub_lost,
                                            .on_sub_ready = on_sub_ready,
                                            .on_pub_lost = on_pub_lost,
                                            .on_state = on_state};
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
        s->b = rbridge_new(ev, &addrs[i], auth, max_queue, rs->scripts, nscripts + 2, &rcbs, s);
        if (!s->b)
            goto fail;
    }
    int rc = sd_event_add_time_relative(ev, &rs->timer, CLOCK_MONOTONIC,
                                        (uint64_t)RSET_CHECK_EVERY_MS * 1000, 100000, on_timer, rs);
    if (rc >= 0)
        rc = sd_event_add_defer(ev, &rs->drop, drop_subs, rs);
    if (rc >= 0)
        rc = sd_event_source_set_enabled(rs->drop, SD_EVENT_OFF);
    if (rc < 0)
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
    rs->drop = sd_event_source_disable_unref(rs->drop);
    /* Bridges answer their waiters (our checks included) while freed: the
     * servers must still exist then, and a check answered then must change
     * nothing: it would look at the bridges freed before its own and tell
     * the broker, which is tearing down too, of state changes (a refused
     * broker was once seen dying of a signal instead of exiting with 2). */
    rs->freeing = true;
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
    return rset_bridge(rs, rset_server_of(rs, name, len));
}

struct rbridge *rset_bridge(struct rset *rs, uint32_t server)
{
    if (server >= rs->n)
        return NULL;
    struct server *s = &rs->sv[server];
    return usable(s) ? s->b : NULL;
}

int rset_subscribe(struct rset *rs, const char *name, size_t len)
{
    struct server *s = &rs->sv[rset_server_of(rs, name, len)];
    return usable(s) ? rbridge_subscribe(s->b, name, len) : -ENOTCONN;
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
        k += usable(&rs->sv[i]) && rbridge_canary_ok(rs->sv[i].b);
    return k;
}

bool rset_settling(const struct rset *rs)
{
    return cf_mono_ms() - rs->born < RSET_FATAL_WINDOW_MS;
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

uint32_t rset_inflight_of(const struct rset *rs, uint32_t server)
{
    return server < rs->n ? rbridge_inflight(rs->sv[server].b) : 0;
}

void rset_flush(struct rset *rs)
{
    for (uint32_t i = 0; i < rs->n; i++)
        rbridge_flush(rs->sv[i].b);
}

void rset_stats(const struct rset *rs, uint32_t server, struct rset_server_stats *out)
{
    const struct server *s = &rs->sv[server];
    rbridge_stats(s->b, &out->redis);
    out->ring_ok = usable(s);
    out->ring_mismatches = s->mismatches;
}
