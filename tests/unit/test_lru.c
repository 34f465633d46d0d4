/*
 * test_lru.c - the sharded LRU cache: eviction order, charges, handles that
 * outlive erase/replace, the deleter running exactly once, capacity 0,
 * counters, table growth and concurrent use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

/* Values are small ints cast to pointers; deletions are counted per value. */
enum { MAXV = 20000 };
static _Atomic int deleted[MAXV];

static void reset_deleted(void)
{
    for (int i = 0; i < MAXV; i++)
        atomic_store(&deleted[i], 0);
}

static void count_deleter(const uint8_t *key, size_t klen, void *value)
{
    atomic_fetch_add(&deleted[(intptr_t)value], 1);
}

static tl_cache_handle *ins(tl_cache *c, int k, int v, size_t charge)
{
    uint8_t key[4];
    memcpy(key, &k, 4);
    tl_cache_handle *h = tl_cache_insert(c, key, 4, (void *)(intptr_t)v, charge, count_deleter);
    assert_non_null(h);
    return h;
}

static void ins_rel(tl_cache *c, int k, int v, size_t charge)
{
    tl_cache_release(c, ins(c, k, v, charge));
}

static tl_cache_handle *look(tl_cache *c, int k)
{
    uint8_t key[4];
    memcpy(key, &k, 4);
    return tl_cache_lookup(c, key, 4);
}

/* Value of k, or -1 if absent (the handle is released). */
static int get(tl_cache *c, int k)
{
    tl_cache_handle *h = look(c, k);
    if (!h)
        return -1;
    int v = (int)(intptr_t)tl_cache_value(h);
    tl_cache_release(c, h);
    return v;
}

static void erase(tl_cache *c, int k)
{
    uint8_t key[4];
    memcpy(key, &k, 4);
    tl_cache_erase(c, key, 4);
}

static void test_eviction_order(void **state)
{
    reset_deleted();
    tl_cache *c = tl_cache_new(10); /* small: one shard, exact LRU */
    assert_int_equal(tl_cache_capacity(c), 10);
    for (int i = 1; i <= 10; i++)
        ins_rel(c, i, i, 1);
    assert_int_equal(tl_cache_usage(c), 10);
    assert_int_equal(get(c, 1), 1); /* 1 is now the most recent */
    ins_rel(c, 11, 11, 1);          /* evicts 2, the oldest */
    assert_int_equal(get(c, 2), -1);
    assert_int_equal(deleted[2], 1);
    assert_int_equal(get(c, 1), 1);
    assert_int_equal(get(c, 3), 3);
    ins_rel(c, 12, 12, 2); /* charge 2: evicts 4 and 5 */
    assert_int_equal(get(c, 4), -1);
    assert_int_equal(get(c, 5), -1);
    assert_int_equal(get(c, 6), 6);
    assert_int_equal(tl_cache_usage(c), 10);
    for (int i = 0; i <= 12; i++)
        assert_int_equal(deleted[i], i == 2 || i == 4 || i == 5);

    /* An entry bigger than the whole cache is served, then dropped. */
    tl_cache_handle *h = ins(c, 13, 13, 50);
    assert_int_equal((intptr_t)tl_cache_value(h), 13);
    assert_int_equal(get(c, 13), 13);
    tl_cache_release(c, h);
    assert_int_equal(get(c, 13), -1);
    assert_int_equal(deleted[13], 1);
    assert_true(tl_cache_usage(c) <= 10);
    tl_cache_free(c);
    for (int i = 1; i <= 13; i++)
        assert_int_equal(deleted[i], 1);
}

static void test_pinned_entries(void **state)
{
    reset_deleted();
    tl_cache *c = tl_cache_new(2);
    tl_cache_handle *a = ins(c, 1, 1, 1); /* held */
    ins_rel(c, 2, 2, 1);
    ins_rel(c, 3, 3, 1); /* over capacity: 2 goes, pinned 1 stays */
    assert_int_equal(get(c, 2), -1);
    assert_int_equal(get(c, 1), 1);
    assert_int_equal(get(c, 3), 3);
    assert_int_equal(tl_cache_usage(c), 2);

    /* Erase while held: gone from the cache, alive for the holder. */
    erase(c, 1);
    assert_int_equal(get(c, 1), -1);
    assert_int_equal(deleted[1], 0);
    assert_int_equal((intptr_t)tl_cache_value(a), 1);
    assert_int_equal(tl_cache_usage(c), 1);
    tl_cache_release(c, a);
    assert_int_equal(deleted[1], 1);
    erase(c, 1); /* absent: nothing happens */
    assert_int_equal(deleted[1], 1);

    /* Replace while held: lookups see the new value, the old handle keeps
     * the old one until released. */
    tl_cache_handle *h1 = ins(c, 5, 50, 1);
    tl_cache_handle *h2 = ins(c, 5, 51, 1);
    assert_int_equal(get(c, 5), 51);
    assert_int_equal((intptr_t)tl_cache_value(h1), 50);
    assert_int_equal(deleted[50], 0);
    tl_cache_release(c, h1);
    assert_int_equal(deleted[50], 1);
    tl_cache_release(c, h2);
    assert_int_equal(deleted[51], 0);

    /* Two handles to one entry: it survives eviction pressure until both
     * are released. */
    tl_cache_handle *x = look(c, 5);
    tl_cache_handle *y = look(c, 5);
    ins_rel(c, 6, 6, 1);
    ins_rel(c, 7, 7, 1);
    assert_int_equal(get(c, 5), 51);
    tl_cache_release(c, x);
    ins_rel(c, 8, 8, 1);
    assert_int_equal(get(c, 5), 51);
    tl_cache_release(c, y);
    ins_rel(c, 9, 9, 1);
    ins_rel(c, 10, 10, 1);
    assert_int_equal(get(c, 5), -1);
    assert_int_equal(deleted[51], 1);
    tl_cache_free(c);
    for (int i = 0; i < 60; i++)
        assert_true(deleted[i] <= 1);
}

static void test_capacity_zero(void **state)
{
    reset_deleted();
    tl_cache *c = tl_cache_new(0);
    tl_cache_handle *h = ins(c, 1, 7, 1);
    assert_int_equal((intptr_t)tl_cache_value(h), 7);
    assert_null(look(c, 1));
    assert_int_equal(tl_cache_usage(c), 0);
    assert_int_equal(deleted[7], 0);
    tl_cache_release(c, h);
    assert_int_equal(deleted[7], 1);
    tl_cache_free(c);
    assert_int_equal(deleted[7], 1);
}

static void test_counters_and_ids(void **state)
{
    reset_deleted();
    tl_cache *c = tl_cache_new(100);
    assert_int_equal(tl_cache_hits(c), 0);
    assert_int_equal(tl_cache_misses(c), 0);
    ins_rel(c, 1, 1, 1);
    assert_int_equal(get(c, 1), 1);
    assert_int_equal(get(c, 1), 1);
    assert_int_equal(get(c, 2), -1);
    assert_int_equal(tl_cache_hits(c), 2);
    assert_int_equal(tl_cache_misses(c), 1);
    uint64_t a = tl_cache_new_id(c), b = tl_cache_new_id(c);
    assert_true(a != b);
    assert_true(b > a);

    /* Keys of different lengths and the empty key are distinct. */
    tl_cache_release(
        c, tl_cache_insert(c, (const uint8_t *)"", 0, (void *)(intptr_t)3, 1, count_deleter));
    tl_cache_release(
        c, tl_cache_insert(c, (const uint8_t *)"\0", 1, (void *)(intptr_t)4, 1, count_deleter));
    tl_cache_handle *h = tl_cache_lookup(c, (const uint8_t *)"", 0);
    assert_non_null(h);
    assert_int_equal((intptr_t)tl_cache_value(h), 3);
    tl_cache_release(c, h);
    tl_cache_free(c);
}

static void test_many_entries(void **state)
{
    reset_deleted();
    enum { N = 10000 };
    tl_cache *c = tl_cache_new(1 << 20); /* 16 shards, everything fits */
    for (int i = 0; i < N; i++)
        ins_rel(c, i, i, 1);
    assert_int_equal(tl_cache_usage(c), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(get(c, i), i);
    for (int i = 0; i < N; i += 2)
        erase(c, i);
    for (int i = 0; i < N; i++)
        assert_int_equal(get(c, i), i % 2 ? i : -1);
    assert_int_equal(tl_cache_usage(c), N / 2);
    tl_cache_free(c);
    for (int i = 0; i < N; i++)
        assert_int_equal(deleted[i], 1);

    /* A sharded cache at capacity stays within it when nothing is held. */
    c = tl_cache_new(1000);
    for (int i = 0; i < N; i++)
        ins_rel(c, i, N + i, 1);
    assert_true(tl_cache_usage(c) <= 1000);
    assert_true(tl_cache_usage(c) >= 900); /* hashing spreads evenly enough */
    tl_cache_free(c);
    for (int i = 0; i < N; i++)
        assert_int_equal(deleted[N + i], 1);
}

/* Concurrent use: values are heap objects that know their key; deleters
 * poison and count them, so a use after free or a double delete shows. */
enum { THREADS = 4, KEYS = 3000, OPS = 40000 };
typedef struct obj {
    int key;
    int magic;
} obj;
static _Atomic long objs_made, objs_freed;
static _Atomic int bad;

static void obj_deleter(const uint8_t *key, size_t klen, void *value)
{
    obj *o = value;
    int k;
    memcpy(&k, key, 4);
    if (o->magic != 0x600d || o->key != k)
        atomic_fetch_add(&bad, 1);
    o->magic = 0xdead;
    free(o);
    atomic_fetch_add(&objs_freed, 1);
}

typedef struct warg {
    tl_cache *c;
    int id;
} warg;

static void *worker(void *p)
{
    tl_cache *c = ((warg *)p)->c;
    uint64_t r = 0x9E3779B97F4A7C15ull * (uint64_t)(((warg *)p)->id + 1); /* fixed seeds */
    tl_cache_handle *held[8] = {0};
    for (int i = 0; i < OPS; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        int k = (int)(r % KEYS);
        uint8_t key[4];
        memcpy(key, &k, 4);
        int op = (int)((r >> 32) % 10);
        tl_cache_handle *h = NULL;
        if (op < 6) {
            h = tl_cache_lookup(c, key, 4);
        } else if (op < 9) {
            obj *o = malloc(sizeof(*o));
            o->key = k;
            o->magic = 0x600d;
            atomic_fetch_add(&objs_made, 1);
            h = tl_cache_insert(c, key, 4, o, 1 + (r >> 40) % 3, obj_deleter);
        } else {
            tl_cache_erase(c, key, 4);
        }
        if (h) {
            obj *o = tl_cache_value(h);
            if (o->magic != 0x600d || o->key != k)
                atomic_fetch_add(&bad, 1);
            /* Hold some handles for a while, across other operations. */
            int slot = (int)((r >> 48) % 8);
            if (held[slot])
                tl_cache_release(c, held[slot]);
            held[slot] = h;
        }
    }
    for (int i = 0; i < 8; i++)
        if (held[i]) {
            obj *o = tl_cache_value(held[i]);
            if (o->magic != 0x600d)
                atomic_fetch_add(&bad, 1);
            tl_cache_release(c, held[i]);
        }
    return NULL;
}

static void test_concurrent(void **state)
{
    tl_cache *c = tl_cache_new(2000);
    pthread_t th[THREADS];
    warg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (warg){c, i};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&bad), 0);
    assert_true(tl_cache_usage(c) <= 2000);
    assert_true(tl_cache_hits(c) > 0);
    assert_true(tl_cache_misses(c) > 0);
    tl_cache_free(c);
    assert_int_equal(atomic_load(&bad), 0);
    assert_int_equal(atomic_load(&objs_made), atomic_load(&objs_freed));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eviction_order), cmocka_unit_test(test_pinned_entries),
        cmocka_unit_test(test_capacity_zero),  cmocka_unit_test(test_counters_and_ids),
        cmocka_unit_test(test_many_entries),   cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
