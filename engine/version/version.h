/*
 * version.h - the levels of one tree and the manifest that records them.
 *
 * A version is an immutable, reference-counted picture of which table files
 * are live at which level. Level 0 files may overlap and are ordered newest
 * first (by max_seq, ties by file number); levels >= 1 are sorted by
 * smallest key and do not overlap.
 *
 * The version set owns the manifest: a log of version edits (format in
 * version/FORMAT.md) named MANIFEST-<n>, and a CURRENT file naming the live
 * manifest, replaced atomically (write temp, fsync, rename, fsync dir).
 * Opening replays the manifest; a torn last record is ignored, any other bad
 * record is TALUS_ECORRUPT with the offset in the message; a format version
 * above what this build reads is TALUS_EVERSION.
 *
 * Threading: ver_set_* calls are thread-safe (internal mutex); a version is
 * read-only once installed and can be used by any thread holding a ref, and
 * may be released (ver_version_unref) from any thread.
 *
 * Levels >= 1 are disjoint in USER keys (largest user key of a file < the
 * smallest user key of the next), so a point read looks in one file per
 * level; an edit that breaks this is refused (TALUS_EINVAL from apply,
 * TALUS_ECORRUPT from a manifest).
 */
#ifndef TL_VERSION_H
#define TL_VERSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/env.h"
#include "util/slice.h"

#define VER_MAX_LEVELS 16
/* Blob files (key-value separation) are kept in a version as one more
 * "level" past the real ones: files[VER_BLOB_LEVEL], sorted by number, with
 * no keys. Level loops (0 .. num_levels-1) never see them. */
#define VER_BLOB_LEVEL VER_MAX_LEVELS

typedef struct ver_file {
    uint64_t number;
    uint64_t size;
    uint8_t *smallest; /* internal keys, owned */
    size_t smallest_len;
    uint8_t *largest;
    size_t largest_len;
    uint64_t min_seq;
    uint64_t max_seq;
    uint64_t entries;
    uint64_t deletions;
    atomic_int refs;  /* memory: versions, edits and callers holding this struct */
    atomic_int vrefs; /* private: live versions containing this file (obsolete tracking) */
    bool compacting;  /* set by the compaction picker; guarded by the tree's mutex */
    bool blob;        /* a blob file: only number and size (value bytes) are set */
} ver_file;

typedef struct ver_set ver_set;

typedef struct ver_version {
    atomic_int refs;
    int num_levels;
    ver_file **files[VER_MAX_LEVELS + 1]; /* + the blob files */
    size_t nfiles[VER_MAX_LEVELS + 1];
    ver_set *vset;
    /* Private to version/: links in the set's list of live versions (under
     * the set's mutex), and whether the version was ever installed. */
    struct ver_version *prev, *next;
    bool installed;
} ver_version;

/* A new ver_file with copies of the keys (refs = 1); NULL on ENOMEM. */
ver_file *ver_file_new(uint64_t number, uint64_t size, tl_slice smallest, tl_slice largest,
                       uint64_t min_seq, uint64_t max_seq, uint64_t entries, uint64_t deletions);
void ver_file_ref(ver_file *f);
/* Drops a reference; at zero the struct is freed (not the file on disk).
 * NULL is ignored. */
void ver_file_unref(ver_file *f);

void ver_version_ref(ver_version *v);
/* At zero, unrefs its files; a file that no live version contains any more
 * is reported to the set's obsolete callback (from the calling thread). The
 * current version holds its files, so a live file is never reported. NULL is
 * ignored. */
void ver_version_unref(ver_version *v);
uint64_t ver_version_level_bytes(const ver_version *v, int level);
/* Whether blob file `number` is in v. */
bool ver_version_has_blob(const ver_version *v, uint64_t number);
/* Files in `level` whose user-key range overlaps [lo, hi] (NULL = open);
 * *out malloc'd array (not ref'd). */
int ver_version_overlapping(const ver_version *v, int level, const tl_slice *lo, const tl_slice *hi,
                            ver_file ***out, size_t *n);
/* For levels >= 1: index of the first file whose largest user key >= ukey
 * (nfiles if none). */
size_t ver_version_find_file(const ver_version *v, int level, tl_slice ukey);

/* ---- Edits ------------------------------------------------------------- */

typedef struct ver_edit_add {
    int level;
    ver_file *file; /* ref held by the edit */
} ver_edit_add;

typedef struct ver_edit_del {
    int level;
    uint64_t number;
} ver_edit_del;

typedef struct ver_edit {
    bool has_last_seq, has_flushed_seq, has_next_file, has_format_version, has_num_levels;
    uint64_t last_seq;    /* highest seqno written to any table */
    uint64_t flushed_seq; /* everything <= this is in tables (journal replay point) */
    uint64_t next_file;
    uint32_t format_version;
    uint32_t num_levels;
    ver_edit_add *adds;
    size_t nadds, adds_cap;
    ver_edit_del *dels;
    size_t ndels, dels_cap;
} ver_edit;

void ver_edit_init(ver_edit *e);
void ver_edit_free(ver_edit *e);
/* Takes a new reference on f. Deleting a number and adding it again in the
 * same edit moves the file to another level (trivial move); the description
 * must then be identical. A number once deleted is never added again by a
 * later edit (numbers are never reused). */
int ver_edit_add_file(ver_edit *e, int level, ver_file *f);
int ver_edit_delete_file(ver_edit *e, int level, uint64_t number);
/* Blob files: added once (by the flush that first stores a reference to
 * it), deleted once (by the compaction that drops its last reference). */
int ver_edit_add_blob(ver_edit *e, uint64_t number, uint64_t value_bytes);
int ver_edit_delete_blob(ver_edit *e, uint64_t number);
int ver_edit_encode(const ver_edit *e, tl_buf *out);
/* Hardened: any malformed input is TALUS_ECORRUPT, never a crash. e is
 * initialised here (it must not hold files); on error it holds no files but
 * keeps the scalar fields decoded so far (has_format_version lets a reader
 * report a newer format); free it with ver_edit_free either way. */
int ver_edit_decode(ver_edit *e, tl_slice in);

/* ---- The version set --------------------------------------------------- */

/* Called once per table or blob file that left every live version: the file may be
 * deleted from disk. Runs on whichever thread drops the last reference (a
 * reader, or the applier), with no version-set lock held; it must be
 * thread-safe and must not call ver_set_close. Never called during open or
 * close, nor for files of an edit whose apply failed. */
typedef void (*ver_obsolete_fn)(void *ctx, uint64_t file_number, bool blob);

typedef struct ver_set_options {
    tl_env *env;
    const char *dir;             /* tree directory; copied */
    int num_levels;              /* used when creating (an existing set keeps its own) */
    bool create_if_missing;      /* create an empty manifest if there is none */
    bool read_only;              /* never write */
    uint32_t max_format_version; /* highest format this build reads and writes (0 = 3) */
    ver_obsolete_fn on_obsolete; /* may be NULL */
    void *on_obsolete_ctx;
} ver_set_options;

/* Open (recover) or create. No CURRENT and !create_if_missing (or
 * read_only): TALUS_ENOTFOUND. Unless read_only, open continues in a new
 * manifest (a snapshot of the recovered state) and removes the old one. */
int ver_set_open(const ver_set_options *o, ver_set **out);
/* Releases the current version; remaining versions must be unref'd first. */
void ver_set_close(ver_set *vs);
/* Current version with a reference taken. */
ver_version *ver_set_current(ver_set *vs);
/* Append e to the manifest (fsync), then install the new version. Fills in
 * next_file (always: the set's counter) and last_seq (when unset); raises
 * format_version to the set's when lower. Marking a database V4 is an edit
 * with format_version = 4 (needs max_format_version >= 4).
 * An edit that does not fit the current version (bad delete, duplicate
 * number, L1+ overlap, level >= num_levels) is TALUS_EINVAL and changes
 * nothing. A failed manifest write installs nothing and puts the set in a
 * sticky error state: every later apply fails with the same code (the
 * record may or may not be on disk; reopen decides). Read-only sets:
 * TALUS_EREADONLY. */
int ver_set_apply(ver_set *vs, ver_edit *e);
/* A number never handed out before, even across reopen once any later
 * apply succeeded (every apply records the counter). */
uint64_t ver_set_new_file_number(ver_set *vs);
/* Make sure later numbers are above `number` (one found in use, e.g. a
 * blob named by a replayed journal record). */
void ver_set_mark_file_number(ver_set *vs, uint64_t number);
uint64_t ver_set_last_seq(ver_set *vs);
uint64_t ver_set_flushed_seq(ver_set *vs);
uint32_t ver_set_format_version(ver_set *vs);
int ver_set_num_levels(ver_set *vs);
/* Numbers of every table in any live version, plus the manifest number,
 * for orphan removal; sorted ascending, no duplicates. *numbers malloc'd.
 * Manifests and tables share one number space. */
int ver_set_live_files(ver_set *vs, uint64_t **numbers, size_t *n);
uint64_t ver_set_manifest_number(ver_set *vs);

#endif
