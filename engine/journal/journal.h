/*
 * journal.h - the write-ahead journal shared by all trees of a database.
 * Format in journal/FORMAT.md.
 *
 * The journal is a sequence of segment files "<dir>/<number, 6+ digits>.jnl",
 * each starting with a header (magic, format version, segment number) and
 * holding framed records: one record per committed batch. A record's frame
 * carries its length, a check of the length (so that a damaged length is
 * never taken for a record cut short) and an xxh3 checksum of the payload.
 *
 * Writing: records are staged in memory (jnl_writer_add) and handed to the
 * OS in one write per group (jnl_writer_write), then optionally made durable
 * (jnl_writer_sync). The db's commit leader is the only caller at a time:
 * a writer is NOT thread-safe, except jnl_writer_sync, which may run
 * concurrently with nothing else on the same writer either (the db
 * serializes). Rotation syncs the old segment before the new one is used,
 * so only the newest segment can have a torn tail after power loss.
 *
 * Reading: jnl_reader walks one segment. A frame or record cut short at the
 * end of the file, a payload checksum mismatch on a record followed only by
 * zeros (or ending exactly at the end of the file), or zero bytes to the
 * end of the file is a torn tail: the reader reports end of data with
 * torn=true and the offset of the last good record. A damaged length (its
 * check fails) and damage followed by more data are corruption:
 * TALUS_ECORRUPT naming the segment and offset. FORMAT.md section 4 has
 * the exact rules.
 */
#ifndef TL_JOURNAL_H
#define TL_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "util/env.h"
#include "util/slice.h"

#define JNL_FORMAT_VERSION 1u

/* "<dir>/<number>.jnl" into buf; returns buf. */
char *jnl_segment_name(char *buf, size_t n, const char *dir, uint64_t number);
/* Numbers of the segments in dir, ascending; *nums malloc'd. */
int jnl_list_segments(tl_env *env, const char *dir, uint64_t **nums, size_t *n);

/* ---- Writing ------------------------------------------------------------ */

typedef struct jnl_writer jnl_writer;

/* Create segment `number` in dir (which must exist) and sync the dir. */
int jnl_writer_open(tl_env *env, const char *dir, uint64_t number, jnl_writer **out);
/* Stage one record (copied). Any batch fits a record (the length is a
 * fixed64): TALUS_ETOOBIG only if the framed record would not fit in a
 * size_t. TALUS_EINVAL for an empty payload. Neither breaks the writer. */
int jnl_writer_add(jnl_writer *w, tl_slice payload);
/* Hand every staged record to the OS in one append. On error the staged
 * records are dropped and the writer is broken (every later call fails):
 * the db must not acknowledge them. */
int jnl_writer_write(jnl_writer *w);
/* fdatasync the segment. */
int jnl_writer_sync(jnl_writer *w);
/* Sync and close the current segment, start segment `number`. */
int jnl_writer_rotate(jnl_writer *w, uint64_t number);
uint64_t jnl_writer_segment(const jnl_writer *w);
/* Bytes in the current segment (written, not staged). */
uint64_t jnl_writer_segment_bytes(const jnl_writer *w);
/* Close without syncing (sync first for durability). NULL is fine. */
int jnl_writer_close(jnl_writer *w);

/* ---- Reading ------------------------------------------------------------ */

typedef struct jnl_reader jnl_reader;

int jnl_reader_open(tl_env *env, const char *path, jnl_reader **out);
/* 1: *payload is the next record (valid until the next call); 0: end of
 * data (see jnl_reader_torn); < 0: error (ECORRUPT with segment+offset). */
int jnl_reader_next(jnl_reader *r, tl_slice *payload);
/* After end of data: whether the segment ended with a torn record. */
bool jnl_reader_torn(const jnl_reader *r);
/* Offset just past the last good record (for truncating a torn tail). */
uint64_t jnl_reader_good_offset(const jnl_reader *r);
void jnl_reader_close(jnl_reader *r);

/* ---- Batch payloads ------------------------------------------------------
 * A record's payload is one batch: its seqno and its entries, each naming
 * the tree by id. */

typedef struct jnl_entry {
    uint32_t tree_id;
    uint8_t type; /* util/ikey.h TL_TYPE_* */
    tl_slice key;
    tl_slice value;
} jnl_entry;

/* Start a batch payload in out (cleared). */
int jnl_batch_begin(tl_buf *out, uint64_t seq, uint32_t count);
int jnl_batch_add(tl_buf *out, const jnl_entry *e);

typedef struct jnl_batch_iter {
    const uint8_t *p, *end;
    const uint8_t *start; /* the payload, for offsets in error messages */
    uint32_t count, left;
} jnl_batch_iter;

/* Parse a payload's header; hardened (ECORRUPT on malformed input). */
int jnl_batch_open(tl_slice payload, uint64_t *seq, uint32_t *count, jnl_batch_iter *it);
/* 1: *e is the next entry (pointing into the payload); 0: done (and the
 * payload had exactly `count` entries and no trailing bytes); < 0 ECORRUPT. */
int jnl_batch_next(jnl_batch_iter *it, jnl_entry *e);

#endif
