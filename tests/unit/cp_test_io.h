/*
 * cp_test_io.h - fixture and table helpers shared by the compaction tests
 * that write real tables: a temp directory behind a fault-injecting env, a
 * version set for file numbers, entry lists, and reading tables back with
 * their metadata checked. Static inline: each test takes what it uses.
 * Include after <cmocka.h>.
 */
#ifndef CP_TEST_IO_H
#define CP_TEST_IO_H

#include "cache/cache.h"
#include "compaction/compaction.h"
#include "cp_test_util.h"
#include "table/table.h"
#include "util/env.h"

/* ---- Fixture ---------------------------------------------------------- */

typedef struct fx {
    char *dir;   /* tables */
    char *vsdir; /* the version set (file numbers only) */
    ver_set *vs;
    tl_fault_env *fe;
    tl_env *env; /* tables go through this one */
} fx;

static inline void fx_open(fx *f)
{
    memset(f, 0, sizeof *f);
    f->dir = cpt_tmpdir();
    f->vsdir = cpt_tmpdir();
    assert_non_null(f->dir);
    assert_non_null(f->vsdir);
    ver_set_options o = {.env = tl_env_posix(),
                         .dir = f->vsdir,
                         .num_levels = 4,
                         .create_if_missing = true,
                         .max_format_version = 3};
    assert_int_equal(ver_set_open(&o, &f->vs), 0);
    f->fe = tl_fault_env_new(tl_env_posix());
    f->env = tl_fault_env_env(f->fe);
}

static inline void fx_close(fx *f)
{
    ver_set_close(f->vs);
    tl_fault_env_free(f->fe);
    cpt_rmtree(f->dir);
    cpt_rmtree(f->vsdir);
    free(f->dir);
    free(f->vsdir);
}

static inline cp_ctx fx_ctx(fx *f)
{
    cp_ctx c;
    memset(&c, 0, sizeof c);
    c.env = f->env;
    c.dir = f->dir;
    c.vs = f->vs;
    tbl_options_init(&c.topts);
    c.topts.block_size = 256;
    return c;
}

/* Names in the table directory, counted by kind. */
static inline void dir_counts(fx *f, size_t *sst, size_t *other)
{
    char **names = NULL;
    size_t n = 0;
    *sst = *other = 0;
    /* Through the fault env: it parks removed files under hidden names
     * until the directory is synced, and hides them from listings. */
    assert_int_equal(tl_env_list_dir(f->env, f->dir, &names, &n), 0);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l > 4 && strcmp(names[i] + l - 4, ".sst") == 0)
            (*sst)++;
        else
            (*other)++;
    }
    tl_env_free_names(names, n);
}

/* ---- Entries ------------------------------------------------------------ */

typedef struct ents {
    cpt_ent *e;
    size_t n, cap;
} ents;

static inline void ents_push(ents *s, tl_slice k, tl_slice v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->e = realloc(s->e, s->cap * sizeof *s->e);
    }
    cpt_ent *e = &s->e[s->n++];
    e->k = malloc(k.len);
    memcpy(e->k, k.data, k.len);
    e->klen = k.len;
    e->v = malloc(v.len ? v.len : 1);
    if (v.len)
        memcpy(e->v, v.data, v.len);
    e->vlen = v.len;
}

static inline void ents_add(ents *s, const char *ukey, uint64_t seq, uint8_t type, const char *val)
{
    size_t kl;
    uint8_t *k = cpt_ikey(ukey, seq, type, &kl);
    ents_push(s, tl_slice_make(k, kl), tl_slice_make(val, strlen(val)));
    free(k);
}

static inline void ents_sort(ents *s)
{
    qsort(s->e, s->n, sizeof *s->e, cpt_ent_cmp);
}

static inline void ents_free(ents *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].k);
        free(s->e[i].v);
    }
    free(s->e);
    memset(s, 0, sizeof *s);
}

/* Read table f back, checking its metadata against its content. */
static inline void read_table(fx *fxp, const ver_file *vf, ents *out)
{
    char name[4096];
    tbl_file_name(name, sizeof name, fxp->dir, vf->number);
    uint64_t size;
    assert_int_equal(tl_env_file_size(tl_env_posix(), name, &size), 0);
    assert_int_equal(size, vf->size);
    tl_file *file;
    assert_int_equal(tl_env_open_read(tl_env_posix(), name, &file), 0);
    tbl_reader *r;
    assert_int_equal(tbl_reader_open(file, name, size, NULL, &r), 0);
    tl_iter *it = tbl_reader_iter(r, false);
    size_t first = out->n;
    uint64_t lo = UINT64_MAX, hi = 0, dels = 0;
    for (tl_iter_seek_first(it); tl_iter_valid(it); tl_iter_next(it)) {
        tl_slice k = tl_iter_key(it);
        uint64_t s = tl_ikey_seq(k);
        lo = s < lo ? s : lo;
        hi = s > hi ? s : hi;
        dels += tl_vtype_is_delete(tl_ikey_type(k));
        ents_push(out, k, tl_iter_value(it));
    }
    assert_int_equal(tl_iter_status(it), 0);
    tl_iter_destroy(it);
    tbl_reader_free(r);
    assert_true(out->n > first);
    const cpt_ent *a = &out->e[first], *b = &out->e[out->n - 1];
    assert_int_equal(vf->smallest_len, a->klen);
    assert_memory_equal(vf->smallest, a->k, a->klen);
    assert_int_equal(vf->largest_len, b->klen);
    assert_memory_equal(vf->largest, b->k, b->klen);
    assert_int_equal(vf->entries, out->n - first);
    assert_int_equal(vf->deletions, dels);
    assert_int_equal(vf->min_seq, lo);
    assert_int_equal(vf->max_seq, hi);
}

/* Read every output table in order; check the tables are in key order and
 * that no user key straddles two of them. */
static inline void read_output(fx *fxp, const cp_output *out, ents *all)
{
    for (size_t i = 0; i < out->nfiles; i++) {
        size_t before = all->n;
        read_table(fxp, out->files[i], all);
        if (before > 0) {
            const cpt_ent *p = &all->e[before - 1], *q = &all->e[before];
            assert_true(
                tl_bytes_cmp(p->k, p->klen - TL_IKEY_TRAILER, q->k, q->klen - TL_IKEY_TRAILER) < 0);
        }
    }
    for (size_t i = 1; i < all->n; i++)
        assert_true(cpt_ent_cmp(&all->e[i - 1], &all->e[i]) < 0);
}

/* "k@10W k@8V=b ...": a readable picture of entries. */
static inline char *ents_str(const ents *s)
{
    size_t cap = 64, len = 0;
    char *str = malloc(cap);
    str[0] = 0;
    for (size_t i = 0; i < s->n; i++) {
        const cpt_ent *e = &s->e[i];
        tl_slice k = tl_slice_make(e->k, e->klen);
        char buf[512];
        const char *tc = "?VTWMBR";
        uint8_t t = tl_ikey_type(k);
        int n = snprintf(buf, sizeof buf, "%s%.*s@%llu%c", i ? " " : "",
                         (int)(k.len - TL_IKEY_TRAILER), (const char *)k.data,
                         (unsigned long long)tl_ikey_seq(k), t <= 6 ? tc[t] : '?');
        if (t == TL_TYPE_VALUE || t == TL_TYPE_MERGE)
            n += snprintf(buf + n, sizeof buf - (size_t)n, "=%.*s", (int)e->vlen,
                          (const char *)e->v);
        while (len + (size_t)n + 1 > cap)
            str = realloc(str, cap *= 2);
        memcpy(str + len, buf, (size_t)n + 1);
        len += (size_t)n;
    }
    return str;
}

static inline bool below_all(void *arg, tl_slice ukey)
{
    (void)arg;
    (void)ukey;
    return true;
}

/* Run cp_write_tables over `in` and return the output as a string. */
#endif
