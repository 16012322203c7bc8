/* slowdns: an LD_PRELOAD shim that makes host names under .slowdns.test look
 * up slowly, as behind a DNS server that does not answer, for
 * test_redis_dns. Such a name takes SLOWDNS_DELAY_MS (or the number of
 * milliseconds in the file named by SLOWDNS_DELAY_FILE, when it exists),
 * then resolves to 127.0.0.1 (asked for IPv4; or to the address in the file
 * named by SLOWDNS_ADDR_FILE, when it exists: a name that moved), or fails
 * with EAI_AGAIN while the file named by SLOWDNS_FAIL_FILE exists. Every
 * other lookup is the real one. */
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static const char suffix[] = ".slowdns.test";

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    size_t n = node ? strlen(node) : 0, s = sizeof suffix - 1;
    if (!real)
        return EAI_SYSTEM;
    if (n <= s || strcmp(node + n - s, suffix) != 0)
        return real(node, service, hints, res);
    const char *ms = getenv("SLOWDNS_DELAY_MS");
    long delay = ms ? atol(ms) : 0;
    const char *df = getenv("SLOWDNS_DELAY_FILE");
    FILE *f = df ? fopen(df, "r") : NULL;
    if (f) {
        if (fscanf(f, "%ld", &delay) != 1)
            delay = 0;
        fclose(f);
    }
    struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    const char *fail = getenv("SLOWDNS_FAIL_FILE");
    if (fail && access(fail, F_OK) == 0)
        return EAI_AGAIN;
    if (hints && hints->ai_family == AF_INET6)
        return EAI_NONAME; /* the name has an IPv4 address only */
    char ip[16] = "127.0.0.1";
    const char *af = getenv("SLOWDNS_ADDR_FILE");
    FILE *a = af ? fopen(af, "r") : NULL;
    if (a) {
        if (fscanf(a, "%15s", ip) != 1)
            snprintf(ip, sizeof ip, "127.0.0.1");
        fclose(a);
    }
    return real(ip, service, hints, res);
}
