/* startup: what confab-gateway and confab-broker do the same way before
 * their own start-up, so that both answer --version, --help and a bad
 * configuration alike.
 *
 * Each program keeps its own getopt_long loop and option table (they differ)
 * and hands the options both share to cf_start_option. */
#ifndef CF_STARTUP_H
#define CF_STARTUP_H

#include <stdio.h>

#include "config.h"

/* The options every program takes: give them these values in its table. */
#define CF_START_OPT_VERSION 'V'
#define CF_START_OPT_HELP 'h'

/* For getopt_long's result `opt` that is not one of the program's own:
 * --version prints "`prog` VERSION", --help the usage on stdout (exit 0);
 * anything else is an unknown option: the usage on stderr (exit 2). Returns
 * the status the program should exit with. */
int cf_start_option(int opt, const char *prog, void (*usage)(FILE *out));

/* Refuses arguments left after the options (argv[optind] on): says which on
 * stderr and returns -1; 0 if there are none. */
int cf_start_no_args(const char *prog, int argc, char **argv, int optind);

/* Names the process `process` in the log, loads the configuration into *cfg
 * and applies its log settings. A bad configuration has been reported
 * variable by variable by cf_config_load; this adds that `prog` does not
 * start and returns -1.
 *
 * From its call on, SIGTERM and SIGINT are held (blocked, also in the
 * processes it forks) until the program's loop takes them: the broker's
 * sd-event, or the gateway's handler. A stop asked for while the process
 * starts (checking its ports can take 2 s) then ends it cleanly once its
 * loop runs, instead of killing it half set up. */
int cf_start_config(const char *prog, const char *process, struct cf_config *cfg);
/* Lets SIGTERM and SIGINT through again, once the caller's handler for them
 * is installed; one held meanwhile is delivered now. */
void cf_start_release_signals(void);

/* The units' LimitNOFILE (deploy/systemd): how far cf_start_raise_files goes. */
#define CF_START_FILES_CAP 262144

/* Raises the soft limit on open files towards the hard one, up to
 * CF_START_FILES_CAP: each connection is a descriptor, and a container
 * runtime (or a shell) may start the process at a soft 1024 under a far
 * higher hard limit, which it may raise itself. Logs a warning when the
 * limit it ends with is under `want` (what a process of this kind should
 * have), saying what to raise. */
void cf_start_raise_files(const char *process, unsigned long want);

/* Ports are bound with SO_REUSEPORT (the gateway's workers share PORT), so
 * a process of the same user left running on one (started by hand, or by
 * another checkout's `make run-all`) would not make a bind fail: the two
 * would silently share its connections. Checks that nothing listens on
 * addr:port, waiting up to CF_START_PORT_WAIT_MS for a predecessor that is
 * stopping; otherwise logs which port (`setting` names it) and how to find
 * its holder, and returns -1. A check, not a lock: two processes started
 * at the same moment both pass it. 0 also when it cannot tell (the bind
 * itself then reports). */
#define CF_START_PORT_WAIT_MS 2000
int cf_start_port_free(const char *setting, const char *addr, int port);

#endif
