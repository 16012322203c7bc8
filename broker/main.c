/* confab-broker: owns a shard of the rooms and bridges them to Redis.
 *
 *   confab-broker --shard I --shards N   run shard I of N
 *   confab-broker [--shards N]           run every shard, one process each */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "config.h"
#include "cpusched.h"
#include "log.h"
#include "startup.h"
#include "supervisor.h"

static struct cf_config g_cfg;
static int g_shards;

static int shard_main(int index, void *arg)
{
    (void)arg;
    char name[32];
    snprintf(name, sizeof name, "broker-%d", index);
    cf_log_set_process(name);
    return broker_run(&g_cfg, (uint32_t)index, (uint32_t)g_shards);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: confab-broker [--shard I] [--shards N] [--check-config] [--check-ports]\n"
            "                     [--version]\n"
            "  --shard I       run only shard I (0 <= I < N); without it, run all N shards\n"
            "  --shards N      number of shards (default: BROKERS)\n"
            "  --check-config  validate the environment, print the settings and exit\n"
            "  --check-ports   check that the shards' BROKER_METRICS_PORTs are free and exit\n"
            "                  (0 free, 1 one is held: the log says which)\n"
            "Settings come from the environment and ./.env; see README.md.\n");
}

static int parse_num(const char *s, int max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"shard", required_argument, NULL, 's'},
                                         {"shards", required_argument, NULL, 'n'},
                                         {"check-config", no_argument, NULL, 'c'},
                                         {"check-ports", no_argument, NULL, 'p'},
                                         {"version", no_argument, NULL, CF_START_OPT_VERSION},
                                         {"help", no_argument, NULL, CF_START_OPT_HELP},
                                         {NULL, 0, NULL, 0}};
    int shard = -1, shards = -1, c;
    enum { RUN, CHECK_CONFIG, CHECK_PORTS } mode = RUN;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (parse_num(optarg, 1023, &shard) < 0) {
                fprintf(stderr, "confab-broker: --shard must be an integer from 0 to 1023\n");
                return 2;
            }
            break;
        case 'n':
            if (parse_num(optarg, 1024, &shards) < 0 || shards < 1) {
                fprintf(stderr, "confab-broker: --shards must be an integer from 1 to 1024\n");
                return 2;
            }
            break;
        case 'c':
            mode = CHECK_CONFIG;
            break;
        case 'p':
            mode = CHECK_PORTS;
            break;
        default:
            return cf_start_option(c, "confab-broker", usage);
        }
    }
    if (cf_start_no_args("confab-broker", argc, argv, optind) < 0) {
        usage(stderr);
        return 2;
    }
    if (cf_start_config("confab-broker", "broker", &g_cfg) < 0)
        return 2;
    g_shards = shards > 0 ? shards : g_cfg.brokers;
    if (shard >= g_shards) {
        fprintf(stderr, "confab-broker: --shard %d is not below the shard count %d\n", shard,
                g_shards);
        return 2;
    }
    /* --shards may be above BROKERS, which the configuration checked */
    if (g_cfg.broker_metrics_port && g_cfg.broker_metrics_port + g_shards - 1 > 65535) {
        fprintf(stderr, "confab-broker: BROKER_METRICS_PORT=%d + %d shards - 1 is past 65535 "
                        "(shard i listens on BROKER_METRICS_PORT + i); choose a lower port\n",
                g_cfg.broker_metrics_port, g_shards);
        return 2;
    }
    if (g_shards != g_cfg.brokers && cf_config_port_overlaps(&g_cfg, g_shards))
        return 2;
    if (mode == CHECK_CONFIG) {
        cf_config_print(&g_cfg, stdout);
        return 0;
    }
    /* BROKER_METRICS_PORT + shard, for each shard this process runs */
    int first = shard >= 0 ? shard : 0, last = shard >= 0 ? shard : g_shards - 1;
    for (int i = first; g_cfg.broker_metrics_port > 0 && i <= last; i++)
        if (cf_start_port_free("BROKER_METRICS_PORT", cf_config_ops_addr(&g_cfg),
                               g_cfg.broker_metrics_port + i) < 0)
            return 1;
    if (mode == CHECK_PORTS) /* what run-all asks before it starts anything */
        return 0;
    cf_cpusched_apply(g_cfg.sched_batch);
    /* a link per gateway process of the node and a few to Redis: the usual
     * 1024 is plenty, but a larger hard limit costs nothing to take */
    cf_start_raise_files("broker", 1024);
    if (shard >= 0)
        return shard_main(shard, NULL);
    CF_INFO("broker", "running %d shards", g_shards);
    return cf_sup_run("broker shard", g_shards, shard_main, NULL, 10000, g_cfg.supervisor_watchdog);
}
