/*
 * test_bloom.c - the table bloom filter: no false negatives, a measured
 * false-positive rate within 1.5x of standard bloom theory at 10 bits/key,
 * the empty filter, and malformed filters (which must answer "maybe").
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "table/table.h"
#include "util/err.h"
#include "util/hash.h"

static uint64_t key_hash(const char *prefix, size_t i)
{
    char k[64];
    int n = snprintf(k, sizeof k, "%s%zu", prefix, i);
    return tl_xxh3(k, (size_t)n);
}

static uint64_t *hashes(const char *prefix, size_t n)
{
    uint64_t *h = malloc((n ? n : 1) * sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++)
        h[i] = key_hash(prefix, i);
    return h;
}

static void test_no_false_negatives(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 7, 100, 1000, 12345};
    for (int bits = 1; bits <= 24; bits++) {
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            size_t n = sizes[s];
            uint64_t *h = hashes("user/key/", n);
            tl_buf f = {0};
            assert_int_equal(tbl_bloom_build(h, n, bits, &f), 0);
            for (size_t i = 0; i < n; i++)
                assert_true(tbl_bloom_may_contain(tl_buf_slice(&f), h[i]));
            tl_buf_free(&f);
            free(h);
        }
    }
}

static void test_fp_rate(void **state)
{
    (void)state;
    const size_t n = 100000;
    const int bits = 10;
    uint64_t *h = hashes("present-", n);
    tl_buf f = {0};
    assert_int_equal(tbl_bloom_build(h, n, bits, &f), 0);
    tl_slice fs = tl_buf_slice(&f);
    for (size_t i = 0; i < n; i++)
        assert_true(tbl_bloom_may_contain(fs, h[i]));
    size_t fp = 0, probes = 200000;
    for (size_t i = 0; i < probes; i++)
        fp += tbl_bloom_may_contain(fs, key_hash("absent-", i));
    double k = fs.data[fs.len - 1];
    double m = (double)(fs.len - 2) * 8;
    double theory = pow(1 - exp(-k * (double)n / m), k);
    double rate = (double)fp / (double)probes;
    printf("bloom: %zu keys, %d bits/key, k=%.0f, %zu bytes: fp %.4f%% (theory %.4f%%, ratio "
           "%.2f)\n",
           n, bits, k, fs.len, rate * 100, theory * 100, rate / theory);
    assert_true(k >= 6 && k <= 7);
    assert_true(rate <= 1.5 * theory);
    tl_buf_free(&f);
    free(h);
}

static void test_empty_filter(void **state)
{
    (void)state;
    tl_buf f = {0};
    assert_int_equal(tbl_bloom_build(NULL, 0, 10, &f), 0);
    for (size_t i = 0; i < 1000; i++)
        assert_false(tbl_bloom_may_contain(tl_buf_slice(&f), key_hash("x", i)));
    tl_buf_free(&f);
    assert_int_equal(tbl_bloom_build(NULL, 0, 0, &f), TALUS_EINVAL);
    tl_buf_free(&f);
}

static void test_malformed(void **state)
{
    (void)state;
    uint64_t *h = hashes("k", 100);
    tl_buf f = {0};
    assert_int_equal(tbl_bloom_build(h, 100, 10, &f), 0);
    uint8_t *c = malloc(f.len);
    uint64_t absent = 0;
    /* Find a key the good filter rejects, so "true" below means "maybe". */
    for (size_t i = 0;; i++) {
        absent = key_hash("zzz", i);
        if (!tbl_bloom_may_contain(tl_buf_slice(&f), absent))
            break;
    }
    assert_true(tbl_bloom_may_contain(tl_slice_make(NULL, 0), absent));
    assert_true(tbl_bloom_may_contain(tl_slice_make(f.data, 1), absent));
    memcpy(c, f.data, f.len);
    c[f.len - 1] = 0; /* k = 0 */
    assert_true(tbl_bloom_may_contain(tl_slice_make(c, f.len), absent));
    c[f.len - 1] = 31; /* k too large */
    assert_true(tbl_bloom_may_contain(tl_slice_make(c, f.len), absent));
    memcpy(c, f.data, f.len);
    c[f.len - 2] = 9; /* unknown kind */
    assert_true(tbl_bloom_may_contain(tl_slice_make(c, f.len), absent));
    /* Length not a whole number of lines. */
    assert_true(tbl_bloom_may_contain(tl_slice_make(f.data + 1, f.len - 1), absent));
    free(c);
    tl_buf_free(&f);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_false_negatives),
        cmocka_unit_test(test_fp_rate),
        cmocka_unit_test(test_empty_filter),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
