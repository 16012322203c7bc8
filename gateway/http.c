/* http: see http.h. */
#include "http.h"

#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "admit.h"
#include "auth.h"
#include "blinks.h"
#include "clock.h"
#include "files.h"
#include "fresh.h"
#include "log.h"
#include "metrics.h"
#include "origin.h"
#include "session.h"
#include "v1.h"
#include "validate.h"
#include "ws.h"

/* Request state of a POST while its body arrives, and of a publish while it
 * waits for the broker's answer. */
struct http_req {
    struct conn_head head; /* CONN_HTTP; must stay first */
    bool publish;        /* POST /api/publish (else /login) */
    bool waiting;        /* the publish was sent; q is its request */
    struct gw *gw;
    struct lws *wsi;
    uint64_t q;
    char room[CF_ROOM_MAX + 1];
    uint32_t room_len;
    unsigned status; /* the answer, once it came */
    char *answer;
    int64_t deadline; /* monotonic ms: the whole body by then */
    /* in gw->http_reading while the body comes (http_tick) */
    struct http_req *prev, *next;
    bool reading;
    size_t len, max;
    char body[];
};

static void reading_done(struct http_req *req)
{
    if (!req->reading)
        return;
    req->reading = false;
    if (req->prev)
        req->prev->next = req->next;
    else
        req->gw->http_reading = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
}

void http_req_free(void *opaque)
{
    struct conn_head *h = conn_head_of(opaque);
    struct http_req *req = h && h->kind == CONN_HTTP ? (struct http_req *)h : NULL;
    if (req)
        reading_done(req);
    if (req && req->waiting)
        v1_publish_forget(req->gw, req->q);
    if (req)
        free(req->answer);
    free(req);
}

static struct http_req *req_new(struct gw *gw, struct lws *wsi, size_t max, bool publish)
{
    struct http_req *req = calloc(1, sizeof *req + max + 1);
    if (!req)
        return NULL;
    req->deadline = cf_mono_ms() + 1000LL * gw->cfg->handshake_timeout;
    req->reading = true;
    req->next = gw->http_reading;
    if (req->next)
        req->next->prev = req;
    gw->http_reading = req;
    void *old = lws_get_opaque_user_data(wsi);
    req->head.kind = CONN_HTTP;
    req->head.ip = conn_ip_of(old);
    req->gw = gw;
    req->wsi = wsi;
    req->max = max;
    req->publish = publish;
    http_req_free(old);
    lws_set_opaque_user_data(wsi, req);
    return req;
}

/* Whether lws takes the request to have a body: one announced (one of
 * length 0 is none), or a POST, PUT or PATCH without a Content-Length, for
 * which lws reads what follows as a body of up to 100 MiB. */
static bool has_body(struct lws *wsi)
{
    char clen[4];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
        return true;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        return !(lws_hdr_copy(wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH) == 1 &&
                 clen[0] == '0');
    char *uri;
    int ulen, method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    return method == LWSHUMETH_POST || method == LWSHUMETH_PUT || method == LWSHUMETH_PATCH;
}

/* The request being routed, while its answer is given without reading the
 * body it announced (NULL otherwise; one loop runs each process). lws would
 * go on to read that body and drop it, whatever length it claims, and its
 * timeout restarts at every piece: a client could hold the connection for
 * hours at a byte every few seconds. So the answer says "connection: close"
 * and the connection is closed once it is out. Also the request being
 * answered after its body was read (body_complete says why). */
static struct lws *g_unread;

static bool closes(struct lws *wsi)
{
    return wsi == g_unread;
}

static int finish(struct lws *wsi, int rc)
{
    if (rc < 0 || closes(wsi) || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

int http_reply(struct lws *wsi, unsigned status, const char *json, const char *extra)
{
    unsigned char buf[LWS_PRE + 8192];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    const struct gw *gw = lws_context_user(lws_get_context(wsi));
    /* a 204 has neither a body nor its length (RFC 9110 8.6) */
    bool none = status == HTTP_STATUS_NO_CONTENT;
    size_t blen = none ? 0 : strlen(json);
    char clen[24];
    int n = snprintf(clen, sizeof clen, "%zu", blen);
    if (lws_add_http_header_status(wsi, status, &p, end) ||
        (!none &&
         (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                       (const unsigned char *)"application/json", 16, &p, end) ||
          lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                       (const unsigned char *)clen, n, &p, end))) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        origin_cors(gw->cfg->allowed_origins, wsi, &p, end) < 0)
        return -1;
    if (extra) {
        size_t elen = strlen(extra);
        if ((size_t)(end - p) < elen)
            return -1;
        memcpy(p, extra, elen);
        p += elen;
    }
    /* the caller's may say it already (a body refused): one is enough */
    if (closes(wsi) && !(extra && strcasestr(extra, "connection: close")) &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end))
        return -1;
    if (lws_finalize_http_header(wsi, &p, end) || (size_t)(end - p) < blen)
        return -1;
    /* A HEAD request gets the headers only. */
    if (!lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI)) {
        memcpy(p, json, blen);
        p += blen;
    }
    int total = (int)(p - start);
    int rc = lws_write(wsi, start, (size_t)total, LWS_WRITE_HTTP) == total ? 0 : -1;
    explicit_bzero(start, (size_t)total); /* a token, for /login */
    return rc;
}

int http_error(struct lws *wsi, unsigned status, const char *msg, const char *extra)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    int rc = http_reply(wsi, status, s ? s : "{\"error\":\"internal error\"}", extra);
    free(s);
    json_decref(o);
    return rc;
}

int http_upgrade_refused(struct lws *wsi, const char *what)
{
    /* lws 4.1 cannot serve a request that offers an upgrade as plain HTTP,
     * and upgrades to HTTP/2 itself if told yes: say what to send instead */
    if (!strcasecmp(what, "h2c"))
        return http_error(wsi, HTTP_STATUS_BAD_REQUEST,
                          "HTTP/2 (Upgrade: h2c) is not served: send the request as HTTP/1.1 "
                          "without an Upgrade header (e.g. Java's HttpClient with "
                          "Version.HTTP_1_1, curl --http1.1)",
                          NULL);
    return http_error(wsi, HTTP_STATUS_BAD_REQUEST,
                      "only WebSocket upgrades are served, on /ws of the main port", NULL);
}

bool http_upgrade_asked(struct lws *wsi, char *buf, size_t cap)
{
    if (lws_hdr_copy(wsi, buf, (int)cap, WSI_TOKEN_UPGRADE) <= 0)
        return false;
    return !strcasecmp(buf, "websocket") || !strcasecmp(buf, "h2c");
}

/* ---- /login ------------------------------------------------------------- */

static int login_respond(struct gw *gw, struct lws *wsi, const char *body, size_t len)
{
    char user[CF_USERNAME_BYTES_MAX + 1];
    const char *err = auth_login_parse(body, len, user, sizeof user);
    if (err) {
        gw->stats.login_errors++;
        CF_DEBUG("http", "login refused: %s", err);
        return finish(wsi, http_error(wsi, HTTP_STATUS_BAD_REQUEST, err, NULL));
    }
    /* The token is written into a buffer that is wiped after, not into a
     * jansson object: its copies would stay in freed memory (a core dump).
     * A token is base64url and dots: nothing in it to escape. */
    char *token = auth_issue(gw->auth, user, cf_wall_ms() / 1000);
    json_t *name = json_string(user);
    char *uname = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
    char reply[8192]; /* as much as http_reply sends, headers aside */
    int n = token && uname
                ? snprintf(reply, sizeof reply, "{\"token\":\"%s\",\"username\":%s}", token, uname)
                : -1;
    int rc;
    if (n > 0 && (size_t)n < sizeof reply) {
        gw->stats.logins++;
        CF_INFO("http", "issued a token for %s", user);
        rc = http_reply(wsi, HTTP_STATUS_OK, reply, NULL);
    } else {
        CF_ERROR("http", "could not issue a token (out of memory?)");
        rc = http_error(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "could not issue a token", NULL);
    }
    explicit_bzero(reply, sizeof reply);
    if (token)
        explicit_bzero(token, strlen(token));
    free(token);
    free(uname);
    json_decref(name);
    return finish(wsi, rc);
}

static int body_complete(struct gw *gw, struct lws *wsi);

/* A client that sent "Expect: 100-continue" waits for a 100 before it sends
 * the body (curl a second, others until their own timeout), and lws 4.1.6
 * never sends one. Called once the request is known to be read: every
 * refusal decided from the headers alone went out instead (RFC 9110
 * 10.1.1). An HTTP/1.0 request's expectation is ignored: lws writes the
 * status line in the request's version, which tells. */
static int send_continue(struct lws *wsi)
{
    /* Expect is a list, and lws joins repeated headers with commas; a copy
     * that does not fit fails, so the buffer takes any header lws kept */
    char want[GW_HTTP_HEADER_DATA + 1];
    if (lws_hdr_copy(wsi, want, sizeof want, WSI_TOKEN_HTTP_EXPECT) <= 0 ||
        !cf_list_has(want, "100-continue"))
        return 0;
    /* lws adds the vhost's headers (the security ones) to any status:
     * only its status line tells the version, the 100 goes without them */
    static const char line[] = "HTTP/1.1 100 Continue\x0d\x0a\x0d\x0a";
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_header_status(wsi, HTTP_STATUS_CONTINUE, &p, end))
        return -1;
    if (strncmp((const char *)start, line, 9))
        return 0;
    memcpy(start, line, sizeof line - 1);
    int n = (int)sizeof line - 1;
    return lws_write(wsi, start, (size_t)n, LWS_WRITE_HTTP) == n ? 0 : -1;
}

/* Starts reading a POST body of at most `max` bytes. */
static int body_begin(struct gw *gw, struct lws *wsi, size_t max, bool publish)
{
    /* lws 4.1 cannot take a chunked body apart, and without a length it
     * goes on reading "the body" into the next request: both are refused,
     * and the connection, whose next bytes nobody could frame, is closed. */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 ||
        lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
        http_error(wsi, HTTP_STATUS_LENGTH_REQUIRED,
                   "send the body with a Content-Length (chunked bodies are not supported)",
                   "connection: close\x0d\x0a");
        return -1;
    }
    char clen[32], *end = clen;
    int n_len = lws_hdr_copy(wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    unsigned long long n = 0;
    if (n_len > 0 && n_len <= 19 && strspn(clen, "0123456789") == (size_t)n_len)
        n = strtoull(clen, &end, 10);
    if (end == clen || *end) {
        http_error(wsi, HTTP_STATUS_BAD_REQUEST, "Content-Length must be a decimal number",
                   "connection: close\x0d\x0a");
        return -1;
    }
    if (n > max) {
        /* Do not read a body we will refuse: answer and close. */
        char msg[48];
        snprintf(msg, sizeof msg, "body larger than %zu bytes", max);
        http_error(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, msg, "connection: close\x0d\x0a");
        return -1;
    }
    bool empty = n == 0;
    if (!req_new(gw, wsi, max, publish))
        return -1;
    g_unread = NULL; /* it is read */
    /* lws announces no body completion for an empty body */
    return empty ? body_complete(gw, wsi) : send_continue(wsi);
}

/* lws restarts its timeout at every piece of a body, so a client sending a
 * byte just before each would hold the connection for as long as it likes:
 * the whole body must come within HANDSHAKE_TIMEOUT of its headers. */
static int body_chunk(struct lws *wsi, const void *in, size_t len)
{
    struct http_req *req = (struct http_req *)conn_head_of(lws_get_opaque_user_data(wsi));
    if (!req || req->head.kind != CONN_HTTP)
        return -1;
    if (cf_mono_ms() > req->deadline) {
        http_error(wsi, HTTP_STATUS_REQUEST_TIMEOUT,
                   "the body did not arrive within HANDSHAKE_TIMEOUT: send it at once",
                   "connection: close\x0d\x0a");
        return -1;
    }
    if (len > req->max - req->len) {
        char msg[48];
        snprintf(msg, sizeof msg, "body larger than %zu bytes", req->max);
        http_error(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, msg, "connection: close\x0d\x0a");
        return -1;
    }
    memcpy(req->body + req->len, in, len);
    req->len += len;
    return 0;
}

void http_tick(struct gw *gw, int64_t now)
{
    /* A body that stopped coming: lws would wait HANDSHAKE_TIMEOUT from its
     * last piece, which body_chunk cannot see past. */
    for (struct http_req *req = gw->http_reading, *next; req; req = next) {
        next = req->next;
        if (now <= req->deadline)
            continue;
        reading_done(req);
        CF_DEBUG("http", "closing a request whose body did not arrive within HANDSHAKE_TIMEOUT");
        lws_set_timeout(req->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
    }
}

/* ---- /api/publish --------------------------------------------------------- */

static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Constant time in the key's content; the length is not secret. */
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < alen && i < blen; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static int publish_begin(struct gw *gw, struct lws *wsi, int method)
{
    if (!gw->cfg->api_key[0])
        return finish(wsi, http_error(wsi, HTTP_STATUS_NOT_FOUND,
                                      "not found (POST /api/publish is off: API_KEY is unset)",
                                      NULL));
    if (method != LWSHUMETH_POST)
        return finish(wsi, http_error(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "method not allowed",
                                      "allow: POST\x0d\x0a"));
    char auth[512];
    int n = lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 7 || strncasecmp(auth, "Bearer ", 7) != 0)
        return finish(wsi, http_error(wsi, HTTP_STATUS_UNAUTHORIZED,
                                      "missing \"Authorization: Bearer <API_KEY>\"",
                                      "www-authenticate: Bearer\x0d\x0a"));
    const char *key = auth + 7;
    bool ok = same_secret(key, strlen(key), gw->cfg->api_key, strlen(gw->cfg->api_key));
    explicit_bzero(auth, sizeof auth);
    if (!ok) {
        gw->stats.api_key_refusals++;
        CF_LOG_CAPPED(&gw->api_key_log, CF_LOG_WARN, "http", "%s",
                      "POST /api/publish with a wrong API key refused");
        return finish(wsi, http_error(wsi, HTTP_STATUS_FORBIDDEN, "wrong API key", NULL));
    }
    return body_begin(gw, wsi, PUBLISH_MAX_BODY, true);
}

/* The connection's request is done with: its buffer (up to 64 KiB for a
 * publish) goes now, not when the connection closes or sends another. */
static void drop_req(struct lws *wsi, struct http_req *req)
{
    lws_set_opaque_user_data(wsi, conn_tag(req->head.ip));
    http_req_free(req);
}

static int publish_complete(struct gw *gw, struct lws *wsi, struct http_req *req)
{
    json_error_t jerr;
    json_t *root = json_loadb(req->body, req->len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *room = root ? json_object_get(root, "room") : NULL,
           *msg = root ? json_object_get(root, "message") : NULL,
           *from = root ? json_object_get(root, "from") : NULL;
    const char *err = NULL;
    if (!json_is_object(root))
        err = "body must be a JSON object {\"room\", \"message\", \"from\"}";
    else if (!json_is_string(room) ||
             !cf_room_valid(json_string_value(room), json_string_length(room)))
        err = "\"room\" must be 1-64 characters of A-Z a-z 0-9 _ . : -";
    else if (!json_is_string(from) ||
             !cf_username_valid(json_string_value(from), json_string_length(from)))
        err = "\"from\" must be a valid username (1-32 characters, no control characters)";
    else if (!json_is_string(msg) ||
             !cf_text_has_content(json_string_value(msg), json_string_length(msg)))
        err = "\"message\" must be a non-empty string";
    else if (!cf_text_controls_ok(json_string_value(msg), json_string_length(msg)))
        err = "\"message\" must not hold control characters other than tab, line feed and "
              "carriage return";
    else if (json_string_length(msg) > (size_t)gw->cfg->max_message_bytes)
        err = "\"message\" is longer than MAX_MESSAGE_BYTES";
    int rc = 0;
    if (err) {
        drop_req(wsi, req);
        rc = finish(wsi, http_error(wsi, HTTP_STATUS_BAD_REQUEST, err, NULL));
    } else {
        struct cf_str r = {json_string_value(room), (uint32_t)json_string_length(room)},
                      f = {json_string_value(from), (uint32_t)json_string_length(from)},
                      t = {json_string_value(msg), (uint32_t)json_string_length(msg)};
        memcpy(req->room, r.p, r.len);
        req->room_len = r.len;
        int e = v1_publish(gw, req, r, f, t);
        if (e >= 0) /* bytes after the body wait for the answer (body_complete) */
            lws_rx_flow_control(wsi, 0);
        if (e < 0) {
            drop_req(wsi, req);
            rc = finish(wsi, http_error(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE,
                                        e == -ENOTCONN ? "the room's broker is not reachable"
                                                       : "the gateway is congested",
                                        "retry-after: 1\x0d\x0a"));
        }
    }
    json_decref(root);
    return rc;
}

void http_publish_started(void *http, uint64_t q)
{
    struct http_req *req = http;
    req->q = q;
    req->waiting = true;
}

void http_publish_done(void *http, unsigned status, const char *code, const char *message,
                       uint64_t id, int64_t ts)
{
    struct http_req *req = http;
    req->waiting = false;
    json_t *o;
    if (status == 200) {
        char sent[CF_RFC3339_LEN + 1];
        /* a time with no RFC 3339 form (a broker's clock gone wild) is left
         * out, as the ack of a WebSocket send leaves it out */
        if (cf_rfc3339_ms(ts, sent, sizeof sent) < 0)
            o = json_pack("{s:s%, s:I}", "room", req->room, (size_t)req->room_len, "message_id",
                          (json_int_t)id);
        else
            o = json_pack("{s:s%, s:I, s:s}", "room", req->room, (size_t)req->room_len,
                          "message_id", (json_int_t)id, "sent", sent);
    } else {
        o = json_pack("{s:s, s:s}", "error", message ? message : "failed", "code",
                      code ? code : "unavailable");
    }
    req->answer = o ? json_dumps(o, JSON_COMPACT) : NULL;
    req->status = req->answer ? status : HTTP_STATUS_INTERNAL_SERVER_ERROR;
    json_decref(o);
    /* lws 4.1.6 serves neither reads nor writes of an h1 connection whose
     * reading is off: on again for the answer (bytes after the body then get
     * it at once: body_complete) */
    lws_rx_flow_control(req->wsi, 1);
    lws_callback_on_writable(req->wsi);
}

/* Writes a publish's answer, which closes the connection (body_complete). */
static int publish_answer(struct lws *wsi, struct http_req *req)
{
    unsigned status = req->status;
    char *answer = req->answer;
    req->answer = NULL;
    drop_req(wsi, req);
    g_unread = wsi;
    int rc = finish(wsi, answer ? http_reply(wsi, status, answer, NULL)
                                : http_error(wsi, status, "internal error", NULL));
    g_unread = NULL;
    free(answer);
    return rc;
}

static int publish_writable(struct lws *wsi)
{
    struct http_req *req = (struct http_req *)conn_head_of(lws_get_opaque_user_data(wsi));
    if (!req || req->head.kind != CONN_HTTP || !req->publish || !req->status)
        return 0;
    return publish_answer(wsi, req);
}

static int body_complete(struct gw *gw, struct lws *wsi)
{
    struct http_req *req = (struct http_req *)conn_head_of(lws_get_opaque_user_data(wsi));
    if (!req || req->head.kind != CONN_HTTP)
        return -1;
    /* lws 4.1.6 stays in its body state after a body, and takes any byte
     * that follows (a stray CRLF, a pipelined request) for the body's end
     * again: a publish would go out once more each time, and when the POST
     * came in one read with the request before it, lws feeds what follows
     * in a loop that only an error ends (the worker hung). So an answer
     * after a body closes the connection, and bytes after a publish's body
     * (reading is off while it waits: they are those of the same read) get
     * its answer at once if it is there, else close the connection. */
    if (req->publish && req->status)
        return publish_answer(wsi, req);
    if (req->publish && req->waiting) {
        CF_DEBUG("http", "bytes after a publish's body: closing before its answer");
        return -1;
    }
    reading_done(req);
    g_unread = wsi; /* the answer says "connection: close", and finish closes */
    int rc;
    if (req->publish) {
        rc = publish_complete(gw, wsi, req); /* req stays until the answer */
    } else {
        lws_set_opaque_user_data(wsi, conn_tag(req->head.ip));
        rc = login_respond(gw, wsi, req->body, req->len);
        http_req_free(req);
    }
    g_unread = NULL;
    return rc;
}

/* Refused before the body is read, so the connection cannot be reused. */
static int login_begin(struct gw *gw, struct lws *wsi)
{
    int rc;
    if (!auth_can_issue(gw->auth)) {
        http_error(wsi, HTTP_STATUS_FORBIDDEN,
                   "guest login is off: this server accepts tokens from its identity provider",
                   "connection: close\x0d\x0a");
        return -1;
    }
    if (!admit_request(gw, wsi, IPL_LOGIN, &rc)) {
        gw->stats.login_errors++;
        return -1; /* after the 429 */
    }
    return body_begin(gw, wsi, LOGIN_MAX_BODY, false);
}

/* A browser asks before a page of another origin posts JSON to /login:
 * origin_cors says yes to the origins served, and a refusal says why. */
static int login_preflight(struct gw *gw, struct lws *wsi)
{
    char origin[256];
    if (!origin_allowed(gw->cfg->allowed_origins, wsi, origin, sizeof origin))
        return finish(wsi, http_error(wsi, HTTP_STATUS_FORBIDDEN,
                                      "origin not allowed (see ALLOWED_ORIGINS)", NULL));
    return finish(wsi, http_reply(wsi, HTTP_STATUS_NO_CONTENT, "", "allow: OPTIONS, POST\x0d\x0a"));
}

/* ---- routes ----------------------------------------------------------- */

static int method_not_allowed(struct lws *wsi, const char *allow)
{
    char extra[64];
    snprintf(extra, sizeof extra, "allow: %s\x0d\x0a", allow);
    return finish(wsi, http_error(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "method not allowed",
                                  extra));
}

static int healthz(struct gw *gw, struct lws *wsi)
{
    uint32_t up = blinks_up(gw->links), n = blinks_count(gw->links);
    bool ok = up == n && !gw->draining;
    char body[256];
    snprintf(body, sizeof body,
             "{\"status\":\"%s\",\"brokers\":%u,\"linked\":%u,\"connections\":%zu,"
             "\"worker\":%d,\"pid\":%d}",
             ok ? "ok" : gw->draining ? "draining" : "unavailable", n, up, gw->nsessions,
             gw->worker, (int)getpid());
    return finish(wsi, http_reply(wsi, ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE,
                                  body, NULL));
}

static int readyz(struct gw *gw, struct lws *wsi)
{
    uint32_t n = blinks_count(gw->links), up = blinks_up(gw->links),
             ready = blinks_ready(gw->links), serving = blinks_serving(gw->links);
    /* Degraded (some Redis server down: its rooms answer unavailable) still
     * takes traffic: every node is equally affected, and a load balancer
     * with no node left would refuse the rooms that work too. */
    bool ok = serving == n && !gw->draining;
    char body[256];
    snprintf(body, sizeof body,
             "{\"status\":\"%s\",\"brokers\":%u,\"linked\":%u,\"ready\":%u,\"serving\":%u}",
             gw->draining ? "draining" : !ok ? "not ready" : ready == n ? "ready" : "degraded", n,
             up, ready, serving);
    return finish(wsi, http_reply(wsi, ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE,
                                  body, NULL));
}

static int metrics(struct gw *gw, struct lws *wsi)
{
    struct cf_bytes out;
    cf_bytes_init(&out, 1 << 20);
    metrics_render(gw, &out);
    unsigned char hdr[LWS_PRE + 512];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    static const char ctype[] = "text/plain; version=0.0.4; charset=utf-8";
    int rc = -1;
    /* HEAD: the headers only; a body would be read as the next response */
    bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    if (!lws_add_http_common_headers(wsi, HTTP_STATUS_OK, ctype, cf_bytes_len(&out), &p, end) &&
        !(closes(wsi) &&
          lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                       &p, end)) &&
        !lws_finalize_write_http_header(wsi, start, &p, end)) {
        rc = 0;
        /* The body is a few KiB: one write. lws needs LWS_PRE bytes before it. */
        unsigned char *buf = head ? NULL : malloc(LWS_PRE + cf_bytes_len(&out));
        if (!head && !buf)
            rc = -1;
        if (buf) {
            memcpy(buf + LWS_PRE, cf_bytes_data(&out), cf_bytes_len(&out));
            rc = lws_write(wsi, buf + LWS_PRE, cf_bytes_len(&out), LWS_WRITE_HTTP_FINAL) ==
                         (int)cf_bytes_len(&out)
                     ? 0
                     : -1;
            free(buf);
        }
    }
    cf_bytes_free(&out);
    return finish(wsi, rc);
}

static int ops_route(struct gw *gw, struct lws *wsi, const char *url)
{
    int method = lws_http_get_uri_and_method(wsi, &(char *){NULL}, &(int){0});
    if (method != LWSHUMETH_GET && method != LWSHUMETH_HEAD)
        return method_not_allowed(wsi, "GET, HEAD");
    if (!strcmp(url, "/healthz"))
        return healthz(gw, wsi);
    if (!strcmp(url, "/readyz"))
        return readyz(gw, wsi);
    if (!strcmp(url, "/metrics"))
        return metrics(gw, wsi);
    return finish(wsi, http_error(wsi, HTTP_STATUS_NOT_FOUND,
                                  "not found: this port serves /metrics, /healthz, /readyz", NULL));
}

int http_ops_route(struct gw *gw, struct lws *wsi, const char *url)
{
    g_unread = has_body(wsi) ? wsi : NULL;
    int rc = ops_route(gw, wsi, url);
    g_unread = NULL;
    return rc;
}

/* The value of request header `token` in buf, or NULL when it is absent.
 * One present but empty is "", and so is one too long for buf: "" matches
 * no validator, and present, it must still keep a weaker condition from
 * deciding (an empty If-None-Match is a list naming nothing, RFC 9110
 * section 13.2.2, so If-Modified-Since is ignored and the file is sent).
 * lws_hdr_total_length() is 0 both for an absent header and for an empty
 * one; lws 4.1 has no call that says "present" (lws_hdr_extant came
 * later), but its parser gives a known header its first fragment when the
 * name is read, before any value, and lws_hdr_copy_fragment() fails for a
 * header without one. */
static const char *header_value(struct lws *wsi, enum lws_token_indexes token, char *buf,
                                size_t cap)
{
    if (lws_hdr_total_length(wsi, token) > 0)
        return lws_hdr_copy(wsi, buf, (int)cap, token) < 0 ? "" : buf;
    return lws_hdr_copy_fragment(wsi, buf, (int)cap, token, 0) < 0 ? NULL : "";
}

/* 304: the headers a 200 would have had that describe the file, no body
 * (a 304 never has one, so no Content-Length frames it either). */
static int not_modified(struct lws *wsi, const char *headers, size_t hlen)
{
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_header_status(wsi, HTTP_STATUS_NOT_MODIFIED, &p, end) ||
        (size_t)(end - p) < hlen)
        return -1;
    memcpy(p, headers, hlen);
    p += hlen;
    return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

/* "no-cache": a browser asks every time (a new frontend is seen at once);
 * the validators make the question cheap, answered 304 while the file is
 * unchanged. */
static int static_file(struct gw *gw, struct lws *wsi, const char *url)
{
    char path[4096];
    const char *mime;
    struct stat st;
    if (files_resolve(gw->files, url, path, sizeof path, &mime, &st) < 0)
        return finish(wsi, http_error(wsi, HTTP_STATUS_NOT_FOUND, "not found", NULL));
    struct fresh_tags tags;
    fresh_tags_of(&st, &tags);
    char extra[256];
    int hlen = snprintf(extra, sizeof extra,
                        "cache-control: no-cache\x0d\x0a"
                        "etag: %s\x0d\x0a%s%s%s%s",
                        tags.etag, tags.last_modified[0] ? "last-modified: " : "",
                        tags.last_modified, tags.last_modified[0] ? "\x0d\x0a" : "",
                        closes(wsi) ? "connection: close\x0d\x0a" : "");
    if (hlen < 0 || (size_t)hlen >= sizeof extra)
        return -1;
    char inm[512], ims[64];
    if (fresh_not_modified(&tags, header_value(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, inm, sizeof inm),
                           header_value(wsi, WSI_TOKEN_HTTP_IF_MODIFIED_SINCE, ims, sizeof ims)))
        return finish(wsi, not_modified(wsi, extra, (size_t)hlen));
    /* A HEAD is answered whole inside the call, which completes the
     * transaction itself: with a body announced, lws would go on to read
     * and drop it (g_unread) */
    bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    int n = lws_serve_http_file(wsi, path, mime, extra, hlen);
    if (n == 0 && head && closes(wsi))
        return -1;
    return n < 0 ? -1 : n > 0 ? finish(wsi, 0) : 0;
}


static int route(struct gw *gw, struct lws *wsi, const char *url)
{
    char *uri;
    int ulen, method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    bool get = method == LWSHUMETH_GET || method == LWSHUMETH_HEAD;
    /* lws hands us the decoded path: a %00 in it would cut it short here. */
    if (method >= 0 && (int)strlen(uri) != ulen)
        return finish(wsi, http_error(wsi, HTTP_STATUS_BAD_REQUEST, "bad request path", NULL));
    if (!strcmp(url, "/login")) {
        if (method == LWSHUMETH_OPTIONS)
            return login_preflight(gw, wsi);
        if (method != LWSHUMETH_POST)
            return method_not_allowed(wsi, "OPTIONS, POST");
        return login_begin(gw, wsi);
    }
    if (!strcmp(url, "/api/publish"))
        return publish_begin(gw, wsi, method);
    /* With a METRICS_PORT, metrics stay off the public port (it may face an
     * Ingress); the probes stay on both. */
    if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") ||
        (!strcmp(url, "/metrics") && !gw->cfg->metrics_port))
        return ops_route(gw, wsi, url);
    if (!strcmp(url, "/ws")) {
        if (!get)
            return method_not_allowed(wsi, "GET");
        return finish(wsi, ws_check(gw, wsi));
    }
    if (!get)
        return method_not_allowed(wsi, "GET, HEAD");
    return static_file(gw, wsi, url);
}

int http_callback(struct gw *gw, struct lws *wsi, int reason, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        /* body_begin clears it when the body is to be read */
        g_unread = has_body(wsi) ? wsi : NULL;
        int rc = route(gw, wsi, in ? (const char *)in : "/");
        g_unread = NULL;
        return rc;
    }
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        /* as lws' own handler does, unless the request had a body, which
         * was not read (route's g_unread): then the connection ends */
        return has_body(wsi) || lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_HTTP_BODY:
        return body_chunk(wsi, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return body_complete(gw, wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return publish_writable(wsi);
    default:
        return 0;
    }
}
