/* child_wait: the end of a unit test's forked child, with a deadline. A child
 * that hangs (a bug in the code under test) fails its test with a message
 * within seconds, instead of blocking it until ctest's timeout kills the
 * whole executable and every later test of the file with it. The waits are
 * the test support's (proc.h: h_reap, h_reap_killed); a suite that includes
 * this links confab_testsupport. Include after cmocka.h. */
#ifndef TESTS_CHILD_WAIT_H
#define TESTS_CHILD_WAIT_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "proc.h"

/* Long enough for a loaded CI machine; the children here do microseconds of
 * work. */
#define CHILD_WAIT_MS 10000

/* Kills child pid and reaps it, within H_KILL_REAP_MS: one stuck in the
 * kernel can outlive SIGKILL, and is then left unreaped (h_reap_killed says
 * so). */
static inline void child_wait_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    h_reap_killed(pid, "child", NULL);
}

/* How child pid ended, as waitpid() reports it, within ms. Returns 0 with
 * *status set; -1 if waitpid() fails (stderr says why); -2 if the child was
 * still running at the deadline (it is killed and reaped, and stderr says
 * so). Usable in a child of the test, without cmocka: give a grandchild less
 * time than the test gives its child, so the child is there to report it. */
static inline int child_wait_status(pid_t pid, int *status, int ms)
{
    int r = h_reap(pid, ms);
    if (r >= 0) {
        *status = r;
        return 0;
    }
    if (r == -1) {
        fprintf(stderr, "waitpid(%d) failed: %s\n", (int)pid, strerror(errno));
        return -1;
    }
    fprintf(stderr, "child %d still running after %d ms of waiting: killed\n", (int)pid, ms);
    child_wait_kill(pid);
    return -2;
}

/* The exit code of child pid; fails the test if the child hung (past
 * CHILD_WAIT_MS), was killed by a signal or could not be waited for. */
static inline int child_wait_exit(pid_t pid)
{
    int st = 0;
    int r = child_wait_status(pid, &st, CHILD_WAIT_MS);
    if (r == 0 && WIFSIGNALED(st))
        fprintf(stderr, "child %d killed by signal %d\n", (int)pid, WTERMSIG(st));
    assert_int_equal(r, 0);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* Waits up to CHILD_WAIT_MS for fd, a pipe child pid writes, to have bytes
 * (or its writers gone); if it has none by then, kills and reaps the child
 * and fails the test. A blocking read() would wait for a hung child forever:
 * it holds the pipe's write end. */
static inline void child_wait_readable(int fd, pid_t pid)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, CHILD_WAIT_MS)) < 0 && errno == EINTR)
        ;
    if (r == 1)
        return;
    child_wait_kill(pid);
    fail_msg("child %d wrote nothing in %d ms: killed", (int)pid, CHILD_WAIT_MS);
}

#endif
