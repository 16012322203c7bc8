/* config: the table of settings. See config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "dotenv.h"
#include "validate.h"

#ifndef CONFAB_FRONTEND_DIR
#define CONFAB_FRONTEND_DIR "frontend"
#endif

enum kind { K_INT, K_STR, K_LEVEL, K_BOOL, K_FORMAT };

struct var {
    const char *name;
    enum kind kind;
    size_t offset;
    size_t size;      /* K_INT: sizeof the field; K_STR: capacity */
    int64_t min, max; /* K_INT bounds */
    const char *def;
    bool secret;
    /* Extra check for strings: returns NULL or what the value must be. */
    const char *(*check)(const char *value);
    const char *help;
};

static const char *check_room(const char *v)
{
    return cf_room_valid(v, strlen(v)) ? NULL : "1-64 characters of A-Z a-z 0-9 _ . : -";
}

static const char *check_listen(const char *v)
{
    unsigned char buf[16];
    if (!*v || inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1)
        return NULL;
    return "an IPv4 or IPv6 address (empty: all addresses)";
}

/* ACL user names have no spaces or control characters (a space would split
 * the AUTH command a redis-cli user types; Redis refuses them). */
static const char *check_redis_user(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return "a Redis ACL user name: no spaces or control characters";
    return NULL;
}

static const char *check_ops_listen(const char *v)
{
    return check_listen(v) ? "an IPv4 or IPv6 address (empty: LISTEN_ADDR's)" : NULL;
}

/* The answer names the element at fault; it lives in a static buffer (the
 * configuration is loaded once, by one thread). */
static const char *check_redis(const char *v)
{
    static char why[512];
    static struct cf_redis_addr addrs[CF_REDIS_MAX_SERVERS];
    return cf_redis_addrs_parse(v, addrs, CF_REDIS_MAX_SERVERS, why, sizeof why) > 0 ? NULL
                                                                                       : why;
}

static const char *check_secret(const char *v)
{
    if (!*v)
        return NULL;
    return strlen(v) >= 32 ? NULL : "at least 32 bytes (use e.g. `openssl rand -hex 32`)";
}

static const char *check_nonempty(const char *v)
{
    return *v ? NULL : "a non-empty path";
}

static const char *check_api_key(const char *v)
{
    if (!*v)
        return NULL;
    return strlen(v) >= 16 ? NULL : "at least 16 bytes (use e.g. `openssl rand -hex 32`)";
}

/* "*" or comma-separated scheme://host[:port] origins (no path), spaces
 * allowed around each. The gateway splits the list at commas and spaces, so
 * anything else after an origin would be taken as one more: "https://a null"
 * would let in the "null" origin of sandboxed and file: pages. */
static const char *check_origins(const char *v)
{
    static const char *const what = "* or comma-separated origins like https://chat.example.com";
    if (!*v || strcmp(v, "*") == 0)
        return NULL;
    for (const char *p = v;;) {
        while (*p == ' ')
            p++;
        size_t skip = strncmp(p, "http://", 7) == 0 ? 7 : strncmp(p, "https://", 8) == 0 ? 8 : 0;
        if (!skip)
            return what;
        p += skip;
        size_t host = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789.-_[]:");
        if (host == 0)
            return what;
        p += host;
        while (*p == ' ')
            p++;
        if (!*p)
            return NULL;
        if (*p++ != ',')
            return what;
    }
}

static const char *check_jwt_alg(const char *v)
{
    static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                       "RS512", "ES256", "ES384", "ES512"};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (!strcmp(v, algs[i]))
            return NULL;
    return "one of HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384 ES512";
}

/* PORT, the gateways' METRICS_PORT + i and the brokers' BROKER_METRICS_PORT +
 * i must not share a port: every listener sets SO_REUSEPORT, so two of them
 * on one port both bind, and the kernel splits the connections between
 * them (public clients on the operations port, scrapes on the public one);
 * the start-up check of free ports cannot see it, as nothing is bound yet.
 * See config.h. */
int cf_config_port_overlaps(const struct cf_config *cfg, int brokers)
{
    const struct {
        const char *name;
        int first, n;
    } r[] = {{"PORT", cfg->port, cfg->port ? 1 : 0},
             {"METRICS_PORT + GATEWAY_WORKERS-1", cfg->metrics_port,
              cfg->metrics_port ? cfg->gateway_workers : 0},
             {brokers == cfg->brokers ? "BROKER_METRICS_PORT + BROKERS-1"
                                      : "BROKER_METRICS_PORT + --shards-1",
              cfg->broker_metrics_port, cfg->broker_metrics_port ? brokers : 0}};
    int bad = 0;
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        for (size_t j = i + 1; j < sizeof r / sizeof r[0]; j++)
            if (r[i].n && r[j].n && r[i].first < r[j].first + r[j].n &&
                r[j].first < r[i].first + r[i].n) {
                fprintf(stderr,
                        "config: %s (%d-%d) and %s (%d-%d) share a port; every process "
                        "needs its own ports (choose ranges that do not overlap)\n",
                        r[i].name, r[i].first, r[i].first + r[i].n - 1, r[j].name, r[j].first,
                        r[j].first + r[j].n - 1);
                bad++;
            }
    return bad;
}

const char *cf_config_ops_addr(const struct cf_config *cfg)
{
    return cfg->metrics_addr[0] ? cfg->metrics_addr : cfg->listen_addr;
}

/* Paths are checked at load so a typo stops the process with its name, not
 * with a TLS or JWT error later (a directory opens for reading too). */
static const char *check_readable(const char *v)
{
    if (!*v)
        return NULL;
    FILE *f = fopen(v, "r");
    if (!f)
        return "a readable file (cannot open it)";
    struct stat st;
    bool regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    fclose(f);
    return regular ? NULL : "a readable file (it is not a regular file)";
}

static const char *check_claim(const char *v)
{
    if (!*v || strlen(v) > 64)
        return "a claim name of 1-64 characters";
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != ':' && *p != '.')
            return "a claim name of letters, digits, _ - : .";
    return NULL;
}

#define OFF(f) offsetof(struct cf_config, f), sizeof(((struct cf_config *)0)->f)

static const struct var vars[] = {
    {"PORT", K_INT, OFF(port), 1, 65535, "8080", false, NULL,
     "TCP port every gateway process listens on"},
    {"LISTEN_ADDR", K_STR, OFF(listen_addr), 0, 0, "", false, check_listen,
     "address to listen on; empty = all IPv4 and IPv6 addresses"},
    {"GATEWAY_WORKERS", K_INT, OFF(gateway_workers), 1, 64, "2", false, NULL,
     "gateway processes sharing PORT (SO_REUSEPORT)"},
    {"FRONTEND_DIR", K_STR, OFF(frontend_dir), 0, 0, CONFAB_FRONTEND_DIR, false, check_nonempty,
     "directory served at /"},
    {"JWT_SECRET", K_STR, OFF(jwt_secret), 0, 0, "", true, check_secret,
     "HMAC key (JWT_ALG HS256/384/512) that signs and verifies tokens (>= 32 bytes); "
     "unset = development secret"},
    {"JWT_TTL", K_INT, OFF(jwt_ttl), 60, 30 * 86400, "3600", false, NULL,
     "lifetime of issued tokens, seconds"},
    {"DEFAULT_ROOM", K_STR, OFF(default_room), 0, 0, "general", false, check_room,
     "room every new legacy-protocol connection starts in (v1 ones start in none)"},
    {"MAX_MESSAGE_BYTES", K_INT, OFF(max_message_bytes), 256, 65536, "4096", false, NULL,
     "largest client frame accepted (bigger: close 1009)"},
    {"MAX_CLIENT_QUEUE_BYTES", K_INT, OFF(max_client_queue_bytes), 16384, 64 << 20, "262144", false,
     NULL,
     "outbound bytes queued per WebSocket before it is dropped as a slow consumer "
     "(the kernel's send buffer for it is capped at this, doubled)"},
    {"PING_INTERVAL", K_INT, OFF(ping_interval), 1, 3600, "30", false, NULL,
     "seconds of silence before a WebSocket ping"},
    {"PING_TIMEOUT", K_INT, OFF(ping_timeout), 1, 3600, "10", false, NULL,
     "seconds to wait for the pong before the connection is dropped"},
    {"DRAIN_TIMEOUT_MS", K_INT, OFF(drain_timeout_ms), 0, 600000, "5000", false, NULL,
     "on SIGTERM, how long a gateway waits for clients to take their close"},
    {"METRICS_PORT", K_INT, OFF(metrics_port), 0, 65535, "0", false, NULL,
     "gateway worker i also serves /metrics, /healthz, /readyz on this port + i (0 = off)"},
    {"METRICS_ADDR", K_STR, OFF(metrics_addr), 0, 0, "", false, check_ops_listen,
     "address METRICS_PORT and BROKER_METRICS_PORT listen on; empty = LISTEN_ADDR's"},
    {"MAX_ROOMS_PER_CONN", K_INT, OFF(max_rooms_per_conn), 1, 64, "32", false, NULL,
     "rooms one v1 connection may be in at once"},
    {"MAX_PENDING_REQUESTS", K_INT, OFF(max_pending_requests), 1, 4096, "64", false, NULL,
     "requests one v1 connection may have waiting for an answer (more: too_many_requests)"},
    {"API_KEY", K_STR, OFF(api_key), 0, 0, "", true, check_api_key,
     "bearer key for POST /api/publish (>= 16 bytes); unset = endpoint off"},
    {"ALLOWED_ORIGINS", K_STR, OFF(allowed_origins), 0, 0, "", false, check_origins,
     "browser origins allowed to open WebSockets (comma-separated, or *); unset = same host"},
    {"JWT_ALG", K_STR, OFF(jwt_alg), 0, 0, "HS256", false, check_jwt_alg,
     "the only algorithm tokens may use (HS* with JWT_SECRET, RS*/ES* with JWT_PUBLIC_KEY)"},
    {"JWT_PUBLIC_KEY", K_STR, OFF(jwt_public_key), 0, 0, "", false, check_readable,
     "PEM file with the public key that verifies RS*/ES* tokens (an identity provider's)"},
    {"JWT_PRIVATE_KEY", K_STR, OFF(jwt_private_key), 0, 0, "", false, check_readable,
     "PEM file with the private key that signs guest tokens under RS*/ES*; unset = no /login"},
    {"JWT_ISSUER", K_STR, OFF(jwt_issuer), 0, 0, "", false, NULL,
     "required iss claim (and the iss of guest tokens); unset = not checked"},
    {"JWT_AUDIENCE", K_STR, OFF(jwt_audience), 0, 0, "", false, NULL,
     "required aud claim (and the aud of guest tokens); unset = not checked"},
    {"JWT_LEEWAY", K_INT, OFF(jwt_leeway), 0, 600, "5", false, NULL,
     "seconds of clock skew allowed when checking exp and nbf"},
    {"JWT_USER_CLAIM", K_STR, OFF(jwt_user_claim), 0, 0, "sub", false, check_claim,
     "claim that holds the user name"},
    {"TLS_CERT", K_STR, OFF(tls_cert), 0, 0, "", false, check_readable,
     "PEM certificate (chain) for HTTPS/WSS on PORT; unset = plain HTTP"},
    {"TLS_KEY", K_STR, OFF(tls_key), 0, 0, "", true, check_readable, "PEM private key of TLS_CERT"},
    {"TLS_MAX_CONNS", K_INT, OFF(tls_max_conns), 256, 1048576, "32768", false, NULL,
     "with TLS, open files of one gateway process, so its connections (libwebsockets scans a "
     "table this long at every close)"},
    {"RATE_MSGS", K_INT, OFF(rate_msgs), 0, 1000000, "20", false, NULL,
     "requests (pings and pongs included) per second one WebSocket may send on average (0 = no "
     "limit)"},
    {"RATE_BURST", K_INT, OFF(rate_burst), 1, 1000000, "40", false, NULL,
     "requests one WebSocket may send at once above RATE_MSGS"},
    {"LOGIN_RATE", K_INT, OFF(login_rate), 0, 1000000, "5", false, NULL,
     "POST /login per second per client address (0 = no limit)"},
    {"LOGIN_BURST", K_INT, OFF(login_burst), 1, 1000000, "50", false, NULL,
     "POST /login at once per client address above LOGIN_RATE"},
    {"UPGRADE_RATE", K_INT, OFF(upgrade_rate), 0, 1000000, "20", false, NULL,
     "WebSocket upgrades per second per client address (0 = no limit)"},
    {"UPGRADE_BURST", K_INT, OFF(upgrade_burst), 1, 1000000, "200", false, NULL,
     "WebSocket upgrades at once per client address above UPGRADE_RATE"},
    {"MAX_CONNS_PER_IP", K_INT, OFF(max_conns_per_ip), 0, 1000000, "1000", false, NULL,
     "open TCP connections per client address (IPv6: per /64) per gateway process (0 = no limit)"},
    {"HANDSHAKE_TIMEOUT", K_INT, OFF(handshake_timeout), 1, 300, "10", false, NULL,
     "seconds a new connection has to send a complete HTTP request or upgrade"},
    {"BROKERS", K_INT, OFF(brokers), 1, 1024, "2", false, NULL,
     "number of broker shards (must be the same for every process of a cluster)"},
    {"RUN_DIR", K_STR, OFF(run_dir), 0, 0, "./run", false, check_nonempty,
     "directory of the broker Unix sockets"},
    {"MAX_LINK_QUEUE_BYTES", K_INT, OFF(max_link_queue_bytes), 1 << 20, 1LL << 30, "67108864",
     false, NULL,
     "bytes queued per gateway-broker link (and per Redis connection) before it is reset"},
    {"LOG_LEVEL", K_LEVEL, OFF(log_level), 0, 0, "info", false, NULL, "debug, info, warn or error"},
    {"LOG_FORMAT", K_FORMAT, OFF(log_format), 0, 0, "text", false, NULL,
     "text or json lines on stderr (under systemd, logs go to the journal natively)"},
    {"CONFAB_DEV", K_BOOL, OFF(dev), 0, 0, "0", false, NULL,
     "1 = development mode: allows the built-in JWT secret"},
    {"SCHED_BATCH", K_BOOL, OFF(sched_batch), 0, 0, "1", false, NULL,
     "1 = gateways and brokers run under SCHED_BATCH so that they do not preempt each other "
     "(lower latency when they share CPUs); 0 = keep the policy they were started with"},
    {"SUPERVISOR_WATCHDOG", K_INT, OFF(supervisor_watchdog), 0, 3600, "20", false, NULL,
     "seconds a gateway worker or broker shard forked by its program may go without a watchdog "
     "ping before it is aborted and restarted, where no service manager watches it (no "
     "NOTIFY_SOCKET); 0 = off"},
    {"REDIS_ADDR", K_STR, OFF(redis_addr), 0, 0, "127.0.0.1:6379", false, check_redis,
     "Redis servers: host:port, [ipv6]:port or unix:/path, several separated by commas"},
    {"REDIS_USERNAME", K_STR, OFF(redis_username), 0, 0, "", false, check_redis_user,
     "Redis ACL user the brokers log in as (with REDIS_PASSWORD); empty = the default user"},
    {"REDIS_PASSWORD", K_STR, OFF(redis_password), 0, 0, "", true, NULL,
     "password for Redis AUTH; empty = none"},
    {"HISTORY_SIZE", K_INT, OFF(history_size), 0, 10000, "100", false, NULL,
     "messages kept per room in Redis for history and recovery"},
    {"HISTORY_TTL", K_INT, OFF(history_ttl), 60, 365 * 86400, "86400", false, NULL,
     "seconds a room's history is kept after its last activity"},
    {"DEDUP_WINDOW", K_INT, OFF(dedup_window), 1, 86400, "300", false, NULL,
     "seconds a send's client id is remembered (resends within it are not duplicated); at most "
     "HISTORY_TTL"},
    {"BROKER_METRICS_PORT", K_INT, OFF(broker_metrics_port), 0, 65535, "0", false, NULL,
     "broker shard i serves /metrics, /healthz, /readyz on this port + i (0 = off)"},
    {"PRESENCE_TTL", K_INT, OFF(presence_ttl), 3, 3600, "30", false, NULL,
     "seconds before a dead node's presence entries expire"},
};

int cf_redis_addr_parse(const char *s, struct cf_redis_addr *out)
{
    memset(out, 0, sizeof *out);
    if (strncmp(s, "unix:", 5) == 0) {
        const char *path = s + 5;
        size_t n = strlen(path);
        if (n == 0 || n >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return -1;
        out->is_unix = true;
        memcpy(out->host, path, n + 1);
        return 0;
    }
    const char *colon;
    const char *host = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof out->host)
        return -1;
    for (size_t i = 0; i < hlen; i++)
        if (!isalnum((unsigned char)host[i]) && !strchr(".-_:", host[i]))
            return -1;
    /* digits only: strtol would also take " 6379" and "+6379" */
    if (!isdigit((unsigned char)colon[1]))
        return -1;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
        return -1;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (int)port;
    return 0;
}

/* A refused value as it is shown in the error: control characters, DEL and
 * bytes outside printable ASCII as \xHH (the value may be anything an
 * environment holds, and the message goes to a terminal), at most ~200
 * bytes of it. One buffer: valid until the next call. */
static const char *echo(const char *value)
{
    enum { SHOWN = 200 };
    static char out[4 * SHOWN + 8];
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)value;
    for (size_t i = 0; *p && i < SHOWN; p++, i++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '\\')
            n += (size_t)snprintf(out + n, sizeof out - n, "\\x%02x", *p);
        else
            out[n++] = (char)*p;
    }
    if (*p)
        n += (size_t)snprintf(out + n, sizeof out - n, "...");
    out[n] = '\0';
    return out;
}

static bool same_addr(const struct cf_redis_addr *a, const struct cf_redis_addr *b)
{
    return a->is_unix == b->is_unix && a->port == b->port && strcmp(a->host, b->host) == 0;
}

int cf_redis_addrs_parse(const char *s, struct cf_redis_addr *out, int max, char *why,
                         size_t cap)
{
    char scratch[1];
    if (!why)
        why = scratch, cap = sizeof scratch;
    int n = 0;
    for (const char *p = s;; p++) {
        size_t len = strcspn(p, ",");
        const char *e = p, *end = p + len;
        while (e < end && *e == ' ')
            e++;
        while (end > e && end[-1] == ' ')
            end--;
        char one[300];
        int k = (int)(end - e);
        if (k == 0 || (size_t)k >= sizeof one) {
            snprintf(why, cap, "host:port, [ipv6]:port or unix:/path for each comma-separated "
                     "server; server %d is %s", n + 1, k ? "too long" : "empty");
            return -1;
        }
        memcpy(one, e, (size_t)k);
        one[k] = '\0';
        if (n == max) {
            snprintf(why, cap, "at most %d servers", max);
            return -1;
        }
        if (cf_redis_addr_parse(one, &out[n]) < 0) {
            snprintf(why, cap,
                     "host:port, [ipv6]:port or unix:/path for each comma-separated "
                     "server; server %d (\"%.200s\") is not",
                     n + 1, echo(one));
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (same_addr(&out[i], &out[n])) {
                snprintf(why, cap, "each server once; server %d (\"%.200s\") is also server %d",
                         n + 1, echo(one), i + 1);
                return -1;
            }
        n++;
        p += len;
        if (!*p)
            return n;
    }
}

static int parse_int(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*v))
        v++;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    *out = n;
    return 0;
}

static int set_var(struct cf_config *cfg, const struct var *d, const char *value)
{
    char *field = (char *)cfg + d->offset;
    switch (d->kind) {
    case K_INT: {
        int64_t n;
        if (parse_int(value, &n) < 0 || n < d->min || n > d->max) {
            fprintf(stderr,
                    "config: %s=\"%s\" is invalid: expected an integer from %lld to %lld (%s)\n",
                    d->name, echo(value), (long long)d->min, (long long)d->max, d->help);
            return -1;
        }
        if (d->size == sizeof(int))
            *(int *)field = (int)n;
        else
            *(int64_t *)field = n;
        return 0;
    }
    case K_STR: {
        const char *why = d->check ? d->check(value) : NULL;
        if (!why && strlen(value) >= d->size)
            why = "a shorter value";
        if (!why && !cf_utf8_valid(value, strlen(value)))
            why = "valid UTF-8";
        if (why) {
            fprintf(stderr, "config: %s%s%s%s is invalid: expected %s (%s)\n", d->name,
                    d->secret ? "" : "=\"", d->secret ? "" : echo(value), d->secret ? "" : "\"",
                    why, d->help);
            return -1;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    }
    case K_LEVEL: {
        enum cf_log_level lvl;
        if (cf_log_level_parse(value, &lvl) < 0) {
            fprintf(stderr, "config: %s=\"%s\" is invalid: expected debug, info, warn or error\n",
                    d->name, echo(value));
            return -1;
        }
        *(enum cf_log_level *)field = lvl;
        return 0;
    }
    case K_FORMAT: {
        enum cf_log_format f;
        if (cf_log_format_parse(value, &f) < 0) {
            fprintf(stderr, "config: %s=\"%s\" is invalid: expected text or json\n", d->name,
                    echo(value));
            return -1;
        }
        *(enum cf_log_format *)field = f;
        return 0;
    }
    case K_BOOL: {
        bool b;
        if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes"))
            b = true;
        else if (!strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no") ||
                 !*value)
            b = false;
        else {
            fprintf(stderr, "config: %s=\"%s\" is invalid: expected 1 or 0\n", d->name,
                    echo(value));
            return -1;
        }
        *(bool *)field = b;
        return 0;
    }
    }
    return -1;
}

int cf_config_load(struct cf_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    const char *envfile = getenv("CONFAB_ENV_FILE");
    /* CONFAB_ENV_FILE names a file that must be there; ./.env may not be */
    bool named = envfile && *envfile;
    if (cf_dotenv_load(named ? envfile : ".env", named) < 0)
        return -1;
    int bad = 0;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i].name);
        if (set_var(cfg, &vars[i], v ? v : vars[i].def) < 0)
            bad++;
    }
    if (!bad && cfg->ping_timeout >= 65535 - cfg->ping_interval) {
        fprintf(stderr, "config: PING_INTERVAL + PING_TIMEOUT must stay below 65535 seconds\n");
        bad++;
    }
    if (!bad && cfg->redis_username[0] && !cfg->redis_password[0]) {
        fprintf(stderr,
                "config: REDIS_USERNAME=%s is set without REDIS_PASSWORD: Redis logs a "
                "user in with its password; set both, or neither\n",
                cfg->redis_username);
        bad = true;
    }
    if (!bad && cfg->metrics_port && cfg->metrics_port + cfg->gateway_workers - 1 > 65535) {
        fprintf(stderr, "config: METRICS_PORT=%d + GATEWAY_WORKERS-1 is past 65535 (worker i "
                        "listens on METRICS_PORT + i); choose a lower METRICS_PORT\n",
                cfg->metrics_port);
        bad++;
    }
    if (!bad && cfg->broker_metrics_port && cfg->broker_metrics_port + cfg->brokers - 1 > 65535) {
        fprintf(stderr, "config: BROKER_METRICS_PORT=%d + BROKERS-1 is past 65535 (shard i "
                        "listens on BROKER_METRICS_PORT + i); choose a lower port\n",
                cfg->broker_metrics_port);
        bad++;
    }
    if (!bad)
        bad += cf_config_port_overlaps(cfg, cfg->brokers);
    if (!bad && cfg->dedup_window > cfg->history_ttl) {
        fprintf(stderr, "config: DEDUP_WINDOW=%d is longer than HISTORY_TTL=%d: a resend could "
                        "then be acknowledged with a message id of a room's previous epoch; set "
                        "DEDUP_WINDOW <= HISTORY_TTL\n",
                cfg->dedup_window, cfg->history_ttl);
        bad++;
    }
    if (!bad && cfg->max_client_queue_bytes < 4 * (int64_t)cfg->max_message_bytes) {
        fprintf(stderr,
                "config: MAX_CLIENT_QUEUE_BYTES=%lld is under 4 x MAX_MESSAGE_BYTES=%d: "
                "a message's event can be twice its text (JSON escapes \" and \\), and "
                "a client's queue must hold about two, or long messages close its room's "
                "members as slow consumers; raise MAX_CLIENT_QUEUE_BYTES to at least "
                "%lld or lower MAX_MESSAGE_BYTES\n",
                (long long)cfg->max_client_queue_bytes, cfg->max_message_bytes,
                4 * (long long)cfg->max_message_bytes);
        bad++;
    }
    if (!bad && (!cfg->tls_cert[0]) != (!cfg->tls_key[0])) {
        fprintf(stderr, "config: TLS_CERT and TLS_KEY go together: set both for HTTPS, or "
                        "neither\n");
        bad++;
    }
    bool hmac = cfg->jwt_alg[0] == 'H';
    if (!bad && !hmac && !cfg->jwt_public_key[0]) {
        fprintf(stderr, "config: JWT_ALG=%s needs JWT_PUBLIC_KEY (a PEM file with the public key "
                        "that verifies tokens)\n", cfg->jwt_alg);
        bad++;
    }
    if (!bad && hmac && (cfg->jwt_public_key[0] || cfg->jwt_private_key[0])) {
        fprintf(stderr, "config: JWT_PUBLIC_KEY and JWT_PRIVATE_KEY are for RS*/ES* algorithms; "
                        "JWT_ALG=%s uses JWT_SECRET\n", cfg->jwt_alg);
        bad++;
    }
    char probe[128];
    if (!bad && cf_broker_socket_path(cfg, cfg->brokers - 1, probe, sizeof probe) < 0) {
        fprintf(
            stderr,
            "config: RUN_DIR=\"%s\" is too long for a Unix socket path; use a shorter directory\n",
            cfg->run_dir);
        bad++;
    }
    if (bad)
        return -1;
    if (!cfg->jwt_secret[0] && cfg->jwt_alg[0] == 'H') {
        snprintf(cfg->jwt_secret, sizeof cfg->jwt_secret, "%s", CF_DEV_JWT_SECRET);
        cfg->jwt_secret_is_dev = true;
    }
    return 0;
}

void cf_config_print(const struct cf_config *cfg, FILE *out)
{
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const struct var *d = &vars[i];
        const char *field = (const char *)cfg + d->offset;
        fprintf(out, "%s=", d->name);
        switch (d->kind) {
        case K_INT:
            fprintf(out, "%lld\n",
                    d->size == sizeof(int) ? (long long)*(const int *)field
                                           : (long long)*(const int64_t *)field);
            break;
        case K_STR:
            if (d->offset == offsetof(struct cf_config, jwt_secret) && cfg->jwt_secret_is_dev)
                fprintf(out, "(unset: development secret in use)\n");
            else if (d->secret && *field)
                fprintf(out, "(set, %zu bytes)\n", strlen(field));
            else
                fprintf(out, "%s\n", field);
            break;
        case K_LEVEL: {
            static const char *const n[] = {"debug", "info", "warn", "error"};
            fprintf(out, "%s\n", n[*(const enum cf_log_level *)field]);
            break;
        }
        case K_BOOL:
            fprintf(out, "%d\n", *(const bool *)field ? 1 : 0);
            break;
        case K_FORMAT:
            fprintf(out, "%s\n", *(const enum cf_log_format *)field == CF_LOG_JSON ? "json" : "text");
            break;
        }
    }
}

int cf_broker_socket_path(const struct cf_config *cfg, int shard, char *out, size_t cap)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
    int n = snprintf(out, cap, "%s/broker-%d.sock", cfg->run_dir, shard);
    return (n < 0 || (size_t)n >= cap || (size_t)n >= max) ? -1 : 0;
}
