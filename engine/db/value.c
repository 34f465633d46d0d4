/*
 * value.c - ranged reads and streamed writes of single values
 * (talus_value_*, talus_value_writer_*): the public face of key-value
 * separation. A value kept in a blob file is read straight from that file,
 * range by range; a small value is copied once at open.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "util/err.h"
#include "util/ikey.h"

struct talus_value {
    uint64_t length;
    tl_buf inline_val; /* a value kept in the tree */
    bl_reader *blob;   /* or the blob file holding it */
};

static int value_open(talus_tree *t, uint64_t seq, const void *key, size_t klen, talus_value **out)
{
    if (!out)
        return tl_err(TALUS_EINVAL, "NULL argument to talus_value_open");
    *out = NULL;
    TRY(db_check_tree(t));
    TRY(db_check_key(key, klen));
    talus_value *v = calloc(1, sizeof *v);
    if (!v)
        return tl_err(TALUS_ENOMEM, "out of memory opening a value");
    uint8_t type = 0;
    int rc = tr_get_entry(t->tr, tl_slice_make(key, klen), seq, &v->inline_val, &type);
    if (rc == 0)
        rc = TALUS_ENOTFOUND;
    if (rc > 0 && type == TL_TYPE_BLOB) {
        rc = tr_blob_open(t->tr, tl_buf_slice(&v->inline_val), &v->blob);
        tl_buf_free(&v->inline_val);
        if (rc == 0)
            v->length = bl_reader_length(v->blob);
    } else if (rc > 0) {
        v->length = v->inline_val.len;
        rc = 0;
    }
    if (rc < 0) {
        talus_value_close(v);
        return rc;
    }
    *out = v;
    return 0;
}

int talus_value_open(talus_tree *t, const talus_snapshot *snap, const void *key, size_t klen,
                     talus_value **out)
{
    if (!t)
        return tl_err(TALUS_EINVAL, "NULL tree handle");
    return value_open(t, snap ? snap->seq : talus_seqno(t->db), key, klen, out);
}

int talus_value_open_at(talus_tree *t, uint64_t seqno, const void *key, size_t klen,
                        talus_value **out)
{
    if (!t)
        return tl_err(TALUS_EINVAL, "NULL tree handle");
    TRY(db_check_readable_seq(t->db, seqno));
    return value_open(t, seqno, key, klen, out);
}

uint64_t talus_value_length(const talus_value *v)
{
    return v ? v->length : 0;
}

int talus_value_read(talus_value *v, uint64_t off, void *buf, size_t n, size_t *got)
{
    if (!v || !got || (!buf && n))
        return tl_err(TALUS_EINVAL, "NULL argument to talus_value_read");
    *got = 0;
    if (v->blob)
        return bl_reader_read(v->blob, off, buf, n, got);
    if (off >= v->length)
        return 0;
    size_t avail = (size_t)(v->length - off);
    size_t k = n < avail ? n : avail;
    memcpy(buf, v->inline_val.data + off, k);
    *got = k;
    return 0;
}

void talus_value_close(talus_value *v)
{
    if (!v)
        return;
    bl_reader_close(v->blob);
    tl_buf_free(&v->inline_val);
    free(v);
}

/* ---- Copies ------------------------------------------------------------------ */

int talus_batch_copy(talus_batch *b, talus_tree *t, const void *key, size_t klen, talus_tree *src,
                     const talus_snapshot *snap, const void *src_key, size_t src_klen)
{
    if (!b)
        return tl_err(TALUS_EINVAL, "NULL batch");
    TRY(db_check_tree(t));
    TRY(db_check_tree(src));
    TRY(db_check_key(key, klen));
    TRY(db_check_key(src_key, src_klen));
    if (src->db != t->db)
        return tl_err(TALUS_EINVAL, "talus_batch_copy between two databases");
    TRY(db_check_writable(t->db));
    uint64_t seq = snap ? snap->seq : talus_seqno(src->db);
    uint8_t type = 0;
    tl_buf val = {0};
    bl_ref ref;
    int rc =
        tr_copy_value(t->tr, src->tr, tl_slice_make(src_key, src_klen), seq, &type, &val, &ref);
    if (rc == 0)
        rc = TALUS_ENOTFOUND;
    else if (rc > 0 && type == TL_TYPE_BLOB) {
        rc = db_batch_add_blob(b, t, key, klen, &ref);
        if (rc < 0)
            tr_blob_discard(t->tr, ref.number);
    } else if (rc > 0) {
        rc = talus_batch_put(b, t, key, klen, val.data ? (void *)val.data : "", val.len);
    }
    tl_buf_free(&val);
    return rc;
}

/* ---- Streamed writes ------------------------------------------------------ */

struct talus_value_writer {
    talus_tree *tree;
    bl_writer *w; /* NULL once finished */
    bl_ref ref;   /* the finished blob */
};

int talus_value_writer_new(talus_tree *t, talus_value_writer **out)
{
    if (!out)
        return tl_err(TALUS_EINVAL, "NULL argument to talus_value_writer_new");
    *out = NULL;
    TRY(db_check_tree(t));
    TRY(db_check_writable(t->db));
    talus_value_writer *vw = calloc(1, sizeof *vw);
    if (!vw)
        return tl_err(TALUS_ENOMEM, "out of memory starting a value");
    vw->tree = t;
    int rc = tr_blob_writer_new(t->tr, &vw->w);
    if (rc < 0) {
        free(vw);
        return rc;
    }
    *out = vw;
    return 0;
}

int talus_value_writer_append(talus_value_writer *w, const void *buf, size_t n)
{
    if (!w || (!buf && n))
        return tl_err(TALUS_EINVAL, "NULL argument to talus_value_writer_append");
    if (!w->w)
        return tl_err(TALUS_EINVAL, "value writer already finished");
    return bl_writer_append(w->w, buf, n);
}

uint64_t talus_value_writer_length(const talus_value_writer *w)
{
    if (!w)
        return 0;
    return w->w ? bl_writer_length(w->w) : w->ref.length;
}

int talus_value_writer_read(talus_value_writer *w, uint64_t off, void *buf, size_t n, size_t *got)
{
    if (!w || !got || (!buf && n))
        return tl_err(TALUS_EINVAL, "NULL argument to talus_value_writer_read");
    if (!w->w)
        return tl_err(TALUS_EINVAL, "value writer already finished");
    return bl_writer_read(w->w, off, buf, n, got);
}

int talus_value_writer_finish(talus_value_writer *w)
{
    if (!w)
        return tl_err(TALUS_EINVAL, "NULL value writer");
    if (!w->w)
        return 0;
    int rc = bl_writer_finish(w->w, &w->ref); /* frees the blob writer either way */
    w->w = NULL;
    if (rc < 0)
        w->ref = (bl_ref){0, 0}; /* nothing on disk to remove */
    return rc;
}

void talus_value_writer_abort(talus_value_writer *w)
{
    if (!w)
        return;
    if (w->w)
        bl_writer_abort(w->w);
    else if (w->ref.number && !w->tree->dropped)
        tr_blob_discard(w->tree->tr, w->ref.number);
    free(w);
}

int talus_batch_put_value(talus_batch *b, talus_tree *t, const void *key, size_t klen,
                          talus_value_writer *w)
{
    if (!w)
        return tl_err(TALUS_EINVAL, "NULL value writer");
    int rc = 0;
    if (!b)
        rc = tl_err(TALUS_EINVAL, "NULL batch");
    else if (t != w->tree)
        rc = tl_err(TALUS_EINVAL, "value writer belongs to another tree");
    if (rc == 0)
        rc = db_check_tree(t);
    if (rc == 0)
        rc = db_check_key(key, klen);
    if (rc < 0) {
        talus_value_writer_abort(w);
        return rc;
    }
    rc = talus_value_writer_finish(w);
    bl_ref ref = w->ref;
    free(w);
    TRY(rc);
    if (ref.number == 0)
        return tl_err(TALUS_EINVAL, "value writer failed earlier");
    rc = db_batch_add_blob(b, t, key, klen, &ref);
    if (rc < 0)
        tr_blob_discard(t->tr, ref.number);
    return rc;
}
