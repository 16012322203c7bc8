/* proc: see proc.h. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"

/* Processes that failed h_stop_clean's checks, and processes h_stop left
 * after SIGKILL: h_finish fails the test on either. */
static int g_unclean, g_unreaped;

void h_die_with_parent(pid_t parent)
{
    /* A test that dies (an abort skips atexit and every stop) takes what it
     * started with it, instead of leaving servers running. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(125);
}

int h_spawn(struct h_proc *p, const char *name, const char *cwd, char *const argv[],
            const char *const env[])
{
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->log, sizeof p->log, "%s/%s.log", h_tmpdir(), name);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        h_die_with_parent(parent);
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        /* Tests configure everything explicitly: nothing from the caller's
         * environment or a .env file may leak in. */
        // clang-format off
        static const char *const scrub[] = {
            "PORT",           "LISTEN_ADDR",       "GATEWAY_WORKERS",
            "FRONTEND_DIR",   "JWT_SECRET",        "JWT_TTL",
            "DEFAULT_ROOM",   "MAX_MESSAGE_BYTES", "MAX_CLIENT_QUEUE_BYTES",
            "PING_INTERVAL",  "PING_TIMEOUT",      "DRAIN_TIMEOUT_MS",
            "BROKERS",        "RUN_DIR",           "MAX_LINK_QUEUE_BYTES",
            "LOG_LEVEL",      "CONFAB_DEV",        "REDIS_ADDR",
            "REDIS_PASSWORD", "CONFAB_ENV_FILE",   "MAX_ROOMS_PER_CONN",
            "API_KEY",        "ALLOWED_ORIGINS",   "HISTORY_SIZE",
            "HISTORY_TTL",    "DEDUP_WINDOW",      "PRESENCE_TTL",
            "LOG_FORMAT",     "METRICS_PORT",      "BROKER_METRICS_PORT",
            "JWT_ALG",        "JWT_PUBLIC_KEY",    "JWT_PRIVATE_KEY",
            "JWT_ISSUER",     "JWT_AUDIENCE",      "JWT_LEEWAY",
            "JWT_USER_CLAIM", "TLS_CERT",          "TLS_KEY",
            "RATE_MSGS",      "RATE_BURST",        "LOGIN_RATE",
            "LOGIN_BURST",    "UPGRADE_RATE",      "UPGRADE_BURST",
            "MAX_CONNS_PER_IP", "HANDSHAKE_TIMEOUT",
            /* what a service manager hands its services: a test run inside
             * a systemd unit must not pass its own to the daemons */
            "NOTIFY_SOCKET",  "WATCHDOG_USEC",     "WATCHDOG_PID",
            "LISTEN_FDS",     "LISTEN_PID",        "LISTEN_FDNAMES",
            "JOURNAL_STREAM",
            NULL};
        // clang-format on
        for (int i = 0; scrub[i]; i++)
            unsetenv(scrub[i]);
        setenv("CONFAB_ENV_FILE", "/dev/null", 1); /* no file of settings */
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        if (cwd && chdir(cwd) < 0)
            _exit(126);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    p->sent = 0;
    p->status = 0;
    p->died = false;
    p->kills_children = false;
    return 0;
}

static unsigned long long sig_bit(int sig)
{
    return sig >= 1 && sig <= 64 ? 1ULL << (sig - 1) : 0;
}

int h_kill(struct h_proc *p, int sig)
{
    if (p->pid <= 0) {
        errno = ESRCH;
        return -1;
    }
    p->sent |= sig_bit(sig);
    return kill(p->pid, sig);
}

/* Whether the test caused this end: a signal it sent, or any exit once it
 * had asked for one (a forced stop may exit non-zero; a test that cares
 * takes the status with h_wait_exit). */
static bool caused_by_test(const struct h_proc *p, int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    if (WIFSIGNALED(status))
        return (p->sent & sig_bit(WTERMSIG(status))) != 0;
    return WIFEXITED(status) && (p->sent & ~(sig_bit(SIGSTOP) | sig_bit(SIGCONT))) != 0;
}

void h_describe_status(int status, char *buf, size_t cap)
{
    if (status == -1)
        snprintf(buf, cap, "did not exit in time and was killed");
    else if (WIFEXITED(status))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "was killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, cap, "ended with wait status %d", status);
}

bool h_alive(struct h_proc *p)
{
    if (p->pid <= 0)
        return false;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
        p->pid = -p->pid; /* remember it, but it is gone */
        p->status = status;
        p->died = !caused_by_test(p, status);
        if (p->died) {
            char how[128];
            h_describe_status(status, how, sizeof how);
            printf("harness: %s (pid %d) %s, and the test did not stop it (log %s)\n", p->name,
                   (int)-p->pid, how, p->log);
            fflush(stdout);
        }
        return false;
    }
    return r == 0;
}

bool h_death_report(struct h_proc *p, char *how, size_t cap)
{
    if (p->pid > 0 || !p->died)
        return false;
    p->died = false;
    h_describe_status(p->status, how, cap);
    return true;
}

int h_reap(pid_t pid, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    int status;
    while (h_now_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        h_sleep_ms(10);
    }
    return -2;
}

int h_reap_killed(pid_t pid, const char *name, const char *log)
{
    int status = h_reap(pid, H_KILL_REAP_MS);
    if (status == -2) {
        /* Stuck in the kernel (state D): the test goes on without it
         * rather than hang until ctest's timeout, and fails. */
        printf("harness: %s (pid %d) was still there %d ms after SIGKILL; left unreaped%s%s%s\n",
               name, (int)pid, H_KILL_REAP_MS, log ? " (log " : "", log ? log : "", log ? ")" : "");
        fflush(stdout);
        g_unreaped++;
    }
    return status;
}

int h_wait_exit(struct h_proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    int status = h_reap(p->pid, timeout_ms);
    if (status == -2)
        return -1;
    p->pid = 0;
    return status;
}

int h_children(pid_t pid, pid_t *out, int cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int n = 0;
    for (int child; f && n < cap && fscanf(f, "%d", &child) == 1;)
        out[n++] = child;
    if (f)
        fclose(f);
    return n;
}

void h_files_limit(pid_t pid, unsigned long *soft, unsigned long *hard)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    *soft = *hard = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Max open files %lu %lu", soft, hard) == 2)
            break;
    if (f)
        fclose(f);
}

/* Stops every descendant of pid, depth first, each before its own children
 * are read (so that none forks or restarts another meanwhile), then kills
 * it. pid itself must be stopped already. */
static void kill_descendants(pid_t pid, int depth)
{
    pid_t kids[64];
    int n = depth < 6 ? h_children(pid, kids, 64) : 0;
    for (int i = 0; i < n; i++) {
        kill(kids[i], SIGSTOP);
        kill_descendants(kids[i], depth + 1);
        kill(kids[i], SIGKILL);
    }
}

int h_stop(struct h_proc *p, int sig, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    h_kill(p, sig);
    int status = h_wait_exit(p, timeout_ms);
    if (status == -1 && p->pid > 0) {
        p->sent |= sig_bit(SIGKILL);
        /* its children too: once it is gone they would belong to init and
         * run on after the test (a script such as run-all.sh) */
        kill(p->pid, SIGSTOP);
        kill_descendants(p->pid, 0);
        kill(p->pid, SIGKILL);
        h_reap_killed(p->pid, p->name, p->log);
        p->pid = 0;
        return -1;
    }
    return status;
}

void h_dump_log(const struct h_proc *p, int lines)
{
    if (!p->log[0])
        return;
    char cmd[700];
    printf("----- last %d lines of %s -----\n", lines, p->log);
    fflush(stdout);
    snprintf(cmd, sizeof cmd, "tail -n %d '%s'", lines, p->log);
    if (system(cmd) != 0)
        printf("(no log)\n");
    fflush(stdout);
}

long h_log_mark(const struct h_proc *p)
{
    struct stat st;
    return stat(p->log, &st) == 0 ? (long)st.st_size : 0;
}

int h_log_count_from(const struct h_proc *p, long mark, const char *needle)
{
    FILE *f = fopen(p->log, "r");
    int n = 0;
    if (!f)
        return 0;
    if (fseek(f, mark, SEEK_SET) == 0) {
        char line[4096];
        while (fgets(line, sizeof line, f))
            n += strstr(line, needle) != NULL;
    }
    fclose(f);
    return n;
}

bool h_log_contains(const struct h_proc *p, const char *needle, int timeout_ms)
{
    return h_log_contains_from(p, 0, needle, timeout_ms);
}

bool h_log_contains_from(const struct h_proc *p, long mark, const char *needle, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    do {
        FILE *f = fopen(p->log, "r");
        if (f && fseek(f, mark, SEEK_SET) != 0) {
            fclose(f);
            f = NULL;
        }
        if (f) {
            char line[4096];
            while (fgets(line, sizeof line, f))
                if (strstr(line, needle)) {
                    fclose(f);
                    return true;
                }
            fclose(f);
        }
        h_sleep_ms(20);
    } while (h_now_ms() < deadline);
    return false;
}

int h_finish(int cmocka_rc)
{
    if (g_unclean)
        printf("harness: %d process(es) did not stop cleanly; failing\n", g_unclean);
    if (g_unreaped)
        printf("harness: %d process(es) outlived SIGKILL; failing\n", g_unreaped);
    return cmocka_rc || g_unclean || g_unreaped ? 1 : 0;
}

/* The first line of p's log that contains both a and b (into line), or
 * false. */
static bool log_line_with(const struct h_proc *p, const char *a, const char *b, char *line,
                          size_t cap)
{
    FILE *f = fopen(p->log, "r");
    bool found = false;
    while (f && !found && fgets(line, (int)cap, f))
        found = strstr(line, a) && strstr(line, b);
    if (f)
        fclose(f);
    return found;
}

int h_stop_clean(struct h_proc *p)
{
    int bad = 0;
    bool lost = false; /* counted by h_stop, not again here */
    char how[128];
    if (h_death_report(p, how, sizeof how)) {
        printf("harness: %s %s while the test had not stopped it (log %s)\n", p->name, how, p->log);
        bad = 1;
    } else if (p->pid <= 0) {
        return 0; /* killed and reaped by the test on purpose */
    } else {
        int unreaped = g_unreaped;
        int status = h_stop(p, SIGTERM, 15000);
        if (g_unreaped != unreaped) {
            /* h_stop said so and counted it for h_finish */
            printf(
                "harness: %s did not exit within 15 s of SIGTERM, and outlived SIGKILL (log %s)\n",
                p->name, p->log);
            lost = true;
        } else if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            h_describe_status(status, how, sizeof how);
            printf("harness: %s did not exit cleanly on SIGTERM: it %s (log %s)\n", p->name, how,
                   p->log);
            bad = 1;
        }
    }
    static const char *const reports[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                          "runtime error:", NULL};
    for (int i = 0; reports[i]; i++)
        if (h_log_contains(p, reports[i], 0)) {
            printf("harness: %s logged a sanitizer report (%s)\n", p->name, reports[i]);
            bad = 1;
        }
    /* A supervisor restarts a crashed worker and serves on: only its log
     * tells (common/supervisor.c) */
    char line[4096];
    if (!p->kills_children &&
        (log_line_with(p, "was killed by signal", "; restarting it in", line, sizeof line) ||
         log_line_with(p, "exited with status", "; restarting it in", line, sizeof line))) {
        printf("harness: %s restarted a child that died unasked (a signal the test did not "
               "send, or a failing exit) (log %s):\n  %s",
               p->name, p->log, line);
        bad = 1;
    }
    if (bad || lost)
        h_dump_log(p, 60);
    if (bad)
        g_unclean++;
    return bad || lost;
}

long h_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n))
            kib = strtol(line + n, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}
