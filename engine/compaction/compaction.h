/*
 * compaction.h - choosing compactions (leveled) and writing merged tables.
 *
 * Garbage collection rule (shared by flush and compaction): for each user
 * key, versions come newest first. With live snapshots S (ascending), a
 * version's "stripe" is the smallest snapshot >= its seqno (or "latest"
 * when none). Keep the newest version of each stripe; drop the others.
 * A kept tombstone (or weak tombstone) in the oldest stripe (no snapshot
 * below it) is dropped too when no older version of the key can exist below
 * the output level (ctx->key_below says so) and none remains in the input.
 * A weak tombstone therefore cancels the value right below it without ever
 * making an older value visible: it behaves as a tombstone for GC.
 */
#ifndef TL_COMPACTION_H
#define TL_COMPACTION_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "table/table.h"
#include "version/version.h"

typedef struct cp_options {
    int num_levels;
    int l0_trigger;             /* L0 files that make L0 compactable */
    uint64_t base_level_bytes;  /* L1 target */
    int multiplier;             /* each level this many times the previous */
    uint64_t target_file_size;  /* split output tables at this size */
} cp_options;

typedef struct cp_pick {
    int level;        /* input level */
    int output_level; /* level + 1 (or the same for intra-L0, later) */
    ver_file **inputs[2];
    size_t ninputs[2];
    bool trivial_move; /* one file, nothing overlapping in output_level */
    double score;
} cp_pick;

/* Target bytes of `level` (>= 1). */
uint64_t cp_level_target(const cp_options *o, int level);
/* Highest compaction score of v (>= 1 means something should run). */
double cp_max_score(const cp_options *o, const ver_version *v);
/* Choose the most urgent compaction of v whose files are not already being
 * compacted. Returns 1 and fills *p (and marks its inputs compacting; the
 * caller holds the tree mutex), 0 if none is due, negative on ENOMEM. */
int cp_pick_compaction(const cp_options *o, ver_version *v, cp_pick *p);
/* Manual compaction of the user-key range [lo, hi] (NULL = open) from
 * `level` into level+1; returns 0 when nothing overlaps. Marks inputs. */
int cp_pick_range(const cp_options *o, ver_version *v, int level, const tl_slice *lo,
                  const tl_slice *hi, cp_pick *p);
/* Unmark inputs and free the arrays (caller holds the tree mutex). */
void cp_pick_release(cp_pick *p);

/* What writing merged output needs. */
typedef struct cp_ctx {
    tl_env *env;
    const char *dir;           /* where tables go */
    tl_table_cache *tc;
    ver_set *vs;               /* for new file numbers */
    tbl_options topts;
    uint64_t target_file_size;
    const uint64_t *snapshots; /* live snapshot seqnos, ascending */
    size_t nsnapshots;
    /* true if a version of ukey may exist in a level below the output (for
     * dropping tombstones); NULL means "nothing below". */
    bool (*key_below)(void *arg, tl_slice ukey);
    void *key_below_arg;
    /* Stop early (shutting down): checked between tables. May be NULL. */
    const atomic_bool *cancel;
} cp_ctx;

typedef struct cp_output {
    ver_file **files; /* new tables, each with one ref owned here */
    size_t nfiles;
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t entries_in;
    uint64_t entries_dropped;
} cp_output;

/* Drain `input` (internal-key order), apply the GC rule, and write tables
 * of about target_file_size each (a user key's versions never straddle two
 * tables). Each table is written to a temporary name, synced, and renamed
 * to its number; the directory is synced. On error every table this call
 * created is removed. */
int cp_write_tables(const cp_ctx *ctx, tl_iter *input, cp_output *out);
void cp_output_free(cp_output *out);

/* Run pick p against version v: merge its inputs through the table cache
 * and write the output (trivial moves write nothing: fill the edit only).
 * Fills `edit` with the deletes and adds to apply. */
int cp_run(const cp_ctx *ctx, const cp_pick *p, ver_edit *edit, cp_output *out);

/* Iterator over one sorted level (>= 1): opens tables lazily through the
 * table cache. Holds a ref on v until destroyed. */
tl_iter *cp_level_iter(tl_table_cache *tc, ver_version *v, int level, bool fill_cache);

#endif
