/* confab-gateway: serves the browser client, issues guest tokens, and speaks
 * WebSocket to clients and the wire protocol to the brokers.
 *
 * With GATEWAY_WORKERS > 1 the first process supervises that many worker
 * processes, which share PORT through SO_REUSEPORT. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "cpusched.h"
#include "gateway.h"
#include "jalloc.h"
#include "log.h"
#include "startup.h"
#include "supervisor.h"

static struct cf_config g_cfg;

static int worker_main(int index, void *arg)
{
    (void)arg;
    char name[32];
    snprintf(name, sizeof name, "gateway-%d", index);
    cf_log_set_process(name);
    return gw_run(&g_cfg, index);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: confab-gateway [--check-config] [--check-ports] [--version]\n"
                 "  --check-config  validate the environment, print the settings and exit\n"
                 "  --check-ports   check that PORT and the METRICS_PORTs are free and exit\n"
                 "                  (0 free, 1 one is held: the log says which)\n"
                 "Settings come from the environment and ./.env; see README.md.\n");
}

/* The ports this process would bind are free (cf_start_port_free): PORT,
 * and each worker's METRICS_PORT + i. Under systemd socket activation the
 * socket units hold PORT (shared on purpose) and hand each instance its
 * socket, and only one process can take it. Returns 0, or the status to
 * exit with: 2 for a setting to change (the units do not restart on it), 1
 * for a port held (a restart may find it free). */
static int check_ports(void)
{
    int activated = sd_listen_fds(0); /* 0: LISTEN_* stay for gw_run */
    if (activated > 0 && g_cfg.gateway_workers > 1) {
        CF_ERROR("gateway", "systemd passed a listening socket, which only one process can "
                 "accept on, and GATEWAY_WORKERS is %d: set GATEWAY_WORKERS=1 and run one "
                 "instance per socket unit (confab-gateway@.socket); not starting",
                 g_cfg.gateway_workers);
        return 2;
    }
    if (activated <= 0 && cf_start_port_free("PORT", g_cfg.listen_addr, g_cfg.port) < 0)
        return 1;
    for (int i = 0; g_cfg.metrics_port > 0 && i < g_cfg.gateway_workers; i++)
        if (cf_start_port_free("METRICS_PORT", cf_config_ops_addr(&g_cfg), g_cfg.metrics_port + i) <
            0)
            return 1;
    return 0;
}

/* Under this, say so at start: a gateway process is sized for tens of
 * thousands of connections (the unit gives 262144) */
#define GATEWAY_WANT_FILES 16384

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"check-config", no_argument, NULL, 'c'},
                                         {"check-ports", no_argument, NULL, 'p'},
                                         {"version", no_argument, NULL, CF_START_OPT_VERSION},
                                         {"help", no_argument, NULL, CF_START_OPT_HELP},
                                         {NULL, 0, NULL, 0}};
    jalloc_install(); /* before any json_t exists */
    enum { RUN, CHECK_CONFIG, CHECK_PORTS } mode = RUN;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            mode = CHECK_CONFIG;
            break;
        case 'p':
            mode = CHECK_PORTS;
            break;
        default:
            return cf_start_option(c, "confab-gateway", usage);
        }
    }
    if (cf_start_no_args("confab-gateway", argc, argv, optind) < 0) {
        usage(stderr);
        return 2;
    }
    if (cf_start_config("confab-gateway", "gateway", &g_cfg) < 0)
        return 2;
    /* the keys are read and checked once here, so that a bad one stops the
     * process with its reason instead of failing every worker in turn */
    struct auth *probe = auth_from_config(&g_cfg);
    if (!probe) {
        fprintf(stderr, "confab-gateway: invalid JWT settings, not starting\n");
        return 2;
    }
    auth_free(probe);
    if (mode == CHECK_CONFIG) {
        cf_config_print(&g_cfg, stdout);
        return 0;
    }
    if (mode == CHECK_PORTS) /* what run-all asks before it starts anything */
        return check_ports();
    if (g_cfg.jwt_secret_is_dev) {
        if (!g_cfg.dev) {
            fprintf(stderr, "confab-gateway: JWT_SECRET is not set. Set it to at least 32 random "
                            "bytes (e.g. `openssl rand -hex 32`), or set CONFAB_DEV=1 to use the "
                            "built-in development secret on a machine nobody else can reach.\n");
            return 2;
        }
        CF_WARN("gateway", "JWT_SECRET is not set: using the built-in DEVELOPMENT secret. "
                "Anyone can forge tokens. Set JWT_SECRET (>= 32 random bytes) in production.");
    }
    int rc = check_ports();
    if (rc)
        return rc;
    cf_cpusched_apply(g_cfg.sched_batch);
    /* before the workers fork, which inherit it; lws sizes its table in
     * each (gateway.c create_context) */
    cf_start_raise_files("gateway", GATEWAY_WANT_FILES);
    if (g_cfg.gateway_workers == 1)
        return worker_main(0, NULL);
    CF_INFO("gateway", "starting %d workers on port %d", g_cfg.gateway_workers, g_cfg.port);
    return cf_sup_run("gateway worker", g_cfg.gateway_workers, worker_main, NULL,
                      g_cfg.drain_timeout_ms + 5000, g_cfg.supervisor_watchdog);
}
