/* Unit tests for common/config: defaults, overrides, validation, .env files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "dotenv.h"
#include "stderr_catch.h"

/* Every variable of the table in config.c, plus the .env selector and the
 * extra names the .env tests define. */
static const char *const all_vars[] = {
    "PORT",         "LISTEN_ADDR",       "GATEWAY_WORKERS",     "FRONTEND_DIR",
    "JWT_SECRET",   "JWT_TTL",           "DEFAULT_ROOM",        "MAX_MESSAGE_BYTES",
    "MAX_CLIENT_QUEUE_BYTES", "PING_INTERVAL", "PING_TIMEOUT", "DRAIN_TIMEOUT_MS",
    "BROKERS",      "RUN_DIR",           "MAX_LINK_QUEUE_BYTES", "LOG_LEVEL",
    "CONFAB_DEV",   "SCHED_BATCH",       "REDIS_ADDR",        "REDIS_PASSWORD",      "CONFAB_ENV_FILE",
    "CONFAB_TEST_EXTRA", "CONFAB_TEST_EXTRA2",
    "CONFAB_TEST_EXTRA3", "HISTORY_TTL",   "DEDUP_WINDOW", "ALLOWED_ORIGINS",
};

static char g_olddir[PATH_MAX];
static char g_tmpdir[64];

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    if (!getcwd(g_olddir, sizeof g_olddir))
        return -1;
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/confab-config-XXXXXX");
    if (!mkdtemp(g_tmpdir) || chdir(g_tmpdir) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clear_env();
    unlink(".env");
    unlink("other.env");
    if (chdir(g_olddir) != 0)
        return -1;
    rmdir(g_tmpdir);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* cf_config_load with stderr silenced: the failures are expected. */
static int load_quiet(struct cf_config *cfg)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int devnull = open("/dev/null", O_WRONLY);
    if (saved >= 0 && devnull >= 0)
        dup2(devnull, STDERR_FILENO);
    int rc = cf_config_load(cfg);
    fflush(stderr);
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    if (devnull >= 0)
        close(devnull);
    return rc;
}

/* cf_config_load with stderr caught: what it said, NUL-terminated. */
static int load_said(struct cf_config *cfg, char *said, size_t cap)
{
    struct stderr_catch c;
    stderr_catch_begin(&c);
    int rc = cf_config_load(cfg);
    stderr_catch_end(&c, said, cap);
    return rc;
}

/* A refused value is shown with its controls and non-ASCII bytes escaped:
 * the message goes to a terminal. */
static void test_refused_values_are_shown_escaped(void **state)
{
    (void)state;
    clear_env();
    setenv("LOG_LEVEL", "\x1b[31mred\x9b", 1);
    struct cf_config cfg;
    char said[2048];
    assert_int_equal(load_said(&cfg, said, sizeof said), -1);
    if (!strstr(said, "LOG_LEVEL=\"\\x1b[31mred\\x9b\"") || strchr(said, '\x1b'))
        fail_msg("said: %s", said);
    /* REDIS_ADDR's reason names the server it refuses: escaped there too */
    clear_env();
    setenv("REDIS_ADDR", "\x1b[2Jx", 1);
    assert_int_equal(load_said(&cfg, said, sizeof said), -1);
    if (!strstr(said, "\\x1b[2Jx") || strchr(said, '\x1b'))
        fail_msg("said: %s", said);
    clear_env();
    char longer[1000];
    memset(longer, '7', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    setenv("PORT", longer, 1);
    assert_int_equal(load_said(&cfg, said, sizeof said), -1);
    assert_non_null(strstr(said, "777..."));
    assert_true(strlen(said) < 600);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cf_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 8080);
    assert_string_equal(cfg.listen_addr, "");
    assert_int_equal(cfg.gateway_workers, 2);
    size_t fl = strlen(cfg.frontend_dir);
    assert_true(fl >= 8);
    assert_string_equal(cfg.frontend_dir + fl - 8, "frontend");
    assert_string_equal(cfg.jwt_secret, CF_DEV_JWT_SECRET);
    assert_true(cfg.jwt_secret_is_dev);
    assert_int_equal(cfg.jwt_ttl, 3600);
    assert_string_equal(cfg.default_room, "general");
    assert_int_equal(cfg.max_message_bytes, 4096);
    assert_int_equal(cfg.max_client_queue_bytes, 262144);
    assert_int_equal(cfg.ping_interval, 30);
    assert_int_equal(cfg.ping_timeout, 10);
    assert_int_equal(cfg.drain_timeout_ms, 5000);
    assert_int_equal(cfg.brokers, 2);
    assert_string_equal(cfg.run_dir, "./run");
    assert_int_equal(cfg.max_link_queue_bytes, 67108864);
    assert_int_equal(cfg.log_level, CF_LOG_INFO);
    assert_false(cfg.dev);
    assert_true(cfg.sched_batch);
    assert_string_equal(cfg.redis_addr, "127.0.0.1:6379");
    assert_string_equal(cfg.redis_password, "");
}

static void test_overrides(void **state)
{
    (void)state;
    static const char secret[] = "0123456789abcdef0123456789abcdef!";
    setenv("PORT", "9000", 1);
    setenv("LISTEN_ADDR", "::1", 1);
    setenv("GATEWAY_WORKERS", "8", 1);
    setenv("FRONTEND_DIR", "/srv/confab/www", 1);
    setenv("JWT_SECRET", secret, 1);
    setenv("JWT_TTL", "60", 1);
    setenv("DEFAULT_ROOM", "lobby", 1);
    setenv("MAX_MESSAGE_BYTES", "65536", 1);
    setenv("MAX_CLIENT_QUEUE_BYTES", "262144", 1);
    setenv("PING_INTERVAL", "5", 1);
    setenv("PING_TIMEOUT", "3600", 1);
    setenv("DRAIN_TIMEOUT_MS", "0", 1);
    setenv("BROKERS", "16", 1);
    setenv("RUN_DIR", "/run/confab", 1);
    setenv("MAX_LINK_QUEUE_BYTES", "1073741824", 1);
    setenv("LOG_LEVEL", "DEBUG", 1);
    setenv("CONFAB_DEV", "1", 1);
    setenv("SCHED_BATCH", "0", 1);
    setenv("REDIS_ADDR", "[::1]:6380", 1);
    setenv("REDIS_PASSWORD", "hunter2", 1);
    struct cf_config cfg;
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 9000);
    assert_string_equal(cfg.listen_addr, "::1");
    assert_int_equal(cfg.gateway_workers, 8);
    assert_string_equal(cfg.frontend_dir, "/srv/confab/www");
    assert_string_equal(cfg.jwt_secret, secret);
    assert_false(cfg.jwt_secret_is_dev);
    assert_int_equal(cfg.jwt_ttl, 60);
    assert_string_equal(cfg.default_room, "lobby");
    assert_int_equal(cfg.max_message_bytes, 65536);
    assert_int_equal(cfg.max_client_queue_bytes, 262144);
    assert_int_equal(cfg.ping_interval, 5);
    assert_int_equal(cfg.ping_timeout, 3600);
    assert_int_equal(cfg.drain_timeout_ms, 0);
    assert_int_equal(cfg.brokers, 16);
    assert_string_equal(cfg.run_dir, "/run/confab");
    assert_int_equal(cfg.max_link_queue_bytes, 1073741824);
    assert_int_equal(cfg.log_level, CF_LOG_DEBUG);
    assert_true(cfg.dev);
    assert_false(cfg.sched_batch);
    assert_string_equal(cfg.redis_addr, "[::1]:6380");
    assert_string_equal(cfg.redis_password, "hunter2");

    /* Edges of the ranges and other accepted spellings. */
    clear_env();
    setenv("PORT", " 1 ", 1);
    setenv("LISTEN_ADDR", "127.0.0.1", 1);
    setenv("GATEWAY_WORKERS", "64", 1);
    setenv("BROKERS", "1024", 1);
    setenv("LOG_LEVEL", "error", 1);
    setenv("CONFAB_DEV", "yes", 1);
    setenv("JWT_TTL", "2592000", 1);
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 1);
    assert_int_equal(cfg.gateway_workers, 64);
    assert_int_equal(cfg.brokers, 1024);
    assert_int_equal(cfg.log_level, CF_LOG_ERROR);
    assert_true(cfg.dev);
    assert_int_equal(cfg.jwt_ttl, 2592000);

    clear_env();
    setenv("PORT", "65535", 1);
    setenv("CONFAB_DEV", "false", 1);
    setenv("LOG_LEVEL", "Warn", 1);
    setenv("JWT_SECRET", "", 1); /* empty: the development secret */
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 65535);
    assert_false(cfg.dev);
    assert_int_equal(cfg.log_level, CF_LOG_WARN);
    assert_true(cfg.jwt_secret_is_dev);
    assert_string_equal(cfg.jwt_secret, CF_DEV_JWT_SECRET);
}

static void test_invalid_values(void **state)
{
    (void)state;
    char long_dir[121];
    memset(long_dir, 'd', 120);
    long_dir[0] = '/';
    long_dir[120] = '\0';
    const struct {
        const char *name, *value;
    } cases[] = {
        {"PORT", "abc"},
        {"PORT", "0"},
        {"PORT", "70000"},
        {"PORT", "-1"},
        {"PORT", "80x"},
        {"PORT", ""},
        {"PORT", "99999999999999999999999"},
        {"BROKERS", "0"},
        {"SCHED_BATCH", "sometimes"},
        {"BROKERS", "1025"},
        {"GATEWAY_WORKERS", "0"},
        {"GATEWAY_WORKERS", "65"},
        {"JWT_TTL", "5"},
        {"MAX_MESSAGE_BYTES", "255"},
        {"MAX_LINK_QUEUE_BYTES", "1048575"},
        {"DEFAULT_ROOM", "a b"},
        {"DEFAULT_ROOM", ""},
        {"LISTEN_ADDR", "localhost"},
        {"REDIS_ADDR", "nocolon"},
        {"REDIS_ADDR", "host:99999"},
        {"REDIS_ADDR", ""},
        {"LOG_LEVEL", "loud"},
        {"LOG_LEVEL", ""},
        {"JWT_SECRET", "short"},
        {"JWT_SECRET", "0123456789abcdef0123456789abcde"}, /* 31 bytes */
        {"CONFAB_DEV", "maybe"},
        {"CONFAB_DEV", "2"},
        {"RUN_DIR", long_dir},
        {"RUN_DIR", ""},
        {"FRONTEND_DIR", ""},
        {"REDIS_PASSWORD", "bad\xff"},
        /* The gateway splits the list at commas and spaces: a word after an
         * origin would be one more ("null": sandboxed and file: pages). */
        {"ALLOWED_ORIGINS", "https://chat.example.com null"},
        {"ALLOWED_ORIGINS", "https://a.example junk"},
        {"ALLOWED_ORIGINS", "https://a.example,"},
        {"ALLOWED_ORIGINS", "https://a.example,,https://b.example"},
        {"ALLOWED_ORIGINS", "https://a.example/"},
        {"ALLOWED_ORIGINS", "https://a.example\tnull"},
        {"ALLOWED_ORIGINS", "https://"},
        {"ALLOWED_ORIGINS", "null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_env();
        setenv(cases[i].name, cases[i].value, 1);
        struct cf_config cfg;
        int rc = load_quiet(&cfg);
        if (rc != -1)
            fail_msg("%s=\"%s\" was accepted", cases[i].name, cases[i].value);
    }
    /* A de-duplication id must not outlive its room's epoch. */
    clear_env();
    setenv("HISTORY_TTL", "120", 1);
    struct cf_config c2;
    assert_int_equal(load_quiet(&c2), -1); /* DEDUP_WINDOW's default is 300 */
    setenv("DEDUP_WINDOW", "120", 1);
    assert_int_equal(load_quiet(&c2), 0);
    unsetenv("DEDUP_WINDOW");
    /* A client's queue holds two of the largest message events (each up to
     * twice its text): one long message must not close a room's members. */
    clear_env();
    setenv("MAX_MESSAGE_BYTES", "65536", 1);
    setenv("MAX_CLIENT_QUEUE_BYTES", "262143", 1);
    assert_int_equal(load_quiet(&c2), -1);
    setenv("MAX_CLIENT_QUEUE_BYTES", "262144", 1);
    assert_int_equal(load_quiet(&c2), 0);
    setenv("MAX_MESSAGE_BYTES", "4096", 1);
    setenv("MAX_CLIENT_QUEUE_BYTES", "16384", 1); /* the lowest queue bound */
    assert_int_equal(load_quiet(&c2), 0);
    setenv("MAX_MESSAGE_BYTES", "4097", 1);
    assert_int_equal(load_quiet(&c2), -1);
    /* Ports of different listeners must not overlap: with SO_REUSEPORT both
     * bind, and the kernel splits the connections between them. */
    static const char *const ports[][6] = {
        /* PORT, METRICS_PORT, GATEWAY_WORKERS, BROKER_METRICS_PORT, BROKERS, ok */
        {"18080", "18079", "2", "0", "2", "no"},     /* worker 1's metrics port is PORT */
        {"18080", "18081", "2", "18082", "2", "no"}, /* 18081-18082 and 18082-18083 */
        {"18080", "0", "2", "18079", "2", "no"},     /* shard 1's is PORT */
        {"18080", "18081", "2", "18083", "2", "yes"}, {"18080", "18078", "2", "0", "2", "yes"},
        {"18080", "0", "64", "0", "1024", "yes"},
    };
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        clear_env();
        setenv("PORT", ports[i][0], 1);
        setenv("METRICS_PORT", ports[i][1], 1);
        setenv("GATEWAY_WORKERS", ports[i][2], 1);
        setenv("BROKER_METRICS_PORT", ports[i][3], 1);
        setenv("BROKERS", ports[i][4], 1);
        int want = strcmp(ports[i][5], "yes") == 0 ? 0 : -1;
        if (load_quiet(&c2) != want)
            fail_msg("ports case %zu: want %d", i, want);
    }
    /* A path that must be a readable file is not a directory. */
    clear_env();
    char file[] = "/tmp/confab-test-config-XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    close(fd);
    setenv("TLS_CERT", file, 1);
    setenv("TLS_KEY", file, 1);
    assert_int_equal(load_quiet(&c2), 0);
    setenv("TLS_KEY", "/tmp", 1);
    assert_int_equal(load_quiet(&c2), -1);
    unsetenv("TLS_CERT");
    unsetenv("TLS_KEY");
    unlink(file);
    /* Several bad values at once are still just -1. */
    clear_env();
    setenv("PORT", "0", 1);
    setenv("BROKERS", "0", 1);
    struct cf_config cfg;
    assert_int_equal(load_quiet(&cfg), -1);
}

static void test_allowed_origins(void **state)
{
    (void)state;
    static const char *const good[] = {
        "*",
        "https://chat.example.com",
        "https://chat.example.com,http://localhost:8080",
        " https://a.example , http://[::1]:8080 ",
        "http://127.0.0.1:8080,https://xn--bcher-kva.example",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        clear_env();
        setenv("ALLOWED_ORIGINS", good[i], 1);
        struct cf_config cfg;
        if (load_quiet(&cfg) != 0)
            fail_msg("ALLOWED_ORIGINS=\"%s\" was refused", good[i]);
        assert_string_equal(cfg.allowed_origins, good[i]);
    }
}

static void test_run_dir_socket_limit(void **state)
{
    (void)state;
    /* sun_path holds 108 bytes including the NUL. */
    char dir[100];
    struct cf_config cfg;
    memset(dir, 'r', sizeof dir);
    dir[0] = '/';
    dir[90] = '\0'; /* 90 + strlen("/broker-1.sock") = 104 */
    setenv("RUN_DIR", dir, 1);
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_string_equal(cfg.run_dir, dir);
    setenv("BROKERS", "1024", 1); /* 90 + strlen("/broker-1023.sock") = 107 */
    assert_int_equal(cf_config_load(&cfg), 0);
    dir[90] = 'r';
    dir[91] = '\0'; /* 108: no room for the NUL */
    setenv("RUN_DIR", dir, 1);
    assert_int_equal(load_quiet(&cfg), -1);
    setenv("BROKERS", "2", 1);
    assert_int_equal(cf_config_load(&cfg), 0);
}

static void test_redis_addr_parse(void **state)
{
    (void)state;
    struct cf_redis_addr a;
    assert_int_equal(cf_redis_addr_parse("127.0.0.1:6379", &a), 0);
    assert_false(a.is_unix);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 6379);

    assert_int_equal(cf_redis_addr_parse("[::1]:6380", &a), 0);
    assert_false(a.is_unix);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 6380);

    assert_int_equal(cf_redis_addr_parse("redis.example:6379", &a), 0);
    assert_false(a.is_unix);
    assert_string_equal(a.host, "redis.example");
    assert_int_equal(a.port, 6379);

    assert_int_equal(cf_redis_addr_parse("my-redis_1:1", &a), 0);
    assert_string_equal(a.host, "my-redis_1");
    assert_int_equal(a.port, 1);
    assert_int_equal(cf_redis_addr_parse("h:65535", &a), 0);
    assert_int_equal(a.port, 65535);

    assert_int_equal(cf_redis_addr_parse("unix:/tmp/r.sock", &a), 0);
    assert_true(a.is_unix);
    assert_string_equal(a.host, "/tmp/r.sock");
    assert_int_equal(a.port, 0);

    static const char *const bad[] = {
        "",          ":6379",      "h:",        "unix:",        "[::1]6379", "h:0",
        "h:65536",   "h:99999",    "h:12x",     "a:b:1",        "[::1]:",    "[]:1",
        "[::1:6379", "host name:1", "h/x:1",    "h:6379 ",      "nocolon",
        "h: 6379",   "h:+6379",    "[::1]:-1",  "h:\t1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&a, 0x5a, sizeof a);
        if (cf_redis_addr_parse(bad[i], &a) != -1)
            fail_msg("\"%s\" was accepted", bad[i]);
    }
    /* A unix path that does not fit a sockaddr_un. */
    char path[200] = "unix:/";
    memset(path + 6, 'p', 120);
    path[126] = '\0';
    assert_int_equal(cf_redis_addr_parse(path, &a), -1);
    path[5 + 107] = '\0'; /* 107 bytes of path: fits with its NUL */
    assert_int_equal(cf_redis_addr_parse(path, &a), 0);
    assert_true(a.is_unix);
    assert_int_equal(strlen(a.host), 107);
}

/* REDIS_ADDR with several servers: each element checked and named when bad. */
static void test_redis_addr_list(void **state)
{
    (void)state;
    struct cf_redis_addr a[CF_REDIS_MAX_SERVERS];
    char why[300];
    assert_int_equal(cf_redis_addrs_parse("h:1", a, 64, why, sizeof why), 1);
    assert_string_equal(a[0].host, "h");
    assert_int_equal(
        cf_redis_addrs_parse("10.0.0.1:6379, [::1]:6380 ,unix:/run/r.sock", a, 64, why, sizeof why),
        3);
    assert_string_equal(a[0].host, "10.0.0.1");
    assert_string_equal(a[1].host, "::1");
    assert_int_equal(a[1].port, 6380);
    assert_true(a[2].is_unix);
    assert_string_equal(a[2].host, "/run/r.sock");

    static const struct {
        const char *list, *why;
    } bad[] = {
        {"", "server 1 is empty"},
        {"h:1,", "server 2 is empty"},
        {"h:1,,h:2", "server 2 is empty"},
        {",h:1", "server 1 is empty"},
        {"h:1, ", "server 2 is empty"},
        {"h:1,h:2,localhost", "server 3 (\"localhost\") is not"},
        {"h:1,h:0", "server 2 (\"h:0\") is not"},
        {"h:1,unix:", "server 2 (\"unix:\") is not"},
        {"h:1,h:2,h:1", "server 3 (\"h:1\") is also server 1"},
        {"unix:/a,h:1, unix:/a", "server 3 (\"unix:/a\") is also server 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        if (cf_redis_addrs_parse(bad[i].list, a, 64, why, sizeof why) != -1)
            fail_msg("\"%s\" was accepted", bad[i].list);
        if (!strstr(why, bad[i].why))
            fail_msg("\"%s\": \"%s\" does not say \"%s\"", bad[i].list, why, bad[i].why);
    }
    /* The bound: 64 servers are fine, 65 are not. */
    char list[65 * 16] = "";
    for (int i = 0; i < 65; i++) {
        char one[16];
        snprintf(one, sizeof one, "%sh:%d", i ? "," : "", i + 1);
        strcat(list, one);
        int n = cf_redis_addrs_parse(list, a, CF_REDIS_MAX_SERVERS, why, sizeof why);
        assert_int_equal(n, i < 64 ? i + 1 : -1);
    }
    assert_non_null(strstr(why, "at most 64 servers"));
    /* why may be NULL */
    assert_int_equal(cf_redis_addrs_parse("h:1,h:1", a, 64, NULL, 0), -1);
}

/* Through the configuration: a bad element stops the load; a list loads. */
static void test_redis_addr_list_config(void **state)
{
    (void)state;
    struct cf_config cfg;
    setenv("REDIS_ADDR", "127.0.0.1:7001,127.0.0.1:7002,unix:/tmp/r3.sock", 1);
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_string_equal(cfg.redis_addr, "127.0.0.1:7001,127.0.0.1:7002,unix:/tmp/r3.sock");
    setenv("REDIS_ADDR", "127.0.0.1:7001,127.0.0.1:7001", 1);
    assert_int_equal(load_quiet(&cfg), -1);
    setenv("REDIS_ADDR", "127.0.0.1:7001,nope", 1);
    assert_int_equal(load_quiet(&cfg), -1);
}

static void test_dotenv(void **state)
{
    (void)state;
    write_file(".env",
               "# a comment line\n"
               "\n"
               "   \n"
               "PORT=9001\n"
               "BROKERS=4\n"
               "     GATEWAY_WORKERS = 3  \n"
               "DEFAULT_ROOM=\"lobby\"   \n"
               "JWT_SECRET='0123456789abcdef0123456789abcdef single'\n"
               "FRONTEND_DIR=\"/srv/my frontend # not a comment\"\n"
               "LOG_LEVEL=warn\n"
               "REDIS_PASSWORD=p#ss word\n"
               "RUN_DIR = /tmp/confab run \n"
               "LISTEN_ADDR=\n"
               "CONFAB_TEST_EXTRA=\"tab\\there\\nnewline \\\"q\\\" \\\\\"\n"
               "CONFAB_TEST_EXTRA2='no \\n escapes'\n"
               "\t# an indented comment\n");
    setenv("PORT", "7000", 1); /* already set: wins over .env */
    struct cf_config cfg;
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 7000);
    assert_int_equal(cfg.brokers, 4);
    assert_int_equal(cfg.gateway_workers, 3);
    assert_string_equal(cfg.default_room, "lobby");
    assert_string_equal(cfg.jwt_secret, "0123456789abcdef0123456789abcdef single");
    assert_false(cfg.jwt_secret_is_dev);
    assert_string_equal(cfg.frontend_dir, "/srv/my frontend # not a comment");
    assert_int_equal(cfg.log_level, CF_LOG_WARN);
    assert_string_equal(cfg.redis_password, "p#ss word");
    assert_string_equal(cfg.run_dir, "/tmp/confab run");
    assert_string_equal(cfg.listen_addr, "");
    /* systemd keeps a backslash in double quotes unless it escapes " \ ` $ */
    assert_string_equal(getenv("CONFAB_TEST_EXTRA"), "tab\\there\\nnewline \"q\" \\");
    assert_string_equal(getenv("CONFAB_TEST_EXTRA2"), "no \\n escapes");
    assert_string_equal(getenv("PORT"), "7000");
    assert_string_equal(getenv("BROKERS"), "4");

    /* A file without a final newline; CRLF line ends. */
    clear_env();
    write_file(".env", "PORT=9002\r\nBROKERS=5");
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 9002);
    assert_int_equal(cfg.brokers, 5);

    /* An empty file and a missing file are fine. */
    clear_env();
    write_file(".env", "");
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 8080);
    unlink(".env");
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cf_dotenv_load("does-not-exist.env", false), 0);

    /* ... but not a file named by CONFAB_ENV_FILE, nor one that cannot be
     * read: --check-config would pass on the defaults */
    assert_int_equal(cf_dotenv_load("does-not-exist.env", true), -1);
    assert_int_equal(mkdir("a-directory.env", 0700), 0);
    assert_int_equal(cf_dotenv_load("a-directory.env", false), -1);
    rmdir("a-directory.env");
}

/* The daemons run under systemd's EnvironmentFile= (systemd.exec(5), systemd
 * 252), and --check-config reads the same file: it must see what they will.
 * The last line setting a variable wins (the first used to), a "#" in an
 * unquoted value is part of it (it used to start a comment, so
 * HISTORY_TTL=3600 # one hour passed --check-config while the daemon refused
 * it), and backslashes follow systemd's rules (in double quotes \n used to
 * become a newline). */
static void test_dotenv_reads_like_systemd(void **state)
{
    (void)state;
    struct cf_config cfg;
    write_file(".env", "PORT=9001\n"
                       "BROKERS=3\n"
                       "PORT=9002\n"
                       "BROKERS=5\n");
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 9002);
    assert_int_equal(cfg.brokers, 5);
    /* The real environment still wins over every line of the file. */
    clear_env();
    setenv("PORT", "7000", 1);
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 7000);
    assert_int_equal(cfg.brokers, 5);

    /* A number with a comment after it is not a number. */
    clear_env();
    write_file(".env", "HISTORY_TTL=3600 # one hour\n");
    assert_int_equal(load_quiet(&cfg), -1);
    assert_string_equal(getenv("HISTORY_TTL"), "3600 # one hour");
    /* A string keeps it. */
    clear_env();
    write_file(".env", "REDIS_PASSWORD=s3cret # the prod one\n"
                       "FRONTEND_DIR=/srv/www#1\n");
    assert_int_equal(load_quiet(&cfg), 0);
    assert_string_equal(cfg.redis_password, "s3cret # the prod one");
    assert_string_equal(cfg.frontend_dir, "/srv/www#1");

    /* Backslashes: unquoted, one keeps the next character; in double quotes
     * only \" \\ \` \$ are escapes; in single quotes none is. */
    clear_env();
    write_file(".env", "CONFAB_TEST_EXTRA=a\\b\\\\c\\ d\\#\n"
                       "CONFAB_TEST_EXTRA2=\"\\n\\t\\x \\\" \\\\ \\` \\$ \\'\"\n"
                       "CONFAB_TEST_EXTRA3='\\n \\\\'\n");
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_string_equal(getenv("CONFAB_TEST_EXTRA"), "ab\\c d#");
    assert_string_equal(getenv("CONFAB_TEST_EXTRA2"), "\\n\\t\\x \" \\ ` $ \\'");
    assert_string_equal(getenv("CONFAB_TEST_EXTRA3"), "\\n \\\\");
}

static void test_dotenv_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "JUSTAKEY\n",
        "PORT=9000\nJUSTAKEY\n",
        "1BAD=x\n",
        "BAD-NAME=1\n",
        "=value\n",
        "KEY=\"unterminated\n",
        "KEY='unterminated\n",
        "KEY=\"a\" junk\n",
        "KEY=\"a\" # systemd would keep this in the value\n",
        "KEY='a' # and this\n",
        "KEY=continued \\\nON_THE_NEXT_LINE\n",
        "KEY=\"continued \\\nON_THE_NEXT_LINE\"\n",
        "export\n",
        /* systemd ignores the whole line: refused, not read differently */
        "export BROKERS=4\n",
        "PORT=9000\n  export\tPORT=9001\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        write_file(".env", bad[i]);
        struct cf_config cfg;
        if (load_quiet(&cfg) != -1)
            fail_msg(".env \"%s\" was accepted", bad[i]);
    }
    /* A NUL byte cut the line short there: PORT=90 was read. */
    clear_env();
    FILE *f = fopen(".env", "w");
    assert_non_null(f);
    assert_int_equal(fwrite("PORT=90\0"
                            "00\n",
                            1, 11, f),
                     11);
    assert_int_equal(fclose(f), 0);
    struct cf_config nul;
    if (load_quiet(&nul) != -1)
        fail_msg("a .env with a NUL byte was accepted (PORT %d)", nul.port);
    /* A valid file that sets an invalid value fails too. */
    clear_env();
    write_file(".env", "PORT=0\n");
    struct cf_config cfg;
    assert_int_equal(load_quiet(&cfg), -1);
}

static void test_env_file_variable(void **state)
{
    (void)state;
    write_file(".env", "PORT=9200\nBROKERS=3\n");
    write_file("other.env", "PORT=9100\n");
    char path[128];
    snprintf(path, sizeof path, "%s/other.env", g_tmpdir);
    setenv("CONFAB_ENV_FILE", path, 1);
    struct cf_config cfg;
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 9100);
    assert_int_equal(cfg.brokers, 2); /* ./.env was not read */

    clear_env();
    setenv("CONFAB_ENV_FILE", "other.env", 1); /* relative to the working directory */
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 9100);

    clear_env(); /* a file named on purpose must be there (a typo is not "no settings") */
    setenv("CONFAB_ENV_FILE", "missing.env", 1);
    assert_int_equal(cf_config_load(&cfg), -1);

    clear_env();
    setenv("CONFAB_ENV_FILE", "", 1); /* empty: ./.env */
    assert_int_equal(cf_config_load(&cfg), 0);
    assert_int_equal(cfg.port, 9200);
    assert_int_equal(cfg.brokers, 3);
}

static void test_broker_socket_path(void **state)
{
    (void)state;
    struct cf_config cfg;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.run_dir, "/run/confab");
    char out[128];
    assert_int_equal(cf_broker_socket_path(&cfg, 0, out, sizeof out), 0);
    assert_string_equal(out, "/run/confab/broker-0.sock");
    assert_int_equal(cf_broker_socket_path(&cfg, 17, out, sizeof out), 0);
    assert_string_equal(out, "/run/confab/broker-17.sock");
    strcpy(cfg.run_dir, "./run");
    assert_int_equal(cf_broker_socket_path(&cfg, 1, out, sizeof out), 0);
    assert_string_equal(out, "./run/broker-1.sock");
    /* Does not fit the output buffer. */
    assert_int_equal(cf_broker_socket_path(&cfg, 1, out, 19), -1);
    assert_int_equal(cf_broker_socket_path(&cfg, 1, out, 20), 0);
    /* Fits the buffer but not a sockaddr_un. */
    memset(cfg.run_dir, 'x', 94);
    cfg.run_dir[94] = '\0';
    assert_int_equal(cf_broker_socket_path(&cfg, 1, out, sizeof out), -1);
    cfg.run_dir[93] = '\0'; /* 93 + 14 = 107 */
    assert_int_equal(cf_broker_socket_path(&cfg, 1, out, sizeof out), 0);
}

static void test_config_print(void **state)
{
    (void)state;
    setenv("JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    setenv("REDIS_PASSWORD", "hunter2", 1);
    setenv("PORT", "8123", 1);
    struct cf_config cfg;
    assert_int_equal(cf_config_load(&cfg), 0);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    cf_config_print(&cfg, f);
    fclose(f);
    assert_non_null(strstr(text, "PORT=8123\n"));
    assert_non_null(strstr(text, "JWT_SECRET=(set, 32 bytes)\n"));
    assert_non_null(strstr(text, "REDIS_PASSWORD=(set, 7 bytes)\n"));
    assert_non_null(strstr(text, "LOG_LEVEL=info\n"));
    assert_non_null(strstr(text, "CONFAB_DEV=0\n"));
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "0123456789abcdef"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_origins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_dir_socket_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_addr_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_addr_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_addr_list_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotenv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_values_are_shown_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotenv_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotenv_reads_like_systemd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_socket_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_print, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
