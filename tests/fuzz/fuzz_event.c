/* fuzz_event: a payload published on a room's Redis channel, followed from
 * the broker to the browser.
 *
 * Input: one byte n, then n % 80 bytes of room name (the channel is
 * "room:<name>"), then the payload. The broker stage is broker.c's check,
 * cf_wire_room_event (anyone who can reach Redis can PUBLISH there): the
 * payload must decode and be a msg, typing or presence for that very room,
 * or it is dropped; the Redis bridge has already refused bad room names
 * (redis.c room_of). What passes goes to gateways unchanged.
 *
 * The gateway stage decodes a broker frame with its own decoder (blinks.c)
 * and encodes what its clients get (lrooms.c lrooms_deliver, v1.c):
 * new_message for legacy clients, the event for v1 JSON and msgpack clients,
 * and for joined/history replies (subbed, histr: their messages are stored
 * Redis payloads, decoded one by one) the v1 snapshot or page. It runs on
 * every payload that decodes, since subbed/histr frames carry payloads read
 * back from Redis. Every encoded frame must parse as the client parses it. */
#include "clock.h"
#include "fuzz.h"
#include "legacy.h"
#include "v1codec.h"
#include "validate.h"
#include "wire.h"

static struct cf_wire_decoder *broker_dec, *gw_dec, *gw_dec_items;

/* The broker's check (broker.c on_redis_message): true when the payload
 * goes on to gateways. */
static bool broker_accepts(const char *name, size_t len, const uint8_t *payload, size_t plen)
{
    struct cf_wire_msg m;
    return cf_wire_room_event(broker_dec, payload, plen, name, len, &m) == NULL;
}

static void check_legacy(const struct cf_wire_msg *m, bool showable)
{
    struct cf_buf *b = legacy_encode_message(m, 16);
    FUZZ_CHECK(b || !showable);
    if (!b)
        return;
    FUZZ_CHECK(b->head == 16);
    json_t *v = fuzz_json_of(b);
    FUZZ_CHECK(v != NULL);
    json_t *p = json_object_get(v, "payload");
    FUZZ_CHECK(json_is_string(json_object_get(p, "room")) &&
               json_string_length(json_object_get(p, "room")) == m->room.len &&
               memcmp(json_string_value(json_object_get(p, "room")), m->room.p, m->room.len) == 0);
    json_decref(v);
    cf_buf_unref(b);
}

static void gateway_stage(const uint8_t *payload, size_t plen, bool from_redis)
{
    struct cf_wire_msg m;
    const char *why;
    if (cf_wire_decode(gw_dec, payload, plen, &m, &why) < 0) {
        FUZZ_CHECK(!from_redis); /* the broker decoded the same bytes */
        return;
    }
    static const char *const names[] = {[CF_WIRE_MSG] = "new_message",
                                        [CF_WIRE_TYPING] = "typing",
                                        [CF_WIRE_PRESENCE] = "presence"};
    /* Only a message whose time cannot be written out may fail to encode
     * (the gateway then drops it for everyone); anything else that decoded
     * must reach the client. */
    char sent[CF_RFC3339_LEN + 1];
    bool showable = m.type != CF_WIRE_MSG || cf_rfc3339_ms(m.ts, sent, sizeof sent) == 0;
    size_t bad;
    struct cf_buf *b;
    for (int p = SESS_V1_JSON; p <= SESS_V1_MSGPACK; p++) {
        bool mp = p == SESS_V1_MSGPACK;
        switch (m.type) {
        case CF_WIRE_MSG:
        case CF_WIRE_TYPING:
        case CF_WIRE_PRESENCE:
            b = v1_encode_event(p, &m);
            FUZZ_CHECK(b || !showable);
            fuzz_check_event(b, mp, names[m.type]);
            break;
        case CF_WIRE_SUBBED:
            bad = 0;
            b = v1_encode_joined(p, gw_dec_items, &m, &bad);
            FUZZ_CHECK(b && bad <= m.nmessages);
            fuzz_check_event(b, mp, "joined");
            break;
        case CF_WIRE_HISTR:
            bad = 0;
            b = v1_encode_history(p, gw_dec_items, &m, m.cid, &bad);
            FUZZ_CHECK(b && bad <= m.nmessages);
            fuzz_check_event(b, mp, "history");
            break;
        default:
            FUZZ_CHECK(!from_redis);
            break;
        }
    }
    if (m.type == CF_WIRE_MSG)
        check_legacy(&m, showable);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (!broker_dec) {
        broker_dec = cf_wire_decoder_new();
        gw_dec = cf_wire_decoder_new();
        gw_dec_items = cf_wire_decoder_new();
        FUZZ_CHECK(broker_dec && gw_dec && gw_dec_items);
    }
    if (size < 1)
        return 0;
    size_t n = data[0] % 80;
    if (size - 1 < n)
        return 0;
    const char *name = (const char *)data + 1;
    const uint8_t *payload = data + 1 + n;
    size_t plen = size - 1 - n;
    bool routed = cf_room_valid(name, n); /* else redis.c calls it a foreign channel */
    bool accepted = routed && broker_accepts(name, n, payload, plen);
    gateway_stage(payload, plen, accepted);
    return 0;
}
