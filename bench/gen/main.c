/* confab-bench: a WebSocket load generator for confab and its baseline.
 *
 * Opens --conns connections (at most --inflight handshakes at once, at
 * --connect-rate per second), each joining room bench-<i % rooms> (not
 * with --no-join: a connect storm of handshakes alone), then
 * either holds them (--hold, the idle scenario), or runs the --rate ramp:
 * each step publishes at an aggregate rate from the publishers for
 * --step-seconds, waits up to --drain-seconds for what is in flight, and
 * counts deliveries, loss, duplicates, reordering and latency. The ramp stops
 * after a step that fails: over --stop-loss or --stop-p99-ms, or any of the
 * other reasons in step.h (sends blocked, below or behind schedule,
 * connections closed, server errors); with --rerun-late-steps a step that
 * failed only on the generator's own lateness runs once more first. See
 * docs/benchmarks.md. */
#include "gen.h"
#include "dump.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

uint64_t gen_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t gen_rand(gen *g)
{
    uint64_t x = g->rng; /* xorshift64: masks and keys need no more */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g->rng = x;
    return (uint32_t)(x >> 32);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int usage_error(const char *what)
{
    fprintf(stderr, "confab-bench: %s (see docs/benchmarks.md)\n", what);
    return -1;
}

static int parse_rates(gen_opts *o, const char *s)
{
    o->nrates = 0;
    while (*s) {
        char *end;
        double r = strtod(s, &end);
        if (end == s || r <= 0 || o->nrates == 64)
            return usage_error("--rate takes up to 64 positive numbers, comma-separated");
        o->rates[o->nrates++] = r;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return usage_error("--rate takes up to 64 positive numbers, comma-separated");
    }
    return 0;
}

/* A number option in [lo, hi]. */
static int num(const char *name, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "confab-bench: --%s must be a number in [%g, %g]\n", name, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_opts(gen_opts *o, int argc, char **argv)
{
    static const struct option L[] = {
        {"url", 1, 0, 'u'},          {"secret", 1, 0, 's'},       {"conns", 1, 0, 'c'},
        {"rooms", 1, 0, 'r'},        {"publishers", 1, 0, 'p'},   {"rate", 1, 0, 'R'},
        {"step-seconds", 1, 0, 'S'}, {"drain-seconds", 1, 0, 'D'}, {"stop-loss", 1, 0, 'L'},
        {"stop-p99-ms", 1, 0, 'P'},  {"msg-bytes", 1, 0, 'b'},    {"connect-rate", 1, 0, 'C'},
        {"inflight", 1, 0, 'K'},     {"hold", 1, 0, 'H'},         {"index-offset", 1, 0, 'O'},
        {"src-ips", 1, 0, 'I'},      {"json", 0, 0, 'j'},         {"help", 0, 0, 'h'},
        {"no-join", 0, 0, 'N'},      {"dump", 1, 0, 'd'},         {"start-at", 1, 0, 'T'},
        {"rerun-late-steps", 0, 0, 'E'}, {0, 0, 0, 0}};
    *o = (gen_opts){.conns = 100, .rooms = 1, .step_s = 5, .drain_s = 2, .stop_loss = 0.001,
                    .stop_p99_ms = 250, .msg_bytes = 100, .inflight = 1000, .hold_s = -1,
                    .src_lo = 1, .src_hi = 1};
    double v;
    int ch;
    while ((ch = getopt_long(argc, argv, "", L, NULL)) != -1) {
        int rc = 0;
        switch (ch) {
        case 'u': o->url = optarg; break;
        case 's': o->secret = optarg; break;
        case 'c': rc = num("conns", optarg, 1, 1e9, &v); o->conns = (uint32_t)v; break;
        case 'r': rc = num("rooms", optarg, 1, 1e9, &v); o->rooms = (uint32_t)v; break;
        case 'p': rc = num("publishers", optarg, 0, 1e9, &v); o->publishers = (uint32_t)v; break;
        case 'R': rc = parse_rates(o, optarg); break;
        case 'S': rc = num("step-seconds", optarg, 0.1, 86400, &o->step_s); break;
        case 'D': rc = num("drain-seconds", optarg, 0, 3600, &o->drain_s); break;
        case 'L': rc = num("stop-loss", optarg, 0, 1, &o->stop_loss); break;
        case 'P': rc = num("stop-p99-ms", optarg, 0, 1e6, &o->stop_p99_ms); break;
        case 'b': rc = num("msg-bytes", optarg, 1, GEN_MAX_MSG, &v); o->msg_bytes = (uint32_t)v; break;
        case 'C': rc = num("connect-rate", optarg, 0, 1e9, &o->connect_rate); break;
        case 'K': rc = num("inflight", optarg, 1, GEN_MAX_CONNS, &v); o->inflight = (uint32_t)v; break;
        case 'H': rc = num("hold", optarg, 0, 86400 * 7, &o->hold_s); break;
        case 'O': rc = num("index-offset", optarg, 0, 1e9, &v); o->index_offset = (uint32_t)v; break;
        case 'I':
            if (sscanf(optarg, "%u-%u", &o->src_lo, &o->src_hi) != 2 || o->src_lo < 1 ||
                o->src_hi > 254 || o->src_lo > o->src_hi)
                rc = usage_error("--src-ips takes A-B with 1 <= A <= B <= 254");
            break;
        case 'j': o->json = 1; break;
        case 'N': o->no_join = 1; break;
        case 'E': o->rerun_late = 1; break;
        case 'd': o->dump = optarg; break;
        case 'T': {
            char *end;
            errno = 0;
            unsigned long long at = strtoull(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end || errno)
                rc = usage_error("--start-at takes CLOCK_MONOTONIC nanoseconds");
            o->start_at = at;
            break;
        }
        default:
            return usage_error("usage: confab-bench --url ws://HOST:PORT/ws --secret S "
                               "[--conns N] [--rooms R] [--publishers P] [--rate LIST] ...");
        }
        if (rc < 0)
            return -1;
    }
    if (optind < argc)
        return usage_error("unexpected argument");
    if (!o->url || !o->secret)
        return usage_error("--url and --secret are required");
    if (o->conns > GEN_MAX_CONNS) {
        fprintf(stderr,
                "confab-bench: --conns %u is over %u: the per-process fd hard limit is 20000; "
                "run several generators with --index-offset\n",
                o->conns, GEN_MAX_CONNS);
        return -1;
    }
    if (o->nrates && o->hold_s >= 0)
        return usage_error("--hold (idle) and --rate (publishing) exclude each other");
    return 0;
}

/* ws://HOST:PORT/PATH with an IPv4 host (or a name resolving to one). */
static int parse_url(gen *g)
{
    const char *u = g->o.url;
    if (strncmp(u, "ws://", 5) != 0)
        return usage_error("--url must start with ws://");
    u += 5;
    const char *slash = strchr(u, '/');
    size_t hl = slash ? (size_t)(slash - u) : strlen(u);
    if (hl == 0 || hl >= sizeof g->host)
        return usage_error("bad host in --url");
    memcpy(g->host, u, hl);
    g->host[hl] = '\0';
    snprintf(g->path, sizeof g->path, "%s", slash ? slash : "/");
    char name[64];
    snprintf(name, sizeof name, "%s", g->host);
    char *colon = strrchr(name, ':');
    const char *port = "80";
    if (colon) {
        *colon = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(name, port, &hints, &res) != 0 || !res)
        return usage_error("cannot resolve the --url host to an IPv4 address");
    memcpy(&g->dst, res->ai_addr, sizeof g->dst);
    freeaddrinfo(res);
    return 0;
}

static int setup(gen *g, int argc, char **argv)
{
    if (parse_opts(&g->o, argc, argv) < 0 || parse_url(g) < 0)
        return -1;
    if (g->o.dump && !(g->dump = dump_open(g->o.dump))) {
        fprintf(stderr, "confab-bench: cannot write --dump %s: %s\n", g->o.dump, strerror(errno));
        return -1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < g->o.conns + 16) {
        fprintf(stderr, "confab-bench: the fd limit (%llu) is below --conns + 16\n",
                (unsigned long long)rl.rlim_cur);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: wakes epoll_wait */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    g->n = g->o.conns;
    g->c = calloc(g->n, sizeof *g->c);
    g->members = calloc(g->o.rooms, sizeof *g->members);
    g->dirty = calloc(g->n, sizeof *g->dirty);
    g->rbuf = malloc(GEN_MAX_FRAME + 64 + GEN_READ_SIZE);
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    g->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (!g->c || !g->members || !g->dirty || !g->rbuf || g->ep < 0 || g->tfd < 0)
        return usage_error("out of memory or descriptors at start-up");
    for (uint32_t i = 0; i < g->n; i++) {
        g->c[i].fd = -1;
        g->c[i].gidx = g->o.index_offset + i;
        g->c[i].room = g->c[i].gidx % g->o.rooms;
    }
    if (acct_init(g) < 0)
        return -1;
    g->rng = gen_clock() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    struct itimerspec its = {.it_interval = {0, 1000000}, .it_value = {0, 1000000}};
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = GEN_TIMER_TAG};
    if (timerfd_settime(g->tfd, 0, &its, NULL) < 0 || epoll_ctl(g->ep, EPOLL_CTL_ADD, g->tfd, &ev))
        return usage_error("cannot arm the 1 ms timer");
    return 0;
}

/* Opens what the in-flight bound and the connect rate allow now. */
static void open_due(gen *g)
{
    uint64_t allowed = g->n;
    if (g->o.connect_rate > 0)
        allowed = 1 + (uint64_t)(g->o.connect_rate * (double)(g->now - g->t_setup0) / 1e9);
    while (g->next_open < g->n && g->next_open < allowed && g->inflight < g->o.inflight)
        conn_open(g, g->next_open++);
}

static void pass_events(gen *g, int timeout_ms, int *ticked)
{
    struct epoll_event evs[1024];
    int n = epoll_wait(g->ep, evs, 1024, timeout_ms);
    g->now = gen_clock();
    *ticked = 0;
    for (int k = 0; k < n; k++) {
        if (evs[k].data.u32 == GEN_TIMER_TAG) {
            uint64_t expirations;
            if (read(g->tfd, &expirations, sizeof expirations) < 0)
                errno = 0;
            *ticked = 1;
            /* publish (and write) at once: queued behind a full pass of reads
             * a message would carry the generator's delay as latency */
            acct_publish_due(g);
            conn_flush_all(g);
        } else {
            conn_event(g, evs[k].data.u32, evs[k].events);
        }
    }
    conn_flush_all(g);
}

/* Connects and joins every connection; returns when all are settled. */
static void run_setup(gen *g)
{
    g->now = g->t_setup0 = gen_clock();
    uint64_t last_check = g->now;
    int ticked;
    while (!stop_requested && (g->next_open < g->n || g->inflight || g->joining)) {
        open_due(g);
        pass_events(g, 10, &ticked);
        if (g->now - last_check > 100000000ull) {
            conn_check_timeouts(g);
            last_check = g->now;
        }
    }
}

static void run_hold(gen *g)
{
    fprintf(stderr, "READY %u\n", g->joined);
    fflush(stderr);
    uint64_t end = g->now + (uint64_t)(g->o.hold_s * 1e9);
    int ticked;
    while (!stop_requested && g->now < end)
        pass_events(g, 100, &ticked);
}

/* One ramp step, a second run of its rate when `rerun`, judged into st
 * (step.h: every way it can fail). */
static void run_step(gen *g, step_stats *st, double rate, int rerun)
{
    double cpu0 = cpu_seconds();
    uint64_t wall0 = gen_clock();
    g->now = wall0;
    acct_step_begin(g, st, rate);
    st->rerun = rerun;
    uint64_t send_end = g->step_t0 + (uint64_t)(g->o.step_s * 1e9);
    int ticked;
    while (!stop_requested && g->now < send_end)
        pass_events(g, 10, &ticked);
    acct_publish_due(g); /* the last due messages */
    conn_flush_all(g);
    g->sending = 0;
    double cpu_send = cpu_seconds();
    uint64_t wall_send = gen_clock();
    uint64_t drain_end = g->now + (uint64_t)(g->o.drain_s * 1e9);
    while (!stop_requested && g->now < drain_end && st->delivered < st->expected)
        pass_events(g, 10, &ticked);
    acct_step_end(g);
    uint64_t wall1 = gen_clock();
    st->gen_cpu = (cpu_seconds() - cpu0) / ((double)(wall1 - wall0) / 1e9);
    st->gen_cpu_send = (cpu_send - cpu0) / ((double)(wall_send - wall0) / 1e9);
    step_limits lim = {.loss = g->o.stop_loss, .p99_ms = g->o.stop_p99_ms,
                       .pace_lag_ms = STEP_PACE_LAG_MS, .sent_fraction = STEP_SENT_FRACTION};
    step_judge(st, &lim);
    if (!g->o.json) {
        fprintf(stderr,
                "step %g msg/s: sent %llu/%llu delivered %llu/%llu lost %llu p99 %.2f ms %s", rate,
                (unsigned long long)st->sent, (unsigned long long)st->scheduled,
                (unsigned long long)st->delivered, (unsigned long long)st->expected,
                (unsigned long long)st->lost, (double)bh_quantile(&st->lat, 0.99) / 1e6,
                st->pass ? "pass" : "FAIL:");
        for (unsigned b = 0; b < STEP_NREASONS; b++)
            if (st->fail & (1u << b))
                fprintf(stderr, " %s", step_reason_name(b));
        fprintf(stderr, "%s\n", rerun ? " (second run)" : "");
    }
}

int main(int argc, char **argv)
{
    static gen g;
    if (setup(&g, argc, argv) < 0)
        return 1;
    /* several generators storming one server start together (bench.py) */
    if (g.o.start_at > gen_clock()) {
        struct timespec at = {(time_t)(g.o.start_at / 1000000000ull),
                              (long)(g.o.start_at % 1000000000ull)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR &&
               !stop_requested)
            ;
    }
    double cpu0 = cpu_seconds();
    uint64_t wall0 = gen_clock();
    run_setup(&g);
    g.setup_cpu = (cpu_seconds() - cpu0) / ((double)(gen_clock() - wall0) / 1e9);
    /* each rate at most twice (--rerun-late-steps) */
    step_stats *steps = calloc(2 * (size_t)g.o.nrates + 1, sizeof *steps);
    if (!steps)
        return 1;
    int nsteps = 0;
    double capacity = 0;
    if (g.o.hold_s >= 0 && !stop_requested) {
        run_hold(&g);
    } else {
        int again = 0;
        for (int k = 0; k < g.o.nrates && !stop_requested; k++) {
            step_stats *st = &steps[nsteps++];
            dump_mark mark = g.dump ? dump_here(g.dump) : (dump_mark){0, 0};
            run_step(&g, st, g.o.rates[k], again);
            enum step_next next = step_after(st, g.o.rerun_late);
            if ((again = next == STEP_SAME_RATE)) {
                if (g.dump)
                    dump_rewind(g.dump, mark);
                k--;
                continue;
            }
            if (next == STEP_STOP)
                break;
            if (g.o.rates[k] > capacity)
                capacity = g.o.rates[k];
        }
    }
    double total = (cpu_seconds() - cpu0) / ((double)(gen_clock() - wall0) / 1e9);
    report_print(&g, steps, nsteps, total, capacity);
    free(steps);
    /* after the report, which stays valid: only the dump is incomplete */
    if (g.dump && dump_finish(g.dump, g.o.dump) < 0)
        return 1;
    return 0;
}
