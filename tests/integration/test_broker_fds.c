/* A broker out of file descriptors (its RLIMIT_NOFILE lowered with
 * prlimit while it runs): with gateway links and a metrics request waiting
 * in its listeners' backlogs, it neither spins (CPU time stays low) nor logs
 * a line per attempt; once descriptors are free again it accepts what
 * waited, says so, and links and metrics work as before. */
#include "common.h"

#include <dirent.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "bytes.h"
#include "wire.h"

#define MAX_LINKS 64

static struct h_fixture fx;
static int metrics_port;
static pid_t broker;
static struct rlimit saved;

static int setup(void **state)
{
    (void)state;
    static char port_env[64];
    metrics_port = h_free_ports(2);
    snprintf(port_env, sizeof port_env, "BROKER_METRICS_PORT=%d", metrics_port);
    static const char *env[] = {port_env, NULL};
    if (h_fixture_up(&fx, env) < 0)
        return -1;
    broker = fx.node.broker[0].pid;
    return prlimit(broker, RLIMIT_NOFILE, NULL, &saved);
}

static int teardown(void **state)
{
    (void)state;
    prlimit(broker, RLIMIT_NOFILE, &saved, NULL); /* for its clean exit */
    return h_fixture_down(&fx);
}

static int open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* utime + stime in ms */
static int64_t cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* past the command name */
    assert_non_null(p);
    unsigned long long ut, st;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    assert_int_equal(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
    return (int64_t)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
}

/* A gateway link to shard 0 that said hello (it may wait in the backlog). */
static int link_hello(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char path[400];
    snprintf(path, sizeof path, "%s/broker-0.sock", fx.node.run_dir);
    assert_true(strlen(path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct cf_bytes out;
    cf_bytes_init(&out, 4096);
    struct cf_wire_msg h = {
        .type = CF_WIRE_HELLO, .shard = 0, .shards = (uint32_t)fx.node.brokers, .node = {"fds", 3}};
    assert_int_equal(cf_wire_encode(&out, &h), 0);
    assert_int_equal(send(fd, cf_bytes_data(&out), cf_bytes_len(&out), MSG_NOSIGNAL),
                     (ssize_t)cf_bytes_len(&out));
    cf_bytes_free(&out);
    return fd;
}

/* The link's first frame is a welcome, within timeout_ms. */
static bool welcomed(int fd, int timeout_ms)
{
    struct cf_bytes in;
    cf_bytes_init(&in, 1 << 16);
    struct cf_wire_decoder *dec = cf_wire_decoder_new();
    int64_t deadline = h_now_ms() + timeout_ms;
    bool ok = false;
    while (!ok && h_now_ms() < deadline) {
        const unsigned char *p;
        size_t len;
        if (cf_wire_frame_peek(&in, &p, &len) == 1) {
            struct cf_wire_msg m;
            const char *why;
            ok = cf_wire_decode(dec, p, len, &m, &why) == 0 && m.type == CF_WIRE_WELCOME;
            break;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 50) > 0 && cf_bytes_read_fd(&in, fd, 4096, NULL) <= 0)
            break;
    }
    cf_wire_decoder_free(dec);
    cf_bytes_free(&in);
    return ok;
}

/* Reads an HTTP response's status line, within timeout_ms; 0 if none. */
static int http_status(int fd, int timeout_ms)
{
    char buf[256];
    size_t n = 0;
    int64_t deadline = h_now_ms() + timeout_ms;
    while (n < sizeof buf - 1 && h_now_ms() < deadline) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n"))
            break;
    }
    buf[n] = '\0';
    int status = 0;
    return sscanf(buf, "HTTP/1.%*c %d", &status) == 1 ? status : 0;
}

/* Opens links until the broker stops taking them (its descriptor count no
 * longer grows), then one more: both wait in the backlog. */
static int fill(int *links)
{
    int n = 0;
    while (n < MAX_LINKS) {
        int before = open_fds(broker);
        links[n++] = link_hello();
        int64_t deadline = h_now_ms() + 300;
        while (open_fds(broker) == before && h_now_ms() < deadline)
            h_sleep_ms(10);
        if (open_fds(broker) == before)
            break;
    }
    assert_true(n < MAX_LINKS);
    links[n++] = link_hello();
    return n;
}

static void test_out_of_descriptors_pauses_accepting(void **state)
{
    (void)state;
    const struct h_proc *bp = &fx.node.broker[0];
    long mark = h_log_mark(bp);
    /* a few descriptors to spare, then none */
    struct rlimit low = {(rlim_t)open_fds(broker) + 3, saved.rlim_max};
    assert_int_equal(prlimit(broker, RLIMIT_NOFILE, &low, NULL), 0);
    int links[MAX_LINKS];
    int n = fill(links);
    int m = h_tcp_connect(metrics_port, 0);
    assert_true(m >= 0);
    const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    assert_int_equal(send(m, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)sizeof req - 1);

    /* Both listeners have connections waiting and no descriptor to take
     * them with. Spinning on them costs a core: about 2 s of CPU in 2 s. */
    h_sleep_ms(200);
    int64_t cpu0 = cpu_ms(broker), t0 = h_now_ms();
    h_sleep_ms(2000);
    int64_t cpu = cpu_ms(broker) - cpu0, took = h_now_ms() - t0;
    printf("broker CPU while out of descriptors: %lld ms in %lld ms (%d links opened, %d fds)\n",
           (long long)cpu, (long long)took, n, open_fds(broker));
    assert_true(cpu < 500);
    const char *links_out = "out of file descriptors accepting gateway links";
    assert_int_equal(h_log_count_from(bp, mark, links_out), 1); /* once per episode */
    assert_int_equal(h_log_count_from(bp, mark, "out of file descriptors accepting metrics"), 1);

    /* Descriptors free again: what waited is accepted, new links work. */
    for (int i = 0; i < n; i++)
        close(links[i]);
    assert_int_equal(http_status(m, 5000), 200);
    close(m);
    int l = link_hello();
    assert_true(welcomed(l, 5000));
    close(l);
    char again[400];
    snprintf(again, sizeof again, "accepting gateway links on %s/broker-0.sock again",
             fx.node.run_dir);
    assert_true(h_log_contains_from(bp, mark, again, 2000));
    snprintf(again, sizeof again, "accepting metrics requests on port %d again", metrics_port);
    assert_true(h_log_contains_from(bp, mark, again, 2000));
    assert_int_equal(prlimit(broker, RLIMIT_NOFILE, &saved, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_out_of_descriptors_pauses_accepting, setup, teardown),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
