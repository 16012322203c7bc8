/* budget: see budget.h. */
#include "budget.h"

#define MAX_BUDGET (1u << 20) /* bytes of stored messages in one snapshot or page */
#define BUDGET_FLOOR 1024     /* ... and at least, while the client's queue is full */

uint64_t budget_max(int64_t max_client_queue_bytes, int64_t max_link_queue_bytes)
{
    uint64_t b = (uint64_t)max_client_queue_bytes / 4, link = (uint64_t)max_link_queue_bytes / 4;
    b = b > MAX_BUDGET ? MAX_BUDGET : b;
    return b > link ? link : b;
}

uint32_t budget_of(struct reqs *reqs, struct session *s, uint64_t q)
{
    size_t cap = sess_max_queue(s) / 4;
    cap = cap > MAX_BUDGET ? MAX_BUDGET : cap;
    struct req *own = q ? reqs_get(reqs, q) : NULL;
    if (!own || own->resync)
        return (uint32_t)cap;
    size_t awaited = 0;
    for (const struct req *r = *sess_reqs(s); r; r = r->snext)
        if (r != own && !r->resync)
            awaited += 2 * (size_t)r->budget;
    size_t taken = sess_queued_bytes(s) + awaited, left = sess_max_queue(s);
    size_t b = taken < left ? (left - taken) / 4 : 0;
    b = b < BUDGET_FLOOR ? BUDGET_FLOOR : b;
    b = b > cap ? cap : b;
    own->budget = (uint32_t)b;
    return (uint32_t)b;
}
