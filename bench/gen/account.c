/* account: what the generator sends and what it receives, per step.
 *
 * Publishing: a step at rate R sends message k at its scheduled time
 * step_t0 + k/R (checked every 1 ms tick), round robin over the publishers
 * that are members of their room. A message that does not fit in its
 * publisher's bounded output counts as send_blocked and is never sent (its
 * seq is not used, so receivers see no gap). Each sent message expects one
 * delivery per member of its room at that instant, its sender included.
 *
 * Receiving: every receiver keeps, per sender of its room, the highest seq
 * seen and how many seqs it skipped. The next seq is in order; a higher one
 * opens a gap; a lower one closes a gap (out of order, still delivered) or,
 * with no gap open, is a duplicate. Loss = expected - delivered. A message
 * sent before the current step began is counted as late, not delivered. */
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
    if (total > 64u * 1024 * 1024) {
        fprintf(stderr, "confab-bench: %llu (sender, receiver) pairs is too many: use more "
                        "rooms or fewer publishers\n",
                (unsigned long long)total);
        return -1;
    }
    pair_state *all = calloc(total ? total : 1, sizeof *all);
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
    if (!st) {
        g->outside_steps++;
        return;
    }
    uint64_t lat = g->now > t ? g->now - t : 0;
    bh_record(&st->lat, lat);
    if (g->dump)
        dump_add(g->dump, g->now, lat, s, q, c->gidx);
    pair_state *ps = &c->pairs[s / R - g->pub_lo / R];
    int fresh = 1;
    if (q > ps->last) {
        ps->pending += q - ps->last - 1;
        ps->last = q;
    } else if (ps->pending) {
        ps->pending--;
        st->out_of_order++;
    } else {
        st->duplicated++;
        fresh = 0;
    }
    if (t < g->step_t0)
        st->late++;
    else if (fresh)
        st->delivered++;
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
        else
            g->setup_errors++;
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
    g->npubs = 0;
    for (uint32_t gi = g->pub_lo; gi < g->pub_hi; gi++) {
        uint32_t i = gi - g->o.index_offset;
        if (g->c[i].state == CS_JOINED && g->c[i].npairs > 0)
            g->pubs[g->npubs++] = i;
    }
    g->pub_rr = 0;
    g->step_t0 = g->now;
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
        uint64_t sched = g->step_t0 + (uint64_t)((double)g->scheduled * 1e9 / st->rate);
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
