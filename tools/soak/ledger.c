/* ledger: what was sent, what every client received, and who was in which
 * room when. The final account rests on one rule: a client that was in a
 * room from before a message was sent until after it was acknowledged must
 * have received it exactly once (live, or replayed when it rejoined with
 * `since`), unless the server told it that it could not recover that part
 * of the room (a `joined` with recovered=false or a new epoch): then the
 * message is excused, not lost.
 *
 * Messages are identified by the index their text carries, not by their
 * room id: ids start again in a new epoch, and a message stored twice would
 * show up as one text under two ids. */
#include <stdlib.h>
#include <string.h>

#include "soak.h"

/* A client's deliveries of one message. */
struct rcpt {
    uint32_t client;
    uint32_t n;
};

struct msg {
    uint32_t sender;
    uint16_t room;
    bool acked, seen, twice;
    int epoch; /* of the first delivery anyone saw */
    int64_t id_seen, ack_id;
    int64_t t_send, t_ack;
    struct rcpt *r;
    uint32_t nr, cap;
};

struct brk {
    int64_t from, to;
};

struct member {
    uint32_t client;
    int room;
    int64_t t_start, t_end, current_to;
    struct brk *b;
    int nb;
};

static struct msg *g_msgs;
static uint32_t g_nmsgs, g_capmsgs;
static struct member *g_members;
static int g_nmembers, g_capmembers;
static char **g_epochs;
static int g_nepochs;
static struct {
    int epoch;
    int64_t id;
} g_last_ack[1000];
static float *g_lat;
static size_t g_nlat, g_caplat;

/* Doubles *cap (from `first`) until `need` fits. */
static void *grow(void *p, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap * 2 : first;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * size);
    if (!q) {
        fprintf(stderr, "soak: out of memory\n");
        exit(2);
    }
    *cap = n;
    return q;
}

uint32_t ledger_new_msg(uint32_t sender, int room)
{
    size_t cap = g_capmsgs;
    g_msgs = grow(g_msgs, &cap, g_nmsgs + 1, sizeof *g_msgs, 4096);
    g_capmsgs = (uint32_t)cap;
    struct msg *m = &g_msgs[g_nmsgs];
    memset(m, 0, sizeof *m);
    m->sender = sender;
    m->room = (uint16_t)room;
    m->t_send = soak_now_us();
    return g_nmsgs++;
}

bool ledger_valid(uint32_t msg)
{
    return msg < g_nmsgs;
}

int ledger_msg_room(uint32_t msg)
{
    return g_msgs[msg].room;
}

uint64_t ledger_messages(void)
{
    return g_nmsgs;
}

void ledger_acked(uint32_t msg, int64_t message_id, int epoch)
{
    struct msg *m = &g_msgs[msg];
    if (m->acked) {
        /* a resend after an unknown outcome: dedup must give the same id */
        if (m->ack_id != message_id)
            g_st.ack_conflicts++;
        return;
    }
    m->acked = true;
    m->ack_id = message_id;
    m->t_ack = soak_now_us();
    g_st.acks++;
    g_last_ack[m->room].epoch = epoch;
    g_last_ack[m->room].id = message_id;
}

void ledger_room_last_ack(int room, int *epoch, int64_t *id)
{
    *epoch = g_last_ack[room].epoch;
    *id = g_last_ack[room].id;
}

bool ledger_is_acked(uint32_t msg)
{
    return g_msgs[msg].acked;
}

int ledger_epoch(const char *epoch)
{
    if (!epoch || !*epoch)
        return 0;
    for (int i = 0; i < g_nepochs; i++)
        if (!strcmp(g_epochs[i], epoch))
            return i + 1;
    char **e = realloc(g_epochs, (size_t)(g_nepochs + 1) * sizeof *e);
    if (!e)
        exit(2);
    g_epochs = e;
    g_epochs[g_nepochs++] = strdup(epoch);
    return g_nepochs;
}

static struct rcpt *find_rcpt(struct msg *m, uint32_t client)
{
    for (uint32_t i = 0; i < m->nr; i++)
        if (m->r[i].client == client)
            return &m->r[i];
    return NULL;
}

int ledger_count(uint32_t msg, uint32_t client)
{
    struct rcpt *r = find_rcpt(&g_msgs[msg], client);
    return r ? (int)r->n : 0;
}

static void add_latency(double ms)
{
    g_lat = grow(g_lat, &g_caplat, g_nlat + 1, sizeof *g_lat, 4096);
    g_lat[g_nlat++] = (float)ms;
}

void ledger_receive(uint32_t msg, uint32_t client, int epoch, int64_t id, bool live)
{
    struct msg *m = &g_msgs[msg];
    struct rcpt *r = find_rcpt(m, client);
    if (!r) {
        size_t cap = m->cap;
        m->r = grow(m->r, &cap, m->nr + 1, sizeof *m->r, 4); /* a room has a few members */
        m->cap = (uint32_t)cap;
        r = &m->r[m->nr++];
        r->client = client;
        r->n = 0;
        if (live)
            add_latency((double)(soak_now_us() - m->t_send) / 1000.0);
    }
    r->n++;
    if (!m->seen) {
        m->seen = true;
        m->epoch = epoch;
        m->id_seen = id;
    } else if (epoch && m->epoch == epoch && m->id_seen != id && !m->twice) {
        m->twice = true; /* one text, two ids in one epoch: dedup failed */
        g_st.stored_twice++;
        soak_log("message %u stored twice in room %d: ids %lld and %lld", msg, m->room,
                 (long long)m->id_seen, (long long)id);
    }
}

/* ---- memberships ----------------------------------------------------------- */

int ledger_member_start(uint32_t client, int room)
{
    size_t cap = (size_t)g_capmembers;
    g_members = grow(g_members, &cap, (size_t)g_nmembers + 1, sizeof *g_members, 1024);
    g_capmembers = (int)cap;
    struct member *b = &g_members[g_nmembers];
    memset(b, 0, sizeof *b);
    b->client = client;
    b->room = room;
    b->t_start = b->current_to = soak_now_us();
    return g_nmembers++;
}

void ledger_member_end(int member)
{
    if (member >= 0 && !g_members[member].t_end)
        g_members[member].t_end = soak_now_us();
}

void ledger_member_break(int member, int64_t from_us)
{
    struct member *b = &g_members[member];
    struct brk *x = realloc(b->b, (size_t)(b->nb + 1) * sizeof *x);
    if (!x)
        exit(2);
    b->b = x;
    b->b[b->nb++] = (struct brk){from_us, soak_now_us()};
}

int64_t ledger_member_current_to(int member)
{
    return g_members[member].current_to;
}

void ledger_member_touch(int member, uint32_t msg)
{
    struct member *b = &g_members[member];
    if (g_msgs[msg].t_send > b->current_to)
        b->current_to = g_msgs[msg].t_send;
}

/* ---- the account ------------------------------------------------------------ */

#define TAIL_US 10000000 /* a miss this close before a leave is only noted */
#define SLACK_US 1000000

static bool excused(const struct member *b, const struct msg *m)
{
    for (int i = 0; i < b->nb; i++)
        if (m->t_send <= b->b[i].to && m->t_ack >= b->b[i].from - SLACK_US)
            return true;
    return false;
}

static void example(const char *what, uint32_t mi, const struct msg *m, const struct member *b,
                    int n)
{
    soak_log("%s: message %u (room %d, id %lld, sent at %.1fs, acked at %.1fs by client %u) "
             "received %d time(s) by client %u (member since %.1fs%s, %d break(s))",
             what, mi, m->room, (long long)m->ack_id, soak_rel(m->t_send), soak_rel(m->t_ack),
             m->sender, n, b->client, soak_rel(b->t_start), b->t_end ? "" : ", until the end",
             b->nb);
    if (b->t_end)
        soak_log("  membership ended at %.1fs", soak_rel(b->t_end));
    for (int i = 0; i < b->nb; i++)
        soak_log("  break %d: %.1fs .. %.1fs", i, soak_rel(b->b[i].from), soak_rel(b->b[i].to));
}

/* Message indexes of each room, for the per-membership scans. */
static uint32_t **room_index(uint32_t **counts)
{
    uint32_t **idx = calloc((size_t)g_cfg.rooms + 1, sizeof *idx);
    uint32_t *n = calloc((size_t)g_cfg.rooms + 1, sizeof *n);
    for (uint32_t i = 0; i < g_nmsgs; i++)
        n[g_msgs[i].room]++;
    for (int r = 0; r <= g_cfg.rooms; r++)
        idx[r] = malloc((n[r] + 1) * sizeof **idx);
    memset(n, 0, ((size_t)g_cfg.rooms + 1) * sizeof *n);
    for (uint32_t i = 0; i < g_nmsgs; i++)
        idx[g_msgs[i].room][n[g_msgs[i].room]++] = i;
    *counts = n;
    return idx;
}

static void (*g_describe)(uint32_t client, int room);

static void account_member(const struct member *b, const uint32_t *idx, uint32_t n, int *shown,
                           int *tshown, int show)
{
    for (uint32_t k = 0; k < n; k++) {
        const struct msg *m = &g_msgs[idx[k]];
        if (!m->acked || m->t_send < b->t_start || (b->t_end && m->t_ack > b->t_end))
            continue;
        g_st.expected++;
        struct rcpt *r = find_rcpt((struct msg *)m, b->client);
        int got = r ? (int)r->n : 0;
        if (got == 1) {
            g_st.delivered_once++;
        } else if (got > 1) {
            /* counted below, over every delivery */
        } else if (excused(b, m)) {
            g_st.excused++;
        } else if (b->t_end && m->t_ack > b->t_end - TAIL_US) {
            g_st.tail_missed++;
            if ((*tshown)++ < show / 2) {
                example("missed before a leave", idx[k], m, b, got);
                g_describe(b->client, b->room);
            }
        } else {
            g_st.lost++;
            if ((*shown)++ < show) {
                example("LOST", idx[k], m, b, got);
                g_describe(b->client, b->room);
            }
        }
    }
}

void ledger_account(int show, void (*describe)(uint32_t client, int room))
{
    uint32_t *counts;
    uint32_t **idx = room_index(&counts);
    int shown = 0, tshown = 0;
    g_describe = describe;
    for (int i = 0; i < g_nmembers; i++) {
        const struct member *b = &g_members[i];
        account_member(b, idx[b->room], counts[b->room], &shown, &tshown, show);
    }
    int dshown = 0;
    for (uint32_t i = 0; i < g_nmsgs; i++)
        for (uint32_t j = 0; j < g_msgs[i].nr; j++)
            if (g_msgs[i].r[j].n > 1) {
                g_st.duplicated++;
                if (dshown++ < show)
                    soak_log("DUPLICATE: message %u (room %d, id %lld) received %u times by "
                             "client %u",
                             i, g_msgs[i].room, (long long)g_msgs[i].id_seen, g_msgs[i].r[j].n,
                             g_msgs[i].r[j].client);
            }
    for (int r = 0; r <= g_cfg.rooms; r++)
        free(idx[r]);
    free(idx);
    free(counts);
}

/* ---- latency ------------------------------------------------------------------ */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    size_t i = (size_t)(p * (double)(g_nlat - 1) + 0.5);
    return g_lat[i];
}

void ledger_latency_take(struct soak_lat *out)
{
    memset(out, 0, sizeof *out);
    if (!g_nlat)
        return;
    qsort(g_lat, g_nlat, sizeof *g_lat, cmp_float);
    out->n = g_nlat;
    out->p50 = pct(0.50);
    out->p90 = pct(0.90);
    out->p99 = pct(0.99);
    out->max = g_lat[g_nlat - 1];
    g_nlat = 0;
}
