/*
 * file_int.h - the write buffer shared by file.c (open files and their
 * commits) and stream.c (the buffer's contents, in memory or streamed to
 * an engine value writer). Internal to those two files.
 */
#ifndef TALUSFS_FILE_INT_H
#define TALUSFS_FILE_INT_H

#include "fs.h"

/* The write buffer shared by the writable opens of an inode (n->w). */
struct tfs_wbuf {
    uint8_t *data;
    size_t len, cap;
    bool loaded;    /* data holds the file's contents */
    bool dirty;     /* data differs from the database */
    bool wrote;     /* a write or truncate since the last commit (dirty
                     * without it: only a creation or an O_TRUNC open) */
    bool talus_mem; /* data came from talus_get */
    /* Streaming (see stream.c): the contents are in vw, len is its length,
     * data is NULL. Only while loaded. */
    talus_value_writer *vw;
    uint64_t stream_at; /* a memory buffer streams again from this length */
    uint32_t users;     /* writable handles; under fs->tbl */
    bool handed;        /* the writer went into a batch not yet committed */
};

/* ---- file.c ---- */

/* Open the committed contents for ranged reads (NULL if none: removed
 * while open, or a new file). REQUIRES fs->ns (either mode). */
int tfs_file_value_open(struct tfs *fs, struct tfs_node *n, struct tfs_view v, talus_value **val);
/* Fill the write buffer with the file's contents if not yet done.
 * REQUIRES n->wlock; fs->ns held by the caller iff ns_held. */
int tfs_wbuf_load(struct tfs *fs, struct tfs_node *n, bool ns_held);

/* ---- stream.c ---- */

/* Empty the buffer, dropping its writer (and the writer's temp file). */
void tfs_wbuf_clear(struct tfs_wbuf *w);
/* A new writer (the caller's) holding bytes [0, keep) of val (or of the
 * writer src), copied a piece at a time, then zeros up to len. */
int tfs_new_writer(struct tfs *fs, talus_value *val, talus_value_writer *src, uint64_t keep,
                   uint64_t len, talus_value_writer **out);
/* Put vw as key's contents into tx; takes vw in every case. */
int tfs_txn_put_writer(struct tfs_txn *tx, const uint8_t *key, size_t klen, talus_value_writer *vw);
/* Set the buffer's length, zero-filling what grows. */
int tfs_wbuf_resize(struct tfs *fs, struct tfs_wbuf *w, uint64_t size);
/* Put size bytes at pos (pos + size within max_file_size). */
int tfs_wbuf_write(struct tfs *fs, struct tfs_wbuf *w, uint64_t pos, const char *buf, size_t size);
/* tfs_wbuf_load before a write of size bytes at off (at the end if
 * append): a large file written at its end (>>, a resumed copy, a write
 * after a commit) is copied to a writer by ranges rather than loaded whole.
 * REQUIRES n->wlock, not fs->ns. */
int tfs_wbuf_load_write(struct tfs *fs, struct tfs_node *n, bool append, uint64_t off, size_t size);
/* Put the buffer into tx as n's contents. A writer goes to the batch,
 * which takes it whatever happens: the buffer is then unloaded and clean,
 * as after an open (the contents are tx's now, lost if tx fails), and
 * w->handed is set until tfs_file_txn_done. REQUIRES n->wlock. */
int tfs_wbuf_txn_put(struct tfs_txn *tx, struct tfs_node *n, const uint8_t *key, size_t klen);
/* A read through a writable handle: from memory, the writer, or (not
 * loaded) the committed contents by range. *out is the caller's to free. */
int tfs_wbuf_pread(struct tfs *fs, struct tfs_node *n, uint64_t off, size_t size, char **out,
                   size_t *got);

#endif
