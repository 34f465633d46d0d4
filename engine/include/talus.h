/*
 * talus.h - the one public header of libtalus, an LSM-tree storage engine.
 *
 * Conventions
 *  - Every function that can fail returns 0 or a negative TALUS_E* code.
 *    talus_errmsg() gives the detail of the last error on the calling thread
 *    (file, offset, reason) in words a person can act on.
 *  - Handles are opaque. Options are plain structs; call the matching
 *    *_init() first, then change what you need.
 *  - Memory returned to the caller (values, keys from talus_get etc.) is owned
 *    by the caller and released with talus_free().
 *  - Keys are 1..TALUS_MAX_KEY bytes, values 0..TALUS_MAX_VALUE bytes; longer
 *    is TALUS_ETOOBIG, never a truncation.
 *  - Sequence numbers are full 64-bit. A read at seqno N sees exactly the
 *    batches with seqno <= N (a snapshot at N is the state after batch N).
 *  - All functions are thread-safe unless said otherwise; an iterator or a
 *    batch is used by one thread at a time.
 */
#ifndef TALUS_H
#define TALUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TALUS_BUILDING)
#define TALUS_API __attribute__((visibility("default")))
#else
#define TALUS_API
#endif

#define TALUS_VERSION_STRING "0.1.0"
#define TALUS_MAX_KEY 65536u
#define TALUS_MAX_VALUE 4294967295u

/* Error codes. 0 is success. */
enum {
    TALUS_OK = 0,
    TALUS_ENOTFOUND = -1,  /* key absent (not an error for most callers) */
    TALUS_EINVAL = -2,     /* bad argument */
    TALUS_ETOOBIG = -3,    /* key or value over the limit */
    TALUS_ECORRUPT = -4,   /* bad bytes on disk (checksum, bounds, magic) */
    TALUS_EIO = -5,        /* I/O error from the OS */
    TALUS_ENOSPC = -6,     /* disk full */
    TALUS_ENOMEM = -7,     /* out of memory */
    TALUS_EVERSION = -8,   /* on-disk format version this build cannot read */
    TALUS_EBUSY = -9,      /* database locked by another process */
    TALUS_EEXIST = -10,    /* already exists (db with error_if_exists, tree) */
    TALUS_EREADONLY = -11, /* database in error state or opened read-only */
    TALUS_ESNAPSHOT = -12, /* seqno no longer retained / not pinned */
    TALUS_ESEQNO = -13,    /* sequence generator went backwards */
    TALUS_ENOTSUP = -14,   /* feature not supported by this build/config */
    TALUS_ECLOSED = -15,   /* handle already closed / tree dropped */
};

/* Human-readable name of an error code ("corruption", ...). Never NULL. */
TALUS_API const char *talus_strerror(int code);
/* Detail of the last error returned on this thread; "" if none. */
TALUS_API const char *talus_errmsg(void);
/* Release memory handed out by the library. NULL is fine. */
TALUS_API void talus_free(void *p);

typedef struct talus_db talus_db;
typedef struct talus_tree talus_tree;
typedef struct talus_batch talus_batch;
typedef struct talus_iter talus_iter;
typedef struct talus_snapshot talus_snapshot;

/* ---- Options ---------------------------------------------------------- */

enum talus_compression {
    TALUS_COMPRESS_NONE = 0,
    TALUS_COMPRESS_LZ4 = 1,
    TALUS_COMPRESS_ZSTD = 2,
};

enum talus_durability {
    TALUS_DURABILITY_NONE = 0,     /* memtable only (bulk loads) */
    TALUS_DURABILITY_BUFFERED = 1, /* handed to the OS: survives a process crash */
    TALUS_DURABILITY_SYNC = 2,     /* fdatasync before returning: survives power loss */
};

enum talus_compaction_style {
    TALUS_COMPACTION_LEVELED = 0,
};

/* Per-tree options. */
typedef struct talus_tree_options {
    size_t write_buffer_size;    /* memtable size before it is sealed (64 MiB) */
    int max_immutable_memtables; /* sealed memtables waiting for flush before writers stop (2) */
    size_t block_size;           /* target uncompressed data block size (4096) */
    int block_restart_interval;  /* keys between restart points (16) */
    int bloom_bits_per_key;      /* 0 disables the filter (10) */
    int compression;             /* enum talus_compression (NONE) */
    int compression_level;       /* 0 = library default */
    int compaction_style;        /* enum talus_compaction_style */
    int num_levels;              /* (7) */
    int l0_compaction_trigger;   /* L0 tables that start a compaction (4) */
    int l0_slowdown_trigger;     /* L0 tables that slow writers (20) */
    int l0_stop_trigger;         /* L0 tables that stop writers (36) */
    uint64_t max_bytes_for_level_base; /* L1 target size (256 MiB) */
    int level_size_multiplier;         /* (10) */
    uint64_t target_file_size;         /* table size target (64 MiB) */
    /* Key-value separation: a value of at least this many bytes is written
     * once to its own blob file and the tree keeps a small reference to it,
     * so flushes and compactions never copy it; the file is removed when
     * compaction drops the reference. 0 keeps every value in the tree (0). */
    uint64_t min_blob_size;
} talus_tree_options;

TALUS_API void talus_tree_options_init(talus_tree_options *o);

/* A sequence-number generator: returns the seqno of the next batch, which
 * must be greater than `last` (the previous batch's). Called with the
 * writer lock held, one call per batch, so it needs no locking of its own
 * and must be quick. A value <= last fails that batch with TALUS_ESEQNO. */
typedef uint64_t (*talus_seqno_fn)(void *ctx, uint64_t last);

enum talus_journal_recovery {
    /* A torn tail (a crash mid-record) is cut off; any other damage is
     * TALUS_ECORRUPT and the database does not open. */
    TALUS_RECOVER_STRICT = 0,
    /* Recover up to the last good record and drop the rest (logged). */
    TALUS_RECOVER_TO_LAST_GOOD = 1,
};

/* Database options. */
typedef struct talus_options {
    int create_if_missing;          /* (1) */
    int error_if_exists;            /* (0) */
    size_t block_cache_size;        /* bytes of uncompressed blocks cached (64 MiB) */
    int max_open_files;             /* table descriptors kept open (1000) */
    int background_threads;         /* flush + compaction workers (2) */
    int durability;                 /* default durability of writes (BUFFERED) */
    int read_only;                  /* open without writing anything (0) */
    talus_tree_options tree;        /* defaults for trees created by this handle */
    uint64_t journal_segment_size;  /* start a new journal segment after this (64 MiB) */
    uint64_t max_journal_size;      /* force flushes when the journal passes this (512 MiB) */
    int journal_recovery;           /* enum talus_journal_recovery (STRICT) */
    talus_seqno_fn seqno_generator; /* NULL: a counter (last + 1) */
    void *seqno_ctx;
} talus_options;

TALUS_API void talus_options_init(talus_options *o);

/* ---- Database --------------------------------------------------------- */

/* Open (or create) the database in directory `path`. On success *out is
 * set. A second process opening the same directory gets TALUS_EBUSY. */
TALUS_API int talus_open(const char *path, const talus_options *opts, talus_db **out);
/* Flush memtables, wait for background work, release everything. Trees,
 * iterators and snapshots must be closed/released first. */
TALUS_API int talus_close(talus_db *db);

/* Make every write acknowledged so far durable (fdatasync of the journal). */
TALUS_API int talus_db_sync(talus_db *db);

/* The default tree (named "default") always exists; the handle is owned by
 * the db and stays valid until talus_close. */
TALUS_API talus_tree *talus_default_tree(talus_db *db);
/* Open a named tree, creating it if `create` is non-zero (TALUS_ENOTFOUND
 * otherwise). The handle is owned by the db; opening the same name twice
 * returns the same handle. `opts` may be NULL (db defaults). */
TALUS_API int talus_tree_open(talus_db *db, const char *name, int create,
                              const talus_tree_options *opts, talus_tree **out);
/* Names of all trees; *names is a NULL-terminated array, free with
 * talus_free_names(). */
TALUS_API int talus_tree_list(talus_db *db, char ***names, size_t *count);
TALUS_API void talus_free_names(char **names);
/* Drop a tree and all its data (not "default"). */
TALUS_API int talus_tree_drop(talus_db *db, const char *name);
TALUS_API const char *talus_tree_name(const talus_tree *t);

/* ---- Writes ----------------------------------------------------------- */

TALUS_API int talus_put(talus_tree *t, const void *key, size_t klen, const void *val, size_t vlen);
TALUS_API int talus_delete(talus_tree *t, const void *key, size_t klen);
/* Weak (single) delete: cancels exactly the one value below it. Meant for
 * keys written once; reads treat it as a delete, and it never makes an older
 * value visible again. */
TALUS_API int talus_weak_delete(talus_tree *t, const void *key, size_t klen);

/* Atomic batches spanning several trees: a reader (and a crash) sees all of
 * a batch or none of it. A batch gets one seqno; a key written twice in a
 * batch keeps the last write. */
TALUS_API int talus_batch_new(talus_batch **out);
TALUS_API void talus_batch_free(talus_batch *b);
TALUS_API void talus_batch_clear(talus_batch *b);
TALUS_API size_t talus_batch_count(const talus_batch *b);
TALUS_API int talus_batch_put(talus_batch *b, talus_tree *t, const void *key, size_t klen,
                              const void *val, size_t vlen);
TALUS_API int talus_batch_delete(talus_batch *b, talus_tree *t, const void *key, size_t klen);
TALUS_API int talus_batch_weak_delete(talus_batch *b, talus_tree *t, const void *key, size_t klen);
/* Apply with the db's default durability (durability < 0) or the given one.
 * *seqno_out (may be NULL) receives the batch's seqno. */
/* Streamed values: a value written piece by piece straight to a blob file
 * of tree t, with memory bounded by one staging buffer whatever its size
 * (up to TALUS_MAX_VALUE, else TALUS_ETOOBIG). Works whatever the tree's
 * min_blob_size. A writer is used by one thread at a time. */
typedef struct talus_value_writer talus_value_writer;
TALUS_API int talus_value_writer_new(talus_tree *t, talus_value_writer **out);
TALUS_API int talus_value_writer_append(talus_value_writer *w, const void *buf, size_t n);
/* Bytes appended so far. */
TALUS_API uint64_t talus_value_writer_length(const talus_value_writer *w);
/* Read back bytes already appended (e.g. to turn a value being streamed
 * into one edited in memory); *got < n only at the end. */
TALUS_API int talus_value_writer_read(talus_value_writer *w, uint64_t off, void *buf, size_t n,
                                      size_t *got);
/* Finish w (its file is synced) and put it as key's value in batch b; the
 * tree must be w's. Takes w in every case, success or error. */
TALUS_API int talus_batch_put_value(talus_batch *b, talus_tree *t, const void *key, size_t klen,
                                    talus_value_writer *w);
/* Optional: write out and sync the value now (appends and reads are then
 * refused), so that talus_batch_put_value only adds a reference; lets a
 * program do the slow part outside its own locks. */
TALUS_API int talus_value_writer_finish(talus_value_writer *w);
/* Drop a value not put in a batch (finished or not). NULL is ignored. */
TALUS_API void talus_value_writer_abort(talus_value_writer *w);

/* Put the value of src_key in tree src (as of snap, NULL: latest) as key's
 * value in tree t. A value kept in a blob file is not read: the copy gets a
 * second name for the same bytes (a hard link) where the filesystem allows,
 * so renaming a large value costs no I/O on it. TALUS_ENOTFOUND if src_key
 * is absent. */
TALUS_API int talus_batch_copy(talus_batch *b, talus_tree *t, const void *key, size_t klen,
                               talus_tree *src, const talus_snapshot *snap, const void *src_key,
                               size_t src_klen);

TALUS_API int talus_batch_commit(talus_db *db, talus_batch *b, int durability, uint64_t *seqno_out);

/* ---- Reads ------------------------------------------------------------ */

/* The newest seqno visible to readers. */
TALUS_API uint64_t talus_seqno(talus_db *db);

/* Get the value of key as of `snap` (NULL: latest). *val is malloc'd (free
 * with talus_free); returns TALUS_ENOTFOUND if absent. */
TALUS_API int talus_get(talus_tree *t, const talus_snapshot *snap, const void *key, size_t klen,
                        void **val, size_t *vlen);
/* Same, reading at an explicit seqno (must be <= talus_seqno and still
 * retained: protected by a snapshot or newer than every compaction). */
TALUS_API int talus_get_at(talus_tree *t, uint64_t seqno, const void *key, size_t klen, void **val,
                           size_t *vlen);
/* Ranged reads: open the value of key as of `snap` (NULL: latest) without
 * reading it all; talus_value_read then reads any byte range of it. A value
 * kept in a blob file is read chunk by chunk from that file (it stays
 * readable even if the key is overwritten or deleted meanwhile); a small
 * value is held in memory. TALUS_ENOTFOUND if absent. talus_value_read may
 * be called from several threads at once. */
typedef struct talus_value talus_value;
TALUS_API int talus_value_open(talus_tree *t, const talus_snapshot *snap, const void *key,
                               size_t klen, talus_value **out);
TALUS_API int talus_value_open_at(talus_tree *t, uint64_t seqno, const void *key, size_t klen,
                                  talus_value **out);
TALUS_API uint64_t talus_value_length(const talus_value *v);
/* Read up to n bytes at off into buf; *got < n only at the end of the value. */
TALUS_API int talus_value_read(talus_value *v, uint64_t off, void *buf, size_t n, size_t *got);
TALUS_API void talus_value_close(talus_value *v);

/* 1 if present, 0 if absent, or a negative error. */
TALUS_API int talus_contains(talus_tree *t, const talus_snapshot *snap, const void *key,
                             size_t klen);

/* ---- Snapshots -------------------------------------------------------- */

/* In-memory snapshot of the current state; compaction keeps every version
 * it can see until released. */
TALUS_API talus_snapshot *talus_snapshot_take(talus_db *db);
TALUS_API void talus_snapshot_release(talus_db *db, talus_snapshot *s);
TALUS_API uint64_t talus_snapshot_seqno(const talus_snapshot *s);

/* Persistent snapshots: pin a seqno so that reads at it (talus_get_at,
 * iterators with a snapshot from talus_snapshot_at) keep working across
 * close, crash and reopen, and compaction keeps what it needs. Pinning a
 * seqno whose old versions compaction may already have collected is refused
 * with TALUS_ESNAPSHOT; pinning the current seqno always works. Pinning an
 * already pinned seqno is a no-op. */
TALUS_API int talus_snapshot_pin(talus_db *db, uint64_t seqno);
TALUS_API int talus_snapshot_unpin(talus_db *db, uint64_t seqno);

typedef struct talus_pinned_snapshot {
    uint64_t seqno;
    uint64_t bytes_held; /* approximate bytes of old versions only it keeps */
} talus_pinned_snapshot;

/* Pinned snapshots, ascending; *out malloc'd (talus_free). Computing
 * bytes_held reads every table once: an admin call, not a hot path. */
TALUS_API int talus_snapshot_list(talus_db *db, talus_pinned_snapshot **out, size_t *count);
/* An in-memory snapshot handle at a pinned (or current) seqno, for use with
 * talus_get and iterators; release with talus_snapshot_release. NULL with
 * TALUS_ESNAPSHOT in talus_errmsg if the seqno is not pinned nor current. */
TALUS_API talus_snapshot *talus_snapshot_at(talus_db *db, uint64_t seqno);

/* ---- Iterators -------------------------------------------------------- */

typedef struct talus_iter_options {
    const talus_snapshot *snapshot; /* NULL: latest at creation time */
    const void *lower;              /* inclusive lower bound, NULL: none */
    size_t lower_len;
    const void *upper; /* exclusive upper bound, NULL: none */
    size_t upper_len;
    const void *prefix; /* only keys starting with prefix (combines with bounds) */
    size_t prefix_len;
} talus_iter_options;

TALUS_API void talus_iter_options_init(talus_iter_options *o);
/* An iterator starts unpositioned: call one of the seek functions. */
TALUS_API int talus_iter_new(talus_tree *t, const talus_iter_options *o, talus_iter **out);
TALUS_API void talus_iter_free(talus_iter *it);
TALUS_API void talus_iter_seek_first(talus_iter *it);
TALUS_API void talus_iter_seek_last(talus_iter *it);
/* First key >= key. */
TALUS_API void talus_iter_seek(talus_iter *it, const void *key, size_t klen);
/* Last key <= key. */
TALUS_API void talus_iter_seek_for_prev(talus_iter *it, const void *key, size_t klen);
TALUS_API void talus_iter_next(talus_iter *it);
TALUS_API void talus_iter_prev(talus_iter *it);
TALUS_API int talus_iter_valid(const talus_iter *it);
/* Pointers valid until the iterator moves or is freed. */
TALUS_API const void *talus_iter_key(const talus_iter *it, size_t *klen);
/* A value kept in a blob file is read when asked for: NULL (and
 * talus_iter_status set) if that read fails. */
TALUS_API const void *talus_iter_value(const talus_iter *it, size_t *vlen);
/* The current value's length, without reading a blob-file value. */
TALUS_API uint64_t talus_iter_value_length(const talus_iter *it);
/* 0, or the error that stopped the iterator (then valid() is 0). */
TALUS_API int talus_iter_status(const talus_iter *it);

/* First / last key of the tree (latest state). *key malloc'd. */
TALUS_API int talus_first_key(talus_tree *t, void **key, size_t *klen);
TALUS_API int talus_last_key(talus_tree *t, void **key, size_t *klen);

/* ---- Sizes, maintenance, statistics ------------------------------------ */

/* Approximate number of live entries (counts entries in memtables and
 * tables, including not yet collected versions). */
TALUS_API uint64_t talus_approximate_count(talus_tree *t);
/* Bytes of table files of this tree on disk. */
TALUS_API uint64_t talus_disk_space(talus_tree *t);

/* Seal the memtable and wait until it is written to L0. */
TALUS_API int talus_flush(talus_tree *t);
/* Compact [lo, hi) (NULL = unbounded) through all levels and wait. */
TALUS_API int talus_compact_range(talus_tree *t, const void *lo, size_t lolen, const void *hi,
                                  size_t hilen);
/* Wait until no flush or compaction is pending for any tree. */
TALUS_API int talus_wait_idle(talus_db *db);

typedef struct talus_level_stats {
    int level;
    uint64_t files;
    uint64_t bytes;
    uint64_t entries;
} talus_level_stats;

typedef struct talus_tree_stats {
    int num_levels;
    talus_level_stats levels[16];
    uint64_t memtable_bytes;      /* active + sealed memtables */
    uint64_t immutable_memtables; /* sealed, waiting for flush */
    uint64_t flushes;
    uint64_t compactions;
    uint64_t bytes_flushed;
    uint64_t bytes_compacted_read;
    uint64_t bytes_compacted_written;
    uint64_t stall_slowdowns; /* writes delayed because L0 was large */
    uint64_t stall_stops;     /* writes that had to wait */
    uint64_t last_seqno;
    uint32_t format_version;
    uint64_t blob_files; /* values kept in blob files (min_blob_size) */
    uint64_t blob_bytes; /* their value bytes */
} talus_tree_stats;

TALUS_API int talus_tree_stats_get(talus_tree *t, talus_tree_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* TALUS_H */
