/*
 * table_model.c - helpers for test_table.c: an in-memory file, a sorted
 * model of a table's entries, and checks of a reader (gets, scans, seeks,
 * properties) against the model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "table_model.h"
#include "util/coding.h"
#include "util/err.h"

uint64_t rng_state;

uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint32_t rndn(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

/* ---- An in-memory file, counting reads -------------------------------- */

typedef struct memfile {
    tl_file base;
    tl_buf *buf;
} memfile;

uint64_t mem_preads;

static int mem_pread(tl_file *f, void *b, size_t n, uint64_t off, size_t *got)
{
    memfile *m = (memfile *)f;
    mem_preads++;
    *got = 0;
    if (off >= m->buf->len)
        return 0;
    size_t avail = m->buf->len - (size_t)off;
    *got = n < avail ? n : avail;
    memcpy(b, m->buf->data + off, *got);
    return 0;
}

static int mem_append(tl_file *f, const void *b, size_t n)
{
    return tl_buf_append(((memfile *)f)->buf, b, n);
}

static int mem_size(tl_file *f, uint64_t *out)
{
    *out = ((memfile *)f)->buf->len;
    return 0;
}

static int mem_close(tl_file *f)
{
    free(f);
    return 0;
}

static const tl_env_ops mem_ops = {
    .pread = mem_pread, .append = mem_append, .size = mem_size, .close = mem_close};
static tl_env mem_env = {&mem_ops};

tl_file *memfile_new(tl_buf *buf)
{
    memfile *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->base.env = &mem_env;
    m->buf = buf;
    return &m->base;
}

/* ---- The model --------------------------------------------------------- */

size_t make_ukey(uint8_t *dst, uint32_t num)
{
    int n = sprintf((char *)dst, "user%08u", num);
    size_t extra = (num * 7u) % 5u; /* vary lengths */
    memset(dst + n, 'x', extra);
    return (size_t)n + extra;
}

void model_add(model *m, const uint8_t *uk, size_t ulen, uint64_t seq, uint8_t type, size_t vlen)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->e = realloc(m->e, m->cap * sizeof *m->e);
        assert_non_null(m->e);
    }
    ent *e = &m->e[m->n++];
    e->k = malloc(ulen + TL_IKEY_TRAILER);
    e->klen = tl_ikey_encode(e->k, uk, ulen, seq, type);
    e->vlen = vlen;
    e->v = malloc(vlen ? vlen : 1);
    for (size_t i = 0; i < vlen; i++)
        e->v[i] = (uint8_t)("abcdefgh"[(seq + i) % 8] ^ (i % 3 == 0 ? (uint8_t)rnd() : 0));
}

/* nusers user keys (numbers with random gaps), some with many versions;
 * `spanning` forces a few keys with enough versions to cross blocks. */
void model_gen(model *m, size_t nusers, size_t maxv, bool spanning)
{
    memset(m, 0, sizeof *m);
    uint32_t num = 0;
    for (size_t i = 0; i < nusers; i++) {
        num += 1 + rndn(3);
        uint8_t uk[32];
        size_t ulen = make_ukey(uk, num);
        uint32_t r = rndn(100), nv = 1;
        if (r >= 70)
            nv = 2 + rndn(3);
        if (r >= 95)
            nv = 5 + rndn(6);
        if (spanning && r == 99)
            nv = 30 + rndn(40);
        uint64_t seq = (rnd() % (1ull << 40)) + 1000;
        for (uint32_t j = 0; j < nv; j++) {
            seq -= 1 + rndn(5);
            uint8_t type = TL_TYPE_VALUE;
            uint32_t t = rndn(40);
            if (t < 4)
                type = TL_TYPE_TOMBSTONE;
            else if (t == 4)
                type = TL_TYPE_WEAK_TOMBSTONE;
            size_t vlen = type == TL_TYPE_VALUE ? rndn((uint32_t)maxv + 1) : 0;
            model_add(m, uk, ulen, seq, type, vlen);
        }
    }
    m->max_num = num + 3;
}

void model_free(model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].k);
        free(m->e[i].v);
    }
    free(m->e);
}

static size_t model_lower_bound(const model *m, tl_slice t)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tl_ikey_cmp_raw(m->e[mid].k, m->e[mid].klen, t.data, t.len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- Building and opening -------------------------------------------- */

void build(const model *m, const tbl_options *o, tl_buf *file, tbl_props *props)
{
    tl_buf_clear(file);
    tl_file *f = memfile_new(file);
    tbl_builder *b;
    assert_int_equal(tbl_builder_new(o, f, &b), 0);
    for (size_t i = 0; i < m->n; i++) {
        int rc = tbl_builder_add(b, tl_slice_make(m->e[i].k, m->e[i].klen),
                                 tl_slice_make(m->e[i].v, m->e[i].vlen));
        if (rc)
            fail_msg("add %zu: %s", i, tl_errmsg());
    }
    assert_int_equal(tbl_builder_entries(b), m->n);
    assert_int_equal(tbl_builder_finish(b, props), 0);
    tbl_builder_free(b);
    tl_file_close(f);
    assert_int_equal(props->file_size, file->len);
}

tbl_reader *open_mem(tl_buf *file, tl_cache *cache)
{
    tl_file *f = memfile_new(file);
    tbl_reader *r;
    int rc = tbl_reader_open(f, "mem.sst", file->len, cache, &r);
    if (rc)
        fail_msg("open: %d %s", rc, tl_errmsg());
    return r;
}

void check_props(const model *m, const tbl_options *o, const tbl_props *p, const tbl_props *built,
                 uint64_t file_size)
{
    uint64_t dels = 0, kb = 0, vb = 0, minseq = UINT64_MAX, maxseq = 0;
    for (size_t i = 0; i < m->n; i++) {
        tl_slice k = tl_slice_make(m->e[i].k, m->e[i].klen);
        dels += tl_vtype_is_delete(tl_ikey_type(k));
        kb += k.len;
        vb += m->e[i].vlen;
        uint64_t s = tl_ikey_seq(k);
        minseq = s < minseq ? s : minseq;
        maxseq = s > maxseq ? s : maxseq;
    }
    const tbl_props *ps[2] = {p, built};
    for (int i = 0; i < 2; i++) {
        const tbl_props *q = ps[i];
        assert_int_equal(q->format_version, o->format_version);
        assert_int_equal(q->compression, (uint32_t)o->compression);
        assert_int_equal(q->num_entries, m->n);
        assert_int_equal(q->num_deletions, dels);
        assert_int_equal(q->raw_key_bytes, kb);
        assert_int_equal(q->raw_value_bytes, vb);
        assert_int_equal(q->file_size, file_size);
        assert_true(q->num_data_blocks >= (m->n ? 1u : 0u));
        assert_true(q->data_bytes + q->index_bytes + q->filter_bytes < file_size);
        assert_true(o->bloom_bits_per_key == 0 || q->filter_bytes > 0);
        if (m->n) {
            assert_int_equal(q->min_seq, minseq);
            assert_int_equal(q->max_seq, maxseq);
            assert_int_equal(q->smallest_len, m->e[0].klen);
            assert_memory_equal(q->smallest, m->e[0].k, m->e[0].klen);
            assert_int_equal(q->largest_len, m->e[m->n - 1].klen);
            assert_memory_equal(q->largest, m->e[m->n - 1].k, m->e[m->n - 1].klen);
        }
    }
    assert_int_equal(p->num_data_blocks, built->num_data_blocks);
    assert_int_equal(p->data_bytes, built->data_bytes);
    assert_int_equal(p->index_bytes, built->index_bytes);
    assert_int_equal(p->filter_bytes, built->filter_bytes);
}

/* ---- Checking a reader against the model ------------------------------ */

/* Expected answer of get(ukey, seq): index of the entry or -1. */
static long model_get(const model *m, const uint8_t *uk, size_t ulen, uint64_t seq)
{
    uint8_t t[64];
    size_t tl = tl_ikey_encode(t, uk, ulen, seq, TL_TYPE_VALUE);
    size_t i = model_lower_bound(m, tl_slice_make(t, tl));
    if (i < m->n && tl_bytes_cmp(m->e[i].k, m->e[i].klen - TL_IKEY_TRAILER, uk, ulen) == 0)
        return (long)i;
    return -1;
}

/* Compare one get with the model. If tolerate, an error is acceptable
 * (corrupt input); a wrong answer never is. */
void check_get(tbl_reader *r, const model *m, const uint8_t *uk, size_t ulen, uint64_t seq,
               bool tolerate)
{
    uint8_t type = 0;
    uint64_t got_seq = 0;
    tl_buf v = {0};
    int rc = tbl_reader_get(r, tl_slice_make(uk, ulen), seq, &type, &v, &got_seq);
    long want = model_get(m, uk, ulen, seq);
    if (rc < 0) {
        if (!tolerate)
            fail_msg("get error %d: %s", rc, tl_errmsg());
        assert_int_equal(rc, TALUS_ECORRUPT);
        tl_buf_free(&v);
        return;
    }
    if (want < 0) {
        assert_int_equal(rc, 0);
    } else {
        const ent *e = &m->e[want];
        tl_slice k = tl_slice_make(e->k, e->klen);
        assert_int_equal(rc, 1);
        assert_int_equal(type, tl_ikey_type(k));
        assert_int_equal(got_seq, tl_ikey_seq(k));
        assert_int_equal(v.len, e->vlen);
        if (v.len)
            assert_memory_equal(v.data, e->v, v.len);
        if (!tolerate)
            assert_true(tbl_reader_may_contain(r, tl_slice_make(uk, ulen)));
    }
    tl_buf_free(&v);
}

static bool at_entry(tl_iter *it, const model *m, size_t i)
{
    if (!tl_iter_valid(it))
        return false;
    tl_slice k = tl_iter_key(it), v = tl_iter_value(it);
    assert_int_equal(k.len, m->e[i].klen);
    assert_memory_equal(k.data, m->e[i].k, k.len);
    assert_int_equal(v.len, m->e[i].vlen);
    if (v.len)
        assert_memory_equal(v.data, m->e[i].v, v.len);
    return true;
}

/* Full scans both ways; with tolerate, an early stop must carry ECORRUPT. */
void check_scans(tbl_reader *r, const model *m, bool fill, bool tolerate)
{
    tl_iter *it = tbl_reader_iter(r, fill);
    assert_non_null(it);
    assert_false(tl_iter_valid(it));
    size_t i = 0;
    for (tl_iter_seek_first(it); i < m->n && at_entry(it, m, i); tl_iter_next(it))
        i++;
    if (i < m->n || tl_iter_status(it)) {
        if (!tolerate)
            fail_msg("forward scan stopped at %zu of %zu: %s", i, m->n, tl_errmsg());
        assert_int_equal(tl_iter_status(it), TALUS_ECORRUPT);
    } else {
        assert_false(tl_iter_valid(it));
    }
    tl_iter_destroy(it);
    it = tbl_reader_iter(r, fill);
    i = m->n;
    for (tl_iter_seek_last(it); i > 0 && at_entry(it, m, i - 1); tl_iter_prev(it))
        i--;
    if (i > 0 || tl_iter_status(it)) {
        if (!tolerate)
            fail_msg("backward scan stopped at %zu: %s", i, tl_errmsg());
        assert_int_equal(tl_iter_status(it), TALUS_ECORRUPT);
    } else {
        assert_false(tl_iter_valid(it));
    }
    tl_iter_destroy(it);
}

static void random_target(const model *m, uint8_t *t, size_t *tl)
{
    if (m->n && rndn(2)) {
        const ent *e = &m->e[rndn((uint32_t)m->n)];
        memcpy(t, e->k, e->klen);
        *tl = e->klen;
        uint64_t s = tl_ikey_seq(tl_slice_make(t, *tl));
        tl_put_fixed64(t + *tl - 9, s + rndn(3) - 1);
    } else {
        uint8_t uk[32];
        size_t ul = make_ukey(uk, rndn(m->max_num + 1));
        *tl = tl_ikey_encode(t, uk, ul, rnd() % (1ull << 41), TL_TYPE_VALUE);
    }
}

static void check_seeks(tbl_reader *r, const model *m, int nq)
{
    tl_iter *it = tbl_reader_iter(r, true);
    for (int q = 0; q < nq; q++) {
        uint8_t t[64];
        size_t tl;
        random_target(m, t, &tl);
        tl_slice ts = tl_slice_make(t, tl);
        size_t lb = model_lower_bound(m, ts);
        tl_iter_seek(it, ts);
        if (lb == m->n)
            assert_false(tl_iter_valid(it));
        else
            assert_true(at_entry(it, m, lb));
        size_t up =
            lb < m->n && tl_ikey_cmp_raw(m->e[lb].k, m->e[lb].klen, t, tl) == 0 ? lb + 1 : lb;
        tl_iter_seek_for_prev(it, ts);
        if (up == 0) {
            assert_false(tl_iter_valid(it));
            continue;
        }
        assert_true(at_entry(it, m, up - 1));
        size_t pos = up - 1;
        for (int s = 0; s < 40; s++) { /* random walk across block edges */
            if (rndn(2)) {
                tl_iter_next(it);
                if (++pos == m->n) {
                    assert_false(tl_iter_valid(it));
                    break;
                }
            } else {
                tl_iter_prev(it);
                if (pos-- == 0) {
                    assert_false(tl_iter_valid(it));
                    break;
                }
            }
            assert_true(at_entry(it, m, pos));
        }
    }
    assert_int_equal(tl_iter_status(it), 0);
    tl_iter_destroy(it);
}

void check_gets(tbl_reader *r, const model *m, int nq, bool tolerate)
{
    for (int q = 0; q < nq; q++) {
        uint8_t uk[32];
        size_t ul;
        uint64_t seq;
        if (m->n && rndn(4)) {
            const ent *e = &m->e[rndn((uint32_t)m->n)];
            ul = e->klen - TL_IKEY_TRAILER;
            memcpy(uk, e->k, ul);
            uint64_t s = tl_ikey_seq(tl_slice_make(e->k, e->klen));
            uint32_t c = rndn(4);
            seq = c == 0 ? TL_SEQ_MAX : c == 1 ? s : c == 2 ? s - 1 : s + 1;
        } else {
            ul = make_ukey(uk, rndn(m->max_num + 1));
            seq = rndn(2) ? TL_SEQ_MAX : rnd() % (1ull << 41);
        }
        check_get(r, m, uk, ul, seq, tolerate);
    }
}

void check_all(tbl_reader *r, const model *m, int nq)
{
    check_gets(r, m, nq, false);
    check_scans(r, m, true, false);
    check_seeks(r, m, nq / 4 + 1);
}

/* Build with o, reopen, compare everything. */
void round_trip(const model *m, const tbl_options *o, int nq)
{
    tl_buf file = {0};
    tbl_props built;
    build(m, o, &file, &built);
    tbl_reader *r = open_mem(&file, NULL);
    check_props(m, o, tbl_reader_props(r), &built, file.len);
    check_all(r, m, nq);
    tbl_reader_free(r);
    tbl_props_free(&built);
    tl_buf_free(&file);
}
