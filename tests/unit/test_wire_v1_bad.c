/* Unit tests for common/wire: the decoder's refusals of protocol v1 messages
 * (missing and mistyped fields, bad strings, oversized arrays), each case a
 * valid message of its type with one field changed. (test_wire_v1.c covers
 * round trips and the encoder; test_wire_bad.c the original types.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <msgpack.h>
#include <string.h>

#include "validate.h"
#include "wire.h"

#include "wire_fields.h"
#include "wire_fixture.h"

/* ---- decoder refusals ------------------------------------------------------ */

static const char *no_items[] = {NULL};
static const char *two_users[] = {"alice", "bob", NULL};
static const char *two_msgs[] = {"m1", "m2", NULL};

static void expect_bad(const struct fset *s, const char *want_why)
{
    struct cf_wire_msg m;
    const char *why;
    if (decode_fields(s, &m, &why) != -EBADMSG)
        fail_msg("accepted a bad %s", s->f[1].s);
    assert_non_null(why);
    assert_string_equal(why, want_why);
}

static void expect_ok(const struct fset *s, enum cf_wire_type type)
{
    struct cf_wire_msg m;
    const char *why;
    if (decode_fields(s, &m, &why) != 0)
        fail_msg("refused a %s: %s", s->f[1].s, why ? why : "?");
    assert_int_equal(m.type, type);
}

static struct fset fset_of(const struct field *f, size_t n)
{
    struct fset s = {.n = n};
    assert_true(n <= 16);
    memcpy(s.f, f, n * sizeof *f);
    return s;
}

#define FSET(...)                                                                                  \
    do {                                                                                           \
        const struct field f_[] = {__VA_ARGS__};                                                   \
        return fset_of(f_, sizeof f_ / sizeof f_[0]);                                              \
    } while (0)

/* A valid message of each v1 type, as raw fields. */
static struct fset tmpl(enum cf_wire_type t)
{
    switch (t) {
    case CF_WIRE_SEND:
        FSET(FU("v", 1), FS("t", "send"), FU("q", 1), FS("room", "lobby"), FS("from", "alice"),
             FS("text", "hi"), FI("ts", 1795860000123LL));
    case CF_WIRE_SENT:
        FSET(FU("v", 1), FS("t", "sent"), FU("q", 1), FS("room", "lobby"), FU("id", 44),
             FI("ts", 5), FK("dup", K_TRUE));
    case CF_WIRE_FAIL:
        FSET(FU("v", 1), FS("t", "fail"), FU("q", 1), FS("code", "timeout"), FS("text", "slow"));
    case CF_WIRE_SUB:
        FSET(FU("v", 1), FS("t", "sub"), FU("q", 1), FS("room", "lobby"), FS("user", "alice"),
             FS("conn", "c1"), FU("limit", 50), FU("budget", 65536));
    case CF_WIRE_SUBBED:
        FSET(FU("v", 1), FS("t", "subbed"), FU("q", 1), FS("room", "lobby"), FS("epoch", "e1"),
             FU("last_id", 43), FU("pv", 9), FU("count", 2), FL("members", K_STRS, two_users),
             FL("messages", K_BINS, two_msgs), FK("recovered", K_TRUE));
    case CF_WIRE_UNSUB:
        FSET(FU("v", 1), FS("t", "unsub"), FS("room", "lobby"), FS("conn", "c1"));
    case CF_WIRE_HIST:
        FSET(FU("v", 1), FS("t", "hist"), FU("q", 1), FS("room", "lobby"), FU("limit", 50),
             FU("budget", 65536));
    case CF_WIRE_HISTR:
        FSET(FU("v", 1), FS("t", "histr"), FU("q", 1), FS("room", "lobby"),
             FL("messages", K_BINS, no_items), FK("has_more", K_TRUE));
    case CF_WIRE_TYPING:
        FSET(FU("v", 1), FS("t", "typing"), FS("room", "lobby"), FS("user", "alice"));
    case CF_WIRE_PRESENCE:
        FSET(FU("v", 1), FS("t", "presence"), FS("room", "lobby"), FS("user", "alice"),
             FS("action", "join"), FU("count", 1), FU("pv", 2));
    default:
        fail_msg("no template");
        return (struct fset){.n = 0};
    }
}

static const enum cf_wire_type v1_types[] = {
    CF_WIRE_SEND,  CF_WIRE_SENT, CF_WIRE_FAIL,  CF_WIRE_SUB,    CF_WIRE_SUBBED,
    CF_WIRE_UNSUB, CF_WIRE_HIST, CF_WIRE_HISTR, CF_WIRE_TYPING, CF_WIRE_PRESENCE};
#define NTYPES (sizeof v1_types / sizeof v1_types[0])

static void test_templates_and_optional_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct fset t = tmpl(v1_types[i]);
        expect_ok(&t, v1_types[i]);
    }
    /* Optional fields decode into their has bits; nil is not absence. */
    struct fset s = tmpl(CF_WIRE_SUB);
    fs_put(&s, FU("since", 0));
    fs_put(&s, FS("epoch", "e1"));
    struct cf_wire_msg m;
    const char *why;
    assert_int_equal(decode_fields(&s, &m, &why), 0);
    assert_int_equal(m.has, CF_WIRE_HAS_SINCE | CF_WIRE_HAS_EPOCH);
    fs_put(&s, FK("since", K_NIL));
    expect_bad(&s, WHY_TYPE);
    s = tmpl(CF_WIRE_HIST);
    fs_put(&s, FU("before", 7));
    assert_int_equal(decode_fields(&s, &m, &why), 0);
    assert_int_equal(m.has, CF_WIRE_HAS_BEFORE);
    assert_true(m.before == 7);
    fs_put(&s, FI("before", -1));
    expect_bad(&s, WHY_TYPE);
    s = tmpl(CF_WIRE_SEND);
    fs_put(&s, FS("cid", "k-1"));
    assert_int_equal(decode_fields(&s, &m, &why), 0);
    assert_int_equal(m.has, CF_WIRE_HAS_CID);
    fs_put(&s, FU("cid", 1));
    expect_bad(&s, WHY_TYPE);
    /* An optional field of another type is an unknown key there: ignored. */
    s = tmpl(CF_WIRE_TYPING);
    fs_put(&s, FS("cid", "k-1"));
    fs_put(&s, FS("since", "not even a number"));
    assert_int_equal(decode_fields(&s, &m, &why), 0);
    assert_int_equal(m.has, 0);
    /* A duplicated optional field. */
    s = tmpl(CF_WIRE_HIST);
    fs_put(&s, FU("before", 7));
    s.f[s.n++] = FU("before", 8);
    expect_bad(&s, WHY_DUP);
}

static void test_missing_required(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        const struct fset t = tmpl(v1_types[i]);
        for (size_t f = 2; f < t.n; f++) {
            struct fset s = t;
            fs_del(&s, t.f[f].key);
            expect_bad(&s, WHY_MISSING);
        }
    }
}

static void test_wrong_types(void **state)
{
    (void)state;
    /* nil is the wrong type for every field of every type. */
    for (size_t i = 0; i < NTYPES; i++) {
        const struct fset t = tmpl(v1_types[i]);
        for (size_t f = 2; f < t.n; f++) {
            struct fset s = t;
            fs_put(&s, FK(t.f[f].key, K_NIL));
            expect_bad(&s, WHY_TYPE);
        }
    }
    static const char *str_and_int[] = {"alice", NULL};
    static const struct {
        enum cf_wire_type t;
        struct field f;
    } cases[] = {
        {CF_WIRE_SUBBED, FS("members", "alice")},
        {CF_WIRE_SUBBED, FL("members", K_BINS, two_users)},   /* bin, not str */
        {CF_WIRE_SUBBED, FL("messages", K_STRS, two_msgs)},   /* str, not bin */
        {CF_WIRE_SUBBED, FR("members", "\x92\xa1" "a\x05", 4)}, /* ["a", 5] */
        {CF_WIRE_SUBBED, FR("messages", "\x91\x90", 2)},       /* [[]] */
        {CF_WIRE_SUBBED, FR("members", "\x80", 1)},            /* {} */
        {CF_WIRE_SUBBED, FL("recovered", K_STRS, str_and_int)},
        {CF_WIRE_SUBBED, FU("recovered", 1)},
        {CF_WIRE_SUBBED, FS("last_id", "43")},
        {CF_WIRE_SUBBED, FI("count", -1)},
        {CF_WIRE_HISTR, FS("has_more", "true")},
        {CF_WIRE_HISTR, FS("messages", "")},
        {CF_WIRE_SENT, FU("dup", 0)},
        {CF_WIRE_SENT, FI("id", -44)},
        {CF_WIRE_SENT, FU("ts", UINT64_MAX)},
        {CF_WIRE_SENT, FI("ts", INT64_MAX)}, /* no RFC 3339 form */
        {CF_WIRE_SEND, FI("ts", INT64_MIN)},
        {CF_WIRE_SUB, FI("limit", -1)},
        {CF_WIRE_SUB, FU("limit", CF_WIRE_MAX_ITEMS + 1)},
        {CF_WIRE_SUB, FU("limit", UINT64_MAX)},
        {CF_WIRE_SUB, FU("budget", CF_WIRE_MAX_FRAME + 1)},
        {CF_WIRE_HIST, FU("limit", CF_WIRE_MAX_ITEMS + 1)},
        {CF_WIRE_SUB, FU("conn", 1)},
        {CF_WIRE_PRESENCE, FI("pv", -1)},
        {CF_WIRE_PRESENCE, FU("action", 1)},
        {CF_WIRE_FAIL, FU("code", 500)},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct fset s = tmpl(cases[c].t);
        fs_put(&s, cases[c].f);
        expect_bad(&s, WHY_TYPE);
    }
    struct fset s = tmpl(CF_WIRE_SEND); /* q is any uint64 */
    fs_put(&s, FU("q", UINT64_MAX));
    expect_ok(&s, CF_WIRE_SEND);
    /* The limits themselves are allowed. */
    s = tmpl(CF_WIRE_SUB);
    fs_put(&s, FU("limit", CF_WIRE_MAX_ITEMS));
    fs_put(&s, FU("budget", CF_WIRE_MAX_FRAME));
    expect_ok(&s, CF_WIRE_SUB);
}

static void test_bad_strings(void **state)
{
    (void)state;
    char tok[CF_WIRE_MAX_TOKEN + 2];
    memset(tok, 't', sizeof tok - 1);
    tok[sizeof tok - 1] = '\0'; /* 257 bytes */
    char room65[CF_ROOM_MAX + 2];
    memset(room65, 'r', sizeof room65 - 1);
    room65[sizeof room65 - 1] = '\0';
    static const char *bad_rooms[] = {"", "bad room", "lobby/1", "caf\xc3\xa9", NULL};
    for (size_t i = 0; i <= 4; i++) {
        struct fset s = tmpl(CF_WIRE_SUB);
        fs_put(&s, FS("room", bad_rooms[i] ? bad_rooms[i] : room65));
        expect_bad(&s, WHY_ROOM);
    }
    struct fset s = tmpl(CF_WIRE_UNSUB);
    fs_put(&s, FS("room", "a b"));
    expect_bad(&s, WHY_ROOM);
    s = tmpl(CF_WIRE_SEND);
    fs_put(&s, FS("from", " alice"));
    expect_bad(&s, WHY_FROM);

    static const struct {
        enum cf_wire_type t;
        const char *key;
    } tokens[] = {{CF_WIRE_SUB, "conn"}, {CF_WIRE_SUB, "epoch"},  {CF_WIRE_UNSUB, "conn"},
                  {CF_WIRE_SEND, "cid"}, {CF_WIRE_FAIL, "code"},  {CF_WIRE_SUBBED, "epoch"}};
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        s = tmpl(tokens[i].t);
        char ok[CF_WIRE_MAX_TOKEN + 1];
        memcpy(ok, tok, CF_WIRE_MAX_TOKEN);
        ok[CF_WIRE_MAX_TOKEN] = '\0';
        fs_put(&s, FS(tokens[i].key, ok)); /* exactly the limit */
        expect_ok(&s, tokens[i].t);
        fs_put(&s, FS(tokens[i].key, tok));
        expect_bad(&s, WHY_STRING);
        fs_put(&s, FS(tokens[i].key, ""));
        expect_bad(&s, WHY_STRING);
        fs_put(&s, FS(tokens[i].key, "\xff"));
        expect_bad(&s, WHY_STRING);
    }
    static const char *bad_users[] = {"", " alice", "a\x01" "b", "\xe2\x80\x8b" "x", NULL};
    for (size_t i = 0; bad_users[i]; i++) {
        s = tmpl(CF_WIRE_SUB);
        fs_put(&s, FS("user", bad_users[i]));
        expect_bad(&s, WHY_STRING);
        s = tmpl(CF_WIRE_TYPING);
        fs_put(&s, FS("user", bad_users[i]));
        expect_bad(&s, WHY_STRING);
        /* Inside the members array the same rule applies. */
        const char *list[] = {"alice", bad_users[i], NULL};
        s = tmpl(CF_WIRE_SUBBED);
        fs_put(&s, FL("members", K_STRS, list));
        expect_bad(&s, WHY_TYPE);
    }
    static const char *bad_actions[] = {"kick", "JOIN", "joi", "leaves", "", NULL};
    for (size_t i = 0; bad_actions[i]; i++) {
        s = tmpl(CF_WIRE_PRESENCE);
        fs_put(&s, FS("action", bad_actions[i]));
        expect_bad(&s, WHY_STRING);
    }
    s = tmpl(CF_WIRE_PRESENCE);
    fs_put(&s, FR("action", "\xa5leave", 6));
    expect_ok(&s, CF_WIRE_PRESENCE);
    fs_put(&s, FR("action", "\xa5join\0", 6)); /* "join" plus a NUL */
    expect_bad(&s, WHY_STRING);
}

static void test_array_sizes(void **state)
{
    (void)state;
    /* CF_WIRE_MAX_ITEMS members is the most; one more is refused. */
    for (int extra = 0; extra <= 1; extra++) {
        uint32_t n = CF_WIRE_MAX_ITEMS + (uint32_t)extra;
        struct pk k;
        pk_begin(&k);
        msgpack_pack_array(&k.p, n);
        for (uint32_t i = 0; i < n; i++)
            pk_strn(&k, "m", 1);
        struct fset s = tmpl(CF_WIRE_SUBBED);
        fs_put(&s, FR("members", k.sb.data, (int64_t)k.sb.size));
        struct cf_wire_msg m;
        const char *why;
        int rc = decode_fields(&s, &m, &why);
        if (extra) {
            assert_int_equal(rc, -EBADMSG);
            assert_string_equal(why, WHY_TYPE);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(m.nmembers, CF_WIRE_MAX_ITEMS);
        }
        pk_end(&k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_templates_and_optional_fields),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_array_sizes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
