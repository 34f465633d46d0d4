/*
 * test_table.c - the block-based table end to end: build tables of many
 * shapes (sizes, compressions, block sizes, restart intervals, user keys
 * whose versions span block boundaries), then check gets at many read
 * seqnos, full iteration both ways, seeks and properties against a sorted
 * model. Then hostile files: every byte flipped and every truncation of a
 * small table must give correct answers or an error code, never a crash;
 * wrong magic and a future format version give clear errors. Finally the
 * block cache: repeated reads are served without touching the file.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "table/table.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/ikey.h"

#include "table/table_internal.h"
#include "table_model.h"

/* ---- Tests ------------------------------------------------------------ */

static void test_sizes_and_compression(void **state)
{
    (void)state;
    static const size_t users[] = {1, 700, 60000};
    static const int comps[] = {TALUS_COMPRESS_NONE, TALUS_COMPRESS_LZ4, TALUS_COMPRESS_ZSTD};
    for (size_t u = 0; u < 3; u++) {
        model m;
        model_gen(&m, users[u], 120, true);
        for (size_t c = 0; c < 3; c++) {
            tbl_options o;
            tbl_options_init(&o);
            o.compression = comps[c];
            round_trip(&m, &o, users[u] > 1000 ? 20000 : 2000);
        }
        model_free(&m);
    }
}

static void test_exactly_1000_and_100k(void **state)
{
    (void)state;
    static const size_t counts[] = {1000, 100000};
    for (size_t c = 0; c < 2; c++) {
        model m;
        model_gen(&m, counts[c], 60, false);
        /* Trim to exactly the count (user keys may have several versions). */
        while (m.n > counts[c]) {
            m.n--;
            free(m.e[m.n].k);
            free(m.e[m.n].v);
        }
        tbl_options o;
        tbl_options_init(&o);
        o.compression = c ? TALUS_COMPRESS_LZ4 : TALUS_COMPRESS_ZSTD;
        round_trip(&m, &o, 5000);
        model_free(&m);
    }
}

static void test_shapes(void **state)
{
    (void)state;
    /* Tiny blocks, all restart intervals, with and without a filter. */
    model m;
    model_gen(&m, 400, 40, true);
    for (int ri = 1; ri <= 20; ri += 3) {
        tbl_options o;
        tbl_options_init(&o);
        o.block_size = 64 + rndn(400);
        o.restart_interval = ri;
        o.bloom_bits_per_key = (ri % 2) ? 0 : 10;
        o.compression = ri % 3;
        round_trip(&m, &o, 1500);
    }
    /* One block holding everything. */
    tbl_options o;
    tbl_options_init(&o);
    o.block_size = 1u << 20;
    round_trip(&m, &o, 1000);
    model_free(&m);
}

static void test_versions_across_blocks(void **state)
{
    (void)state;
    model m;
    memset(&m, 0, sizeof m);
    uint8_t uk[32];
    for (uint32_t k = 1; k <= 5; k++) {
        size_t ul = make_ukey(uk, k * 2);
        uint32_t nv = k == 3 ? 500 : 3;
        for (uint32_t j = 0; j < nv; j++)
            model_add(&m, uk, ul, 100000 - j * 2, j % 7 == 3 ? TL_TYPE_TOMBSTONE : TL_TYPE_VALUE,
                      j % 7 == 3 ? 0 : 20);
    }
    m.max_num = 12;
    tbl_options o;
    tbl_options_init(&o);
    o.block_size = 128;
    o.restart_interval = 4;
    tl_buf file = {0};
    tbl_props built;
    build(&m, &o, &file, &built);
    assert_true(built.num_data_blocks > 50);
    tbl_reader *r = open_mem(&file, NULL);
    /* Every seqno around key 3's versions, including between them. */
    size_t ul = make_ukey(uk, 6);
    for (uint64_t s = 100000 - 1002; s <= 100001; s++)
        check_get(r, &m, uk, ul, s, false);
    check_all(r, &m, 3000);
    tbl_reader_free(r);
    tbl_props_free(&built);
    tl_buf_free(&file);
    model_free(&m);
}

static void test_empty_table(void **state)
{
    (void)state;
    model m;
    memset(&m, 0, sizeof m);
    m.max_num = 10;
    tbl_options o;
    tbl_options_init(&o);
    round_trip(&m, &o, 100);
    o.bloom_bits_per_key = 0;
    round_trip(&m, &o, 100);
}

static void test_builder_rejects(void **state)
{
    (void)state;
    tl_buf file = {0};
    tl_file *f = memfile_new(&file);
    tbl_options o;
    tbl_options_init(&o);
    tbl_builder *b;
    uint8_t k1[32], k2[32], k3[32];
    size_t l1 = tl_ikey_encode(k1, (const uint8_t *)"b", 1, 10, TL_TYPE_VALUE);
    size_t l2 = tl_ikey_encode(k2, (const uint8_t *)"a", 1, 10, TL_TYPE_VALUE);
    size_t l3 = tl_ikey_encode(k3, (const uint8_t *)"b", 1, 11, TL_TYPE_VALUE);
    tl_slice v = tl_slice_make("v", 1);
    o.restart_interval = 0;
    assert_int_equal(tbl_builder_new(&o, f, &b), TALUS_EINVAL);
    tbl_options_init(&o);
    o.compression = 9;
    assert_int_equal(tbl_builder_new(&o, f, &b), TALUS_EINVAL);
    tbl_options_init(&o);
    o.format_version = 2;
    assert_int_equal(tbl_builder_new(&o, f, &b), TALUS_EINVAL);
    tbl_options_init(&o);
    assert_int_equal(tbl_builder_new(&o, f, &b), 0);
    assert_int_equal(tbl_builder_add(b, tl_slice_make(k1, l1), v), 0);
    assert_int_equal(tbl_builder_add(b, tl_slice_make(k1, l1), v), TALUS_EINVAL);
    assert_int_equal(tbl_builder_add(b, tl_slice_make(k2, l2), v), TALUS_EINVAL);
    assert_int_equal(tbl_builder_add(b, tl_slice_make(k3, l3), v), TALUS_EINVAL); /* newer seq */
    assert_int_equal(tbl_builder_add(b, tl_slice_make(k1, 5), v), TALUS_EINVAL);
    k2[l2 - 1] = 0; /* bad type */
    assert_int_equal(tbl_builder_add(b, tl_slice_make(k2, l2), v), TALUS_EINVAL);
    /* The builder is still usable after rejected keys. */
    size_t l4 = tl_ikey_encode(k2, (const uint8_t *)"c", 1, 1, TL_TYPE_TOMBSTONE);
    assert_int_equal(tbl_builder_add(b, tl_slice_make(k2, l4), tl_slice_make(NULL, 0)), 0);
    tbl_props p;
    assert_int_equal(tbl_builder_finish(b, &p), 0);
    assert_int_equal(p.num_entries, 2);
    assert_int_equal(p.num_deletions, 1);
    assert_int_equal(tbl_builder_add(b, tl_slice_make(k2, l4), v), TALUS_EINVAL);
    tbl_props_free(&p);
    tbl_builder_free(b);
    tl_file_close(f);
    tl_buf_free(&file);
}

/* Small table used by the corruption tests. */
static void small_table(model *m, int comp, tl_buf *file)
{
    model_gen(m, 40, 30, false);
    tbl_options o;
    tbl_options_init(&o);
    o.block_size = 200;
    o.restart_interval = 3;
    o.compression = comp;
    tbl_props p;
    build(m, &o, file, &p);
    tbl_props_free(&p);
}

/* Open + get + iterate a possibly corrupt file: correct data or an error. */
static void check_or_error(const model *m, tl_buf *file)
{
    tl_file *f = memfile_new(file);
    tbl_reader *r;
    int rc = tbl_reader_open(f, "bad.sst", file->len, NULL, &r);
    if (rc < 0) {
        assert_true(rc == TALUS_ECORRUPT || rc == TALUS_EVERSION);
        tl_file_close(f);
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        const ent *e = &m->e[i];
        uint64_t s = tl_ikey_seq(tl_slice_make(e->k, e->klen));
        check_get(r, m, e->k, e->klen - TL_IKEY_TRAILER, s, true);
        check_get(r, m, e->k, e->klen - TL_IKEY_TRAILER, TL_SEQ_MAX, true);
    }
    check_scans(r, m, false, true);
    tbl_reader_free(r);
}

static void test_corrupt_every_byte(void **state)
{
    (void)state;
    static const int comps[] = {TALUS_COMPRESS_NONE, TALUS_COMPRESS_ZSTD, TALUS_COMPRESS_LZ4};
    for (int c = 0; c < 3; c++) {
        model m;
        tl_buf file = {0}, bad = {0};
        small_table(&m, comps[c], &file);
        /* Every byte, one random bit each. */
        for (size_t i = 0; i < file.len; i++) {
            tl_buf_set(&bad, file.data, file.len);
            bad.data[i] ^= (uint8_t)(1u << rndn(8));
            check_or_error(&m, &bad);
        }
        /* Every truncation. */
        for (size_t len = 0; len < file.len; len++) {
            tl_buf_set(&bad, file.data, len);
            tl_file *f = memfile_new(&bad);
            tbl_reader *r;
            int rc = tbl_reader_open(f, "cut.sst", len, NULL, &r);
            assert_int_equal(rc, TALUS_ECORRUPT);
            tl_file_close(f);
        }
        /* A caller passing the wrong file size. */
        for (int d = -9; d <= 9; d += 3) {
            tl_file *f = memfile_new(&file);
            tbl_reader *r;
            int rc = tbl_reader_open(f, "size.sst", file.len + (size_t)d, NULL, &r);
            assert_int_equal(rc, d == 0 ? 0 : TALUS_ECORRUPT);
            if (rc == 0)
                tbl_reader_free(r);
            else
                tl_file_close(f);
        }
        tl_buf_free(&file);
        tl_buf_free(&bad);
        model_free(&m);
    }
}

/* Open and read a file whose checksums were forged after corruption: the
 * decoders behind the checksum must hold on their own. Data may be wrong
 * (the checksum was the only thing that could tell), but nothing may crash,
 * loop or read out of bounds, and errors must be ECORRUPT. */
static void exercise_unchecked(const model *m, tl_buf *file)
{
    tl_file *f = memfile_new(file);
    tbl_reader *r;
    int rc = tbl_reader_open(f, "forged.sst", file->len, NULL, &r);
    if (rc < 0) {
        assert_true(rc == TALUS_ECORRUPT || rc == TALUS_EVERSION);
        tl_file_close(f);
        return;
    }
    tl_buf v = {0};
    for (size_t i = 0; i < m->n; i++) {
        uint8_t type;
        uint64_t seq;
        rc = tbl_reader_get(r, tl_slice_make(m->e[i].k, m->e[i].klen - TL_IKEY_TRAILER), TL_SEQ_MAX,
                            &type, &v, &seq);
        assert_true(rc >= 0 || rc == TALUS_ECORRUPT);
    }
    tl_buf_free(&v);
    tl_iter *it = tbl_reader_iter(r, false);
    size_t steps = 0;
    for (tl_iter_seek_first(it); tl_iter_valid(it); tl_iter_next(it))
        assert_true(++steps <= 10 * m->n + 100);
    assert_true(tl_iter_status(it) == 0 || tl_iter_status(it) == TALUS_ECORRUPT);
    tl_iter_destroy(it);
    it = tbl_reader_iter(r, false);
    steps = 0;
    for (tl_iter_seek_last(it); tl_iter_valid(it); tl_iter_prev(it))
        assert_true(++steps <= 10 * m->n + 100);
    for (size_t i = 0; i < m->n; i += 7) {
        tl_iter_seek(it, tl_slice_make(m->e[i].k, m->e[i].klen));
        tl_iter_seek_for_prev(it, tl_slice_make(m->e[i].k, m->e[i].klen));
    }
    assert_true(tl_iter_status(it) == 0 || tl_iter_status(it) == TALUS_ECORRUPT);
    tl_iter_destroy(it);
    (void)tbl_reader_approx_offset(r, tl_slice_make(m->e[0].k, m->e[0].klen));
    tbl_reader_free(r);
}

/* Every block of the file: its handle (from the reader's own structures). */
static size_t list_blocks(tl_buf *file, tbl_handle *out, size_t max)
{
    tbl_reader *r = open_mem(file, NULL);
    size_t n = 0;
    out[n++] = r->footer.index;
    out[n++] = r->footer.metaindex;
    tbl_block_iter it;
    tbl_bi_init(&it, true, "x");
    tbl_bi_set(&it, &r->index, 0);
    for (tbl_bi_seek_first(&it); tbl_bi_valid(&it) && n < max; tbl_bi_next(&it))
        assert_int_equal(tbl_index_handle(r, tbl_bi_value(&it), 0, &out[n++]), 0);
    tbl_bi_free(&it);
    /* Meta blocks: what lies between the data and the index/metaindex. */
    uint64_t data_end = r->props.data_bytes;
    if (r->filter_mem && n < max)
        out[n++] = (tbl_handle){data_end, r->props.filter_bytes - TBL_TRAILER};
    /* The writer puts the properties between the index and the metaindex. */
    uint64_t props_off = r->footer.index.offset + r->footer.index.size + TBL_TRAILER;
    if (n < max)
        out[n++] = (tbl_handle){props_off, r->footer.metaindex.offset - props_off - TBL_TRAILER};
    tbl_reader_free(r);
    return n;
}

static void test_corrupt_behind_checksums(void **state)
{
    (void)state;
    static const int comps[] = {TALUS_COMPRESS_NONE, TALUS_COMPRESS_LZ4, TALUS_COMPRESS_ZSTD};
    for (int c = 0; c < 3; c++) {
        model m;
        tl_buf file = {0}, bad = {0};
        small_table(&m, comps[c], &file);
        tbl_handle hs[256];
        size_t nh = list_blocks(&file, hs, 256);
        assert_true(nh > 4);
        for (size_t b = 0; b < nh; b++) {
            for (int rep = 0; rep < 60; rep++) {
                tl_buf_set(&bad, file.data, file.len);
                uint8_t *p = bad.data + hs[b].offset;
                size_t len = (size_t)hs[b].size;
                int flips = 1 + (int)rndn(3);
                for (int i = 0; i < flips && len; i++)
                    p[rndn((uint32_t)len)] ^= (uint8_t)(1u << rndn(8));
                if (rep % 10 == 0) /* or damage the compression type */
                    p[len] = (uint8_t)rndn(4);
                tbl_trailer_encode(p + len, tl_slice_make(p, len), p[len]);
                exercise_unchecked(&m, &bad);
            }
        }
        tl_buf_free(&file);
        tl_buf_free(&bad);
        model_free(&m);
    }
}

static void test_footer_errors(void **state)
{
    (void)state;
    model m;
    tl_buf file = {0}, bad = {0};
    small_table(&m, TALUS_COMPRESS_NONE, &file);
    tbl_reader *r;
    tl_file *f;

    /* Wrong magic. */
    tl_buf_set(&bad, file.data, file.len);
    bad.data[bad.len - 1] ^= 0x40;
    f = memfile_new(&bad);
    assert_int_equal(tbl_reader_open(f, "x.sst", bad.len, NULL, &r), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "not a talus table"));
    assert_non_null(strstr(tl_errmsg(), "x.sst"));
    tl_file_close(f);

    /* Future format version in the footer. */
    tl_buf_set(&bad, file.data, file.len);
    tl_put_fixed32(bad.data + bad.len - 12, 4);
    f = memfile_new(&bad);
    assert_int_equal(tbl_reader_open(f, "x.sst", bad.len, NULL, &r), TALUS_EVERSION);
    printf("future version: %s\n", tl_errmsg());
    assert_non_null(strstr(tl_errmsg(), "table x.sst uses format V4; this build reads up to V3"));
    tl_file_close(f);

    /* Past, never-existing version. */
    tl_put_fixed32(bad.data + bad.len - 12, 1);
    f = memfile_new(&bad);
    assert_int_equal(tbl_reader_open(f, "x.sst", bad.len, NULL, &r), TALUS_ECORRUPT);
    tl_file_close(f);

    /* A table written as V4 by a V4-capable writer. */
    tbl_options o;
    tbl_options_init(&o);
    o.format_version = TBL_FORMAT_V4;
    tbl_props p;
    build(&m, &o, &bad, &p);
    tbl_props_free(&p);
    f = memfile_new(&bad);
    assert_int_equal(tbl_reader_open(f, "v4.sst", bad.len, NULL, &r), TALUS_EVERSION);
    assert_non_null(strstr(tl_errmsg(), "format V4"));
    tl_file_close(f);

    /* Shorter than a footer. */
    tl_buf_set(&bad, file.data, 20);
    f = memfile_new(&bad);
    assert_int_equal(tbl_reader_open(f, "s.sst", bad.len, NULL, &r), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "too short"));
    tl_file_close(f);

    tl_buf_free(&file);
    tl_buf_free(&bad);
    model_free(&m);
}

static void test_block_cache(void **state)
{
    (void)state;
    model m;
    model_gen(&m, 3000, 50, true);
    tbl_options o;
    tbl_options_init(&o);
    o.compression = TALUS_COMPRESS_LZ4;
    tl_buf file = {0};
    tbl_props p;
    build(&m, &o, &file, &p);
    tl_cache *cache = tl_cache_new(64u << 20);
    assert_non_null(cache);
    tbl_reader *r = open_mem(&file, cache);

    /* A compaction-style scan must not fill the cache. */
    size_t before = tl_cache_usage(cache);
    check_scans(r, &m, false, false);
    assert_int_equal(tl_cache_usage(cache), before);

    check_all(r, &m, 3000); /* fills the cache */
    assert_true(tl_cache_usage(cache) > 0);
    uint64_t preads = mem_preads;
    check_all(r, &m, 3000);
    check_scans(r, &m, false, false);
    assert_int_equal(mem_preads, preads); /* everything came from the cache */
    assert_true(tl_cache_hits(cache) > 0);

    /* A second reader of the same file gets its own cache keys. */
    tbl_reader *r2 = open_mem(&file, cache);
    check_gets(r2, &m, 500, false);
    tbl_reader_free(r2);
    tbl_reader_free(r);
    tl_cache_free(cache);
    tbl_props_free(&p);
    tl_buf_free(&file);
    model_free(&m);
}

static void test_posix_file_and_names(void **state)
{
    (void)state;
    char dir[] = "/tmp/talus-table-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    tbl_file_name(path, sizeof path, dir, 42);
    char want[256];
    snprintf(want, sizeof want, "%s/000042.sst", dir);
    assert_string_equal(path, want);
    tbl_file_name(path, sizeof path, "d", 12345678);
    assert_string_equal(path, "d/12345678.sst");
    tbl_file_name(path, sizeof path, dir, 7);

    model m;
    model_gen(&m, 5000, 100, true);
    tl_env *env = tl_env_posix();
    tl_file *f;
    assert_int_equal(tl_env_open_write(env, path, &f), 0);
    tbl_options o;
    tbl_options_init(&o);
    o.compression = TALUS_COMPRESS_ZSTD;
    tbl_builder *b;
    assert_int_equal(tbl_builder_new(&o, f, &b), 0);
    for (size_t i = 0; i < m.n; i++) {
        assert_int_equal(tbl_builder_add(b, tl_slice_make(m.e[i].k, m.e[i].klen),
                                         tl_slice_make(m.e[i].v, m.e[i].vlen)),
                         0);
        assert_true(tbl_builder_estimated_size(b) > 0);
    }
    tbl_props p;
    assert_int_equal(tbl_builder_finish(b, &p), 0);
    tbl_builder_free(b);
    assert_int_equal(tl_file_sync(f), 0);
    assert_int_equal(tl_file_close(f), 0);
    uint64_t size;
    assert_int_equal(tl_env_file_size(env, path, &size), 0);
    assert_int_equal(size, p.file_size);

    assert_int_equal(tl_env_open_read(env, path, &f), 0);
    tbl_reader *r;
    assert_int_equal(tbl_reader_open(f, path, size, NULL, &r), 0);
    check_all(r, &m, 3000);

    /* approx_offset grows with the key and stays within the data. */
    uint64_t last = 0;
    for (size_t i = 0; i < m.n; i += 97) {
        uint64_t off = tbl_reader_approx_offset(r, tl_slice_make(m.e[i].k, m.e[i].klen));
        assert_true(off >= last);
        assert_true(off <= p.data_bytes);
        last = off;
    }
    assert_int_equal(tbl_reader_approx_offset(r, tl_slice_make(m.e[0].k, m.e[0].klen)), 0);
    uint8_t hi[16];
    size_t hl = tl_ikey_encode(hi, (const uint8_t *)"zzzz", 4, 0, TL_TYPE_VALUE);
    assert_int_equal(tbl_reader_approx_offset(r, tl_slice_make(hi, hl)), p.data_bytes);
    tbl_reader_free(r);
    tbl_props_free(&p);
    model_free(&m);
    assert_int_equal(tl_env_remove(env, path), 0);
    assert_int_equal(tl_env_rmdir(env, dir), 0);
}

/* User keys that tie on the 8 bytes after their common prefix, so index
 * lookups must fall back to comparing whole keys among the tied entries. */
static void test_long_shared_prefixes(void **state)
{
    (void)state;
    model m;
    memset(&m, 0, sizeof m);
    for (uint32_t d = 0; d < 4; d++) {
        for (uint32_t i = 0; i < 300; i++) {
            uint8_t uk[40];
            int ul = sprintf((char *)uk, "A%uxxxxxxxxxxxxxxx%06u", d, i * 3);
            uint32_t nv = 1 + (i % 3);
            for (uint32_t j = 0; j < nv; j++)
                model_add(&m, uk, (size_t)ul, 1000 - j, TL_TYPE_VALUE, 10);
        }
    }
    /* model_get/check_get build absent keys with make_ukey: fine, they sort
     * after every "A..." key. */
    m.max_num = 50;
    tbl_options o;
    tbl_options_init(&o);
    o.block_size = 100;
    o.restart_interval = 2;
    round_trip(&m, &o, 3000);
    /* Every present key at a few seqnos. */
    tl_buf file = {0};
    tbl_props p;
    build(&m, &o, &file, &p);
    tbl_reader *r = open_mem(&file, NULL);
    for (size_t i = 0; i < m.n; i++) {
        size_t ul = m.e[i].klen - TL_IKEY_TRAILER;
        check_get(r, &m, m.e[i].k, ul, TL_SEQ_MAX, false);
        check_get(r, &m, m.e[i].k, ul, 999, false);
        check_get(r, &m, m.e[i].k, ul, 10, false);
        check_get(r, &m, m.e[i].k, ul - 1, TL_SEQ_MAX, false); /* absent: a prefix */
    }
    tbl_reader_free(r);
    tbl_props_free(&p);
    tl_buf_free(&file);
    model_free(&m);
}

typedef struct get_thread {
    tbl_reader *r;
    const model *m;
    uint64_t seed;
    int bad;
} get_thread;

static void *get_worker(void *arg)
{
    get_thread *g = arg;
    uint64_t x = g->seed;
    tl_buf v = {0};
    for (int q = 0; q < 20000; q++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const ent *e = &g->m->e[(x >> 33) % g->m->n];
        size_t ul = e->klen - TL_IKEY_TRAILER;
        uint64_t seq = tl_ikey_seq(tl_slice_make(e->k, e->klen));
        uint8_t type;
        uint64_t got;
        int rc = tbl_reader_get(g->r, tl_slice_make(e->k, ul), seq, &type, &v, &got);
        if (rc != 1 || got != seq || v.len != e->vlen || (v.len && memcmp(v.data, e->v, v.len)))
            g->bad++;
    }
    tl_buf_free(&v);
    return NULL;
}

/* Gets from several threads on one reader sharing a small block cache
 * (so blocks are inserted, evicted and re-read concurrently). */
static void test_concurrent_gets(void **state)
{
    (void)state;
    model m;
    model_gen(&m, 20000, 60, true);
    tbl_options o;
    tbl_options_init(&o);
    o.compression = TALUS_COMPRESS_ZSTD;
    tl_buf file = {0};
    tbl_props p;
    build(&m, &o, &file, &p);
    tl_cache *cache = tl_cache_new(256u << 10);
    assert_non_null(cache);
    tbl_reader *r = open_mem(&file, cache);
    pthread_t th[4];
    get_thread g[4];
    for (int i = 0; i < 4; i++) {
        g[i] = (get_thread){r, &m, (uint64_t)i * 7919u + 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, get_worker, &g[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(g[i].bad, 0);
    }
    tbl_reader_free(r);
    tl_cache_free(cache);
    tbl_props_free(&p);
    tl_buf_free(&file);
    model_free(&m);
}

static void test_options_init(void **state)
{
    (void)state;
    tbl_options o;
    memset(&o, 0xab, sizeof o);
    tbl_options_init(&o);
    assert_int_equal(o.block_size, 4096);
    assert_int_equal(o.restart_interval, 16);
    assert_int_equal(o.bloom_bits_per_key, 10);
    assert_int_equal(o.compression, TALUS_COMPRESS_NONE);
    assert_int_equal(o.compression_level, 0);
    assert_int_equal(o.format_version, TBL_FORMAT_V3);
}

int main(void)
{
    uint64_t seed = getenv("TEST_SEED") ? strtoull(getenv("TEST_SEED"), NULL, 0) : 0x5eedu;
    printf("test_table seed %llu (set TEST_SEED to replay)\n", (unsigned long long)seed);
    rng_state = seed;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_init),
        cmocka_unit_test(test_sizes_and_compression),
        cmocka_unit_test(test_exactly_1000_and_100k),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_versions_across_blocks),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_builder_rejects),
        cmocka_unit_test(test_corrupt_every_byte),
        cmocka_unit_test(test_corrupt_behind_checksums),
        cmocka_unit_test(test_footer_errors),
        cmocka_unit_test(test_block_cache),
        cmocka_unit_test(test_posix_file_and_names),
        cmocka_unit_test(test_long_shared_prefixes),
        cmocka_unit_test(test_concurrent_gets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
