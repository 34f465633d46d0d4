/*
 * blob.h - blob files: large values stored outside the LSM tree (key-value
 * separation). The tree keeps a small reference (bl_ref) as the value of a
 * TL_TYPE_BLOB entry; the bytes live in "<number>.blob" in the tree's
 * directory, written once and never rewritten.
 *
 * A blob file holds one value (the format leaves room for several: see
 * blob/FORMAT.md). The value is cut into chunks of BL_CHUNK bytes, each
 * followed by its xxh3-64, so a ranged read verifies only the chunks it
 * touches; a footer records the value length and closes the file.
 *
 * Writers stream: the value's length need not be known up front, and memory
 * stays at one staging buffer whatever the value's size. A file is written as
 * "<number>.blob.tmp", synced, renamed and the directory synced, so a
 * finished blob survives power loss before any journal record names it.
 *
 * Readers never trust the file: header, footer, lengths and every chunk are
 * checked; damage is TALUS_ECORRUPT naming the file and offset. An open
 * reader keeps its descriptor, so it keeps working after the file has been
 * removed (garbage-collected) under it.
 *
 * Threading: a writer is used by one thread. bl_reader_read may be called
 * from several threads at once on one reader.
 */
#ifndef TL_BLOB_H
#define TL_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/env.h"
#include "util/slice.h"

#define BL_CHUNK 65536u
#define BL_FORMAT_VERSION 1u
/* Largest encoded bl_ref. */
#define BL_REF_MAX 32

/* The value of a TL_TYPE_BLOB entry: where a value lives. */
typedef struct bl_ref {
    uint64_t number; /* blob file number (shares the tree's file numbers) */
    uint64_t length; /* value length in bytes */
} bl_ref;

/* Encode r into out (at most BL_REF_MAX bytes); returns the length. */
size_t bl_ref_encode(const bl_ref *r, uint8_t *out);
/* Hardened decode: trailing bytes, bad varints, a zero number or a length
 * over TALUS_MAX_VALUE are TALUS_ECORRUPT. */
int bl_ref_decode(tl_slice in, bl_ref *r);

/* "<dir>/<number>.blob" into buf (size n); returns buf. */
char *bl_file_name(char *buf, size_t n, const char *dir, uint64_t number);
/* Bytes on disk of a blob file holding one value of `length` bytes. */
uint64_t bl_file_size(uint64_t length);
/* 1 and *number if name is "<number>.blob", 2 if "<number>.blob.tmp",
 * else 0. */
int bl_parse_name(const char *name, uint64_t *number);

/* ---- Writing ------------------------------------------------------------ */

typedef struct bl_writer bl_writer;

/* Create "<dir>/<number>.blob.tmp" and write its header. */
int bl_writer_open(tl_env *env, const char *dir, uint64_t number, bl_writer **out);
/* Append n bytes of the value. More than TALUS_MAX_VALUE bytes in all is
 * TALUS_ETOOBIG (the writer is then unusable: abort it). */
int bl_writer_append(bl_writer *w, const void *p, size_t n);
/* Bytes appended so far. */
uint64_t bl_writer_length(const bl_writer *w);
uint64_t bl_writer_number(const bl_writer *w);
/* Read back value bytes appended so far (from the file or the staging
 * buffer); *got < n only at the end of what was appended. */
int bl_writer_read(bl_writer *w, uint64_t off, void *buf, size_t n, size_t *got);
/* Write the footer, sync, rename to "<number>.blob", sync the directory,
 * free w. *ref describes the value. On error the temporary file is removed
 * and w is freed all the same. */
int bl_writer_finish(bl_writer *w, bl_ref *ref);
/* Remove the temporary file and free w. NULL is ignored. */
void bl_writer_abort(bl_writer *w);

/* One-shot: write the n bytes at p as blob <number> (open, append, finish). */
int bl_write(tl_env *env, const char *dir, uint64_t number, const void *p, size_t n, bl_ref *ref);

/* ---- Reading ------------------------------------------------------------ */

typedef struct bl_reader bl_reader;

/* Open blob ref->number in dir and check its header and footer against ref
 * (the footer's length must equal ref->length). A missing file is
 * TALUS_ECORRUPT (a live reference names it). */
int bl_reader_open(tl_env *env, const char *dir, const bl_ref *ref, bl_reader **out);
uint64_t bl_reader_length(const bl_reader *r);
/* Read up to n bytes of the value at off into buf; *got < n only at the end
 * of the value (off >= length reads nothing). Every chunk touched is
 * verified. Reads that land in the chunk of the previous call reuse it. */
int bl_reader_read(bl_reader *r, uint64_t off, void *buf, size_t n, size_t *got);
void bl_reader_close(bl_reader *r);

/* Read the whole value of ref into out (replacing its contents). */
int bl_read_all(tl_env *env, const char *dir, const bl_ref *ref, tl_buf *out);

/* A second name for a blob's bytes: hard-link "<src_dir>/<src>.blob" as
 * "<dst_dir>/<dst>.blob" and sync dst_dir, so copying a value kept in a
 * blob file costs no I/O on its bytes. TALUS_ENOTSUP (or another error:
 * a missing source, another filesystem) means the caller must copy. */
int bl_link(tl_env *env, const char *src_dir, uint64_t src, const char *dst_dir, uint64_t dst);

/* Remove "<dir>/<number>.blob" (a missing file is not an error). */
int bl_remove(tl_env *env, const char *dir, uint64_t number);

#endif
