/*
 * tree_blob.c - the tree's side of key-value separation: naming new blob
 * files, reading values through references, and removing blob files that
 * nothing references any more.
 *
 * Lifetime of a blob file (one value each):
 *  - written and synced before its reference enters a batch, so a journal
 *    record never names a blob that a crash could lose;
 *  - added to the version by the flush that writes its reference to a
 *    table; deleted from the version by the compaction that drops that
 *    reference; removed from disk when no live version holds it (readers
 *    holding an older view keep it);
 *  - a reference dropped already by the flush (an overwrite in the same
 *    memtable) is removed when that memtable's last reader is gone;
 *  - a blob never committed (crash, failed or discarded batch) is an orphan,
 *    removed on the next open once recovery has flushed every memtable.
 */
#include "tree/tree_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/ikey.h"
#include "util/log.h"

uint64_t tr_min_blob_size(const tr_tree *t)
{
    return t->cfg.opts.min_blob_size;
}

int tr_blob_writer_new(tr_tree *t, bl_writer **out)
{
    if (t->cfg.read_only)
        return tl_err(TALUS_EREADONLY, "tree %s is read-only", t->name);
    return bl_writer_open(t->env, t->dir, ver_set_new_file_number(t->vs), out);
}

int tr_blob_write(tr_tree *t, const void *p, size_t n, bl_ref *ref)
{
    if (t->cfg.read_only)
        return tl_err(TALUS_EREADONLY, "tree %s is read-only", t->name);
    return bl_write(t->env, t->dir, ver_set_new_file_number(t->vs), p, n, ref);
}

/* Copy the bytes of r (in src) into a new blob of t. */
static int copy_bytes(tr_tree *t, tr_tree *src, const bl_ref *r, bl_ref *out)
{
    enum { SPAN = 1 << 20 };
    bl_reader *rd = NULL;
    bl_writer *w = NULL;
    uint8_t *buf = malloc(SPAN);
    int rc = buf ? 0 : tl_err(TALUS_ENOMEM, "out of memory copying a blob");
    if (rc == 0)
        rc = bl_reader_open(src->env, src->dir, r, &rd);
    if (rc == 0)
        rc = tr_blob_writer_new(t, &w);
    for (uint64_t off = 0; rc == 0 && off < r->length;) {
        size_t got;
        rc = bl_reader_read(rd, off, buf, SPAN, &got);
        if (rc == 0 && got == 0)
            rc = tl_err(TALUS_ECORRUPT, "blob %llu of tree %s ends early",
                        (unsigned long long)r->number, src->name);
        if (rc == 0)
            rc = bl_writer_append(w, buf, got);
        off += got;
    }
    if (rc == 0) {
        rc = bl_writer_finish(w, out);
        w = NULL;
    }
    bl_writer_abort(w);
    bl_reader_close(rd);
    free(buf);
    return rc;
}

static int blob_copy(tr_tree *t, tr_tree *src, tl_slice ref, bl_ref *out)
{
    bl_ref r;
    TRY(bl_ref_decode(ref, &r));
    if (t->cfg.read_only)
        return tl_err(TALUS_EREADONLY, "tree %s is read-only", t->name);
    uint64_t number = ver_set_new_file_number(t->vs);
    if (bl_link(t->env, src->dir, r.number, t->dir, number) == 0) {
        *out = (bl_ref){number, r.length};
        return 0;
    }
    /* No link (another filesystem, an env without links, a source already
     * collected under an open reader...): copy. */
    return copy_bytes(t, src, &r, out);
}

int tr_copy_value(tr_tree *t, tr_tree *src, tl_slice ukey, uint64_t read_seq, uint8_t *type,
                  tl_buf *value, bl_ref *ref)
{
    tr_view *vw = tr_view_acquire(src);
    int rc = tr_view_get(src, vw, ukey, read_seq, value, type);
    if (rc > 0 && *type == TL_TYPE_BLOB) {
        rc = blob_copy(t, src, tl_buf_slice(value), ref);
        rc = rc < 0 ? rc : 1;
    }
    tr_view_release(vw);
    return rc;
}

void tr_blob_discard(tr_tree *t, uint64_t number)
{
    if (bl_remove(t->env, t->dir, number) < 0)
        TL_LOG_WARN("could not remove blob %llu of tree %s: %s", (unsigned long long)number,
                    t->name, tl_errmsg());
}

int tr_blob_open(tr_tree *t, tl_slice ref, bl_reader **out)
{
    bl_ref r;
    TRY(bl_ref_decode(ref, &r));
    return bl_reader_open(t->env, t->dir, &r, out);
}

int tr_blob_read_all(tr_tree *t, tl_slice ref, tl_buf *out)
{
    bl_ref r;
    TRY(bl_ref_decode(ref, &r));
    return bl_read_all(t->env, t->dir, &r, out);
}

int tr_remove_orphan_blobs(tr_tree *t)
{
    if (t->cfg.read_only)
        return 0;
    char **names = NULL;
    size_t n = 0;
    TRY(tl_env_list_dir(t->env, t->dir, &names, &n));
    ver_version *v = ver_set_current(t->vs);
    for (size_t i = 0; i < n; i++) {
        uint64_t number;
        int kind = bl_parse_name(names[i], &number);
        if (kind == 0 || (kind == 1 && ver_version_has_blob(v, number)))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", t->dir, names[i]);
        TL_LOG_INFO("removing orphan blob %s", path);
        int rc = tl_env_remove(t->env, path);
        if (rc < 0 && rc != TALUS_ENOTFOUND)
            TL_LOG_WARN("could not remove %s: %s", path, tl_errmsg());
    }
    ver_version_unref(v);
    tl_env_free_names(names, n);
    return 0;
}

/* Blob files whose references a flush dropped: removed with the memtable. */
typedef struct dropped_blobs {
    tl_env *env;
    char *dir;
    uint64_t *numbers;
    size_t n;
} dropped_blobs;

static void remove_dropped(void *arg)
{
    dropped_blobs *d = arg;
    for (size_t i = 0; i < d->n; i++)
        if (bl_remove(d->env, d->dir, d->numbers[i]) < 0)
            TL_LOG_WARN("could not remove blob %llu in %s: %s", (unsigned long long)d->numbers[i],
                        d->dir, tl_errmsg());
    free(d->numbers);
    free(d->dir);
    free(d);
}

int tr_blobs_after_flush(tr_tree *t, mt_memtable *m, const cp_output *out, ver_edit *e)
{
    ver_version *v = ver_set_current(t->vs);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < out->nblobs_kept; i++) {
        const cp_blob *b = &out->blobs_kept[i];
        bool dup = ver_version_has_blob(v, b->number);
        for (size_t j = 0; !dup && j < i; j++)
            dup = out->blobs_kept[j].number == b->number;
        if (!dup) /* a second reference to one blob is not a second file */
            rc = ver_edit_add_blob(e, b->number, b->length);
    }
    ver_version_unref(v);
    TRY(rc);
    if (out->nblobs_dropped == 0)
        return 0;
    dropped_blobs *d = calloc(1, sizeof *d);
    if (d) {
        d->env = t->env;
        d->dir = strdup(t->dir);
        d->numbers = malloc(out->nblobs_dropped * sizeof *d->numbers);
    }
    if (!d || !d->dir || !d->numbers) {
        if (d) {
            free(d->dir);
            free(d->numbers);
            free(d);
        }
        /* Not fatal: the files stay as orphans until the next open. */
        TL_LOG_WARN("out of memory: %zu unreferenced blobs of tree %s stay until reopen",
                    out->nblobs_dropped, t->name);
        return 0;
    }
    for (size_t i = 0; i < out->nblobs_dropped; i++)
        d->numbers[i] = out->blobs_dropped[i].number;
    d->n = out->nblobs_dropped;
    mt_on_free(m, remove_dropped, d);
    return 0;
}
