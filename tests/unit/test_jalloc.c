/* Unit tests for gateway/jalloc: jansson's allocations while a client frame
 * is parsed come from the arena, which starts over once all of them are
 * freed, and nothing parsed is ever overwritten while it lives. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "asan.h"
#include "jalloc.h"

static json_t *parse(const char *text)
{
    jalloc_begin();
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    jalloc_end();
    assert_non_null(root);
    return root;
}

static const char *text_of(json_t *root)
{
    return json_string_value(json_object_get(json_object_get(root, "payload"), "text"));
}

static const char *const FRAME =
    "{\"type\":\"send\",\"payload\":{\"id\":\"r1\",\"room\":\"lobby\",\"text\":\"hello\"}}";

/* A frame's tree comes from the arena, and once freed the arena is empty */
static void test_a_frame_is_parsed_in_the_arena(void **state)
{
    (void)state;
    struct cf_arena_stats before = jalloc_stats();
    json_t *root = parse(FRAME);
    struct cf_arena_stats in = jalloc_stats();
    assert_true(in.arena > before.arena);
    assert_int_equal(in.fallback, before.fallback);
    assert_true(in.live > 0);
    assert_true(in.used > 0);
    assert_string_equal(text_of(root), "hello");
    json_decref(root);
    struct cf_arena_stats after = jalloc_stats();
    assert_int_equal(after.live, 0);
    assert_int_equal(after.used, 0);
}

/* A tree still alive when the next frame is parsed keeps its contents: the
 * arena does not start over while any of its blocks lives */
static void test_a_tree_alive_at_the_next_parse_is_kept(void **state)
{
    (void)state;
    json_t *a = parse(FRAME);
    size_t used_a = jalloc_stats().used;
    json_t *b = parse("{\"type\":\"send\",\"payload\":{\"id\":\"r2\",\"room\":\"x\","
                      "\"text\":\"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\"}}");
    assert_true(jalloc_stats().used > used_a);
    json_decref(b);
    assert_true(jalloc_stats().used > 0); /* a lives */
    /* a third parse goes on after b's blocks, never over a */
    json_t *c = parse("{\"type\":\"send\",\"payload\":{\"text\":\"YYYYYYYYYYYYYYYY\"}}");
    assert_string_equal(text_of(a), "hello");
    assert_string_equal(json_string_value(json_object_get(a, "type")), "send");
    assert_string_equal(text_of(c), "YYYYYYYYYYYYYYYY");
    json_decref(a);
    assert_true(jalloc_stats().used > 0); /* c lives */
    json_decref(c);
    assert_int_equal(jalloc_stats().live, 0);
    assert_int_equal(jalloc_stats().used, 0);
}

/* A frame larger than the arena parses whole: what does not fit comes from
 * malloc(), and freeing the mix leaves the arena empty */
static void test_a_frame_larger_than_the_arena_falls_back_to_malloc(void **state)
{
    (void)state;
    enum { N = 4000 };
    size_t cap = 16 + N * 24;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, cap, "{\"type\":\"send\",\"payload\":{\"items\":[");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s\"item-%05d\"", i ? "," : "", i);
    snprintf(big + n, cap - n, "]}}");
    uint64_t fallback = jalloc_stats().fallback;
    json_t *root = parse(big);
    free(big);
    assert_true(jalloc_stats().fallback > fallback);
    json_t *items = json_object_get(json_object_get(root, "payload"), "items");
    assert_int_equal(json_array_size(items), N);
    assert_string_equal(json_string_value(json_array_get(items, 0)), "item-00000");
    assert_string_equal(json_string_value(json_array_get(items, N - 1)), "item-03999");
    json_decref(root);
    assert_int_equal(jalloc_stats().live, 0);
    assert_int_equal(jalloc_stats().used, 0);
}

/* Outside begin/end jansson allocates with malloc(): a tree built or
 * written out then (events, HTTP answers) never lands in the arena, and
 * one from the arena changed then is freed whole */
static void test_outside_a_parse_jansson_uses_malloc(void **state)
{
    (void)state;
    uint64_t arena = jalloc_stats().arena;
    json_t *o = json_pack("{s:s, s:i}", "type", "joined", "n", 3);
    char *s = json_dumps(o, JSON_COMPACT);
    assert_string_equal(s, "{\"type\":\"joined\",\"n\":3}");
    assert_int_equal(jalloc_stats().arena, arena);
    free(s); /* jansson's output is malloc()ed, as callers free it */
    json_decref(o);
    json_t *root = parse(FRAME);
    for (int i = 0; i < 64; i++) { /* grows the object's table outside the arena */
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(json_object_set_new(root, key, json_integer(i)), 0);
    }
    assert_string_equal(text_of(root), "hello");
    json_decref(root);
    assert_int_equal(jalloc_stats().live, 0);
    assert_int_equal(jalloc_stats().used, 0);
}

#ifdef CF_ASAN
/* Under ASan a tree freed while another lives is poisoned at once, not only
 * when the arena starts over: a use of it after its free is reported */
static void test_a_tree_freed_while_another_lives_is_poisoned(void **state)
{
    (void)state;
    json_t *a = parse(FRAME);
    json_t *b = parse("{\"type\":\"send\",\"payload\":{\"text\":\"freed-while-a-lives\"}}");
    const char *t = text_of(b);
    assert_false(__asan_address_is_poisoned(t));
    json_decref(b);
    assert_true(jalloc_stats().live > 0); /* a lives: the arena has not started over */
    assert_true(__asan_address_is_poisoned(t));
    assert_string_equal(text_of(a), "hello");
    json_decref(a);
    assert_int_equal(jalloc_stats().live, 0);
}
#endif

int main(void)
{
    jalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_frame_is_parsed_in_the_arena),
        cmocka_unit_test(test_a_tree_alive_at_the_next_parse_is_kept),
        cmocka_unit_test(test_a_frame_larger_than_the_arena_falls_back_to_malloc),
        cmocka_unit_test(test_outside_a_parse_jansson_uses_malloc),
#ifdef CF_ASAN
        cmocka_unit_test(test_a_tree_freed_while_another_lives_is_poisoned),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
