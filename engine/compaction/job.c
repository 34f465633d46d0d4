/*
 * job.c - cp_run: execute one pick. A trivial move only edits the manifest;
 * any other pick merges its inputs (each L0 table on its own, each sorted
 * run as one lazy concatenation), writes the survivors through
 * cp_write_tables, and describes the result as a version edit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compaction/cp_internal.h"
#include "util/err.h"

static int trivial_move(const cp_pick *p, ver_edit *edit)
{
    ver_file *f = p->inputs[0][0];
    TRY(ver_edit_delete_file(edit, p->level, f->number));
    return ver_edit_add_file(edit, p->output_level, f);
}

/* The merged input of p; NULL on ENOMEM (children already freed). */
static tl_iter *input_iter(const cp_ctx *ctx, const cp_pick *p)
{
    size_t n0 = p->ninputs[0];
    size_t max = (p->level == 0 ? n0 : 1) + 1;
    tl_iter **kids = calloc(max, sizeof *kids);
    int nk = 0;
    if (!kids) {
        tl_err(TALUS_ENOMEM, "out of memory building compaction input");
        return NULL;
    }
    if (p->level == 0) {
        /* L0 order (newest first); the merge breaks no ties since internal
         * keys are unique, but keep the order anyway. */
        for (size_t i = 0; i < n0; i++) {
            ver_file *f = p->inputs[0][i];
            if (!(kids[nk++] = tl_table_cache_iter(ctx->tc, f->number, f->size, false)))
                goto fail;
        }
    } else if (n0) {
        if (!(kids[nk++] = cp_concat_iter_new(ctx->tc, p->inputs[0], n0, NULL, false)))
            goto fail;
    }
    if (p->ninputs[1]) {
        kids[nk++] = cp_concat_iter_new(ctx->tc, p->inputs[1], p->ninputs[1], NULL, false);
        if (!kids[nk - 1])
            goto fail;
    }
    /* tl_iter_merge owns the children from here on, even when it fails. */
    tl_iter *m = tl_iter_merge(kids, nk);
    free(kids);
    if (!m)
        tl_err(TALUS_ENOMEM, "out of memory building compaction input");
    return m;
fail:
    for (int i = 0; i < nk; i++)
        tl_iter_destroy(kids[i]);
    free(kids);
    tl_err(TALUS_ENOMEM, "out of memory building compaction input");
    return NULL;
}

static int cmp_blob(const void *pa, const void *pb)
{
    const cp_blob *a = pa, *b = pb;
    return a->number < b->number ? -1 : (a->number > b->number ? 1 : 0);
}

int cp_run(const cp_ctx *ctx, const cp_pick *p, ver_edit *edit, cp_output *out)
{
    int rc = 0;
    tl_iter *in = NULL;
    memset(out, 0, sizeof *out);
    if (p->ninputs[0] == 0)
        return tl_err(TALUS_EINVAL, "compaction pick without inputs");
    if (p->trivial_move)
        return trivial_move(p, edit);

    in = input_iter(ctx, p);
    if (!in)
        return TALUS_ENOMEM;
    TRY_OUT(cp_write_tables(ctx, in, out));

    uint64_t read = 0;
    for (int k = 0; k < 2; k++) {
        int level = k == 0 ? p->level : p->output_level;
        for (size_t i = 0; i < p->ninputs[k]; i++) {
            read += p->inputs[k][i]->size;
            TRY_OUT(ver_edit_delete_file(edit, level, p->inputs[k][i]->number));
        }
    }
    for (size_t i = 0; i < out->nfiles; i++)
        TRY_OUT(ver_edit_add_file(edit, p->output_level, out->files[i]));
    if (out->nblobs_dropped > 1)
        qsort(out->blobs_dropped, out->nblobs_dropped, sizeof *out->blobs_dropped, cmp_blob);
    /* Each blob once; one that is not in the version (a second reference
     * written by a replaced memtable entry) must not fail the edit. */
    for (size_t i = 0; i < out->nblobs_dropped; i++) {
        uint64_t b = out->blobs_dropped[i].number;
        if ((i == 0 || out->blobs_dropped[i - 1].number != b) &&
            ver_version_has_blob(p->version, b))
            TRY_OUT(ver_edit_delete_blob(edit, b));
    }
    out->bytes_read = read;
out:
    tl_iter_destroy(in);
    if (rc < 0 && out->nfiles) {
        /* The edit could not be completed (no memory): the written tables
         * would be orphans, so remove them now. The caller frees the edit. */
        char msg[512], name[4096];
        snprintf(msg, sizeof msg, "%s", tl_errmsg());
        for (size_t i = 0; i < out->nfiles; i++) {
            tbl_file_name(name, sizeof name, ctx->dir, out->files[i]->number);
            tl_env_remove(ctx->env, name);
        }
        cp_output_free(out);
        tl_err(rc, "%s", msg);
    }
    return rc;
}
