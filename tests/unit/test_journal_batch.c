/*
 * test_journal_batch.c - journal batch payloads (journal/batch.c): round
 * trips with random entries (empty values, 64 KiB keys, binary bytes), the
 * limits enforced when encoding, and hostile input to the decoder (every
 * truncation, trailing bytes, random bit flips, pure noise): never a crash
 * or an out-of-bounds read, always ECORRUPT or a valid parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "talus.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/ikey.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static size_t rnd_n(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* ---- batch payloads ------------------------------------------------------ */

static void random_entry(jnl_entry *e, uint8_t *kbuf, uint8_t *vbuf)
{
    e->tree_id = rnd_n(4) == 0 ? (uint32_t)rnd() : (uint32_t)rnd_n(5);
    e->type = (uint8_t)(TL_TYPE_VALUE + rnd_n(TL_TYPE_RANGE_TOMBSTONE));
    size_t klen = rnd_n(50) == 0 ? TALUS_MAX_KEY : 1 + rnd_n(40);
    size_t vlen = rnd_n(3) == 0 ? 0 : (rnd_n(40) == 0 ? 100000 : rnd_n(300));
    rnd_bytes(kbuf, klen);
    rnd_bytes(vbuf, vlen);
    e->key = tl_slice_make(kbuf, klen);
    e->value = tl_slice_make(vbuf, vlen);
}

static void test_batch_roundtrip(void **state)
{
    (void)state;
    enum { MAXE = 40 };
    uint8_t *kb = malloc(MAXE * (size_t)TALUS_MAX_KEY), *vb = malloc(MAXE * 100000u);
    assert_true(kb && vb);
    tl_buf out = {0};
    for (int iter = 0; iter < 200; iter++) {
        jnl_entry es[MAXE];
        uint32_t count = (uint32_t)rnd_n(MAXE);
        uint64_t seq = iter % 3 == 0 ? UINT64_MAX - (uint64_t)iter : rnd() >> rnd_n(64);
        assert_int_equal(jnl_batch_begin(&out, seq, count), 0);
        for (uint32_t i = 0; i < count; i++) {
            random_entry(&es[i], kb + i * (size_t)TALUS_MAX_KEY, vb + i * 100000u);
            assert_int_equal(jnl_batch_add(&out, &es[i]), 0);
        }
        uint64_t gseq;
        uint32_t gcount;
        jnl_batch_iter it;
        assert_int_equal(jnl_batch_open(tl_buf_slice(&out), &gseq, &gcount, &it), 0);
        assert_true(gseq == seq);
        assert_int_equal(gcount, count);
        jnl_entry e;
        for (uint32_t i = 0; i < count; i++) {
            assert_int_equal(jnl_batch_next(&it, &e), 1);
            assert_int_equal(e.tree_id, es[i].tree_id);
            assert_int_equal(e.type, es[i].type);
            assert_int_equal(e.key.len, es[i].key.len);
            assert_memory_equal(e.key.data, es[i].key.data, e.key.len);
            assert_int_equal(e.value.len, es[i].value.len);
            if (e.value.len)
                assert_memory_equal(e.value.data, es[i].value.data, e.value.len);
        }
        assert_int_equal(jnl_batch_next(&it, &e), 0);
    }
    tl_buf_free(&out);
    free(kb);
    free(vb);
}

static void test_batch_limits(void **state)
{
    (void)state;
    tl_buf out = {0};
    uint8_t k[8] = "k";
    assert_int_equal(jnl_batch_begin(&out, 1, 1), 0);
    jnl_entry e = {.tree_id = 0, .type = TL_TYPE_VALUE, .key = tl_slice_make(k, 1)};
    e.type = 0;
    assert_int_equal(jnl_batch_add(&out, &e), TALUS_EINVAL);
    e.type = TL_TYPE_RANGE_TOMBSTONE + 1;
    assert_int_equal(jnl_batch_add(&out, &e), TALUS_EINVAL);
    e.type = TL_TYPE_TOMBSTONE;
    e.key.len = 0;
    assert_int_equal(jnl_batch_add(&out, &e), TALUS_EINVAL);
    e.key.len = TALUS_MAX_KEY + 1;
    assert_int_equal(jnl_batch_add(&out, &e), TALUS_ETOOBIG);
    e.key.len = 1;
    /* Checked before any byte is read. */
    e.value = tl_slice_make(k, (size_t)TALUS_MAX_VALUE + 1);
    assert_int_equal(jnl_batch_add(&out, &e), TALUS_ETOOBIG);
    e.value.len = 0;
    assert_int_equal(jnl_batch_add(&out, &e), 0);

    /* Hand-made hostile payloads. */
    uint64_t seq;
    uint32_t count;
    jnl_batch_iter it;
    jnl_entry g;
    static const struct {
        const char *bytes;
        size_t n;
        int open_rc;
    } cases[] = {
        {"", 0, TALUS_ECORRUPT},                             /* no seqno */
        {"\x80", 1, TALUS_ECORRUPT},                         /* truncated varint */
        {"\x01\x80\x00", 3, TALUS_ECORRUPT},                 /* non-minimal count */
        {"\x01\x02\x00\x01\x01\x61\x00", 7, TALUS_ECORRUPT}, /* 2 entries, room for 1 */
        {"\x01\x01\x00\x07\x01\x61\x00", 7, 0},              /* bad type */
        {"\x01\x01\x00\x01\x00\x00", 6, TALUS_ECORRUPT},     /* count 1 in 4 bytes */
        {"\x01\x01\x00\x01\x00\x61\x00", 7, 0},              /* key length 0 */
        {"\x01\x01\x00\x01\x05\x61\x00", 7, 0},              /* key past end */
        {"\x01\x01\x00\x01\x01\x61\x01", 7, 0},              /* value past end */
        {"\x01\x01\x00\x01\x01\x61\x00\x00", 8, 0},          /* trailing byte */
        {"\x01\x01\x00\x01\x83\x80\x04\x61\x00", 9, 0},      /* key length 65539 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = jnl_batch_open(tl_slice_make(cases[i].bytes, cases[i].n), &seq, &count, &it);
        assert_int_equal(rc, cases[i].open_rc);
        if (rc == 0) {
            rc = jnl_batch_next(&it, &g);
            if (rc == 1)
                rc = jnl_batch_next(&it, &g);
            assert_int_equal(rc, TALUS_ECORRUPT);
            assert_non_null(strstr(tl_errmsg(), "payload offset"));
        }
    }
    tl_buf_free(&out);
}

/* Parses p fully: 0 valid, or the error; never reads out of bounds (ASan). */
static int parse_all(const uint8_t *p, size_t n)
{
    uint64_t seq;
    uint32_t count, seen = 0;
    jnl_batch_iter it;
    int rc = jnl_batch_open(tl_slice_make(p, n), &seq, &count, &it);
    if (rc < 0)
        return rc;
    jnl_entry e;
    while ((rc = jnl_batch_next(&it, &e)) == 1) {
        assert_true(e.key.data >= p && e.key.data + e.key.len <= p + n);
        assert_true(e.value.data >= p && e.value.data + e.value.len <= p + n);
        assert_true(tl_vtype_valid(e.type));
        seen++;
    }
    if (rc == 0)
        assert_int_equal(seen, count);
    return rc;
}

static void test_batch_hostile(void **state)
{
    (void)state;
    tl_buf out = {0};
    uint8_t kb[64], vb[300];
    for (int iter = 0; iter < 60; iter++) {
        uint32_t count = (uint32_t)rnd_n(6);
        assert_int_equal(jnl_batch_begin(&out, rnd(), count), 0);
        for (uint32_t i = 0; i < count; i++) {
            jnl_entry e = {.tree_id = (uint32_t)rnd_n(1000),
                           .type = (uint8_t)(1 + rnd_n(6)),
                           .key = tl_slice_make(kb, 1 + rnd_n(sizeof kb)),
                           .value = tl_slice_make(vb, rnd_n(sizeof vb))};
            rnd_bytes(kb, sizeof kb);
            rnd_bytes(vb, sizeof vb);
            assert_int_equal(jnl_batch_add(&out, &e), 0);
        }
        /* Copies to exact-size heap blocks so ASan sees any overread. */
        for (size_t cut = 0; cut < out.len; cut++) {
            uint8_t *c = malloc(cut ? cut : 1);
            memcpy(c, out.data, cut);
            assert_int_equal(parse_all(c, cut), TALUS_ECORRUPT);
            free(c);
        }
        uint8_t *c = malloc(out.len + 1);
        memcpy(c, out.data, out.len);
        c[out.len] = (uint8_t)rnd();
        assert_int_equal(parse_all(c, out.len), 0);
        assert_int_equal(parse_all(c, out.len + 1), TALUS_ECORRUPT);
        for (int f = 0; f < 200; f++) {
            memcpy(c, out.data, out.len);
            int flips = 1 + (int)rnd_n(3);
            for (int k = 0; k < flips; k++)
                c[rnd_n(out.len)] ^= (uint8_t)(1u << rnd_n(8));
            int rc = parse_all(c, out.len);
            assert_true(rc == 0 || rc == TALUS_ECORRUPT);
        }
        free(c);
    }
    /* Pure noise. */
    uint8_t noise[256];
    for (int i = 0; i < 20000; i++) {
        size_t n = rnd_n(sizeof noise);
        rnd_bytes(noise, n);
        if (n > 1 && rnd_n(2))
            noise[1] = (uint8_t)rnd_n(4); /* plausible counts */
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, noise, n);
        int rc = parse_all(c, n);
        assert_true(rc == 0 || rc == TALUS_ECORRUPT);
        free(c);
    }
    tl_buf_free(&out);
}

int main(void)
{
    uint64_t seed = getenv("TEST_SEED") ? strtoull(getenv("TEST_SEED"), NULL, 0) : 0xba7cu;
    printf("test_journal_batch seed %llu (set TEST_SEED to replay)\n", (unsigned long long)seed);
    rng_state = seed ? seed : 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_roundtrip),
        cmocka_unit_test(test_batch_limits),
        cmocka_unit_test(test_batch_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
