/* broker: see broker.h. The path of a message through here:
 *   gateway link --send--> rooms_submit (held until the room is subscribed)
 *     --> store_send: one Lua script assigns the id, appends to the history
 *         and PUBLISHes (the sends of one loop pass share one script call,
 *         rbatch.h) --> "sent" back to the gateway
 *   Redis --message--> on_redis_message (validated) --> rooms --> each gateway link
 * Joins (sub) go the same way, so a join's snapshot is taken only once the
 * room's live events are flowing to this broker. */
#include "broker.h"
#include "broker_int.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmetrics.h"
#include "clock.h"
#include "freelist.h"
#include "links.h"
#include "log.h"
#include "map.h"
#include "mhttp.h"
#include "notify.h"
#include "presence.h"
#include "rbatch.h"
#include "rooms.h"
#include "rset.h"
#include "scripts.h"
#include "shard.h"
#include "store.h"
#include "supervisor.h"
#include "validate.h"
#include "wire.h"

/* ---- gateway links, up and down ----------------------------------------- */

_Static_assert(CF_WIRE_MAX_SERVERS == CF_REDIS_MAX_SERVERS, "state.back names any server");

/* To link l, or to every link (NULL); back: the server that became usable
 * again, or -1. */
static void send_state(struct broker *b, struct gwlink *l, int back)
{
    struct cf_wire_msg m = {.type = CF_WIRE_STATE,
                            .ready = b->ready,
                            .serving = b->serving,
                            .has = CF_WIRE_HAS_SERVING};
    if (back >= 0) {
        m.back = (uint32_t)back;
        m.servers = rset_count(b->redis);
        m.has |= CF_WIRE_HAS_BACK | CF_WIRE_HAS_SERVERS;
    }
    if (l)
        gwlink_send(l, &m);
    else
        gwlinks_broadcast(b->links, &m);
}

static void on_link_up(void *ud, struct gwlink *l)
{
    send_state(ud, l, -1);
}

static void on_link_close(void *ud, struct gwlink *l)
{
    struct broker *b = ud;
    rooms_drop_link(b->rooms, gwlink_rooms(l));
    leaves_link_closed(b, gwlink_id(l));
}

/* ---- heartbeat ----------------------------------------------------------- */

static void refresh_room(void *ud, struct cf_str room, const struct cf_str *conns,
                         const struct cf_str *users, uint32_t n)
{
    struct broker *b = ud;
    store_refresh(rb_of(b, room), &b->lim, room, conns, users, n); /* a server down: skipped */
}

/* The rooms of one Redis server (for what happens to that server only). */
struct on_server {
    struct broker *b;
    uint32_t server;
};

static bool room_on_server(void *ud, const char *name, size_t len)
{
    struct on_server *o = ud;
    return rset_server_of(o->b->redis, name, len) == o->server;
}

/* A catch-up walk hashes each room to its server once: presence calls fn
 * for a room right after want took it. */
struct catching {
    struct broker *b;
    uint32_t server; /* of the room want took last */
};

static bool on_server_back(void *ud, struct cf_str room)
{
    struct catching *c = ud;
    c->server = rset_server_of(c->b->redis, room.p, room.len);
    return c->b->catch_up >> c->server & 1;
}

static void catch_up_room(void *ud, struct cf_str room, const struct cf_str *conns,
                          const struct cf_str *users, uint32_t n)
{
    struct catching *c = ud;
    store_refresh(rset_bridge(c->b->redis, c->server), &c->b->lim, room, conns, users, n);
}

/* The heartbeat refreshes every room's presence once per PRESENCE_TTL/3, in
 * slices of ~100 ms: all at once, a broker's refresh scripts (one or more per
 * room) would hold Redis, and every message queued behind them, for as long
 * as they take: tens of microseconds a room, seconds at 100 k rooms. */
#define BEAT_SLICE_MIN_US 100000
#define BEAT_SLICES_MAX 100
/* A slice is also the timer of rooms_retry and of the link grace: with a long
 * PRESENCE_TTL, more slices than BEAT_SLICES_MAX keep each under a second. */
#define BEAT_SLICE_MAX_US 1000000

static uint64_t beat_usec(const struct broker *b)
{
    return (uint64_t)b->lim.presence_ttl_ms * 1000 / 3;
}

static uint32_t beat_slices(const struct broker *b)
{
    uint64_t n = beat_usec(b) / BEAT_SLICE_MIN_US;
    uint64_t at_least = (beat_usec(b) + BEAT_SLICE_MAX_US - 1) / BEAT_SLICE_MAX_US;
    n = n > BEAT_SLICES_MAX ? BEAT_SLICES_MAX : n;
    n = n < at_least ? at_least : n;
    return n < 1 ? 1 : (uint32_t)n;
}

static uint64_t slice_usec(const struct broker *b)
{
    return beat_usec(b) / beat_slices(b);
}

/* A server back may have lost every presence entry (a restart without
 * persistence, a failover to an empty replica): its rooms are refreshed at
 * once rather than when the round reaches them, PRESENCE_TTL/3 at most.
 * All at once, 100 k rooms' refreshes held that server's sends behind them
 * for seconds after each reconnect, and those past its queue's bound were
 * dropped. A walk of CATCH_UP_ROOMS_PER_S rooms a second goes instead (a
 * room's refresh costs Redis ~10-20 us, benchmarks.md), the first slice's
 * share at once. Every broker of every node on that server walks its own
 * rooms at the same time, so a share goes only once the servers back have
 * answered this broker's commands but a few (CATCH_UP_INFLIGHT_MAX, the
 * sends meanwhile): together they go no faster than Redis answers, and a
 * send waits behind at most one share of each broker. The share counts the
 * rooms refreshed, not those of the servers not back, passed over: with k
 * servers, one back got only 1/k of the rate. Passing over a room costs
 * its name's hash; up to CATCH_UP_LOOK_FACTOR times the share are looked
 * at in a slice. */
#define CATCH_UP_ROOMS_PER_S 10000
#define CATCH_UP_INFLIGHT_MAX 16
#define CATCH_UP_LOOK_FACTOR 16

static void catch_up(struct broker *b)
{
    if (!b->catch_up)
        return;
    uint32_t inflight = 0;
    for (uint32_t i = 0; i < rset_count(b->redis); i++)
        if (b->catch_up >> i & 1)
            inflight += rset_inflight_of(b->redis, i);
    uint64_t share = CATCH_UP_ROOMS_PER_S * slice_usec(b) / 1000000;
    share = share ? share : 1;
    if (inflight <= CATCH_UP_INFLIGHT_MAX &&
        presence_catch_up_next(b->presence, (uint32_t)share,
                               (uint32_t)(share * CATCH_UP_LOOK_FACTOR), on_server_back,
                               catch_up_room, &(struct catching){b, 0}))
        b->catch_up = 0;
}

static void report(struct broker *b)
{
    struct rooms_stats rs;
    rooms_stats(b->rooms, &rs);
    cf_notify_status("%s; %llu rooms, %zu gateway links, %llu presence entries",
                     b->ready ? "ready" : "not ready (Redis or delivery canary failing)",
                     (unsigned long long)rs.rooms, b->links ? gwlinks_count(b->links) : 0,
                     (unsigned long long)presence_count(b->presence));
}

static void notify_ready_if_due(struct broker *b);

/* Once a second: the pooled blocks a burst left, unused for a second, go
 * back to malloc, and once the work stops, the free pages to the system
 * (joins and leaves also leave holes among long-lived room members). */
static void trim(struct broker *b, int64_t now)
{
    b->pool_trimmed += cf_fl_trim(&b->pendings) + store_trim() + rbatch_trim();
    if (b->links)
        cf_memtrim_tick(&b->trim, gwlinks_activity(b->links) + b->pool_trimmed, now);
}

static int on_beat(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)usec;
    struct broker *b = ud;
    uint32_t slices = beat_slices(b);
    uint32_t k = b->beat_slice++ % slices;
    if (k == 0)
        report(b);
    /* first: its gate must see what earlier slices left unanswered, not
     * this slice's own leaves and refreshes (a large round's share alone
     * would keep it shut) */
    catch_up(b);
    int64_t now = cf_mono_ms();
    leaves_expire(b, now, slice_usec(b));
    if (now - b->retried_at >= 1000) { /* a walk of every room when it does something */
        b->retried_at = now;
        rooms_retry(b->rooms);
        trim(b, now);
    }
    notify_ready_if_due(b); /* a degraded start, once it has settled */
    /* A round refreshes as many rooms as there were when the period began,
     * spread over the slices left: every room of the ring is refreshed once
     * a period, whatever rooms come and go meanwhile (a new one is put just
     * behind the cursor, and its entries were just written). A share of
     * rooms / slices rounded up refreshed a room in every slice (a lone room
     * 100 times a period at the defaults) while there were fewer rooms than
     * slices. */
    if (k == 0)
        b->beat_left = presence_rooms(b->presence);
    uint64_t share = (b->beat_left + (slices - k) - 1) / (slices - k);
    uint32_t done = presence_refresh_next(b->presence, (uint32_t)share, refresh_room, b);
    b->beat_left -= done < b->beat_left ? done : b->beat_left;
    sd_event_source_set_time_relative(s, slice_usec(b));
    sd_event_source_set_enabled(s, SD_EVENT_ON);
    return 0;
}

/* ---- Redis ------------------------------------------------------------- */

static void count_foreign(struct broker *b, const char *what, const char *chan, size_t len)
{
    b->foreign++;
    CF_LOG_CAPPED(&b->foreign_log, CF_LOG_WARN, "broker",
                  "dropped a message on Redis channel %.*s: %s (%llu dropped so far)",
                  (int)(len > 80 ? 80 : len), chan, what, (unsigned long long)b->foreign);
}

static void on_redis_message(void *ud, const char *name, size_t len, const char *payload,
                             size_t plen)
{
    struct broker *b = ud;
    struct cf_wire_msg m;
    const char *why = cf_wire_room_event(b->dec, payload, plen, name, len, &m);
    if (why) {
        count_foreign(b, why, name, len);
        return;
    }
    rooms_on_message(b->rooms, name, len, payload, plen);
}

static void on_foreign(void *ud, const char *chan, size_t len)
{
    count_foreign(ud, "not a room channel", chan, len);
}

static void on_confirm(void *ud, const char *name, size_t len)
{
    struct broker *b = ud;
    rooms_on_confirm(b->rooms, name, len);
}

static void on_sub_lost(void *ud, uint32_t server, bool kept)
{
    struct on_server o = {ud, server};
    rooms_on_sub_lost_if(o.b->rooms, room_on_server, &o, kept);
}

static void on_sub_ready(void *ud, uint32_t server)
{
    struct on_server o = {ud, server};
    rooms_on_sub_ready_if(o.b->rooms, room_on_server, &o);
}

static void on_pub_ready(void *ud, uint32_t server)
{
    struct broker *b = ud;
    /* A restarted Redis may have lost the presence entries: put them back
     * (catch_up); and the history TTLs: set them again at each room's next
     * touch. A walk under way for another server becomes a whole round
     * again: it covers both servers' rooms. */
    store_forget_touches();
    b->catch_up |= 1ull << server;
    presence_catch_up_start(b->presence);
    catch_up(b);
}

/* A Redis server belongs to another node's list (rset.c logged which and
 * what to do): restarting would only repeat it. */
static void on_fatal(void *ud)
{
    struct broker *b = ud;
    sd_event_exit(b->ev, CF_SUP_EXIT_CONFIG);
}

/* Ready (to the gateways) = every Redis server connected, checked and its
 * canary passing. A server down makes only its rooms unavailable, but it is
 * reported: the gateways re-sync this shard's members when it is back, which
 * recovers what they missed meanwhile.
 * Serving (/readyz, the gateways' /readyz) = at least one server works. With
 * several servers, one down must not take every node out of its load
 * balancer: the other servers' rooms work on every node.
 * READY=1 (systemd's "started") = ready, or serving once the start has
 * settled (rset_settling): a server down must not keep the service from
 * starting (systemd would kill a broker that serves at TimeoutStartSec, and
 * again at every start while that server is down), but one reached in the
 * first 30 s holding another node's list still stops the broker, and that
 * must read as a failed start, not as a crash after one. */
static void notify_ready_if_due(struct broker *b)
{
    if (b->ready_sent || !b->serving || (!b->ready && rset_settling(b->redis)))
        return;
    b->ready_sent = true;
    if (b->ready)
        cf_notify_ready("ready: Redis connected, delivery canary passing");
    else
        cf_notify_ready("serving, degraded: some Redis servers are down or failing their "
                        "delivery canary; their rooms answer unavailable");
}

/* A server that becomes usable again has had its rooms' subscriptions
 * made anew: what was published there meanwhile did not reach this node.
 * The gateways re-sync the shard's members on `ready` turning true, but
 * with another server down `ready` stays false, so each return is told
 * (state.back), and the gateways re-sync the members of that server's rooms:
 * without it, they missed those messages until a later one showed the gap,
 * and in a quiet room never. */
static void on_state(void *ud, uint32_t server, bool ready)
{
    struct broker *b = ud;
    /* rset_new bounds the servers; held() (leaves.c) answers "not held" past it */
    if (server >= CF_REDIS_MAX_SERVERS)
        return;
    uint64_t bit = 1ull << server;
    uint32_t nservers = rset_count(b->redis);
    /* "back" re-syncs that server's rooms while another is down or failing
     * its canary. Otherwise (the only server, or the last one out) "ready"
     * follows once this one's canary is back, and re-syncs the whole shard:
     * a "back" before it made gateways re-sync twice, and log that another
     * server was still down. rset_up counts the servers usable with their
     * canary passing; this one's canary starts over on its return. */
    bool was = (b->usable_servers & bit) != 0,
         back = ready && !was && rset_up(b->redis) + 1 < nservers;
    if (was && !ready)
        leaves_server_down(b, server);
    b->usable_servers = ready ? b->usable_servers | bit : b->usable_servers & ~bit;
    bool now = rset_ready(b->redis), serving = rset_up(b->redis) > 0;
    if (now != b->ready || serving != b->serving || back) {
        b->ready = now;
        b->serving = serving;
        if (b->links)
            send_state(b, NULL, back ? (int)server : -1);
        notify_ready_if_due(b);
        report(b);
    }
    /* Told once a change: rset reports a server's state again when nothing
     * changed for it (a failing canary reports it up, with the broker not
     * ready: `ready` here would have said the opposite of /readyz). */
    if (ready == was)
        return;
    struct rooms_stats rs;
    rooms_stats(b->rooms, &rs);
    char which[48] = "";
    if (nservers > 1)
        snprintf(which, sizeof which, " (server %u of %u)", server, nservers);
    if (ready)
        CF_INFO("broker", "shard %u of %u ready: Redis connected%s, %llu rooms, %zu gateway links",
                b->shard, b->shards, which, (unsigned long long)rs.rooms, gwlinks_count(b->links));
    else
        CF_WARN("broker", "shard %u of %u degraded: Redis%s is not fully connected; its rooms "
                "answer unavailable", b->shard, b->shards, which);
}

/* ---- life cycle -------------------------------------------------------- */

#define DRAIN_MAX_MS 3000
#define DRAIN_TICK_MS 20

/* Draining: exits once Redis has answered every command sent (so each send
 * in flight gets its ack or error), no request is held for a room's pending
 * SUBSCRIBE (a first join of a room: it runs once Redis confirms it), and
 * the answers are written to the gateways; or after DRAIN_MAX_MS. */
static int on_drain_tick(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)usec;
    struct broker *b = ud;
    struct rooms_stats rs;
    rooms_stats(b->rooms, &rs);
    /* Leaves owed for a queue that was full are waited for: the heartbeat
     * sends them (leaves_expire, a slice at most every second) until the loop
     * exits; left behind, their users showed as present until PRESENCE_TTL.
     * (One whose server is down is dropped there: it expires.) */
    uint64_t owed = presence_link_entries(b->presence, OWED_LEAVES);
    bool done = rset_inflight(b->redis) == 0 && rs.held_bytes == 0 && owed == 0 &&
                gwlinks_flushed(b->links);
    if (done || cf_mono_ms() >= b->drain_deadline) {
        if (!done)
            CF_WARN("broker",
                    "drain timed out with %u Redis commands unanswered, %llu bytes "
                    "of requests held for subscriptions and %llu leaves not sent (their users "
                    "show until PRESENCE_TTL); exiting",
                    rset_inflight(b->redis), (unsigned long long)rs.held_bytes,
                    (unsigned long long)owed);
        sd_event_exit(b->ev, 0);
        return 0;
    }
    sd_event_source_set_time_relative(s, DRAIN_TICK_MS * 1000);
    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
    return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
    struct broker *b = ud;
    if (b->drain) {
        /* A Ctrl-C reaches a supervised shard twice: SIGINT from the
         * terminal, then the SIGTERM its master passes on. Only a signal a
         * second or more into the drain means "do not wait". */
        int64_t began = b->drain_deadline - DRAIN_MAX_MS;
        if (cf_mono_ms() - began >= 1000)
            sd_event_exit(sd_event_source_get_event(s), 0);
        return 0;
    }
    CF_INFO("broker",
            "received %s; finishing %u Redis commands in flight and %llu owed leaves (a down "
            "server's are dropped), then exiting",
            strsignal((int)si->ssi_signo), rset_inflight(b->redis),
            (unsigned long long)presence_link_entries(b->presence, OWED_LEAVES));
    cf_notify_stopping("draining", 0);
    gwlinks_stop_accepting(b->links);
    b->drain_deadline = cf_mono_ms() + DRAIN_MAX_MS;
    if (sd_event_add_time_relative(b->ev, &b->drain, CLOCK_MONOTONIC, 0, 1000, on_drain_tick, b) <
        0)
        sd_event_exit(b->ev, 0);
    return 0;
}

/* sd_event_loop, plus the writes each dispatch queued, made right after it.
 * sd-event dispatches one source per iteration, and each iteration begins
 * with an epoll_wait: with the writes in defer sources of their own, a send
 * waited one more iteration before its EVALSHA left for Redis, and a room
 * message one more before it left for the gateways (3.3 epoll_waits a
 * message in the steady benchmark, for ~2 reads). The defer sources stay,
 * for what is asked outside a dispatch. Redis first: those writes have
 * further to go. */
static int run_loop(struct broker *b)
{
    for (;;) {
        int st = sd_event_get_state(b->ev);
        if (st < 0)
            return st;
        if (st == SD_EVENT_FINISHED)
            break;
        int r = sd_event_run(b->ev, UINT64_MAX);
        if (r < 0)
            return r;
        rset_flush(b->redis);
        gwlinks_flush(b->links);
    }
    int code = 0;
    return sd_event_get_exit_code(b->ev, &code) < 0 ? 0 : code;
}

int broker_run(const struct cf_config *cfg, uint32_t shard, uint32_t shards)
{
    struct broker b = {.cfg = cfg, .shard = shard, .shards = shards,
                       .pendings = CF_FREELIST_INIT(sizeof(struct pending), 1024)};
    int rc = 1;
    char path[128];
    static struct cf_redis_addr addrs[CF_REDIS_MAX_SERVERS];
    int naddrs = cf_redis_addrs_parse(cfg->redis_addr, addrs, CF_REDIS_MAX_SERVERS, NULL, 0);
    if (cf_broker_socket_path(cfg, (int)shard, path, sizeof path) < 0 || naddrs < 1)
        return 1; /* validated at config load */

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (sd_event_new(&b.ev) < 0 || sd_event_add_signal(b.ev, NULL, SIGTERM, on_signal, &b) < 0 ||
        sd_event_add_signal(b.ev, NULL, SIGINT, on_signal, &b) < 0) {
        CF_ERROR("broker", "cannot create the event loop");
        goto out;
    }
    b.lim = (struct store_limits){.history_size = (uint32_t)cfg->history_size,
                                  .history_ttl_s = (uint32_t)cfg->history_ttl,
                                  .dedup_window_s = (uint32_t)cfg->dedup_window,
                                  .presence_ttl_ms = (uint32_t)cfg->presence_ttl * 1000};
    b.dec = cf_wire_decoder_new();
    b.rooms = rooms_new(&requests_room_ops, &b, (size_t)cfg->max_link_queue_bytes);
    b.presence = presence_new();
    b.leaves = leaves_new((uint32_t)naddrs);
    if (!b.dec || !b.rooms || !b.presence || !b.leaves ||
        sd_event_add_time_relative(b.ev, &b.beat, CLOCK_MONOTONIC, slice_usec(&b), 10000, on_beat,
                                   &b) < 0) {
        CF_ERROR("broker", "out of memory at start-up");
        goto out;
    }
    const struct rset_cbs rcbs = {.on_message = on_redis_message,
                                  .on_foreign = on_foreign,
                                  .on_confirm = on_confirm,
                                  .on_sub_lost = on_sub_lost,
                                  .on_sub_ready = on_sub_ready,
                                  .on_pub_ready = on_pub_ready,
                                  .on_state = on_state,
                                  .on_fatal = on_fatal};
    const struct rbridge_auth auth = {cfg->redis_username, cfg->redis_password};
    b.redis = rset_new(b.ev, addrs, (uint32_t)naddrs, &auth, (size_t)cfg->max_link_queue_bytes,
                       store_scripts, store_nscripts, &rcbs, &b);
    if (!b.redis)
        goto out;
    const struct gwlinks_cbs lcbs = {requests_on_frame, on_link_up, on_link_close};
    b.links = gwlinks_new(b.ev, path, shard, shards, (size_t)cfg->max_link_queue_bytes, &lcbs, &b);
    if (!b.links)
        goto out;
    if (cfg->broker_metrics_port) {
        b.metrics = mhttp_new(b.ev, cf_config_ops_addr(cfg), cfg->broker_metrics_port + (int)shard,
                              broker_serve_http, &b);
        if (!b.metrics)
            goto out;
    }
    /* sd-event sends WATCHDOG=1 from the loop itself when systemd asks */
    sd_event_set_watchdog(b.ev, 1);
    CF_INFO("broker", "shard %u of %u listening on %s, Redis at %s", shard, shards, path,
            cfg->redis_addr);
    int loop = run_loop(&b); /* CF_SUP_EXIT_CONFIG from on_fatal */
    rc = loop < 0 ? 1 : loop;
out:
    /* Presence entries are left to expire: announcing every leave at a
     * restart would flap every room's member list. */
    b.stopping = true;
    mhttp_free(b.metrics);
    gwlinks_free(b.links); /* drops every membership through on_link_close */
    b.links = NULL;
    rset_free(b.redis); /* answers nobody: stopping */
    cf_fl_drain(&b.pendings);
    rooms_free(b.rooms);
    presence_free(b.presence);
    leaves_free(b.leaves);
    sd_event_source_disable_unref(b.beat);
    sd_event_source_disable_unref(b.drain);
    cf_wire_decoder_free(b.dec);
    sd_event_unref(b.ev);
    return rc;
}
