/* faults_check: the end of a fault test, for faults.h (which includes this
 * file last): waiting until every send is settled, then checking every
 * member's view of every room against the ledger of acknowledged sends. */
#ifndef TEST_FAULTS_CHECK_H
#define TEST_FAULTS_CHECK_H

/* How many of room `name`'s sends are acked (all: -1 when one is not). */
static inline int f_acked_in(struct f_world *w, const char *name)
{
    int n = 0;
    for (int i = 0; i < w->n; i++)
        for (int k = 0; k < w->cl[i]->nsends; k++) {
            struct f_send *s = &w->cl[i]->sends[k];
            if (strcmp(w->cl[i]->room[s->room].name, name) != 0)
                continue;
            if (s->st != F_ACKED)
                return -1;
            n++;
        }
    return n;
}

static inline bool f_settled(void *ud)
{
    struct f_world *w = ud;
    for (int i = 0; i < w->n; i++) {
        struct f_client *fc = w->cl[i];
        for (int r = 0; r < fc->nrooms; r++) {
            int acked = f_acked_in(w, fc->room[r].name);
            if (acked < 0 || !fc->room[r].joined || fc->room[r].ngot < (size_t)acked)
                return false;
        }
    }
    return true;
}

/* Stops new sends and runs until every send is acked and every member has
 * as many messages as were acked in its rooms (or timeout_ms passes). */
static inline bool f_settle(struct f_world *w, int timeout_ms)
{
    w->sending = false;
    bool ok = f_run_until(w, f_settled, w, 20, timeout_ms);
    f_run(w, 200); /* anything more (a duplicate) would arrive now */
    return ok;
}

static inline int f_verify_member(struct f_world *w, struct f_client *fc, struct f_room *r)
{
    int problems = 0, ri = (int)(r - fc->room);
    (void)ri;
    for (int i = 0; i < w->n; i++) {
        struct f_client *s = w->cl[i];
        for (int k = 0; k < s->nsends; k++) {
            struct f_send *x = &s->sends[k];
            if (strcmp(s->room[x->room].name, r->name) != 0)
                continue;
            int copies = 0;
            json_int_t id = 0;
            for (size_t g = 0; g < r->ngot; g++)
                if (r->got[g].sender == i && r->got[g].n == k) {
                    copies++;
                    id = r->got[g].id;
                }
            if (copies == 1 && (x->st != F_ACKED || id == x->mid))
                continue;
            problems++;
            if (problems > 20)
                continue;
            if (copies == 0)
                printf("  %s in %s: MISSING %s:%d (%s as id %lld, %d attempt(s), last error %s)\n",
                       fc->user, r->name, s->user, k, x->st == F_ACKED ? "acked" : "NOT acked",
                       (long long)x->mid, x->attempts, x->last_error[0] ? x->last_error : "-");
            else if (copies > 1)
                printf("  %s in %s: %s:%d arrived %d times\n", fc->user, r->name, s->user, k,
                       copies);
            else
                printf("  %s in %s: %s:%d arrived as id %lld but was acked as id %lld\n", fc->user,
                       r->name, s->user, k, (long long)id, (long long)x->mid);
        }
    }
    return problems;
}

/* The ledger: every send acked, and every member of every room got each one
 * exactly once under its acked id (violations seen on the way count too).
 * Prints a summary and every problem; returns their number. */
static inline int f_verify(struct f_world *w)
{
    int problems = 0, sends = 0, unavailable = 0, timeouts = 0, internal = 0, limited = 0,
        reconnects = 0;
    for (int i = 0; i < w->n; i++) {
        struct f_client *fc = w->cl[i];
        sends += fc->nsends;
        unavailable += fc->unavailable;
        timeouts += fc->timeouts;
        internal += fc->internal;
        limited += fc->rate_limited;
        reconnects += fc->reconnects;
        for (int k = 0; k < fc->nsends; k++)
            if (fc->sends[k].st != F_ACKED && problems++ < 20)
                printf("  %s:%d to %s was never acked (%d attempts, last error %s)\n", fc->user,
                       k, fc->room[fc->sends[k].room].name, fc->sends[k].attempts,
                       fc->sends[k].last_error[0] ? fc->sends[k].last_error : "-");
    }
    for (int i = 0; i < w->n; i++)
        for (int r = 0; r < w->cl[i]->nrooms; r++)
            problems += f_verify_member(w, w->cl[i], &w->cl[i]->room[r]);
    printf("ledger: %d clients, %d sends, errors: %d unavailable, %d timeout, %d internal, "
           "%d rate_limited; %d reconnects; %d violations, %d delivery problems\n",
           w->n, sends, unavailable, timeouts, internal, limited, reconnects, w->violations,
           problems);
    fflush(stdout);
    return problems + w->violations;
}

/* Fails the test unless the ledger is clean. */
#define F_ASSERT_LEDGER(w)                                                                         \
    do {                                                                                           \
        int bad_ = f_verify(w);                                                                    \
        if (bad_)                                                                                  \
            fail_msg("%d lost, doubled or misordered acked messages or broken promises (above)",   \
                     bad_);                                                                        \
    } while (0)

static inline int f_errors(struct f_world *w, const char *user_prefix)
{
    int n = 0;
    for (int i = 0; i < w->n; i++)
        if (!user_prefix || !strncmp(w->cl[i]->user, user_prefix, strlen(user_prefix)))
            n += w->cl[i]->unavailable + w->cl[i]->timeouts + w->cl[i]->internal;
    return n;
}

static inline int f_reconnects(struct f_world *w, const char *user_prefix)
{
    int n = 0;
    for (int i = 0; i < w->n; i++)
        if (!user_prefix || !strncmp(w->cl[i]->user, user_prefix, strlen(user_prefix)))
            n += w->cl[i]->reconnects;
    return n;
}

struct f_health {
    int port, status;
};

static inline bool f_health_is(void *ud)
{
    struct f_health *h = ud;
    struct h_resp r;
    if (h_http(h->port, "GET", "/healthz", NULL, NULL, 0, &r) < 0)
        return h->status < 0;
    int s = r.status;
    h_resp_free(&r);
    return s == h->status;
}

/* Keeps the world running until GET /healthz on port answers status. */
static inline bool f_run_until_health(struct f_world *w, int port, int status, int timeout_ms)
{
    struct f_health h = {port, status};
    return f_run_until(w, f_health_is, &h, 50, timeout_ms);
}

struct f_logwait {
    const struct h_proc *p;
    long mark;
    const char *needle;
};

static inline bool f_log_has(void *ud)
{
    struct f_logwait *l = ud;
    return h_log_contains_from(l->p, l->mark, l->needle, 0);
}

/* Keeps the world running until p's log shows needle after mark. */
static inline bool f_run_until_log(struct f_world *w, const struct h_proc *p, long mark,
                                   const char *needle, int timeout_ms)
{
    struct f_logwait l = {p, mark, needle};
    return f_run_until(w, f_log_has, &l, 50, timeout_ms);
}

#endif
