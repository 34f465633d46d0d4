/*
 * writer.c - appends framed records to journal segments (FORMAT.md).
 *
 * Hot path: jnl_writer_add frames a record straight into the staging
 * buffer (no per-record allocation once the buffer has grown), and
 * jnl_writer_write hands the whole group to the OS with ONE append, so a
 * group of batches costs one write() however many records it holds.
 *
 * States: OPEN (a segment file is open, `err` == 0) and BROKEN (`err` < 0).
 * Any failed append, sync, close or segment creation moves the writer to
 * BROKEN for good: after a failed write the file may hold part of a group,
 * and after a failed fdatasync the kernel may have dropped dirty pages
 * while reporting the error only once, so nothing written since the last
 * good sync can be trusted. Every later call returns the first error again
 * (with its message), so the db goes read-only instead of acknowledging
 * records that may not be on disk. Argument errors (EINVAL, ENOMEM while
 * staging) do not break the writer.
 *
 * Invariants while OPEN: `bytes` is the file's length (header + every
 * record appended); every staged byte is whole frames.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/jnl_internal.h"
#include "journal/journal.h"
#include "util/err.h"
#include "util/hash.h"

/* A staging buffer grown past this by one huge record is given back. */
#define STAGE_KEEP (8u << 20)
/* Records at least this big skip the staging copy: staged records are
 * written first (order), then the frame and the caller's payload. */
#define DIRECT_MIN (1u << 20)

struct jnl_writer {
    tl_env *env;
    char *dir;
    char *path; /* current segment */
    tl_file *file;
    uint64_t number;
    uint64_t bytes;
    tl_buf stage;
    int err;
    char errmsg[256];
};

static int broken(jnl_writer *w, int rc)
{
    if (!w->err) {
        w->err = rc;
        snprintf(w->errmsg, sizeof w->errmsg, "%s", tl_errmsg());
    }
    return rc;
}

static int check(const jnl_writer *w)
{
    if (TL_LIKELY(!w->err))
        return 0;
    return tl_err(w->err, "journal writer for %s is broken by an earlier error: %s",
                  w->path ? w->path : w->dir, w->errmsg);
}

/* Creates segment `number`: file, header, fdatasync, directory sync, so the
 * segment exists with a valid header before any record is acknowledged in
 * it. On failure nothing is left behind (best effort) and w is unchanged. */
static int open_segment(jnl_writer *w, uint64_t number)
{
    size_t n = strlen(w->dir) + 32;
    char *path = malloc(n);
    tl_file *f = NULL;
    bool created = false;
    int rc = 0;
    if (!path)
        return tl_err(TALUS_ENOMEM, "out of memory opening a journal segment in %s", w->dir);
    jnl_segment_name(path, n, w->dir, number);
    rc = tl_env_exists(w->env, path);
    if (rc > 0)
        rc = tl_err(TALUS_EEXIST, "journal segment %s already exists", path);
    if (rc < 0)
        goto out;
    TRY_OUT(tl_env_open_write(w->env, path, &f));
    created = true;
    uint8_t hdr[JNL_HEADER_SIZE];
    jnl_header_encode(hdr, JNL_FORMAT_VERSION, number);
    TRY_OUT(tl_file_append(f, hdr, sizeof hdr));
    TRY_OUT(tl_file_sync(f));
    TRY_OUT(tl_env_sync_dir(w->env, w->dir));
    free(w->path);
    w->path = path;
    w->file = f;
    w->number = number;
    w->bytes = JNL_HEADER_SIZE;
    return 0;
out:;
    /* Keep the first error's message through the cleanup. */
    char msg[256];
    snprintf(msg, sizeof msg, "%s", tl_errmsg());
    tl_file_close(f);
    if (created)
        tl_env_remove(w->env, path);
    free(path);
    return tl_err(rc, "%s", msg);
}

int jnl_writer_open(tl_env *env, const char *dir, uint64_t number, jnl_writer **out)
{
    *out = NULL;
    jnl_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        return tl_err(TALUS_ENOMEM, "out of memory opening a journal writer in %s", dir);
    }
    w->env = env;
    int rc = open_segment(w, number);
    if (rc < 0) {
        free(w->dir);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int jnl_writer_add(jnl_writer *w, tl_slice payload)
{
    TRY(check(w));
    if (payload.len == 0)
        return tl_err(TALUS_EINVAL, "journal record must not be empty");
    /* The fixed64 length holds any batch (values up to 2^32-1 bytes each,
     * plus keys), so the only limit is what this process can address. */
    if (payload.len > SIZE_MAX - JNL_FRAME_SIZE)
        return tl_err(TALUS_ETOOBIG, "journal record of %zu bytes is too big", payload.len);
    if (payload.len >= DIRECT_MIN) {
        TRY(jnl_writer_write(w));
        uint8_t frame[JNL_FRAME_SIZE];
        jnl_frame_encode(frame, (uint64_t)payload.len, tl_xxh3(payload.data, payload.len));
        int rc = tl_file_append(w->file, frame, sizeof frame);
        if (rc == 0)
            rc = tl_file_append(w->file, payload.data, payload.len);
        if (rc < 0)
            return broken(w, rc);
        w->bytes += JNL_FRAME_SIZE + payload.len;
        return 0;
    }
    TRY(tl_buf_reserve(&w->stage, JNL_FRAME_SIZE + payload.len));
    /* Copy, then hash the copy while it is still in cache: one pass over
     * the payload for the checksum (the length check hashes 8 bytes). */
    uint8_t *p = w->stage.data + w->stage.len;
    memcpy(p + JNL_FRAME_SIZE, payload.data, payload.len);
    jnl_frame_encode(p, (uint64_t)payload.len, tl_xxh3(p + JNL_FRAME_SIZE, payload.len));
    w->stage.len += JNL_FRAME_SIZE + payload.len;
    return 0;
}

int jnl_writer_write(jnl_writer *w)
{
    TRY(check(w));
    if (w->stage.len == 0)
        return 0;
    int rc = tl_file_append(w->file, w->stage.data, w->stage.len);
    if (rc == 0)
        w->bytes += w->stage.len;
    tl_buf_clear(&w->stage);
    if (w->stage.cap > STAGE_KEEP)
        tl_buf_free(&w->stage);
    return rc < 0 ? broken(w, rc) : 0;
}

int jnl_writer_sync(jnl_writer *w)
{
    TRY(check(w));
    int rc = tl_file_sync(w->file);
    return rc < 0 ? broken(w, rc) : 0;
}

int jnl_writer_rotate(jnl_writer *w, uint64_t number)
{
    TRY(check(w));
    if (number <= w->number)
        return tl_err(TALUS_EINVAL, "journal rotation from segment %llu to %llu: numbers must grow",
                      (unsigned long long)w->number, (unsigned long long)number);
    /* Staged records belong to the old segment. */
    TRY(jnl_writer_write(w));
    TRY(jnl_writer_sync(w));
    int rc = tl_file_close(w->file);
    w->file = NULL;
    if (rc < 0)
        return broken(w, rc);
    rc = open_segment(w, number);
    return rc < 0 ? broken(w, rc) : 0;
}

uint64_t jnl_writer_segment(const jnl_writer *w)
{
    return w->number;
}

uint64_t jnl_writer_segment_bytes(const jnl_writer *w)
{
    return w->bytes;
}

int jnl_writer_close(jnl_writer *w)
{
    if (!w)
        return 0;
    int rc = tl_file_close(w->file);
    tl_buf_free(&w->stage);
    free(w->path);
    free(w->dir);
    free(w);
    return rc;
}
