/*
 * test_version.c - version edits (round trip, truncations and byte flips of
 * the encoding), version queries (overlapping, find_file, level order and
 * bytes), edit validation (L1 overlap, bad deletes), and obsolete-file
 * reporting (only after the last version holding a file goes away, never
 * for live files, also under concurrent readers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "talus.h"
#include "version_test_util.h"

/* ---- Edits ------------------------------------------------------------- */

static ver_file *random_file(uint64_t number)
{
    uint8_t a[64], b[64];
    size_t an = 9 + vt_rnd() % 40, bn = 9 + vt_rnd() % 40;
    for (size_t i = 0; i < sizeof a; i++) {
        a[i] = (uint8_t)vt_rnd();
        b[i] = (uint8_t)vt_rnd();
    }
    if (tl_ikey_cmp_raw(a, an, b, bn) > 0) {
        uint8_t t[64];
        size_t tn = an;
        memcpy(t, a, sizeof t);
        memcpy(a, b, sizeof a);
        memcpy(b, t, sizeof b);
        an = bn;
        bn = tn;
    }
    uint64_t s1 = vt_rnd() >> (vt_rnd() % 64), s2 = vt_rnd() >> (vt_rnd() % 64);
    uint64_t entries = vt_rnd() >> (vt_rnd() % 64);
    ver_file *f = ver_file_new(number, vt_rnd() >> (vt_rnd() % 64), tl_slice_make(a, an),
                               tl_slice_make(b, bn), s1 < s2 ? s1 : s2, s1 < s2 ? s2 : s1, entries,
                               entries ? vt_rnd() % (entries + 1) : 0);
    assert_non_null(f);
    return f;
}

static void random_edit(ver_edit *e)
{
    ver_edit_init(e);
    if (vt_rnd() % 2) {
        e->has_format_version = true;
        e->format_version = 1 + (uint32_t)(vt_rnd() % 10);
    }
    if (vt_rnd() % 2) {
        e->has_num_levels = true;
        e->num_levels = VER_MAX_LEVELS;
    }
    if ((e->has_next_file = vt_rnd() % 2))
        e->next_file = vt_rnd() >> (vt_rnd() % 64);
    if ((e->has_last_seq = vt_rnd() % 2))
        e->last_seq = vt_rnd();
    if ((e->has_flushed_seq = vt_rnd() % 2))
        e->flushed_seq = vt_rnd() >> 3;
    size_t nadd = vt_rnd() % 6, ndel = vt_rnd() % 6;
    for (size_t i = 0; i < nadd; i++) {
        ver_file *f = random_file(vt_rnd() >> (vt_rnd() % 64));
        assert_int_equal(ver_edit_add_file(e, (int)(vt_rnd() % VER_MAX_LEVELS), f), 0);
        ver_file_unref(f);
    }
    for (size_t i = 0; i < ndel; i++)
        assert_int_equal(
            ver_edit_delete_file(e, (int)(vt_rnd() % VER_MAX_LEVELS), vt_rnd() >> (vt_rnd() % 64)),
            0);
}

static void assert_edit_equal(const ver_edit *a, const ver_edit *b)
{
    assert_int_equal(a->has_format_version, b->has_format_version);
    assert_int_equal(a->has_num_levels, b->has_num_levels);
    assert_int_equal(a->has_next_file, b->has_next_file);
    assert_int_equal(a->has_last_seq, b->has_last_seq);
    assert_int_equal(a->has_flushed_seq, b->has_flushed_seq);
    if (a->has_format_version)
        assert_int_equal(a->format_version, b->format_version);
    if (a->has_num_levels)
        assert_int_equal(a->num_levels, b->num_levels);
    if (a->has_next_file)
        assert_true(a->next_file == b->next_file);
    if (a->has_last_seq)
        assert_true(a->last_seq == b->last_seq);
    if (a->has_flushed_seq)
        assert_true(a->flushed_seq == b->flushed_seq);
    assert_int_equal(a->nadds, b->nadds);
    assert_int_equal(a->ndels, b->ndels);
    for (size_t i = 0; i < a->nadds; i++) {
        assert_int_equal(a->adds[i].level, b->adds[i].level);
        assert_true(vt_file_equal(a->adds[i].file, b->adds[i].file));
    }
    for (size_t i = 0; i < a->ndels; i++) {
        assert_int_equal(a->dels[i].level, b->dels[i].level);
        assert_true(a->dels[i].number == b->dels[i].number);
    }
}

static void test_edit_roundtrip(void **state)
{
    (void)state;
    vt_seed("edit_roundtrip");
    for (int it = 0; it < 500; it++) {
        ver_edit e, d;
        tl_buf buf = {0};
        random_edit(&e);
        assert_int_equal(ver_edit_encode(&e, &buf), 0);
        assert_int_equal(ver_edit_decode(&d, tl_buf_slice(&buf)), 0);
        assert_edit_equal(&e, &d);
        ver_edit_free(&e);
        ver_edit_free(&d);
        tl_buf_free(&buf);
    }
}

/* A decoded edit must satisfy everything the decoder promises. */
static void assert_edit_sane(const ver_edit *d)
{
    for (size_t i = 0; i < d->nadds; i++) {
        const ver_file *f = d->adds[i].file;
        if (d->adds[i].level == VER_BLOB_LEVEL) { /* a blob: number and size only */
            assert_true(f->blob && f->number > 0 && f->size <= UINT32_MAX);
            continue;
        }
        assert_true(d->adds[i].level >= 0 && d->adds[i].level < VER_MAX_LEVELS && !f->blob);
        assert_true(f->smallest_len >= 9 && f->largest_len >= 9);
        assert_true(tl_ikey_cmp_raw(f->smallest, f->smallest_len, f->largest, f->largest_len) <= 0);
        assert_true(f->min_seq <= f->max_seq);
    }
    for (size_t i = 0; i < d->ndels; i++)
        assert_true(d->dels[i].level >= 0 && d->dels[i].level <= VER_BLOB_LEVEL);
}

static void test_edit_truncations_and_flips(void **state)
{
    (void)state;
    vt_seed("edit_truncations_and_flips");
    int ok_prefixes = 0, corrupt = 0, flips_ok = 0;
    for (int it = 0; it < 60; it++) {
        ver_edit e, d;
        tl_buf buf = {0}, again = {0};
        random_edit(&e);
        assert_int_equal(ver_edit_encode(&e, &buf), 0);
        /* Every strict prefix: corrupt, or a valid edit that ends exactly
         * at a field boundary (and so re-encodes to the same bytes). Copy
         * into an exact-size heap block so ASan sees any over-read. */
        for (size_t n = 0; n < buf.len; n++) {
            uint8_t *p = malloc(n ? n : 1);
            memcpy(p, buf.data, n);
            int rc = ver_edit_decode(&d, tl_slice_make(p, n));
            if (rc == 0) {
                tl_buf_clear(&again);
                assert_int_equal(ver_edit_encode(&d, &again), 0);
                assert_int_equal(again.len, n);
                assert_memory_equal(again.data, p, n);
                ok_prefixes++;
            } else {
                assert_int_equal(rc, TALUS_ECORRUPT);
                assert_non_null(strstr(tl_errmsg(), "offset"));
                assert_int_equal(d.nadds, 0);
                corrupt++;
            }
            ver_edit_free(&d);
            free(p);
        }
        /* Random byte flips: corrupt or a sane edit, never a crash. */
        for (int f = 0; f < 200 && buf.len; f++) {
            uint8_t *p = malloc(buf.len);
            memcpy(p, buf.data, buf.len);
            int flips = 1 + (int)(vt_rnd() % 3);
            for (int k = 0; k < flips; k++)
                p[vt_rnd() % buf.len] ^= (uint8_t)(1 + vt_rnd() % 255);
            int rc = ver_edit_decode(&d, tl_slice_make(p, buf.len));
            if (rc == 0) {
                assert_edit_sane(&d);
                flips_ok++;
            } else {
                assert_int_equal(rc, TALUS_ECORRUPT);
            }
            ver_edit_free(&d);
            free(p);
        }
        ver_edit_free(&e);
        tl_buf_free(&buf);
        tl_buf_free(&again);
    }
    printf("prefixes valid %d, corrupt %d, flips decoded %d\n", ok_prefixes, corrupt, flips_ok);
    assert_true(corrupt > 0);
}

/* Hand-written bad edits, each rejected for its own reason. */
static void test_edit_decode_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint8_t bytes[40];
        size_t len;
    } cases[] = {
        {"unknown tag", {99, 1}, 2},
        {"repeated scalar", {3, 5, 3, 6}, 4},
        {"level out of range", {6, VER_MAX_LEVELS, 1}, 3},
        {"num levels 0", {2, 0}, 2},
        {"format 0", {1, 0}, 2},
        {"non-minimal varint", {3, 0x80, 0x00}, 3},
        {"key too short", {7, 0, 5, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8}, 13},
        {"level above num_levels", {2, 2, 6, 3, 7}, 5},
        /* add: level 0, number 5, size 1, smallest "b"@1, largest "a"@1 */
        {"smallest after largest",
         {7,  0,   5, 1, 10, 'b', 0, 0, 0, 0, 0, 0, 0, 0, 1,
          10, 'a', 0, 0, 0,  0,   0, 0, 0, 0, 1, 1, 1, 1, 0},
         30},
        /* same with min_seq 2 > max_seq 1 */
        {"min seq above max seq",
         {7,  0,   5, 1, 10, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 1,
          10, 'b', 0, 0, 0,  0,   0, 0, 0, 0, 1, 2, 1, 1, 0},
         30},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ver_edit d;
        int rc = ver_edit_decode(&d, tl_slice_make(cases[i].bytes, cases[i].len));
        if (rc != TALUS_ECORRUPT)
            fail_msg("%s: rc %d", cases[i].name, rc);
        ver_edit_free(&d);
    }
    /* And the last two with the fields fixed decode fine. */
    uint8_t good[30] = {7,  0,   5, 1, 10, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 1,
                        10, 'b', 0, 0, 0,  0,   0, 0, 0, 0, 1, 1, 2, 1, 0};
    ver_edit d;
    assert_int_equal(ver_edit_decode(&d, tl_slice_make(good, sizeof good)), 0);
    assert_int_equal(d.nadds, 1);
    assert_true(d.adds[0].file->number == 5);
    ver_edit_free(&d);
}

/* ---- Versions through a set -------------------------------------------- */

typedef struct fixture {
    char dir[256];
    ver_set *vs;
    vt_obsolete obs;
} fixture;

static int fx_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    pthread_mutex_init(&fx->obs.mu, NULL);
    vt_mkdir(fx->dir, sizeof fx->dir);
    ver_set_options o;
    vt_options(&o, tl_env_posix(), fx->dir, true);
    o.on_obsolete = vt_on_obsolete;
    o.on_obsolete_ctx = &fx->obs;
    if (ver_set_open(&o, &fx->vs) != 0) {
        fprintf(stderr, "open: %s\n", tl_errmsg());
        return -1;
    }
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    fixture *fx = *state;
    size_t before = fx->obs.n;
    ver_set_close(fx->vs);
    assert_int_equal(fx->obs.n, before); /* closing reports nothing */
    vt_rmdir(fx->dir);
    pthread_mutex_destroy(&fx->obs.mu);
    free(fx);
    return 0;
}

/* Adds (level, file) pairs in one edit; the edit takes its own refs. */
static int apply_adds(ver_set *vs, int n, const int *levels, ver_file **files)
{
    ver_edit e;
    ver_edit_init(&e);
    for (int i = 0; i < n; i++) {
        assert_int_equal(ver_edit_add_file(&e, levels[i], files[i]), 0);
        ver_file_unref(files[i]);
    }
    int rc = ver_set_apply(vs, &e);
    ver_edit_free(&e);
    return rc;
}

static void expect_files(ver_file **got, size_t n, const uint64_t *want, size_t nwant)
{
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_true(got[i]->number == want[i]);
}

static void check_overlap(const ver_version *v, int level, const char *lo, const char *hi,
                          const uint64_t *want, size_t nwant)
{
    tl_slice l = tl_slice_make(lo, lo ? strlen(lo) : 0), h = tl_slice_make(hi, hi ? strlen(hi) : 0);
    ver_file **got;
    size_t n;
    assert_int_equal(ver_version_overlapping(v, level, lo ? &l : NULL, hi ? &h : NULL, &got, &n),
                     0);
    expect_files(got, n, want, nwant);
    free(got);
}

static size_t find(const ver_version *v, const char *k)
{
    return ver_version_find_file(v, 1, tl_slice_make(k, strlen(k)));
}

static void test_overlapping_and_find(void **state)
{
    fixture *fx = *state;
    int levels[] = {0, 0, 0, 1, 1, 1, 1};
    ver_file *files[] = {
        vt_file(10, "d", 5, "m", 1), vt_file(11, "a", 9, "c", 2), vt_file(12, "k", 5, "z", 3),
        vt_file(23, "p", 1, "t", 1), vt_file(21, "c", 1, "f", 1), vt_file(20, "a", 1, "b", 1),
        vt_file(22, "h", 4, "h", 2),
    };
    assert_int_equal(apply_adds(fx->vs, 7, levels, files), 0);
    ver_version *v = ver_set_current(fx->vs);

    /* L0 newest first: max_seq 9, then the two max_seq 5 by number desc. */
    expect_files(v->files[0], v->nfiles[0], (uint64_t[]){11, 12, 10}, 3);
    expect_files(v->files[1], v->nfiles[1], (uint64_t[]){20, 21, 22, 23}, 4);
    assert_true(ver_version_level_bytes(v, 1) == 1020 + 1021 + 1022 + 1023);
    assert_true(ver_version_level_bytes(v, 0) == 1010 + 1011 + 1012);
    assert_true(ver_version_level_bytes(v, 2) == 0);

    check_overlap(v, 1, "d", "h", (uint64_t[]){21, 22}, 2);
    check_overlap(v, 1, "g", "g", NULL, 0);
    check_overlap(v, 1, NULL, "c", (uint64_t[]){20, 21}, 2);
    check_overlap(v, 1, "q", NULL, (uint64_t[]){23}, 1);
    check_overlap(v, 1, NULL, NULL, (uint64_t[]){20, 21, 22, 23}, 4);
    check_overlap(v, 1, "f", "f", (uint64_t[]){21}, 1);
    check_overlap(v, 1, "u", NULL, NULL, 0);
    check_overlap(v, 1, "b", "p", (uint64_t[]){20, 21, 22, 23}, 4);
    check_overlap(v, 0, "b", "b", (uint64_t[]){11}, 1);
    check_overlap(v, 0, "l", "l", (uint64_t[]){12, 10}, 2);
    check_overlap(v, 0, "n", "n", (uint64_t[]){12}, 1);
    check_overlap(v, 0, NULL, NULL, (uint64_t[]){11, 12, 10}, 3);
    check_overlap(v, 2, NULL, NULL, NULL, 0);

    assert_int_equal(find(v, ""), 0);
    assert_int_equal(find(v, "a"), 0);
    assert_int_equal(find(v, "b"), 0);
    assert_int_equal(find(v, "bb"), 1);
    assert_int_equal(find(v, "g"), 2);
    assert_int_equal(find(v, "h"), 2);
    assert_int_equal(find(v, "i"), 3);
    assert_int_equal(find(v, "t"), 3);
    assert_int_equal(find(v, "z"), 4);

    ver_file **got;
    size_t n;
    assert_int_equal(ver_version_overlapping(v, 7, NULL, NULL, &got, &n), TALUS_EINVAL);
    ver_version_unref(v);
}

static void test_edit_validation(void **state)
{
    fixture *fx = *state;
    ver_file *a = vt_file(30, "a", 1, "e", 1);
    assert_int_equal(apply_adds(fx->vs, 1, (int[]){1}, &a), 0);

    /* Touching the existing file at user key "e" (other seqnos) overlaps. */
    ver_file *b = vt_file(31, "e", 0, "g", 0);
    assert_int_equal(apply_adds(fx->vs, 1, (int[]){1}, &b), TALUS_EINVAL);
    assert_non_null(strstr(tl_errmsg(), "overlap"));
    /* Two overlapping files in one edit. */
    ver_file *two[] = {vt_file(32, "m", 1, "p", 1), vt_file(33, "o", 1, "q", 1)};
    assert_int_equal(apply_adds(fx->vs, 2, (int[]){2, 2}, two), TALUS_EINVAL);
    /* Level beyond num_levels (7). */
    ver_file *c = vt_file(34, "x", 1, "y", 1);
    assert_int_equal(apply_adds(fx->vs, 1, (int[]){7}, &c), TALUS_EINVAL);
    /* Duplicate number. */
    ver_file *d = vt_file(30, "x", 1, "y", 1);
    assert_int_equal(apply_adds(fx->vs, 1, (int[]){0}, &d), TALUS_EINVAL);

    ver_edit e;
    ver_edit_init(&e);
    assert_int_equal(ver_edit_delete_file(&e, 1, 99), 0);
    assert_int_equal(ver_set_apply(fx->vs, &e), TALUS_EINVAL); /* not live */
    ver_edit_free(&e);
    ver_edit_init(&e);
    assert_int_equal(ver_edit_delete_file(&e, 2, 30), 0);
    assert_int_equal(ver_set_apply(fx->vs, &e), TALUS_EINVAL); /* wrong level */
    ver_edit_free(&e);

    /* None of that poisoned the set: a good edit still applies. */
    ver_file *ok = vt_file(35, "f", 1, "g", 1);
    assert_int_equal(apply_adds(fx->vs, 1, (int[]){1}, &ok), 0);
    ver_version *v = ver_set_current(fx->vs);
    expect_files(v->files[1], v->nfiles[1], (uint64_t[]){30, 35}, 2);
    ver_version_unref(v);

    /* A number the set never handed out pushes the counter past it. */
    ver_file *far = vt_file(500, "x", 1, "y", 1);
    assert_int_equal(apply_adds(fx->vs, 1, (int[]){0}, &far), 0);
    assert_true(ver_set_new_file_number(fx->vs) > 500);
}

static void test_obsolete(void **state)
{
    fixture *fx = *state;
    ver_file *f[] = {vt_file(40, "a", 1, "b", 1), vt_file(41, "c", 2, "d", 2),
                     vt_file(42, "e", 3, "f", 3)};
    assert_int_equal(apply_adds(fx->vs, 3, (int[]){0, 0, 0}, f), 0);
    ver_version *v1 = ver_set_current(fx->vs);

    ver_edit e;
    ver_edit_init(&e);
    assert_int_equal(ver_edit_delete_file(&e, 0, 40), 0);
    assert_int_equal(ver_set_apply(fx->vs, &e), 0);
    ver_edit_free(&e);
    assert_int_equal(fx->obs.n, 0); /* v1 still holds 40 */
    ver_version *v2 = ver_set_current(fx->vs);

    /* Move 41 to L1 with a separate but identical descriptor, and 42 with
     * the same object: neither number is obsolete. */
    ver_edit_init(&e);
    ver_file *copy = vt_file(41, "c", 2, "d", 2);
    assert_int_equal(ver_edit_delete_file(&e, 0, 41), 0);
    assert_int_equal(ver_edit_add_file(&e, 1, copy), 0);
    assert_int_equal(ver_edit_delete_file(&e, 0, 42), 0);
    assert_int_equal(ver_edit_add_file(&e, 2, v2->files[0][0]), 0);
    assert_int_equal(ver_set_apply(fx->vs, &e), 0);
    ver_edit_free(&e);
    ver_file_unref(copy);

    /* A move that changes the file's description is refused. */
    ver_edit_init(&e);
    ver_file *changed = vt_file(41, "c", 2, "dd", 2);
    assert_int_equal(ver_edit_delete_file(&e, 1, 41), 0);
    assert_int_equal(ver_edit_add_file(&e, 2, changed), 0);
    assert_int_equal(ver_set_apply(fx->vs, &e), TALUS_EINVAL);
    ver_edit_free(&e);
    ver_file_unref(changed);

    ver_version_unref(v2);
    assert_int_equal(fx->obs.n, 0);
    ver_version_unref(v1);
    assert_int_equal(fx->obs.n, 1);
    assert_int_equal(vt_obsolete_count(&fx->obs, 40), 1);

    /* Live files show up in live_files with the manifest; 40 does not. */
    uint64_t *nums;
    size_t n;
    assert_int_equal(ver_set_live_files(fx->vs, &nums, &n), 0);
    assert_int_equal(n, 3);
    assert_true(ver_set_manifest_number(fx->vs) == 1); /* a new set: MANIFEST-000001 */
    assert_true(nums[0] == 1 && nums[1] == 41 && nums[2] == 42);
    free(nums);

    /* Deleted while no one else holds a version: reported at the apply. */
    ver_edit_init(&e);
    assert_int_equal(ver_edit_delete_file(&e, 2, 42), 0);
    assert_int_equal(ver_set_apply(fx->vs, &e), 0);
    ver_edit_free(&e);
    assert_int_equal(vt_obsolete_count(&fx->obs, 42), 1);
    assert_int_equal(vt_obsolete_count(&fx->obs, 41), 0);
    assert_int_equal(fx->obs.n, 2);
}

/* Readers take and drop versions while the writer adds and deletes files:
 * each deleted file is reported exactly once, live ones never. */
typedef struct reader_arg {
    ver_set *vs;
    atomic_bool *stop;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    while (!atomic_load(a->stop)) {
        ver_version *v = ver_set_current(a->vs);
        for (size_t i = 0; i < v->nfiles[0]; i++)
            if (atomic_load(&v->files[0][i]->refs) <= 0)
                abort();
        ver_version_unref(v);
    }
    return NULL;
}

static void test_obsolete_concurrent(void **state)
{
    fixture *fx = *state;
    atomic_bool stop = false;
    reader_arg a = {fx->vs, &stop};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader, &a), 0);
    uint64_t nums[300];
    for (int i = 0; i < 300; i++) {
        nums[i] = ver_set_new_file_number(fx->vs);
        ver_edit e;
        ver_edit_init(&e);
        ver_file *f = vt_file(nums[i], "k", (uint64_t)i + 1, "k", (uint64_t)i + 1);
        assert_int_equal(ver_edit_add_file(&e, 0, f), 0);
        ver_file_unref(f);
        if (i >= 4)
            assert_int_equal(ver_edit_delete_file(&e, 0, nums[i - 4]), 0);
        assert_int_equal(ver_set_apply(fx->vs, &e), 0);
        ver_edit_free(&e);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 300; i++)
        assert_int_equal(vt_obsolete_count(&fx->obs, nums[i]), i < 296 ? 1 : 0);
    assert_int_equal(fx->obs.n, 296);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_roundtrip),
        cmocka_unit_test(test_edit_truncations_and_flips),
        cmocka_unit_test(test_edit_decode_rejects),
        cmocka_unit_test_setup_teardown(test_overlapping_and_find, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_edit_validation, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_obsolete, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_obsolete_concurrent, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
