#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Shared by the owner (in the loop) and the lookup's thread: whichever lets
 * go last frees it. */
struct resolve {
    atomic_int refs;
    int efd; /* the thread's "done", read by the loop */
    sd_event_source *src;
    resolve_fn fn;
    void *ud;
    char host[256];
    char ip[RESOLVE_IP_MAX];
    int gai_err, sys_err;
};

static atomic_int g_running;

static void put(struct resolve *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1) {
        close(r->efd);
        free(r);
    }
}

static void *lookup(void *arg)
{
    struct resolve *r = arg;
    /* IPv4 first, IPv6 only when there is none, as hiredis does: with
     * "localhost" glibc lists ::1 first, and a Redis bound to 127.0.0.1
     * would refuse it */
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    r->gai_err = getaddrinfo(r->host, NULL, &hints, &res);
    if (r->gai_err && r->gai_err != EAI_AGAIN && r->gai_err != EAI_SYSTEM &&
        r->gai_err != EAI_MEMORY) {
        hints.ai_family = AF_INET6;
        r->gai_err = getaddrinfo(r->host, NULL, &hints, &res);
    }
    r->sys_err = r->gai_err == EAI_SYSTEM ? errno : 0;
    if (!r->gai_err) {
        const void *a = res->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                            : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
        if (!inet_ntop(res->ai_family, a, r->ip, sizeof r->ip))
            r->gai_err = EAI_FAMILY;
        freeaddrinfo(res);
    }
    uint64_t one = 1;
    ssize_t n = write(r->efd, &one, sizeof one); /* an eventfd write of 8 bytes cannot fail */
    (void)n;
    atomic_fetch_sub(&g_running, 1);
    put(r);
    return NULL;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
    (void)s;
    (void)fd;
    (void)revents;
    struct resolve *r = ud;
    r->src = sd_event_source_disable_unref(r->src);
    char err[sizeof r->host + 100] = "";
    if (r->gai_err)
        snprintf(err, sizeof err, "cannot look %s up: %s", r->host,
                 r->gai_err == EAI_SYSTEM ? strerror(r->sys_err) : gai_strerror(r->gai_err));
    resolve_fn fn = r->fn;
    void *fud = r->ud;
    char ip[RESOLVE_IP_MAX];
    memcpy(ip, r->ip, sizeof ip);
    put(r); /* over before fn runs: fn may start the next one */
    fn(fud, err[0] ? NULL : ip, err[0] ? err : NULL);
    return 0;
}

struct resolve *resolve_start(sd_event *ev, const char *host, resolve_fn fn, void *ud)
{
    if (strlen(host) >= sizeof ((struct resolve *)0)->host) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    if (atomic_fetch_add(&g_running, 1) >= RESOLVE_MAX_RUNNING) {
        atomic_fetch_sub(&g_running, 1);
        errno = EAGAIN;
        return NULL;
    }
    struct resolve *r = calloc(1, sizeof *r);
    if (!r)
        goto fail;
    snprintf(r->host, sizeof r->host, "%s", host);
    r->fn = fn;
    r->ud = ud;
    atomic_init(&r->refs, 2);
    r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->efd < 0)
        goto fail;
    if (sd_event_add_io(ev, &r->src, r->efd, EPOLLIN, on_done, r) < 0)
        goto fail;
    pthread_attr_t attr;
    pthread_t t;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024); /* getaddrinfo needs little */
        rc = pthread_create(&t, &attr, lookup, r);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        errno = rc;
        goto fail;
    }
    return r;
fail:
    if (r) {
        int saved = errno;
        r->src = sd_event_source_disable_unref(r->src);
        if (r->efd >= 0)
            close(r->efd);
        free(r);
        errno = saved;
    }
    atomic_fetch_sub(&g_running, 1);
    return NULL;
}

void resolve_cancel(struct resolve *r)
{
    if (!r)
        return;
    r->src = sd_event_source_disable_unref(r->src);
    put(r);
}

bool resolve_is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}
