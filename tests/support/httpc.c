/* httpc: see httpc.h. */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int h_tcp_connect(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int h_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads a whole response: headers, then Content-Length bytes or until EOF. */
static int read_response(int fd, struct h_resp *r)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return -1;
    char *hend = NULL;
    long clen = -1;
    for (;;) {
        if (hend && clen >= 0 && len >= (size_t)(hend + 4 - buf) + (size_t)clen)
            break;
        if (len == cap) {
            size_t hoff = hend ? (size_t)(hend - buf) : 0;
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                break;
            buf = nb;
            hend = hend ? buf + hoff : NULL;
        }
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (!hend && (hend = strstr(buf, "\r\n\r\n"))) {
            char *cl = strcasestr(buf, "\r\ncontent-length:");
            if (cl && cl < hend)
                clen = strtol(cl + 17, NULL, 10);
        }
    }
    buf[len] = '\0';
    if (!hend || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
        free(buf);
        return -1;
    }
    size_t hlen = (size_t)(hend - buf) + 2;
    r->head = strndup(buf, hlen);
    r->body_len = len - hlen - 2;
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, hend + 4, r->body_len);
    r->body[r->body_len] = '\0';
    free(buf);
    return 0;
}

int h_http_raw(int port, const void *raw, size_t len, struct h_resp *r)
{
    memset(r, 0, sizeof *r);
    int fd = h_tcp_connect(port, 0);
    if (fd < 0)
        return -1;
    int rc = h_send_all(fd, raw, len) == 0 ? read_response(fd, r) : -1;
    close(fd);
    return rc;
}

int h_http(int port, const char *method, const char *path, const char *headers, const void *body,
           size_t body_len, struct h_resp *r)
{
    char head[8192];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s", method,
                     path, port, headers ? headers : "");
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", body_len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    size_t total = (size_t)n + (body ? body_len : 0);
    char *req = malloc(total);
    memcpy(req, head, (size_t)n);
    if (body)
        memcpy(req + n, body, body_len);
    int rc = h_http_raw(port, req, total, r);
    free(req);
    return rc;
}

void h_resp_free(struct h_resp *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
}

const char *h_resp_header(const struct h_resp *r, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= cap)
                len = cap - 1;
            memcpy(buf, v, len);
            buf[len] = '\0';
            return buf;
        }
    }
    return NULL;
}

int h_header_count(const char *head, const char *name)
{
    size_t n = strlen(name);
    const char *end = strstr(head, "\r\n\r\n");
    int count = 0;
    for (const char *line = strstr(head, "\r\n"); line && (!end || line < end);
         line = strstr(line + 2, "\r\n"))
        count += strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':';
    return count;
}

char *h_login(int port, const char *user)
{
    json_t *req = json_pack("{s:s}", "username", user);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct h_resp r;
    char *token = NULL;
    if (h_http(port, "POST", "/login", "Content-Type: application/json\r\n", body, strlen(body),
               &r) == 0) {
        json_t *resp = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
        const char *t = json_string_value(json_object_get(resp, "token"));
        if (t)
            token = strdup(t);
        json_decref(resp);
        h_resp_free(&r);
    }
    free(body);
    return token;
}
