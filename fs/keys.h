/*
 * keys.h - the reversible mapping between keys of the `data` tree (bytes)
 * and paths below the mount root (fs/KEYS.md is the specification).
 *
 * A key is split at '/' into components; each component becomes one or
 * more path names (a name is at most 255 bytes, has no '/' or NUL, and is
 * never "." or ".."). Requirements:
 *  - every key maps to exactly one path, and decoding that path gives the
 *    key back (no two keys share a path; every key is visible);
 *  - a name that is not the canonical encoding of anything decodes to an
 *    error (lookup of it is ENOENT), so each key has one spelling only;
 *  - the only escapes are %00 (NUL), %25 ('%'), %2E (first '.' of "."
 *    / ".." / a root ".snap"), the whole name %e (empty component: a//b, a
 *    leading '/'), and the markers %+ (a component longer than 255 bytes
 *    after escaping continues in the next name) and %f (conflict suffix);
 *    any other '%' is a literal byte, so "100%" is the name "100%". A '%'
 *    of a key is written %25 only where a literal one would read as an
 *    escape (before 00/25/2E, before a last '+'/'f', the component "%e");
 *  - a directory marker is the key "dir/" with an EMPTY value; the codec
 *    maps keys ending in '/' like any other (the last component is empty:
 *    "dir/%e") and the caller decides marker vs file;
 *  - a key that is both a file and a directory prefix ("a" and "a/b") is
 *    shown as the directory "a" plus a file whose name carries the
 *    conflict suffix (fsk_conflict_name), both visible and reversible.
 *
 * All functions are pure (no I/O) and thread-safe. Buffers are caller's;
 * functions return 0, or -ENAMETOOLONG / -EINVAL / -ENOENT (errno values,
 * negated, as FUSE wants) when an input cannot be mapped.
 */
#ifndef TALUSFS_KEYS_H
#define TALUSFS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FSK_NAME_MAX 255
#define FSK_ESCAPE '%'

/* Encode one key component (no '/' inside; may be empty or long) as path
 * names. at_root: the component is the first of the key (so ".snap" is
 * escaped). Writes the names joined by '/' into out (NUL-terminated);
 * *nnames receives how many names (> 1 only for long components). */
int fsk_component_to_names(const uint8_t *comp, size_t n, bool at_root, char *out, size_t cap,
                           size_t *outlen, int *nnames);

/* Decode one path name. *more is set when the name ends with the
 * continuation marker (the component continues in the next name).
 * -ENOENT if the name is not a canonical encoding. The name is judged
 * alone, as the first name of its component; a name below a continuation
 * directory is only validated by fsk_path_to_key on the whole chain. */
int fsk_name_to_bytes(const char *name, size_t n, bool at_root, uint8_t *out, size_t cap,
                      size_t *outlen, bool *more);

/* Whole keys and paths (relative, no leading '/', names joined by '/'). */
int fsk_key_to_path(const uint8_t *key, size_t klen, char *out, size_t cap, size_t *outlen);
int fsk_path_to_key(const char *path, size_t plen, uint8_t *out, size_t cap, size_t *outlen);

/* The name under which the FILE "name" is shown when a directory of the
 * same name exists too (e.g. "a" -> "a%f"; a 254/255-byte name becomes two
 * names, "piece%+/rest%f"; out needs FSK_NAME_MAX + 6 bytes); and the
 * reverse test: returns true and the plain name length if `name` carries
 * the suffix. */
int fsk_conflict_name(const char *name, size_t n, char *out, size_t cap, size_t *outlen);
bool fsk_is_conflict_name(const char *name, size_t n, size_t *plain_len);

#endif
