/* Unit tests for common/cpusched against the real kernel: each case runs in
 * a child process, so the runner keeps its own policy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <unistd.h>

#include "child_wait.h"
#include "cpusched.h"

/* Run in a child: starts under `start`, applies want, and returns 0 when the
 * result is 0 and both the child and a process it forks afterwards (as the
 * supervisor forks workers) run under `expect`; another value says which
 * step failed. */
static int child_case(int start, bool want, int expect)
{
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(0, start, &sp) < 0)
        return 10;
    if (cf_cpusched_apply(want) != 0)
        return 11;
    if (sched_getscheduler(0) != expect)
        return 12;
    pid_t pid = fork(); /* what the supervisor's workers get */
    if (pid == 0)
        _exit(sched_getscheduler(0) == expect ? 0 : 13);
    int st;
    if (pid < 0 || child_wait_status(pid, &st, CHILD_WAIT_MS / 2) != 0 || !WIFEXITED(st))
        return 14;
    return WEXITSTATUS(st);
}

static int run_case(int start, bool want, int expect)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_case(start, want, expect));
    assert_true(pid > 0);
    return child_wait_exit(pid);
}

static void test_other_becomes_batch(void **state)
{
    (void)state;
    assert_int_equal(run_case(SCHED_OTHER, true, SCHED_BATCH), 0);
}

static void test_off_keeps_other(void **state)
{
    (void)state;
    assert_int_equal(run_case(SCHED_OTHER, false, SCHED_OTHER), 0);
}

/* An operator's choice wins: a process started under SCHED_IDLE (say, a
 * background node) is not promoted, one already batch stays batch. */
static void test_other_policies_are_kept(void **state)
{
    (void)state;
    assert_int_equal(run_case(SCHED_IDLE, true, SCHED_IDLE), 0);
    assert_int_equal(run_case(SCHED_BATCH, true, SCHED_BATCH), 0);
    assert_int_equal(run_case(SCHED_BATCH, false, SCHED_BATCH), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_becomes_batch),
        cmocka_unit_test(test_off_keeps_other),
        cmocka_unit_test(test_other_policies_are_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
