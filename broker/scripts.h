/* scripts: the Lua scripts behind store.h, one per operation, loaded into
 * every Redis server at connection (redis.h) and called by index. What each
 * keeps in Redis is described in store.h. */
#ifndef BROKER_SCRIPTS_H
#define BROKER_SCRIPTS_H

enum store_script { S_SEND, S_JOIN, S_LEAVE, S_REFRESH, S_HISTORY, S_TYPING, S_COUNT };

/* Indexed by enum store_script; store_nscripts is S_COUNT. */
extern const char *const store_scripts[S_COUNT];
extern const int store_nscripts;

/* How script_send answers a send it did not run, and how it and script_join
 * name a damaged key (scripts.c says when); read by the batcher's log
 * (rbatch.c) and by the send's reply (store.c). Plain text without quotes: they go inside Lua
 * string literals; SCRIPT_BAD_EPOCH is also matched as a Lua pattern, so it
 * holds no pattern characters either. */
#define SCRIPT_NOT_RUN "ERR not run: "
#define SCRIPT_NOT_RUN_AFTER SCRIPT_NOT_RUN "an earlier send in its batch failed: "
#define SCRIPT_DAMAGED_KEY "(key "
#define SCRIPT_BAD_EPOCH "ERR the room epoch is not 16 characters"
#define SCRIPT_BAD_SEQ "ERR the room seq is not an integer"

#endif
