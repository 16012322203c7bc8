/* config: every setting of confab, from the environment, optionally from a
 * `.env` file in the working directory (variables already set win; dotenv.h).
 *
 * One table (config.c) lists each variable with its type, bounds, default and
 * meaning; the README's table is the same list. Loading validates every value
 * and reports every bad one, so a process either starts with a coherent
 * configuration or exits with a message naming the variable and what it
 * accepts. */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define CF_DEV_JWT_SECRET "confab-development-secret-do-not-use-in-production!"

struct cf_config {
    /* gateway */
    int port;
    char listen_addr[64];
    int gateway_workers;
    char frontend_dir[512];
    char jwt_secret[512];
    int jwt_ttl;
    char default_room[65];
    int max_message_bytes;
    int64_t max_client_queue_bytes;
    int ping_interval;
    int ping_timeout;
    int drain_timeout_ms;
    int max_rooms_per_conn;
    int max_pending_requests;
    int metrics_port;
    char metrics_addr[64]; /* of METRICS_PORT and BROKER_METRICS_PORT; "" = listen_addr's */
    char api_key[256];
    char allowed_origins[1024];
    char jwt_alg[8];
    char jwt_public_key[512];
    char jwt_private_key[512];
    char jwt_issuer[256];
    char jwt_audience[256];
    int jwt_leeway;
    char jwt_user_claim[65];
    char tls_cert[512];
    char tls_key[512];
    int tls_max_conns;
    int rate_msgs, rate_burst;           /* per WebSocket */
    int login_rate, login_burst;         /* per client address */
    int upgrade_rate, upgrade_burst;     /* per client address */
    int max_conns_per_ip;
    int handshake_timeout;
    /* shared */
    int brokers;
    char run_dir[96];
    int64_t max_link_queue_bytes;
    enum cf_log_level log_level;
    enum cf_log_format log_format;
    bool dev;
    bool sched_batch;
    int supervisor_watchdog;
    /* broker */
    char redis_addr[4096]; /* one address, or several separated by commas */
    char redis_username[256];
    char redis_password[256];
    int history_size;
    int history_ttl;
    int dedup_window;
    int presence_ttl;
    int broker_metrics_port;

    /* derived */
    bool jwt_secret_is_dev; /* JWT_SECRET was unset: the development secret is in use */
};

/* Loads ./.env when present (or the file named by CONFAB_ENV_FILE), then reads
 * every variable. Returns 0, or -1 after printing one line per problem to
 * stderr. */
int cf_config_load(struct cf_config *cfg);

/* Says on stderr which of PORT, METRICS_PORT..+GATEWAY_WORKERS-1 and
 * BROKER_METRICS_PORT..+brokers-1 share a port (two listeners on one port
 * split its connections: each sets SO_REUSEPORT), `brokers` being the shards
 * run: BROKERS (which cf_config_load checks), or a broker's --shards.
 * Returns how many pairs overlap. */
int cf_config_port_overlaps(const struct cf_config *cfg, int brokers);

/* The address METRICS_PORT and BROKER_METRICS_PORT listen on: METRICS_ADDR,
 * or LISTEN_ADDR's when it is empty ("" = every address). Points into cfg. */
const char *cf_config_ops_addr(const struct cf_config *cfg);

/* Prints the effective configuration, secrets masked, one VAR=value a line. */
void cf_config_print(const struct cf_config *cfg, FILE *out);

/* The socket path of broker shard i: RUN_DIR/broker-<i>.sock. Returns 0, or -1
 * if it does not fit in a sockaddr_un (cap >= 108). */
int cf_broker_socket_path(const struct cf_config *cfg, int shard, char *out, size_t cap);

/* One parsed Redis address: either a unix socket path or host and port. */
struct cf_redis_addr {
    bool is_unix;
    char host[256]; /* or the socket path */
    int port;
};
/* Parses one address: host:port, [ipv6]:port or unix:/path. 0 or -1. */
int cf_redis_addr_parse(const char *s, struct cf_redis_addr *out);

/* REDIS_ADDR may list up to this many servers; rooms are spread over them
 * (common/ring.h). */
#define CF_REDIS_MAX_SERVERS 64

/* Parses REDIS_ADDR: one address or several separated by commas (spaces
 * around an element are ignored), into out[0..max). Returns the number of
 * servers, or -1 with a description of the first problem, naming the
 * offending element, written to why (cap bytes; why may be NULL). An empty
 * element, an invalid one, the same address twice and more than `max` are
 * problems. */
int cf_redis_addrs_parse(const char *s, struct cf_redis_addr *out, int max, char *why,
                         size_t cap);

#endif
