/*
 * test_blob.c - blob files (engine/blob): reference encoding, names, writer
 * and reader round trips over chunk boundaries, ranged and concurrent reads,
 * damage (every region of a file flipped, truncations, wrong references),
 * I/O faults through the fault-injecting env, and the syscall batching the
 * writer and reader promise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob/blob.h"
#include "talus.h"
#include "util/coding.h"
#include "util/env.h"
#include "util/err.h"

/* ---- helpers --------------------------------------------------------------- */

static uint64_t seed0;

/* xorshift64*: the state is passed in so threads can have their own. */
static uint64_t rnd_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static uint64_t rng;

static size_t rnd_n(size_t n)
{
    return n ? (size_t)(rnd_next(&rng) % n) : 0;
}

static uint8_t *rnd_value(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd_next(&rng);
    return p;
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
    snprintf(fx->dir, sizeof fx->dir, "%s/talus-test-blob-XXXXXX", tmp ? tmp : "/tmp");
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

static char *path_of(const fixture *fx, uint64_t number)
{
    static char bufs[4][300];
    static int at;
    char *b = bufs[at++ % 4];
    return bl_file_name(b, 300, fx->dir, number);
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

/* Number of entries in the fixture's directory, as env lists them (the
 * fault env hides the files it keeps to undo removals). */
static size_t dir_entries_in(tl_env *env, const fixture *fx)
{
    char **names;
    size_t count;
    assert_int_equal(tl_env_list_dir(env, fx->dir, &names, &count), 0);
    tl_env_free_names(names, count);
    return count;
}

static size_t dir_entries(const fixture *fx)
{
    return dir_entries_in(tl_env_posix(), fx);
}

/* Writes value v (n bytes) as blob `number` in random-sized appends. */
static void write_pieces(tl_env *env, const fixture *fx, uint64_t number, const uint8_t *v,
                         size_t n, bl_ref *ref)
{
    bl_writer *w;
    assert_int_equal(bl_writer_open(env, fx->dir, number, &w), 0);
    assert_int_equal(bl_writer_number(w), number);
    size_t at = 0;
    while (at < n) {
        size_t k;
        switch (rnd_n(4)) {
        case 0:
            k = 1 + rnd_n(16);
            break;
        case 1:
            k = 1 + rnd_n(5000);
            break;
        case 2:
            k = 1 + rnd_n(3 * BL_CHUNK);
            break;
        default:
            k = 0;
            break;
        }
        if (k > n - at)
            k = n - at;
        assert_int_equal(bl_writer_append(w, v + at, k), 0);
        at += k;
        assert_int_equal(bl_writer_length(w), at);
    }
    assert_int_equal(bl_writer_finish(w, ref), 0);
    assert_int_equal(ref->number, number);
    assert_int_equal(ref->length, n);
}

/* Reads [off, off+n) of the value through r and compares with v. */
static void check_range(bl_reader *r, const uint8_t *v, size_t len, uint64_t off, size_t n,
                        uint8_t *scratch)
{
    size_t got = 12345;
    assert_int_equal(bl_reader_read(r, off, scratch, n, &got), 0);
    size_t want = off >= len ? 0 : (n < len - off ? n : len - off);
    assert_int_equal(got, want);
    if (want)
        assert_memory_equal(scratch, v + off, want);
}

/* ---- references and names ------------------------------------------------- */

static void test_ref_codec(void **state)
{
    (void)state;
    const bl_ref good[] = {
        {1, 0}, {1, 1}, {127, 128}, {UINT64_MAX, TALUS_MAX_VALUE}, {1u << 20, BL_CHUNK}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint8_t b[BL_REF_MAX];
        size_t n = bl_ref_encode(&good[i], b);
        assert_true(n >= 2 && n <= BL_REF_MAX);
        bl_ref r;
        assert_int_equal(bl_ref_decode(tl_slice_make(b, n), &r), 0);
        assert_true(r.number == good[i].number && r.length == good[i].length);
        /* Every strict prefix and one trailing byte are damage. */
        for (size_t k = 0; k < n; k++)
            assert_int_equal(bl_ref_decode(tl_slice_make(b, k), &r), TALUS_ECORRUPT);
        b[n] = 0;
        assert_int_equal(bl_ref_decode(tl_slice_make(b, n + 1), &r), TALUS_ECORRUPT);
    }
    const struct {
        const char *bytes;
        size_t n;
    } bad[] = {
        {"\x00\x05", 2},                                          /* number 0 */
        {"\x81\x00\x05", 3},                                      /* non-minimal number */
        {"\x01\x85\x00", 3},                                      /* non-minimal length */
        {"\x01\x80\x80\x80\x80\x10", 6},                          /* length 2^32 */
        {"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11},     /* length 2^64-1 */
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02\x01", 11},     /* number overflows */
        {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01\x01", 12}, /* 11-byte varint */
        {"\x01", 1},                                              /* no length */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bl_ref r = {77, 77};
        assert_int_equal(bl_ref_decode(tl_slice_make(bad[i].bytes, bad[i].n), &r), TALUS_ECORRUPT);
        assert_true(r.number == 77 && r.length == 77); /* untouched */
    }
    /* Random bytes: either damage, or a reference that encodes back to them. */
    for (int i = 0; i < 20000; i++) {
        uint8_t b[16], e[BL_REF_MAX];
        size_t n = rnd_n(sizeof b + 1);
        for (size_t k = 0; k < n; k++)
            b[k] = (uint8_t)(rnd_n(4) ? rnd_next(&rng) : (rnd_n(2) ? 0x80 : 0x01));
        bl_ref r;
        int rc = bl_ref_decode(tl_slice_make(b, n), &r);
        if (rc == 0) {
            assert_true(r.number != 0 && r.length <= TALUS_MAX_VALUE);
            assert_int_equal(bl_ref_encode(&r, e), n);
            assert_memory_equal(e, b, n);
        } else {
            assert_int_equal(rc, TALUS_ECORRUPT);
        }
    }
}

static void test_names(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(bl_file_name(buf, sizeof buf, "d", 7), "d/000007.blob");
    assert_string_equal(bl_file_name(buf, sizeof buf, "d", 12345678), "d/12345678.blob");
    uint64_t v = 0;
    assert_int_equal(bl_parse_name("000007.blob", &v), 1);
    assert_int_equal(v, 7);
    assert_int_equal(bl_parse_name("000008.blob.tmp", &v), 2);
    assert_int_equal(v, 8);
    assert_int_equal(bl_parse_name("18446744073709551615.blob", &v), 1);
    assert_true(v == UINT64_MAX);
    const char *no[] = {"18446744073709551616.blob",
                        "7.blob",
                        "0000007.blob",
                        "00000a.blob",
                        ".blob",
                        "000007.blobx",
                        "000007.BLOB",
                        "000007.sst",
                        "000007.blob.tmp2",
                        "+00007.blob",
                        "000007",
                        "",
                        "x000007.blob",
                        "000007.tmp"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_int_equal(bl_parse_name(no[i], &v), 0);

    assert_int_equal(bl_file_size(0), 48);
    assert_int_equal(bl_file_size(1), 48 + 1 + 8);
    assert_int_equal(bl_file_size(BL_CHUNK), 48 + BL_CHUNK + 8);
    assert_int_equal(bl_file_size(BL_CHUNK + 1), 48 + BL_CHUNK + 1 + 16);
    assert_true(bl_file_size(TALUS_MAX_VALUE) == 48 + (uint64_t)TALUS_MAX_VALUE + 8 * 65536ull);
}

/* ---- round trips --------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    const size_t lens[] = {0,
                           1,
                           BL_CHUNK - 1,
                           BL_CHUNK,
                           BL_CHUNK + 1,
                           17 * BL_CHUNK + 3,
                           3 * 1024 * 1024 + 7,
                           16 * BL_CHUNK,
                           33 * BL_CHUNK - 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        uint8_t *v = rnd_value(n);
        bl_ref ref;
        uint64_t number = 100 + i;
        if (i % 2)
            assert_int_equal(bl_write(env, fx->dir, number, v, n, &ref), 0);
        else
            write_pieces(env, fx, number, v, n, &ref);
        assert_true(ref.number == number && ref.length == n);
        uint64_t size;
        assert_int_equal(tl_env_file_size(env, path_of(fx, number), &size), 0);
        assert_true(size == bl_file_size(n));
        assert_int_equal(dir_entries(fx), i + 1); /* no .tmp left */

        /* Through the encoded reference, as the tree will do it. */
        uint8_t e[BL_REF_MAX];
        bl_ref back;
        assert_int_equal(bl_ref_decode(tl_slice_make(e, bl_ref_encode(&ref, e)), &back), 0);
        tl_buf out = {0};
        assert_int_equal(tl_buf_set(&out, "junk", 4), 0);
        assert_int_equal(bl_read_all(env, fx->dir, &back, &out), 0);
        assert_int_equal(out.len, n);
        if (n)
            assert_memory_equal(out.data, v, n);

        bl_reader *r;
        assert_int_equal(bl_reader_open(env, fx->dir, &back, &r), 0);
        assert_int_equal(bl_reader_length(r), n);
        uint8_t one[1];
        check_range(r, v, n, n, 1, one); /* at the end: nothing */
        check_range(r, v, n, 0, 0, one);
        bl_reader_close(r);
        tl_buf_free(&out);
        free(v);
    }
}

/* Reading back what a writer holds, while it writes: from the file for
 * flushed chunks, from staging for the rest, across chunk edges. */
static void test_writer_read_back(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    size_t n = 5 * 1024 * 1024 + 333;
    uint8_t *v = rnd_value(n);
    uint8_t *got = malloc(n);
    assert_non_null(got);
    bl_writer *w;
    assert_int_equal(bl_writer_open(env, fx->dir, 7, &w), 0);
    size_t done = 0;
    while (done < n) {
        size_t k = 1 + rnd_n(200000);
        if (k > n - done)
            k = n - done;
        assert_int_equal(bl_writer_append(w, v + done, k), 0);
        done += k;
        for (int i = 0; i < 8; i++) {
            uint64_t off = rnd_n(done + 10);
            size_t len = rnd_n(3 * BL_CHUNK), g = 99;
            assert_int_equal(bl_writer_read(w, off, got, len, &g), 0);
            size_t want = off >= done ? 0 : (len < done - off ? len : done - off);
            assert_int_equal(g, want);
            if (g)
                assert_memory_equal(got, v + off, g);
        }
    }
    size_t g;
    assert_int_equal(bl_writer_read(w, 0, got, n, &g), 0);
    assert_int_equal(g, n);
    assert_memory_equal(got, v, n);
    bl_writer_abort(w);
    assert_int_equal(dir_entries(fx), 0);
    free(got);
    free(v);
}

static void test_ranged_reads(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    size_t n = 5 * 1024 * 1024 + 4321;
    uint8_t *v = rnd_value(n);
    bl_ref ref;
    write_pieces(env, fx, 9, v, n, &ref);
    bl_reader *r;
    assert_int_equal(bl_reader_open(env, fx->dir, &ref, &r), 0);
    uint8_t *buf = malloc(n + 100);
    assert_non_null(buf);

    for (int i = 0; i < 600; i++) {
        uint64_t off;
        size_t len;
        switch (rnd_n(5)) {
        case 0: /* around a chunk boundary */
            off = (rnd_n(n / BL_CHUNK + 2) * BL_CHUNK);
            off = off > 50 ? off - rnd_n(50) : off;
            len = 1 + rnd_n(100);
            break;
        case 1: /* big */
            off = rnd_n(n);
            len = rnd_n(n + 100);
            break;
        case 2: /* beyond the end */
            off = n + rnd_n(3);
            len = rnd_n(10);
            break;
        case 3:
            off = rnd_n(n);
            len = 0;
            break;
        default:
            off = rnd_n(n);
            len = 1 + rnd_n(9000);
            break;
        }
        check_range(r, v, n, off, len, buf);
    }
    check_range(r, v, n, UINT64_MAX, 5, buf);
    check_range(r, v, n, 0, n + 100, buf);
    /* Small sequential reads, as the filesystem issues them. */
    for (uint64_t off = 0; off < n + 4096; off += 4096)
        check_range(r, v, n, off, 4096, buf);
    for (uint64_t off = 7; off < 3 * BL_CHUNK; off += 1000)
        check_range(r, v, n, off, 1000, buf);
    bl_reader_close(r);
    free(buf);
    free(v);
}

/* Counts syscalls through the fault env: big writes and reads are batched,
 * small sequential reads read each chunk once. */
static void test_batching(void **state)
{
    fixture *fx = *state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    assert_non_null(fe);
    tl_env *env = tl_fault_env_env(fe);
    size_t n = 8 * 1024 * 1024 + 5;
    uint8_t *v = rnd_value(n);
    bl_ref ref;
    write_pieces(env, fx, 3, v, n, &ref);
    /* About one append per MiB (and the footer's). */
    assert_true(tl_fault_env_count(fe, TL_FAULT_WRITE) <= 10);

    uint64_t reads = tl_fault_env_count(fe, TL_FAULT_READ);
    tl_buf out = {0};
    assert_int_equal(bl_read_all(env, fx->dir, &ref, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, v, n);
    /* header + footer + 8 MiB in spans of 64 chunks. */
    assert_true(tl_fault_env_count(fe, TL_FAULT_READ) - reads <= 2 + 3 + 1);

    bl_reader *r;
    assert_int_equal(bl_reader_open(env, fx->dir, &ref, &r), 0);
    reads = tl_fault_env_count(fe, TL_FAULT_READ);
    uint8_t buf[4096];
    size_t chunks = 2 * 1024 * 1024 / BL_CHUNK;
    for (uint64_t off = 0; off < chunks * BL_CHUNK; off += sizeof buf)
        check_range(r, v, n, off, sizeof buf, buf);
    assert_int_equal(tl_fault_env_count(fe, TL_FAULT_READ) - reads, chunks);
    /* A read that stops inside a chunk leaves it cached for the next one. */
    uint8_t *big = malloc(3 * BL_CHUNK);
    assert_non_null(big);
    check_range(r, v, n, 10 * BL_CHUNK + 5, 2 * BL_CHUNK, big);
    reads = tl_fault_env_count(fe, TL_FAULT_READ);
    check_range(r, v, n, 12 * BL_CHUNK + 5, 100, big);
    assert_int_equal(tl_fault_env_count(fe, TL_FAULT_READ), reads);
    bl_reader_close(r);
    free(big);
    tl_buf_free(&out);
    free(v);
    tl_fault_env_free(fe);
}

typedef struct reader_arg {
    bl_reader *r;
    const uint8_t *v;
    size_t n;
    uint64_t seed;
    int failures;
} reader_arg;

static void *reader_thread(void *p)
{
    reader_arg *a = p;
    uint64_t s = a->seed;
    uint8_t *buf = malloc(4 * BL_CHUNK);
    if (!buf) {
        a->failures++;
        return NULL;
    }
    uint64_t seq = rnd_next(&s) % a->n;
    for (int i = 0; i < 3000; i++) {
        uint64_t off;
        size_t len;
        if (i % 3) { /* sequential runs interleaved with other threads' */
            off = seq;
            len = 4096;
            seq = seq + len < a->n ? seq + len : rnd_next(&s) % a->n;
        } else {
            off = rnd_next(&s) % (a->n + 10);
            len = (size_t)(rnd_next(&s) % (4 * BL_CHUNK));
        }
        size_t got;
        size_t want = off >= a->n ? 0 : (len < a->n - off ? len : a->n - off);
        if (bl_reader_read(a->r, off, buf, len, &got) != 0 || got != want ||
            (want && memcmp(buf, a->v + off, want) != 0))
            a->failures++;
    }
    free(buf);
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    size_t n = 2 * 1024 * 1024 + 999;
    uint8_t *v = rnd_value(n);
    bl_ref ref;
    assert_int_equal(bl_write(env, fx->dir, 5, v, n, &ref), 0);
    bl_reader *r;
    assert_int_equal(bl_reader_open(env, fx->dir, &ref, &r), 0);
    enum { T = 4 };
    pthread_t th[T];
    reader_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (reader_arg){r, v, n, seed0 * 31 + (uint64_t)i + 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader_thread, &args[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    bl_reader_close(r);
    free(v);
}

/* The reader keeps its descriptor: removing the file does not stop it. */
static void test_remove(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    size_t n = 3 * BL_CHUNK;
    uint8_t *v = rnd_value(n);
    bl_ref ref;
    assert_int_equal(bl_write(env, fx->dir, 11, v, n, &ref), 0);
    bl_reader *r;
    assert_int_equal(bl_reader_open(env, fx->dir, &ref, &r), 0);
    assert_int_equal(bl_remove(env, fx->dir, 11), 0);
    assert_int_equal(dir_entries(fx), 0);
    assert_int_equal(bl_remove(env, fx->dir, 11), 0); /* missing: fine */
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    check_range(r, v, n, 0, n, buf);
    bl_reader_close(r);
    free(buf);
    free(v);
}

/* ---- damage ------------------------------------------------------------- */

/* Opens blob `number` and reads all of it in one go and chunk by chunk;
 * returns the first error (0 if everything read back equals v). */
static int open_and_read(const fixture *fx, const bl_ref *ref, const uint8_t *v)
{
    tl_env *env = tl_env_posix();
    bl_reader *r;
    int rc = bl_reader_open(env, fx->dir, ref, &r);
    if (rc < 0)
        return rc;
    size_t n = (size_t)ref->length;
    uint8_t *buf = malloc(n + 1);
    assert_non_null(buf);
    size_t got;
    /* Chunk by chunk first (fills the cache), then everything. */
    for (uint64_t off = 0; off < n && rc == 0; off += BL_CHUNK / 2) {
        rc = bl_reader_read(r, off, buf, BL_CHUNK / 2, &got);
        if (rc == 0) {
            size_t want = n - off < BL_CHUNK / 2 ? n - off : BL_CHUNK / 2;
            assert_int_equal(got, want);
            assert_memory_equal(buf, v + off, got); /* never wrong data */
        }
    }
    int rc2 = bl_reader_read(r, 0, buf, n, &got);
    if (rc2 == 0) {
        assert_int_equal(got, n);
        assert_memory_equal(buf, v, n);
    }
    bl_reader_close(r);
    free(buf);
    assert_true((rc < 0) == (rc2 < 0));
    return rc < 0 ? rc : rc2;
}

static void test_flipped_bytes(void **state)
{
    fixture *fx = *state;
    size_t n = 2 * BL_CHUNK + BL_CHUNK / 2 + 17;
    uint8_t *v = rnd_value(n);
    bl_ref ref;
    assert_int_equal(bl_write(tl_env_posix(), fx->dir, 21, v, n, &ref), 0);
    const char *path = path_of(fx, 21);
    size_t size;
    uint8_t *img = slurp(path, &size);
    assert_int_equal(size, bl_file_size(n));
    assert_int_equal(open_and_read(fx, &ref, v), 0);

    /* Positions to damage: all of the header, checksums and footer, and
     * the edges and a sample of the inside of every chunk. */
    size_t pos[600], np = 0;
    for (size_t i = 0; i < 16; i++)
        pos[np++] = i;
    for (uint64_t c = 0; c < 3; c++) {
        size_t start = 16 + c * (BL_CHUNK + 8);
        size_t len = c < 2 ? BL_CHUNK : n - 2 * BL_CHUNK;
        pos[np++] = start;
        pos[np++] = start + 1;
        pos[np++] = start + len - 1;
        for (int k = 0; k < 30; k++)
            pos[np++] = start + rnd_n(len);
        for (size_t k = 0; k < 8; k++)
            pos[np++] = start + len + k;
    }
    for (size_t i = size - 32; i < size; i++)
        pos[np++] = i;

    for (size_t i = 0; i < np; i++) {
        size_t at = pos[i];
        uint8_t mask = (uint8_t)(1u << rnd_n(8));
        if (rnd_n(2))
            mask = (uint8_t)(1 + rnd_n(255));
        img[at] ^= mask;
        put_file(path, img, size);
        int rc = open_and_read(fx, &ref, v);
        if (at >= 8 && at < 12 && tl_get_fixed32(img + 8) > BL_FORMAT_VERSION)
            assert_int_equal(rc, TALUS_EVERSION); /* a newer format, not damage */
        else if (rc != TALUS_ECORRUPT)
            fail_msg("flip of 0x%02x at offset %zu: rc %d", mask, at, rc);
        assert_non_null(strstr(tl_errmsg(), path));
        img[at] ^= mask;
    }
    put_file(path, img, size);
    assert_int_equal(open_and_read(fx, &ref, v), 0);
    free(img);
    free(v);
}

static void test_truncated_and_wrong_refs(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    size_t n = 2 * BL_CHUNK + 100;
    uint8_t *v = rnd_value(n);
    bl_ref ref;
    assert_int_equal(bl_write(env, fx->dir, 31, v, n, &ref), 0);
    const char *path = path_of(fx, 31);
    size_t size;
    uint8_t *img = slurp(path, &size);

    /* Cut at every length near the edges, and at a sample in between. */
    for (size_t len = 0; len < size; len += (len < 100 || len > size - 100) ? 1 : 1 + rnd_n(997)) {
        put_file(path, img, len);
        assert_int_equal(open_and_read(fx, &ref, v), TALUS_ECORRUPT);
    }
    /* Trailing garbage. */
    uint8_t *longer = malloc(size + 8);
    assert_non_null(longer);
    memcpy(longer, img, size);
    memset(longer + size, 0, 8);
    put_file(path, longer, size + 8);
    assert_int_equal(open_and_read(fx, &ref, v), TALUS_ECORRUPT);
    put_file(path, img, size);
    assert_int_equal(open_and_read(fx, &ref, v), 0);

    /* Cut short under an open reader: reads report it, not garbage. */
    bl_reader *r;
    assert_int_equal(bl_reader_open(env, fx->dir, &ref, &r), 0);
    assert_int_equal(tl_env_truncate(env, path, size - 40 - BL_CHUNK), 0);
    size_t got;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(bl_reader_read(r, 0, buf, 10, &got), 0);
    assert_memory_equal(buf, v, 10);
    assert_int_equal(bl_reader_read(r, n - 10, buf, 10, &got), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), path));
    bl_reader_close(r);
    put_file(path, img, size);

    /* Wrong references. */
    const bl_ref wrong[] = {
        {31, n - 1}, {31, n + 1}, {31, 0}, {31, (uint64_t)TALUS_MAX_VALUE + 1}, {32, n}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        assert_int_equal(bl_reader_open(env, fx->dir, &wrong[i], &r), TALUS_ECORRUPT);
        tl_buf out = {0};
        assert_int_equal(bl_read_all(env, fx->dir, &wrong[i], &out), TALUS_ECORRUPT);
        tl_buf_free(&out);
    }
    assert_non_null(strstr(tl_errmsg(), "000032.blob"));

    /* Not a blob at all, and an empty blob under a non-empty reference. */
    uint8_t text[64];
    memset(text, 'x', sizeof text);
    put_file(path_of(fx, 33), text, 48);
    assert_int_equal(bl_reader_open(env, fx->dir, &(bl_ref){33, 0}, &r), TALUS_ECORRUPT);
    assert_int_equal(bl_write(env, fx->dir, 34, "", 0, &ref), 0);
    assert_int_equal(bl_reader_open(env, fx->dir, &(bl_ref){34, 1}, &r), TALUS_ECORRUPT);
    free(buf);
    free(longer);
    free(img);
    free(v);
}

/* ---- faults ------------------------------------------------------------- */

static void test_faults(void **state)
{
    fixture *fx = *state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    assert_non_null(fe);
    tl_env *env = tl_fault_env_env(fe);
    size_t n = 3 * 1024 * 1024 + 11;
    uint8_t *v = rnd_value(n);
    bl_ref ref;
    const struct {
        tl_fault_kind kind;
        uint64_t nth;
        int err;
    } faults[] = {
        {TL_FAULT_OPEN, 1, TALUS_EIO},   {TL_FAULT_WRITE, 1, TALUS_ENOSPC},
        {TL_FAULT_WRITE, 2, TALUS_EIO},  {TL_FAULT_WRITE, 4, TALUS_ENOSPC}, /* the footer's */
        {TL_FAULT_SYNC, 1, TALUS_EIO},   {TL_FAULT_SYNC, 2, TALUS_EIO},     /* sync_dir */
        {TL_FAULT_RENAME, 1, TALUS_EIO},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        for (int way = 0; way < 2; way++) {
            tl_fault_env_arm(fe, faults[i].kind, faults[i].nth, faults[i].err, false);
            int rc;
            if (way == 0) {
                rc = bl_write(env, fx->dir, 40 + i, v, n, &ref);
            } else {
                bl_writer *w;
                rc = bl_writer_open(env, fx->dir, 40 + i, &w);
                for (size_t at = 0; rc == 0 && at < n; at += 100000)
                    rc = bl_writer_append(w, v + at, n - at < 100000 ? n - at : 100000);
                if (rc == 0) {
                    rc = bl_writer_finish(w, &ref);
                } else if (faults[i].kind != TL_FAULT_OPEN) {
                    assert_int_equal(bl_writer_append(w, v, 1), rc); /* sticky */
                    assert_int_equal(bl_writer_finish(w, &ref), rc);
                }
            }
            tl_fault_env_disarm(fe);
            if (rc != faults[i].err)
                fail_msg("fault %zu way %d: rc %d (%s)", i, way, rc, tl_errmsg());
            assert_non_null(strstr(tl_errmsg(), "injected"));
            assert_int_equal(dir_entries_in(env, fx), 0);
        }
    }
    /* A short write. */
    tl_fault_env_short_write_next(fe);
    assert_int_equal(bl_write(env, fx->dir, 50, v, n, &ref), TALUS_EIO);
    assert_int_equal(dir_entries_in(env, fx), 0);

    /* Over the value limit (the length check comes before any copy). */
    bl_writer *w;
    assert_int_equal(bl_writer_open(env, fx->dir, 51, &w), 0);
    assert_int_equal(bl_writer_append(w, v, 10), 0);
    assert_int_equal(bl_writer_append(w, v, (size_t)TALUS_MAX_VALUE - 9), TALUS_ETOOBIG);
    assert_int_equal(bl_writer_append(w, v, 1), TALUS_ETOOBIG);
    bl_writer_abort(w);
    bl_writer_abort(NULL);
    assert_int_equal(dir_entries_in(env, fx), 0);

    /* Read errors are the OS's, not damage. */
    assert_int_equal(bl_write(env, fx->dir, 52, v, n, &ref), 0);
    tl_fault_env_arm(fe, TL_FAULT_READ, 1, TALUS_EIO, false);
    bl_reader *r;
    assert_int_equal(bl_reader_open(env, fx->dir, &ref, &r), TALUS_EIO);
    assert_int_equal(bl_reader_open(env, fx->dir, &ref, &r), 0);
    tl_fault_env_arm(fe, TL_FAULT_READ, 1, TALUS_EIO, false);
    uint8_t buf[100];
    size_t got;
    assert_int_equal(bl_reader_read(r, 5, buf, sizeof buf, &got), TALUS_EIO);
    assert_int_equal(bl_reader_read(r, 5, buf, sizeof buf, &got), 0);
    assert_memory_equal(buf, v + 5, sizeof buf);
    bl_reader_close(r);
    assert_int_equal(bl_reader_open(env, fx->dir, &(bl_ref){53, 1}, &r), TALUS_ECORRUPT);

    /* A finished blob is durable: it survives a power loss. */
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    tl_buf out = {0};
    assert_int_equal(bl_read_all(env, fx->dir, &ref, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, v, n);
    tl_buf_free(&out);
    free(v);
    tl_fault_env_free(fe);
}

int main(void)
{
    const char *env = getenv("TEST_SEED");
    seed0 = env ? strtoull(env, NULL, 0) : 0xb10b;
    printf("test_blob seed %llu (set TEST_SEED to replay)\n", (unsigned long long)seed0);
    rng = seed0 ? seed0 : 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_codec),
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranged_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_wrong_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
