/* fuzz_rreply: Redis replies as the broker reads them (broker/rreply.c: the
 * reply trees built in a connection's arena by hiredis' reader).
 *
 * The first input byte picks how many bytes each read delivers (1 to 256),
 * the rest is what Redis sent. It is read in reads of that size by a reader
 * on an arena, as the broker reads, and in one read by another: both must
 * give the same replies (types, integers, strings with their terminating
 * NUL, arrays with every element) and end the same way (an error or none).
 * When they end without an error, a reader with hiredis' own functions must
 * give the same replies too (not after an error: that may be a reply
 * refused for its size, RREPLY_MAX_ELEMENTS over its arrays, which hiredis'
 * functions would try to allocate). Once every reply and the readers are freed, nothing of
 * either arena lives. */
#include <hiredis/hiredis.h>

#include "fuzz.h"
#include "rreply.h"

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h ^ n;
}

static uint64_t digest(uint64_t h, const redisReply *r, int depth)
{
    FUZZ_CHECK(r != NULL && depth < 16);
    int64_t t = r->type;
    h = mix(h, &t, sizeof t);
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        FUZZ_CHECK(r->str != NULL && r->str[r->len] == '\0');
        return mix(h, r->str, r->len);
    case REDIS_REPLY_INTEGER: {
        long long v = r->integer;
        return mix(h, &v, sizeof v);
    }
    case REDIS_REPLY_NIL:
        return h;
    case REDIS_REPLY_ARRAY:
        h = mix(h, &r->elements, sizeof r->elements);
        for (size_t i = 0; i < r->elements; i++)
            h = digest(h, r->element[i], depth + 1);
        return h;
    default:
        FUZZ_CHECK(!"a reply of an unknown type");
        return h;
    }
}

struct outcome {
    uint64_t digest;
    uint32_t replies;
    bool failed;
};

/* Takes every whole reply the reader has; false once it has failed. */
static bool drain(redisReader *r, struct outcome *o, void (*release)(void *))
{
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(r, &reply) != REDIS_OK) {
            o->failed = true;
            return false;
        }
        if (!reply)
            return true;
        o->digest = digest(o->digest, reply, 0);
        o->replies++;
        release(reply);
    }
}

static void run_ours(const char *p, size_t n, size_t step, struct outcome *o)
{
    struct rreply_arena *a = rreply_arena_new(RREPLY_MAX_BYTES);
    FUZZ_CHECK(a != NULL);
    redisReader *r = redisReaderCreate();
    FUZZ_CHECK(r != NULL);
    rreply_use(r, a);
    for (size_t off = 0; off < n; off += step) {
        size_t len = n - off < step ? n - off : step;
        if (redisReaderFeed(r, p + off, len) != REDIS_OK) {
            o->failed = true;
            break;
        }
        if (!drain(r, o, rreply_free))
            break;
    }
    redisReaderFree(r); /* frees a reply it had begun, in the arena */
    struct cf_arena_stats st = rreply_stats(a);
    FUZZ_CHECK(st.live == 0 && st.used == 0);
    rreply_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;

    struct outcome o1 = {0}, o2 = {0};
    run_ours(p, n, step, &o1);
    run_ours(p, n, n ? n : 1, &o2);
    FUZZ_CHECK(o1.replies == o2.replies);
    FUZZ_CHECK(o1.digest == o2.digest);
    FUZZ_CHECK(o1.failed == o2.failed);
    if (o1.failed)
        return 0;

    struct outcome o3 = {0};
    redisReader *theirs = redisReaderCreate();
    FUZZ_CHECK(theirs != NULL);
    if (redisReaderFeed(theirs, p, n) == REDIS_OK)
        drain(theirs, &o3, freeReplyObject);
    else
        o3.failed = true;
    redisReaderFree(theirs);
    FUZZ_CHECK(!o3.failed);
    FUZZ_CHECK(o3.replies == o1.replies);
    FUZZ_CHECK(o3.digest == o1.digest);
    return 0;
}
