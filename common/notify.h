/* notify: telling systemd how a service is doing (sd_notify). Every call is a
 * no-op when the process was not started by systemd with Type=notify (no
 * NOTIFY_SOCKET), so the daemons call these unconditionally. */
#ifndef CF_NOTIFY_H
#define CF_NOTIFY_H

#include <stdint.h>

/* READY=1 with a STATUS line: the service can serve. */
void cf_notify_ready(const char *status);
__attribute__((format(printf, 1, 2))) void cf_notify_status(const char *fmt, ...);
/* STOPPING=1: shutting down (a drain may follow). A drain that may take
 * `within_usec` (0: none to announce) asks the service manager for that
 * long (EXTEND_TIMEOUT_USEC), so that a drain longer than the unit's
 * TimeoutStopSec is not cut short by a SIGKILL. */
void cf_notify_stopping(const char *status, uint64_t within_usec);
/* WATCHDOG=1: call from the event loop, so a stuck loop stops the pings. */
void cf_notify_watchdog(void);
/* How often to send WATCHDOG=1, in microseconds (half of WATCHDOG_USEC), or
 * 0 when systemd asked for no watchdog. */
uint64_t cf_notify_watchdog_interval_usec(void);

#endif
