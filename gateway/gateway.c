/* gateway: see gateway.h. */
#include "gateway.h"

#include <errno.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "admit.h"
#include "backoff.h"
#include "blinks.h"
#include "clock.h"
#include "files.h"
#include "front.h"
#include "http.h"
#include "listener.h"
#include "log.h"
#include "lowfd.h"
#include "memtrim.h"
#include "lrooms.h"
#include "metrics.h"
#include "notify.h"
#include "qarray.h"
#include "reqs.h"
#include "resync.h"
#include "session.h"
#include "startup.h"
#include "supervisor.h"
#include "tbucket.h"
#include "v1.h"
#include "wire.h"
#include "ws.h"
#include "wsio.h"

static volatile sig_atomic_t g_stop;
static struct lws_context *g_ctx;
/* the numbers under lws' table held while unused (lowfd.h); NULL: none */
static struct lowfd *g_lowfd;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_ctx)
        lws_cancel_service(g_ctx);
}

/* ---- the client-facing protocol ----------------------------------------- */

static int main_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct gw *gw = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return http_callback(gw, wsi, (int)reason, in, len);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_RECEIVE_PONG:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
        return ws_callback(gw, wsi, (int)reason, in, len);
    case LWS_CALLBACK_WSI_DESTROY: {
        /* lws sends this for every wsi to protocols[0], raw descriptors too,
         * whose opaque pointer is not ours to interpret here. */
        const struct lws_protocols *p = lws_get_protocol(wsi);
        if (p && p->callback != main_callback)
            return 0;
        void *o = lws_get_opaque_user_data(wsi);
        struct conn_head *h = conn_head_of(o);
        if (h && h->kind == CONN_SESSION) {
            ws_destroy(gw, (struct session *)h); /* releases the address when due */
            return 0;
        }
        ipl_close(gw->ipl, conn_ip_of(o));
        if (h && h->kind == CONN_HTTP)
            http_req_free(h);
        return 0;
    }
    case LWS_CALLBACK_RAW_ADOPT:
    case LWS_CALLBACK_RAW_RX:
        /* lws turns a CONNECT request into a raw socket with no timeout:
         * there is nothing to tunnel to here */
        return -1;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* Raw-descriptor protocols must never be chosen by a client: their names
 * contain spaces, which no Sec-WebSocket-Protocol token can, and they refuse
 * any WebSocket that reaches them anyway. */
static int link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
        return 1;
    return blinks_callback(wsi, (int)reason, user, in, len);
}

static int listen_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
        return 1;
    return listener_callback(wsi, (int)reason, user, in, len);
}

static int wsio_proto_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                               void *in, size_t len)
{
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
        return 1;
    return wsio_callback(wsi, (int)reason, user, in, len);
}

/* METRICS_PORT: the operations routes only, never a WebSocket. */
static int ops_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct gw *gw = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return http_ops_route(gw, wsi, in ? (const char *)in : "/");
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return 1;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: { /* answered, not dropped */
        char what[16];
        if (!http_upgrade_asked(wsi, what, sizeof what))
            return -1;
        return http_upgrade_refused(wsi, what) < 0 ? -1 : 1;
    }
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* The first entry serves HTTP and clients that ask for no subprotocol. */
static const struct lws_protocols ops_protocols[] = {
    {"confab ops", ops_callback, 0, 0, 0, NULL, 0},
    {LISTENER_PROTOCOL, listen_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* lws gives every WebSocket a receive buffer of rx_buffer_size for its whole
 * life: a small one keeps an idle connection cheap (requests are small; longer
 * ones arrive in pieces that session.c reassembles). tx_packet_size lifts the
 * cap lws would otherwise put on each send (rx_buffer_size), so a session's
 * coalesced frames leave in one send(). */
#define WS_RX_BUFFER 256
#define WS_TX_PACKET 65536
/* A byte of per-session data, unused: lws 4.1 tells a protocol that it
 * closes a WebSocket (WS_SERVER_DROP_PROTOCOL, before it queues its close
 * frame for a frame it refused) only when there is some, and the session
 * must stop writing then (RFC 6455: nothing after a close). Over TLS it is
 * kept for the connection's life; in own mode it goes with lws' wsi. */
#define WS_PSS 1
static const struct lws_protocols protocols[] = {
    {WS_PROTO_LEGACY, main_callback, WS_PSS, WS_RX_BUFFER, 0, NULL, WS_TX_PACKET},
    {WS_PROTO_V1_JSON, main_callback, WS_PSS, WS_RX_BUFFER, 0, NULL, WS_TX_PACKET},
    {WS_PROTO_V1_MSGPACK, main_callback, WS_PSS, WS_RX_BUFFER, 0, NULL, WS_TX_PACKET},
    {BLINKS_PROTOCOL, link_callback, 0, 0, 0, NULL, 0},
    {LISTENER_PROTOCOL, listen_callback, 0, 0, 0, NULL, 0},
    {WSIO_PROTOCOL, wsio_proto_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- broker links <-> local rooms ---------------------------------------- */

static void on_broker_msg(void *ud, const struct cf_wire_msg *m)
{
    struct gw *gw = ud;
    int64_t now = cf_wall_ms();
    if (m->type == CF_WIRE_MSG && m->ts > 0 && m->ts <= now) /* ts comes from outside */
        metrics_observe_delivery(now - m->ts);
    if (m->type == CF_WIRE_MSG || m->type == CF_WIRE_TYPING || m->type == CF_WIRE_PRESENCE)
        gw->stats.messages_out += lrooms_deliver(gw->rooms, m);
    else
        v1_on_reply(gw, m);
}

struct relink {
    struct gw *gw;
    uint32_t shard;
};

static void relink_room(void *ud, const char *name, size_t len)
{
    struct relink *r = ud;
    if (blinks_shard_of(r->gw->links, name, len) == r->shard)
        blinks_join(r->gw->links, name, len);
}

static void report(struct gw *gw);

static void on_broker_up(void *ud, uint32_t shard)
{
    struct gw *gw = ud;
    struct relink r = {gw, shard};
    lrooms_foreach(gw->rooms, relink_room, &r);
    v1_on_link_up(gw, shard, true); /* after the joins: the broker needs them first */
    report(gw);
}

static void on_broker_ready_again(void *ud, uint32_t shard, int server, uint32_t servers)
{
    struct gw *gw = ud;
    if (server < 0) {
        CF_INFO("gateway", "broker %u is ready again: re-syncing its rooms' members", shard);
        v1_on_link_up(gw, shard, false);
        return;
    }
    CF_INFO("gateway",
            "broker %u has Redis server %d of %u back (another is still down): "
            "re-syncing the members of that server's rooms",
            shard, server, servers);
    v1_on_redis_back(gw, shard, (uint32_t)server, servers);
}

/* A worker accepts once it is linked to every broker, so that whoever it
 * takes is served at once: before, a legacy client's first messages were
 * dropped while the links came up (its protocol has no error to say so), and
 * with SO_REUSEPORT a restarted worker gets its share of new connections the
 * moment it listens. Meanwhile they wait in the kernel's queue. Past
 * ACCEPT_HOLD_MS it accepts anyway: with a broker down, logins, files, the
 * other brokers' rooms and v1's errors are still worth serving. */
#define ACCEPT_HOLD_MS 3000

static void start_accepting(struct gw *gw, uint32_t up, uint32_t n)
{
    if (!gw->accept_by || (up < n && cf_mono_ms() < gw->accept_by))
        return;
    gw->accept_by = 0;
    if (up < n)
        CF_WARN("gateway", "accepting connections with only %u of %u brokers linked; the "
                "rooms of the missing ones are unavailable until they are up (check that "
                "they run)", up, n);
    if (listener_accept(gw->listener) < 0) {
        gw->accept_failed = true; /* logged; a worker that cannot accept serves nobody */
        g_stop = 1;
        return;
    }
    /* READY=1 once it serves, linked to every broker or not: systemd would
     * kill a worker that serves past TimeoutStartSec without it, and its
     * clients with it, at every start while a broker is down */
    if (!gw->ready_sent) {
        gw->ready_sent = true;
        if (up == n) {
            cf_notify_ready("serving; linked to every broker");
            CF_INFO("gateway", "ready: linked to all %u brokers", n);
        } else {
            cf_notify_ready("serving, degraded: not linked to every broker");
        }
    }
}

static void report(struct gw *gw)
{
    uint32_t up = blinks_up(gw->links), n = blinks_count(gw->links);
    start_accepting(gw, up, n);
    cf_notify_status("%zu connections, %zu rooms, %u of %u brokers linked%s", gw->nsessions,
                     lrooms_count(gw->rooms), up, n, gw->draining ? ", draining" : "");
}

static void on_broker_down(void *ud, uint32_t shard)
{
    struct gw *gw = ud;
    v1_on_link_down(gw, shard);
    report(gw);
}

/* Ten times a second, from the loop: a tenth of the keep-alive walk (ws.h
 * says why it is sliced); once a second: request deadlines, the broker links'
 * deadlines and pings, service status; and the systemd watchdog (a loop that
 * stops turning stops feeding it). */
#define TICKS_PER_SEC 10

static void tick(struct gw *gw)
{
    gw->stats.ticks++;
    ws_keepalive(gw, TICKS_PER_SEC);
    v1_tick_fast(gw);
    int64_t now = cf_mono_ms();
    if (gw->accept_by && now >= gw->accept_by)
        start_accepting(gw, blinks_up(gw->links), blinks_count(gw->links));
    if (gw->watchdog_ms && now - gw->last_watchdog >= gw->watchdog_ms) {
        cf_notify_watchdog();
        gw->last_watchdog = now;
    }
    if (now - gw->last_second < 1000 - 500 / TICKS_PER_SEC) /* timer jitter */
        return;
    gw->last_second = now;
    v1_tick(gw);
    admit_tick(gw);
    http_tick(gw, now);
    blinks_tick(gw->links);
    lowfd_refill(g_lowfd, now);
    gw->qarrays_trimmed += qarray_trim();
    /* opened + closed: a storm's handshake buffers leave holes (memtrim.h);
     * the queue arrays of a burst of messages, once given back, too */
    cf_memtrim_tick(&gw->trim,
                    2 * gw->stats.connections_total - gw->nsessions + gw->qarrays_trimmed, now);
    if (now - gw->last_status >= 5000) {
        report(gw);
        gw->last_status = now;
    }
}

static int64_t tick_period_us(const struct gw *gw)
{
    int64_t p = LWS_US_PER_SEC / TICKS_PER_SEC;
    return gw->watchdog_ms && gw->watchdog_ms * 1000 < p ? gw->watchdog_ms * 1000 : p;
}

/* The tick comes from a timer in the gateway's epoll set (wsio_tick_every),
 * not from an lws timer: lws 4.1 turns the time to its next timer into
 * poll()'s whole milliseconds by truncating, so each lws timer made the loop
 * spin poll(0) through the last millisecond before it, and the messages of
 * that millisecond waited behind the spin (docs/steady.md). The lws timer
 * stays as the fallback when the set has no timer. */
static void tick_sul(lws_sorted_usec_list_t *sul)
{
    struct gw *gw = lws_container_of(sul, struct gw, sul_tick);
    tick(gw);
    lws_sul_schedule(gw->ctx, 0, &gw->sul_tick, tick_sul, tick_period_us(gw));
}

static void start_tick(struct gw *gw)
{
    struct wsio *io = gw->io ? gw->io : gw->wake;
    int rc = io ? wsio_tick_every(io, tick_period_us(gw)) : -ENOTCONN;
    if (rc == 0) {
        gw->tick_io = io;
        return;
    }
    CF_WARN("gateway",
            "cannot arm the tick's timer (%s); using an lws timer, which costs a "
            "millisecond of busy polling each time",
            strerror(-rc));
    lws_sul_schedule(gw->ctx, 0, &gw->sul_tick, tick_sul, tick_period_us(gw));
}

/* lws sizes its descriptor table by the soft RLIMIT_NOFILE, and Debian's
 * build of it (with _DEBUG) scans the whole table each time it closes a
 * connection: at 20000 that was ~10 % of a gateway's CPU in a connect storm.
 * Over plain TCP a WebSocket never enters lws (front.h) or leaves it once
 * established (ws.c take_over), and lives at or above the table's end (the
 * numbers under it are held by fillers while unused, lowfd.h), so lws holds
 * only connections being set up and HTTP requests, and its table can be
 * small. With TLS every connection stays in lws, so the table bounds the
 * process' connections: its soft limit is lowered to TLS_MAX_CONNS for good
 * (~240 us a close at the units' 262144 against ~20 at 20000, a scan in a
 * loop here). */
#define LWS_FD_TABLE 4096

static void cap_tls_files(int tls_max)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
        (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= (rlim_t)tls_max))
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = (rlim_t)tls_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        CF_WARN("gateway", "cannot lower the open files limit to TLS_MAX_CONNS=%d: %s; "
                "libwebsockets' table, scanned at every close, stays as long as the limit",
                tls_max, strerror(errno));
        return;
    }
    CF_INFO("gateway", "TLS: open files limited to %d (TLS_MAX_CONNS; it was %llu): this "
            "process holds that many connections, less the few files it uses itself; run more "
            "GATEWAY_WORKERS for more",
            tls_max, (unsigned long long)was);
}

static struct lws_context *create_context(const struct lws_context_creation_info *info,
                                          int tls_max, int *cap)
{
    struct rlimit rl;
    bool lowered = false;
    *cap = 0;
    if (tls_max)
        cap_tls_files(tls_max);
    if (!tls_max && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur > LWS_FD_TABLE) {
        struct rlimit low = {LWS_FD_TABLE, rl.rlim_max};
        lowered = setrlimit(RLIMIT_NOFILE, &low) == 0;
    }
    struct lws_context *ctx = lws_create_context(info);
    if (lowered) {
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            *cap = LWS_FD_TABLE;
        else
            CF_ERROR("gateway",
                     "cannot restore the open files limit to %llu after creating "
                     "the libwebsockets context: %s; this process serves at most %d connections",
                     (unsigned long long)rl.rlim_cur, strerror(errno), LWS_FD_TABLE);
    }
    return ctx;
}

/* A listening socket from systemd socket activation, or -1 to bind PORT. */
static int activated_socket(void)
{
    int n = sd_listen_fds(1);
    if (n <= 0)
        return -1;
    if (n > 1)
        CF_WARN("gateway", "systemd passed %d sockets; using the first", n);
    int fd = SD_LISTEN_FDS_START;
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
        CF_ERROR("gateway", "the socket systemd passed is not a listening stream socket; "
                            "check ListenStream= in the .socket unit");
        return -2;
    }
    return fd;
}

/* gw->links is NULL while the process shuts down: sessions closed by
 * lws_context_destroy still leave their rooms, but nobody is told. */
static void on_room_first(void *ud, const char *name, size_t len)
{
    struct gw *gw = ud;
    if (gw->links)
        blinks_join(gw->links, name, len); /* a link that is down replays it when back */
}

static void on_room_last(void *ud, const char *name, size_t len)
{
    struct gw *gw = ud;
    if (gw->links)
        blinks_leave(gw->links, name, len);
}

static void on_resync(void *ud, struct cf_str room, struct lmember *m, bool since, bool later)
{
    v1_resync(ud, room, m, since, later);
}

static const struct lrooms_ops room_ops = {on_room_first, on_room_last, on_resync};

/* ---- life cycle ---------------------------------------------------------- */

struct lws *gw_adopt_raw(struct lws_vhost *vh, int *fd, const char *protocol, void *opaque)
{
    int low = lowfd_lower(g_lowfd, *fd);
    if (low >= 0)
        *fd = low;
    lws_adopt_desc_t info;
    memset(&info, 0, sizeof info);
    info.vh = vh;
    info.type = LWS_ADOPT_RAW_FILE_DESC;
    info.fd.filefd = *fd;
    info.vh_prot_name = protocol;
    info.opaque = opaque;
    return lws_adopt_descriptor_vhost_via_info(&info);
}

/* Clients can make lws complain (headers over its space, say): bounded to
 * 10 lines a second so that nobody can flood the log through it. */
static void lws_log_emit(int level, const char *line)
{
    static struct cf_tbucket budget;
    static unsigned long suppressed;
    if (!cf_tb_take(&budget, 10, 50, cf_mono_ms())) {
        suppressed++;
        return;
    }
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    cf_log(level == LLL_ERR ? CF_LOG_ERROR : CF_LOG_WARN, "lws", "%.*s%s", (int)n, line,
           suppressed ? " (and earlier lines suppressed: over 10 a second)" : "");
    suppressed = 0;
}

/* One pass of the loop: waits for something to do and does it, then writes
 * what the pass queued for the brokers (blinks_flush) and for clients
 * (sess_flush, see session.h). lws 4.1's
 * loop calls poll() over every socket; its libev plugin (epoll) measured
 * better at thousands of connections but delays lws' timers by up to a
 * second in 4.1.6 (docs/benchmarks.md), so it is not used. */
static int service(struct gw *gw)
{
    int rc = lws_service(gw->ctx, 0);
    gw->stats.loop_passes++;
    if (wsio_tick_take(gw->tick_io))
        tick(gw);
    blinks_flush(gw->links); /* first: those messages have further to go */
    sess_flush();
    sess_reap(); /* connections that ended in this pass */
    return rc;
}

static void drain(struct gw *gw)
{
    gw->draining = true;
    /* the drain, and a few seconds to stop the workers after it */
    cf_notify_stopping("draining: closing connections with 1001",
                       ((uint64_t)gw->cfg->drain_timeout_ms + 5000) * 1000);
    gw->accept_by = 0; /* a drain during the hold never starts accepting */
    listener_stop(gw->listener);
    CF_INFO("gateway", "draining: closing %zu connections with 1001 (up to %d ms)", gw->nsessions,
            gw->cfg->drain_timeout_ms);
    ws_drain_all(gw);
    sess_flush_now(); /* the closes go now, not when the pacing allows */
    int64_t deadline = cf_mono_ms() + gw->cfg->drain_timeout_ms;
    while (gw->nsessions > 0 && cf_mono_ms() < deadline)
        if (service(gw) < 0)
            break;
    if (gw->nsessions)
        CF_WARN("gateway", "%zu connections did not close in time; dropping them", gw->nsessions);
}

int gw_run(const struct cf_config *cfg, int worker)
{
    struct gw gw;
    memset(&gw, 0, sizeof gw);
    gw.dead_fd = -1;
    gw.cfg = cfg;
    gw.worker = worker;
    int rc = 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    cf_start_release_signals(); /* one held since start-up stops the loop at once */

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
    gw.auth = auth_from_config(cfg);
    gw.files = files_new(cfg->frontend_dir);
    /* a FRONTEND_DIR that is not a directory is a setting to change: a
     * restart would fail the same way (out of memory is not) */
    bool bad_frontend = !gw.files && errno != ENOMEM;
    gw.rooms = lrooms_new(&room_ops, &gw);
    gw.reqs = reqs_new((uint32_t)cfg->max_pending_requests);
    gw.dec = cf_wire_decoder_new();
    gw.conn_salt = cf_random_u64();
    if (!gw.auth || bad_frontend)
        rc = CF_SUP_EXIT_CONFIG;
    if (!gw.auth || !gw.files || !gw.rooms || !gw.reqs || !gw.dec)
        goto out;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.user = &gw;
    info.max_http_header_data = GW_HTTP_HEADER_DATA;
    /* lws' limit on each wait of a connection: TLS and HTTP handshakes (a
     * request's headers must be complete within it), idle keep-alive */
    info.timeout_secs = (unsigned)cfg->handshake_timeout;
    if (cfg->tls_cert[0])
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.server_string = "confab";
    gw.ctx = g_ctx = create_context(&info, cfg->tls_cert[0] ? cfg->tls_max_conns : 0,
                                    &gw.lws_fd_cap);
    if (!gw.ctx) {
        CF_ERROR("gateway", "cannot create the libwebsockets context");
        goto out;
    }
    sess_direct_writes(gw.ctx);

    /* No hang-up time: lws arms no keep-alive timers (ws_keepalive does
     * the pings, see session.h for why). */
    lws_retry_bo_t retry;
    memset(&retry, 0, sizeof retry);
    struct lws_context_creation_info vinfo;
    memset(&vinfo, 0, sizeof vinfo);
    vinfo.vhost_name = "confab";
    vinfo.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    vinfo.protocols = protocols;
    vinfo.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
                    LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    vinfo.retry_and_idle_policy = &retry;
    /* lws times a connection holding a header table (every connection
     * from its first byte until it is served or upgraded) with this, not
     * timeout_secs: 10 s unless set */
    vinfo.timeout_secs_ah_idle = (unsigned)cfg->handshake_timeout;
    if (cfg->tls_cert[0]) {
        vinfo.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        vinfo.ssl_cert_filepath = cfg->tls_cert;
        vinfo.ssl_private_key_filepath = cfg->tls_key;
        vinfo.alpn = "http/1.1"; /* WebSockets here are HTTP/1.1 upgrades */
    }
    gw.vh = lws_create_vhost(gw.ctx, &vinfo);
    if (!gw.vh) {
        CF_ERROR("gateway", "cannot create the libwebsockets vhost%s",
                 cfg->tls_cert[0] ? " (check that TLS_CERT and TLS_KEY are a matching PEM "
                                    "certificate and key)"
                                  : "");
        if (cfg->tls_cert[0])
            rc = CF_SUP_EXIT_CONFIG; /* another try would fail the same way */
        goto out;
    }

    if (ws_init(&gw) < 0)
        goto out;

    char host[64] = "host", node[CF_WIRE_MAX_NODE + 1];
    gethostname(host, sizeof host - 1);
    snprintf(node, sizeof node, "gw-%.40s-%d", host, (int)getpid());
    const struct blinks_cbs lcbs = {on_broker_msg, on_broker_up, on_broker_down,
                                    on_broker_ready_again};
    gw.links = blinks_new(gw.ctx, gw.vh, cfg, node, &lcbs, &gw);
    if (!gw.links || !(gw.rs = v1_resyncs_new(&gw)))
        goto out;
    if (cfg->metrics_port) {
        /* Its own socket, opened like the main one: lws' own listener would
         * bind IPv6 "::" whatever LISTEN_ADDR says. */
        struct lws_context_creation_info minfo;
        memset(&minfo, 0, sizeof minfo);
        minfo.vhost_name = "confab-ops";
        /* lws re-picks a connection's vhost by Host among vhosts with the
         * same port number: a different "no listen" value keeps them apart. */
        minfo.port = CONTEXT_PORT_NO_LISTEN;
        minfo.protocols = ops_protocols;
        struct lws_vhost *ovh = lws_create_vhost(gw.ctx, &minfo);
        gw.ops_listener =
            ovh ? listener_new(ovh, cf_config_ops_addr(cfg), cfg->metrics_port + worker, -1) : NULL;
        listener_set_fd_cap(gw.ops_listener, gw.lws_fd_cap);
        if (!gw.ops_listener || listener_accept(gw.ops_listener) < 0) {
            CF_ERROR("gateway", "cannot serve METRICS_PORT %d + worker %d; is the port in use?",
                     cfg->metrics_port, worker);
            goto out;
        }
    }
    int afd = activated_socket();
    if (afd == -2)
        goto out;
    gw.listener = listener_new(gw.vh, cfg->listen_addr, cfg->port, afd);
    listener_set_fd_cap(gw.listener, gw.lws_fd_cap);
    /* a client's queue bound covers the kernel's share of it too */
    listener_set_sndbuf(gw.listener, (int)cfg->max_client_queue_bytes);
    if (!gw.listener || admit_init(&gw, gw.listener) < 0)
        goto out;
    if (afd >= 0)
        CF_INFO("gateway", "using the listening socket passed by systemd");
    gw.watchdog_ms = (int64_t)(cf_notify_watchdog_interval_usec() / 1000);
    gw.accept_by = cf_mono_ms() + ACCEPT_HOLD_MS;
    /* last: what was opened before it (the listening sockets, the epoll
     * set, lws' own) keeps the numbers it has */
    gw.lowfd = g_lowfd = lowfd_new(gw.lws_fd_cap);
    if (gw.lws_fd_cap && !g_lowfd)
        CF_WARN("gateway", "out of memory for the descriptors under lws' table: each "
                "WebSocket moves above it instead");
    listener_set_lowfd(gw.listener, g_lowfd);
    listener_set_lowfd(gw.ops_listener, g_lowfd);
    blinks_start(gw.links);
    start_tick(&gw);
    CF_INFO("gateway", "worker %d listening on %s:%d, serving %s, %d brokers in %s", worker,
            afd >= 0              ? "(systemd socket)"
            : cfg->listen_addr[0] ? cfg->listen_addr
                                  : "*",
            cfg->port, files_root(gw.files), cfg->brokers, cfg->run_dir);

    while (!g_stop)
        if (service(&gw) < 0)
            break;
    drain(&gw);
    rc = gw.accept_failed ? 1 : 0;
out:
    ws_shutdown(&gw);
    front_free(gw.front); /* it hands connections to the listener */
    gw.front = NULL;
    listener_free(gw.listener);
    listener_free(gw.ops_listener);
    if (gw.ctx)
        lws_sul_cancel(&gw.sul_tick);
    /* The links go first, while the context that owns their timers exists;
     * what the last sessions queued for the brokers (leaves) is offered to
     * the sockets first. */
    blinks_flush(gw.links);
    blinks_free(gw.links);
    gw.links = NULL;
    sess_direct_writes(NULL);
    if (gw.ctx)
        lws_context_destroy(gw.ctx); /* closes and destroys every lws session */
    g_ctx = NULL;
    lowfd_free(g_lowfd);
    gw.lowfd = g_lowfd = NULL;
    ws_free(&gw);
    rs_free(gw.rs);
    lrooms_free(gw.rooms);
    reqs_free(gw.reqs);
    gw.reqs = NULL;
    cf_wire_decoder_free(gw.dec);
    files_free(gw.files);
    auth_free(gw.auth);
    admit_free(&gw);
    CF_INFO("gateway", "worker %d stopped", worker);
    return rc;
}
