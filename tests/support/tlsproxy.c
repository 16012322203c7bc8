/* tlsproxy: see tlsproxy.h. Blocking OpenSSL in one process per connection:
 * the simplest correct way to pump a TLS session and a socket both ways. */
#include "tlsproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "httpc.h"

static SSL_CTX *client_ctx(const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* why says what failed, for the proxy's own log line (NULL: say nothing) */
static SSL *tls_connect(SSL_CTX *ctx, int port, const char *why)
{
    int fd = h_tcp_connect(port, 0);
    if (fd < 0) {
        if (why)
            fprintf(stderr, "tlsproxy: %s: TCP connect to port %d failed: %s\n", why, port,
                    strerror(errno));
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    int rc = -1, err = 0;
    if (ssl && SSL_set1_host(ssl, "localhost") == 1 &&
        SSL_set_tlsext_host_name(ssl, "localhost") == 1 && SSL_set_fd(ssl, fd) == 1) {
        errno = 0;
        rc = SSL_connect(ssl);
        if (rc != 1)
            err = SSL_get_error(ssl, rc);
    }
    if (rc != 1) {
        if (why) {
            char e[256];
            ERR_error_string_n(ERR_peek_last_error(), e, sizeof e);
            fprintf(stderr,
                    "tlsproxy: %s: TLS handshake with port %d failed: SSL error %d, "
                    "errno %s, %s\n",
                    why, port, err, strerror(errno), e);
        }
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

int tls_probe(int port, const char *ca_file, char *out, size_t cap)
{
    SSL_CTX *ctx = client_ctx(ca_file);
    SSL *ssl = ctx ? tls_connect(ctx, port, NULL) : NULL;
    int rc = -1;
    if (ssl && SSL_get_verify_result(ssl) == X509_V_OK) {
        snprintf(out, cap, "%s", SSL_get_version(ssl));
        rc = 0;
    }
    if (ssl) {
        int fd = SSL_get_fd(ssl);
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
    }
    SSL_CTX_free(ctx);
    return rc;
}

static void pump(int c, SSL *ssl)
{
    int s = SSL_get_fd(ssl);
    char buf[16384];
    for (;;) {
        /* bytes OpenSSL already decrypted do not show up as POLLIN on s */
        if (SSL_pending(ssl) <= 0) {
            struct pollfd p[2] = {{c, POLLIN, 0}, {s, POLLIN, 0}};
            if (poll(p, 2, 30000) <= 0)
                return;
            if (p[0].revents) {
                ssize_t n = recv(c, buf, sizeof buf, 0);
                if (n <= 0 || SSL_write(ssl, buf, (int)n) != (int)n)
                    return;
                continue;
            }
        }
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0 || h_send_all(c, buf, (size_t)n) < 0)
            return;
    }
}

static void serve(int lfd, int target, const char *ca_file)
{
    signal(SIGCHLD, SIG_IGN); /* connection processes reap themselves */
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            continue;
        /* A test sees only a closed connection: each failure here says why
         * on stderr (test_security's members once failed with no trace) */
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            SSL_CTX *ctx = client_ctx(ca_file);
            if (!ctx)
                fprintf(stderr, "tlsproxy: loading CA %s failed\n", ca_file);
            SSL *ssl = ctx ? tls_connect(ctx, target, "a proxied connection") : NULL;
            if (ssl)
                pump(c, ssl);
            _exit(0);
        }
        if (pid < 0)
            fprintf(stderr, "tlsproxy: fork for a connection failed: %s\n", strerror(errno));
        close(c);
    }
}

int tlsproxy_start(struct tlsproxy *p, int target_port, const char *ca_file)
{
    memset(p, 0, sizeof *p);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    p->port = ntohs(sa.sin_port);
    pid_t parent = getpid();
    p->pid = fork();
    if (p->pid == 0) {
        h_die_with_parent(parent); /* else it waits in accept() after a failed test */
        serve(lfd, target_port, ca_file);
        _exit(0);
    }
    close(lfd);
    return p->pid > 0 ? 0 : -1;
}

void tlsproxy_stop(struct tlsproxy *p)
{
    if (p->pid > 0) {
        /* the group would take the test with it: only the listener goes;
         * connection processes end when their sockets close */
        kill(p->pid, SIGKILL);
        h_reap_killed(p->pid, "TLS proxy", NULL);
    }
    p->pid = 0;
}
