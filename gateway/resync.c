/* resync: see resync.h. */
#include "resync.h"

#include <errno.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "session.h"

struct rs_shard {
    uint32_t inflight;     /* re-syncs sent and not ended */
    uint32_t window;       /* ... at most */
    int64_t later_at;      /* the later list goes behind the ready one then; 0: none due */
    int64_t soon_at;       /* the soon list goes behind the ready one then; 0: none due */
    int64_t paused_until;  /* the link's queue was full: nothing sent before then */
    bool refusal_told;     /* a refusal was logged at INFO this round */
    bool full_told;        /* a full link was logged, since the shard's last retry or drain */
};

struct rs {
    struct lrooms *rooms;
    const struct rs_ops *ops;
    void *ud;
    uint32_t nshards;
    int64_t gap_log_at;  /* a gap was last logged at INFO then */
    size_t gap_unlogged; /* ... and so many since, at DEBUG */
    struct rs_shard sh[];
};

/* Four waiting lists a shard (lrooms_wait). */
enum { LISTS = 4 };

static uint32_t ready_list(uint32_t shard)
{
    return LISTS * shard;
}

static uint32_t later_list(uint32_t shard)
{
    return LISTS * shard + 1;
}

static uint32_t presence_list(uint32_t shard)
{
    return LISTS * shard + 2;
}

static uint32_t soon_list(uint32_t shard)
{
    return LISTS * shard + 3;
}

uint32_t rs_window(uint64_t link_queue, uint64_t answer_max)
{
    uint64_t w = link_queue / 2 / (answer_max ? answer_max : 1);
    return w < 1 ? 1 : w > RS_WINDOW ? RS_WINDOW : (uint32_t)w;
}

struct rs *rs_new(struct lrooms *rooms, uint32_t shards, uint32_t window, const struct rs_ops *ops,
                  void *ud)
{
    if (shards == 0)
        return NULL;
    struct rs *r = calloc(1, sizeof *r + (size_t)shards * sizeof r->sh[0]);
    if (!r)
        return NULL;
    r->rooms = rooms;
    r->ops = ops;
    r->ud = ud;
    r->nshards = shards;
    for (uint32_t i = 0; i < shards; i++)
        rs_set_window(r, i, window);
    return r;
}

void rs_set_window(struct rs *r, uint32_t shard, uint32_t window)
{
    if (shard < r->nshards)
        r->sh[shard].window = window < 1 ? 1 : window > RS_WINDOW ? RS_WINDOW : window;
}

void rs_free(struct rs *r)
{
    free(r);
}

static uint32_t shard_of(const struct rs *r, const struct lmember *m)
{
    /* the modulo only guards the table: shard_of answers below nshards */
    return r->ops->shard_of(r->ud, lrooms_member_room(m)) % r->nshards;
}

/* m, pending with no request, into one of its shard's lists. It holds no
 * messages with ids: the snapshot its re-sync brings has them (kept, they
 * were given out after that snapshot even when Redis had lost them
 * meanwhile, lrooms_forget_held_messages). */
static void wait_in(struct rs *r, struct lmember *m, uint32_t list, bool front)
{
    m->pending = true;
    m->q = 0;
    lrooms_forget_held_messages(m);
    if ((front ? lrooms_wait_front(r->rooms, m, list) : lrooms_wait(r->rooms, m, list)) < 0)
        sess_close(m->s, 1012, "could not re-sync (out of memory)");
}

static void due_within(struct rs_shard *h, int64_t at)
{
    if (!h->later_at || h->later_at > at)
        h->later_at = at;
}

/* The link's queue is full: nothing more goes to the shard for RS_SOON_MS
 * (rs_tick pumps it again then). The refused members' retry keeps its own
 * time: a full queue is no news about the broker. */
static void pause_full(struct rs *r, uint32_t shard, struct cf_str room, int64_t now)
{
    struct rs_shard *h = &r->sh[shard];
    h->paused_until = now + RS_SOON_MS;
    if (!h->full_told) {
        h->full_told = true;
        CF_WARN("v1", "room %.*s: re-sync requests or presence registrations do not fit the "
                "link to broker %u (its queue is full, MAX_LINK_QUEUE_BYTES); the members left "
                "are tried again in %d ms",
                (int)room.len, room.p, shard, RS_SOON_MS);
    }
}

/* Sends m's re-sync. False when nothing more can go to the shard now: the
 * link is down (m then waits for the retry) or its queue is full (m is the
 * first to go when the pause is over). */
static bool send_one(struct rs *r, uint32_t shard, struct lmember *m, bool since)
{
    struct rs_shard *h = &r->sh[shard];
    struct cf_str room = lrooms_member_room(m);
    int rc = r->ops->send(r->ud, room, m, since);
    if (rc == 0) {
        h->inflight++;
        return true;
    }
    if (rc != -ENOBUFS && rc != -ENOTCONN)
        return true; /* its session was closed; the next one may go */
    /* The broker is only busy or away: the member waits (closing them sent
     * a share of the shard's clients back at once). */
    int64_t now = cf_mono_ms();
    if (rc == -ENOTCONN) {
        wait_in(r, m, later_list(shard), false);
        due_within(h, now + RS_RETRY_MS); /* or at the link's return */
        return false;
    }
    wait_in(r, m, ready_list(shard), true);
    pause_full(r, shard, room, now);
    return false;
}

/* Registers m's presence. False when nothing more can go to the shard now:
 * m is then the first of its presence list (a full queue pauses the shard;
 * a link that is down registers them when back). */
static bool present_one(struct rs *r, uint32_t shard, struct lmember *m)
{
    struct cf_str room = lrooms_member_room(m);
    int rc = r->ops->send_presence(r->ud, room, m);
    if (rc != -ENOBUFS && rc != -ENOTCONN)
        return true; /* sent, or its session was closed */
    if (lrooms_wait_front(r->rooms, m, presence_list(shard)) < 0)
        sess_close(m->s, 1012, "could not register presence (out of memory)");
    if (rc == -ENOBUFS)
        pause_full(r, shard, room, cf_mono_ms());
    return false;
}

/* The shard's presence registrations, as many as the link's queue takes.
 * False when it is full or down. */
static bool register_presence(struct rs *r, uint32_t shard)
{
    struct lmember *m;
    while ((m = lrooms_wait_take(r->rooms, presence_list(shard))))
        if (!sess_closing(m->s) && !present_one(r, shard, m))
            return false;
    return true;
}

/* True when the shard is not paused after a full queue (a pause that has
 * ended is forgotten here: its member may have left meanwhile, and nothing
 * else would then end it). */
static bool unpaused(struct rs_shard *h, int64_t now)
{
    if (h->paused_until && now >= h->paused_until)
        h->paused_until = 0;
    return h->paused_until == 0;
}

/* Sends the shard's presence registrations, as many as its link takes,
 * then its ready members' re-syncs, as many as its window has room for. */
static void pump(struct rs *r, uint32_t shard, int64_t now)
{
    struct rs_shard *h = &r->sh[shard];
    bool presence = lrooms_wait_count(r->rooms, presence_list(shard)) > 0;
    if (!unpaused(h, now) ||
        (!presence &&
         (h->inflight >= h->window || lrooms_wait_count(r->rooms, ready_list(shard)) == 0)) ||
        !r->ops->link_up(r->ud, shard))
        return;
    if (presence && !register_presence(r, shard))
        return;
    while (h->inflight < h->window) {
        struct lmember *m = lrooms_wait_take(r->rooms, ready_list(shard));
        if (!m) {
            h->full_told = false; /* all went: the next full queue is news */
            return;
        }
        if (sess_closing(m->s))
            continue; /* it would only join the room for nothing */
        if (!send_one(r, shard, m, true))
            return;
    }
}

/* The count of the gaps logged at DEBUG since the last INFO line, as a line
 * of its own; it counts as that second's line. */
static void log_gaps_unlogged(struct rs *r, int64_t now)
{
    if (!r->gap_unlogged)
        return;
    CF_INFO("v1", "%zu more memberships re-syncing for missed events or a new epoch (at most "
            "one such line a second)",
            r->gap_unlogged);
    r->gap_unlogged = 0;
    r->gap_log_at = now;
}

/* One line a second at INFO: a burst of gaps (a broker's subscription that
 * was down meets the rooms' next messages) has every member of those rooms
 * re-sync at once. */
static void log_gap(struct rs *r, const struct lmember *m, bool since)
{
    struct cf_str room = lrooms_member_room(m);
    const char *why = since ? "events were missed (a gap in message ids or presence versions)"
                            : "a new epoch (its history was lost)";
    int64_t now = cf_mono_ms();
    if (now - r->gap_log_at < 1000 || r->gap_unlogged) {
        r->gap_unlogged++;
        CF_DEBUG("v1", "conn %llu: room %.*s: %s; re-syncing", (unsigned long long)sess_id(m->s),
                 (int)room.len, room.p, why);
        if (now - r->gap_log_at >= 1000) /* a count not yet told: this second's line */
            log_gaps_unlogged(r, now);
        return;
    }
    CF_INFO("v1", "conn %llu: room %.*s: %s; re-syncing", (unsigned long long)sess_id(m->s),
            (int)room.len, room.p, why);
    r->gap_log_at = now;
}

void rs_gap(struct rs *r, struct lmember *m, bool since)
{
    if (sess_closing(m->s))
        return; /* a place held for a client that is gone, and its presence registered anew */
    log_gap(r, m, since);
    uint32_t shard = shard_of(r, m);
    struct rs_shard *h = &r->sh[shard];
    if (lrooms_wait_count(r->rooms, ready_list(shard)) == 0 &&
        lrooms_wait_count(r->rooms, presence_list(shard)) == 0 && h->inflight < h->window &&
        unpaused(h, cf_mono_ms())) {
        lrooms_unwait(r->rooms, m); /* out of any list: this is its turn, and the
                                     * re-sync registers its presence too */
        send_one(r, shard, m, since);
        return;
    }
    wait_in(r, m, ready_list(shard), false); /* behind the window or those already waiting */
    pump(r, shard, cf_mono_ms());            /* a pause may have ended */
}

void rs_wait(struct rs *r, struct lmember *m)
{
    wait_in(r, m, ready_list(shard_of(r, m)), false);
}

void rs_wait_presence(struct rs *r, struct lmember *m)
{
    uint32_t shard = shard_of(r, m);
    if (lrooms_waits(m) && m->wlist != presence_list(shard))
        return; /* waits for a re-sync */
    if (lrooms_wait(r->rooms, m, presence_list(shard)) < 0)
        sess_close(m->s, 1012, "could not register presence (out of memory)");
}

void rs_presence(struct rs *r, struct lmember *m)
{
    uint32_t shard = shard_of(r, m);
    if (lrooms_wait_count(r->rooms, presence_list(shard)) == 0 &&
        unpaused(&r->sh[shard], cf_mono_ms())) {
        present_one(r, shard, m); /* the common case: nothing on the list to walk */
        return;
    }
    rs_wait_presence(r, m); /* behind those waiting, in their order */
    pump(r, shard, cf_mono_ms());
}

void rs_later(struct rs *r, struct lmember *m, int ms)
{
    uint32_t shard = shard_of(r, m);
    wait_in(r, m, later_list(shard), false);
    due_within(&r->sh[shard], cf_mono_ms() + ms);
}

void rs_soon(struct rs *r, struct lmember *m)
{
    uint32_t shard = shard_of(r, m);
    wait_in(r, m, soon_list(shard), false);
    if (!r->sh[shard].soon_at)
        r->sh[shard].soon_at = cf_mono_ms() + RS_SOON_MS;
}

bool rs_first_refusal(struct rs *r, uint32_t shard)
{
    struct rs_shard *h = &r->sh[shard % r->nshards];
    if (h->refusal_told)
        return false;
    h->refusal_told = true;
    return true;
}

void rs_ended(struct rs *r, uint32_t shard)
{
    struct rs_shard *h = &r->sh[shard % r->nshards];
    if (h->inflight > 0)
        h->inflight--;
    else /* no path ends one twice: a bug, which must not wrap the window */
        CF_WARN("v1",
                "broker %u: a re-sync ended that was not in flight (a bug in confab: "
                "please report it); its count stays at 0",
                shard % r->nshards);
}

void rs_pump(struct rs *r, uint32_t shard)
{
    pump(r, shard % r->nshards, cf_mono_ms());
}

/* The later members go behind the ready ones, and a new round of tries
 * begins (its first refusal and full link are logged again). A pause after
 * a full queue stays: the retry is no news about the queue. */
static void retry_now(struct rs *r, uint32_t shard, int64_t now)
{
    struct rs_shard *h = &r->sh[shard];
    size_t refused = lrooms_wait_count(r->rooms, later_list(shard));
    /* the refusal's line names only the first member refused: how many
     * there were is told here, once a round */
    if (refused && h->refusal_told)
        CF_INFO("v1",
                "broker %u: trying again the %zu re-sync%s refused (or dropped with the link) "
                "since the last try",
                shard, refused, refused == 1 ? "" : "s");
    h->later_at = 0;
    h->refusal_told = h->full_told = false;
    if (lrooms_wait_move(r->rooms, later_list(shard), ready_list(shard)) < 0)
        h->later_at = now + RS_SOON_MS; /* out of memory: they stay, for the next tick */
    pump(r, shard, now);
}

void rs_shard_back(struct rs *r, uint32_t shard, bool new_link)
{
    if (new_link) /* its queue starts empty */
        r->sh[shard % r->nshards].paused_until = 0;
    retry_now(r, shard % r->nshards, cf_mono_ms());
}

void rs_server_back(struct rs *r, uint32_t shard)
{
    struct rs_shard *h = &r->sh[shard % r->nshards];
    h->refusal_told = h->full_told = false;
    pump(r, shard % r->nshards, cf_mono_ms());
}

void rs_tick(struct rs *r, int64_t now)
{
    for (uint32_t i = 0; i < r->nshards; i++) {
        struct rs_shard *h = &r->sh[i];
        if (h->soon_at && now >= h->soon_at) {
            h->soon_at = 0;
            if (lrooms_wait_move(r->rooms, soon_list(i), ready_list(i)) < 0)
                h->soon_at = now + RS_SOON_MS; /* out of memory: they stay, for the next tick */
        }
        if (h->later_at && now >= h->later_at)
            retry_now(r, i, now);
        else
            pump(r, i, now); /* a pause that ended, or places freed by expiries */
    }
    if (now - r->gap_log_at >= 1000)
        log_gaps_unlogged(r, now);
}

size_t rs_waiting(const struct rs *r)
{
    size_t n = 0;
    for (uint32_t i = 0; i < LISTS * r->nshards; i++)
        n += lrooms_wait_count(r->rooms, i);
    return n;
}

size_t rs_in_flight(const struct rs *r)
{
    size_t n = 0;
    for (uint32_t i = 0; i < r->nshards; i++)
        n += r->sh[i].inflight;
    return n;
}
