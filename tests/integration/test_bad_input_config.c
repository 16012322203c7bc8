/* An invalid value for every setting of common/config.c's table, for both
 * binaries: each stops the process at start-up with exit status 2 and a
 * message naming the setting (never echoing a secret). The table is checked
 * against what --check-config prints, so a new setting without a case here
 * fails the test. */
#include "common.h"

#include <sys/wait.h>

/* An invalid value for every setting in common/config.c's table. */
static const struct {
    const char *name;
    const char *values[4];
} settings[] = {
    {"PORT", {"0", "65536", "http", "8080x"}},
    {"LISTEN_ADDR", {"localhost", "1.2.3", "::g"}},
    {"METRICS_ADDR", {"localhost", "10.0.0.256", "::1::"}},
    {"REDIS_USERNAME", {"two words", "tab\there", "bell\a"}},
    {"GATEWAY_WORKERS", {"0", "65", "two"}},
    {"FRONTEND_DIR", {""}},
    {"JWT_SECRET", {"short", "0123456789abcdef0123456789abcde"}},
    {"JWT_TTL", {"59", "2592001", "1h"}},
    {"DEFAULT_ROOM", {"", "a b", "caf\xc3\xa9"}},
    {"MAX_MESSAGE_BYTES", {"255", "65537", "4k"}},
    {"MAX_CLIENT_QUEUE_BYTES", {"16383", "67108865", "lots"}},
    {"PING_INTERVAL", {"0", "3601", "1.5"}},
    {"PING_TIMEOUT", {"0", "3601", "-1"}},
    {"DRAIN_TIMEOUT_MS", {"-1", "600001", "5s"}},
    {"METRICS_PORT", {"-1", "65536", "on"}},
    {"MAX_ROOMS_PER_CONN", {"0", "65", "many"}},
    {"MAX_PENDING_REQUESTS", {"0", "4097", "many"}},
    {"API_KEY", {"short", "fifteen-bytes!!"}},
    {"ALLOWED_ORIGINS", {"chat.example.com", "ftp://x", "https://", "https://x/path"}},
    {"JWT_ALG", {"none", "HS1", "hs256"}},
    {"JWT_PUBLIC_KEY", {"/nonexistent/public.pem"}},
    {"JWT_PRIVATE_KEY", {"/nonexistent/private.pem"}},
    {"JWT_ISSUER", {"bad\xff utf-8"}},
    {"JWT_AUDIENCE", {"bad\xff utf-8"}},
    {"JWT_LEEWAY", {"-1", "601", "5s"}},
    {"JWT_USER_CLAIM",
     {"", "a b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},
    {"TLS_CERT", {"/nonexistent/cert.pem"}},
    {"TLS_KEY", {"/nonexistent/key.pem"}},
    {"TLS_MAX_CONNS", {"255", "1048577", "lots"}},
    {"RATE_MSGS", {"-1", "1000001", "fast"}},
    {"RATE_BURST", {"0", "1000001"}},
    {"LOGIN_RATE", {"-1", "1000001", "x"}},
    {"LOGIN_BURST", {"0", "1000001"}},
    {"UPGRADE_RATE", {"-1", "1000001"}},
    {"UPGRADE_BURST", {"0", "1000001"}},
    {"MAX_CONNS_PER_IP", {"-1", "1000001"}},
    {"HANDSHAKE_TIMEOUT", {"0", "301", "10s"}},
    {"BROKERS", {"0", "1025", "two"}},
    {"RUN_DIR",
     {"", "/a/very/long/directory/name/that/cannot/hold/a/unix/socket/path/because/"
          "sun_path/is/only/108/bytes/long/really"}},
    {"MAX_LINK_QUEUE_BYTES", {"1048575", "1073741825", "64M"}},
    {"LOG_LEVEL", {"", "chatty", "INFO2"}},
    {"LOG_FORMAT", {"", "xml"}},
    {"CONFAB_DEV", {"maybe", "2"}},
    {"SCHED_BATCH", {"sometimes", "-1"}},
    {"SUPERVISOR_WATCHDOG", {"-1", "3601", "20s"}},
    {"REDIS_ADDR", {"", "localhost", "host:0", "unix:"}},
    {"REDIS_PASSWORD", {"bad\xff utf-8"}},
    {"HISTORY_SIZE", {"-1", "10001", "all"}},
    {"HISTORY_TTL", {"59", "31536001", "1d"}},
    {"DEDUP_WINDOW", {"0", "86401", "5m"}},
    {"BROKER_METRICS_PORT", {"-1", "65536", "on"}},
    {"PRESENCE_TTL", {"2", "3601", "30s"}},
};

static bool is_secret(const char *name)
{
    return !strcmp(name, "JWT_SECRET") || !strcmp(name, "API_KEY") ||
           !strcmp(name, "REDIS_PASSWORD") || !strcmp(name, "TLS_KEY");
}

static int run_check(struct h_proc *p, const char *which, const char *setting)
{
    static int n;
    char name[48];
    snprintf(name, sizeof name, "settings-%d", n++);
    const char *env[] = {"JWT_SECRET=" H_JWT_SECRET, setting, NULL}; /* the later one wins */
    char *argv[] = {(char *)h_bin(which), "--check-config", NULL};
    assert_int_equal(h_spawn(p, name, h_tmpdir(), argv, env), 0);
    int status = h_wait_exit(p, 10000);
    if (status == -1) {
        h_stop(p, SIGKILL, 1000);
        fail_msg("%s --check-config with %s did not exit", which, setting);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Every setting with an invalid value stops both binaries with status 2 and
 * one line that names it and says what is expected (never echoing a secret).
 * The table above must list every setting --check-config prints. */
static void test_every_setting_refuses_invalid_values(void **state)
{
    (void)state;
    struct h_proc p;
    assert_int_equal(run_check(&p, "gateway", "LOG_LEVEL=info"), 0);
    FILE *f = fopen(p.log, "r");
    assert_non_null(f);
    char line[1024];
    int listed = 0;
    while (fgets(line, sizeof line, f)) {
        size_t k = strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
        if (k == 0 || line[k] != '=')
            continue;
        line[k] = '\0';
        bool found = false;
        for (size_t i = 0; i < sizeof settings / sizeof *settings; i++)
            found |= !strcmp(settings[i].name, line);
        if (!found)
            fail_msg("setting %s has no invalid values in this test's table", line);
        listed++;
    }
    fclose(f);
    assert_int_equal(listed, (int)(sizeof settings / sizeof *settings));

    int wrong = 0;
    for (size_t i = 0; i < sizeof settings / sizeof *settings; i++) {
        for (size_t v = 0; v < 4 && settings[i].values[v]; v++) {
            char setting[300], expected[64];
            snprintf(setting, sizeof setting, "%s=%s", settings[i].name, settings[i].values[v]);
            snprintf(expected, sizeof expected, "config: %s", settings[i].name);
            for (int b = 0; b < 2; b++) {
                const char *which = b ? "broker" : "gateway";
                int rc = run_check(&p, which, setting);
                bool named = h_log_contains(&p, expected, 0);
                bool leaked = is_secret(settings[i].name) && *settings[i].values[v] &&
                              h_log_contains(&p, settings[i].values[v], 0);
                if (rc != 2 || !named || leaked) {
                    printf("%s with %s: exit %d%s%s\n", which, setting, rc,
                           named ? "" : ", no message naming it", leaked ? ", secret echoed" : "");
                    h_dump_log(&p, 5);
                    wrong++;
                }
            }
        }
    }
    if (wrong)
        fail_msg("%d invalid settings were not refused clearly (see above)", wrong);

    /* FRONTEND_DIR that is not a directory: the gateway refuses to start
     * with the exit code of a setting to change (2: systemd does not restart
     * it, and a supervisor of several workers stops instead of restarting
     * them for ever). */
    for (int workers = 1; workers <= 2; workers++) {
        char port[32], nworkers[32];
        snprintf(port, sizeof port, "PORT=%d", h_free_port());
        snprintf(nworkers, sizeof nworkers, "GATEWAY_WORKERS=%d", workers);
        const char *env[] = {"JWT_SECRET=" H_JWT_SECRET,      port,
                             "LISTEN_ADDR=127.0.0.1",         nworkers,
                             "FRONTEND_DIR=/nonexistent/www", NULL};
        char *argv[] = {(char *)h_bin("gateway"), NULL};
        assert_int_equal(h_spawn(&p, "no-frontend", h_tmpdir(), argv, env), 0);
        int status = h_wait_exit(&p, 10000);
        if (status == -1)
            h_stop(&p, SIGKILL, 1000);
        if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 2)
            fail_msg("GATEWAY_WORKERS=%d, FRONTEND_DIR=/nonexistent/www: %s %d, expected exit 2",
                     workers, status == -1 ? "still running after 10 s" : "status",
                     status == -1 ? 0 : status);
        assert_true(h_log_contains(&p, "FRONTEND_DIR", 0));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_setting_refuses_invalid_values),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
