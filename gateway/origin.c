/* origin: see origin.h. */
#include "origin.h"
#include "validate.h"

#include <ctype.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The host[:port] of an origin "scheme://host[:port]", lower-cased. */
static bool origin_host(const char *origin, char *out, size_t cap)
{
    const char *p = strstr(origin, "://");
    if (!p)
        return false;
    p += 3;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
    return true;
}

/* origin against ALLOWED_ORIGINS, or by default against the request's own
 * Host (both NUL-terminated). */
bool origin_ok(const char *allowed, const char *origin, char *host)
{
    if (strcmp(allowed, "*") == 0)
        return true;
    if (allowed[0])
        return cf_list_has(allowed, origin);
    char ohost[256];
    if (!origin_host(origin, ohost, sizeof ohost))
        return false;
    for (char *h = host; *h; h++)
        *h = (char)tolower((unsigned char)*h);
    return strcmp(ohost, host) == 0;
}

/* Browsers always send Origin; other clients need not, and are let in. */
bool origin_allowed(const char *allowed, struct lws *wsi, char *origin, size_t cap)
{
    snprintf(origin, cap, "(too long or unreadable)"); /* what the log says if refused early */
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return true;
    if ((size_t)n >= cap || lws_hdr_copy(wsi, origin, (int)cap, WSI_TOKEN_ORIGIN) <= 0)
        return false;
    char host[256] = "";
    if (!allowed[0] && lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0)
        return false;
    return origin_ok(allowed, origin, host);
}

static int add(struct lws *wsi, enum lws_token_indexes token, const char *v, unsigned char **p,
               unsigned char *end)
{
    return lws_add_http_header_by_token(wsi, token, (const unsigned char *)v, (int)strlen(v), p,
                                        end)
               ? -1
               : 0;
}

int origin_cors(const char *allowed, struct lws *wsi, unsigned char **p, unsigned char *end)
{
    char *uri, origin[256];
    int ulen, method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    bool login = method >= 0 && ulen == 6 && !memcmp(uri, "/login", 6),
         ws = method >= 0 && ulen == 3 && !memcmp(uri, "/ws", 3);
    if (!login && !ws)
        return 0;
    bool preflight = login && method == LWSHUMETH_OPTIONS;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0 ||
        !origin_allowed(allowed, wsi, origin, sizeof origin))
        return 0;
    /* echoed into a header: only what an origin can hold */
    for (const char *c = origin; *c; c++)
        if (*c <= ' ' || *c > '~')
            return 0;
    /* With "*" any page may read the answer: no credentials are involved
     * (the token is in the body), so "*" itself says it. Otherwise the
     * answer depends on the Origin, which caches must know. */
    bool any = strcmp(allowed, "*") == 0;
    if (add(wsi, WSI_TOKEN_HTTP_ACCESS_CONTROL_ALLOW_ORIGIN, any ? "*" : origin, p, end) ||
        (!any && add(wsi, WSI_TOKEN_HTTP_VARY, "Origin", p, end)))
        return -1;
    if (!preflight)
        return lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-expose-headers:",
                                           (const unsigned char *)"Retry-After", 11, p, end)
                   ? -1
                   : 1;
    static const char *const pre[][2] = {{"access-control-allow-methods:", "POST"},
                                         {"access-control-allow-headers:", "Content-Type"},
                                         {"access-control-max-age:", "600"}};
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)pre[i][0],
                                        (const unsigned char *)pre[i][1], (int)strlen(pre[i][1]),
                                        p, end))
            return -1;
    return 1;
}
