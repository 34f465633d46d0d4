/*
 * test_db.c - the talus.h surface end to end on a real directory: writes,
 * reads, deletes, weak deletes, snapshots, iterators with bounds and
 * prefixes, flush/compaction, reopen, trees, limits and locking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "talus.h"
#include "db/db_internal.h"
#include "util/env.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/talus_test_db_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static talus_db *open_db(size_t wbs)
{
    talus_options o;
    talus_options_init(&o);
    if (wbs) {
        o.tree.write_buffer_size = wbs;
        o.tree.target_file_size = wbs;
        o.tree.max_bytes_for_level_base = wbs * 4;
    }
    talus_db *db = NULL;
    int rc = talus_open(dir, &o, &db);
    if (rc != 0)
        fail_msg("open: %s: %s", talus_strerror(rc), talus_errmsg());
    return db;
}

static void put_s(talus_tree *t, const char *k, const char *v)
{
    assert_int_equal(talus_put(t, k, strlen(k), v, strlen(v)), 0);
}

static void expect_get(talus_tree *t, const talus_snapshot *s, const char *k, const char *want)
{
    void *v = NULL;
    size_t n = 0;
    int rc = talus_get(t, s, k, strlen(k), &v, &n);
    if (!want) {
        assert_int_equal(rc, TALUS_ENOTFOUND);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(v, want, n);
    talus_free(v);
}

static void test_basic(void **state)
{
    (void)state;
    talus_db *db = open_db(0);
    talus_tree *t = talus_default_tree(db);
    assert_non_null(t);
    put_s(t, "a", "1");
    put_s(t, "b", "2");
    expect_get(t, NULL, "a", "1");
    expect_get(t, NULL, "c", NULL);
    put_s(t, "a", "3");
    expect_get(t, NULL, "a", "3");
    assert_int_equal(talus_delete(t, "a", 1), 0);
    expect_get(t, NULL, "a", NULL);
    assert_int_equal(talus_contains(t, NULL, "b", 1), 1);
    assert_int_equal(talus_contains(t, NULL, "a", 1), 0);
    /* empty value */
    assert_int_equal(talus_put(t, "e", 1, "", 0), 0);
    expect_get(t, NULL, "e", "");
    assert_int_equal(talus_close(db), 0);
}

static void test_limits(void **state)
{
    (void)state;
    talus_db *db = open_db(0);
    talus_tree *t = talus_default_tree(db);
    assert_int_equal(talus_put(t, "", 0, "x", 1), TALUS_EINVAL);
    size_t big = TALUS_MAX_KEY + 1;
    char *k = calloc(1, big);
    memset(k, 'k', big);
    assert_int_equal(talus_put(t, k, big, "x", 1), TALUS_ETOOBIG);
    assert_true(strlen(talus_errmsg()) > 0);
    assert_int_equal(talus_put(t, k, TALUS_MAX_KEY, "x", 1), 0);
    void *v;
    size_t n;
    assert_int_equal(talus_get(t, NULL, k, TALUS_MAX_KEY, &v, &n), 0);
    talus_free(v);
    free(k);
    assert_int_equal(talus_close(db), 0);
}

static void test_weak_delete(void **state)
{
    (void)state;
    talus_db *db = open_db(64 << 10);
    talus_tree *t = talus_default_tree(db);
    put_s(t, "w", "old");
    assert_int_equal(talus_flush(t), 0);
    assert_int_equal(talus_compact_range(t, NULL, 0, NULL, 0), 0);
    put_s(t, "w", "new");
    assert_int_equal(talus_weak_delete(t, "w", 1), 0);
    expect_get(t, NULL, "w", NULL);
    assert_int_equal(talus_flush(t), 0);
    expect_get(t, NULL, "w", NULL);
    assert_int_equal(talus_compact_range(t, NULL, 0, NULL, 0), 0);
    /* the weak delete cancelled "new" but must not resurrect "old" */
    expect_get(t, NULL, "w", NULL);
    assert_int_equal(talus_close(db), 0);
}

static void test_snapshots(void **state)
{
    (void)state;
    talus_db *db = open_db(64 << 10);
    talus_tree *t = talus_default_tree(db);
    put_s(t, "k", "v1");
    talus_snapshot *s1 = talus_snapshot_take(db);
    put_s(t, "k", "v2");
    talus_snapshot *s2 = talus_snapshot_take(db);
    assert_int_equal(talus_delete(t, "k", 1), 0);
    expect_get(t, s1, "k", "v1");
    expect_get(t, s2, "k", "v2");
    expect_get(t, NULL, "k", NULL);
    assert_int_equal(talus_flush(t), 0);
    assert_int_equal(talus_compact_range(t, NULL, 0, NULL, 0), 0);
    expect_get(t, s1, "k", "v1");
    expect_get(t, s2, "k", "v2");
    expect_get(t, NULL, "k", NULL);
    talus_snapshot_release(db, s1);
    talus_snapshot_release(db, s2);
    assert_int_equal(talus_compact_range(t, NULL, 0, NULL, 0), 0);
    expect_get(t, NULL, "k", NULL);
    assert_int_equal(talus_close(db), 0);
}

static void collect(talus_iter *it, bool reverse, char *out, size_t cap)
{
    out[0] = '\0';
    if (reverse)
        talus_iter_seek_last(it);
    else
        talus_iter_seek_first(it);
    while (talus_iter_valid(it)) {
        size_t n;
        const char *k = talus_iter_key(it, &n);
        strncat(out, k, n < cap - strlen(out) - 2 ? n : 0);
        strcat(out, ",");
        if (reverse)
            talus_iter_prev(it);
        else
            talus_iter_next(it);
    }
    assert_int_equal(talus_iter_status(it), 0);
}

static void test_iterators(void **state)
{
    (void)state;
    talus_db *db = open_db(64 << 10);
    talus_tree *t = talus_default_tree(db);
    const char *keys[] = {"a", "a/x", "a.txt", "ab", "b", "b/1", "b/2", "c"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        put_s(t, keys[i], "v");
    assert_int_equal(talus_delete(t, "ab", 2), 0);
    char buf[512];
    for (int flushed = 0; flushed < 2; flushed++) {
        talus_iter *it;
        assert_int_equal(talus_iter_new(t, NULL, &it), 0);
        collect(it, false, buf, sizeof buf);
        assert_string_equal(buf, "a,a.txt,a/x,b,b/1,b/2,c,");
        collect(it, true, buf, sizeof buf);
        assert_string_equal(buf, "c,b/2,b/1,b,a/x,a.txt,a,");
        /* direction switches */
        talus_iter_seek(it, "b", 1);
        assert_true(talus_iter_valid(it));
        talus_iter_prev(it);
        size_t n;
        const char *k = talus_iter_key(it, &n);
        assert_int_equal(n, 3);
        assert_memory_equal(k, "a/x", 3);
        talus_iter_next(it);
        k = talus_iter_key(it, &n);
        assert_memory_equal(k, "b", 1);
        talus_iter_seek_for_prev(it, "ab", 2);
        k = talus_iter_key(it, &n);
        assert_int_equal(n, 3);
        assert_memory_equal(k, "a/x", 3);
        talus_iter_free(it);

        talus_iter_options io;
        talus_iter_options_init(&io);
        io.prefix = "b/";
        io.prefix_len = 2;
        assert_int_equal(talus_iter_new(t, &io, &it), 0);
        collect(it, false, buf, sizeof buf);
        assert_string_equal(buf, "b/1,b/2,");
        collect(it, true, buf, sizeof buf);
        assert_string_equal(buf, "b/2,b/1,");
        talus_iter_free(it);

        talus_iter_options_init(&io);
        io.lower = "a.";
        io.lower_len = 2;
        io.upper = "b/1";
        io.upper_len = 3;
        assert_int_equal(talus_iter_new(t, &io, &it), 0);
        collect(it, false, buf, sizeof buf);
        assert_string_equal(buf, "a.txt,a/x,b,");
        collect(it, true, buf, sizeof buf);
        assert_string_equal(buf, "b,a/x,a.txt,");
        talus_iter_free(it);
        assert_int_equal(talus_flush(t), 0);
    }
    void *k;
    size_t kl;
    assert_int_equal(talus_first_key(t, &k, &kl), 0);
    assert_memory_equal(k, "a", 1);
    talus_free(k);
    assert_int_equal(talus_last_key(t, &k, &kl), 0);
    assert_memory_equal(k, "c", 1);
    talus_free(k);
    assert_int_equal(talus_close(db), 0);
}

static void test_reopen_and_compaction(void **state)
{
    (void)state;
    talus_db *db = open_db(64 << 10);
    talus_tree *t = talus_default_tree(db);
    char k[32], v[128];
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "key%08d", (i * 7919) % n);
        snprintf(v, sizeof v, "value-%d-%0100d", i, i);
        assert_int_equal(talus_put(t, k, strlen(k), v, strlen(v)), 0);
    }
    for (int i = 0; i < n; i += 3) {
        snprintf(k, sizeof k, "key%08d", i);
        assert_int_equal(talus_delete(t, k, strlen(k)), 0);
    }
    assert_int_equal(talus_wait_idle(db), 0);
    talus_tree_stats st;
    assert_int_equal(talus_tree_stats_get(t, &st), 0);
    assert_true(st.flushes > 0);
    assert_int_equal(talus_close(db), 0);

    db = open_db(64 << 10);
    t = talus_default_tree(db);
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "key%08d", i);
        int rc = talus_get(t, NULL, k, strlen(k), NULL, NULL);
        assert_int_equal(rc, i % 3 == 0 ? TALUS_ENOTFOUND : 0);
    }
    talus_iter *it;
    assert_int_equal(talus_iter_new(t, NULL, &it), 0);
    int count = 0;
    for (talus_iter_seek_first(it); talus_iter_valid(it); talus_iter_next(it))
        count++;
    assert_int_equal(count, n - (n + 2) / 3);
    talus_iter_free(it);
    assert_int_equal(talus_compact_range(t, NULL, 0, NULL, 0), 0);
    assert_true(talus_disk_space(t) > 0);
    assert_int_equal(talus_close(db), 0);
}

static void test_trees_and_batches(void **state)
{
    (void)state;
    talus_db *db = open_db(0);
    talus_tree *a, *b;
    assert_int_equal(talus_tree_open(db, "alpha", 0, NULL, &a), TALUS_ENOTFOUND);
    assert_int_equal(talus_tree_open(db, "alpha", 1, NULL, &a), 0);
    assert_int_equal(talus_tree_open(db, "beta", 1, NULL, &b), 0);
    talus_batch *bt;
    assert_int_equal(talus_batch_new(&bt), 0);
    assert_int_equal(talus_batch_put(bt, a, "k", 1, "A", 1), 0);
    assert_int_equal(talus_batch_put(bt, b, "k", 1, "B", 1), 0);
    assert_int_equal(talus_batch_put(bt, b, "k", 1, "B2", 2), 0); /* last write wins */
    uint64_t seq = 0;
    assert_int_equal(talus_batch_commit(db, bt, -1, &seq), 0);
    assert_int_equal(seq, talus_seqno(db));
    talus_batch_free(bt);
    expect_get(a, NULL, "k", "A");
    expect_get(b, NULL, "k", "B2");
    expect_get(talus_default_tree(db), NULL, "k", NULL);
    assert_int_equal(talus_close(db), 0);

    db = open_db(0);
    char **names;
    size_t count;
    assert_int_equal(talus_tree_list(db, &names, &count), 0);
    assert_int_equal(count, 3);
    talus_free_names(names);
    assert_int_equal(talus_tree_open(db, "beta", 0, NULL, &b), 0);
    expect_get(b, NULL, "k", "B2");
    assert_int_equal(talus_tree_drop(db, "beta"), 0);
    assert_int_equal(talus_tree_drop(db, "default"), TALUS_EINVAL);
    assert_int_equal(talus_close(db), 0);
    db = open_db(0);
    assert_int_equal(talus_tree_open(db, "beta", 0, NULL, &b), TALUS_ENOTFOUND);
    assert_int_equal(talus_close(db), 0);
}

static void test_lock(void **state)
{
    (void)state;
    talus_db *db = open_db(0);
    talus_options o;
    talus_options_init(&o);
    talus_db *db2 = NULL;
    assert_int_equal(talus_open(dir, &o, &db2), TALUS_EBUSY);
    assert_non_null(strstr(talus_errmsg(), "in use"));
    assert_int_equal(talus_close(db), 0);
    o.create_if_missing = 0;
    assert_int_equal(talus_open("/tmp/talus-definitely-missing-db", &o, &db2), TALUS_ENOTFOUND);
}

static talus_db *open_env(tl_env *env, int recovery)
{
    talus_options o;
    talus_options_init(&o);
    o.tree.write_buffer_size = 64 << 10;
    o.journal_segment_size = 16 << 10;
    o.max_journal_size = 1 << 20;
    o.journal_recovery = recovery;
    talus_db *db = NULL;
    int rc = db_open_env(dir, &o, env, &db);
    if (rc != 0)
        fail_msg("open: %s: %s", talus_strerror(rc), talus_errmsg());
    return db;
}

static void test_journal_recovery(void **state)
{
    (void)state;
    talus_db *db = open_env(tl_env_posix(), 0);
    talus_tree *t = talus_default_tree(db), *a;
    assert_int_equal(talus_tree_open(db, "a", 1, NULL, &a), 0);
    char k[32], v[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof k, "k%05d", i);
        snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(talus_put(t, k, strlen(k), v, strlen(v)), 0);
    }
    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    assert_int_equal(talus_batch_put(b, t, "x", 1, "1", 1), 0);
    assert_int_equal(talus_batch_put(b, a, "x", 1, "2", 1), 0);
    assert_int_equal(talus_batch_commit(db, b, TALUS_DURABILITY_SYNC, NULL), 0);
    talus_batch_clear(b);
    assert_int_equal(talus_batch_put(b, t, "lost", 4, "1", 1), 0);
    assert_int_equal(talus_batch_commit(db, b, TALUS_DURABILITY_NONE, NULL), 0);
    talus_batch_free(b);
    uint64_t seq = talus_seqno(db);
    db_crash_close(db);

    /* A read-only open replays the journal in memory and writes nothing. */
    talus_options ro;
    talus_options_init(&ro);
    ro.read_only = 1;
    assert_int_equal(talus_open(dir, &ro, &db), 0);
    expect_get(talus_default_tree(db), NULL, "k02999", "v2999");
    expect_get(talus_default_tree(db), NULL, "x", "1");
    assert_int_equal(talus_put(talus_default_tree(db), "y", 1, "1", 1), TALUS_EREADONLY);
    assert_int_equal(talus_close(db), 0);

    db = open_env(tl_env_posix(), 0);
    t = talus_default_tree(db);
    assert_int_equal(talus_tree_open(db, "a", 0, NULL, &a), 0);
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof k, "k%05d", i);
        snprintf(v, sizeof v, "v%d", i);
        expect_get(t, NULL, k, v);
    }
    expect_get(t, NULL, "x", "1");
    expect_get(a, NULL, "x", "2");
    expect_get(t, NULL, "lost", NULL); /* durability none: memtable only */
    assert_true(talus_seqno(db) >= seq - 1);
    /* a second crash right after recovery loses nothing either */
    db_crash_close(db);
    db = open_env(tl_env_posix(), 0);
    t = talus_default_tree(db);
    expect_get(t, NULL, "k02999", "v2999");
    assert_int_equal(talus_close(db), 0);
}

static void test_powerloss(void **state)
{
    (void)state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    talus_db *db = open_env(tl_fault_env_env(fe), 0);
    talus_tree *t = talus_default_tree(db);
    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    assert_int_equal(talus_batch_put(b, t, "synced", 6, "1", 1), 0);
    assert_int_equal(talus_batch_commit(db, b, TALUS_DURABILITY_SYNC, NULL), 0);
    talus_batch_clear(b);
    assert_int_equal(talus_batch_put(b, t, "buffered", 8, "1", 1), 0);
    assert_int_equal(talus_batch_commit(db, b, TALUS_DURABILITY_BUFFERED, NULL), 0);
    talus_batch_free(b);
    db_crash_close(db);
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    db = open_env(tl_fault_env_env(fe), 0);
    t = talus_default_tree(db);
    expect_get(t, NULL, "synced", "1");
    expect_get(t, NULL, "buffered", NULL); /* never synced: lost with power */
    assert_int_equal(talus_close(db), 0);
    tl_fault_env_free(fe);
}

static void test_pinned_snapshots(void **state)
{
    (void)state;
    talus_db *db = open_db(64 << 10);
    talus_tree *t = talus_default_tree(db);
    put_s(t, "k", "v1");
    uint64_t s1 = talus_seqno(db);
    assert_int_equal(talus_snapshot_pin(db, s1), 0);
    put_s(t, "k", "v2");
    put_s(t, "k", "v3");
    assert_int_equal(talus_flush(t), 0);
    assert_int_equal(talus_compact_range(t, NULL, 0, NULL, 0), 0);
    /* after compaction an unpinned old seqno is refused */
    assert_int_equal(talus_snapshot_pin(db, s1 + 1), TALUS_ESNAPSHOT);
    assert_int_equal(talus_get_at(t, s1 + 1, "k", 1, NULL, NULL), TALUS_ESNAPSHOT);
    assert_int_equal(talus_close(db), 0);

    db = open_db(64 << 10);
    t = talus_default_tree(db);
    void *v;
    size_t n;
    assert_int_equal(talus_get_at(t, s1, "k", 1, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(v, "v1", 2);
    talus_free(v);
    talus_snapshot *snap = talus_snapshot_at(db, s1);
    assert_non_null(snap);
    expect_get(t, snap, "k", "v1");
    talus_snapshot_release(db, snap);
    talus_pinned_snapshot *list;
    size_t count;
    assert_int_equal(talus_snapshot_list(db, &list, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(list[0].seqno, s1);
    assert_true(list[0].bytes_held > 0);
    talus_free(list);
    assert_int_equal(talus_snapshot_pin(db, talus_seqno(db)), 0); /* now always works */
    assert_int_equal(talus_snapshot_unpin(db, s1), 0);
    assert_int_equal(talus_snapshot_unpin(db, s1), TALUS_ENOTFOUND);
    assert_int_equal(talus_compact_range(t, NULL, 0, NULL, 0), 0);
    expect_get(t, NULL, "k", "v3");
    assert_int_equal(talus_close(db), 0);
}

/* A seqno once pinned is never handed out again after a crash, even when
 * the batches up to it were lost (durability none) and it was unpinned. */
static void test_pinned_seqno_floor(void **state)
{
    (void)state;
    talus_db *db = open_db(0);
    talus_tree *t = talus_default_tree(db);
    put_s(t, "a", "1"); /* buffered: survives */
    uint64_t kept = talus_seqno(db);
    talus_batch *b;
    assert_int_equal(talus_batch_new(&b), 0);
    for (int i = 0; i < 3; i++) {
        talus_batch_clear(b);
        assert_int_equal(talus_batch_put(b, t, "n", 1, "x", 1), 0);
        assert_int_equal(talus_batch_commit(db, b, TALUS_DURABILITY_NONE, NULL), 0);
    }
    talus_batch_free(b);
    uint64_t shown = talus_seqno(db);
    assert_true(shown > kept);
    assert_int_equal(talus_snapshot_pin(db, shown), 0);
    assert_int_equal(talus_snapshot_unpin(db, shown), 0);
    db_crash_close(db);
    db = open_db(0);
    t = talus_default_tree(db);
    expect_get(t, NULL, "a", "1");
    assert_true(talus_seqno(db) >= shown); /* the lost batches' seqnos stay used */
    put_s(t, "a", "2");
    assert_true(talus_seqno(db) > shown);
    assert_int_equal(talus_close(db), 0);
    db = open_db(0);
    assert_true(talus_seqno(db) > shown);
    assert_int_equal(talus_close(db), 0);
}

static uint64_t by_tens(void *ctx, uint64_t last)
{
    int *calls = ctx;
    (*calls)++;
    if (*calls == 5)
        return last; /* misbehave once */
    return (last / 10 + 1) * 10;
}

static void test_seqno_generator(void **state)
{
    (void)state;
    int calls = 0;
    talus_options o;
    talus_options_init(&o);
    o.seqno_generator = by_tens;
    o.seqno_ctx = &calls;
    talus_db *db;
    assert_int_equal(talus_open(dir, &o, &db), 0);
    talus_tree *t = talus_default_tree(db);
    for (int i = 0; i < 4; i++)
        put_s(t, "k", "v");
    assert_int_equal(talus_seqno(db), 40);
    assert_int_equal(talus_put(t, "k", 1, "x", 1), TALUS_ESEQNO);
    put_s(t, "k", "w");
    assert_int_equal(talus_seqno(db), 50);
    expect_get(t, NULL, "k", "w");
    assert_int_equal(talus_close(db), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weak_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_and_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trees_and_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_powerloss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pinned_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pinned_seqno_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seqno_generator, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
