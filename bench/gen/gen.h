/* gen: the state of one confab-bench run, shared by its files.
 *
 * One process, one thread, one epoll loop. Connections live in one array
 * indexed by their local index (global index - index_offset); the epoll data
 * of a connection is that index, of the pacing timer GEN_TIMER_TAG. Every
 * receive goes through one 64 KiB read() into the shared buffer `rbuf`,
 * frames are parsed in place, and only a partial frame left at the end of a
 * read is copied (into the connection's `in`). Output is appended to the
 * connection's bounded `out` buffer and written once per loop pass. */
#ifndef BENCH_GEN_H
#define BENCH_GEN_H

#include "hist.h"
#include "msgtext.h"
#include "seqwin.h"
#include "step.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_MAX_CONNS 19900u          /* the fd hard limit is 20000 */
#define GEN_READ_SIZE (64u * 1024)    /* bytes per read() */
#define GEN_MAX_FRAME (1024u * 1024)  /* largest server message accepted */
#define GEN_OUT_CAP (64u * 1024)      /* bound of one connection's pending output */
#define GEN_MAX_MSG 16384u            /* largest --msg-bytes */
#define GEN_TIMER_TAG UINT32_MAX
#define GEN_HANDSHAKE_TIMEOUT_NS (30ull * 1000000000ull)
#define GEN_JOIN_TIMEOUT_NS (30ull * 1000000000ull)

typedef struct gen_opts {
    const char *url, *secret;
    uint32_t conns, rooms, publishers;
    double rates[64];
    int nrates;
    double step_s, drain_s, stop_loss, stop_p99_ms;
    uint32_t msg_bytes;
    double connect_rate;
    uint32_t inflight;
    double hold_s; /* < 0: not in idle mode */
    uint32_t index_offset;
    uint32_t src_lo, src_hi; /* last octets of 127.0.0.x */
    int json;
    int no_join; /* storm: count the handshake, join nothing */
    int rerun_late; /* --rerun-late-steps: a step_only_late step runs once more */
    const char *dump; /* --dump FILE: one line per delivery in a step (dump.h) */
    uint64_t start_at; /* --start-at: CLOCK_MONOTONIC ns to begin connecting at, 0: now */
} gen_opts;

enum conn_state {
    CS_NONE = 0,   /* not opened yet */
    CS_CONNECTING, /* connect() in progress */
    CS_UPGRADING,  /* request sent, waiting for the 101 */
    CS_JOINING,    /* open, join sent */
    CS_JOINED,     /* "joined" received: a member of its room */
    CS_OPEN,       /* --no-join: open, in no room */
    CS_CLOSED
};

typedef struct conn {
    int fd;
    uint32_t gidx; /* global index: sender id and name bench-<gidx> */
    uint32_t room;
    uint8_t state;
    uint8_t out_armed; /* EPOLLOUT registered */
    uint8_t dirty;     /* in the dirty list */
    uint8_t closing;   /* close once out is flushed */
    uint8_t frag_op;   /* opcode of a fragmented message being reassembled */
    uint64_t t0;       /* connect() start (then join sent), CLOCK_MONOTONIC ns */
    uint8_t *out;
    uint32_t out_len, out_cap;
    uint8_t *in; /* partial frame carried to the next read, or the 101 answer */
    uint32_t in_len, in_cap;
    uint8_t *frag; /* fragments of one message */
    uint32_t frag_len, frag_cap;
    sw_pair *pairs; /* per sender of its room, indexed by sender / rooms (seqwin.h) */
    uint32_t npairs;
    uint32_t seq;  /* last seq this connection published */
    uint32_t seq0; /* its seq when the current (or last) step began */
    char accept[29];
} conn;

typedef struct gen {
    gen_opts o;
    int ep, tfd;
    struct sockaddr_in dst;
    char host[64];
    char path[256];
    conn *c;
    uint32_t n;
    uint32_t *members; /* per room: connections in CS_JOINED */
    uint64_t now;      /* CLOCK_MONOTONIC ns, refreshed every loop pass and after every read() */
    uint64_t rng;
    uint8_t *rbuf;
    /* set-up */
    uint32_t next_open, inflight, connected, connect_errors, joining, joined, join_errors;
    uint64_t bad_status[6]; /* upgrade refused, by status class (0: unreadable) */
    uint64_t t_setup0, t_last_handshake;
    double setup_cpu; /* cores, over connecting and joining alone */
    bh_hist hs;       /* handshake ns */
    /* publishing */
    step_stats *cur; /* NULL outside a step */
    uint32_t *pubs, npubs, pub_rr;
    uint64_t step_t0, scheduled;
    int sending;
    /* output */
    uint32_t *dirty, ndirty;
    /* totals over the run */
    uint64_t bad_frames, foreign, closed_total, server_closes, bytes_in;
    uint64_t outside_steps, setup_errors; /* messages / errors between steps */
    /* connections the server closed and error events it sent outside any step
     * (while connecting, or between steps): the next step counts them, so a
     * ramp never runs on with fewer receivers than it says without failing */
    uint64_t closed_unstepped, errors_unstepped;
    uint32_t pub_lo, pub_hi; /* global indices of the publishers: [lo, hi) */
    struct {
        char code[24];
        uint64_t count;
    } err_codes[8]; /* server error events by "code" (the first 8 codes seen) */
    struct gen_dump *dump; /* --dump, or NULL (dump.h) */
} gen;

/* main.c (tests/unit/test_bench.c has its own: a clock it sets) */
uint64_t gen_clock(void);
uint32_t gen_rand(gen *g);

/* conn.c */
/* Opens connection i (socket, bind, non-blocking connect). */
void conn_open(gen *g, uint32_t i);
/* Handles epoll events on connection i. */
void conn_event(gen *g, uint32_t i, uint32_t events);
/* Appends a masked frame; returns 0, or -1 when it does not fit under
 * GEN_OUT_CAP (nothing appended). */
int conn_send(gen *g, conn *c, int opcode, const uint8_t *p, size_t n);
/* Writes every dirty connection's output once. */
void conn_flush_all(gen *g);
/* Closes the connection now (why: counted by the caller's state). */
void conn_close(gen *g, conn *c);
/* Checks set-up deadlines (handshake, join) of every connection. */
void conn_check_timeouts(gen *g);

/* account.c */
/* Sets up the per-sender state of every connection (after options). */
int acct_init(gen *g);
/* A whole text message received on c at time g->now. */
void acct_on_message(gen *g, conn *c, const uint8_t *p, size_t n);
/* Starts a step at rate msg/s: resets counters, picks the publishers. */
void acct_step_begin(gen *g, step_stats *st, double rate);
/* Publishes what is due at g->now, round robin over the publishers. */
void acct_publish_due(gen *g);
/* Ends the current step (after its drain): counts what each pair lost and
 * the run's set-up errors into it; g->cur is NULL after. Not judged here. */
void acct_step_end(gen *g);

/* report.c */
void report_print(const gen *g, const step_stats *steps, int nsteps, double gen_cpu_total,
                  double capacity);

#endif
