/*
 * corrupt_fs.h - file helpers of the corruption test: list a database
 * directory recursively, copy and remove trees, and damage one file (flip
 * a byte, truncate, remove). Plain POSIX; every function returns 0 or -1
 * with errno set.
 */
#ifndef TALUS_TEST_CORRUPT_FS_H
#define TALUS_TEST_CORRUPT_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cf_file {
    char *rel; /* path relative to the listed root */
    off_t size;
};

/* Regular files under root, recursively, sorted by path. Free with
 * cf_list_free. */
int cf_list(const char *root, struct cf_file **files, size_t *n);
void cf_list_free(struct cf_file *files, size_t n);
/* Copy directory src to dst (dst must not exist), recursively. */
int cf_copy_tree(const char *src, const char *dst);
/* rm -rf path (missing is fine). */
int cf_remove_tree(const char *path);
/* XOR the byte at off with mask. */
int cf_flip(const char *path, off_t off, uint8_t mask);

#endif
