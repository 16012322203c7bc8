#include "supervisor.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"

#define STABLE_MS 10000
#define ABORT_GRACE_MS 5000 /* from SIGABRT to SIGKILL (a core dump takes a while) */

struct child {
    pid_t pid;
    int64_t started, restart_at; /* restart_at > 0: waiting to be restarted */
    int64_t last_ping, aborted;  /* watchdog: last WATCHDOG=1; when SIGABRT went */
    struct cf_backoff bo;
};

static sigset_t g_oldmask;
/* The master's signals as a descriptor, so that one wait covers them and the
 * children's notify socket (-1: sigtimedwait alone). */
static int g_sig_fd = -1;

/* The children's notify socket (watchdog on), or -1. */
static int g_wd_fd = -1;
static int64_t g_wd_ms;
/* "@..." as NOTIFY_SOCKET spells an abstract address */
static char g_wd_name[sizeof(struct sockaddr_un)];

static void watchdog_open(int watchdog_s)
{
    if (watchdog_s <= 0 || getenv("NOTIFY_SOCKET"))
        return; /* off, or a service manager watches (systemd: WatchdogSec=) */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* random: two masters of one network namespace (two containers of a
     * pod, both pid 1) may start in the same millisecond */
    int n = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "confab-sup-%d-%016llx",
                     (int)getpid(), (unsigned long long)cf_random_u64());
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) < 0) {
        CF_WARN("supervisor",
                "cannot open the children's watchdog socket (%s): a stuck child "
                "will not be restarted",
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    snprintf(g_wd_name, sizeof g_wd_name, "@%s", sa.sun_path + 1);
    g_wd_fd = fd;
    g_wd_ms = (int64_t)watchdog_s * 1000;
}

/* In the child: where and how often sd_notify's WATCHDOG=1 goes. */
static void watchdog_child_env(void)
{
    if (g_wd_fd < 0)
        return;
    close(g_wd_fd);
    g_wd_fd = -1;
    char usec[32], pid[16];
    snprintf(usec, sizeof usec, "%lld", (long long)g_wd_ms * 1000);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("NOTIFY_SOCKET", g_wd_name, 1);
    setenv("WATCHDOG_USEC", usec, 1);
    setenv("WATCHDOG_PID", pid, 1);
}

/* Takes every datagram waiting; a WATCHDOG=1 refreshes its sender. */
static void watchdog_read(struct child *kids, int n, int64_t now)
{
    for (;;) {
        char buf[512];
        union {
            struct cmsghdr h;
            char space[CMSG_SPACE(sizeof(struct ucred))];
        } ctl;
        struct iovec iov = {buf, sizeof buf - 1};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof ctl};
        ssize_t len = recvmsg(g_wd_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (len < 0)
            return;
        buf[len] = '\0';
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS)
            continue;
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        /* READY, STATUS and STOPPING come here too: only the pings count */
        bool ping = !strncmp(buf, "WATCHDOG=1", 10) || strstr(buf, "\nWATCHDOG=1");
        for (int i = 0; ping && i < n; i++)
            if (kids[i].pid == cred.pid)
                kids[i].last_ping = now;
    }
}

/* A child silent for the watchdog's time is stuck: SIGABRT (a core shows
 * where), then SIGKILL; reaping restarts it. */
static void watchdog_check(const char *what, struct child *kids, int n, int64_t now)
{
    for (int i = 0; i < n; i++) {
        struct child *c = &kids[i];
        if (!c->pid)
            continue;
        if (!c->aborted && now - c->last_ping > g_wd_ms) {
            CF_ERROR("supervisor",
                     "%s %d (pid %d) sent no watchdog ping in %lld s: its loop is "
                     "stuck; aborting it (SIGABRT) to restart it",
                     what, i, (int)c->pid, (long long)(g_wd_ms / 1000));
            kill(c->pid, SIGABRT);
            c->aborted = now;
        } else if (c->aborted && now - c->aborted > ABORT_GRACE_MS) {
            kill(c->pid, SIGKILL);
        }
    }
}

static pid_t spawn(int index, cf_sup_main_fn fn, void *arg)
{
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid; /* parent, or -1 */
    /* Child: die with the master, undo the master's signal setup. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master)
        _exit(1);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, &g_oldmask, NULL);
    if (g_sig_fd >= 0)
        close(g_sig_fd);
    watchdog_child_env();
    _exit(fn(index, arg));
}

static void describe(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "stopped (status %d)", status);
}

/* Waits up to wait_ms for a signal of `set` (its number, or -1) or a
 * datagram on the children's notify socket. Their sd_notify blocks once a
 * few datagrams wait unread (net.unix.max_dgram_qlen, 10 in a new network
 * namespace), so the socket is read as soon as anything comes, not once a
 * pass: a dozen workers all saying STOPPING=1 at once froze the rest in
 * sd_notify, before they had closed their listeners or their clients. */
static int wait_event(const sigset_t *set, int64_t wait_ms)
{
    if (g_sig_fd < 0) {
        struct timespec ts = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L};
        return sigtimedwait(set, NULL, &ts);
    }
    struct pollfd p[2] = {{g_sig_fd, POLLIN, 0}, {g_wd_fd, POLLIN, 0}};
    poll(p, g_wd_fd >= 0 ? 2 : 1, (int)wait_ms);
    struct signalfd_siginfo si;
    return read(g_sig_fd, &si, sizeof si) == (ssize_t)sizeof si ? (int)si.ssi_signo : -1;
}

int cf_sup_run(const char *what, int n, cf_sup_main_fn child_main, void *arg, int grace_ms,
               int watchdog_s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &g_oldmask);
    /* a log line to a closed pipe (run-all | tee, tee gone) must not kill
     * the one process that stops the others */
    signal(SIGPIPE, SIG_IGN);
    g_sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

    struct child *kids = calloc((size_t)n, sizeof *kids);
    if (!kids) {
        CF_ERROR("supervisor", "out of memory");
        if (g_sig_fd >= 0)
            close(g_sig_fd);
        g_sig_fd = -1;
        return 1;
    }
    watchdog_open(watchdog_s);
    int64_t now = cf_mono_ms();
    for (int i = 0; i < n; i++) {
        cf_backoff_init(&kids[i].bo, 200, 10000);
        kids[i].restart_at = now; /* start right away */
    }

    int stopping = 0, alive = 0, rc = 0;
    bool unclean = false; /* a child killed, or failing, while stopping */
    int64_t deadline = 0;
    for (;;) {
        now = cf_mono_ms();
        int64_t next = now + 1000;
        for (int i = 0; i < n && !stopping; i++) {
            struct child *c = &kids[i];
            if (c->pid || !c->restart_at)
                continue;
            if (c->restart_at <= now) {
                c->pid = spawn(i, child_main, arg);
                if (c->pid < 0) {
                    c->pid = 0;
                    c->restart_at = now + cf_backoff_next(&c->bo);
                    CF_ERROR("supervisor", "cannot fork %s %d: %s; retrying", what, i,
                             strerror(errno));
                } else {
                    c->started = c->last_ping = now;
                    c->aborted = 0;
                    c->restart_at = 0;
                    alive++;
                    CF_DEBUG("supervisor", "%s %d started as pid %d", what, i, (int)c->pid);
                }
            }
            if (c->restart_at && c->restart_at < next)
                next = c->restart_at;
        }
        if (g_wd_fd >= 0) {
            watchdog_read(kids, n, now); /* while stopping too: see wait_event */
            if (!stopping)
                watchdog_check(what, kids, n, now);
        }
        if (stopping) {
            if (alive == 0)
                break;
            if (now >= deadline) {
                for (int i = 0; i < n; i++)
                    if (kids[i].pid) {
                        CF_WARN("supervisor", "%s %d (pid %d) did not stop in %d ms; killing it",
                                what, i, (int)kids[i].pid, grace_ms);
                        kill(kids[i].pid, SIGKILL);
                    }
                deadline = now + 5000;
            }
            next = deadline < next ? deadline : next;
        }

        int64_t wait = next - now;
        if (wait < 0)
            wait = 0;
        int sig = wait_event(&set, wait);
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                CF_INFO("supervisor", "received %s; stopping %d %s(s)", strsignal(sig), alive,
                        what);
                stopping = 1;
                deadline = cf_mono_ms() + grace_ms;
                for (int i = 0; i < n; i++)
                    if (kids[i].pid)
                        kill(kids[i].pid, SIGTERM);
            }
        } else if (sig == SIGHUP) {
            CF_INFO("supervisor", "SIGHUP ignored (restart the service to reload settings)");
        }
        /* Reap whatever exited (SIGCHLD or not: signals coalesce). */
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                struct child *c = &kids[i];
                if (c->pid != pid)
                    continue;
                c->pid = 0;
                alive--;
                char how[96];
                describe(status, how, sizeof how);
                if (stopping) {
                    bool clean = WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
                                                       WEXITSTATUS(status) == CF_SUP_EXIT_CONFIG);
                    if (!clean) /* the exit status says so: a drain cut short */
                        unclean = true;
                    cf_log(clean ? CF_LOG_DEBUG : CF_LOG_WARN, "supervisor", "%s %d (pid %d) %s%s",
                           what, i, (int)pid, how, clean ? "" : " while stopping");
                    break;
                }
                if (WIFEXITED(status) && WEXITSTATUS(status) == CF_SUP_EXIT_CONFIG) {
                    CF_ERROR("supervisor", "%s %d (pid %d) cannot run with these settings (see "
                             "its error above); stopping all", what, i, (int)pid);
                    rc = CF_SUP_EXIT_CONFIG;
                    stopping = 1;
                    deadline = now + grace_ms;
                    for (int j = 0; j < n; j++)
                        if (kids[j].pid)
                            kill(kids[j].pid, SIGTERM);
                    break;
                }
                now = cf_mono_ms();
                if (now - c->started >= STABLE_MS)
                    cf_backoff_reset(&c->bo);
                uint32_t delay = cf_backoff_next(&c->bo);
                c->restart_at = now + delay;
                CF_ERROR("supervisor", "%s %d (pid %d) %s; restarting it in %u ms", what, i,
                         (int)pid, how, delay);
                break;
            }
        }
    }
    free(kids);
    if (g_wd_fd >= 0) {
        close(g_wd_fd);
        g_wd_fd = -1;
    }
    if (g_sig_fd >= 0) {
        close(g_sig_fd);
        g_sig_fd = -1;
    }
    CF_INFO("supervisor", "all %s(s) stopped%s", what,
            unclean ? ", not all of them cleanly (see above)" : "");
    sigprocmask(SIG_SETMASK, &g_oldmask, NULL);
    return rc ? rc : unclean ? CF_SUP_EXIT_CUT_SHORT : 0;
}
