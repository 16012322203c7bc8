/* sock: a Unix listener's path belongs to one process at a time. A path
 * locked by a live process is refused even when its socket looks stale (the
 * race of two brokers of one shard starting at once), a dead process's
 * leftover file is replaced, and giving a path up removes the socket and
 * frees it for the next process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "child_wait.h"
#include "sock.h"

struct dir {
    char path[64];
    char sock[96];
};

static int setup(void **state)
{
    struct dir *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "/tmp/confab-sock-XXXXXX");
    if (!mkdtemp(d->path))
        return -1;
    snprintf(d->sock, sizeof d->sock, "%s/broker-0.sock", d->path);
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct dir *d = *state;
    char lock[128];
    snprintf(lock, sizeof lock, "%s.lock", d->sock);
    unlink(d->sock);
    unlink(lock);
    rmdir(d->path);
    free(d);
    return 0;
}

static int is_socket(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* A socket file whose listener is gone: what a killed process leaves. */
static void leave_stale_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    assert_true(is_socket(path));
}

static void test_a_live_owner_keeps_its_path(void **state)
{
    struct dir *d = *state;
    int lk = -1;
    int fd = cf_sock_unix_listen(d->sock, 0660, 16, &lk);
    assert_true(fd >= 0);
    assert_true(lk >= 0);
    struct stat st;
    assert_int_equal(lstat(d->sock, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660);

    /* A second process while the first accepts. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int lk2 = -1;
        int fd2 = cf_sock_unix_listen(d->sock, 0660, 16, &lk2);
        _exit(fd2 == -EADDRINUSE && lk2 == -1 ? 0 : 1);
    }
    assert_int_equal(child_wait_exit(pid), 0);

    /* The owner's socket looks stale (its fd is closed here, as if the
     * owner had not listened yet), but the owner is alive: the path is
     * still refused and its file is not removed. */
    close(fd);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int lk2 = -1;
        int fd2 = cf_sock_unix_listen(d->sock, 0660, 16, &lk2);
        _exit(fd2 == -EADDRINUSE && lk2 == -1 ? 0 : 1);
    }
    assert_int_equal(child_wait_exit(pid), 0);
    assert_true(is_socket(d->sock));

    /* The lock given up (the listener is closed already): the next process
     * gets the path, and replaces the stale file. */
    cf_sock_unix_unlisten(d->sock, -1, lk);
    int lk3 = -1;
    fd = cf_sock_unix_listen(d->sock, 0660, 16, &lk3);
    assert_true(fd >= 0);
    cf_sock_unix_unlisten(d->sock, fd, lk3);
    assert_false(is_socket(d->sock));
}

static void test_a_dead_owner_s_file_is_replaced(void **state)
{
    struct dir *d = *state;
    leave_stale_socket(d->sock);
    int lk = -1;
    int fd = cf_sock_unix_listen(d->sock, 0600, 16, &lk);
    assert_true(fd >= 0);
    int c = cf_sock_unix_connect(d->sock);
    assert_true(c >= 0); /* the new socket, not the stale one */
    close(c);
    cf_sock_unix_unlisten(d->sock, fd, lk);
    assert_false(is_socket(d->sock));
}

static void test_what_is_not_a_socket_is_left_alone(void **state)
{
    struct dir *d = *state;
    FILE *f = fopen(d->sock, "w");
    assert_non_null(f);
    fclose(f);
    int lk = -1;
    assert_int_equal(cf_sock_unix_listen(d->sock, 0660, 16, &lk), -EEXIST);
    assert_int_equal(lk, -1);
    struct stat st;
    assert_int_equal(lstat(d->sock, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    /* The refusal released the lock: a process that fixes the file gets it. */
    unlink(d->sock);
    int fd = cf_sock_unix_listen(d->sock, 0660, 16, &lk);
    assert_true(fd >= 0);
    cf_sock_unix_unlisten(d->sock, fd, lk);
}

static void test_a_planted_lock_symlink_is_not_followed(void **state)
{
    struct dir *d = *state;
    char lock[128], target[128];
    snprintf(lock, sizeof lock, "%s.lock", d->sock);
    snprintf(target, sizeof target, "%s/elsewhere", d->path);
    assert_int_equal(symlink(target, lock), 0);
    int lk = -1;
    assert_int_equal(cf_sock_unix_listen(d->sock, 0660, 16, &lk), -ELOOP);
    assert_int_equal(access(target, F_OK), -1); /* nothing created through it */
    assert_false(is_socket(d->sock));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_live_owner_keeps_its_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_dead_owner_s_file_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_what_is_not_a_socket_is_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_planted_lock_symlink_is_not_followed, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
