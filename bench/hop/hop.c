/* confab-hop: what one hand-over between two processes costs on this machine.
 *
 * Every confab message crosses four more processes than the baseline's
 * (gateway, broker, Redis, broker, gateway), so the latency difference in the
 * steady scenario is mostly four such hand-overs. Their cost is a property of
 * the machine, not of confab: on a virtual machine whose idle vCPUs are
 * halted, waking a process on the other vCPU can cost tens of microseconds,
 * while handing over on the same CPU costs a few. This measures both, so a
 * report can say which it was.
 *
 * Two processes bounce a 100-byte message over a Unix socket pair, each
 * waiting in epoll_wait() as confab's processes do, with a pause between
 * rounds (as between messages at a steady rate) so that the CPUs can go
 * idle. One way = round trip / 2. Prints one JSON object. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity; the build defines it already */
#endif
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MSG = 100 };

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int pin(int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return sched_setaffinity(0, sizeof s, &s);
}

/* Waits for fd to be readable (epoll, as the servers do), then reads one
 * message whole. 0, or -1 when the peer is gone or a call failed. */
static int recv_msg(int ep, int fd, char *buf)
{
    struct epoll_event ev;
    size_t got = 0;
    while (got < MSG) {
        int n = epoll_wait(ep, &ev, 1, 5000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            errno = ETIMEDOUT;
        if (n <= 0)
            return -1;
        ssize_t r = read(fd, buf + got, MSG - got);
        if (r == 0)
            errno = ECONNRESET;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int epoll_on(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    return ep;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* One placement: the echo process on cpu_b, the timing one on cpu_a (-1:
 * wherever the scheduler puts them). Writes the median and p99 one-way
 * hand-over in microseconds; 0, or -1 on failure. */
static int measure(int cpu_a, int cpu_b, int rounds, int gap_us, double *p50, double *p99)
{
    cpu_set_t was; /* given back at the end: the next placement starts free */
    if (sched_getaffinity(0, sizeof was, &was) < 0)
        return -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        char buf[MSG];
        int ep = epoll_on(sv[1]);
        if (ep < 0 || pin(cpu_b) < 0)
            _exit(1);
        while (recv_msg(ep, sv[1], buf) == 0)
            if (write(sv[1], buf, MSG) != MSG)
                _exit(1);
        _exit(0);
    }
    close(sv[1]);
    int rc = -1;
    long long *t = malloc((size_t)rounds * sizeof *t);
    int ep = epoll_on(sv[0]);
    char buf[MSG];
    memset(buf, 'x', sizeof buf);
    if (!t || ep < 0 || pin(cpu_a) < 0)
        goto out;
    for (int i = 0; i < rounds; i++) {
        struct timespec gap = {0, gap_us * 1000L};
        nanosleep(&gap, NULL);
        long long start = now_ns();
        if (write(sv[0], buf, MSG) != MSG || recv_msg(ep, sv[0], buf) < 0)
            goto out;
        t[i] = now_ns() - start;
    }
    qsort(t, (size_t)rounds, sizeof *t, cmp_ll);
    *p50 = t[rounds / 2] / 2000.0;
    *p99 = t[rounds * 99 / 100] / 2000.0;
    rc = 0;
out:
    free(t);
    if (ep >= 0)
        close(ep);
    close(sv[0]); /* the echo process sees EOF and exits */
    waitpid(pid, NULL, 0);
    if (sched_setaffinity(0, sizeof was, &was) < 0)
        rc = -1;
    return rc;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 2000;
    int gap_us = argc > 2 ? atoi(argv[2]) : 500;
    if (rounds < 100 || rounds > 1000000 || gap_us < 0 || gap_us > 100000) {
        fprintf(stderr, "usage: confab-hop [ROUNDS (100..1000000, default 2000)] "
                        "[GAP_US between rounds (0..100000, default 500)]\n");
        return 2;
    }
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) < 0) {
        perror("confab-hop: sched_getaffinity");
        return 1;
    }
    int cpus[2] = {-1, -1}, n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &allowed))
            cpus[n++] = c;
    struct {
        const char *name;
        int a, b;
    } runs[] = {{"same_cpu", cpus[0], cpus[0]}, {"other_cpu", cpus[0], cpus[1]}, {"unpinned", -1, -1}};
    /* printed once every placement is measured: a failure prints no JSON */
    char out[512];
    int len = snprintf(out, sizeof out, "{\"rounds\": %d, \"gap_us\": %d", rounds, gap_us);
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        double p50, p99;
        if (runs[i].b < 0 && runs[i].a >= 0)
            continue; /* one CPU: there is no other */
        if (measure(runs[i].a, runs[i].b, rounds, gap_us, &p50, &p99) < 0) {
            fprintf(stderr, "confab-hop: %s: %s\n", runs[i].name, strerror(errno));
            return 1;
        }
        len += snprintf(out + len, sizeof out - (size_t)len,
                        ", \"%s_us\": {\"p50\": %.1f, \"p99\": %.1f}", runs[i].name, p50, p99);
    }
    printf("%s}\n", out);
    return 0;
}
