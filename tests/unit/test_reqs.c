/* Unit tests for gateway/reqs: the table of requests waiting for a broker's
 * answer, per-session lists and limits, owners that go away, deadlines.
 * Sessions are real (sess_new works without libwebsockets). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "clock.h"
#include "reqs.h"
#include "session.h"

static struct cf_str S(const char *s) {
    return (struct cf_str){s, (uint32_t)strlen(s)};
}

static const struct cf_str NONE = {NULL, 0};

struct fx {
    struct reqs *t;
    struct session *a, *b;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->t = reqs_new(REQS_PER_SESSION);
    f->a = sess_new(1, "alice", 1 << 20);
    f->b = sess_new(2, "bob", 1 << 20);
    *state = f;
    return f->t && f->a && f->b ? 0 : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    /* Sessions go first in the gateway too: they drop their requests. */
    if (f->a)
        reqs_drop_session(f->t, f->a);
    if (f->b)
        reqs_drop_session(f->t, f->b);
    sess_free(f->a);
    sess_free(f->b);
    reqs_free(f->t);
    free(f);
    return 0;
}

/* How many requests are in s's list (and checks the count of those held to
 * the cap, every one but the re-syncs, agrees). */
static uint32_t in_list(struct session *s)
{
    uint32_t n = 0, capped = 0;
    for (struct req *r = *sess_reqs(s); r; r = r->snext) {
        assert_ptr_equal(r->s, s);
        n++;
        capped += !r->resync;
    }
    assert_int_equal(capped, *sess_nreqs(s));
    return n;
}

static bool listed(struct session *s, const struct req *want)
{
    for (struct req *r = *sess_reqs(s); r; r = r->snext)
        if (r == want)
            return true;
    return false;
}

static struct req *add(struct fx *f, enum req_kind k, struct session *s, const char *room,
                       const char *id)
{
    int err = 1;
    struct req *r = reqs_add(f->t, k, s, NULL, S(room), id ? S(id) : NONE, &err);
    assert_non_null(r);
    assert_int_equal(err, 0);
    return r;
}

static void test_add_get_take(void **state)
{
    struct fx *f = *state;
    int64_t before = cf_mono_ms();
    struct req *r1 = add(f, REQ_SEND, f->a, "lobby", "c-1701-7");
    struct req *r2 = add(f, REQ_SUB, f->a, "a.b", NULL);
    struct req *r3 = add(f, REQ_HIST, f->b, "lobby", "h");
    int64_t after = cf_mono_ms();

    assert_true(r1->q != r2->q && r2->q != r3->q && r1->q != r3->q);
    assert_true(r1->q != 0);
    assert_int_equal(r1->kind, REQ_SEND);
    assert_int_equal(r2->kind, REQ_SUB);
    assert_ptr_equal(r1->s, f->a);
    assert_ptr_equal(r3->s, f->b);
    assert_null(r1->http);
    assert_false(r1->resync);
    assert_int_equal(r1->room_len, 5);
    assert_string_equal(r1->room, "lobby");
    assert_int_equal(r1->id_len, 8);
    assert_string_equal(r1->id, "c-1701-7");
    assert_int_equal(r2->id_len, 0);
    assert_string_equal(r2->id, "");
    assert_true(r1->deadline >= before + REQ_TIMEOUT_MS);
    assert_true(r1->deadline <= after + REQ_TIMEOUT_MS);

    assert_int_equal(reqs_count(f->t), 3);
    assert_int_equal(in_list(f->a), 2);
    assert_int_equal(in_list(f->b), 1);
    assert_ptr_equal(reqs_get(f->t, r1->q), r1);
    assert_ptr_equal(reqs_get(f->t, r3->q), r3);
    assert_null(reqs_get(f->t, 0));
    assert_null(reqs_get(f->t, r3->q + 1000));

    /* take: out of the table and of the session's list, session kept. */
    uint64_t q1 = r1->q;
    struct req *got = reqs_take(f->t, q1);
    assert_ptr_equal(got, r1);
    assert_ptr_equal(got->s, f->a);
    assert_null(reqs_get(f->t, q1));
    assert_null(reqs_take(f->t, q1));
    assert_int_equal(reqs_count(f->t), 2);
    assert_int_equal(in_list(f->a), 1);
    assert_false(listed(f->a, r1));
    assert_true(listed(f->a, r2));
    reqs_release(got);

    /* get leaves it in place. */
    assert_ptr_equal(reqs_get(f->t, r2->q), r2);
    assert_ptr_equal(reqs_get(f->t, r2->q), r2);
    assert_int_equal(in_list(f->a), 1);

    /* q values are not reused. */
    struct req *r4 = add(f, REQ_SEND, f->a, "lobby", NULL);
    assert_true(r4->q != q1);
    assert_int_equal(reqs_count(f->t), 3);
}

static void test_cancel(void **state)
{
    struct fx *f = *state;
    struct req *keep = add(f, REQ_SEND, f->a, "lobby", "1");
    struct req *mid = add(f, REQ_SEND, f->a, "lobby", "2");
    struct req *last = add(f, REQ_SEND, f->a, "lobby", "3");
    uint64_t q = mid->q;
    reqs_cancel(f->t, mid); /* from the middle of the list */
    assert_null(reqs_get(f->t, q));
    assert_int_equal(reqs_count(f->t), 2);
    assert_int_equal(in_list(f->a), 2);
    assert_true(listed(f->a, keep));
    assert_true(listed(f->a, last));
    reqs_cancel(f->t, last); /* the head */
    reqs_cancel(f->t, keep); /* the tail */
    assert_int_equal(reqs_count(f->t), 0);
    assert_int_equal(in_list(f->a), 0);
    assert_null(*sess_reqs(f->a));
}

static void test_http_requests(void **state)
{
    struct fx *f = *state;
    int http = 0, err = 1;
    struct req *r = reqs_add(f->t, REQ_PUBLISH, NULL, &http, S("lobby"), NONE, &err);
    assert_non_null(r);
    assert_int_equal(err, 0);
    assert_null(r->s);
    assert_ptr_equal(r->http, &http);
    assert_int_equal(in_list(f->a), 0);
    /* No per-session limit applies without a session. */
    for (int i = 0; i < REQS_PER_SESSION + 5; i++)
        assert_non_null(reqs_add(f->t, REQ_PUBLISH, NULL, &http, S("r"), NONE, &err));
    assert_int_equal(reqs_count(f->t), REQS_PER_SESSION + 6);
    struct req *got = reqs_take(f->t, r->q);
    assert_ptr_equal(got, r);
    assert_null(got->s);
    reqs_release(got);
}

static void test_per_session_limit(void **state)
{
    struct fx *f = *state;
    struct req *first = NULL;
    for (int i = 0; i < REQS_PER_SESSION; i++) {
        struct req *r = add(f, REQ_SEND, f->a, "lobby", NULL);
        if (!first)
            first = r;
    }
    assert_int_equal(in_list(f->a), REQS_PER_SESSION);
    int err = 0;
    assert_null(reqs_add(f->t, REQ_SEND, f->a, NULL, S("lobby"), NONE, &err));
    assert_int_equal(err, -EBUSY);
    assert_int_equal(reqs_count(f->t), REQS_PER_SESSION);
    assert_int_equal(in_list(f->a), REQS_PER_SESSION);
    /* Another session is not affected. */
    add(f, REQ_SEND, f->b, "lobby", NULL);
    /* An answer frees a slot. */
    reqs_release(reqs_take(f->t, first->q));
    add(f, REQ_SEND, f->a, "lobby", NULL);
    err = 0;
    assert_null(reqs_add(f->t, REQ_HIST, f->a, NULL, S("lobby"), NONE, &err));
    assert_int_equal(err, -EBUSY);
    /* A re-sync the gateway makes by itself is not held to the cap: a client
     * with its requests in flight was closed when its broker came back. */
    struct req *rs = reqs_add_resync(f->t, f->a, S("lobby"), &err);
    assert_non_null(rs);
    assert_int_equal(rs->kind, REQ_SUB);
    assert_int_equal(in_list(f->a), REQS_PER_SESSION + 1);
    reqs_release(reqs_take(f->t, rs->q));
    /* Nor do re-syncs take the client's places: one in more rooms than
     * the cap got too_many_requests while its shard re-synced. */
    struct req *many[REQS_PER_SESSION + 1];
    for (int i = 0; i <= REQS_PER_SESSION; i++) {
        many[i] = reqs_add_resync(f->t, f->b, S("lobby"), &err);
        assert_non_null(many[i]);
    }
    add(f, REQ_SEND, f->b, "lobby", NULL); /* b's second own request */
    assert_int_equal(*sess_nreqs(f->b), 2);
    for (int i = 0; i <= REQS_PER_SESSION; i++)
        reqs_release(reqs_take(f->t, many[i]->q));
    assert_int_equal(*sess_nreqs(f->b), 2);
    /* The session going away frees its places too: its old requests no
     * longer count. */
    reqs_drop_session(f->t, f->a);
    assert_int_equal(in_list(f->a), 0);
    add(f, REQ_SEND, f->a, "lobby", NULL);
    assert_int_equal(reqs_count(f->t), REQS_PER_SESSION + 3); /* a: 64 ownerless + 1, b: 2 */
}

static void test_drop_session(void **state)
{
    struct fx *f = *state;
    struct req *a1 = add(f, REQ_SEND, f->a, "lobby", "1");
    struct req *a2 = add(f, REQ_SUB, f->a, "other", NULL);
    struct req *b1 = add(f, REQ_SEND, f->b, "lobby", "1");
    uint64_t qa1 = a1->q, qa2 = a2->q;
    reqs_drop_session(f->t, f->a);
    /* The requests stay for their answers, without an owner. */
    assert_int_equal(reqs_count(f->t), 3);
    assert_null(*sess_reqs(f->a));
    assert_int_equal(*sess_nreqs(f->a), 0);
    assert_ptr_equal(reqs_get(f->t, qa1), a1);
    assert_null(a1->s);
    assert_null(a2->s);
    assert_null(a1->snext);
    assert_ptr_equal(b1->s, f->b);
    assert_int_equal(in_list(f->b), 1);
    /* The session can be freed; a late answer finds no owner. */
    sess_free(f->a);
    f->a = NULL;
    struct req *late = reqs_take(f->t, qa1);
    assert_ptr_equal(late, a1);
    assert_null(late->s);
    reqs_release(late);
    reqs_cancel(f->t, a2);
    assert_null(reqs_get(f->t, qa2));
    /* Dropping a session without requests, or twice, is harmless. */
    reqs_drop_session(f->t, f->b);
    reqs_drop_session(f->t, f->b);
    assert_null(b1->s);
    assert_int_equal(reqs_count(f->t), 1);
}

struct seen {
    uint64_t q[1024];
    struct session *s[1024];
    size_t n;
    struct reqs *t;
};

static void on_expired(void *ud, struct req *r)
{
    struct seen *x = ud;
    assert_true(x->n < 1024);
    /* Already out of the table and of its session's list. */
    assert_null(reqs_get(x->t, r->q));
    if (r->s)
        assert_false(listed(r->s, r));
    x->q[x->n] = r->q;
    x->s[x->n] = r->s;
    x->n++;
}

static bool seen_q(const struct seen *x, uint64_t q)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->q[i] == q)
            return true;
    return false;
}

static void test_expire(void **state)
{
    struct fx *f = *state;
    struct req *old_a = add(f, REQ_SEND, f->a, "lobby", "1");
    struct req *new_a = add(f, REQ_SEND, f->a, "lobby", "2");
    struct req *old_b = add(f, REQ_HIST, f->b, "lobby", NULL);
    struct req *gone = add(f, REQ_SUB, f->b, "x", NULL);
    int err;
    struct req *pub = reqs_add(f->t, REQ_PUBLISH, NULL, NULL, S("lobby"), NONE, &err);
    assert_non_null(pub);
    int64_t now = 1000000;
    old_a->deadline = now - 1;
    new_a->deadline = now + 1;
    old_b->deadline = now; /* exactly at its deadline: expired */
    gone->deadline = now - 5000;
    pub->deadline = now + REQ_TIMEOUT_MS;
    uint64_t q_old_a = old_a->q, q_new_a = new_a->q, q_old_b = old_b->q, q_gone = gone->q,
             q_pub = pub->q;
    reqs_drop_session(f->t, f->b); /* gone's and old_b's owner left */

    struct seen x = {.t = f->t};
    reqs_expire(f->t, now, on_expired, &x);
    assert_int_equal(x.n, 3);
    assert_true(seen_q(&x, q_old_a));
    assert_true(seen_q(&x, q_old_b));
    assert_true(seen_q(&x, q_gone));
    assert_false(seen_q(&x, q_new_a));
    assert_false(seen_q(&x, q_pub));
    for (size_t i = 0; i < x.n; i++)
        assert_ptr_equal(x.s[i], x.q[i] == q_old_a ? f->a : NULL);
    assert_int_equal(reqs_count(f->t), 2);
    assert_ptr_equal(reqs_get(f->t, q_new_a), new_a);
    assert_ptr_equal(reqs_get(f->t, q_pub), pub);
    assert_int_equal(in_list(f->a), 1);
    assert_true(listed(f->a, new_a));

    /* Nothing more is due: no calls. */
    x.n = 0;
    reqs_expire(f->t, now, on_expired, &x);
    assert_int_equal(x.n, 0);
    reqs_expire(f->t, now + REQ_TIMEOUT_MS, on_expired, &x);
    assert_int_equal(x.n, 2);
    assert_int_equal(reqs_count(f->t), 0);
    assert_int_equal(in_list(f->a), 0);
}

static void test_expire_many(void **state)
{
    struct fx *f = *state;
    /* More than one batch of expired requests, mixed with live ones. */
    enum { N = 700 };
    int err;
    uint64_t live[N / 7 + 1];
    size_t nlive = 0;
    for (int i = 0; i < N; i++) {
        struct req *r = reqs_add(f->t, REQ_PUBLISH, NULL, NULL, S("r"), NONE, &err);
        assert_non_null(r);
        if (i % 7 == 0) {
            r->deadline = INT64_MAX;
            live[nlive++] = r->q;
        } else {
            r->deadline = 0;
        }
    }
    struct seen x = {.t = f->t};
    reqs_expire(f->t, 10, on_expired, &x);
    assert_int_equal(x.n, N - nlive);
    assert_int_equal(reqs_count(f->t), nlive);
    for (size_t i = 0; i < nlive; i++) {
        assert_non_null(reqs_get(f->t, live[i]));
        assert_false(seen_q(&x, live[i]));
    }
}

static void test_free_with_requests(void **state)
{
    (void)state;
    /* reqs_free releases whatever is left (ASan/valgrind see leaks). */
    struct reqs *t = reqs_new(REQS_PER_SESSION);
    assert_non_null(t);
    int err;
    for (int i = 0; i < 50; i++)
        assert_non_null(reqs_add(t, REQ_PUBLISH, NULL, NULL, S("room"), S("id"), &err));
    assert_int_equal(reqs_count(t), 50);
    reqs_free(t);
    reqs_free(NULL);
}

/* The answers a client awaits at once share its queue (budget.h): each
 * takes a quarter of what is left after the queued bytes and twice the
 * budgets awaited. A re-sync keeps the whole quarter and is not counted:
 * shrunk, a few missed messages came back as a whole joined. */
static void test_budgets_share_the_queue_but_for_re_syncs(void **state)
{
    struct fx *f = *state;
    int err;
    struct req *j1 = reqs_add(f->t, REQ_SUB, f->a, NULL, S("r1"), NONE, &err);
    struct req *j2 = reqs_add(f->t, REQ_SUB, f->a, NULL, S("r2"), NONE, &err);
    assert_non_null(j1);
    assert_non_null(j2);
    assert_int_equal(budget_of(f->t, f->a, j1->q), 256 << 10); /* a quarter of 1 MiB */
    assert_int_equal(budget_of(f->t, f->a, j2->q), 128 << 10); /* (1 MiB - 2 x 256 K) / 4 */
    struct req *rs = reqs_add_resync(f->t, f->a, S("r3"), &err);
    assert_non_null(rs);
    assert_int_equal(budget_of(f->t, f->a, rs->q), 256 << 10); /* the whole quarter */
    struct req *j3 = reqs_add(f->t, REQ_SUB, f->a, NULL, S("r4"), NONE, &err);
    assert_non_null(j3);
    assert_int_equal(budget_of(f->t, f->a, j3->q), 64 << 10); /* the re-sync not counted */
    /* another session's are its own */
    struct req *b1 = reqs_add(f->t, REQ_SUB, f->b, NULL, S("r1"), NONE, &err);
    assert_non_null(b1);
    assert_int_equal(budget_of(f->t, f->b, b1->q), 256 << 10);
    /* no request (a registration): the quarter */
    assert_int_equal(budget_of(f->t, f->a, 0), 256 << 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_get_take, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_session_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budgets_share_the_queue_but_for_re_syncs, setup,
                                        teardown),
        cmocka_unit_test(test_free_with_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
