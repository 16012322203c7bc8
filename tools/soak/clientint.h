/* client internals shared by client.c (connection, timers, sends) and
 * events.c (what the server sends). Not an API: see soak.h for that. */
#ifndef SOAK_CLIENTINT_H
#define SOAK_CLIENTINT_H

#include <jansson.h>

#include "soak.h"
#include "v1c.h"

#define ANSWER_DEADLINE_US 20000000 /* the server answers within 10 s, always */
#define STALL_HISTORY_US 60000      /* ~16 requests/s: under the default RATE_MSGS of 20 */

enum rstate { R_WANT, R_JOINING, R_LIVE, R_LEAVING };

struct croom {
    int room;
    enum rstate st;
    int member; /* ledger membership; -1 until the first joined */
    int epoch;  /* interned */
    char epoch_s[64];
    int64_t last_id;
    int64_t req_at; /* join or leave sent, not answered yet */
    int64_t retry_at, down_at;
    int tries;
};

struct pend {
    uint32_t msg;
    bool inflight;
    int64_t sent_at, retry_at;
    int tries;
};

struct client {
    uint32_t idx;
    bool slow;
    char user[32];
    char *token;
    enum v1_enc enc;
    int node;
    struct v1c *c;
    int64_t next_connect;
    int attempt;
    struct croom rooms[SOAK_MAX_ROOMS];
    int nrooms;
    struct pend *out;
    int nout, capout;
    int64_t next_send, next_churn, next_history;
    int hist_pending;
    int64_t hist_at;
    int64_t stall_until, next_stall_hist;
    uint64_t reqno;
};

/* Logs what one client does, for the slow consumer (or all with --verbose). */
#define TRACE(c, ...)                                                                              \
    do {                                                                                           \
        if ((c)->slow || g_cfg.verbose)                                                            \
            soak_log(__VA_ARGS__);                                                                 \
    } while (0)

/* client.c */
int client__room_of(const char *name);
struct croom *client__find_room(struct client *c, int room);
/* Ends the room's membership and forgets the room. */
void client__remove_room(struct client *c, struct croom *cr);
/* Backoff with full jitter: uniform in [50 ms, min(base * 2^tries, cap)]. */
int64_t client__backoff_us(int tries, int64_t base, int64_t cap);

/* events.c */
void client__on_event(struct client *c, json_t *ev, int64_t now);

#endif
