/* lowfd: the numbers under a cap are taken by fillers, new descriptors land
 * above it, a socket moved under the cap still works, holes are used and
 * refilled, fillers are given back, and nothing leaks. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lowfd.h"

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* Free numbers under cap. */
static int free_under(int cap)
{
    int n = 0;
    for (int i = 0; i < cap; i++)
        n += !is_open(i);
    return n;
}

/* A cap 8 numbers past the lowest free one. */
static int small_cap(void)
{
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    return fd + 8;
}

/* A connected pair; the end the test keeps is *peer. */
static int pair(int *peer)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *peer = sv[1];
    return sv[0];
}

static void talks(int a, int b)
{
    assert_int_equal(write(a, "hi", 2), 2);
    char buf[4];
    assert_int_equal(read(b, buf, sizeof buf), 2);
    assert_memory_equal(buf, "hi", 2);
}

/* Each test's lowfd over a small cap, and what was open before it. */
struct fx {
    int cap, n; /* n: the fillers it took */
    int free_before, open_before;
    struct lowfd *lf;
};

/* Descriptors open under `below`. */
static int open_under(int below)
{
    return below - free_under(below);
}

static int setup(void **state)
{
    static struct fx f;
    f.cap = small_cap();
    f.free_before = free_under(f.cap);
    f.open_before = open_under(f.cap + 64); /* the source lands just past the cap */
    f.lf = lowfd_new(f.cap);
    f.n = lowfd_fillers(f.lf);
    *state = &f;
    return f.lf ? 0 : -1;
}

/* Fails the test when freeing left anything open: fillers or the source. */
static int teardown(void **state)
{
    struct fx *f = *state;
    lowfd_free(f->lf);
    f->lf = NULL;
    return open_under(f->cap + 64) == f->open_before ? 0 : -1;
}

static void test_no_cap_is_nothing(void **state)
{
    (void)state;
    assert_null(lowfd_new(0));
    assert_int_equal(lowfd_lower(NULL, 7), 7);
    assert_int_equal(lowfd_release(NULL, 5, 0), 0);
    lowfd_refill(NULL, 0);
    assert_int_equal(lowfd_fillers(NULL), 0);
    lowfd_free(NULL);
}

static void test_fills_the_numbers_under_the_cap(void **state)
{
    struct fx *f = *state;
    assert_true(f->n > 0);
    assert_int_equal(f->n, f->free_before);
    assert_int_equal(free_under(f->cap), 0);
    int peer, s = pair(&peer);
    assert_true(s >= f->cap && peer >= f->cap);
    close(s);
    close(peer);
}

static void test_a_socket_moves_under_the_cap_and_works(void **state)
{
    struct fx *f = *state;
    struct lowfd *lf = f->lf;
    int peer, s = pair(&peer);
    int low = lowfd_lower(lf, s);
    assert_true(low >= 0 && low < f->cap);
    assert_false(is_open(s)); /* the old number is closed */
    assert_int_equal(lowfd_fillers(lf), f->n - 1);
    talks(low, peer);
    talks(peer, low);
    assert_int_equal(fcntl(low, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    /* already under the cap: left where it is */
    assert_int_equal(lowfd_lower(lf, low), low);
    close(low);
    close(peer);
}

static void test_full_leaves_the_socket_and_holes_are_used(void **state)
{
    struct fx *f = *state;
    struct lowfd *lf = f->lf;
    int cap = f->cap, n = f->n;
    int lows[16], peers[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        int s = pair(&peers[i]);
        lows[i] = lowfd_lower(lf, s);
        assert_true(lows[i] >= 0 && lows[i] < cap);
    }
    assert_int_equal(lowfd_fillers(lf), 0);
    /* nothing under the cap: -1, and the socket is still the caller's */
    int peer, s = pair(&peer);
    assert_int_equal(lowfd_lower(lf, s), -1);
    assert_true(is_open(s));
    talks(s, peer);
    /* a number freed under the cap (lws closed a connection): used */
    int hole = lows[0];
    close(lows[0]);
    close(peers[0]);
    assert_int_equal(lowfd_lower(lf, s), hole);
    assert_false(is_open(s));
    talks(hole, peer);
    close(hole);
    close(peer);
    for (int i = 1; i < n; i++) {
        close(lows[i]);
        close(peers[i]);
    }
}

static void test_holes_are_refilled(void **state)
{
    struct fx *f = *state;
    struct lowfd *lf = f->lf;
    int cap = f->cap, n = f->n;
    int peer, low = lowfd_lower(lf, pair(&peer));
    close(low); /* a hole */
    close(peer);
    assert_int_equal(free_under(cap), 1);
    lowfd_refill(lf, 1000);
    assert_int_equal(lowfd_fillers(lf), n);
    assert_int_equal(free_under(cap), 0);
    /* refilling with nothing free takes nothing */
    lowfd_refill(lf, 2000);
    assert_int_equal(lowfd_fillers(lf), n);
}

static void test_release_gives_back_and_holds_a_minute(void **state)
{
    struct fx *f = *state;
    struct lowfd *lf = f->lf;
    int cap = f->cap, n = f->n;
    assert_true(n >= 4);
    assert_int_equal(lowfd_release(lf, 3, 10000), 3);
    assert_int_equal(lowfd_fillers(lf), n - 3);
    assert_int_equal(free_under(cap), 3);
    /* a new descriptor takes a number given back */
    int peer, s = pair(&peer);
    assert_true(s < cap);
    lowfd_refill(lf, 10000 + 59999); /* within the minute: left free */
    assert_int_equal(free_under(cap), 1);
    lowfd_refill(lf, 10000 + 60000);
    assert_int_equal(free_under(cap), 0);
    assert_int_equal(lowfd_fillers(lf), n - 2);
    /* more than there are: all of them */
    assert_int_equal(lowfd_release(lf, 1000, 20000), n - 2);
    assert_int_equal(lowfd_fillers(lf), 0);
    close(s);
    close(peer);
}

/* Near the limit no filler is taken, and those held are given back, so that
 * the process keeps numbers free for what it opens besides accept. */
static void test_near_the_limit_fillers_give_way(void **state)
{
    struct fx *f = *state;
    struct lowfd *lf = f->lf;
    int cap = f->cap, n = f->n;
    struct rlimit saved, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_true(n > 0);
    low = saved;
    low.rlim_cur = (rlim_t)cap + 32; /* within 64 of the cap */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    lowfd_refill(lf, 1000);
    int left = lowfd_fillers(lf);
    struct lowfd *none = lowfd_new(cap); /* takes nothing: the limit is too close */
    int none_n = lowfd_fillers(none);
    lowfd_free(none);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_int_equal(left, 0);
    assert_int_equal(none_n, 0);
    assert_int_equal(free_under(cap), n);
    /* the limit back up: taken again a minute after the release */
    lowfd_refill(lf, 1000 + 59999);
    assert_int_equal(lowfd_fillers(lf), 0);
    lowfd_refill(lf, 1000 + 60000);
    assert_int_equal(lowfd_fillers(lf), n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_cap_is_nothing),
        cmocka_unit_test_setup_teardown(test_fills_the_numbers_under_the_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_socket_moves_under_the_cap_and_works, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_leaves_the_socket_and_holes_are_used, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_holes_are_refilled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_gives_back_and_holds_a_minute, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_near_the_limit_fillers_give_way, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
