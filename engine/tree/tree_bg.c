/*
 * tree_bg.c - background work of a tree: flushing sealed memtables to L0
 * and running compactions, plus the waits and manual compaction built on
 * them.
 *
 * At most one flush runs at a time (memtables are flushed oldest first so
 * L0 stays ordered by seqno) and at most one automatic compaction; a manual
 * compaction waits for the automatic one and pauses new ones.
 */
#include <stdlib.h>
#include <string.h>

#include "tree/tree_internal.h"
#include "util/err.h"
#include "util/ikey.h"

typedef struct below_arg {
    const ver_version *v;
    int level; /* output level: look strictly below it; -1 = everything */
} below_arg;

static bool key_below(void *arg, tl_slice ukey)
{
    const below_arg *a = arg;
    const ver_version *v = a->v;
    for (int l = a->level + 1; l < v->num_levels; l++) {
        if (l == 0) {
            for (size_t i = 0; i < v->nfiles[0]; i++) {
                const ver_file *f = v->files[0][i];
                tl_slice lo = tl_slice_make(f->smallest, f->smallest_len - TL_IKEY_TRAILER);
                tl_slice hi = tl_slice_make(f->largest, f->largest_len - TL_IKEY_TRAILER);
                if (tl_slice_cmp(ukey, lo) >= 0 && tl_slice_cmp(ukey, hi) <= 0)
                    return true;
            }
            continue;
        }
        size_t i = ver_version_find_file(v, l, ukey);
        if (i < v->nfiles[l]) {
            const ver_file *f = v->files[l][i];
            tl_slice lo = tl_slice_make(f->smallest, f->smallest_len - TL_IKEY_TRAILER);
            if (tl_slice_cmp(ukey, lo) >= 0)
                return true;
        }
    }
    return false;
}

/* Snapshot list and compaction context for writing below `level` of v
 * (-1: a flush, which must look at every level). *snaps is the caller's to
 * free, also on error. */
static int prepare_ctx(tr_tree *t, const ver_version *v, int level, cp_ctx *ctx, below_arg *ba,
                       uint64_t **snaps)
{
    size_t n = 0;
    *snaps = NULL;
    memset(ctx, 0, sizeof *ctx);
    if (t->cfg.snapshots)
        TRY(t->cfg.snapshots(t->cfg.ctx, snaps, &n));
    ba->v = v;
    ba->level = level;
    ctx->env = t->env;
    ctx->dir = t->dir;
    ctx->tc = t->tc;
    ctx->vs = t->vs;
    ctx->topts = t->topts;
    ctx->target_file_size = t->cpo.target_file_size;
    ctx->snapshots = *snaps;
    ctx->nsnapshots = n;
    ctx->key_below = key_below;
    ctx->key_below_arg = ba;
    ctx->cancel = &t->cancel;
    return 0;
}

/* Record edit e (if rc is still 0) and install a view with the current
 * memtables (minus `flushed`, if given) and the new version.
 * REQUIRES: mu held. */
static int install_edit(tr_tree *t, int rc, ver_edit *e, const mt_memtable *flushed)
{
    if (rc < 0)
        return rc;
    TRY(ver_set_apply(t->vs, e));
    tr_view *cur = t->view;
    mt_memtable *imm[TR_MAX_IMM];
    int n = 0;
    for (int i = 0; i < cur->nimm; i++)
        if (cur->imm[i] != flushed)
            imm[n++] = cur->imm[i];
    ver_version *v = ver_set_current(t->vs);
    rc = tr_install_view(t, cur->mem, imm, n, v);
    ver_version_unref(v);
    return rc;
}

/* Flush the oldest sealed memtable. REQUIRES: mu held, !flushing, nimm > 0.
 * Drops and retakes mu. */
static void flush_oldest(tr_tree *t)
{
    t->flushing = true;
    tr_view *vw = t->view;
    atomic_fetch_add(&vw->refs, 1);
    mt_memtable *m = vw->imm[vw->nimm - 1];
    pthread_mutex_unlock(&t->mu);

    uint64_t *snaps = NULL;
    cp_output out = {0};
    ver_edit e;
    ver_edit_init(&e);
    cp_ctx ctx;
    below_arg ba;
    int rc = prepare_ctx(t, vw->v, -1, &ctx, &ba, &snaps);
    if (rc == 0) {
        ctx.target_file_size = UINT64_MAX; /* one L0 table per memtable */
        tl_iter *in = mt_iter_new(m);
        rc = in ? cp_write_tables(&ctx, in, &out) : tl_err(TALUS_ENOMEM, "out of memory");
        tl_iter_destroy(in);
    }
    for (size_t i = 0; rc == 0 && i < out.nfiles; i++)
        rc = ver_edit_add_file(&e, 0, out.files[i]);
    if (rc == 0)
        rc = tr_blobs_after_flush(t, m, &out, &e);
    if (rc == 0) {
        e.has_flushed_seq = e.has_last_seq = true;
        e.flushed_seq = e.last_seq = mt_max_seq(m);
    }

    pthread_mutex_lock(&t->mu);
    rc = install_edit(t, rc, &e, m);
    if (rc == 0) {
        atomic_fetch_add(&t->flushes, 1);
        atomic_fetch_add(&t->bytes_flushed, out.bytes_written);
    } else if (!t->closing) {
        tr_set_bg_error(t, rc, "flush");
    }
    t->flushing = false;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (rc == 0 && t->cfg.on_flush)
        t->cfg.on_flush(t->cfg.ctx, t);
    tr_view_release(vw);
    ver_edit_free(&e);
    cp_output_free(&out);
    free(snaps);
    pthread_mutex_lock(&t->mu);
}

/* Run a picked compaction against v. REQUIRES: mu held; p's inputs are
 * marked. Drops and retakes mu; releases p. */
static int run_pick(tr_tree *t, ver_version *v, cp_pick *p)
{
    t->compactions_running++;
    pthread_mutex_unlock(&t->mu);

    uint64_t *snaps = NULL;
    cp_output out = {0};
    ver_edit e;
    ver_edit_init(&e);
    cp_ctx ctx;
    below_arg ba;
    int rc = prepare_ctx(t, v, p->output_level, &ctx, &ba, &snaps);
    if (rc == 0)
        rc = cp_run(&ctx, p, &e, &out);

    pthread_mutex_lock(&t->mu);
    rc = install_edit(t, rc, &e, NULL);
    if (rc == 0) {
        atomic_fetch_add(&t->compactions, 1);
        atomic_fetch_add(&t->bytes_compacted_read, out.bytes_read);
        atomic_fetch_add(&t->bytes_compacted_written, out.bytes_written);
    } else if (!t->closing) {
        tr_set_bg_error(t, rc, "compaction");
    }
    cp_pick_release(p);
    t->compactions_running--;
    pthread_cond_broadcast(&t->cv);
    ver_edit_free(&e);
    cp_output_free(&out);
    free(snaps);
    return rc;
}

int tr_background_work(tr_tree *t)
{
    int more = 0;
    pthread_mutex_lock(&t->mu);
    if (t->closing || t->bg_error) {
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    if (!t->flushing && t->view->nimm > 0) {
        flush_oldest(t);
        more = 1;
    } else if (t->manual_waiters == 0 && !t->manual_running && t->compactions_running == 0) {
        ver_version *v = t->view->v;
        ver_version_ref(v);
        cp_pick p;
        int r = cp_pick_compaction(&t->cpo, v, &p);
        if (r > 0) {
            run_pick(t, v, &p);
            more = 1;
        } else if (r < 0) {
            tr_set_bg_error(t, r, "compaction picking");
        }
        pthread_mutex_unlock(&t->mu);
        ver_version_unref(v);
        return more;
    }
    pthread_mutex_unlock(&t->mu);
    return more;
}

int tr_wait_flushed(tr_tree *t)
{
    pthread_mutex_lock(&t->mu);
    while (t->view->nimm > 0 && !t->bg_error && !t->closing) {
        if (t->cfg.schedule)
            t->cfg.schedule(t->cfg.ctx, t);
        pthread_cond_wait(&t->cv, &t->mu);
    }
    int rc = 0;
    if (t->bg_error)
        rc = tl_err(TALUS_EREADONLY, "%s", t->bg_errmsg);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int tr_wait_idle(tr_tree *t)
{
    for (;;) {
        pthread_mutex_lock(&t->mu);
        if (t->bg_error) {
            int rc = tl_err(TALUS_EREADONLY, "%s", t->bg_errmsg);
            pthread_mutex_unlock(&t->mu);
            return rc;
        }
        if (t->flushing || t->compactions_running > 0 || t->manual_running) {
            pthread_cond_wait(&t->cv, &t->mu);
            pthread_mutex_unlock(&t->mu);
            continue;
        }
        bool pending = t->view->nimm > 0 || cp_max_score(&t->cpo, t->view->v) >= 1.0;
        pthread_mutex_unlock(&t->mu);
        if (!pending)
            return 0;
        /* Do the work here rather than wait for a worker. */
        if (tr_background_work(t) == 0)
            return tr_bg_error(t);
    }
}

/* Deepest level holding a file that overlaps [lo, hi]. REQUIRES: mu. */
static int deepest_overlap(const ver_version *v, const tl_slice *lo, const tl_slice *hi)
{
    int deepest = 0;
    for (int l = 0; l < v->num_levels; l++) {
        ver_file **fs = NULL;
        size_t n = 0;
        if (ver_version_overlapping(v, l, lo, hi, &fs, &n) == 0 && n > 0)
            deepest = l;
        free(fs);
    }
    return deepest;
}

int tr_compact_range(tr_tree *t, const tl_slice *lo, const tl_slice *hi)
{
    TRY(tr_wait_flushed(t));
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    t->manual_waiters++;
    while ((t->compactions_running > 0 || t->manual_running) && !t->bg_error)
        pthread_cond_wait(&t->cv, &t->mu);
    t->manual_waiters--;
    if (t->bg_error) {
        rc = tl_err(TALUS_EREADONLY, "%s", t->bg_errmsg);
        pthread_mutex_unlock(&t->mu);
        return rc;
    }
    t->manual_running = true;
    int last = deepest_overlap(t->view->v, lo, hi);
    if (last < 1)
        last = 1;
    if (last > t->cpo.num_levels - 1)
        last = t->cpo.num_levels - 1;
    for (int level = 0; level < last && rc == 0; level++) {
        for (;;) {
            ver_version *v = t->view->v;
            ver_version_ref(v);
            cp_pick p;
            int r = cp_pick_range(&t->cpo, v, level, lo, hi, &p);
            if (r <= 0) {
                ver_version_unref(v);
                rc = r;
                break;
            }
            rc = run_pick(t, v, &p);
            ver_version_unref(v);
            if (rc < 0)
                break;
        }
    }
    if (rc == 0) { /* everything in range is in level `last` now */
        ver_version *v = t->view->v;
        ver_version_ref(v);
        cp_pick p;
        int r = cp_pick_rewrite(&t->cpo, v, last, lo, hi, &p);
        rc = r <= 0 ? r : run_pick(t, v, &p);
        ver_version_unref(v);
    }
    t->manual_running = false;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (t->cfg.schedule)
        t->cfg.schedule(t->cfg.ctx, t);
    return rc;
}
