/* Unit tests for gateway/claims: the usual flat payload is read in place,
 * everything else by jansson, and both give the same members; what jansson
 * refuses (duplicate keys above all: which "sub" would count?) is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "claims.h"

static struct claims c; /* ~4 KB: not on cmocka's stack */

static bool recognized(const char *json)
{
    bool r = claims_recognize(&c, json, strlen(json));
    claims_release(&c);
    return r;
}

static int read_json(const char *json)
{
    return claims_read(&c, json, strlen(json));
}

static void test_the_usual_payload_is_read_in_place(void **state)
{
    (void)state;
    const char *p = " {\"sub\":\"alice\", \"iat\":1800000000,\n\t\"nbf\":0,\"exp\":-5 } ";
    assert_true(claims_recognize(&c, p, strlen(p)));
    assert_null(c.doc);
    assert_int_equal(c.n, 4);
    struct claim v;
    assert_true(claims_get(&c, "sub", &v));
    assert_int_equal(v.kind, CLAIM_STRING);
    assert_int_equal(v.n, 5);
    assert_string_equal(v.s, "alice");
    assert_true(claims_get(&c, "iat", &v));
    assert_int_equal(v.kind, CLAIM_INTEGER);
    assert_int_equal(v.i, 1800000000);
    assert_true(claims_get(&c, "nbf", &v) && v.i == 0);
    assert_true(claims_get(&c, "exp", &v) && v.i == -5);
    assert_false(claims_get(&c, "aud", &v));
    assert_false(claims_get(&c, "su", &v));
    claims_release(&c);
    assert_true(recognized("{}"));
    assert_true(recognized("{\"\":\"\"}"));
    assert_true(recognized("{\"n\":999999999999999999}")); /* 18 digits */
    /* at the bounds: CLAIMS_MAX members, CLAIMS_TEXT_MAX bytes */
    assert_true(recognized("{\"1\":1,\"2\":2,\"3\":3,\"4\":4,\"5\":5,\"6\":6,\"7\":7,\"8\":8,"
                           "\"9\":9,\"10\":10,\"11\":11,\"12\":12,\"13\":13,\"14\":14,"
                           "\"15\":15,\"16\":16}"));
    static char big[CLAIMS_TEXT_MAX + 2];
    memset(big, ' ', sizeof big - 1);
    memcpy(big, "{\"sub\":\"a\"}", 11);
    big[CLAIMS_TEXT_MAX] = '\0';
    assert_true(recognized(big));
    big[CLAIMS_TEXT_MAX] = ' ';
    assert_false(recognized(big)); /* one byte more: jansson's */
    assert_int_equal(read_json(big), 0);
    claims_release(&c);
}

/* Each of these goes to jansson, which then decides. */
static void test_anything_unusual_goes_to_jansson(void **state)
{
    (void)state;
    static const char *const declined[] = {
        "{\"sub\":\"\\u00e9\"}",            /* an escape */
        "{\"sub\":\"\xc3\xa9\"}",           /* a byte outside ASCII */
        "{\"exp\":1.5}",                    /* a real */
        "{\"exp\":1e9}",                    /* an exponent */
        "{\"n\":1000000000000000000}",      /* 19 digits */
        "{\"n\":-0}",                       /* minus zero */
        "{\"aud\":[\"confab\"]}",           /* an array */
        "{\"x\":{}}",                       /* an object */
        "{\"x\":true}", "{\"x\":null}",     /* literals */
        "{\"sub\":\"a\",\"sub\":\"b\"}",    /* a duplicate */
        "{\"n\":01}",                       /* a leading zero */
        "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1", "{\"a\":1}x", "[1]", "", "\"a\"",
        "{\"a\":\"b\x01\"}",                /* a control character */
        "{\"1\":1,\"2\":2,\"3\":3,\"4\":4,\"5\":5,\"6\":6,\"7\":7,\"8\":8,\"9\":9,\"10\":10,"
        "\"11\":11,\"12\":12,\"13\":13,\"14\":14,\"15\":15,\"16\":16,\"17\":17}", /* > CLAIMS_MAX */
    };
    for (size_t i = 0; i < sizeof declined / sizeof *declined; i++) {
        if (recognized(declined[i]))
            fail_msg("taken: %s", declined[i]);
    }
}

static void test_jansson_reads_the_rest(void **state)
{
    (void)state;
    struct claim v;
    assert_int_equal(read_json("{\"sub\":\"\\u00e9l\\u00e8ve\",\"exp\":1.8e9,"
                               "\"aud\":[\"confab\"]}"), 0);
    assert_non_null(c.doc);
    assert_true(claims_get(&c, "sub", &v));
    assert_int_equal(v.kind, CLAIM_STRING);
    assert_string_equal(v.s, "\xc3\xa9l\xc3\xa8ve");
    assert_true(claims_get(&c, "exp", &v));
    assert_int_equal(v.kind, CLAIM_REAL);
    assert_true(v.r == 1.8e9);
    assert_true(claims_get(&c, "aud", &v));
    assert_int_equal(v.kind, CLAIM_OTHER);
    assert_true(json_is_array(v.j));
    claims_release(&c);
}

static void test_what_jansson_refuses_is_refused(void **state)
{
    (void)state;
    assert_int_equal(read_json("{\"sub\":\"alice\",\"sub\":\"mallory\",\"exp\":1}"), -1);
    assert_int_equal(read_json("{\"sub\":\"a\"} {"), -1);
    assert_int_equal(read_json("[\"sub\"]"), -1);
    assert_int_equal(read_json("{\"n\":01}"), -1);
    assert_int_equal(read_json("{\"a\":\"\\u0000\"}"), -1); /* NUL: never inside a claim */
    assert_int_equal(read_json(""), -1);
    /* claims_adopt takes the reference either way */
    assert_int_equal(claims_adopt(&c, json_integer(1)), -1);
    assert_int_equal(claims_adopt(&c, json_object()), 0);
    claims_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_usual_payload_is_read_in_place),
        cmocka_unit_test(test_anything_unusual_goes_to_jansson),
        cmocka_unit_test(test_jansson_reads_the_rest),
        cmocka_unit_test(test_what_jansson_refuses_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
