/* Tokens from an identity provider and TLS, as clients and operators see
 * them: RS256 and ES256 verification with a configured public key (the
 * algorithm pinned by JWT_ALG, never taken from the token), iss and aud,
 * the clock leeway, guest login off without a private key and on with one;
 * HTTPS and WSS with a certificate a client verifies; and settings that do
 * not fit together stopping the gateway with a message naming them. */
#include "v1.h"

#include <jwt.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "tlsproxy.h"

static struct h_fixture fx;
static char g_dir[400];

/* Runs a shell command (openssl) and fails the test when it fails. */
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, cmd);
}

static const char *path_of(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", g_dir, name);
    return buf[i];
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Keys and a certificate for "localhost", made once per run. */
static int make_keys(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/keys", h_tmpdir());
    sh("mkdir -p %s", g_dir);
    sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null",
       path_of("rsa.key"));
    sh("openssl pkey -in %s -pubout -out %s", path_of("rsa.key"), path_of("rsa.pub"));
    sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null",
       path_of("other.key"));
    sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s",
       path_of("ec.key"));
    sh("openssl pkey -in %s -pubout -out %s", path_of("ec.key"), path_of("ec.pub"));
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
       "-addext subjectAltName=DNS:localhost -keyout %s -out %s 2>/dev/null",
       path_of("tls.key"), path_of("tls.crt"));
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
       "-addext subjectAltName=DNS:localhost -keyout %s -out %s 2>/dev/null",
       path_of("rogue.key"), path_of("rogue.crt"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return h_fixture_down(&fx);
}

/* A token signed with alg and the PEM (or secret) at key_path; iss/aud NULL
 * to leave them out; aud may be a JSON array text ("[...]"). */
static char *token(jwt_alg_t alg, const char *key, const char *sub, const char *iss,
                   const char *aud, long exp_in)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    long now = (long)time(NULL);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
    jwt_add_grant(jwt, "sub", sub);
    if (iss)
        jwt_add_grant(jwt, "iss", iss);
    if (aud && aud[0] == '[') {
        char json[256];
        snprintf(json, sizeof json, "{\"aud\":%s}", aud);
        assert_int_equal(jwt_add_grants_json(jwt, json), 0);
    } else if (aud) {
        jwt_add_grant(jwt, "aud", aud);
    }
    jwt_add_grant_int(jwt, "iat", now);
    jwt_add_grant_int(jwt, "exp", now + exp_in);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(t);
    return t;
}

/* The upgrade's HTTP status and, when refused, the body's error text. */
static int upgrade(const char *tok, char *why, size_t cap)
{
    int status = 0;
    struct v1c *c = v1_open_token(fx.node.port, tok, V1_JSON, NULL, &status);
    why[0] = '\0';
    if (c) {
        v1_close(c);
        return status;
    }
    char path[4600];
    snprintf(path, sizeof path, "/ws?token=%s", tok);
    struct h_resp r;
    why[0] = '\0';
    if (h_http(fx.node.port, "GET", path,
               "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
               NULL, 0, &r) == 0) {
        snprintf(why, cap, "%s", r.body ? r.body : "");
        h_resp_free(&r);
    }
    return status;
}

#define EXPECT_REFUSED(tok, reason)                                                                \
    do {                                                                                           \
        char why_[512];                                                                            \
        int st_ = upgrade((tok), why_, sizeof why_);                                               \
        if (st_ != 401 || !strstr(why_, (reason)))                                                 \
            fail_msg("expected 401 \"%s\", got %d %s", (reason), st_, why_);                       \
    } while (0)

static void test_rs256_tokens_from_an_identity_provider(void **state)
{
    (void)state;
    char env_pub[600];
    snprintf(env_pub, sizeof env_pub, "JWT_PUBLIC_KEY=%s", path_of("rsa.pub"));
    const char *env[] = {"JWT_ALG=RS256", env_pub, "JWT_ISSUER=https://idp.test",
                         "JWT_AUDIENCE=confab", "JWT_LEEWAY=30", NULL};
    assert_int_equal(h_fixture_up(&fx, env), 0);
    char *priv = slurp(path_of("rsa.key")), *pub = slurp(path_of("rsa.pub"));
    char *other = slurp(path_of("other.key"));
    char why[512];

    /* a good token works all the way: join and send */
    char *t = token(JWT_ALG_RS256, priv, "carol", "https://idp.test", "confab", 600);
    struct v1c *c = v1_open_token(fx.node.port, t, V1_JSON, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(v1_send(c, "join", json_pack("{s:s}", "room", "idp")), 0);
    json_t *ev = v1_wait(c, V1_WAIT, "joined", "room", "idp", NULL);
    V1_MUST(c, ev, "joined");
    json_decref(ev);
    v1_close(c);
    free(t);
    /* aud may be an array naming us; expiry within the leeway is fine */
    t = token(JWT_ALG_RS256, priv, "carol", "https://idp.test", "[\"other\",\"confab\"]", -10);
    assert_int_equal(upgrade(t, why, sizeof why), 101);
    free(t);

    /* the algorithm is the configured one, whatever the token says */
    t = token(JWT_ALG_HS256, H_JWT_SECRET, "carol", "https://idp.test", "confab", 600);
    EXPECT_REFUSED(t, "bad_algorithm");
    free(t);
    t = token(JWT_ALG_HS256, pub, "carol", "https://idp.test", "confab", 600); /* key confusion */
    EXPECT_REFUSED(t, "bad_algorithm");
    free(t);
    t = token(JWT_ALG_RS512, priv, "carol", "https://idp.test", "confab", 600);
    EXPECT_REFUSED(t, "bad_algorithm");
    free(t);
    /* another key, other claims */
    t = token(JWT_ALG_RS256, other, "carol", "https://idp.test", "confab", 600);
    EXPECT_REFUSED(t, "bad_signature");
    free(t);
    t = token(JWT_ALG_RS256, priv, "carol", NULL, "confab", 600);
    EXPECT_REFUSED(t, "bad_issuer");
    free(t);
    t = token(JWT_ALG_RS256, priv, "carol", "https://evil.test", "confab", 600);
    EXPECT_REFUSED(t, "bad_issuer");
    free(t);
    t = token(JWT_ALG_RS256, priv, "carol", "https://idp.test", "someone-else", 600);
    EXPECT_REFUSED(t, "bad_audience");
    free(t);
    t = token(JWT_ALG_RS256, priv, "carol", "https://idp.test", NULL, 600);
    EXPECT_REFUSED(t, "bad_audience");
    free(t);
    t = token(JWT_ALG_RS256, priv, "carol", "https://idp.test", "confab", -60);
    EXPECT_REFUSED(t, "expired");
    free(t);
    t = token(JWT_ALG_RS256, priv, "", "https://idp.test", "confab", 600);
    EXPECT_REFUSED(t, "bad_subject");
    free(t);

    /* no private key: no guest tokens */
    struct h_resp r;
    assert_int_equal(h_http(fx.node.port, "POST", "/login", "Content-Type: application/json\r\n",
                            "{\"username\":\"guest\"}", 20, &r),
                     0);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "guest login is off"));
    assert_int_equal(h_header_count(r.head, "connection"), 1); /* its body is not read */
    h_resp_free(&r);
    free(priv);
    free(pub);
    free(other);
}

static void test_es256_with_guest_tokens_signed_by_the_private_key(void **state)
{
    (void)state;
    char env_pub[600], env_priv[600];
    snprintf(env_pub, sizeof env_pub, "JWT_PUBLIC_KEY=%s", path_of("ec.pub"));
    snprintf(env_priv, sizeof env_priv, "JWT_PRIVATE_KEY=%s", path_of("ec.key"));
    const char *env[] = {"JWT_ALG=ES256", env_pub, env_priv, "JWT_ISSUER=confab-test",
                         "JWT_USER_CLAIM=preferred_username", NULL};
    assert_int_equal(h_fixture_up(&fx, env), 0);
    /* /login issues ES256 tokens with the issuer and the configured claim */
    char *t = h_login(fx.node.port, "dave");
    assert_non_null(t);
    jwt_t *jwt = NULL;
    char *pub = slurp(path_of("ec.pub"));
    assert_int_equal(jwt_decode(&jwt, t, (const unsigned char *)pub, (int)strlen(pub)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_ES256);
    assert_string_equal(jwt_get_grant(jwt, "iss"), "confab-test");
    assert_string_equal(jwt_get_grant(jwt, "preferred_username"), "dave");
    jwt_free(jwt);
    struct v1c *c = v1_open_token(fx.node.port, t, V1_MSGPACK, NULL, NULL);
    assert_non_null(c);
    v1_close(c);
    free(t);
    /* an RS256 token is refused even though it is well signed by its key */
    char *rsa = slurp(path_of("rsa.key"));
    t = token(JWT_ALG_RS256, rsa, "dave", "confab-test", NULL, 600);
    EXPECT_REFUSED(t, "bad_algorithm");
    free(t);
    free(rsa);
    free(pub);
}

/* A node serving TLS on its port, with one more setting. */
static void tls_node_up(const char *extra)
{
    static char env_cert[600], env_key[600], env_m[32];
    int mport = h_free_port();
    snprintf(env_cert, sizeof env_cert, "TLS_CERT=%s", path_of("tls.crt"));
    snprintf(env_key, sizeof env_key, "TLS_KEY=%s", path_of("tls.key"));
    snprintf(env_m, sizeof env_m, "METRICS_PORT=%d", mport);
    const char *env[] = {env_cert, env_key, env_m, extra, NULL};
    assert_int_equal(h_redis_start(&fx.redis, h_tmpdir()), 0);
    h_node_init(&fx.node, fx.redis.addr);
    for (int i = 0; env[i]; i++)
        fx.node.extra_env[i] = env[i];
    fx.node.health_port = mport; /* the probes stay plain on METRICS_PORT */
    assert_int_equal(h_node_start(&fx.node), 0);
}

/* A TLS gateway keeps its connections in lws, and a busy one still paces
 * its flushes (session.c): the paced flush is woken by a timer in a set of
 * its own that ends lws' poll() on time. A message sent right after one that
 * every member gets (a long flush, so the next one waits) must come back
 * without waiting for other traffic: the gateway's next own timer is up to a
 * second away. */
static void test_a_paced_message_goes_out_over_tls(void **state)
{
    (void)state;
    enum { MEMBERS = 150, ROUNDS = 5 };
    tls_node_up(NULL);
    struct tlsproxy px;
    assert_int_equal(tlsproxy_start(&px, fx.node.port, path_of("tls.crt")), 0);
    struct wsc *p = member(px.port, "pacer", NULL);
    settle((struct wsc *[]){p}, 1);
    struct wsc **m = silent_members(px.port, "listener", MEMBERS);
    ready(p, "all-in"); /* the members are in once the pacer hears itself */
    int64_t worst = paced_worst_ms(p, "pacer", ROUNDS);
    close_all(m, MEMBERS);
    wsc_close(p);
    tlsproxy_stop(&px);
    if (worst >= 400)
        fail_msg("over TLS a message sent right after a wide one took %lld ms to come back",
                 (long long)worst);
}

/* True when the server closes a fresh connection within ms (refused at
 * accept), false when it is still waiting for a TLS handshake. */
static bool closed_within(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char c;
    return poll(&p, 1, ms) == 1 && recv(fd, &c, 1, 0) <= 0;
}

/* Connections that end while lws is still setting them up (a TLS port that
 * gets plain text at once, as health checks and scanners do) count once
 * against their address, not twice: otherwise anyone could free places
 * under MAX_CONNS_PER_IP by sending plain text. */
static void test_failed_tls_setups_do_not_free_places(void **state)
{
    (void)state;
    tls_node_up("MAX_CONNS_PER_IP=4");
    h_sleep_ms(300); /* the start-up probes' connections are gone */
    int held[2];
    for (int i = 0; i < 2; i++)
        held[i] = h_tcp_connect(fx.node.port, 0);
    /* with the gateway stopped, the plain text is there before it accepts:
     * lws's first TLS read fails while it adopts the connection */
    h_kill(&fx.node.gateway, SIGSTOP);
    int plain[2];
    for (int i = 0; i < 2; i++) {
        plain[i] = h_tcp_connect(fx.node.port, 0);
        h_send_all(plain[i], "GET / HTTP/1.1\r\n\r\n", 18);
    }
    h_kill(&fx.node.gateway, SIGCONT);
    for (int i = 0; i < 2; i++)
        assert_true(closed_within(plain[i], 3000));
    /* two held: two more places, not four */
    int more[3];
    for (int i = 0; i < 3; i++)
        more[i] = h_tcp_connect(fx.node.port, 0);
    assert_false(closed_within(more[0], 500));
    assert_false(closed_within(more[1], 10));
    if (!closed_within(more[2], 500))
        fail_msg("a 5th connection from one address was let in (MAX_CONNS_PER_IP=4)");
    for (int i = 0; i < 3; i++)
        close(more[i]);
    for (int i = 0; i < 2; i++) {
        close(held[i]);
        close(plain[i]);
    }
}

/* Over TLS every connection stays in lws, whose descriptor table is as long
 * as the soft limit on open files and is scanned at every close by Debian's
 * build: TLS_MAX_CONNS lowers the limit for good. Connections past it are
 * closed at accept, those held wait for their handshakes, and once they are
 * gone the gateway serves again. */
static void test_tls_max_conns_bounds_a_process(void **state)
{
    (void)state;
    enum { MAX = 256, N = 300 };
    tls_node_up("TLS_MAX_CONNS=256");
    unsigned long soft, hard;
    h_files_limit(fx.node.gateway.pid, &soft, &hard);
    assert_int_equal(soft, MAX);
    assert_true(h_log_contains(&fx.node.gateway, "open files limited to 256 (TLS_MAX_CONNS", 0));
    int fds[N], held = 0;
    for (int i = 0; i < N; i++)
        fds[i] = h_tcp_connect(fx.node.port, 0);
    h_sleep_ms(500);
    for (int i = 0; i < N; i++)
        held += !closed_within(fds[i], 0);
    /* the gateway's own files (listeners, links, epoll, a reserve) take a few */
    if (held > MAX || held < MAX - 40)
        fail_msg("%d of %d connections held under TLS_MAX_CONNS=%d", held, N, MAX);
    assert_true(h_alive(&fx.node.gateway));
    for (int i = 0; i < N; i++)
        close(fds[i]);
    h_sleep_ms(300);
    struct tlsproxy px;
    assert_int_equal(tlsproxy_start(&px, fx.node.port, path_of("tls.crt")), 0);
    struct wsc *m = member(px.port, "after", NULL);
    settle((struct wsc *[]){m}, 1);
    wsc_close(m);
    tlsproxy_stop(&px);
}

/* Over TLS lws parses the frames, and the gateway still bounds what it is
 * handed: a message in more than 256 frames is closed with 1008, and pongs
 * take from RATE_MSGS as in own mode (a flood of them is closed; the pings
 * lws answers itself, unseen). */
static void test_tls_bounds_frames_and_pongs(void **state)
{
    (void)state;
    tls_node_up("RATE_MSGS=5");
    struct tlsproxy px;
    assert_int_equal(tlsproxy_start(&px, fx.node.port, path_of("tls.crt")), 0);
    static const char join[] = "{\"type\":\"join\",\"payload\":{\"room\":\"tls-frames\"}}";
    for (int extra = 0; extra < 2; extra++) {
        struct v1c *c = v1_member(px.port, "tls-fragmenter", V1_JSON);
        int frames = 256 + extra;
        for (int i = 0; i < frames; i++) {
            size_t n = sizeof join - 1;
            const char *p = i < (int)n ? join + i : "";
            assert_int_equal(wsc_send_frame(v1_wsc(c), i ? WS_CONT : WS_TEXT, i == frames - 1, p,
                                            i < (int)n),
                             0);
        }
        if (extra) {
            assert_int_equal(wsc_wait_close(v1_wsc(c), V1_WAIT), 1008);
            v1_abort(c);
            continue;
        }
        json_t *ev = v1_wait(c, V1_WAIT, "joined", "room", "tls-frames", NULL);
        V1_MUST(c, ev, "joined, from a join in 256 frames over TLS");
        json_decref(ev);
        v1_close(c);
    }

    struct v1c *f = v1_member(px.port, "tls-pong-flooder", V1_JSON);
    long mark = h_log_mark(&fx.node.gateway);
    int64_t t0 = h_now_ms();
    for (int i = 0; i < 5000 && h_now_ms() - t0 < 3000; i++, h_sleep_ms(1))
        if (wsc_send_frame(v1_wsc(f), WS_PONG, true, "p", 1) < 0) /* lws 4.1 drops empty ones */
            break;
    assert_int_equal(wsc_wait_close(v1_wsc(f), V1_WAIT), 1008);
    assert_true(h_log_contains_from(&fx.node.gateway, mark, "kept sending pings or pongs", 2000));
    v1_abort(f);
    tlsproxy_stop(&px);
}

/* Over TLS lws refuses a bad frame itself (here invalid UTF-8) and queues
 * its close frame; the connection lives on until the client answers it (or
 * 5 s pass). Nothing may follow the close (RFC 6455 5.5.1): the room's
 * messages went on reaching the client after it. The client here reads
 * the raw frames and does not answer the close. */
static void test_nothing_follows_lws_close_over_tls(void **state)
{
    (void)state;
    tls_node_up(NULL);
    struct tlsproxy px;
    assert_int_equal(tlsproxy_start(&px, fx.node.port, path_of("tls.crt")), 0);
    struct v1c *bad = v1_member(px.port, "tls-bad", V1_JSON);
    struct v1c *talker = v1_member(px.port, "tls-talker", V1_JSON);
    struct v1c *all[] = {bad, talker};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(v1_send(all[i], "join", json_pack("{s:s}", "room", "tls-close")), 0);
        json_t *ev = v1_wait(all[i], V1_WAIT, "joined", NULL);
        V1_MUST(all[i], ev, "joined");
        json_decref(ev);
    }
    V1_NONE(bad, 300, "new_message", NULL); /* what came before is read */
    assert_int_equal(wsc_send_frame(v1_wsc(bad), WS_TEXT, true, "\xff", 1), 0);
    h_sleep_ms(300);
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "t-%d", i);
        assert_int_equal(v1_send(talker, "send",
                                 json_pack("{s:s, s:s, s:s}", "room", "tls-close", "id", id,
                                           "message", "after")),
                         0);
        json_t *ev = v1_wait(talker, V1_WAIT, "ack", "id", id, NULL);
        V1_MUST(talker, ev, "ack");
        json_decref(ev);
    }
    /* the raw frames the bad client got: a close, and nothing after it */
    static unsigned char buf[65536];
    size_t have = 0;
    int fd = wsc_fd(v1_wsc(bad));
    for (int64_t deadline = h_now_ms() + 1000; h_now_ms() < deadline && have < sizeof buf;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    int close_code = -1, after = 0;
    for (size_t at = 0; at + 2 <= have;) {
        int op = buf[at] & 0x0f;
        size_t len = buf[at + 1] & 0x7f, hdr = 2;
        if (len == 126 && at + 4 <= have)
            len = (size_t)buf[at + 2] << 8 | buf[at + 3], hdr = 4;
        else if (len == 127)
            break; /* not from this test's frames */
        if (at + hdr + len > have)
            break;
        if (close_code >= 0)
            after++;
        else if (op == WS_CLOSE)
            close_code = len >= 2 ? buf[at + hdr] << 8 | buf[at + hdr + 1] : 1005;
        at += hdr + len;
    }
    printf("the client got close %d, then %d frame(s)\n", close_code, after);
    assert_int_equal(close_code, 1007);
    assert_int_equal(after, 0);
    v1_abort(bad);
    v1_close(talker);
    tlsproxy_stop(&px);
}

static void test_https_and_wss(void **state)
{
    (void)state;
    tls_node_up("HANDSHAKE_TIMEOUT=2");

    /* a client that trusts the certificate completes a handshake for
     * "localhost"; one that does not, fails */
    char version[32];
    assert_int_equal(tls_probe(fx.node.port, path_of("tls.crt"), version, sizeof version), 0);
    assert_true(!strcmp(version, "TLSv1.3") || !strcmp(version, "TLSv1.2"));
    assert_int_equal(tls_probe(fx.node.port, path_of("rogue.crt"), version, sizeof version), -1);

    /* plain HTTP on the TLS port gets no HTTP answer */
    struct h_resp r;
    memset(&r, 0, sizeof r);
    int hr = h_http(fx.node.port, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_true(hr < 0 || r.status != 200);
    if (hr == 0)
        h_resp_free(&r);

    /* everything works through TLS: login, two WebSockets, a message */
    struct tlsproxy px;
    assert_int_equal(tlsproxy_start(&px, fx.node.port, path_of("tls.crt")), 0);
    assert_int_equal(h_http(px.port, "GET", "/healthz", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    struct v1c *a = v1_member(px.port, "tls-a", V1_JSON);
    struct v1c *b = v1_member(px.port, "tls-b", V1_MSGPACK);
    assert_int_equal(v1_send(a, "join", json_pack("{s:s}", "room", "secure")), 0);
    assert_int_equal(v1_send(b, "join", json_pack("{s:s}", "room", "secure")), 0);
    json_t *ev = v1_wait(a, V1_WAIT, "joined", NULL);
    V1_MUST(a, ev, "joined");
    json_decref(ev);
    ev = v1_wait(b, V1_WAIT, "joined", NULL);
    V1_MUST(b, ev, "joined");
    json_decref(ev);
    assert_int_equal(v1_send(a, "send", json_pack("{s:s, s:s, s:s}", "room", "secure", "id",
                                                  "t-1", "message", "over TLS")),
                     0);
    ev = v1_wait(b, V1_WAIT, "new_message", "message", "over TLS", NULL);
    V1_MUST(b, ev, "the message over TLS");
    json_decref(ev);
    v1_close(a);
    v1_close(b);
    tlsproxy_stop(&px);

    /* a TCP connection that never starts TLS is closed in HANDSHAKE_TIMEOUT */
    int fd = h_tcp_connect(fx.node.port, 0);
    char buf[64];
    int64_t t0 = h_now_ms();
    ssize_t n = recv(fd, buf, sizeof buf, 0); /* 5 s receive timeout */
    int64_t ms = h_now_ms() - t0;
    close(fd);
    if (n != 0 || ms > 4500)
        fail_msg("a silent TLS connection: recv %zd after %lld ms", n, (long long)ms);
}

/* Settings that cannot work stop the gateway before it serves anything. */
static void expect_exit(const char *const extra[], const char *mentions)
{
    static int k;
    const char *env[12] = {"JWT_SECRET=" H_JWT_SECRET, "BROKERS=1", "LISTEN_ADDR=127.0.0.1"};
    int n = 3;
    char port[32], run[512];
    snprintf(port, sizeof port, "PORT=%d", h_free_port());
    snprintf(run, sizeof run, "RUN_DIR=%s/run-%d", h_tmpdir(), k);
    env[n++] = port;
    env[n++] = run;
    for (int i = 0; extra[i]; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    char name[32];
    snprintf(name, sizeof name, "sec-gateway-%d", k++);
    char *argv[] = {(char *)h_bin("gateway"), NULL};
    struct h_proc p;
    assert_int_equal(h_spawn(&p, name, h_tmpdir(), argv, env), 0);
    int status = h_wait_exit(&p, 10000);
    if (status == -1)
        h_stop(&p, SIGKILL, 1000);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) == 0 ||
        !h_log_contains(&p, mentions, 0)) {
        h_dump_log(&p, 10);
        fail_msg("expected an exit mentioning \"%s\"", mentions);
    }
}

static void test_settings_that_do_not_fit_stop_the_gateway(void **state)
{
    (void)state;
    char pub[600], priv_other[600], cert[600], garbage[600], key[600];
    snprintf(pub, sizeof pub, "JWT_PUBLIC_KEY=%s", path_of("rsa.pub"));
    snprintf(priv_other, sizeof priv_other, "JWT_PRIVATE_KEY=%s", path_of("other.key"));
    snprintf(cert, sizeof cert, "TLS_CERT=%s", path_of("tls.crt"));
    snprintf(key, sizeof key, "TLS_KEY=%s", path_of("rogue.key"));
    sh("echo not a pem > %s", path_of("garbage.pem"));
    snprintf(garbage, sizeof garbage, "JWT_PUBLIC_KEY=%s", path_of("garbage.pem"));

    const char *a[] = {"JWT_ALG=RS256", NULL};
    expect_exit(a, "JWT_ALG=RS256 needs JWT_PUBLIC_KEY");
    const char *b[] = {"JWT_ALG=none", NULL};
    expect_exit(b, "JWT_ALG=\"none\" is invalid");
    const char *c[] = {"JWT_ALG=RS256", "JWT_PUBLIC_KEY=/nonexistent/key.pem", NULL};
    expect_exit(c, "JWT_PUBLIC_KEY=\"/nonexistent/key.pem\" is invalid: expected a readable file");
    const char *d[] = {"JWT_ALG=RS256", pub, priv_other, NULL};
    expect_exit(d, "the private key does not match the public key");
    const char *e[] = {"JWT_ALG=HS256", pub, NULL};
    expect_exit(e, "JWT_PUBLIC_KEY and JWT_PRIVATE_KEY are for RS*/ES* algorithms");
    const char *f[] = {cert, NULL};
    expect_exit(f, "TLS_CERT and TLS_KEY go together");
    const char *g[] = {cert, key, NULL}; /* a key of another certificate */
    expect_exit(g, "TLS_CERT and TLS_KEY are a matching PEM certificate and key");
    const char *h[] = {"JWT_ALG=RS256", garbage, NULL};
    expect_exit(h, "cannot set up RS256 token verification");
    const char *i[] = {"JWT_USER_CLAIM=a b", NULL};
    expect_exit(i, "JWT_USER_CLAIM=\"a b\" is invalid");
}

/* The broker makes RUN_DIR private whatever it found, and its socket is
 * 0660: nobody but the service's user and group can reach a broker. */
static void test_run_dir_is_private(void **state)
{
    (void)state;
    struct h_redis redis;
    assert_int_equal(h_redis_start(&redis, h_tmpdir()), 0);
    char open_dir[512], fresh_dir[512], env_run[2][600], env_redis[400];
    snprintf(open_dir, sizeof open_dir, "%s/open-run", h_tmpdir());
    snprintf(fresh_dir, sizeof fresh_dir, "%s/fresh-run", h_tmpdir());
    assert_int_equal(mkdir(open_dir, 0777), 0);
    assert_int_equal(chmod(open_dir, 0777), 0); /* whatever the umask */
    snprintf(env_run[0], sizeof env_run[0], "RUN_DIR=%s", open_dir);
    snprintf(env_run[1], sizeof env_run[1], "RUN_DIR=%s", fresh_dir);
    snprintf(env_redis, sizeof env_redis, "REDIS_ADDR=%s", redis.addr);
    const char *dirs[] = {open_dir, fresh_dir};
    for (int i = 0; i < 2; i++) {
        const char *env[] = {env_run[i], env_redis, "BROKERS=1", NULL};
        char *argv[] = {(char *)h_bin("broker"), "--shard", "0", "--shards", "1", NULL};
        struct h_proc p;
        char name[32];
        snprintf(name, sizeof name, "private-broker-%d", i);
        assert_int_equal(h_spawn(&p, name, h_tmpdir(), argv, env), 0);
        assert_true(h_log_contains(&p, "listening on", 10000));
        struct stat st;
        char sock[600];
        assert_int_equal(stat(dirs[i], &st), 0);
        if (st.st_mode & 0007)
            fail_msg("%s is mode %o after the broker started", dirs[i], st.st_mode & 07777);
        snprintf(sock, sizeof sock, "%s/broker-0.sock", dirs[i]);
        assert_int_equal(stat(sock, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0660);
        assert_int_equal(h_stop_clean(&p), 0);
    }
    h_redis_stop(&redis);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rs256_tokens_from_an_identity_provider, teardown),
        cmocka_unit_test_teardown(test_es256_with_guest_tokens_signed_by_the_private_key, teardown),
        cmocka_unit_test_teardown(test_https_and_wss, teardown),
        cmocka_unit_test_teardown(test_tls_bounds_frames_and_pongs, teardown),
        cmocka_unit_test_teardown(test_nothing_follows_lws_close_over_tls, teardown),
        cmocka_unit_test_teardown(test_failed_tls_setups_do_not_free_places, teardown),
        cmocka_unit_test_teardown(test_a_paced_message_goes_out_over_tls, teardown),
        cmocka_unit_test_teardown(test_tls_max_conns_bounds_a_process, teardown),
        cmocka_unit_test(test_settings_that_do_not_fit_stop_the_gateway),
        cmocka_unit_test(test_run_dir_is_private),
    };
    return h_finish(cmocka_run_group_tests(tests, make_keys, NULL));
}
