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
 * Lock order: write_mu, then a tree's mu, then db mu / bg_mu. Never the
 * other way.
 */
#ifndef TL_DB_INTERNAL_H
#define TL_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "talus.h"
#include "cache/cache.h"
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

    pthread_mutex_t write_mu;
    atomic_uint_fast64_t last_seq;      /* last allocated (guarded by write_mu for writes) */
    atomic_uint_fast64_t published_seq; /* visible to readers */

    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;   /* work queued or stop */
    pthread_cond_t idle_cv; /* a unit of work finished */
    talus_tree *queue_head, *queue_tail;
    pthread_t *workers;
    int nworkers;
    bool bg_stop;
};

/* Apply one write to one tree (the single-op fast path of talus_put etc.). */
int db_write_one(talus_db *db, talus_tree *t, uint8_t type, const void *key, size_t klen,
                 const void *val, size_t vlen);
int db_check_key(const void *key, size_t klen);
int db_check_value(size_t vlen);
/* Live snapshot seqnos ascending (for compaction). */
int db_snapshot_seqs(talus_db *db, uint64_t **seqs, size_t *n);

#endif
