/* admit: see admit.h. */
#include "admit.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "front.h"
#include "gateway.h"
#include "http.h"
#include "listener.h"
#include "log.h"

/* Written straight to a socket lws never saw: small enough to go out in one
 * send on a fresh connection (a request already in flight may make the
 * kernel reset the connection instead, so clients must also take a plain
 * close as "refused"). Under TLS nothing plain can be said: only closed. */
static void refuse(struct gw *gw, int fd)
{
    static const char too_many[] =
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
        "retry-after: 10\r\nconnection: close\r\ncontent-length: 50\r\n\r\n"
        "{\"error\":\"too many connections from your address\"}";
    if (!gw->cfg->tls_cert[0] && write(fd, too_many, sizeof too_many - 1) < 0) {
        /* the peer is gone or its buffer is full: closing says enough */
    }
    shutdown(fd, SHUT_WR);
    close(fd);
}

/* One line per 10 s for each kind, not one per connection. */
static void note(int64_t *last, uint64_t count, const char *what)
{
    int64_t now = cf_mono_ms();
    if (now - *last < 10000)
        return;
    *last = now;
    CF_WARN("admit", "%s (%llu so far)", what, (unsigned long long)count);
}

static int on_admit(void *ud, int fd, const struct sockaddr *sa, socklen_t len, int64_t now_ms,
                    void **opaque)
{
    struct gw *gw = ud;
    uint32_t h;
    enum ipl_verdict v = ipl_open(gw->ipl, sa, len, now_ms, &h);
    if (v == IPL_TOO_MANY) {
        note(&gw->last_refused_log, ++gw->stats.conns_refused,
             "refusing connections: an address has MAX_CONNS_PER_IP open");
        refuse(gw, fd);
        return -1;
    }
    if (v == IPL_UNTRACKED) {
        note(&gw->last_untracked_log, ++gw->stats.conns_untracked,
             "admitting connections without per address limits: the address table is full of "
             "busy addresses (a flood from very many addresses?)");
    }
    *opaque = conn_tag(h);
    return 0;
}

static void on_release(void *ud, void *opaque)
{
    struct gw *gw = ud;
    ipl_close(gw->ipl, conn_ip_of(opaque));
}

/* No timeout is set here: a connection that never sends a byte is timed by
 * lws' own, armed as it is adopted (ESTABLISH_WITH_SERVER at the context's
 * timeout_secs, then HOLDING_AH at the vhost's timeout_secs_ah_idle, both
 * HANDSHAKE_TIMEOUT: gateway.c). One more would cost one more insert into
 * lws 4.1's sorted timer list, which walks every handshake in progress:
 * ~4% of a gateway's CPU in a connect storm. */
static void on_adopted(void *ud, struct lws *wsi, void *opaque)
{
    (void)ud;
    lws_set_opaque_user_data(wsi, opaque);
}

static bool on_take(void *ud, int fd, void *opaque, int64_t now_ms)
{
    struct gw *gw = ud;
    return front_take(gw->front, fd, opaque, now_ms);
}

int admit_init(struct gw *gw, struct listener *l)
{
    const struct cf_config *c = gw->cfg;
    struct ipl_limits lim = {c->max_conns_per_ip, c->login_rate, c->login_burst,
                             c->upgrade_rate, c->upgrade_burst};
    gw->ipl = ipl_new(&lim);
    if (!gw->ipl)
        return -1;
    if (gw->io && !(gw->front = front_new(gw, l)))
        return -1;
    struct listener_hooks hooks = {on_admit, on_release, on_adopted, on_take, gw};
    listener_set_hooks(l, &hooks);
    return 0;
}

void admit_free(struct gw *gw)
{
    front_free(gw->front);
    gw->front = NULL;
    ipl_free(gw->ipl);
    gw->ipl = NULL;
}

bool admit_request(struct gw *gw, struct lws *wsi, enum ipl_kind kind, int *rc)
{
    int retry = 1;
    if (ipl_allow(gw->ipl, conn_ip_of(lws_get_opaque_user_data(wsi)), kind, cf_mono_ms(),
                  &retry))
        return true;
    gw->stats.rate_refused[kind]++;
    char extra[64];
    /* a refused login's body is never read: the connection cannot go on */
    snprintf(extra, sizeof extra, "retry-after: %d\x0d\x0a%s", retry,
             kind == IPL_LOGIN ? "connection: close\x0d\x0a" : "");
    *rc = http_error(wsi, 429,
                     kind == IPL_LOGIN ? "too many logins from your address; retry later"
                                       : "too many connections opened from your address; "
                                         "retry later",
                     extra);
    return false;
}

void admit_tick(struct gw *gw)
{
    int64_t now = cf_mono_ms();
    front_tick(gw->front, now);
    ipl_sweep(gw->ipl, now);
}
