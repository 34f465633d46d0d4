/*
 * table_internal.h - what table_builder.c, table_reader.c, table_iter.c and
 * props.c share: the reader's state, pinned data blocks and the properties
 * block codec. Not for use outside engine/table.
 */
#ifndef TL_TABLE_INTERNAL_H
#define TL_TABLE_INTERNAL_H

#include "cache/cache.h"
#include "table/block.h"
#include "table/format.h"
#include "table/table.h"

/* Names in the metaindex block. */
#define TBL_META_FILTER "filter"
#define TBL_META_PROPS "properties"

/* Write batching in the builder: few, large appends. */
#define TBL_WRITE_BUF (64u << 10)

/* Everything here is immutable after tbl_reader_open, so gets and
 * iterators may run from many threads at once. */
struct tbl_reader {
    tl_file *file;
    char *name;
    uint64_t file_size;
    tbl_src src;
    tl_cache *cache;
    uint64_t cache_id;
    tbl_footer footer;
    uint8_t *index_mem; /* owns index.data */
    tbl_block index;
    /* Index search accelerator (see index_accel_build): per index entry the
     * 8 bytes of its user key after the prefix shared by all index keys,
     * big-endian. NULL when the index does not have one entry per restart
     * point (then plain block search is used). */
    uint64_t *ix_pfx;
    const uint8_t *ix_cp; /* the shared prefix (in index block memory) */
    size_t ix_cplen;
    uint8_t *filter_mem; /* owns filter.data; NULL without a filter */
    tl_slice filter;
    tbl_props props;
};

/* A data block held for reading: either a block cache handle (h != NULL)
 * or the reader's own buffers (raw/dec, reused across blocks). */
typedef struct tbl_pinned {
    tbl_block blk;
    tl_cache_handle *h;
    tl_buf raw, dec;
} tbl_pinned;

/* Pin the data block at h (validating its restart array). With a block
 * cache: a hit pins the cached block; a miss reads it and, if fill_cache,
 * inserts it. The previous content of pin must have been released. */
int tbl_reader_load_block(tbl_reader *r, tbl_handle h, bool fill_cache, tbl_pinned *pin);
/* Drop the block (keeps the buffers for reuse). */
void tbl_pinned_release(tbl_reader *r, tbl_pinned *pin);
/* Release and free the buffers. */
void tbl_pinned_free(tbl_reader *r, tbl_pinned *pin);

/* Position ii (a block iterator over r->index) at the first index entry
 * >= target. */
void tbl_index_seek(const tbl_reader *r, tbl_block_iter *ii, tl_slice target);

/* Decode an index entry's value as a block handle; ECORRUPT if malformed. */
int tbl_index_handle(const tbl_reader *r, tl_slice v, uint64_t index_off, tbl_handle *h);

/* ---- Properties block (props.c) ----------------------------------------
 * A sequence of records: varint32 tag, varint32 length, payload. Numbers
 * are one varint64 filling the payload, except file_size (fixed64, so the
 * builder can patch it in place); keys are raw bytes. Unknown tags are
 * skipped. */
/* *file_size_pos receives the offset of the fixed64 file size in dst. */
int tbl_props_encode(const tbl_props *p, tl_buf *dst, size_t *file_size_pos);
/* p is zeroed first; on error nothing is left allocated. */
int tbl_props_decode(tl_slice src, const char *name, uint64_t off, tbl_props *p);

#endif
