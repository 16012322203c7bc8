/* v1codec: see v1codec.h. */
#include "v1codec.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <string.h>

#include "bytes.h"
#include "clock.h"
#include "jalloc.h"
#include "jevent.h"
#include "mpjson.h"
#include "validate.h"

/* ---- requests ------------------------------------------------------------- */

static const struct {
    const char *name;
    enum v1_type type;
} req_types[] = {
    {"join", V1_JOIN},       {"leave", V1_LEAVE},   {"send", V1_SEND},
    {"history", V1_HISTORY}, {"typing", V1_TYPING}, {"change_room", V1_CHANGE_ROOM},
    {"ping", V1_PING},
};

static struct cf_str str_of(const json_t *v)
{
    return (struct cf_str){json_string_value(v), (uint32_t)json_string_length(v)};
}

static size_t code_points(struct cf_str s)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s.len; i++)
        n += ((unsigned char)s.p[i] & 0xc0) != 0x80;
    return n;
}

/* Ids and epochs go into Redis keys, logs and other clients' events. */
static bool has_controls(struct cf_str s)
{
    for (uint32_t i = 0; i < s.len; i++)
        if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
            return true;
    return false;
}

static bool id_ok(const json_t *v)
{
    if (!json_is_string(v))
        return false;
    struct cf_str s = str_of(v);
    size_t n = code_points(s);
    return n >= 1 && n <= V1_MAX_ID_CHARS && !has_controls(s);
}

/* A non-negative integer field: 1 present and valid, 0 absent, -1 invalid. */
static int get_count(const json_t *payload, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(payload, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* "limit": absent = the default, capped at the maximum. 0 or -1. */
static int get_limit(const json_t *payload, uint32_t *out)
{
    uint64_t n = V1_DEFAULT_LIMIT;
    if (get_count(payload, "limit", &n) < 0)
        return -1;
    *out = n > V1_MAX_LIMIT ? V1_MAX_LIMIT : (uint32_t)n;
    return 0;
}

#define REFUSE(c, msg)                                                                             \
    do {                                                                                           \
        e->code = (c);                                                                             \
        e->message = (msg);                                                                        \
        return -1;                                                                                 \
    } while (0)

static int parse_payload(json_t *payload, struct v1_req *r, struct v1_error *e)
{
    json_t *id = json_object_get(payload, "id");
    if (id && !json_is_null(id)) {
        if (!id_ok(id))
            REFUSE("bad_id", "id must be a string of 1 to 64 characters, no control characters");
        r->has_id = true;
        r->id = str_of(id);
        e->ref = r->id;
    }
    if (r->type == V1_PING)
        return 0; /* about the connection, no room */
    json_t *room = json_object_get(payload, r->type == V1_CHANGE_ROOM ? "name" : "room");
    if (!json_is_string(room))
        REFUSE("bad_request", r->type == V1_CHANGE_ROOM ? "change_room needs a string \"name\""
                                                        : "a string \"room\" is required");
    r->room = str_of(room);
    if (!cf_room_valid(r->room.p, r->room.len))
        REFUSE("bad_room", "room names are 1 to 64 characters of A-Z a-z 0-9 _ . : -");
    e->room = r->room;

    int rc;
    switch (r->type) {
    case V1_JOIN: {
        if (get_limit(payload, &r->limit) < 0)
            REFUSE("bad_request", "limit must be a non-negative integer");
        if ((rc = get_count(payload, "since", &r->since)) < 0)
            REFUSE("bad_request", "since must be a non-negative integer (a message id)");
        r->has_since = rc > 0;
        json_t *ep = json_object_get(payload, "epoch");
        if (ep && !json_is_null(ep)) {
            if (!json_is_string(ep) || json_string_length(ep) < 1 || json_string_length(ep) > 64 ||
                has_controls(str_of(ep)))
                REFUSE("bad_request", "epoch must be the string a joined event gave");
            r->has_epoch = true;
            r->epoch = str_of(ep);
        }
        break;
    }
    case V1_CHANGE_ROOM: /* its joined carries history as a join's does */
        if (get_limit(payload, &r->limit) < 0)
            REFUSE("bad_request", "limit must be a non-negative integer");
        break;
    case V1_HISTORY:
        if (get_limit(payload, &r->limit) < 0)
            REFUSE("bad_request", "limit must be a non-negative integer");
        if ((rc = get_count(payload, "before", &r->before)) < 0)
            REFUSE("bad_request", "before must be a non-negative integer (a message id)");
        r->has_before = rc > 0;
        break;
    case V1_SEND: {
        json_t *msg = json_object_get(payload, "message");
        if (!json_is_string(msg))
            REFUSE("bad_request", "send needs a string \"message\"");
        r->message = str_of(msg);
        if (!cf_text_controls_ok(r->message.p, r->message.len))
            REFUSE("bad_request", "message contains a control character (of those, only tab, "
                                  "line feed and carriage return are allowed)");
        if (!cf_text_has_content(r->message.p, r->message.len))
            REFUSE("empty_message", "the message is empty or only whitespace");
        break;
    }
    default:
        break;
    }
    return 0;
}

/* 1: the \u escape at p (6 bytes) is a high surrogate, 2: a low one, 0:
 * neither. */
static int surrogate_at(const char *p, size_t left)
{
    if (left < 6 || p[0] != '\\' || p[1] != 'u')
        return 0;
    for (int i = 2; i < 6; i++)
        if (!isxdigit((unsigned char)p[i]))
            return 0;
    if (p[2] != 'd' && p[2] != 'D')
        return 0;
    return strchr("89abAB", p[3]) ? 1 : strchr("cdefCDEF", p[3]) ? 2 : 0;
}

/* A number longer than this is made 0 in a rescue: as a real, one of over
 * ~308 digits overflows jansson too, and its value does not matter there. */
#define RESCUE_NUMBER_MAX 24

/* A frame jansson refused. A lone UTF-16 surrogate escape and an integer
 * past 64 bits are valid JSON that jansson cannot hold: parsed again with
 * lone surrogates replaced (pairs kept, so an id keeps its characters),
 * big integers as reals and overlong numbers as 0, the frame still names its
 * request id and room, so the client learns which request was refused
 * (and a client that resends until answered stops). NULL when the frame is
 * not JSON at all. (mpjson_rescue does the same for msgpack.) */
static json_t *rescue(const char *in, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return NULL;
    memcpy(copy, in, len);
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = copy[i];
        if (in_string && c == '\\') {
            int kind = surrogate_at(copy + i, len - i);
            if (kind == 1 && surrogate_at(copy + i + 6, len - i - 6) == 2)
                i += 11; /* a pair (an emoji in an id): kept as it is */
            else if (kind)
                memcpy(copy + i + 2, "FFFD", 4), i += 5;
            else
                i++; /* past the escaped character */
        } else if (c == '"') {
            in_string = !in_string;
        } else if (!in_string && (c == '-' || isdigit((unsigned char)c))) {
            size_t j = i;
            while (j < len && strchr("0123456789+-.eE", copy[j]) && copy[j])
                j++;
            if (j - i > RESCUE_NUMBER_MAX) { /* "0" and spaces: the same length */
                copy[i] = '0';
                memset(copy + i + 1, ' ', j - i - 1);
            }
            i = j - 1;
        }
    }
    json_t *root = json_loadb(copy, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
                                             JSON_DECODE_INT_AS_REAL, NULL);
    free(copy);
    return root;
}

static void rescued_refusal(json_t *root, struct v1_error *e)
{
    json_t *payload = json_object_get(root, "payload");
    json_t *id = json_object_get(payload, "id"), *room = json_object_get(payload, "room");
    if (id_ok(id))
        e->ref = str_of(id);
    if (json_is_string(room) && cf_room_valid(json_string_value(room), json_string_length(room)))
        e->room = str_of(room);
    e->code = "bad_request";
    e->message = "the frame holds a lone UTF-16 surrogate or an integer out of range";
}

int v1_parse(enum sess_proto p, const void *in, size_t len, struct v1_req *r, struct v1_error *e,
             void **edoc)
{
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    *edoc = NULL;
    json_t *root;
    jalloc_begin(); /* the tree lives until v1_req_free or v1_error_free */
    if (p == SESS_V1_MSGPACK) {
        const char *why;
        root = mpjson_decode(in, len, &why);
    } else {
        json_error_t jerr;
        /* NUL is valid in JSON strings: each field's check refuses it */
        root = json_loadb(in, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    }
    jalloc_end();
    json_t *saved = root ? NULL : p == SESS_V1_MSGPACK ? mpjson_rescue(in, len) : rescue(in, len);
    if (saved) {
        *edoc = saved;
        rescued_refusal(saved, e);
        return -1;
    }
    e->code = "bad_json";
    e->message = p == SESS_V1_MSGPACK ? "the frame is not a valid msgpack map"
                                      : "the frame is not valid JSON";
    if (!root)
        return -1;
    *edoc = root;
    json_t *type = json_object_get(root, "type"), *payload = json_object_get(root, "payload");
    if (!json_is_object(root) || !json_is_string(type) || !json_is_object(payload)) {
        e->message = "expected {\"type\": string, \"payload\": object}";
        return -1;
    }
    r->type = 0;
    for (size_t i = 0; i < sizeof req_types / sizeof req_types[0]; i++)
        if (json_string_length(type) == strlen(req_types[i].name) &&
            strcmp(json_string_value(type), req_types[i].name) == 0)
            r->type = req_types[i].type;
    if (!r->type) {
        json_t *id = json_object_get(payload, "id");
        if (id_ok(id))
            e->ref = str_of(id);
        e->code = "unknown_type";
        e->message = "not a v1 request type";
        return -1;
    }
    if (parse_payload(payload, r, e) < 0)
        return -1;
    r->doc = root;
    *edoc = NULL;
    return 0;
}

void v1_req_free(struct v1_req *r)
{
    json_decref(r->doc);
    r->doc = NULL;
}

void v1_error_free(void *edoc)
{
    json_decref(edoc);
}

/* ---- events --------------------------------------------------------------- */

/* Encodes and releases ev. */
static struct cf_buf *encode(enum sess_proto p, json_t *ev)
{
    if (!ev)
        return NULL;
    struct cf_buf *b = NULL;
    if (p == SESS_V1_MSGPACK) {
        struct cf_bytes out;
        cf_bytes_init(&out, CF_WIRE_MAX_FRAME * 2);
        if (mpjson_encode(&out, ev) == 0 && (b = cf_buf_new(LWS_PRE, cf_bytes_len(&out)))) {
            memcpy(cf_buf_payload(b), cf_bytes_data(&out), cf_bytes_len(&out));
            b->len = (uint32_t)cf_bytes_len(&out);
        }
        cf_bytes_free(&out);
    } else {
        /* Most events fit the stack buffer: serialised once, copied once. */
        char stack[8192];
        size_t need = json_dumpb(ev, stack, sizeof stack, JSON_COMPACT);
        if (need && (b = cf_buf_new(LWS_PRE, need))) {
            if (need <= sizeof stack)
                memcpy(cf_buf_payload(b), stack, need);
            else
                json_dumpb(ev, (char *)cf_buf_payload(b), need, JSON_COMPACT);
            b->len = (uint32_t)need;
        }
    }
    json_decref(ev);
    return b;
}

static json_t *event(const char *type, json_t *payload)
{
    if (!payload)
        return NULL;
    return json_pack("{s:s, s:o}", "type", type, "payload", payload);
}

static json_t *jstr(struct cf_str s)
{
    return json_stringn(s.p ? s.p : "", s.len);
}

static json_t *sent_str(int64_t ts)
{
    char sent[CF_RFC3339_LEN + 1];
    return cf_rfc3339_ms(ts, sent, sizeof sent) < 0 ? NULL : json_string(sent);
}

static json_t *message_payload(const struct cf_wire_msg *m)
{
    json_t *sent = sent_str(m->ts);
    json_t *o = sent ? json_object() : NULL;
    if (!o) {
        json_decref(sent); /* a time out of range: the message cannot be shown */
        return NULL;
    }
    json_object_set_new(o, "room", jstr(m->room));
    if (m->has & CF_WIRE_HAS_ID)
        json_object_set_new(o, "id", json_integer((json_int_t)m->id));
    json_object_set_new(o, "message", jstr(m->text));
    json_object_set_new(o, "from", jstr(m->from));
    json_object_set_new(o, "sent", sent);
    return o;
}

struct cf_buf *v1_encode_event(enum sess_proto p, const struct cf_wire_msg *ev)
{
    switch (ev->type) {
    case CF_WIRE_MSG:
        if (p != SESS_V1_MSGPACK) /* the most frequent event: see jevent.h */
            return jev_v1_message(ev, LWS_PRE);
        return encode(p, event("new_message", message_payload(ev)));
    case CF_WIRE_TYPING:
        return encode(p, event("typing", json_pack("{s:o, s:o}", "room", jstr(ev->room), "user",
                                                   jstr(ev->user))));
    case CF_WIRE_PRESENCE:
        return encode(p, event("presence",
                               json_pack("{s:o, s:o, s:o, s:I}", "room", jstr(ev->room), "user",
                                         jstr(ev->user), "action", jstr(ev->action), "count",
                                         (json_int_t)ev->count)));
    default:
        return NULL;
    }
}

struct cf_buf *v1_encode_error(enum sess_proto p, const char *code, const char *message,
                               struct cf_str ref, struct cf_str room)
{
    json_t *o = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (o && ref.len)
        json_object_set_new(o, "ref", jstr(ref));
    if (o && room.len)
        json_object_set_new(o, "room", jstr(room));
    return encode(p, event("error", o));
}

struct cf_buf *v1_encode_ack(enum sess_proto p, struct cf_str id, struct cf_str room,
                             uint64_t message_id, int64_t ts)
{
    /* Every send is acked: written directly (jevent.h). A string jansson
     * would refuse or a time out of range goes the jansson way below, which
     * leaves such a field out as it always did. */
    if (p == SESS_V1_JSON) {
        struct cf_buf *b = jev_v1_ack(id, room, message_id, ts, LWS_PRE);
        if (b)
            return b;
    }
    json_t *o = json_object();
    if (o && id.len)
        json_object_set_new(o, "id", jstr(id));
    if (o) {
        json_object_set_new(o, "room", jstr(room));
        json_object_set_new(o, "message_id", json_integer((json_int_t)message_id));
        json_object_set_new(o, "sent", sent_str(ts));
    }
    return encode(p, event("ack", o));
}

struct cf_buf *v1_encode_left(enum sess_proto p, struct cf_str room)
{
    return encode(p, event("left", json_pack("{s:o}", "room", jstr(room))));
}

struct cf_buf *v1_encode_pong(enum sess_proto p, struct cf_str id)
{
    return encode(p, event("pong", id.len ? json_pack("{s:o}", "id", jstr(id)) : json_object()));
}

/* The JSON array of stored messages v; *epoch (when not NULL) gets the epoch
 * of the last one in it that has one (pointing into v), else stays as it was. */
static json_t *messages_of(struct cf_wire_decoder *d, const struct cf_str *v, uint32_t n,
                           size_t *bad, struct cf_str *epoch)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < n; i++) {
        struct cf_wire_msg m;
        const char *why;
        if (cf_wire_decode(d, v[i].p, v[i].len, &m, &why) < 0 || m.type != CF_WIRE_MSG) {
            (*bad)++;
            continue;
        }
        json_t *o = message_payload(&m);
        if (!o) {
            (*bad)++;
            continue;
        }
        if (json_array_append_new(a, o) < 0) {
            json_decref(a);
            return NULL;
        }
        if (epoch && (m.has & CF_WIRE_HAS_EPOCH))
            *epoch = m.epoch;
    }
    return a;
}

struct cf_buf *v1_encode_joined(enum sess_proto p, struct cf_wire_decoder *d,
                                const struct cf_wire_msg *s, size_t *bad)
{
    json_t *members = json_array();
    for (uint32_t i = 0; members && i < s->nmembers; i++)
        json_array_append_new(members, json_pack("{s:o}", "user", jstr(s->members[i])));
    json_t *msgs = messages_of(d, s->messages, s->nmessages, bad, NULL);
    if (!members || !msgs) {
        json_decref(members);
        json_decref(msgs);
        return NULL;
    }
    return encode(p, event("joined", json_pack("{s:o, s:o, s:I, s:o, s:I, s:o, s:b}", "room",
                                               jstr(s->room), "epoch", jstr(s->epoch), "last_id",
                                               (json_int_t)s->last_id, "members", members,
                                               "count", (json_int_t)s->count, "messages", msgs,
                                               "recovered", s->recovered)));
}

struct cf_buf *v1_encode_history(enum sess_proto p, struct cf_wire_decoder *d,
                                 const struct cf_wire_msg *pg, struct cf_str id, size_t *bad)
{
    struct cf_str epoch = {NULL, 0};
    json_t *msgs = messages_of(d, pg->messages, pg->nmessages, bad, &epoch);
    if (!msgs)
        return NULL;
    json_t *o = json_pack("{s:o, s:o, s:b}", "room", jstr(pg->room), "messages", msgs, "has_more",
                          pg->has_more);
    if (o && id.len)
        json_object_set_new(o, "id", jstr(id));
    /* A new epoch empties the room's history (broker/scripts.c), so one page is
     * of one epoch. Its ids mean something only in that epoch, and the page
     * can be read from a new one before the member's unasked joined of it. */
    if (o && epoch.len)
        json_object_set_new(o, "epoch", jstr(epoch));
    return encode(p, event("history", o));
}
