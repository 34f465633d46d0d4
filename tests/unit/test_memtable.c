/*
 * test_memtable.c - the memtable: visibility of versions by seqno,
 * tombstones, replacement of an equal (key, seqno), the iterator in both
 * directions with seek/seek_for_prev, counters and reference counting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "memtable/memtable.h"
#include "util/ikey.h"

static tl_slice S(const char *s)
{
    return tl_slice_make(s, strlen(s));
}

static void add(mt_memtable *m, const char *k, uint64_t seq, uint8_t type, const char *v)
{
    assert_int_equal(mt_add(m, seq, type, S(k), S(v)), 0);
}

/* Expect mt_get(k, at) to find (seq, type, value); seq 0 means absent. */
static void expect_get(mt_memtable *m, const char *k, uint64_t at, uint64_t seq, uint8_t type,
                       const char *v)
{
    uint8_t t = 0;
    tl_slice val = {0};
    uint64_t s = 0;
    int rc = mt_get(m, S(k), at, &t, &val, &s);
    if (seq == 0) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(s, seq);
    assert_int_equal(t, type);
    assert_int_equal(val.len, strlen(v));
    assert_memory_equal(val.data, v, val.len);
}

static void test_visibility(void **state)
{
    mt_memtable *m = mt_new();
    assert_non_null(m);
    expect_get(m, "k", TL_SEQ_MAX, 0, 0, NULL);
    add(m, "k", 10, TL_TYPE_VALUE, "v10");
    add(m, "k", 5, TL_TYPE_VALUE, "v5");
    add(m, "k", 20, TL_TYPE_VALUE, "v20");
    /* Neighbours that share a prefix must never be returned for "k". */
    add(m, "j", 3, TL_TYPE_VALUE, "j3");
    add(m, "k0", 1, TL_TYPE_VALUE, "k0");
    add(m, "ka", 7, TL_TYPE_VALUE, "ka");

    expect_get(m, "k", 4, 0, 0, NULL);
    expect_get(m, "k", 5, 5, TL_TYPE_VALUE, "v5");
    expect_get(m, "k", 9, 5, TL_TYPE_VALUE, "v5");
    expect_get(m, "k", 10, 10, TL_TYPE_VALUE, "v10");
    expect_get(m, "k", 19, 10, TL_TYPE_VALUE, "v10");
    expect_get(m, "k", 20, 20, TL_TYPE_VALUE, "v20");
    expect_get(m, "k", 25, 20, TL_TYPE_VALUE, "v20");
    expect_get(m, "k", TL_SEQ_MAX, 20, TL_TYPE_VALUE, "v20");
    expect_get(m, "", TL_SEQ_MAX, 0, 0, NULL);
    expect_get(m, "a", TL_SEQ_MAX, 0, 0, NULL);
    expect_get(m, "z", TL_SEQ_MAX, 0, 0, NULL);
    expect_get(m, "k0", 0, 0, 0, NULL);
    expect_get(m, "k0", 1, 1, TL_TYPE_VALUE, "k0");
    expect_get(m, "j", 2, 0, 0, NULL);

    /* NULL out-parameters are allowed. */
    assert_int_equal(mt_get(m, S("k"), 9, NULL, NULL, NULL), 1);
    mt_unref(m);
}

static void test_tombstones_and_replace(void **state)
{
    mt_memtable *m = mt_new();
    add(m, "a", 1, TL_TYPE_VALUE, "a1");
    add(m, "a", 2, TL_TYPE_TOMBSTONE, "");
    add(m, "b", 3, TL_TYPE_WEAK_TOMBSTONE, "");
    expect_get(m, "a", 2, 2, TL_TYPE_TOMBSTONE, "");
    expect_get(m, "a", 1, 1, TL_TYPE_VALUE, "a1");
    expect_get(m, "b", 3, 3, TL_TYPE_WEAK_TOMBSTONE, "");
    assert_int_equal(mt_count(m), 3);
    assert_int_equal(mt_deletes(m), 2);

    /* Same (key, seq) again: the last write wins, counts stay exact. */
    add(m, "a", 1, TL_TYPE_TOMBSTONE, "");
    expect_get(m, "a", 1, 1, TL_TYPE_TOMBSTONE, "");
    assert_int_equal(mt_count(m), 3);
    assert_int_equal(mt_deletes(m), 3);
    add(m, "b", 3, TL_TYPE_VALUE, "b3");
    expect_get(m, "b", 5, 3, TL_TYPE_VALUE, "b3");
    assert_int_equal(mt_count(m), 3);
    assert_int_equal(mt_deletes(m), 2);
    add(m, "b", 3, TL_TYPE_VALUE, "b3-again");
    expect_get(m, "b", 5, 3, TL_TYPE_VALUE, "b3-again");
    assert_int_equal(mt_deletes(m), 2);
    mt_unref(m);
}

static void test_counters(void **state)
{
    mt_memtable *m = mt_new();
    assert_int_equal(mt_count(m), 0);
    assert_int_equal(mt_deletes(m), 0);
    assert_int_equal(mt_min_seq(m), 0);
    assert_int_equal(mt_max_seq(m), 0);
    size_t empty = mt_bytes(m);
    assert_true(empty < 64 * 1024); /* not a whole arena block */

    add(m, "x", 42, TL_TYPE_VALUE, "v");
    assert_int_equal(mt_min_seq(m), 42);
    assert_int_equal(mt_max_seq(m), 42);
    add(m, "y", 7, TL_TYPE_VALUE, "v");
    add(m, "z", 100, TL_TYPE_TOMBSTONE, "");
    assert_int_equal(mt_min_seq(m), 7);
    assert_int_equal(mt_max_seq(m), 100);
    assert_int_equal(mt_count(m), 3);
    assert_int_equal(mt_deletes(m), 1);

    char big[1000];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    size_t before = mt_bytes(m);
    add(m, "w", 50, TL_TYPE_VALUE, big);
    assert_true(mt_bytes(m) >= before + sizeof(big) - 1);
    mt_unref(m);
}

static void check_key(tl_iter *it, const char *k, uint64_t seq)
{
    assert_true(tl_iter_valid(it));
    tl_slice ik = tl_iter_key(it);
    tl_slice u = tl_ikey_user(ik);
    assert_int_equal(u.len, strlen(k));
    assert_memory_equal(u.data, k, u.len);
    assert_int_equal(tl_ikey_seq(ik), seq);
}

static tl_slice ikey(uint8_t *buf, const char *k, uint64_t seq)
{
    return tl_slice_make(buf,
                         tl_ikey_encode(buf, (const uint8_t *)k, strlen(k), seq, TL_TYPE_VALUE));
}

static void test_iterator(void **state)
{
    mt_memtable *m = mt_new();
    add(m, "b", 5, TL_TYPE_VALUE, "b5");
    add(m, "a", 1, TL_TYPE_VALUE, "a1");
    add(m, "b", 9, TL_TYPE_TOMBSTONE, "");
    add(m, "c", 2, TL_TYPE_VALUE, "c2");
    /* order: a@1, b@9, b@5, c@2 */
    tl_iter *it = mt_iter_new(m);
    assert_non_null(it);
    assert_int_equal(tl_iter_status(it), 0);
    /* The iterator's reference keeps the memtable alive. */
    mt_unref(m);

    assert_false(tl_iter_valid(it));
    tl_iter_seek_first(it);
    check_key(it, "a", 1);
    assert_memory_equal(tl_iter_value(it).data, "a1", 2);
    tl_iter_next(it);
    check_key(it, "b", 9);
    assert_int_equal(tl_ikey_type(tl_iter_key(it)), TL_TYPE_TOMBSTONE);
    tl_iter_next(it);
    check_key(it, "b", 5);
    tl_iter_next(it);
    check_key(it, "c", 2);
    tl_iter_next(it);
    assert_false(tl_iter_valid(it));

    tl_iter_seek_last(it);
    check_key(it, "c", 2);
    tl_iter_prev(it);
    check_key(it, "b", 5);
    tl_iter_prev(it);
    check_key(it, "b", 9);
    tl_iter_prev(it);
    check_key(it, "a", 1);
    tl_iter_prev(it);
    assert_false(tl_iter_valid(it));

    uint8_t buf[32];
    tl_iter_seek(it, ikey(buf, "b", 7)); /* first >= b@7 is b@5 */
    check_key(it, "b", 5);
    tl_iter_seek(it, ikey(buf, "b", TL_SEQ_MAX));
    check_key(it, "b", 9);
    tl_iter_seek(it, ikey(buf, "b", 9));
    check_key(it, "b", 9);
    tl_iter_seek(it, ikey(buf, "bb", TL_SEQ_MAX));
    check_key(it, "c", 2);
    tl_iter_seek(it, ikey(buf, "c", 1));
    assert_false(tl_iter_valid(it));

    tl_iter_seek_for_prev(it, ikey(buf, "b", 7)); /* last <= b@7 is b@9 */
    check_key(it, "b", 9);
    tl_iter_seek_for_prev(it, ikey(buf, "b", 5));
    check_key(it, "b", 5);
    tl_iter_seek_for_prev(it, ikey(buf, "b", 0));
    check_key(it, "b", 5);
    tl_iter_seek_for_prev(it, ikey(buf, "a", 2));
    assert_false(tl_iter_valid(it));
    tl_iter_seek_for_prev(it, ikey(buf, "z", 0));
    check_key(it, "c", 2);
    tl_iter_prev(it);
    check_key(it, "b", 5);
    tl_iter_next(it);
    check_key(it, "c", 2);
    tl_iter_destroy(it);
}

/* Many threads add at once; every entry is there and counters add up. */
enum { THREADS = 4, PER_THREAD = 5000 };

typedef struct add_arg {
    mt_memtable *m;
    int id;
    int failures;
} add_arg;

static void *adder(void *p)
{
    add_arg *a = p;
    char k[32];
    for (int i = 0; i < PER_THREAD; i++) {
        int n = snprintf(k, sizeof(k), "t%d-%05d", a->id, i);
        uint8_t type = i % 4 == 0 ? TL_TYPE_TOMBSTONE : TL_TYPE_VALUE;
        if (mt_add(a->m, (uint64_t)(a->id * PER_THREAD + i + 1), type, tl_slice_make(k, n),
                   tl_slice_make(k, n)) != 0)
            a->failures++;
    }
    return NULL;
}

static void test_concurrent_add(void **state)
{
    mt_memtable *m = mt_new();
    pthread_t th[THREADS];
    add_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (add_arg){m, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, adder, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(mt_count(m), THREADS * PER_THREAD);
    assert_int_equal(mt_deletes(m), THREADS * PER_THREAD / 4);
    assert_int_equal(mt_min_seq(m), 1);
    assert_int_equal(mt_max_seq(m), THREADS * PER_THREAD);
    char k[32];
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i += 97) {
            int n = snprintf(k, sizeof(k), "t%d-%05d", t, i);
            uint64_t seq;
            tl_slice v;
            assert_int_equal(mt_get(m, tl_slice_make(k, n), TL_SEQ_MAX, NULL, &v, &seq), 1);
            assert_int_equal(seq, (uint64_t)(t * PER_THREAD + i + 1));
            assert_int_equal(v.len, (size_t)n);
        }
    }
    tl_iter *it = mt_iter_new(m);
    size_t count = 0;
    for (tl_iter_seek_first(it); tl_iter_valid(it); tl_iter_next(it))
        count++;
    assert_int_equal(count, THREADS * PER_THREAD);
    tl_iter_destroy(it);
    mt_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_visibility),     cmocka_unit_test(test_tombstones_and_replace),
        cmocka_unit_test(test_counters),       cmocka_unit_test(test_iterator),
        cmocka_unit_test(test_concurrent_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
