/* v1: protocol v1 sessions: their requests, the broker answers those wait
 * for, and keeping every membership registered with its broker.
 *
 * Requests go to the room's broker with a link-local id (reqs.h) and are
 * answered from the broker's reply: sends get an ack only once Redis stored
 * the message; joins get their snapshot (history or recovery, members) and
 * then live events, with lrooms closing the gap between the two. Legacy
 * sessions use the same presence registration (they count as members) but
 * get no v1 events.
 *
 * When a broker link comes back, every membership of its shard is registered
 * again, and v1 members re-sync: the broker replays what they missed since
 * their last message id (or, when the history no longer reaches back, the
 * client gets a fresh joined with recovered=false). */
#ifndef GW_V1_H
#define GW_V1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway.h"
#include "wire.h"

struct session;

/* One complete client frame of a v1 session. */
void v1_on_frame(struct gw *gw, struct session *s, const void *msg, size_t len);

struct lmember;

/* A legacy session entered (m: its new membership) / left a room: presence
 * only. */
void v1_presence_join(struct gw *gw, struct lmember *m);
void v1_presence_leave(struct gw *gw, struct session *s, struct cf_str room);

/* The session is gone: leave its rooms, unregister its presence, forget its
 * requests. */
/* Answers a frame that will not be served with an error event (ref and
 * room taken from the frame when they can be read). */
void v1_refuse_frame(struct session *s, const void *msg, size_t len, const char *code,
                     const char *message);
void v1_session_closed(struct gw *gw, struct session *s);

/* A broker's answer (sent, fail, subbed, histr). */
void v1_on_reply(struct gw *gw, const struct cf_wire_msg *m);
/* The link to `shard` dropped: its requests get "timeout" at once. */
void v1_on_link_down(struct gw *gw, uint32_t shard);
/* The link to `shard` is up again (new_link), or its broker is ready again
 * on the same link: its members re-sync. */
void v1_on_link_up(struct gw *gw, uint32_t shard, bool new_link);
/* The broker of `shard` has its Redis server `server` (of `servers`) usable
 * again: the members of that server's rooms re-sync. */
void v1_on_redis_back(struct gw *gw, uint32_t shard, uint32_t server, uint32_t servers);
/* A live member missed messages (lrooms_ops.resync). */
void v1_resync(struct gw *gw, struct cf_str room, struct lmember *m, bool since, bool later);
/* Once a second: time out requests without an answer. */
void v1_tick(struct gw *gw);
/* Ten times a second: re-syncs whose retry is due (resync.h). */
void v1_tick_fast(struct gw *gw);
/* The re-sync pacer of gw's rooms and links (both must exist); the caller
 * frees it with rs_free before them. NULL when out of memory. */
struct rs *v1_resyncs_new(struct gw *gw);

/* POST /api/publish: posts `text` from `from` into `room` on behalf of the
 * HTTP request `http`; http_publish_done answers it later. 0 or -errno. */
int v1_publish(struct gw *gw, void *http, struct cf_str room, struct cf_str from,
               struct cf_str text);
/* The HTTP request is gone: its answer, when it comes, goes nowhere. */
void v1_publish_forget(struct gw *gw, uint64_t q);

#endif
