/* account: what the generator sends and what it receives, per step.
 *
 * Publishing: a step at rate R sends message k (from 0) at its scheduled
 * time step_t0 + (k+1)/R (checked every 1 ms tick: the last one is due at
 * the step's end), round robin over the publishers
 * that are members of their room. A message that does not fit in its
 * publisher's bounded output counts as send_blocked and is never sent (its
 * seq is not used, so receivers see no gap); the step then fails (step.h),
 * since the load it claims was not offered. Each sent message expects one
 * delivery per member of its room at that instant, its sender included.
 *
 * Receiving: every receiver keeps, per sender of its room, the set of seqs
 * it is missing (seqwin.h), so a late copy fills only its own gap and a
 * second copy is a duplicate, never a delivery. A seq below the first one
 * the sender sent in the current step belongs to an earlier step: a first
 * copy of it is late, not delivered. Loss is counted per pair at the step's
 * end: the step's seqs of each sender that each member never got. */
#include "gen.h"
#include "dump.h"
#include "wsproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pairs a receiver of `room` needs: one per publisher of that room. */
static uint32_t room_pairs(const gen *g, uint32_t room)
{
    uint32_t R = g->o.rooms, lo = g->pub_lo, hi = g->pub_hi, first = lo, last;
    while (first < hi && first % R != room)
        first++;
    if (first >= hi)
        return 0;
    last = hi - 1;
    while (last % R != room)
        last--;
    return (last / R - lo / R) + 1;
}

int acct_init(gen *g)
{
    uint32_t p = g->o.publishers && g->o.publishers < g->n ? g->o.publishers : g->n;
    g->pub_lo = g->o.index_offset;
    g->pub_hi = g->o.index_offset + p;
    if (g->o.nrates == 0)
        return 0; /* nobody publishes: no per-sender state */
    uint64_t total = 0;
    for (uint32_t i = 0; i < g->n; i++)
        total += room_pairs(g, g->c[i].room);
    if (total > 32u * 1024 * 1024) { /* 512 MiB of sw_pair */
        fprintf(stderr, "confab-bench: %llu (sender, receiver) pairs is too many: use more "
                        "rooms or fewer publishers\n",
                (unsigned long long)total);
        return -1;
    }
    sw_pair *all = calloc(total ? total : 1, sizeof *all);
    if (!all)
        return -1;
    for (uint32_t i = 0; i < g->n; i++) {
        g->c[i].pairs = all;
        g->c[i].npairs = room_pairs(g, g->c[i].room);
        all += g->c[i].npairs;
    }
    g->pubs = calloc(p ? p : 1, sizeof *g->pubs);
    return g->pubs ? 0 : -1;
}

static void on_new_message(gen *g, conn *c, const uint8_t *p, size_t n)
{
    uint32_t s, q;
    uint64_t t;
    if (mt_parse(p, n, &s, &q, &t) < 0) {
        g->bad_frames++;
        return;
    }
    step_stats *st = g->cur;
    uint32_t R = g->o.rooms;
    if (s % R != c->room || s < g->pub_lo || s >= g->pub_hi || s / R - g->pub_lo / R >= c->npairs) {
        g->foreign++;
        return;
    }
    /* the pair is kept up to date between steps too, so that a copy that
     * arrived then is known when another comes */
    uint32_t first = g->c[s - g->o.index_offset].seq0 + 1; /* of this step */
    uint64_t evicted = 0;
    enum sw_kind kind = sw_receive(&c->pairs[s / R - g->pub_lo / R], q, first, &evicted);
    if (!st) {
        g->outside_steps++;
        return;
    }
    st->lost_evicted += evicted;
    switch (kind) {
    case SW_DUPLICATE:
        st->duplicated++;
        return;
    case SW_STALE:
        st->stale++;
        return;
    case SW_FILLED:
    case SW_NEW:
        break;
    }
    /* A copy or a previous step's message is not one of this step's
     * deliveries: its latency would move the step's percentiles (a server
     * that doubles messages, the last step's backlog) */
    if (q < first) {
        st->late++;
        return;
    }
    if (kind == SW_FILLED)
        st->out_of_order++;
    uint64_t lat = g->now > t ? g->now - t : 0;
    bh_record(&st->lat, lat);
    if (g->dump)
        dump_add(g->dump, g->now, lat, s, q, c->gidx);
    st->delivered++;
    st->t_last = g->now;
}

/* Counts an error event by its "code" (what confab refused, and why). */
static void count_error_code(gen *g, const uint8_t *p, size_t n)
{
    const uint8_t *k = memmem(p, n, "\"code\":\"", 8), *e;
    char code[24] = "?";
    if (k && (e = memchr(k + 8, '"', n - (size_t)(k + 8 - p))) && e - (k + 8) < 24) {
        memcpy(code, k + 8, (size_t)(e - (k + 8)));
        code[e - (k + 8)] = '\0';
    }
    for (char *q = code; *q; q++) /* it goes into JSON as it is */
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_'))
            *q = '?';
    for (size_t i = 0; i < sizeof g->err_codes / sizeof g->err_codes[0]; i++) {
        if (g->err_codes[i].count == 0)
            snprintf(g->err_codes[i].code, sizeof g->err_codes[i].code, "%s", code);
        if (strcmp(g->err_codes[i].code, code) == 0) {
            g->err_codes[i].count++;
            return;
        }
    }
}

void acct_on_message(gen *g, conn *c, const uint8_t *p, size_t n)
{
    switch (mt_type(p, n)) {
    case MT_NEW_MESSAGE:
        on_new_message(g, c, p, n);
        return;
    case MT_JOINED:
        if (c->state == CS_JOINING) {
            c->state = CS_JOINED;
            g->joining--;
            g->joined++;
            g->members[c->room]++;
        }
        return;
    case MT_ERROR:
        count_error_code(g, p, n);
        if (c->state == CS_JOINING)
            conn_close(g, c); /* the join was refused: a join error */
        else if (g->cur)
            g->cur->server_errors++;
        else {
            g->setup_errors++;
            g->errors_unstepped++;
        }
        return;
    default:
        return;
    }
}

void acct_step_begin(gen *g, step_stats *st, double rate)
{
    memset(st, 0, offsetof(step_stats, lat));
    bh_reset(&st->lat);
    st->rate = rate;
    st->closed = g->closed_unstepped;
    st->server_errors = g->errors_unstepped;
    g->closed_unstepped = g->errors_unstepped = 0;
    g->npubs = 0;
    for (uint32_t gi = g->pub_lo; gi < g->pub_hi; gi++) {
        uint32_t i = gi - g->o.index_offset;
        g->c[i].seq0 = g->c[i].seq;
        if (g->c[i].state == CS_JOINED && g->c[i].npairs > 0)
            g->pubs[g->npubs++] = i;
    }
    g->pub_rr = 0;
    g->step_t0 = st->t0 = g->now;
    st->scheduled = (uint64_t)(rate * g->o.step_s); /* what acct_publish_due makes due */
    st->seconds = g->o.step_s;
    g->scheduled = 0;
    g->sending = 1;
    g->cur = st;
}

void acct_publish_due(gen *g)
{
    step_stats *st = g->cur;
    if (!g->sending || !st || g->npubs == 0)
        return;
    double el = (double)(g->now - g->step_t0) / 1e9;
    if (el > g->o.step_s)
        el = g->o.step_s;
    uint64_t due = (uint64_t)(st->rate * el);
    char buf[GEN_MAX_MSG + 256];
    while (g->scheduled < due) {
        /* due once rate * elapsed reaches k + 1: measured from k / R, the
         * lag of a step at 20 msg/s was never under 50 ms */
        uint64_t sched = g->step_t0 + (uint64_t)((double)(g->scheduled + 1) * 1e9 / st->rate);
        conn *c = &g->c[g->pubs[g->pub_rr]];
        if (++g->pub_rr == g->npubs)
            g->pub_rr = 0;
        g->scheduled++;
        uint64_t t = gen_clock();
        if (t > sched && t - sched > st->pace_lag_max)
            st->pace_lag_max = t - sched;
        size_t len;
        if (c->state != CS_JOINED ||
            !(len = mt_build_send(buf, sizeof buf, c->room, c->gidx, c->seq + 1, t,
                                  g->o.msg_bytes)) ||
            conn_send(g, c, WS_TEXT, (const uint8_t *)buf, len) < 0) {
            st->send_blocked++;
            continue;
        }
        c->seq++;
        st->sent++;
        st->expected += g->members[c->room];
    }
}

void acct_step_end(gen *g)
{
    step_stats *st = g->cur;
    if (!st)
        return;
    /* each member still in its room, per sender of it: the step's seqs
     * (seq0 + 1 .. seq) it never got; with those that left a window during
     * the step. One pass over the pairs, once a step. A connection closed
     * during the step is left out (what it was sent before is in expected,
     * not in lost): the step fails on "closed" anyway. */
    uint64_t lost = st->lost_evicted;
    uint32_t R = g->o.rooms, base = g->pub_lo / R;
    for (uint32_t i = 0; i < g->n; i++) {
        const conn *c = &g->c[i];
        if (c->state != CS_JOINED)
            continue;
        for (uint32_t k = 0; k < c->npairs; k++) {
            uint32_t s = (base + k) * R + c->room;
            if (s < g->pub_lo || s >= g->pub_hi)
                continue;
            const conn *snd = &g->c[s - g->o.index_offset];
            lost += sw_missing(&c->pairs[k], snd->seq0 + 1, snd->seq);
        }
    }
    st->lost = lost;
    st->connect_errors = g->connect_errors;
    st->join_errors = g->join_errors;
    g->cur = NULL;
}
