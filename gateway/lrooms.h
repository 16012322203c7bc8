/* lrooms: the rooms of this gateway process and their local members.
 *
 * A room exists here while at least one of this process's connections is in
 * it. Its first member makes the gateway register the room with the owning
 * broker ("join"), its last member unregisters it ("leave"), so a broker sends
 * each room message over a gateway link once however many local members the
 * room has; the fan-out to sockets happens here, with the message encoded once
 * per client protocol and shared by every recipient's queue. */
#ifndef GW_LROOMS_H
#define GW_LROOMS_H

#include <stddef.h>

#include "session.h"
#include "wire.h"

struct lrooms_ops {
    /* The room got its first local member / lost its last one. */
    void (*first)(void *ud, const char *name, size_t len);
    void (*last)(void *ud, const char *name, size_t len);
};

struct lrooms;

struct lrooms *lrooms_new(const struct lrooms_ops *ops, void *ud);
void lrooms_free(struct lrooms *r); /* NULL is a no-op; sessions must have left */

/* 0 (also when already a member) or -ENOMEM. */
int lrooms_join(struct lrooms *r, struct session *s, const char *name, size_t len);
void lrooms_leave(struct lrooms *r, struct session *s, const char *name, size_t len);
void lrooms_leave_all(struct lrooms *r, struct session *s);

/* Delivers a room message from a broker to every local member. Returns the
 * number of sessions it was queued for. */
size_t lrooms_deliver(struct lrooms *r, const struct cf_wire_msg *m);

/* Calls fn for every room (to re-register them after a broker link is back). */
void lrooms_foreach(struct lrooms *r, void (*fn)(void *ud, const char *name, size_t len),
                    void *ud);

size_t lrooms_count(const struct lrooms *r);

/* The name of the room at one end of a session's membership edge. */
struct cf_str lrooms_edge_name(const struct cf_rel_edge *e);

#endif
