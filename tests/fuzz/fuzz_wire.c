/* fuzz_wire: the byte stream on a gateway <-> broker Unix socket.
 *
 * The first input byte picks how many bytes each read delivers (1 to 256),
 * the rest is the stream. Like a link's reader, the harness appends each read
 * to a bounded cf_bytes queue, peels whole frames with cf_wire_frame_peek and
 * decodes each with cf_wire_decode, stopping at a header that announces an
 * oversized frame (a link is reset then).
 *
 * Every frame that decodes must re-encode (cf_wire_encode applies the limits
 * the decoder checks), the re-encoded frame must decode to the same message,
 * and encoding that again must give the same bytes. */
#include <errno.h>

#include "bytes.h"
#include "fuzz.h"
#include "wire.h"

static struct cf_wire_decoder *dec_in, *dec_again;

static bool str_eq(struct cf_str a, struct cf_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool strs_eq(const struct cf_str *a, const struct cf_str *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!str_eq(a[i], b[i]))
            return false;
    return true;
}

static void check_same(const struct cf_wire_msg *a, const struct cf_wire_msg *b)
{
    FUZZ_CHECK(a->type == b->type && a->has == b->has);
    FUZZ_CHECK(str_eq(a->room, b->room) && str_eq(a->from, b->from) && str_eq(a->text, b->text) &&
               str_eq(a->node, b->node) && str_eq(a->user, b->user) && str_eq(a->conn, b->conn) &&
               str_eq(a->cid, b->cid) && str_eq(a->epoch, b->epoch) && str_eq(a->code, b->code) &&
               str_eq(a->action, b->action));
    FUZZ_CHECK(a->ts == b->ts && a->shard == b->shard && a->shards == b->shards &&
               a->limit == b->limit && a->budget == b->budget);
    FUZZ_CHECK(a->seq == b->seq && a->q == b->q && a->id == b->id && a->since == b->since &&
               a->before == b->before && a->last_id == b->last_id && a->pv == b->pv &&
               a->count == b->count);
    FUZZ_CHECK(a->recovered == b->recovered && a->has_more == b->has_more && a->dup == b->dup &&
               a->ready == b->ready);
    FUZZ_CHECK(a->nmembers == b->nmembers && a->nmessages == b->nmessages);
    FUZZ_CHECK(strs_eq(a->members, b->members, a->nmembers));
    FUZZ_CHECK(strs_eq(a->messages, b->messages, a->nmessages));
}

/* One frame's payload, as a link hands it to the decoder. */
static void check_frame(const unsigned char *p, size_t len)
{
    struct cf_wire_msg m;
    const char *why = NULL;
    if (cf_wire_decode(dec_in, p, len, &m, &why) < 0) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    FUZZ_CHECK(len > 0 && cf_wire_prescan(p, len) == 0);
    FUZZ_CHECK(m.type >= CF_WIRE_HELLO && m.type <= CF_WIRE_TYPE_MAX);

    struct cf_bytes out, out2;
    cf_bytes_init(&out, CF_WIRE_HDR + CF_WIRE_MAX_FRAME);
    cf_bytes_init(&out2, CF_WIRE_HDR + CF_WIRE_MAX_FRAME);
    FUZZ_CHECK(cf_wire_encode(&out, &m) == 0);
    const unsigned char *q;
    size_t qlen;
    FUZZ_CHECK(cf_wire_frame_peek(&out, &q, &qlen) == 1 &&
               CF_WIRE_HDR + qlen == cf_bytes_len(&out));
    struct cf_wire_msg again;
    FUZZ_CHECK(cf_wire_decode(dec_again, q, qlen, &again, &why) == 0);
    check_same(&m, &again);
    FUZZ_CHECK(cf_wire_encode(&out2, &again) == 0);
    FUZZ_CHECK(cf_bytes_len(&out) == cf_bytes_len(&out2) &&
               memcmp(cf_bytes_data(&out), cf_bytes_data(&out2), cf_bytes_len(&out)) == 0);
    cf_bytes_free(&out);
    cf_bytes_free(&out2);
}

/* Peels every whole frame off the front of in. -1 when the stream is unusable. */
static int drain(struct cf_bytes *in)
{
    for (;;) {
        const unsigned char *p;
        size_t len;
        int rc = cf_wire_frame_peek(in, &p, &len);
        if (rc == 0)
            return 0;
        if (rc < 0) {
            FUZZ_CHECK(rc == -EMSGSIZE);
            return -1;
        }
        FUZZ_CHECK(len <= CF_WIRE_MAX_FRAME && CF_WIRE_HDR + len <= cf_bytes_len(in));
        check_frame(p, len);
        cf_bytes_consume(in, CF_WIRE_HDR + len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (!dec_in) {
        dec_in = cf_wire_decoder_new();
        dec_again = cf_wire_decoder_new();
        FUZZ_CHECK(dec_in && dec_again);
    }
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    data++, size--;
    struct cf_bytes in;
    cf_bytes_init(&in, 2 * (CF_WIRE_HDR + CF_WIRE_MAX_FRAME));
    for (size_t off = 0; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        FUZZ_CHECK(cf_bytes_append(&in, data + off, n) == 0);
        off += n;
        if (drain(&in) < 0)
            break;
    }
    cf_bytes_free(&in);
    return 0;
}
