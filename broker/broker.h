/* broker: one shard's process. Wires the gateway links, the room registry and
 * the Redis bridge together on one sd-event loop, and runs it until SIGTERM. */
#ifndef BROKER_BROKER_H
#define BROKER_BROKER_H

#include <stdint.h>

#include "config.h"

/* Returns the process exit code. */
int broker_run(const struct cf_config *cfg, uint32_t shard, uint32_t shards);

#endif
