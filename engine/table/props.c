/*
 * props.c - the properties block codec (FORMAT.md §6), and the small
 * table-wide helpers: option defaults and file names.
 *
 * Records are tagged and length-prefixed so fields can be added later: a
 * reader skips tags it does not know, and a missing field reads as zero.
 */
#include <stdio.h>
#include <stdlib.h>

#include "table/table_internal.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/ikey.h"

/* Tags are on disk: never renumber. */
enum {
    TAG_FORMAT_VERSION = 1,
    TAG_COMPRESSION = 2,
    TAG_NUM_ENTRIES = 3,
    TAG_NUM_DELETIONS = 4,
    TAG_NUM_DATA_BLOCKS = 5,
    TAG_RAW_KEY_BYTES = 6,
    TAG_RAW_VALUE_BYTES = 7,
    TAG_DATA_BYTES = 8,
    TAG_INDEX_BYTES = 9,
    TAG_FILTER_BYTES = 10,
    TAG_FILE_SIZE = 11, /* fixed64 */
    TAG_MIN_SEQ = 12,
    TAG_MAX_SEQ = 13,
    TAG_SMALLEST = 14, /* bytes */
    TAG_LARGEST = 15,  /* bytes */
};

void tbl_options_init(tbl_options *o)
{
    memset(o, 0, sizeof *o);
    o->block_size = 4096;
    o->restart_interval = 16;
    o->bloom_bits_per_key = 10;
    o->compression = TALUS_COMPRESS_NONE;
    o->compression_level = 0;
    o->format_version = TBL_FORMAT_V3;
}

void tbl_props_free(tbl_props *p)
{
    if (!p)
        return;
    free(p->smallest);
    free(p->largest);
    p->smallest = p->largest = NULL;
    p->smallest_len = p->largest_len = 0;
}

char *tbl_file_name(char *buf, size_t n, const char *dir, uint64_t number)
{
    snprintf(buf, n, "%s/%06llu.sst", dir, (unsigned long long)number);
    return buf;
}

static int put_num(tl_buf *b, uint32_t tag, uint64_t v)
{
    TRY(tl_buf_put_varint64(b, tag));
    TRY(tl_buf_put_varint64(b, tl_varint_len(v)));
    return tl_buf_put_varint64(b, v);
}

static int put_bytes(tl_buf *b, uint32_t tag, const uint8_t *p, size_t n)
{
    TRY(tl_buf_put_varint64(b, tag));
    return tl_buf_put_lenbytes(b, p, n);
}

int tbl_props_encode(const tbl_props *p, tl_buf *dst, size_t *file_size_pos)
{
    tl_buf_clear(dst);
    TRY(put_num(dst, TAG_FORMAT_VERSION, p->format_version));
    TRY(put_num(dst, TAG_COMPRESSION, p->compression));
    TRY(put_num(dst, TAG_NUM_ENTRIES, p->num_entries));
    TRY(put_num(dst, TAG_NUM_DELETIONS, p->num_deletions));
    TRY(put_num(dst, TAG_NUM_DATA_BLOCKS, p->num_data_blocks));
    TRY(put_num(dst, TAG_RAW_KEY_BYTES, p->raw_key_bytes));
    TRY(put_num(dst, TAG_RAW_VALUE_BYTES, p->raw_value_bytes));
    TRY(put_num(dst, TAG_DATA_BYTES, p->data_bytes));
    TRY(put_num(dst, TAG_INDEX_BYTES, p->index_bytes));
    TRY(put_num(dst, TAG_FILTER_BYTES, p->filter_bytes));
    TRY(tl_buf_put_varint64(dst, TAG_FILE_SIZE));
    TRY(tl_buf_put_varint64(dst, 8));
    *file_size_pos = dst->len;
    TRY(tl_buf_put_fixed64(dst, p->file_size));
    TRY(put_num(dst, TAG_MIN_SEQ, p->min_seq));
    TRY(put_num(dst, TAG_MAX_SEQ, p->max_seq));
    TRY(put_bytes(dst, TAG_SMALLEST, p->smallest, p->smallest_len));
    return put_bytes(dst, TAG_LARGEST, p->largest, p->largest_len);
}

static int dup_bytes(const uint8_t *src, size_t n, uint8_t **dst, size_t *dlen)
{
    free(*dst);
    *dst = malloc(n ? n : 1);
    if (!*dst)
        return tl_err(TALUS_ENOMEM, "out of memory reading table properties");
    if (n)
        memcpy(*dst, src, n);
    *dlen = n;
    return 0;
}

/* 0 on success, 1 if malformed, negative on ENOMEM. */
static int parse(tl_slice src, tbl_props *p)
{
    const uint8_t *q = src.data, *end = src.data + src.len;
    while (q < end) {
        uint32_t tag, len;
        size_t n = tl_get_varint32(q, end, &tag);
        size_t m = n ? tl_get_varint32(q + n, end, &len) : 0;
        if (!n || !m || len > (size_t)(end - q - n - m))
            return 1;
        q += n + m;
        const uint8_t *v = q;
        q += len;
        uint64_t num = 0;
        bool is_num = tag >= TAG_FORMAT_VERSION && tag <= TAG_MAX_SEQ && tag != TAG_FILE_SIZE;
        if (is_num && (len == 0 || tl_get_varint64(v, v + len, &num) != len))
            return 1;
        switch (tag) {
        case TAG_FORMAT_VERSION:
            if (num > UINT32_MAX)
                return 1;
            p->format_version = (uint32_t)num;
            break;
        case TAG_COMPRESSION:
            if (num > UINT32_MAX)
                return 1;
            p->compression = (uint32_t)num;
            break;
        case TAG_NUM_ENTRIES:
            p->num_entries = num;
            break;
        case TAG_NUM_DELETIONS:
            p->num_deletions = num;
            break;
        case TAG_NUM_DATA_BLOCKS:
            p->num_data_blocks = num;
            break;
        case TAG_RAW_KEY_BYTES:
            p->raw_key_bytes = num;
            break;
        case TAG_RAW_VALUE_BYTES:
            p->raw_value_bytes = num;
            break;
        case TAG_DATA_BYTES:
            p->data_bytes = num;
            break;
        case TAG_INDEX_BYTES:
            p->index_bytes = num;
            break;
        case TAG_FILTER_BYTES:
            p->filter_bytes = num;
            break;
        case TAG_FILE_SIZE:
            if (len != 8)
                return 1;
            p->file_size = tl_get_fixed64(v);
            break;
        case TAG_MIN_SEQ:
            p->min_seq = num;
            break;
        case TAG_MAX_SEQ:
            p->max_seq = num;
            break;
        case TAG_SMALLEST:
            TRY(dup_bytes(v, len, &p->smallest, &p->smallest_len));
            break;
        case TAG_LARGEST:
            TRY(dup_bytes(v, len, &p->largest, &p->largest_len));
            break;
        default:
            break; /* a field from a newer writer */
        }
    }
    /* Keys, when present, must be internal keys in order. */
    if (p->num_entries > 0) {
        if (p->smallest_len < TL_IKEY_TRAILER || p->largest_len < TL_IKEY_TRAILER ||
            tl_ikey_cmp_raw(p->smallest, p->smallest_len, p->largest, p->largest_len) > 0 ||
            p->min_seq > p->max_seq)
            return 1;
    }
    return 0;
}

int tbl_props_decode(tl_slice src, const char *name, uint64_t off, tbl_props *p)
{
    memset(p, 0, sizeof *p);
    int rc = parse(src, p);
    if (rc == 1)
        rc = tl_err(TALUS_ECORRUPT, "table %s: malformed properties block at offset %llu", name,
                    (unsigned long long)off);
    if (rc < 0)
        tbl_props_free(p);
    return rc;
}
