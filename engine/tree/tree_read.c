/*
 * tree_read.c - point reads and the merged internal iterator of a view.
 * Search order follows the invariant in tree.h: memtables newest first,
 * L0 newest first, then one file per deeper level.
 */
#include "tree/tree_internal.h"

#include <stdlib.h>

#include "util/err.h"
#include "util/ikey.h"

static bool in_file_range(const ver_file *f, tl_slice ukey)
{
    tl_slice lo = tl_slice_make(f->smallest, f->smallest_len - TL_IKEY_TRAILER);
    tl_slice hi = tl_slice_make(f->largest, f->largest_len - TL_IKEY_TRAILER);
    return tl_slice_cmp(ukey, lo) >= 0 && tl_slice_cmp(ukey, hi) <= 0;
}

/* 1 found (decided: *type set, value in *value), 0 keep looking, < 0 error. */
static int lookup_file(tr_tree *t, const ver_file *f, tl_slice ukey, uint64_t read_seq,
                       uint8_t *type, tl_buf *value)
{
    if (f->min_seq > read_seq || !in_file_range(f, ukey))
        return 0;
    uint64_t seq;
    return tl_table_cache_lookup(t->tc, f->number, f->size, ukey, read_seq, type, value, &seq);
}

static int lookup_version(tr_tree *t, const ver_version *v, tl_slice ukey, uint64_t read_seq,
                          uint8_t *type, tl_buf *value)
{
    for (size_t i = 0; i < v->nfiles[0]; i++) {
        int rc = lookup_file(t, v->files[0][i], ukey, read_seq, type, value);
        if (rc != 0)
            return rc;
    }
    for (int l = 1; l < v->num_levels; l++) {
        if (v->nfiles[l] == 0)
            continue;
        size_t i = ver_version_find_file(v, l, ukey);
        if (i >= v->nfiles[l])
            continue;
        int rc = lookup_file(t, v->files[l][i], ukey, read_seq, type, value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int lookup_memtable(mt_memtable *m, tl_slice ukey, uint64_t read_seq, uint8_t *type,
                           tl_buf *value)
{
    tl_slice v;
    uint64_t seq;
    if (!mt_get(m, ukey, read_seq, type, &v, &seq))
        return 0;
    if (tl_vtype_is_delete(*type))
        return 1;
    TRY(tl_buf_set(value, v.data, v.len));
    return 1;
}

int tr_get_entry(tr_tree *t, tl_slice ukey, uint64_t read_seq, tl_buf *value, uint8_t *out_type)
{
    tr_view *vw = tr_view_acquire(t);
    int rc = tr_view_get(t, vw, ukey, read_seq, value, out_type);
    tr_view_release(vw);
    return rc;
}

int tr_view_get(tr_tree *t, tr_view *vw, tl_slice ukey, uint64_t read_seq, tl_buf *value,
                uint8_t *out_type)
{
    uint8_t type = 0;
    int rc = lookup_memtable(vw->mem, ukey, read_seq, &type, value);
    for (int i = 0; rc == 0 && i < vw->nimm; i++)
        rc = lookup_memtable(vw->imm[i], ukey, read_seq, &type, value);
    if (rc == 0)
        rc = lookup_version(t, vw->v, ukey, read_seq, &type, value);
    if (rc <= 0)
        return rc;
    if (tl_vtype_is_delete(type))
        return 0;
    if (type != TL_TYPE_VALUE && type != TL_TYPE_BLOB)
        return tl_err(TALUS_ECORRUPT, "tree %s: value of unsupported type %u", t->name, type);
    *out_type = type;
    return 1;
}

int tr_get(tr_tree *t, tl_slice ukey, uint64_t read_seq, tl_buf *value)
{
    uint8_t type;
    int rc = tr_get_entry(t, ukey, read_seq, value, &type);
    if (rc <= 0 || type != TL_TYPE_BLOB)
        return rc;
    tl_buf ref = *value; /* the reference; the value replaces it */
    *value = (tl_buf){0};
    rc = tr_blob_read_all(t, tl_buf_slice(&ref), value);
    tl_buf_free(&ref);
    return rc < 0 ? rc : 1;
}

tl_iter *tr_view_iter(tr_tree *t, tr_view *vw, bool fill_cache)
{
    const ver_version *v = vw->v;
    int n = 1 + vw->nimm + (int)v->nfiles[0];
    for (int l = 1; l < v->num_levels; l++)
        n += v->nfiles[l] > 0;
    tl_iter **kids = calloc((size_t)n, sizeof *kids);
    if (!kids)
        return NULL;
    int k = 0;
    kids[k++] = mt_iter_new(vw->mem);
    for (int i = 0; i < vw->nimm; i++)
        kids[k++] = mt_iter_new(vw->imm[i]);
    for (size_t i = 0; i < v->nfiles[0]; i++)
        kids[k++] =
            tl_table_cache_iter(t->tc, v->files[0][i]->number, v->files[0][i]->size, fill_cache);
    for (int l = 1; l < v->num_levels; l++)
        if (v->nfiles[l] > 0)
            kids[k++] = cp_level_iter(t->tc, vw->v, l, fill_cache);
    for (int i = 0; i < k; i++) {
        if (!kids[i]) {
            for (int j = 0; j < k; j++)
                tl_iter_destroy(kids[j]);
            free(kids);
            return NULL;
        }
    }
    tl_iter *merged = tl_iter_merge(kids, k);
    free(kids);
    return merged;
}

/* Attribute a kept old version to the one pinned snapshot that needs it:
 * a version is needed by every pin in [its seqno, the next newer version's
 * seqno); count it only if exactly one pin falls there. */
static void attribute(const uint64_t *pins, size_t n, uint64_t seq, uint64_t newer_seq,
                      uint64_t bytes, uint64_t *held)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first pin >= seq */
        size_t mid = (lo + hi) / 2;
        if (pins[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && pins[lo] < newer_seq && (lo + 1 == n || pins[lo + 1] >= newer_seq))
        held[lo] += bytes;
}

int tr_snapshot_bytes_held(tr_tree *t, const uint64_t *pins, size_t n, uint64_t *held)
{
    if (n == 0)
        return 0;
    tr_view *vw = tr_view_acquire(t);
    tl_iter *it = tr_view_iter(t, vw, false);
    if (!it) {
        tr_view_release(vw);
        return tl_err(TALUS_ENOMEM, "out of memory scanning tree %s", t->name);
    }
    tl_buf prev_key = {0};
    uint64_t newer_seq = UINT64_MAX; /* seqno of the previous version of the same key */
    int rc = 0;
    for (tl_iter_seek_first(it); tl_iter_valid(it); tl_iter_next(it)) {
        tl_slice ik = tl_iter_key(it);
        if (ik.len < TL_IKEY_TRAILER) {
            rc = tl_err(TALUS_ECORRUPT, "tree %s: malformed internal key", t->name);
            break;
        }
        tl_slice uk = tl_ikey_user(ik);
        uint64_t seq = tl_ikey_seq(ik);
        bool same = prev_key.data && tl_slice_cmp(uk, tl_buf_slice(&prev_key)) == 0;
        uint64_t vlen = tl_iter_value(it).len;
        bl_ref ref; /* a blob holds its value's bytes, not the reference's */
        if (tl_ikey_type(ik) == TL_TYPE_BLOB && bl_ref_decode(tl_iter_value(it), &ref) == 0)
            vlen = ref.length;
        if (same)
            attribute(pins, n, seq, newer_seq, ik.len + vlen, held);
        else if ((rc = tl_buf_set(&prev_key, uk.data, uk.len)) < 0)
            break;
        newer_seq = seq;
    }
    if (rc == 0)
        rc = tl_iter_status(it);
    tl_buf_free(&prev_key);
    tl_iter_destroy(it);
    tr_view_release(vw);
    return rc;
}
