/*
 * blob_writer.c - streams one value into a new blob file (FORMAT.md).
 *
 * Appended bytes are cut into chunks in a staging buffer of BL_STAGE_CHUNKS
 * whole chunks with their checksums (about 1 MiB), and the buffer goes to the
 * file in one append when full: a multi-gigabyte value costs one syscall per
 * megabyte and never more memory than the buffer.
 *
 * Invariants between calls:
 *  - buf[0, used) is encoded file content not yet appended (only whole
 *    chunks with their checksums, plus the header before the first flush);
 *  - buf[used, used + cur) holds the first `cur` (< BL_CHUNK) bytes of the
 *    chunk being filled, and there is room after it for the rest of the
 *    chunk and its checksum;
 *  - `err` is 0, or the first error: the file's content is then unknown
 *    and every later call returns an error (the caller must abort).
 * On any failure of finish the file is removed under whichever name it has
 * at that moment, so a failed write leaves neither "<n>.blob.tmp" nor
 * "<n>.blob" behind.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob.h"
#include "blob/blob_format.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"

#define BL_STAGE_CHUNKS 16u
/* The header rides along with the first batch of chunks. */
#define BL_STAGE_SIZE (BL_HEADER_SIZE + BL_STAGE_CHUNKS * BL_CHUNK_DISK)

struct bl_writer {
    tl_env *env;
    tl_file *f;
    tl_file *rf;      /* read handle on tmp for bl_writer_read, opened lazily */
    uint64_t flushed; /* bytes of the file appended so far (buf holds what follows) */
    char *dir;
    char *tmp;
    uint64_t number;
    uint64_t length; /* bytes appended */
    uint64_t chunks; /* chunks sealed */
    uint8_t *buf;    /* BL_STAGE_SIZE bytes */
    size_t used;
    size_t cur;
    int err;
    char errmsg[400]; /* message of err, repeated by later calls */
};

uint64_t bl_writer_length(const bl_writer *w)
{
    return w->length;
}

uint64_t bl_writer_number(const bl_writer *w)
{
    return w->number;
}

/* Frees w and everything it holds (the file must be closed). */
static void writer_free(bl_writer *w)
{
    tl_file_close(w->rf);
    free(w->dir);
    free(w->tmp);
    free(w->buf);
    free(w);
}

/* Remembers the first failure (rc, with the message just set); later
 * calls see it again. */
static int writer_fail(bl_writer *w, int rc)
{
    if (!w->err) {
        w->err = rc;
        snprintf(w->errmsg, sizeof w->errmsg, "%s", tl_errmsg());
    }
    return rc;
}

static int writer_failed(const bl_writer *w)
{
    return tl_err(w->err, "blob %s: writer unusable after an earlier error: %s", w->tmp, w->errmsg);
}

static int writer_flush(bl_writer *w)
{
    if (w->used == 0)
        return 0;
    int rc = tl_file_append(w->f, w->buf, w->used);
    if (rc < 0)
        return writer_fail(w, rc);
    w->flushed += w->used;
    w->used = 0;
    return 0;
}

/* Closes the chunk being filled (cur bytes, possibly short at the end). */
static void writer_seal(bl_writer *w)
{
    uint8_t *chunk = w->buf + w->used;
    tl_put_fixed64(chunk + w->cur, bl_chunk_checksum(chunk, w->cur, w->chunks));
    w->used += w->cur + BL_CHECKSUM_SIZE;
    w->cur = 0;
    w->chunks++;
}

int bl_writer_open(tl_env *env, const char *dir, uint64_t number, bl_writer **out)
{
    int rc = 0;
    bl_writer *w = calloc(1, sizeof *w);
    if (!w)
        return tl_err(TALUS_ENOMEM, "out of memory opening blob %" PRIu64, number);
    w->env = env;
    w->number = number;
    w->dir = strdup(dir);
    w->buf = malloc(BL_STAGE_SIZE);
    if (!w->dir || !w->buf)
        TRY_OUT(tl_err(TALUS_ENOMEM, "out of memory opening blob %" PRIu64, number));
    if (!(w->tmp = bl_path_alloc(dir, number, ".tmp")))
        TRY_OUT(TALUS_ENOMEM);
    TRY_OUT(tl_env_open_write(env, w->tmp, &w->f));
    memcpy(w->buf, BL_HEADER_MAGIC, BL_MAGIC_SIZE);
    tl_put_fixed32(w->buf + 8, BL_FORMAT_VERSION);
    tl_put_fixed32(w->buf + 12, 0); /* flags */
    w->used = BL_HEADER_SIZE;
    *out = w;
out:
    if (rc < 0)
        writer_free(w);
    return rc;
}

int bl_writer_append(bl_writer *w, const void *p, size_t n)
{
    if (w->err)
        return writer_failed(w);
    if (n > TALUS_MAX_VALUE - w->length)
        return writer_fail(w, tl_err(TALUS_ETOOBIG, "blob %s: value over the limit of %u bytes",
                                     w->tmp, TALUS_MAX_VALUE));
    const uint8_t *src = p;
    w->length += n;
    while (n > 0) {
        size_t k = BL_CHUNK - w->cur;
        if (k > n)
            k = n;
        memcpy(w->buf + w->used + w->cur, src, k);
        w->cur += k;
        src += k;
        n -= k;
        if (w->cur == BL_CHUNK) {
            writer_seal(w);
            if (w->used + BL_CHUNK_DISK > BL_STAGE_SIZE)
                TRY(writer_flush(w));
        }
    }
    return 0;
}

int bl_writer_finish(bl_writer *w, bl_ref *ref)
{
    int rc = w->err;
    bool renamed = false;
    char *final = NULL;
    if (rc < 0) {
        writer_failed(w);
        goto out;
    }
    if (!(final = bl_path_alloc(w->dir, w->number, "")))
        TRY_OUT(TALUS_ENOMEM);
    if (w->cur > 0)
        writer_seal(w);
    if (w->used + BL_FOOTER_SIZE > BL_STAGE_SIZE)
        TRY_OUT(writer_flush(w));
    uint8_t *ft = w->buf + w->used;
    tl_put_fixed64(ft, w->length);
    tl_put_fixed32(ft + 8, BL_CHUNK);
    tl_put_fixed32(ft + 12, 1); /* value count */
    tl_put_fixed64(ft + 16, tl_xxh3(ft, 16));
    memcpy(ft + 24, BL_FOOTER_MAGIC, BL_MAGIC_SIZE);
    w->used += BL_FOOTER_SIZE;
    TRY_OUT(writer_flush(w));
    TRY_OUT(tl_file_sync(w->f));
    tl_file *f = w->f;
    w->f = NULL;
    TRY_OUT(tl_file_close(f));
    TRY_OUT(tl_env_rename(w->env, w->tmp, final));
    renamed = true;
    TRY_OUT(tl_env_sync_dir(w->env, w->dir));
    ref->number = w->number;
    ref->length = w->length;
out:
    if (rc < 0) {
        /* Keep the message of the failure, not of the cleanup. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", tl_errmsg());
        if (w->f)
            tl_file_close(w->f);
        tl_env_remove(w->env, renamed ? final : w->tmp);
        tl_err(rc, "%s", msg);
    }
    free(final);
    writer_free(w);
    return rc;
}

/* Copy value bytes [off, off + n) of chunk c (all within it) into out:
 * from the file if that part is flushed, else from the staging buffer. */
static int read_chunk_part(bl_writer *w, uint64_t c, uint64_t off, uint8_t *out, size_t n)
{
    uint64_t disk = bl_chunk_offset(c) + off;
    if (c == w->chunks) { /* the chunk being filled: always staged */
        memcpy(out, w->buf + w->used + off, n);
        return 0;
    }
    if (disk >= w->flushed) {
        memcpy(out, w->buf + (disk - w->flushed), n);
        return 0;
    }
    if (!w->rf)
        TRY(tl_env_open_read(w->env, w->tmp, &w->rf));
    size_t got;
    TRY(tl_file_pread(w->rf, out, n, disk, &got));
    if (got != n)
        return tl_err(TALUS_EIO, "blob %s: short read of %zu bytes at %" PRIu64, w->tmp, n, disk);
    return 0;
}

int bl_writer_read(bl_writer *w, uint64_t off, void *buf, size_t n, size_t *got)
{
    *got = 0;
    if (w->err)
        return writer_failed(w);
    if (off >= w->length)
        return 0;
    if (n > w->length - off)
        n = (size_t)(w->length - off);
    uint8_t *dst = buf;
    while (*got < n) {
        uint64_t pos = off + *got;
        uint64_t c = pos / BL_CHUNK, in = pos % BL_CHUNK;
        size_t k = (size_t)(BL_CHUNK - in);
        if (k > n - *got)
            k = n - *got;
        TRY(read_chunk_part(w, c, in, dst + *got, k));
        *got += k;
    }
    return 0;
}

void bl_writer_abort(bl_writer *w)
{
    if (!w)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", tl_errmsg());
    tl_file_close(w->f);
    tl_env_remove(w->env, w->tmp);
    tl_err(0, "%s", msg);
    writer_free(w);
}

int bl_write(tl_env *env, const char *dir, uint64_t number, const void *p, size_t n, bl_ref *ref)
{
    bl_writer *w;
    TRY(bl_writer_open(env, dir, number, &w));
    int rc = bl_writer_append(w, p, n);
    if (rc < 0) {
        bl_writer_abort(w);
        return rc;
    }
    return bl_writer_finish(w, ref);
}
