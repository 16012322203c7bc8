/* validate: the shared rules for names and text that cross a trust boundary. */
#ifndef CF_VALIDATE_H
#define CF_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#define CF_ROOM_MAX 64     /* bytes */
#define CF_USERNAME_MAX 32 /* characters (code points) */
/* A username is at most 32 code points of at most 4 bytes each. */
#define CF_USERNAME_BYTES_MAX (CF_USERNAME_MAX * 4)

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
bool cf_utf8_valid(const char *s, size_t len);

/* A room name is 1-64 bytes of [A-Za-z0-9_.:-]. */
bool cf_room_valid(const char *s, size_t len);

enum cf_name_error {
    CF_NAME_OK = 0,
    CF_NAME_EMPTY = -1,
    CF_NAME_TOO_LONG = -2,
    CF_NAME_BAD_UTF8 = -3,
    CF_NAME_CONTROL = -4,
    CF_NAME_BLANK = -5, /* only spaces and blank fillers (U+3000, U+3164, ...) */
};

/* Trims whitespace, Unicode spaces and blank fillers from both ends of `in`
 * and checks the rest is a valid username: 1-32 code points of valid UTF-8
 * without control characters (C0, DEL, C1) or invisible formatting characters
 * (zero-width, bidi overrides, BOM, variation selectors but after a character
 * they change) that would let one user impersonate another on screen, with
 * at least one character that shows (a name of Unicode spaces or blank
 * fillers alone would show as nobody: CF_NAME_BLANK). On success writes the
 * trimmed name and a NUL into out (cap >= CF_USERNAME_BYTES_MAX + 1) and returns
 * its length in bytes; otherwise returns an enum cf_name_error. */
int cf_username_clean(const char *in, size_t len, char *out, size_t cap);

/* Same rules, for a name that must already be trimmed, of Unicode blanks too
 * (e.g. a token's `sub`). */
bool cf_username_valid(const char *s, size_t len);

/* The same rules but the last (CF_NAME_BLANK), for names that come from a
 * peer or from Redis (wire.c): a name an older version let in may still be
 * in a room's history, its presence or a frame of an older gateway, and
 * must not make those fail. So blanks at the ends, variation selectors and
 * the other invisible characters refused in new names since 2026-12-06 pass
 * here; ASCII whitespace at the ends, controls, zero-width and bidi
 * characters are refused, as they always were. */
bool cf_username_wire_valid(const char *s, size_t len);

/* A human-readable reason for a cf_name_error, for error responses. */
const char *cf_name_error_str(int err);

/* True when the text holds something other than whitespace (ASCII or Unicode
 * spaces). Assumes valid UTF-8. */
bool cf_text_has_content(const char *s, size_t len);

/* True when the text holds no C0 control character other than tab, line feed
 * and carriage return (so no NUL either). JSON must escape the others as six
 * bytes each: a text of them would reach every JSON member of a room six
 * times its size, and its sender could overflow their queues at will. */
bool cf_text_controls_ok(const char *s, size_t len);

/* Whether `item` is one of the entries of `list` (both NUL-terminated),
 * entries separated by commas, spaces or tabs, compared without regard to
 * ASCII case: an HTTP header's list, ALLOWED_ORIGINS. */
bool cf_list_has(const char *list, const char *item);

#endif
