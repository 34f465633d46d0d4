/*
 * tree.h - one LSM tree (a keyspace): the active memtable, sealed memtables
 * waiting for flush, and the levels of tables (version set).
 *
 * Invariant (what makes reads correct): for any user key, every version in
 * the active memtable is newer than every version in a sealed memtable,
 * which is newer than L0, newer than L1, and so on; within L0 newer files
 * come first. A point read therefore stops at the first version <= its
 * seqno found in that order.
 *
 * Writers: the db serializes writers (its write lock) around
 * tr_make_room + tr_apply, so the active memtable only changes under that
 * lock. Readers never take the write lock; they pin a "view" (memtables +
 * version) under the tree mutex for the duration of one read or iterator.
 *
 * Background work (flush, compaction) runs on the db's worker threads
 * through tr_background_work; the tree asks for it with cfg.schedule.
 */
#ifndef TL_TREE_H
#define TL_TREE_H

#include <stdbool.h>
#include <stdint.h>

#include "talus.h"
#include "blob/blob.h"
#include "cache/cache.h"
#include "util/env.h"
#include "util/iter.h"
#include "util/slice.h"

typedef struct tr_tree tr_tree;

typedef struct tr_config {
    tl_env *env;
    const char *dir;  /* the tree's directory (created if create_if_missing) */
    const char *name; /* for messages */
    talus_tree_options opts;
    tl_cache *block_cache; /* shared, may be NULL */
    int max_open_files;
    bool create_if_missing;
    bool read_only;
    /* Ask the db to call tr_background_work(t) soon. Any thread. */
    void (*schedule)(void *ctx, tr_tree *t);
    /* Live snapshot seqnos, ascending; *seqs malloc'd (may be NULL if n=0). */
    int (*snapshots)(void *ctx, uint64_t **seqs, size_t *n);
    /* A flush was installed (the journal may be trimmed). Called without
     * any tree lock held; must not block on the db write lock. */
    void (*on_flush)(void *ctx, tr_tree *t);
    /* Called before a memtable is sealed for flush, with the db write lock
     * held and no tree lock: the journal must be durable up to here, or a
     * flushed table could hold one tree's part of a batch whose other part
     * is lost with the journal's unsynced tail. May be NULL. */
    int (*before_seal)(void *ctx, tr_tree *t);
    void *ctx;
} tr_config;

int tr_open(const tr_config *cfg, tr_tree **out);
/* Stops accepting background work, waits for running work, frees. Does not
 * flush: call tr_seal + tr_wait_flushed first for that. */
void tr_close(tr_tree *t);

/* Highest seqno stored in this tree's tables (recovered on open). */
uint64_t tr_last_seq(tr_tree *t);
/* Every entry with seqno <= this is in tables (journal replay point). */
uint64_t tr_flushed_seq(tr_tree *t);
/* Smallest seqno still only in memtables (active or sealed), UINT64_MAX if
 * the memtables are empty: the journal must keep everything from here. */
uint64_t tr_oldest_unflushed_seq(tr_tree *t);
/* Smallest seqno in the active memtable, UINT64_MAX if it is empty. */
uint64_t tr_active_min_seq(tr_tree *t);

/* ---- Writes (caller holds the db write lock) --------------------------- */

/* Make sure the active memtable has room: seals a full memtable, slows or
 * stops (waits) while L0 or the sealed memtables are over their limits.
 * Returns the sticky background error if there is one. */
int tr_make_room(tr_tree *t);
int tr_apply(tr_tree *t, uint64_t seq, uint8_t type, tl_slice ukey, tl_slice value);
/* Seal the active memtable if it is not empty (schedules its flush). */
int tr_seal(tr_tree *t);

/* ---- Reads (any thread) ----------------------------------------------- */

/* 1 found (value copied into *value), 0 absent or deleted, < 0 error. A
 * value kept in a blob file is read from it. */
int tr_get(tr_tree *t, tl_slice ukey, uint64_t read_seq, tl_buf *value);
/* Like tr_get, but a blob-file value is left as its reference: *type is
 * TL_TYPE_VALUE (value in *value) or TL_TYPE_BLOB (an encoded bl_ref). */
int tr_get_entry(tr_tree *t, tl_slice ukey, uint64_t read_seq, tl_buf *value, uint8_t *type);

/* ---- Blob files (key-value separation; engine/blob) -------------------- */

/* The tree's min_blob_size (0: values stay in the tree). */
uint64_t tr_min_blob_size(const tr_tree *t);
/* A new blob writer in the tree's directory (a fresh file number). */
int tr_blob_writer_new(tr_tree *t, bl_writer **out);
/* Write n bytes at p as a new blob file; *ref names it. */
int tr_blob_write(tr_tree *t, const void *p, size_t n, bl_ref *ref);
/* Copy the value of ukey in src (as of read_seq) for tree t: 1 found, 0
 * absent. A value kept in the tree comes back in *value (*type
 * TL_TYPE_VALUE); one kept in a blob file gets a new blob of t (a hard
 * link when possible, else a copy through a bounded buffer), named by
 * *ref (*type TL_TYPE_BLOB). The source stays pinned while it is copied. */
int tr_copy_value(tr_tree *t, tr_tree *src, tl_slice ukey, uint64_t read_seq, uint8_t *type,
                  tl_buf *value, bl_ref *ref);
/* Remove a blob file that was never committed (a dropped batch). */
void tr_blob_discard(tr_tree *t, uint64_t number);
/* Open the blob an encoded bl_ref names. */
int tr_blob_open(tr_tree *t, tl_slice ref, bl_reader **out);
/* Read the whole value an encoded bl_ref names into out. */
int tr_blob_read_all(tr_tree *t, tl_slice ref, tl_buf *out);
/* Remove blob files no live version names: call only when every memtable
 * has been flushed (after recovery), or references only in memtables would
 * lose their files. */
int tr_remove_orphan_blobs(tr_tree *t);

/* A user-level iterator over keys visible at read_seq within the bounds
 * (lower inclusive, upper exclusive, either may be NULL). See user_iter.c. */
typedef struct tr_iter tr_iter;
int tr_iter_new(tr_tree *t, uint64_t read_seq, const tl_slice *lower, const tl_slice *upper,
                tr_iter **out);
void tr_iter_free(tr_iter *it);
void tr_iter_seek_first(tr_iter *it);
void tr_iter_seek_last(tr_iter *it);
void tr_iter_seek(tr_iter *it, tl_slice ukey);
void tr_iter_seek_for_prev(tr_iter *it, tl_slice ukey);
void tr_iter_next(tr_iter *it);
void tr_iter_prev(tr_iter *it);
bool tr_iter_valid(const tr_iter *it);
tl_slice tr_iter_key(const tr_iter *it);
/* The current value; one kept in a blob file is read into the iterator
 * (an empty slice with tr_iter_status set if that fails). */
tl_slice tr_iter_value(const tr_iter *it);
/* The current value's length without reading a blob. */
uint64_t tr_iter_value_length(const tr_iter *it);
int tr_iter_status(const tr_iter *it);

/* ---- Maintenance -------------------------------------------------------- */

/* Do one unit of background work (a flush or a compaction). Returns 1 if
 * more work may be pending, 0 if idle. */
int tr_background_work(tr_tree *t);
/* Wait until every sealed memtable is flushed (or an error sticks). */
int tr_wait_flushed(tr_tree *t);
/* Wait until no flush or compaction is running or due. */
int tr_wait_idle(tr_tree *t);
/* Compact the user-key range [lo, hi] (NULL = open) down through all levels;
 * flushes first (caller must have sealed). */
int tr_compact_range(tr_tree *t, const tl_slice *lo, const tl_slice *hi);
int tr_stats(tr_tree *t, talus_tree_stats *out);
uint64_t tr_disk_space(tr_tree *t);
uint64_t tr_approximate_count(tr_tree *t);
/* For each pinned seqno (ascending), the approximate bytes of versions that
 * only it keeps alive; adds to held[i]. Reads every entry of the tree. */
int tr_snapshot_bytes_held(tr_tree *t, const uint64_t *pins, size_t n, uint64_t *held);
/* The sticky background error (0 if none). */
int tr_bg_error(tr_tree *t);

#endif
