/*
 * test_table_cache.c - the table (descriptor) cache over real table files:
 * lookups and iterators through the cache, max_open eviction, pins that
 * outlive eviction, and errors for missing and corrupt files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "util/err.h"
#include "util/ikey.h"

enum { NKEYS = 500 };

static char dir[PATH_MAX];
static uint64_t sizes[16];

/* Table t holds keys "k0000".."k0499" at seq t*1000+i, value "t<t>v<i>"
 * (only even i for odd t, so tables differ). */
static void build_table(uint64_t t)
{
    char name[PATH_MAX];
    tbl_file_name(name, sizeof(name), dir, t);
    tl_file *f;
    assert_int_equal(tl_env_open_write(tl_env_posix(), name, &f), 0);
    tbl_options o;
    tbl_options_init(&o);
    o.block_size = 512; /* several blocks */
    o.bloom_bits_per_key = 10;
    tbl_builder *b;
    assert_int_equal(tbl_builder_new(&o, f, &b), 0);
    for (int i = 0; i < NKEYS; i++) {
        if (t % 2 && i % 2)
            continue;
        char k[16], v[32];
        uint8_t ik[32];
        int kl = snprintf(k, sizeof(k), "k%04d", i);
        int vl = snprintf(v, sizeof(v), "t%llu-v%d", (unsigned long long)t, i);
        size_t ikl = tl_ikey_encode(ik, (const uint8_t *)k, (size_t)kl, t * 1000 + (uint64_t)i,
                                    TL_TYPE_VALUE);
        assert_int_equal(tbl_builder_add(b, tl_slice_make(ik, ikl), tl_slice_make(v, vl)), 0);
    }
    tbl_props props;
    memset(&props, 0, sizeof(props));
    assert_int_equal(tbl_builder_finish(b, &props), 0);
    tbl_builder_free(b);
    assert_int_equal(tl_file_sync(f), 0);
    assert_int_equal(tl_file_close(f), 0);
    sizes[t] = props.file_size;
    tbl_props_free(&props);
}

static void remove_table(uint64_t t)
{
    char name[PATH_MAX];
    tbl_file_name(name, sizeof(name), dir, t);
    unlink(name);
}

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/talus-test-table-cache-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    for (uint64_t t = 1; t <= 4; t++)
        build_table(t);
    return 0;
}

static int teardown(void **state)
{
    for (uint64_t t = 0; t < 10; t++)
        remove_table(t);
    rmdir(dir);
    return 0;
}

static void test_lookup(void **state)
{
    tl_table_cache *tc = tl_table_cache_new(tl_env_posix(), dir, 10, NULL);
    assert_non_null(tc);
    tl_buf v = {0};
    uint8_t type;
    uint64_t seq;
    assert_int_equal(tl_table_cache_lookup(tc, 2, sizes[2], tl_slice_make("k0007", 5), TL_SEQ_MAX,
                                           &type, &v, &seq),
                     1);
    assert_int_equal(type, TL_TYPE_VALUE);
    assert_int_equal(seq, 2007);
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.data, "t2-v7", 5);
    /* Not visible at an older seqno; absent key; key missing in table 3. */
    assert_int_equal(
        tl_table_cache_lookup(tc, 2, sizes[2], tl_slice_make("k0007", 5), 2006, &type, &v, &seq),
        0);
    assert_int_equal(tl_table_cache_lookup(tc, 2, sizes[2], tl_slice_make("zzz", 3), TL_SEQ_MAX,
                                           &type, &v, &seq),
                     0);
    assert_int_equal(tl_table_cache_lookup(tc, 3, sizes[3], tl_slice_make("k0007", 5), TL_SEQ_MAX,
                                           &type, &v, &seq),
                     0);
    /* size 0: the cache asks the file. */
    assert_int_equal(
        tl_table_cache_lookup(tc, 3, 0, tl_slice_make("k0008", 5), TL_SEQ_MAX, &type, &v, &seq), 1);
    assert_int_equal(seq, 3008);

    tbl_reader *r;
    tl_cache_handle *h;
    assert_int_equal(tl_table_cache_get(tc, 1, sizes[1], &r, &h), 0);
    assert_int_equal(tbl_reader_props(r)->num_entries, NKEYS / 2);
    tl_table_cache_release(tc, h);
    tl_buf_free(&v);
    tl_table_cache_free(tc);
}

static void test_iterator(void **state)
{
    tl_table_cache *tc = tl_table_cache_new(tl_env_posix(), dir, 10, NULL);
    tl_iter *it = tl_table_cache_iter(tc, 4, sizes[4], true);
    assert_non_null(it);
    int n = 0;
    for (tl_iter_seek_first(it); tl_iter_valid(it); tl_iter_next(it)) {
        char k[16];
        snprintf(k, sizeof(k), "k%04d", n);
        tl_slice u = tl_ikey_user(tl_iter_key(it));
        assert_int_equal(u.len, 5);
        assert_memory_equal(u.data, k, 5);
        n++;
    }
    assert_int_equal(n, NKEYS);
    assert_int_equal(tl_iter_status(it), 0);
    n = 0;
    for (tl_iter_seek_last(it); tl_iter_valid(it); tl_iter_prev(it))
        n++;
    assert_int_equal(n, NKEYS);

    uint8_t t[32];
    size_t tl = tl_ikey_encode(t, (const uint8_t *)"k0100", 5, TL_SEQ_MAX, TL_TYPE_VALUE);
    tl_iter_seek(it, tl_slice_make(t, tl));
    assert_true(tl_iter_valid(it));
    assert_int_equal(tl_ikey_seq(tl_iter_key(it)), 4100);
    tl_iter_seek_for_prev(it, tl_slice_make(t, tl));
    assert_true(tl_iter_valid(it));
    assert_int_equal(tl_ikey_seq(tl_iter_key(it)), 4099);
    assert_memory_equal(tl_iter_value(it).data, "t4-v99", 6);

    /* The iterator pins the reader: evicting the table and deleting its
     * file do not disturb it. */
    tl_table_cache_evict(tc, 4);
    tl_iter_seek_first(it);
    n = 0;
    for (; tl_iter_valid(it); tl_iter_next(it))
        n++;
    assert_int_equal(n, NKEYS);
    tl_iter_destroy(it);
    tl_table_cache_free(tc);
}

/* A cached table keeps its descriptor open: it can still be read after
 * its file is unlinked, until the cache closes it. */
static bool readable(tl_table_cache *tc, uint64_t t)
{
    tbl_reader *r;
    tl_cache_handle *h;
    if (tl_table_cache_get(tc, t, sizes[t], &r, &h) < 0)
        return false;
    tl_table_cache_release(tc, h);
    return true;
}

static void test_max_open(void **state)
{
    build_table(5);
    build_table(6);
    build_table(7);
    tl_table_cache *tc = tl_table_cache_new(tl_env_posix(), dir, 2, NULL);
    assert_true(readable(tc, 5));
    assert_true(readable(tc, 6));
    remove_table(5);
    remove_table(6);
    assert_true(readable(tc, 5)); /* still open: served from the cache */
    assert_true(readable(tc, 6));
    assert_true(readable(tc, 7)); /* closes 5, the least recently used */
    assert_false(readable(tc, 5));
    assert_true(readable(tc, 6));

    /* A pinned reader stays open beyond max_open and past eviction. */
    tbl_reader *r;
    tl_cache_handle *h;
    assert_int_equal(tl_table_cache_get(tc, 6, sizes[6], &r, &h), 0);
    tl_table_cache_evict(tc, 6);
    assert_false(readable(tc, 6)); /* not cached, file gone */
    tl_buf v = {0};
    uint8_t type;
    uint64_t seq;
    assert_int_equal(tbl_reader_get(r, tl_slice_make("k0001", 5), TL_SEQ_MAX, &type, &v, &seq), 1);
    assert_int_equal(seq, 6001);
    tl_table_cache_release(tc, h);
    tl_buf_free(&v);
    tl_table_cache_free(tc);
}

static void test_errors(void **state)
{
    tl_table_cache *tc = tl_table_cache_new(tl_env_posix(), dir, 10, NULL);

    /* Missing file: an error iterator and an error from lookup, never
     * "not found" (that would read as an absent key). */
    tl_iter *it = tl_table_cache_iter(tc, 99, 1000, false);
    assert_non_null(it);
    tl_iter_seek_first(it);
    assert_false(tl_iter_valid(it));
    assert_true(tl_iter_status(it) < 0);
    assert_true(tl_iter_status(it) != TALUS_ENOTFOUND);
    tl_iter_destroy(it);
    tl_buf v = {0};
    uint8_t type;
    uint64_t seq;
    int rc =
        tl_table_cache_lookup(tc, 99, 1000, tl_slice_make("a", 1), TL_SEQ_MAX, &type, &v, &seq);
    assert_true(rc < 0 && rc != TALUS_ENOTFOUND);
    assert_non_null(strstr(tl_errmsg(), "000099"));

    /* Garbage in a table file: an error naming the file. */
    char name[PATH_MAX];
    tbl_file_name(name, sizeof(name), dir, 8);
    FILE *f = fopen(name, "w");
    assert_non_null(f);
    for (int i = 0; i < 300; i++)
        fputc(i * 7, f);
    fclose(f);
    tbl_reader *r;
    tl_cache_handle *h;
    rc = tl_table_cache_get(tc, 8, 300, &r, &h);
    assert_true(rc < 0);
    assert_non_null(strstr(tl_errmsg(), "000008"));
    it = tl_table_cache_iter(tc, 8, 0, true);
    tl_iter_seek_first(it);
    assert_false(tl_iter_valid(it));
    assert_true(tl_iter_status(it) < 0);
    tl_iter_destroy(it);

    /* Errors are not cached: a good file under that number opens later. */
    remove_table(8);
    build_table(8);
    assert_int_equal(tl_table_cache_get(tc, 8, sizes[8], &r, &h), 0);
    tl_table_cache_release(tc, h);
    tl_buf_free(&v);
    tl_table_cache_free(tc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_iterator),
        cmocka_unit_test(test_max_open),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
