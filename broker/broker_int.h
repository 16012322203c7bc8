/* broker_int: what broker.c (the loop, links, heartbeat, Redis events, life
 * cycle), requests.c (the gateways' room requests and their answers),
 * leaves.c (members' leaves, and the grace of closed gateway links) and
 * bstatus.c (the HTTP port's answers) share; not for other modules. */
#ifndef BROKER_BROKER_INT_H
#define BROKER_BROKER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "bmetrics.h"
#include "config.h"
#include "freelist.h"
#include "links.h"
#include "logcap.h"
#include "memtrim.h"
#include "rooms.h"
#include "rset.h"
#include "store.h"
#include "validate.h"
#include "wire.h"

struct broker {
    const struct cf_config *cfg;
    uint32_t shard, shards;
    sd_event *ev;
    sd_event_source *beat;
    uint32_t beat_slice; /* of the current heartbeat period */
    uint64_t beat_left;  /* rooms this period's round has still to refresh */
    struct gwlinks *links;
    struct rooms *rooms;
    struct rset *redis; /* the Redis servers; a room's own is rb_of(room) */
    struct presence *presence;
    struct store_limits lim;
    struct cf_wire_decoder *dec;
    struct mhttp *metrics;
    sd_event_source *drain; /* set once SIGTERM arrived */
    int64_t drain_deadline;
    bool stopping, ready, ready_sent;
    int64_t retried_at; /* rooms_retry, once a second */
    /* Gives freed heap pages back once a burst is over. Its activity is
     * the links' work plus the pooled blocks trimmed (whose pages are free
     * only from then on). */
    struct cf_memtrim trim;
    uint64_t pool_trimmed;
    struct leaves *leaves; /* leaves.c's: closed links' graces, servers down */
    bool serving; /* some Redis server works (ready: every one does) */
    /* The Redis servers usable now (bit i: server i): one that becomes
     * usable again is told to the gateways (state.back). */
    uint64_t usable_servers;
    /* The Redis servers back (bit i: server i) whose rooms' presence the
     * catch-up walk is putting back (broker.c, on_pub_ready). */
    uint64_t catch_up;
    uint64_t foreign, publish_dropped, misrouted, requests;
    uint64_t failed[BM_FAIL_N]; /* requests answered with an error, by reason */
    /* A line a second at most for each: a Redis outage drops every message,
     * and a misconfigured gateway or a foreign publisher repeats at will. */
    struct cf_logcap drop_log, foreign_log, misrouted_log;
    struct cf_freelist pendings; /* one struct pending per request in flight;
                                  * what a burst left is trimmed each second */
    /* requests in flight, by the Redis server of their room */
    uint32_t awaiting[CF_REDIS_MAX_SERVERS];
};

/* Requests (sends, joins, pages, legacy messages) waiting for one Redis
 * server at most; more for its rooms are refused as by a full queue. The
 * queues' bytes bound only what is not written yet: a Redis, or a proxy,
 * that takes commands and answers late let a record of ~420 bytes per
 * request (its struct pending and the store's box) grow with the traffic
 * for the whole reply timeout (10 s). 131,072 of them are ~53 MiB, and 3 s
 * of the small rooms' top rate. Per server, so that one that stalls takes
 * only its own rooms away, as one that is down does. */
#define BROKER_MAX_AWAITING (1u << 17)

/* What a request needs to answer when Redis replies later. */
struct pending {
    struct broker *b;
    uint64_t link_id, q;
    uint32_t budget;
    uint64_t reg; /* a join that made its presence entry: the entry's
                   * registration (presence_add); 0 when it took one over */
    uint32_t room_len, conn_len;
    uint32_t server; /* of the room (rset_server_of): its count in awaiting */
    char room[CF_ROOM_MAX];
    char conn[CF_WIRE_MAX_TOKEN];
};

static inline struct cf_str pstr(const char *p, uint32_t len)
{
    return (struct cf_str){p, len};
}

/* The bridge of the Redis server that holds `room`; NULL (-ENOTCONN from
 * store_*) while that server is not usable. */
static inline struct rbridge *rb_of(struct broker *b, struct cf_str room)
{
    return rset_for(b->redis, room.p, room.len);
}

/* requests.c: the rooms' operations (rooms_new's), and the gateway links'
 * frame callback (gwlinks_cbs.frame); both take the broker as ud. */
extern const struct rooms_ops requests_room_ops;

void requests_on_frame(void *ud, struct gwlink *l, const struct cf_wire_msg *m,
                       const unsigned char *payload, size_t len);

/* leaves.c: members' leaves, and the grace of closed gateway links. Its
 * state is its own (struct leaves): what the closed links' entries wait for,
 * and when each Redis server went down. */
struct leaves;
/* Every one of nservers Redis servers counts as just down (a server not up
 * yet holds its leaves as one that just went down). NULL: out of memory.
 * The caller frees it with leaves_free, once the links and the Redis
 * servers that call into it are freed. */
struct leaves *leaves_new(uint32_t nservers);
void leaves_free(struct leaves *lv);
/* Redis server `server` went down now: leaves for its rooms wait for it
 * (OWED_HOLD_MS, leaves.c). */
void leaves_server_down(struct broker *b, uint32_t server);
/* presence_add and presence_take_over for open link l, renewing the grace
 * of the closed link an entry is taken from. Only an open link may own
 * entries: a closed one's are dropped at its grace end, and one that owns
 * none when it closes is never looked at again. */
int leaves_presence_add(struct broker *b, struct gwlink *l, struct cf_str room, struct cf_str conn,
                        struct cf_str user, uint64_t *reg);
void leaves_presence_take_over(struct broker *b, struct cf_str room, struct cf_str conn,
                               struct gwlink *l);
/* The owner of the presence entries whose leave found the queue toward
 * their Redis server full: sent a share each heartbeat slice, with the
 * leaves of links whose grace is over (leaves.c). Older than any link, so
 * that the connection's join again takes its entry back. */
#define OWED_LEAVES (GWLINK_ID_FIRST - 1)
_Static_assert(GWLINK_ID_FIRST - 1 > 0, "0 is no owner");
/* Announces the leave of the entry of room and conn, now or, with the queue
 * toward its Redis server full or the server down, at a later slice (the
 * entry kept meanwhile: leaves_owe); the entry goes once it is
 * queued. */
void leaves_announce(struct broker *b, struct cf_str room, struct cf_str conn);
/* The entry's leave is owed: the heartbeat's slices send it. While its
 * server is down they keep trying until OWED_HOLD_MS (a reconnect) after
 * the server went down, then drop it: the entry expires in Redis. The entry goes at once if it
 * cannot be kept (out of memory). */
void leaves_owe(struct broker *b, struct cf_str room, struct cf_str conn);
/* Gateway link link_id closed: its presence entries wait out its grace
 * (LINK_GRACE_MS) for its gateway's re-sync to take them over, in one of
 * GONE_LINKS_MAX slots (leaves.c; two closed links share one when all are
 * taken); while the broker stops, they are dropped (they expire in Redis). */
void leaves_link_closed(struct broker *b, uint64_t link_id);
/* A heartbeat slice (slice_us long): sends its share of the owed leaves and
 * of those of the links whose grace ended by `now`; a link keeps its slot
 * until all of it is out. */
void leaves_expire(struct broker *b, int64_t now, uint64_t slice_us);

/* What of a join snapshot goes out within `budget` bytes (each name and
 * message counted with 8 bytes of framing): the first *nmembers names, at
 * most half the budget (a room of 100 long names would otherwise outgrow a
 * small client queue; the count stays exact), and the newest messages from
 * index *first in what the rest holds, the newest even alone over it. */
void requests_fit_join(const struct cf_str *members, uint32_t nmembers, const struct cf_str *msgs,
                       uint32_t nmsgs, uint32_t budget, uint32_t *nmembers_out, uint32_t *first);

/* The answer of the broker's HTTP port (mhttp.h's handler; ud: the broker):
 * /healthz, /readyz (200 while some Redis server works) and /metrics. */
int broker_serve_http(void *ud, const char *path, struct cf_bytes *o, const char **ctype);

#endif
