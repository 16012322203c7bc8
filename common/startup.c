#include "startup.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "log.h"
#include "sock.h"

#ifndef CONFAB_VERSION
#define CONFAB_VERSION "dev"
#endif

int cf_start_option(int opt, const char *prog, void (*usage)(FILE *out))
{
    switch (opt) {
    case CF_START_OPT_VERSION:
        printf("%s %s\n", prog, CONFAB_VERSION);
        return 0;
    case CF_START_OPT_HELP:
        usage(stdout);
        return 0;
    default:
        usage(stderr);
        return 2;
    }
}

int cf_start_no_args(const char *prog, int argc, char **argv, int optind)
{
    if (optind >= argc)
        return 0;
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    return -1;
}

static void stop_signals(int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(how, &set, NULL);
}

void cf_start_release_signals(void)
{
    stop_signals(SIG_UNBLOCK);
}

int cf_start_config(const char *prog, const char *process, struct cf_config *cfg)
{
    stop_signals(SIG_BLOCK); /* until the loop takes them (startup.h) */
    cf_log_set_process(process);
    if (cf_config_load(cfg) < 0) {
        fprintf(stderr, "%s: invalid configuration, not starting\n", prog);
        return -1;
    }
    cf_log_set_level(cfg->log_level);
    cf_log_set_format(cfg->log_format);
    cf_log_detect_journal();
    return 0;
}

void cf_start_raise_files(const char *process, unsigned long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    /* At most the units' LimitNOFILE: a container's hard limit may be 2^20 or
     * more, and over TLS lws sizes (and scans) its descriptor table by the
     * soft limit (gateway.c create_context). A higher soft limit set on
     * purpose is kept. */
    rlim_t to = rl.rlim_max < CF_START_FILES_CAP ? rl.rlim_max : CF_START_FILES_CAP;
    if (rl.rlim_cur < to) {
        struct rlimit up = {to, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            CF_INFO(process, "open files limit raised from %llu to %llu (hard limit %llu)",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)to,
                    (unsigned long long)rl.rlim_max);
            rl.rlim_cur = to;
        } else {
            CF_WARN(process, "cannot raise the open files limit from %llu to %llu: %s",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)to, strerror(errno));
        }
    }
    unsigned long have = rl.rlim_cur == RLIM_INFINITY ? ~0UL : (unsigned long)rl.rlim_cur;
    if (have < want)
        CF_WARN(process, "the open files limit is %lu, under the %lu this process should "
                "have: it can hold fewer connections. Raise LimitNOFILE= in the unit, or "
                "the container's nofile ulimit", have, want);
}

int cf_start_port_free(const char *setting, const char *addr, int port)
{
    for (int waited = 0;; waited += 100) {
        if (cf_sock_tcp_port_held(addr, port) <= 0)
            return 0;
        if (waited >= CF_START_PORT_WAIT_MS)
            break;
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    CF_ERROR("startup", "port %d (%s, %s) is already in use: a confab process left running "
             "would share it through SO_REUSEPORT, and another program would make listening "
             "fail. Find it with `ss -ltnp 'sport = :%d'` and stop it, or change %s; not "
             "starting", port, *addr ? addr : "all addresses", setting, port, setting);
    return -1;
}
