/* Unit tests for the small containers of common/: bytes, map, rel and buf.
 * (The free list and the arena are in test_pools.c; backoff, random values
 * and clocks in test_backoff_clock.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "bytes.h"
#include "map.h"
#include "rel.h"

/* A small deterministic generator so that failures reproduce. */
static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)((rng_state >> 16) % n);
}

/* ---- bytes --------------------------------------------------------------- */

static unsigned char stream_byte(size_t pos)
{
    return (unsigned char)((pos * 131u + (pos >> 8) * 7u + 3u) & 0xff);
}

static void test_bytes_bound(void **state)
{
    (void)state;
    struct cf_bytes b;
    unsigned char src[200];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = stream_byte(i);
    cf_bytes_init(&b, 100);
    assert_int_equal(cf_bytes_len(&b), 0);
    assert_int_equal(cf_bytes_append(&b, src, 60), 0);
    assert_int_equal(cf_bytes_append(&b, src + 60, 41), -ENOBUFS);
    assert_int_equal(cf_bytes_len(&b), 60);
    assert_memory_equal(cf_bytes_data(&b), src, 60);
    assert_int_equal(cf_bytes_append(&b, src + 60, 40), 0);
    assert_int_equal(cf_bytes_len(&b), 100);
    assert_memory_equal(cf_bytes_data(&b), src, 100);
    assert_int_equal(cf_bytes_append(&b, src, 1), -ENOBUFS);
    assert_int_equal(cf_bytes_append(&b, src, 0), 0);
    assert_null(cf_bytes_reserve(&b, 1));
    assert_int_equal(cf_bytes_len(&b), 100);
    assert_memory_equal(cf_bytes_data(&b), src, 100);
    /* Consuming makes room again, exactly as much as was consumed. */
    cf_bytes_consume(&b, 10);
    assert_int_equal(cf_bytes_append(&b, src + 100, 11), -ENOBUFS);
    assert_int_equal(cf_bytes_append(&b, src + 100, 10), 0);
    assert_int_equal(cf_bytes_len(&b), 100);
    assert_memory_equal(cf_bytes_data(&b), src + 10, 100);
    cf_bytes_free(&b);

    /* Larger than the bound at once, on an empty queue; huge n. */
    cf_bytes_init(&b, 100);
    assert_int_equal(cf_bytes_append(&b, src, 101), -ENOBUFS);
    assert_int_equal(cf_bytes_append(&b, src, SIZE_MAX), -ENOBUFS);
    assert_null(cf_bytes_reserve(&b, 101));
    assert_null(cf_bytes_reserve(&b, SIZE_MAX));
    assert_int_equal(cf_bytes_len(&b), 0);
    cf_bytes_free(&b);

    /* Nothing appended to a fresh queue (no memory yet), from NULL too. */
    cf_bytes_init(&b, 100);
    assert_int_equal(cf_bytes_append(&b, src, 0), 0);
    assert_int_equal(cf_bytes_append(&b, NULL, 0), 0);
    assert_int_equal(cf_bytes_len(&b), 0);
    cf_bytes_free(&b);

    /* A bound of zero holds nothing. */
    cf_bytes_init(&b, 0);
    assert_int_equal(cf_bytes_append(&b, src, 1), -ENOBUFS);
    assert_int_equal(cf_bytes_len(&b), 0);
    cf_bytes_free(&b);
}

static void test_bytes_reserve_commit_consume_truncate(void **state)
{
    (void)state;
    struct cf_bytes b;
    cf_bytes_init(&b, 1000);
    unsigned char *p = cf_bytes_reserve(&b, 10);
    assert_non_null(p);
    assert_int_equal(cf_bytes_len(&b), 0); /* reserving appends nothing */
    memcpy(p, "0123456789", 10);
    cf_bytes_commit(&b, 6);
    assert_int_equal(cf_bytes_len(&b), 6);
    assert_memory_equal(cf_bytes_data(&b), "012345", 6);

    assert_int_equal(cf_bytes_append(&b, "abc", 3), 0);
    assert_int_equal(cf_bytes_len(&b), 9);
    assert_memory_equal(cf_bytes_data(&b), "012345abc", 9);

    cf_bytes_consume(&b, 2);
    assert_int_equal(cf_bytes_len(&b), 7);
    assert_memory_equal(cf_bytes_data(&b), "2345abc", 7);

    /* Truncate to a mark taken earlier. */
    size_t mark = cf_bytes_len(&b);
    assert_int_equal(cf_bytes_append(&b, "XYZ", 3), 0);
    assert_int_equal(cf_bytes_len(&b), 10);
    cf_bytes_truncate(&b, mark);
    assert_int_equal(cf_bytes_len(&b), 7);
    assert_memory_equal(cf_bytes_data(&b), "2345abc", 7);
    cf_bytes_truncate(&b, 100); /* a mark beyond the end changes nothing */
    assert_int_equal(cf_bytes_len(&b), 7);
    cf_bytes_truncate(&b, 3);
    assert_int_equal(cf_bytes_len(&b), 3);
    assert_memory_equal(cf_bytes_data(&b), "234", 3);
    assert_int_equal(cf_bytes_append(&b, "!", 1), 0);
    assert_memory_equal(cf_bytes_data(&b), "234!", 4);

    /* Reserve counts what is queued against the bound. */
    assert_null(cf_bytes_reserve(&b, 997));
    p = cf_bytes_reserve(&b, 996);
    assert_non_null(p);
    memset(p, 'q', 996);
    cf_bytes_commit(&b, 996);
    assert_int_equal(cf_bytes_len(&b), 1000);
    assert_memory_equal(cf_bytes_data(&b), "234!qq", 6);
    assert_null(cf_bytes_reserve(&b, 1));

    cf_bytes_consume(&b, 1000);
    assert_int_equal(cf_bytes_len(&b), 0);
    cf_bytes_free(&b);
    assert_null(b.data);
    /* Still usable after cf_bytes_free. */
    assert_int_equal(cf_bytes_append(&b, "again", 5), 0);
    assert_memory_equal(cf_bytes_data(&b), "again", 5);
    cf_bytes_free(&b);
}

static void test_bytes_many_cycles(void **state)
{
    (void)state;
    enum { MAX = 10000 };
    struct cf_bytes b;
    cf_bytes_init(&b, MAX);
    size_t written = 0, consumed = 0; /* positions in the reference stream */
    unsigned char chunk[3000];
    for (int round = 0; round < 20000; round++) {
        size_t live = written - consumed;
        assert_int_equal(cf_bytes_len(&b), live);
        if (rnd(2) == 0) {
            size_t n = rnd(sizeof chunk) + 1;
            for (size_t i = 0; i < n; i++)
                chunk[i] = stream_byte(written + i);
            int rc;
            if (rnd(2)) {
                rc = cf_bytes_append(&b, chunk, n);
            } else {
                unsigned char *p = cf_bytes_reserve(&b, n);
                rc = p ? 0 : -ENOBUFS;
                if (p) {
                    memcpy(p, chunk, n);
                    cf_bytes_commit(&b, n);
                }
            }
            if (live + n > MAX) {
                assert_int_equal(rc, -ENOBUFS);
            } else {
                assert_int_equal(rc, 0);
                written += n;
            }
        } else if (live > 0) {
            size_t n = rnd((uint32_t)live) + 1;
            cf_bytes_consume(&b, n);
            consumed += n;
        }
        /* The queue holds exactly the reference stream [consumed, written). */
        const unsigned char *d = cf_bytes_data(&b);
        for (size_t i = 0; i < written - consumed; i++)
            if (d[i] != stream_byte(consumed + i))
                fail_msg("round %d: byte %zu differs", round, i);
    }
    assert_true(written > 100000); /* the queue wrapped many times */
    cf_bytes_free(&b);
}

static void test_bytes_release_when_drained(void **state)
{
    (void)state;
    struct cf_bytes b;
    cf_bytes_init(&b, 1u << 20);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    unsigned char *big = malloc(100000);
    assert_non_null(big);
    for (size_t i = 0; i < 100000; i++)
        big[i] = stream_byte(i);
    assert_int_equal(cf_bytes_append(&b, big, 100000), 0);
    assert_true(b.cap >= 100000);
    cf_bytes_consume(&b, 40000);
    assert_non_null(b.data);
    assert_memory_equal(cf_bytes_data(&b), big + 40000, 60000);
    cf_bytes_consume(&b, 60000);
    assert_int_equal(cf_bytes_len(&b), 0);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    /* Usable again. */
    assert_int_equal(cf_bytes_append(&b, big, 10), 0);
    assert_memory_equal(cf_bytes_data(&b), big, 10);
    cf_bytes_consume(&b, 10);
    assert_int_equal(cf_bytes_len(&b), 0);
    cf_bytes_free(&b);
    assert_null(b.data);
    free(big);
}

/* A link's input buffer: reads reserve a 64 KiB chunk, so a drained buffer
 * that kept only 4 KiB would allocate and free 64 KiB for every read. */
static void test_bytes_keep_what_a_read_reserves(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct cf_bytes b;
    cf_bytes_init(&b, 1u << 20);
    cf_bytes_keep(&b, 65536);
    unsigned char *kept = NULL;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(write(sv[1], "hello", 5), 5);
        assert_int_equal(cf_bytes_read_fd(&b, sv[0], 65536, NULL), 5);
        assert_memory_equal(cf_bytes_data(&b), "hello", 5);
        cf_bytes_consume(&b, 5);
        assert_int_equal(cf_bytes_len(&b), 0);
        assert_non_null(b.data); /* drained, and kept */
        if (round == 0)
            kept = b.data;
        assert_ptr_equal(b.data, kept); /* the same buffer, read after read */
    }
    /* grown past what it keeps (a frame longer than half the buffer, split
     * over two reads): given back */
    static unsigned char big[40000];
    memset(big, 'b', sizeof big);
    assert_int_equal(write(sv[1], big, sizeof big), (ssize_t)sizeof big);
    assert_int_equal(cf_bytes_read_fd(&b, sv[0], 65536, NULL), (ssize_t)sizeof big);
    assert_ptr_equal(b.data, kept);
    assert_int_equal(write(sv[1], "c", 1), 1);
    assert_int_equal(cf_bytes_read_fd(&b, sv[0], 65536, NULL), 1);
    assert_true(b.cap > 65536);
    assert_memory_equal(cf_bytes_data(&b), big, sizeof big);
    assert_int_equal(cf_bytes_data(&b)[sizeof big], 'c');
    cf_bytes_consume(&b, sizeof big + 1);
    assert_null(b.data);
    /* without cf_bytes_keep a drained 64 KiB buffer is given back */
    struct cf_bytes d;
    cf_bytes_init(&d, 1u << 20);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(cf_bytes_read_fd(&d, sv[0], 65536, NULL), 1);
    cf_bytes_consume(&d, 1);
    assert_null(d.data);
    cf_bytes_free(&b);
    cf_bytes_free(&d);
    close(sv[0]);
    close(sv[1]);
}

/* A frame that straddles two reads, the common case on a busy link: what is
 * left of it goes to the front and the next read fills the rest of the same
 * buffer; the buffer is neither grown nor replaced. */
static void test_bytes_a_straddling_frame_keeps_the_buffer(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int sz = 1 << 20; /* a whole chunk and more waits in the socket */
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    struct cf_bytes b;
    cf_bytes_init(&b, 1u << 20);
    cf_bytes_keep(&b, 65536);
    static unsigned char stream[200000];
    for (size_t i = 0; i < sizeof stream; i++)
        stream[i] = (unsigned char)(i * 7 + i / 251);
    size_t sent = 0, got = 0;
    unsigned char *buf = NULL;
    int reads = 0, shortened = 0;
    while (got < sizeof stream) {
        if (sent < sizeof stream) {
            ssize_t w = write(sv[1], stream + sent, sizeof stream - sent);
            if (w > 0)
                sent += (size_t)w;
        }
        bool more;
        ssize_t n = cf_bytes_read_fd(&b, sv[0], 65536, &more);
        if (n == -EAGAIN)
            continue;
        assert_true(n > 0);
        reads++;
        /* a read shortened to fit behind a partial frame must not pass for
         * one that emptied the socket: the links stop reading at those */
        int waiting = 0;
        assert_int_equal(ioctl(sv[0], FIONREAD, &waiting), 0);
        if (waiting > 0) {
            assert_true(more);
            shortened += (size_t)n < 65536;
        }
        if (!buf)
            buf = b.data;
        assert_ptr_equal(b.data, buf); /* not replaced */
        assert_int_equal(b.cap, 65536);  /* not grown */
        /* "frames" of 1000 bytes: the whole ones are consumed, the rest
         * waits for the next read */
        size_t whole = cf_bytes_len(&b) / 1000 * 1000;
        if (got + cf_bytes_len(&b) == sizeof stream)
            whole = cf_bytes_len(&b);
        assert_memory_equal(cf_bytes_data(&b), stream + got, cf_bytes_len(&b));
        cf_bytes_consume(&b, whole);
        got += whole;
    }
    assert_true(reads >= 4); /* 200,000 bytes through 64 KiB: it did straddle */
    assert_true(shortened > 0);
    cf_bytes_free(&b);
    close(sv[0]);
    close(sv[1]);
}

static void test_bytes_fd(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct cf_bytes out, in;
    cf_bytes_init(&out, 1u << 16);
    cf_bytes_init(&in, 8);
    bool more = true;
    assert_int_equal(cf_bytes_read_fd(&in, sv[1], 100, &more), -EAGAIN);
    assert_false(more);
    assert_int_equal(cf_bytes_append(&out, "hello, socket", 13), 0);
    assert_int_equal(cf_bytes_write_fd(&out, sv[0]), 13);
    assert_int_equal(cf_bytes_len(&out), 0);
    assert_int_equal(cf_bytes_write_fd(&out, sv[0]), 0);
    assert_int_equal(cf_bytes_read_fd(&in, sv[1], 5, &more), 5);
    assert_true(more); /* all it asked for: there may be more */
    assert_memory_equal(cf_bytes_data(&in), "hello", 5);
    assert_int_equal(cf_bytes_read_fd(&in, sv[1], 100, &more), 3); /* bounded by max 8 */
    assert_true(more);
    assert_memory_equal(cf_bytes_data(&in), "hello, s", 8);
    assert_int_equal(cf_bytes_read_fd(&in, sv[1], 100, NULL), -ENOBUFS);
    cf_bytes_consume(&in, 8);
    assert_int_equal(cf_bytes_read_fd(&in, sv[1], 100, &more), 5);
    assert_false(more); /* short of what it asked: the socket is empty */
    assert_memory_equal(cf_bytes_data(&in), "ocket", 5);
    close(sv[0]);
    assert_int_equal(cf_bytes_read_fd(&in, sv[1], 100, NULL), 0); /* end of stream */
    assert_int_equal(cf_bytes_append(&out, "x", 1), 0);
    assert_true(cf_bytes_write_fd(&out, sv[1]) < 0); /* peer gone: -EPIPE */
    close(sv[1]);
    cf_bytes_free(&out);
    cf_bytes_free(&in);
}

/* ---- map ------------------------------------------------------------------- */

enum { NKEYS = 10000 };

struct kv {
    char key[24];
    size_t len;
    bool present;
    int visits;
};

static void shuffle(uint32_t *v, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rnd(i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static void check_map(const struct cf_map *m, struct kv *kvs, size_t n)
{
    size_t present = 0;
    for (size_t i = 0; i < n; i++) {
        void *got = cf_map_get(m, kvs[i].key, kvs[i].len);
        if (kvs[i].present) {
            present++;
            if (got != &kvs[i])
                fail_msg("key %s not found after other changes", kvs[i].key);
        } else if (got != NULL) {
            fail_msg("deleted key %s still found", kvs[i].key);
        }
    }
    assert_int_equal(cf_map_count(m), present);
    /* Iteration visits every present value exactly once. */
    for (size_t i = 0; i < n; i++)
        kvs[i].visits = 0;
    size_t it = 0, seen = 0;
    struct kv *v;
    while ((v = cf_map_next(m, &it))) {
        assert_true(v >= kvs && v < kvs + n);
        assert_true(v->present);
        v->visits++;
        seen++;
    }
    assert_int_equal(seen, present);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(kvs[i].visits, kvs[i].present ? 1 : 0);
}

static void test_map_random(void **state)
{
    (void)state;
    struct kv *kvs = calloc(NKEYS, sizeof *kvs);
    uint32_t *order = malloc(NKEYS * sizeof *order);
    assert_non_null(kvs);
    assert_non_null(order);
    for (uint32_t i = 0; i < NKEYS; i++) {
        kvs[i].len = (size_t)snprintf(kvs[i].key, sizeof kvs[i].key, "key-%u", i);
        order[i] = i;
    }
    struct cf_map *m = cf_map_new();
    assert_non_null(m);
    assert_int_equal(cf_map_count(m), 0);
    size_t it = 0;
    assert_null(cf_map_next(m, &it));
    assert_null(cf_map_get(m, "key-1", 5));
    assert_null(cf_map_del(m, "key-1", 5));

    /* Insert everything in random order. */
    shuffle(order, NKEYS);
    for (uint32_t i = 0; i < NKEYS; i++) {
        struct kv *kv = &kvs[order[i]];
        assert_int_equal(cf_map_put(m, kv->key, kv->len, kv), 0);
        kv->present = true;
        assert_int_equal(cf_map_count(m), i + 1);
    }
    check_map(m, kvs, NKEYS);

    /* Duplicates are refused and change nothing, also through another copy
     * of the key bytes. */
    for (uint32_t i = 0; i < NKEYS; i += 97) {
        char copy[24];
        memcpy(copy, kvs[i].key, kvs[i].len);
        int dummy;
        assert_int_equal(cf_map_put(m, copy, kvs[i].len, &dummy), -EEXIST);
        assert_ptr_equal(cf_map_get(m, copy, kvs[i].len), &kvs[i]);
    }
    assert_int_equal(cf_map_count(m), NKEYS);

    /* Delete in another random order, checking every remaining key now and
     * then: backward-shift deletion must keep every probe run intact. */
    shuffle(order, NKEYS);
    for (uint32_t i = 0; i < NKEYS; i++) {
        struct kv *kv = &kvs[order[i]];
        assert_ptr_equal(cf_map_del(m, kv->key, kv->len), kv);
        kv->present = false;
        assert_null(cf_map_del(m, kv->key, kv->len));
        if (i % 250 == 0 || i > NKEYS - 40)
            check_map(m, kvs, NKEYS);
    }
    assert_int_equal(cf_map_count(m), 0);

    /* Mixed operations against the reference. */
    for (int op = 0; op < 60000; op++) {
        struct kv *kv = &kvs[rnd(2000)];
        switch (rnd(3)) {
        case 0: {
            int rc = cf_map_put(m, kv->key, kv->len, kv);
            assert_int_equal(rc, kv->present ? -EEXIST : 0);
            kv->present = true;
            break;
        }
        case 1:
            assert_ptr_equal(cf_map_del(m, kv->key, kv->len), kv->present ? kv : NULL);
            kv->present = false;
            break;
        default:
            assert_ptr_equal(cf_map_get(m, kv->key, kv->len), kv->present ? kv : NULL);
            break;
        }
        if (op % 5000 == 0)
            check_map(m, kvs, NKEYS);
    }
    check_map(m, kvs, NKEYS);
    cf_map_free(m);
    cf_map_free(NULL);
    free(order);
    free(kvs);
}

static void test_map_key_bytes(void **state)
{
    (void)state;
    struct cf_map *m = cf_map_new();
    assert_non_null(m);
    int a, b, c, d, e;
    assert_int_equal(cf_map_put(m, "ab", 2, &a), 0);
    assert_int_equal(cf_map_put(m, "abc", 3, &b), 0);
    assert_int_equal(cf_map_put(m, "a\0c", 3, &c), 0);
    assert_int_equal(cf_map_put(m, "a\0d", 3, &d), 0);
    assert_int_equal(cf_map_put(m, "", 0, &e), 0);
    assert_int_equal(cf_map_count(m), 5);
    assert_ptr_equal(cf_map_get(m, "abx", 2), &a); /* only len bytes count */
    assert_ptr_equal(cf_map_get(m, "abc", 3), &b);
    assert_ptr_equal(cf_map_get(m, "a\0c", 3), &c);
    assert_ptr_equal(cf_map_get(m, "a\0d", 3), &d);
    assert_ptr_equal(cf_map_get(m, "zzz", 0), &e);
    assert_null(cf_map_get(m, "a", 1));
    assert_null(cf_map_get(m, "ABC", 3));
    assert_ptr_equal(cf_map_del(m, "", 0), &e);
    assert_ptr_equal(cf_map_get(m, "abc", 3), &b);
    assert_int_equal(cf_map_count(m), 4);
    cf_map_free(m);
}

/* ---- rel ------------------------------------------------------------------- */

struct obj {
    struct cf_rel_end end;
    int id;
};

static void check_end(const struct cf_rel_end *e)
{
    for (uint32_t i = 0; i < e->n; i++) {
        const struct cf_rel_edge *edge = e->v[i];
        assert_true(edge->lend == e || edge->rend == e);
        if (edge->lend == e)
            assert_int_equal(edge->li, i);
        else
            assert_int_equal(edge->ri, i);
    }
    if (e->n == 0) {
        assert_null(e->v);
        assert_int_equal(e->cap, 0);
    }
}

/* Checks both sides against the reference matrix linked[l][r]. */
static void check_rel(struct obj *left, struct obj *right, bool linked[3][5])
{
    for (int l = 0; l < 3; l++) {
        check_end(&left[l].end);
        uint32_t n = 0;
        for (int r = 0; r < 5; r++) {
            struct cf_rel_edge *e = cf_rel_find(&left[l].end, &right[r]);
            struct cf_rel_edge *back = cf_rel_find(&right[r].end, &left[l]);
            assert_ptr_equal(e, back);
            if (linked[l][r]) {
                n++;
                assert_non_null(e);
                assert_ptr_equal(e->left, &left[l]);
                assert_ptr_equal(e->right, &right[r]);
                assert_ptr_equal(e->lend, &left[l].end);
                assert_ptr_equal(e->rend, &right[r].end);
                assert_ptr_equal(left[l].end.v[e->li], e);
                assert_ptr_equal(right[r].end.v[e->ri], e);
            } else {
                assert_null(e);
            }
        }
        assert_int_equal(left[l].end.n, n);
    }
    for (int r = 0; r < 5; r++) {
        check_end(&right[r].end);
        uint32_t n = 0;
        for (int l = 0; l < 3; l++)
            n += linked[l][r];
        assert_int_equal(right[r].end.n, n);
    }
}

static void link_all(struct obj *left, struct obj *right, bool linked[3][5])
{
    for (int l = 0; l < 3; l++)
        for (int r = 0; r < 5; r++) {
            struct cf_rel_edge *e = cf_rel_link(&left[l].end, &left[l], &right[r].end, &right[r]);
            assert_non_null(e);
            linked[l][r] = true;
        }
    check_rel(left, right, linked);
}

static void test_rel(void **state)
{
    (void)state;
    struct obj left[3], right[5];
    memset(left, 0, sizeof left);
    memset(right, 0, sizeof right);
    bool linked[3][5];

    /* 1: unlink in link order. */
    link_all(left, right, linked);
    for (int l = 0; l < 3; l++)
        for (int r = 0; r < 5; r++) {
            cf_rel_unlink(cf_rel_find(&left[l].end, &right[r]));
            linked[l][r] = false;
            check_rel(left, right, linked);
        }

    /* 2: in reverse order, from the right side. */
    link_all(left, right, linked);
    for (int r = 4; r >= 0; r--)
        for (int l = 2; l >= 0; l--) {
            cf_rel_unlink(cf_rel_find(&right[r].end, &left[l]));
            linked[l][r] = false;
            check_rel(left, right, linked);
        }

    /* 3: random orders, with re-links in between. */
    for (int round = 0; round < 50; round++) {
        link_all(left, right, linked);
        uint32_t order[15];
        for (uint32_t i = 0; i < 15; i++)
            order[i] = i;
        shuffle(order, 15);
        for (int i = 0; i < 15; i++) {
            int l = (int)order[i] / 5, r = (int)order[i] % 5;
            cf_rel_unlink(cf_rel_find(&left[l].end, &right[r]));
            linked[l][r] = false;
            check_rel(left, right, linked);
            if (i == 7) { /* put two back midway */
                int l2 = (int)order[0] / 5, r2 = (int)order[0] % 5;
                assert_non_null(cf_rel_link(&left[l2].end, &left[l2], &right[r2].end, &right[r2]));
                linked[l2][r2] = true;
                check_rel(left, right, linked);
            }
        }
        int l2 = (int)order[0] / 5, r2 = (int)order[0] % 5;
        cf_rel_unlink(cf_rel_find(&left[l2].end, &right[r2]));
        linked[l2][r2] = false;
        check_rel(left, right, linked);
    }

    /* 4: iterating one end downwards and unlinking the current edge (a
     * member leaving all its rooms). */
    link_all(left, right, linked);
    for (uint32_t i = right[2].end.n; i-- > 0;) {
        struct cf_rel_edge *e = right[2].end.v[i];
        struct obj *l = e->left;
        cf_rel_unlink(e);
        linked[l - left][2] = false;
        check_rel(left, right, linked);
    }
    for (uint32_t i = left[1].end.n; i-- > 0;) {
        struct cf_rel_edge *e = left[1].end.v[i];
        struct obj *r = e->right;
        cf_rel_unlink(e);
        linked[1][r - right] = false;
        check_rel(left, right, linked);
    }
    for (int l = 0; l < 3; l++)
        while (left[l].end.n > 0) {
            struct cf_rel_edge *e = left[l].end.v[0];
            struct obj *r = e->right;
            cf_rel_unlink(e);
            linked[l][r - right] = false;
            check_rel(left, right, linked);
        }
    for (int i = 0; i < 3; i++)
        cf_rel_end_free(&left[i].end);
    for (int i = 0; i < 5; i++)
        cf_rel_end_free(&right[i].end);
}

/* ---- buf ------------------------------------------------------------------- */

static void test_buf_refcount(void **state)
{
    (void)state;
    struct cf_buf *b = cf_buf_new(16, 100);
    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->len, 0);
    assert_int_equal(b->head, 16);
    assert_int_equal(b->cap, 116);
    assert_ptr_equal(cf_buf_payload(b), b->data + 16);
    memset(b->data, 0xab, 116); /* the whole allocation is writable (ASan) */
    assert_ptr_equal(cf_buf_ref(b), b);
    assert_int_equal(b->refs, 2);
    assert_ptr_equal(cf_buf_ref(b), b);
    assert_int_equal(b->refs, 3);
    cf_buf_unref(b);
    assert_int_equal(b->refs, 2);
    cf_buf_unref(b);
    assert_int_equal(b->refs, 1);
    cf_buf_unref(b); /* freed: LeakSanitizer would report it otherwise */
    cf_buf_unref(NULL);

    b = cf_buf_new(0, 0);
    assert_non_null(b);
    assert_int_equal(b->head, 0);
    assert_int_equal(b->cap, 0);
    cf_buf_unref(b);
    assert_null(cf_buf_new((size_t)UINT32_MAX, 1));
    assert_null(cf_buf_new(1, (size_t)UINT32_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_bound),
        cmocka_unit_test(test_bytes_reserve_commit_consume_truncate),
        cmocka_unit_test(test_bytes_many_cycles),
        cmocka_unit_test(test_bytes_release_when_drained),
        cmocka_unit_test(test_bytes_keep_what_a_read_reserves),
        cmocka_unit_test(test_bytes_a_straddling_frame_keeps_the_buffer),
        cmocka_unit_test(test_bytes_fd),
        cmocka_unit_test(test_map_random),
        cmocka_unit_test(test_map_key_bytes),
        cmocka_unit_test(test_rel),
        cmocka_unit_test(test_buf_refcount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
