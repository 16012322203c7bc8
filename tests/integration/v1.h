/* Shared helpers for the Protocol v1 integration tests (test_v1_*.c): v1
 * clients that assert as they go, and checks of the event shapes that
 * docs/protocol.md ("Protocol v1") promises. */
#ifndef TEST_INTEGRATION_V1_H
#define TEST_INTEGRATION_V1_H

#include "common.h"

#include <regex.h>
#include <stdbool.h>
#include <sys/types.h>

#include "shard.h"
#include "v1c.h"

/* How long any answer may take before a test gives up on it. */
#define V1_WAIT 5000

/* A v1 client of `user` on port, in the given encoding. */
static inline struct v1c *v1_member(int port, const char *user, enum v1_enc enc)
{
    struct v1c *c = v1_open(port, user, enc);
    assert_non_null(c);
    return c;
}

static inline json_t *pl(json_t *ev)
{
    return json_object_get(ev, "payload");
}

static inline const char *pstr(json_t *ev, const char *key)
{
    return json_string_value(json_object_get(pl(ev), key));
}

/* The integer payload field `key`; fails the test when it is not one. */
static inline json_int_t pint(json_t *ev, const char *key)
{
    json_t *v = json_object_get(pl(ev), key);
    if (!json_is_integer(v)) {
        char *s = json_dumps(ev, JSON_COMPACT);
        fail_msg("payload.%s is not an integer in %s", key, s);
    }
    return json_integer_value(v);
}

/* A wait that fails the test with the client's kept events printed. */
#define V1_MUST(c, ev, what)                                                                       \
    do {                                                                                           \
        if (!(ev)) {                                                                               \
            v1_dump((c), what);                                                                    \
            fail_msg("no %s within %d ms", what, V1_WAIT);                                         \
        }                                                                                          \
    } while (0)

/* Fails (printing the client's kept events) when a matching event is kept
 * or arrives within ms, or the connection ends: V1_NONE(c, ms, type, key,
 * value, ..., NULL). */
#define V1_NONE(c, ms, ...)                                                                        \
    do {                                                                                           \
        if (!v1_none((c), (ms), __VA_ARGS__)) {                                                    \
            v1_dump((c), "an unexpected event or end");                                            \
            fail_msg("unexpected event%s on %s", v1_ended(c) ? ", or the connection ended," : "",  \
                     #c);                                                                          \
        }                                                                                          \
    } while (0)

static inline bool is_rfc3339_ms(const char *s)
{
    regex_t re;
    regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
            REG_EXTENDED | REG_NOSUB);
    bool ok = s && regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* A message object as in new_message payloads, joined.messages and history:
 * {room, id, message, from, sent}. */
static inline void check_message(json_t *m, const char *room)
{
    assert_true(json_is_object(m));
    assert_string_equal(json_string_value(json_object_get(m, "room")), room);
    assert_true(json_is_integer(json_object_get(m, "id")));
    assert_true(json_integer_value(json_object_get(m, "id")) > 0);
    assert_true(json_is_string(json_object_get(m, "message")));
    assert_true(json_is_string(json_object_get(m, "from")));
    assert_true(is_rfc3339_ms(json_string_value(json_object_get(m, "sent"))));
}

static inline json_int_t msg_id(json_t *m)
{
    return json_integer_value(json_object_get(m, "id"));
}

static inline const char *msg_text(json_t *m)
{
    return json_string_value(json_object_get(m, "message"));
}

/* The messages of joined and history: an array of messages of room with
 * consecutive ids, oldest first. */
static inline void check_messages(json_t *msgs, const char *room)
{
    assert_true(json_is_array(msgs));
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        check_message(json_array_get(msgs, i), room);
        if (i)
            assert_int_equal(msg_id(json_array_get(msgs, i)),
                             msg_id(json_array_get(msgs, i - 1)) + 1);
    }
}

/* Checks the whole shape of a joined event for `room`. */
static inline void check_joined(json_t *ev, const char *room)
{
    json_t *p = pl(ev);
    assert_string_equal(pstr(ev, "room"), room);
    assert_true(json_is_string(json_object_get(p, "epoch")));
    assert_true(strlen(pstr(ev, "epoch")) > 0);
    assert_true(pint(ev, "last_id") >= 0);
    assert_true(json_is_boolean(json_object_get(p, "recovered")));
    json_t *members = json_object_get(p, "members"), *msgs = json_object_get(p, "messages");
    assert_true(json_is_array(members));
    assert_true(pint(ev, "count") >= (json_int_t)json_array_size(members));
    for (size_t i = 0; i < json_array_size(members); i++)
        assert_true(json_is_string(json_object_get(json_array_get(members, i), "user")));
    check_messages(msgs, room);
    if (json_array_size(msgs))
        assert_int_equal(msg_id(json_array_get(msgs, json_array_size(msgs) - 1)),
                         pint(ev, "last_id"));
}

/* True when joined.members lists `user` (exactly once). */
static inline bool has_member(json_t *joined, const char *user)
{
    json_t *members = json_object_get(pl(joined), "members");
    int n = 0;
    for (size_t i = 0; i < json_array_size(members); i++)
        n += !strcmp(json_string_value(json_object_get(json_array_get(members, i), "user")), user);
    assert_true(n <= 1);
    return n == 1;
}

/* Sends a join with the given payload (taken) and returns the joined event
 * for payload.room, shape checked (json_decref it). */
static inline json_t *join_with(struct v1c *c, json_t *payload)
{
    char room[80];
    snprintf(room, sizeof room, "%s", json_string_value(json_object_get(payload, "room")));
    assert_int_equal(v1_send(c, "join", payload), 0);
    json_t *ev = v1_wait(c, V1_WAIT, "joined", "room", room, NULL);
    V1_MUST(c, ev, "joined");
    check_joined(ev, room);
    return ev;
}

static inline json_t *join_ok(struct v1c *c, const char *room)
{
    return join_with(c, json_pack("{s:s}", "room", room));
}

/* Joins and drops the joined event. */
/* join_ok, keeping only the room's epoch (for a later join with since). */
static inline void join_epoch(struct v1c *c, const char *room, char *epoch, size_t cap)
{
    json_t *ev = join_ok(c, room);
    snprintf(epoch, cap, "%s", pstr(ev, "epoch"));
    json_decref(ev);
}

static inline void join_quietly(struct v1c *c, const char *room)
{
    json_decref(join_ok(c, room));
}

static inline void leave_ok(struct v1c *c, const char *room)
{
    assert_int_equal(v1_send(c, "leave", json_pack("{s:s}", "room", room)), 0);
    json_t *ev = v1_wait(c, V1_WAIT, "left", "room", room, NULL);
    V1_MUST(c, ev, "left");
    json_decref(ev);
}

/* Sends {room, message[, id]} without waiting. */
static inline void send_req(struct v1c *c, const char *room, const char *text, const char *id)
{
    json_t *p = json_pack("{s:s, s:s}", "room", room, "message", text);
    if (id)
        json_object_set_new(p, "id", json_string(id));
    assert_int_equal(v1_send(c, "send", p), 0);
}

/* Waits for the ack of request `id` (NULL: the next ack without an id) and
 * checks its shape; returns the event. */
static inline json_t *expect_ack(struct v1c *c, const char *room, const char *id)
{
    json_t *ev = id ? v1_wait(c, V1_WAIT, "ack", "id", id, NULL)
                    : v1_wait(c, V1_WAIT, "ack", "room", room, NULL);
    V1_MUST(c, ev, "ack");
    assert_string_equal(pstr(ev, "room"), room);
    if (!id)
        assert_null(json_object_get(pl(ev), "id"));
    assert_true(pint(ev, "message_id") > 0);
    assert_true(is_rfc3339_ms(pstr(ev, "sent")));
    return ev;
}

/* Sends and waits for the ack; returns the message id. */
static inline json_int_t send_ok(struct v1c *c, const char *room, const char *text, const char *id)
{
    send_req(c, room, text, id);
    json_t *ev = expect_ack(c, room, id);
    json_int_t mid = pint(ev, "message_id");
    json_decref(ev);
    return mid;
}

/* Waits for the new_message with this text in room and checks it; returns
 * its id. */
static inline json_int_t expect_new(struct v1c *c, const char *room, const char *text,
                                    const char *from)
{
    json_t *ev = v1_wait(c, V1_WAIT, "new_message", "room", room, "message", text, NULL);
    V1_MUST(c, ev, "new_message");
    check_message(pl(ev), room);
    if (from)
        assert_string_equal(pstr(ev, "from"), from);
    json_int_t id = pint(ev, "id");
    json_decref(ev);
    return id;
}

/* Waits for the next new_message in room, whatever its text, and checks
 * all of it: the shape, and the id, text, sender and sent time given. */
static inline void expect_new_exactly(struct v1c *c, const char *room, json_int_t id,
                                      const char *text, const char *from, const char *sent)
{
    json_t *ev = v1_wait(c, V1_WAIT, "new_message", "room", room, NULL);
    V1_MUST(c, ev, "new_message");
    check_message(pl(ev), room);
    assert_int_equal(pint(ev, "id"), id);
    assert_string_equal(pstr(ev, "message"), text);
    assert_string_equal(pstr(ev, "from"), from);
    assert_string_equal(pstr(ev, "sent"), sent);
    json_decref(ev);
}

/* For expect_error: the error may or may not carry a ref. */
#define V1_ANY_REF ((const char *)-1)

/* Waits for an error with `code`; checks its ref (NULL: must have none) and,
 * when room is given, its room. */
static inline void expect_error(struct v1c *c, const char *code, const char *ref, const char *room)
{
    json_t *ev = v1_wait(c, V1_WAIT, "error", "code", code, NULL);
    if (!ev) {
        v1_dump(c, code);
        fail_msg("no error %s within %d ms", code, V1_WAIT);
    }
    assert_true(json_is_string(json_object_get(pl(ev), "message")));
    if (ref == V1_ANY_REF) {
        /* either */
    } else if (ref) {
        if (!pstr(ev, "ref") || strcmp(pstr(ev, "ref"), ref) != 0) {
            char *s = json_dumps(ev, JSON_COMPACT);
            fail_msg("error %s should have ref \"%s\": %s", code, ref, s);
        }
    } else {
        assert_null(json_object_get(pl(ev), "ref"));
    }
    if (room)
        assert_string_equal(pstr(ev, "room"), room);
    json_decref(ev);
}

/* Sends raw text (JSON clients) and expects error `code` without a ref. */
static inline void raw_error(struct v1c *c, const char *text, const char *code)
{
    assert_int_equal(wsc_send_text(v1_wsc(c), text), 0);
    json_t *ev = v1_wait(c, V1_WAIT, "error", NULL);
    if (!ev) {
        v1_dump(c, text);
        fail_msg("no error for %s", text);
    }
    if (!pstr(ev, "code") || strcmp(pstr(ev, "code"), code) != 0)
        fail_msg("%s: expected error %s, got %s", text, code,
                 pstr(ev, "code") ? pstr(ev, "code") : "(none)");
    json_decref(ev);
}

/* Resends `id` until it is acked (errors meanwhile are fine); returns the
 * message id. */
static inline json_int_t resend_until_acked(struct v1c *c, const char *room, const char *text,
                                            const char *id, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    while (h_now_ms() < deadline) {
        send_req(c, room, text, id);
        json_t *ack = v1_wait(c, 300, "ack", "id", id, NULL);
        if (ack) {
            json_int_t mid = pint(ack, "message_id");
            json_decref(ack);
            return mid;
        }
    }
    v1_dump(c, "resend");
    fail_msg("%s was not acked within %d ms", id, timeout_ms);
    return 0;
}

/* Waits for a presence event about `user` in room with `action`; returns its
 * count. */
static inline json_int_t expect_presence(struct v1c *c, const char *room, const char *user,
                                         const char *action, int timeout_ms)
{
    json_t *ev =
        v1_wait(c, timeout_ms, "presence", "room", room, "user", user, "action", action, NULL);
    if (!ev) {
        v1_dump(c, "presence");
        fail_msg("no presence %s of %s in %s within %d ms", action, user, room, timeout_ms);
    }
    json_int_t n = pint(ev, "count");
    json_decref(ev);
    return n;
}

/* After a room's history was lost (new epoch), a member that stayed joined
 * still gets `text`: as a new_message, or inside the fresh `joined` (new
 * epoch, recovered false) the gateway sends when it sees the epoch change.
 * Returns true for the latter. */
static inline bool delivered_after_loss(struct v1c *c, const char *room, const char *text,
                                        const char *old_epoch)
{
    for (int64_t deadline = h_now_ms() + V1_WAIT; h_now_ms() < deadline;) {
        json_t *ev = v1_wait(c, 50, "new_message", "room", room, "message", text, NULL);
        if (ev) {
            json_decref(ev);
            return false;
        }
        while ((ev = v1_take(c, "joined", "room", room, NULL))) {
            check_joined(ev, room);
            assert_string_not_equal(pstr(ev, "epoch"), old_epoch);
            assert_false(json_is_true(json_object_get(pl(ev), "recovered")));
            json_t *msgs = json_object_get(pl(ev), "messages");
            bool has = false;
            for (size_t i = 0; i < json_array_size(msgs); i++)
                has |= !strcmp(msg_text(json_array_get(msgs, i)), text);
            json_decref(ev);
            if (has)
                return true;
        }
    }
    v1_dump(c, "delivery after the loss");
    fail_msg("\"%s\" did not reach a member that stayed in %s", text, room);
    return false;
}

/* Stores a message from "ghost" in the room's history on r under the
 * room's next id without publishing it: exactly what a node whose
 * subscription was down misses. */
static inline void store_unpublished(const struct h_redis *r, const char *room, const char *text)
{
    char ts[24], meta[96], hist[96];
    snprintf(ts, sizeof ts, "%lld", (long long)h_now_ms());
    snprintf(meta, sizeof meta, "cf:{%s}:meta", room);
    snprintf(hist, sizeof hist, "cf:{%s}:hist", room);
    static const char script[] =
        "local epoch = redis.call('HGET', KEYS[1], 'epoch')\n"
        "local id = redis.call('HINCRBY', KEYS[1], 'seq', 1)\n"
        "redis.call('RPUSH', KEYS[2], cmsgpack.pack({v = 1, t = 'msg', room = ARGV[1],\n"
        "  from = 'ghost', text = ARGV[3], ts = tonumber(ARGV[2]), epoch = epoch, id = id}))\n"
        "return id\n";
    const char *const args[] = {"EVAL", script, "2", meta, hist, room, ts, text, NULL};
    assert_int_equal(h_redis_cli(r, args), 0);
}

/* Stops a process (SIGSTOP) and waits until the kernel shows it stopped. */
static inline void stop_process(struct h_proc *proc)
{
    assert_int_equal(h_kill(proc, SIGSTOP), 0);
    pid_t pid = proc->pid;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int64_t deadline = h_now_ms() + 5000; h_now_ms() < deadline; h_sleep_ms(5)) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        if (p && p[1] == ' ' && p[2] == 'T')
            return;
        if (p && p[1] == ' ' && p[2] == 'Z') {
            /* It had exited before the SIGSTOP: say how at once, not "did
             * not stop" after 5 s (h_alive reaps it and keeps an end the
             * test did not cause for the teardown to report too). */
            char how[128] = "could not be reaped";
            if (!h_alive(proc) && proc->pid < 0)
                h_describe_status(proc->status, how, sizeof how);
            fail_msg("%s (pid %d) had ended before the test stopped it: it %s (log %s)", proc->name,
                     (int)pid, how, proc->log);
        }
    }
    fail_msg("%s (pid %d) did not stop within 5 s of SIGSTOP", proc->name, (int)pid);
}

/* A room name "<prefix><n>" that shard `shard` of `shards` owns. */
static inline void room_on_shard(char *out, size_t cap, const char *prefix, uint32_t shard,
                                 uint32_t shards)
{
    for (int n = 0; n < 1000; n++) {
        snprintf(out, cap, "%s%d", prefix, n);
        if (cf_shard_of(out, strlen(out), shards) == shard)
            return;
    }
    fail_msg("no room for shard %u", shard);
}

#endif
