/* fuzz_claims: a JWT payload as claims_read reads it (gateway/claims.c).
 *
 * Property: whatever the recognizer takes, jansson takes too (a JSON object,
 * duplicate keys refused) with exactly the same members: the same number,
 * each key with the same kind and value. The recognizer only ever declines
 * in favour of jansson, so claims_read then agrees with jansson by
 * construction; that is checked too. */
#include "claims.h"
#include "fuzz.h"

static bool same(const struct claim *a, json_t *j)
{
    switch (a->kind) {
    case CLAIM_STRING:
        return json_is_string(j) && json_string_length(j) == a->n &&
               memcmp(json_string_value(j), a->s, a->n) == 0 && a->s[a->n] == '\0';
    case CLAIM_INTEGER:
        return json_is_integer(j) && (int64_t)json_integer_value(j) == a->i;
    default:
        return false; /* the recognizer makes nothing else */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    static struct claims c; /* large: not on the fuzzer's stack */
    const char *in = (const char *)data;
    json_t *ref = json_loadb(in, size, JSON_REJECT_DUPLICATES, NULL);
    if (claims_recognize(&c, in, size)) {
        FUZZ_CHECK(json_is_object(ref));
        FUZZ_CHECK(json_object_size(ref) == c.n);
        const char *key;
        json_t *v;
        json_object_foreach(ref, key, v) {
            struct claim m;
            FUZZ_CHECK(claims_get(&c, key, &m));
            FUZZ_CHECK(same(&m, v));
        }
        claims_release(&c);
    }
    int rc = claims_read(&c, in, size);
    FUZZ_CHECK((rc == 0) == json_is_object(ref));
    if (rc == 0) {
        const char *key;
        json_t *v;
        json_object_foreach(ref, key, v) {
            struct claim m;
            FUZZ_CHECK(claims_get(&c, key, &m));
        }
        claims_release(&c);
    }
    json_decref(ref);
    return 0;
}
