/*
 * table.h - the block-based table ("SST"), format in table/FORMAT.md.
 *
 * A table holds internal keys (util/ikey.h) in strictly increasing order.
 * Data blocks use prefix truncation with restart points; a full index block
 * maps each data block's last key to its handle; an optional bloom filter
 * over user keys; a properties block; a footer with magic and format
 * version. Every block carries an xxh3 checksum verified on read, and every
 * decoder validates lengths, offsets, counts and varints before use.
 *
 * table/ knows nothing of trees or levels.
 */
#ifndef TL_TABLE_H
#define TL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/env.h"
#include "util/iter.h"
#include "util/slice.h"

typedef struct tl_cache tl_cache;

/* The table format versions this build writes and reads. */
#define TBL_FORMAT_V3 3u
#define TBL_FORMAT_V4 4u
#define TBL_FORMAT_MAX_READ TBL_FORMAT_V3

typedef struct tbl_options {
    size_t block_size;       /* target uncompressed data block size */
    int restart_interval;    /* >= 1 */
    int bloom_bits_per_key;  /* 0: no filter */
    int compression;         /* TALUS_COMPRESS_* */
    int compression_level;   /* 0: library default */
    uint32_t format_version; /* TBL_FORMAT_V3 */
} tbl_options;

void tbl_options_init(tbl_options *o);

/* What a finished table holds; smallest/largest are malloc'd internal keys
 * owned by the struct (tbl_props_free). */
typedef struct tbl_props {
    uint32_t format_version;
    uint32_t compression;
    uint64_t num_entries;
    uint64_t num_deletions; /* tombstones + weak tombstones */
    uint64_t num_data_blocks;
    uint64_t raw_key_bytes;
    uint64_t raw_value_bytes;
    uint64_t data_bytes; /* on-disk bytes of data blocks */
    uint64_t index_bytes;
    uint64_t filter_bytes;
    uint64_t file_size;
    uint64_t min_seq;
    uint64_t max_seq;
    uint8_t *smallest;
    size_t smallest_len;
    uint8_t *largest;
    size_t largest_len;
} tbl_props;

void tbl_props_free(tbl_props *p);

/* "<dir>/<number, 6+ digits>.sst" into buf (size n); returns buf. */
char *tbl_file_name(char *buf, size_t n, const char *dir, uint64_t number);

/* ---- Writing ---------------------------------------------------------- */

typedef struct tbl_builder tbl_builder;

/* f is not owned: the caller syncs and closes it after finish. */
int tbl_builder_new(const tbl_options *o, tl_file *f, tbl_builder **out);
/* ikey must be greater than the previous one (internal order). */
int tbl_builder_add(tbl_builder *b, tl_slice ikey, tl_slice value);
uint64_t tbl_builder_entries(const tbl_builder *b);
/* Bytes written so far plus the pending block (for splitting outputs). */
uint64_t tbl_builder_estimated_size(const tbl_builder *b);
/* Write filter, index, properties and footer. props may be NULL. */
int tbl_builder_finish(tbl_builder *b, tbl_props *props);
void tbl_builder_free(tbl_builder *b);

/* ---- Reading ---------------------------------------------------------- */

typedef struct tbl_reader tbl_reader;

/* Reads and verifies footer, index, filter and properties. On success the
 * reader owns f (closes it in tbl_reader_free); on failure f is untouched.
 * `name` (copied) is used in error messages. block_cache may be NULL. */
int tbl_reader_open(tl_file *f, const char *name, uint64_t file_size, tl_cache *block_cache,
                    tbl_reader **out);
void tbl_reader_free(tbl_reader *r);
const tbl_props *tbl_reader_props(const tbl_reader *r);
/* The newest entry for ukey with seqno <= read_seq: 1 found (*type, value
 * copied into *value, *seq_out), 0 absent, negative on error. Consults the
 * bloom filter first. Thread-safe. */
int tbl_reader_get(tbl_reader *r, tl_slice ukey, uint64_t read_seq, uint8_t *type, tl_buf *value,
                   uint64_t *seq_out);
/* false only when the filter proves ukey is absent. */
bool tbl_reader_may_contain(tbl_reader *r, tl_slice ukey);
/* Iterator over the table; the caller keeps r alive longer than the
 * iterator. fill_cache=false for compaction reads. NULL only on ENOMEM. */
tl_iter *tbl_reader_iter(tbl_reader *r, bool fill_cache);
/* Approximate file offset where ikey would be (for size estimates). */
uint64_t tbl_reader_approx_offset(tbl_reader *r, tl_slice ikey);

/* ---- Bloom filter (exposed for tests) --------------------------------- */
/* Build a filter over `n` user-key hashes (tl_xxh3 of each key) into dst. */
int tbl_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key, tl_buf *dst);
/* false only if the key (by hash) is certainly absent; malformed filters
 * answer true. */
bool tbl_bloom_may_contain(tl_slice filter, uint64_t hash);

#endif
