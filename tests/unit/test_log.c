/* log: a text line shows a peer's or client's bytes without anything a
 * terminal or a reader could take for something else: controls C0 and C1,
 * bytes that are not UTF-8, bidirectional overrides and line separators each
 * become '?', while the rest of UTF-8 stays as it is. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "stderr_catch.h"

/* The line cf_log writes for `text`, from the message on (without the
 * time, level and process before it), with its newline. */
static char *logged(const char *text)
{
    struct stderr_catch c;
    stderr_catch_begin(&c);
    cf_log(CF_LOG_WARN, "test", "name %s end", text);
    static char buf[4096];
    assert_true(stderr_catch_end(&c, buf, sizeof buf) > 0);
    char *at = strstr(buf, "test: name "), *json = strstr(buf, "\"msg\":\"name ");
    assert_true(at || json);
    return at ? at + strlen("test: ") : json + strlen("\"msg\":\"");
}

static void test_text_lines_show_no_controls(void **state)
{
    (void)state;
    cf_log_set_format(CF_LOG_TEXT);
    cf_log_set_level(CF_LOG_DEBUG);
    /* C0: an ANSI colour, a tab, a newline (one line per event) */
    assert_string_equal(logged("a\x1b[31mb\tc\nd"), "name a?[31mb?c d end\n");
    /* C1 as UTF-8 (U+009B, CSI), a raw 0x9b, a lone continuation byte */
    assert_string_equal(logged("x\xc2\x9b"
                               "2Jy\x9bz\x80w"),
                        "name x?2Jy?z?w end\n");
    /* right-to-left override, isolate, line and paragraph separators */
    assert_string_equal(logged("a\xe2\x80\xae"
                               "b\xe2\x81\xa7"
                               "c\xe2\x80\xa8"
                               "d\xe2\x80\xa9"),
                        "name a?b?c?d? end\n");
    /* UTF-8 that only shows stays: accents, CJK, emoji, a no-break space */
    const char *fine = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 a\xc2\xa0"
                       "b";
    char want[128];
    snprintf(want, sizeof want, "name %s end\n", fine);
    assert_string_equal(logged(fine), want);
    /* a sequence cut short */
    assert_string_equal(logged("ab\xe2\x80"), "name ab?? end\n");
}

/* JSON lines keep the value, escaped: a C1 control, a bidirectional
 * override or a line separator is \uXXXX in the raw line, not the raw
 * character (read with less or grep, it acted on the terminal). */
static void test_json_lines_escape_them(void **state)
{
    (void)state;
    cf_log_set_format(CF_LOG_JSON);
    cf_log_set_level(CF_LOG_DEBUG);
    char *line = logged("a\x1b[31mb\xc2\x9b"
                        "c\xe2\x80\xae"
                        "d\xe2\x81\xa9"
                        "e\xe2\x80\xa8"
                        "f\x9bg \xc3\xa9\xc2\xa0\x7f");
    cf_log_set_format(CF_LOG_TEXT);
    const char *want = "name a\\u001b[31mb\\u009bc\\u202ed\\u2069e\\u2028f\xef\xbf\xbdg "
                       "\xc3\xa9\xc2\xa0\\u007f end\"";
    if (strncmp(line, want, strlen(want)) != 0)
        fail_msg("logged %s", line);
}

/* Formats like cf_log and returns the field `key` names, as the journal
 * would get it. */
static const char *field(const char *key, int digits, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *field(const char *key, int digits, const char *fmt, ...)
{
    static char out[80];
    char msg[512];
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    assert_true(n >= 0);
    cf_log_field(fmt, again, msg, strlen(msg), key, digits, out, sizeof out);
    va_end(again);
    va_end(ap);
    return out;
}

static void test_journal_fields_come_from_the_format(void **state)
{
    (void)state;
    assert_string_equal(field("room ", 0, "room %.*s: joined", 5, "lobby!!"), "lobby");
    assert_string_equal(
        field("conn ", 1, "conn %llu: %s connected from %s", 42ULL, "room evil", "::1"), "42");
    /* a client's string that reads like a field is not one */
    assert_string_equal(field("room ", 0, "conn %llu: %s connected", 7ULL, "room evil"), "");
    assert_string_equal(field("room ", 0, "%s sent room %s", "room evil", "real"), "real");
    assert_string_equal(field("conn ", 1, "gateway %s: conn %d", "conn 666", 5), "5");
    /* a key inside a word, or one not followed by a conversion */
    assert_string_equal(field("room ", 0, "broom %s", "x"), "");
    assert_string_equal(field("room ", 0, "no room left for %s", "lobby"), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_lines_show_no_controls),
        cmocka_unit_test(test_json_lines_escape_them),
        cmocka_unit_test(test_journal_fields_come_from_the_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
