/*
 * version_int.h - shared internals of the version module (not for other
 * modules): the builder that folds edits into a version, the edit tags, and
 * the hooks versions use to reach their set.
 */
#ifndef TL_VERSION_INT_H
#define TL_VERSION_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "version/version.h"

/* The database format versions this code knows about (FORMAT.md). */
#define VER_FORMAT_BASE 3 /* V3: the base format */
#define VER_FORMAT_V4 4   /* V4: range tombstones or merge operands persisted */

/* Internal keys are a user key (<= 65,536 bytes) plus the 9-byte trailer. */
#define VER_MAX_IKEY (65536 + 9)

/* Edit tags (on disk: never renumber). */
enum ver_tag {
    VER_TAG_FORMAT_VERSION = 1,
    VER_TAG_NUM_LEVELS = 2,
    VER_TAG_NEXT_FILE = 3,
    VER_TAG_LAST_SEQ = 4,
    VER_TAG_FLUSHED_SEQ = 5,
    VER_TAG_DELETE_FILE = 6,
    VER_TAG_ADD_FILE = 7,
    VER_TAG_ADD_BLOB = 8,    /* number, value bytes */
    VER_TAG_DELETE_BLOB = 9, /* number */
};

/* ---- Builder -------------------------------------------------------------
 * Folds a base version and any number of edits into a new version. Files are
 * kept in a hash map by number, so an edit costs O(its size) and a version is
 * produced once at the end (replay of a long manifest stays linear).
 *
 * A file deleted and re-added in the same edit (a trivial move to another
 * level) keeps its existing ver_file object, so the obsolete tracking, which
 * counts versions per object, never sees the number disappear. */

typedef struct ver_builder_entry {
    uint64_t number;
    ver_file *f; /* NULL: the number was deleted (slot stays as a marker) */
    int level;
    bool used;
    bool pending_del; /* deleted by the edit being applied */
} ver_builder_entry;

typedef struct ver_builder {
    int num_levels;
    int bad_code;     /* error for a bad edit: ECORRUPT (replay) or EINVAL (apply) */
    const char *what; /* names the source in messages ("manifest X", "edit") */
    ver_builder_entry *tab;
    size_t cap, used;
    uint64_t max_number; /* largest file number ever added */
} ver_builder;

void ver_builder_init(ver_builder *b, int num_levels, int bad_code, const char *what);
void ver_builder_free(ver_builder *b);
/* Adds every file of v (takes references). */
int ver_builder_add_version(ver_builder *b, const ver_version *v);
/* Applies deletes then adds of e. On error the builder must be discarded. */
int ver_builder_apply(ver_builder *b, const ver_edit *e);
/* Builds the version (refs = 1): sorts the levels and checks that levels
 * >= 1 do not overlap. vs may be NULL (a version outside any set). */
int ver_builder_finish(ver_builder *b, ver_set *vs, ver_version **out);

/* ---- Hooks between versions and their set (version_set.c) ---------------- */

/* Links v into vs's list of live versions (takes vs's mutex). */
void ver_set_link_version(ver_set *vs, ver_version *v);
/* Unlinks a dying version; returns whether its files may be reported as
 * obsolete (installed version, set not closing). */
bool ver_set_unlink_version(ver_set *vs, ver_version *v);
void ver_set_report_obsolete(ver_set *vs, uint64_t number, bool blob);

/* Validates one file's keys (>= 9 bytes, <= VER_MAX_IKEY, smallest <=
 * largest, min_seq <= max_seq); returns a static reason or NULL if fine. */
const char *ver_file_check(const ver_file *f);

/* ---- Manifest files (manifest.c) ------------------------------------------ */

#define VER_MANIFEST_MAGIC "TLMANFST" /* 8 bytes at offset 0 */
#define VER_MANIFEST_FRAMING 1        /* fixed32 after the magic */
#define VER_MANIFEST_HEADER 12
#define VER_RECORD_HEADER 16 /* fixed32 length, fixed32 length check, fixed64 xxh3 */
#define VER_NAME_MAX 40

/* "MANIFEST-000005" */
void ver_manifest_name(char name[VER_NAME_MAX], uint64_t number);
/* Reads and parses CURRENT. No CURRENT: TALUS_ENOTFOUND. */
int ver_current_read(tl_env *env, const char *dir, uint64_t *number);
/* Points CURRENT at MANIFEST-<number> atomically. */
int ver_current_write(tl_env *env, const char *dir, uint64_t number);
/* Appends a framed record (header + payload) to out. */
int ver_record_frame(tl_buf *out, tl_slice payload);

/* Walks the records of a manifest held in memory. */
typedef struct ver_manifest_reader {
    const char *path;
    const uint8_t *data;
    size_t size;
    size_t off;
    bool torn;      /* stopped at a torn tail */
    size_t torn_at; /* offset of the torn record */
} ver_manifest_reader;

/* Checks the file header and positions r at the first record. */
int ver_manifest_reader_init(ver_manifest_reader *r, const char *path, const uint8_t *data,
                             size_t size);
/* 1 and the next record's payload and offset; 0 at the end (or at a torn
 * tail: r->torn); TALUS_ECORRUPT for a bad record before the tail. */
int ver_manifest_next(ver_manifest_reader *r, tl_slice *payload, size_t *offset);

#endif
