/* fuzz_client_json: a browser's WebSocket text frame, as the gateway reads it.
 *
 * The same bytes go to both JSON parsers a text frame can reach: protocol v1
 * (v1_parse for confab.v1) and the legacy protocol (legacy_parse). What the
 * gateway answers is then encoded as it would be (an ack for an accepted v1
 * request, an error event for a refused one) and must be JSON the client can
 * read. Properties: everything accepted but a ping carries a valid room name
 * and the strings the protocol promises. */
#include "fuzz.h"
#include "legacy.h"
#include "v1codec.h"
#include "validate.h"

#define FIXED_TS 1800000000123LL

static void check_v1_accepted(const struct v1_req *r)
{
    FUZZ_CHECK(r->type >= V1_JOIN && r->type <= V1_PING);
    if (r->type == V1_PING) { /* about the connection: no room */
        for (int p = SESS_V1_JSON; p <= SESS_V1_MSGPACK; p++)
            fuzz_check_event(v1_encode_pong(p, r->id), p == SESS_V1_MSGPACK, "pong");
        return;
    }
    FUZZ_CHECK(cf_room_valid(r->room.p, r->room.len));
    if (r->type == V1_SEND) {
        FUZZ_CHECK(cf_text_has_content(r->message.p, r->message.len));
        FUZZ_CHECK(!memchr(r->message.p, '\0', r->message.len));
    }
    if (r->type == V1_JOIN || r->type == V1_HISTORY)
        FUZZ_CHECK(r->limit <= V1_MAX_LIMIT);
    if (r->has_id)
        FUZZ_CHECK(r->id.len >= 1 && cf_utf8_valid(r->id.p, r->id.len));
    for (int p = SESS_V1_JSON; p <= SESS_V1_MSGPACK; p++) {
        fuzz_check_event(v1_encode_ack(p, r->id, r->room, 42, FIXED_TS), p == SESS_V1_MSGPACK,
                         "ack");
        fuzz_check_event(v1_encode_left(p, r->room), p == SESS_V1_MSGPACK, "left");
    }
}

static void check_v1_refused(const struct v1_error *e)
{
    FUZZ_CHECK(e->code && e->message);
    for (int p = SESS_V1_JSON; p <= SESS_V1_MSGPACK; p++)
        fuzz_check_event(v1_encode_error(p, e->code, e->message, e->ref, e->room),
                         p == SESS_V1_MSGPACK, "error");
}

static void run_v1(const uint8_t *data, size_t size)
{
    struct v1_req r;
    struct v1_error e;
    void *edoc;
    if (v1_parse(SESS_V1_JSON, data, size, &r, &e, &edoc) == 0) {
        FUZZ_CHECK(edoc == NULL);
        check_v1_accepted(&r);
        v1_req_free(&r);
    } else {
        check_v1_refused(&e);
        v1_error_free(edoc);
    }
}

static void run_legacy(const uint8_t *data, size_t size)
{
    struct legacy_event ev;
    const char *why = NULL;
    if (legacy_parse((const char *)data, size, &ev, &why) < 0) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    if (ev.type == LEGACY_SEND_MESSAGE)
        FUZZ_CHECK(cf_text_has_content(ev.text.p, ev.text.len));
    else
        FUZZ_CHECK(ev.type == LEGACY_CHANGE_ROOM && cf_room_valid(ev.room.p, ev.room.len));
    legacy_event_free(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_use_jalloc();
    fuzz_init();
    run_v1(data, size);
    run_legacy(data, size);
    /* every parsed tree was freed (LSan cannot see into the arena) */
    FUZZ_CHECK(jalloc_stats().live == 0);
    return 0;
}
