/* soak: mixed protocol-v1 traffic against a running confab cluster, with
 * faults, and an exact account of what every client received.
 *
 * Not a test: scripts/soak.sh starts the cluster (a private Redis, two nodes
 * of brokers and one gateway each, every process restarted by a supervisor
 * that writes its pid to <pids>/<name>.pid) and runs confab-soak against it.
 *
 * Modules: ledger.c (every message sent, every delivery, every membership;
 * the final accounting), client.c (one simulated client: connect, join,
 * send, recover), main.c (options, the poll loop, faults, RSS samples,
 * the report). One thread, one poll loop. */
#ifndef SOAK_H
#define SOAK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SOAK_MAX_ROOMS 32 /* the server's MAX_ROOMS_PER_CONN default */
#define SOAK_MAX_PORTS 4

struct soak_cfg {
    int ports[SOAK_MAX_PORTS];
    int nports;
    int clients;
    int rooms;
    double rate; /* messages per second, all clients together */
    bool faults;
    int fault_every; /* seconds */
    double duration; /* seconds of traffic (a drain follows) */
    const char *pids_dir;
    const char *csv;
    uint64_t seed;
    bool verbose;
};

/* Every number the report shows. Counters only grow. */
struct soak_stats {
    /* sends */
    uint64_t sends, transmissions, resends, acks, ack_conflicts;
    uint64_t err_unavailable, err_timeout, err_internal, err_busy, err_other;
    uint64_t unanswered_sends, unanswered_other, never_acked;
    /* deliveries, counted as they arrive */
    uint64_t rx_live, rx_recovery, rx_replay_skipped, rx_out_of_order, rx_gaps_seen;
    uint64_t rx_duplicates, rx_stray, rx_unknown, rx_before_joined;
    /* rooms */
    uint64_t joins, rejoins, recovered, not_recovered, epoch_changes, unasked_joined;
    uint64_t join_errors, leaves, room_changes, rejoin_refused;
    uint64_t history_reqs, history_ok, history_bad, history_errors;
    uint64_t presence_events;
    /* connections */
    uint64_t connects, connect_failures, drops_eof, closes_1001, closes_1008, closes_1012,
        closes_other, aborts;
    uint64_t loop_max_gap_ms; /* the longest this program did not poll (it blocks to connect) */
    /* final accounting (ledger_account) */
    uint64_t expected, delivered_once, lost, duplicated, excused, tail_missed, stored_twice;
};

extern struct soak_stats g_st;
extern struct soak_cfg g_cfg;

int64_t soak_now_us(void);
/* Seconds since the run started (for logs and the CSV). */
double soak_elapsed(void);
/* A soak_now_us() time as seconds since the run started. */
double soak_rel(int64_t us);
uint64_t soak_rand(void);
/* Uniform in [0, 1). */
double soak_rand01(void);
/* An exponentially distributed delay with the given mean, in microseconds. */
int64_t soak_rand_exp_us(double mean_s);
void soak_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- ledger.c: messages, deliveries, memberships ------------------------- */

/* A new message from client `sender` into room `room`; returns its index,
 * which the message text carries so any receiver can find it. */
uint32_t ledger_new_msg(uint32_t sender, int room);
int ledger_msg_room(uint32_t msg);
bool ledger_valid(uint32_t msg);
/* The send was acknowledged with the room's message id; `epoch` is the
 * sender's view of the room's epoch (acks do not carry it). */
void ledger_acked(uint32_t msg, int64_t message_id, int epoch);
/* The (epoch, id) of the room's latest acknowledged message. */
void ledger_room_last_ack(int room, int *epoch, int64_t *id);
bool ledger_is_acked(uint32_t msg);

/* Epoch strings interned to small numbers (0 = unknown). */
int ledger_epoch(const char *epoch);

/* How often `client` has received `msg` so far. */
int ledger_count(uint32_t msg, uint32_t client);
/* Records one delivery of msg to client, with the (epoch, id) it came
 * under; `live` deliveries also feed the latency statistics. */
void ledger_receive(uint32_t msg, uint32_t client, int epoch, int64_t id, bool live);

/* A membership: client in room from now until ledger_member_end. A client
 * that reconnects and recovers stays in the same membership. */
int ledger_member_start(uint32_t client, int room);
void ledger_member_end(int member);
/* The membership could not recover what was published between `from` and
 * now (history gone or a new epoch): those messages are excused. */
void ledger_member_break(int member, int64_t from_us);
/* The send time of the newest message the member received (its start if
 * none): a client that lags behind is current only up to there, and a
 * rejoin the server cannot recover loses what came after it. */
int64_t ledger_member_current_to(int member);
void ledger_member_touch(int member, uint32_t msg);

/* Compares every membership with every acknowledged message of its room
 * and fills the accounting fields of g_st. Prints up to `show` examples of
 * lost, duplicated and tail-missed deliveries, each followed by
 * describe(client, room). */
void ledger_account(int show, void (*describe)(uint32_t client, int room));

/* Latency of live deliveries (first delivery to a client, send to receive)
 * since the last call: count and percentiles in milliseconds. */
struct soak_lat {
    uint64_t n;
    double p50, p90, p99, max;
};
void ledger_latency_take(struct soak_lat *out);
uint64_t ledger_messages(void);

/* ---- client.c: the simulated clients ------------------------------------- */

struct client;

/* `slow`: the slow consumer (joins every room, never sends). */
struct client *client_new(uint32_t idx, bool slow);
void client_free(struct client *c);
/* The socket to poll for reading, or -1 (down, or stalled on purpose). */
int client_fd(const struct client *c);
/* Reads and handles everything available on the socket. */
void client_read(struct client *c);
/* Timers: connect, join, send, resend, room changes, history, deadlines. */
void client_tick(struct client *c, int64_t now);
/* Stop reading for `seconds` while asking for large history pages. */
void client_stall(struct client *c, double seconds);
bool client_is_up(const struct client *c);
/* Everything sent is acknowledged and every room is live. */
bool client_settled(const struct client *c);
/* Sends not acknowledged yet. */
int client_pending(const struct client *c);
/* Logs the client's state in a room (for the examples of losses). */
void client_describe(const struct client *c, int room);
/* Ends the client's memberships now (the end of the run). */
void client_end(struct client *c);

/* ---- report.c: time series (CSV) and the summary ------------------------- */

enum soak_fault { FAULT_BROKER, FAULT_GATEWAY, FAULT_REDIS_PAUSE, FAULT_REDIS_RESTART, FAULT_SLOW };

void report_open(void);
void report_fault(int kind, const char *desc);
/* The pid a supervisor wrote to <pids>/<name>.pid (0 when none). */
int report_pid(const char *name);
/* RSS of every process (every 10 s), and latency and acks (every minute). */
void report_sample_rss(void);
void report_minute(void);
void report_summary(double traffic_s);
/* No lost, duplicated or reordered message and every request answered. */
bool report_clean(void);
void report_close(void);

/* The run's phase, which the clients follow. */
enum soak_phase { PHASE_TRAFFIC, PHASE_DRAIN, PHASE_QUIET };
extern enum soak_phase g_phase;

#endif
