/* harness: run the real confab binaries and a real redis-server for
 * integration tests: temporary directories, free ports, processes with
 * their own environment and log files, readiness polling.
 *
 * Every wait here polls with a deadline; nothing sleeps a fixed time hoping
 * that something happened. */
#ifndef TEST_HARNESS_H
#define TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define H_JWT_SECRET "integration-test-secret-0123456789abcdef"
#define H_MAX_ENV 24

struct h_proc {
    pid_t pid; /* < 0: reaped by h_alive; 0: reaped by h_stop or h_wait_exit */
    char name[48];
    char log[512];
    /* Signals sent through h_kill or h_stop (bit sig - 1): dying of one of
     * them, or exiting after any of them (SIGSTOP and SIGCONT aside), is the
     * test's doing. */
    unsigned long long sent;
    int status;          /* the wait status h_alive reaped */
    bool died;           /* h_alive reaped a death the test did not cause */
    bool kills_children; /* set after the start by a test that kills or aborts this
                            supervisor's children on purpose: their restarts are
                            expected (h_spawn clears it) */
};

/* A fresh directory for this test process (removed at exit unless the
 * environment variable CONFAB_KEEP_TEST_DIRS is set). */
const char *h_tmpdir(void);
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
int64_t h_now_ms(void);
void h_sleep_ms(int ms);

/* For a child just forked from `parent` (the caller's getpid() before the
 * fork): it is killed when the test process dies, even of an abort, instead
 * of running on. Exits the child at once when that cannot be arranged or
 * the parent is already gone. Reaches only this child, not its own
 * children: a test that spawns a script stops it in a teardown too. */
void h_die_with_parent(pid_t parent);

/* Starts argv with the current environment plus `env` ("K=V" strings, NULL
 * terminated) in directory `cwd`; output goes to <tmpdir>/<name>.log. Every
 * confab setting, and what a service manager passes (NOTIFY_SOCKET,
 * WATCHDOG_*, LISTEN_*, JOURNAL_STREAM), is removed from the inherited
 * environment first: pass them in `env` (or a node's extra_env). */
int h_spawn(struct h_proc *p, const char *name, const char *cwd, char *const argv[],
            const char *const env[]);
/* Sends sig and waits up to timeout_ms for the exit; then SIGKILLs it and
 * its descendants. Returns the wait status, or -1 when the process was not
 * running or had to be killed. */
int h_stop(struct h_proc *p, int sig, int timeout_ms);
/* pid's child processes (its main thread's, from /proc), at most cap of
 * them; how many. */
int h_children(pid_t pid, pid_t *out, int cap);
/* pid's soft and hard limits on open files (/proc/PID/limits); 0 when
 * unreadable. */
void h_files_limit(pid_t pid, unsigned long *soft, unsigned long *hard);
/* kill(2), remembered as the test's: see h_alive. */
int h_kill(struct h_proc *p, int sig);
/* Whether it runs. One that is gone is reaped; when it died of a signal the
 * test did not send through h_kill or h_stop, or exited non-zero when the
 * test had sent it none (SIGSTOP and SIGCONT aside), that is recorded (and printed) for h_stop_clean
 * and h_death_report: a crash must not pass for a test's kill. */
bool h_alive(struct h_proc *p);
/* A field of /proc/<pid>/status given in kB ("VmRSS:", "VmHWM:"), or -1. */
long h_status_kib(pid_t pid, const char *field);
/* When h_alive recorded such a death: writes how it died into `how` and
 * returns true, once (the caller fails the test). */
bool h_death_report(struct h_proc *p, char *how, size_t cap);
/* Waits up to timeout_ms for the process to exit by itself; returns the wait
 * status or -1 on timeout. */
int h_wait_exit(struct h_proc *p, int timeout_ms);
/* Prints the last lines of the process log to stdout (shown by ctest on
 * failure). */
void h_dump_log(const struct h_proc *p, int lines);
/* True once the log contains `needle` (polls until timeout_ms). */
bool h_log_contains(const struct h_proc *p, const char *needle, int timeout_ms);
/* The log's current size, and the same search limited to what was written
 * after such a mark. */
long h_log_mark(const struct h_proc *p);
bool h_log_contains_from(const struct h_proc *p, long mark, const char *needle, int timeout_ms);
/* How many lines written after `mark` contain `needle`. */
int h_log_count_from(const struct h_proc *p, long mark, const char *needle);

/* A private redis-server on a Unix socket in `dir` and a TCP port on
 * 127.0.0.1 (or the loopback address h_redis_start_at gives). */
struct h_redis {
    struct h_proc proc;
    int port;
    char ip[16];       /* what it binds to */
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
    int health_port; /* where h_node_start polls /healthz over plain HTTP (0: port); a
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
/* Stops every process of the node with SIGTERM. Returns the number of
 * processes that did not exit with status 0 or whose log shows a sanitizer
 * report (each is printed), so a teardown can fail on them. */
int h_node_stop(struct h_node *n);
/* h_stop with SIGTERM, then the same checks for one process. Also fails a
 * process h_alive found dead of a cause the test did not give (see there),
 * and a supervisor whose log shows a child killed by a signal and restarted,
 * unless kills_children is set. One the test stopped itself passes. */
int h_stop_clean(struct h_proc *p);
/* What a test's main returns: cmocka's result, made a failure also when any
 * process failed the checks above (cmocka 1.1 ignores failed teardowns). */
int h_finish(int cmocka_rc);
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
