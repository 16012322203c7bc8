/* gateway: one gateway process: the lws context with its protocols, and the
 * state its modules share. http.c and ws.c implement the client-facing
 * callbacks; blinks.c and listener.c the raw descriptors. */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "auth.h"
#include "config.h"
#include "logcap.h"
#include "lrooms.h"
#include "memtrim.h"

/* lws' space for one request's headers (max_http_header_data): the URL and
 * every header together. A token in the query or in Authorization must fit
 * in it with the rest. */
#define GW_HTTP_HEADER_DATA 8192

struct lws;
struct http_req;
struct lws_context;
struct lws_vhost;
struct session;
struct reqs;
struct rs;
struct cf_wire_decoder;
struct ipl;
struct wsio;
struct lowfd;

struct gw_stats {
    uint64_t connections_total, messages_in, messages_out, sends_dropped, bad_frames;
    uint64_t slow_consumers, logins, login_errors, api_key_refusals;
    uint64_t auth_failures[AUTH_RESULT_COUNT];
    uint64_t conns_refused;   /* at accept: the address had MAX_CONNS_PER_IP open */
    uint64_t conns_untracked; /* admitted without limits: the address table was full */
    uint64_t rate_refused[2]; /* per address: [IPL_LOGIN], [IPL_UPGRADE] */
    uint64_t requests_limited, rate_closes; /* per connection: RATE_MSGS */
    uint64_t ping_timeouts;                 /* dropped for not answering a ping */
    uint64_t direct_upgrades;               /* answered by front.h, not lws */
    uint64_t loop_passes, ticks;            /* the loop's wake-ups; tick() runs (10 a second) */
};

struct gw {
    const struct cf_config *cfg;
    int worker; /* index among GATEWAY_WORKERS */
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct auth *auth;
    struct files *files;
    struct lrooms *rooms;
    struct blinks *links;
    struct listener *listener;
    struct listener *ops_listener; /* METRICS_PORT + worker, or NULL */
    struct reqs *reqs;             /* requests waiting for a broker's answer */
    struct rs *rs;                 /* the pace of v1 members' re-syncs (resync.h) */
    struct ipl *ipl;               /* per client address limits (admit.h) */
    struct front *front;           /* upgrades answered without lws (front.h); NULL: TLS */
    int64_t last_refused_log, last_untracked_log;
    struct cf_wire_decoder *dec; /* for stored messages in snapshots */
    uint64_t conn_salt;          /* makes connection ids unique across processes */
    struct wsio *io;             /* established WebSockets owned here (ws.h) */
    struct wsio *wake;           /* TLS only: a set for the paced flush's timer alone (ws.c) */
    int dead_fd;                 /* a pipe without writers (ws.c take_over) */
    int lws_fd_cap;              /* lws' descriptor table ends here; 0: none (gateway.c) */
    struct lowfd *lowfd;         /* the numbers under it held while unused; NULL: none */
    struct session *sessions;    /* every established WebSocket */
    struct session *ka_next;     /* where ws_keepalive goes on; NULL: the head */
    size_t nsessions;
    uint64_t next_conn_id;
    bool draining;
    bool ready_sent; /* READY=1 went to systemd */
    int64_t accept_by; /* the main listener accepts by then at the latest; 0: it does */
    bool accept_failed; /* lws refused the listening socket: the worker exits 1 */
    int64_t watchdog_ms, last_watchdog, last_status, last_second;
    struct wsio *tick_io;            /* where the tick's timer is (gateway.c), or NULL: */
    lws_sorted_usec_list_t sul_tick; /* ... the fallback's lws timer */
    struct gw_stats stats;
    /* a line a second at most for what clients or an outage repeat at will */
    struct cf_logcap drop_log, bad_frame_log, api_key_log, token_log, origin_log, stored_log;
    struct http_req *http_reading; /* requests whose body is being read (http.c) */
    struct cf_memtrim trim;
    uint64_t qarrays_trimmed; /* queue arrays given back after a burst */
};

/* Adopts a descriptor (a listening socket, a broker link, the epoll set)
 * into vh's lws loop as a raw descriptor of `protocol`, with `opaque` as its
 * user data; lws then owns and closes it. *fd may change: a descriptor above
 * lws' table moves under it first (lowfd.h). NULL when lws refused it: *fd
 * (the new number) is still the caller's to close. */
struct lws *gw_adopt_raw(struct lws_vhost *vh, int *fd, const char *protocol, void *opaque);

/* Runs one gateway process until SIGTERM/SIGINT; returns the exit code. */
int gw_run(const struct cf_config *cfg, int worker);

#endif
