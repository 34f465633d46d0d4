/*
 * writer.c - cp_write_tables: drain a merged internal-key stream, apply the
 * garbage-collection rule of compaction.h, and write the survivors into
 * tables of about target_file_size.
 *
 * The stream is processed one entry at a time; per user key we remember only
 * the stripe of the last version looked at, so memory does not grow with the
 * number of versions. A table is cut only before the first kept version of
 * a user key, so a key's versions never straddle two tables (readers of a
 * sorted level look in one file per key).
 *
 * Crash safety: a table is written to "<number>.sst.tmp", synced, closed and
 * renamed; the directory is synced once at the end. Until the caller records
 * the tables in the manifest they are orphans, which open removes. On any
 * error this call removes what it created, so a failed compaction leaves no
 * stray file behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compaction/cp_internal.h"
#include "util/err.h"
#include "blob/blob.h"
#include "util/ikey.h"

/* How often (in input entries) to look at the cancel flag. */
#define CP_CANCEL_EVERY 4096

typedef struct writer {
    const cp_ctx *ctx;
    cp_output *out;
    size_t files_cap;
    tbl_builder *b; /* current table, NULL between tables */
    tl_file *f;
    uint64_t number;
    bool tmp_exists;
    char *tmp; /* "<final>.tmp" */
    char *final;
    size_t name_cap;
} writer;

static bool cancelled(const cp_ctx *ctx)
{
    return ctx->cancel && atomic_load(ctx->cancel);
}

/* Index of the stripe of seq: the first snapshot >= seq, or nsnapshots
 * ("latest"). Stripe 0 is the oldest: no snapshot lies below it. */
static size_t stripe_of(const cp_ctx *ctx, uint64_t seq)
{
    size_t lo = 0, hi = ctx->nsnapshots;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ctx->snapshots[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void set_names(writer *w, uint64_t number)
{
    tbl_file_name(w->final, w->name_cap, w->ctx->dir, number);
    snprintf(w->tmp, w->name_cap + 4, "%s.tmp", w->final);
}

static int open_table(writer *w)
{
    const cp_ctx *ctx = w->ctx;
    if (cancelled(ctx))
        return tl_err(TALUS_ECLOSED, "compaction in %s cancelled", ctx->dir);
    w->number = ver_set_new_file_number(ctx->vs);
    set_names(w, w->number);
    TRY(tl_env_open_write(ctx->env, w->tmp, &w->f));
    w->tmp_exists = true;
    return tbl_builder_new(&ctx->topts, w->f, &w->b);
}

static int finish_table(writer *w)
{
    int rc = 0;
    tbl_props props;
    memset(&props, 0, sizeof props);
    ver_file *vf = NULL;
    cp_output *out = w->out;

    rc = tbl_builder_finish(w->b, &props);
    tbl_builder_free(w->b);
    w->b = NULL;
    TRY_OUT(rc);
    TRY_OUT(tl_file_sync(w->f));
    rc = tl_file_close(w->f);
    w->f = NULL;
    TRY_OUT(rc);
    if (props.smallest_len < TL_IKEY_TRAILER || props.largest_len < TL_IKEY_TRAILER)
        TRY_OUT(tl_err(TALUS_ECORRUPT, "table %s: builder reported no key range", w->tmp));
    /* Everything that can fail for lack of memory happens before the rename,
     * so a renamed table is always recorded in out (and removed on error). */
    if (out->nfiles == w->files_cap) {
        size_t cap = w->files_cap ? w->files_cap * 2 : 8;
        ver_file **nf = realloc(out->files, cap * sizeof *nf);
        if (!nf)
            TRY_OUT(tl_err(TALUS_ENOMEM, "out of memory listing compaction outputs"));
        out->files = nf;
        w->files_cap = cap;
    }
    vf = ver_file_new(w->number, props.file_size, tl_slice_make(props.smallest, props.smallest_len),
                      tl_slice_make(props.largest, props.largest_len), props.min_seq, props.max_seq,
                      props.num_entries, props.num_deletions);
    if (!vf)
        TRY_OUT(tl_err(TALUS_ENOMEM, "out of memory describing table %s", w->final));
    TRY_OUT(tl_env_rename(w->ctx->env, w->tmp, w->final));
    w->tmp_exists = false;
    out->files[out->nfiles++] = vf;
    vf = NULL;
    out->bytes_written += props.file_size;
out:
    if (vf)
        ver_file_unref(vf);
    tbl_props_free(&props);
    return rc;
}

/* Remove everything this call created and empty out; keeps the message. */
static void cleanup(writer *w, int rc)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", tl_errmsg());
    tl_env *env = w->ctx->env;
    if (w->b)
        tbl_builder_free(w->b);
    w->b = NULL;
    if (w->f)
        tl_file_close(w->f);
    w->f = NULL;
    if (w->tmp_exists)
        tl_env_remove(env, w->tmp);
    w->tmp_exists = false;
    for (size_t i = 0; i < w->out->nfiles; i++) {
        set_names(w, w->out->files[i]->number);
        tl_env_remove(env, w->final);
    }
    cp_output_free(w->out);
    tl_err(rc, "%s", msg);
}

/* Note the blob named by a TL_TYPE_BLOB entry in the kept or dropped list. */
static int note_blob(cp_output *out, tl_slice val, bool kept)
{
    bl_ref r;
    TRY(bl_ref_decode(val, &r));
    cp_blob **arr = kept ? &out->blobs_kept : &out->blobs_dropped;
    size_t *n = kept ? &out->nblobs_kept : &out->nblobs_dropped;
    size_t *cap = kept ? &out->kept_cap : &out->dropped_cap;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        cp_blob *p = realloc(*arr, nc * sizeof *p);
        if (!p)
            return tl_err(TALUS_ENOMEM, "out of memory listing blob references");
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = (cp_blob){r.number, r.length};
    return 0;
}

int cp_write_tables(const cp_ctx *ctx, tl_iter *input, cp_output *out)
{
    int rc = 0;
    writer w;
    memset(&w, 0, sizeof w);
    memset(out, 0, sizeof *out);
    w.ctx = ctx;
    w.out = out;
    w.name_cap = strlen(ctx->dir) + 48;
    w.final = malloc(w.name_cap);
    w.tmp = malloc(w.name_cap + 4);
    tl_buf cur = {0}; /* user key being processed */
    bool have_cur = false;
    bool cur_emitted = false; /* some version of cur went to the current table */
    bool keep_rest = false;   /* a merge operand seen: keep all older versions */
    size_t last_stripe = SIZE_MAX;
    uint64_t prev_seq = 0, count = 0;
    uint64_t target = ctx->target_file_size ? ctx->target_file_size : UINT64_MAX;

    if (!w.final || !w.tmp)
        TRY_OUT(tl_err(TALUS_ENOMEM, "out of memory starting a compaction"));

    for (tl_iter_seek_first(input); tl_iter_valid(input); tl_iter_next(input)) {
        tl_slice k = tl_iter_key(input), val = tl_iter_value(input);
        if (k.len < TL_IKEY_TRAILER)
            TRY_OUT(tl_err(TALUS_ECORRUPT, "compaction input: internal key of %zu bytes", k.len));
        tl_slice u = tl_ikey_user(k);
        uint64_t seq = tl_ikey_seq(k);
        uint8_t type = tl_ikey_type(k);
        if (!tl_vtype_valid(type))
            TRY_OUT(tl_err(TALUS_ECORRUPT, "compaction input: bad value type %u at seqno %llu",
                           type, (unsigned long long)seq));
        out->entries_in++;
        out->bytes_read += k.len + val.len;
        if (++count % CP_CANCEL_EVERY == 0 && cancelled(ctx))
            TRY_OUT(tl_err(TALUS_ECLOSED, "compaction in %s cancelled", ctx->dir));

        int c = have_cur ? tl_slice_cmp(u, tl_buf_slice(&cur)) : 1;
        if (c < 0 || (c == 0 && seq >= prev_seq))
            TRY_OUT(tl_err(TALUS_ECORRUPT,
                           "compaction input out of order at seqno %llu (previous %llu)",
                           (unsigned long long)seq, (unsigned long long)prev_seq));
        if (c > 0) {
            TRY_OUT(tl_buf_set(&cur, u.data, u.len));
            have_cur = true;
            cur_emitted = false;
            keep_rest = false;
            last_stripe = SIZE_MAX;
        }
        prev_seq = seq;

        bool keep;
        size_t stripe = stripe_of(ctx, seq);
        if (keep_rest) {
            keep = true;
        } else if (stripe == last_stripe) {
            keep = false; /* hidden by a newer version no snapshot separates */
        } else {
            last_stripe = stripe;
            if (type == TL_TYPE_MERGE || type == TL_TYPE_RANGE_TOMBSTONE) {
                keep = true;
                keep_rest = true;
            } else if (tl_vtype_is_delete(type) && stripe == 0) {
                /* Everything older in the input is in stripe 0 too and is
                 * dropped below, so only the levels below can still hold an
                 * older version that this tombstone must keep hidden. */
                keep = ctx->key_below && ctx->key_below(ctx->key_below_arg, u);
            } else {
                keep = true;
            }
        }
        if (type == TL_TYPE_BLOB)
            TRY_OUT(note_blob(out, val, keep));
        if (!keep) {
            out->entries_dropped++;
            continue;
        }
        if (w.b && !cur_emitted && tbl_builder_estimated_size(w.b) >= target)
            TRY_OUT(finish_table(&w));
        if (!w.b)
            TRY_OUT(open_table(&w));
        TRY_OUT(tbl_builder_add(w.b, k, val));
        cur_emitted = true;
    }
    TRY_OUT(tl_iter_status(input));
    if (w.b)
        TRY_OUT(finish_table(&w));
    if (out->nfiles)
        TRY_OUT(tl_env_sync_dir(ctx->env, ctx->dir));
out:
    if (rc < 0)
        cleanup(&w, rc);
    tl_buf_free(&cur);
    free(w.final);
    free(w.tmp);
    return rc;
}

void cp_output_free(cp_output *out)
{
    for (size_t i = 0; i < out->nfiles; i++)
        ver_file_unref(out->files[i]);
    free(out->files);
    free(out->blobs_kept);
    free(out->blobs_dropped);
    memset(out, 0, sizeof *out);
}
