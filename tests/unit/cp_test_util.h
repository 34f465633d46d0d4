/*
 * cp_test_util.h - helpers shared by the compaction unit tests: an
 * array-backed internal iterator, internal-key building, temp directories.
 * Everything is static inline so each test program takes what it uses.
 */
#ifndef CP_TEST_UTIL_H
#define CP_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "talus.h"
#include "util/ikey.h"
#include "util/iter.h"
#include "version/version.h"

/* ---- Internal keys ------------------------------------------------------ */

/* An internal key for (ukey, seq, type) in a malloc'd buffer. */
static inline uint8_t *cpt_ikey(const char *ukey, uint64_t seq, uint8_t type, size_t *len)
{
    size_t ul = strlen(ukey);
    uint8_t *k = malloc(ul + TL_IKEY_TRAILER);
    *len = tl_ikey_encode(k, (const uint8_t *)ukey, ul, seq, type);
    return k;
}

/* A ver_file covering user keys [lo, hi] (lo@seq .. hi@seq). */
static inline ver_file *cpt_file(uint64_t number, const char *lo, const char *hi, uint64_t size,
                                 uint64_t seq)
{
    size_t ll, hl;
    uint8_t *a = cpt_ikey(lo, seq, TL_TYPE_VALUE, &ll);
    uint8_t *b = cpt_ikey(hi, seq, TL_TYPE_VALUE, &hl);
    ver_file *f =
        ver_file_new(number, size, tl_slice_make(a, ll), tl_slice_make(b, hl), seq, seq, 1, 0);
    free(a);
    free(b);
    return f;
}

/* A version built by hand (no version set): files[l] arrays are malloc'd and
 * the version owns one ref per file; ver_version_unref frees it all. */
static inline ver_version *cpt_version(int num_levels)
{
    ver_version *v = calloc(1, sizeof *v);
    atomic_init(&v->refs, 1);
    v->num_levels = num_levels;
    return v;
}

/* Append f (its ref moves to v) to level l. */
static inline void cpt_add(ver_version *v, int l, ver_file *f)
{
    v->files[l] = realloc(v->files[l], (v->nfiles[l] + 1) * sizeof *v->files[l]);
    v->files[l][v->nfiles[l]++] = f;
}

/* ---- Array iterator ----------------------------------------------------- */

typedef struct cpt_ent {
    uint8_t *k;
    size_t klen;
    uint8_t *v;
    size_t vlen;
} cpt_ent;

typedef struct cpt_arr_iter {
    tl_iter base;
    const cpt_ent *e;
    size_t n;
    size_t pos;     /* n: invalid */
    size_t fail_at; /* reaching this index fails with EIO (SIZE_MAX: never) */
    int status;
} cpt_arr_iter;

static inline void cpt_arr_check(cpt_arr_iter *a)
{
    if (a->pos < a->n && a->pos == a->fail_at) {
        a->pos = a->n;
        a->status = TALUS_EIO;
    }
}

static inline void cpt_arr_seek_first(tl_iter *it)
{
    cpt_arr_iter *a = (cpt_arr_iter *)it;
    a->status = 0;
    a->pos = 0;
    cpt_arr_check(a);
}

static inline void cpt_arr_seek_last(tl_iter *it)
{
    cpt_arr_iter *a = (cpt_arr_iter *)it;
    a->status = 0;
    a->pos = a->n ? a->n - 1 : 0;
    cpt_arr_check(a);
}

static inline void cpt_arr_seek(tl_iter *it, tl_slice t)
{
    cpt_arr_iter *a = (cpt_arr_iter *)it;
    a->status = 0;
    a->pos = 0;
    while (a->pos < a->n && tl_ikey_cmp_raw(a->e[a->pos].k, a->e[a->pos].klen, t.data, t.len) < 0)
        a->pos++;
    cpt_arr_check(a);
}

static inline void cpt_arr_seek_for_prev(tl_iter *it, tl_slice t)
{
    cpt_arr_iter *a = (cpt_arr_iter *)it;
    a->status = 0;
    size_t p = a->n;
    while (p > 0 && tl_ikey_cmp_raw(a->e[p - 1].k, a->e[p - 1].klen, t.data, t.len) > 0)
        p--;
    a->pos = p ? p - 1 : a->n;
    cpt_arr_check(a);
}

static inline void cpt_arr_next(tl_iter *it)
{
    cpt_arr_iter *a = (cpt_arr_iter *)it;
    if (a->pos < a->n)
        a->pos++;
    cpt_arr_check(a);
}

static inline void cpt_arr_prev(tl_iter *it)
{
    cpt_arr_iter *a = (cpt_arr_iter *)it;
    a->pos = a->pos == 0 ? a->n : a->pos - 1;
    cpt_arr_check(a);
}

static inline bool cpt_arr_valid(const tl_iter *it)
{
    const cpt_arr_iter *a = (const cpt_arr_iter *)it;
    return a->pos < a->n;
}

static inline tl_slice cpt_arr_key(const tl_iter *it)
{
    const cpt_arr_iter *a = (const cpt_arr_iter *)it;
    return tl_slice_make(a->e[a->pos].k, a->e[a->pos].klen);
}

static inline tl_slice cpt_arr_value(const tl_iter *it)
{
    const cpt_arr_iter *a = (const cpt_arr_iter *)it;
    return tl_slice_make(a->e[a->pos].v, a->e[a->pos].vlen);
}

static inline int cpt_arr_status(const tl_iter *it)
{
    return ((const cpt_arr_iter *)it)->status;
}

static inline void cpt_arr_destroy(tl_iter *it)
{
    free(it);
}

static const tl_iter_ops cpt_arr_ops = {
    cpt_arr_seek_first, cpt_arr_seek_last, cpt_arr_seek,    cpt_arr_seek_for_prev,
    cpt_arr_next,       cpt_arr_prev,      cpt_arr_valid,   cpt_arr_key,
    cpt_arr_value,      cpt_arr_status,    cpt_arr_destroy,
};

/* Iterator over e[0..n) (sorted by internal key; borrowed). */
static inline tl_iter *cpt_arr_iter_new(const cpt_ent *e, size_t n, size_t fail_at)
{
    cpt_arr_iter *a = calloc(1, sizeof *a);
    a->base.ops = &cpt_arr_ops;
    a->e = e;
    a->n = n;
    a->pos = n;
    a->fail_at = fail_at;
    return &a->base;
}

static inline int cpt_ent_cmp(const void *x, const void *y)
{
    const cpt_ent *a = x, *b = y;
    return tl_ikey_cmp_raw(a->k, a->klen, b->k, b->klen);
}

/* ---- Temp directories ---------------------------------------------------- */

static inline char *cpt_tmpdir(void)
{
    char *d = strdup("/tmp/talus-cp-XXXXXX");
    if (!mkdtemp(d)) {
        free(d);
        return NULL;
    }
    return d;
}

/* Remove a directory and the plain files in it. */
static inline void cpt_rmtree(const char *dir)
{
    char **names = NULL;
    size_t n = 0;
    tl_env *e = tl_env_posix();
    if (tl_env_list_dir(e, dir, &names, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            tl_env_remove(e, p);
        }
        tl_env_free_names(names, n);
    }
    tl_env_rmdir(e, dir);
}

#endif
