/* gateway/fresh: HTTP dates both ways, the validators of a stat, and which
 * conditional requests are answered 304. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fresh.h"

static void test_dates_round_trip(void **state)
{
    (void)state;
    char s[FRESH_DATE_LEN + 1];
    assert_int_equal(fresh_format_date(784111777, s), 0);
    assert_string_equal(s, "Sun, 06 Nov 1994 08:49:37 GMT"); /* RFC 9110's example */
    static const time_t times[] = {0, 951782400 /* 29 Feb 2000 */, 1796040000, 253402300799};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        time_t back = -1;
        assert_int_equal(fresh_format_date(times[i], s), 0);
        assert_int_equal(fresh_parse_date(s, &back), 0);
        assert_int_equal(back, times[i]);
    }
    assert_int_equal(fresh_format_date(253402300800, s), -1); /* year 10000 */
}

static void test_not_dates(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "yesterday",
        "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850: obsolete, not sent by browsers */
        "Sun Nov  6 08:49:37 1994",       /* asctime */
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        "Sun, 06 Nox 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:49:37 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:3x GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        time_t t = 42;
        if (fresh_parse_date(bad[i], &t) == 0)
            fail_msg("\"%s\" was taken for a date", bad[i]);
        assert_int_equal(t, 42);
    }
}

static void tags_of(off_t size, time_t sec, long nsec, struct fresh_tags *t)
{
    struct stat st = {.st_size = size};
    st.st_mtim.tv_sec = sec;
    st.st_mtim.tv_nsec = nsec;
    fresh_tags_of(&st, t);
}

static void test_validators(void **state)
{
    (void)state;
    struct fresh_tags t, u;
    tags_of(14, 784111777, 5, &t);
    assert_string_equal(t.etag, "W/\"e-2ebc98a1.5\"");
    assert_string_equal(t.last_modified, "Sun, 06 Nov 1994 08:49:37 GMT");
    /* Any of size, second or nanosecond changes the tag. */
    tags_of(15, 784111777, 5, &u);
    assert_string_not_equal(t.etag, u.etag);
    tags_of(14, 784111778, 5, &u);
    assert_string_not_equal(t.etag, u.etag);
    tags_of(14, 784111777, 6, &u);
    assert_string_not_equal(t.etag, u.etag);
}

static void test_conditions(void **state)
{
    (void)state;
    struct fresh_tags t;
    tags_of(14, 784111777, 5, &t);
    const char *lm = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_false(fresh_not_modified(&t, NULL, NULL));
    assert_true(fresh_not_modified(&t, "W/\"e-2ebc98a1.5\"", NULL));
    assert_true(fresh_not_modified(&t, "\"e-2ebc98a1.5\"", NULL)); /* weak comparison */
    assert_true(fresh_not_modified(&t, "\"a\",W/\"b\" ,  W/\"e-2ebc98a1.5\"", NULL));
    assert_true(fresh_not_modified(&t, "*", NULL));
    assert_false(fresh_not_modified(&t, "W/\"e-2ebc98a1.50\"", NULL));
    assert_false(fresh_not_modified(&t, "W/\"e-2ebc98a1.5", NULL));
    assert_false(fresh_not_modified(&t, "e-2ebc98a1.5", NULL));
    assert_false(fresh_not_modified(&t, "", NULL));
    /* If-None-Match decides alone when present. */
    assert_false(fresh_not_modified(&t, "\"other\"", lm));
    assert_true(fresh_not_modified(&t, NULL, lm));
    /* If-Modified-Since: only the file's own time. */
    assert_false(fresh_not_modified(&t, NULL, "Sun, 06 Nov 1994 08:49:38 GMT"));
    assert_false(fresh_not_modified(&t, NULL, "Sun, 06 Nov 1994 08:49:36 GMT"));
    assert_false(fresh_not_modified(&t, NULL, "not a date"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates_round_trip),
        cmocka_unit_test(test_not_dates),
        cmocka_unit_test(test_validators),
        cmocka_unit_test(test_conditions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
