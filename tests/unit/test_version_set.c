/*
 * test_version_set.c - the version set on disk: reopen recovers the same
 * version and counters, manifest rotation, the record framing (every cut of
 * the last record is a torn tail and is ignored, a zero-filled tail too; any
 * damaged complete record, the last one included, is TALUS_ECORRUPT naming
 * its offset), CURRENT missing or bad, future format versions
 * (TALUS_EVERSION), and I/O faults during apply and open through the
 * fault-injecting env (sticky error; reopen yields a stated outcome).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "talus.h"
#include "util/coding.h"
#include "version/version_int.h"
#include "version_test_util.h"

/* Where the fields of a record header sit (FORMAT.md, "Records"). The tests
 * only use these to damage a chosen field; records are built with
 * ver_record_frame and walked with ver_manifest_next. */
#define REC_LENGTH 0       /* fixed32 payload length */
#define REC_LENGTH_CHECK 4 /* fixed32 check of the length bytes */
#define REC_SUM 8          /* fixed64 checksum of the payload */

static char g_dir[256];

static int dir_setup(void **state)
{
    (void)state;
    vt_mkdir(g_dir, sizeof g_dir);
    return 0;
}

static int dir_teardown(void **state)
{
    (void)state;
    vt_rmdir(g_dir);
    return 0;
}

static int open_set(tl_env *env, bool create, uint32_t max_format, ver_set **vs)
{
    ver_set_options o;
    vt_options(&o, env, g_dir, create);
    o.max_format_version = max_format;
    return ver_set_open(&o, vs);
}

static ver_set *must_open(tl_env *env)
{
    ver_set *vs = NULL;
    int rc = open_set(env, true, 3, &vs);
    if (rc)
        fail_msg("open: %d %s", rc, tl_errmsg());
    return vs;
}

static void manifest_path(ver_set *vs, char *path, size_t cap)
{
    snprintf(path, cap, "%s/MANIFEST-%06llu", g_dir,
             (unsigned long long)ver_set_manifest_number(vs));
}

static bool file_exists(const char *path)
{
    return tl_env_exists(tl_env_posix(), path) == 1;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    uint8_t *d;
    assert_int_equal(tl_env_read_file(tl_env_posix(), path, &d, n), 0);
    return d;
}

static void spit(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

/* A manifest file header (magic and framing version) in b. */
static void put_file_header(tl_buf *b)
{
    tl_buf_clear(b);
    assert_int_equal(tl_buf_append(b, VER_MANIFEST_MAGIC, 8), 0);
    assert_int_equal(tl_buf_put_fixed32(b, VER_MANIFEST_FRAMING), 0);
    assert_int_equal(b->len, VER_MANIFEST_HEADER);
}

/* Offsets of the records of a clean manifest image, found with the module's
 * reader; offs[k] (one past the last record) is the image size. Rebuilding
 * the image from the payloads with ver_record_frame must give the same
 * bytes: the writer and the reader agree on the framing. */
static size_t record_offsets(const uint8_t *d, size_t n, size_t *offs, size_t cap)
{
    ver_manifest_reader r;
    tl_buf re = {0};
    tl_slice p;
    size_t k = 0, off;
    int rc;
    assert_int_equal(ver_manifest_reader_init(&r, "image", d, n), 0);
    put_file_header(&re);
    assert_memory_equal(re.data, d, VER_MANIFEST_HEADER);
    while ((rc = ver_manifest_next(&r, &p, &off)) == 1) {
        assert_true(k + 1 < cap);
        assert_int_equal(off, re.len);
        offs[k++] = off;
        assert_int_equal(ver_record_frame(&re, p), 0);
    }
    assert_int_equal(rc, 0);
    assert_false(r.torn);
    assert_int_equal(re.len, n);
    assert_memory_equal(re.data, d, n);
    offs[k] = n;
    tl_buf_free(&re);
    return k;
}

/* Whether the last error message names offset off ("offset N" with no
 * further digit, so that 12 does not match "offset 123"). */
static bool msg_names_offset(size_t off)
{
    char want[40];
    snprintf(want, sizeof want, "offset %zu", off);
    size_t wn = strlen(want);
    for (const char *p = tl_errmsg(); (p = strstr(p, want)) != NULL; p++)
        if (p[wn] < '0' || p[wn] > '9')
            return true;
    return false;
}

/* Applies an edit adding (level, file) and deleting one number (0: none). */
static int apply(ver_set *vs, int level, ver_file *f, int del_level, uint64_t del)
{
    ver_edit e;
    ver_edit_init(&e);
    if (f) {
        assert_int_equal(ver_edit_add_file(&e, level, f), 0);
        ver_file_unref(f);
    }
    if (del)
        assert_int_equal(ver_edit_delete_file(&e, del_level, del), 0);
    int rc = ver_set_apply(vs, &e);
    ver_edit_free(&e);
    return rc;
}

static void assert_state(ver_set *vs, const vt_snap *want)
{
    ver_version *v = ver_set_current(vs);
    assert_true(vt_snap_matches(want, v));
    ver_version_unref(v);
}

static void snap_current(ver_set *vs, vt_snap *s)
{
    ver_version *v = ver_set_current(vs);
    vt_snap_take(s, v);
    ver_version_unref(v);
}

/* ---- Recovery ------------------------------------------------------------ */

static void test_reopen_recovers(void **state)
{
    (void)state;
    ver_set *vs = must_open(tl_env_posix());
    uint64_t n[8];
    for (int i = 0; i < 8; i++)
        n[i] = ver_set_new_file_number(vs);
    assert_int_equal(apply(vs, 0, vt_file(n[0], "a", 10, "k", 3), 0, 0), 0);
    assert_int_equal(apply(vs, 0, vt_file(n[1], "b", 20, "z", 11), 0, 0), 0);
    ver_edit e;
    ver_edit_init(&e);
    e.has_last_seq = e.has_flushed_seq = true;
    e.last_seq = 100;
    e.flushed_seq = 50;
    ver_file *l1a = vt_file(n[2], "a", 5, "c", 5), *l1b = vt_file(n[3], "d", 5, "f", 5);
    assert_int_equal(ver_edit_add_file(&e, 1, l1a), 0);
    assert_int_equal(ver_edit_add_file(&e, 1, l1b), 0);
    assert_int_equal(ver_edit_delete_file(&e, 0, n[0]), 0);
    assert_int_equal(ver_set_apply(vs, &e), 0);
    ver_edit_free(&e);
    ver_file_unref(l1a);
    ver_file_unref(l1b);
    /* last_seq never goes backwards; flushed_seq moves up. */
    ver_edit_init(&e);
    e.has_last_seq = e.has_flushed_seq = true;
    e.last_seq = 90;
    e.flushed_seq = 80;
    ver_file *l2 = vt_file(n[4], "m", 1, "q", 1);
    assert_int_equal(ver_edit_add_file(&e, 2, l2), 0);
    assert_int_equal(ver_set_apply(vs, &e), 0);
    ver_edit_free(&e);
    ver_file_unref(l2);
    /* n[5..7] were handed out but never used in an edit. */
    assert_true(ver_set_last_seq(vs) == 100);
    assert_true(ver_set_flushed_seq(vs) == 80);

    vt_snap want;
    snap_current(vs, &want);
    char old[512];
    manifest_path(vs, old, sizeof old);
    ver_set_close(vs);

    vs = must_open(tl_env_posix());
    assert_state(vs, &want);
    assert_true(ver_set_last_seq(vs) == 100);
    assert_true(ver_set_flushed_seq(vs) == 80);
    assert_int_equal(ver_set_format_version(vs), 3);
    assert_int_equal(ver_set_num_levels(vs), 7);
    assert_true(ver_set_new_file_number(vs) > n[7]); /* never reused */
    /* Open started a new manifest and removed the old one. */
    char cur[512];
    manifest_path(vs, cur, sizeof cur);
    assert_string_not_equal(cur, old);
    assert_false(file_exists(old));
    assert_true(file_exists(cur));
    ver_set_close(vs);

    /* Read-only: same state, nothing written, applies refused. */
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), 0);
    uint64_t mnum = ver_set_manifest_number(vs);
    manifest_path(vs, cur, sizeof cur);
    ver_set_close(vs);
    size_t before_n, after_n;
    uint8_t *before = slurp(cur, &before_n);
    ver_set_options o;
    vt_options(&o, tl_env_posix(), g_dir, false);
    o.read_only = true;
    assert_int_equal(ver_set_open(&o, &vs), 0);
    assert_state(vs, &want);
    assert_true(ver_set_manifest_number(vs) == mnum);
    assert_int_equal(apply(vs, 0, vt_file(999, "a", 1, "b", 1), 0, 0), TALUS_EREADONLY);
    ver_set_close(vs);
    uint8_t *after = slurp(cur, &after_n);
    assert_int_equal(after_n, before_n);
    assert_memory_equal(after, before, before_n);
    free(before);
    free(after);
    vt_snap_free(&want);
}

static void test_rotation(void **state)
{
    (void)state;
    ver_set *vs = must_open(tl_env_posix());
    uint64_t first = ver_set_manifest_number(vs), prev = 0;
    char firstpath[512];
    manifest_path(vs, firstpath, sizeof firstpath);
    static char big[60001];
    memset(big, 'k', sizeof big - 1);
    int rotated_at = -1;
    /* Each edit carries two ~60 KB keys: ~70 edits pass 4 MiB. */
    for (int i = 0; i < 80; i++) {
        uint64_t num = ver_set_new_file_number(vs);
        big[sizeof big - 2] = (char)('A' + i % 26);
        assert_int_equal(
            apply(vs, 0, vt_file(num, big, (uint64_t)i + 1, big, (uint64_t)i + 1), 0, prev), 0);
        prev = num;
        if (rotated_at < 0 && ver_set_manifest_number(vs) != first)
            rotated_at = i;
    }
    printf("rotated after %d edits\n", rotated_at);
    assert_true(rotated_at > 30 && rotated_at < 80);
    assert_false(file_exists(firstpath));
    char cur[512];
    manifest_path(vs, cur, sizeof cur);
    uint64_t size;
    assert_int_equal(tl_env_file_size(tl_env_posix(), cur, &size), 0);
    assert_true(size < 4u << 20);
    vt_snap want;
    snap_current(vs, &want);
    uint64_t last = ver_set_last_seq(vs);
    ver_set_close(vs);
    vs = must_open(tl_env_posix());
    assert_state(vs, &want);
    assert_true(ver_set_last_seq(vs) == last);
    assert_true(ver_set_new_file_number(vs) > prev);
    ver_set_close(vs);
    vt_snap_free(&want);
}

/* ---- Record framing (the reader on images in memory) --------------------- */

#define FRAMING_PATH "DIR/MANIFEST-000009"
#define NP 4 /* records in the test image */

/* Reads an image to its end. Returns 0 (end or torn tail) or the error;
 * *good counts the records read, which must match want[] at offs[]. */
static int read_image(ver_manifest_reader *r, const uint8_t *d, size_t n, const tl_buf *want,
                      const size_t *offs, size_t *good)
{
    assert_int_equal(ver_manifest_reader_init(r, FRAMING_PATH, d, n), 0);
    for (*good = 0;; (*good)++) {
        tl_slice p;
        size_t off;
        int rc = ver_manifest_next(r, &p, &off);
        if (rc <= 0)
            return rc;
        assert_true(*good < NP);
        assert_int_equal(off, offs[*good]);
        assert_int_equal(p.len, want[*good].len);
        if (p.len)
            assert_memory_equal(p.data, want[*good].data, p.len);
    }
}

/* The record of offs[0..n) that holds byte i. */
static size_t record_of(const size_t *offs, size_t n, size_t i)
{
    size_t k = 0;
    while (k + 1 < n && offs[k + 1] <= i)
        k++;
    return k;
}

/* The image reads up to record rec, which is TALUS_ECORRUPT naming it. */
static void expect_damage(const uint8_t *d, size_t n, const tl_buf *pay, const size_t *offs,
                          size_t rec)
{
    ver_manifest_reader r;
    size_t good;
    assert_int_equal(read_image(&r, d, n, pay, offs, &good), TALUS_ECORRUPT);
    assert_int_equal(good, rec);
    if (!strstr(tl_errmsg(), FRAMING_PATH) || !msg_names_offset(offs[rec]))
        fail_msg("message \"%s\" should name %s and offset %zu", tl_errmsg(), FRAMING_PATH,
                 offs[rec]);
}

/* The image reads good_want records, then a torn tail at torn_at. */
static void expect_torn(const uint8_t *d, size_t n, const tl_buf *pay, const size_t *offs,
                        size_t good_want, size_t torn_at)
{
    ver_manifest_reader r;
    size_t good;
    assert_int_equal(read_image(&r, d, n, pay, offs, &good), 0);
    assert_int_equal(good, good_want);
    assert_true(r.torn);
    assert_int_equal(r.torn_at, torn_at);
}

static void test_record_framing(void **state)
{
    (void)state;
    vt_seed("test_record_framing");
    /* A typical edit, an empty one, a one-byte one, a larger one. */
    static const size_t sizes[NP] = {37, 0, 1, 300};
    tl_buf pay[NP] = {{0}}, img = {0};
    size_t offs[NP + 1], good;
    ver_manifest_reader r;
    put_file_header(&img);
    for (size_t i = 0; i < NP; i++) {
        for (size_t j = 0; j < sizes[i]; j++)
            assert_int_equal(tl_buf_append(&pay[i], &(uint8_t){(uint8_t)vt_rnd()}, 1), 0);
        offs[i] = img.len;
        assert_int_equal(ver_record_frame(&img, tl_buf_slice(&pay[i])), 0);
        assert_int_equal(img.len - offs[i], VER_RECORD_HEADER + sizes[i]);
    }
    offs[NP] = img.len;
    size_t n = img.len;
    uint8_t *d = malloc(n + 64);

    /* Clean: every record, then a clean end. */
    assert_int_equal(read_image(&r, img.data, n, pay, offs, &good), 0);
    assert_int_equal(good, NP);
    assert_false(r.torn);

    /* Every cut, inside a header or a payload: the records before the cut
     * one, then a torn tail at its start. A cut between records is a clean
     * end. */
    for (size_t cut = VER_MANIFEST_HEADER; cut < n; cut++) {
        size_t k = record_of(offs, NP + 1, cut);
        if (cut == offs[k]) {
            assert_int_equal(read_image(&r, img.data, cut, pay, offs, &good), 0);
            assert_int_equal(good, k);
            assert_false(r.torn);
        } else {
            expect_torn(img.data, cut, pay, offs, k, offs[k]);
        }
    }

    /* Every single-bit flip in a complete record, the last one included, is
     * damage named by that record's offset: a damaged length cannot pass for
     * a record cut short, nor a bad payload for a torn tail. */
    for (size_t i = VER_MANIFEST_HEADER; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(d, img.data, n);
            d[i] ^= (uint8_t)(1u << bit);
            expect_damage(d, n, pay, offs, record_of(offs, NP + 1, i));
        }
    }

    /* A zero-filled tail of any length (the file was extended, its data
     * lost) is torn at its start. With a stray byte in it, a tail long
     * enough for a header is damage; a shorter one is a cut header. */
    for (size_t z = 1; z <= 48; z++) {
        memcpy(d, img.data, n);
        memset(d + n, 0, z);
        expect_torn(d, n + z, pay, offs, NP, n);
        for (size_t j = 0; j < z; j++) {
            d[n + j] = 0x20;
            if (z >= VER_RECORD_HEADER)
                expect_damage(d, n + z, pay, offs, NP);
            else
                expect_torn(d, n + z, pay, offs, NP, n);
            d[n + j] = 0;
        }
    }
    /* Zeros are a torn tail only at the end: a zeroed record with records
     * after it is damage. */
    memcpy(d, img.data, n);
    memset(d + offs[2], 0, offs[3] - offs[2]);
    expect_damage(d, n, pay, offs, 2);

    /* A payload whose length does not fit the field is refused. */
    if (SIZE_MAX > UINT32_MAX) {
        tl_buf b = {0};
        assert_int_equal(ver_record_frame(&b, tl_slice_make(d, (size_t)UINT32_MAX + 1)),
                         TALUS_ETOOBIG);
        assert_int_equal(b.len, 0);
        tl_buf_free(&b);
    }
    free(d);
    tl_buf_free(&img);
    for (size_t i = 0; i < NP; i++)
        tl_buf_free(&pay[i]);
}
#undef NP

/* ---- Damage and torn tails through open ----------------------------------- */

/* Builds A (one file) then B (another), returns the state after A and after
 * B, and the manifest image holding both as separate records. */
static uint8_t *two_states(vt_snap *after_a, vt_snap *after_b, size_t *n, char *path, size_t cap)
{
    ver_set *vs = must_open(tl_env_posix());
    assert_int_equal(apply(vs, 0, vt_file(ver_set_new_file_number(vs), "a", 1, "b", 1), 0, 0), 0);
    snap_current(vs, after_a);
    assert_int_equal(apply(vs, 1, vt_file(ver_set_new_file_number(vs), "c", 2, "d", 2), 0, 0), 0);
    snap_current(vs, after_b);
    manifest_path(vs, path, cap);
    ver_set_close(vs);
    return slurp(path, n);
}

/* Puts a manifest image back as the live manifest (reopen replaced it). */
static void restore(const char *path, const uint8_t *d, size_t n)
{
    const char *name = strrchr(path, '/') + 1;
    char line[64];
    spit(path, d, n);
    snprintf(line, sizeof line, "%s\n", name);
    assert_int_equal(tl_env_write_file_atomic(tl_env_posix(), g_dir, "CURRENT", line, strlen(line)),
                     0);
}

static void reopen_expect(const vt_snap *want)
{
    ver_set *vs = NULL;
    int rc = open_set(tl_env_posix(), false, 3, &vs);
    if (rc)
        fail_msg("reopen: %d %s", rc, tl_errmsg());
    assert_state(vs, want);
    ver_set_close(vs);
}

/* The state after the snapshot record alone: no files at all. */
static void reopen_expect_empty(void)
{
    ver_set *vs = NULL;
    int rc = open_set(tl_env_posix(), false, 3, &vs);
    if (rc)
        fail_msg("reopen: %d %s", rc, tl_errmsg());
    ver_version *v = ver_set_current(vs);
    for (int l = 0; l < v->num_levels; l++)
        assert_int_equal(v->nfiles[l], 0);
    ver_version_unref(v);
    ver_set_close(vs);
}

static void expect_corrupt(const char *path, const uint8_t *img, size_t n, const char *needle)
{
    ver_set *vs = NULL;
    restore(path, img, n);
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_ECORRUPT);
    if (!strstr(tl_errmsg(), needle) || !strstr(tl_errmsg(), "MANIFEST-"))
        fail_msg("message \"%s\" lacks \"%s\"", tl_errmsg(), needle);
}

/* Damage in the record at off: TALUS_ECORRUPT naming the manifest and off. */
static void expect_corrupt_at(const char *path, const uint8_t *img, size_t n, size_t off)
{
    expect_corrupt(path, img, n, "MANIFEST-");
    if (!msg_names_offset(off))
        fail_msg("message \"%s\" does not name offset %zu", tl_errmsg(), off);
}

static void test_torn_tail(void **state)
{
    (void)state;
    vt_snap a, b, c;
    char path[512];
    size_t n, offs[8];
    ver_set *vs;
    uint8_t *img = two_states(&a, &b, &n, path, sizeof path);
    assert_int_equal(record_offsets(img, n, offs, 8), 3); /* snapshot, A, B */
    /* Every cut inside the last record, in its header or in its payload,
     * is a torn tail: the state after A. */
    for (size_t cut = offs[2]; cut < n; cut++) {
        restore(path, img, cut);
        reopen_expect(&a);
    }
    /* Every cut inside A's record: the snapshot alone. */
    for (size_t cut = offs[1]; cut < offs[2]; cut++) {
        restore(path, img, cut);
        reopen_expect_empty();
    }
    /* A zero-filled tail (the file was extended, its data lost), longer or
     * shorter than a record header, is torn too: the state after B. */
    uint8_t *z = calloc(1, n + 100);
    memcpy(z, img, n);
    restore(path, z, n + 100);
    reopen_expect(&b);
    restore(path, z, n + VER_RECORD_HEADER - 1);
    reopen_expect(&b);
    /* After a torn tail the manifest was rewritten: applies work. */
    restore(path, img, n - 3);
    vs = must_open(tl_env_posix());
    assert_int_equal(apply(vs, 2, vt_file(ver_set_new_file_number(vs), "x", 5, "y", 5), 0, 0), 0);
    snap_current(vs, &c);
    ver_set_close(vs);
    reopen_expect(&c);
    /* Without a complete record there is no state at all: a manifest with
     * only its header, or with its first record cut short, is corrupt. */
    ver_set_close(must_open(tl_env_posix()));
    for (size_t cut = VER_MANIFEST_HEADER; cut < offs[1]; cut++)
        expect_corrupt(path, img, cut, "no complete record");
    free(z);
    free(img);
    vt_snap_free(&a);
    vt_snap_free(&b);
    vt_snap_free(&c);
}

/* The image with record i's payload replaced by p (framed by
 * ver_record_frame); the records after it are kept. */
static uint8_t *with_payload(const uint8_t *img, const size_t *offs, size_t nrec, size_t i,
                             const uint8_t *p, size_t plen, size_t *outn)
{
    tl_buf b = {0};
    assert_int_equal(tl_buf_append(&b, img, offs[i]), 0);
    assert_int_equal(ver_record_frame(&b, tl_slice_make(p, plen)), 0);
    assert_int_equal(tl_buf_append(&b, img + offs[i + 1], offs[nrec] - offs[i + 1]), 0);
    *outn = b.len;
    return b.data;
}

static void test_corrupt_record(void **state)
{
    (void)state;
    vt_snap a, b;
    char path[512];
    size_t n, offs[8], dn;
    uint8_t *img = two_states(&a, &b, &n, path, sizeof path);
    assert_int_equal(record_offsets(img, n, offs, 8), 3);
    uint8_t *d = malloc(n + 64);

    /* A flipped byte in each field of the middle record (A) and of the last
     * complete record (B) is damage named by the record's offset. For B it
     * must not pass for a torn tail: that would silently drop an edit that
     * was acknowledged. A flipped high length byte sends the length past the
     * end of the file, like a record cut short; the length check tells the
     * two apart. */
    static const struct {
        size_t at;
        uint8_t mask;
    } flips[] = {
        {REC_LENGTH, 0x01},            /* length off by one */
        {REC_LENGTH + 3, 0x80},        /* length far past the end of the file */
        {REC_LENGTH_CHECK + 1, 0x10},  /* the length's check */
        {REC_SUM + 2, 0x80},           /* the payload checksum */
        {VER_RECORD_HEADER + 2, 0x01}, /* a payload byte */
    };
    for (size_t rec = 1; rec <= 2; rec++) {
        for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
            memcpy(d, img, n);
            d[offs[rec] + flips[i].at] ^= flips[i].mask;
            expect_corrupt_at(path, d, n, offs[rec]);
        }
    }
    /* The very last byte of the file. */
    memcpy(d, img, n);
    d[n - 1] ^= 0x40;
    expect_corrupt_at(path, d, n, offs[2]);
    /* A zero-filled tail with a stray byte in it is damage, not torn. */
    memcpy(d, img, n);
    memset(d + n, 0, 64);
    d[n + 40] = 1;
    expect_corrupt_at(path, d, n + 64, n);
    /* A bad magic. */
    memcpy(d, img, n);
    d[0] ^= 0xff;
    expect_corrupt_at(path, d, n, 0);
    free(d);

    /* A well-framed record that does not decode, or does not apply. */
    static const uint8_t unknown_tag[] = {99, 1};
    d = with_payload(img, offs, 3, 1, unknown_tag, sizeof unknown_tag, &dn);
    expect_corrupt(path, d, dn, "unknown tag");
    assert_true(msg_names_offset(offs[1]));
    free(d);
    static const uint8_t del_missing[] = {6, 0, 77};
    d = with_payload(img, offs, 3, 1, del_missing, sizeof del_missing, &dn);
    expect_corrupt(path, d, dn, "not live");
    assert_true(msg_names_offset(offs[1]));
    free(d);
    /* Snapshot with two overlapping L1 files: "a"@1.."c"@1 and "b"@1.."d"@1. */
    uint8_t snap[128];
    size_t k = 0;
    snap[k++] = 1, snap[k++] = 3, snap[k++] = 2, snap[k++] = 7, snap[k++] = 3, snap[k++] = 50;
    for (int i = 0; i < 2; i++) {
        snap[k++] = 7, snap[k++] = 1, snap[k++] = (uint8_t)(10 + i), snap[k++] = 1;
        for (int j = 0; j < 2; j++) {
            snap[k++] = 10;
            snap[k++] = (uint8_t)('a' + i + 2 * j);
            tl_put_fixed64(snap + k, 1);
            k += 8;
            snap[k++] = TL_TYPE_VALUE;
        }
        snap[k++] = 1, snap[k++] = 1, snap[k++] = 1, snap[k++] = 0;
    }
    d = with_payload(img, offs, 1, 0, snap, k, &dn); /* the snapshot alone */
    expect_corrupt(path, d, dn, "overlap");
    free(d);

    /* CURRENT naming a manifest that is not there. */
    restore(path, img, n);
    ver_set *vs;
    assert_int_equal(tl_env_remove(tl_env_posix(), path), 0);
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_ECORRUPT);
    free(img);
    vt_snap_free(&a);
    vt_snap_free(&b);
}

static void test_current(void **state)
{
    (void)state;
    ver_set *vs = NULL;
    char path[512];
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_ENOTFOUND);
    ver_set_options o;
    vt_options(&o, tl_env_posix(), g_dir, true);
    o.read_only = true;
    assert_int_equal(ver_set_open(&o, &vs), TALUS_ENOTFOUND);
    snprintf(path, sizeof path, "%s/CURRENT", g_dir);
    assert_false(file_exists(path));

    vs = must_open(tl_env_posix());
    size_t n;
    uint8_t *cur = slurp(path, &n);
    assert_int_equal(n, 16);
    assert_memory_equal(cur, "MANIFEST-000001\n", 16);
    free(cur);
    assert_true(ver_set_new_file_number(vs) == 2);
    ver_set_close(vs);

    static const char *bad[] = {"",
                                "MANIFEST-\n",
                                "MANIFEST-12",
                                "MANIFEST-1x\n",
                                "manifest-000001\n",
                                "MANIFEST-000000\n",
                                "MANIFEST-99999999999999999999999\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spit(path, (const uint8_t *)bad[i], strlen(bad[i]));
        assert_int_equal(open_set(tl_env_posix(), true, 3, &vs), TALUS_ECORRUPT);
    }
    /* CURRENT lost but a later manifest exists: refuse to create over it. */
    tl_env_remove(tl_env_posix(), path);
    snprintf(path, sizeof path, "%s/MANIFEST-000007", g_dir);
    spit(path, (const uint8_t *)"x", 1);
    assert_int_equal(open_set(tl_env_posix(), true, 3, &vs), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "MANIFEST-000007"));
}

static void test_future_format(void **state)
{
    (void)state;
    ver_set *vs = NULL;
    assert_int_equal(open_set(tl_env_posix(), true, 4, &vs), 0);
    ver_edit e;
    ver_edit_init(&e);
    e.has_format_version = true;
    e.format_version = 4;
    assert_int_equal(ver_set_apply(vs, &e), 0);
    ver_edit_free(&e);
    /* It only goes up. */
    ver_edit_init(&e);
    e.has_format_version = true;
    e.format_version = 3;
    assert_int_equal(ver_set_apply(vs, &e), 0);
    ver_edit_free(&e);
    assert_int_equal(ver_set_format_version(vs), 4);
    char path[512];
    manifest_path(vs, path, sizeof path);
    ver_set_close(vs);

    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_EVERSION);
    assert_non_null(strstr(tl_errmsg(), "format V4"));
    assert_non_null(strstr(tl_errmsg(), "reads up to V3"));
    assert_int_equal(open_set(tl_env_posix(), false, 4, &vs), 0);
    assert_int_equal(ver_set_format_version(vs), 4);
    manifest_path(vs, path, sizeof path);
    ver_set_close(vs);

    /* A V5 record with a tag V3 does not know: still EVERSION, because the
     * format version comes first. */
    static const uint8_t v5[] = {1, 5, 2, 7, 99, 1, 2, 3};
    tl_buf img = {0};
    put_file_header(&img);
    assert_int_equal(ver_record_frame(&img, tl_slice_make(v5, sizeof v5)), 0);
    restore(path, img.data, img.len);
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_EVERSION);
    assert_int_equal(open_set(tl_env_posix(), false, 5, &vs), TALUS_ECORRUPT);
    /* An unknown framing version (the fixed32 after the 8-byte magic) is
     * EVERSION too. */
    tl_put_fixed32(img.data + 8, VER_MANIFEST_FRAMING + 1);
    restore(path, img.data, img.len);
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_EVERSION);
    tl_buf_free(&img);
}

/* ---- Faults -------------------------------------------------------------- */

enum fault_case { SYNC_KEEP, SYNC_DROP, WRITE_FAIL, SHORT_WRITE };

static void run_fault(enum fault_case fc)
{
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    tl_env *env = tl_fault_env_env(fe);
    vt_obsolete obs = {.n = 0};
    pthread_mutex_init(&obs.mu, NULL);
    ver_set_options o;
    vt_options(&o, env, g_dir, true);
    o.on_obsolete = vt_on_obsolete;
    o.on_obsolete_ctx = &obs;
    ver_set *vs;
    assert_int_equal(ver_set_open(&o, &vs), 0);
    uint64_t a = ver_set_new_file_number(vs);
    assert_int_equal(apply(vs, 0, vt_file(a, "a", 1, "b", 1), 0, 0), 0);
    vt_snap before, after;
    snap_current(vs, &before);

    if (fc == SYNC_KEEP || fc == SYNC_DROP)
        tl_fault_env_arm(fe, TL_FAULT_SYNC, 1, TALUS_EIO, false);
    else if (fc == WRITE_FAIL)
        tl_fault_env_arm(fe, TL_FAULT_WRITE, 1, TALUS_ENOSPC, false);
    else
        tl_fault_env_short_write_next(fe);
    uint64_t b = ver_set_new_file_number(vs);
    int rc = apply(vs, 1, vt_file(b, "c", 2, "d", 2), 0, a);
    int want = fc == WRITE_FAIL ? TALUS_ENOSPC : TALUS_EIO;
    assert_int_equal(rc, want);
    tl_fault_env_disarm(fe);
    assert_state(vs, &before); /* nothing installed */
    /* Sticky: the next apply fails the same way without touching disk. */
    uint64_t writes = tl_fault_env_count(fe, TL_FAULT_WRITE);
    assert_int_equal(apply(vs, 2, vt_file(ver_set_new_file_number(vs), "e", 3, "f", 3), 0, 0),
                     want);
    assert_non_null(strstr(tl_errmsg(), "error state"));
    assert_true(tl_fault_env_count(fe, TL_FAULT_WRITE) == writes);
    ver_set_close(vs);
    assert_int_equal(obs.n, 0); /* neither a (still live) nor b (never installed) */

    if (fc == SYNC_DROP || fc == SHORT_WRITE)
        assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    o.create_if_missing = false;
    assert_int_equal(ver_set_open(&o, &vs), 0);
    ver_version *v = ver_set_current(vs);
    if (fc == SYNC_KEEP) {
        /* The OS kept the complete record although fsync failed: the edit
         * is there after reopen (a deletes a, adds b at L1). */
        assert_int_equal(v->nfiles[0], 0);
        assert_int_equal(v->nfiles[1], 1);
        assert_true(v->files[1][0]->number == b);
    } else {
        /* Unsynced, never written, or torn: the state before. */
        assert_true(vt_snap_matches(&before, v));
    }
    ver_version_unref(v);
    assert_true(ver_set_new_file_number(vs) > b);
    /* The reopened set writes again, and power loss now keeps it all. */
    assert_int_equal(apply(vs, 3, vt_file(ver_set_new_file_number(vs), "g", 4, "h", 4), 0, 0), 0);
    snap_current(vs, &after);
    ver_set_close(vs);
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_int_equal(ver_set_open(&o, &vs), 0);
    assert_state(vs, &after);
    ver_set_close(vs);
    vt_snap_free(&before);
    vt_snap_free(&after);
    tl_fault_env_free(fe);
    pthread_mutex_destroy(&obs.mu);
}

static void test_fault_sync_keep(void **state)
{
    (void)state;
    run_fault(SYNC_KEEP);
}

static void test_fault_sync_drop(void **state)
{
    (void)state;
    run_fault(SYNC_DROP);
}

static void test_fault_write(void **state)
{
    (void)state;
    run_fault(WRITE_FAIL);
}

static void test_fault_short_write(void **state)
{
    (void)state;
    run_fault(SHORT_WRITE);
}

/* A failure while open switches to a new manifest loses nothing: each
 * failing step, then a clean reopen sees the same state. */
static void test_fault_open(void **state)
{
    (void)state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    tl_env *env = tl_fault_env_env(fe);
    ver_set *vs;
    assert_int_equal(open_set(env, true, 3, &vs), 0);
    assert_int_equal(apply(vs, 0, vt_file(ver_set_new_file_number(vs), "a", 1, "b", 1), 0, 0), 0);
    vt_snap want;
    snap_current(vs, &want);
    ver_set_close(vs);
    const tl_fault_kind kinds[] = {TL_FAULT_OPEN, TL_FAULT_WRITE, TL_FAULT_SYNC, TL_FAULT_RENAME};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (uint64_t nth = 1; nth <= 3; nth++) {
            tl_fault_env_arm(fe, kinds[k], nth, TALUS_EIO, false);
            int rc = open_set(env, false, 3, &vs);
            tl_fault_env_disarm(fe);
            if (rc == 0)
                ver_set_close(vs); /* fewer than nth operations of that kind */
            else
                assert_int_equal(rc, TALUS_EIO);
            assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
            assert_int_equal(open_set(env, false, 3, &vs), 0);
            assert_state(vs, &want);
            ver_set_close(vs);
        }
    }
    vt_snap_free(&want);
    tl_fault_env_free(fe);
}

int main(void)
{
    /* Torn tails are logged as warnings; the tests make hundreds. */
    setenv("TALUS_LOG", "error", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_recovers, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_rotation, dir_setup, dir_teardown),
        cmocka_unit_test(test_record_framing),
        cmocka_unit_test_setup_teardown(test_torn_tail, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_current, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_future_format, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_sync_keep, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_sync_drop, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_write, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_short_write, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_open, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
