/* fuzz_login: the body of POST /login, any bytes.
 *
 * auth_login_parse either names the problem for the client or writes a
 * cleaned username; that name must pass the same check a token's subject
 * must pass (auth_verify), so a name /login accepts can always log in. The
 * name is then put in a token and verified, which must give it back. */
#include "auth.h"
#include "fuzz.h"
#include "validate.h"

#define NOW 1800000000

static struct auth *auth;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (!auth) {
        auth = auth_new("fuzz-secret-0123456789abcdef0123456789", 3600);
        FUZZ_CHECK(auth != NULL);
    }
    char user[CF_USERNAME_BYTES_MAX + 1];
    memset(user, 0x5a, sizeof user);
    const char *err = auth_login_parse((const char *)data, size, user, sizeof user);
    if (err) {
        FUZZ_CHECK(*err != '\0');
        return 0;
    }
    size_t n = strnlen(user, sizeof user);
    FUZZ_CHECK(n < sizeof user); /* NUL-terminated within cap */
    FUZZ_CHECK(cf_username_valid(user, n));

    char *token = auth_issue(auth, user, NOW);
    FUZZ_CHECK(token != NULL);
    char back[CF_USERNAME_BYTES_MAX + 1];
    enum auth_result r = auth_verify(auth, token, strlen(token), NOW, back, sizeof back);
    FUZZ_CHECK(r == AUTH_OK && strcmp(back, user) == 0);
    free(token);
    return 0;
}
