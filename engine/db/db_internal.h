/*
 * db_internal.h - a database: the directory lock, the registry of trees
 * (DBMETA, format in engine/db/FORMAT.md), sequence numbers, snapshots and
 * the background workers shared by all trees.
 *
 * Sequence numbers: writers are serialized by write_mu; each batch takes
 * last_seq + 1 and is published (published_seq, release store) after all
 * of its entries are in the memtables, so readers at published_seq never
 * see part of a batch.
 *
 * Lock order: q_mu is never held with another lock. Otherwise write_mu,
 * then db mu, then a tree's mu, then bg_mu. Never the other way. Nothing
 * waits for background work while holding db mu (flushes take it).
 */
#ifndef TL_DB_INTERNAL_H
#define TL_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "talus.h"
#include "cache/cache.h"
#include "journal/journal.h"
#include "tree/tree.h"
#include "util/env.h"

#define DB_FORMAT_V3 3u
#define DB_FORMAT_MAX_READ DB_FORMAT_V3
#define DB_MAX_TREE_NAME 255

struct talus_tree {
    talus_db *db;
    tr_tree *tr;
    char *name;
    uint32_t id;
    bool dropped;
    /* background scheduling, guarded by db->bg_mu */
    bool queued;
    int running;
    struct talus_tree *next_queued;
};

struct talus_snapshot {
    uint64_t seq;
    struct talus_snapshot *prev, *next;
};

typedef struct batch_op {
    talus_tree *tree;
    uint8_t type;
    size_t key_off, klen, val_off, vlen; /* into the batch's byte buffer */
} batch_op;

/* A blob file a batch wrote for one of its values: removed if the batch
 * is dropped without being committed. */
typedef struct batch_blob {
    talus_tree *tree;
    uint64_t number;
    size_t op; /* index of the op that names it */
} batch_blob;

struct talus_batch {
    batch_op *ops;
    size_t nops, cap;
    tl_buf bytes;
    batch_blob *blobs;
    size_t nblobs, blobs_cap;
};

/* Free what b holds (removing uncommitted blobs), not b itself. */
void db_batch_free_contents(talus_batch *b);
/* Add an op to b (key and value copied). */
int db_batch_add(talus_batch *b, talus_tree *t, uint8_t type, const void *key, size_t klen,
                 const void *val, size_t vlen);
/* Add a TL_TYPE_BLOB op naming ref, and own its file until commit. */
int db_batch_add_blob(talus_batch *b, talus_tree *t, const void *key, size_t klen,
                      const bl_ref *ref);

/* A journal segment written by this process, and the newest seqno in it. */
typedef struct db_segment {
    uint64_t number;
    uint64_t max_seq;
    uint64_t bytes;
} db_segment;

/* One committing writer in the group-commit queue. */
typedef struct db_writer {
    const talus_batch *batch; /* NULL for a single operation */
    talus_tree *tree;         /* single operation */
    uint8_t type;
    tl_slice key, value;
    int durability;
    bool done;
    int rc;
    uint64_t seq;
    char errmsg[256]; /* message of rc for the waiting thread */
    pthread_cond_t cv;
    struct db_writer *next;
} db_writer;

struct talus_db {
    tl_env *env;
    char *path;
    void *lock;
    talus_options opts;
    tl_cache *block_cache;

    pthread_mutex_t mu; /* trees registry, snapshots */
    talus_tree **trees;
    size_t ntrees, trees_cap;
    uint32_t next_tree_id;
    uint32_t format_version;
    talus_snapshot snap_head; /* circular list, oldest first */
    uint64_t *pins;           /* persistent snapshots, ascending (in DBMETA) */
    size_t npins, pins_cap;
    /* The highest seqno ever pinned (in DBMETA): a seqno that was shown as
     * a snapshot is never handed out again after a crash, even once
     * unpinned. Guarded by mu. */
    uint64_t seq_floor;
    /* Compaction may have dropped old versions below this seqno: pinning
     * an older seqno is refused. Raised whenever a flush or compaction
     * takes its snapshot list. Guarded by mu. */
    uint64_t gc_watermark;

    /* Group commit: writers queue on q_mu; the head is the leader, which
     * takes write_mu, writes the group's journal records in one append
     * (one fdatasync if any asked for sync), applies them and publishes. */
    pthread_mutex_t q_mu;
    db_writer *q_head, *q_tail;
    size_t q_len;                      /* writers queued (guarded by q_mu) */
    atomic_size_t last_sync_group;     /* writers in the last group that synced */
    atomic_uint_fast64_t last_sync_ns; /* how long its fdatasync took */
    uint64_t stat_groups, stat_group_writers, stat_syncs, stat_sync_ns; /* under write_mu */

    pthread_mutex_t write_mu;           /* held by the commit leader; also guards: */
    atomic_uint_fast64_t last_seq;      /* last allocated */
    atomic_uint_fast64_t published_seq; /* visible to readers */
    jnl_writer *journal;                /* NULL when read-only */
    char *journal_dir;
    db_segment *segs; /* live segments of this process, oldest first */
    size_t nsegs, segs_cap;
    uint64_t next_segment;
    atomic_bool trim_journal; /* a flush finished: old segments may go */
    tl_buf scratch;           /* record encoding */
    int error;                /* sticky: journal failure makes the db read-only */
    char errmsg[400];

    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;   /* work queued or stop */
    pthread_cond_t idle_cv; /* a unit of work finished */
    talus_tree *queue_head, *queue_tail;
    pthread_t *workers;
    int nworkers;
    bool bg_stop;
};

/* Commit one writer through the group-commit queue (write.c). */
int db_commit(talus_db *db, db_writer *w);
/* Apply one write to one tree (the single-op path of talus_put etc.). */
int db_write_one(talus_db *db, talus_tree *t, uint8_t type, const void *key, size_t klen,
                 const void *val, size_t vlen);
/* Recover trees from the journal on open (recover.c). REQUIRES: no lock
 * held (it waits for flushes). */
int db_recover_journal(talus_db *db);
/* Start the journal after recovery. */
int db_start_journal(talus_db *db);
/* Delete journal segments every tree has flushed past; force flushes when
 * the journal is over max_journal_size. REQUIRES: write_mu held. */
void db_trim_journal(talus_db *db);
talus_tree *db_tree_by_id(talus_db *db, uint32_t id);
/* Rewrite DBMETA (trees, pins). REQUIRES: mu held. */
int db_meta_write(talus_db *db);
/* Open with a given env (tests inject faults through it). */
int db_open_env(const char *path, const talus_options *opts, tl_env *env, talus_db **out);
/* Simulate a crash: stop background work and release everything WITHOUT
 * flushing, syncing or writing anything (tests only). */
void db_crash_close(talus_db *db);
int db_check_key(const void *key, size_t klen);
int db_check_tree(const talus_tree *t);
int db_check_writable(talus_db *db);
int db_check_value(size_t vlen);
/* Live snapshot seqnos, in-memory and pinned, ascending (for flush and
 * compaction); raises gc_watermark to the published seqno. */
int db_snapshot_seqs(talus_db *db, uint64_t **seqs, size_t *n);
/* 0 if reads at seqno see exactly the state after batch seqno: it is
 * pinned, held by an in-memory snapshot, or not older than gc_watermark. */
int db_check_readable_seq(talus_db *db, uint64_t seqno);

#endif
