/*
 * journal_test_util.h - helpers shared by the journal's segment tests
 * (test_journal.c, test_journal_torn.c): seeded randomness, a temporary
 * directory per test, lists of expected records, reading a whole segment,
 * and writing segments and raw file images.
 */
#ifndef JOURNAL_TEST_UTIL_H
#define JOURNAL_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/jnl_internal.h"
#include "journal/journal.h"
#include "talus.h"
#include "util/coding.h"
#include "util/env.h"
#include "util/err.h"
#include "util/hash.h"

#define JT_UNUSED __attribute__((unused))

JT_UNUSED static uint64_t rng_state;

JT_UNUSED static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

JT_UNUSED static size_t rnd_n(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

JT_UNUSED static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

typedef struct fixture {
    char dir[256];
} fixture;

JT_UNUSED static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/talus-test-jnl-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

JT_UNUSED static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int r = system(cmd);
    free(fx);
    return r == 0 ? 0 : -1;
}

JT_UNUSED static char *seg_path(const fixture *fx, uint64_t number)
{
    static char bufs[4][300];
    static int at;
    char *b = bufs[at++ % 4];
    return jnl_segment_name(b, 300, fx->dir, number);
}

/* ---- records: a list of owned payloads --------------------------------- */

typedef struct recs {
    tl_buf *v;
    size_t n, cap;
} recs;

JT_UNUSED static void recs_push(recs *r, const uint8_t *p, size_t n)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        assert_non_null(r->v);
    }
    r->v[r->n] = (tl_buf){0};
    assert_int_equal(tl_buf_append(&r->v[r->n], p, n), 0);
    r->n++;
}

JT_UNUSED static void recs_free(recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        tl_buf_free(&r->v[i]);
    free(r->v);
    *r = (recs){0};
}

/* Reads every record of the segment at path into out; returns the final
 * rc (0 end of data or < 0), with torn/good offset. */
JT_UNUSED static int read_all(tl_env *env, const char *path, recs *out, bool *torn, uint64_t *good)
{
    jnl_reader *r;
    *torn = false;
    *good = 0;
    int rc = jnl_reader_open(env, path, &r);
    if (rc < 0)
        return rc;
    tl_slice p;
    while ((rc = jnl_reader_next(r, &p)) == 1)
        recs_push(out, p.data, p.len);
    if (rc == 0) {
        /* End of data is sticky. */
        assert_int_equal(jnl_reader_next(r, &p), 0);
    }
    *torn = jnl_reader_torn(r);
    *good = jnl_reader_good_offset(r);
    jnl_reader_close(r);
    return rc;
}

JT_UNUSED static void assert_recs_prefix(const recs *got, const recs *want, size_t n)
{
    assert_int_equal(got->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got->v[i].len, want->v[i].len);
        assert_memory_equal(got->v[i].data, want->v[i].data, want->v[i].len);
    }
}

JT_UNUSED static uint8_t *slurp(const char *path, size_t *n)
{
    uint8_t *d;
    assert_int_equal(tl_env_read_file(tl_env_posix(), path, &d, n), 0);
    return d;
}

JT_UNUSED static void put_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(d, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Writes `count` random records (1..maxlen bytes) as segment `number`;
 * ends[i] = offset just past record i (if ends). */
JT_UNUSED static void write_segment(const fixture *fx, uint64_t number, size_t count, size_t maxlen,
                                    recs *want, uint64_t *ends)
{
    jnl_writer *w;
    assert_int_equal(jnl_writer_open(tl_env_posix(), fx->dir, number, &w), 0);
    uint8_t *buf = malloc(maxlen);
    assert_non_null(buf);
    for (size_t i = 0; i < count; i++) {
        size_t n = 1 + rnd_n(maxlen);
        rnd_bytes(buf, n);
        recs_push(want, buf, n);
        assert_int_equal(jnl_writer_add(w, tl_slice_make(buf, n)), 0);
        assert_int_equal(jnl_writer_write(w), 0);
        if (ends)
            ends[i] = jnl_writer_segment_bytes(w);
    }
    assert_int_equal(jnl_writer_sync(w), 0);
    assert_int_equal(jnl_writer_close(w), 0);
    free(buf);
}

/* Seeds the generator from TEST_SEED (or a fixed default) and prints it. */
JT_UNUSED static void jt_seed(const char *test)
{
    const char *env = getenv("TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : 0x10a7u;
    printf("%s seed %llu (set TEST_SEED to replay)\n", test, (unsigned long long)seed);
    rng_state = seed ? seed : 1;
}

#endif
