/*
 * test_coding.c - fixed-width and varint coding: round trips at every
 * boundary and for random values, and the strict decoder's refusals
 * (truncated, over-long, overflowing, non-minimal) without reading past the
 * limit (inputs live in exact-size heap buffers so ASan sees any over-read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/coding.h"

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
    rng_state = env ? strtoull(env, NULL, 0) : 0xc0d1e5eedull;
    if (!rng_state)
        rng_state = 1;
    printf("%s: seed 0x%llx (set TEST_SEED to repeat)\n", test, (unsigned long long)rng_state);
}

/* A random value with a random bit length, so every varint length is hit. */
static uint64_t rnd_value(void)
{
    unsigned bits = (unsigned)(rnd() % 65);
    if (bits == 0)
        return 0;
    uint64_t v = rnd();
    return bits == 64 ? v : v & ((1ull << bits) - 1);
}

/* Copy to an exact-size heap buffer (so an over-read is caught by ASan). */
static uint8_t *exact(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, p, n);
    return b;
}

static size_t dec64(const uint8_t *p, size_t n, uint64_t *v)
{
    uint8_t *b = exact(p, n);
    size_t r = tl_get_varint64(b, b + n, v);
    free(b);
    return r;
}

static size_t dec32(const uint8_t *p, size_t n, uint32_t *v)
{
    uint8_t *b = exact(p, n);
    size_t r = tl_get_varint32(b, b + n, v);
    free(b);
    return r;
}

static void test_fixed(void **state)
{
    uint8_t b[8];
    const uint16_t v16[] = {0, 1, 0xff, 0x100, 0x7fff, 0x8000, 0xffff};
    for (size_t i = 0; i < sizeof v16 / sizeof v16[0]; i++) {
        tl_put_fixed16(b, v16[i]);
        assert_int_equal(tl_get_fixed16(b), v16[i]);
    }
    const uint32_t v32[] = {0, 1, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, UINT32_MAX};
    for (size_t i = 0; i < sizeof v32 / sizeof v32[0]; i++) {
        tl_put_fixed32(b, v32[i]);
        assert_int_equal(tl_get_fixed32(b), v32[i]);
    }
    const uint64_t v64[] = {0, 1, UINT32_MAX, 1ull << 32, INT64_MAX, 1ull << 63, UINT64_MAX};
    for (size_t i = 0; i < sizeof v64 / sizeof v64[0]; i++) {
        tl_put_fixed64(b, v64[i]);
        assert_true(tl_get_fixed64(b) == v64[i]);
    }
    /* Little-endian on disk, whatever the host. */
    tl_put_fixed32(b, 0x04030201u);
    assert_memory_equal(b, "\x01\x02\x03\x04", 4);
    tl_put_fixed64(b, 0x0807060504030201ull);
    assert_memory_equal(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    tl_put_fixed16(b, 0xbeef);
    assert_int_equal(b[0], 0xef);
    assert_int_equal(b[1], 0xbe);

    seed_rng("test_fixed");
    for (int i = 0; i < 10000; i++) {
        uint64_t v = rnd();
        tl_put_fixed64(b, v);
        assert_true(tl_get_fixed64(b) == v);
        tl_put_fixed32(b, (uint32_t)v);
        assert_int_equal(tl_get_fixed32(b), (uint32_t)v);
        tl_put_fixed16(b, (uint16_t)v);
        assert_int_equal(tl_get_fixed16(b), (uint16_t)v);
    }
}

static void roundtrip64(uint64_t v)
{
    uint8_t b[TL_MAX_VARINT64];
    size_t n = tl_put_varint64(b, v);
    assert_true(n >= 1 && n <= TL_MAX_VARINT64);
    assert_int_equal(n, tl_varint_len(v));
    uint64_t got = ~v;
    assert_int_equal(dec64(b, n, &got), n);
    assert_true(got == v);
    /* Every strict prefix is truncated. */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(dec64(b, k, &got), 0);
}

static void roundtrip32(uint32_t v)
{
    uint8_t b[TL_MAX_VARINT64];
    size_t n = tl_put_varint32(b, v);
    assert_true(n >= 1 && n <= TL_MAX_VARINT32);
    assert_int_equal(n, tl_varint_len(v));
    uint32_t got = ~v;
    assert_int_equal(dec32(b, n, &got), n);
    assert_int_equal(got, v);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(dec32(b, k, &got), 0);
    /* A varint32 also decodes as a varint64. */
    uint64_t g64;
    assert_int_equal(dec64(b, n, &g64), n);
    assert_true(g64 == v);
}

static void test_varint_boundaries(void **state)
{
    for (unsigned k = 0; k <= 64; k++) {
        uint64_t p = k == 64 ? 0 : 1ull << k;
        roundtrip64(p);
        roundtrip64(p - 1);
        roundtrip64(p + 1);
        if (k <= 32) {
            roundtrip32((uint32_t)p);
            roundtrip32((uint32_t)(p - 1));
            roundtrip32((uint32_t)(p + 1));
        }
    }
    /* Length steps every 7 bits. */
    for (unsigned len = 1; len <= 10; len++) {
        uint64_t lo = len == 1 ? 0 : 1ull << (7 * (len - 1));
        assert_int_equal(tl_varint_len(lo), len);
        if (len < 10)
            assert_int_equal(tl_varint_len((1ull << (7 * len)) - 1), len);
    }
    assert_int_equal(tl_varint_len(UINT64_MAX), 10);
    assert_int_equal(tl_varint_len(UINT32_MAX), 5);
}

static void test_varint_random(void **state)
{
    seed_rng("test_varint_random");
    for (int i = 0; i < 20000; i++) {
        uint64_t v = rnd_value();
        roundtrip64(v);
        roundtrip32((uint32_t)v);
    }
    /* A stream of varints decodes back in order. */
    uint8_t buf[1000 * TL_MAX_VARINT64];
    uint64_t vals[1000];
    size_t at = 0;
    for (int i = 0; i < 1000; i++) {
        vals[i] = rnd_value();
        at += tl_put_varint64(buf + at, vals[i]);
    }
    uint8_t *b = exact(buf, at);
    const uint8_t *p = b, *limit = b + at;
    for (int i = 0; i < 1000; i++) {
        uint64_t v;
        size_t n = tl_get_varint64(p, limit, &v);
        assert_true(n > 0);
        assert_true(v == vals[i]);
        p += n;
    }
    assert_ptr_equal(p, limit);
    uint64_t v;
    assert_int_equal(tl_get_varint64(p, limit, &v), 0);
    free(b);
}

static void test_varint_strict(void **state)
{
    uint64_t v = 0;
    uint32_t v32 = 0;

    /* Empty input. */
    assert_int_equal(dec64((const uint8_t *)"", 0, &v), 0);
    assert_int_equal(dec32((const uint8_t *)"", 0, &v32), 0);

    /* Continuation bit set on the last available byte. */
    assert_int_equal(dec64((const uint8_t *)"\x80", 1, &v), 0);
    assert_int_equal(dec64((const uint8_t *)"\xff\xff\xff", 3, &v), 0);
    assert_int_equal(dec32((const uint8_t *)"\xff\xff", 2, &v32), 0);

    /* Over-long: 11 bytes (10 continuation bytes, then a terminator). */
    const uint8_t over[11] = {0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    assert_int_equal(dec64(over, 11, &v), 0);
    /* 10 bytes all with continuation: no terminator within the maximum. */
    assert_int_equal(dec64(over, 10, &v), 0);

    /* Overflow: the 10th byte may only carry bit 63. */
    const uint8_t max64[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(dec64(max64, 10, &v), 10);
    assert_true(v == UINT64_MAX);
    uint8_t ovf[10];
    memcpy(ovf, max64, 10);
    for (int last = 0x02; last <= 0x7f; last++) {
        ovf[9] = (uint8_t)last;
        assert_int_equal(dec64(ovf, 10, &v), 0);
    }

    /* varint32: at most 5 bytes, value must fit 32 bits. */
    const uint8_t max32[5] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(dec32(max32, 5, &v32), 5);
    assert_int_equal(v32, UINT32_MAX);
    const uint8_t ovf32[5] = {0xff, 0xff, 0xff, 0xff, 0x10};
    assert_int_equal(dec32(ovf32, 5, &v32), 0);
    assert_int_equal(dec64(ovf32, 5, &v), 5); /* fine as a 64-bit value */
    const uint8_t six[6] = {0x81, 0x80, 0x80, 0x80, 0x80, 0x01};
    assert_int_equal(dec32(six, 6, &v32), 0);

    /* Non-minimal: a trailing zero continuation byte, at every length. */
    uint8_t nm[TL_MAX_VARINT64];
    for (size_t len = 2; len <= TL_MAX_VARINT64; len++) {
        for (size_t i = 0; i + 1 < len; i++)
            nm[i] = i == 0 ? 0x85 : 0x80;
        nm[len - 1] = 0x00;
        assert_int_equal(dec64(nm, len, &v), 0);
        if (len <= TL_MAX_VARINT32)
            assert_int_equal(dec32(nm, len, &v32), 0);
    }
    assert_int_equal(dec64((const uint8_t *)"\x80\x00", 2, &v), 0);
    /* Zero itself is the single byte 0x00. */
    assert_int_equal(dec64((const uint8_t *)"\x00", 1, &v), 1);
    assert_true(v == 0);

    /* The decoder stops at the terminator and ignores what follows. */
    assert_int_equal(dec64((const uint8_t *)"\x96\x01\xff\xff", 4, &v), 2);
    assert_true(v == 150);
}

/* Random garbage of every short length: whatever it returns must be a
 * length within the input, and a decoded value must re-encode to exactly
 * the consumed bytes (strictness means one encoding per value). */
static void test_varint_fuzz(void **state)
{
    seed_rng("test_varint_fuzz");
    uint8_t in[12];
    for (int iter = 0; iter < 50000; iter++) {
        size_t n = (size_t)(rnd() % 13);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            /* Bias towards continuation bytes so long varints occur. */
            in[i] = (uint8_t)((r & 3) ? (r >> 8) | 0x80 : r >> 8);
        }
        uint64_t v;
        size_t got = dec64(in, n, &v);
        assert_true(got <= n && got <= TL_MAX_VARINT64);
        if (got) {
            uint8_t re[TL_MAX_VARINT64];
            assert_int_equal(tl_put_varint64(re, v), got);
            assert_memory_equal(re, in, got);
        }
        uint32_t v32;
        got = dec32(in, n, &v32);
        assert_true(got <= n && got <= TL_MAX_VARINT32);
        if (got) {
            uint8_t re[TL_MAX_VARINT64];
            assert_int_equal(tl_put_varint32(re, v32), got);
            assert_memory_equal(re, in, got);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed),         cmocka_unit_test(test_varint_boundaries),
        cmocka_unit_test(test_varint_random), cmocka_unit_test(test_varint_strict),
        cmocka_unit_test(test_varint_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
