/* fuzz_client_msgpack: a binary frame from a confab.msgpack.v1 client.
 *
 * mpjson_decode turns it into the jansson tree v1_parse validates; the tree
 * must survive a round trip (mpjson_encode, then mpjson_decode again, gives an
 * equal tree), and the request is then parsed and answered as the gateway
 * would (an ack, a pong or an error event, in msgpack) and the answer must
 * decode. */
#include "bytes.h"
#include "fuzz.h"
#include "v1codec.h"
#include "validate.h"
#include "wire.h"

static void check_round_trip(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    json_t *v = mpjson_decode(data, size, &why);
    if (!v) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    /* What decoded was exactly one msgpack object with sane sizes. */
    FUZZ_CHECK(cf_wire_prescan(data, size) == 0);
    struct cf_bytes out;
    cf_bytes_init(&out, 4 * size + 64);
    int rc = mpjson_encode(&out, v);
    FUZZ_CHECK(rc == 0);
    json_t *again = mpjson_decode(cf_bytes_data(&out), cf_bytes_len(&out), &why);
    FUZZ_CHECK(again != NULL);
    FUZZ_CHECK(json_equal(v, again));
    json_decref(again);
    json_decref(v);
    cf_bytes_free(&out);
}

static void check_request(const uint8_t *data, size_t size)
{
    struct v1_req r;
    struct v1_error e;
    void *edoc;
    if (v1_parse(SESS_V1_MSGPACK, data, size, &r, &e, &edoc) == 0) {
        if (r.type == V1_PING) { /* about the connection: no room */
            fuzz_check_event(v1_encode_pong(SESS_V1_MSGPACK, r.id), true, "pong");
        } else {
            FUZZ_CHECK(cf_room_valid(r.room.p, r.room.len));
            if (r.type == V1_SEND)
                FUZZ_CHECK(cf_text_has_content(r.message.p, r.message.len));
            fuzz_check_event(v1_encode_ack(SESS_V1_MSGPACK, r.id, r.room, 7, 1800000000123LL),
                             true, "ack");
        }
        v1_req_free(&r);
    } else {
        FUZZ_CHECK(e.code && e.message);
        fuzz_check_event(v1_encode_error(SESS_V1_MSGPACK, e.code, e.message, e.ref, e.room), true,
                         "error");
        v1_error_free(edoc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_use_jalloc();
    fuzz_init();
    check_round_trip(data, size);
    check_request(data, size);
    /* every parsed tree was freed (LSan cannot see into the arena) */
    FUZZ_CHECK(jalloc_stats().live == 0);
    return 0;
}
