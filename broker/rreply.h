/* rreply: where the broker's Redis replies are built.
 *
 * hiredis builds each reply as a tree of malloc()ed objects: a subscriber's
 * message is an array of three strings, eight malloc() and free() calls, and
 * with the publisher's reply that was ~10 a message and ~5 % of the broker's
 * CPU (docs/benchmarks.md). rreply_use() points a connection's reader at
 * functions that build the same redisReply trees in an arena of that
 * connection's instead (common/arena.h: it starts over once every object
 * it handed out has been freed, so a reply still being read, its end not
 * yet arrived, is never overwritten; what does not fit goes to malloc();
 * under AddressSanitizer it poisons what nobody holds). One arena per
 * connection: a reply left unfinished at the end of one connection's read
 * holds only that connection's arena, until its next read finishes it.
 *
 * Ownership: the caller owns the arena (rreply_arena_new/_free) and frees it
 * only after the reader (redisFree), which frees what it still holds through
 * these functions. A reply from such a reader is freed with rreply_free(),
 * never freeReplyObject(). Not thread-safe: one loop per process. */
#ifndef BROKER_RREPLY_H
#define BROKER_RREPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "arena.h"

#define RREPLY_ARENA_BYTES 16384
/* A reply whose arrays claim more elements than this, nested ones summed,
 * is refused (the reader then fails with an out-of-memory error, and the
 * connection is dropped and made again): hiredis would otherwise allocate
 * whatever each array's header claims, up to 16 GB for 2^31 elements. It
 * bounds a reply's objects as well, one per element past the arena: a
 * 48-byte redisReply behind the arena's 16-byte header (common/arena.h) is
 * a malloc() of 64 bytes, an 80-byte block with glibc's overhead, and the
 * array's pointer to it makes ~88 bytes (~5.5 MiB here; ~88 MiB at 2^20,
 * where it was), which the byte bound does not count (test_rreply measures
 * ~95 bytes an element, the reader's copy of the reply included). The broker's
 * largest replies hold ~10,100: a join's or a page's messages (a request's
 * `limit`, at most CF_WIRE_MAX_ITEMS) and 100 member names; a batch, 64
 * calls' replies.
 * A reader without an arena (rreply_use(r, NULL)) checks each array alone. */
#define RREPLY_MAX_ELEMENTS (1u << 16)
/* The same for a reply's bytes: its strings summed (a reader without an arena
 * checks each string alone), and what the reader holds of a reply not yet
 * whole (rreply_pending_over); each arena has its own (rreply_arena_new).
 * Without a bound, a server that sends a huge bulk string (or a PUBLISH of
 * 512 MB to a room's channel) is buffered whole. The largest reply the
 * broker asks for is a join's or a page's: stored messages within the
 * request's budget, which the wire bounds at a frame (CF_WIRE_MAX_FRAME,
 * 4 MiB; a gateway asks at most 1 MiB), the newest message even over it (at
 * most CF_WIRE_MAX_EVENT) and 100 member names; the others are ids, counts
 * and short errors (scripts.c, rset.c). Four frames leave room for all
 * that, so a server that is not Redis costs a publisher connection about
 * twice this and its objects (RREPLY_MAX_ELEMENTS): ~38 MiB, where it was
 * ~232 MiB. */
#define RREPLY_MAX_BYTES (16u << 20)
/* A subscriber's replies are its channels' messages, none of them legitimately
 * over CF_WIRE_MAX_EVENT (~130 KB), and (un)subscribe confirmations: its
 * connection is bounded far tighter, so a huge PUBLISH to a room's channel
 * costs the broker at most about twice this. A message up to twice
 * CF_WIRE_MAX_FRAME is read, then dropped and counted as foreign; a longer
 * one resets the connection. */
#define RREPLY_SUB_MAX_BYTES (8u << 20)

struct rreply_arena;

/* An arena whose replies are bounded at max_bytes (at most RREPLY_MAX_BYTES).
 * NULL when out of memory (rreply_use() then builds every object with
 * malloc(), and bounds each array and string alone, at RREPLY_MAX_BYTES). */
struct rreply_arena *rreply_arena_new(size_t max_bytes);
void rreply_arena_free(struct rreply_arena *a); /* NULL is a no-op */

/* Before the reader has read anything (right after the connect call). The
 * arena (or NULL) must outlive the reader. */
void rreply_use(redisReader *r, struct rreply_arena *a);

/* After redisReaderGetReply() has taken every whole reply: true when what
 * the reader still holds, a reply not yet whole, is over its arena's bound. */
bool rreply_pending_over(const redisReader *r);

/* Whether the reply the reader last failed on was refused for a bound
 * (RREPLY_MAX_ELEMENTS or the arena's of bytes), not for the server's protocol
 * or memory: for the log. False for NULL. */
bool rreply_refused(const struct rreply_arena *a);

/* The log's reason for a reply refused for a bound, naming the arena's
 * (RREPLY_MAX_BYTES for NULL). Owned by the arena; a static for NULL. */
const char *rreply_too_big(const struct rreply_arena *a);

/* Frees a whole reply tree from such a reader. NULL is a no-op. */
void rreply_free(void *reply);

/* The arena's figures (its fallbacks: objects malloc()ed because it was
 * full); all zero for NULL. */
struct cf_arena_stats rreply_stats(const struct rreply_arena *a);

#endif
