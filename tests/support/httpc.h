/* httpc: a tiny blocking HTTP/1.1 client for tests (one request per
 * connection, 5 s timeout), speaking exact bytes so tests can also send
 * malformed requests. */
#ifndef TEST_HTTPC_H
#define TEST_HTTPC_H

#include <stddef.h>

struct h_resp {
    int status;
    char *head; /* status line and headers, NUL-terminated */
    char *body; /* NUL-terminated for convenience */
    size_t body_len;
};

/* A blocking TCP connection to 127.0.0.1:port with 5 s send/receive
 * timeouts; rcvbuf > 0 shrinks the receive buffer (set before connecting, so
 * the advertised window is small too). Returns the fd or -1. */
int h_tcp_connect(int port, int rcvbuf);

/* Sends all n bytes (blocking). 0 or -1. */
int h_send_all(int fd, const void *p, size_t n);

/* `headers` are extra header lines, each ending in "\r\n", or NULL. A body
 * gets a Content-Length. Returns 0 and fills r, or -1. */
int h_http(int port, const char *method, const char *path, const char *headers, const void *body,
           size_t body_len, struct h_resp *r);
/* Sends `raw` as is and reads the reply until the server closes or 5 s pass. */
int h_http_raw(int port, const void *raw, size_t len, struct h_resp *r);
void h_resp_free(struct h_resp *r);
/* The value of a response header (case-insensitive name) copied into buf, or NULL. */
const char *h_resp_header(const struct h_resp *r, const char *name, char *buf, size_t cap);
/* How many header lines named `name` (case-insensitive) a response's head
 * (text from its status line; it may go on into the body) has before its
 * blank line: an answer that closes must say "connection: close" once. */
int h_header_count(const char *head, const char *name);

/* POST /login for user; returns the token (malloc'd) or NULL. */
char *h_login(int port, const char *user);

#endif
