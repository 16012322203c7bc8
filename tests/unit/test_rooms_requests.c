/* Unit tests for broker/rooms: requests submitted for a room, held until its
 * SUBSCRIBE is answered, run at once, or refused while the subscriber
 * connection is down; and what a lost or returning subscriber does to them.
 * (Membership and delivery are in test_rooms.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "failmalloc.h"
#include "rooms.h"

#include "rooms_fake.h"

static void test_submit_held_until_confirm(void **state)
{
    (void)state;
    join(0, "general");
    g_fake.n = 0;
    assert_int_equal(submit("general", "m1"), 0);
    assert_int_equal(submit("general", "m22"), 0);
    assert_int_equal(submit("general", "m333"), 0);
    assert_int_equal(g_fake.n, 0);
    struct rooms_stats s = stats();
    assert_int_equal(s.held_bytes, 9);
    assert_int_equal(s.held_dropped, 0);

    /* Another room's confirm releases nothing. */
    confirm("lobby");
    assert_int_equal(g_fake.n, 0);

    confirm("general");
    assert_int_equal(g_fake.n, 3);
    assert_run(0, LID(0), "m1");
    assert_run(1, LID(0), "m22");
    assert_run(2, LID(0), "m333");
    assert_int_equal(stats().held_bytes, 0);

    /* Confirmed: straight through. */
    assert_int_equal(submit("general", "m4"), 0);
    assert_int_equal(g_fake.n, 4);
    assert_run(3, LID(0), "m4");

    /* Held messages are per room. */
    join(0, "lobby");
    g_fake.n = 0;
    assert_int_equal(submit("lobby", "l1"), 0);
    assert_int_equal(submit("general", "g1"), 0);
    assert_int_equal(g_fake.n, 1);
    assert_run(0, LID(0), "g1");
    confirm("lobby");
    assert_int_equal(g_fake.n, 2);
    assert_run(1, LID(0), "l1");
}

static void test_submit_without_local_links(void **state)
{
    (void)state;
    /* No room at all. */
    assert_int_equal(submit("elsewhere", "x1"), 0);
    assert_int_equal(g_fake.n, 1);
    assert_run(0, LID(0), "x1");
    assert_true(g_fake.calls[0].ctx); /* ran at once: with its context */
    assert_int_equal(stats().rooms, 0);

    /* A room whose last link left, UNSUBSCRIBE not yet answered. */
    join(0, "general");
    confirm("general");
    leave(0, "general");
    g_fake.n = 0;
    assert_int_equal(submit("general", "x2"), 0);
    assert_int_equal(g_fake.n, 1);
    assert_run(0, LID(0), "x2");

    /* The submitting link's id is passed through. */
    assert_int_equal(submit_from(LID(3), "elsewhere", "x3"), 0);
    assert_int_equal(g_fake.n, 2);
    assert_run(1, LID(3), "x3");

    /* Without local links the subscriber's state does not matter: a room
     * nobody here is in waits for no subscription, even when it is down. */
    rooms_on_sub_lost(g_rooms);
    assert_int_equal(stats().rooms, 0);
    assert_int_equal(submit("general", "x4"), 0);
    assert_int_equal(g_fake.n, 3);
    assert_run(2, LID(0), "x4");
    assert_int_equal(stats().held_bytes, 0);
}

static void test_leave_releases_held(void **state)
{
    (void)state;
    join(0, "general");
    join(1, "general");
    assert_int_equal(submit_from(LID(0), "general", "h1"), 0);
    assert_int_equal(submit_from(LID(1), "general", "h2"), 0);
    g_fake.n = 0;
    /* Another link is still in the room: the requests keep waiting. */
    leave(0, "general");
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(stats().held_bytes, 4);
    assert_int_equal(submit_from(LID(1), "general", "h3"), 0);
    assert_int_equal(g_fake.n, 0);
    leave(1, "general");
    /* The last link left: held requests run (messages for other nodes,
     * presence changes), in order, before the UNSUBSCRIBE. */
    assert_int_equal(g_fake.n, 4);
    assert_run(0, LID(0), "h1");
    assert_run(1, LID(1), "h2");
    assert_run(2, LID(1), "h3");
    assert_call(3, 'U', "general", NULL);
    assert_int_equal(stats().held_bytes, 0);
    assert_int_equal(stats().held_dropped, 0);
    /* Nothing is held any more: later requests run at once, and the late
     * replies run nothing twice. */
    assert_int_equal(submit_from(LID(2), "general", "h4"), 0);
    assert_run(4, LID(2), "h4");
    confirm("general");
    confirm("general");
    assert_int_equal(stats().rooms, 0);
    assert_int_equal(g_fake.n, 5);
}

/* The same through rooms_drop_link (a closing gateway link), for each room it
 * was the last link of. */
static void test_drop_link_releases_held(void **state)
{
    (void)state;
    join(0, "a");
    join(0, "b");
    join(1, "b");
    assert_int_equal(submit_from(LID(2), "a", "a1"), 0);
    assert_int_equal(submit_from(LID(1), "b", "b1"), 0);
    assert_int_equal(submit_from(LID(0), "a", "a2"), 0);
    g_fake.n = 0;
    rooms_drop_link(g_rooms, &g_links[0].end);
    /* a had no other link: its requests ran; b keeps waiting for link 1. */
    assert_int_equal(g_fake.n, 3);
    assert_run(0, LID(2), "a1");
    assert_run(1, LID(0), "a2");
    assert_call(2, 'U', "a", NULL);
    assert_int_equal(stats().held_bytes, 2);
    confirm("b");
    assert_int_equal(g_fake.n, 4);
    assert_run(3, LID(1), "b1");
    assert_int_equal(stats().held_bytes, 0);
}

/* Out of memory as the subscriber is lost: the rooms are reset all the same,
 * so the ones that were subscribed are subscribed again once it is back
 * (they were left without their channel for good), what a room held runs
 * once its new SUBSCRIBE is answered, and a room without links is left
 * (and freed) by rooms_retry. */
static void test_sub_lost_without_memory(void **state)
{
    (void)state;
    join(0, "a");
    confirm("a");
    join(2, "c");
    confirm("c");
    leave(2, "c"); /* its UNSUBSCRIBE in flight */
    join(1, "b");  /* its SUBSCRIBE in flight */
    assert_int_equal(submit("b", "held"), 0);
    g_fake.n = 0;
    fail_malloc = true;
    rooms_on_sub_lost(g_rooms);
    fail_malloc = false;
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(submit("a", "xa"), -ENOTCONN); /* no longer taken for subscribed */
    assert_int_equal(stats().rooms, 3);

    rooms_on_sub_ready(g_rooms);
    assert_int_equal(g_fake.n, 2);
    assert_int_equal(g_fake.calls[0].kind, 'S');
    assert_int_equal(g_fake.calls[1].kind, 'S');
    assert_int_not_equal(strcmp(g_fake.calls[0].name, g_fake.calls[1].name), 0);
    assert_string_not_equal(g_fake.calls[0].name, "c"); /* no links: not subscribed again */
    assert_string_not_equal(g_fake.calls[1].name, "c");
    rooms_retry(g_rooms);
    assert_int_equal(g_fake.n, 3);
    assert_int_equal(g_fake.calls[2].kind, 'U');
    assert_string_equal(g_fake.calls[2].name, "c");
    confirm("c");
    assert_int_equal(stats().rooms, 2);
    confirm("b");
    assert_int_equal(g_fake.n, 4);
    assert_run(3, LID(0), "held");
}

static void test_sub_lost_and_ready(void **state)
{
    (void)state;
    join(0, "a");
    join(1, "b");
    join(2, "c");
    confirm("a");
    confirm("b");
    confirm("c");
    leave(2, "c"); /* c: no links, UNSUBSCRIBE pending */
    join(3, "d");  /* d: SUBSCRIBE pending */
    assert_int_equal(stats().rooms, 4);
    g_fake.n = 0;

    rooms_on_sub_lost(g_rooms);
    assert_int_equal(stats().rooms, 3); /* c is gone: nothing refers to it */
    assert_int_equal(g_fake.n, 0);
    /* No room is active any more and no SUBSCRIBE is in flight: requests for
     * rooms with links are refused, neither run nor held. */
    assert_int_equal(submit("a", "xa"), -ENOTCONN);
    assert_int_equal(submit("d", "xd"), -ENOTCONN);
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(stats().held_bytes, 0);
    assert_int_equal(stats().held_dropped, 0);
    /* Replies from the old connection do not count. */
    confirm("a");
    confirm("d");
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(submit("a", "xa"), -ENOTCONN);

    rooms_on_sub_ready(g_rooms);
    assert_int_equal(g_fake.n, 3);
    int sa = 0, sb = 0, sd = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g_fake.calls[i].kind, 'S');
        sa += strcmp(g_fake.calls[i].name, "a") == 0;
        sb += strcmp(g_fake.calls[i].name, "b") == 0;
        sd += strcmp(g_fake.calls[i].name, "d") == 0;
    }
    assert_int_equal(sa, 1);
    assert_int_equal(sb, 1);
    assert_int_equal(sd, 1);
    /* Ready again without a loss: nothing new (all pending). */
    rooms_on_sub_ready(g_rooms);
    assert_int_equal(g_fake.n, 3);

    /* SUBSCRIBEs in flight again: requests are held until they are answered. */
    assert_int_equal(submit("a", "pa"), 0);
    assert_int_equal(submit("d", "pd"), 0);
    assert_int_equal(g_fake.n, 3);
    assert_int_equal(stats().held_bytes, 4);
    confirm("a");
    assert_int_equal(g_fake.n, 4);
    assert_run(3, LID(0), "pa");
    confirm("d");
    assert_int_equal(g_fake.n, 5);
    assert_run(4, LID(0), "pd");
    confirm("b");
    assert_int_equal(g_fake.n, 5);
    /* Everything active: ready subscribes nothing. */
    rooms_on_sub_ready(g_rooms);
    assert_int_equal(g_fake.n, 5);

    /* Empty: a no-op. */
    rooms_drop_link(g_rooms, &g_links[0].end);
    rooms_drop_link(g_rooms, &g_links[1].end);
    rooms_drop_link(g_rooms, &g_links[3].end);
    rooms_on_sub_lost(g_rooms);
    assert_int_equal(stats().rooms, 0);
    rooms_on_sub_lost(g_rooms);
    rooms_on_sub_ready(g_rooms);
}

static void test_subscribe_failure_retried(void **state)
{
    (void)state;
    g_fake.sub_rc = -ENOTCONN;
    assert_int_equal(join(0, "general"), 0);
    assert_int_equal(g_fake.n, 1);
    /* No SUBSCRIBE in flight: nothing to hold the request for. */
    assert_int_equal(submit("general", "v"), -ENOTCONN);
    confirm("general"); /* nothing was sent: no reply can count */
    assert_int_equal(g_fake.n, 1);
    assert_int_equal(submit("general", "v"), -ENOTCONN);
    g_fake.sub_rc = 0;
    rooms_on_sub_ready(g_rooms);
    assert_int_equal(g_fake.n, 2);
    assert_call(1, 'S', "general", NULL);
    assert_int_equal(submit("general", "w"), 0); /* held now */
    assert_int_equal(g_fake.n, 2);
    confirm("general");
    assert_int_equal(g_fake.n, 3);
    assert_run(2, LID(0), "w");

    /* An UNSUBSCRIBE that could not be sent leaves nothing to wait for. */
    g_fake.unsub_rc = -ENOTCONN;
    leave(0, "general");
    assert_call(3, 'U', "general", NULL);
    assert_int_equal(stats().rooms, 0);
}

/* A SUBSCRIBE that does not fit the subscriber's queue (a whole
 * resubscription at once under a small MAX_LINK_QUEUE_BYTES) is not lost with
 * the connection still up: rooms_retry sends it again, and it used to wait
 * for the next reconnect, the room refusing everything meanwhile. */
static void test_full_queue_subscribe_retried(void **state)
{
    (void)state;
    int n0;
    rooms_retry(g_rooms); /* nothing failed: nothing to do */
    assert_int_equal(g_fake.n, 0);
    g_fake.sub_rc = -ENOBUFS;
    assert_int_equal(join(0, "general"), 0);
    assert_int_equal(join(1, "lobby"), 0);
    assert_int_equal(g_fake.n, 2);
    /* held for the SUBSCRIBE due: refused, a legacy message was lost */
    assert_int_equal(submit("general", "v"), 0);
    rooms_retry(g_rooms); /* still full: both tried again, and remembered */
    assert_int_equal(g_fake.n, 4);
    g_fake.sub_rc = 0;
    rooms_retry(g_rooms);
    assert_int_equal(g_fake.n, 6);
    assert_int_equal(submit("general", "w"), 0); /* held for the confirmation now */
    confirm("general");
    assert_run(6, LID(0), "v");
    assert_run(7, LID(0), "w");
    /* a SUBSCRIBE due whose subscriber goes: what it held runs, and the
     * room refuses until the subscriber is back */
    g_fake.sub_rc = -ENOBUFS;
    assert_int_equal(join(2, "third"), 0);
    assert_int_equal(submit_from(LID(2), "third", "x"), 0);
    n0 = g_fake.n;
    rooms_on_sub_lost(g_rooms);
    assert_run(n0, LID(2), "x");
    assert_int_equal(submit_from(LID(2), "third", "y"), -ENOTCONN);
    g_fake.sub_rc = 0;
    rooms_on_sub_ready(g_rooms);
    confirm("general");
    confirm("lobby");
    confirm("third");
    /* a SUBSCRIBE due whose retry finds the subscriber down, its loss not
     * told to the rooms (the server found unusable through its publisher):
     * what it held runs, rather than whenever the server is back */
    g_fake.sub_rc = -ENOBUFS;
    assert_int_equal(join(3, "fourth"), 0);
    assert_int_equal(submit_from(LID(3), "fourth", "z"), 0);
    g_fake.sub_rc = -ENOTCONN;
    n0 = g_fake.n;
    rooms_retry(g_rooms);
    assert_call(n0, 'S', "fourth", NULL);
    assert_run(n0 + 1, LID(3), "z");
    assert_int_equal(stats().held_bytes, 0);
    g_fake.sub_rc = 0;
    rooms_on_sub_ready(g_rooms);
    int n = g_fake.n;
    rooms_retry(g_rooms); /* done: the rooms in flight or subscribed are left alone */
    assert_int_equal(g_fake.n, n);
}

/* Likewise an UNSUBSCRIBE: the channel used to stay subscribed for the
 * connection's life, bringing every message of a room nobody here is in
 * (the room was freed as if the command had gone out). */
static void test_full_queue_unsubscribe_retried(void **state)
{
    (void)state;
    join(0, "general");
    confirm("general");
    g_fake.unsub_rc = -ENOBUFS;
    leave(0, "general");
    assert_call(1, 'U', "general", NULL);
    assert_int_equal(stats().rooms, 1); /* kept: its channel is still there */
    rooms_retry(g_rooms);               /* still full */
    assert_call(2, 'U', "general", NULL);
    assert_int_equal(stats().rooms, 1);
    g_fake.unsub_rc = 0;
    rooms_retry(g_rooms);
    assert_call(3, 'U', "general", NULL);
    confirm("general");
    assert_int_equal(stats().rooms, 0);
    rooms_retry(g_rooms); /* done */
    assert_int_equal(g_fake.n, 4);

    /* Joined again before the retry: subscribed again, nothing to leave. */
    g_fake.unsub_rc = -ENOBUFS;
    join(0, "lobby");
    confirm("lobby");
    leave(0, "lobby");
    join(1, "lobby");
    assert_call(6, 'S', "lobby", NULL);
    confirm("lobby");
    g_fake.unsub_rc = 0;
    rooms_retry(g_rooms);
    assert_int_equal(g_fake.n, 7);
    assert_int_equal(count_kind('U'), 4);

    /* A subscriber lost meanwhile took the channel with it. */
    g_fake.unsub_rc = -ENOBUFS;
    leave(1, "lobby");
    assert_int_equal(stats().rooms, 1);
    rooms_on_sub_lost(g_rooms);
    assert_int_equal(stats().rooms, 0);
    g_fake.unsub_rc = 0;
    rooms_retry(g_rooms);
    assert_int_equal(count_kind('U'), 5);

    /* A subscriber that lives on while its server is not used for now (its
     * publisher dropped) keeps its channels: the one to leave is still left
     * (it used to stay subscribed for the connection's life). */
    join(2, "hall");
    confirm("hall");
    g_fake.unsub_rc = -ENOBUFS;
    leave(2, "hall");
    assert_int_equal(count_kind('U'), 6);
    rooms_on_sub_lost_if(g_rooms, NULL, NULL, true);
    assert_int_equal(stats().rooms, 1); /* kept: its channel is still there */
    g_fake.unsub_rc = 0;
    rooms_retry(g_rooms);
    assert_int_equal(count_kind('U'), 7);
    confirm("hall");
    assert_int_equal(stats().rooms, 0);
}

static void test_hold_budget(void **state)
{
    (void)state;
    rooms_free(g_rooms);
    g_rooms = rooms_new(&fake_ops, &g_fake, 100);
    assert_non_null(g_rooms);
    char p60[61], p41[42], p40[41];
    memset(p60, 'a', 60);
    p60[60] = '\0';
    memset(p41, 'b', 41);
    p41[41] = '\0';
    memset(p40, 'c', 40);
    p40[40] = '\0';
    join(0, "general");
    join(1, "lobby");
    g_fake.n = 0;
    assert_int_equal(rooms_submit(g_rooms, "general", 7, LID(0), 0, p60, 60, NULL), 0);
    assert_int_equal(rooms_submit(g_rooms, "lobby", 5, LID(0), 0, p41, 41, NULL), -ENOBUFS);
    assert_int_equal(stats().held_dropped, 1);
    assert_int_equal(stats().held_bytes, 60);
    assert_int_equal(rooms_submit(g_rooms, "lobby", 5, LID(0), 0, p40, 40, NULL), 0);
    assert_int_equal(stats().held_bytes, 100);
    assert_int_equal(rooms_submit(g_rooms, "general", 7, LID(0), 0, "x", 1, NULL), -ENOBUFS);
    assert_int_equal(rooms_submit(g_rooms, "general", 7, LID(0), 0, "", 0, NULL), 0);
    assert_int_equal(stats().held_dropped, 2);
    assert_int_equal(g_fake.n, 0);
    /* Not held, not budgeted: rooms without links. */
    assert_int_equal(rooms_submit(g_rooms, "other", 5, LID(0), 0, p60, 60, NULL), 0);
    assert_int_equal(g_fake.n, 1);
    g_fake.n = 0;

    confirm("general");
    assert_int_equal(g_fake.n, 2);
    assert_run(0, LID(0), p60);
    assert_run(1, LID(0), "");
    assert_int_equal(stats().held_bytes, 40);
    /* The budget is free again. */
    assert_int_equal(rooms_submit(g_rooms, "lobby", 5, LID(0), 0, p60, 60, NULL), 0);
    assert_int_equal(stats().held_bytes, 100);
    confirm("lobby");
    assert_int_equal(g_fake.n, 4);
    assert_run(2, LID(0), p40);
    assert_run(3, LID(0), p60);
    assert_int_equal(stats().held_bytes, 0);
    assert_int_equal(stats().held_dropped, 2);

    /* A message bigger than the whole budget. */
    join(2, "third");
    char big[101];
    memset(big, 'z', sizeof big);
    assert_int_equal(rooms_submit(g_rooms, "third", 5, LID(0), 0, big, sizeof big, NULL), -ENOBUFS);
    assert_int_equal(stats().held_dropped, 3);
}

/* The subscriber is down: a request for a room with local links has no
 * SUBSCRIBE to wait for, so rooms_submit refuses it with -ENOTCONN (neither
 * run, held nor counted as dropped) until a SUBSCRIBE is in flight again. */
static void test_submit_enotconn_when_subscriber_down(void **state)
{
    (void)state;
    /* Never subscribed: the SUBSCRIBE could not be sent. */
    g_fake.sub_rc = -ENOTCONN;
    assert_int_equal(join(0, "r"), 0);
    assert_int_equal(submit_from(LID(0), "r", "m0"), -ENOTCONN);
    /* Joining again (or from another link) sends nothing and changes nothing. */
    assert_int_equal(join(1, "r"), 0);
    assert_int_equal(submit_from(LID(1), "r", "m0"), -ENOTCONN);
    assert_int_equal(count_kind('R'), 0);
    assert_int_equal(count_kind('S'), 1);
    struct rooms_stats s = stats();
    assert_int_equal(s.held_bytes, 0);
    assert_int_equal(s.held_dropped, 0);

    /* Subscribed and confirmed, then the subscriber connection is lost. */
    g_fake.sub_rc = 0;
    rooms_on_sub_ready(g_rooms);
    confirm("r");
    g_fake.n = 0;
    assert_int_equal(submit_from(LID(0), "r", "m1"), 0);
    assert_int_equal(g_fake.n, 1);
    assert_run(0, LID(0), "m1");
    rooms_on_sub_lost(g_rooms);
    assert_int_equal(submit_from(LID(0), "r", "m2"), -ENOTCONN);
    assert_int_equal(g_fake.n, 1);
    /* Other rooms are not affected: one without links runs at once. */
    assert_int_equal(submit_from(LID(0), "other", "o1"), 0);
    assert_int_equal(g_fake.n, 2);
    assert_run(1, LID(0), "o1");

    /* The subscriber is back but cannot send yet: still refused. */
    g_fake.sub_rc = -ENOTCONN;
    rooms_on_sub_ready(g_rooms);
    assert_int_equal(submit_from(LID(0), "r", "m2"), -ENOTCONN);
    /* Now the SUBSCRIBE goes out: held until it is answered, then run. */
    g_fake.sub_rc = 0;
    rooms_on_sub_ready(g_rooms);
    g_fake.n = 0;
    assert_int_equal(submit_from(LID(1), "r", "m3"), 0);
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(stats().held_bytes, 2);
    confirm("r");
    assert_int_equal(g_fake.n, 1);
    assert_run(0, LID(1), "m3");
    assert_int_equal(stats().held_bytes, 0);
    assert_int_equal(stats().held_dropped, 0);
}

/* Held requests run in the order they were submitted, each with the id of
 * the link that submitted it, whichever links and rooms they came from. */
static void test_held_run_in_order_with_link_id(void **state)
{
    (void)state;
    join(0, "a");
    join(1, "a");
    join(2, "b");
    g_fake.n = 0;
    static const struct {
        uint64_t link_id;
        const char *room, *payload;
    } reqs[] = {
        {LID(1), "a", "a-1"}, {LID(0), "a", "a-2"}, {LID(2), "b", "b-1"}, {LID(3), "a", "a-3"},
        {LID(1), "b", "b-2"}, {LID(1), "a", "a-4"}, {0, "a", "a-5"},      {UINT64_MAX, "b", "b-3"},
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        assert_int_equal(submit_from(reqs[i].link_id, reqs[i].room, reqs[i].payload), 0);
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(stats().held_bytes, 24);

    confirm("b");
    assert_int_equal(g_fake.n, 3);
    assert_run(0, LID(2), "b-1");
    assert_run(1, LID(1), "b-2");
    assert_run(2, UINT64_MAX, "b-3");
    for (int i = 0; i < 3; i++)
        assert_false(g_fake.calls[i].ctx); /* held: the submitter's context is gone */
    assert_int_equal(stats().held_bytes, 15);

    confirm("a");
    assert_int_equal(g_fake.n, 8);
    assert_run(3, LID(1), "a-1");
    assert_run(4, LID(0), "a-2");
    assert_run(5, LID(3), "a-3");
    assert_run(6, LID(1), "a-4");
    assert_run(7, 0, "a-5");
    assert_int_equal(stats().held_bytes, 0);

    /* Active now: each request runs at once, with its link id. */
    assert_int_equal(submit_from(LID(2), "a", "a-6"), 0);
    assert_int_equal(g_fake.n, 9);
    assert_run(8, LID(2), "a-6");
}

/* Picks held requests whose payload starts with the prefix in ud. */
static bool pick_prefix(void *ud, uint64_t link_id, const void *payload, size_t plen)
{
    (void)link_id;
    const char *prefix = ud;
    return plen >= strlen(prefix) && memcmp(payload, prefix, strlen(prefix)) == 0;
}

/* rooms_unhold_if takes the chosen requests out of one room's queue, from
 * its head, middle and tail, frees their budget and never runs them; the
 * others keep their order, and the queue still takes new ones at its tail. */
static void test_unhold_takes_chosen_requests(void **state)
{
    (void)state;
    join(0, "a");
    join(1, "b");
    g_fake.n = 0;
    static const char *const held[] = {"x-1", "k-1", "x-2", "k-2", "x-3"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(submit("a", held[i]), 0);
    assert_int_equal(submit("b", "x-b"), 0);
    /* held under another tag: never offered to pick */
    assert_int_equal(rooms_submit(g_rooms, "a", 1, LID(0), 7, "x-7", 3, NULL), 0);
    assert_int_equal(stats().held_bytes, 21);
    assert_int_equal(rooms_unhold_if(g_rooms, "a", 1, 0, pick_prefix, "x-"), 3);
    assert_int_equal(stats().held_bytes, 12);
    assert_int_equal(rooms_unhold_if(g_rooms, "a", 1, 7, pick_prefix, "x-"), 1);
    assert_int_equal(stats().held_bytes, 9);
    assert_int_equal(rooms_unhold_if(g_rooms, "nowhere", 7, 0, pick_prefix, "x-"), 0);
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(submit("a", "k-3"), 0); /* after the old tail was taken */
    confirm("a");
    assert_int_equal(g_fake.n, 3);
    assert_run(0, LID(0), "k-1");
    assert_run(1, LID(0), "k-2");
    assert_run(2, LID(0), "k-3");
    confirm("b"); /* another room's queue was left alone */
    assert_run(3, LID(0), "x-b");
    assert_int_equal(stats().held_bytes, 0);
    /* every request taken: the queue is empty and takes new ones */
    join(2, "c");
    g_fake.n = 0;
    assert_int_equal(submit("c", "x-c"), 0);
    assert_int_equal(rooms_unhold_if(g_rooms, "c", 1, 0, pick_prefix, "x-"), 1);
    assert_int_equal(submit("c", "k-c"), 0);
    confirm("c");
    assert_run(0, LID(0), "k-c");
    assert_int_equal(g_fake.n, 1);
}

/* A lost subscriber runs what was held for it at once (nothing waits for
 * the outage to end), and refuses new requests until a SUBSCRIBE is in
 * flight again. */
static void test_held_run_when_sub_lost(void **state)
{
    (void)state;
    join(0, "r");
    assert_int_equal(submit_from(LID(0), "r", "m1"), 0);
    assert_int_equal(count_kind('R'), 0);
    g_fake.n = 0;
    rooms_on_sub_lost(g_rooms);
    assert_int_equal(g_fake.n, 1);
    assert_run(0, LID(0), "m1");
    assert_int_equal(stats().rooms, 1);
    assert_int_equal(stats().held_bytes, 0);
    assert_int_equal(submit_from(LID(1), "r", "m2"), -ENOTCONN);
    confirm("r"); /* the old connection's reply: runs nothing */
    assert_int_equal(count_kind('R'), 1);

    rooms_on_sub_ready(g_rooms);
    assert_int_equal(submit_from(LID(1), "r", "m2"), 0);
    g_fake.n = 0;
    confirm("r");
    assert_int_equal(g_fake.n, 1);
    assert_run(0, LID(1), "m2");
    assert_int_equal(stats().held_bytes, 0);
}

/* A subscriber kept while its server is not used for now (its publisher
 * dropped) still answers, first, what was sent on it before. A room left
 * (its UNSUBSCRIBE on the way) and joined again once the server was back
 * took that UNSUBSCRIBE's reply for its new SUBSCRIBE's: its held requests
 * (joins) ran before its channel was live. */
static void test_kept_subscriber_answers_in_order(void **state)
{
    (void)state;
    join(0, "r");
    confirm("r");
    leave(0, "r"); /* UNSUBSCRIBE on its way */
    assert_int_equal(count_kind('U'), 1);
    rooms_on_sub_lost_if(g_rooms, NULL, NULL, true);
    assert_int_equal(stats().rooms, 1); /* kept until that reply */
    rooms_on_sub_ready(g_rooms);        /* the server back */
    assert_int_equal(join(1, "r"), 0);
    assert_int_equal(count_kind('S'), 2);
    assert_int_equal(submit_from(LID(1), "r", "j1"), 0);
    confirm("r"); /* the UNSUBSCRIBE's reply */
    assert_int_equal(count_kind('R'), 0);
    confirm("r"); /* the SUBSCRIBE's */
    assert_int_equal(count_kind('R'), 1);
    assert_run(g_fake.n - 1, LID(1), "j1");
    assert_int_equal(submit_from(LID(1), "r", "m"), 0); /* live */
    assert_int_equal(count_kind('R'), 2);

    /* Left with nothing else: freed once the reply owed comes. */
    leave(1, "r");
    rooms_on_sub_lost_if(g_rooms, NULL, NULL, true);
    assert_int_equal(stats().rooms, 1);
    confirm("r");
    assert_int_equal(stats().rooms, 0);

    /* A connection lost after all owes nothing more. */
    join(2, "q");
    rooms_on_sub_lost_if(g_rooms, NULL, NULL, true);
    rooms_on_sub_lost(g_rooms);
    rooms_on_sub_ready(g_rooms);
    assert_int_equal(submit_from(LID(2), "q", "j2"), 0);
    int runs = count_kind('R');
    confirm("q");
    assert_int_equal(count_kind('R'), runs + 1);
}

/* Rooms spread over several Redis servers: losing one server's subscriber
 * resets only the rooms `pick` chooses (here: names starting with "s1-"),
 * and only those are subscribed again when it is back. */
static bool on_s1(void *ud, const char *name, size_t len)
{
    assert_ptr_equal(ud, &g_fake);
    return len > 3 && memcmp(name, "s1-", 3) == 0;
}

static void test_sub_lost_and_ready_for_one_server(void **state)
{
    (void)state;
    join(0, "s0-a");
    join(0, "s1-b");
    join(1, "s1-c");
    confirm("s0-a");
    confirm("s1-b");
    confirm("s1-c");
    g_fake.n = 0;

    rooms_on_sub_lost_if(g_rooms, on_s1, &g_fake, false);
    assert_int_equal(submit("s1-b", "x"), -ENOTCONN);
    assert_int_equal(submit("s1-c", "x"), -ENOTCONN);
    assert_int_equal(g_fake.n, 0);
    assert_int_equal(submit("s0-a", "ok"), 0); /* the other server's room runs at once */
    assert_int_equal(g_fake.n, 1);
    assert_run(0, LID(0), "ok");

    g_fake.n = 0;
    rooms_on_sub_ready_if(g_rooms, on_s1, &g_fake);
    assert_int_equal(g_fake.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g_fake.calls[i].kind, 'S');
        assert_true(on_s1(&g_fake, g_fake.calls[i].name, strlen(g_fake.calls[i].name)));
    }
    assert_int_equal(submit("s1-b", "held"), 0); /* until its SUBSCRIBE is answered */
    assert_int_equal(g_fake.n, 2);
    confirm("s1-b");
    assert_int_equal(g_fake.n, 3);
    assert_run(2, LID(0), "held");
}

/* Left and joined again while the UNSUBSCRIBE was on its way, the second
 * SUBSCRIBE not going out (the room's Redis server not usable yet, or a full
 * queue): the UNSUBSCRIBE's reply used to make the room subscribed, so it was
 * never subscribed again, and its members got no message until the
 * subscriber reconnected. */
static void test_rejoined_while_unsubscribing(void **state)
{
    (void)state;
    static const int fails[] = {-ENOTCONN, -ENOBUFS};
    for (int f = 0; f < 2; f++) {
        const char *room = f ? "lobby" : "general";
        join(0, room);
        confirm(room);
        leave(0, room); /* UNSUBSCRIBE in flight */
        int n = g_fake.n;
        assert_call(n - 1, 'U', room, NULL);
        g_fake.sub_rc = fails[f];
        join(1, room); /* its SUBSCRIBE refused */
        assert_call(n, 'S', room, NULL);
        assert_int_equal(submit(room, "held"), 0); /* waits for the channel */
        confirm(room); /* the UNSUBSCRIBE's reply: asks again, refused again */
        assert_call(n + 1, 'S', room, NULL);
        g_fake.sub_rc = 0;
        if (fails[f] == -ENOTCONN) {
            assert_run(n + 2, LID(0), "held"); /* what waited runs, as on a lost subscription */
            rooms_on_sub_ready(g_rooms);       /* the server usable again */
            assert_int_equal(g_fake.n, n + 4);
            assert_call(n + 3, 'S', room, NULL);
            confirm(room);
        } else {
            assert_int_equal(g_fake.n, n + 2); /* it waits for the SUBSCRIBE due */
            rooms_retry(g_rooms);
            assert_call(n + 2, 'S', room, NULL);
            confirm(room);
            assert_run(n + 3, LID(0), "held");
            assert_int_equal(g_fake.n, n + 4);
        }
        assert_int_equal(submit(room, "now"), 0);
        assert_run(n + 4, LID(0), "now"); /* subscribed: straight on */
        leave(1, room);
        confirm(room);
    }
    assert_int_equal(stats().rooms, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_submit_held_until_confirm),
        T(test_submit_without_local_links),
        T(test_leave_releases_held),
        T(test_sub_lost_and_ready),
        T(test_sub_lost_without_memory),
        T(test_subscribe_failure_retried),
        T(test_full_queue_subscribe_retried),
        T(test_full_queue_unsubscribe_retried),
        T(test_hold_budget),
        T(test_drop_link_releases_held),
        T(test_submit_enotconn_when_subscriber_down),
        T(test_held_run_in_order_with_link_id),
        T(test_held_run_when_sub_lost),
        T(test_kept_subscriber_answers_in_order),
        T(test_sub_lost_and_ready_for_one_server),
        T(test_unhold_takes_chosen_requests),
        T(test_rejoined_while_unsubscribing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
