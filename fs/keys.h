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
 *  - the escape character (%) is itself escaped; NUL bytes, empty
 *    components (a//b, a leading '/'), "." and "..", components longer
 *    than 255 bytes after escaping (split across several names with a
 *    continuation marker), and a root component named ".snap" all get
 *    escapes;
 *  - a directory marker is the key "dir/" with an EMPTY value; keys ending
 *    in '/' are handled by fsk_split (the caller decides marker vs file);
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
 * -ENOENT if the name is not a canonical encoding. */
int fsk_name_to_bytes(const char *name, size_t n, bool at_root, uint8_t *out, size_t cap,
                      size_t *outlen, bool *more);

/* Whole keys and paths (relative, no leading '/', names joined by '/'). */
int fsk_key_to_path(const uint8_t *key, size_t klen, char *out, size_t cap, size_t *outlen);
int fsk_path_to_key(const char *path, size_t plen, uint8_t *out, size_t cap, size_t *outlen);

/* The name under which the FILE "name" is shown when a directory of the
 * same name exists too (e.g. "a" -> "a%file"); and the reverse test:
 * returns true and the plain name length if `name` carries the suffix. */
int fsk_conflict_name(const char *name, size_t n, char *out, size_t cap, size_t *outlen);
bool fsk_is_conflict_name(const char *name, size_t n, size_t *plain_len);

#endif
