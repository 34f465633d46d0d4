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
 * A kept merge operand (reserved, V4) or a range-tombstone entry met in the
 * point-key stream keeps every older version of its key verbatim: without a
 * merge operator that is the only safe choice.
 *
 * Picking (leveled): L0 score = L0 files not being compacted / l0_trigger;
 * level L >= 1 score = bytes of its files not being compacted / target(L).
 * An L0 compaction takes the oldest idle L0 file plus every L0 file that
 * overlaps the growing range (so a newer L0 file never leaves before an older
 * overlapping one), plus the overlapping L1 files. A level-L compaction takes
 * the file (widened to whole user keys) with the least overlapping bytes in
 * L+1 per input byte (ties: leftmost), which is deterministic and needs no
 * state. Any conflict with a running compaction skips that candidate.
 */
#ifndef TL_COMPACTION_H
#define TL_COMPACTION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "table/table.h"
#include "version/version.h"

typedef struct cp_options {
    int num_levels;
    int l0_trigger;            /* L0 files that make L0 compactable */
    uint64_t base_level_bytes; /* L1 target */
    int multiplier;            /* each level this many times the previous */
    uint64_t target_file_size; /* split output tables at this size */
} cp_options;

typedef struct cp_pick {
    int level;        /* input level */
    int output_level; /* level + 1 (or the same for intra-L0, later) */
    ver_file **inputs[2];
    size_t ninputs[2];
    bool trivial_move; /* one file, nothing overlapping in output_level */
    double score;
    /* The version the inputs come from, with a reference held until
     * cp_pick_release: it keeps the input files alive (keep the pick until
     * the edit is applied). inputs[0] of an L0 pick are in L0 order (newest
     * first); all other input arrays are sorted by key. */
    ver_version *version;
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
 * `level` into level+1; returns 1 when picked (marks inputs), 0 when nothing
 * overlaps, TALUS_EBUSY when an overlapping file is already being compacted
 * (retry later), TALUS_EINVAL for a bad level. At the last level the output
 * level is the same level (an in-place rewrite that drops garbage). */
int cp_pick_range(const cp_options *o, ver_version *v, int level, const tl_slice *lo,
                  const tl_slice *hi, cp_pick *p);
/* Rewrite the files of `level` (>= 1) overlapping [lo, hi] in place (never
 * a trivial move): what a manual compaction ends with, so that versions and
 * blob references no snapshot needs any more are dropped even when the
 * range already sits in one level. Returns like cp_pick_range. */
int cp_pick_rewrite(const cp_options *o, ver_version *v, int level, const tl_slice *lo,
                    const tl_slice *hi, cp_pick *p);
/* Unmark inputs and free the arrays (caller holds the tree mutex). */
void cp_pick_release(cp_pick *p);

/* What writing merged output needs. */
typedef struct cp_ctx {
    tl_env *env;
    const char *dir; /* where tables go */
    tl_table_cache *tc;
    ver_set *vs; /* for new file numbers */
    tbl_options topts;
    uint64_t target_file_size;
    const uint64_t *snapshots; /* live snapshot seqnos, ascending */
    size_t nsnapshots;
    /* true if a version of ukey may exist in a level below the output (for
     * dropping tombstones); NULL means "nothing below". */
    bool (*key_below)(void *arg, tl_slice ukey);
    void *key_below_arg;
    /* Stop early (shutting down): checked between tables and every few
     * thousand input entries; a cancelled call returns TALUS_ECLOSED. */
    const atomic_bool *cancel;
} cp_ctx;

/* A blob file named by a TL_TYPE_BLOB entry that went through the writer. */
typedef struct cp_blob {
    uint64_t number;
    uint64_t length; /* value bytes */
} cp_blob;

typedef struct cp_output {
    ver_file **files; /* new tables, each with one ref owned here */
    size_t nfiles;
    /* Blob references written to the output and those the GC rule dropped
     * (one reference per blob file: a dropped one makes its file garbage). */
    cp_blob *blobs_kept, *blobs_dropped;
    size_t nblobs_kept, nblobs_dropped, kept_cap, dropped_cap;
    /* cp_write_tables counts key+value bytes drained from the input here;
     * cp_run replaces it with the on-disk size of the input files. */
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t entries_in;
    uint64_t entries_dropped;
} cp_output;

/* Drain `input` (internal-key order), apply the GC rule, and write tables
 * of about target_file_size each (a user key's versions never straddle two
 * tables; 0 means no limit). Each table is written to "<number>.sst.tmp",
 * synced, and renamed to its number; the directory is synced once. `out` is
 * initialised by the call. On error every table this call created is
 * removed and `out` is left empty. Input out of order or a key shorter than
 * its trailer is TALUS_ECORRUPT; an input error (tl_iter_status) is
 * returned as is. The caller destroys `input`. */
int cp_write_tables(const cp_ctx *ctx, tl_iter *input, cp_output *out);
void cp_output_free(cp_output *out);

/* Run pick p (against p->version): merge its inputs through the table cache
 * and write the output (trivial moves write nothing: fill the edit only).
 * Fills `edit` (already initialised) with the deletes and adds to apply,
 * including the deletion of every blob file whose reference it dropped. On
 * error the written tables are removed and `out` is left empty. */
int cp_run(const cp_ctx *ctx, const cp_pick *p, ver_edit *edit, cp_output *out);

/* Iterator over one sorted level (>= 1): opens tables lazily through the
 * table cache. Holds a ref on v until destroyed. */
tl_iter *cp_level_iter(tl_table_cache *tc, ver_version *v, int level, bool fill_cache);

#endif
