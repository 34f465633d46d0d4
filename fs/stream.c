/*
 * stream.c - the contents of a write buffer: held in memory, or streamed
 * to an engine value writer; writes, truncates and reads of them, and
 * their hand-over to a commit's batch (file.c creates, loads, commits and
 * frees the buffer).
 *
 * A write buffer holds the contents in memory, or it "streams": they go
 * to an engine value writer (talus_value_writer, a blob file being written
 * with about 1 MiB of staging memory) and data is unused. A buffer streams
 * once a write at or past its end (an append, as cp, dd, tar and rsync's
 * temp files do) makes it reach blob_size; a hole at the end is appended
 * as zeros. Anything that needs random access turns it back into memory
 * first ("materialize": read it back, drop the writer): a write before the
 * end, or a truncate that shrinks it below blob_size (a larger shrink
 * copies the kept part to a new writer). Reads through a writable handle
 * read the writer. A commit hands the writer to its batch
 * (talus_batch_put_value, which syncs the blob file) and the buffer
 * becomes unloaded, as after an open: the next write loads the committed
 * value again, and if it appends to a large one, copies it to a new writer
 * by ranges instead of loading it. So memory grows only with files
 * rewritten in place; a file that alternates appends and writes before its
 * end goes back to streaming only after doubling its length (stream_at),
 * so that the copies cost O(size) in total, not O(size^2). Every path that
 * drops a buffer aborts its writer (no .blob.tmp is left).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "fs.h"
#include "file_int.h"

void tfs_wbuf_clear(struct tfs_wbuf *w)
{
    talus_value_writer_abort(w->vw);
    w->vw = NULL;
    if (w->talus_mem)
        talus_free(w->data);
    else
        free(w->data);
    w->data = NULL;
    w->len = w->cap = 0;
    w->talus_mem = false;
}

static int wbuf_reserve(struct tfs_wbuf *w, size_t need, uint64_t max)
{
    if (need <= w->cap)
        return 0;
    size_t cap = w->cap < 4096 ? 4096 : w->cap + w->cap / 2;
    if (cap < need)
        cap = need;
    if (cap > max)
        cap = (size_t)max;
    uint8_t *p;
    if (w->talus_mem) {
        p = malloc(cap);
        if (p && w->len)
            memcpy(p, w->data, w->len);
        if (p) {
            talus_free(w->data);
            w->talus_mem = false;
        }
    } else {
        p = realloc(w->data, cap);
    }
    if (!p)
        return -ENOMEM;
    w->data = p;
    w->cap = cap;
    return 0;
}

#define COPY_PIECE (1u << 20) /* bytes copied at a time from value to value */

/* Read bytes [off, off + n) of the committed value val or, if val is NULL,
 * of the writer vw into buf: all of them must be there. */
static int piece_read(talus_value *val, talus_value_writer *vw, uint64_t off, void *buf, size_t n)
{
    size_t got = 0;
    int rc = val ? talus_value_read(val, off, buf, n, &got)
                 : talus_value_writer_read(vw, off, buf, n, &got);
    if (rc < 0)
        return tfs_errno(rc, "read");
    if (got != n) {
        tfs_log(LOG_ERR, "short read of a file's contents: %zu of %zu bytes at offset %llu", got, n,
                (unsigned long long)off);
        return -EIO;
    }
    return 0;
}

static int append_zeros(talus_value_writer *vw, uint64_t n)
{
    static const uint8_t zeros[65536];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        int rc = talus_value_writer_append(vw, zeros, k);
        if (rc < 0)
            return tfs_errno(rc, "write");
        n -= k;
    }
    return 0;
}

int tfs_new_writer(struct tfs *fs, talus_value *val, talus_value_writer *src, uint64_t keep,
                   uint64_t len, talus_value_writer **out)
{
    talus_value_writer *vw = NULL;
    uint8_t *buf = NULL;
    int rc = talus_value_writer_new(fs->data, &vw);
    if (rc < 0)
        return tfs_errno(rc, "write");
    if (keep && !(buf = malloc(keep < COPY_PIECE ? (size_t)keep : COPY_PIECE)))
        rc = -ENOMEM;
    for (uint64_t off = 0; rc == 0 && off < keep;) {
        size_t k = keep - off < COPY_PIECE ? (size_t)(keep - off) : COPY_PIECE;
        rc = piece_read(val, src, off, buf, k);
        if (rc == 0 && (rc = talus_value_writer_append(vw, buf, k)) < 0)
            rc = tfs_errno(rc, "write");
        off += k;
    }
    free(buf);
    if (rc == 0 && len > keep)
        rc = append_zeros(vw, len - keep);
    if (rc < 0) {
        talus_value_writer_abort(vw);
        return rc;
    }
    *out = vw;
    return 0;
}

int tfs_txn_put_writer(struct tfs_txn *tx, const uint8_t *key, size_t klen, talus_value_writer *vw)
{
    if (klen == 0 || klen > TALUS_MAX_KEY) {
        talus_value_writer_abort(vw);
        return -ENAMETOOLONG;
    }
    int rc = talus_batch_put_value(tx->b, tx->fs->data, key, klen, vw);
    return rc < 0 ? tfs_errno(rc, "commit") : 0;
}

/* Whether a buffer in memory should stream before it grows to end by a
 * write at pos. Not for a write before its end: that is a rewrite. */
static bool wbuf_streams(const struct tfs *fs, const struct tfs_wbuf *w, uint64_t pos, uint64_t end)
{
    return fs->cfg.blob_size > 0 && pos >= w->len && end >= fs->cfg.blob_size &&
           end >= w->stream_at;
}

/* Memory -> streaming: the bytes so far go to a new writer. */
static int wbuf_stream(struct tfs *fs, struct tfs_wbuf *w)
{
    talus_value_writer *vw = NULL;
    int rc = tfs_new_writer(fs, NULL, NULL, 0, 0, &vw);
    if (rc == 0 && w->len && (rc = talus_value_writer_append(vw, w->data, w->len)) < 0) {
        rc = tfs_errno(rc, "write");
        talus_value_writer_abort(vw);
    }
    if (rc < 0)
        return rc;
    size_t len = w->len;
    tfs_wbuf_clear(w);
    w->vw = vw;
    w->len = len;
    return 0;
}

/* Streaming -> memory, keeping the first keep (<= len) bytes. The buffer
 * streams again only at twice its length (see the top). */
static int wbuf_materialize(struct tfs_wbuf *w, uint64_t keep)
{
    uint8_t *p = keep ? malloc((size_t)keep) : NULL;
    if (keep && !p)
        return -ENOMEM;
    int rc = keep ? piece_read(NULL, w->vw, 0, p, (size_t)keep) : 0;
    if (rc < 0) {
        free(p);
        return rc;
    }
    w->stream_at = 2 * (uint64_t)w->len;
    talus_value_writer_abort(w->vw);
    w->vw = NULL;
    w->data = p;
    w->len = w->cap = (size_t)keep;
    w->talus_mem = false;
    return 0;
}

int tfs_wbuf_resize(struct tfs *fs, struct tfs_wbuf *w, uint64_t size)
{
    if (size > fs->cfg.max_file_size)
        return -EFBIG;
    int rc = 0;
    if (!w->vw && size > w->len && wbuf_streams(fs, w, w->len, size))
        rc = wbuf_stream(fs, w);
    if (rc == 0 && w->vw && size < w->len) {
        talus_value_writer *vw;
        if (size < fs->cfg.blob_size) {
            rc = wbuf_materialize(w, size);
        } else if ((rc = tfs_new_writer(fs, NULL, w->vw, size, size, &vw)) == 0) {
            talus_value_writer_abort(w->vw); /* a shrink that stays large */
            w->vw = vw;
        }
    } else if (rc == 0 && w->vw && size > w->len) {
        rc = append_zeros(w->vw, size - w->len);
        if (rc < 0)
            w->len = (size_t)talus_value_writer_length(w->vw);
    }
    if (rc < 0)
        return rc;
    if (!w->vw && size > w->len) {
        rc = wbuf_reserve(w, (size_t)size, fs->cfg.max_file_size);
        if (rc < 0)
            return rc;
        memset(w->data + w->len, 0, (size_t)size - w->len);
    }
    w->len = (size_t)size;
    w->dirty = w->wrote = true;
    return 0;
}

int tfs_wbuf_write(struct tfs *fs, struct tfs_wbuf *w, uint64_t pos, const char *buf, size_t size)
{
    uint64_t end = pos + size;
    int rc = 0;
    if (w->vw && pos < w->len)
        rc = wbuf_materialize(w, w->len); /* a rewrite in place */
    else if (!w->vw && wbuf_streams(fs, w, pos, end))
        rc = wbuf_stream(fs, w);
    if (rc < 0)
        return rc;
    if (w->vw) {
        rc = append_zeros(w->vw, pos - w->len);
        if (rc == 0 && size && (rc = talus_value_writer_append(w->vw, buf, size)) < 0)
            rc = tfs_errno(rc, "write");
        w->len = (size_t)talus_value_writer_length(w->vw);
        return rc;
    }
    rc = wbuf_reserve(w, (size_t)end, fs->cfg.max_file_size);
    if (rc < 0)
        return rc;
    if (pos > w->len)
        memset(w->data + w->len, 0, (size_t)pos - w->len);
    if (size)
        memcpy(w->data + pos, buf, size);
    if (end > w->len)
        w->len = (size_t)end;
    return 0;
}

int tfs_wbuf_load_write(struct tfs *fs, struct tfs_node *n, bool append, uint64_t off, size_t size)
{
    struct tfs_wbuf *w = n->w;
    if (w->loaded || fs->cfg.blob_size == 0)
        return tfs_wbuf_load(fs, n, false);
    talus_value *val = NULL;
    struct tfs_view live = {NULL};
    pthread_rwlock_rdlock(&fs->ns);
    int rc = n->linked ? tfs_file_value_open(fs, n, live, &val) : 0;
    pthread_rwlock_unlock(&fs->ns);
    if (rc < 0)
        return rc;
    uint64_t len = val ? talus_value_length(val) : 0;
    uint64_t pos = append ? len : off;
    if (val && pos >= len && pos + size >= fs->cfg.blob_size && len <= fs->cfg.max_file_size) {
        rc = tfs_new_writer(fs, val, NULL, len, len, &w->vw);
        if (rc == 0) {
            w->len = (size_t)len;
            w->loaded = true;
        }
    }
    talus_value_close(val);
    return rc < 0 || w->loaded ? rc : tfs_wbuf_load(fs, n, false);
}

int tfs_wbuf_txn_put(struct tfs_txn *tx, struct tfs_node *n, const uint8_t *key, size_t klen)
{
    struct tfs *fs = tx->fs;
    struct tfs_wbuf *w = n->w;
    if (!w->vw)
        return tfs_txn_put(tx, fs->data, key, klen, w->data ? (void *)w->data : "", w->len);
    int rc = tfs_txn_put_writer(tx, key, klen, w->vw);
    w->vw = NULL;
    tfs_wbuf_clear(w);
    w->loaded = w->dirty = w->wrote = false;
    w->stream_at = 0;
    /* n->pend stays until the batch commits (tfs_file_txn_done): until
     * then stat must keep showing the size being committed. */
    w->handed = true;
    return rc;
}

int tfs_wbuf_pread(struct tfs *fs, struct tfs_node *n, uint64_t off, size_t size, char **out,
                   size_t *got)
{
    struct tfs_wbuf *w = n->w;
    talus_value *val = NULL;
    uint64_t len = w->len;
    int rc = 0;
    *out = NULL;
    *got = 0;
    if (!w->loaded) {
        struct tfs_view live = {NULL};
        pthread_rwlock_rdlock(&fs->ns);
        rc = n->linked ? tfs_file_value_open(fs, n, live, &val) : 0;
        pthread_rwlock_unlock(&fs->ns);
        len = val ? talus_value_length(val) : 0;
    }
    size_t want = off >= len ? 0 : len - off < size ? (size_t)(len - off) : size;
    if (rc == 0 && want && !(*out = malloc(want)))
        rc = -ENOMEM;
    if (rc == 0 && want && w->loaded && !w->vw)
        memcpy(*out, w->data + off, want);
    else if (rc == 0 && want)
        rc = piece_read(val, w->vw, off, *out, want);
    talus_value_close(val);
    if (rc == 0)
        *got = want;
    return rc;
}
