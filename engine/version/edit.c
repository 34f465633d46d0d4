/*
 * edit.c - version edits: a list of file additions and deletions plus a few
 * scalar fields, and their tagged on-disk encoding (FORMAT.md, "Edits").
 *
 * The decoder reads bytes from disk: every varint, length, level and key is
 * checked before use, and anything malformed is TALUS_ECORRUPT naming the
 * offset inside the edit (the caller adds the file and record offset).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/coding.h"
#include "util/err.h"
#include "util/ikey.h"
#include "version/version_int.h"

/* More adds + deletes than this in one edit is not something we write (the
 * input length bounds them too; this keeps allocations sane). */
#define VER_MAX_EDIT_FILES (1u << 24)

void ver_edit_init(ver_edit *e)
{
    memset(e, 0, sizeof *e);
}

/* Frees the file lists but keeps the scalar fields. */
static void edit_free_lists(ver_edit *e)
{
    for (size_t i = 0; i < e->nadds; i++)
        ver_file_unref(e->adds[i].file);
    free(e->adds);
    free(e->dels);
    e->adds = NULL;
    e->dels = NULL;
    e->nadds = e->adds_cap = e->ndels = e->dels_cap = 0;
}

void ver_edit_free(ver_edit *e)
{
    edit_free_lists(e);
    ver_edit_init(e);
}

/* Grows an array of `size`-byte elements holding n to hold one more;
 * `total` counts adds and deletes together for the bound. */
static int grow(void **arr, size_t *cap, size_t n, size_t total, size_t size)
{
    if (total >= VER_MAX_EDIT_FILES)
        return tl_err(TALUS_EINVAL, "version edit: more than %u files", VER_MAX_EDIT_FILES);
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return tl_err(TALUS_ENOMEM, "version edit: out of memory");
    *arr = p;
    *cap = ncap;
    return 0;
}

int ver_edit_add_file(ver_edit *e, int level, ver_file *f)
{
    if (level < 0 || level > VER_BLOB_LEVEL || !f || (level == VER_BLOB_LEVEL) != f->blob)
        return tl_err(TALUS_EINVAL, "version edit: bad level %d or file", level);
    TRY(grow((void **)&e->adds, &e->adds_cap, e->nadds, e->nadds + e->ndels, sizeof *e->adds));
    ver_file_ref(f);
    e->adds[e->nadds].level = level;
    e->adds[e->nadds].file = f;
    e->nadds++;
    return 0;
}

int ver_edit_delete_file(ver_edit *e, int level, uint64_t number)
{
    if (level < 0 || level > VER_BLOB_LEVEL)
        return tl_err(TALUS_EINVAL, "version edit: bad level %d", level);
    TRY(grow((void **)&e->dels, &e->dels_cap, e->ndels, e->nadds + e->ndels, sizeof *e->dels));
    e->dels[e->ndels].level = level;
    e->dels[e->ndels].number = number;
    e->ndels++;
    return 0;
}

int ver_edit_add_blob(ver_edit *e, uint64_t number, uint64_t value_bytes)
{
    ver_file *f = ver_file_new(number, value_bytes, tl_slice_make(NULL, 0), tl_slice_make(NULL, 0),
                               0, 0, 1, 0);
    if (!f)
        return tl_err(TALUS_ENOMEM, "version edit: out of memory");
    f->blob = true;
    int rc = ver_edit_add_file(e, VER_BLOB_LEVEL, f);
    ver_file_unref(f);
    return rc;
}

int ver_edit_delete_blob(ver_edit *e, uint64_t number)
{
    return ver_edit_delete_file(e, VER_BLOB_LEVEL, number);
}

/* ---- Encoding ------------------------------------------------------------ */

static int put_tag_u64(tl_buf *out, uint32_t tag, uint64_t v)
{
    TRY(tl_buf_put_varint64(out, tag));
    return tl_buf_put_varint64(out, v);
}

int ver_edit_encode(const ver_edit *e, tl_buf *out)
{
    /* The format version goes first so that an older reader meets it (and
     * can report TALUS_EVERSION) before any tag it does not know. */
    if (e->has_format_version)
        TRY(put_tag_u64(out, VER_TAG_FORMAT_VERSION, e->format_version));
    if (e->has_num_levels)
        TRY(put_tag_u64(out, VER_TAG_NUM_LEVELS, e->num_levels));
    if (e->has_next_file)
        TRY(put_tag_u64(out, VER_TAG_NEXT_FILE, e->next_file));
    if (e->has_last_seq)
        TRY(put_tag_u64(out, VER_TAG_LAST_SEQ, e->last_seq));
    if (e->has_flushed_seq)
        TRY(put_tag_u64(out, VER_TAG_FLUSHED_SEQ, e->flushed_seq));
    for (size_t i = 0; i < e->ndels; i++) {
        if (e->dels[i].level == VER_BLOB_LEVEL) {
            TRY(put_tag_u64(out, VER_TAG_DELETE_BLOB, e->dels[i].number));
            continue;
        }
        TRY(put_tag_u64(out, VER_TAG_DELETE_FILE, (uint64_t)e->dels[i].level));
        TRY(tl_buf_put_varint64(out, e->dels[i].number));
    }
    for (size_t i = 0; i < e->nadds; i++) {
        const ver_file *f = e->adds[i].file;
        if (f->blob) {
            TRY(put_tag_u64(out, VER_TAG_ADD_BLOB, f->number));
            TRY(tl_buf_put_varint64(out, f->size));
            continue;
        }
        TRY(put_tag_u64(out, VER_TAG_ADD_FILE, (uint64_t)e->adds[i].level));
        TRY(tl_buf_put_varint64(out, f->number));
        TRY(tl_buf_put_varint64(out, f->size));
        TRY(tl_buf_put_lenbytes(out, f->smallest, f->smallest_len));
        TRY(tl_buf_put_lenbytes(out, f->largest, f->largest_len));
        TRY(tl_buf_put_varint64(out, f->min_seq));
        TRY(tl_buf_put_varint64(out, f->max_seq));
        TRY(tl_buf_put_varint64(out, f->entries));
        TRY(tl_buf_put_varint64(out, f->deletions));
    }
    return 0;
}

/* ---- Decoding ------------------------------------------------------------ */

typedef struct dec {
    const uint8_t *start, *p, *limit;
} dec;

static int dec_bad(const dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int dec_bad(const dec *d, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return tl_err(TALUS_ECORRUPT, "version edit: offset %zu: %s", (size_t)(d->p - d->start), why);
}

static int dec_u64(dec *d, uint64_t *v, const char *field)
{
    size_t n = tl_get_varint64(d->p, d->limit, v);
    if (n == 0)
        return dec_bad(d, "bad or truncated varint for %s", field);
    d->p += n;
    return 0;
}

static int dec_u32(dec *d, uint32_t *v, const char *field)
{
    size_t n = tl_get_varint32(d->p, d->limit, v);
    if (n == 0)
        return dec_bad(d, "bad or truncated varint32 for %s", field);
    d->p += n;
    return 0;
}

static int dec_level(dec *d, int *level)
{
    uint32_t l;
    TRY(dec_u32(d, &l, "level"));
    if (l >= VER_MAX_LEVELS)
        return dec_bad(d, "level %u out of range (max %d)", l, VER_MAX_LEVELS - 1);
    *level = (int)l;
    return 0;
}

/* An internal key: varint32 length (9..VER_MAX_IKEY) then the bytes. */
static int dec_ikey(dec *d, tl_slice *k, const char *field)
{
    uint32_t len;
    TRY(dec_u32(d, &len, field));
    if (len < TL_IKEY_TRAILER || len > VER_MAX_IKEY)
        return dec_bad(d, "%s length %u is not an internal key length", field, len);
    if (len > (size_t)(d->limit - d->p))
        return dec_bad(d, "%s of %u bytes runs past the end", field, len);
    *k = tl_slice_make(d->p, len);
    d->p += len;
    return 0;
}

/* Reads a scalar field once; a repeated scalar is corrupt. */
static int dec_scalar(dec *d, bool *has, uint64_t *v, const char *field)
{
    if (*has)
        return dec_bad(d, "%s appears twice", field);
    TRY(dec_u64(d, v, field));
    *has = true;
    return 0;
}

static int dec_add(dec *d, ver_edit *e)
{
    int level = 0;
    uint64_t number = 0, size = 0, min_seq = 0, max_seq = 0, entries = 0, deletions = 0;
    tl_slice smallest, largest;
    TRY(dec_level(d, &level));
    TRY(dec_u64(d, &number, "file number"));
    TRY(dec_u64(d, &size, "file size"));
    TRY(dec_ikey(d, &smallest, "smallest key"));
    TRY(dec_ikey(d, &largest, "largest key"));
    TRY(dec_u64(d, &min_seq, "min seq"));
    TRY(dec_u64(d, &max_seq, "max seq"));
    TRY(dec_u64(d, &entries, "entries"));
    TRY(dec_u64(d, &deletions, "deletions"));
    ver_file *f =
        ver_file_new(number, size, smallest, largest, min_seq, max_seq, entries, deletions);
    if (!f)
        return tl_err(TALUS_ENOMEM, "version edit: out of memory");
    const char *why = ver_file_check(f);
    int rc = why ? dec_bad(d, "file %llu: %s", (unsigned long long)number, why)
                 : ver_edit_add_file(e, level, f);
    ver_file_unref(f);
    return rc;
}

static int dec_field(dec *d, ver_edit *e, uint32_t tag)
{
    uint64_t v;
    int level = 0;
    switch (tag) {
    case VER_TAG_FORMAT_VERSION:
        TRY(dec_scalar(d, &e->has_format_version, &v, "format version"));
        if (v == 0 || v > UINT32_MAX)
            return dec_bad(d, "format version %llu is invalid", (unsigned long long)v);
        e->format_version = (uint32_t)v;
        return 0;
    case VER_TAG_NUM_LEVELS:
        TRY(dec_scalar(d, &e->has_num_levels, &v, "num levels"));
        if (v == 0 || v > VER_MAX_LEVELS)
            return dec_bad(d, "num levels %llu out of range 1..%d", (unsigned long long)v,
                           VER_MAX_LEVELS);
        e->num_levels = (uint32_t)v;
        return 0;
    case VER_TAG_NEXT_FILE:
        return dec_scalar(d, &e->has_next_file, &e->next_file, "next file");
    case VER_TAG_LAST_SEQ:
        return dec_scalar(d, &e->has_last_seq, &e->last_seq, "last seq");
    case VER_TAG_FLUSHED_SEQ:
        return dec_scalar(d, &e->has_flushed_seq, &e->flushed_seq, "flushed seq");
    case VER_TAG_DELETE_FILE:
        TRY(dec_level(d, &level));
        TRY(dec_u64(d, &v, "file number"));
        return ver_edit_delete_file(e, level, v);
    case VER_TAG_ADD_FILE:
        return dec_add(d, e);
    case VER_TAG_ADD_BLOB: {
        uint64_t size;
        TRY(dec_u64(d, &v, "blob number"));
        TRY(dec_u64(d, &size, "blob size"));
        if (v == 0 || size > UINT32_MAX)
            return dec_bad(d, "blob %llu of %llu bytes is invalid", (unsigned long long)v,
                           (unsigned long long)size);
        return ver_edit_add_blob(e, v, size);
    }
    case VER_TAG_DELETE_BLOB:
        TRY(dec_u64(d, &v, "blob number"));
        return ver_edit_delete_blob(e, v);
    default:
        /* New fields come with a new format version (which precedes them),
         * so an unknown tag here is damage, not the future. */
        return dec_bad(d, "unknown tag %u", tag);
    }
}

int ver_edit_decode(ver_edit *e, tl_slice in)
{
    int rc = 0;
    dec d = {in.data, in.data, in.data + in.len};
    ver_edit_init(e);
    while (d.p < d.limit) {
        uint32_t tag;
        TRY_OUT(dec_u32(&d, &tag, "tag"));
        TRY_OUT(dec_field(&d, e, tag));
    }
    if (e->has_num_levels) {
        for (size_t i = 0; i < e->nadds; i++)
            if (e->adds[i].level >= (int)e->num_levels && e->adds[i].level != VER_BLOB_LEVEL)
                TRY_OUT(dec_bad(&d, "file %llu at level %d but the tree has %u levels",
                                (unsigned long long)e->adds[i].file->number, e->adds[i].level,
                                e->num_levels));
        for (size_t i = 0; i < e->ndels; i++)
            if (e->dels[i].level >= (int)e->num_levels && e->dels[i].level != VER_BLOB_LEVEL)
                TRY_OUT(dec_bad(&d, "delete at level %d but the tree has %u levels",
                                e->dels[i].level, e->num_levels));
    }
out:
    if (rc == TALUS_EINVAL) /* from grow(): more files than we ever write */
        rc = tl_err(TALUS_ECORRUPT, "version edit: more than %u files in one edit",
                    VER_MAX_EDIT_FILES);
    if (rc < 0)
        edit_free_lists(e); /* keep scalars: the caller may check the format version */
    return rc;
}
