/* `make run-all`'s script: one command brings up a whole node (private
 * Redis, brokers, gateway workers), restarts what dies, and stops everything
 * on SIGTERM with exit status 0. Two of them sharing a Redis are one cluster. */
#include "common.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* `extra`: one more setting, or NULL. */
static void start_run_all(struct h_proc *p, const char *name, int port, const char *run_dir,
                          const char *redis_addr, const char *extra)
{
    char script[600], port_env[32], dir_env[400], build_env[600], redis_env[400];
    snprintf(script, sizeof script, "%s/scripts/run-all.sh", h_source_dir());
    snprintf(port_env, sizeof port_env, "PORT=%d", port);
    snprintf(dir_env, sizeof dir_env, "RUN_DIR=%s", run_dir);
    snprintf(build_env, sizeof build_env, "BUILD_DIR=%s", h_bin("gateway"));
    /* BUILD_DIR is the build tree: strip "/gateway/confab-gateway". */
    *strstr(build_env, "/gateway/confab-gateway") = '\0';
    const char *env[8] = {port_env, dir_env, build_env, "LISTEN_ADDR=127.0.0.1", NULL};
    int k = 4;
    if (redis_addr) {
        snprintf(redis_env, sizeof redis_env, "REDIS_ADDR=%s", redis_addr);
        env[k++] = redis_env;
    }
    env[k] = extra;
    char *argv[] = {"/bin/bash", script, NULL};
    assert_int_equal(h_spawn(p, name, h_tmpdir(), argv, env), 0);
}

static int worker_pid(int port)
{
    struct h_resp r;
    if (h_http(port, "GET", "/healthz", NULL, NULL, 0, &r) < 0)
        return 0;
    json_t *j = json_loads(r.body, 0, NULL);
    int pid = r.status == 200 ? (int)json_integer_value(json_object_get(j, "pid")) : 0;
    json_decref(j);
    h_resp_free(&r);
    return pid;
}

static bool unix_listening(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%.100s", path);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static void chat(int port_a, int port_b)
{
    struct wsc *a = wsc_connect_user(port_a, "alice"), *b = wsc_connect_user(port_b, "bob");
    assert_non_null(a);
    assert_non_null(b);
    /* both start in "general"; wait until b's join is live. On a loaded
     * machine a ping's echo can take longer than the second between them,
     * so later pings may still come back after the first: they are told
     * apart by their text below, not by counting. */
    int64_t deadline = h_now_ms() + 10000;
    for (;;) {
        assert_int_equal(wsc_send_event(b, "send_message", "message", "ping"), 0);
        json_t *ev = wsc_recv_json(b, 1000);
        if (ev) {
            json_decref(ev);
            break;
        }
        assert_true(h_now_ms() < deadline);
    }
    drain_until_quiet(a, 200);
    assert_int_equal(wsc_send_event(a, "send_message", "message", "hello from a"), 0);
    for (;;) {
        json_t *ev = wsc_recv_json(b, 5000);
        assert_non_null(ev);
        const char *m = payload_str(ev, "message"), *from = payload_str(ev, "from");
        if (m && from && !strcmp(m, "ping") && !strcmp(from, "bob")) {
            json_decref(ev);
            continue;
        }
        assert_string_equal(json_string_value(json_object_get(ev, "type")), "new_message");
        assert_non_null(m);
        assert_non_null(from);
        assert_string_equal(m, "hello from a");
        assert_string_equal(from, "alice");
        json_decref(ev);
        break;
    }
    wsc_close(a);
    wsc_close(b);
}

/* The two nodes of the test below, stopped by its teardown when a check
 * failed half way: the harness kills a spawned process when the test dies,
 * but not the script's own children, which would keep running. */
static struct h_proc ra, rb;

static int stop_nodes(void **state)
{
    (void)state;
    h_stop(&rb, SIGTERM, 20000);
    h_stop(&ra, SIGTERM, 20000);
    return 0;
}

static void test_run_all_runs_restarts_and_stops(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/run-a", h_tmpdir());
    int port = h_free_port();
    start_run_all(&ra, "run-all-a", port, dir, NULL, NULL);
    if (!h_log_contains(&ra, "confab is up: http://localhost:", 30000)) {
        h_dump_log(&ra, 40);
        fail_msg("run-all did not come up");
    }
    assert_true(h_log_contains(&ra, "DEVELOPMENT secret", 100)); /* said loudly */
    chat(port, port);

    /* A second run-all on the same port stops at once and says why, where
     * its gateways would have shared the port (or been refused it) and the
     * first one's would have answered its health check. */
    char dir_same[400];
    snprintf(dir_same, sizeof dir_same, "%s/run-same-port", h_tmpdir());
    struct h_proc same;
    start_run_all(&same, "run-all-same-port", port, dir_same, NULL, NULL);
    int same_status = h_wait_exit(&same, 10000);
    if (same_status == -1)
        h_stop(&same, SIGTERM, 20000);
    if (same_status == -1 || !WIFEXITED(same_status) || WEXITSTATUS(same_status) != 1 ||
        !h_log_contains(&same, "is already in use", 0) || h_log_contains(&same, "confab is up", 0)) {
        h_dump_log(&same, 20);
        fail_msg("a second run-all on port %d did not stop with the reason", port);
    }
    chat(port, port);

    /* ... and so does one in the same RUN_DIR on another port, where its
     * Redis would have taken the first one's socket (and removed it when
     * stopping), and its gateways linked to the first one's brokers. */
    start_run_all(&same, "run-all-same-dir", h_free_port(), dir, NULL, NULL);
    same_status = h_wait_exit(&same, 10000);
    if (same_status == -1)
        h_stop(&same, SIGTERM, 20000);
    if (same_status == -1 || !WIFEXITED(same_status) || WEXITSTATUS(same_status) != 1 ||
        !h_log_contains(&same, "is in use by another run-all", 0) ||
        h_log_contains(&same, "private Redis", 0)) {
        h_dump_log(&same, 20);
        fail_msg("a second run-all in %s did not stop with the reason", dir);
    }
    chat(port, port);

    /* A second node of the same cluster: same Redis, other port and dir. */
    char dir2[400], redis_addr[450];
    snprintf(dir2, sizeof dir2, "%s/run-b", h_tmpdir());
    snprintf(redis_addr, sizeof redis_addr, "unix:%s/redis.sock", dir);
    int port2 = h_free_port();
    start_run_all(&rb, "run-all-b", port2, dir2, redis_addr, NULL);
    assert_true(h_log_contains(&rb, "confab is up", 30000));
    assert_false(h_log_contains(&rb, "private Redis", 10));
    chat(port, port2);
    chat(port2, port);
    assert_int_equal(h_stop(&rb, SIGTERM, 20000) >= 0, 1);

    /* A gateway worker that dies is replaced. */
    int victim = worker_pid(port);
    assert_true(victim > 0);
    kill(victim, SIGKILL);
    int64_t deadline = h_now_ms() + 20000;
    int seen_other = 0;
    while (h_now_ms() < deadline && !seen_other) {
        int pid = worker_pid(port);
        /* two workers: keep asking until a new pid shows up */
        if (pid > 0 && pid != victim && kill(victim, 0) < 0) {
            static int pids[8], n;
            bool known = false;
            for (int i = 0; i < n; i++)
                known |= pids[i] == pid;
            if (!known && n < 8)
                pids[n++] = pid;
            seen_other = n >= 2;
        }
        h_sleep_ms(20);
    }
    assert_true(seen_other);
    assert_true(h_log_contains(&ra, "restarting it", 1000));
    chat(port, port);

    /* SIGTERM stops everything and exits 0. */
    int last = worker_pid(port);
    int status = h_stop(&ra, SIGTERM, 20000);
    assert_true(status >= 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(worker_pid(port), 0);
    assert_true(kill(last, 0) < 0);
    char sock[500];
    snprintf(sock, sizeof sock, "%s/broker-0.sock", dir);
    assert_false(unix_listening(sock));
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    assert_false(unix_listening(sock));
    /* Children log into run-all's output: no sanitizer may have spoken. */
    assert_false(h_log_contains(&ra, "ERROR: AddressSanitizer", 0));
    assert_false(h_log_contains(&ra, "ERROR: LeakSanitizer", 0));
    assert_false(h_log_contains(&ra, "runtime error:", 0));
    h_dump_log(&ra, 30);
}

/* The test below runs the script in a session of its own, whose group
 * (the spawned process' pid: setsid does not fork a non-leader) the
 * teardown ends should a check fail before the test did. */
static struct h_proc bg;
static pid_t bg_group;

static int stop_bg_group(void **state)
{
    (void)state;
    if (bg_group > 0 && kill(-bg_group, SIGTERM) == 0) {
        int64_t deadline = h_now_ms() + 20000;
        while (kill(-bg_group, 0) == 0 && h_now_ms() < deadline)
            h_sleep_ms(50);
        kill(-bg_group, SIGKILL);
    }
    h_stop(&bg, SIGKILL, 5000);
    bg_group = 0;
    return 0;
}

/* Started in the background by a non-interactive shell (CI, `make run-all &`),
 * the script runs with SIGINT ignored and cannot trap it; a Ctrl-C to the
 * process group still stops the daemons, which handle it themselves. They
 * must stay stopped, and the script must end, instead of restarting them. */
static void test_run_all_in_the_background_stops_on_sigint(void **state)
{
    (void)state;
    char dir[400], script[600];
    snprintf(dir, sizeof dir, "%s/run-bg", h_tmpdir());
    snprintf(script, sizeof script, "%s/scripts/run-all.sh", h_source_dir());
    int port = h_free_port();
    char port_env[32], dir_env[450], build_env[600];
    snprintf(port_env, sizeof port_env, "PORT=%d", port);
    snprintf(dir_env, sizeof dir_env, "RUN_DIR=%s", dir);
    snprintf(build_env, sizeof build_env, "BUILD_DIR=%s", h_bin("gateway"));
    *strstr(build_env, "/gateway/confab-gateway") = '\0';
    const char *env[] = {port_env, dir_env, build_env, "LISTEN_ADDR=127.0.0.1", NULL};
    /* a session of its own, so that the whole group can be sent SIGINT */
    char *argv[] = {"/usr/bin/setsid", "--wait", "/bin/bash", "-c",
                    "\"$0\" & echo \"group $$ script $!\"; wait", script, NULL};
    assert_int_equal(h_spawn(&bg, "run-all-bg", h_tmpdir(), argv, env), 0);
    bg_group = bg.pid;
    if (!h_log_contains(&bg, "confab is up: http://localhost:", 30000)) {
        h_dump_log(&bg, 40);
        fail_msg("run-all did not come up");
    }
    FILE *f = fopen(bg.log, "r");
    assert_non_null(f);
    char line[256];
    int group = 0, pid = 0;
    while (!group && fgets(line, sizeof line, f))
        sscanf(line, "group %d script %d", &group, &pid);
    fclose(f);
    assert_true(group > 1 && pid > 1);
    int worker = worker_pid(port);
    assert_true(worker > 0);

    assert_int_equal(kill(-group, SIGINT), 0);
    /* the shell that started it dies of the SIGINT; the script must end too */
    h_wait_exit(&bg, 5000);
    int64_t deadline = h_now_ms() + 20000;
    while (kill(pid, 0) == 0 && h_now_ms() < deadline)
        h_sleep_ms(50);
    if (kill(pid, 0) == 0) {
        kill(-group, SIGKILL);
        h_stop(&bg, SIGKILL, 5000);
        h_dump_log(&bg, 30);
        fail_msg("run-all still ran 20 s after SIGINT to its group");
    }
    assert_int_equal(worker_pid(port), 0);
    assert_true(kill(worker, 0) < 0);
    assert_false(h_log_contains(&bg, "restarting in", 0));
    assert_true(h_log_contains(&bg, "stopped", 0));
}

/* A part that cannot run with its settings (status 2: here a FRONTEND_DIR
 * that is no directory, which --check-config cannot see) is not restarted
 * for ever: the script stops the node and says so, with status 2. */
static void test_run_all_stops_on_a_setting_to_change(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/run-bad-frontend", h_tmpdir());
    struct h_proc p;
    start_run_all(&p, "run-all-bad-frontend", h_free_port(), dir, NULL,
                  "FRONTEND_DIR=/nonexistent/www");
    int status = h_wait_exit(&p, 20000);
    if (status == -1)
        h_stop(&p, SIGTERM, 20000);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 2 ||
        !h_log_contains(&p, "gateways cannot run with these settings (status 2)", 0) ||
        h_log_contains(&p, "restarting in", 0)) {
        h_dump_log(&p, 30);
        fail_msg("run-all with FRONTEND_DIR=/nonexistent/www: status %d, expected it to stop "
                 "with 2 and say why",
                 status);
    }
}

/* A hang-up (the terminal went: an ssh session dropped) stops the node:
 * the daemons ignore SIGHUP, and would run on holding the ports. */
static void test_run_all_stops_on_a_hang_up(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/run-hup", h_tmpdir());
    int port = h_free_port();
    struct h_proc p;
    start_run_all(&p, "run-all-hup", port, dir, NULL, NULL);
    if (!h_log_contains(&p, "confab is up: http://localhost:", 30000)) {
        h_stop(&p, SIGTERM, 20000);
        h_dump_log(&p, 40);
        fail_msg("run-all did not come up");
    }
    int worker = worker_pid(port);
    assert_true(worker > 0);
    /* the whole tree, to end it should the daemons outlive the script */
    pid_t tree[64];
    int ntree = 1;
    tree[0] = p.pid;
    for (int i = 0; i < ntree && ntree < 64; i++)
        ntree += h_children(tree[i], tree + ntree, 64 - ntree);
    int status = h_stop(&p, SIGHUP, 20000);
    if (status == -1 || !WIFEXITED(status) || worker_pid(port) != 0 || kill(worker, 0) == 0) {
        for (int i = 0; i < ntree; i++)
            kill(tree[i], SIGKILL);
        h_dump_log(&p, 30);
        fail_msg("run-all after SIGHUP: status %d, a worker %s", status,
                 kill(worker, 0) == 0 ? "still runs" : "gone");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_run_all_runs_restarts_and_stops, stop_nodes),
        cmocka_unit_test_teardown(test_run_all_in_the_background_stops_on_sigint, stop_bg_group),
        cmocka_unit_test(test_run_all_stops_on_a_setting_to_change),
        cmocka_unit_test(test_run_all_stops_on_a_hang_up),
    };
    return h_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
