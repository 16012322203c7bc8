/* session_int: the session struct, shared by the two files of the session
 * module only (session.c: state and queue; sessio.c: the socket). Nothing
 * else includes it. */
#ifndef GW_SESSION_INT_H
#define GW_SESSION_INT_H

#include "session.h"
#include "tbucket.h"
#include "wsframe.h"

#define CLOSE_GRACE_S 3
#define QINLINE 2

struct session {
    struct conn_head head; /* must stay first */
    uint64_t id;
    /* lws mode (TLS): the connection. Own mode: the wsi it was handed over
     * from, until lws has closed it (reading starts then). */
    struct lws *wsi;
    int fd;               /* own mode: the socket; else -1 */
    uint8_t proto;        /* enum sess_proto */
    bool ping_due;        /* a ping frame goes out with the next write */
    bool no_output;       /* closing outside sess_close: write nothing more */
    bool close_sent;      /* own mode: our close frame is out (or in the tail) */
    bool peer_closed;     /* own mode: the client's close frame arrived */
    bool rx_broken;       /* own mode: a protocol error: input is discarded */
    bool rx_eof;          /* own mode: its FIN came before our answer was out: no input */
    bool out_armed;       /* own mode: waiting for room to write */
    bool ended;           /* own mode: the socket is closed; freed by the reaper */
    bool pong_owed;       /* our keep-alive ping is out and no pong came since */
    uint16_t rx_frames;   /* frames of the message being received (sess_rx) */
    struct cf_rel_end rooms;
    struct req *reqs; /* requests waiting for a broker's answer (reqs.h) */
    uint32_t nreqs;
    uint32_t held; /* bytes held for its pending joins, all rooms (lrooms.c) */
    /* outbound ring of shared buffers: a few slots inline, so that the usual
     * one-or-two queued frames cost no allocation; grown on the heap beyond */
    struct cf_buf **q;
    uint32_t qhead, qlen, qcap;
    struct cf_buf *qinline[QINLINE];
    uint32_t qbytes, qmax; /* MAX_CLIENT_QUEUE_BYTES is at most 64 MiB */
    /* keep-alive (sess_keepalive): last frame from the client, and the ping
     * waiting for its answer (0: none); once closing (own mode) ping_ms is
     * the deadline of the close: no more pings go out then */
    int64_t seen_ms, ping_ms;
    uint32_t dirty; /* 1 + index in the dirty list, 0 when not there */
    /* pending close */
    int close_code;
    const char *close_reason; /* a static string (sess_close) */
    /* RATE_MSGS: the requests budget, and the refusals budget */
    struct cf_tbucket rate, refusals;
    /* inbound reassembly */
    unsigned char *rx;
    uint32_t rxlen, rxcap; /* MAX_MESSAGE_BYTES is at most 64 KiB */
    /* own mode: the frame parser, the unsent end of a short send, and the
     * payload of the pong due (latest ping only: pings are coalesced) */
    struct wsf_rx wsf;
    unsigned char *tail;
    uint32_t tail_len, tail_off;
    unsigned char *pong; /* NULL: none due */
    uint8_t pong_len;
    uint8_t resynced; /* re-sync answers it was given (wraps; sess_resynced) */
    struct session *prev, *next;
    struct session *reap_next; /* ended, waiting for sess_reap */
    char user[]; /* as long as the name: an idle connection's bytes count */
};

/* session.c, for sessio.c */
void sess__queue_release(struct session *s);
/* Back to the inline slots; the queue must be empty. */
void sess__queue_shrink(struct session *s);
void sess__undirty(struct session *s);
void sess__dequeue(struct session *s);
void sess__kick(struct session *s); /* write at the end of this pass */
extern struct sess_counters sess__counters;

/* sessio.c, for session.c */
int sess__write_batch(struct session *s); /* -1: the connection failed */
void sess__end(struct session *s);        /* own mode: close the socket now */
void sess__want_out(struct session *s);   /* own mode: something is due */
/* Has the gateway's loop come round at mono_us (wsio_wake_at). 0, or -errno
 * when there is no epoll set to wake it (a TLS-only gateway has none): the
 * caller then falls back to an lws timer. */
int sess__wake_at(int64_t mono_us);

#endif
