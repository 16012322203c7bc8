/* harness: run the real confab binaries and a real redis-server for
 * integration tests: free ports, Redis servers and nodes started as
 * processes (proc.h), readiness polling. The temporary directory and the
 * clock are base.h's.
 *
 * Every wait here polls with a deadline; nothing sleeps a fixed time hoping
 * that something happened. */
#ifndef TEST_HARNESS_H
#define TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base.h"
#include "proc.h"

#define H_JWT_SECRET "integration-test-secret-0123456789abcdef"
#define H_MAX_ENV 24

/* Path of a built binary: "gateway" or "broker". */
const char *h_bin(const char *which);
/* The repository root (for scripts and the frontend). */
const char *h_source_dir(void);
/* A TCP port on 127.0.0.1 that was free a moment ago, picked at random
 * outside the kernel's ephemeral range when there is room, so that no
 * outgoing connection of a test running in parallel can take it before the
 * server binds it. */
int h_free_port(void);
/* The first of n consecutive TCP ports on 127.0.0.1 that were free a moment
 * ago (for settings that mean "this port + index"). */
int h_free_ports(int n);

/* A private redis-server on a Unix socket in `dir` and a TCP port on
 * 127.0.0.1 (or the loopback address h_redis_start_at gives). */
struct h_redis {
    struct h_proc proc;
    int port;
    char ip[16]; /* what it binds to */
    char sock[300];
    char addr[310];    /* "unix:<sock>", for REDIS_ADDR */
    char tcp_addr[32]; /* "<ip>:<port>", the same server over TCP */
};
int h_redis_start(struct h_redis *r, const char *dir);
/* Starts n servers, each in <tmpdir>/r<i>, and writes their REDIS_ADDR list
 * ("unix:...,unix:...") to list. */
int h_redis_start_list(struct h_redis *r, int n, char *list, size_t cap);
/* One bound to `ip` (a loopback address such as 127.0.0.2) and `port`: two
 * servers can then share a port, as behind a host name that moves. */
int h_redis_start_at(struct h_redis *r, const char *dir, const char *ip, int port);
/* Starts it again (after a stop) on the same socket path and TCP port, so
 * that a REDIS_ADDR naming either still reaches it. */
int h_redis_restart(struct h_redis *r, const char *dir);
void h_redis_stop(struct h_redis *r);
/* Runs one command with redis-cli against it; returns its exit status. */
int h_redis_cli(const struct h_redis *r, const char *const args[]);
/* Runs one command whose answer is an integer (LLEN, PTTL, ...) and returns
 * it, or INT64_MIN when redis-cli failed or answered something else. The
 * arguments must not contain a single quote. */
int64_t h_redis_int(const struct h_redis *r, const char *const args[]);

/* One node: `brokers` broker processes (one per shard) and one gateway
 * process running `workers` workers on `port`, sockets in run_dir. */
struct h_node {
    char run_dir[300];
    int port;
    int brokers, workers;
    const char *redis_addr;
    const char *extra_env[H_MAX_ENV]; /* more "K=V" settings, NULL terminated */
    struct h_proc broker[16];
    struct h_proc gateway;
    const char *gateway_name; /* the gateway's log name, or NULL: "<run dir>-gateway" */
    int health_port;          /* where h_node_start polls /healthz over plain HTTP (0: port); a
                                 TLS node sets its METRICS_PORT here */
};
/* Adds LD_PRELOAD=lib to the node's extra_env, with the ASAN_OPTIONS an
 * ASan build then needs (the shim comes ahead of the sanitizers' runtime).
 * The strings live until the process exits. */
void h_node_preload(struct h_node *n, const char *lib);
/* Fills defaults (2 brokers, 1 worker, a fresh run dir and port). */
void h_node_init(struct h_node *n, const char *redis_addr);
/* Starts everything and waits until /healthz answers 200. */
int h_node_start(struct h_node *n);
int h_broker_start(struct h_node *n, int shard);
int h_gateway_start(struct h_node *n);
/* Stops every process of the node with h_stop_clean. Returns the number of
 * processes that failed its checks, so a teardown can fail on them. */
int h_node_stop(struct h_node *n);
void h_node_dump_logs(const struct h_node *n);

/* The usual test fixture: a private Redis and one node using it. `env` holds
 * extra "K=V" settings for the node (NULL terminated) or is NULL. */
struct h_fixture {
    struct h_redis redis;
    struct h_node node;
};
int h_fixture_up(struct h_fixture *f, const char *const env[]);
/* Resumes Redis, the gateway process and each broker (a test may have
 * stopped one with SIGSTOP; a gateway's forked workers are not resumed),
 * dumps the node's logs (shown on failure), stops it with the clean-exit
 * checks, stops Redis. Returns 0 or -1. */
int h_fixture_down(struct h_fixture *f);

/* Polls GET /healthz until it answers `status` (200 or 503). */
int h_wait_health(int port, int status, int timeout_ms);

#endif
