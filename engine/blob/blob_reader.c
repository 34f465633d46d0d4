/*
 * blob_reader.c - ranged reads of the value in a blob file (FORMAT.md).
 *
 * Opening checks the header and the footer against the reference and the
 * file's size, so afterwards every chunk's position and length follow from
 * the value length alone. A read preads the chunks it touches, up to
 * BL_SPAN_CHUNKS (about 4 MiB) in one call, verifies each chunk's checksum
 * and copies out the requested bytes. Nothing unverified is ever returned.
 *
 * The reader keeps the last chunk it verified (`cache`) so that a run of
 * small sequential reads (4 KiB from the filesystem) reads and hashes each
 * chunk once. Concurrency: the mutex guards cache, cache_idx and spare
 * (a second chunk buffer, reused so that small reads do not allocate);
 * preads and hashing run outside it on buffers owned by the calling thread,
 * which are swapped in under the mutex when done.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob.h"
#include "blob/blob_format.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"

/* Chunks read by one pread of a large read. */
#define BL_SPAN_CHUNKS 64u
#define BL_NO_CHUNK UINT64_MAX

struct bl_reader {
    tl_file *f;
    char *path;
    uint64_t length;
    pthread_mutex_t mu;
    uint64_t cache_idx; /* chunk held in cache, or BL_NO_CHUNK */
    uint8_t *cache;     /* BL_CHUNK_DISK bytes, or NULL */
    uint8_t *spare;     /* BL_CHUNK_DISK bytes, or NULL */
};

uint64_t bl_reader_length(const bl_reader *r)
{
    return r->length;
}

static int check_header(const bl_reader *r, const uint8_t *h)
{
    if (memcmp(h, BL_HEADER_MAGIC, BL_MAGIC_SIZE) != 0)
        return tl_err(TALUS_ECORRUPT, "blob %s: not a talus blob file (bad magic at offset 0)",
                      r->path);
    uint32_t version = tl_get_fixed32(h + 8);
    if (version > BL_FORMAT_VERSION)
        return tl_err(TALUS_EVERSION,
                      "blob %s uses blob format %" PRIu32 "; this build reads up "
                      "to %u",
                      r->path, version, BL_FORMAT_VERSION);
    if (version == 0)
        return tl_err(TALUS_ECORRUPT, "blob %s: format version 0 at offset 8", r->path);
    if (tl_get_fixed32(h + 12) != 0)
        return tl_err(TALUS_ECORRUPT, "blob %s: unknown flags 0x%" PRIx32 " at offset 12", r->path,
                      tl_get_fixed32(h + 12));
    return 0;
}

/* ft: the last BL_FOOTER_SIZE bytes of a file of `size` bytes. */
static int check_footer(const bl_reader *r, const uint8_t *ft, uint64_t size, uint64_t want)
{
    uint64_t at = size - BL_FOOTER_SIZE;
    if (memcmp(ft + 24, BL_FOOTER_MAGIC, BL_MAGIC_SIZE) != 0)
        return tl_err(TALUS_ECORRUPT,
                      "blob %s: bad footer magic at offset %" PRIu64
                      " (truncated or not a blob file)",
                      r->path, at + 24);
    if (tl_get_fixed64(ft + 16) != tl_xxh3(ft, 16))
        return tl_err(TALUS_ECORRUPT, "blob %s: footer checksum mismatch at offset %" PRIu64,
                      r->path, at);
    uint64_t length = tl_get_fixed64(ft);
    uint32_t chunk = tl_get_fixed32(ft + 8), count = tl_get_fixed32(ft + 12);
    if (chunk != BL_CHUNK)
        return tl_err(TALUS_ECORRUPT,
                      "blob %s: chunk size %" PRIu32 " at offset %" PRIu64 " (expected %u)",
                      r->path, chunk, at + 8, BL_CHUNK);
    if (count != 1)
        return tl_err(TALUS_ECORRUPT,
                      "blob %s: value count %" PRIu32 " at offset %" PRIu64 " (expected 1)",
                      r->path, count, at + 12);
    if (length > TALUS_MAX_VALUE || bl_file_size(length) != size)
        return tl_err(TALUS_ECORRUPT,
                      "blob %s: footer value length %" PRIu64 " at offset %" PRIu64
                      " does not fit the file size %" PRIu64,
                      r->path, length, at, size);
    if (length != want)
        return tl_err(TALUS_ECORRUPT,
                      "blob %s: holds %" PRIu64 " bytes but its reference says %" PRIu64, r->path,
                      length, want);
    return 0;
}

/* pread exactly n bytes at off; fewer is a file cut short. */
static int read_exact(const bl_reader *r, void *buf, size_t n, uint64_t off)
{
    size_t got;
    TRY(tl_file_pread(r->f, buf, n, off, &got));
    if (got != n)
        return tl_err(TALUS_ECORRUPT,
                      "blob %s: file ends at offset %" PRIu64 ", expected %zu "
                      "bytes there",
                      r->path, off + got, n);
    return 0;
}

int bl_reader_open(tl_env *env, const char *dir, const bl_ref *ref, bl_reader **out)
{
    int rc = 0;
    if (ref->length > TALUS_MAX_VALUE)
        return tl_err(TALUS_ECORRUPT,
                      "blob %06" PRIu64 ": reference length %" PRIu64 " over the value limit",
                      ref->number, ref->length);
    bl_reader *r = calloc(1, sizeof *r);
    if (!r)
        return tl_err(TALUS_ENOMEM, "out of memory opening blob %" PRIu64, ref->number);
    pthread_mutex_init(&r->mu, NULL);
    r->cache_idx = BL_NO_CHUNK;
    r->length = ref->length;
    if (!(r->path = bl_path_alloc(dir, ref->number, "")))
        TRY_OUT(TALUS_ENOMEM);
    rc = tl_env_open_read(env, r->path, &r->f);
    if (rc == TALUS_ENOTFOUND)
        TRY_OUT(tl_err(TALUS_ECORRUPT, "blob %s is missing (a live reference names it)", r->path));
    TRY_OUT(rc);
    uint64_t size;
    TRY_OUT(tl_file_size(r->f, &size));
    if (size < BL_HEADER_SIZE + BL_FOOTER_SIZE)
        TRY_OUT(tl_err(TALUS_ECORRUPT, "blob %s: %" PRIu64 " bytes, too short for a blob file",
                       r->path, size));
    uint8_t h[BL_HEADER_SIZE], ft[BL_FOOTER_SIZE];
    TRY_OUT(read_exact(r, h, sizeof h, 0));
    TRY_OUT(check_header(r, h));
    TRY_OUT(read_exact(r, ft, sizeof ft, size - BL_FOOTER_SIZE));
    TRY_OUT(check_footer(r, ft, size, ref->length));
    *out = r;
out:
    if (rc < 0)
        bl_reader_close(r);
    return rc;
}

void bl_reader_close(bl_reader *r)
{
    if (!r)
        return;
    tl_file_close(r->f);
    pthread_mutex_destroy(&r->mu);
    free(r->cache);
    free(r->spare);
    free(r->path);
    free(r);
}

/* Reads chunks [a, b] into buf (bytes of chunk a at buf) and verifies
 * them; chunk c's bytes are then at buf + (c - a) * BL_CHUNK_DISK. */
static int read_chunks(const bl_reader *r, uint8_t *buf, uint64_t a, uint64_t b)
{
    uint64_t start = bl_chunk_offset(a);
    size_t n = (size_t)(bl_chunk_offset(b) - start) + bl_chunk_len(r->length, b) + BL_CHECKSUM_SIZE;
    TRY(read_exact(r, buf, n, start));
    for (uint64_t c = a; c <= b; c++) {
        const uint8_t *p = buf + (c - a) * BL_CHUNK_DISK;
        uint32_t len = bl_chunk_len(r->length, c);
        if (tl_get_fixed64(p + len) != bl_chunk_checksum(p, len, c))
            return tl_err(TALUS_ECORRUPT,
                          "blob %s: chunk %" PRIu64 " at offset %" PRIu64 ": checksum mismatch",
                          r->path, c, bl_chunk_offset(c));
    }
    return 0;
}

/* A chunk buffer owned by the caller: the spare one, or a new one. */
static uint8_t *take_buffer(bl_reader *r)
{
    pthread_mutex_lock(&r->mu);
    uint8_t *p = r->spare;
    r->spare = NULL;
    pthread_mutex_unlock(&r->mu);
    if (!p)
        p = malloc(BL_CHUNK_DISK);
    return p;
}

/* Makes buf (holding verified chunk c) the cached chunk; takes buf. */
static void install(bl_reader *r, uint64_t c, uint8_t *buf)
{
    pthread_mutex_lock(&r->mu);
    uint8_t *old = r->cache;
    r->cache = buf;
    r->cache_idx = c;
    if (!r->spare) {
        r->spare = old;
        old = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    free(old);
}

/* Copies value bytes [pos, end) that lie in chunk c from its bytes p. */
static size_t copy_from_chunk(uint8_t *dst, const uint8_t *p, uint64_t c, uint64_t pos,
                              uint64_t end)
{
    uint64_t chunk_end = (c + 1) * BL_CHUNK;
    size_t k = (size_t)((end < chunk_end ? end : chunk_end) - pos);
    memcpy(dst, p + (pos - c * BL_CHUNK), k);
    return k;
}

int bl_reader_read(bl_reader *r, uint64_t off, void *buf, size_t n, size_t *got)
{
    int rc = 0;
    *got = 0;
    if (off >= r->length || n == 0)
        return 0;
    uint64_t end = off + (n < r->length - off ? n : r->length - off);
    uint64_t pos = off, last = (end - 1) / BL_CHUNK;
    uint8_t *dst = buf, *scratch = NULL;

    pthread_mutex_lock(&r->mu);
    if (r->cache_idx == pos / BL_CHUNK) {
        size_t k = copy_from_chunk(dst, r->cache, r->cache_idx, pos, end);
        pos += k;
        dst += k;
    }
    pthread_mutex_unlock(&r->mu);

    while (pos < end) {
        uint64_t a = pos / BL_CHUNK;
        uint64_t b = last - a < BL_SPAN_CHUNKS ? last : a + BL_SPAN_CHUNKS - 1;
        if (a == b) {
            /* A small read: verify into a chunk buffer and keep it. */
            uint8_t *cb = take_buffer(r);
            if (!cb)
                TRY_OUT(tl_err(TALUS_ENOMEM, "out of memory reading blob %s", r->path));
            rc = read_chunks(r, cb, a, a);
            if (rc < 0) {
                free(cb);
                goto out;
            }
            size_t k = copy_from_chunk(dst, cb, a, pos, end);
            pos += k;
            dst += k;
            install(r, a, cb);
            continue;
        }
        if (!scratch) {
            uint64_t span = last - a + 1 < BL_SPAN_CHUNKS ? last - a + 1 : BL_SPAN_CHUNKS;
            if (!(scratch = malloc((size_t)span * BL_CHUNK_DISK)))
                TRY_OUT(tl_err(TALUS_ENOMEM, "out of memory reading blob %s", r->path));
        }
        TRY_OUT(read_chunks(r, scratch, a, b));
        for (uint64_t c = a; c <= b; c++) {
            size_t k = copy_from_chunk(dst, scratch + (c - a) * BL_CHUNK_DISK, c, pos, end);
            pos += k;
            dst += k;
        }
        /* A read that stops inside a chunk is likely continued there. */
        if (b == last && end % BL_CHUNK != 0 && end < r->length) {
            uint8_t *cb = take_buffer(r);
            if (cb) {
                memcpy(cb, scratch + (b - a) * BL_CHUNK_DISK, bl_chunk_len(r->length, b));
                install(r, b, cb);
            }
        }
    }
    *got = (size_t)(end - off);
out:
    free(scratch);
    return rc;
}

int bl_read_all(tl_env *env, const char *dir, const bl_ref *ref, tl_buf *out)
{
    int rc = 0;
    bl_reader *r;
    TRY(bl_reader_open(env, dir, ref, &r));
    /* ref->length <= TALUS_MAX_VALUE (checked by open) fits a size_t. */
    out->len = 0;
    TRY_OUT(tl_buf_reserve(out, (size_t)ref->length));
    size_t got;
    TRY_OUT(bl_reader_read(r, 0, out->data, (size_t)ref->length, &got));
    out->len = got;
out:
    bl_reader_close(r);
    return rc;
}
