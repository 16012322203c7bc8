/* harness: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc.h"

#ifndef CONFAB_BUILD_DIR
#error "CONFAB_BUILD_DIR must be defined"
#endif
#ifndef CONFAB_SOURCE_DIR
#error "CONFAB_SOURCE_DIR must be defined"
#endif

const char *h_bin(const char *which)
{
    static char path[2][512];
    int i = strcmp(which, "gateway") == 0 ? 0 : 1;
    snprintf(path[i], sizeof path[i], "%s/%s/confab-%s", CONFAB_BUILD_DIR, which, which);
    return path[i];
}

const char *h_source_dir(void)
{
    return CONFAB_SOURCE_DIR;
}

/* Binds 127.0.0.1:port (0: the kernel's choice); returns the bound port, or
 * -1 with errno set. */
static int try_bind(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int got = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
                      getsockname(fd, (struct sockaddr *)&sa, &len) == 0
                  ? ntohs(sa.sin_port)
                  : -1;
    int err = errno;
    close(fd);
    errno = err;
    return got;
}

/* The ports this process handed out last: free when they were picked, but
 * a test binds them only later (a server it starts), so the next pick could
 * find one still free and hand it out again. */
static int g_handed[64];
static unsigned g_nhanded;

static bool handed_out(int port)
{
    for (unsigned i = 0; i < g_nhanded && i < 64; i++)
        if (g_handed[i] == port)
            return true;
    return false;
}

static int remember(int port)
{
    g_handed[g_nhanded++ % 64] = port;
    return port;
}

/* A random free port outside the kernel's ephemeral range, or -1. A port from
 * that range is not safe to hand on: between our close() and the server's
 * bind(), any test running in parallel can get it as the local port of an
 * outgoing connection, and the server's bind() then fails. Ports outside it
 * are taken only by someone binding them on purpose. */
static int outside_ephemeral(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768, hi = 60999;
        fclose(f);
    }
    /* Candidates: [10000, lo) and (hi, 65535]. */
    int below = lo > 10000 ? lo - 10000 : 0, above = hi < 65535 ? 65535 - hi : 0;
    if (below + above < 1000)
        return -1;
    /* Not getpid() ^ time: tests started together by `ctest -j` have pids
     * and start times one apart, and those often XOR to one seed, and so
     * to the same ports. */
    static unsigned seed;
    while (!seed)
        if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
            seed = (unsigned)getpid() * 2654435761u ^ (unsigned)h_now_ms();
    for (int attempt = 0; attempt < 200; attempt++) {
        int k = (int)(rand_r(&seed) % (unsigned)(below + above));
        int port = k < below ? 10000 + k : hi + 1 + (k - below);
        if (!handed_out(port) && try_bind(port) == port)
            return remember(port);
    }
    return -1;
}

int h_free_port(void)
{
    int port = outside_ephemeral();
    if (port > 0)
        return port;
    /* No room outside the ephemeral range (or all of it taken): take the
     * kernel's choice. It hands them out in sequence, so a port just released
     * is unlikely to be handed out again soon. The range can run out for a
     * while (a benchmark's tens of thousands of loopback connections sit in
     * TIME_WAIT for 60 s): wait it out. */
    int64_t start = h_now_ms();
    bool told = false;
    for (int delay = 50;; delay = delay < 1000 ? delay * 2 : 1000) {
        if ((port = try_bind(0)) > 0) {
            if (!handed_out(port))
                return remember(port);
            continue; /* the kernel's next one */
        }
        int err = errno;
        if (h_now_ms() - start > 70000) {
            fprintf(stderr,
                    "h_free_port: no free port on 127.0.0.1 for 70 s (%s); is the "
                    "ephemeral range exhausted (ss -s: TIME_WAIT)?\n",
                    strerror(err));
            abort();
        }
        if (!told)
            fprintf(stderr, "h_free_port: bind(127.0.0.1:0): %s; retrying for up to 70 s\n",
                    strerror(err));
        told = true;
        h_sleep_ms(delay);
    }
}

int h_free_ports(int n)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int base = h_free_port(), ok = 1;
        for (int i = 1; i < n && ok; i++)
            ok = base + i < 65536 && !handed_out(base + i) && try_bind(base + i) == base + i;
        if (ok) {
            for (int i = 1; i < n; i++)
                remember(base + i);
            return base;
        }
    }
    fprintf(stderr, "h_free_ports: no run of %d free ports\n", n);
    abort();
}

void h_node_preload(struct h_node *n, const char *lib)
{
    int i = 0;
    while (i < H_MAX_ENV && n->extra_env[i])
        i++;
    if (i + 2 >= H_MAX_ENV) {
        fprintf(stderr, "h_node_preload: no room left in extra_env\n");
        abort();
    }
    const char *was = getenv("ASAN_OPTIONS");
    char *preload = NULL, *asan = NULL;
    if (asprintf(&preload, "LD_PRELOAD=%s", lib) < 0 ||
        asprintf(&asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0", was ? was : "",
                 was && *was ? ":" : "") < 0)
        abort();
    n->extra_env[i] = preload;
    n->extra_env[i + 1] = asan;
    n->extra_env[i + 2] = NULL;
}

/* ---- redis ------------------------------------------------------------- */

static bool unix_connectable(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path)
        return false;
    memcpy(sa.sun_path, path, len + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int redis_start_on(struct h_redis *r, const char *dir, int port);

int h_redis_start(struct h_redis *r, const char *dir)
{
    snprintf(r->ip, sizeof r->ip, "127.0.0.1");
    return redis_start_on(r, dir, h_free_port());
}

int h_redis_start_list(struct h_redis *r, int n, char *list, size_t cap)
{
    size_t u = 0;
    list[0] = '\0';
    for (int i = 0; i < n; i++) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/r%d", h_tmpdir(), i);
        mkdir(dir, 0700);
        if (h_redis_start(&r[i], dir) < 0)
            return -1;
        int w = snprintf(list + u, cap - u, "%s%s", i ? "," : "", r[i].addr);
        if (w < 0 || (size_t)w >= cap - u)
            return -1;
        u += (size_t)w;
    }
    return 0;
}

int h_redis_start_at(struct h_redis *r, const char *dir, const char *ip, int port)
{
    snprintf(r->ip, sizeof r->ip, "%s", ip);
    return redis_start_on(r, dir, port);
}

int h_redis_restart(struct h_redis *r, const char *dir)
{
    return redis_start_on(r, dir, r->port);
}

static int redis_start_on(struct h_redis *r, const char *dir, int tcp_port)
{
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", dir);
    snprintf(r->addr, sizeof r->addr, "unix:%s", r->sock);
    r->port = tcp_port;
    if (!r->ip[0])
        snprintf(r->ip, sizeof r->ip, "127.0.0.1");
    snprintf(r->tcp_addr, sizeof r->tcp_addr, "%s:%d", r->ip, r->port);
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    char *argv[] = {"/usr/bin/redis-server",
                    "--port",
                    port,
                    "--bind",
                    r->ip,
                    "--unixsocket",
                    r->sock,
                    "--unixsocketperm",
                    "700",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    (char *)dir,
                    NULL};
    static int n;
    char name[32];
    snprintf(name, sizeof name, "redis-%d", n++);
    if (h_spawn(&r->proc, name, dir, argv, NULL) < 0)
        return -1;
    int64_t deadline = h_now_ms() + 10000;
    while (h_now_ms() < deadline) {
        if (unix_connectable(r->sock))
            return 0;
        if (!h_alive(&r->proc))
            break;
        h_sleep_ms(10);
    }
    h_dump_log(&r->proc, 20);
    return -1;
}

void h_redis_stop(struct h_redis *r)
{
    h_stop(&r->proc, SIGTERM, 5000);
}

int h_redis_cli(const struct h_redis *r, const char *const args[])
{
    char *argv[32];
    int n = 0;
    argv[n++] = "/usr/bin/redis-cli";
    argv[n++] = "-s";
    argv[n++] = (char *)r->sock;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    struct h_proc p;
    if (h_spawn(&p, "redis-cli", NULL, argv, NULL) < 0)
        return -1;
    int status = h_wait_exit(&p, 10000);
    if (status < 0) /* a Redis that hangs: the client must not outlive the test */
        h_stop(&p, SIGKILL, 2000);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int64_t h_redis_int(const struct h_redis *r, const char *const args[])
{
    char cmd[1024];
    /* bounded like h_redis_cli: a Redis that hangs must fail the poll, not
     * hang the test */
    int n = snprintf(cmd, sizeof cmd, "timeout -k 2 10 /usr/bin/redis-cli -s '%s'", r->sock);
    for (int i = 0; args[i] && n > 0 && (size_t)n < sizeof cmd; i++) {
        if (strchr(args[i], '\''))
            return INT64_MIN;
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " '%s'", args[i]);
    }
    if (n <= 0 || (size_t)n >= sizeof cmd)
        return INT64_MIN;
    FILE *f = popen(cmd, "r");
    if (!f)
        return INT64_MIN;
    char line[64] = "";
    bool got = fgets(line, sizeof line, f) != NULL;
    int status = pclose(f);
    char *end;
    errno = 0;
    long long v = got ? strtoll(line, &end, 10) : 0;
    if (!got || status != 0 || errno || end == line || (*end != '\n' && *end != '\0'))
        return INT64_MIN;
    return v;
}

/* ---- nodes --------------------------------------------------------------- */

void h_node_init(struct h_node *n, const char *redis_addr)
{
    static int count;
    memset(n, 0, sizeof *n);
    snprintf(n->run_dir, sizeof n->run_dir, "%s/node-%d", h_tmpdir(), count++);
    mkdir(n->run_dir, 0750);
    n->port = h_free_port();
    n->brokers = 2;
    n->workers = 1;
    n->redis_addr = redis_addr;
}

/* The common environment of a node's processes, into env (NULL-terminated).
 * The strings live in `store`. */
static void node_env(const struct h_node *n, char store[][400], const char **env)
{
    int k = 0;
    snprintf(store[k], 400, "RUN_DIR=%s", n->run_dir);
    env[k] = store[k], k++;
    snprintf(store[k], 400, "BROKERS=%d", n->brokers);
    env[k] = store[k], k++;
    snprintf(store[k], 400, "REDIS_ADDR=%s", n->redis_addr);
    env[k] = store[k], k++;
    snprintf(store[k], 400, "PORT=%d", n->port);
    env[k] = store[k], k++;
    snprintf(store[k], 400, "GATEWAY_WORKERS=%d", n->workers);
    env[k] = store[k], k++;
    snprintf(store[k], 400, "JWT_SECRET=%s", H_JWT_SECRET);
    env[k] = store[k], k++;
    snprintf(store[k], 400, "LISTEN_ADDR=127.0.0.1");
    env[k] = store[k], k++;
    snprintf(store[k], 400, "LOG_LEVEL=%s",
             getenv("CONFAB_TEST_LOG_LEVEL") ? getenv("CONFAB_TEST_LOG_LEVEL") : "info");
    env[k] = store[k], k++;
    /* Tests push far more traffic from one address and one connection than
     * any person would: the abuse limits are off unless a test sets them
     * (test_abuse.c tests them, extra_env comes later and wins). */
    static const char *const unlimited[] = {"RATE_MSGS=0", "LOGIN_RATE=0", "UPGRADE_RATE=0",
                                            "MAX_CONNS_PER_IP=0"};
    for (size_t i = 0; i < sizeof unlimited / sizeof unlimited[0]; i++)
        env[k++] = unlimited[i];
    for (int i = 0; n->extra_env[i] && k < H_MAX_ENV + 12; i++)
        env[k++] = n->extra_env[i];
    env[k] = NULL;
}

int h_broker_start(struct h_node *n, int shard)
{
    char store[8][400];
    const char *env[H_MAX_ENV + 14];
    node_env(n, store, env);
    char shard_s[16], shards_s[16], name[64];
    snprintf(shard_s, sizeof shard_s, "%d", shard);
    snprintf(shards_s, sizeof shards_s, "%d", n->brokers);
    snprintf(name, sizeof name, "%s-broker-%d", strrchr(n->run_dir, '/') + 1, shard);
    char *argv[] = {(char *)h_bin("broker"), "--shard", shard_s, "--shards", shards_s, NULL};
    if (h_spawn(&n->broker[shard], name, n->run_dir, argv, env) < 0)
        return -1;
    /* Ready once its socket accepts. */
    char sock[400];
    snprintf(sock, sizeof sock, "%s/broker-%d.sock", n->run_dir, shard);
    int64_t deadline = h_now_ms() + 10000;
    while (h_now_ms() < deadline) {
        if (unix_connectable(sock))
            return 0;
        if (!h_alive(&n->broker[shard]))
            break;
        h_sleep_ms(10);
    }
    h_dump_log(&n->broker[shard], 20);
    return -1;
}

int h_gateway_start(struct h_node *n)
{
    char store[8][400];
    const char *env[H_MAX_ENV + 14];
    node_env(n, store, env);
    char name[64];
    if (n->gateway_name)
        snprintf(name, sizeof name, "%s", n->gateway_name);
    else
        snprintf(name, sizeof name, "%s-gateway", strrchr(n->run_dir, '/') + 1);
    char *argv[] = {(char *)h_bin("gateway"), NULL};
    return h_spawn(&n->gateway, name, n->run_dir, argv, env);
}

int h_node_start(struct h_node *n)
{
    for (int i = 0; i < n->brokers; i++)
        if (h_broker_start(n, i) < 0)
            return -1;
    if (h_gateway_start(n) < 0)
        return -1;
    if (h_wait_health(n->health_port ? n->health_port : n->port, 200, 15000) < 0) {
        h_node_dump_logs(n);
        return -1;
    }
    return 0;
}

int h_node_stop(struct h_node *n)
{
    int bad = h_stop_clean(&n->gateway);
    for (int i = 0; i < n->brokers; i++)
        bad += h_stop_clean(&n->broker[i]);
    return bad;
}

void h_node_dump_logs(const struct h_node *n)
{
    for (int i = 0; i < n->brokers; i++)
        h_dump_log(&n->broker[i], 15);
    h_dump_log(&n->gateway, 25);
}

int h_fixture_up(struct h_fixture *f, const char *const env[])
{
    if (h_redis_start(&f->redis, h_tmpdir()) < 0)
        return -1;
    h_node_init(&f->node, f->redis.addr);
    for (int i = 0; env && env[i] && i < H_MAX_ENV - 1; i++)
        f->node.extra_env[i] = env[i];
    return h_node_start(&f->node);
}

int h_fixture_down(struct h_fixture *f)
{
    /* A test that failed while it had one of them stopped (SIGSTOP) left
     * it so: the stop then waited out the brokers' drain against a stopped
     * Redis, or its own timeout for a stopped gateway or broker. */
    h_kill(&f->redis.proc, SIGCONT);
    h_kill(&f->node.gateway, SIGCONT);
    for (int i = 0; i < f->node.brokers; i++)
        h_kill(&f->node.broker[i], SIGCONT);
    h_node_dump_logs(&f->node);
    int bad = h_node_stop(&f->node);
    h_redis_stop(&f->redis);
    return bad ? -1 : 0;
}

int h_wait_health(int port, int status, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    do {
        struct h_resp r;
        if (h_http(port, "GET", "/healthz", NULL, NULL, 0, &r) == 0) {
            int s = r.status;
            h_resp_free(&r);
            if (s == status)
                return 0;
        }
        h_sleep_ms(25);
    } while (h_now_ms() < deadline);
    return -1;
}
