/*
 * blob_ref.c - the small pieces of the blob module that are not I/O streams:
 * the bl_ref encoding stored in the tree, blob file names, the size of a
 * blob file, the chunk checksum, and removing a blob file.
 *
 * Only canonical names count as blobs ("%06llu.blob", as tables and journal
 * segments are named), so every number has exactly one file name.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob.h"
#include "blob/blob_format.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"

size_t bl_ref_encode(const bl_ref *r, uint8_t *out)
{
    size_t n = tl_put_varint64(out, r->number);
    n += tl_put_varint64(out + n, r->length);
    return n;
}

int bl_ref_decode(tl_slice in, bl_ref *r)
{
    const uint8_t *p = in.data, *limit = in.data + in.len;
    uint64_t number, length;
    size_t n = tl_get_varint64(p, limit, &number);
    if (n == 0)
        return tl_err(TALUS_ECORRUPT, "blob reference: bad file number varint");
    p += n;
    n = tl_get_varint64(p, limit, &length);
    if (n == 0)
        return tl_err(TALUS_ECORRUPT, "blob reference: bad length varint");
    p += n;
    if (p != limit)
        return tl_err(TALUS_ECORRUPT, "blob reference: %zu trailing bytes", (size_t)(limit - p));
    if (number == 0)
        return tl_err(TALUS_ECORRUPT, "blob reference: file number 0");
    if (length > TALUS_MAX_VALUE)
        return tl_err(TALUS_ECORRUPT, "blob reference: length %" PRIu64 " over the value limit",
                      length);
    r->number = number;
    r->length = length;
    return 0;
}

char *bl_file_name(char *buf, size_t n, const char *dir, uint64_t number)
{
    snprintf(buf, n, "%s/%06" PRIu64 ".blob", dir, number);
    return buf;
}

uint64_t bl_file_size(uint64_t length)
{
    return BL_HEADER_SIZE + length + BL_CHECKSUM_SIZE * bl_chunk_count(length) + BL_FOOTER_SIZE;
}

int bl_parse_name(const char *name, uint64_t *number)
{
    size_t len = strlen(name), digits = 0;
    while (digits < len && name[digits] >= '0' && name[digits] <= '9')
        digits++;
    int kind;
    if (!strcmp(name + digits, ".blob"))
        kind = 1;
    else if (!strcmp(name + digits, ".blob.tmp"))
        kind = 2;
    else
        return 0;
    /* Canonical: at least 6 digits, more than 6 only without a leading 0. */
    if (digits < 6 || digits > 20 || (digits > 6 && name[0] == '0'))
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *number = v;
    return kind;
}

uint64_t bl_chunk_checksum(const void *p, size_t n, uint64_t c)
{
    return tl_xxh3_seed(p, n, c);
}

char *bl_path_alloc(const char *dir, uint64_t number, const char *suffix)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%06" PRIu64 ".blob%s", dir, number, suffix) < 0) {
        tl_err(TALUS_ENOMEM, "out of memory naming blob %" PRIu64 " in %s", number, dir);
        return NULL;
    }
    return p;
}

int bl_remove(tl_env *env, const char *dir, uint64_t number)
{
    char *path = bl_path_alloc(dir, number, "");
    if (!path)
        return TALUS_ENOMEM;
    int rc = tl_env_remove(env, path);
    free(path);
    return rc == TALUS_ENOTFOUND ? 0 : rc;
}

int bl_link(tl_env *env, const char *src_dir, uint64_t src, const char *dst_dir, uint64_t dst)
{
    char *from = bl_path_alloc(src_dir, src, "");
    char *to = bl_path_alloc(dst_dir, dst, "");
    int rc = from && to ? tl_env_link(env, from, to) : TALUS_ENOMEM;
    if (rc == 0) {
        rc = tl_env_sync_dir(env, dst_dir);
        if (rc < 0)
            tl_env_remove(env, to);
    }
    free(from);
    free(to);
    return rc;
}
