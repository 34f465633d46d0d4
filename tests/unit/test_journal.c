/*
 * test_journal.c - the journal's segments (batch payloads are in
 * test_journal_batch.c): segment names and listing, writer/reader round trips over
 * rotations, the torn-tail vs corruption rules, header checks, I/O faults
 * and power loss through the fault-injecting env, a reader fuzz loop, and a
 * small throughput measurement (printed, not asserted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/jnl_internal.h"
#include "journal/journal.h"
#include "talus.h"
#include "util/coding.h"
#include "util/env.h"
#include "util/err.h"

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

typedef struct fixture {
    char dir[256];
} fixture;

static int setup(void **state)
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

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int r = system(cmd);
    free(fx);
    return r == 0 ? 0 : -1;
}

static char *seg_path(const fixture *fx, uint64_t number)
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

static void recs_push(recs *r, const uint8_t *p, size_t n)
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

static void recs_free(recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        tl_buf_free(&r->v[i]);
    free(r->v);
    *r = (recs){0};
}

/* Reads every record of the segment at path into out; returns the final
 * rc (0 end of data or < 0), with torn/good offset. */
static int read_all(tl_env *env, const char *path, recs *out, bool *torn, uint64_t *good)
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

static void assert_recs_prefix(const recs *got, const recs *want, size_t n)
{
    assert_int_equal(got->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got->v[i].len, want->v[i].len);
        assert_memory_equal(got->v[i].data, want->v[i].data, want->v[i].len);
    }
}

static uint8_t *slurp(const char *path, size_t *n)
{
    uint8_t *d;
    assert_int_equal(tl_env_read_file(tl_env_posix(), path, &d, n), 0);
    return d;
}

static void put_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(d, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Writes `count` random records (1..maxlen bytes) as segment `number`;
 * ends[i] = offset just past record i (if ends). */
static void write_segment(const fixture *fx, uint64_t number, size_t count, size_t maxlen,
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

/* ---- segment names --------------------------------------------------------- */

static void test_segment_names(void **state)
{
    fixture *fx = *state;
    char buf[64];
    assert_string_equal(jnl_segment_name(buf, sizeof buf, "d", 7), "d/000007.jnl");
    assert_string_equal(jnl_segment_name(buf, sizeof buf, "d", 12345678), "d/12345678.jnl");
    uint64_t v;
    assert_true(jnl_parse_segment_name("000007.jnl", &v) && v == 7);
    assert_true(jnl_parse_segment_name("18446744073709551615.jnl", &v) && v == UINT64_MAX);
    assert_false(jnl_parse_segment_name("18446744073709551616.jnl", &v));
    assert_false(jnl_parse_segment_name("7.jnl", &v));
    assert_false(jnl_parse_segment_name("0000007.jnl", &v));
    assert_false(jnl_parse_segment_name("00000a.jnl", &v));
    assert_false(jnl_parse_segment_name(".jnl", &v));

    const char *files[] = {"000010.jnl", "000002.jnl", "1234567.jnl", "000003.jnl.tmp",
                           "abcdef.jnl", "00001.jnl",  "0000004.jnl", "000005.JNL",
                           "LOCK",       "000001.jnl", "+00006.jnl",  "000009.jnlx"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/%s", fx->dir, files[i]);
        put_file(p, "x", 1);
    }
    uint64_t *nums;
    size_t n;
    assert_int_equal(jnl_list_segments(tl_env_posix(), fx->dir, &nums, &n), 0);
    assert_int_equal(n, 4);
    assert_true(nums[0] == 1 && nums[1] == 2 && nums[2] == 10 && nums[3] == 1234567);
    free(nums);
}

/* ---- writer/reader round trip -------------------------------------------- */

static void test_roundtrip_rotations(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    jnl_writer *w;
    assert_int_equal(jnl_writer_open(env, fx->dir, 3, &w), 0);
    assert_int_equal(jnl_writer_open(env, fx->dir, 3, &(jnl_writer *){0}), TALUS_EEXIST);
    assert_int_equal(jnl_writer_segment(w), 3);
    assert_int_equal(jnl_writer_segment_bytes(w), JNL_HEADER_SIZE);
    assert_int_equal(jnl_writer_add(w, tl_slice_make("", 0)), TALUS_EINVAL);
    assert_int_equal(jnl_writer_write(w), 0); /* nothing staged */

    /* Per segment: its number and records. */
    enum { MAXSEG = 64 };
    uint64_t segs[MAXSEG];
    recs want[MAXSEG] = {{0}};
    size_t nseg = 1;
    segs[0] = 3;
    size_t big = 3u << 20;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    for (int i = 0; i < 3000; i++) {
        size_t n;
        if (i == 1500)
            n = big; /* bigger than the reader's chunk */
        else if (rnd_n(100) == 0)
            n = 100000 + rnd_n(600000);
        else
            n = 1 + rnd_n(rnd_n(8) == 0 ? 5000 : 200);
        rnd_bytes(buf, n);
        assert_int_equal(jnl_writer_add(w, tl_slice_make(buf, n)), 0);
        recs_push(&want[nseg - 1], buf, n);
        if (rnd_n(4) == 0) {
            uint64_t before = jnl_writer_segment_bytes(w);
            assert_int_equal(jnl_writer_write(w), 0);
            assert_true(jnl_writer_segment_bytes(w) > before);
        }
        if (rnd_n(50) == 0)
            assert_int_equal(jnl_writer_sync(w), 0);
        if (jnl_writer_segment_bytes(w) > (1u << 20) && nseg < MAXSEG) {
            uint64_t next = segs[nseg - 1] + 1 + rnd_n(3);
            /* Staged records go to the old segment. */
            assert_int_equal(jnl_writer_rotate(w, next), 0);
            assert_int_equal(jnl_writer_rotate(w, next), TALUS_EINVAL);
            assert_int_equal(jnl_writer_segment(w), next);
            assert_int_equal(jnl_writer_segment_bytes(w), JNL_HEADER_SIZE);
            segs[nseg++] = next;
        }
    }
    assert_int_equal(jnl_writer_write(w), 0);
    uint64_t last_bytes = jnl_writer_segment_bytes(w);
    assert_int_equal(jnl_writer_sync(w), 0);
    assert_int_equal(jnl_writer_close(w), 0);
    assert_true(nseg >= 4);

    uint64_t *nums;
    size_t n;
    assert_int_equal(jnl_list_segments(env, fx->dir, &nums, &n), 0);
    assert_int_equal(n, nseg);
    for (size_t s = 0; s < nseg; s++) {
        assert_true(nums[s] == segs[s]);
        recs got = {0};
        bool torn;
        uint64_t good, size;
        assert_int_equal(read_all(env, seg_path(fx, nums[s]), &got, &torn, &good), 0);
        assert_false(torn);
        assert_int_equal(tl_env_file_size(env, seg_path(fx, nums[s]), &size), 0);
        assert_true(good == size);
        if (s == nseg - 1)
            assert_true(size == last_bytes);
        assert_recs_prefix(&got, &want[s], want[s].n);
        recs_free(&got);
        recs_free(&want[s]);
    }
    free(nums);
    free(buf);
}

/* ---- torn tails and corruption ------------------------------------------- */

static void expect_read(const fixture *fx, const recs *want, size_t nrec, int rc_want,
                        bool torn_want, uint64_t good_want)
{
    recs got = {0};
    bool torn;
    uint64_t good;
    int rc = read_all(tl_env_posix(), seg_path(fx, 1), &got, &torn, &good);
    assert_int_equal(rc, rc_want);
    assert_recs_prefix(&got, want, nrec);
    if (rc == 0)
        assert_int_equal(torn, torn_want);
    assert_true(good == good_want);
    recs_free(&got);
}

static void test_torn_tails(void **state)
{
    fixture *fx = *state;
    enum { N = 20 };
    recs want = {0};
    uint64_t ends[N];
    write_segment(fx, 1, N, 300, &want, ends);
    size_t size;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    assert_true(size == ends[N - 1]);
    expect_read(fx, &want, N, 0, false, size);

    /* Cut inside each of the last three records: the records before it,
     * then a torn end at the record's start. */
    for (int k = N - 3; k < N; k++) {
        uint64_t start = ends[k - 1];
        for (uint64_t cut = start; cut < ends[k]; cut++) {
            put_file(seg_path(fx, 1), img, (size_t)cut);
            expect_read(fx, &want, (size_t)k, 0, cut != start, start);
        }
    }
    /* Inside the header: torn, nothing good. */
    for (size_t cut = 0; cut < JNL_HEADER_SIZE; cut++) {
        put_file(seg_path(fx, 1), img, cut);
        expect_read(fx, &want, 0, 0, true, 0);
    }
    /* A zero-filled tail (any length), and zeros followed by data. */
    uint8_t *z = calloc(1, size + 8192);
    memcpy(z, img, size);
    for (size_t extra = 1; extra < 8192; extra = extra * 3 + 1) {
        put_file(seg_path(fx, 1), z, size + extra);
        expect_read(fx, &want, N, 0, true, size);
    }
    z[size + 4000] = 1;
    put_file(seg_path(fx, 1), z, size + 4001);
    expect_read(fx, &want, N, TALUS_ECORRUPT, false, size);
    assert_non_null(strstr(tl_errmsg(), "length 0"));
    /* An all-zero file: torn at 0. */
    memset(z, 0, size);
    put_file(seg_path(fx, 1), z, size);
    expect_read(fx, &want, 0, 0, true, 0);
    free(z);

    /* A flipped byte in the payload or checksum of a middle record:
     * corruption naming the record's offset; the records before it are
     * returned and good_offset is the record's start. */
    uint8_t *c = malloc(size);
    char off[64];
    for (int k = 1; k < N - 1; k += 4) {
        uint64_t start = ends[k - 1];
        for (uint64_t at = start + 8; at < ends[k]; at += 1 + rnd_n(40)) {
            memcpy(c, img, size);
            c[at] ^= (uint8_t)(1u << rnd_n(8));
            put_file(seg_path(fx, 1), c, size);
            expect_read(fx, &want, (size_t)k, TALUS_ECORRUPT, false, start);
            snprintf(off, sizeof off, "offset %llu", (unsigned long long)start);
            assert_non_null(strstr(tl_errmsg(), off));
            assert_non_null(strstr(tl_errmsg(), seg_path(fx, 1)));
        }
        /* A length made smaller leaves garbage after the record. */
        memcpy(c, img, size);
        tl_put_fixed64(c + start, want.v[k].len - 1);
        put_file(seg_path(fx, 1), c, size);
        expect_read(fx, &want, (size_t)k, TALUS_ECORRUPT, false, start);
    }
    /* The same in the last record, which ends at EOF: torn. */
    uint64_t last = ends[N - 2];
    for (uint64_t at = last + 8; at < size; at++) {
        memcpy(c, img, size);
        c[at] ^= 0x10;
        put_file(seg_path(fx, 1), c, size);
        expect_read(fx, &want, N - 1, 0, true, last);
    }
    /* Its length made larger runs past EOF: torn too. */
    memcpy(c, img, size);
    c[last + 3] ^= 0x01;
    put_file(seg_path(fx, 1), c, size);
    expect_read(fx, &want, N - 1, 0, true, last);
    /* A bad last record followed only by zeros: torn. */
    z = calloc(1, size + 100);
    memcpy(z, img, size);
    z[last + 9] ^= 0xff; /* its checksum */
    put_file(seg_path(fx, 1), z, size + 100);
    expect_read(fx, &want, N - 1, 0, true, last);
    free(z);
    free(c);
    free(img);
    recs_free(&want);
}

static void test_torn_big_record(void **state)
{
    fixture *fx = *state;
    recs want = {0};
    uint64_t ends[3];
    jnl_writer *w;
    assert_int_equal(jnl_writer_open(tl_env_posix(), fx->dir, 1, &w), 0);
    size_t sizes[3] = {100, 2u << 20, 5u << 20};
    uint8_t *buf = malloc(sizes[2]);
    for (int i = 0; i < 3; i++) {
        rnd_bytes(buf, sizes[i]);
        recs_push(&want, buf, sizes[i]);
        assert_int_equal(jnl_writer_add(w, tl_slice_make(buf, sizes[i])), 0);
        assert_int_equal(jnl_writer_write(w), 0);
        ends[i] = jnl_writer_segment_bytes(w);
    }
    assert_int_equal(jnl_writer_close(w), 0);
    size_t size;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    expect_read(fx, &want, 3, 0, false, size);
    /* A read error is returned (not taken for damage) and stays. */
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    jnl_reader *r;
    tl_slice p;
    assert_int_equal(jnl_reader_open(tl_fault_env_env(fe), seg_path(fx, 1), &r), 0);
    tl_fault_env_arm(fe, TL_FAULT_READ, 1, TALUS_EIO, false);
    assert_int_equal(jnl_reader_next(r, &p), 1);
    assert_int_equal(jnl_reader_next(r, &p), TALUS_EIO);
    assert_int_equal(jnl_reader_next(r, &p), TALUS_EIO);
    assert_true(jnl_reader_good_offset(r) == ends[0]);
    jnl_reader_close(r);
    tl_fault_env_free(fe);

    uint64_t cuts[] = {ends[1] + 1, ends[1] + 16, ends[1] + 17, ends[1] + (3u << 20), size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        put_file(seg_path(fx, 1), img, (size_t)cuts[i]);
        expect_read(fx, &want, 2, 0, true, ends[1]);
    }
    /* Damage inside the big middle record. */
    img[ends[0] + 1000000] ^= 4;
    put_file(seg_path(fx, 1), img, size);
    expect_read(fx, &want, 1, TALUS_ECORRUPT, false, ends[0]);
    free(img);
    free(buf);
    recs_free(&want);
}

static void test_header_checks(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    recs want = {0}, got = {0};
    write_segment(fx, 1, 3, 50, &want, NULL);
    size_t size;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    jnl_reader *r;
    bool torn;
    uint64_t good;

    img[0] ^= 1; /* wrong magic */
    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "not a talus journal segment"));
    put_file(seg_path(fx, 1), img, 10); /* a short non-journal file too */
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_ECORRUPT);
    img[0] ^= 1;

    uint8_t hdr[JNL_HEADER_SIZE];
    jnl_header_encode(hdr, JNL_FORMAT_VERSION + 1, 1); /* future version */
    memcpy(img, hdr, sizeof hdr);
    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_EVERSION);
    assert_non_null(strstr(tl_errmsg(), "reads up to 1"));
    jnl_header_encode(hdr, 0, 1);
    memcpy(img, hdr, sizeof hdr);
    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_ECORRUPT);

    jnl_header_encode(hdr, JNL_FORMAT_VERSION, 1);
    memcpy(img, hdr, sizeof hdr);
    img[17] ^= 1; /* number damaged: checksum */
    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "header checksum"));
    img[17] ^= 1;

    /* Right header under the wrong name. */
    put_file(seg_path(fx, 2), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 2), &r), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "header says segment 1"));
    char bad[300];
    snprintf(bad, sizeof bad, "%s/1.jnl", fx->dir);
    put_file(bad, img, size);
    assert_int_equal(jnl_reader_open(env, bad, &r), TALUS_EINVAL);

    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(read_all(env, seg_path(fx, 1), &got, &torn, &good), 0);
    assert_recs_prefix(&got, &want, 3);
    recs_free(&got);
    recs_free(&want);
    free(img);
}

/* ---- faults and power loss ------------------------------------------------- */

static void add_recs(jnl_writer *w, recs *want, size_t n)
{
    uint8_t buf[400];
    for (size_t i = 0; i < n; i++) {
        size_t len = 1 + rnd_n(sizeof buf);
        rnd_bytes(buf, len);
        assert_int_equal(jnl_writer_add(w, tl_slice_make(buf, len)), 0);
        if (want)
            recs_push(want, buf, len);
    }
}

static void test_fault_write(void **state)
{
    fixture *fx = *state;
    for (int variant = 0; variant < 2; variant++) {
        tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
        tl_env *env = tl_fault_env_env(fe);
        jnl_writer *w;
        recs want = {0}, got = {0};
        assert_int_equal(jnl_writer_open(env, fx->dir, 1, &w), 0);
        add_recs(w, &want, 5);
        assert_int_equal(jnl_writer_write(w), 0);
        uint64_t good_bytes = jnl_writer_segment_bytes(w);
        /* One record for the short write, so its half is a torn record. */
        add_recs(w, NULL, variant == 0 ? 5 : 1);
        if (variant == 0)
            tl_fault_env_arm(fe, TL_FAULT_WRITE, 1, TALUS_ENOSPC, false);
        else
            tl_fault_env_short_write_next(fe);
        int err = variant == 0 ? TALUS_ENOSPC : TALUS_EIO;
        assert_int_equal(jnl_writer_write(w), err);
        tl_fault_env_disarm(fe);
        /* Broken for good, with the first error. */
        assert_int_equal(jnl_writer_add(w, tl_slice_make("x", 1)), err);
        assert_non_null(strstr(tl_errmsg(), "broken"));
        assert_int_equal(jnl_writer_write(w), err);
        assert_int_equal(jnl_writer_sync(w), err);
        assert_int_equal(jnl_writer_rotate(w, 2), err);
        assert_int_equal(jnl_writer_close(w), 0);
        bool torn;
        uint64_t good;
        assert_int_equal(read_all(env, seg_path(fx, 1), &got, &torn, &good), 0);
        assert_recs_prefix(&got, &want, 5);
        assert_int_equal(torn, variant == 1); /* half a group on disk */
        assert_true(good == good_bytes);
        recs_free(&got);
        recs_free(&want);
        tl_fault_env_free(fe);
        assert_int_equal(tl_env_remove(tl_env_posix(), seg_path(fx, 1)), 0);
    }
}

static void test_fault_sync_open(void **state)
{
    fixture *fx = *state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    tl_env *env = tl_fault_env_env(fe);
    jnl_writer *w;
    /* Creating a segment syncs the file and the directory: a failure
     * leaves nothing behind. */
    for (uint64_t nth = 1; nth <= 2; nth++) {
        tl_fault_env_arm(fe, TL_FAULT_SYNC, nth, TALUS_EIO, false);
        assert_int_equal(jnl_writer_open(env, fx->dir, 1, &w), TALUS_EIO);
        assert_int_equal(tl_env_exists(env, seg_path(fx, 1)), 0);
    }
    tl_fault_env_arm(fe, TL_FAULT_OPEN, 1, TALUS_EIO, false);
    assert_int_equal(jnl_writer_open(env, fx->dir, 1, &w), TALUS_EIO);
    tl_fault_env_disarm(fe);

    assert_int_equal(jnl_writer_open(env, fx->dir, 1, &w), 0);
    add_recs(w, NULL, 3);
    assert_int_equal(jnl_writer_write(w), 0);
    tl_fault_env_arm(fe, TL_FAULT_SYNC, 1, TALUS_EIO, false);
    assert_int_equal(jnl_writer_sync(w), TALUS_EIO);
    tl_fault_env_disarm(fe);
    assert_int_equal(jnl_writer_sync(w), TALUS_EIO); /* sticky */
    assert_int_equal(jnl_writer_close(w), 0);

    /* A failed rotation (new segment cannot be created) breaks the writer. */
    assert_int_equal(jnl_writer_open(env, fx->dir, 5, &w), 0);
    tl_fault_env_arm(fe, TL_FAULT_OPEN, 1, TALUS_ENOSPC, false);
    assert_int_equal(jnl_writer_rotate(w, 6), TALUS_ENOSPC);
    tl_fault_env_disarm(fe);
    assert_int_equal(jnl_writer_write(w), TALUS_ENOSPC);
    assert_int_equal(jnl_writer_close(w), 0);
    tl_fault_env_free(fe);
}

static void test_power_loss(void **state)
{
    fixture *fx = *state;
    for (int round = 0; round < 30; round++) {
        tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
        tl_env *env = tl_fault_env_env(fe);
        enum { MAXSEG = 8 };
        recs want[MAXSEG] = {{0}};
        size_t durable[MAXSEG] = {0}; /* records known synced per segment */
        size_t nseg = 1;
        jnl_writer *w;
        uint64_t base = (uint64_t)round * 100 + 1;
        assert_int_equal(jnl_writer_open(env, fx->dir, base, &w), 0);
        int groups = 5 + (int)rnd_n(40);
        for (int g = 0; g < groups; g++) {
            add_recs(w, &want[nseg - 1], 1 + rnd_n(10));
            assert_int_equal(jnl_writer_write(w), 0);
            if (rnd_n(3) == 0) {
                assert_int_equal(jnl_writer_sync(w), 0);
                durable[nseg - 1] = want[nseg - 1].n;
            }
            if (rnd_n(10) == 0 && nseg < MAXSEG) {
                assert_int_equal(jnl_writer_rotate(w, base + nseg), 0);
                durable[nseg - 1] = want[nseg - 1].n;
                nseg++;
            }
        }
        assert_int_equal(jnl_writer_close(w), 0);
        assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
        for (size_t s = 0; s < nseg; s++) {
            recs got = {0};
            bool torn;
            uint64_t good;
            /* Whole unsynced tails are dropped (the env does not tear). */
            assert_int_equal(read_all(env, seg_path(fx, base + s), &got, &torn, &good), 0);
            assert_false(torn);
            assert_recs_prefix(&got, &want[s], durable[s]);
            recs_free(&got);
            recs_free(&want[s]);
        }
        tl_fault_env_free(fe);
    }
}

/* ---- fuzz ---------------------------------------------------------------- */

static void test_reader_fuzz(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    recs want = {0};
    write_segment(fx, 1, 8, 100, &want, NULL);
    recs_free(&want);
    size_t size;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    uint8_t *buf = malloc(size + 600);
    for (int i = 0; i < 3000; i++) {
        size_t n;
        if (rnd_n(2)) {
            /* A valid segment, damaged and cut. */
            n = rnd_n(size + 1);
            memcpy(buf, img, n);
            for (size_t k = rnd_n(4); k > 0 && n; k--)
                buf[rnd_n(n)] ^= (uint8_t)rnd();
        } else {
            /* A valid header, then noise (sometimes plausible lengths). */
            n = JNL_HEADER_SIZE + rnd_n(600);
            memcpy(buf, img, JNL_HEADER_SIZE);
            rnd_bytes(buf + JNL_HEADER_SIZE, n - JNL_HEADER_SIZE);
            if (rnd_n(2)) {
                tl_put_fixed64(buf + JNL_HEADER_SIZE, rnd_n(n));
            }
        }
        put_file(seg_path(fx, 1), buf, n);
        recs got = {0};
        bool torn;
        uint64_t good;
        int rc = read_all(env, seg_path(fx, 1), &got, &torn, &good);
        assert_true(rc == 0 || rc == TALUS_ECORRUPT || rc == TALUS_EVERSION);
        assert_true(good <= n);
        for (size_t k = 0; k < got.n; k++) {
            /* Whatever a damaged segment yields must not crash the decoder. */
            uint64_t seq;
            uint32_t count;
            jnl_batch_iter it;
            jnl_entry e;
            if (jnl_batch_open(tl_buf_slice(&got.v[k]), &seq, &count, &it) == 0)
                while (jnl_batch_next(&it, &e) == 1)
                    ;
        }
        recs_free(&got);
    }
    free(buf);
    free(img);
}

/* ---- throughput (printed, not asserted) --------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_throughput(void **state)
{
    fixture *fx = *state;
    enum { N = 200000, REC = 116 };
    uint8_t rec[REC];
    rnd_bytes(rec, sizeof rec);
    for (int group = 1; group <= 64; group *= 64) {
        jnl_writer *w;
        uint64_t number = (uint64_t)group;
        assert_int_equal(jnl_writer_open(tl_env_posix(), fx->dir, number, &w), 0);
        double t0 = now_s();
        for (int i = 0; i < N; i += group) {
            for (int k = 0; k < group; k++)
                assert_int_equal(jnl_writer_add(w, tl_slice_make(rec, REC)), 0);
            assert_int_equal(jnl_writer_write(w), 0);
        }
        double t = now_s() - t0;
        assert_true(jnl_writer_segment_bytes(w) ==
                    JNL_HEADER_SIZE + (uint64_t)N * (REC + JNL_FRAME_SIZE));
        assert_int_equal(jnl_writer_close(w), 0);
        double t1 = now_s();
        jnl_reader *r;
        tl_slice p;
        int cnt = 0;
        assert_int_equal(jnl_reader_open(tl_env_posix(), seg_path(fx, number), &r), 0);
        while (jnl_reader_next(r, &p) == 1)
            cnt++;
        jnl_reader_close(r);
        double tr = now_s() - t1;
        assert_int_equal(cnt, N);
        printf("journal throughput: %d-byte records, add x%d + write: %.0f records/s "
               "(%.0f ns/record, %.1f MB/s); read back %.0f records/s\n",
               REC, group, N / t, t / N * 1e9, N * (double)REC / t / 1e6, N / tr);
    }
    /* What a sync-durability group costs (one fdatasync per group). */
    jnl_writer *w;
    assert_int_equal(jnl_writer_open(tl_env_posix(), fx->dir, 100, &w), 0);
    enum { SYNCS = 50 };
    double t0 = now_s();
    for (int i = 0; i < SYNCS; i++) {
        assert_int_equal(jnl_writer_add(w, tl_slice_make(rec, REC)), 0);
        assert_int_equal(jnl_writer_write(w), 0);
        assert_int_equal(jnl_writer_sync(w), 0);
    }
    double t = now_s() - t0;
    assert_int_equal(jnl_writer_close(w), 0);
    printf("journal throughput: add + write + sync: %.0f groups/s (%.0f us/group)\n", SYNCS / t,
           t / SYNCS * 1e6);
}

int main(void)
{
    uint64_t seed = getenv("TEST_SEED") ? strtoull(getenv("TEST_SEED"), NULL, 0) : 0x10a7u;
    printf("test_journal seed %llu (set TEST_SEED to replay)\n", (unsigned long long)seed);
    rng_state = seed ? seed : 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_segment_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_rotations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_big_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_sync_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_fuzz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
