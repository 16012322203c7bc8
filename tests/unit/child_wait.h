/* child_wait: the end of a unit test's forked child, with a deadline. A child
 * that hangs (a bug in the code under test) fails its test with a message
 * within seconds, instead of blocking it until ctest's timeout kills the
 * whole executable and every later test of the file with it. Include after
 * cmocka.h. */
#ifndef TESTS_CHILD_WAIT_H
#define TESTS_CHILD_WAIT_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Long enough for a loaded CI machine; the children here do microseconds of
 * work. */
#define CHILD_WAIT_MS 10000

/* How child pid ended, as waitpid() reports it, within CHILD_WAIT_MS.
 * Returns -1 with errno set if waitpid() fails; -2 if the child was still
 * running at the deadline (it is killed and reaped, and stderr says so).
 * Usable in a child of the test, without cmocka. */
static inline int child_wait_status(pid_t pid, int *status)
{
    struct timespec now, pause = {.tv_sec = 0, .tv_nsec = 2 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long end = now.tv_sec * 1000LL + now.tv_nsec / 1000000 + CHILD_WAIT_MS;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec * 1000LL + now.tv_nsec / 1000000 >= end)
            break;
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "child %d still running after %d ms of waiting: killed\n", (int)pid,
            CHILD_WAIT_MS);
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return -2;
}

/* The exit code of child pid; fails the test if the child hung, was killed by
 * a signal or could not be waited for. */
static inline int child_wait_exit(pid_t pid)
{
    int st = 0;
    int r = child_wait_status(pid, &st);
    if (r == 0 && WIFSIGNALED(st))
        fprintf(stderr, "child %d killed by signal %d\n", (int)pid, WTERMSIG(st));
    assert_int_equal(r, 0);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

#endif
