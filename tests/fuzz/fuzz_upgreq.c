/* fuzz_upgreq: the first bytes of a connection as the gateway peeks at them
 * (gateway/upgreq.c) to decide whether it answers the upgrade itself.
 *
 * Properties: what is taken lies inside the input, ends with the blank line,
 * has a 24-character key, a token of JWT characters and a subprotocol from
 * the list; the same bytes cut right after the request give the same answer
 * (nothing past it is read), and any shorter cut asks for more bytes or is
 * refused, never taken. */
#include "fuzz.h"
#include "upgreq.h"

static const char *const protos[] = {"confab", "confab.v1", "confab.msgpack.v1", NULL};

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p + n <= buf + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    const char *buf = (const char *)data;
    struct upg_req r;
    int n = upg_parse(buf, size, protos, &r);
    FUZZ_CHECK(n >= -1);
    if (n <= 0)
        return 0;
    size_t len = (size_t)n;
    FUZZ_CHECK(len <= size && len <= UPG_MAX_REQUEST && len >= 4);
    FUZZ_CHECK(memcmp(buf + len - 4, "\r\n\r\n", 4) == 0);
    FUZZ_CHECK(inside(r.key, 24, buf, len));
    FUZZ_CHECK(r.token && r.token_len > 0 && inside(r.token, r.token_len, buf, len));
    for (size_t i = 0; i < r.token_len; i++)
        FUZZ_CHECK(strchr("-_.", r.token[i]) || (r.token[i] >= '0' && r.token[i] <= '9') ||
                   ((r.token[i] | 0x20) >= 'a' && (r.token[i] | 0x20) <= 'z'));
    FUZZ_CHECK(r.host && r.host_len > 0 && inside(r.host, r.host_len, buf, len));
    FUZZ_CHECK(!r.origin || inside(r.origin, r.origin_len, buf, len));
    FUZZ_CHECK(r.proto >= -1 && r.proto < 3);
    char accept[29];
    FUZZ_CHECK(upg_accept(r.key, accept) == 0 && strlen(accept) == 28);

    struct upg_req again;
    FUZZ_CHECK(upg_parse(buf, len, protos, &again) == n);
    FUZZ_CHECK(again.key == r.key && again.token == r.token && again.proto == r.proto);
    size_t cuts[] = {len - 1, len - 2, len / 2, 7, 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        if (cuts[i] < len)
            FUZZ_CHECK(upg_parse(buf, cuts[i], protos, &again) <= 0);
    return 0;
}
