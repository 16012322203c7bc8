/* Unit tests for common/validate: UTF-8, room names, usernames, text content. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "validate.h"

#define UTF8_OK(lit) assert_true(cf_utf8_valid(lit, sizeof(lit) - 1))
#define UTF8_BAD(lit) assert_false(cf_utf8_valid(lit, sizeof(lit) - 1))

static void test_utf8_valid_sequences(void **state)
{
    (void)state;
    assert_true(cf_utf8_valid("", 0));
    UTF8_OK("hello, world");
    UTF8_OK("\x00"); /* U+0000 is well-formed UTF-8 */
    UTF8_OK("\x7f");
    UTF8_OK("\xc2\x80");         /* U+0080, smallest 2-byte */
    UTF8_OK("\xc3\xa9");         /* é */
    UTF8_OK("\xdf\xbf");         /* U+07FF */
    UTF8_OK("\xe0\xa0\x80");     /* U+0800, smallest 3-byte */
    UTF8_OK("\xe2\x82\xac");     /* € */
    UTF8_OK("\xed\x9f\xbf");     /* U+D7FF, just below the surrogates */
    UTF8_OK("\xee\x80\x80");     /* U+E000, just above */
    UTF8_OK("\xef\xbf\xbf");     /* U+FFFF */
    UTF8_OK("\xf0\x90\x80\x80"); /* U+10000, smallest 4-byte */
    UTF8_OK("\xf0\x9f\x98\x80"); /* 😀 */
    UTF8_OK("\xf4\x8f\xbf\xbf"); /* U+10FFFF, the last code point */
    UTF8_OK("a\xc3\xa9z\xe2\x82\xac\xf0\x9f\x98\x80!");
}

static void test_utf8_invalid_sequences(void **state)
{
    (void)state;
    UTF8_BAD("\x80"); /* lone continuation */
    UTF8_BAD("a\xbf"
             "b");
    UTF8_BAD("\xc0\x80");         /* overlong NUL */
    UTF8_BAD("\xc1\xbf");         /* overlong 0x7F */
    UTF8_BAD("\xe0\x80\x80");     /* overlong 3-byte */
    UTF8_BAD("\xe0\x9f\xbf");     /* overlong U+07FF */
    UTF8_BAD("\xed\xa0\x80");     /* U+D800 surrogate */
    UTF8_BAD("\xed\xbf\xbf");     /* U+DFFF surrogate */
    UTF8_BAD("\xf0\x80\x80\x80"); /* overlong 4-byte */
    UTF8_BAD("\xf0\x8f\xbf\xbf"); /* overlong U+FFFF */
    UTF8_BAD("\xf4\x90\x80\x80"); /* U+110000 */
    UTF8_BAD("\xf5\x80\x80\x80");
    UTF8_BAD("\xff");
    UTF8_BAD("\xfe");
    UTF8_BAD("abc\xff");
    /* Truncated at the end. */
    UTF8_BAD("\xc3");
    UTF8_BAD("a\xe2\x82");
    UTF8_BAD("\xe2");
    UTF8_BAD("\xf0\x9f\x98");
    UTF8_BAD("\xf0\x9f");
    /* A bad continuation byte. */
    UTF8_BAD("\xc3"
             "A");
    UTF8_BAD("\xe2"
             "A"
             "\xac");
    UTF8_BAD("\xe2\x82"
             "A");
    UTF8_BAD("\xf0\x9f\x98"
             "A");
    UTF8_BAD("\xc3\xc3\xa9");
    /* Only len bytes are looked at: a cut through a sequence is truncation. */
    const char *euro = "\xe2\x82\xac";
    assert_false(cf_utf8_valid(euro, 1));
    assert_false(cf_utf8_valid(euro, 2));
    assert_true(cf_utf8_valid(euro, 3));
}

/* The validator skips ASCII eight bytes at a time: an ill-formed sequence
 * (or a good one) is found wherever it sits against those eight. */
static void test_utf8_inside_ascii_runs(void **state)
{
    (void)state;
    static const struct {
        const char *seq;
        size_t len;
        bool ok;
    } cases[] = {
        {"\xE2\x82\xAC", 3, true},
        {"\xF0\x9F\x98\x80", 4, true},
        {"\xC3\xA9", 2, true},
        {"\x80", 1, false},
        {"\xC0\xAF", 2, false},
        {"\xED\xA0\x80", 3, false},
        {"\xF4\x90\x80\x80", 4, false},
        {"\xE2\x82", 2, false},
        {"\xFF", 1, false},
    };
    char buf[64];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t at = 0; at + cases[c].len <= 40; at++) {
            for (size_t total = at + cases[c].len; total <= 40; total += 7) {
                memset(buf, 'a', sizeof buf);
                memcpy(buf + at, cases[c].seq, cases[c].len);
                /* a truncated sequence is only ill-formed before other bytes
                 * or at the end: both are checked */
                assert_int_equal(cf_utf8_valid(buf, total), cases[c].ok);
            }
        }
    }
}

static void test_room_valid(void **state)
{
    (void)state;
    char s[80];
    assert_true(cf_room_valid("general", 7));
    assert_true(cf_room_valid("a", 1));
    assert_true(cf_room_valid("Az09_.:-", 8));
    memset(s, 'x', 64);
    assert_true(cf_room_valid(s, 64));
    assert_false(cf_room_valid(s, 65));
    assert_false(cf_room_valid("", 0));
    assert_false(cf_room_valid("a b", 3));
    assert_false(cf_room_valid("a/b", 3));
    assert_false(cf_room_valid("..\\x", 4));
    assert_false(cf_room_valid("caf\xc3\xa9", 5));
    assert_false(cf_room_valid("a\0b", 3));
    assert_false(cf_room_valid("room!", 5));
    assert_false(cf_room_valid("#room", 5));
    assert_false(cf_room_valid("tab\t", 4));
    /* Only len bytes count. */
    assert_true(cf_room_valid("ab cd", 2));
}

static void repeat(char *out, const char *unit, int times)
{
    size_t n = strlen(unit);
    for (int i = 0; i < times; i++)
        memcpy(out + (size_t)i * n, unit, n);
    out[(size_t)times * n] = '\0';
}

static int clean(const char *in, char *out)
{
    memset(out, 'X', CF_USERNAME_BYTES_MAX + 1);
    return cf_username_clean(in, strlen(in), out, CF_USERNAME_BYTES_MAX + 1);
}

static void test_username_clean_ok(void **state)
{
    (void)state;
    char out[CF_USERNAME_BYTES_MAX + 1], in[300];

    assert_int_equal(clean("alice", out), 5);
    assert_string_equal(out, "alice");
    assert_int_equal(clean("  alice  ", out), 5);
    assert_string_equal(out, "alice");
    assert_int_equal(clean("\t\n\r\v\f bob smith \f\v\r\n\t", out), 9);
    assert_string_equal(out, "bob smith");
    assert_int_equal(clean("J\xc3\xa9r\xc3\xb4me", out), 8);
    assert_string_equal(out, "J\xc3\xa9r\xc3\xb4me");

    repeat(in, "a", 32);
    assert_int_equal(clean(in, out), 32);
    assert_string_equal(out, in);

    repeat(in, "\xc3\xa9", 32); /* 32 code points, 64 bytes */
    assert_int_equal(clean(in, out), 64);
    assert_string_equal(out, in);

    repeat(in, "\xf0\x9f\x98\x80", 32); /* 32 code points, 128 bytes */
    assert_int_equal(clean(in, out), 128);
    assert_string_equal(out, in);

    /* Whitespace around does not count towards the limit. */
    char padded[300];
    repeat(in, "\xc3\xa9", 32);
    strcpy(padded, "   ");
    strcat(padded, in);
    strcat(padded, " \t ");
    assert_int_equal(clean(padded, out), 64);
    assert_string_equal(out, in);

    /* Unicode spaces and blank fillers at the ends are trimmed too: "alice"
     * with U+3000, U+00A0, U+3164 or U+2800 around would show as "alice" */
    assert_int_equal(clean("\xe3\x80\x80"
                           "alice\xc2\xa0",
                           out),
                     5);
    assert_string_equal(out, "alice");
    assert_int_equal(clean(" \xe3\x85\xa4\xe2\xa0\x80 bob \xef\xbe\xa0\xe2\x80\x83 ", out), 3);
    assert_string_equal(out, "bob");
    assert_int_equal(clean("\xe3\x80\x80"
                           "\xe4\xb8\xad\xe6\x96\x87"
                           "\xe3\x80\x80",
                           out),
                     6);
    assert_string_equal(out, "\xe4\xb8\xad\xe6\x96\x87"); /* CJK with ideographic spaces */

    /* A variation selector after what it changes: an emoji, an ideograph,
     * a keycap */
    assert_int_equal(clean("love\xe2\x9d\xa4\xef\xb8\x8f", out), 10); /* U+2764 U+FE0F */
    assert_int_equal(clean("\xe8\x91\x9b\xf3\xa0\x84\x80"
                           "x",
                           out),
                     8);                                              /* U+845B U+E0100 */
    assert_int_equal(clean("no1\xef\xb8\x8f\xe2\x83\xa3", out), 9);   /* 1 U+FE0F U+20E3 */
    assert_int_equal(clean("a\xf0\x9f\x98\x80\xef\xb8\x8f", out), 8); /* U+1F600 U+FE0F */
    assert_int_equal(clean("\xc2\xa9\xef\xb8\x8f"
                           "co",
                           out),
                     7); /* U+00A9 U+FE0F */

    /* Only len bytes are read. */
    memset(out, 'X', sizeof out);
    assert_int_equal(cf_username_clean(" carol  dave", 7, out, sizeof out), 5);
    assert_string_equal(out, "carol");
}

static void test_username_clean_errors(void **state)
{
    (void)state;
    char out[CF_USERNAME_BYTES_MAX + 1], in[300];

    assert_int_equal(clean("", out), CF_NAME_EMPTY);
    assert_int_equal(clean("   ", out), CF_NAME_EMPTY);
    assert_int_equal(clean(" \t\r\n\v\f ", out), CF_NAME_EMPTY);
    /* Unicode spaces and blank fillers alone show as nobody */
    assert_int_equal(clean("\xe3\x80\x80", out), CF_NAME_BLANK);              /* U+3000 */
    assert_int_equal(clean("\xc2\xa0", out), CF_NAME_BLANK);                  /* U+00A0 */
    assert_int_equal(clean("\xe3\x85\xa4\xe3\x85\xa4", out), CF_NAME_BLANK);  /* U+3164 */
    assert_int_equal(clean("\xe2\xa0\x80 \xe2\x80\x83", out), CF_NAME_BLANK); /* U+2800, U+2003 */
    assert_false(cf_username_valid("\xef\xbe\xa0", 3));                       /* U+FFA0 */
    /* ... but a peer or Redis may still carry one an older version let in */
    assert_true(cf_username_wire_valid("\xe3\x80\x80", 3));
    assert_int_equal(clean("a\xe3\x80\x80"
                           "b",
                           out),
                     5); /* between letters: a name that shows */

    repeat(in, "a", 33);
    assert_int_equal(clean(in, out), CF_NAME_TOO_LONG);
    repeat(in, "\xc3\xa9", 33);
    assert_int_equal(clean(in, out), CF_NAME_TOO_LONG);
    repeat(in, "\xf0\x9f\x98\x80", 33);
    assert_int_equal(clean(in, out), CF_NAME_TOO_LONG);
    repeat(in, "a", 200);
    assert_int_equal(clean(in, out), CF_NAME_TOO_LONG);

    assert_int_equal(clean("a\tb", out), CF_NAME_CONTROL);
    assert_int_equal(clean("a\nb", out), CF_NAME_CONTROL);
    assert_int_equal(clean("a\x1b[31mb", out), CF_NAME_CONTROL);
    assert_int_equal(clean("del\x7f", out), CF_NAME_CONTROL);
    assert_int_equal(clean("c1\xc2\x85x", out), CF_NAME_CONTROL);         /* U+0085 */
    assert_int_equal(clean("evil\xe2\x80\xaetxt", out), CF_NAME_CONTROL); /* U+202E */
    assert_int_equal(clean("al\xe2\x80\x8bice", out), CF_NAME_CONTROL);   /* U+200B */
    assert_int_equal(clean("\xef\xbb\xbf"
                           "bom",
                           out),
                     CF_NAME_CONTROL);                                   /* U+FEFF */
    assert_int_equal(clean("x\xe2\x81\xa6y", out), CF_NAME_CONTROL);     /* U+2066 */
    assert_int_equal(clean("soft\xc2\xadhyphen", out), CF_NAME_CONTROL); /* U+00AD */
    /* a variation selector after ASCII, at the start or after another shows
     * as nothing: "alice" U+FE0F looks like "alice" */
    assert_int_equal(clean("alice\xef\xb8\x8f", out), CF_NAME_CONTROL);
    assert_int_equal(clean("\xef\xb8\x80"
                           "alice",
                           out),
                     CF_NAME_CONTROL);
    assert_int_equal(clean("ali\xf3\xa0\x84\x80"
                           "ce",
                           out),
                     CF_NAME_CONTROL);                              /* U+E0100 */
    assert_int_equal(clean("1\xef\xb8\x8f", out), CF_NAME_CONTROL); /* no keycap after */
    /* ... or after a letter that is not ASCII, or a blank: each shows as
     * the name without it */
    assert_int_equal(clean("jos\xc3\xa9\xef\xb8\x8f", out), CF_NAME_CONTROL);
    assert_int_equal(clean("\xd0\xb0\xef\xb8\x8f", out), CF_NAME_CONTROL); /* Cyrillic a */
    assert_int_equal(clean("alice\xc2\xa0\xef\xb8\x8f", out), CF_NAME_CONTROL);
    assert_int_equal(clean("alice\xe3\x80\x80\xef\xb8\x8f", out), CF_NAME_CONTROL);
    assert_int_equal(clean("alice\xe3\x85\xa4\xef\xb8\x8f", out), CF_NAME_CONTROL);
    assert_int_equal(clean("\xe2\x9d\xa4\xef\xb8\x8f\xef\xb8\x8f", out), CF_NAME_CONTROL);
    /* other characters that render as nothing */
    assert_int_equal(clean("ali\xe1\xa0\x8b"
                           "ce",
                           out),
                     CF_NAME_CONTROL); /* U+180B */
    assert_int_equal(clean("ali\xe1\x9e\xb4"
                           "ce",
                           out),
                     CF_NAME_CONTROL); /* U+17B4 */
    assert_int_equal(clean("ali\xf0\x9d\x85\xb3"
                           "ce",
                           out),
                     CF_NAME_CONTROL); /* U+1D173 */
    assert_int_equal(clean("ali\xf0\x9b\xb2\xa0"
                           "ce",
                           out),
                     CF_NAME_CONTROL); /* U+1BCA0 */
    /* ... which an older version let in: still fine from a peer or Redis */
    assert_true(cf_username_wire_valid("alice\xef\xb8\x8f", 8));
    assert_true(cf_username_wire_valid("ali\xe1\xa0\x8b"
                                       "ce",
                                       8));
    assert_true(cf_username_wire_valid("alice\xc2\xa0", 7));
    assert_false(cf_username_valid("alice\xef\xb8\x8f", 8));
    assert_false(cf_username_valid("alice\xc2\xa0", 7)); /* a token's sub: not trimmed */
    assert_false(cf_username_valid("\xe3\x80\x80"
                                   "alice",
                                   8));
    assert_int_equal(cf_username_clean("a\0b", 3, out, sizeof out), CF_NAME_CONTROL);

    assert_int_equal(clean("bad\xff", out), CF_NAME_BAD_UTF8);
    assert_int_equal(clean("\xc3", out), CF_NAME_BAD_UTF8);
    assert_int_equal(clean("\xed\xa0\x80", out), CF_NAME_BAD_UTF8);
    assert_int_equal(clean("\xc0\xaf", out), CF_NAME_BAD_UTF8);

    assert_string_equal(cf_name_error_str(CF_NAME_EMPTY), "username must not be empty");
    assert_string_equal(cf_name_error_str(CF_NAME_TOO_LONG),
                        "username must be at most 32 characters");
    assert_string_equal(cf_name_error_str(CF_NAME_BAD_UTF8), "username must be valid UTF-8");
    assert_string_equal(cf_name_error_str(CF_NAME_CONTROL),
                        "username must not contain control or invisible formatting characters");
    assert_string_equal(cf_name_error_str(12345), "invalid username");
}

static void test_username_valid(void **state)
{
    (void)state;
    char in[300];
    assert_true(cf_username_valid("alice", 5));
    assert_true(cf_username_valid("bob smith", 9));
    assert_false(cf_username_valid(" alice", 6));
    assert_false(cf_username_valid("alice ", 6));
    assert_false(cf_username_valid("\talice", 6));
    assert_false(cf_username_valid("alice\n", 6));
    assert_false(cf_username_valid("", 0));
    assert_false(cf_username_valid("a\tb", 3));
    assert_false(cf_username_valid("x\xe2\x80\xaey", 5));
    assert_false(cf_username_valid("x\xff", 2));
    repeat(in, "\xc3\xa9", 32);
    assert_true(cf_username_valid(in, strlen(in)));
    repeat(in, "\xc3\xa9", 33);
    assert_false(cf_username_valid(in, strlen(in)));
    repeat(in, "\xf0\x9f\x98\x80", 32);
    assert_true(cf_username_valid(in, strlen(in)));
    repeat(in, "a", 129);
    assert_false(cf_username_valid(in, strlen(in)));
}

#define CONTENT(lit) cf_text_has_content(lit, sizeof(lit) - 1)

static void test_text_has_content(void **state)
{
    (void)state;
    assert_false(cf_text_has_content("", 0));
    assert_false(CONTENT("   "));
    assert_false(CONTENT("\n\t"));
    assert_false(CONTENT(" \t\r\n\v\f"));
    assert_false(CONTENT("\xe3\x80\x80"));            /* U+3000 ideographic space */
    assert_false(CONTENT("\xc2\xa0"));                /* U+00A0 no-break space */
    assert_false(CONTENT("\xc2\xa0 \xe3\x80\x80\n")); /* a mix */
    assert_false(CONTENT("\xe2\x80\x83"));            /* U+2003 em space */
    assert_true(CONTENT("a"));
    assert_true(CONTENT(" x "));
    assert_true(CONTENT("\xc2\xa0x"));
    assert_true(CONTENT("\xc3\xa9"));
    assert_true(CONTENT("\xf0\x9f\x98\x80"));
    assert_true(CONTENT("   .   "));
    /* Only len bytes count. */
    assert_false(cf_text_has_content("  x", 2));
}

#define CONTROLS_OK(lit) cf_text_controls_ok(lit, sizeof(lit) - 1)

static void test_text_controls(void **state)
{
    (void)state;
    assert_true(cf_text_controls_ok("", 0));
    assert_true(CONTROLS_OK("plain text, \"quoted\" and \\ slashed"));
    assert_true(CONTROLS_OK("tab\there\r\nnext line\n"));
    assert_true(CONTROLS_OK("\x7f and \xc2\x85")); /* DEL and U+0085: no JSON escape */
    assert_true(CONTROLS_OK("\xe2\x80\xa8"));      /* U+2028 */
    assert_false(CONTROLS_OK("a\x01b"));
    assert_false(CONTROLS_OK("\x1b[31mred"));
    assert_false(CONTROLS_OK("\x0b"));
    assert_false(CONTROLS_OK("\x0c"));
    assert_false(CONTROLS_OK("\x1f"));
    assert_false(cf_text_controls_ok("a\0b", 3));
    /* every C0 byte but the three */
    for (int c = 0; c < 0x20; c++) {
        char one = (char)c;
        assert_int_equal(cf_text_controls_ok(&one, 1), c == '\t' || c == '\n' || c == '\r');
    }
    /* Only len bytes count. */
    assert_true(cf_text_controls_ok("ab\x01", 2));
}

/* A header's list (Expect, repeated headers joined by lws with commas) or
 * ALLOWED_ORIGINS: whole entries, any case, between commas, spaces or tabs. */
static void test_list_has(void **state)
{
    (void)state;
    assert_true(cf_list_has("100-continue", "100-continue"));
    assert_true(cf_list_has("100-continue,100-continue", "100-continue"));
    assert_true(cf_list_has("x-trace ,\t100-CONTINUE ", "100-continue"));
    assert_true(cf_list_has("https://a.example, https://b.example", "https://b.example"));
    assert_false(cf_list_has("100-continue-x", "100-continue"));
    assert_false(cf_list_has("x100-continue", "100-continue"));
    assert_false(cf_list_has("https://a.example", "https://a.exampl"));
    assert_false(cf_list_has("", "100-continue"));
    assert_false(cf_list_has(" , ,", "100-continue"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid_sequences),
        cmocka_unit_test(test_utf8_invalid_sequences),
        cmocka_unit_test(test_utf8_inside_ascii_runs),
        cmocka_unit_test(test_room_valid),
        cmocka_unit_test(test_username_clean_ok),
        cmocka_unit_test(test_username_clean_errors),
        cmocka_unit_test(test_username_valid),
        cmocka_unit_test(test_text_has_content),
        cmocka_unit_test(test_text_controls),
        cmocka_unit_test(test_list_has),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
