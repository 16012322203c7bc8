/* rproxy: see rproxy.h. The child process forwards bytes both ways; on a
 * subscriber connection (one that sent SUBSCRIBE) it frames what Redis sends
 * (RESP2) so that, once wedged, it can leave out whole "message" and
 * "pmessage" pushes and pass everything else. */
#include "rproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

#define MAX_CONNS 64

struct pconn {
    int c, s; /* client side, server side */
    bool sub, wedged;
    bool cut;  /* sent the command rproxy_cut_reply named: closed at its reply */
    char *buf; /* from the server, not yet forwarded (subscriber connections) */
    size_t len, cap;
};

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The end of the CRLF-terminated line at p, or NULL when incomplete. */
static const char *line_end(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

/* The length of the first complete RESP2 value in [p, end), 0 when it is
 * incomplete, -1 when it is not RESP. */
static long resp_len(const char *p, const char *end)
{
    if (p >= end)
        return 0;
    const char *eol = line_end(p, end);
    if (!eol)
        return 0;
    long head = eol + 2 - p, n;
    switch (*p) {
    case '+':
    case '-':
    case ':':
        return head;
    case '$':
        n = strtol(p + 1, NULL, 10);
        if (n < 0)
            return head;
        return end - p >= head + n + 2 ? head + n + 2 : 0;
    case '*': {
        n = strtol(p + 1, NULL, 10);
        long total = head;
        for (long i = 0; i < n; i++) {
            long e = resp_len(p + total, end);
            if (e <= 0)
                return e;
            total += e;
        }
        return total;
    }
    default:
        return -1;
    }
}

static bool is_message(const char *p, long len)
{
    static const char m[] = "*3\r\n$7\r\nmessage\r\n", pm[] = "*4\r\n$8\r\npmessage\r\n";
    return (len >= (long)sizeof m - 1 && !memcmp(p, m, sizeof m - 1)) ||
           (len >= (long)sizeof pm - 1 && !memcmp(p, pm, sizeof pm - 1));
}

static bool has_subscribe(const char *p, size_t n)
{
    static const char *const pats[] = {"$9\r\nSUBSCRIBE\r\n", "$9\r\nsubscribe\r\n",
                                       "$10\r\nPSUBSCRIBE\r\n", "$10\r\npsubscribe\r\n", NULL};
    for (int i = 0; pats[i]; i++)
        if (memmem(p, n, pats[i], strlen(pats[i])))
            return true;
    return false;
}

static void drop(struct pconn *v, int *n, int i)
{
    close(v[i].c);
    close(v[i].s);
    free(v[i].buf);
    v[i] = v[--*n];
}

static void serve(int lfd, int ctl, int ack, int redis_port)
{
    struct pconn v[MAX_CONNS];
    int n = 0;
    long dropped = 0;
    char needle[256];
    size_t needle_len = 0; /* 0: no cut armed */
    for (;;) {
        struct pollfd pf[2 + 2 * MAX_CONNS];
        pf[0] = (struct pollfd){lfd, POLLIN, 0};
        pf[1] = (struct pollfd){ctl, POLLIN, 0};
        for (int i = 0; i < n; i++) {
            pf[2 + 2 * i] = (struct pollfd){v[i].c, POLLIN, 0};
            pf[3 + 2 * i] = (struct pollfd){v[i].s, POLLIN, 0};
        }
        if (poll(pf, (nfds_t)(2 + 2 * n), -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (pf[1].revents) {
            char cmd;
            if (read(ctl, &cmd, 1) != 1)
                return; /* the test is gone */
            if (cmd == 'w')
                for (int i = 0; i < n; i++)
                    v[i].wedged = v[i].wedged || v[i].sub;
            unsigned char len;
            if (cmd == 'c' && (read(ctl, &len, 1) != 1 || read(ctl, needle, len) != len))
                return;
            if (cmd == 'c')
                needle_len = len;
            if (write_all(ack, &dropped, sizeof dropped) < 0)
                return;
        }
        /* Connections, newest last: handle them before accepting, so the
         * indexes match pf. */
        for (int i = n - 1; i >= 0; i--) {
            char buf[65536];
            if (pf[2 + 2 * i].revents) {
                ssize_t r = read(v[i].c, buf, sizeof buf);
                if (r <= 0 || write_all(v[i].s, buf, (size_t)r) < 0) {
                    drop(v, &n, i);
                    continue;
                }
                if (!v[i].sub && has_subscribe(buf, (size_t)r))
                    v[i].sub = true;
                if (needle_len && memmem(buf, (size_t)r, needle, needle_len)) {
                    v[i].cut = true;
                    needle_len = 0;
                }
            }
            if (pf[3 + 2 * i].revents) {
                ssize_t r = read(v[i].s, buf, sizeof buf);
                if (r <= 0 || v[i].cut) {
                    drop(v, &n, i);
                    continue;
                }
                if (!v[i].sub && !v[i].len) {
                    if (write_all(v[i].c, buf, (size_t)r) < 0)
                        drop(v, &n, i);
                    continue;
                }
                if (v[i].len + (size_t)r > v[i].cap) {
                    v[i].cap = (v[i].len + (size_t)r) * 2;
                    v[i].buf = realloc(v[i].buf, v[i].cap);
                }
                memcpy(v[i].buf + v[i].len, buf, (size_t)r);
                v[i].len += (size_t)r;
                long k, off = 0;
                bool bad = false;
                while ((k = resp_len(v[i].buf + off, v[i].buf + v[i].len)) > 0) {
                    if (v[i].wedged && is_message(v[i].buf + off, k))
                        dropped++;
                    else if (write_all(v[i].c, v[i].buf + off, (size_t)k) < 0)
                        bad = true;
                    off += k;
                }
                if (k < 0 || bad) {
                    drop(v, &n, i);
                    continue;
                }
                memmove(v[i].buf, v[i].buf + off, v[i].len - (size_t)off);
                v[i].len -= (size_t)off;
            }
        }
        if (pf[0].revents) {
            int c = accept(lfd, NULL, NULL);
            if (c < 0)
                continue;
            int s = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sa = {.sin_family = AF_INET,
                                     .sin_port = htons((uint16_t)redis_port),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (n == MAX_CONNS || s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
                close(c);
                if (s >= 0)
                    close(s);
                continue;
            }
            v[n++] = (struct pconn){.c = c, .s = s};
        }
    }
}

int rproxy_start(struct rproxy *p, int redis_port)
{
    memset(p, 0, sizeof *p);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int ctl[2], ack[2];
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) < 0 || pipe(ctl) < 0 || pipe(ack) < 0)
        return -1;
    p->port = ntohs(sa.sin_port);
    fflush(NULL);
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        close(ctl[1]);
        close(ack[0]);
        signal(SIGPIPE, SIG_IGN);
        serve(lfd, ctl[0], ack[1], redis_port);
        _exit(0);
    }
    close(lfd);
    close(ctl[0]);
    close(ack[1]);
    p->ctl = ctl[1];
    p->ack = ack[0];
    return 0;
}

static long command(struct rproxy *p, char cmd)
{
    long dropped;
    if (p->pid <= 0 || write(p->ctl, &cmd, 1) != 1)
        return -1;
    struct pollfd pf = {p->ack, POLLIN, 0};
    if (poll(&pf, 1, 5000) != 1 || read(p->ack, &dropped, sizeof dropped) != sizeof dropped)
        return -1;
    return dropped;
}

int rproxy_wedge(struct rproxy *p)
{
    return command(p, 'w') < 0 ? -1 : 0;
}

int rproxy_cut_reply(struct rproxy *p, const char *needle)
{
    size_t len = strlen(needle);
    unsigned char msg[2 + 255] = {'c', (unsigned char)len};
    long dropped;
    if (p->pid <= 0 || len == 0 || len > 255)
        return -1;
    memcpy(msg + 2, needle, len);
    if (write(p->ctl, msg, 2 + len) != (ssize_t)(2 + len))
        return -1;
    struct pollfd pf = {p->ack, POLLIN, 0};
    if (poll(&pf, 1, 5000) != 1 || read(p->ack, &dropped, sizeof dropped) != sizeof dropped)
        return -1;
    return 0;
}

long rproxy_dropped(struct rproxy *p)
{
    return command(p, 'd');
}

void rproxy_stop(struct rproxy *p)
{
    if (p->pid <= 0)
        return;
    close(p->ctl);
    close(p->ack);
    kill(p->pid, SIGTERM);
    if (h_reap(p->pid, 5000) == -2) {
        kill(p->pid, SIGKILL);
        h_reap_killed(p->pid, "Redis proxy", NULL);
    }
    memset(p, 0, sizeof *p);
}
