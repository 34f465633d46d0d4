/*
 * segments.c - journal segment files: their names, listing them in a
 * directory, and the encoding of the segment header and of record frames
 * (FORMAT.md sections 1-3).
 *
 * Only canonical names count as segments, so that every number has exactly
 * one file name and jnl_segment_name(jnl_list_segments(...)) finds the file
 * that was listed ("1.jnl" and "0000001.jnl" are not segment 1).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/jnl_internal.h"
#include "journal/journal.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"

/* jnl_length_check runs for every record written and read: the inlined
 * xxh3 (the same function, so the same value as tl_xxh3) computes it for 8
 * bytes without a call into the shared library. */
#define XXH_INLINE_ALL
#include <xxhash.h>

char *jnl_segment_name(char *buf, size_t n, const char *dir, uint64_t number)
{
    snprintf(buf, n, "%s/%06" PRIu64 ".jnl", dir, number);
    return buf;
}

bool jnl_parse_segment_name(const char *base, uint64_t *number)
{
    size_t len = strlen(base);
    if (len < 4 || strcmp(base + len - 4, ".jnl") != 0)
        return false;
    size_t digits = len - 4;
    if (digits < 6 || digits > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        if (base[i] < '0' || base[i] > '9')
            return false;
        unsigned d = (unsigned)(base[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    /* Canonical: more than 6 digits only without a leading zero. */
    if (digits > 6 && base[0] == '0')
        return false;
    *number = v;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

int jnl_list_segments(tl_env *env, const char *dir, uint64_t **nums, size_t *n)
{
    char **names = NULL;
    size_t count = 0, k = 0;
    uint64_t *out = NULL;
    int rc = 0;
    *nums = NULL;
    *n = 0;
    TRY_OUT(tl_env_list_dir(env, dir, &names, &count));
    out = malloc((count ? count : 1) * sizeof *out);
    if (!out) {
        rc = tl_err(TALUS_ENOMEM, "out of memory listing journal segments in %s", dir);
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t v;
        if (jnl_parse_segment_name(names[i], &v))
            out[k++] = v;
    }
    qsort(out, k, sizeof *out, cmp_u64);
    *nums = out;
    *n = k;
    out = NULL;
out:
    free(out);
    tl_env_free_names(names, count);
    return rc;
}

void jnl_header_encode(uint8_t dst[JNL_HEADER_SIZE], uint32_t version, uint64_t number)
{
    tl_put_fixed64(dst, JNL_MAGIC);
    tl_put_fixed32(dst + 8, version);
    tl_put_fixed32(dst + 12, 0);
    tl_put_fixed64(dst + 16, number);
    tl_put_fixed64(dst + 24, tl_xxh3(dst, 24));
}

uint64_t jnl_length_check(uint64_t len)
{
    uint8_t b[8];
    tl_put_fixed64(b, len);
    return XXH3_64bits(b, sizeof b);
}

void jnl_frame_encode(uint8_t dst[JNL_FRAME_SIZE], uint64_t len, uint64_t sum)
{
    tl_put_fixed64(dst + JNL_FRAME_LEN, len);
    tl_put_fixed64(dst + JNL_FRAME_LEN_CHECK, jnl_length_check(len));
    tl_put_fixed64(dst + JNL_FRAME_SUM, sum);
}
