/*
 * reader.c - reads the records of one journal segment, telling a torn tail
 * (a crash while appending: end of data) from damage (corruption) by the
 * rules of FORMAT.md section 4.
 *
 * Records are read through a window over the file: large preads into one
 * chunk buffer, with the unread tail moved to the front when the window
 * slides, so small records cost no syscall each. A record too big for the
 * chunk is read whole into a separate growable buffer; its length was first
 * verified by its length_check and checked against the bytes left in the
 * file, so a damaged length can never make us allocate more than the file
 * holds, nor pass for a record cut short.
 *
 * States: reading (pos = offset of the next record = end of the last good
 * one), done (end of data; `torn` says how it ended) and failed (`err`, the
 * error is returned again by every later call). Nothing read from the file
 * is used before it has been bounds-checked against the file size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/jnl_internal.h"
#include "journal/journal.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"

#define CHUNK (512u << 10)
/* A big-record buffer grown past this is given back on the next call. */
#define BIG_KEEP (8u << 20)

struct jnl_reader {
    tl_file *file;
    char *path;
    uint64_t number; /* from the file name */
    uint64_t size;
    uint8_t *chunk;
    size_t chunk_cap;
    uint64_t chunk_off; /* file offset of chunk[0] */
    size_t chunk_len;
    tl_buf big;
    uint64_t pos;
    bool done, torn;
    int err;
    char errmsg[320];
};

static int fail(jnl_reader *r, int rc)
{
    r->err = rc;
    snprintf(r->errmsg, sizeof r->errmsg, "%s", tl_errmsg());
    return rc;
}

/* Reads exactly n bytes at off (the caller checked off + n <= size). */
static int read_exact(jnl_reader *r, uint8_t *dst, size_t n, uint64_t off)
{
    size_t got;
    TRY(tl_file_pread(r->file, dst, n, off, &got));
    if (got != n)
        return tl_err(TALUS_EIO, "journal segment %s shrank while being read (offset %llu)",
                      r->path, (unsigned long long)(off + got));
    return 0;
}

/* Makes [off, off + n) (n <= chunk_cap, off + n <= size) available in the
 * chunk and points *p at it. Invalidates pointers from earlier calls. */
static int window(jnl_reader *r, uint64_t off, size_t n, const uint8_t **p)
{
    if (off >= r->chunk_off && off + n <= r->chunk_off + r->chunk_len) {
        *p = r->chunk + (off - r->chunk_off);
        return 0;
    }
    size_t keep = 0;
    if (off >= r->chunk_off && off < r->chunk_off + r->chunk_len) {
        keep = (size_t)(r->chunk_off + r->chunk_len - off);
        memmove(r->chunk, r->chunk + (off - r->chunk_off), keep);
    }
    uint64_t left = r->size - off;
    size_t want = left < r->chunk_cap ? (size_t)left : r->chunk_cap;
    r->chunk_off = off;
    r->chunk_len = keep;
    TRY(read_exact(r, r->chunk + keep, want - keep, off + keep));
    r->chunk_len = want;
    *p = r->chunk;
    return 0;
}

/* *zero = whether every byte of [from, size) is zero. */
static int zero_to_eof(jnl_reader *r, uint64_t from, bool *zero)
{
    *zero = true;
    while (from < r->size) {
        uint64_t left = r->size - from;
        size_t n = left < r->chunk_cap ? (size_t)left : r->chunk_cap;
        const uint8_t *p;
        TRY(window(r, from, n, &p));
        for (size_t i = 0; i < n; i++)
            if (p[i]) {
                *zero = false;
                return 0;
            }
        from += n;
    }
    return 0;
}

static int end_of_data(jnl_reader *r, bool torn)
{
    r->done = true;
    r->torn = torn;
    return 0;
}

/* Validates the segment header (FORMAT.md section 2). */
static int read_header(jnl_reader *r)
{
    const uint8_t *h;
    bool zero;
    if (r->size < JNL_HEADER_SIZE) {
        /* A header cut short: torn if what is there could be its start. */
        TRY(zero_to_eof(r, 0, &zero));
        TRY(window(r, 0, (size_t)r->size, &h));
        uint8_t magic[8];
        tl_put_fixed64(magic, JNL_MAGIC);
        size_t m = r->size < 8 ? (size_t)r->size : 8;
        if (!zero && memcmp(h, magic, m) != 0)
            return tl_err(TALUS_ECORRUPT, "%s: not a talus journal segment (bad magic)", r->path);
        r->pos = 0;
        return end_of_data(r, true);
    }
    TRY(window(r, 0, JNL_HEADER_SIZE, &h));
    if (tl_get_fixed64(h) != JNL_MAGIC) {
        TRY(zero_to_eof(r, 0, &zero));
        if (!zero)
            return tl_err(TALUS_ECORRUPT, "%s: not a talus journal segment (bad magic)", r->path);
        r->pos = 0;
        return end_of_data(r, true);
    }
    /* The version is checked before the checksum: a later format may lay
     * out the rest of the header differently. */
    uint32_t version = tl_get_fixed32(h + 8);
    if (version > JNL_FORMAT_VERSION)
        return tl_err(TALUS_EVERSION,
                      "journal segment %s uses journal format %u; this build reads up to %u",
                      r->path, version, JNL_FORMAT_VERSION);
    if (version == 0)
        return tl_err(TALUS_ECORRUPT, "journal segment %s: invalid format version 0 in header",
                      r->path);
    if (tl_get_fixed64(h + 24) != tl_xxh3(h, 24))
        return tl_err(TALUS_ECORRUPT, "journal segment %s: header checksum mismatch at offset 0",
                      r->path);
    if (tl_get_fixed32(h + 12) != 0)
        return tl_err(TALUS_ECORRUPT, "journal segment %s: non-zero reserved field in header",
                      r->path);
    uint64_t number = tl_get_fixed64(h + 16);
    if (number != r->number)
        return tl_err(TALUS_ECORRUPT, "journal segment %s: header says segment %llu", r->path,
                      (unsigned long long)number);
    r->pos = JNL_HEADER_SIZE;
    return 0;
}

int jnl_reader_open(tl_env *env, const char *path, jnl_reader **out)
{
    *out = NULL;
    const char *slash = strrchr(path, '/');
    uint64_t number;
    if (!jnl_parse_segment_name(slash ? slash + 1 : path, &number))
        return tl_err(TALUS_EINVAL, "%s is not a journal segment name (<digits>.jnl)", path);
    jnl_reader *r = calloc(1, sizeof *r);
    int rc = 0;
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return tl_err(TALUS_ENOMEM, "out of memory opening journal segment %s", path);
    }
    r->number = number;
    TRY_OUT(tl_env_open_read(env, path, &r->file));
    TRY_OUT(tl_file_size(r->file, &r->size));
    r->chunk_cap = r->size < CHUNK ? (size_t)r->size : CHUNK;
    if (r->chunk_cap < JNL_HEADER_SIZE)
        r->chunk_cap = JNL_HEADER_SIZE;
    r->chunk = malloc(r->chunk_cap);
    if (!r->chunk) {
        rc = tl_err(TALUS_ENOMEM, "out of memory reading journal segment %s", path);
        goto out;
    }
    TRY_OUT(read_header(r));
    *out = r;
    return 0;
out:
    jnl_reader_close(r);
    return rc;
}

static int corrupt(jnl_reader *r, const char *what)
{
    return fail(r, tl_err(TALUS_ECORRUPT, "journal segment %s: record at offset %llu: %s", r->path,
                          (unsigned long long)r->pos, what));
}

/* *zero = whether the file reads as zeros from the record at pos to EOF,
 * either from pos itself or from a sector boundary inside the record's
 * length or length_check: after power loss the unsynced end of a file may
 * read as zeros from any sector boundary, cutting a frame in two. */
static int zero_filled_frame(jnl_reader *r, bool *zero)
{
    uint64_t from = r->pos;
    uint64_t boundary = (r->pos + JNL_SECTOR - 1) / JNL_SECTOR * JNL_SECTOR;
    if (boundary < r->pos + JNL_FRAME_LEN_PART)
        from = boundary; /* zeros from pos are zeros from here too */
    return zero_to_eof(r, from, zero);
}

int jnl_reader_next(jnl_reader *r, tl_slice *payload)
{
    if (r->err)
        return tl_err(r->err, "%s", r->errmsg);
    if (r->done)
        return 0;
    if (r->big.cap > BIG_KEEP)
        tl_buf_free(&r->big);
    uint64_t rem = r->size - r->pos;
    if (rem == 0)
        return end_of_data(r, false);
    /* A frame cut short holds no record, so nothing acknowledged can be
     * lost by calling it torn, whatever its bytes are. */
    if (rem < JNL_FRAME_SIZE)
        return end_of_data(r, true);

    const uint8_t *p;
    int rc = window(r, r->pos, JNL_FRAME_SIZE, &p);
    if (rc < 0)
        return fail(r, rc);
    uint64_t len = tl_get_fixed64(p + JNL_FRAME_LEN);
    uint64_t len_check = tl_get_fixed64(p + JNL_FRAME_LEN_CHECK);
    uint64_t want = tl_get_fixed64(p + JNL_FRAME_SUM);
    bool zero;
    if (jnl_length_check(len) != len_check) {
        /* Zeros (which never pass the check) are a file extended by a
         * crash before its data reached the disk. Anything else is a
         * damaged length: never taken for a record cut short. */
        if ((rc = zero_filled_frame(r, &zero)) < 0)
            return fail(r, rc);
        return zero ? end_of_data(r, true) : corrupt(r, "damaged length (length check mismatch)");
    }
    if (len == 0)
        return corrupt(r, "length 0 (never written)");
    if (len > rem - JNL_FRAME_SIZE)
        return end_of_data(r, true); /* a trustworthy length: cut short */

    const uint8_t *data;
    if (len <= r->chunk_cap - JNL_FRAME_SIZE) {
        if ((rc = window(r, r->pos, JNL_FRAME_SIZE + (size_t)len, &p)) < 0)
            return fail(r, rc);
        data = p + JNL_FRAME_SIZE;
    } else {
        if (len > SIZE_MAX) {
            return fail(r, tl_err(TALUS_ENOMEM,
                                  "journal segment %s: record at offset %llu is "
                                  "too big for this platform",
                                  r->path, (unsigned long long)r->pos));
        }
        /* len <= rem: never more than the file holds. */
        tl_buf_clear(&r->big);
        if ((rc = tl_buf_reserve(&r->big, (size_t)len)) < 0 ||
            (rc = read_exact(r, r->big.data, (size_t)len, r->pos + JNL_FRAME_SIZE)) < 0)
            return fail(r, rc);
        r->big.len = (size_t)len;
        data = r->big.data;
    }
    if (tl_xxh3(data, (size_t)len) != want) {
        /* A bad record with nothing but zeros after it is the last write
         * in flight when the machine stopped: its unsynced pages may hold
         * zeros or garbage. Damage followed by more data is not. */
        if ((rc = zero_to_eof(r, r->pos + JNL_FRAME_SIZE + len, &zero)) < 0)
            return fail(r, rc);
        return zero ? end_of_data(r, true) : corrupt(r, "checksum mismatch");
    }
    r->pos += JNL_FRAME_SIZE + len;
    *payload = tl_slice_make(data, (size_t)len);
    return 1;
}

bool jnl_reader_torn(const jnl_reader *r)
{
    return r->torn;
}

uint64_t jnl_reader_good_offset(const jnl_reader *r)
{
    return r->pos;
}

void jnl_reader_close(jnl_reader *r)
{
    if (!r)
        return;
    tl_file_close(r->file);
    tl_buf_free(&r->big);
    free(r->chunk);
    free(r->path);
    free(r);
}
