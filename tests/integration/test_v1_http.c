/* Protocol v1 over HTTP: POST /api/publish (off without API_KEY, 401/403
 * for missing or wrong keys, 400/413 for bad bodies, Expect: 100-continue
 * answered, and a published message
 * reaching v1 and legacy members with an id and landing in the history), and
 * the Origin check of WebSocket upgrades (same host by default, the
 * ALLOWED_ORIGINS list, or *). Extra gateway processes of the node carry the
 * other settings: one without API_KEY, two with ALLOWED_ORIGINS. */
#include "v1.h"

#define KEY "integration-api-key-0123456789"

static struct h_fixture fx;
static struct h_node no_key, listed, star;

static int extra_gateway(struct h_node *g, const char *name, const char *setting)
{
    *g = fx.node;
    g->port = h_free_port();
    g->gateway_name = name;
    memset(g->extra_env, 0, sizeof g->extra_env);
    if (setting) {
        g->extra_env[0] = "API_KEY=" KEY;
        g->extra_env[1] = setting;
    }
    if (h_gateway_start(g) < 0)
        return -1;
    return h_wait_health(g->port, 200, 15000);
}

static int setup(void **state)
{
    (void)state;
    static const char *const env[] = {"API_KEY=" KEY, NULL};
    if (h_fixture_up(&fx, env) < 0)
        return -1;
    if (extra_gateway(&no_key, "gateway-no-key", NULL) < 0 ||
        extra_gateway(&listed, "gateway-listed",
                      "ALLOWED_ORIGINS=https://chat.example.com, http://other.test:8080") < 0 ||
        extra_gateway(&star, "gateway-star", "ALLOWED_ORIGINS=*") < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int bad = 0;
    struct h_node *g[] = {&no_key, &listed, &star};
    for (int i = 0; i < 3; i++) {
        h_dump_log(&g[i]->gateway, 10);
        bad += h_stop_clean(&g[i]->gateway);
    }
    return h_fixture_down(&fx) < 0 || bad ? -1 : 0;
}

/* POST /api/publish with an optional Authorization value; returns the
 * status, and the parsed body in *out when asked (NULL if not JSON). */
static int publish(int port, const char *auth, const char *body, json_t **out)
{
    char headers[512];
    snprintf(headers, sizeof headers, "Content-Type: application/json\r\n%s%s%s",
             auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
    struct h_resp r;
    assert_int_equal(h_http(port, "POST", "/api/publish", headers, body, strlen(body), &r), 0);
    int status = r.status;
    if (out)
        *out = json_loadb(r.body, r.body_len, 0, NULL);
    h_resp_free(&r);
    return status;
}

static const char *good_body = "{\"room\":\"news\",\"message\":\"Deploy finished\","
                               "\"from\":\"deploybot\"}";

static void test_publish_is_off_without_an_api_key(void **state)
{
    (void)state;
    assert_int_equal(publish(no_key.port, NULL, good_body, NULL), 404);
    assert_int_equal(publish(no_key.port, "Bearer " KEY, good_body, NULL), 404);
}

static void test_publish_needs_the_right_key(void **state)
{
    (void)state;
    struct v1c *m = v1_member(fx.node.port, "mona", V1_JSON);
    join_quietly(m, "news");
    h_sleep_ms(1100); /* past any line of a case before */
    long mark = h_log_mark(&fx.node.gateway);
    assert_int_equal(publish(fx.node.port, NULL, good_body, NULL), 401);
    assert_int_equal(publish(fx.node.port, "Bearer not-the-key-0123456789abcdef", good_body, NULL),
                     403);
    assert_int_equal(publish(fx.node.port, "Bearer " KEY "x", good_body, NULL), 403);
    assert_int_equal(publish(fx.node.port, "Bearer integration-api-key", good_body, NULL), 403);
    V1_NONE(m, 300, "new_message", NULL);
    /* anyone can send wrong keys at will: one line a second (one worker) */
    assert_int_equal(fx.node.workers, 1);
    assert_int_equal(h_log_count_from(&fx.node.gateway, mark, "wrong API key refused ("), 1);
    v1_close(m);
}

static void test_published_message_is_like_a_users(void **state)
{
    (void)state;
    const char *room = "news";
    struct v1c *m = v1_member(fx.node.port, "mona", V1_JSON);
    struct wsc *legacy = member(fx.node.port, "lenny", room);
    ready(legacy, "legacy here");
    json_t *first = join_ok(m, room);
    json_int_t last = pint(first, "last_id");
    json_decref(first);

    json_t *res = NULL;
    assert_int_equal(publish(fx.node.port, "Bearer " KEY, good_body, &res), 200);
    assert_non_null(res);
    assert_string_equal(json_string_value(json_object_get(res, "room")), room);
    json_int_t id = json_integer_value(json_object_get(res, "message_id"));
    assert_int_equal(id, last + 1);
    const char *sent = json_string_value(json_object_get(res, "sent"));
    assert_true(is_rfc3339_ms(sent));

    expect_new_exactly(m, room, id, "Deploy finished", "deploybot", sent);
    expect_message(legacy, "Deploy finished", "deploybot");

    /* In the history, and the next user message follows it. */
    assert_int_equal(v1_send(m, "history", json_pack("{s:s, s:i}", "room", room, "limit", 1)), 0);
    json_t *ev = v1_wait(m, V1_WAIT, "history", "room", room, NULL);
    V1_MUST(m, ev, "history");
    json_t *h = json_array_get(json_object_get(pl(ev), "messages"), 0);
    assert_non_null(h);
    assert_int_equal(msg_id(h), id);
    assert_string_equal(json_string_value(json_object_get(h, "from")), "deploybot");
    json_decref(ev);
    assert_int_equal(send_ok(m, room, "thanks", NULL), id + 1);

    /* Through another gateway, into a room nobody is in: kept for later. */
    json_decref(res);
    res = NULL;
    assert_int_equal(publish(listed.port, "Bearer " KEY,
                             "{\"room\":\"empty-room\",\"message\":\"for later\","
                             "\"from\":\"deploybot\"}",
                             &res),
                     200);
    json_decref(res);
    ev = join_ok(m, "empty-room");
    assert_int_equal(json_array_size(json_object_get(pl(ev), "messages")), 1);
    assert_string_equal(msg_text(json_array_get(json_object_get(pl(ev), "messages"), 0)),
                        "for later");
    json_decref(ev);
    wsc_close(legacy);
    v1_close(m);
}

/* Sends n bytes of raw in one write; returns all that came back until the
 * server closed (or 5 s passed). */
static const char *exchange(const char *raw, int n)
{
    int fd = h_tcp_connect(fx.node.port, 0);
    assert_true(fd >= 0);
    assert_int_equal(h_send_all(fd, raw, (size_t)n), 0);
    static char got[8192];
    size_t len = 0;
    for (ssize_t r; len < sizeof got - 1 && (r = read(fd, got + len, sizeof got - 1 - len)) > 0;)
        len += (size_t)r;
    got[len] = '\0';
    close(fd);
    return got;
}

/* Sends a publish of `text` into `room` followed by `after` in one write;
 * returns all that came back until the server closed (or 5 s passed). */
static const char *publish_then(const char *room, const char *text, const char *after)
{
    char body[256], raw[1024];
    snprintf(body, sizeof body, "{\"room\":\"%s\",\"message\":\"%s\",\"from\":\"bot\"}", room,
             text);
    int n = snprintf(raw, sizeof raw,
                     "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " KEY
                     "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s%s",
                     strlen(body), body, after);
    return exchange(raw, n);
}

/* Bytes after a publish's body while its answer is pending (a stray CRLF,
 * a pipelined request): before, lws took them for the body's end again on
 * every pass, each time the message was published once more (23 to 506
 * copies), and the answers met a freed request (the gateway crashed). Now
 * the message is stored once and answered, and the connection closes with
 * the answer (as after every body: see the next test). */
static void test_bytes_after_a_publish_wait_for_its_answer(void **state)
{
    (void)state;
    const char *room = "pipelined";
    struct v1c *m = v1_member(fx.node.port, "pia", V1_JSON);
    json_t *first = join_ok(m, room);
    json_int_t last = pint(first, "last_id");
    json_decref(first);

    char want[64];
    snprintf(want, sizeof want, "\"message_id\":%lld", (long long)last + 1);
    const char *got = publish_then(room, "stray", "\r\n");
    if (!strstr(got, want) || !strstr(got, "connection: close"))
        fail_msg("expected the publish's 200 with %s, closing; got:\n%s", want, got);
    expect_new(m, room, "stray", NULL);

    snprintf(want, sizeof want, "\"message_id\":%lld", (long long)last + 2);
    got = publish_then(room, "pipelined",
                       "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if (!strstr(got, want))
        fail_msg("expected the publish's 200 with %s; got:\n%s", want, got);
    expect_new(m, room, "pipelined", NULL);
    /* each stored once: the next message takes the next id */
    assert_int_equal(send_ok(m, room, "after", "after-1"), last + 3);
    v1_close(m);
}

/* A POST that came in one read with the request before it, and bytes after
 * its body: lws 4.1.6 fed those bytes to the body's end in a loop nothing
 * ended, and the worker hung for good (a GET then a /login: no token
 * needed). Now the answer closes the connection, and the worker serves on.
 * (lws reads such a POST's body from the wrong place: it gets a 400.) */
static void test_a_post_pipelined_behind_a_get_does_not_hang_the_worker(void **state)
{
    (void)state;
    static const char login[] = "{\"username\":\"zed\"}";
    static const char body[] = "{\"room\":\"behind\",\"message\":\"x\",\"from\":\"bot\"}";
    char raw[2048];
    const struct {
        const char *path, *auth, *body;
    } posts[] = {{"/login", "", login},
                 {"/api/publish", "Authorization: Bearer " KEY "\r\n", body}};
    for (size_t i = 0; i < sizeof posts / sizeof posts[0]; i++) {
        int n = snprintf(raw, sizeof raw,
                         "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                         "POST %s HTTP/1.1\r\nHost: t\r\n%sContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s\r\n",
                         posts[i].path, posts[i].auth, strlen(posts[i].body), posts[i].body);
        const char *got = exchange(raw, n);
        const char *get = strstr(got, "\"status\":\"ok\"");
        if (!get || !strstr(get, "HTTP/1.1 400") || !strstr(get, "connection: close"))
            fail_msg("POST %s behind a GET: expected the GET's answer, then a 400 that closes; "
                     "got:\n%s",
                     posts[i].path, got);
        /* the worker still answers (one worker: GATEWAY_WORKERS=1) */
        struct h_resp r;
        if (h_http(fx.node.port, "GET", "/healthz", NULL, NULL, 0, &r) < 0)
            fail_msg("after a POST %s pipelined behind a GET the gateway answers nothing",
                     posts[i].path);
        h_resp_free(&r);
    }
}

/* Reads what the server sends until the end of a head (a blank line),
 * 5 s at most; returns it, NUL-terminated. */
static const char *read_head(int fd)
{
    static char got[2048];
    size_t len = 0;
    got[0] = '\0';
    for (ssize_t r;
         len < sizeof got - 1 && !strstr(got, "\r\n\r\n") && (r = read(fd, got + len, 1)) > 0;)
        got[++len] = '\0';
    return got;
}

/* Clients that send "Expect: 100-continue" (curl -H, .NET, Java) wait for a
 * 100 before the body: lws never sent one, so curl waited a second, others
 * until their own timeout. A refusal known from the headers comes instead
 * of the 100, and an HTTP/1.0 request's expectation is ignored. */
static void test_expect_100_continue_is_answered(void **state)
{
    (void)state;
    static const char login[] = "{\"username\":\"expecter\"}";
    const struct {
        const char *path, *auth, *body, *want;
    } posts[] = {
        {"/login", "", login, "\"token\":"},
        {"/api/publish", "Authorization: Bearer " KEY "\r\n", good_body, "\"message_id\":"}};
    char raw[1024];
    for (size_t i = 0; i < sizeof posts / sizeof posts[0]; i++) {
        int fd = h_tcp_connect(fx.node.port, 0);
        assert_true(fd >= 0);
        int n = snprintf(raw, sizeof raw,
                         "POST %s HTTP/1.1\r\nHost: t\r\n%sContent-Type: application/json\r\n"
                         "Expect: 100-Continue\r\nContent-Length: %zu\r\n\r\n",
                         posts[i].path, posts[i].auth, strlen(posts[i].body));
        assert_int_equal(h_send_all(fd, raw, (size_t)n), 0);
        const char *head = read_head(fd);
        if (strcmp(head, "HTTP/1.1 100 Continue\r\n\r\n"))
            fail_msg("POST %s with Expect: 100-continue: want a 100 before the body; got:\n%s",
                     posts[i].path, head);
        assert_int_equal(h_send_all(fd, posts[i].body, strlen(posts[i].body)), 0);
        head = read_head(fd);
        if (strncmp(head, "HTTP/1.1 200", 12))
            fail_msg("POST %s after its 100: want a 200; got:\n%s", posts[i].path, head);
        char body[2048];
        ssize_t r = read(fd, body, sizeof body - 1);
        body[r > 0 ? r : 0] = '\0';
        if (!strstr(body, posts[i].want))
            fail_msg("POST %s after its 100: want %s in the answer; got:\n%s", posts[i].path,
                     posts[i].want, body);
        close(fd);
    }

    /* Expect is a list: repeated, or with another expectation beside it
     * (which is ignored; RFC 9110 allows that over a 417) */
    char longer[400] = "Expect: ";
    while (strlen(longer) < 300) /* (a copy into 128 bytes failed) */
        strcat(longer, "x-trace-id=0123456789abcdef, ");
    strcat(longer, "100-continue\r\n");
    const char *const lists[] = {"Expect: 100-continue\r\nExpect: 100-continue\r\n",
                                 "Expect: x-trace ,\t100-CONTINUE \r\n", longer};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        int fd = h_tcp_connect(fx.node.port, 0);
        assert_true(fd >= 0);
        int n = snprintf(raw, sizeof raw,
                         "POST /login HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n\r\n",
                         lists[i], strlen(login));
        assert_int_equal(h_send_all(fd, raw, (size_t)n), 0);
        const char *head = read_head(fd);
        if (strcmp(head, "HTTP/1.1 100 Continue\r\n\r\n"))
            fail_msg("a login with %s: want a 100 before the body; got:\n%s", lists[i], head);
        close(fd);
    }

    /* a wrong key is refused at once, without inviting the body */
    int fd = h_tcp_connect(fx.node.port, 0);
    assert_true(fd >= 0);
    int n = snprintf(raw, sizeof raw,
                     "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer nope\r\n"
                     "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                     strlen(good_body));
    assert_int_equal(h_send_all(fd, raw, (size_t)n), 0);
    const char *head = read_head(fd);
    if (strncmp(head, "HTTP/1.1 403", 12))
        fail_msg("a wrong key with Expect: 100-continue: want a 403 first; got:\n%s", head);
    close(fd);

    /* HTTP/1.0 knows no 100 (RFC 9110 10.1.1): the answer comes alone */
    n = snprintf(raw, sizeof raw,
                 "POST /login HTTP/1.0\r\nHost: t\r\nExpect: 100-continue\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 strlen(login), login);
    const char *got = exchange(raw, n);
    if (strncmp(got, "HTTP/1.0 200", 12) || strstr(got, " 100 "))
        fail_msg("an HTTP/1.0 login with Expect: want its 200 alone; got:\n%s", got);
}

static void test_publish_refuses_bad_bodies(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "not json",
        "[]",
        "{\"message\":\"m\",\"from\":\"bot\"}",
        "{\"room\":\"bad room\",\"message\":\"m\",\"from\":\"bot\"}",
        "{\"room\":\"news\",\"from\":\"bot\"}",
        "{\"room\":\"news\",\"message\":5,\"from\":\"bot\"}",
        "{\"room\":\"news\",\"message\":\"  \",\"from\":\"bot\"}",
        "{\"room\":\"news\",\"message\":\"a\\u0001b\",\"from\":\"bot\"}",
        "{\"room\":\"news\",\"message\":\"m\"}",
        "{\"room\":\"news\",\"message\":\"m\",\"from\":\"\"}",
        "{\"room\":\"news\",\"message\":\"m\",\"from\":\"a\\u0007b\"}",
        "{\"room\":\"news\",\"message\":\"m\",\"from\":\"0123456789012345678901234567890123\"}",
    };
    struct v1c *m = v1_member(fx.node.port, "mona", V1_JSON);
    join_quietly(m, "news");
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        json_t *res = NULL;
        int status = publish(fx.node.port, "Bearer " KEY, bodies[i], &res);
        if (status != 400)
            fail_msg("%s: status %d, want 400", bodies[i], status);
        assert_true(json_is_string(json_object_get(res, "error")));
        json_decref(res);
    }
    /* Over 64 KiB. */
    size_t n = 70 * 1024;
    char *big = malloc(n + 64);
    int k = snprintf(big, 64, "{\"room\":\"news\",\"from\":\"bot\",\"message\":\"");
    memset(big + k, 'x', n);
    strcpy(big + k + n, "\"}");
    assert_int_equal(publish(fx.node.port, "Bearer " KEY, big, NULL), 413);
    free(big);
    V1_NONE(m, 300, "new_message", NULL);
    v1_close(m);
}

static void test_publish_while_the_broker_is_down_is_503(void **state)
{
    (void)state;
    char room[32], body[200];
    room_on_shard(room, sizeof room, "pub-down-", 1, 2);
    snprintf(body, sizeof body, "{\"room\":\"%s\",\"message\":\"m\",\"from\":\"bot\"}", room);
    h_stop(&fx.node.broker[1], SIGKILL, 5000);
    assert_int_equal(h_wait_health(fx.node.port, 503, 10000), 0);
    json_t *res = NULL;
    assert_int_equal(publish(fx.node.port, "Bearer " KEY, body, &res), 503);
    assert_true(json_is_string(json_object_get(res, "error")));
    json_decref(res);
    assert_int_equal(h_broker_start(&fx.node, 1), 0);
    struct h_node *g[] = {&fx.node, &no_key, &listed, &star};
    for (int i = 0; i < 4; i++)
        assert_int_equal(h_wait_health(g[i]->port, 200, 15000), 0);
    assert_int_equal(publish(fx.node.port, "Bearer " KEY, body, NULL), 200);
}

/* The upgrade status for an Origin (NULL: none), legacy or v1. */
static int upgrade(int port, const char *origin, bool v1)
{
    char *token = h_login(port, "olive");
    assert_non_null(token);
    char path[4200], headers[512];
    snprintf(path, sizeof path, "/ws?token=%s", token);
    snprintf(headers, sizeof headers, "%s%s%s%s", origin ? "Origin: " : "", origin ? origin : "",
             origin ? "\r\n" : "", v1 ? "Sec-WebSocket-Protocol: confab.v1\r\n" : "");
    free(token);
    int status = 0;
    struct wsc *c = wsc_connect(port, path, headers, 0, &status);
    if (c && v1)
        assert_string_equal(wsc_protocol(c), "confab.v1");
    wsc_close(c);
    return status;
}

static void expect_upgrade(int port, const char *origin, int status)
{
    for (int v1 = 0; v1 < 2; v1++) {
        int got = upgrade(port, origin, v1);
        if (got != status)
            fail_msg("port %d, Origin %s, %s: status %d, want %d", port, origin ? origin : "(none)",
                     v1 ? "confab.v1" : "legacy", got, status);
    }
}

static void test_origin_defaults_to_the_same_host(void **state)
{
    (void)state;
    char same[64];
    snprintf(same, sizeof same, "http://127.0.0.1:%d", fx.node.port);
    expect_upgrade(fx.node.port, NULL, 101);
    expect_upgrade(fx.node.port, same, 101);
    expect_upgrade(fx.node.port, "http://evil.example", 403);
    expect_upgrade(fx.node.port, "https://127.0.0.1.evil.example", 403);
    expect_upgrade(fx.node.port, "null", 403);
}

static void test_allowed_origins_list_and_star(void **state)
{
    (void)state;
    char same[64];
    snprintf(same, sizeof same, "http://127.0.0.1:%d", listed.port);
    expect_upgrade(listed.port, NULL, 101);
    expect_upgrade(listed.port, "https://chat.example.com", 101);
    expect_upgrade(listed.port, "http://other.test:8080", 101);
    expect_upgrade(listed.port, "http://chat.example.com", 403); /* other scheme */
    expect_upgrade(listed.port, "https://chat.example.org", 403);
    expect_upgrade(listed.port, "http://other.test:8081", 403); /* other port */
    expect_upgrade(listed.port, same, 403); /* the list replaces the same-host rule */
    expect_upgrade(star.port, "http://anything.example", 101);
    expect_upgrade(star.port, NULL, 101);
}

/* /login answers for a page of another origin (CORS): the preflight and the
 * answer name the origin when it is served (its spelling, or "*"), and say
 * nothing for another origin, whose preflight is refused. A real browser
 * runs this in tests/browser/chat.test.mjs. */
/* What else a /login answer to a served origin says: a preflight allows the
 * Content-Type and has no body, an answer exposes Retry-After. */
static void expect_login_cors_rest(const struct h_resp *r, const char *origin, const char *allow,
                                   bool post)
{
    char value[128];
    if (allow && !post &&
        (!h_resp_header(r, "access-control-allow-headers", value, sizeof value) ||
         strcasecmp(value, "content-type") || r->body_len))
        fail_msg("preflight from %s: want Content-Type allowed and no body; got:\n%s", origin,
                 r->head);
    if (allow && post && !h_resp_header(r, "access-control-expose-headers", value, sizeof value))
        fail_msg("POST /login from %s: Retry-After not exposed; got:\n%s", origin, r->head);
}

/* method path from origin (NULL: none): want status, and allow as the
 * allowed origin (NULL: no CORS headers). */
static void expect_cors_at(int port, const char *method, const char *path, const char *origin,
                           int status, const char *allow)
{
    char headers[256], value[128];
    snprintf(headers, sizeof headers, "%s%s%sContent-Type: application/json\r\n",
             origin ? "Origin: " : "", origin ? origin : "", origin ? "\r\n" : "");
    static const char login[] = "{\"username\":\"corsica\"}";
    bool post = !strcmp(method, "POST");
    struct h_resp r;
    assert_int_equal(
        h_http(port, method, path, headers, post ? login : NULL, post ? strlen(login) : 0, &r), 0);
    const char *got = h_resp_header(&r, "access-control-allow-origin", value, sizeof value);
    if (r.status != status || (allow ? !got || strcmp(got, allow) : got != NULL))
        fail_msg("%s %s from %s: want %d with allow-origin %s; got:\n%s", method, path,
                 origin ? origin : "(no origin)", status, allow ? allow : "(none)", r.head);
    /* the answer depends on the Origin: caches must know (but for "*") */
    if (allow && strcmp(allow, "*") &&
        (!h_resp_header(&r, "vary", value, sizeof value) || strcasecmp(value, "origin")))
        fail_msg("%s %s from %s: no Vary: Origin; got:\n%s", method, path, origin, r.head);
    if (!strcmp(path, "/login"))
        expect_login_cors_rest(&r, origin, allow, post);
    h_resp_free(&r);
}

static void expect_cors(int port, const char *method, const char *origin, int status,
                        const char *allow)
{
    expect_cors_at(port, method, "/login", origin, status, allow);
}

static void test_login_answers_served_origins_cors(void **state)
{
    (void)state;
    expect_cors(listed.port, "OPTIONS", "http://other.test:8080", 204, "http://other.test:8080");
    expect_cors(listed.port, "POST", "https://chat.example.com", 200, "https://chat.example.com");
    expect_cors(listed.port, "OPTIONS", "https://chat.example.org", 403, NULL);
    expect_cors(listed.port, "POST", "https://chat.example.org", 200, NULL);
    expect_cors(star.port, "OPTIONS", "http://anything.example", 204, "*");
    expect_cors(star.port, "POST", "http://anything.example", 200, "*");
    /* unset, the gateway's own origin (its Host) is the one served */
    char own[64];
    snprintf(own, sizeof own, "http://127.0.0.1:%d", fx.node.port);
    expect_cors(fx.node.port, "POST", own, 200, own);
    expect_cors(fx.node.port, "OPTIONS", "http://elsewhere.test", 403, NULL);
    /* a preflight without an Origin is no browser's: its Allow, no CORS */
    expect_cors(listed.port, "OPTIONS", NULL, 204, NULL);
    /* the client's token check (a plain GET of /ws) is readable there too */
    expect_cors_at(listed.port, "GET", "/ws?token=nope", "https://chat.example.com", 401,
                   "https://chat.example.com");
    expect_cors_at(listed.port, "GET", "/ws?token=nope", "https://chat.example.org", 401, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_is_off_without_an_api_key),
        cmocka_unit_test(test_publish_needs_the_right_key),
        cmocka_unit_test(test_published_message_is_like_a_users),
        cmocka_unit_test(test_bytes_after_a_publish_wait_for_its_answer),
        cmocka_unit_test(test_a_post_pipelined_behind_a_get_does_not_hang_the_worker),
        cmocka_unit_test(test_expect_100_continue_is_answered),
        cmocka_unit_test(test_publish_refuses_bad_bodies),
        cmocka_unit_test(test_publish_while_the_broker_is_down_is_503),
        cmocka_unit_test(test_origin_defaults_to_the_same_host),
        cmocka_unit_test(test_allowed_origins_list_and_star),
        cmocka_unit_test(test_login_answers_served_origins_cors),
    };
    return h_finish(cmocka_run_group_tests(tests, setup, teardown));
}
