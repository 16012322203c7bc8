/* supervisor: run N copies of a worker in child processes and keep them alive.
 *
 * The calling process becomes a small master: it forks `n` children that each
 * run child_main(index, arg) and exit with its return value; a child that dies
 * is restarted after a backoff (reset once it has run for 10 s). SIGTERM or
 * SIGINT is forwarded to every child; the master waits up to grace_ms for them
 * to exit, then SIGKILLs the rest, and returns 0, or CF_SUP_EXIT_CUT_SHORT
 * when a child had to be killed or died some other way than exiting cleanly
 * meanwhile (a service manager, a container runtime or run-all can then
 * tell a drain cut short from a clean stop). A child that exits with
 * CF_SUP_EXIT_CONFIG cannot work with these settings (a key file it cannot
 * use, say): restarting would only repeat it, so every child is stopped and
 * cf_sup_run returns CF_SUP_EXIT_CONFIG. Children get SIGTERM if the
 * master dies (PR_SET_PDEATHSIG), so nothing is left behind.
 *
 * With watchdog_s > 0 and no service manager listening (no NOTIFY_SOCKET),
 * the master is the children's watchdog, as systemd is under WatchdogSec=:
 * each child gets NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (so sd_notify
 * and sd_watchdog_enabled work unchanged), and one that sends no WATCHDOG=1
 * for watchdog_s seconds is stuck: it gets SIGABRT, SIGKILL 5 s later if it
 * is still there, and is restarted like any child that died. A container's
 * probes reach one process of several; this reaches all of them.
 *
 * Used when GATEWAY_WORKERS > 1 and when confab-broker runs every shard. */
#ifndef CF_SUPERVISOR_H
#define CF_SUPERVISOR_H

#define CF_SUP_EXIT_CONFIG 2
/* Stopped as asked, but not every child cleanly (one was killed at the
 * grace's end, or died meanwhile): a drain cut short, not a crash to
 * restart after. */
#define CF_SUP_EXIT_CUT_SHORT 3

typedef int (*cf_sup_main_fn)(int index, void *arg);

/* `what` names the workers in log lines ("gateway worker", "broker shard"). */
int cf_sup_run(const char *what, int n, cf_sup_main_fn child_main, void *arg, int grace_ms,
               int watchdog_s);

#endif
