/*
 * table_builder.c - writes a table file (FORMAT.md): data blocks as keys
 * arrive, then filter, index, properties, metaindex and footer in finish.
 *
 * Writes are batched in a 64 KiB buffer so a table costs few syscalls. An
 * index entry for a data block is added only when the next key is known,
 * so its separator can be shortened to something between the two blocks.
 * After an I/O or memory error the builder is stuck in that error (every
 * later call returns it); a rejected key (EINVAL/ETOOBIG) changes nothing.
 */
#include <stdlib.h>

#include "table/table_internal.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/ikey.h"

struct tbl_builder {
    tbl_options o;
    tl_file *f;
    tbl_compressor *comp;
    tbl_block_builder data;
    tbl_block_builder index;
    tl_buf last_key;
    bool pending_index; /* a flushed block still needs its index entry */
    tbl_handle pending;
    tl_buf wbuf;
    uint64_t offset; /* file offset of the next byte (buffered included) */
    uint64_t *hashes;
    size_t nhash, hcap;
    tl_buf scratch; /* compression output, filter, props */
    tl_buf sep;
    tl_buf smallest;
    tbl_props props;
    int status;
    bool finished;
};

int tbl_builder_new(const tbl_options *o, tl_file *f, tbl_builder **out)
{
    *out = NULL;
    if (o->block_size < 1 || o->block_size > TBL_MAX_BLOCK_SIZE)
        return tl_err(TALUS_EINVAL, "table: block_size %zu out of range 1..%u", o->block_size,
                      TBL_MAX_BLOCK_SIZE);
    if (o->restart_interval < 1 || o->restart_interval > 65536)
        return tl_err(TALUS_EINVAL, "table: restart_interval %d out of range 1..65536",
                      o->restart_interval);
    if (o->bloom_bits_per_key < 0 || o->bloom_bits_per_key > 1000)
        return tl_err(TALUS_EINVAL, "table: bloom_bits_per_key %d out of range 0..1000",
                      o->bloom_bits_per_key);
    if (o->compression != TALUS_COMPRESS_NONE && o->compression != TALUS_COMPRESS_LZ4 &&
        o->compression != TALUS_COMPRESS_ZSTD)
        return tl_err(TALUS_EINVAL, "table: unknown compression %d", o->compression);
    if (o->format_version != TBL_FORMAT_V3 && o->format_version != TBL_FORMAT_V4)
        return tl_err(TALUS_EINVAL, "table: cannot write format version %u", o->format_version);
    tbl_builder *b = calloc(1, sizeof *b);
    if (!b)
        return tl_err(TALUS_ENOMEM, "out of memory creating a table builder");
    b->o = *o;
    b->f = f;
    if (o->compression != TALUS_COMPRESS_NONE) {
        b->comp = tbl_compressor_new(o->compression, o->compression_level);
        if (!b->comp) {
            free(b);
            return tl_err(TALUS_ENOMEM, "out of memory creating a compressor");
        }
    }
    tbl_bb_init(&b->data, o->restart_interval);
    tbl_bb_init(&b->index, 1); /* full keys: binary search hits entries */
    b->props.format_version = o->format_version;
    b->props.compression = (uint32_t)o->compression;
    *out = b;
    return 0;
}

void tbl_builder_free(tbl_builder *b)
{
    if (!b)
        return;
    tbl_compressor_free(b->comp);
    tbl_bb_free(&b->data);
    tbl_bb_free(&b->index);
    tl_buf_free(&b->last_key);
    tl_buf_free(&b->wbuf);
    tl_buf_free(&b->scratch);
    tl_buf_free(&b->sep);
    tl_buf_free(&b->smallest);
    free(b->hashes);
    free(b);
}

uint64_t tbl_builder_entries(const tbl_builder *b)
{
    return b->props.num_entries;
}

uint64_t tbl_builder_estimated_size(const tbl_builder *b)
{
    return b->offset + (tbl_bb_empty(&b->data) ? 0 : tbl_bb_estimate(&b->data));
}

static int sticky(tbl_builder *b, int rc)
{
    if (rc < 0 && b->status == 0)
        b->status = rc;
    return rc;
}

static int flush_wbuf(tbl_builder *b)
{
    if (b->wbuf.len == 0)
        return 0;
    TRY(tl_file_append(b->f, b->wbuf.data, b->wbuf.len));
    tl_buf_clear(&b->wbuf);
    return 0;
}

static int emit(tbl_builder *b, const void *p, size_t n)
{
    if (b->wbuf.len + n > TBL_WRITE_BUF) {
        TRY(flush_wbuf(b));
        if (n >= TBL_WRITE_BUF) {
            TRY(tl_file_append(b->f, p, n));
            b->offset += n;
            return 0;
        }
    }
    if (b->wbuf.cap < TBL_WRITE_BUF)
        TRY(tl_buf_reserve(&b->wbuf, TBL_WRITE_BUF));
    TRY(tl_buf_append(&b->wbuf, p, n));
    b->offset += n;
    return 0;
}

/* Write payload + trailer; compress only if `compress`. */
static int write_block(tbl_builder *b, tl_slice raw, bool compress, tbl_handle *h)
{
    tl_slice payload;
    uint8_t type, trailer[TBL_TRAILER];
    TRY(tbl_block_prepare(compress ? b->comp : NULL, raw, &b->scratch, &payload, &type));
    tbl_trailer_encode(trailer, payload, type);
    h->offset = b->offset;
    h->size = payload.len;
    TRY(emit(b, payload.data, payload.len));
    return emit(b, trailer, sizeof trailer);
}

static int flush_data(tbl_builder *b)
{
    if (tbl_bb_empty(&b->data))
        return 0;
    tl_slice raw;
    TRY(tbl_bb_finish(&b->data, &raw));
    TRY(write_block(b, raw, true, &b->pending));
    tbl_bb_reset(&b->data);
    b->pending_index = true;
    b->props.num_data_blocks++;
    b->props.data_bytes += b->pending.size + TBL_TRAILER;
    return 0;
}

/* An internal key k with a <= k < next, as short as the user keys allow:
 * a user key s with ua < s < unext, paired with the largest seqno (the
 * first internal key of s); otherwise a itself. With next == NULL (the last
 * block) it is a itself: a shortened last key would shrink the prefix that
 * all index keys share, which the reader's index search relies on. */
static int separator(tbl_builder *b, tl_slice a, const tl_slice *next)
{
    if (!next)
        return tl_buf_set(&b->sep, a.data, a.len);
    tl_slice ua = tl_ikey_user(a), ub = tl_ikey_user(*next);
    size_t n = ua.len < ub.len ? ua.len : ub.len, i = 0;
    while (i < n && ua.data[i] == ub.data[i])
        i++;
    /* Not shorter, or no room between the two user keys. */
    if (i >= n || i + 1 >= ua.len || ua.data[i] == 0xff || (uint8_t)(ua.data[i] + 1) >= ub.data[i])
        return tl_buf_set(&b->sep, a.data, a.len);
    tl_buf_clear(&b->sep);
    TRY(tl_buf_reserve(&b->sep, i + 1 + TL_IKEY_TRAILER));
    memcpy(b->sep.data, ua.data, i);
    b->sep.data[i] = (uint8_t)(ua.data[i] + 1);
    tl_put_fixed64(b->sep.data + i + 1, TL_SEQ_MAX);
    b->sep.data[i + 1 + 8] = TL_TYPE_VALUE;
    b->sep.len = i + 1 + TL_IKEY_TRAILER;
    return 0;
}

static int add_index_entry(tbl_builder *b, const tl_slice *next)
{
    uint8_t h[TBL_HANDLE_MAX];
    TRY(separator(b, tl_buf_slice(&b->last_key), next));
    size_t n = tbl_handle_encode(h, b->pending);
    TRY(tbl_bb_add(&b->index, tl_buf_slice(&b->sep), tl_slice_make(h, n)));
    b->pending_index = false;
    return 0;
}

static int push_hash(tbl_builder *b, tl_slice ukey)
{
    if (b->nhash == b->hcap) {
        size_t cap = b->hcap ? 2 * b->hcap : 1024;
        uint64_t *p = realloc(b->hashes, cap * sizeof *p);
        if (!p)
            return tl_err(TALUS_ENOMEM, "out of memory collecting filter keys");
        b->hashes = p;
        b->hcap = cap;
    }
    b->hashes[b->nhash++] = tl_xxh3(ukey.data, ukey.len);
    return 0;
}

int tbl_builder_add(tbl_builder *b, tl_slice ikey, tl_slice value)
{
    if (b->status)
        return b->status;
    if (b->finished)
        return tl_err(TALUS_EINVAL, "table builder: add after finish");
    if (ikey.len < TL_IKEY_TRAILER)
        return tl_err(TALUS_EINVAL, "table builder: internal key of %zu bytes", ikey.len);
    if (ikey.len - TL_IKEY_TRAILER > TALUS_MAX_KEY || value.len > TALUS_MAX_VALUE)
        return tl_err(TALUS_ETOOBIG, "table builder: key of %zu or value of %zu bytes too large",
                      ikey.len - TL_IKEY_TRAILER, value.len);
    uint8_t type = tl_ikey_type(ikey);
    if (!tl_vtype_valid(type))
        return tl_err(TALUS_EINVAL, "table builder: invalid value type %u", type);
    bool first = b->props.num_entries == 0;
    tl_slice last = tl_buf_slice(&b->last_key);
    if (!first && tl_ikey_cmp(ikey, last) <= 0)
        return tl_err(TALUS_EINVAL, "table builder: keys not strictly increasing");
    if (b->pending_index)
        TRY(sticky(b, add_index_entry(b, &ikey)));
    tl_slice ukey = tl_ikey_user(ikey);
    if (b->o.bloom_bits_per_key > 0 && (first || tl_slice_cmp(ukey, tl_ikey_user(last)) != 0))
        TRY(sticky(b, push_hash(b, ukey)));
    TRY(sticky(b, tbl_bb_add(&b->data, ikey, value)));
    TRY(sticky(b, tl_buf_set(&b->last_key, ikey.data, ikey.len)));
    uint64_t seq = tl_ikey_seq(ikey);
    if (first) {
        TRY(sticky(b, tl_buf_set(&b->smallest, ikey.data, ikey.len)));
        b->props.min_seq = b->props.max_seq = seq;
    }
    if (seq < b->props.min_seq)
        b->props.min_seq = seq;
    if (seq > b->props.max_seq)
        b->props.max_seq = seq;
    b->props.num_entries++;
    if (tl_vtype_is_delete(type))
        b->props.num_deletions++;
    b->props.raw_key_bytes += ikey.len;
    b->props.raw_value_bytes += value.len;
    if (tbl_bb_estimate(&b->data) >= b->o.block_size)
        TRY(sticky(b, flush_data(b)));
    return 0;
}

static int meta_entry(tbl_block_builder *mi, const char *name, tbl_handle h)
{
    uint8_t enc[TBL_HANDLE_MAX];
    size_t n = tbl_handle_encode(enc, h);
    return tbl_bb_add(mi, tl_slice_make(name, strlen(name)), tl_slice_make(enc, n));
}

static int finish(tbl_builder *b)
{
    tbl_handle filter_h = {0, 0}, index_h, props_h, meta_h;
    tl_slice raw;
    TRY(flush_data(b));
    if (b->o.bloom_bits_per_key > 0) {
        tl_buf fb = {0};
        int rc = tbl_bloom_build(b->hashes, b->nhash, b->o.bloom_bits_per_key, &fb);
        if (rc == 0)
            rc = write_block(b, tl_buf_slice(&fb), false, &filter_h);
        tl_buf_free(&fb);
        TRY(rc);
        b->props.filter_bytes = filter_h.size + TBL_TRAILER;
    }
    if (b->pending_index)
        TRY(add_index_entry(b, NULL));
    TRY(tbl_bb_finish(&b->index, &raw));
    TRY(write_block(b, raw, false, &index_h));
    b->props.index_bytes = index_h.size + TBL_TRAILER;

    /* The properties carry the final file size, which depends on the
     * metaindex that points at the properties: encode with a fixed64
     * placeholder, build the metaindex, then patch the size in. */
    b->props.smallest = b->smallest.data;
    b->props.smallest_len = b->smallest.len;
    b->props.largest = b->last_key.data;
    b->props.largest_len = b->last_key.len;
    size_t fs_pos;
    TRY(tbl_props_encode(&b->props, &b->scratch, &fs_pos));
    props_h.offset = b->offset;
    props_h.size = b->scratch.len;
    tbl_block_builder mi;
    tbl_bb_init(&mi, 1);
    int rc = 0;
    if (b->o.bloom_bits_per_key > 0)
        TRY_OUT(meta_entry(&mi, TBL_META_FILTER, filter_h));
    TRY_OUT(meta_entry(&mi, TBL_META_PROPS, props_h));
    TRY_OUT(tbl_bb_finish(&mi, &raw));
    b->props.file_size =
        props_h.offset + props_h.size + TBL_TRAILER + raw.len + TBL_TRAILER + TBL_FOOTER_SIZE;
    tl_put_fixed64(b->scratch.data + fs_pos, b->props.file_size);
    /* scratch is written uncompressed, so write_block leaves it alone. */
    tbl_handle got;
    TRY_OUT(write_block(b, tl_buf_slice(&b->scratch), false, &got));
    TRY_OUT(write_block(b, raw, false, &meta_h));
    tbl_footer ft = {meta_h, index_h, b->o.format_version};
    uint8_t foot[TBL_FOOTER_SIZE];
    tbl_footer_encode(foot, &ft);
    TRY_OUT(emit(b, foot, sizeof foot));
    TRY_OUT(flush_wbuf(b));
    if (b->offset != b->props.file_size)
        rc = tl_err(TALUS_EIO, "table builder: wrote %llu bytes, expected %llu",
                    (unsigned long long)b->offset, (unsigned long long)b->props.file_size);
out:
    tbl_bb_free(&mi);
    return rc;
}

int tbl_builder_finish(tbl_builder *b, tbl_props *props)
{
    if (b->status)
        return b->status;
    if (b->finished)
        return tl_err(TALUS_EINVAL, "table builder: finished twice");
    b->finished = true;
    int rc = sticky(b, finish(b));
    /* props borrowed the builder's key buffers while encoding. */
    b->props.smallest = b->props.largest = NULL;
    b->props.smallest_len = b->props.largest_len = 0;
    if (rc < 0 || !props)
        return rc;
    *props = b->props;
    props->smallest = props->largest = NULL;
    if (b->props.num_entries > 0) {
        props->smallest = malloc(b->smallest.len);
        props->largest = malloc(b->last_key.len);
        if (!props->smallest || !props->largest) {
            tbl_props_free(props);
            return tl_err(TALUS_ENOMEM, "out of memory returning table properties");
        }
        memcpy(props->smallest, b->smallest.data, b->smallest.len);
        memcpy(props->largest, b->last_key.data, b->last_key.len);
        props->smallest_len = b->smallest.len;
        props->largest_len = b->last_key.len;
    }
    return 0;
}
