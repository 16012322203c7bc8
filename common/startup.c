#include "startup.h"

#include "log.h"

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

int cf_start_config(const char *prog, const char *process, struct cf_config *cfg)
{
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
