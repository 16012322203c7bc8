/* Unit tests for gateway/auth: issuing and verifying guest tokens, the time
 * claims, tampered and malformed tokens, the subject. The forms a token
 * can take (headers, segments, algorithms) are test_auth_forms.c's. */
#include "auth_tokens.h"

#include <limits.h>
#include <stdlib.h>

static void test_issue_verify(void **state)
{
    (void)state;
    char user[130];
    char *t = auth_issue(g_auth, "alice", NOW);
    assert_non_null(t);
    assert_int_equal(verify_at(t, NOW, user), AUTH_OK);
    assert_string_equal(user, "alice");
    /* Within the lifetime and the leeway on both ends. */
    assert_int_equal(verify_at(t, NOW + TTL, user), AUTH_OK);
    assert_int_equal(verify_at(t, NOW + TTL + AUTH_LEEWAY_S - 1, user), AUTH_OK);
    /* valid before exp (RFC 7519 4.1.4), with the leeway */
    assert_int_equal(verify_at(t, NOW + TTL + AUTH_LEEWAY_S, user), AUTH_EXPIRED);
    assert_int_equal(verify_at(t, NOW - AUTH_LEEWAY_S, user), AUTH_OK);
    assert_int_equal(verify_at(t, NOW - AUTH_LEEWAY_S - 1, user), AUTH_NOT_YET_VALID);
    /* The token is HS256 and carries the claims. */
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, t, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    assert_string_equal(jwt_get_grant(jwt, "sub"), "alice");
    assert_int_equal(jwt_get_grant_int(jwt, "iat"), NOW);
    assert_int_equal(jwt_get_grant_int(jwt, "nbf"), NOW);
    assert_int_equal(jwt_get_grant_int(jwt, "exp"), NOW + TTL);
    jwt_free(jwt);

    /* The length counts, not a NUL: a token followed by other bytes. */
    size_t n = strlen(t);
    char *padded = malloc(n + 10);
    assert_non_null(padded);
    memcpy(padded, t, n);
    memcpy(padded + n, "garbage!!", 10);
    memset(user, 'X', sizeof user);
    assert_int_equal(auth_verify(g_auth, padded, n, NOW, user, sizeof user), AUTH_OK);
    assert_string_equal(user, "alice");
    assert_int_equal(auth_verify(g_auth, padded, n - 1, NOW, user, sizeof user), AUTH_BAD_SIGNATURE);
    free(padded);
    free(t);

    /* Non-ASCII names and the longest name survive. */
    static const char jerome[] = "J\xc3\xa9r\xc3\xb4me \xf0\x9f\x98\x80";
    t = auth_issue(g_auth, jerome, NOW);
    assert_non_null(t);
    assert_int_equal(verify_at(t, NOW, user), AUTH_OK);
    assert_string_equal(user, jerome);
    free(t);
    char longest[129];
    for (int i = 0; i < 32; i++)
        memcpy(longest + 4 * i, "\xf0\x9f\x98\x80", 4);
    longest[128] = '\0';
    t = auth_issue(g_auth, longest, NOW);
    assert_non_null(t);
    assert_int_equal(verify_at(t, NOW, user), AUTH_OK);
    assert_string_equal(user, longest);
    free(t);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    struct auth *other = auth_new(OTHER_SECRET, TTL);
    assert_non_null(other);
    char *t = auth_issue(other, "alice", NOW);
    assert_non_null(t);
    assert_int_equal(verify(t), AUTH_BAD_SIGNATURE);
    char user[130];
    assert_int_equal(auth_verify(other, t, strlen(t), NOW, user, sizeof user), AUTH_OK);
    free(t);
    auth_free(other);
    auth_free(NULL);

    /* A secret that is a prefix of ours is another secret. */
    other = auth_new("unit-test-secret", TTL);
    assert_non_null(other);
    t = auth_issue(other, "alice", NOW);
    assert_int_equal(verify(t), AUTH_BAD_SIGNATURE);
    free(t);
    auth_free(other);
}

static void test_time_claims(void **state)
{
    (void)state;
    struct claims c = good_claims();
    char *t;

    c.exp = NOW - 100;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_EXPIRED);
    free(t);

    c.exp = NOW - AUTH_LEEWAY_S + 1; /* expired, but within the leeway */
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_OK);
    free(t);

    c.exp = NOW - AUTH_LEEWAY_S;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_EXPIRED);
    free(t);

    c = good_claims();
    c.has_exp = false;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_EXPIRED);
    free(t);

    c = good_claims();
    c.has_exp = false;
    c.extra_json = "{\"exp\":\"1895860000\"}"; /* a string is not a time */
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_EXPIRED);
    free(t);

    c = good_claims();
    c.nbf = NOW + 60;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_NOT_YET_VALID);
    free(t);

    c.nbf = NOW + AUTH_LEEWAY_S + 1;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_NOT_YET_VALID);
    free(t);

    c.nbf = NOW + AUTH_LEEWAY_S;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_OK);
    free(t);

    c = good_claims();
    c.has_nbf = false; /* nbf is optional */
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_OK);
    free(t);

    /* ... but one that is not a time is not ignored */
    static const char *const not_times[] = {"{\"nbf\":\"2030-01-01\"}", "{\"nbf\":true}",
                                            "{\"nbf\":null}", "{\"nbf\":1e300}"};
    for (size_t i = 0; i < sizeof not_times / sizeof not_times[0]; i++) {
        c.extra_json = not_times[i];
        t = craft_hs256(&c);
        if (verify(t) != AUTH_NOT_YET_VALID)
            fail_msg("a token with %s was not refused", not_times[i]);
        free(t);
    }

    /* Extreme values must not overflow anything. */
    c = good_claims();
    c.exp = LONG_MAX;
    c.nbf = LONG_MIN;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_OK);
    free(t);
    c.exp = LONG_MIN;
    c.nbf = 0;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_EXPIRED);
    free(t);
    c.exp = LONG_MAX;
    c.nbf = LONG_MAX;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_NOT_YET_VALID);
    free(t);
}

static void test_tampered(void **state)
{
    (void)state;
    char *t = auth_issue(g_auth, "alice", NOW);
    assert_non_null(t);
    char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
    size_t mid = (size_t)(d1 - t) + (size_t)(d2 - d1) / 2;
    char *bad = strdup(t);
    assert_non_null(bad);
    bad[mid] = bad[mid] == 'A' ? 'B' : 'A';
    assert_int_not_equal(verify(bad), AUTH_OK);
    /* Every single-character change of the payload segment is refused. */
    for (char *p = d1 + 1; p < d2; p++) {
        strcpy(bad, t);
        size_t k = (size_t)(p - t);
        bad[k] = bad[k] == 'x' ? 'y' : 'x';
        enum auth_result r = verify(bad);
        if (r == AUTH_OK)
            fail_msg("payload change at %zu accepted", k);
    }
    /* A signature change. */
    strcpy(bad, t);
    size_t last = strlen(bad) - 2;
    bad[last] = bad[last] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(bad), AUTH_BAD_SIGNATURE);
    free(bad);

    /* A forged payload ("sub":"mallory") under the original header and signature. */
    char forged[2048], payload_b64[512];
    static const char forged_payload[] =
        "{\"exp\":1795863600,\"iat\":1795860000,\"nbf\":1795860000,\"sub\":\"mallory\"}";
    b64url(forged_payload, strlen(forged_payload), payload_b64);
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(d1 - t), t, payload_b64, d2);
    assert_int_equal(verify(forged), AUTH_BAD_SIGNATURE);
    free(t);
}

static void test_malformed(void **state)
{
    (void)state;
    char user[130];
    assert_int_equal(auth_verify(g_auth, NULL, 0, NOW, user, sizeof user), AUTH_MISSING);
    assert_int_equal(auth_verify(g_auth, "", 0, NOW, user, sizeof user), AUTH_MISSING);
    assert_int_equal(auth_verify(g_auth, "abc", 0, NOW, user, sizeof user), AUTH_MISSING);
    static const char *const bad[] = {
        "abc", "a.b", "a.b.c.d", "a.b.c", ".b.c", "a..c", "..", ".", "a.b.",
        "eyJhbGciOiJIUzI1NiJ9 .e30.sig", "has spaces.in it.yes", "a.b.c\n",
        "a+b.c/d.e", "\xc3\xa9.b.c", "a.b.c\0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum auth_result r = verify(bad[i]);
        if (r != AUTH_MALFORMED)
            fail_msg("\"%s\": %s", bad[i], auth_result_str(r));
    }
    /* A NUL inside the given length. */
    char *t = auth_issue(g_auth, "alice", NOW);
    assert_non_null(t);
    size_t n = strlen(t);
    t[n / 2] = '\0';
    assert_int_equal(auth_verify(g_auth, t, n, NOW, user, sizeof user), AUTH_MALFORMED);
    free(t);

    /* A valid signature over a payload that is not JSON. */
    char token[TOKEN_BUF];
    make_token(token, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "not json", "");
    assert_int_equal(verify(token), AUTH_MALFORMED);

    /* Longer than AUTH_MAX_TOKEN, however valid otherwise. */
    char *big = malloc(AUTH_MAX_TOKEN + 2);
    assert_non_null(big);
    memset(big, 'a', AUTH_MAX_TOKEN + 1);
    big[10] = '.';
    big[20] = '.';
    big[AUTH_MAX_TOKEN + 1] = '\0';
    assert_int_equal(verify(big), AUTH_MALFORMED);
    free(big);
    struct claims c = good_claims();
    char pad_json[4200];
    char pad[4000];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    snprintf(pad_json, sizeof pad_json, "{\"pad\":\"%s\"}", pad);
    c.extra_json = pad_json;
    t = craft_hs256(&c);
    assert_true(strlen(t) > AUTH_MAX_TOKEN);
    assert_int_equal(verify(t), AUTH_MALFORMED);
    free(t);
    /* ... while a padded token just under the limit is fine. */
    pad[2900] = '\0';
    snprintf(pad_json, sizeof pad_json, "{\"pad\":\"%s\"}", pad);
    t = craft_hs256(&c);
    assert_true(strlen(t) <= AUTH_MAX_TOKEN);
    assert_int_equal(verify(t), AUTH_OK);
    free(t);
}

static void test_subject(void **state)
{
    (void)state;
    struct claims c = good_claims();
    char *t;
    char user[130];

    c.sub = NULL;
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_BAD_SUBJECT);
    free(t);

    static const char *const bad_subs[] = {
        "a\x01" "b", "tab\there", "", " alice", "alice ", "x\xe2\x80\xaey", "bad\x7f",
        "0123456789012345678901234567890123456789", /* 40 characters */
        "012345678901234567890123456789012", /* 33 characters */
    };
    c = good_claims();
    for (size_t i = 0; i < sizeof bad_subs / sizeof bad_subs[0]; i++) {
        c.sub = bad_subs[i];
        t = craft_hs256(&c);
        enum auth_result r = verify(t);
        if (r != AUTH_BAD_SUBJECT)
            fail_msg("sub \"%s\": %s", bad_subs[i], auth_result_str(r));
        free(t);
    }
    c.sub = "01234567890123456789012345678901"; /* 32 characters */
    t = craft_hs256(&c);
    assert_int_equal(verify_at(t, NOW, user), AUTH_OK);
    assert_string_equal(user, "01234567890123456789012345678901");
    free(t);

    /* sub that is not a string. */
    c = good_claims();
    c.sub = NULL;
    c.extra_json = "{\"sub\":42}";
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_BAD_SUBJECT);
    free(t);
    c.extra_json = "{\"sub\":[\"alice\"]}";
    t = craft_hs256(&c);
    assert_int_equal(verify(t), AUTH_BAD_SUBJECT);
    free(t);

    /* A user buffer too small for the name. */
    c = good_claims();
    t = craft_hs256(&c);
    assert_int_equal(auth_verify(g_auth, t, strlen(t), NOW, user, 5), AUTH_BAD_SUBJECT);
    assert_int_equal(auth_verify(g_auth, t, strlen(t), NOW, user, 6), AUTH_OK);
    assert_string_equal(user, "alice");
    free(t);
}

static void test_result_str(void **state)
{
    (void)state;
    assert_string_equal(auth_result_str(AUTH_OK), "ok");
    assert_string_equal(auth_result_str(AUTH_MISSING), "missing");
    assert_string_equal(auth_result_str(AUTH_MALFORMED), "malformed");
    assert_string_equal(auth_result_str(AUTH_BAD_ALG), "bad_algorithm");
    assert_string_equal(auth_result_str(AUTH_BAD_SIGNATURE), "bad_signature");
    assert_string_equal(auth_result_str(AUTH_EXPIRED), "expired");
    assert_string_equal(auth_result_str(AUTH_NOT_YET_VALID), "not_yet_valid");
    assert_string_equal(auth_result_str(AUTH_BAD_SUBJECT), "bad_subject");
    assert_string_equal(auth_result_str(AUTH_RESULT_COUNT), "unknown");
    assert_string_equal(auth_result_str((enum auth_result)-1), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_verify),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_subject),
        cmocka_unit_test(test_result_str),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
