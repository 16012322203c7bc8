/* budget: how many bytes of stored messages the answer to a join (its
 * snapshot) or a history page may carry for one client connection. The
 * broker keeps each answer to it (broker/requests.c); the answers a
 * connection awaits at once share its queue.
 *
 * Ownership: nothing is kept here; a request's budget lives in its struct
 * req (reqs.h). */
#ifndef GW_BUDGET_H
#define GW_BUDGET_H

#include <stdint.h>

#include "reqs.h"
#include "session.h"

/* The most one answer may carry: a quarter of the client queue, at most
 * 1 MiB, and at most what the broker allows a link (a quarter of its
 * queue). */
uint64_t budget_max(int64_t max_client_queue_bytes, int64_t max_link_queue_bytes);

/* The budget of request q of s (0: a registration, which has no answer),
 * kept in the request. Each answer alone fits the queue, but several in one
 * loop pass (a reconnect's rejoins) passed its bound, closing a client that
 * reads (over TLS nothing is written within a pass). So one takes a
 * quarter of what the queue has left after what is queued and twice (JSON
 * may double a message) the budgets awaited, at most a quarter of the
 * queue: together they keep to the bound, but for 1 KiB each (a few member
 * names) and newest messages over their budgets. With fewer messages, the
 * client fetches the rest (has_more, a hole). A re-sync (its broker back)
 * keeps the whole quarter and is not counted: smaller, a few missed
 * messages became a whole joined, not recovered, and the client's own
 * requests were left 1 KiB; its answer checks the queue itself (v1.c). */
uint32_t budget_of(struct reqs *reqs, struct session *s, uint64_t q);

#endif
