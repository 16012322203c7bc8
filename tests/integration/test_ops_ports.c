/* Operating confab: the operations ports (METRICS_PORT + worker,
 * BROKER_METRICS_PORT + shard) serve /metrics and the probes only, on
 * LISTEN_ADDR, or METRICS_ADDR when set; and the HTTP corners of those
 * routes (HEAD, upgrade offers). */
#include "ops.h"
#include "v1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A socket connected to addr:port (5 s receive timeout), or -1 with errno
 * set. */
static int connect_to(const char *addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, addr, &sa.sin_addr);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    int err = errno;
    close(fd);
    errno = err;
    return -1;
}

/* connect() to addr:port; true when refused. */
static bool refused_on(const char *addr, int port)
{
    int fd = connect_to(addr, port);
    if (fd >= 0)
        close(fd);
    return fd < 0 && errno == ECONNREFUSED;
}

/* LISTEN_ADDR holds for every listener: with 127.0.0.1, nothing answers on
 * 127.0.0.2 (also loopback, so a listener bound to every address would). */
static void test_operations_ports_bind_listen_addr(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(mport, "/readyz", 200, 10000));
    free(wait_status(bport, "/readyz", 200, 10000));
    const struct {
        const char *what;
        int port;
    } ports[] = {{"PORT", fx.node.port}, {"METRICS_PORT", mport}, {"BROKER_METRICS_PORT", bport}};
    int wrong = 0;
    for (int i = 0; i < 3; i++)
        if (!refused_on("127.0.0.2", ports[i].port)) {
            printf("%s %d answers on 127.0.0.2 although LISTEN_ADDR=127.0.0.1\n", ports[i].what,
                   ports[i].port);
            wrong++;
        }
    if (wrong)
        fail_msg("%d listeners ignore LISTEN_ADDR (see above)", wrong);
}

/* GET /healthz on addr:port within 10 s; the status (0: nothing answered). */
static int healthz_on(const char *addr, int port)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for (int tries = 0; tries < 100; tries++) {
        int fd = connect_to(addr, port);
        char got[64] = "";
        bool answered = fd >= 0 && write(fd, req, sizeof req - 1) == (ssize_t)sizeof req - 1 &&
                        read(fd, got, sizeof got - 1) > 12 && !strncmp(got, "HTTP/1.1 ", 9);
        if (fd >= 0)
            close(fd);
        if (answered)
            return atoi(got + 9);
        usleep(100 * 1000);
    }
    return 0;
}

/* METRICS_ADDR moves the operations ports (a scraper's network, or
 * loopback only) and leaves the public port on LISTEN_ADDR. */
static void test_metrics_addr_moves_the_operations_ports(void **state)
{
    (void)state;
    int mport, bport;
    static const char *const more[] = {"METRICS_ADDR=127.0.0.2", NULL};
    up(&(struct setup){.brokers = 1, .workers = 1, .more = more}, &mport, &bport);
    assert_int_equal(h_wait_health(fx.node.port, 200, 10000), 0);
    if (healthz_on("127.0.0.2", mport) != 200 || healthz_on("127.0.0.2", bport) != 200)
        fail_msg("METRICS_PORT %d / BROKER_METRICS_PORT %d do not answer on METRICS_ADDR", mport,
                 bport);
    const struct {
        const char *what, *addr;
        int port;
    } not_there[] = {{"PORT", "127.0.0.2", fx.node.port},
                     {"METRICS_PORT", "127.0.0.1", mport},
                     {"BROKER_METRICS_PORT", "127.0.0.1", bport}};
    for (int i = 0; i < 3; i++)
        if (!refused_on(not_there[i].addr, not_there[i].port))
            fail_msg("%s %d answers on %s (LISTEN_ADDR=127.0.0.1, METRICS_ADDR=127.0.0.2)",
                     not_there[i].what, not_there[i].port, not_there[i].addr);
}

static void test_metrics_ports_serve_only_operations(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(mport, "/readyz", 200, 10000));
    free(wait_status(bport, "/readyz", 200, 10000));
    assert_int_equal(status_of(mport, "GET", "/healthz"), 200);
    assert_int_equal(status_of(bport, "GET", "/healthz"), 200);

    /* The gateway's METRICS_PORT: no frontend, no login, no WebSocket. */
    static const char *const paths[] = {"/",         "/index.html", "/login", "/ws", "/api/publish",
                                        "/metricsx", "/readyz/",    NULL};
    for (int i = 0; paths[i]; i++) {
        int st = status_of(mport, "GET", paths[i]);
        if (st != 404)
            fail_msg("GET %s on METRICS_PORT answered %d, expected 404", paths[i], st);
    }
    int st = status_of(mport, "POST", "/login");
    if (st == 200 || st == 0)
        fail_msg("POST /login on METRICS_PORT answered %d", st);
    char *tok = h_login(fx.node.port, "alice");
    assert_non_null(tok);
    char path[1024];
    snprintf(path, sizeof path, "/ws?token=%s", tok);
    free(tok);
    struct wsc *c = wsc_connect(mport, path, NULL, 0, &st);
    if (c) {
        wsc_close(c);
        fail_msg("METRICS_PORT accepted a WebSocket upgrade");
    }
    assert_int_not_equal(st, 101);
    /* ... while the main port still takes it. */
    c = wsc_connect(fx.node.port, path, NULL, 0, &st);
    assert_non_null(c);
    wsc_close(c);

    /* The broker's port: three paths, GET only. */
    assert_int_equal(status_of(bport, "GET", "/"), 404);
    assert_int_equal(status_of(bport, "GET", "/ws"), 404);
    assert_int_equal(status_of(bport, "POST", "/metrics"), 405);
    assert_int_equal(status_of(bport, "HEAD", "/metrics"), 200);
}

/* Sends `req` raw and returns all the port sent back until it closed (or
 * 5 s passed). */
static char *raw_exchange(int port, const char *req)
{
    int fd = h_tcp_connect(port, 0);
    assert_true(fd >= 0);
    assert_int_equal(h_send_all(fd, req, strlen(req)), 0);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap + 1);
    int64_t deadline = h_now_ms() + 5000;
    while (len < cap && h_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, out + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    out[len] = '\0';
    return out;
}

/* HEAD /metrics gets the headers only: with a body after them, the next
 * response on a kept-alive connection would start inside it. */
static void test_head_metrics_then_another_request(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(mport, "/readyz", 200, 10000));
    char *r = raw_exchange(mport, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                                  "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char *second = strstr(r, "\r\n\r\n");
    assert_non_null(second);
    second += 4;
    if (strncmp(second, "HTTP/1.1 200", 12) != 0)
        fail_msg("after HEAD /metrics came %.60s, not the next response", second);
    assert_non_null(strstr(second, "\"status\""));
    assert_null(strstr(r, "# TYPE")); /* no metrics text anywhere */
    free(r);
}

/* A request offering HTTP/2 (Upgrade: h2c, as Java's HttpClient does by
 * default) is answered on both ports with what to send instead; lws 4.1
 * cannot serve it as plain HTTP. */
static void test_h2c_upgrade_offers_are_answered(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(mport, "/readyz", 200, 10000));
    static const char req[] =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, "
        "HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    int ports[] = {fx.node.port, mport};
    for (int i = 0; i < 2; i++) {
        char *r = raw_exchange(ports[i], req);
        if (strncmp(r, "HTTP/1.", 7) != 0 || strncmp(r + 8, " 400", 4) != 0 ||
            !strstr(r, "HTTP/1.1 without an Upgrade"))
            fail_msg("port %d answered an h2c offer with: %.200s", ports[i], r);
        free(r);
    }
}

/* Any other upgrade (Upgrade: foo) lws 4.1.6 answers itself, with a 403,
 * and then still asks the gateway, with the header it has just freed: the
 * gateway hangs up instead of reading it. On a kept-alive connection it
 * used to answer a second time (a 400 after lws' 403), so that a client
 * pipelining requests took that answer for its next request's. */
static void test_other_upgrades_get_one_answer(void **state)
{
    (void)state;
    int mport, bport;
    up(&(struct setup){.brokers = 1, .workers = 1}, &mport, &bport);
    free(wait_status(mport, "/readyz", 200, 10000));
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                              "Upgrade: foo\r\n\r\n";
    int ports[] = {fx.node.port, mport};
    for (int i = 0; i < 2; i++) {
        for (int first = 0; first < 2; first++) { /* alone, and after another request */
            char *r = raw_exchange(ports[i], first ? strstr(req, "\r\n\r\n") + 4 : req);
            int answers = 0, refused = 0; /* lws' own answers are HTTP/1.0 */
            for (const char *p = r; (p = strstr(p, "HTTP/1.")); p++) {
                answers++;
                refused += strncmp(p + 8, " 403 ", 5) == 0;
            }
            if (answers != 2 - first || refused != 1)
                fail_msg("port %d answered %d times (want %d, one a 403): %.600s", ports[i],
                         answers, 2 - first, r);
            free(r);
        }
    }
    /* the gateway still serves */
    free(wait_status(fx.node.port, "/healthz", 200, 5000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_metrics_ports_serve_only_operations, down),
        cmocka_unit_test_teardown(test_operations_ports_bind_listen_addr, down),
        cmocka_unit_test_teardown(test_metrics_addr_moves_the_operations_ports, down),
        cmocka_unit_test_teardown(test_head_metrics_then_another_request, down),
        cmocka_unit_test_teardown(test_h2c_upgrade_offers_are_answered, down),
        cmocka_unit_test_teardown(test_other_upgrades_get_one_answer, down),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
