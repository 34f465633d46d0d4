/*
 * test_iter_merge.c - the merging iterator against a sorted model: random
 * children (array-backed iterators) with equal internal keys across and
 * within children, full forward and reverse scans, random sequences of
 * seek / seek_for_prev / next / prev with direction switches, n = 0 and 1,
 * and errors from a child (at a seek and in the middle of a scan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "talus.h"
#include "util/ikey.h"
#include "util/iter.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void seed_rng(const char *test)
{
    const char *env = getenv("TEST_SEED");
    rng_state = env ? strtoull(env, NULL, 0) : 0x3e4ce5eedull;
    if (!rng_state)
        rng_state = 1;
    printf("%s: seed 0x%llx (set TEST_SEED to repeat)\n", test, (unsigned long long)rng_state);
}

typedef struct entry {
    uint8_t key[32];
    size_t klen;
    char val[24];
    size_t vlen;
    int child, idx;
} entry;

/* ---- array-backed child iterator ------------------------------------ */

typedef struct arr_iter {
    tl_iter base;
    const entry *e;
    int n;
    int pos;        /* -1 when not valid */
    int fail_after; /* moves allowed before it fails; -1 never */
    int moves;
    int rc;
} arr_iter;

/* Counts a move; false (and invalid with an error) once past fail_after. */
static bool arr_move_ok(arr_iter *a)
{
    a->moves++;
    if (a->rc || (a->fail_after >= 0 && a->moves > a->fail_after)) {
        a->rc = TALUS_ECORRUPT;
        a->pos = -1;
        return false;
    }
    return true;
}

static tl_slice ekey(const entry *e)
{
    return tl_slice_make(e->key, e->klen);
}

static void arr_seek_first(tl_iter *it)
{
    arr_iter *a = (arr_iter *)it;
    if (arr_move_ok(a))
        a->pos = a->n ? 0 : -1;
}

static void arr_seek_last(tl_iter *it)
{
    arr_iter *a = (arr_iter *)it;
    if (arr_move_ok(a))
        a->pos = a->n - 1;
}

static void arr_seek(tl_iter *it, tl_slice t)
{
    arr_iter *a = (arr_iter *)it;
    if (!arr_move_ok(a))
        return;
    int i = 0;
    while (i < a->n && tl_ikey_cmp(ekey(&a->e[i]), t) < 0)
        i++;
    a->pos = i < a->n ? i : -1;
}

static void arr_seek_for_prev(tl_iter *it, tl_slice t)
{
    arr_iter *a = (arr_iter *)it;
    if (!arr_move_ok(a))
        return;
    int i = a->n - 1;
    while (i >= 0 && tl_ikey_cmp(ekey(&a->e[i]), t) > 0)
        i--;
    a->pos = i;
}

static void arr_next(tl_iter *it)
{
    arr_iter *a = (arr_iter *)it;
    assert_true(a->pos >= 0); /* the merge never moves an invalid child */
    if (arr_move_ok(a) && ++a->pos >= a->n)
        a->pos = -1;
}

static void arr_prev(tl_iter *it)
{
    arr_iter *a = (arr_iter *)it;
    assert_true(a->pos >= 0);
    if (arr_move_ok(a))
        a->pos--;
}

static bool arr_valid(const tl_iter *it)
{
    return ((const arr_iter *)it)->pos >= 0;
}

static tl_slice arr_key(const tl_iter *it)
{
    const arr_iter *a = (const arr_iter *)it;
    assert_true(a->pos >= 0);
    return ekey(&a->e[a->pos]);
}

static tl_slice arr_value(const tl_iter *it)
{
    const arr_iter *a = (const arr_iter *)it;
    assert_true(a->pos >= 0);
    return tl_slice_make(a->e[a->pos].val, a->e[a->pos].vlen);
}

static int arr_status(const tl_iter *it)
{
    return ((const arr_iter *)it)->rc;
}

static void arr_destroy(tl_iter *it)
{
    free(it);
}

static const tl_iter_ops arr_ops = {
    .seek_first = arr_seek_first,
    .seek_last = arr_seek_last,
    .seek = arr_seek,
    .seek_for_prev = arr_seek_for_prev,
    .next = arr_next,
    .prev = arr_prev,
    .valid = arr_valid,
    .key = arr_key,
    .value = arr_value,
    .status = arr_status,
    .destroy = arr_destroy,
};

static tl_iter *arr_new(const entry *e, int n, int fail_after)
{
    arr_iter *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->base.ops = &arr_ops;
    a->e = e;
    a->n = n;
    a->pos = -1;
    a->fail_after = fail_after;
    return &a->base;
}

/* ---- data and model ------------------------------------------------- */

static void make_key(entry *e, int ukey, uint64_t seq)
{
    char u[16];
    int ul = snprintf(u, sizeof u, "k%04d", ukey);
    e->klen = tl_ikey_encode(e->key, (const uint8_t *)u, (size_t)ul, seq, TL_TYPE_VALUE);
}

static int entry_cmp(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    int c = tl_ikey_cmp(ekey(a), ekey(b));
    if (c)
        return c;
    if (a->child != b->child)
        return a->child < b->child ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

typedef struct dataset {
    int n;        /* children */
    entry **per;  /* per[c]: child c's sorted entries */
    int *cnt;     /* cnt[c] */
    entry *model; /* all entries in merge order */
    int total;
    int nukeys;
} dataset;

/* Child c holds up to maxper entries from nukeys user keys and seqs 1..5,
 * so equal internal keys show up across children and inside one child. */
static void make_data(dataset *d, int n, int nukeys, int maxper)
{
    d->n = n;
    d->nukeys = nukeys;
    d->per = calloc((size_t)n + 1, sizeof *d->per);
    d->cnt = calloc((size_t)n + 1, sizeof *d->cnt);
    assert_non_null(d->per);
    assert_non_null(d->cnt);
    d->total = 0;
    for (int c = 0; c < n; c++) {
        int m = maxper ? (int)(rnd() % (uint64_t)(maxper + 1)) : 0;
        d->per[c] = calloc((size_t)m + 1, sizeof(entry));
        assert_non_null(d->per[c]);
        for (int i = 0; i < m; i++) {
            entry *e = &d->per[c][i];
            make_key(e, (int)(rnd() % (uint64_t)nukeys), 1 + rnd() % 5);
            e->child = c;
        }
        /* Sort by key only, then number entries in that order. */
        qsort(d->per[c], (size_t)m, sizeof(entry), entry_cmp);
        for (int i = 0; i < m; i++) {
            entry *e = &d->per[c][i];
            e->idx = i;
            e->vlen = (size_t)snprintf(e->val, sizeof e->val, "c%d/i%d", c, i);
        }
        d->cnt[c] = m;
        d->total += m;
    }
    d->model = calloc((size_t)d->total + 1, sizeof(entry));
    assert_non_null(d->model);
    int at = 0;
    for (int c = 0; c < n; c++) {
        memcpy(d->model + at, d->per[c], (size_t)d->cnt[c] * sizeof(entry));
        at += d->cnt[c];
    }
    qsort(d->model, (size_t)d->total, sizeof(entry), entry_cmp);
}

static void free_data(dataset *d)
{
    for (int c = 0; c < d->n; c++)
        free(d->per[c]);
    free(d->per);
    free(d->cnt);
    free(d->model);
}

/* fail_child >= 0: that child fails after fail_after moves. */
static tl_iter *make_merge(const dataset *d, int fail_child, int fail_after)
{
    tl_iter **kids = calloc((size_t)d->n + 1, sizeof *kids);
    assert_non_null(kids);
    for (int c = 0; c < d->n; c++)
        kids[c] = arr_new(d->per[c], d->cnt[c], c == fail_child ? fail_after : -1);
    tl_iter *m = tl_iter_merge(kids, d->n);
    free(kids);
    assert_non_null(m);
    return m;
}

static void expect_at(tl_iter *it, const dataset *d, int pos, const char *what)
{
    if (pos < 0) {
        if (tl_iter_valid(it)) {
            tl_slice v = tl_iter_value(it);
            fail_msg("%s: expected invalid, got %.*s", what, (int)v.len, (const char *)v.data);
        }
        return;
    }
    const entry *e = &d->model[pos];
    if (!tl_iter_valid(it))
        fail_msg("%s: expected %s (pos %d of %d), got invalid", what, e->val, pos, d->total);
    tl_slice k = tl_iter_key(it), v = tl_iter_value(it);
    if (v.len != e->vlen || memcmp(v.data, e->val, v.len) != 0)
        fail_msg("%s: expected %s (pos %d), got %.*s", what, e->val, pos, (int)v.len,
                 (const char *)v.data);
    assert_int_equal(k.len, e->klen);
    assert_memory_equal(k.data, e->key, k.len);
}

static void full_scans(const dataset *d)
{
    tl_iter *m = make_merge(d, -1, -1);
    assert_false(tl_iter_valid(m)); /* unpositioned until a seek */
    tl_iter_seek_first(m);
    for (int i = 0; i < d->total; i++) {
        expect_at(m, d, i, "forward scan");
        tl_iter_next(m);
    }
    expect_at(m, d, -1, "forward scan end");
    tl_iter_seek_last(m);
    for (int i = d->total - 1; i >= 0; i--) {
        expect_at(m, d, i, "reverse scan");
        tl_iter_prev(m);
    }
    expect_at(m, d, -1, "reverse scan end");
    assert_int_equal(tl_iter_status(m), 0);
    tl_iter_destroy(m);
}

/* A seek target: a user key in or just around the key space (sometimes
 * one that no child has), with a seqno that may or may not exist. */
static void random_target(const dataset *d, entry *t)
{
    int uk = (int)(rnd() % (uint64_t)(d->nukeys + 4)) - 2;
    if (uk < 0) {
        t->klen = tl_ikey_encode(t->key, (const uint8_t *)"", 0, rnd() % 7, TL_TYPE_VALUE);
        return;
    }
    uint64_t r = rnd() % 9;
    uint64_t seq = r < 7 ? r : (r == 7 ? 0 : UINT64_MAX);
    make_key(t, uk, seq);
}

static int model_seek(const dataset *d, tl_slice t)
{
    for (int i = 0; i < d->total; i++)
        if (tl_ikey_cmp(ekey(&d->model[i]), t) >= 0)
            return i;
    return -1;
}

static int model_seek_for_prev(const dataset *d, tl_slice t)
{
    for (int i = d->total - 1; i >= 0; i--)
        if (tl_ikey_cmp(ekey(&d->model[i]), t) <= 0)
            return i;
    return -1;
}

static void random_ops(const dataset *d, int nops)
{
    tl_iter *m = make_merge(d, -1, -1);
    int pos = -1;
    char what[64];
    for (int op = 0; op < nops; op++) {
        entry t;
        int r = (int)(rnd() % 100);
        if (pos < 0 || r < 8) {
            /* (Re)position: one of the four seeks. */
            int s = (int)(rnd() % 4);
            random_target(d, &t);
            if (s == 0) {
                tl_iter_seek_first(m);
                pos = d->total ? 0 : -1;
            } else if (s == 1) {
                tl_iter_seek_last(m);
                pos = d->total - 1;
            } else if (s == 2) {
                tl_iter_seek(m, ekey(&t));
                pos = model_seek(d, ekey(&t));
            } else {
                tl_iter_seek_for_prev(m, ekey(&t));
                pos = model_seek_for_prev(d, ekey(&t));
            }
            snprintf(what, sizeof what, "op %d: seek kind %d", op, s);
        } else if (r < 54) {
            tl_iter_next(m);
            pos = pos + 1 < d->total ? pos + 1 : -1;
            snprintf(what, sizeof what, "op %d: next", op);
        } else {
            tl_iter_prev(m);
            pos = pos - 1;
            snprintf(what, sizeof what, "op %d: prev", op);
        }
        expect_at(m, d, pos, what);
    }
    assert_int_equal(tl_iter_status(m), 0);
    tl_iter_destroy(m);
}

static void test_scans(void **state)
{
    seed_rng("test_scans");
    const int ns[] = {2, 3, 4, 5, 7, 10, 16, 40};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        for (int round = 0; round < 20; round++) {
            dataset d;
            make_data(&d, ns[k], 5 + (int)(rnd() % 60), (int)(rnd() % 50));
            full_scans(&d);
            free_data(&d);
        }
    }
}

static void test_random_ops(void **state)
{
    seed_rng("test_random_ops");
    const int ns[] = {1, 2, 3, 5, 8, 13, 40};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        for (int round = 0; round < 30; round++) {
            dataset d;
            /* Few user keys make equal internal keys common. */
            int nukeys = round % 3 == 0 ? 3 : 5 + (int)(rnd() % 80);
            make_data(&d, ns[k], nukeys, (int)(rnd() % 40));
            random_ops(&d, 400);
            free_data(&d);
        }
    }
}

/* Equal internal keys everywhere: the order is decided by child index
 * alone, forward ascending, backward descending, across switches. */
static void test_equal_keys(void **state)
{
    enum { N = 6 };
    entry e[N];
    dataset d = {0};
    d.n = N;
    d.per = calloc(N, sizeof *d.per);
    d.cnt = calloc(N, sizeof *d.cnt);
    d.model = calloc(N, sizeof(entry));
    assert_non_null(d.per);
    assert_non_null(d.cnt);
    assert_non_null(d.model);
    for (int c = 0; c < N; c++) {
        make_key(&e[c], 7, 3);
        e[c].child = c;
        e[c].idx = 0;
        e[c].vlen = (size_t)snprintf(e[c].val, sizeof e[c].val, "c%d/i0", c);
        d.per[c] = &e[c];
        d.cnt[c] = 1;
        d.model[c] = e[c];
    }
    d.total = N;
    tl_iter *m = make_merge(&d, -1, -1);
    tl_iter_seek_first(m);
    expect_at(m, &d, 0, "first");
    tl_iter_next(m);
    tl_iter_next(m);
    expect_at(m, &d, 2, "c2");
    tl_iter_prev(m);
    expect_at(m, &d, 1, "back to c1");
    tl_iter_prev(m);
    expect_at(m, &d, 0, "back to c0");
    tl_iter_next(m);
    expect_at(m, &d, 1, "forward to c1");
    tl_iter_seek_for_prev(m, ekey(&e[0]));
    expect_at(m, &d, N - 1, "seek_for_prev lands on the last child");
    tl_iter_prev(m);
    expect_at(m, &d, N - 2, "prev");
    tl_iter_next(m);
    expect_at(m, &d, N - 1, "next after prev");
    tl_iter_next(m);
    expect_at(m, &d, -1, "end");
    tl_iter_destroy(m);
    for (int c = 0; c < N; c++)
        d.per[c] = NULL;
    free(d.per);
    free(d.cnt);
    free(d.model);
}

static void test_small_n(void **state)
{
    /* n == 0: an empty iterator with a clean status. */
    tl_iter *m = tl_iter_merge(NULL, 0);
    assert_non_null(m);
    tl_iter_seek_first(m);
    assert_false(tl_iter_valid(m));
    tl_iter_seek_last(m);
    assert_false(tl_iter_valid(m));
    assert_int_equal(tl_iter_status(m), 0);
    tl_iter_destroy(m);

    /* n == 1 behaves exactly like the child (full check in random_ops). */
    seed_rng("test_small_n");
    dataset d;
    make_data(&d, 1, 10, 30);
    full_scans(&d);
    free_data(&d);

    /* The empty iterator carries its status. */
    tl_iter *e = tl_iter_empty(TALUS_EIO);
    assert_non_null(e);
    tl_iter_seek_first(e);
    assert_false(tl_iter_valid(e));
    assert_int_equal(tl_iter_status(e), TALUS_EIO);
    tl_iter_destroy(e);
}

static void test_child_error(void **state)
{
    seed_rng("test_child_error");
    for (int round = 0; round < 50; round++) {
        dataset d;
        make_data(&d, 5, 20, 40);
        int bad = (int)(rnd() % 5);
        /* Fails somewhere in a forward scan (moves: 1 seek + nexts). */
        int fail_after = 1 + (int)(rnd() % (uint64_t)(d.cnt[bad] + 1));
        tl_iter *m = make_merge(&d, bad, fail_after);
        tl_iter_seek_first(m);
        int i = 0;
        while (tl_iter_valid(m)) {
            expect_at(m, &d, i, "prefix before the error");
            tl_iter_next(m);
            i++;
        }
        if (fail_after <= d.cnt[bad]) {
            /* The child failed before it was exhausted: the merge must stop
             * with its error rather than silently skip its entries. */
            assert_int_equal(tl_iter_status(m), TALUS_ECORRUPT);
            /* (If the failing move was the one that would exhaust the
             * child, everything may already be out.) */
            if (fail_after < d.cnt[bad])
                assert_true(i < d.total);
        } else {
            assert_int_equal(i, d.total);
        }
        tl_iter_destroy(m);

        /* Error at the seek itself, in both directions. */
        m = make_merge(&d, bad, 0);
        tl_iter_seek_last(m);
        assert_false(tl_iter_valid(m));
        assert_int_equal(tl_iter_status(m), TALUS_ECORRUPT);
        tl_iter_destroy(m);

        /* Error during a direction switch. */
        if (d.total > 2) {
            m = make_merge(&d, bad, 1);
            tl_iter_seek_first(m);
            tl_iter_next(m); /* the bad child may fail here already */
            tl_iter_prev(m); /* the switch re-seeks every other child */
            /* Either the next or the switch's re-seek (or the prev of
             * the bad child itself) was its second move. */
            assert_false(tl_iter_valid(m));
            assert_int_equal(tl_iter_status(m), TALUS_ECORRUPT);
            tl_iter_destroy(m);
        }
        free_data(&d);
    }

    /* An always-failing child given as an empty iterator. */
    dataset d;
    make_data(&d, 3, 10, 10);
    tl_iter *kids[4];
    for (int c = 0; c < 3; c++)
        kids[c] = arr_new(d.per[c], d.cnt[c], -1);
    kids[3] = tl_iter_empty(TALUS_EIO);
    tl_iter *m = tl_iter_merge(kids, 4);
    tl_iter_seek_first(m);
    assert_false(tl_iter_valid(m));
    assert_int_equal(tl_iter_status(m), TALUS_EIO);
    tl_iter_destroy(m);
    free_data(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scans),       cmocka_unit_test(test_random_ops),
        cmocka_unit_test(test_equal_keys),  cmocka_unit_test(test_small_n),
        cmocka_unit_test(test_child_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
