/* report: the time series (RSS of every confab process every 10 s, latency
 * percentiles and acks per minute, faults) written as CSV rows
 * `t_s,series,name,value` as they happen, and the summary printed at the end.
 *
 * Processes are found through the supervisor's pid files (<pids>/<name>.pid),
 * re-read at every sample, so a restarted process is followed (and marked
 * with * in the summary's RSS table). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "soak.h"

#define MAX_PROCS 16
#define MAX_SAMPLES 8192
#define MAX_MINUTES 1024

struct proc {
    char name[48];
    pid_t last_pid;
};

struct sample {
    double t;
    long rss_kb[MAX_PROCS]; /* -1: not running at that moment */
    bool restarted[MAX_PROCS];
};

struct minute {
    struct soak_lat lat;
    uint64_t acks;
    char faults[160];
};

static FILE *g_csv;
static struct proc g_procs[MAX_PROCS];
static int g_nprocs;
static struct sample *g_samples;
static int g_nsamples;
static struct minute g_minutes[MAX_MINUTES];
static int g_nminutes;
static uint64_t g_acks_before;
static int g_faults_by_kind[8];
static const char *const g_fault_kinds[] = {"broker kills", "gateway kills", "Redis pauses",
                                            "Redis restarts", "slow consumers"};

void report_open(void)
{
    g_samples = calloc(MAX_SAMPLES, sizeof *g_samples);
    if (!g_csv && g_cfg.csv) {
        g_csv = fopen(g_cfg.csv, "w");
        if (!g_csv)
            perror(g_cfg.csv);
        else
            fprintf(g_csv, "t_s,series,name,value\n");
    }
}

static void row(const char *series, const char *name, double v)
{
    if (!g_csv)
        return;
    fprintf(g_csv, "%.1f,%s,%s,%.3f\n", soak_elapsed(), series, name, v);
    fflush(g_csv);
}

void report_fault(int kind, const char *desc)
{
    g_faults_by_kind[kind]++;
    soak_log("fault: %s", desc);
    row("fault", desc, 1);
    int m = (int)(soak_elapsed() / 60);
    if (m < MAX_MINUTES) {
        char *f = g_minutes[m].faults;
        size_t n = strlen(f);
        int len = (int)strcspn(desc, "("); /* without the pid */
        while (len > 0 && desc[len - 1] == ' ')
            len--;
        snprintf(f + n, sizeof g_minutes[m].faults - n, "%s%.*s", n ? ", " : "", len, desc);
    }
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct proc *)a)->name, ((const struct proc *)b)->name);
}

/* The process names, from the pid files (once: the set does not change). */
static void find_procs(void)
{
    DIR *d = g_cfg.pids_dir ? opendir(g_cfg.pids_dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) && g_nprocs < MAX_PROCS - 1) {
        size_t n = strlen(e->d_name);
        if (n > 4 && n < 48 && !strcmp(e->d_name + n - 4, ".pid"))
            snprintf(g_procs[g_nprocs++].name, sizeof g_procs[0].name, "%.*s", (int)(n - 4),
                     e->d_name);
    }
    if (d)
        closedir(d);
    qsort(g_procs, (size_t)g_nprocs, sizeof *g_procs, cmp_name);
    snprintf(g_procs[g_nprocs++].name, sizeof g_procs[0].name, "soak"); /* this program */
}

int report_pid(const char *name)
{
    if (!strcmp(name, "soak"))
        return getpid();
    char path[512];
    snprintf(path, sizeof path, "%s/%s.pid", g_cfg.pids_dir, name);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

void report_sample_rss(void)
{
    if (!g_nprocs)
        find_procs();
    if (g_nsamples >= MAX_SAMPLES)
        return;
    struct sample *s = &g_samples[g_nsamples++];
    s->t = soak_elapsed();
    for (int i = 0; i < g_nprocs; i++) {
        pid_t pid = report_pid(g_procs[i].name);
        s->rss_kb[i] = rss_kb(pid);
        s->restarted[i] = g_procs[i].last_pid && pid != g_procs[i].last_pid;
        g_procs[i].last_pid = pid;
        if (s->rss_kb[i] >= 0)
            row("rss_kb", g_procs[i].name, (double)s->rss_kb[i]);
    }
}

void report_minute(void)
{
    if (g_nminutes >= MAX_MINUTES)
        return;
    struct minute *m = &g_minutes[g_nminutes++];
    ledger_latency_take(&m->lat);
    m->acks = g_st.acks - g_acks_before;
    g_acks_before = g_st.acks;
    row("acks_per_min", "all", (double)m->acks);
    row("latency_ms", "deliveries", (double)m->lat.n);
    row("latency_ms", "p50", m->lat.p50);
    row("latency_ms", "p90", m->lat.p90);
    row("latency_ms", "p99", m->lat.p99);
    row("latency_ms", "max", m->lat.max);
    soak_log("minute %d: %llu acks, %llu live deliveries, latency p50 %.1f p99 %.1f max %.1f ms",
             g_nminutes, (unsigned long long)m->acks, (unsigned long long)m->lat.n, m->lat.p50,
             m->lat.p99, m->lat.max);
}

void report_close(void)
{
    if (g_csv)
        fclose(g_csv);
    g_csv = NULL;
}

/* ---- the summary -------------------------------------------------------------- */

static void line(const char *label, uint64_t v, const char *note)
{
    printf("  %-44s %10llu%s%s\n", label, (unsigned long long)v, note ? "  " : "",
           note ? note : "");
}

static const char *bug(uint64_t v)
{
    return v ? "<-- BUG" : NULL;
}

static void print_faults(void)
{
    printf("faults:");
    int any = 0;
    for (int k = 0; k < 5; k++)
        if (g_faults_by_kind[k])
            printf("%s %d %s", any++ ? "," : "", g_faults_by_kind[k], g_fault_kinds[k]);
    printf("%s\n\n", any ? "" : " none");
}

static void print_counts(void)
{
    char note[160];
    printf("sends (each message once, however often it was transmitted)\n");
    line("messages sent", g_st.sends, NULL);
    line("acknowledged", g_st.acks, NULL);
    snprintf(note, sizeof note,
             "unavailable %llu, timeout %llu, internal %llu, busy %llu, other %llu",
             (unsigned long long)g_st.err_unavailable, (unsigned long long)g_st.err_timeout,
             (unsigned long long)g_st.err_internal, (unsigned long long)g_st.err_busy,
             (unsigned long long)g_st.err_other);
    line("answers that were errors (then resent)",
         g_st.err_unavailable + g_st.err_timeout + g_st.err_internal + g_st.err_busy +
             g_st.err_other,
         note);
    line("transmissions (first sends and resends)", g_st.transmissions, NULL);
    line("resends with the same id", g_st.resends, NULL);
    line("sends never answered", g_st.unanswered_sends, bug(g_st.unanswered_sends));
    line("other requests never answered", g_st.unanswered_other, bug(g_st.unanswered_other));
    line("a resend acked under another id", g_st.ack_conflicts, bug(g_st.ack_conflicts));
    line("not acknowledged when the run ended", g_st.never_acked, bug(g_st.never_acked));
    printf("\ndeliveries (client, message) for every member present from send to ack\n");
    line("expected", g_st.expected, NULL);
    line("received exactly once", g_st.delivered_once, NULL);
    line("lost", g_st.lost, bug(g_st.lost));
    line("duplicated (any client, any message)", g_st.duplicated, bug(g_st.duplicated));
    line("out of order", g_st.rx_out_of_order, bug(g_st.rx_out_of_order));
    line("stored twice (one send, two ids)", g_st.stored_twice, bug(g_st.stored_twice));
    line("excused: server said it could not recover", g_st.excused, NULL);
    line("missed in the 10 s before a leave", g_st.tail_missed, NULL);
    line("live deliveries", g_st.rx_live, NULL);
    line("replayed on rejoin (since/epoch)", g_st.rx_recovery, NULL);
    line("repeats in server-sent joined, dropped", g_st.rx_replay_skipped, NULL);
    line("messages before their joined", g_st.rx_before_joined, NULL);
    line("unexpected events", g_st.rx_unknown + g_st.rx_stray, NULL);
    printf("\nrooms and connections\n");
    line("fresh joins", g_st.joins, NULL);
    line("rejoins with since", g_st.rejoins, NULL);
    line("  recovered", g_st.recovered, NULL);
    line("  not recovered (incl. server-sent)", g_st.not_recovered, NULL);
    line("  epoch changed", g_st.epoch_changes, NULL);
    line("server-sent joined", g_st.unasked_joined, NULL);
    line("join errors (retried)", g_st.join_errors, NULL);
    line("rejoins refused", g_st.rejoin_refused, NULL);
    line("leaves", g_st.leaves, NULL);
    line("history pages checked ok", g_st.history_ok, NULL);
    line("  bad", g_st.history_bad, bug(g_st.history_bad));
    line("  errors", g_st.history_errors, NULL);
    line("connects", g_st.connects, NULL);
    line("failed connects", g_st.connect_failures, NULL);
    snprintf(note, sizeof note, "1001 %llu, 1008 %llu, 1012 %llu, other %llu, no close frame %llu",
             (unsigned long long)g_st.closes_1001, (unsigned long long)g_st.closes_1008,
             (unsigned long long)g_st.closes_1012, (unsigned long long)g_st.closes_other,
             (unsigned long long)g_st.drops_eof);
    line("connections lost",
         g_st.closes_1001 + g_st.closes_1008 + g_st.closes_1012 + g_st.closes_other +
             g_st.drops_eof,
         note);
    line("dropped by the client (overdue answer)", g_st.aborts, NULL);
    line("longest stretch this program did not poll, ms", g_st.loop_max_gap_ms, NULL);
}

static void print_rss(void)
{
    if (!g_nsamples)
        return;
    printf("\nRSS in MB (* = restarted since the previous row)\n  %6s", "t");
    for (int i = 0; i < g_nprocs; i++)
        printf(" %10.10s", g_procs[i].name);
    printf("\n");
    bool restarted[MAX_PROCS] = {0};
    double next = 0;
    for (int k = 0; k < g_nsamples; k++) {
        const struct sample *s = &g_samples[k];
        for (int i = 0; i < g_nprocs; i++)
            restarted[i] |= s->restarted[i];
        if (s->t + 0.5 < next && k != g_nsamples - 1)
            continue;
        next = s->t - (double)((long)s->t % 60) + 60;
        printf("  %5.0fs", s->t);
        for (int i = 0; i < g_nprocs; i++) {
            if (s->rss_kb[i] < 0)
                printf(" %10s", "-");
            else
                printf(" %9.1f%s", (double)s->rss_kb[i] / 1024, restarted[i] ? "*" : " ");
            restarted[i] = false;
        }
        printf("\n");
    }
}

static void print_minutes(void)
{
    printf("\nper minute: acks, live deliveries, send->receive latency (ms), faults\n");
    printf("  %4s %7s %9s %8s %8s %8s %8s  %s\n", "min", "acks", "delivered", "p50", "p90", "p99",
           "max", "faults");
    for (int i = 0; i < g_nminutes; i++) {
        const struct minute *m = &g_minutes[i];
        printf("  %4d %7llu %9llu %8.1f %8.1f %8.1f %8.1f  %s\n", i + 1,
               (unsigned long long)m->acks, (unsigned long long)m->lat.n, m->lat.p50, m->lat.p90,
               m->lat.p99, m->lat.max, m->faults);
    }
}

void report_summary(double traffic_s)
{
    printf("\n==== confab soak: %.0f s of traffic, %d clients%s, %d rooms, %.0f msg/s, faults %s",
           traffic_s, g_cfg.clients, g_cfg.faults ? " + 1 slow consumer" : "", g_cfg.rooms,
           g_cfg.rate, g_cfg.faults ? "on" : "off");
    if (g_cfg.faults)
        printf(" (every %d s)", g_cfg.fault_every);
    printf(", seed %llu ====\n", (unsigned long long)g_cfg.seed);
    print_faults();
    print_counts();
    print_minutes();
    print_rss();
    uint64_t bugs = g_st.lost + g_st.duplicated + g_st.rx_out_of_order + g_st.stored_twice +
                    g_st.unanswered_sends + g_st.unanswered_other + g_st.ack_conflicts +
                    g_st.never_acked + g_st.history_bad;
    printf("\nverdict: %s\n",
           bugs ? "PROBLEMS FOUND (see the lines marked BUG and the log)"
                : "no message lost, duplicated or reordered; every send answered");
    fflush(stdout);
}

bool report_clean(void)
{
    return !(g_st.lost + g_st.duplicated + g_st.rx_out_of_order + g_st.stored_twice +
             g_st.unanswered_sends + g_st.unanswered_other + g_st.ack_conflicts + g_st.never_acked +
             g_st.history_bad);
}
