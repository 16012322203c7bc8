/* hmac: RFC 4231's test cases (short key, text key, a key longer than the
 * block), then every digest against OpenSSL's HMAC() over keys and messages
 * of many lengths, around the block sizes above all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hmac.h"

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void expect(const char *digest, const unsigned char *key, size_t keylen, const char *msg,
                   const char *want)
{
    struct hmac *h = hmac_new(digest, key, keylen);
    assert_non_null(h);
    unsigned char mac[HMAC_MAX_SIZE];
    char got[2 * HMAC_MAX_SIZE + 1];
    hmac_compute(h, msg, strlen(msg), mac);
    assert_int_equal(hmac_size(h) * 2, strlen(want));
    hex(mac, hmac_size(h), got);
    assert_string_equal(got, want);
    hmac_free(h);
}

static void test_rfc4231(void **state)
{
    (void)state;
    unsigned char k1[20], k6[131];
    memset(k1, 0x0b, sizeof k1);
    memset(k6, 0xaa, sizeof k6);
    /* case 1 */
    expect("SHA256", k1, sizeof k1, "Hi There",
           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    expect("SHA384", k1, sizeof k1, "Hi There",
           "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f"
           "4af152e8b2fa9cb6");
    expect("SHA512", k1, sizeof k1, "Hi There",
           "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702"
           "038b274eaea3f4e4be9d914eeb61f1702e696c203a126854");
    /* case 2 */
    expect("SHA256", (const unsigned char *)"Jefe", 4, "what do ya want for nothing?",
           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* case 6: the key is hashed first */
    static const char big[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    expect("SHA256", k6, sizeof k6, big,
           "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    expect("SHA384", k6, sizeof k6, big,
           "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe82"
           "96248df163f44952");
    expect("SHA512", k6, sizeof k6, big,
           "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598"
           "bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598");
}

static void test_against_openssl(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const EVP_MD *(*md)(void);
    } digests[] = {{"SHA256", EVP_sha256}, {"SHA384", EVP_sha384}, {"SHA512", EVP_sha512}};
    /* around 64 and 128 (the blocks), and the 55/111 where padding spills */
    static const size_t lens[] = {0,   1,   31,  32,  55,  56,  63,  64,  65, 111,
                                  112, 127, 128, 129, 150, 200, 255, 256, 300};
    unsigned char key[300], msg[300];
    for (size_t i = 0; i < sizeof key; i++) {
        key[i] = (unsigned char)(i * 7 + 3);
        msg[i] = (unsigned char)(i * 13 + 1);
    }
    for (size_t d = 0; d < sizeof digests / sizeof digests[0]; d++)
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            struct hmac *h = hmac_new(digests[d].name, key, lens[k]);
            assert_non_null(h);
            for (size_t m = 0; m < sizeof lens / sizeof lens[0]; m++) {
                unsigned char got[HMAC_MAX_SIZE], want[EVP_MAX_MD_SIZE];
                unsigned int wlen = 0;
                hmac_compute(h, msg, lens[m], got);
                assert_non_null(
                    HMAC(digests[d].md(), key, (int)lens[k], msg, lens[m], want, &wlen));
                assert_int_equal(hmac_size(h), wlen);
                if (memcmp(got, want, wlen) != 0)
                    fail_msg("%s, key %zu bytes, message %zu bytes: differs", digests[d].name,
                             lens[k], lens[m]);
                /* the keyed state is not changed by a computation */
                hmac_compute(h, msg, lens[m], got);
                assert_memory_equal(got, want, wlen);
            }
            hmac_free(h);
        }
}

static void test_other_digests_refused(void **state)
{
    (void)state;
    assert_null(hmac_new("SHA1", (const unsigned char *)"k", 1));
    assert_null(hmac_new("sha256", (const unsigned char *)"k", 1));
    assert_null(hmac_new("", (const unsigned char *)"k", 1));
    hmac_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_against_openssl),
        cmocka_unit_test(test_other_digests_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
