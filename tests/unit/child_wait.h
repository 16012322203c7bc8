/* child_wait: the end of a unit test's forked child, with a deadline. A child
 * that hangs (a bug in the code under test) fails its test with a message
 * within seconds, instead of blocking it until ctest's timeout kills the
 * whole executable and every later test of the file with it. Include after
 * cmocka.h. */
#ifndef TESTS_CHILD_WAIT_H
#define TESTS_CHILD_WAIT_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Long enough for a loaded CI machine; the children here do microseconds of
 * work. */
#define CHILD_WAIT_MS 10000

/* Waits up to ms for child pid to end (WNOHANG polls). 0: ended, *status
 * set; -1: waitpid() failed (errno set); -2: still there at the deadline. */
static inline int child_wait_for(pid_t pid, int *status, int ms)
{
    struct timespec now, nap = {.tv_sec = 0, .tv_nsec = 2 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long end = now.tv_sec * 1000LL + now.tv_nsec / 1000000 + ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec * 1000LL + now.tv_nsec / 1000000 >= end)
            return -2;
        nanosleep(&nap, NULL);
    }
}

/* Kills child pid and reaps it, waiting at most CHILD_WAIT_MS more: one stuck
 * in the kernel can outlive SIGKILL, and is then left unreaped. */
static inline void child_wait_kill(pid_t pid, int *status)
{
    kill(pid, SIGKILL);
    if (child_wait_for(pid, status, CHILD_WAIT_MS) == -2)
        fprintf(stderr, "child %d still there %d ms after SIGKILL: left unreaped\n", (int)pid,
                CHILD_WAIT_MS);
}

/* How child pid ended, as waitpid() reports it, within ms. Returns -1 with
 * errno set if waitpid() fails; -2 if the child was still running at the
 * deadline (it is killed and reaped, and stderr says so). Usable in a child of
 * the test, without cmocka: give a grandchild less time than the test gives
 * its child, so the child is there to report it. */
static inline int child_wait_status(pid_t pid, int *status, int ms)
{
    int r = child_wait_for(pid, status, ms);
    if (r == -1)
        fprintf(stderr, "waitpid(%d) failed: %s\n", (int)pid, strerror(errno));
    if (r != -2)
        return r;
    fprintf(stderr, "child %d still running after %d ms of waiting: killed\n", (int)pid, ms);
    child_wait_kill(pid, status);
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
    int st;
    child_wait_kill(pid, &st);
    fail_msg("child %d wrote nothing in %d ms: killed", (int)pid, CHILD_WAIT_MS);
}

#endif
