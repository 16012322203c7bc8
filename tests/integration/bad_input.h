/* Shared by the bad-input suites (test_bad_input*.c): a pair of witnesses
 * that chat across both client protocols, so that after every piece of bad
 * input a test can show that the processes are alive and that everybody
 * else was not affected. */
#ifndef TEST_INTEGRATION_BAD_INPUT_H
#define TEST_INTEGRATION_BAD_INPUT_H

#include "v1.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* A legacy client and a v1 client, both in room "witness", connected
 * before the bad input and kept across it. */
struct witness {
    struct wsc *legacy;
    struct v1c *v1;
    int round;
};

static inline void witness_open(struct witness *w, int port)
{
    w->round = 0;
    w->legacy = member(port, "witness-l", "witness");
    w->v1 = v1_member(port, "witness-v", V1_JSON);
    join_quietly(w->v1, "witness");
    ready(w->legacy, "witness-ready");
    expect_new(w->v1, "witness", "witness-ready", "witness-l");
    drain(w->legacy);
    v1_forget(w->v1);
}

/* Every process of the node is running, /healthz says ok, and the two
 * witnesses still hear each other (and nothing they did not ask for). */
static inline void witness_check(struct witness *w, struct h_node *n)
{
    assert_true(h_alive(&n->gateway));
    for (int i = 0; i < n->brokers; i++)
        assert_true(h_alive(&n->broker[i]));
    assert_int_equal(h_wait_health(n->port, 200, 5000), 0);
    char text[48];
    snprintf(text, sizeof text, "legacy says %d", ++w->round);
    say(w->legacy, text);
    expect_message(w->legacy, text, "witness-l");
    expect_new(w->v1, "witness", text, "witness-l");
    snprintf(text, sizeof text, "v1 says %d", w->round);
    send_ok(w->v1, "witness", text, NULL);
    expect_new(w->v1, "witness", text, "witness-v");
    expect_message(w->legacy, text, "witness-v");
    assert_true(wsc_quiet(w->legacy, 100));
    V1_NONE(w->v1, 0, "new_message", NULL);
    V1_NONE(w->v1, 0, "error", NULL);
    v1_forget(w->v1); /* presence of the bad clients coming and going */
}

static inline void witness_close(struct witness *w)
{
    wsc_close(w->legacy);
    v1_close(w->v1);
    w->legacy = NULL;
    w->v1 = NULL;
}

/* The node of a bad-input suite, started with `env`, with the witnesses
 * connected before any bad input; witnessed_down closes them and stops it
 * (also after a witnessed_up that failed half way). */
static inline int witnessed_up(struct h_fixture *fx, struct witness *w, const char *const *env)
{
    if (h_fixture_up(fx, env) < 0)
        return -1;
    witness_open(w, fx->node.port);
    return 0;
}

static inline int witnessed_down(struct h_fixture *fx, struct witness *w)
{
    witness_close(w);
    return h_fixture_down(fx);
}

/* True when the peer closed fd (EOF or reset) within timeout_ms; whatever
 * it sends first is read and dropped. */
static inline bool peer_closes(int fd, int timeout_ms)
{
    char buf[4096];
    for (int64_t deadline = h_now_ms() + timeout_ms; h_now_ms() < deadline;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
    }
    return false;
}

/* A string literal of msgpack bytes as {bytes, length}: they may hold NULs. */
#define MP(lit)                                                                                    \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

#endif
