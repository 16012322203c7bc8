/* rproxy: a TCP proxy in front of a Redis server that can wedge the
 * subscriptions passing through it, for tests of what a broker notices.
 *
 * A wedged subscriber connection keeps answering everything (PING, SUBSCRIBE
 * confirmations) but no longer delivers published messages: what a client
 * sees when its subscription was silently lost, e.g. after a failover. The
 * proxy runs in a child process; the calls below talk to it over a pipe. */
#ifndef TEST_RPROXY_H
#define TEST_RPROXY_H

#include <sys/types.h>

struct rproxy {
    pid_t pid;
    int ctl;  /* commands to the proxy (write end of a pipe) */
    int ack;  /* its answers (read end of a pipe) */
    int port; /* where clients connect: 127.0.0.1:port */
};

/* Forwards 127.0.0.1:<new port> to 127.0.0.1:redis_port. 0 or -1. */
int rproxy_start(struct rproxy *p, int redis_port);
/* Wedges every subscriber connection open now (connections made later
 * deliver normally), and waits until the proxy has done it. */
int rproxy_wedge(struct rproxy *p);
/* The next connection to send a command holding `needle` (1-255 bytes) is
 * closed as soon as Redis answers anything on it, that answer dropped: the
 * command ran, and its client never hears of it. 0 or -1. */
int rproxy_cut_reply(struct rproxy *p, const char *needle);
/* How many published messages the proxy has swallowed so far, or -1. */
long rproxy_dropped(struct rproxy *p);
void rproxy_stop(struct rproxy *p); /* a stopped or zeroed proxy is fine */

#endif
