/* redis_int: what redis.c (connections, replies), redis_canary.c (the
 * delivery canary) and redis_cmd.c (the commands callers queue) share; not
 * for other modules. */
#ifndef BROKER_REDIS_INT_H
#define BROKER_REDIS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "backoff.h"
#include "logcap.h"
#include "redis.h"
#include "resolve.h"
#include "rreply.h"

#define ROOM_PREFIX "room:"
#define ROOM_PREFIX_LEN 5
#define CANARY_RING 4

enum cstate { C_DOWN, C_CONNECTING, C_AUTH, C_SCRIPTS, C_UP };

/* Who waits for a reply on the publisher connection, in command order. */
struct waiter {
    rbridge_reply_fn fn; /* NULL: nobody (PING, PUBLISH, SCRIPT LOAD) */
    void *ud;
    int script; /* SCRIPT LOAD of this script index, or -1 */
};

struct rconn {
    struct rbridge *b;
    const char *role; /* "subscriber" or "publisher" */
    bool is_sub;
    enum cstate st;
    redisContext *c;
    size_t woff;        /* bytes of c->obuf already written (flush_now) */
    struct resolve *rs; /* the host's lookup, while C_CONNECTING without c */
    struct rreply_arena *arena; /* c's replies are built there; never NULL */
    sd_event_source *io, *timer, *flush;
    struct cf_backoff bo;
    uint32_t pending;  /* replies we still expect */
    int64_t last_rx;   /* last reply of any kind */
    int64_t busy_since; /* when pending last rose from 0 */
    int64_t last_tx;   /* last command queued */
    int64_t up_since;  /* when the connection last came up */
    uint32_t failures; /* consecutive failed attempts, to keep retry logs quiet */
    /* publisher only: a ring of waiters, one per command sent (power of 2) */
    struct waiter *w;
    uint32_t w_head, w_count, w_cap;
};

/* Bytes queued on rc and not yet written (rc->c must exist). */
size_t rb__queued(const struct rconn *rc);

struct rbridge {
    sd_event *ev;
    struct cf_redis_addr addr;
    char addr_str[300];
    char last_ip[RESOLVE_IP_MAX]; /* the host's last address looked up */
    char user[256], password[256];
    size_t max_queue;
    struct rbridge_cbs cbs;
    void *ud;
    struct rconn sub, pub;
    bool ready;
    /* delivery canary: a message to ourselves through Redis, so a wedged
     * subscription is noticed even while both connections look healthy */
    char canary[48];
    sd_event_source *canary_timer;
    uint64_t canary_seq, canary_failures;
    int64_t canary_sent[CANARY_RING]; /* send time of round seq, at seq % CANARY_RING */
    uint64_t canary_nonce[CANARY_RING]; /* round seq's random part, likewise */
    int64_t canary_ok_at, canary_rtt_ms, canary_reset_at, ready_since;
    uint32_t canary_resets; /* subscriber resets since the canary last came back */
    bool canary_was_ok;
    const char *const *scripts;
    int nscripts;
    char (*shas)[41];
    int scripts_pending;
    uint64_t reconnects, published, publish_errors, received;
    /* one line a second at most for each kind of failed command: a failed
     * call inside a batch (rbridge_call_log: a damaged room's or another),
     * a failed script reply, a failed PUBLISH or PING */
    struct cf_logcap call_log, script_log, publish_log;
    struct rbridge_hook hook; /* the batcher of consecutive calls (rbatch) */
    bool in_hook, hook_down; /* a DOWN raised while the hook ran */
    bool call_fatal;         /* rbridge_call_failed saw a reconnecting error */
};

/* The publisher's ring of waiters (redis_waiters.c). Push: 0, -ENOMEM, or
 * -ENOBUFS at RBRIDGE_MAX_INFLIGHT when `bounded` (the delivery canary is
 * not: refused, it let a server that delivers be reset). Pop: false when
 * none waits. Shrink: the ring back to twice what waits (64 at least) when
 * a spell of many commands in flight left it over 1024 and four times that
 * or more (it grows by doubling, and kept its largest size for good); on
 * the health tick and when the connection drops. */
int rb__push_waiter(struct rconn *rc, struct waiter w, bool bounded);
bool rb__pop_waiter(struct rconn *rc, struct waiter *out);
void rb__shrink_waiters(struct rconn *rc);

/* An error reply that means the connection must be made again. */
bool rb__fatal_error(const redisReply *r);
/* Queues one command on rc, the waiter's callback to get its reply (the
 * publisher's only). 0, -ENOTCONN, -ENOBUFS, -ENOMEM. */
int rb__queue(struct rconn *rc, int argc, const char **argv, const size_t *lens, struct waiter w);
/* rb__queue without the byte bound, nobody waiting for the reply: for the
 * delivery canary alone (one small PUBLISH per round), which must go out
 * however full the queue is. Refused at the bound, it was never sent while
 * an overloaded Redis kept the queue full, and after its deadline the
 * bridge reset the connections of a server that was delivering. */
int rb__queue_past_bound(struct rconn *rc, int argc, const char **argv, const size_t *lens);
/* Appends one command to c's output as RESP: "*argc", then "$len" and the
 * bytes of each argument, every line ended by CRLF, handed to hiredis whole
 * (redisAppendFormattedCommand). hiredis' own redisAppendCommandArgv frames
 * each argument with sdscatfmt, a printf of its own: ~1 k instructions an
 * argument under callgrind, a quarter of the broker's work per message (an
 * EVALSHA carries 11 arguments a send). 0, -EINVAL, -ENOBUFS, -ENOMEM. */
int rb__append(redisContext *c, int argc, const char **argv, const size_t *lens);
/* Asks for rc's write (and the batcher's RBRIDGE_FLUSH) in this iteration. */
void rb__kick(struct rconn *rc);
/* Drops rc's connection (logged with why), fails what waited on it, and
 * has it retried after its backoff. */
void rb__fail(struct rconn *rc, const char *why);

/* The delivery canary (redis_canary.c): its channel and timer, set up once
 * at creation; a round sent now (when both connections are up); whether a
 * subscriber message's channel is the canary's; a round's payload back. */
void rb__canary_start(struct rbridge *b, sd_event *ev);
void rb__canary_send(struct rbridge *b);
bool rb__is_canary(const struct rbridge *b, const redisReply *channel);
void rb__canary_back(struct rbridge *b, const char *payload, size_t len);

#endif
