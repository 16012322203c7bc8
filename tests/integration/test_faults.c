/* Faults under traffic, with protocol-v1 clients that recover the way
 * docs/protocol.md tells them to (faults.h): a broker SIGKILLed and
 * restarted, Redis SIGKILLed and restarted on the same socket with its data
 * kept, a gateway SIGKILLed under its clients, and a slow consumer in a busy
 * room. Each asserts zero loss of acknowledged messages: every acked send
 * reaches every member exactly once, in id order without a gap, and every
 * send that was not acked was answered with an error (or its connection
 * ended), never silence. test_faults_cluster.c restarts a whole node of two. */
#include "faults.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* Like h_redis_start, but every write goes to an append-only file that is
 * fsynced before Redis answers (appendfsync always: Redis writes the file
 * before any reply or pub/sub delivery leaves), so a SIGKILL loses nothing
 * that was acknowledged. Called again after the process is gone, it starts
 * Redis on the same socket, port and directory, with the data kept. */
static int f_redis_start_aof(struct h_redis *r, const char *dir)
{
    if (!r->port) {
        snprintf(r->sock, sizeof r->sock, "%s/redis.sock", dir);
        snprintf(r->addr, sizeof r->addr, "unix:%s", r->sock);
        r->port = h_free_port();
        snprintf(r->tcp_addr, sizeof r->tcp_addr, "127.0.0.1:%d", r->port);
    }
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    char *argv[] = {"/usr/bin/redis-server", "--port", port, "--bind", "127.0.0.1",
                    "--unixsocket", r->sock, "--unixsocketperm", "700", "--save", "",
                    "--appendonly", "yes", "--appendfsync", "always", "--dir", (char *)dir,
                    NULL};
    static int n;
    char name[32];
    snprintf(name, sizeof name, "redis-aof-%d", n++);
    if (h_spawn(&r->proc, name, dir, argv, NULL) < 0)
        return -1;
    static const char *const ping[] = {"PING", NULL};
    for (int64_t end = h_now_ms() + 10000; h_now_ms() < end; h_sleep_ms(20)) {
        if (!h_alive(&r->proc))
            break;
        if (h_redis_cli(r, ping) == 0)
            return 0;
    }
    h_dump_log(&r->proc, 20);
    return -1;
}

static int f_cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of a client's latencies in `phase`, in ms;
 * -1 without samples. */
static double f_percentile(struct f_client *fc, int phase, double p)
{
    size_t n = fc->nlat[phase];
    if (!n)
        return -1;
    qsort(fc->lat_us[phase], n, sizeof(int), f_cmp_int);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return fc->lat_us[phase][i] / 1000.0;
}

/* A TCP proxy in front of Redis (in a child process) that can mute the
 * replies (SIGUSR1: commands still reach Redis and run, nothing comes back)
 * and then cut every connection (SIGUSR2: RST; new connections pass
 * normally again): a Redis connection lost with commands in flight that did
 * run. */
static volatile sig_atomic_t cp_mute, cp_cut;
static void cp_on_mute(int sig) { (void)sig; cp_mute = 1; }
static void cp_on_cut(int sig) { (void)sig; cp_cut = 1; }

static void cp_close(int fd)
{
    struct linger l = {1, 0}; /* RST, as when a server dies */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

/* Copies what one side has to the other (or drops it while muted); false at
 * the end of either. */
static bool cp_copy(int from, int to, bool drop)
{
    char buf[16384];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0)
        return n < 0 && errno == EINTR;
    return drop || h_send_all(to, buf, (size_t)n) == 0;
}

static void cp_child(int lfd, int redis_port)
{
    enum { MAXC = 32 };
    int cfd[MAXC], ufd[MAXC], n = 0;
    for (;;) {
        if (cp_cut) {
            for (int i = 0; i < n; i++)
                cp_close(cfd[i]), cp_close(ufd[i]);
            n = 0;
            cp_cut = cp_mute = 0;
        }
        struct pollfd p[1 + 2 * MAXC] = {{lfd, POLLIN, 0}};
        for (int i = 0; i < n; i++) {
            p[1 + 2 * i] = (struct pollfd){cfd[i], POLLIN, 0};
            p[2 + 2 * i] = (struct pollfd){ufd[i], POLLIN, 0};
        }
        if (poll(p, (nfds_t)(1 + 2 * n), 50) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            bool ok = !(p[1 + 2 * i].revents) || cp_copy(cfd[i], ufd[i], false);
            ok = ok && (!(p[2 + 2 * i].revents) || cp_copy(ufd[i], cfd[i], cp_mute));
            if (!ok) {
                close(cfd[i]), close(ufd[i]);
                cfd[i] = ufd[i] = -1;
            }
        }
        int k = 0;
        for (int i = 0; i < n; i++)
            if (cfd[i] >= 0)
                cfd[k] = cfd[i], ufd[k] = ufd[i], k++;
        n = k;
        if ((p[0].revents & POLLIN) && n < MAXC) {
            int c = accept(lfd, NULL, NULL), u = c >= 0 ? h_tcp_connect(redis_port, 0) : -1;
            if (u >= 0) {
                struct timeval none = {0, 0}; /* h_tcp_connect sets 5 s timeouts */
                setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
                cfd[n] = c, ufd[n++] = u;
            } else if (c >= 0) {
                close(c);
            }
        }
    }
}

/* Starts the proxy; returns its pid and sets *port. */
static pid_t cutproxy_start(int redis_port, int *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 16) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    *port = ntohs(sa.sin_port);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        h_die_with_parent(parent); /* its teardown does not run when the start fails */
        signal(SIGUSR1, cp_on_mute);
        signal(SIGUSR2, cp_on_cut);
        cp_child(lfd, redis_port);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static struct h_redis redis;
static struct h_node node;
static struct h_node gw2; /* a second gateway process of `node`, on its own port */
static struct f_world world;
static pid_t proxy_pid; /* the cut-proxy, when a test runs one */

/* Enough history that every recovering join can replay what it missed; no
 * per-connection request rate limit (the test paces itself, but resends
 * after an outage come in bursts). */
static const char *const base_env[] = {"HISTORY_SIZE=5000", "RATE_MSGS=0", NULL};

static int node_up(const char *const env[])
{
    h_node_init(&node, redis.addr);
    for (int i = 0; env[i]; i++)
        node.extra_env[i] = env[i];
    memset(&gw2, 0, sizeof gw2);
    return h_node_start(&node);
}

static int up(void **state)
{
    (void)state;
    memset(&redis, 0, sizeof redis);
    return h_redis_start(&redis, h_tmpdir()) < 0 ? -1 : node_up(base_env);
}

static const char *aof_dir(void)
{
    static char dir[300];
    snprintf(dir, sizeof dir, "%s/redis-aof", h_tmpdir());
    mkdir(dir, 0700);
    return dir;
}

static int up_aof(void **state)
{
    (void)state;
    memset(&redis, 0, sizeof redis);
    return f_redis_start_aof(&redis, aof_dir()) < 0 ? -1 : node_up(base_env);
}

static int up_two_gateways(void **state)
{
    if (up(state) < 0)
        return -1;
    gw2 = node;
    gw2.port = h_free_port();
    gw2.gateway_name = "gateway-2";
    return h_gateway_start(&gw2) < 0 || h_wait_health(gw2.port, 200, 15000) < 0 ? -1 : 0;
}

/* A node that reaches Redis through the cut-proxy. */
static int up_behind_proxy(void **state)
{
    (void)state;
    static char addr[40];
    int port;
    memset(&redis, 0, sizeof redis);
    if (h_redis_start(&redis, h_tmpdir()) < 0 || (proxy_pid = cutproxy_start(redis.port, &port)) < 0)
        return -1;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    h_node_init(&node, addr);
    for (int i = 0; base_env[i]; i++)
        node.extra_env[i] = base_env[i];
    memset(&gw2, 0, sizeof gw2);
    return h_node_start(&node);
}

/* The slow consumer's node: a small client queue bound. */
static int up_small_queues(void **state)
{
    (void)state;
    static const char *const env[] = {"HISTORY_SIZE=5000", "RATE_MSGS=0",
                                      "MAX_CLIENT_QUEUE_BYTES=65536", NULL};
    memset(&redis, 0, sizeof redis);
    return h_redis_start(&redis, h_tmpdir()) < 0 ? -1 : node_up(env);
}

static int down(void **state)
{
    (void)state;
    f_world_free(&world);
    h_node_dump_logs(&node);
    int bad = 0;
    if (gw2.port) {
        h_dump_log(&gw2.gateway, 25);
        bad += h_stop_clean(&gw2.gateway);
    }
    bad += h_node_stop(&node);
    h_redis_stop(&redis);
    if (proxy_pid > 0) {
        kill(proxy_pid, SIGKILL);
        h_reap_killed(proxy_pid, "Redis proxy", NULL);
        proxy_pid = 0;
    }
    return bad ? -1 : 0;
}

/* Two rooms, one on each broker of the node. */
static void two_rooms(const char *prefix, char *r0, char *r1, size_t cap)
{
    char p[16];
    snprintf(p, sizeof p, "%.8s-a", prefix);
    room_on_shard(r0, cap, p, 0, 2);
    snprintf(p, sizeof p, "%.8s-b", prefix);
    room_on_shard(r1, cap, p, 1, 2);
}

/* Six clients in both rooms, four of them sending (alternating rooms) every
 * 40 ms: about 100 messages a second, each to six members. */
static void populate(const char *prefix, const int *ports, int nports)
{
    for (int i = 0; i < 6; i++) {
        char user[24];
        snprintf(user, sizeof user, "%s%d", prefix, i);
        f_client_add(&world, user, ports, nports, 3, i < 4);
    }
}

static void ledger_and_settled(bool settled)
{
    F_ASSERT_LEDGER(&world);
    if (!settled)
        fail_msg("the outboxes did not drain or the members did not catch up within the deadline");
}

static void test_broker_killed_under_traffic(void **state)
{
    (void)state;
    char ra[32], rb[32];
    two_rooms("kb", ra, rb, sizeof ra);
    const char *rooms[] = {ra, rb};
    f_world_init(&world, rooms, 2);
    world.interval_ms = 40;
    populate("kb", &node.port, 1);
    f_start(&world);
    world.sending = true;
    f_run(&world, 1000);

    f_note(&world, "SIGKILL broker 1 (room %s)", rb);
    h_stop(&node.broker[1], SIGKILL, 5000);
    assert_true(f_run_until_health(&world, node.port, 503, 10000));
    f_run(&world, 1500);
    int errors = f_errors(&world, NULL);
    f_note(&world, "restarting broker 1; %d errors so far", errors);
    assert_int_equal(h_broker_start(&node, 1), 0);
    assert_true(f_run_until_health(&world, node.port, 200, 15000));
    f_note(&world, "the gateway is linked again");
    f_run(&world, 1500);
    ledger_and_settled(f_settle(&world, 20000));

    /* Sends into the dead shard were answered with errors, and nobody had to
     * reconnect: the gateway re-registered the memberships itself. */
    assert_true(errors > 0);
    assert_int_equal(f_reconnects(&world, NULL), 0);
}

static void test_redis_killed_and_restarted_with_its_data(void **state)
{
    (void)state;
    char ra[32], rb[32];
    two_rooms("kr", ra, rb, sizeof ra);
    const char *rooms[] = {ra, rb};
    f_world_init(&world, rooms, 2);
    world.interval_ms = 40;
    populate("kr", &node.port, 1);
    f_start(&world);
    world.sending = true;
    f_run(&world, 1000);

    long m0 = h_log_mark(&node.broker[0]), m1 = h_log_mark(&node.broker[1]);
    f_note(&world, "SIGKILL redis");
    h_stop(&redis.proc, SIGKILL, 5000);
    f_run(&world, 2500);
    int errors = f_errors(&world, NULL);
    f_note(&world, "starting redis again on the same socket and data; %d errors so far", errors);
    assert_int_equal(f_redis_start_aof(&redis, aof_dir()), 0);
    assert_true(f_run_until_log(&world, &node.broker[0], m0, "ready: Redis connected", 15000));
    assert_true(f_run_until_log(&world, &node.broker[1], m1, "ready: Redis connected", 15000));
    f_note(&world, "both brokers are ready again");
    f_run(&world, 2000);
    ledger_and_settled(f_settle(&world, 20000));

    assert_true(errors > 0);
    /* The data was kept: one epoch throughout, and no client reconnected. */
    for (int i = 0; i < world.n; i++)
        for (int r = 0; r < world.cl[i]->nrooms; r++)
            assert_int_equal(world.cl[i]->room[r].epoch_no, 1);
    assert_int_equal(f_reconnects(&world, NULL), 0);
}

/* The brokers' Redis connections drop while sends they wrote have run in
 * Redis (stored, published) but their replies were lost. The outcome of
 * those sends is unknown to the broker; docs/protocol.md says such a send is
 * answered `timeout` ("the outcome is unknown"), while `unavailable` means
 * "nothing was done". The ledger flags a send whose only errors were
 * `unavailable` yet whose message was stored by one of those attempts.
 *
 * This was a server bug: the broker answered -ECONNRESET ("the Redis
 * connection dropped; the outcome is unknown") with code `unavailable`. It
 * is `timeout` now (send_fail in broker/requests.c). No message was lost or
 * doubled for a client that resends with the same id, but one that took
 * `unavailable` at its word (gave up, or resent under a new id) was told
 * nothing happened about a message every member received. */
static void test_redis_connection_cut_with_sends_in_flight(void **state)
{
    (void)state;
    char ra[32], rb[32];
    two_rooms("cut", ra, rb, sizeof ra);
    const char *rooms[] = {ra, rb};
    f_world_init(&world, rooms, 2);
    world.interval_ms = 40;
    populate("cut", &node.port, 1);
    f_start(&world);
    world.sending = true;
    f_run(&world, 1000);

    long m0 = h_log_mark(&node.broker[0]), m1 = h_log_mark(&node.broker[1]);
    f_note(&world, "muting Redis's replies");
    kill(proxy_pid, SIGUSR1);
    f_run(&world, 400);
    f_note(&world, "cutting every Redis connection");
    kill(proxy_pid, SIGUSR2);
    assert_true(f_run_until_log(&world, &node.broker[0], m0, "ready: Redis connected", 15000));
    assert_true(f_run_until_log(&world, &node.broker[1], m1, "ready: Redis connected", 15000));
    f_note(&world, "both brokers are ready again");
    f_run(&world, 1500);
    ledger_and_settled(f_settle(&world, 20000));
    assert_true(f_errors(&world, NULL) > 0);
}


static void test_gateway_killed_clients_recover_elsewhere(void **state)
{
    (void)state;
    char ra[32], rb[32];
    two_rooms("kg", ra, rb, sizeof ra);
    const char *rooms[] = {ra, rb};
    f_world_init(&world, rooms, 2);
    world.interval_ms = 40;
    /* "kgA*" start on the gateway that dies and fall back to the other;
     * "kgB*" are on the other throughout. Two senders on each. */
    int to_a[] = {node.port, gw2.port}, to_b[] = {gw2.port, node.port};
    for (int i = 0; i < 3; i++) {
        char user[24];
        snprintf(user, sizeof user, "kgA%d", i);
        f_client_add(&world, user, to_a, 2, 3, i < 2);
        snprintf(user, sizeof user, "kgB%d", i);
        f_client_add(&world, user, to_b, 2, 3, i < 2);
    }
    f_start(&world);
    world.sending = true;
    f_run(&world, 1000);

    /* Broker 0 stalls first, so both gateways have sends for room A on its
     * link when gateway 1 dies; it resumes, stores them and answers a dead
     * link. Their senders must resend with the same ids: one message each. */
    stop_process(&node.broker[0]);
    f_run(&world, 300);
    f_note(&world, "SIGKILL gateway 1 (port %d), broker 0 stopped", node.port);
    h_stop(&node.gateway, SIGKILL, 5000);
    h_kill(&node.broker[0], SIGCONT);
    f_run(&world, 200);
    assert_true(f_run_until(&world, f_all_joined, &world, 20, 10000));
    f_note(&world, "every client is in its rooms again");
    f_run(&world, 1500);
    ledger_and_settled(f_settle(&world, 20000));

    /* Each client of the dead gateway reconnected and recovered both rooms
     * by id; the others never noticed. */
    for (int i = 0; i < world.n; i++)
        if (!strncmp(world.cl[i]->user, "kgA", 3) && world.cl[i]->reconnects < 1)
            fail_msg("%s did not reconnect", world.cl[i]->user);
    assert_true(f_recovered_joins(&world, "kgA") >= 3 * 2);
    assert_int_equal(f_reconnects(&world, "kgB"), 0);
}

/* A v1 connection with a tiny receive buffer that reads until it is in
 * `room` and then never again. */
static struct wsc *stalled_member(const char *room)
{
    char *token = h_login(node.port, "stalled");
    assert_non_null(token);
    char path[4200];
    snprintf(path, sizeof path, "/ws?token=%s", token);
    free(token);
    struct wsc *x =
        wsc_connect(node.port, path, "Sec-WebSocket-Protocol: confab.v1\r\n", 4096, NULL);
    assert_non_null(x);
    char join[128];
    snprintf(join, sizeof join, "{\"type\":\"join\",\"payload\":{\"room\":\"%s\",\"limit\":0}}",
             room);
    assert_int_equal(wsc_send_text(x, join), 0);
    for (int64_t end = h_now_ms() + V1_WAIT; h_now_ms() < end;) {
        f_tick(&world, 2);
        json_t *ev = wsc_recv_json(x, 0);
        bool joined = ev && !strcmp(json_string_value(json_object_get(ev, "type")), "joined");
        json_decref(ev);
        if (joined)
            return x;
    }
    fail_msg("the stalled member never joined");
    return NULL;
}

struct rss_watch {
    pid_t pid;
    long max_kib;
    const struct h_proc *log;
    long mark;
};

static bool dropped_slow_one(void *ud)
{
    struct rss_watch *r = ud;
    long kib = h_status_kib(r->pid, "VmRSS:");
    if (kib > r->max_kib)
        r->max_kib = kib;
    return h_log_contains_from(r->log, r->mark, "slow consumer", 0);
}

static bool just_sample_rss(void *ud)
{
    dropped_slow_one(ud);
    return false;
}

/* What the gateway's resident set may grow by while one client stalls and
 * right after it is dropped: it holds at most MAX_CLIENT_QUEUE_BYTES (64
 * KiB) for the stalled member, the readers' queues (same bound each)
 * reference the same message buffers, and lws's per-connection buffers and
 * malloc's arena slack add a few hundred KiB at most: 2 MiB is several times
 * all of that. (What the stall pushes before the drop, ~2 MiB, is what the
 * kernel's socket buffers take plus the queue bound; a gateway without the
 * bound would never drop the member, which the test asserts too.) Under ASan
 * freed memory sits in the allocator's quarantine (256 MiB by default), so
 * RSS follows bytes allocated, not bytes held: there the bound only catches
 * a runaway. */
#if defined(__SANITIZE_ADDRESS__)
enum { RSS_GROWTH_KIB = 192 * 1024 };
#else
enum { RSS_GROWTH_KIB = 2 * 1024 };
#endif
enum { P99_MS = 500 };

static void test_slow_consumer_dropped_memory_bounded_others_on_time(void **state)
{
    (void)state;
    const char *rooms[] = {"busy"};
    f_world_init(&world, rooms, 1);
    world.interval_ms = 10; /* ~100 messages of ~3 KB a second */
    world.pad = 3000;
    int ports[] = {node.port};
    f_client_add(&world, "busy-s", ports, 1, 1, true);
    f_client_add(&world, "busy-r", ports, 1, 1, false)->measure = true;
    f_client_add(&world, "busy-q", ports, 1, 1, false)->measure = true;
    f_start(&world);
    world.sending = true;

    /* Phase 0: the room without a stalled member. */
    struct rss_watch rw = {node.gateway.pid, 0, &node.gateway, 0};
    f_run_until(&world, just_sample_rss, &rw, 100, 2000);
    long base_kib = rw.max_kib;

    /* Phase 1: a member stops reading until the gateway drops it. */
    struct wsc *x = stalled_member("busy");
    int sends_before = world.cl[0]->nsends;
    int64_t t0 = h_now_ms();
    world.phase = 1;
    rw.mark = h_log_mark(&node.gateway);
    rw.max_kib = 0;
    bool dropped = f_run_until(&world, dropped_slow_one, &rw, 100, 30000);
    int64_t stall_ms = h_now_ms() - t0;
    int stall_sends = world.cl[0]->nsends - sends_before;
    world.phase = 0;
    f_run_until(&world, just_sample_rss, &rw, 100, 1000); /* and just after */
    f_note(&world,
           "stalled member %s after %lld ms and %d messages (~%d KiB); gateway RSS %ld KiB "
           "before, at most %ld KiB during the stall and the second after",
           dropped ? "dropped" : "NOT dropped", (long long)stall_ms, stall_sends,
           stall_sends * (world.pad + 16) / 1024, base_kib, rw.max_kib);
    ledger_and_settled(f_settle(&world, 20000));

    assert_true(dropped);
    int code = wsc_wait_close(x, 10000); /* after what was queued for it */
    wsc_abort(x);
    printf("the stalled member's connection ended with close code %d\n", code);
    assert_true(code == 1008 || code == 0);
    assert_true(base_kib > 0);
    if (rw.max_kib > base_kib + RSS_GROWTH_KIB)
        fail_msg("gateway RSS grew from %ld to %ld KiB during the stall (bound +%d KiB)", base_kib,
                 rw.max_kib, (int)RSS_GROWTH_KIB);
    for (int i = 1; i <= 2; i++) {
        struct f_client *fc = world.cl[i];
        double p0 = f_percentile(fc, 0, 99), p1 = f_percentile(fc, 1, 99);
        printf("%s: p99 latency %.1f ms without a stalled member (%zu samples), %.1f ms during "
               "the stall (%zu samples)\n",
               fc->user, p0, fc->nlat[0], p1, fc->nlat[1]);
        assert_true(fc->nlat[0] > 100 && fc->nlat[1] > 10);
        if (p0 > P99_MS || p1 > P99_MS)
            fail_msg("%s: p99 latency over %d ms", fc->user, P99_MS);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broker_killed_under_traffic, up, down),
        cmocka_unit_test_setup_teardown(test_redis_killed_and_restarted_with_its_data, up_aof,
                                        down),
        cmocka_unit_test_setup_teardown(test_redis_connection_cut_with_sends_in_flight,
                                        up_behind_proxy, down),
        cmocka_unit_test_setup_teardown(test_gateway_killed_clients_recover_elsewhere,
                                        up_two_gateways, down),
        cmocka_unit_test_setup_teardown(test_slow_consumer_dropped_memory_bounded_others_on_time,
                                        up_small_queues, down),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
