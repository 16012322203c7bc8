/* origin: which browser origins this gateway serves. ALLOWED_ORIGINS lists
 * them (or is "*"); unset, an origin is served when its host is the
 * request's own Host. The same rule admits WebSocket upgrades and lets pages
 * read the answers of POST /login (CORS). */
#ifndef GW_ORIGIN_H
#define GW_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

struct lws;

/* origin ("scheme://host[:port]") against `allowed` (ALLOWED_ORIGINS, "" when
 * unset); host is the request's Host, lower-cased in place (unused when
 * `allowed` is set). Both NUL-terminated. */
bool origin_ok(const char *allowed, const char *origin, char *host);

/* Whether the request's Origin is served; true without one (not a
 * browser). origin receives the Origin for logs (a placeholder when it is
 * too long or unreadable). */
bool origin_allowed(const char *allowed, struct lws *wsi, char *origin, size_t cap);

/* CORS headers for the answer to a request of /login (a page of a served
 * origin may log in from another origin than the gateway's) or /ws (the
 * client's token check, a plain GET, must be readable there), added at *p
 * (lws header buffer up to end) when the request carries an Origin that is
 * served: the origin allowed to read it, Retry-After exposed, and, for a
 * preflight (OPTIONS), POST with a Content-Type allowed for 10 minutes. 1
 * when headers were added, 0 when none apply, -1 when they do not fit. */
int origin_cors(const char *allowed, struct lws *wsi, unsigned char **p, unsigned char *end);

#endif
