/* ws: see ws.h. */
#include "ws.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "blinks.h"
#include "clock.h"
#include "front.h"
#include "http.h"
#include "iplimit.h"
#include "legacy.h"
#include "log.h"
#include "lrooms.h"
#include "origin.h"
#include "session.h"
#include "upgreq.h"
#include "v1.h"
#include "validate.h"
#include "wsio.h"

/* ---- upgrade ------------------------------------------------------------- */

/* The client's address for logs, without the v4-mapped prefix of a
 * dual-stack socket. */
static void peer_of(struct lws *wsi, char *buf, size_t cap)
{
    snprintf(buf, cap, "?");
    lws_get_peer_simple(wsi, buf, cap);
    if (strncmp(buf, "::ffff:", 7) == 0 && strchr(buf + 7, '.'))
        memmove(buf, buf + 7, strlen(buf + 7) + 1);
}

/* The token of the query (first) or of an Authorization: Bearer header in
 * buf: its length, 0 when there is none, cap when it is too long (so
 * malformed, not missing). The query's arguments are read one by one into a
 * buffer as large as lws' whole header space: lws_get_urlarg_by_name into
 * buf would say "none" for a token too long for buf, and for any argument
 * after one that is. */
static size_t find_token(struct lws *wsi, char *buf, size_t cap)
{
    char arg[GW_HTTP_HEADER_DATA + 1];
    for (int i = 0; lws_hdr_copy_fragment(wsi, arg, sizeof arg, WSI_TOKEN_HTTP_URI_ARGS, i) >= 0;
         i++) {
        if (strncmp(arg, "token=", 6) != 0)
            continue;
        size_t n = strlen(arg + 6);
        if (n >= cap)
            return cap;
        memcpy(buf, arg + 6, n + 1);
        return n;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) >= AUTH_MAX_TOKEN + 32)
        return cap;
    char auth[AUTH_MAX_TOKEN + 32];
    int n = lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 7 && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *v = auth + 7;
        while (*v == ' ')
            v++;
        size_t len = strlen(v);
        if (len < cap) {
            memcpy(buf, v, len + 1);
            return len;
        }
        return cap; /* too long: malformed */
    }
    return 0;
}

/* Verifies the request's token; false after writing the 401 (*rc: what
 * http_error returned). `what` names the request in the log. */
static bool token_ok(struct gw *gw, struct lws *wsi, const char *what, char *user, size_t cap,
                     int *rc)
{
    char token[AUTH_MAX_TOKEN + 2];
    size_t tlen = find_token(wsi, token, sizeof token);
    enum auth_result r = tlen >= sizeof token
                             ? AUTH_MALFORMED
                             : auth_verify(gw->auth, token, tlen, cf_wall_ms() / 1000, user, cap);
    explicit_bzero(token, sizeof token);
    if (r == AUTH_OK)
        return true;
    char peer[48], msg[80];
    peer_of(wsi, peer, sizeof peer);
    gw->stats.auth_failures[r]++;
    CF_LOG_CAPPED(&gw->token_log, CF_LOG_INFO, "ws", "refused %s from %s: token %s", what, peer,
                  auth_result_str(r));
    snprintf(msg, sizeof msg, "unauthorized: token %s", auth_result_str(r));
    *rc = http_error(wsi, HTTP_STATUS_UNAUTHORIZED, msg,
                     "www-authenticate: Bearer error=\"invalid_token\"\x0d\x0a");
    return false;
}

static int confirm_upgrade(struct gw *gw, struct lws *wsi, const char *what)
{
    char path[64];
    if (strcasecmp(what, "websocket") != 0)
        return http_upgrade_refused(wsi, what) < 0 ? -1 : 1;
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0 || strcmp(path, "/ws") != 0)
        return http_error(wsi, HTTP_STATUS_NOT_FOUND, "WebSocket endpoint is /ws", NULL) < 0 ? -1
                                                                                             : 1;
    if (gw->draining)
        return http_error(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "server is shutting down",
                          "retry-after: 1\x0d\x0a") < 0
                   ? -1
                   : 1;
    int rc;
    if (!admit_request(gw, wsi, IPL_UPGRADE, &rc)) /* before the costly token check */
        return rc < 0 ? -1 : 1;

    char origin[256];
    if (!origin_allowed(gw->cfg->allowed_origins, wsi, origin, sizeof origin)) {
        char peer[48];
        peer_of(wsi, peer, sizeof peer);
        CF_LOG_CAPPED(&gw->origin_log, CF_LOG_INFO, "ws",
                      "refused upgrade from %s: origin %.100s is not allowed", peer, origin);
        return http_error(wsi, HTTP_STATUS_FORBIDDEN, "origin not allowed (see ALLOWED_ORIGINS)",
                          NULL) < 0
                   ? -1
                   : 1;
    }

    char user[CF_USERNAME_BYTES_MAX + 1];
    if (!token_ok(gw, wsi, "upgrade", user, sizeof user, &rc))
        return rc < 0 ? -1 : 1;
    struct session *s = sess_new(++gw->next_conn_id, user, (size_t)gw->cfg->max_client_queue_bytes);
    if (!s)
        return http_error(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "out of memory", NULL) < 0 ? -1 : 1;
    void *old = lws_get_opaque_user_data(wsi);
    ((struct conn_head *)s)->ip = conn_ip_of(old); /* sessions start with a conn_head */
    http_req_free(old);                            /* none: a POST's answer closes */
    lws_set_opaque_user_data(wsi, s);
    return 0;
}

/* RFC 9110 section 15.5.22: "use a WebSocket upgrade here" */
#define HTTP_STATUS_UPGRADE_REQUIRED 426

int ws_check(struct gw *gw, struct lws *wsi)
{
    char token[AUTH_MAX_TOKEN + 2];
    bool has = find_token(wsi, token, sizeof token) > 0;
    explicit_bzero(token, sizeof token);
    if (!has)
        return http_error(wsi, HTTP_STATUS_BAD_REQUEST, "this endpoint takes a WebSocket upgrade",
                          NULL);
    if (gw->draining)
        return http_error(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "server is shutting down",
                          "retry-after: 1\x0d\x0a");
    int rc;
    if (!admit_request(gw, wsi, IPL_UPGRADE, &rc) ||
        !token_ok(gw, wsi, "token check", (char[CF_USERNAME_BYTES_MAX + 1]){0},
                  CF_USERNAME_BYTES_MAX + 1, &rc))
        return rc;
    return http_error(wsi, HTTP_STATUS_UPGRADE_REQUIRED,
                      "the token is valid; this endpoint takes a WebSocket upgrade",
                      "upgrade: websocket\x0d\x0a");
}

/* ---- established sessions ---------------------------------------------- */

static struct session *session_of(struct lws *wsi)
{
    struct conn_head *h = conn_head_of(lws_get_opaque_user_data(wsi));
    return h && h->kind == CONN_SESSION ? (struct session *)h : NULL;
}

/* A legacy session's one room. */
static void join_room(struct gw *gw, struct session *s, const char *room, size_t len)
{
    int err;
    struct lmember *m = lrooms_join(gw->rooms, s, room, len, false, &err);
    if (!m && err == -EEXIST)
        m = lrooms_find(gw->rooms, s, room, len);
    if (!m) {
        CF_ERROR("ws", "conn %llu: out of memory joining %.*s", (unsigned long long)sess_id(s),
                 (int)len, room);
        sess_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    v1_presence_join(gw, m);
}

/* The subprotocols served, in lws' protocol order (gateway.c), and the
 * session mode each one starts. */
static const char *const proto_names[] = {WS_PROTO_LEGACY, WS_PROTO_V1_JSON, WS_PROTO_V1_MSGPACK,
                                          NULL};
static const enum sess_proto proto_modes[] = {SESS_LEGACY, SESS_V1_JSON, SESS_V1_MSGPACK};

static enum sess_proto proto_of(struct lws *wsi)
{
    const struct lws_protocols *p = lws_get_protocol(wsi);
    for (int i = 0; p && p->name && proto_names[i]; i++)
        if (strcmp(p->name, proto_names[i]) == 0)
            return proto_modes[i];
    return SESS_LEGACY;
}

/* A copy of fd at or above lws' table (gateway.c LWS_FD_TABLE), so that new
 * connections find descriptors lws can hold; -1 when there is no cap or no
 * room there. Needed only for a socket that came from lws, or that the
 * kernel gave a number under the table (one lws freed since the last
 * refill, or fillers given back: lowfd.h). */
static int dup_above_table(struct gw *gw, int fd)
{
    return gw->lws_fd_cap ? fcntl(fd, F_DUPFD_CLOEXEC, gw->lws_fd_cap) : -1;
}

/* Takes the socket of an established plain-TCP WebSocket out of lws (see
 * wsio.h): the socket moves to a new descriptor, and lws' descriptor becomes
 * a copy of a pipe without writers, so lws sees it hang up and closes it,
 * touching nothing of the client's. Bytes lws read together with the
 * upgrade request reach ws_callback within this same read, before the hang
 * up (lws buffers rx for later only under flow control, unused here).
 * Returns the client's socket, or -1 to leave the connection to lws. */
static int take_over(struct gw *gw, struct lws *wsi)
{
    if (!gw->io || gw->dead_fd < 0 || lws_is_ssl(wsi))
        return -1;
    int fd = lws_get_socket_fd(wsi);
    if (fd < 0)
        return -1;
    int own = dup_above_table(gw, fd);
    if (own < 0)
        own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0)
        return -1;
    if (dup2(gw->dead_fd, fd) < 0) {
        close(own);
        return -1;
    }
    return own;
}

/* A session's WebSocket is up, whichever way it came. */
static void went_live(struct gw *gw, struct session *s)
{
    enum sess_proto proto = sess_proto(s);
    char peer[48] = "";
    if (cf_log_enabled(CF_LOG_INFO)) /* a system call per connection otherwise */
        sess_peer(s, peer, sizeof peer);
    sess_list_add(&gw->sessions, s);
    gw->nsessions++;
    gw->stats.connections_total++;
    CF_INFO("ws", "conn %llu: %s connected from %s (%s)", (unsigned long long)sess_id(s),
            sess_user(s), peer,
            proto == SESS_V1_JSON      ? WS_PROTO_V1_JSON
            : proto == SESS_V1_MSGPACK ? WS_PROTO_V1_MSGPACK
                                       : "legacy protocol");
    if (proto == SESS_LEGACY)
        join_room(gw, s, gw->cfg->default_room, strlen(gw->cfg->default_room));
}

static void established(struct gw *gw, struct lws *wsi, struct session *s)
{
    sess_attach(s, wsi, take_over(gw, wsi), proto_of(wsi), cf_mono_ms());
    went_live(gw, s);
}

/* ---- upgrades answered without lws (front.h) ------------------------------ */

/* Whether the request passes what confirm_upgrade checks; *user then holds
 * the token's user. */
static bool may_open(struct gw *gw, uint32_t ip, const struct upg_req *r, int64_t now_ms,
                     char *user, size_t cap)
{
    if (gw->draining || !ipl_can(gw->ipl, ip, IPL_UPGRADE, now_ms))
        return false;
    if (r->origin_len) {
        char origin[256], host[256];
        if (r->origin_len >= sizeof origin || r->host_len >= sizeof host)
            return false;
        memcpy(origin, r->origin, r->origin_len);
        origin[r->origin_len] = '\0';
        memcpy(host, r->host, r->host_len);
        host[r->host_len] = '\0';
        if (!origin_ok(gw->cfg->allowed_origins, origin, host))
            return false;
    }
    return r->token_len <= AUTH_MAX_TOKEN &&
           auth_verify(gw->auth, r->token, r->token_len, cf_wall_ms() / 1000, user, cap) == AUTH_OK;
}

/* The same 101 lws writes, into resp (at least 256 bytes); its length.
 * Pieces copied rather than printed: snprintf was ~5% of a handshake's
 * user time. */
static int switching_protocols(char *resp, const char accept[29], int proto)
{
    /* 97 + 28 + 26 + a name + 4 bytes at most */
    _Static_assert(sizeof WS_PROTO_LEGACY <= 64 && sizeof WS_PROTO_V1_JSON <= 64 &&
                       sizeof WS_PROTO_V1_MSGPACK <= 64,
                   "a subprotocol name too long for the 101's buffer");
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
    static const char proto_hdr[] = "\r\nSec-WebSocket-Protocol: ";
    char *p = resp;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    memcpy(p, accept, 28);
    p += 28;
    if (proto >= 0) {
        size_t n = strlen(proto_names[proto]);
        memcpy(p, proto_hdr, sizeof proto_hdr - 1);
        p += sizeof proto_hdr - 1;
        memcpy(p, proto_names[proto], n);
        p += n;
    }
    memcpy(p, "\r\n\r\n", 4);
    return (int)(p + 4 - resp);
}

int ws_open(struct gw *gw, int fd, uint32_t ip, const char *peeked, size_t n, bool watched,
            int64_t now)
{
    struct upg_req r;
    char user[CF_USERNAME_BYTES_MAX + 1], accept[29], resp[256];
    /* bytes past the request (frames sent before the 101) are lws' to
     * refuse; so is a request that came in pieces: lws times out whatever
     * dribbles */
    int len = upg_parse(peeked, n, proto_names, &r);
    if (len <= 0 || (size_t)len != n || !gw->io)
        return 0;
    if (!may_open(gw, ip, &r, now, user, sizeof user) || upg_accept(r.key, accept) < 0)
        return 0;
    struct session *s = sess_new(++gw->next_conn_id, user, (size_t)gw->cfg->max_client_queue_bytes);
    if (!s)
        return 0;
    int retry;
    ipl_allow(gw->ipl, ip, IPL_UPGRADE, now, &retry); /* may_open saw a token there */
    int rn = switching_protocols(resp, accept, r.proto);
    /* the request off the socket, discarded in the kernel (MSG_TRUNC) */
    if (recv(fd, NULL, n, MSG_TRUNC) != (ssize_t)n ||
        send(fd, resp, (size_t)rn, MSG_NOSIGNAL) != rn) {
        /* a fresh socket takes ~150 bytes at once: the peer is gone */
        sess_free(s);
        close(fd);
        ipl_close(gw->ipl, ip);
        return -1;
    }
    /* The number it leaves is not filled again here: a hole lws made is
     * usually taken by the next HTTP request (which then stays), and
     * filling it would send that request high only to move it down. */
    int high = fd < gw->lws_fd_cap ? dup_above_table(gw, fd) : -1;
    if (high >= 0) {
        /* an epoll entry lives while any copy of its descriptor is open */
        if (watched)
            wsio_forget(gw->io, fd);
        watched = false;
        close(fd);
        fd = high;
    }
    ((struct conn_head *)s)->ip = ip;
    sess_attach(s, NULL, fd, r.proto >= 0 ? proto_modes[r.proto] : SESS_LEGACY, now);
    gw->stats.direct_upgrades++;
    went_live(gw, s);
    sess_handover_done(s, watched); /* watched from now on */
    return 1;
}

/* The one room of a legacy session. */
static const struct cf_rel_edge *current_room(struct session *s)
{
    struct cf_rel_end *rooms = sess_rooms(s);
    return rooms->n ? rooms->v[0] : NULL;
}

static void send_message(struct gw *gw, struct session *s, const struct cf_str *text)
{
    const struct cf_rel_edge *e = current_room(s);
    if (!e)
        return;
    struct cf_wire_msg m = {.type = CF_WIRE_MSG, .text = *text, .ts = cf_wall_ms()};
    m.room = lrooms_edge_name(e);
    m.from = (struct cf_str){sess_user(s), (uint32_t)strlen(sess_user(s))};
    int rc = blinks_publish(gw->links, &m);
    if (rc < 0) {
        gw->stats.sends_dropped++;
        /* every message of every client while a broker is away: a line a
         * second, the count of the others in it (confab_gateway_sends_dropped
         * has them all) */
        CF_LOG_CAPPED(&gw->drop_log, CF_LOG_WARN, "ws", "conn %llu: message to %.*s dropped: %s",
                      (unsigned long long)sess_id(s), (int)m.room.len, m.room.p,
                      rc == -ENOTCONN ? "broker unavailable" : "broker link congested");
        return;
    }
    gw->stats.messages_in++;
}

static void on_message(struct gw *gw, struct session *s, const char *msg, size_t len)
{
    struct legacy_event ev;
    const char *why;
    if (legacy_parse(msg, len, &ev, &why) < 0) {
        gw->stats.bad_frames++;
        CF_LOG_CAPPED(&gw->bad_frame_log, CF_LOG_INFO, "ws", "conn %llu (%s): ignored a frame: %s",
                      (unsigned long long)sess_id(s), sess_user(s), why);
        return;
    }
    switch (ev.type) {
    case LEGACY_SEND_MESSAGE:
        send_message(gw, s, &ev.text);
        break;
    case LEGACY_CHANGE_ROOM: {
        /* Into the room it is in: nothing to do. Leaving and joining again
         * showed v1 members the user leave and join, and with no other
         * member here unsubscribed the room for a moment (its messages of
         * that moment lost to this client). */
        const struct cf_rel_edge *e = current_room(s);
        struct cf_str now = e ? lrooms_edge_name(e) : (struct cf_str){NULL, 0};
        if (now.len == ev.room.len && ev.room.len && !memcmp(now.p, ev.room.p, now.len))
            break;
        v1_session_closed(gw, s); /* leaves its room, presence included */
        join_room(gw, s, ev.room.p, ev.room.len);
        CF_DEBUG("ws", "conn %llu: now in %.*s", (unsigned long long)sess_id(s), (int)ev.room.len,
                 ev.room.p);
        break;
    }
    }
    legacy_event_free(&ev);
}

/* Takes one of s's request tokens (sess_rate_take); a SESS_RATE_CLOSE is
 * counted and logged here, with *why set for the caller's close. */
static enum sess_rate take_rate(struct gw *gw, struct session *s, const char *what,
                                const char **why)
{
    enum sess_rate rate = sess_rate_take(s, gw->cfg->rate_msgs, gw->cfg->rate_burst, cf_mono_ms());
    if (rate != SESS_RATE_CLOSE)
        return rate;
    gw->stats.rate_closes++;
    CF_INFO("ws", "conn %llu (%s): kept sending %s over RATE_MSGS=%d/s; closing with 1008",
            (unsigned long long)sess_id(s), sess_user(s), what, gw->cfg->rate_msgs);
    *why = "rate limit exceeded";
    return rate;
}

/* A whole message from the client, either mode. Returns 0, or the close
 * code the connection must end with (and *why, a static string). */
static int handle_message(struct gw *gw, struct session *s, bool binary, const void *msg,
                          size_t mlen, const char **why)
{
    enum sess_proto proto = sess_proto(s);
    enum sess_rate rate = take_rate(gw, s, "requests", why);
    if (rate == SESS_RATE_CLOSE)
        return LWS_CLOSE_STATUS_POLICY_VIOLATION;
    if (rate == SESS_RATE_REFUSE) {
        gw->stats.requests_limited++;
        if (sess_proto_is_v1(proto) && binary == (proto == SESS_V1_MSGPACK))
            v1_refuse_frame(s, msg, mlen, "rate_limited", "over the request rate limit; slow down");
        /* a legacy client cannot be told: its frame is dropped */
    } else if (proto == SESS_LEGACY && binary) {
        gw->stats.bad_frames++;
        CF_INFO("ws", "conn %llu (%s): ignored a binary frame", (unsigned long long)sess_id(s),
                sess_user(s));
    } else if (proto == SESS_LEGACY) {
        on_message(gw, s, msg, mlen);
    } else if (binary != (proto == SESS_V1_MSGPACK)) {
        gw->stats.bad_frames++;
        CF_INFO("ws", "conn %llu (%s): %s frame on %s; closing with 1003",
                (unsigned long long)sess_id(s), sess_user(s), binary ? "binary" : "text",
                proto == SESS_V1_MSGPACK ? WS_PROTO_V1_MSGPACK : WS_PROTO_V1_JSON);
        *why = "wrong frame type for this subprotocol";
        return LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE;
    } else {
        v1_on_frame(gw, s, msg, mlen);
    }
    return 0;
}

/* Own mode: the socket engine's message callback. */
static void own_message(void *ud, struct session *s, bool binary, const void *msg, size_t len)
{
    const char *why = "";
    int code = handle_message(ud, s, binary, msg, len, &why);
    if (code)
        sess_close(s, code, why);
}

/* A ping or pong costs a request token (but for the pong our keep-alive
 * ping asked for, sess_pong_owed): a client pinging now and then never
 * notices, one that floods them is closed as for requests. */
static int own_control(void *ud, struct session *s, const char **why)
{
    struct gw *gw = ud;
    enum sess_rate rate = take_rate(gw, s, "pings or pongs", why);
    if (rate == SESS_RATE_CLOSE)
        return LWS_CLOSE_STATUS_POLICY_VIOLATION;
    if (rate == SESS_RATE_REFUSE) {
        gw->stats.requests_limited++;
        return 1;
    }
    return 0;
}

/* Ends the connection from RECEIVE: lws sends the close frame once the
 * callback returns -1, and nothing of ours may follow it. */
static int close_now(struct lws *wsi, struct session *s, enum lws_close_status code,
                     const char *why)
{
    sess_rx_done(s);
    sess_stop_output(s);
    lws_close_reason(wsi, code, (unsigned char *)why, strlen(why));
    return -1;
}

/* lws mode (TLS): lws parses frames and hands messages over in pieces. */
static int receive(struct gw *gw, struct lws *wsi, struct session *s, const void *in, size_t len)
{
    if (sess_closing(s))
        return 0;
    sess_seen(s, cf_mono_ms());
    const void *msg;
    size_t mlen;
    int rc =
        sess_rx(s, in, len, lws_is_first_fragment(wsi), lws_is_final_fragment(wsi),
                lws_remaining_packet_payload(wsi), (size_t)gw->cfg->max_message_bytes, &msg, &mlen);
    if (rc == -2) {
        CF_INFO("ws", "conn %llu (%s): a message in over %d frames; closing with 1008",
                (unsigned long long)sess_id(s), sess_user(s), SESS_MAX_FRAMES);
        return close_now(wsi, s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "message in too many frames");
    }
    if (rc < 0) {
        CF_INFO("ws", "conn %llu (%s): message over %d bytes; closing with 1009",
                (unsigned long long)sess_id(s), sess_user(s), gw->cfg->max_message_bytes);
        return close_now(wsi, s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
    }
    if (rc == 0)
        return 0;
    const char *why = "";
    int code = handle_message(gw, s, lws_frame_is_binary(wsi), msg, mlen, &why);
    if (code)
        return close_now(wsi, s, (enum lws_close_status)code, why);
    sess_rx_done(s);
    return 0;
}

/* Own mode, before lws has let go of the connection: bytes lws read along
 * with the upgrade request, which the client sent before it could have read
 * the 101 response. */
static int early_frame(struct session *s)
{
    CF_INFO("ws", "conn %llu (%s): frames sent before the handshake response; closing with 1002",
            (unsigned long long)sess_id(s), sess_user(s));
    sess_close(s, LWS_CLOSE_STATUS_PROTOCOL_ERR,
               "frames sent before the handshake response (RFC 6455 4.1)");
    return 0;
}

static void closed(struct gw *gw, struct session *s)
{
    v1_session_closed(gw, s);
    sess_detach(s);
    if (gw->ka_next == s)
        gw->ka_next = sess_list_next(s);
    sess_list_del(&gw->sessions, s);
    gw->nsessions--;
    CF_INFO("ws", "conn %llu: %s disconnected", (unsigned long long)sess_id(s), sess_user(s));
}

int ws_callback(struct gw *gw, struct lws *wsi, int reason, void *in, size_t len)
{
    if (reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE) {
        char what[16];
        return http_upgrade_asked(wsi, what, sizeof what) ? confirm_upgrade(gw, wsi, what) : -1;
    }
    struct session *s = session_of(wsi);
    if (!s)
        return 0; /* e.g. CLOSED of a refused upgrade */
    if (reason == LWS_CALLBACK_ESTABLISHED) {
        established(gw, wsi, s);
        return 0;
    }
    if (sess_owned(s)) { /* the wsi it was handed over from, closing */
        if (reason == LWS_CALLBACK_RECEIVE || reason == LWS_CALLBACK_RECEIVE_PONG ||
            reason == LWS_CALLBACK_WS_PEER_INITIATED_CLOSE)
            return early_frame(s);
        return 0;
    }
    switch (reason) {
    case LWS_CALLBACK_RECEIVE:
        return receive(gw, wsi, s, in, len);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL: /* lws closes it: its close frame goes last */
        sess_stop_output(s);
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG: { /* lws answers pings itself, unseen */
        sess_seen(s, cf_mono_ms());
        const char *why = "";
        if (!sess_closing(s) && !sess_pong_owed(s) && own_control(gw, s, &why) > 1)
            return close_now(wsi, s, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return sess_on_writable(s);
    case LWS_CALLBACK_CLOSED:
        if (sess_wsi(s))
            closed(gw, s);
        return 0;
    default:
        return 0;
    }
}

void ws_destroy(struct gw *gw, struct session *s)
{
    if (sess_owned(s)) {
        sess_handover_done(s, false);
        return;
    }
    ipl_close(gw->ipl, ((struct conn_head *)s)->ip);
    if (sess_wsi(s))
        closed(gw, s);
    sess_free(s);
}

/* Own mode: the connection is over (reported by sess_reap). */
static void own_ended(void *ud, struct session *s)
{
    struct gw *gw = ud;
    ipl_close(gw->ipl, ((struct conn_head *)s)->ip);
    closed(gw, s);
    sess_free(s);
}

/* The gateway's epoll set holds sessions and connections still waiting for
 * their request (front.h): their first field tells them apart. */
static void on_io(void *ptr, bool readable, bool writable)
{
    if (((struct conn_head *)ptr)->kind == CONN_WAITING)
        front_on_io(ptr);
    else
        sess_on_io(ptr, readable, writable);
}

int ws_init(struct gw *gw)
{
    static const struct sess_handlers h = {own_message, own_control, own_ended};
    if (gw->cfg->tls_cert[0]) {
        /* Every connection stays with lws. A paced flush still needs a
         * wake-up that ends lws' poll() on time (session.c): lws 4.1 rounds
         * its own timers down to whole milliseconds and would spin poll(0)
         * through the last one. The set holds nothing but that timer. */
        gw->wake = wsio_new(gw->vh, on_io);
        if (!gw->wake)
            return -1;
        sess_io_init(gw->wake, NULL, gw, 0);
        return 0;
    }
    /* The read end of a pipe without writers polls as POLLHUP and never as
     * readable: lws then drops the connection in its next pass at once,
     * where the end-of-file of a socket would have it shut the socket down,
     * arm one more timeout and wait one more pass. */
    int pv[2];
    if (pipe2(pv, O_CLOEXEC | O_NONBLOCK) < 0) {
        CF_ERROR("ws", "cannot create a pipe: %s", strerror(errno));
        return -1;
    }
    close(pv[1]);
    gw->dead_fd = pv[0];
    gw->io = wsio_new(gw->vh, on_io);
    if (!gw->io)
        return -1;
    sess_io_init(gw->io, &h, gw, (size_t)gw->cfg->max_message_bytes);
    return 0;
}

void ws_shutdown(struct gw *gw)
{
    struct session *next;
    for (struct session *s = gw->sessions; s; s = next) {
        next = sess_list_next(s);
        if (sess_owned(s))
            sess_drop(s);
    }
    sess_reap();
}

void ws_free(struct gw *gw)
{
    sess_reap(); /* handed over while the context went down */
    sess_io_init(NULL, NULL, NULL, 0);
    wsio_free(gw->io);
    gw->io = NULL;
    wsio_free(gw->wake);
    gw->wake = NULL;
    if (gw->dead_fd >= 0)
        close(gw->dead_fd);
    gw->dead_fd = -1;
}

void ws_keepalive(struct gw *gw, unsigned slices)
{
    int64_t now = cf_mono_ms();
    size_t left = slices > 1 ? gw->nsessions / slices + 1 : gw->nsessions;
    /* the cursor: a session leaving the list moves it on (closed());
     * sessions join at the head, so the next round reaches them */
    struct session *s = gw->ka_next ? gw->ka_next : gw->sessions;
    for (; s && left; s = sess_list_next(s), left--) {
        if (sess_keepalive(s, now, gw->cfg->ping_interval, gw->cfg->ping_timeout) != SESS_DEAD)
            continue;
        CF_INFO("ws", "conn %llu (%s): no answer to a ping in %d s; dropping it",
                (unsigned long long)sess_id(s), sess_user(s), gw->cfg->ping_timeout);
        gw->stats.ping_timeouts++;
        /* closed from the loop, not here: the list is being walked */
        sess_drop(s);
    }
    gw->ka_next = s;
}

void ws_drain_all(struct gw *gw)
{
    for (struct session *s = gw->sessions; s; s = sess_list_next(s))
        sess_close(s, LWS_CLOSE_STATUS_GOINGAWAY, "server going away");
}
