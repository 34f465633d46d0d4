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

/* Writers claim key numbers from one shared counter, so they insert next
 * to each other at the same time: the first half in ascending order (all
 * writers append at the tail and fight over the same links), the second
 * half scattered. Readers check that everything whose insert has returned
 * is found and that the list is always sorted. */
enum { WRITERS = 4, READERS = 2, NKEYS = 60000, HALF = NKEYS / 2 };

typedef struct shared {
    sl_list list;
    _Atomic long next;           /* next key number to claim */
    _Atomic uint8_t done[NKEYS]; /* set once the insert of key i returned */
    _Atomic long ndone;
    _Atomic int writers_done;
    _Atomic int failures;
    _Atomic long reader_scans;
} shared;

typedef struct targ {
    shared *sh;
    int id;
} targ;

/* The key number inserted at claim i (a bijection: 7919 is a prime that
 * does not divide HALF). */
static long conc_index(long i)
{
    return i < HALF ? i : HALF + (i - HALF) * 7919 % HALF;
}

static size_t conc_key(uint8_t *buf, long idx)
{
    return (size_t)snprintf((char *)buf, 32, "k%07ld", idx);
}

static uint64_t conc_seq(long idx)
{
    return 100 + (uint64_t)idx % 3;
}

static void *writer_main(void *p)
{
    shared *sh = ((targ *)p)->sh;
    uint8_t k[32];
    for (;;) {
        long i = atomic_fetch_add(&sh->next, 1);
        if (i >= NKEYS)
            break;
        long idx = conc_index(i);
        size_t kl = conc_key(k, idx);
        const uint8_t *old;
        if (sl_insert(&sh->list, tl_slice_make(k, kl), conc_seq(idx), TL_TYPE_VALUE,
                      tl_slice_make(k, kl), &old, NULL) != 0 ||
            old != NULL)
            atomic_fetch_add(&sh->failures, 1);
        /* Every 10th key is written again with the same seqno: replaced. */
        if (idx % 10 == 0) {
            if (sl_insert(&sh->list, tl_slice_make(k, kl), conc_seq(idx), TL_TYPE_VALUE,
                          tl_slice_make("replaced", 8), &old, NULL) != 0 ||
                old == NULL)
                atomic_fetch_add(&sh->failures, 1);
        }
        atomic_store_explicit(&sh->done[idx], 1, memory_order_release);
        atomic_fetch_add(&sh->ndone, 1);
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
        int finished = atomic_load(&sh->writers_done) == WRITERS;
        /* Probe keys near the hot tail and anywhere: a key whose insert
         * returned before we looked must be there. */
        long claimed = atomic_load(&sh->next);
        if (claimed > NKEYS)
            claimed = NKEYS;
        for (int probe = 0; probe < 200 && claimed > 0; probe++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            long i = probe % 2 ? (long)(r % (uint64_t)claimed)
                               : claimed - 1 - (long)(r % 64 % (uint64_t)claimed);
            long idx = conc_index(i);
            if (!atomic_load_explicit(&sh->done[idx], memory_order_acquire))
                continue;
            size_t kl = conc_key(k, idx);
            sl_iter_seek_ukey(&it, tl_slice_make(k, kl), conc_seq(idx));
            if (!sl_iter_valid(&it) || it.key.len != kl + TL_IKEY_TRAILER ||
                memcmp(it.key.data, k, kl) != 0 || tl_ikey_seq(it.key) != conc_seq(idx))
                atomic_fetch_add(&sh->failures, 1);
        }
        /* Scans are strictly sorted, forward and backward. */
        size_t plen = 0;
        long seen = 0, before = atomic_load(&sh->ndone);
        sl_iter_seek_first(&it);
        for (; sl_iter_valid(&it); sl_iter_next(&it), seen++) {
            if (plen && tl_ikey_cmp_raw(prevk, plen, it.key.data, it.key.len) >= 0)
                atomic_fetch_add(&sh->failures, 1);
            plen = it.key.len;
            memcpy(prevk, it.key.data, plen);
        }
        if (seen < before) /* a finished insert was missed */
            atomic_fetch_add(&sh->failures, 1);
        plen = 0;
        sl_iter_seek_last(&it);
        for (int steps = 0; sl_iter_valid(&it) && steps < 200; sl_iter_prev(&it), steps++) {
            if (plen && tl_ikey_cmp_raw(prevk, plen, it.key.data, it.key.len) <= 0)
                atomic_fetch_add(&sh->failures, 1);
            plen = it.key.len;
            memcpy(prevk, it.key.data, plen);
        }
        atomic_fetch_add(&sh->reader_scans, 1);
        if (finished)
            break;
    }
    return NULL;
}

static void concurrent_round(void)
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

    /* Final content: exactly the union, each key once, in order, replaced
     * ones with the replacement value. */
    sl_iter it;
    sl_iter_init(&it, &sh->list);
    long idx = 0;
    uint8_t k[32];
    for (sl_iter_seek_first(&it); sl_iter_valid(&it); sl_iter_next(&it), idx++) {
        assert_true(idx < NKEYS);
        size_t kl = conc_key(k, idx);
        tl_slice u = tl_ikey_user(it.key);
        assert_int_equal(u.len, kl);
        assert_memory_equal(u.data, k, kl);
        assert_int_equal(tl_ikey_seq(it.key), conc_seq(idx));
        if (idx % 10 == 0) {
            assert_int_equal(it.value.len, 8);
            assert_memory_equal(it.value.data, "replaced", 8);
        } else {
            assert_int_equal(it.value.len, kl);
            assert_memory_equal(it.value.data, k, kl);
        }
    }
    assert_int_equal(idx, NKEYS);
    tl_arena_free(a);
    free(sh);
}

/* Races are a matter of timing (CI has 2 cores): several rounds. */
static void test_concurrent(void **state)
{
    for (int round = 0; round < 4; round++)
        concurrent_round();
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
