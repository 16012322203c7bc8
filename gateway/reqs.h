/* reqs: requests this gateway sent to a broker and still waits an answer for
 * (sends, joins, history pages, server publishes), by their link-local id "q".
 *
 * A request belongs to a session (or to an HTTP request for POST
 * /api/publish). If its owner goes away first, the request stays until the
 * answer or its deadline, with the owner cleared, so a late answer finds
 * nothing to reach. Every request has a deadline (REQ_TIMEOUT_MS): the
 * owner is then told "timeout". A session may have at most `per_session`
 * requests outstanding (MAX_PENDING_REQUESTS, default REQS_PER_SESSION). */
#ifndef GW_REQS_H
#define GW_REQS_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"
#include "validate.h"
#include "wire.h"

#define REQ_TIMEOUT_MS 10000
#define REQS_PER_SESSION 64

enum req_kind { REQ_SEND = 1, REQ_SUB, REQ_HIST, REQ_PUBLISH };

struct req {
    uint64_t q;
    enum req_kind kind;
    bool resync;        /* REQ_SUB: a re-sync (reqs_add_resync) */
    struct session *s;  /* NULL: the session is gone */
    void *http;         /* REQ_PUBLISH: the waiting HTTP request, NULL once gone */
    struct req *snext;  /* in the session's list */
    uint32_t budget;    /* REQ_SUB, REQ_HIST: bytes of stored messages asked for (v1.c) */
    int64_t deadline;   /* monotonic ms */
    uint32_t room_len, id_len;
    char room[CF_ROOM_MAX + 1];
    char id[]; /* the client's request id (NUL-terminated), may be empty */
};

struct reqs;

struct reqs *reqs_new(uint32_t per_session);
void reqs_free(struct reqs *t); /* NULL is a no-op; frees what is left */

/* Registers a request of s (or of an HTTP request when s is NULL). Returns it
 * with a fresh q, or NULL: -EBUSY in *err when s has too many outstanding,
 * -ENOMEM. */
struct req *reqs_add(struct reqs *t, enum req_kind kind, struct session *s, void *http,
                     struct cf_str room, struct cf_str id, int *err);
/* A re-sync the gateway makes by itself for a member of s (a REQ_SUB):
 * neither held to the session's cap, which its client's own requests may
 * fill, nor counted in it, so a client in more rooms than the cap keeps its
 * own requests while its broker's shard re-syncs (at most one per room it
 * is in, so bounded anyway). -ENOMEM only. */
struct req *reqs_add_resync(struct reqs *t, struct session *s, struct cf_str room, int *err);
/* The request q, left in place (NULL: unknown). */
struct req *reqs_get(struct reqs *t, uint64_t q);
/* Removes and returns the request q (NULL: unknown or expired); its s is
 * still the live session (or NULL). The caller frees it with reqs_release. */
struct req *reqs_take(struct reqs *t, uint64_t q);
void reqs_release(struct req *r);
/* Forgets a request that could not be sent (it was just added). */
void reqs_cancel(struct reqs *t, struct req *r);

/* The session is closing: its requests stay (answers still come) but will
 * not reach it. */
void reqs_drop_session(struct reqs *t, struct session *s);

/* Removes every request past its deadline, calling fn for each (then frees
 * it). */
void reqs_expire(struct reqs *t, int64_t now, void (*fn)(void *ud, struct req *r), void *ud);

/* Removes every request pred accepts, calling fn for each (then frees it). */
void reqs_take_if(struct reqs *t, bool (*pred)(void *ud, const struct req *r),
                  void (*fn)(void *ud, struct req *r), void *ud);

size_t reqs_count(const struct reqs *t);
/* How many of them are re-syncs (reqs_add_resync's). */
size_t reqs_resyncs(const struct reqs *t);

#endif
