/*
 * manifest.c - the bytes of the manifest and of CURRENT (FORMAT.md): file
 * names, the CURRENT pointer, the record framing, and a reader that walks
 * records and tells a torn tail (ignored) from damage (TALUS_ECORRUPT).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"
#include "version/version_int.h"

#define CURRENT_PREFIX "MANIFEST-"
#define CURRENT_PREFIX_LEN 9
#define CURRENT_MAX_LEN 64 /* "MANIFEST-" + 20 digits + "\n" fits easily */

void ver_manifest_name(char name[VER_NAME_MAX], uint64_t number)
{
    snprintf(name, VER_NAME_MAX, CURRENT_PREFIX "%06" PRIu64, number);
}

int ver_current_read(tl_env *env, const char *dir, uint64_t *number)
{
    int rc = 0;
    char path[4096];
    uint8_t *data = NULL;
    size_t n = 0;
    if (snprintf(path, sizeof path, "%s/CURRENT", dir) >= (int)sizeof path)
        return tl_err(TALUS_EINVAL, "%s: directory name too long", dir);
    int ex = tl_env_exists(env, path);
    if (ex < 0)
        return ex;
    if (ex == 0)
        return tl_err(TALUS_ENOTFOUND, "%s: no CURRENT file (no database here)", dir);
    TRY_OUT(tl_env_read_file(env, path, &data, &n));
    /* Exactly "MANIFEST-<decimal digits>\n", nothing else. */
    if (n < CURRENT_PREFIX_LEN + 2 || n > CURRENT_MAX_LEN ||
        memcmp(data, CURRENT_PREFIX, CURRENT_PREFIX_LEN) != 0 || data[n - 1] != '\n')
        TRY_OUT(tl_err(TALUS_ECORRUPT, "%s: does not hold \"MANIFEST-<number>\\n\" (%zu bytes)",
                       path, n));
    uint64_t v = 0;
    for (size_t i = CURRENT_PREFIX_LEN; i < n - 1; i++) {
        uint8_t c = data[i];
        if (c < '0' || c > '9' || v > (UINT64_MAX - (c - '0')) / 10)
            TRY_OUT(tl_err(TALUS_ECORRUPT, "%s: bad manifest number at offset %zu", path, i));
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (v == 0)
        TRY_OUT(tl_err(TALUS_ECORRUPT, "%s: manifest number 0 is invalid", path));
    *number = v;
out:
    free(data);
    return rc;
}

int ver_current_write(tl_env *env, const char *dir, uint64_t number)
{
    char name[VER_NAME_MAX], line[VER_NAME_MAX + 2];
    ver_manifest_name(name, number);
    int n = snprintf(line, sizeof line, "%s\n", name);
    return tl_env_write_file_atomic(env, dir, "CURRENT", line, (size_t)n);
}

int ver_record_frame(tl_buf *out, tl_slice payload)
{
    if (payload.len > UINT32_MAX)
        return tl_err(TALUS_ETOOBIG, "manifest record of %zu bytes is too large", payload.len);
    uint8_t len[4];
    tl_put_fixed32(len, (uint32_t)payload.len);
    TRY(tl_buf_append(out, len, 4));
    TRY(tl_buf_put_fixed32(out, (uint32_t)tl_xxh3(len, 4)));
    TRY(tl_buf_put_fixed64(out, tl_xxh3(payload.data, payload.len)));
    return tl_buf_append(out, payload.data, payload.len);
}

int ver_manifest_reader_init(ver_manifest_reader *r, const char *path, const uint8_t *data,
                             size_t size)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->data = data;
    r->size = size;
    /* The header is written and synced before CURRENT names the file, so a
     * short or wrong header is damage, not a torn write. */
    if (size < VER_MANIFEST_HEADER || memcmp(data, VER_MANIFEST_MAGIC, 8) != 0)
        return tl_err(TALUS_ECORRUPT, "manifest %s: bad header at offset 0 (not a manifest)", path);
    uint32_t framing = tl_get_fixed32(data + 8);
    if (framing != VER_MANIFEST_FRAMING)
        return tl_err(TALUS_EVERSION,
                      "manifest %s: record framing version %u; this build reads version %u", path,
                      framing, VER_MANIFEST_FRAMING);
    r->off = VER_MANIFEST_HEADER;
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int ver_manifest_next(ver_manifest_reader *r, tl_slice *payload, size_t *offset)
{
    size_t off = r->off, rem = r->size - r->off;
    if (rem == 0 || r->torn)
        return 0;
    *offset = off;
    if (rem < VER_RECORD_HEADER)
        goto torn; /* the header itself was cut short */
    uint32_t len = tl_get_fixed32(r->data + off);
    uint32_t len_check = tl_get_fixed32(r->data + off + 4);
    uint64_t sum = tl_get_fixed64(r->data + off + 8);
    if ((uint32_t)tl_xxh3(r->data + off, 4) != len_check) {
        /* A zero-filled tail is a file extended by a crash before its data
         * reached the disk; any other bad length is damage. */
        if (all_zero(r->data + off, rem))
            goto torn;
        return tl_err(TALUS_ECORRUPT, "manifest %s: damaged record header at offset %zu", r->path,
                      off);
    }
    if (len > rem - VER_RECORD_HEADER)
        goto torn; /* a trustworthy length running past the end: cut short */
    const uint8_t *p = r->data + off + VER_RECORD_HEADER;
    if (tl_xxh3(p, len) != sum) {
        /* A crash may persist the file size before the last page of data:
         * the last record then ends in a zero-filled page. */
        size_t end = off + VER_RECORD_HEADER + len;
        size_t page = (end - 1) & ~(size_t)4095;
        if (page < off + VER_RECORD_HEADER)
            page = off + VER_RECORD_HEADER;
        if (end == r->size && len > 0 && all_zero(r->data + page, end - page))
            goto torn;
        /* Every record is fsynced before it is acknowledged, and a crash
         * cuts records short rather than garbling complete ones, so a
         * complete record with a bad checksum is damage even at the end:
         * treating it as torn would silently roll back an applied edit. */
        return tl_err(TALUS_ECORRUPT, "manifest %s: checksum mismatch in record at offset %zu",
                      r->path, off);
    }
    *payload = tl_slice_make(p, len);
    r->off = off + VER_RECORD_HEADER + len;
    return 1;
torn:
    r->torn = true;
    r->torn_at = off;
    return 0;
}
