/* HTTP endpoints of a real gateway: /login, /healthz, static files (and
 * their conditional GETs), methods, sizes, traversal. */
#include "common.h"

#include <fcntl.h>
#include <jwt.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct h_redis redis;
static struct h_node node;
static char frontend[512];

static int setup(void **state)
{
    (void)state;
    /* A private frontend dir with a symlink pointing outside of it. */
    snprintf(frontend, sizeof frontend, "%s/www", h_tmpdir());
    mkdir(frontend, 0755);
    char path[700];
    snprintf(path, sizeof path, "%s/index.html", frontend);
    FILE *f = fopen(path, "w");
    fputs("<!doctype html><title>t</title>", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/app.js", frontend);
    f = fopen(path, "w");
    fputs("console.log(1)", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/secret.txt", h_tmpdir());
    f = fopen(path, "w");
    fputs("outside", f);
    fclose(f);
    char link[700];
    snprintf(link, sizeof link, "%s/escape.txt", frontend);
    if (symlink(path, link) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/.hidden", frontend);
    f = fopen(path, "w");
    fputs("hidden", f);
    fclose(f);

    if (h_redis_start(&redis, h_tmpdir()) < 0)
        return -1;
    h_node_init(&node, redis.addr);
    static char fe[600];
    snprintf(fe, sizeof fe, "FRONTEND_DIR=%s", frontend);
    node.extra_env[0] = fe;
    node.extra_env[1] = "JWT_TTL=600";
    return h_node_start(&node);
}

static int teardown(void **state)
{
    (void)state;
    h_node_dump_logs(&node);
    int bad = h_node_stop(&node);
    h_redis_stop(&redis);
    return bad ? -1 : 0;
}

static void login(const char *body, const char *ctype, int want_status, struct h_resp *r)
{
    char hdr[128] = "";
    if (ctype)
        snprintf(hdr, sizeof hdr, "Content-Type: %s\r\n", ctype);
    assert_int_equal(h_http(node.port, "POST", "/login", hdr, body, strlen(body), r), 0);
    assert_int_equal(r->status, want_status);
    char ct[64];
    assert_non_null(h_resp_header(r, "content-type", ct, sizeof ct));
    assert_string_equal(ct, "application/json");
}

static void test_login_issues_a_valid_token(void **state)
{
    (void)state;
    struct h_resp r;
    login("{\"username\":\"  alice  \"}", "text/plain", 200, &r); /* the old client's type */
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "username")), "alice");
    const char *token = json_string_value(json_object_get(j, "token"));
    assert_non_null(token);

    jwt_t *jwt = NULL;
    assert_int_equal(
        jwt_decode(&jwt, token, (const unsigned char *)H_JWT_SECRET, (int)strlen(H_JWT_SECRET)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    assert_string_equal(jwt_get_grant(jwt, "sub"), "alice");
    long iat = jwt_get_grant_int(jwt, "iat"), nbf = jwt_get_grant_int(jwt, "nbf"),
         exp = jwt_get_grant_int(jwt, "exp");
    long now = (long)time(NULL);
    assert_true(iat <= now && iat > now - 60);
    assert_int_equal(nbf, iat);
    assert_int_equal(exp, iat + 600); /* JWT_TTL */
    jwt_free(jwt);
    json_decref(j);
    h_resp_free(&r);

    /* Multibyte names count characters, not bytes: 32 x "é" is fine. */
    char body[256] = "{\"username\":\"";
    for (int i = 0; i < 32; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "\"}");
    login(body, "application/json", 200, &r);
    h_resp_free(&r);
}

static void expect_login_error(const char *body, int status, const char *fragment)
{
    struct h_resp r;
    login(body, NULL, status, &r);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    const char *err = json_string_value(json_object_get(j, "error"));
    assert_non_null(err);
    if (fragment && !strstr(err, fragment))
        fail_msg("error \"%s\" does not mention \"%s\"", err, fragment);
    json_decref(j);
    h_resp_free(&r);
}

static void test_login_rejects_bad_input(void **state)
{
    (void)state;
    expect_login_error("not json", 400, "JSON");
    expect_login_error("[]", 400, "JSON object");
    expect_login_error("{}", 400, "username");
    expect_login_error("{\"username\":42}", 400, "string");
    expect_login_error("{\"username\":\"\"}", 400, "empty");
    expect_login_error("{\"username\":\"   \"}", 400, "empty");
    expect_login_error("{\"username\":\"abcdefghijklmnopqrstuvwxyz0123456\"}", 400, "32");
    expect_login_error("{\"username\":\"a\\tb\"}", 400, "control");
    expect_login_error("{\"username\":\"a\\u0000b\"}", 400, NULL);
    expect_login_error("{\"username\":\"evil\\u202egnp\"}", 400, "control");
    expect_login_error("{\"username\":\"a\",\"username\":\"b\"}", 400, NULL);

    /* Over 4 KiB: refused without reading it all. */
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = 0;
    memcpy(big, "{\"username\":\"", 13);
    struct h_resp r;
    assert_int_equal(h_http(node.port, "POST", "/login", NULL, big, strlen(big), &r), 0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"error\""));
    h_resp_free(&r);
    free(big);
}

static void test_methods_and_paths(void **state)
{
    (void)state;
    struct h_resp r;
    char allow[64];
    assert_int_equal(h_http(node.port, "GET", "/login", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(h_resp_header(&r, "allow", allow, sizeof allow), "OPTIONS, POST");
    assert_non_null(strstr(r.body, "\"error\""));
    h_resp_free(&r);

    assert_int_equal(h_http(node.port, "DELETE", "/healthz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 405);
    h_resp_free(&r);

    assert_int_equal(h_http(node.port, "PUT", "/index.html", NULL, "x", 1, &r), 0);
    assert_int_equal(r.status, 405);
    h_resp_free(&r);

    assert_int_equal(h_http(node.port, "GET", "/nope.html", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "\"error\""));
    h_resp_free(&r);

    /* /ws without an upgrade or a token to check (test_ws_auth checks tokens) */
    assert_int_equal(h_http(node.port, "GET", "/ws", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "takes a WebSocket upgrade"));
    h_resp_free(&r);
}

static void test_healthz(void **state)
{
    (void)state;
    struct h_resp r;
    assert_int_equal(h_http(node.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    assert_int_equal(json_integer_value(json_object_get(j, "brokers")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "linked")), 2);
    json_decref(j);
    h_resp_free(&r);
}

static void test_static_files(void **state)
{
    (void)state;
    struct h_resp r;
    char ct[128];
    assert_int_equal(h_http(node.port, "GET", "/", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "<!doctype html><title>t</title>");
    assert_non_null(strstr(h_resp_header(&r, "content-type", ct, sizeof ct), "text/html"));
    assert_non_null(h_resp_header(&r, "x-content-type-options", ct, sizeof ct));
    h_resp_free(&r);

    assert_int_equal(h_http(node.port, "GET", "/app.js", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(h_resp_header(&r, "content-type", ct, sizeof ct), "javascript"));
    h_resp_free(&r);

    assert_int_equal(h_http(node.port, "HEAD", "/app.js", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    h_resp_free(&r);

    /* Nothing outside FRONTEND_DIR, however it is asked for. */
    static const char *const evil[] = {
        "/../secret.txt",       "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt", "/..%2fsecret.txt",
        "/escape.txt",          "/.hidden",
        "//etc/passwd",         "/./index.html/../../secret.txt",
        "/..\\secret.txt",      "/%00index.html",
    };
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        char raw[256];
        int n = snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         evil[i]);
        if (h_http_raw(node.port, raw, (size_t)n, &r) == 0) {
            if (r.status == 200 || strstr(r.body, "outside") || strstr(r.body, "hidden") ||
                strstr(r.body, "root:"))
                fail_msg("%s was served (status %d)", evil[i], r.status);
            h_resp_free(&r);
        }
    }
}

/* A GET of `path` with `cond` (header lines) added; asserts the status. */
static void get_if(const char *path, const char *cond, int status, struct h_resp *r)
{
    assert_int_equal(h_http(node.port, "GET", path, cond, NULL, 0, r), 0);
    if (r->status != status)
        fail_msg("GET %s with \"%s\": %d, wanted %d", path, cond ? cond : "", r->status, status);
}

static void expect_not_modified(const char *cond, const char *etag)
{
    struct h_resp r;
    char v[128];
    get_if("/app.js", cond, 304, &r);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(h_resp_header(&r, "etag", v, sizeof v), etag);
    assert_string_equal(h_resp_header(&r, "cache-control", v, sizeof v), "no-cache");
    h_resp_free(&r);
}

/* Static files carry validators, and a request that names the current one
 * is answered 304 without a body: "no-cache" makes a browser ask on every
 * load, and without validators every load downloaded everything again. */
static void test_static_files_revalidate(void **state)
{
    (void)state;
    struct h_resp r;
    char etag[128], lm[64], cc[64], cond[512];
    get_if("/app.js", NULL, 200, &r);
    assert_string_equal(r.body, "console.log(1)");
    assert_non_null(h_resp_header(&r, "etag", etag, sizeof etag));
    assert_non_null(h_resp_header(&r, "last-modified", lm, sizeof lm));
    assert_string_equal(h_resp_header(&r, "cache-control", cc, sizeof cc), "no-cache");
    h_resp_free(&r);
    assert_true(strncmp(etag, "W/\"", 3) == 0 && etag[strlen(etag) - 1] == '"');
    char path[700];
    snprintf(path, sizeof path, "%s/app.js", frontend);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct tm tm;
    char want[64];
    strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&st.st_mtime, &tm));
    assert_string_equal(lm, want);

    /* If-None-Match: the tag, in a list, weakly compared, or "*". */
    snprintf(cond, sizeof cond, "If-None-Match: %s\r\n", etag);
    expect_not_modified(cond, etag);
    snprintf(cond, sizeof cond, "If-None-Match: \"other\", %s\r\n", etag + 2);
    expect_not_modified(cond, etag);
    expect_not_modified("If-None-Match: *\r\n", etag);
    /* If-Modified-Since: the Last-Modified given. */
    snprintf(cond, sizeof cond, "If-Modified-Since: %s\r\n", lm);
    expect_not_modified(cond, etag);
    /* HEAD too. */
    snprintf(cond, sizeof cond, "If-None-Match: %s\r\n", etag);
    assert_int_equal(h_http(node.port, "HEAD", "/app.js", cond, NULL, 0, &r), 0);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.body_len, 0);
    h_resp_free(&r);

    /* The whole file otherwise: another tag (which then decides alone), a
     * date that is not the file's or not a date. */
    snprintf(cond, sizeof cond, "If-None-Match: W/\"other\"\r\nIf-Modified-Since: %s\r\n", lm);
    get_if("/app.js", cond, 200, &r);
    assert_string_equal(r.body, "console.log(1)");
    h_resp_free(&r);
    get_if("/app.js", "If-Modified-Since: yesterday\r\n", 200, &r);
    h_resp_free(&r);
    get_if("/app.js", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", 200, &r);
    h_resp_free(&r);
    /* An empty If-None-Match is present, names no tag, and decides: the
     * If-Modified-Since beside it (the file's own date) is ignored. */
    get_if("/app.js", "If-None-Match: \r\n", 200, &r);
    h_resp_free(&r);
    snprintf(cond, sizeof cond, "If-None-Match: \r\nIf-Modified-Since: %s\r\n", lm);
    get_if("/app.js", cond, 200, &r);
    assert_string_equal(r.body, "console.log(1)");
    h_resp_free(&r);
    snprintf(cond, sizeof cond, "If-Modified-Since: %s\r\nIf-None-Match:\r\n", lm);
    get_if("/app.js", cond, 200, &r);
    h_resp_free(&r);
    /* Later than the file: a file put back to an older version (its time
     * goes back) must not be taken for the copy the client holds. */
    time_t later = st.st_mtime + 3600;
    strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&later, &tm));
    snprintf(cond, sizeof cond, "If-Modified-Since: %s\r\n", want);
    get_if("/app.js", cond, 200, &r);
    h_resp_free(&r);

    /* Keep-alive: the 304 has no body, so the next answer on the same
     * connection starts right after its headers. */
    int fd = h_tcp_connect(node.port, 0);
    assert_true(fd >= 0);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n", etag);
    assert_int_equal(h_send_all(fd, req, (size_t)n), 0);
    char got[8192] = "";
    size_t len = 0;
    while (!strstr(got, "\r\n\r\n")) {
        ssize_t k = recv(fd, got + len, sizeof got - 1 - len, 0);
        assert_true(k > 0);
        len += (size_t)k;
        got[len] = '\0';
    }
    assert_true(strncmp(got, "HTTP/1.1 304", 12) == 0);
    n = snprintf(req, sizeof req, "GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(h_send_all(fd, req, (size_t)n), 0);
    for (;;) {
        ssize_t k = recv(fd, got + len, sizeof got - 1 - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    got[len] = '\0';
    close(fd);
    const char *second = strstr(got, "\r\n\r\n") + 4;
    if (strncmp(second, "HTTP/1.1 200", 12) != 0)
        fail_msg("after the 304: \"%.40s\"", second);
    assert_non_null(strstr(second, "console.log(1)"));

    /* A changed file gets new validators: the old ones get the new file. */
    FILE *f = fopen(path, "w");
    fputs("console.log(2)", f);
    fclose(f);
    struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = st.st_mtime + 7}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    snprintf(cond, sizeof cond, "If-None-Match: %s\r\n", etag);
    get_if("/app.js", cond, 200, &r);
    assert_string_equal(r.body, "console.log(2)");
    char etag2[128];
    assert_string_not_equal(h_resp_header(&r, "etag", etag2, sizeof etag2), etag);
    h_resp_free(&r);
    snprintf(cond, sizeof cond, "If-Modified-Since: %s\r\n", lm);
    get_if("/app.js", cond, 200, &r);
    h_resp_free(&r);
    /* Same size and second, other nanoseconds: the tag still tells. */
    times[1].tv_sec = st.st_mtime + 7;
    times[1].tv_nsec = 123456789;
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    snprintf(cond, sizeof cond, "If-None-Match: %s\r\n", etag2);
    get_if("/app.js", cond, 200, &r);
    h_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_issues_a_valid_token),
        cmocka_unit_test(test_login_rejects_bad_input),
        cmocka_unit_test(test_methods_and_paths),
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_static_files),
        cmocka_unit_test(test_static_files_revalidate),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
