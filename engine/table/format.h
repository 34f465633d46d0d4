/*
 * format.h - the physical layer of a table file (see FORMAT.md): block
 * handles, the block trailer (compression type + xxh3), compression, the
 * footer, and reading a verified block from a file.
 *
 * Everything here treats bytes from disk as hostile: decoders check every
 * varint, length and offset and report TALUS_ECORRUPT naming the file and
 * the offset.
 */
#ifndef TL_TABLE_FORMAT_H
#define TL_TABLE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/env.h"
#include "util/slice.h"

/* "TALUSSST" read as a little-endian fixed64. */
#define TBL_MAGIC 0x5453535355534c54ull

/* Block trailer: 1 byte compression type + fixed64 xxh3(payload, type). */
#define TBL_TRAILER 9u

/* Largest encoded handle (two varint64s). */
#define TBL_HANDLE_MAX 20u

/* Footer: metaindex handle + index handle (padded with zeros to 40 bytes),
 * fixed32 format version, fixed64 magic. */
#define TBL_FOOTER_SIZE (2u * TBL_HANDLE_MAX + 4u + 8u)

/* Bound on a block's uncompressed size as stored in a compressed block:
 * larger claims are corruption (the writer never compresses such blocks). */
#define TBL_MAX_DECOMPRESSED (256u << 20)

/* Largest block_size option accepted by the builder. */
#define TBL_MAX_BLOCK_SIZE (64u << 20)

/* Compression type byte in the trailer (same numbers as TALUS_COMPRESS_*). */
enum tbl_ctype { TBL_CT_NONE = 0, TBL_CT_LZ4 = 1, TBL_CT_ZSTD = 2 };

typedef struct tbl_handle {
    uint64_t offset; /* file offset of the block payload */
    uint64_t size;   /* payload bytes, trailer excluded */
} tbl_handle;

/* Append the handle to dst (room for TBL_HANDLE_MAX); returns bytes written. */
size_t tbl_handle_encode(uint8_t *dst, tbl_handle h);
/* Decode from [p, limit); returns bytes consumed, 0 if malformed. */
size_t tbl_handle_decode(const uint8_t *p, const uint8_t *limit, tbl_handle *h);

typedef struct tbl_footer {
    tbl_handle metaindex;
    tbl_handle index;
    uint32_t format_version;
} tbl_footer;

void tbl_footer_encode(uint8_t dst[TBL_FOOTER_SIZE], const tbl_footer *f);
/* Checks magic, then the version (> TBL_FORMAT_MAX_READ is TALUS_EVERSION),
 * then the handles. `name` is for messages. */
int tbl_footer_decode(const uint8_t src[TBL_FOOTER_SIZE], const char *name, tbl_footer *f);

/* ---- Writing blocks ---------------------------------------------------- */

/* Compression state reused across blocks by one builder. */
typedef struct tbl_compressor tbl_compressor;

/* level 0: the library's default. NULL on ENOMEM. */
tbl_compressor *tbl_compressor_new(int type, int level);
void tbl_compressor_free(tbl_compressor *c);

/* Prepare the on-disk form of `raw`: either the compressed payload
 * (varint32 raw size + compressed bytes) in `scratch`, or `raw` itself when
 * compression is off or saves less than 1/8. Returns the payload in *payload
 * and the type byte in *type. c may be NULL (no compression). */
int tbl_block_prepare(tbl_compressor *c, tl_slice raw, tl_buf *scratch, tl_slice *payload,
                      uint8_t *type);
/* The 9-byte trailer of a payload. */
void tbl_trailer_encode(uint8_t dst[TBL_TRAILER], tl_slice payload, uint8_t type);

/* ---- Reading blocks ---------------------------------------------------- */

/* Where a block lives, for messages. */
typedef struct tbl_src {
    tl_file *file;
    const char *name;
    uint64_t limit; /* blocks must end (trailer included) at or before this */
} tbl_src;

/* Read the block at h, verify its checksum (before anything else looks at
 * the bytes) and decompress it. The payload and trailer are pread into *raw
 * at offset `prefix`; an uncompressed block is used in place, a compressed
 * one is decompressed into *dec at offset `prefix`. *out is the block; it
 * points into raw or dec, `prefix` bytes after the start of its buffer, so a
 * caller may steal that buffer (a block cache entry with a header in front).
 * Buffers are grown to the exact size needed and may be reused. */
int tbl_read_block(const tbl_src *s, tbl_handle h, size_t prefix, tl_buf *raw, tl_buf *dec,
                   tl_slice *out);

#endif
