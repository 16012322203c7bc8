/* confab-soak: see soak.h and docs/soak.md. Usually run by scripts/soak.sh.
 *
 *   confab-soak --ports 8080,8081 --pids DIR --duration 600 [--clients 200]
 *               [--rooms 20] [--rate 100] [--faults on|off] [--fault-every 30]
 *               [--csv FILE] [--seed N] [--verbose]
 *   confab-soak --free-port        print a free TCP port on 127.0.0.1
 *
 * The run: `duration` seconds of traffic with a fault every `fault-every`
 * seconds; then a drain (no new sends; every client reconnects, rejoins,
 * gets every outstanding send acknowledged and catches up, up to 60 s) and 5 quiet seconds
 * for the last deliveries; then the account. Exit status: 0 clean, 1 when
 * something was lost, duplicated, reordered or never answered, 2 on bad
 * usage. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "soak.h"

struct soak_stats g_st;
struct soak_cfg g_cfg;
enum soak_phase g_phase = PHASE_TRAFFIC;

static int64_t g_t0;
static uint64_t g_rng;
static volatile sig_atomic_t g_stop;
static int g_paused_redis; /* pid we sent SIGSTOP, 0 when none */

int64_t soak_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double soak_rel(int64_t us)
{
    return (double)(us - g_t0) / 1e6;
}

double soak_elapsed(void)
{
    return soak_rel(soak_now_us());
}

uint64_t soak_rand(void)
{
    /* xorshift64*: reproducible from --seed, good enough for traffic */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ULL;
}

double soak_rand01(void)
{
    return (double)(soak_rand() >> 11) / 9007199254740992.0;
}

int64_t soak_rand_exp_us(double mean_s)
{
    double u = soak_rand01();
    double s = -mean_s * log1p(-u);
    return (int64_t)(s * 1e6);
}

void soak_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%7.1fs] ", soak_elapsed());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- options ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: confab-soak --ports P1[,P2...] --pids DIR [--duration S] [--clients N]\n"
            "       [--rooms R] [--rate MSGS_PER_S] [--faults on|off] [--fault-every S]\n"
            "       [--csv FILE] [--seed N] [--verbose]\n"
            "       confab-soak --free-port\n");
    exit(2);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return 1;
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

static void parse_ports(const char *s)
{
    char *end;
    while (*s && g_cfg.nports < SOAK_MAX_PORTS) {
        long p = strtol(s, &end, 10);
        if (end == s || p < 1 || p > 65535)
            usage();
        g_cfg.ports[g_cfg.nports++] = (int)p;
        s = *end == ',' ? end + 1 : end;
    }
}

static void parse_args(int argc, char **argv)
{
    static const struct option opts[] = {{"ports", required_argument, NULL, 'p'},
                                         {"pids", required_argument, NULL, 'P'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"clients", required_argument, NULL, 'c'},
                                         {"rooms", required_argument, NULL, 'r'},
                                         {"rate", required_argument, NULL, 'R'},
                                         {"faults", required_argument, NULL, 'f'},
                                         {"fault-every", required_argument, NULL, 'F'},
                                         {"csv", required_argument, NULL, 'o'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"free-port", no_argument, NULL, 'x'},
                                         {0, 0, 0, 0}};
    g_cfg = (struct soak_cfg){.clients = 200,
                              .rooms = 20,
                              .rate = 100,
                              .faults = true,
                              .fault_every = 30,
                              .duration = 600,
                              .seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            parse_ports(optarg);
            break;
        case 'P':
            g_cfg.pids_dir = optarg;
            break;
        case 'd':
            g_cfg.duration = atof(optarg);
            break;
        case 'c':
            g_cfg.clients = atoi(optarg);
            break;
        case 'r':
            g_cfg.rooms = atoi(optarg);
            break;
        case 'R':
            g_cfg.rate = atof(optarg);
            break;
        case 'f':
            if (strcmp(optarg, "on") && strcmp(optarg, "off"))
                usage();
            g_cfg.faults = !strcmp(optarg, "on");
            break;
        case 'F':
            g_cfg.fault_every = atoi(optarg);
            break;
        case 'o':
            g_cfg.csv = optarg;
            break;
        case 's':
            g_cfg.seed = strtoull(optarg, NULL, 10);
            break;
        case 'v':
            g_cfg.verbose = true;
            break;
        case 'x':
            exit(free_port());
        default:
            usage();
        }
    }
    if (!g_cfg.nports || !g_cfg.pids_dir || g_cfg.duration <= 0 || g_cfg.clients < 1 ||
        g_cfg.clients > 100000 || g_cfg.rooms < 1 || g_cfg.rooms > 999 || g_cfg.rate <= 0 ||
        g_cfg.fault_every < 5)
        usage();
    g_rng = g_cfg.seed ? g_cfg.seed : 1;
}

/* ---- faults --------------------------------------------------------------------- */

/* The names of the pid files starting with `prefix`, in order. */
static int names_with(const char *prefix, char names[][48], int max)
{
    static const char *const all[] = {"broker-a0", "broker-a1", "broker-b0", "broker-b1",
                                      "gateway-a", "gateway-b", "redis"};
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all && n < max; i++)
        if (!strncmp(all[i], prefix, strlen(prefix)) && report_pid(all[i]) > 0)
            snprintf(names[n++], 48, "%s", all[i]);
    return n;
}

static void kill_one(int kind, const char *prefix, int round)
{
    char names[8][48], desc[96];
    int n = names_with(prefix, names, 8);
    if (!n)
        return;
    const char *name = names[round % n];
    int pid = report_pid(name);
    snprintf(desc, sizeof desc, "SIGKILL %s (pid %d)", name, pid);
    if (kill(pid, SIGKILL) < 0)
        soak_log("kill %s: %s", name, strerror(errno));
    report_fault(kind, desc);
}

static void resume_redis(void)
{
    if (g_paused_redis && kill(g_paused_redis, SIGCONT) == 0)
        soak_log("fault over: SIGCONT redis (pid %d)", g_paused_redis);
    g_paused_redis = 0;
}

struct faults {
    int64_t next, resume_at;
    int n, redis_rounds;
};

static void fault_tick(struct faults *f, struct client *slow, int64_t now)
{
    if (g_paused_redis && now >= f->resume_at)
        resume_redis();
    if (!g_cfg.faults || now < f->next)
        return;
    f->next = now + (int64_t)g_cfg.fault_every * 1000000;
    int round = f->n / 4;
    switch (f->n++ % 4) {
    case 0:
        kill_one(FAULT_BROKER, "broker-", round);
        break;
    case 1:
        kill_one(FAULT_GATEWAY, "gateway-", round);
        break;
    case 2: {
        int pid = report_pid("redis");
        char desc[96];
        if (pid <= 0)
            break;
        if (f->redis_rounds++ == 1) { /* once: a real restart, which loses every room */
            kill_one(FAULT_REDIS_RESTART, "redis", 0);
            break;
        }
        if (kill(pid, SIGSTOP) == 0) {
            g_paused_redis = pid;
            f->resume_at = now + 4000000;
        }
        snprintf(desc, sizeof desc, "SIGSTOP redis (pid %d) for 4 s", pid);
        report_fault(FAULT_REDIS_PAUSE, desc);
        break;
    }
    default:
        client_stall(slow, 12);
        report_fault(FAULT_SLOW, "slow consumer stops reading for 12 s");
    }
}

/* ---- the loop --------------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    g_stop++; /* once: end the traffic now; twice: skip the drain too */
}

static struct client **g_clients;
static int g_nclients;

static void poll_clients(struct pollfd *pfd, struct client **who, int timeout_ms)
{
    int n = 0;
    for (int i = 0; i < g_nclients; i++) {
        int fd = client_fd(g_clients[i]);
        if (fd >= 0) {
            pfd[n] = (struct pollfd){fd, POLLIN, 0};
            who[n++] = g_clients[i];
        }
    }
    if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
        return;
    for (int i = 0; i < n; i++)
        if (pfd[i].revents)
            client_read(who[i]);
}

static bool all_settled(void)
{
    for (int i = 0; i < g_nclients; i++)
        if (!client_settled(g_clients[i]))
            return false;
    return true;
}

static int count_up(void)
{
    int n = 0;
    for (int i = 0; i < g_nclients; i++)
        n += client_is_up(g_clients[i]);
    return n;
}

/* Latencies are only as good as the loop's attention: note its longest
 * stretch without polling (reading a burst, blocking connects). */
static void note_gap(int64_t us)
{
    uint64_t ms = (uint64_t)(us / 1000);
    if (ms > g_st.loop_max_gap_ms)
        g_st.loop_max_gap_ms = ms;
    if (ms >= 500)
        soak_log("this program did not poll for %llu ms (latencies around now are inflated)",
                 (unsigned long long)ms);
}

/* Runs traffic, drain and quiet phases; returns the seconds of traffic. */
static double run(void)
{
    struct pollfd *pfd = calloc((size_t)g_nclients, sizeof *pfd);
    struct client **who = calloc((size_t)g_nclients, sizeof *who);
    int64_t now = soak_now_us(), end_traffic = g_t0 + (int64_t)(g_cfg.duration * 1e6);
    int64_t next_rss = now, next_minute = now + 60000000, phase_end = 0;
    double traffic_s = 0;
    struct faults f = {.next = now + (int64_t)g_cfg.fault_every * 1000000};
    struct client *slow = g_clients[g_nclients - 1];
    for (;;) {
        int64_t before = soak_now_us();
        poll_clients(pfd, who, 10);
        now = soak_now_us();
        note_gap(now - before);
        for (int i = 0; i < g_nclients; i++)
            client_tick(g_clients[i], now);
        note_gap(soak_now_us() - now);
        if (g_phase == PHASE_TRAFFIC)
            fault_tick(&f, slow, now);
        if (now >= next_rss) {
            report_sample_rss();
            next_rss += 10000000;
        }
        if (now >= next_minute) {
            report_minute();
            next_minute += 60000000;
        }
        if (g_phase == PHASE_TRAFFIC && (now >= end_traffic || g_stop)) {
            traffic_s = soak_rel(now);
            resume_redis();
            g_phase = PHASE_DRAIN;
            phase_end = now + 60000000;
            soak_log("traffic over: draining (%d of %d clients connected)", count_up(), g_nclients);
        } else if (g_phase == PHASE_DRAIN && (all_settled() || now >= phase_end || g_stop > 1)) {
            if (now >= phase_end)
                soak_log("drain: not every client settled within 60 s");
            g_phase = PHASE_QUIET;
            phase_end = now + 5000000;
        } else if (g_phase == PHASE_QUIET && now >= phase_end) {
            break;
        }
    }
    report_sample_rss();
    report_minute();
    free(pfd);
    free(who);
    return traffic_s;
}

static void describe(uint32_t client, int room)
{
    client_describe(g_clients[client], room);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    g_t0 = soak_now_us();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    report_open();
    g_nclients = g_cfg.clients + 1; /* the last one is the slow consumer */
    g_clients = calloc((size_t)g_nclients, sizeof *g_clients);
    for (int i = 0; i < g_nclients; i++)
        g_clients[i] = client_new((uint32_t)i, i == g_cfg.clients);
    soak_log(
        "soak: %d clients on port(s) %d%s%d, %d rooms, %.1f msg/s, %.0f s, faults %s, seed %llu",
        g_cfg.clients, g_cfg.ports[0], g_cfg.nports > 1 ? "," : "",
        g_cfg.nports > 1 ? g_cfg.ports[1] : 0, g_cfg.rooms, g_cfg.rate, g_cfg.duration,
        g_cfg.faults ? "on" : "off", (unsigned long long)g_cfg.seed);
    double traffic_s = run();
    resume_redis();
    for (int i = 0; i < g_nclients; i++) {
        client_end(g_clients[i]);
        g_st.never_acked += client_pending(g_clients[i]);
    }
    ledger_account(10, describe);
    report_summary(traffic_s);
    report_close();
    for (int i = 0; i < g_nclients; i++)
        client_free(g_clients[i]);
    free(g_clients);
    return report_clean() ? 0 : 1;
}
