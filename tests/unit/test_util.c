/*
 * test_util.c - the small util pieces: tl_buf, xxh3 wrappers (against
 * libxxhash itself), the arena (alignment, big blocks, 4 threads at once),
 * internal key encoding and order, error messages and talus_strerror.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "talus.h"
#include "util/arena.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/ikey.h"
#include "util/slice.h"

static uint64_t rng_state;

static uint64_t rnd_r(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint64_t rnd(void)
{
    return rnd_r(&rng_state);
}

static void seed_rng(const char *test)
{
    const char *env = getenv("TEST_SEED");
    rng_state = env ? strtoull(env, NULL, 0) : 0x07e15eedull;
    if (!rng_state)
        rng_state = 1;
    printf("%s: seed 0x%llx (set TEST_SEED to repeat)\n", test, (unsigned long long)rng_state);
}

/* ---- tl_buf --------------------------------------------------------- */

static void test_buf(void **state)
{
    tl_buf b = {0};
    assert_int_equal(tl_buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    assert_int_equal(tl_buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, 3);

    /* Growth keeps the content. */
    for (int i = 0; i < 1000; i++) {
        uint8_t c = (uint8_t)i;
        assert_int_equal(tl_buf_append(&b, &c, 1), 0);
    }
    assert_int_equal(b.len, 1003);
    assert_true(b.cap >= b.len);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(b.data[3 + i], (uint8_t)i);

    assert_int_equal(tl_buf_set(&b, "xy", 2), 0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "xy", 2);
    tl_slice s = tl_buf_slice(&b);
    assert_ptr_equal(s.data, b.data);
    assert_int_equal(s.len, 2);

    tl_buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(tl_buf_put_varint64(&b, 300), 0);
    assert_int_equal(tl_buf_put_fixed32(&b, 0xdeadbeef), 0);
    assert_int_equal(tl_buf_put_fixed64(&b, 0x0102030405060708ull), 0);
    assert_int_equal(tl_buf_put_lenbytes(&b, "hello", 5), 0);
    const uint8_t *p = b.data, *limit = b.data + b.len;
    uint64_t v;
    size_t n = tl_get_varint64(p, limit, &v);
    assert_int_equal(n, 2);
    assert_true(v == 300);
    p += n;
    assert_int_equal(tl_get_fixed32(p), 0xdeadbeef);
    p += 4;
    assert_true(tl_get_fixed64(p) == 0x0102030405060708ull);
    p += 8;
    uint32_t l;
    n = tl_get_varint32(p, limit, &l);
    assert_int_equal(n, 1);
    assert_int_equal(l, 5);
    p += n;
    assert_memory_equal(p, "hello", 5);
    assert_ptr_equal(p + 5, limit);

    /* Over-long length: refused before touching the bytes. */
    size_t before = b.len;
    if (SIZE_MAX > UINT32_MAX) {
        assert_int_equal(tl_buf_put_lenbytes(&b, NULL, (size_t)UINT32_MAX + 1), TALUS_ETOOBIG);
        assert_int_equal(b.len, before);
    }
    /* Reserving an absurd amount fails cleanly. */
    assert_int_equal(tl_buf_reserve(&b, SIZE_MAX), TALUS_ENOMEM);
    assert_int_equal(b.len, before);

    tl_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    tl_buf_free(&b); /* twice is fine */
}

static void test_slice(void **state)
{
    tl_slice a = tl_slice_make("abc", 3), ab = tl_slice_make("ab", 2), e = tl_slice_make("", 0);
    assert_true(tl_slice_cmp(a, a) == 0);
    assert_true(tl_slice_cmp(ab, a) < 0);
    assert_true(tl_slice_cmp(a, ab) > 0);
    assert_true(tl_slice_cmp(e, ab) < 0);
    assert_true(tl_slice_cmp(e, e) == 0);
    assert_true(tl_slice_cmp(tl_slice_make("\xff", 1), tl_slice_make("\x01\x02", 2)) > 0);
    assert_true(tl_slice_starts_with(a, ab));
    assert_true(tl_slice_starts_with(a, e));
    assert_false(tl_slice_starts_with(ab, a));
}

/* ---- hashes --------------------------------------------------------- */

static void test_hash(void **state)
{
    /* Known answer: XXH3-64 of the empty input. */
    assert_true(tl_xxh3("", 0) == 0x2D06800538D394C2ull);
    assert_true(XXH3_64bits("", 0) == 0x2D06800538D394C2ull);

    seed_rng("test_hash");
    uint8_t data[4096];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)rnd();
    const size_t lens[] = {1, 3, 4, 8, 16, 17, 128, 129, 240, 241, 1000, 4096};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        assert_true(tl_xxh3(data, n) == XXH3_64bits(data, n));
        assert_true(tl_xxh3_seed(data, n, 42) == XXH3_64bits_withSeed(data, n, 42));
        /* Two pieces hash like their concatenation, at every split. */
        for (size_t cut = 0; cut <= n; cut += n / 7 + 1)
            assert_true(tl_xxh3_2(data, cut, data + cut, n - cut) == tl_xxh3(data, n));
    }
    assert_true(tl_xxh3("abc", 3) != tl_xxh3("abd", 3));
    assert_true(tl_xxh3_seed("abc", 3, 1) != tl_xxh3_seed("abc", 3, 2));
}

/* ---- arena ---------------------------------------------------------- */

static void test_arena_basic(void **state)
{
    tl_arena *a = tl_arena_new(4096);
    assert_non_null(a);
    size_t u0 = tl_arena_usage(a);
    assert_true(u0 >= 4096);

    uint8_t *prev = NULL;
    for (size_t n = 0; n < 300; n++) {
        uint8_t *p = tl_arena_alloc(a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 8, 0);
        memset(p, (int)n, n);
        if (prev)
            assert_true(p != prev);
        prev = p;
    }
    /* Larger than a quarter block: its own block, usage grows by at least
     * its size, and the memory is all usable. */
    size_t u1 = tl_arena_usage(a);
    uint8_t *big = tl_arena_alloc(a, 100000);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % 8, 0);
    memset(big, 0xab, 100000);
    assert_true(tl_arena_usage(a) >= u1 + 100000);
    /* Small allocations still come from the current block afterwards. */
    uint8_t *s = tl_arena_alloc(a, 16);
    assert_non_null(s);
    memset(s, 1, 16);
    /* An impossible request is NULL, not a crash. */
    assert_null(tl_arena_alloc(a, SIZE_MAX));
    assert_null(tl_arena_alloc(a, SIZE_MAX - 4));
    tl_arena_free(a);
    tl_arena_free(NULL);
}

#define ARENA_THREADS 4
#define ARENA_ALLOCS 20000

struct arena_job {
    tl_arena *a;
    int id;
    uint64_t seed;
    uint8_t *ptr[ARENA_ALLOCS];
    uint32_t len[ARENA_ALLOCS];
};

static void *arena_worker(void *arg)
{
    struct arena_job *j = arg;
    for (int i = 0; i < ARENA_ALLOCS; i++) {
        uint64_t r = rnd_r(&j->seed);
        /* Mostly small, now and then a big one that gets its own block. */
        uint32_t n = (r % 100 == 0) ? (uint32_t)(20000 + r % 5000) : (uint32_t)(1 + r % 200);
        uint8_t *p = tl_arena_alloc(j->a, n);
        if (!p || (uintptr_t)p % 8)
            return (void *)1;
        memset(p, (j->id << 4) | (i & 0xf), n);
        j->ptr[i] = p;
        j->len[i] = n;
    }
    return NULL;
}

static void test_arena_threads(void **state)
{
    seed_rng("test_arena_threads");
    tl_arena *a = tl_arena_new(64 * 1024);
    assert_non_null(a);
    struct arena_job *jobs = calloc(ARENA_THREADS, sizeof *jobs);
    assert_non_null(jobs);
    pthread_t th[ARENA_THREADS];
    for (int t = 0; t < ARENA_THREADS; t++) {
        jobs[t].a = a;
        jobs[t].id = t + 1;
        jobs[t].seed = rnd() | 1;
        assert_int_equal(pthread_create(&th[t], NULL, arena_worker, &jobs[t]), 0);
    }
    size_t total = 0;
    for (int t = 0; t < ARENA_THREADS; t++) {
        void *ret;
        assert_int_equal(pthread_join(th[t], &ret), 0);
        assert_null(ret);
    }
    /* Every chunk still holds its own pattern: no two overlapped. */
    for (int t = 0; t < ARENA_THREADS; t++) {
        for (int i = 0; i < ARENA_ALLOCS; i++) {
            uint8_t want = (uint8_t)((jobs[t].id << 4) | (i & 0xf));
            const uint8_t *p = jobs[t].ptr[i];
            for (uint32_t k = 0; k < jobs[t].len[i]; k++)
                if (p[k] != want)
                    fail_msg("thread %d alloc %d byte %u overwritten", t, i, k);
            total += jobs[t].len[i];
        }
    }
    assert_true(tl_arena_usage(a) >= total);
    free(jobs);
    tl_arena_free(a);
}

/* ---- internal keys -------------------------------------------------- */

static tl_slice mk_ikey(uint8_t *buf, const char *ukey, uint64_t seq, uint8_t type)
{
    size_t n = tl_ikey_encode(buf, (const uint8_t *)ukey, strlen(ukey), seq, type);
    return tl_slice_make(buf, n);
}

static void test_ikey(void **state)
{
    uint8_t b1[64], b2[64];
    tl_slice k = mk_ikey(b1, "hello", 0x0102030405060708ull, TL_TYPE_VALUE);
    assert_int_equal(k.len, 5 + TL_IKEY_TRAILER);
    assert_memory_equal(k.data, "hello", 5);
    /* Trailer: fixed64 seq (little-endian) then the type byte. */
    assert_memory_equal(k.data + 5, "\x08\x07\x06\x05\x04\x03\x02\x01\x01", 9);
    tl_slice u = tl_ikey_user(k);
    assert_int_equal(u.len, 5);
    assert_memory_equal(u.data, "hello", 5);
    assert_true(tl_ikey_seq(k) == 0x0102030405060708ull);
    assert_int_equal(tl_ikey_type(k), TL_TYPE_VALUE);

    /* Empty user key works (internally, e.g. for seek targets). */
    tl_slice e = mk_ikey(b2, "", TL_SEQ_MAX, TL_TYPE_TOMBSTONE);
    assert_int_equal(e.len, TL_IKEY_TRAILER);
    assert_true(tl_ikey_seq(e) == UINT64_MAX);
    assert_true(tl_ikey_cmp(e, k) < 0);

    /* User key ascending. */
    assert_true(tl_ikey_cmp(mk_ikey(b1, "a", 1, 1), mk_ikey(b2, "b", 1, 1)) < 0);
    assert_true(tl_ikey_cmp(mk_ikey(b1, "b", 1, 1), mk_ikey(b2, "a", 100, 1)) > 0);
    assert_true(tl_ikey_cmp(mk_ikey(b1, "a", 1, 1), mk_ikey(b2, "ab", 1, 1)) < 0);
    /* "a" + trailer must not compare against "a\x00" as raw bytes would. */
    assert_true(tl_ikey_cmp(mk_ikey(b1, "a", 0, 1), mk_ikey(b2, "a\x01", UINT64_MAX, 1)) < 0);
    /* Same user key: seqno descending, full 64 bits. */
    assert_true(tl_ikey_cmp(mk_ikey(b1, "k", 10, 1), mk_ikey(b2, "k", 9, 1)) < 0);
    assert_true(tl_ikey_cmp(mk_ikey(b1, "k", 9, 1), mk_ikey(b2, "k", 10, 1)) > 0);
    assert_true(tl_ikey_cmp(mk_ikey(b1, "k", UINT64_MAX, 1), mk_ikey(b2, "k", 1ull << 63, 1)) < 0);
    assert_true(tl_ikey_cmp(mk_ikey(b1, "k", 1ull << 32, 1), mk_ikey(b2, "k", 0xffffffff, 1)) < 0);
    /* The type does not take part. */
    assert_int_equal(
        tl_ikey_cmp(mk_ikey(b1, "k", 5, TL_TYPE_VALUE), mk_ikey(b2, "k", 5, TL_TYPE_TOMBSTONE)), 0);

    assert_true(tl_vtype_valid(TL_TYPE_VALUE));
    assert_true(tl_vtype_valid(TL_TYPE_RANGE_TOMBSTONE));
    assert_false(tl_vtype_valid(0));
    assert_false(tl_vtype_valid(7));
    assert_true(tl_vtype_is_delete(TL_TYPE_TOMBSTONE));
    assert_true(tl_vtype_is_delete(TL_TYPE_WEAK_TOMBSTONE));
    assert_false(tl_vtype_is_delete(TL_TYPE_VALUE));
}

/* ---- errors ---------------------------------------------------------- */

static void test_err(void **state)
{
    tl_err_clear();
    assert_string_equal(tl_errmsg(), "");
    assert_string_equal(talus_errmsg(), "");
    assert_int_equal(tl_err(TALUS_ECORRUPT, "table %s: bad block at %d", "000012.sst", 4096),
                     TALUS_ECORRUPT);
    assert_string_equal(tl_errmsg(), "table 000012.sst: bad block at 4096");
    assert_string_equal(talus_errmsg(), tl_errmsg());

    assert_int_equal(tl_err_errno(ENOENT, "open %s", "/x/y"), TALUS_ENOTFOUND);
    char want[256];
    snprintf(want, sizeof want, "open /x/y: %s", strerror(ENOENT));
    assert_string_equal(tl_errmsg(), want);
    assert_int_equal(tl_err_errno(ENOSPC, "write"), TALUS_ENOSPC);
    assert_int_equal(tl_err_errno(EDQUOT, "write"), TALUS_ENOSPC);
    assert_int_equal(tl_err_errno(ENOMEM, "x"), TALUS_ENOMEM);
    assert_int_equal(tl_err_errno(EEXIST, "x"), TALUS_EEXIST);
    assert_int_equal(tl_err_errno(EROFS, "x"), TALUS_EREADONLY);
    assert_int_equal(tl_err_errno(EWOULDBLOCK, "x"), TALUS_EBUSY);
    assert_int_equal(tl_err_errno(EIO, "x"), TALUS_EIO);
    assert_int_equal(tl_err_errno(EBADF, "x"), TALUS_EIO);

    /* A long message is cut, never overflowed. */
    char big[2000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tl_err(TALUS_EIO, "%s", big);
    assert_true(strlen(tl_errmsg()) < sizeof big - 1);
    assert_true(strlen(tl_errmsg()) > 100);

    /* Every code has its own name; unknown ones still get a string. */
    const char *seen[16];
    for (int c = 0; c >= TALUS_ECLOSED; c--) {
        const char *s = talus_strerror(c);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown error");
        for (int k = 0; k < -c; k++)
            assert_string_not_equal(s, seen[k]);
        seen[-c] = s;
    }
    assert_string_equal(talus_strerror(TALUS_OK), "success");
    assert_string_equal(talus_strerror(TALUS_ECORRUPT), "corruption");
    assert_string_equal(talus_strerror(-999), "unknown error");
    assert_string_equal(talus_strerror(5), "unknown error");
}

/* The message is per thread. */
static void *err_thread(void *arg)
{
    tl_err(TALUS_EIO, "from the other thread");
    return NULL;
}

static void test_err_thread_local(void **state)
{
    tl_err(TALUS_EINVAL, "mine");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, err_thread, NULL), 0);
    pthread_join(t, NULL);
    assert_string_equal(tl_errmsg(), "mine");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),           cmocka_unit_test(test_slice),
        cmocka_unit_test(test_hash),          cmocka_unit_test(test_arena_basic),
        cmocka_unit_test(test_arena_threads), cmocka_unit_test(test_ikey),
        cmocka_unit_test(test_err),           cmocka_unit_test(test_err_thread_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
