/* proc: one process a test started: spawned with a scrubbed environment and
 * its output in a log file (in base.h's h_tmpdir), signals remembered as
 * the test's own, reaped with a report of any death the test did not cause,
 * stopped (with its descendants when it has to be killed), its log
 * searched, its /proc entries read.
 *
 * Every wait here has a deadline, the reaping of a process just sent
 * SIGKILL included. */
#ifndef TEST_PROC_H
#define TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct h_proc {
    pid_t pid; /* < 0: reaped by h_alive; 0: reaped (or lost) by h_stop or h_wait_exit */
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
/* How long h_stop waits for a process it has sent SIGKILL to be reaped. */
#define H_KILL_REAP_MS 10000

/* Sends sig and waits up to timeout_ms for the exit; then SIGKILLs it and
 * its descendants and reaps it. Returns the wait status, or -1 when the
 * process was not running or had to be killed. One still there
 * H_KILL_REAP_MS after the SIGKILL (stuck in the kernel) is left, said on
 * stdout and counted: h_finish then fails the test. */
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
 * test had sent it none (SIGSTOP and SIGCONT aside), that is recorded (and
 * printed) for h_stop_clean and h_death_report: a crash must not pass for a
 * test's kill. */
bool h_alive(struct h_proc *p);
/* A field of /proc/<pid>/status given in kB ("VmRSS:", "VmHWM:"), or -1. */
long h_status_kib(pid_t pid, const char *field);
/* When h_alive recorded such a death: writes how it died into `how` and
 * returns true, once (the caller fails the test). */
bool h_death_report(struct h_proc *p, char *how, size_t cap);
/* Waits up to timeout_ms for the process to exit by itself; returns the wait
 * status, or -1 on timeout or when it is no longer there to reap (reaped
 * already, or waitpid failed). */
int h_wait_exit(struct h_proc *p, int timeout_ms);
/* For a child of this process that is not an h_proc (a test's own fork):
 * waits up to timeout_ms to reap it. Its wait status; -1 when it is not (or
 * no longer) this process's child; -2 when it was still there at the
 * deadline. */
int h_reap(pid_t pid, int timeout_ms);
/* Reaps pid, just sent SIGKILL, within H_KILL_REAP_MS, as h_stop does: one
 * still there then is left, said on stdout (with its log, when not NULL)
 * and counted, and h_finish fails the test. Returns what h_reap did. */
int h_reap_killed(pid_t pid, const char *name, const char *log);
/* A wait status in words ("exited with status 1", "was killed by signal 9
 * (Killed)"); -1 reads "did not exit in time and was killed". */
void h_describe_status(int status, char *buf, size_t cap);
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

/* h_stop with SIGTERM, then checks: returns 1 (and prints why, with the
 * log's tail) for a process that did not exit with status 0, whose log shows
 * a sanitizer report, that h_alive found dead of a cause the test did not
 * give (see there), or a supervisor whose log shows a child killed by a
 * signal and restarted, unless kills_children is set; else 0. One the test
 * stopped itself passes. */
int h_stop_clean(struct h_proc *p);
/* What a test's main returns: cmocka's result, made a failure also when any
 * process failed h_stop_clean's checks (cmocka 1.1 ignores failed
 * teardowns) or outlived h_stop's SIGKILL. */
int h_finish(int cmocka_rc);

#endif
