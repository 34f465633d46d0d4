/*
 * test_skiplist.c - the concurrent skiplist against a sorted model:
 * sequential insert/lookup/iteration in both directions, replacement of an
 * equal (user key, seqno), and 4 writers + 2 readers at once.
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
#include <time.h>

#include "memtable/skiplist.h"
#include "talus.h"
#include "util/arena.h"
#include "util/ikey.h"

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
    rng_state = env ? strtoull(env, NULL, 0) : 0x5eed1234abcdull;
    if (!rng_state)
        rng_state = 1;
    printf("# %s: seed %llu (set TEST_SEED to vary)\n", test, (unsigned long long)rng_state);
}

/* ---- Sequential model test -------------------------------------------- */

typedef struct model_ent {
    uint8_t ikey[32];
    size_t iklen;
    uint8_t val[16];
    size_t vlen;
    int order; /* insertion order, to keep the last write of a duplicate */
} model_ent;

static int model_cmp_order(const void *a, const void *b)
{
    const model_ent *x = a, *y = b;
    int c = tl_ikey_cmp_raw(x->ikey, x->iklen, y->ikey, y->iklen);
    if (c)
        return c;
    return x->order < y->order ? -1 : (x->order > y->order);
}

static void make_key(model_ent *e, int order)
{
    /* A small alphabet and short keys give shared prefixes, keys that are
     * prefixes of others, and many (key, seq) collisions. */
    uint8_t uk[20];
    size_t ulen = 1 + rnd() % 6;
    for (size_t i = 0; i < ulen; i++)
        uk[i] = (uint8_t)('a' + rnd() % 3);
    uint64_t seq = rnd() % 8;
    if (rnd() % 50 == 0)
        seq = TL_SEQ_MAX - rnd() % 2;
    uint8_t type = (uint8_t)(TL_TYPE_VALUE + rnd() % 3);
    e->iklen = tl_ikey_encode(e->ikey, uk, ulen, seq, type);
    e->vlen = rnd() % sizeof(e->val);
    for (size_t i = 0; i < e->vlen; i++)
        e->val[i] = (uint8_t)rnd();
    e->order = order;
}

static void check_at(const sl_iter *it, const model_ent *m)
{
    assert_true(sl_iter_valid(it));
    assert_int_equal(it->key.len, m->iklen);
    assert_memory_equal(it->key.data, m->ikey, m->iklen);
    assert_int_equal(it->value.len, m->vlen);
    if (m->vlen)
        assert_memory_equal(it->value.data, m->val, m->vlen);
}

/* Index of the first model entry >= key (n if none). */
static size_t model_lower(const model_ent *m, size_t n, const uint8_t *k, size_t klen)
{
    size_t i = 0;
    while (i < n && tl_ikey_cmp_raw(m[i].ikey, m[i].iklen, k, klen) < 0)
        i++;
    return i;
}

static void test_sequential(void **state)
{
    seed_rng("sequential");
    enum { N = 3000 };
    model_ent *all = calloc(N, sizeof(*all));
    tl_arena *a = tl_arena_new(4096);
    sl_list l;
    assert_non_null(all);
    assert_non_null(a);
    assert_int_equal(sl_init(&l, a), 0);

    sl_iter it;
    sl_iter_init(&it, &l);
    sl_iter_seek_first(&it);
    assert_false(sl_iter_valid(&it));
    sl_iter_seek_last(&it);
    assert_false(sl_iter_valid(&it));

    int replaced = 0;
    for (int i = 0; i < N; i++) {
        make_key(&all[i], i);
        tl_slice ik = tl_slice_make(all[i].ikey, all[i].iklen);
        const uint8_t *old = (const uint8_t *)1;
        size_t bytes = 0;
        assert_int_equal(sl_insert(&l, tl_ikey_user(ik), tl_ikey_seq(ik), tl_ikey_type(ik),
                                   tl_slice_make(all[i].val, all[i].vlen), &old, &bytes),
                         0);
        assert_true(bytes > all[i].iklen + all[i].vlen);
        /* The replaced entry must be an earlier write of the same key. */
        int earlier = 0;
        for (int j = 0; j < i && !earlier; j++)
            earlier = tl_ikey_cmp_raw(all[j].ikey, all[j].iklen, all[i].ikey, all[i].iklen) == 0;
        assert_int_equal(old != NULL, earlier);
        replaced += earlier;
    }
    assert_true(replaced > 100); /* the key space is small on purpose */

    /* The model: sort by key then insertion order, keep the last write. */
    qsort(all, N, sizeof(*all), model_cmp_order);
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        if (n && tl_ikey_cmp_raw(all[n - 1].ikey, all[n - 1].iklen, all[i].ikey, all[i].iklen) == 0)
            all[n - 1] = all[i];
        else
            all[n++] = all[i];
    }
    assert_int_equal(n + (size_t)replaced, N);

    /* Forward and backward scans. */
    sl_iter_seek_first(&it);
    for (size_t i = 0; i < n; i++) {
        check_at(&it, &all[i]);
        sl_iter_next(&it);
    }
    assert_false(sl_iter_valid(&it));
    sl_iter_seek_last(&it);
    for (size_t i = n; i-- > 0;) {
        check_at(&it, &all[i]);
        sl_iter_prev(&it);
    }
    assert_false(sl_iter_valid(&it));

    /* Seeks to present and absent keys, both ways, then a step each way. */
    for (int r = 0; r < 2000; r++) {
        model_ent t;
        make_key(&t, 0);
        if (r % 2)
            t = all[rnd() % n];
        size_t lo = model_lower(all, n, t.ikey, t.iklen);
        sl_iter_seek(&it, tl_slice_make(t.ikey, t.iklen));
        if (lo == n) {
            assert_false(sl_iter_valid(&it));
        } else {
            check_at(&it, &all[lo]);
            sl_iter_prev(&it);
            if (lo == 0)
                assert_false(sl_iter_valid(&it));
            else
                check_at(&it, &all[lo - 1]);
        }
        /* last <= t */
        size_t le = lo < n && tl_ikey_cmp_raw(all[lo].ikey, all[lo].iklen, t.ikey, t.iklen) == 0
                        ? lo + 1
                        : lo;
        sl_iter_seek_for_prev(&it, tl_slice_make(t.ikey, t.iklen));
        if (le == 0) {
            assert_false(sl_iter_valid(&it));
        } else {
            check_at(&it, &all[le - 1]);
            sl_iter_next(&it);
            if (le == n)
                assert_false(sl_iter_valid(&it));
            else
                check_at(&it, &all[le]);
        }
    }

    /* seek_ukey: the first version with seq <= s of a user key. */
    sl_iter_seek_ukey(&it, tl_slice_make("b", 1), 3);
    size_t want = 0;
    while (want < n) {
        tl_slice ik = tl_slice_make(all[want].ikey, all[want].iklen);
        tl_slice u = tl_ikey_user(ik);
        int c = tl_bytes_cmp(u.data, u.len, (const uint8_t *)"b", 1);
        if (c > 0 || (c == 0 && tl_ikey_seq(ik) <= 3))
            break;
        want++;
    }
    if (want == n)
        assert_false(sl_iter_valid(&it));
    else
        check_at(&it, &all[want]);

    tl_arena_free(a);
    free(all);
}

static void test_replace(void **state)
{
    tl_arena *a = tl_arena_new(4096);
    sl_list l;
    assert_int_equal(sl_init(&l, a), 0);
    const uint8_t *old;
    tl_slice k = tl_slice_make("key", 3);
    assert_int_equal(sl_insert(&l, k, 5, TL_TYPE_VALUE, tl_slice_make("one", 3), &old, NULL), 0);
    assert_null(old);
    assert_int_equal(sl_insert(&l, k, 6, TL_TYPE_VALUE, tl_slice_make("six", 3), &old, NULL), 0);
    assert_null(old);
    assert_int_equal(sl_insert(&l, k, 5, TL_TYPE_TOMBSTONE, tl_slice_make("", 0), &old, NULL), 0);
    assert_non_null(old);
    tl_slice ok, ov;
    sl_entry_decode(old, &ok, &ov);
    assert_int_equal(ov.len, 3);
    assert_memory_equal(ov.data, "one", 3);
    assert_int_equal(sl_entry_type(old), TL_TYPE_VALUE);

    sl_iter it;
    sl_iter_init(&it, &l);
    sl_iter_seek_first(&it);
    assert_true(sl_iter_valid(&it));
    assert_int_equal(tl_ikey_seq(it.key), 6);
    sl_iter_next(&it);
    assert_true(sl_iter_valid(&it));
    assert_int_equal(tl_ikey_seq(it.key), 5);
    assert_int_equal(tl_ikey_type(it.key), TL_TYPE_TOMBSTONE);
    assert_int_equal(it.value.len, 0);
    sl_iter_next(&it);
    assert_false(sl_iter_valid(&it)); /* still two nodes */

    /* An empty user key and an empty value are fine. */
    assert_int_equal(
        sl_insert(&l, tl_slice_make("", 0), 1, TL_TYPE_VALUE, tl_slice_make("e", 1), &old, NULL),
        0);
    sl_iter_seek_first(&it);
    assert_int_equal(it.key.len, TL_IKEY_TRAILER);
    assert_memory_equal(it.value.data, "e", 1);
    tl_arena_free(a);
}

/* ---- Concurrent writers and readers ----------------------------------- */

enum { WRITERS = 4, READERS = 2, PER_WRITER = 12000 };

typedef struct shared {
    sl_list list;
    _Atomic long progress[WRITERS]; /* inserts of writer w that have returned */
    _Atomic int writers_done;
    _Atomic int failures;
    _Atomic long reader_scans;
} shared;

typedef struct targ {
    shared *sh;
    int id;
} targ;

/* Key i of writer w: keys of all writers interleave in the order. */
static size_t conc_key(uint8_t *buf, int w, long i)
{
    return (size_t)snprintf((char *)buf, 32, "k%07ld-%d", i * 7919 % PER_WRITER, w);
}

static void *writer_main(void *p)
{
    targ *t = p;
    shared *sh = t->sh;
    uint8_t k[32];
    for (long i = 0; i < PER_WRITER; i++) {
        size_t kl = conc_key(k, t->id, i);
        const uint8_t *old;
        uint64_t seq = 100 + (uint64_t)i % 3;
        if (sl_insert(&sh->list, tl_slice_make(k, kl), seq, TL_TYPE_VALUE, tl_slice_make(k, kl),
                      &old, NULL) != 0 ||
            old != NULL)
            atomic_fetch_add(&sh->failures, 1);
        /* Every 10th key is written again with the same seqno: replaced. */
        if (i % 10 == 0) {
            if (sl_insert(&sh->list, tl_slice_make(k, kl), seq, TL_TYPE_VALUE,
                          tl_slice_make("replaced", 8), &old, NULL) != 0 ||
                old == NULL)
                atomic_fetch_add(&sh->failures, 1);
        }
        atomic_store_explicit(&sh->progress[t->id], i + 1, memory_order_release);
    }
    atomic_fetch_add(&sh->writers_done, 1);
    return NULL;
}

static void *reader_main(void *p)
{
    targ *t = p;
    shared *sh = t->sh;
    sl_iter it;
    sl_iter_init(&it, &sh->list);
    uint64_t r = 0x9e3779b97f4a7c15ull * (uint64_t)(t->id + 1);
    uint8_t k[32], prevk[48];
    for (;;) {
        int done = atomic_load(&sh->writers_done) == WRITERS;
        /* Everything a writer had finished before we look must be there. */
        for (int w = 0; w < WRITERS; w++) {
            long got = atomic_load_explicit(&sh->progress[w], memory_order_acquire);
            for (int probe = 0; probe < 20 && got > 0; probe++) {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                long i = (long)(r % (uint64_t)got);
                size_t kl = conc_key(k, w, i);
                uint64_t seq = 100 + (uint64_t)i % 3;
                sl_iter_seek_ukey(&it, tl_slice_make(k, kl), seq);
                if (!sl_iter_valid(&it) || it.key.len != kl + TL_IKEY_TRAILER ||
                    memcmp(it.key.data, k, kl) != 0 || tl_ikey_seq(it.key) != seq)
                    atomic_fetch_add(&sh->failures, 1);
            }
        }
        /* A full scan is always strictly sorted, forward and backward. */
        size_t plen = 0;
        sl_iter_seek_first(&it);
        for (; sl_iter_valid(&it); sl_iter_next(&it)) {
            if (plen && tl_ikey_cmp_raw(prevk, plen, it.key.data, it.key.len) >= 0)
                atomic_fetch_add(&sh->failures, 1);
            plen = it.key.len;
            memcpy(prevk, it.key.data, plen);
        }
        plen = 0;
        sl_iter_seek_last(&it);
        for (int steps = 0; sl_iter_valid(&it) && steps < 200; sl_iter_prev(&it), steps++) {
            if (plen && tl_ikey_cmp_raw(prevk, plen, it.key.data, it.key.len) <= 0)
                atomic_fetch_add(&sh->failures, 1);
            plen = it.key.len;
            memcpy(prevk, it.key.data, plen);
        }
        atomic_fetch_add(&sh->reader_scans, 1);
        if (done)
            break;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    shared *sh = calloc(1, sizeof(*sh));
    tl_arena *a = tl_arena_new(64 * 1024);
    assert_non_null(sh);
    assert_int_equal(sl_init(&sh->list, a), 0);
    pthread_t th[WRITERS + READERS];
    targ args[WRITERS + READERS];
    for (int i = 0; i < WRITERS + READERS; i++) {
        args[i].sh = sh;
        args[i].id = i < WRITERS ? i : i - WRITERS;
        assert_int_equal(
            pthread_create(&th[i], NULL, i < WRITERS ? writer_main : reader_main, &args[i]), 0);
    }
    for (int i = 0; i < WRITERS + READERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&sh->failures), 0);
    assert_true(atomic_load(&sh->reader_scans) >= READERS);

    /* Final content: exactly the union, each key once, replaced ones with
     * the replacement value. */
    uint8_t *seen = calloc(WRITERS * PER_WRITER, 1);
    long *inv = calloc(PER_WRITER, sizeof(*inv)); /* key index -> i */
    for (long i = 0; i < PER_WRITER; i++)
        inv[i * 7919 % PER_WRITER] = i;
    sl_iter it;
    sl_iter_init(&it, &sh->list);
    size_t count = 0;
    for (sl_iter_seek_first(&it); sl_iter_valid(&it); sl_iter_next(&it)) {
        long idx;
        int w;
        tl_slice u = tl_ikey_user(it.key);
        char buf[32];
        memcpy(buf, u.data, u.len);
        buf[u.len] = 0;
        assert_int_equal(sscanf(buf, "k%ld-%d", &idx, &w), 2);
        assert_true(w >= 0 && w < WRITERS && idx >= 0 && idx < PER_WRITER);
        /* conc_key maps i -> i*7919 % PER_WRITER; 7919 is prime and does
         * not divide PER_WRITER, so the map is a bijection. */
        assert_false(seen[w * PER_WRITER + idx]);
        seen[w * PER_WRITER + idx] = 1;
        long i = inv[idx];
        assert_int_equal(tl_ikey_seq(it.key), 100 + i % 3);
        if (i % 10 == 0) {
            assert_int_equal(it.value.len, 8);
            assert_memory_equal(it.value.data, "replaced", 8);
        } else {
            assert_int_equal(it.value.len, u.len);
            assert_memory_equal(it.value.data, u.data, u.len);
        }
        count++;
    }
    assert_int_equal(count, WRITERS * PER_WRITER);
    free(inv);
    free(seen);
    tl_arena_free(a);
    free(sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
