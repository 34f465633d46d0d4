/*
 * format.c - block handles, the footer, the block trailer, compression and
 * verified block reads (layout in FORMAT.md).
 *
 * Invariant kept by tbl_read_block: no byte of a block is interpreted
 * (compression type, sizes, contents) before its checksum has matched.
 */
#include "table/format.h"

#include <lz4.h>
#include <lz4hc.h>
#include <pthread.h>
#include <stdlib.h>
#include <zstd.h>

#include "table/table.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"

size_t tbl_handle_encode(uint8_t *dst, tbl_handle h)
{
    size_t n = tl_put_varint64(dst, h.offset);
    return n + tl_put_varint64(dst + n, h.size);
}

size_t tbl_handle_decode(const uint8_t *p, const uint8_t *limit, tbl_handle *h)
{
    size_t a = tl_get_varint64(p, limit, &h->offset);
    if (!a)
        return 0;
    size_t b = tl_get_varint64(p + a, limit, &h->size);
    return b ? a + b : 0;
}

void tbl_footer_encode(uint8_t dst[TBL_FOOTER_SIZE], const tbl_footer *f)
{
    memset(dst, 0, TBL_FOOTER_SIZE);
    size_t n = tbl_handle_encode(dst, f->metaindex);
    tbl_handle_encode(dst + n, f->index);
    tl_put_fixed32(dst + 2 * TBL_HANDLE_MAX, f->format_version);
    tl_put_fixed64(dst + 2 * TBL_HANDLE_MAX + 4, TBL_MAGIC);
}

int tbl_footer_decode(const uint8_t src[TBL_FOOTER_SIZE], const char *name, tbl_footer *f)
{
    if (tl_get_fixed64(src + 2 * TBL_HANDLE_MAX + 4) != TBL_MAGIC)
        return tl_err(TALUS_ECORRUPT, "%s: not a talus table (bad magic in footer)", name);
    f->format_version = tl_get_fixed32(src + 2 * TBL_HANDLE_MAX);
    if (f->format_version > TBL_FORMAT_MAX_READ)
        return tl_err(TALUS_EVERSION, "table %s uses format V%u; this build reads up to V%u", name,
                      f->format_version, TBL_FORMAT_MAX_READ);
    if (f->format_version < TBL_FORMAT_V3)
        return tl_err(TALUS_ECORRUPT, "table %s: unknown format version %u in footer", name,
                      f->format_version);
    const uint8_t *lim = src + 2 * TBL_HANDLE_MAX;
    size_t a = tbl_handle_decode(src, lim, &f->metaindex);
    size_t b = a ? tbl_handle_decode(src + a, lim, &f->index) : 0;
    if (!a || !b)
        return tl_err(TALUS_ECORRUPT, "table %s: malformed block handle in footer", name);
    for (const uint8_t *p = src + a + b; p < lim; p++)
        if (*p)
            return tl_err(TALUS_ECORRUPT, "table %s: non-zero footer padding", name);
    return 0;
}

/* ---- Compression ------------------------------------------------------ */

struct tbl_compressor {
    int type;
    int level;
    ZSTD_CCtx *zctx;
};

tbl_compressor *tbl_compressor_new(int type, int level)
{
    tbl_compressor *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->type = type;
    c->level = level;
    if (type == TBL_CT_ZSTD) {
        c->zctx = ZSTD_createCCtx();
        if (!c->zctx) {
            free(c);
            return NULL;
        }
    }
    return c;
}

void tbl_compressor_free(tbl_compressor *c)
{
    if (!c)
        return;
    ZSTD_freeCCtx(c->zctx);
    free(c);
}

int tbl_block_prepare(tbl_compressor *c, tl_slice raw, tl_buf *scratch, tl_slice *payload,
                      uint8_t *type)
{
    *payload = raw;
    *type = TBL_CT_NONE;
    /* Blocks the reader would refuse to decompress are stored raw. */
    if (!c || c->type == TBL_CT_NONE || raw.len == 0 || raw.len > TBL_MAX_DECOMPRESSED)
        return 0;
    size_t bound = c->type == TBL_CT_LZ4 ? (size_t)LZ4_compressBound((int)raw.len)
                                         : ZSTD_compressBound(raw.len);
    tl_buf_clear(scratch);
    TRY(tl_buf_reserve(scratch, TL_MAX_VARINT32 + bound));
    size_t hdr = tl_put_varint32(scratch->data, (uint32_t)raw.len);
    char *dst = (char *)scratch->data + hdr;
    size_t n = 0;
    if (c->type == TBL_CT_LZ4) {
        int r =
            c->level > 0
                ? LZ4_compress_HC((const char *)raw.data, dst, (int)raw.len, (int)bound, c->level)
                : LZ4_compress_default((const char *)raw.data, dst, (int)raw.len, (int)bound);
        if (r <= 0)
            return 0; /* incompressible within bound: store raw */
        n = (size_t)r;
    } else if (c->type == TBL_CT_ZSTD) {
        size_t r = ZSTD_compressCCtx(c->zctx, dst, bound, raw.data, raw.len,
                                     c->level ? c->level : ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(r))
            return 0;
        n = r;
    } else {
        return 0;
    }
    /* Keep the compressed form only if it saves at least 1/8. */
    if (hdr + n > raw.len - raw.len / 8)
        return 0;
    scratch->len = hdr + n;
    *payload = tl_buf_slice(scratch);
    *type = (uint8_t)c->type;
    return 0;
}

void tbl_trailer_encode(uint8_t dst[TBL_TRAILER], tl_slice payload, uint8_t type)
{
    dst[0] = type;
    tl_put_fixed64(dst + 1, tl_xxh3_2(payload.data, payload.len, &type, 1));
}

/* ---- Reading ---------------------------------------------------------- */

/* One zstd decompression context per thread: creating one per block would
 * cost an allocation of ~100 KiB on every read. */
static pthread_key_t dctx_key;
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;
static _Thread_local ZSTD_DCtx *dctx_tls;

static void dctx_destroy(void *p)
{
    ZSTD_freeDCtx(p);
}

static void dctx_key_init(void)
{
    (void)pthread_key_create(&dctx_key, dctx_destroy);
}

static ZSTD_DCtx *thread_dctx(void)
{
    if (TL_LIKELY(dctx_tls != NULL))
        return dctx_tls;
    pthread_once(&dctx_once, dctx_key_init);
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (d) {
        dctx_tls = d;
        (void)pthread_setspecific(dctx_key, d); /* freed at thread exit */
    }
    return d;
}

/* Grow b so that it holds exactly `need` bytes (no doubling: stolen buffers
 * become cache entries whose charge should match their size). */
static int buf_exact(tl_buf *b, size_t need)
{
    if (need == 0)
        need = 1;
    if (b->cap < need) {
        uint8_t *p = realloc(b->data, need);
        if (!p)
            return tl_err(TALUS_ENOMEM, "out of memory reading a %zu-byte block", need);
        b->data = p;
        b->cap = need;
    }
    b->len = need;
    return 0;
}

int tbl_read_block(const tbl_src *s, tbl_handle h, size_t prefix, tl_buf *raw, tl_buf *dec,
                   tl_slice *out)
{
    if (s->limit < TBL_TRAILER || h.size > s->limit - TBL_TRAILER ||
        h.offset > s->limit - TBL_TRAILER - h.size)
        return tl_err(TALUS_ECORRUPT,
                      "table %s: block handle (offset %llu, size %llu) points outside the file",
                      s->name, (unsigned long long)h.offset, (unsigned long long)h.size);
    if (h.size > SIZE_MAX / 2)
        return tl_err(TALUS_ECORRUPT, "table %s: absurd block size %llu at offset %llu", s->name,
                      (unsigned long long)h.size, (unsigned long long)h.offset);
    size_t n = (size_t)h.size + TBL_TRAILER;
    TRY(buf_exact(raw, prefix + n));
    uint8_t *p = raw->data + prefix;
    size_t got = 0;
    TRY(tl_file_pread(s->file, p, n, h.offset, &got));
    if (got != n)
        return tl_err(TALUS_ECORRUPT, "table %s: truncated block at offset %llu (%zu of %zu bytes)",
                      s->name, (unsigned long long)h.offset, got, n);
    size_t sz = (size_t)h.size;
    /* The checksum covers payload + type byte, which are contiguous here. */
    if (tl_xxh3(p, sz + 1) != tl_get_fixed64(p + sz + 1))
        return tl_err(TALUS_ECORRUPT, "table %s: checksum mismatch in block at offset %llu",
                      s->name, (unsigned long long)h.offset);
    uint8_t type = p[sz];
    if (type == TBL_CT_NONE) {
        *out = tl_slice_make(p, sz);
        return 0;
    }
    if (type != TBL_CT_LZ4 && type != TBL_CT_ZSTD)
        return tl_err(TALUS_ECORRUPT,
                      "table %s: unknown compression type %u in block at offset %llu", s->name,
                      type, (unsigned long long)h.offset);
    uint32_t rawsize;
    size_t hdr = tl_get_varint32(p, p + sz, &rawsize);
    if (!hdr || rawsize > TBL_MAX_DECOMPRESSED)
        return tl_err(TALUS_ECORRUPT, "table %s: bad uncompressed size in block at offset %llu",
                      s->name, (unsigned long long)h.offset);
    TRY(buf_exact(dec, prefix + rawsize));
    uint8_t *d = dec->data + prefix;
    size_t clen = sz - hdr;
    size_t res;
    if (type == TBL_CT_LZ4) {
        if (clen > INT32_MAX)
            return tl_err(TALUS_ECORRUPT, "table %s: absurd lz4 payload in block at offset %llu",
                          s->name, (unsigned long long)h.offset);
        int r = LZ4_decompress_safe((const char *)p + hdr, (char *)d, (int)clen, (int)rawsize);
        res = r < 0 ? SIZE_MAX : (size_t)r;
    } else {
        ZSTD_DCtx *z = thread_dctx();
        if (!z)
            return tl_err(TALUS_ENOMEM, "out of memory creating a zstd context");
        res = ZSTD_decompressDCtx(z, d, rawsize, p + hdr, clen);
        if (ZSTD_isError(res))
            res = SIZE_MAX;
    }
    if (res != rawsize)
        return tl_err(TALUS_ECORRUPT,
                      "table %s: block at offset %llu does not decompress to its stated size %u",
                      s->name, (unsigned long long)h.offset, rawsize);
    *out = tl_slice_make(d, rawsize);
    return 0;
}
