/* http: see http.h. */
#include "http.h"

#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "blinks.h"
#include "clock.h"
#include "files.h"
#include "log.h"
#include "session.h"
#include "validate.h"

/* Request state of a POST /login while its body arrives. */
struct http_req {
    enum conn_kind kind; /* CONN_HTTP; must stay first */
    size_t len;
    char body[LOGIN_MAX_BODY + 1];
};

void http_req_free(void *opaque)
{
    free(opaque);
}

static int finish(struct lws *wsi, int rc)
{
    if (rc < 0 || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

int http_reply(struct lws *wsi, unsigned status, const char *json, const char *extra)
{
    unsigned char buf[LWS_PRE + 8192];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    size_t blen = strlen(json);
    char clen[24];
    int n = snprintf(clen, sizeof clen, "%zu", blen);
    if (lws_add_http_header_status(wsi, status, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)"application/json", 16, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                     (const unsigned char *)clen, n, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (extra) {
        size_t elen = strlen(extra);
        if ((size_t)(end - p) < elen)
            return -1;
        memcpy(p, extra, elen);
        p += elen;
    }
    if (lws_finalize_http_header(wsi, &p, end) || (size_t)(end - p) < blen)
        return -1;
    /* A HEAD request gets the headers only. */
    if (!lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI)) {
        memcpy(p, json, blen);
        p += blen;
    }
    int total = (int)(p - start);
    return lws_write(wsi, start, (size_t)total, LWS_WRITE_HTTP) == total ? 0 : -1;
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

/* ---- /login ------------------------------------------------------------- */

static int login_respond(struct gw *gw, struct lws *wsi, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *err = NULL;
    json_t *name = root ? json_object_get(root, "username") : NULL;
    char user[CF_USERNAME_BYTES_MAX + 1];
    if (!root || !json_is_object(root))
        err = "body must be a JSON object like {\"username\":\"alice\"}";
    else if (!name)
        err = "missing \"username\"";
    else if (!json_is_string(name))
        err = "\"username\" must be a string";
    else {
        int rc = cf_username_clean(json_string_value(name), json_string_length(name), user,
                                   sizeof user);
        if (rc < 0)
            err = cf_name_error_str(rc);
    }
    json_decref(root);
    if (err) {
        gw->stats.login_errors++;
        CF_DEBUG("http", "login refused: %s", err);
        return finish(wsi, http_error(wsi, HTTP_STATUS_BAD_REQUEST, err, NULL));
    }
    char *token = auth_issue(gw->auth, user, cf_wall_ms() / 1000);
    json_t *resp = token ? json_pack("{s:s, s:s}", "token", token, "username", user) : NULL;
    char *s = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    int rc;
    if (s) {
        gw->stats.logins++;
        CF_INFO("http", "issued a token for %s", user);
        rc = http_reply(wsi, HTTP_STATUS_OK, s, NULL);
    } else {
        CF_ERROR("http", "could not issue a token (out of memory?)");
        rc = http_error(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "could not issue a token", NULL);
    }
    if (token)
        explicit_bzero(token, strlen(token));
    free(token);
    free(s);
    json_decref(resp);
    return finish(wsi, rc);
}

static int login_begin(struct gw *gw, struct lws *wsi)
{
    char clen[32];
    if (lws_hdr_copy(wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
        char *end;
        unsigned long long n = strtoull(clen, &end, 10);
        if (*end || n > LOGIN_MAX_BODY) {
            /* Do not read a body we will refuse: answer and close. */
            http_error(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, "body larger than 4096 bytes",
                       "connection: close\x0d\x0a");
            return -1;
        }
        if (n == 0)
            return login_respond(gw, wsi, "", 0);
    }
    struct http_req *req = calloc(1, sizeof *req);
    if (!req)
        return -1;
    req->kind = CONN_HTTP;
    http_req_free(lws_get_opaque_user_data(wsi));
    lws_set_opaque_user_data(wsi, req);
    return 0; /* the body follows in LWS_CALLBACK_HTTP_BODY */
}

static int login_body(struct lws *wsi, const void *in, size_t len)
{
    struct http_req *req = lws_get_opaque_user_data(wsi);
    if (!req || req->kind != CONN_HTTP)
        return -1;
    if (len > LOGIN_MAX_BODY - req->len) {
        http_error(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, "body larger than 4096 bytes",
                   "connection: close\x0d\x0a");
        return -1;
    }
    memcpy(req->body + req->len, in, len);
    req->len += len;
    return 0;
}

static int login_complete(struct gw *gw, struct lws *wsi)
{
    struct http_req *req = lws_get_opaque_user_data(wsi);
    if (!req || req->kind != CONN_HTTP)
        return -1;
    lws_set_opaque_user_data(wsi, NULL);
    int rc = login_respond(gw, wsi, req->body, req->len);
    http_req_free(req);
    return rc;
}

/* ---- routes ----------------------------------------------------------- */

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

static int static_file(struct gw *gw, struct lws *wsi, const char *url)
{
    char path[4096];
    const char *mime;
    if (files_resolve(gw->files, url, path, sizeof path, &mime) < 0)
        return finish(wsi, http_error(wsi, HTTP_STATUS_NOT_FOUND, "not found", NULL));
    static const char extra[] = "cache-control: no-cache\x0d\x0a";
    int n = lws_serve_http_file(wsi, path, mime, extra, (int)sizeof extra - 1);
    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
        return -1;
    return 0;
}

static int method_not_allowed(struct lws *wsi, const char *allow)
{
    char extra[64];
    snprintf(extra, sizeof extra, "allow: %s\x0d\x0a", allow);
    return finish(wsi, http_error(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "method not allowed",
                                  extra));
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
        if (method != LWSHUMETH_POST)
            return method_not_allowed(wsi, "POST");
        return login_begin(gw, wsi);
    }
    if (!strcmp(url, "/healthz"))
        return get ? healthz(gw, wsi) : method_not_allowed(wsi, "GET, HEAD");
    if (!strcmp(url, "/ws")) {
        if (!get)
            return method_not_allowed(wsi, "GET");
        return finish(wsi, http_error(wsi, HTTP_STATUS_BAD_REQUEST,
                                      "this endpoint takes a WebSocket upgrade", NULL));
    }
    if (!get)
        return method_not_allowed(wsi, "GET, HEAD");
    return static_file(gw, wsi, url);
}

int http_callback(struct gw *gw, struct lws *wsi, int reason, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return route(gw, wsi, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        return login_body(wsi, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return login_complete(gw, wsi);
    default:
        return 0;
    }
}
