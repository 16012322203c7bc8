/* redis: the broker's bridge to Redis Pub/Sub, on the broker's sd-event loop.
 *
 * Two connections, as Redis requires: a subscriber (SUBSCRIBE/UNSUBSCRIBE,
 * receives messages) and a publisher (PUBLISH). Each uses a non-blocking
 * hiredis context driven by this loop; commands are pipelined and flushed once
 * per loop iteration. Every connection attempt has a timeout, every dropped
 * connection is retried with jittered exponential backoff, and a connection
 * whose replies stop coming (a wedged link, a failover) is detected by PINGs
 * and reset. After the subscriber reconnects the owner is told to resubscribe.
 * A delivery canary checks end to end that what is published comes back.
 *
 * hiredis' async API is not used: in 0.14 its per-channel callback table
 * loses the callback when a channel is unsubscribed and resubscribed before the
 * first reply arrives, and it allocates a callback per command. Reading
 * replies in order ourselves avoids both. */
#ifndef BROKER_REDIS_H
#define BROKER_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <systemd/sd-event.h>

#include "config.h"

struct rbridge_cbs {
    /* A message on room:<name> (name already stripped of "room:"). */
    void (*on_message)(void *ud, const char *name, size_t len, const char *payload, size_t plen);
    /* A message on a channel that is not a room channel or has a bad name. */
    void (*on_foreign)(void *ud, const char *channel, size_t len);
    /* One SUBSCRIBE or UNSUBSCRIBE of room:<name> was answered. */
    void (*on_confirm)(void *ud, const char *name, size_t len);
    void (*on_sub_lost)(void *ud);
    void (*on_sub_ready)(void *ud);
    /* The publisher connection is up (again) / was lost. A loss is told
     * whatever the subscriber's state, after on_state(false) when both were
     * up: with the subscriber down already, on_state says nothing. */
    void (*on_pub_ready)(void *ud);
    void (*on_pub_lost)(void *ud);
    /* Both connections are up (ready = true) or one is down (false). */
    void (*on_state)(void *ud, bool ready);
};

struct rbridge_stats {
    bool sub_up, pub_up, canary_ok;
    uint64_t reconnects, published, publish_errors, received, canary_failures;
    int64_t canary_rtt_ms;
    /* Reply objects built with malloc() because their connection's reply
     * arena was full (rreply.h): a reply larger than the arena, or replies
     * read while older ones still lived. Both connections, since start. */
    uint64_t reply_fallbacks;
};

struct rbridge;
struct cf_logcap;

/* A command's reply (an error reply included), or NULL when the connection
 * was lost before it came (the command may or may not have run). */
typedef void (*rbridge_reply_fn)(void *ud, const redisReply *r);

/* Who the connections log in as (AUTH): a user of Redis' ACLs, or the
 * default user with only a password. "" or NULL: not at all. */
struct rbridge_auth {
    const char *user, *password;
};

/* Starts connecting at once. `max_queue` bounds the bytes waiting to be sent
 * on each connection (but for the delivery canary's one small PUBLISH a
 * round). `auth` (NULL: no AUTH) is copied. `scripts` (Lua source,
 * kept by the caller) are loaded on every publisher (re)connect, before the
 * publisher counts as up. */
struct rbridge *rbridge_new(sd_event *ev, const struct cf_redis_addr *addr,
                            const struct rbridge_auth *auth, size_t max_queue,
                            const char *const *scripts, int nscripts, const struct rbridge_cbs *cbs,
                            void *ud);
void rbridge_free(struct rbridge *b); /* NULL is a no-op */

/* Commands the publisher connection holds at most, queued or sent and not
 * answered yet; past it, -ENOBUFS as for a full queue (but for the delivery
 * canary's PUBLISH). The queue's bytes (max_queue) bound only what is not
 * written yet: a Redis, or a proxy, that takes commands and answers late
 * let what waits for their replies (24 bytes each here, and the batcher's
 * record of a batch of script calls, ~1 KB: rbatch.c) grow with the traffic
 * for the whole reply timeout (10 s). A batch is two commands
 * (rbridge_publish_first): ~33 MiB at most. The broker bounds its own
 * records of the requests in those calls (BROKER_MAX_AWAITING). */
#define RBRIDGE_MAX_INFLIGHT 65536u

/* Queue commands. 0, -ENOTCONN when that connection is down, -ENOBUFS when
 * its queue is full (or RBRIDGE_MAX_INFLIGHT are waiting for replies). */
int rbridge_subscribe(struct rbridge *b, const char *name, size_t len);
int rbridge_unsubscribe(struct rbridge *b, const char *name, size_t len);
int rbridge_publish(struct rbridge *b, const char *name, size_t len, const void *payload,
                    size_t plen);

/* EVALSHA of script number `script` with argv (numkeys, keys..., args...)
 * on the publisher connection; fn gets the reply (exactly once, unless this
 * returns an error: 0, -ENOTCONN, -ENOBUFS, -ENOMEM, -EINVAL). At most 62
 * arguments. */
int rbridge_eval(struct rbridge *b, int script, int argc, const char **argv, const size_t *lens,
                 rbridge_reply_fn fn, void *ud);
/* The same for a long argument list, without copying it: av and al hold
 * 2 + argc entries, the arguments from index 2 on; the bridge fills the
 * first two. At most RBRIDGE_MAX_ARGS arguments. */
#define RBRIDGE_MAX_ARGS 4096
int rbridge_eval_slots(struct rbridge *b, int script, int argc, const char **av, size_t *al,
                       rbridge_reply_fn fn, void *ud);

/* Queues a PING whose reply is dropped, for the command queued next: Redis
 * (7.0) writes its clients' output in the order they became pending, the
 * newest first, and a script's caller becomes pending only when the script
 * returns, after its PUBLISH made the subscribers pending, so the reply
 * would go out before the message. The PING's reply makes the caller
 * pending first: the message goes out before the reply, so the broker can
 * forward it without waiting for the reply (measured: the broker wakes as
 * often as before; the delivery no longer waits behind the reply).
 * 0, or what rbridge_eval would say; -ENOBUFS also when the PING would
 * leave the queue past its bound, or take the last place among the
 * commands in flight (RBRIDGE_MAX_INFLIGHT), which the command after it,
 * taken while there was room, must still find (that one then goes without
 * it). */
int rbridge_publish_first(struct rbridge *b);

/* For one batcher of calls that are not queued yet (rbatch.h), so that they
 * keep their place among the connection's commands:
 *   RBRIDGE_FLUSH  queue what you hold now (before another command, and
 *                  before the connection's once-per-iteration write);
 *   RBRIDGE_DOWN   the publisher connection is gone: fail what you hold;
 *   RBRIDGE_FREE   the bridge is being freed: fail what you hold, and stop.
 * The hook may call rbridge_eval; it is not called again from inside: a
 * FLUSH asked for meanwhile is moot (the hook is queueing), and a DOWN is
 * delivered once it returns. It must not free the bridge. */
enum rbridge_event { RBRIDGE_FLUSH, RBRIDGE_DOWN, RBRIDGE_FREE };
struct rbridge_hook {
    void (*fn)(void *ud, enum rbridge_event ev);
    void *ud;
};
void rbridge_set_hook(struct rbridge *b, struct rbridge_hook hook);
struct rbridge_hook rbridge_hook(const struct rbridge *b);
/* 0 when a command could be queued on the publisher now, else why not
 * (-ENOTCONN, -ENOBUFS), as rbridge_eval would say. */
int rbridge_room(const struct rbridge *b);
/* Ends the subscriber connection (its channels go with it; on_sub_lost is
 * called) and reconnects it with backoff; `why` is logged. A no-op when it
 * is not up. */
void rbridge_drop_sub(struct rbridge *b, const char *why);
/* Asks for the hook's RBRIDGE_FLUSH in this loop iteration. */
void rbridge_kick(struct rbridge *b);
/* Writes now what this iteration asked to write (the hook's RBRIDGE_FLUSH
 * first), instead of in an iteration of its own: the loop calls it after each
 * dispatch (see broker.c, run_loop). */
void rbridge_flush(struct rbridge *b);
/* "host:port" or "unix:path", for logs. */
const char *rbridge_name(const struct rbridge *b);
/* A failed call that came inside a batch's reply (the bridge sees the
 * error replies that are the whole reply itself): counted for the metrics,
 * and an error that means the connection must be made again (READONLY after
 * a failover, NOSCRIPT, ...) has the publisher reconnect once the reply's
 * callback returns, as when it is the whole reply. */
void rbridge_call_failed(struct rbridge *b, const redisReply *e);

/* Whether the error reply r carries the error code `code` ("READONLY",
 * "OOM", ...): at its start, as Redis 7 writes it, or after what comes
 * before it elsewhere (Redis 5 and 6 report a check made inside a script as
 * "@user_script: 152: -READONLY You can't ...", and a batch's later calls
 * carry an earlier one's error after a prefix of ours). The code must stand
 * alone: after the start, a space, ':' or '-', and before a space or the
 * end. */
bool rbridge_error_is(const redisReply *r, const char *code);
/* The cap on the lines about failed calls inside a batch's reply on this
 * server (CF_LOG_CAPPED): an out-of-memory Redis or a damaged room fails
 * every send, so these lines would come at the clients' rate. The bridge
 * caps its own lines (a whole reply failed, a PUBLISH failed) likewise, each
 * kind apart. Owned by the bridge. */
struct cf_logcap *rbridge_call_log(struct rbridge *b);

bool rbridge_ready(const struct rbridge *b);
/* Commands on the publisher still waiting for their reply (0 when down). */
uint32_t rbridge_inflight(const struct rbridge *b);
/* Both connections are up and the delivery canary (a message this broker
 * publishes to its own channel every 5 s) came back within the last 15 s.
 * on_state is also called when this changes. */
bool rbridge_canary_ok(const struct rbridge *b);
void rbridge_stats(const struct rbridge *b, struct rbridge_stats *out);

#endif
