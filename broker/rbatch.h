/* rbatch: consecutive calls of one script on one Redis bridge, run as one
 * EVALSHA.
 *
 * Every EVALSHA costs Redis one command's parsing, the script lookup, the
 * KEYS and ARGV tables and a reply before the script does any work. Under
 * load the broker asks for many sends per loop pass, so they are held and
 * queued as one call at the end of the pass: no send waits longer than it
 * did, and a send alone is a batch of one. At 40 k sends/s in small rooms
 * ~46 shared a call and Redis used 13 % less CPU (docs/benchmarks.md).
 * Calls are merged only while nothing else is queued on the connection
 * between them (rbridge_hook) and they call the same script, so Redis still
 * runs every command in the order it was asked for. The presence heartbeat's
 * refreshes of a slice of rooms share calls the same way.
 *
 * What is held is bounded (MAX_CALLS calls, and MAX_BYTES bytes or a single
 * larger call, in rbatch.c) and comes on top of the connection's own queue
 * bound. One call holds keys of many rooms: fine on the single servers
 * confab supports, refused (CROSSSLOT) by a Redis Cluster.
 *
 * The script is written for it: KEYS holds each call's keys in turn, ARGV
 * holds for each call its number of keys, its number of arguments, then its
 * arguments; it returns an array with one reply per call, or one error for
 * all of them (scripts.c, script_send).
 *
 * Each call's callback runs exactly once, with its own element of the reply,
 * the batch's error reply, or NULL, as rbridge_eval's do: NULL means the
 * connection was lost after the call was queued, so it may or may not have
 * run. A call that never left the broker (the connection went down or the
 * bridge was freed while it was held, or its batch could not be queued) gets
 * an error reply of the batcher's own instead, which rbatch_unqueued tells
 * apart: it did not run, so a retry is safe. */
#ifndef BROKER_RBATCH_H
#define BROKER_RBATCH_H

#include <stddef.h>

#include "redis.h"

struct rbatch;

/* The batcher on rb: registered as rb's hook, freed with rb (RBRIDGE_FREE).
 * One per bridge. NULL when out of memory. */
struct rbatch *rbatch_new(struct rbridge *rb);

/* Why a call never left the broker, when r is the batcher's own reply for
 * that: -ENOTCONN (the connection is down, or the bridge went away),
 * -ENOBUFS (the connection's queue was full), -ENOMEM, or -ECANCELED (the
 * bridge refused it otherwise: a bug). 0 for any other reply, NULL
 * included. */
int rbatch_unqueued(const redisReply *r);

/* The records of queued EVALSHAs kept for reuse, process-wide: how many are
 * held, and a trim of those no batch took since the last trim (call once a
 * second; freelist.h), which returns how many it freed. */
size_t rbatch_records_held(void);
size_t rbatch_trim(void);

/* The batcher rb already has, or NULL. */
struct rbatch *rbatch_of(const struct rbridge *rb);

/* Holds one call of `script` (argv: its keys, then its arguments; copied).
 * Consecutive calls of one script share an EVALSHA; a call of another script
 * first queues what is held. fn may be NULL: nobody waits for the reply. 0,
 * or what rbridge_eval would refuse it with (-ENOTCONN, -ENOBUFS, -ENOMEM,
 * -EINVAL); then fn will not run. */
int rbatch_add(struct rbatch *q, int script, int nkeys, int argc, const char *const *argv,
               const size_t *lens, rbridge_reply_fn fn, void *ud);

#endif
