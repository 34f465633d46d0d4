/*
 * test_blob_db.c - key-value separation end to end through talus.h: values
 * of at least min_blob_size go to NNNNNN.blob files in the tree's directory
 * (db/trees/<id>/), are read whole, by range and through iterators, are
 * streamed in by value writers, and their files go away exactly when
 * nothing can read them any more (overwrite + compaction, discarded
 * batches, crashes). The blob files are counted by listing the directory,
 * so every test checks what is on disk, not only what the API returns.
 *
 * Randomness (value bytes, piece sizes, read ranges) comes from one seed,
 * printed at start; set TALUS_TEST_SEED to replay a run.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "talus.h"
#include "db/db_internal.h"
#include "util/env.h"

#define MIN_BLOB 1000u

static char dir[256];
static uint64_t seed;
static uint64_t rng_state;

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rnd(void)
{
    /* splitmix64: deterministic for a given seed */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

/* The bytes of value `tag` of length n: a function of (seed, tag), so a
 * test can rebuild what it expects instead of keeping every buffer. */
static uint8_t *make_value(uint64_t tag, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint64_t s = seed ^ (tag * 0x2545f4914f6cdd1dull);
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (uint8_t)s;
    }
    return p;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/talus_test_blob_db_XXXXXX");
    assert_non_null(mkdtemp(dir));
    rng_state = seed;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void init_opts(talus_options *o, uint64_t min_blob)
{
    talus_options_init(o);
    o->tree.min_blob_size = min_blob;
    o->tree.write_buffer_size = 256 << 10;
    o->tree.target_file_size = 256 << 10;
    o->tree.max_bytes_for_level_base = 1 << 20;
}

static talus_db *open_env(tl_env *env, uint64_t min_blob, int read_only)
{
    talus_options o;
    init_opts(&o, min_blob);
    o.read_only = read_only;
    talus_db *db = NULL;
    int rc = db_open_env(dir, &o, env, &db);
    if (rc != 0)
        fail_msg("open: %s: %s", talus_strerror(rc), talus_errmsg());
    return db;
}

static talus_db *open_db(uint64_t min_blob)
{
    return open_env(tl_env_posix(), min_blob, 0);
}

static void tree_dir(const talus_tree *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s/trees/%u", dir, t->id);
}

/* "NNNNNN.blob" (at least 6 digits) is kind 1, "NNNNNN.blob.tmp" kind 2. */
static int blob_kind(const char *name)
{
    size_t d = strspn(name, "0123456789");
    if (d < 6)
        return 0;
    if (strcmp(name + d, ".blob") == 0)
        return 1;
    if (strcmp(name + d, ".blob.tmp") == 0)
        return 2;
    return 0;
}

static size_t count_kind(const talus_tree *t, int kind)
{
    char d[512];
    tree_dir(t, d, sizeof d);
    DIR *dh = opendir(d);
    if (!dh)
        return 0; /* a tree that never wrote a file may have no directory */
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL)
        n += blob_kind(e->d_name) == kind;
    closedir(dh);
    return n;
}

static size_t count_blobs(const talus_tree *t)
{
    return count_kind(t, 1);
}

static size_t count_tmp(const talus_tree *t)
{
    return count_kind(t, 2);
}

/* File names in t's directory (only blob files if only_blobs), sorted and
 * '\n'-joined; malloc'd. */
static char *list_names(const talus_tree *t, bool only_blobs)
{
    char d[512];
    tree_dir(t, d, sizeof d);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(tl_env_list_dir(tl_env_posix(), d, &names, &n), 0);
    for (size_t i = 1; i < n; i++) /* insertion sort: few names */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *x = names[j];
            names[j] = names[j - 1];
            names[j - 1] = x;
        }
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += strlen(names[i]) + 1;
    char *out = calloc(1, cap);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++)
        if (!only_blobs || blob_kind(names[i])) {
            strcat(out, names[i]);
            strcat(out, "\n");
        }
    tl_env_free_names(names, n);
    return out;
}

static char *blob_names(const talus_tree *t)
{
    return list_names(t, true);
}

static void put_v(talus_tree *t, const char *k, uint64_t tag, size_t n)
{
    uint8_t *v = make_value(tag, n);
    int rc = talus_put(t, k, strlen(k), v, n);
    if (rc != 0)
        fail_msg("put %s (%zu bytes): %s: %s", k, n, talus_strerror(rc), talus_errmsg());
    free(v);
}

static void expect_get(talus_tree *t, const talus_snapshot *s, const char *k, uint64_t tag,
                       size_t n)
{
    void *v = NULL;
    size_t got = 0;
    int rc = talus_get(t, s, k, strlen(k), &v, &got);
    if (rc != 0)
        fail_msg("get %s: %s: %s", k, talus_strerror(rc), talus_errmsg());
    assert_int_equal(got, n);
    uint8_t *want = make_value(tag, n);
    if (n)
        assert_memory_equal(v, want, n);
    free(want);
    talus_free(v);
}

static void expect_absent(talus_tree *t, const talus_snapshot *s, const char *k)
{
    void *v = NULL;
    size_t n = 0;
    assert_int_equal(talus_get(t, s, k, strlen(k), &v, &n), TALUS_ENOTFOUND);
    assert_int_equal(talus_contains(t, s, k, strlen(k)), 0);
}

/* Random ranges of an open value against its source bytes, and reads at and
 * past the end. */
static void check_ranges(talus_value *v, const uint8_t *want, size_t n, int rounds)
{
    assert_int_equal(talus_value_length(v), n);
    size_t cap = 300000;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (int i = 0; i < rounds; i++) {
        uint64_t off = rnd_below(n + 1);
        size_t len = (size_t)rnd_below(i % 4 == 0 ? cap : 5000) + 1;
        size_t got = 12345;
        int rc = talus_value_read(v, off, buf, len, &got);
        if (rc != 0)
            fail_msg("read [%llu,+%zu): %s: %s", (unsigned long long)off, len, talus_strerror(rc),
                     talus_errmsg());
        size_t exp = off >= n ? 0 : (n - off < len ? n - off : len);
        assert_int_equal(got, exp);
        if (exp)
            assert_memory_equal(buf, want + off, exp);
    }
    size_t got = 7;
    assert_int_equal(talus_value_read(v, n, buf, 10, &got), 0);
    assert_int_equal(got, 0);
    got = 7;
    assert_int_equal(talus_value_read(v, (uint64_t)n + 1000000, buf, 10, &got), 0);
    assert_int_equal(got, 0);
    free(buf);
}

static void expect_ranges(talus_tree *t, const talus_snapshot *s, const char *k, uint64_t tag,
                          size_t n)
{
    talus_value *v = NULL;
    int rc = talus_value_open(t, s, k, strlen(k), &v);
    if (rc != 0)
        fail_msg("value_open %s: %s: %s", k, talus_strerror(rc), talus_errmsg());
    uint8_t *want = make_value(tag, n);
    check_ranges(v, want, n, 40);
    free(want);
    talus_value_close(v);
}

static void commit(talus_db *db, talus_batch *b, int durability)
{
    int rc = talus_batch_commit(db, b, durability, NULL);
    if (rc != 0)
        fail_msg("commit: %s: %s", talus_strerror(rc), talus_errmsg());
}

static void compact_all(talus_tree *t)
{
    int rc = talus_flush(t);
    if (rc == 0)
        rc = talus_compact_range(t, NULL, 0, NULL, 0);
    if (rc != 0)
        fail_msg("flush/compact: %s: %s", talus_strerror(rc), talus_errmsg());
}

/* ---- 1. put / get / iterate / ranged reads -------------------------------- */

static const struct {
    const char *key;
    size_t len;
    int blob;
} sizes[] = {
    {"v0-empty", 0, 0},     {"v1-999", 999, 0},       {"v2-1000", 1000, 1},
    {"v3-70000", 70000, 1}, {"v4-3mib", 3u << 20, 1},
};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void check_sizes(talus_tree *t)
{
    for (size_t i = 0; i < NSIZES; i++) {
        expect_get(t, NULL, sizes[i].key, i, sizes[i].len);
        assert_int_equal(talus_contains(t, NULL, sizes[i].key, strlen(sizes[i].key)), 1);
        expect_ranges(t, NULL, sizes[i].key, i, sizes[i].len);
    }
    expect_absent(t, NULL, "v9-absent");
    talus_value *v = (talus_value *)1;
    assert_int_equal(talus_value_open(t, NULL, "v9-absent", 9, &v), TALUS_ENOTFOUND);

    /* forward then backward: every entry, its length without reading it,
     * then its bytes */
    talus_iter *it;
    assert_int_equal(talus_iter_new(t, NULL, &it), 0);
    for (int dir_ = 0; dir_ < 2; dir_++) {
        size_t seen = 0;
        if (dir_ == 0)
            talus_iter_seek_first(it);
        else
            talus_iter_seek_last(it);
        for (; talus_iter_valid(it); dir_ == 0 ? talus_iter_next(it) : talus_iter_prev(it)) {
            size_t i = dir_ == 0 ? seen : NSIZES - 1 - seen;
            assert_true(seen < NSIZES);
            size_t kl;
            const void *k = talus_iter_key(it, &kl);
            assert_int_equal(kl, strlen(sizes[i].key));
            assert_memory_equal(k, sizes[i].key, kl);
            assert_int_equal(talus_iter_value_length(it), sizes[i].len);
            size_t vl = 99;
            const void *val = talus_iter_value(it, &vl);
            assert_int_equal(talus_iter_status(it), 0);
            assert_int_equal(vl, sizes[i].len);
            if (vl) {
                assert_non_null(val);
                uint8_t *want = make_value(i, vl);
                assert_memory_equal(val, want, vl);
                free(want);
            }
            seen++;
        }
        assert_int_equal(talus_iter_status(it), 0);
        assert_int_equal(seen, NSIZES);
    }
    /* a seek straight onto a blob value */
    talus_iter_seek(it, "v3", 2);
    assert_true(talus_iter_valid(it));
    assert_int_equal(talus_iter_value_length(it), 70000);
    talus_iter_free(it);
}

static void test_round_trip(void **state)
{
    (void)state;
    talus_db *db = open_db(MIN_BLOB);
    talus_tree *t = talus_default_tree(db);
    size_t blobs = 0;
    for (size_t i = 0; i < NSIZES; i++) {
        put_v(t, sizes[i].key, i, sizes[i].len);
        blobs += (size_t)sizes[i].blob;
        assert_int_equal(count_blobs(t), blobs);
    }
    assert_int_equal(blobs, 3);
    assert_int_equal(count_tmp(t), 0);
    check_sizes(t); /* from the memtable */
    assert_int_equal(talus_flush(t), 0);
    assert_int_equal(count_blobs(t), 3); /* a flush never copies a blob */
    check_sizes(t);                      /* from a table */
    assert_int_equal(talus_compact_range(t, NULL, 0, NULL, 0), 0);
    assert_int_equal(count_blobs(t), 3);
    check_sizes(t);
    assert_int_equal(talus_close(db), 0);
}

/* ---- copies --------------------------------------------------------------- */

static nlink_t links_of_only_blob(const talus_tree *t)
{
    char d[4200], *names = blob_names(t), path[4400];
    tree_dir(t, d, sizeof d);
    char *nl = strchr(names, '\n');
    if (nl)
        *nl = 0;
    snprintf(path, sizeof path, "%s/%s", d, names);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    free(names);
    return st.st_nlink;
}

/* talus_batch_copy: a blob value gets a second name (a hard link), never a
 * second copy of its bytes; inline values are copied; the copy outlives
 * its source through overwrite and compaction. */
static void test_copy(void **state)
{
    (void)state;
    talus_db *db = open_db(MIN_BLOB);
    talus_tree *t = talus_default_tree(db);
    talus_tree *u = NULL;
    assert_int_equal(talus_tree_open(db, "other", 1, NULL, &u), 0);
    put_v(t, "big", 1, 300000);
    put_v(t, "small", 2, 10);
    assert_int_equal(links_of_only_blob(t), 1);

    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    assert_int_equal(talus_batch_copy(b, t, "big2", 4, t, NULL, "big", 3), 0);
    assert_int_equal(talus_batch_copy(b, t, "small2", 6, t, NULL, "small", 5), 0);
    assert_int_equal(talus_batch_copy(b, u, "big", 3, t, NULL, "big", 3), 0);
    assert_int_equal(talus_batch_copy(b, t, "x", 1, t, NULL, "absent", 6), TALUS_ENOTFOUND);
    assert_int_equal(talus_batch_delete(b, t, "big", 3), 0); /* a rename */
    commit(db, b, TALUS_DURABILITY_BUFFERED);
    talus_batch_free(b);
    assert_int_equal(count_blobs(t), 2);
    assert_int_equal(count_blobs(u), 1);
    expect_get(t, NULL, "big2", 1, 300000);
    expect_get(t, NULL, "small2", 2, 10);
    expect_get(u, NULL, "big", 1, 300000);
    expect_absent(t, NULL, "big");

    /* The source's name goes with the compaction that drops its reference;
     * the copies keep the bytes. */
    compact_all(t);
    assert_int_equal(count_blobs(t), 1);
    assert_int_equal(links_of_only_blob(t), 2); /* still shared with tree u */
    expect_get(t, NULL, "big2", 1, 300000);
    put_v(u, "big", 3, 200000);
    compact_all(u);
    assert_int_equal(links_of_only_blob(t), 1);
    expect_get(t, NULL, "big2", 1, 300000);
    expect_get(u, NULL, "big", 3, 200000);

    /* A copy from a snapshot takes the old value. */
    talus_snapshot *s = talus_snapshot_take(db);
    put_v(t, "big2", 4, 250000);
    assert_int_equal(talus_batch_new(&b), 0);
    assert_int_equal(talus_batch_copy(b, t, "old", 3, t, s, "big2", 4), 0);
    commit(db, b, TALUS_DURABILITY_SYNC);
    talus_batch_free(b);
    talus_snapshot_release(db, s);
    compact_all(t);
    expect_get(t, NULL, "old", 1, 300000);
    expect_get(t, NULL, "big2", 4, 250000);
    assert_int_equal(count_blobs(t), 2);

    /* An uncommitted copy leaves nothing behind. */
    assert_int_equal(talus_batch_new(&b), 0);
    assert_int_equal(talus_batch_copy(b, t, "tmp", 3, t, NULL, "old", 3), 0);
    assert_int_equal(count_blobs(t), 3);
    talus_batch_free(b);
    assert_int_equal(count_blobs(t), 2);
    assert_int_equal(talus_close(db), 0);
    db = open_db(MIN_BLOB);
    t = talus_default_tree(db);
    expect_get(t, NULL, "old", 1, 300000);
    assert_int_equal(count_blobs(t), 2);
    assert_int_equal(talus_close(db), 0);
}

/* A blob named only by the journal must keep its number from tables that
 * flushes write while the journal is replayed: the blob's number was the
 * manifest's next number, and small memtables make replay flush before it
 * reaches the blob's record. */
static void test_replay_numbers(void **state)
{
    (void)state;
    talus_options o;
    init_opts(&o, MIN_BLOB);
    o.tree.write_buffer_size = 64u << 20; /* nothing flushes before the crash */
    talus_db *db = NULL;
    assert_int_equal(db_open_env(dir, &o, tl_env_posix(), &db), 0);
    talus_tree *t = talus_default_tree(db);
    char k[32];
    for (int i = 0; i < 4000; i++) {
        snprintf(k, sizeof k, "small%05d", i);
        put_v(t, k, (uint64_t)i, 200);
    }
    put_v(t, "zz-big", 7, 50000);
    put_v(t, "zz-big2", 8, 60000); /* the manifest of the reopen takes the first number */
    assert_int_equal(count_blobs(t), 2);
    db_crash_close(db);

    init_opts(&o, MIN_BLOB);
    o.tree.write_buffer_size = 64u << 10; /* replay flushes several times */
    assert_int_equal(db_open_env(dir, &o, tl_env_posix(), &db), 0);
    t = talus_default_tree(db);
    expect_get(t, NULL, "zz-big", 7, 50000);
    expect_get(t, NULL, "zz-big2", 8, 60000);
    expect_get(t, NULL, "small00123", 123, 200);
    compact_all(t);
    expect_get(t, NULL, "zz-big", 7, 50000);
    expect_get(t, NULL, "zz-big2", 8, 60000);
    assert_int_equal(count_blobs(t), 2);
    assert_int_equal(talus_close(db), 0);
}

/* ---- 2. batches ----------------------------------------------------------- */

static void batch_put_v(talus_batch *b, talus_tree *t, const char *k, uint64_t tag, size_t n)
{
    uint8_t *v = make_value(tag, n);
    int rc = talus_batch_put(b, t, k, strlen(k), v, n);
    if (rc != 0)
        fail_msg("batch_put %s: %s: %s", k, talus_strerror(rc), talus_errmsg());
    free(v);
}

static void test_batches(void **state)
{
    (void)state;
    talus_db *db = open_db(MIN_BLOB);
    talus_tree *t = talus_default_tree(db), *a;
    talus_tree_options to;
    talus_tree_options_init(&to);
    to.min_blob_size = MIN_BLOB;
    assert_int_equal(talus_tree_open(db, "a", 1, &to, &a), 0);
    put_v(t, "gone", 1, 10);

    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    batch_put_v(b, t, "b1", 11, 5000);
    batch_put_v(b, t, "s1", 12, 10);
    batch_put_v(b, a, "b2", 13, 200000);
    assert_int_equal(talus_batch_delete(b, t, "gone", 4), 0);
    batch_put_v(b, t, "b3", 14, MIN_BLOB);
    assert_int_equal(talus_batch_count(b), 5);
    commit(db, b, -1);
    talus_batch_free(b);
    expect_get(t, NULL, "b1", 11, 5000);
    expect_get(t, NULL, "s1", 12, 10);
    expect_get(a, NULL, "b2", 13, 200000);
    expect_get(t, NULL, "b3", 14, MIN_BLOB);
    expect_absent(t, NULL, "gone");
    assert_int_equal(count_blobs(t), 2);
    assert_int_equal(count_blobs(a), 1);

    /* Freed without commit: its blobs (written at batch_put time, see
     * tree_blob.c) are removed and nothing becomes visible. */
    assert_int_equal(talus_batch_new(&b), 0);
    batch_put_v(b, t, "u1", 21, 100000);
    batch_put_v(b, a, "u2", 22, 3000);
    assert_int_equal(count_blobs(t), 3);
    assert_int_equal(count_blobs(a), 2);
    talus_batch_free(b);
    assert_int_equal(count_blobs(t), 2);
    assert_int_equal(count_blobs(a), 1);
    expect_absent(t, NULL, "u1");
    expect_absent(a, NULL, "u2");

    /* Cleared: same, and the batch is reusable afterwards. */
    assert_int_equal(talus_batch_new(&b), 0);
    batch_put_v(b, t, "u3", 23, 100000);
    batch_put_v(b, t, "u4", 24, 2000);
    talus_batch_clear(b);
    assert_int_equal(talus_batch_count(b), 0);
    assert_int_equal(count_blobs(t), 2);
    batch_put_v(b, t, "c1", 25, 4000);
    /* a key written twice in a batch keeps the last write */
    batch_put_v(b, t, "twice", 26, 6000);
    batch_put_v(b, t, "twice", 27, 7000);
    commit(db, b, TALUS_DURABILITY_SYNC);
    talus_batch_free(b); /* after commit the blobs belong to the tree */
    expect_absent(t, NULL, "u3");
    expect_absent(t, NULL, "u4");
    expect_get(t, NULL, "c1", 25, 4000);
    expect_get(t, NULL, "twice", 27, 7000);
    /* The second write of "twice" replaces the first in the memtable (same
     * key and seqno): the batch removed the first one's blob at once. */
    assert_int_equal(count_blobs(t), 4);

    /* live big values of t: b1, b3, c1, twice. */
    compact_all(t);
    assert_int_equal(count_blobs(t), 4);
    expect_get(t, NULL, "twice", 27, 7000);
    expect_get(t, NULL, "b1", 11, 5000);
    assert_int_equal(count_tmp(t), 0);
    assert_int_equal(talus_close(db), 0);
}

/* ---- 3. streamed writer ----------------------------------------------------- */

static void test_streamed_writer(void **state)
{
    (void)state;
    talus_db *db = open_db(MIN_BLOB);
    talus_tree *t = talus_default_tree(db), *a;
    talus_tree_options to;
    talus_tree_options_init(&to);
    to.min_blob_size = 0; /* writers work whatever the tree's threshold */
    assert_int_equal(talus_tree_open(db, "a", 1, &to, &a), 0);

    size_t total = (5u << 20) + 12345;
    uint8_t *src = make_value(100, total);
    talus_value_writer *w;
    assert_int_equal(talus_value_writer_new(t, &w), 0);
    size_t done = 0;
    int pieces = 0;
    while (done < total) {
        size_t n = (size_t)rnd_below(pieces % 3 == 0 ? 300000 : 3000);
        if (n > total - done)
            n = total - done;
        assert_int_equal(talus_value_writer_append(w, src + done, n), 0);
        done += n;
        pieces++;
        assert_int_equal(talus_value_writer_length(w), done);
    }
    assert_int_equal(count_tmp(t), 1); /* being written */
    assert_int_equal(count_blobs(t), 0);
    /* Finishing first does the sync now; the put only adds the reference. */
    assert_int_equal(talus_value_writer_finish(w), 0);
    assert_int_equal(talus_value_writer_finish(w), 0); /* idempotent */
    assert_int_equal(count_tmp(t), 0);
    assert_int_equal(count_blobs(t), 1);
    assert_int_equal(talus_value_writer_length(w), total);
    assert_int_equal(talus_value_writer_append(w, "x", 1), TALUS_EINVAL);
    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    assert_int_equal(talus_batch_put_value(b, t, "stream", 6, w), 0);
    assert_int_equal(count_tmp(t), 0);
    /* A finished value that is aborted leaves nothing behind. */
    talus_value_writer *w2;
    assert_int_equal(talus_value_writer_new(t, &w2), 0);
    assert_int_equal(talus_value_writer_append(w2, src, 100000), 0);
    assert_int_equal(talus_value_writer_finish(w2), 0);
    assert_int_equal(count_blobs(t), 2);
    talus_value_writer_abort(w2);
    assert_int_equal(count_blobs(t), 1);
    assert_int_equal(count_blobs(t), 1);
    commit(db, b, -1);
    expect_get(t, NULL, "stream", 100, total);
    talus_value *v;
    assert_int_equal(talus_value_open(t, NULL, "stream", 6, &v), 0);
    check_ranges(v, src, total, 60);
    talus_value_close(v);

    /* an empty streamed value and one into a tree with min_blob_size 0 */
    talus_batch_clear(b);
    assert_int_equal(talus_value_writer_new(t, &w), 0);
    assert_int_equal(talus_batch_put_value(b, t, "empty", 5, w), 0);
    assert_int_equal(talus_value_writer_new(a, &w), 0);
    assert_int_equal(talus_value_writer_append(w, src, 10), 0);
    assert_int_equal(talus_batch_put_value(b, a, "small", 5, w), 0);
    commit(db, b, -1);
    expect_get(t, NULL, "empty", 0, 0);
    expect_get(a, NULL, "small", 100, 10);
    assert_int_equal(count_blobs(t), 2);
    assert_int_equal(count_blobs(a), 1);

    /* abort leaves nothing */
    assert_int_equal(talus_value_writer_new(t, &w), 0);
    assert_int_equal(talus_value_writer_append(w, src, 1u << 20), 0);
    talus_value_writer_abort(w);
    talus_value_writer_abort(NULL);
    assert_int_equal(count_tmp(t), 0);
    assert_int_equal(count_blobs(t), 2);

    /* a writer of tree t put into tree a: refused, and the writer's file
     * is gone (put_value takes the writer in every case) */
    talus_batch_clear(b);
    assert_int_equal(talus_value_writer_new(t, &w), 0);
    assert_int_equal(talus_value_writer_append(w, src, 200000), 0);
    assert_int_equal(talus_batch_put_value(b, a, "wrong", 5, w), TALUS_EINVAL);
    assert_true(strlen(talus_errmsg()) > 0);
    assert_int_equal(talus_batch_count(b), 0);
    assert_int_equal(count_tmp(t) + count_tmp(a), 0);
    assert_int_equal(count_blobs(t), 2);
    assert_int_equal(count_blobs(a), 1);
    expect_absent(a, NULL, "wrong");
    talus_batch_free(b);

    compact_all(t);
    compact_all(a);
    expect_get(t, NULL, "stream", 100, total);
    assert_int_equal(count_blobs(t), 2);
    free(src);
    assert_int_equal(talus_close(db), 0);
}

/* ---- 4. overwrite, delete, garbage collection ------------------------------ */

static size_t big_len(int i)
{
    return 20000 + (size_t)i * 9000;
}

static void test_overwrite_and_gc(void **state)
{
    (void)state;
    talus_db *db = open_db(MIN_BLOB);
    talus_tree *t = talus_default_tree(db);
    char k[16];
    put_v(t, "k0", 1000, big_len(0));
    char *k0_file = blob_names(t); /* the only blob so far: k0's */
    assert_int_equal(count_blobs(t), 1);
    for (int i = 1; i < 10; i++) {
        snprintf(k, sizeof k, "k%d", i);
        put_v(t, k, 1000 + (uint64_t)i, big_len(i));
    }
    assert_int_equal(talus_flush(t), 0);
    assert_int_equal(count_blobs(t), 10);

    /* an open value keeps reading its file after compaction removed it */
    talus_value *old;
    assert_int_equal(talus_value_open(t, NULL, "k0", 2, &old), 0);
    for (int r = 0; r < 25; r++) {
        put_v(t, "k0", 2000 + (uint64_t)r, 30000 + (size_t)r);
        if (r % 7 == 3)
            assert_int_equal(talus_flush(t), 0);
    }
    for (int i = 2; i <= 4; i++) {
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(talus_delete(t, k, strlen(k)), 0);
    }
    compact_all(t);
    /* live: k0 (latest), k1, k5..k9 */
    assert_int_equal(count_blobs(t), 7);
    char *now = blob_names(t);
    assert_null(strstr(now, k0_file)); /* k0's first file is gone ... */
    free(now);
    uint8_t *want = make_value(1000, big_len(0));
    check_ranges(old, want, big_len(0), 60); /* ... but still readable */
    free(want);
    talus_value_close(old);
    expect_get(t, NULL, "k0", 2024, 30024);
    expect_absent(t, NULL, "k3");
    free(k0_file);

    /* a snapshot keeps the old blob across compaction until released */
    talus_snapshot *s = talus_snapshot_take(db);
    assert_non_null(s);
    put_v(t, "k1", 3001, 45000);
    assert_int_equal(talus_delete(t, "k5", 2), 0);
    compact_all(t);
    assert_int_equal(count_blobs(t), 8); /* 6 latest + old k1 + k5 for s */
    expect_get(t, s, "k1", 1001, big_len(1));
    expect_get(t, s, "k5", 1005, big_len(5));
    expect_ranges(t, s, "k1", 1001, big_len(1));
    expect_get(t, NULL, "k1", 3001, 45000);
    expect_absent(t, NULL, "k5");
    talus_value *at;
    assert_int_equal(talus_value_open_at(t, talus_snapshot_seqno(s), "k5", 2, &at), 0);
    assert_int_equal(talus_value_length(at), big_len(5));
    talus_value_close(at);
    talus_snapshot_release(db, s);
    /* Everything is in one level already: the manual compaction still
     * rewrites it, dropping what only the snapshot needed. */
    compact_all(t);
    assert_int_equal(count_blobs(t), 6);
    expect_get(t, NULL, "k1", 3001, 45000);
    for (int i = 6; i < 10; i++) {
        snprintf(k, sizeof k, "k%d", i);
        expect_get(t, NULL, k, 1000 + (uint64_t)i, big_len(i));
    }
    assert_int_equal(talus_close(db), 0);
}

/* ---- 5. reopen and crash ------------------------------------------------- */

static void test_reopen_and_crash(void **state)
{
    (void)state;
    talus_db *db = open_db(MIN_BLOB);
    talus_tree *t = talus_default_tree(db);
    put_v(t, "a-flushed", 1, 50000);
    put_v(t, "a-small", 2, 50);
    assert_int_equal(talus_flush(t), 0);
    put_v(t, "b-memtable", 3, 150000); /* flushed by close */
    assert_int_equal(count_blobs(t), 2);
    assert_int_equal(talus_close(db), 0);

    db = open_db(MIN_BLOB);
    t = talus_default_tree(db);
    assert_int_equal(count_blobs(t), 2);
    expect_get(t, NULL, "a-flushed", 1, 50000);
    expect_get(t, NULL, "a-small", 2, 50);
    expect_ranges(t, NULL, "b-memtable", 3, 150000);

    /* crash after commits of both durabilities, with a batch holding two
     * written but never committed blobs */
    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    batch_put_v(b, t, "c-buffered", 4, 80000);
    batch_put_v(b, t, "c-small", 5, 5);
    commit(db, b, TALUS_DURABILITY_BUFFERED);
    talus_batch_clear(b);
    batch_put_v(b, t, "c-sync", 6, 2000);
    commit(db, b, TALUS_DURABILITY_SYNC);
    talus_batch_clear(b);
    batch_put_v(b, t, "d-uncommitted", 7, 90000);
    batch_put_v(b, t, "d-uncommitted2", 8, 1500);
    assert_int_equal(count_blobs(t), 6);
    db_crash_close(db);
    /* The trees are gone with the db: forget the batch's blobs as a crashed
     * process would, then free its memory. */
    b->nblobs = 0;
    talus_batch_free(b);

    db = open_db(MIN_BLOB);
    t = talus_default_tree(db);
    expect_get(t, NULL, "a-flushed", 1, 50000);
    expect_get(t, NULL, "a-small", 2, 50);
    expect_get(t, NULL, "b-memtable", 3, 150000);
    expect_get(t, NULL, "c-buffered", 4, 80000);
    expect_get(t, NULL, "c-small", 5, 5);
    expect_get(t, NULL, "c-sync", 6, 2000);
    expect_absent(t, NULL, "d-uncommitted");
    expect_absent(t, NULL, "d-uncommitted2");
    assert_int_equal(count_blobs(t), 4); /* the two orphans are removed */
    assert_int_equal(count_tmp(t), 0);
    /* a crash right after recovery loses nothing either */
    db_crash_close(db);
    db = open_db(MIN_BLOB);
    t = talus_default_tree(db);
    expect_get(t, NULL, "c-buffered", 4, 80000);
    assert_int_equal(count_blobs(t), 4);
    assert_int_equal(talus_close(db), 0);
}

/* Power loss through the fault env: a blob is synced before its reference
 * is committed, so a sync commit survives; a buffered commit is lost and
 * its blob becomes an orphan that the next open removes. */
static void test_powerloss(void **state)
{
    (void)state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    talus_db *db = open_env(tl_fault_env_env(fe), MIN_BLOB, 0);
    talus_tree *t = talus_default_tree(db);
    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    batch_put_v(b, t, "synced", 1, 70000);
    commit(db, b, TALUS_DURABILITY_SYNC);
    talus_batch_clear(b);
    batch_put_v(b, t, "buffered", 2, 70000);
    commit(db, b, TALUS_DURABILITY_BUFFERED);
    talus_batch_free(b);
    assert_int_equal(count_blobs(t), 2);
    db_crash_close(db);
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    db = open_env(tl_fault_env_env(fe), MIN_BLOB, 0);
    t = talus_default_tree(db);
    expect_get(t, NULL, "synced", 1, 70000);
    expect_absent(t, NULL, "buffered");
    assert_int_equal(count_blobs(t), 1);
    assert_int_equal(talus_close(db), 0);
    tl_fault_env_free(fe);
}

/* ---- 6. corruption --------------------------------------------------------- */

/* The path of the one blob file that appeared between before and after. */
static void new_blob_path(const talus_tree *t, const char *before, char *out, size_t n)
{
    char *after = blob_names(t);
    char d[512];
    tree_dir(t, d, sizeof d);
    out[0] = 0;
    for (char *p = after; *p;) {
        char *nl = strchr(p, '\n');
        *nl = 0;
        if (!strstr(before, p)) {
            assert_int_equal(out[0], 0); /* exactly one */
            snprintf(out, n, "%s/%s", d, p);
        }
        p = nl + 1;
    }
    assert_int_not_equal(out[0], 0);
    free(after);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void expect_corrupt_get(talus_tree *t, const char *k, const char *mention)
{
    void *v = NULL;
    size_t n = 0;
    assert_int_equal(talus_get(t, NULL, k, strlen(k), &v, &n), TALUS_ECORRUPT);
    assert_null(v);
    if (mention && !strstr(talus_errmsg(), mention))
        fail_msg("message \"%s\" does not mention %s", talus_errmsg(), mention);
}

static void test_corruption(void **state)
{
    (void)state;
    talus_db *db = open_db(MIN_BLOB);
    talus_tree *t = talus_default_tree(db);
    char path_data[600], path_gone[600], path_head[600];
    char *names = blob_names(t);
    put_v(t, "data", 1, 200000);
    new_blob_path(t, names, path_data, sizeof path_data);
    free(names);
    names = blob_names(t);
    put_v(t, "gone", 2, 5000);
    new_blob_path(t, names, path_gone, sizeof path_gone);
    free(names);
    names = blob_names(t);
    put_v(t, "head", 3, 5000);
    new_blob_path(t, names, path_head, sizeof path_head);
    free(names);
    put_v(t, "fine", 4, 9000);
    assert_int_equal(talus_close(db), 0);

    /* a byte inside chunk 1's data (value offset 70000), and the magic */
    flip_byte(path_data, 16 + 65544 + (70000 - 65536));
    flip_byte(path_head, 3);

    db = open_db(MIN_BLOB);
    t = talus_default_tree(db);
    expect_corrupt_get(t, "data", NULL);
    assert_true(strlen(talus_errmsg()) > 0);
    expect_corrupt_get(t, "head", strrchr(path_head, '/') + 1);
    expect_get(t, NULL, "fine", 4, 9000);

    /* ranged reads: chunk 0 is intact, chunk 1 is not */
    talus_value *v;
    assert_int_equal(talus_value_open(t, NULL, "data", 4, &v), 0);
    uint8_t *want = make_value(1, 200000);
    uint8_t buf[1000];
    size_t got;
    assert_int_equal(talus_value_read(v, 100, buf, sizeof buf, &got), 0);
    assert_int_equal(got, sizeof buf);
    assert_memory_equal(buf, want + 100, sizeof buf);
    assert_int_equal(talus_value_read(v, 69990, buf, 20, &got), TALUS_ECORRUPT);
    assert_int_equal(talus_value_read(v, 150000, buf, sizeof buf, &got), 0);
    assert_memory_equal(buf, want + 150000, sizeof buf);
    talus_value_close(v);
    free(want);
    assert_int_equal(talus_value_open(t, NULL, "head", 4, &v), TALUS_ECORRUPT);

    /* an iterator reaching the bad value stops with the error */
    talus_iter *it;
    assert_int_equal(talus_iter_new(t, NULL, &it), 0);
    talus_iter_seek(it, "data", 4);
    assert_true(talus_iter_valid(it));
    assert_int_equal(talus_iter_value_length(it), 200000);
    size_t vl;
    assert_null(talus_iter_value(it, &vl));
    assert_int_equal(talus_iter_status(it), TALUS_ECORRUPT);
    talus_iter_free(it);

    /* a blob file deleted by hand */
    assert_int_equal(unlink(path_gone), 0);
    expect_corrupt_get(t, "gone", strrchr(path_gone, '/') + 1);
    assert_int_equal(talus_value_open(t, NULL, "gone", 4, &v), TALUS_ECORRUPT);
    expect_get(t, NULL, "fine", 4, 9000);
    assert_int_equal(talus_close(db), 0);
}

/* ---- 7. read-only open ------------------------------------------------------ */

static void test_read_only(void **state)
{
    (void)state;
    talus_db *db = open_db(MIN_BLOB);
    talus_tree *t = talus_default_tree(db);
    put_v(t, "flushed", 1, 40000);
    assert_int_equal(talus_flush(t), 0);
    put_v(t, "journal", 2, 60000); /* only in the journal after the crash */
    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    batch_put_v(b, t, "orphan", 3, 3000);
    /* the tree's directory is named by its id, which outlives the handle */
    talus_tree fake = {.id = t->id};
    db_crash_close(db);
    b->nblobs = 0; /* see test_reopen_and_crash */
    talus_batch_free(b);
    char *before = list_names(&fake, false);
    assert_int_equal(count_blobs(&fake), 3);

    db = open_env(tl_env_posix(), MIN_BLOB, 1);
    t = talus_default_tree(db);
    expect_get(t, NULL, "flushed", 1, 40000);
    expect_get(t, NULL, "journal", 2, 60000);
    expect_ranges(t, NULL, "journal", 2, 60000);
    expect_absent(t, NULL, "orphan");
    talus_value_writer *w = (talus_value_writer *)1;
    assert_int_equal(talus_value_writer_new(t, &w), TALUS_EREADONLY);
    uint8_t *v = make_value(9, 5000);
    assert_int_equal(talus_put(t, "x", 1, v, 5000), TALUS_EREADONLY);
    assert_int_equal(talus_batch_new(&b), 0);
    assert_int_equal(talus_batch_put(b, t, "x", 1, v, 5000), TALUS_EREADONLY);
    talus_batch_free(b);
    free(v);
    assert_int_equal(talus_close(db), 0);
    char *after = list_names(&fake, false);
    assert_string_equal(before, after); /* nothing removed, nothing added */
    free(before);
    free(after);

    /* a normal open afterwards removes the orphan and keeps the rest */
    db = open_db(MIN_BLOB);
    t = talus_default_tree(db);
    assert_int_equal(count_blobs(t), 2);
    expect_get(t, NULL, "journal", 2, 60000);
    assert_int_equal(talus_close(db), 0);
}

/* ---- 8. min_blob_size = 0 ----------------------------------------------- */

static void test_no_blobs(void **state)
{
    (void)state;
    talus_db *db = open_db(0);
    talus_tree *t = talus_default_tree(db);
    for (size_t i = 0; i < NSIZES; i++)
        put_v(t, sizes[i].key, i, sizes[i].len);
    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    batch_put_v(b, t, "w-batch", 50, 100000);
    commit(db, b, -1);
    talus_batch_free(b);
    assert_int_equal(count_blobs(t) + count_tmp(t), 0);
    compact_all(t);
    assert_int_equal(count_blobs(t) + count_tmp(t), 0);
    expect_get(t, NULL, "w-batch", 50, 100000);
    for (size_t i = 0; i < NSIZES; i++) {
        expect_get(t, NULL, sizes[i].key, i, sizes[i].len);
        expect_ranges(t, NULL, sizes[i].key, i, sizes[i].len);
    }
    assert_int_equal(talus_close(db), 0);
    db = open_db(0);
    t = talus_default_tree(db);
    expect_get(t, NULL, "v4-3mib", 4, 3u << 20);
    assert_int_equal(count_blobs(t), 0);
    assert_int_equal(talus_close(db), 0);
}

int main(void)
{
    const char *s = getenv("TALUS_TEST_SEED");
    seed = s ? strtoull(s, NULL, 0) : 20260417ull;
    printf("test_blob_db: seed %llu (TALUS_TEST_SEED)\n", (unsigned long long)seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streamed_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_and_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_and_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_powerloss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_blobs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
