/*
 * block.h - the prefix-compressed block format shared by data, index and
 * metaindex blocks (FORMAT.md §2): building, validating and iterating.
 *
 * A block is a run of entries
 *     varint32 shared | varint32 non_shared | varint32 value_len |
 *     key[shared..] (non_shared bytes) | value (value_len bytes)
 * followed by fixed32 restart offsets and a fixed32 restart count. An entry
 * at a restart offset stores its whole key (shared == 0).
 *
 * The block iterator never allocates per entry: keys at restart points are
 * used in place, other keys are rebuilt in a buffer owned by the iterator
 * (inline for short keys), values always point into the block. Any
 * malformed byte makes the iterator invalid with status TALUS_ECORRUPT.
 */
#ifndef TL_TABLE_BLOCK_H
#define TL_TABLE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/coding.h"
#include "util/slice.h"

/* Byte-order compare for the hot paths: 8 bytes at a time instead of a
 * libc memcmp call, which dominates for short keys. */
static inline uint64_t tbl_load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static inline int tbl_bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = tbl_load_be64(a + i), y = tbl_load_be64(b + i);
        if (x != y)
            return x < y ? -1 : 1;
    }
    for (; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

/* Internal-key order (util/ikey.h): user key ascending, seqno descending.
 * Both lengths must be >= 9. */
static inline int tbl_ikey_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = tbl_bytes_cmp(a, an - 9, b, bn - 9);
    if (c)
        return c;
    uint64_t sa = tl_get_fixed64(a + an - 9), sb = tl_get_fixed64(b + bn - 9);
    return sa > sb ? -1 : (sa < sb ? 1 : 0);
}

/* A block whose restart array has been validated (tbl_block_init). The
 * bytes are borrowed. */
typedef struct tbl_block {
    const uint8_t *data;
    size_t size;           /* whole block */
    size_t restarts;       /* offset of the restart array = end of entries */
    uint32_t num_restarts; /* 0 only for a block with no entries */
} tbl_block;

/* Check that the restart count fits, restart[0] == 0 and the offsets
 * increase strictly and stay below the restart array. name/off are for the
 * message. */
int tbl_block_init(tbl_block *b, tl_slice data, const char *name, uint64_t off);

static inline uint32_t tbl_block_restart(const tbl_block *b, uint32_t i)
{
    const uint8_t *p = b->data + b->restarts + 4 * (size_t)i;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ---- Builder ---------------------------------------------------------- */

typedef struct tbl_block_builder {
    tl_buf buf;
    uint32_t *restarts;
    size_t nrestarts, restarts_cap;
    int interval;
    int counter; /* entries since the last restart */
    tl_buf last_key;
    uint64_t entries;
    bool finished;
} tbl_block_builder;

void tbl_bb_init(tbl_block_builder *bb, int restart_interval);
void tbl_bb_free(tbl_block_builder *bb);
/* Forget the contents, keep the memory. */
void tbl_bb_reset(tbl_block_builder *bb);
/* Keys must be added in increasing order (the caller checks). */
int tbl_bb_add(tbl_block_builder *bb, tl_slice key, tl_slice value);
/* Size of the block if finished now. */
static inline size_t tbl_bb_estimate(const tbl_block_builder *bb)
{
    return bb->buf.len + 4 * (bb->nrestarts + 1);
}
static inline bool tbl_bb_empty(const tbl_block_builder *bb)
{
    return bb->entries == 0;
}
/* Append the restart array; *out is valid until the next reset. */
int tbl_bb_finish(tbl_block_builder *bb, tl_slice *out);

/* ---- Iterator ---------------------------------------------------------- */

typedef struct tbl_prev_ent {
    size_t off, next, koff, klen, voff, vlen;
} tbl_prev_ent;

#define TBL_KEY_INLINE 192

/* Not movable once initialised (the key buffer may point into it). */
typedef struct tbl_block_iter {
    tbl_block b;
    bool ikey;        /* compare as internal keys (else bytewise) */
    const char *name; /* file name, for messages */
    uint64_t boff;    /* block offset in the file, for messages */
    size_t cur;       /* current entry; == b.restarts when not valid */
    size_t next;      /* entry after the current one */
    uint32_t ri;      /* restart region of the current entry */
    int status;
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
    uint8_t *kbuf; /* rebuilt keys: kinline or malloc'd */
    size_t kcap;
    /* Entries of one restart region decoded by a backward step, so that
     * successive prev() calls do not re-scan the region each time. */
    tbl_prev_ent *pc;
    size_t pc_n, pc_cap, pc_pos;
    bool pc_valid;
    tl_buf pc_keys;
    uint8_t kinline[TBL_KEY_INLINE];
} tbl_block_iter;

/* ikey: keys are internal keys (each must be >= 9 bytes). */
void tbl_bi_init(tbl_block_iter *it, bool ikey, const char *name);
/* Point at a new block (unpositioned); keeps buffers. */
void tbl_bi_set(tbl_block_iter *it, const tbl_block *b, uint64_t boff);
void tbl_bi_free(tbl_block_iter *it);

void tbl_bi_seek_first(tbl_block_iter *it);
void tbl_bi_seek_last(tbl_block_iter *it);
/* First entry with key >= target. */
void tbl_bi_seek(tbl_block_iter *it, tl_slice target);
/* Last entry with key <= target. */
void tbl_bi_seek_for_prev(tbl_block_iter *it, tl_slice target);
/* Position at the entry of restart point i (invalid if i >= count). */
void tbl_bi_seek_restart(tbl_block_iter *it, uint32_t i);
void tbl_bi_next(tbl_block_iter *it);
void tbl_bi_prev(tbl_block_iter *it);
/* Make the iterator invalid (not an error). */
void tbl_bi_invalidate(tbl_block_iter *it);

static inline bool tbl_bi_valid(const tbl_block_iter *it)
{
    return it->cur < it->b.restarts;
}
static inline tl_slice tbl_bi_key(const tbl_block_iter *it)
{
    return tl_slice_make(it->key, it->klen);
}
static inline tl_slice tbl_bi_value(const tbl_block_iter *it)
{
    return tl_slice_make(it->val, it->vlen);
}
static inline int tbl_bi_status(const tbl_block_iter *it)
{
    return it->status;
}

#endif
