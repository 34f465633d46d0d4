/*
 * test_block.c - the prefix-compressed block: round trips for every restart
 * interval 1..20, seeks and steps in both directions against a sorted
 * model, and hostile input (flipped bytes, truncation, bad restart arrays)
 * that must never crash and must be reported as TALUS_ECORRUPT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "table/block.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/ikey.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64: deterministic from the printed seed */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t rndn(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

typedef struct kv {
    uint8_t k[64];
    size_t klen;
    uint8_t v[40];
    size_t vlen;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    return tl_ikey_cmp_raw(x->k, x->klen, y->k, y->klen);
}

/* Random internal keys over a small alphabet (so neighbours share
 * prefixes), some users keys with several versions. Sorted and unique. */
static size_t gen_model(kv *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t uk[48];
        size_t ulen = 1 + rndn(20);
        for (size_t j = 0; j < ulen; j++)
            uk[j] = (uint8_t)("abc\x00\xff"[rndn(5)]);
        if (i > 0 && rndn(4) == 0) { /* another version of the previous user key */
            ulen = m[i - 1].klen - TL_IKEY_TRAILER;
            memcpy(uk, m[i - 1].k, ulen);
        }
        m[i].klen = tl_ikey_encode(m[i].k, uk, ulen, rnd() % 1000, TL_TYPE_VALUE);
        m[i].vlen = rndn(sizeof m[i].v);
        for (size_t j = 0; j < m[i].vlen; j++)
            m[i].v[j] = (uint8_t)rnd();
    }
    qsort(m, n, sizeof *m, kv_cmp);
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (out == 0 || kv_cmp(&m[out - 1], &m[i]) != 0)
            m[out++] = m[i];
    return out;
}

static tl_slice kslice(const kv *e)
{
    return tl_slice_make(e->k, e->klen);
}

static void build(tbl_block_builder *bb, const kv *m, size_t n, int interval, tl_buf *out)
{
    tbl_bb_init(bb, interval);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tbl_bb_add(bb, kslice(&m[i]), tl_slice_make(m[i].v, m[i].vlen)), 0);
    tl_slice s;
    assert_int_equal(tbl_bb_finish(bb, &s), 0);
    assert_int_equal(tl_buf_set(out, s.data, s.len), 0);
    tbl_bb_free(bb);
}

static void assert_at(const tbl_block_iter *it, const kv *m, size_t n, size_t i)
{
    if (i >= n) {
        assert_false(tbl_bi_valid(it));
        assert_int_equal(tbl_bi_status(it), 0);
        return;
    }
    assert_true(tbl_bi_valid(it));
    tl_slice k = tbl_bi_key(it), v = tbl_bi_value(it);
    assert_int_equal(k.len, m[i].klen);
    assert_memory_equal(k.data, m[i].k, k.len);
    assert_int_equal(v.len, m[i].vlen);
    if (v.len)
        assert_memory_equal(v.data, m[i].v, v.len);
}

/* Index of the first model entry >= t (n if none). */
static size_t lower_bound(const kv *m, size_t n, const kv *t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kv_cmp(&m[mid], t) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void check_block(const kv *m, size_t n, int interval)
{
    tbl_block_builder bb;
    tl_buf data = {0};
    build(&bb, m, n, interval, &data);
    tbl_block b;
    assert_int_equal(tbl_block_init(&b, tl_buf_slice(&data), "test", 0), 0);
    tbl_block_iter it;
    tbl_bi_init(&it, true, "test");
    tbl_bi_set(&it, &b, 0);

    size_t i = 0;
    for (tbl_bi_seek_first(&it); tbl_bi_valid(&it); tbl_bi_next(&it))
        assert_at(&it, m, n, i++);
    assert_int_equal(i, n);
    assert_int_equal(tbl_bi_status(&it), 0);
    i = n;
    for (tbl_bi_seek_last(&it); tbl_bi_valid(&it); tbl_bi_prev(&it))
        assert_at(&it, m, n, --i);
    assert_int_equal(i, 0);

    for (int q = 0; q < 200; q++) {
        kv t;
        if (n && rndn(2)) {
            t = m[rndn((uint32_t)n)];
            if (rndn(2)) /* a neighbour seqno of an existing key */
                tl_put_fixed64(t.k + t.klen - 9, tl_ikey_seq(kslice(&t)) + rndn(3) - 1);
        } else {
            gen_model(&t, 1);
        }
        size_t lb = lower_bound(m, n, &t);
        tbl_bi_seek(&it, kslice(&t));
        assert_at(&it, m, n, lb);
        /* seek_for_prev: last entry <= t */
        size_t up = lb < n && kv_cmp(&m[lb], &t) == 0 ? lb + 1 : lb;
        tbl_bi_seek_for_prev(&it, kslice(&t));
        if (up == 0) {
            assert_false(tbl_bi_valid(&it));
        } else {
            assert_at(&it, m, n, up - 1);
            /* a random walk in both directions from here */
            size_t pos = up - 1;
            for (int s = 0; s < 30 && pos < n; s++) {
                if (rndn(2)) {
                    tbl_bi_next(&it);
                    pos++;
                } else {
                    tbl_bi_prev(&it);
                    if (pos == 0)
                        break;
                    pos--;
                }
                assert_at(&it, m, n, pos);
            }
        }
    }
    tbl_bi_free(&it);
    tl_buf_free(&data);
}

static void test_round_trip(void **state)
{
    (void)state;
    kv *m = malloc(600 * sizeof *m);
    assert_non_null(m);
    for (int interval = 1; interval <= 20; interval++) {
        for (int rep = 0; rep < 4; rep++) {
            size_t want = rep == 0 ? (size_t)interval : 1 + rndn(600);
            size_t n = gen_model(m, want);
            check_block(m, n, interval);
        }
    }
    check_block(m, 0, 16); /* empty block */
    free(m);
}

static void test_bytewise_mode(void **state)
{
    (void)state;
    /* Metaindex-style block: plain byte keys. */
    tbl_block_builder bb;
    tbl_bb_init(&bb, 1);
    assert_int_equal(tbl_bb_add(&bb, tl_slice_make("filter", 6), tl_slice_make("F", 1)), 0);
    assert_int_equal(tbl_bb_add(&bb, tl_slice_make("properties", 10), tl_slice_make("P", 1)), 0);
    tl_slice s;
    assert_int_equal(tbl_bb_finish(&bb, &s), 0);
    tbl_block b;
    assert_int_equal(tbl_block_init(&b, s, "meta", 0), 0);
    tbl_block_iter it;
    tbl_bi_init(&it, false, "meta");
    tbl_bi_set(&it, &b, 0);
    tbl_bi_seek(&it, tl_slice_make("g", 1));
    assert_true(tbl_bi_valid(&it));
    assert_memory_equal(tbl_bi_value(&it).data, "P", 1);
    tbl_bi_seek_for_prev(&it, tl_slice_make("g", 1));
    assert_memory_equal(tbl_bi_value(&it).data, "F", 1);
    tbl_bi_free(&it);
    tbl_bb_free(&bb);
}

/* Walk a possibly corrupt block every way we can; it must not crash and
 * any error must be ECORRUPT. Keys returned must be well-formed. */
static void exercise(tl_slice data)
{
    tbl_block b;
    int rc = tbl_block_init(&b, data, "fuzz", 7);
    if (rc < 0) {
        assert_int_equal(rc, TALUS_ECORRUPT);
        return;
    }
    tbl_block_iter it;
    tbl_bi_init(&it, true, "fuzz");
    tbl_bi_set(&it, &b, 7);
    size_t steps = 0;
    for (tbl_bi_seek_first(&it); tbl_bi_valid(&it); tbl_bi_next(&it)) {
        assert_true(tbl_bi_key(&it).len >= TL_IKEY_TRAILER);
        assert_true(++steps <= data.len);
    }
    rc = tbl_bi_status(&it);
    assert_true(rc == 0 || rc == TALUS_ECORRUPT);
    tbl_bi_set(&it, &b, 7);
    steps = 0;
    for (tbl_bi_seek_last(&it); tbl_bi_valid(&it); tbl_bi_prev(&it))
        assert_true(++steps <= data.len);
    rc = tbl_bi_status(&it);
    assert_true(rc == 0 || rc == TALUS_ECORRUPT);
    for (int q = 0; q < 8; q++) {
        kv t;
        gen_model(&t, 1);
        tbl_bi_set(&it, &b, 7);
        tbl_bi_seek(&it, kslice(&t));
        for (int s = 0; s < 5 && tbl_bi_valid(&it); s++)
            tbl_bi_next(&it);
        tbl_bi_set(&it, &b, 7);
        tbl_bi_seek_for_prev(&it, kslice(&t));
        for (int s = 0; s < 5 && tbl_bi_valid(&it); s++)
            tbl_bi_prev(&it);
        rc = tbl_bi_status(&it);
        assert_true(rc == 0 || rc == TALUS_ECORRUPT);
    }
    tbl_bi_free(&it);
}

static void test_corrupt_random(void **state)
{
    (void)state;
    kv *m = malloc(200 * sizeof *m);
    assert_non_null(m);
    for (int round = 0; round < 300; round++) {
        size_t n = gen_model(m, 1 + rndn(200));
        tbl_block_builder bb;
        tl_buf data = {0};
        build(&bb, m, n, 1 + rndn(20), &data);
        /* Exact-size heap copies so ASan sees any overrun. */
        uint8_t *copy = malloc(data.len);
        memcpy(copy, data.data, data.len);
        int flips = 1 + rndn(4);
        for (int f = 0; f < flips; f++)
            copy[rndn((uint32_t)data.len)] ^= (uint8_t)(1u << rndn(8));
        exercise(tl_slice_make(copy, data.len));
        free(copy);
        size_t cut = rndn((uint32_t)data.len);
        copy = malloc(cut ? cut : 1);
        memcpy(copy, data.data, cut);
        exercise(tl_slice_make(copy, cut));
        /* Keep the tail (restart array) but drop bytes from the middle. */
        if (data.len > 8) {
            size_t hole = rndn((uint32_t)(data.len - 8));
            size_t len = data.len - 1;
            uint8_t *c2 = malloc(len);
            memcpy(c2, data.data, hole);
            memcpy(c2 + hole, data.data + hole + 1, len - hole);
            exercise(tl_slice_make(c2, len));
            free(c2);
        }
        free(copy);
        tl_buf_free(&data);
    }
    free(m);
}

static void test_bad_restarts(void **state)
{
    (void)state;
    kv m[64];
    size_t n = gen_model(m, 64);
    tbl_block_builder bb;
    tl_buf data = {0};
    build(&bb, m, n, 4, &data);
    size_t len = data.len;
    uint32_t nr = tl_get_fixed32(data.data + len - 4);
    assert_true(nr >= 2);
    tbl_block b;
    uint8_t *c = malloc(len);

    /* Count larger than the block. */
    memcpy(c, data.data, len);
    tl_put_fixed32(c + len - 4, (uint32_t)len);
    assert_int_equal(tbl_block_init(&b, tl_slice_make(c, len), "t", 99), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "offset 99"));
    tl_put_fixed32(c + len - 4, 0xffffffffu);
    assert_int_equal(tbl_block_init(&b, tl_slice_make(c, len), "t", 0), TALUS_ECORRUPT);
    /* First restart not 0. */
    memcpy(c, data.data, len);
    tl_put_fixed32(c + len - 4 - 4 * nr, 1);
    assert_int_equal(tbl_block_init(&b, tl_slice_make(c, len), "t", 0), TALUS_ECORRUPT);
    /* Restarts not increasing. */
    memcpy(c, data.data, len);
    tl_put_fixed32(c + len - 4 - 4 * nr + 4, 0);
    assert_int_equal(tbl_block_init(&b, tl_slice_make(c, len), "t", 0), TALUS_ECORRUPT);
    /* Restart offset past the entries. */
    memcpy(c, data.data, len);
    tl_put_fixed32(c + len - 8, (uint32_t)len);
    assert_int_equal(tbl_block_init(&b, tl_slice_make(c, len), "t", 0), TALUS_ECORRUPT);
    /* Zero restarts with entries present. */
    memcpy(c, data.data, len);
    tl_put_fixed32(c + len - 4, 0);
    assert_int_equal(tbl_block_init(&b, tl_slice_make(c, len), "t", 0), TALUS_ECORRUPT);
    /* Too short. */
    assert_int_equal(tbl_block_init(&b, tl_slice_make(c, 3), "t", 0), TALUS_ECORRUPT);

    /* A restart offset moved into the middle of an entry: init accepts it,
     * iteration and seeks must report corruption, not misread. */
    memcpy(c, data.data, len);
    uint32_t r1 = tl_get_fixed32(c + len - 4 - 4 * nr + 4);
    tl_put_fixed32(c + len - 4 - 4 * nr + 4, r1 + 1);
    if (tbl_block_init(&b, tl_slice_make(c, len), "t", 0) == 0) {
        tbl_block_iter it;
        tbl_bi_init(&it, true, "t");
        tbl_bi_set(&it, &b, 0);
        for (tbl_bi_seek_first(&it); tbl_bi_valid(&it); tbl_bi_next(&it))
            ;
        assert_int_equal(tbl_bi_status(&it), TALUS_ECORRUPT);
        tbl_bi_free(&it);
    }
    /* A shared length at a restart point. */
    memcpy(c, data.data, len);
    c[r1] = 1; /* shared = 1 at the second restart */
    assert_int_equal(tbl_block_init(&b, tl_slice_make(c, len), "t", 0), 0);
    tbl_block_iter it;
    tbl_bi_init(&it, true, "t");
    tbl_bi_set(&it, &b, 0);
    for (tbl_bi_seek_first(&it); tbl_bi_valid(&it); tbl_bi_next(&it))
        ;
    assert_int_equal(tbl_bi_status(&it), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "table t"));
    tbl_bi_set(&it, &b, 0);
    tbl_bi_seek(&it, kslice(&m[4])); /* the key at restart 1 */
    assert_int_equal(tbl_bi_status(&it), TALUS_ECORRUPT);
    tbl_bi_free(&it);
    free(c);
    tl_buf_free(&data);
}

int main(void)
{
    uint64_t seed = getenv("TEST_SEED") ? strtoull(getenv("TEST_SEED"), NULL, 0) : (uint64_t)0x7a1u;
    printf("test_block seed %llu (set TEST_SEED to replay)\n", (unsigned long long)seed);
    rng_state = seed;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bytewise_mode),
        cmocka_unit_test(test_corrupt_random),
        cmocka_unit_test(test_bad_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
