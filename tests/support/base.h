/* base: what the rest of the test support stands on, the test process's
 * temporary directory and its clock. It depends on nothing else here, so
 * proc (the processes a test starts) and harness (the nodes and Redis
 * servers made of them) can both use it without depending on each other. */
#ifndef TEST_BASE_H
#define TEST_BASE_H

#include <stdint.h>

/* A fresh directory for this test process (removed at exit unless the
 * environment variable CONFAB_KEEP_TEST_DIRS is set). The first call makes
 * it, and makes the process ignore SIGPIPE (a test writes to sockets its
 * servers may have closed). */
const char *h_tmpdir(void);
/* Milliseconds on the monotonic clock. */
int64_t h_now_ms(void);
/* Sleeps ms milliseconds, through any signal. */
void h_sleep_ms(int ms);

#endif
