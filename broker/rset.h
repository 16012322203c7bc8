/* rset: a broker's Redis servers, and which one holds each room.
 *
 * REDIS_ADDR lists one server or several. A room lives on server
 * cf_ring_server_of(room, count) (common/ring.h): its channel, its keys and
 * the scripts that touch them all go there. Each server has its own rbridge
 * (a subscriber and a publisher connection, reconnection with backoff, PINGs,
 * the delivery canary), so a server that is down makes only its own rooms
 * unavailable.
 *
 * Every node must list the same servers in the same order, or one room would
 * live on two servers and its members on different nodes would not hear each
 * other. Before a server is used, and again on every publisher reconnect and
 * every RSET_CHECK_EVERY_MS, the broker checks the key `confab:ring` on it:
 * it must say "<index>/<count>", this server's place in this broker's list
 * (the key is set when absent: a new or emptied Redis). A server that says
 * anything else is at another place in another node's list:
 *   - never verified since this process started, within its first
 *     RSET_FATAL_WINDOW_MS (30 s): a configuration error. on_fatal is called (the broker exits with
 * CF_SUP_EXIT_CONFIG, so the supervisor stops instead of restarting into the same error);
 *   - verified before (the key was changed, or an emptied Redis was claimed
 *     by a node with another list), or first reached after those 30 s (a
 *     server down at the start): the server is treated as down, its rooms
 *     answer `unavailable`, an error is logged, and the check goes on, so it
 *     comes back once the key is right again. No crash loop for a running
 *     node.
 * A server that stops being usable while both its connections are up (this
 * check, a dispute below, a new identity) has its subscriber reset:
 * on_sub_lost tells the rooms their channels are gone, and they must be, or
 * a room left meanwhile could keep its channel (an UNSUBSCRIBE held for a
 * full queue is forgotten) and this node would go on hearing another list's
 * traffic. So does one whose publisher dropped (its subscriber kept, so
 * that the rooms go on hearing live messages) and whose check, once the
 * publisher is back, finds another list's key, or another server's record
 * disputes it. A dropped connection resets nothing else.
 * Addresses are not part of the check: one node may reach a server over a
 * Unix socket, another over TCP. What is checked is the servers themselves:
 * each has a random identity (`confab:id`, set when absent), and each holds
 * in `confab:ring:ids` which server sits at each place of the list, as the
 * nodes saw them. A node whose list names another server at some place (the
 * same count, the same place, another server: "a,b" here, "a,c" there) finds
 * the other servers' records disagreeing with the identity it reads there:
 * that server's rooms answer `unavailable` on this node and an error names
 * it, until the records agree (no room is split silently between two
 * servers). A server is used only once the records of the other servers
 * this node reaches have been read against its identity. A server seen
 * losing its data (a new identity on reconnect) has its new identity recorded
 * on the other servers by the nodes that saw it (compare and swap from the
 * identity they saw before). A server's record counts only while this node
 * is connected to it. */
#ifndef BROKER_RSET_H
#define BROKER_RSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "redis.h"

#define RSET_RING_KEY "confab:ring"
#define RSET_ID_KEY "confab:id"
#define RSET_IDS_KEY "confab:ring:ids"
#define RSET_CHECK_EVERY_MS 5000

struct rset_cbs {
    /* What rbridge reports, from whichever server. */
    void (*on_message)(void *ud, const char *name, size_t len, const char *payload, size_t plen);
    void (*on_foreign)(void *ud, const char *channel, size_t len);
    void (*on_confirm)(void *ud, const char *name, size_t len);
    /* Server `server`'s subscriptions are gone / can be made (again): for the
     * rooms that live there (rset_server_of). on_sub_lost's `kept`: the
     * subscriber connection is still up with its channels (the server is
     * not used while its publisher is down); UNSUBSCRIBEs still go to it. */
    void (*on_sub_lost)(void *ud, uint32_t server, bool kept);
    void (*on_sub_ready)(void *ud, uint32_t server);
    /* Server `server` takes commands (again), its ring check passed. */
    void (*on_pub_ready)(void *ud, uint32_t server);
    /* A server's state changed: `up` = both connections up and checked.
     * rset_ready tells whether everything is fine now. */
    void (*on_state)(void *ud, uint32_t server, bool up);
    /* A server belongs to another list (logged): the process cannot work. */
    void (*on_fatal)(void *ud);
};

struct rset;

/* Starts connecting to every server at once. `scripts` (kept by the caller)
 * are loaded on each server; `auth` (redis.h; NULL: none) is copied. NULL
 * when out of memory. */
struct rset *rset_new(sd_event *ev, const struct cf_redis_addr *addrs, uint32_t n,
                      const struct rbridge_auth *auth, size_t max_queue, const char *const *scripts,
                      int nscripts, const struct rset_cbs *cbs, void *ud);
void rset_free(struct rset *rs); /* NULL is a no-op */

uint32_t rset_count(const struct rset *rs);
uint32_t rset_server_of(const struct rset *rs, const char *name, size_t len);

/* The bridge of the room's server for commands (store.h), or NULL while
 * that server has not passed its ring check (store_* then answer
 * -ENOTCONN). */
struct rbridge *rset_for(struct rset *rs, const char *name, size_t len);
/* The same by the server's index (rset_server_of), for a caller that has it
 * already: NULL also for an index past rset_count. */
struct rbridge *rset_bridge(struct rset *rs, uint32_t server);

/* SUBSCRIBE / UNSUBSCRIBE room:<name> on the room's server: 0, or -ENOTCONN
 * (down or not checked yet: on_sub_ready comes later), -ENOBUFS. */
int rset_subscribe(struct rset *rs, const char *name, size_t len);
int rset_unsubscribe(struct rset *rs, const char *name, size_t len);

/* Every server is connected, checked, and its delivery canary passes. */
bool rset_ready(const struct rset *rs);
/* How many servers are (connected, checked, canary passing). */
uint32_t rset_up(const struct rset *rs);
/* True during the first 30 s, while a server found holding another node's
 * list of servers still stops this one (on_fatal): a start with some server
 * not reached yet is not settled before then. */
bool rset_settling(const struct rset *rs);
/* Commands waiting for a reply, over all servers, and of one. */
uint32_t rset_inflight(const struct rset *rs);
uint32_t rset_inflight_of(const struct rset *rs, uint32_t server);
/* rbridge_flush on every server's bridge. */
void rset_flush(struct rset *rs);

struct rset_server_stats {
    struct rbridge_stats redis;
    bool ring_ok; /* the ring check passed on the current connection, no record disputes it */
    uint64_t ring_mismatches;
};
void rset_stats(const struct rset *rs, uint32_t server, struct rset_server_stats *out);

#endif
