/*
 * table_reader.c - opens a table (footer, index, metaindex, filter,
 * properties: all verified and kept in memory), fetches data blocks through
 * the block cache, and answers point lookups.
 *
 * After open the reader is immutable, so tbl_reader_get and iterators can
 * run concurrently: each call keeps its own cursor state, and blocks are
 * shared only through the (thread-safe) block cache.
 */
#include <stdlib.h>

#include "table/table_internal.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/ikey.h"

/* A cached block: this header, then the block bytes at CBLOCK_PREFIX. */
typedef struct tbl_cblock {
    tbl_block blk;
} tbl_cblock;
#define CBLOCK_PREFIX ((sizeof(tbl_cblock) + 15u) & ~(size_t)15u)

static void cblock_delete(const uint8_t *key, size_t klen, void *value)
{
    (void)key;
    (void)klen;
    free(value);
}

/* Take ownership of whichever buffer `out` lives in. */
static uint8_t *steal(tl_buf *raw, tl_buf *dec, tl_slice out, size_t prefix)
{
    tl_buf *b = out.data - prefix == raw->data ? raw : dec;
    uint8_t *p = b->data;
    *b = (tl_buf){0};
    return p;
}

int tbl_index_handle(const tbl_reader *r, tl_slice v, uint64_t index_off, tbl_handle *h)
{
    if (tbl_handle_decode(v.data, v.data + v.len, h) != v.len)
        return tl_err(TALUS_ECORRUPT, "table %s: bad block handle in index block at offset %llu",
                      r->name, (unsigned long long)index_off);
    return 0;
}

int tbl_reader_load_block(tbl_reader *r, tbl_handle h, bool fill_cache, tbl_pinned *pin)
{
    uint8_t ck[16];
    tl_slice data;
    if (r->cache) {
        tl_put_fixed64(ck, r->cache_id);
        tl_put_fixed64(ck + 8, h.offset);
        tl_cache_handle *ch = tl_cache_lookup(r->cache, ck, sizeof ck);
        if (ch) {
            pin->blk = ((tbl_cblock *)tl_cache_value(ch))->blk;
            pin->h = ch;
            return 0;
        }
        if (fill_cache) {
            TRY(tbl_read_block(&r->src, h, CBLOCK_PREFIX, &pin->raw, &pin->dec, &data));
            tbl_block blk;
            TRY(tbl_block_init(&blk, data, r->name, h.offset));
            size_t charge = CBLOCK_PREFIX + data.len;
            tbl_cblock *cb = (tbl_cblock *)steal(&pin->raw, &pin->dec, data, CBLOCK_PREFIX);
            cb->blk = blk;
            ch = tl_cache_insert(r->cache, ck, sizeof ck, cb, charge, cblock_delete);
            if (!ch) {
                free(cb);
                return tl_err(TALUS_ENOMEM, "out of memory inserting into the block cache");
            }
            pin->blk = blk;
            pin->h = ch;
            return 0;
        }
    }
    TRY(tbl_read_block(&r->src, h, 0, &pin->raw, &pin->dec, &data));
    return tbl_block_init(&pin->blk, data, r->name, h.offset);
}

void tbl_pinned_release(tbl_reader *r, tbl_pinned *pin)
{
    if (pin->h)
        tl_cache_release(r->cache, pin->h);
    pin->h = NULL;
    memset(&pin->blk, 0, sizeof pin->blk);
}

void tbl_pinned_free(tbl_reader *r, tbl_pinned *pin)
{
    tbl_pinned_release(r, pin);
    tl_buf_free(&pin->raw);
    tl_buf_free(&pin->dec);
}

/* The key of index entry i in place, if it is a whole key at restart i;
 * *end receives the offset just past the entry. */
static bool index_key(const tbl_reader *r, uint32_t i, tl_slice *k, size_t *end)
{
    const tbl_block *b = &r->index;
    size_t off = tbl_block_restart(b, i);
    const uint8_t *p = b->data + off, *lim = b->data + b->restarts;
    uint32_t shared, nonshared, vlen;
    size_t n1 = tl_get_varint32(p, lim, &shared);
    size_t n2 = n1 ? tl_get_varint32(p + n1, lim, &nonshared) : 0;
    size_t n3 = n2 ? tl_get_varint32(p + n1 + n2, lim, &vlen) : 0;
    if (!n3 || shared != 0 || nonshared < TL_IKEY_TRAILER)
        return false;
    p += n1 + n2 + n3;
    if ((size_t)(lim - p) < (uint64_t)nonshared + vlen)
        return false;
    *k = tl_slice_make(p, nonshared);
    *end = (size_t)(p - b->data) + nonshared + vlen;
    return true;
}

static inline uint64_t key_pfx(tl_slice ukey, size_t cp)
{
    if (ukey.len >= cp + 8)
        return tbl_load_be64(ukey.data + cp);
    uint8_t b[8] = {0};
    if (ukey.len > cp)
        memcpy(b, ukey.data + cp, ukey.len - cp);
    return tbl_load_be64(b);
}

/* A binary search over the index block touches a restart offset and a key
 * at a random place per probe: two cache misses each, which dominated point
 * reads. The accelerator is a dense array of 8-byte key prefixes (after the
 * prefix common to the whole index), searched first; full keys are compared
 * only among entries whose prefixes tie. Also checks that the index keys
 * increase strictly (ECORRUPT otherwise). */
static int index_accel_build(tbl_reader *r)
{
    const tbl_block *b = &r->index;
    uint32_t n = b->num_restarts;
    tl_slice first, last, k, prev = {NULL, 0};
    size_t end;
    if (n == 0 || !index_key(r, 0, &first, &end) || !index_key(r, n - 1, &last, &end))
        return 0;
    tl_slice uf = tl_ikey_user(first), ul = tl_ikey_user(last);
    size_t cp = 0;
    while (cp < uf.len && cp < ul.len && uf.data[cp] == ul.data[cp])
        cp++;
    uint64_t *pfx = malloc((size_t)n * sizeof *pfx);
    if (!pfx)
        return tl_err(TALUS_ENOMEM, "out of memory opening table %s", r->name);
    for (uint32_t i = 0; i < n; i++) {
        /* One entry per restart: entry i must end where entry i+1 starts. */
        size_t want = i + 1 < n ? tbl_block_restart(b, i + 1) : b->restarts;
        if (!index_key(r, i, &k, &end) || end != want) {
            free(pfx);
            return 0; /* not our layout: fall back to plain search */
        }
        tl_slice u = tl_ikey_user(k);
        if ((i > 0 && tbl_ikey_cmp(prev.data, prev.len, k.data, k.len) >= 0) || u.len < cp ||
            memcmp(u.data, uf.data, cp) != 0) {
            free(pfx);
            return tl_err(TALUS_ECORRUPT, "table %s: index keys out of order", r->name);
        }
        pfx[i] = key_pfx(u, cp);
        prev = k;
    }
    r->ix_pfx = pfx;
    r->ix_cp = uf.data;
    r->ix_cplen = cp;
    return 0;
}

/* Index of the first index entry >= target (num_restarts if none). */
static uint32_t index_find(const tbl_reader *r, tl_slice target)
{
    uint32_t n = r->index.num_restarts;
    tl_slice ut = tl_ikey_user(target);
    size_t cp = r->ix_cplen;
    size_t m = ut.len < cp ? ut.len : cp;
    int c = m ? memcmp(ut.data, r->ix_cp, m) : 0;
    if (c < 0 || (c == 0 && ut.len < cp))
        return 0;
    if (c > 0)
        return n;
    uint64_t pt = key_pfx(ut, cp);
    const uint64_t *pfx = r->ix_pfx;
    uint32_t lo = 0, hi = n;
    while (lo < hi) { /* first prefix >= pt */
        uint32_t mid = lo + (hi - lo) / 2;
        if (pfx[mid] < pt)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t a = lo;
    hi = n;
    while (lo < hi) { /* first prefix > pt */
        uint32_t mid = lo + (hi - lo) / 2;
        if (pfx[mid] <= pt)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Entries before a are below target, entries from lo on above it. */
    hi = lo;
    lo = a;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        tl_slice k;
        size_t end;
        (void)index_key(r, mid, &k, &end); /* validated by index_accel_build */
        if (tbl_ikey_cmp(k.data, k.len, target.data, target.len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void tbl_index_seek(const tbl_reader *r, tbl_block_iter *ii, tl_slice target)
{
    if (r->ix_pfx)
        tbl_bi_seek_restart(ii, index_find(r, target));
    else
        tbl_bi_seek(ii, target);
}

/* Read a meta block into a malloc'd buffer (*mem owns *out). */
static int read_owned(tbl_reader *r, tbl_handle h, uint8_t **mem, tl_slice *out)
{
    tl_buf raw = {0}, dec = {0};
    int rc = tbl_read_block(&r->src, h, 0, &raw, &dec, out);
    if (rc == 0)
        *mem = steal(&raw, &dec, *out, 0);
    tl_buf_free(&raw);
    tl_buf_free(&dec);
    return rc;
}

static int read_meta(tbl_reader *r, tbl_handle *filter_h, bool *has_filter, tbl_handle *props_h,
                     bool *has_props)
{
    uint8_t *mem = NULL;
    tl_slice data;
    tbl_block blk;
    tbl_block_iter it;
    int rc;
    tbl_bi_init(&it, false, r->name);
    TRY_OUT(read_owned(r, r->footer.metaindex, &mem, &data));
    TRY_OUT(tbl_block_init(&blk, data, r->name, r->footer.metaindex.offset));
    tbl_bi_set(&it, &blk, r->footer.metaindex.offset);
    for (tbl_bi_seek_first(&it); tbl_bi_valid(&it); tbl_bi_next(&it)) {
        tl_slice k = tbl_bi_key(&it), v = tbl_bi_value(&it);
        tbl_handle h;
        if (tbl_handle_decode(v.data, v.data + v.len, &h) != v.len) {
            rc = tl_err(TALUS_ECORRUPT, "table %s: bad handle in metaindex block", r->name);
            goto out;
        }
        if (k.len == strlen(TBL_META_FILTER) && !memcmp(k.data, TBL_META_FILTER, k.len)) {
            *filter_h = h;
            *has_filter = true;
        } else if (k.len == strlen(TBL_META_PROPS) && !memcmp(k.data, TBL_META_PROPS, k.len)) {
            *props_h = h;
            *has_props = true;
        }
    }
    rc = tbl_bi_status(&it);
out:
    tbl_bi_free(&it);
    free(mem);
    return rc;
}

void tbl_reader_free(tbl_reader *r)
{
    if (!r)
        return;
    tl_file_close(r->file);
    free(r->name);
    free(r->index_mem);
    free(r->ix_pfx);
    free(r->filter_mem);
    tbl_props_free(&r->props);
    free(r);
}

int tbl_reader_open(tl_file *f, const char *name, uint64_t file_size, tl_cache *block_cache,
                    tbl_reader **out)
{
    int rc;
    *out = NULL;
    tbl_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name ? name : "?"))) {
        free(r);
        return tl_err(TALUS_ENOMEM, "out of memory opening table %s", name);
    }
    uint8_t foot[TBL_FOOTER_SIZE];
    size_t got = 0;
    if (file_size < TBL_FOOTER_SIZE) {
        rc = tl_err(TALUS_ECORRUPT, "table %s: file too short (%llu bytes) to be a talus table",
                    r->name, (unsigned long long)file_size);
        goto out;
    }
    TRY_OUT(tl_file_pread(f, foot, sizeof foot, file_size - TBL_FOOTER_SIZE, &got));
    if (got != sizeof foot) {
        rc = tl_err(TALUS_ECORRUPT, "table %s: truncated footer", r->name);
        goto out;
    }
    TRY_OUT(tbl_footer_decode(foot, r->name, &r->footer));
    r->file_size = file_size;
    r->src = (tbl_src){f, r->name, file_size - TBL_FOOTER_SIZE};

    tl_slice data;
    TRY_OUT(read_owned(r, r->footer.index, &r->index_mem, &data));
    TRY_OUT(tbl_block_init(&r->index, data, r->name, r->footer.index.offset));
    TRY_OUT(index_accel_build(r));

    tbl_handle filter_h = {0, 0}, props_h = {0, 0};
    bool has_filter = false, has_props = false;
    TRY_OUT(read_meta(r, &filter_h, &has_filter, &props_h, &has_props));
    if (!has_props) {
        rc = tl_err(TALUS_ECORRUPT, "table %s: no properties block", r->name);
        goto out;
    }
    uint8_t *pmem = NULL;
    rc = read_owned(r, props_h, &pmem, &data);
    if (rc == 0)
        rc = tbl_props_decode(data, r->name, props_h.offset, &r->props);
    free(pmem);
    if (rc < 0)
        goto out;
    if (r->props.file_size != file_size || r->props.format_version != r->footer.format_version) {
        rc = tl_err(TALUS_ECORRUPT,
                    "table %s: properties disagree with the file (size %llu vs %llu, "
                    "format %u vs %u)",
                    r->name, (unsigned long long)r->props.file_size, (unsigned long long)file_size,
                    r->props.format_version, r->footer.format_version);
        goto out;
    }
    if (has_filter)
        TRY_OUT(read_owned(r, filter_h, &r->filter_mem, &r->filter));
    r->cache = block_cache;
    if (block_cache)
        r->cache_id = tl_cache_new_id(block_cache);
    r->file = f;
    *out = r;
    return 0;
out:
    tbl_reader_free(r); /* r->file is still NULL: f is untouched */
    return rc;
}

const tbl_props *tbl_reader_props(const tbl_reader *r)
{
    return &r->props;
}

bool tbl_reader_may_contain(tbl_reader *r, tl_slice ukey)
{
    if (!r->filter_mem)
        return true;
    return tbl_bloom_may_contain(r->filter, tl_xxh3(ukey.data, ukey.len));
}

/* Look for the first entry >= target in the data blocks from the index
 * position onward (a user key's versions may continue in the next block). */
static int get_from(tbl_reader *r, tbl_block_iter *ii, tbl_block_iter *di, tbl_pinned *pin,
                    tl_slice ukey, tl_slice target, uint8_t *type, tl_buf *value, uint64_t *seq_out)
{
    for (; tbl_bi_valid(ii); tbl_bi_next(ii)) {
        tbl_handle h;
        TRY(tbl_index_handle(r, tbl_bi_value(ii), r->footer.index.offset, &h));
        TRY(tbl_reader_load_block(r, h, true, pin));
        tbl_bi_set(di, &pin->blk, h.offset);
        tbl_bi_seek(di, target);
        if (tbl_bi_valid(di)) {
            tl_slice k = tbl_bi_key(di);
            if (tl_slice_cmp(tl_ikey_user(k), ukey) != 0)
                return 0;
            uint8_t t = tl_ikey_type(k);
            if (!tl_vtype_valid(t))
                return tl_err(TALUS_ECORRUPT, "table %s: bad value type %u in block at %llu",
                              r->name, t, (unsigned long long)h.offset);
            tl_slice v = tbl_bi_value(di);
            TRY(tl_buf_set(value, v.data, v.len));
            *type = t;
            *seq_out = tl_ikey_seq(k);
            return 1;
        }
        TRY(tbl_bi_status(di));
        tbl_pinned_release(r, pin);
    }
    return tbl_bi_status(ii);
}

int tbl_reader_get(tbl_reader *r, tl_slice ukey, uint64_t read_seq, uint8_t *type, tl_buf *value,
                   uint64_t *seq_out)
{
    if (r->filter_mem && !tbl_bloom_may_contain(r->filter, tl_xxh3(ukey.data, ukey.len)))
        return 0;
    uint8_t small[256];
    uint8_t *tk = small;
    if (ukey.len + TL_IKEY_TRAILER > sizeof small) {
        tk = malloc(ukey.len + TL_IKEY_TRAILER);
        if (!tk)
            return tl_err(TALUS_ENOMEM, "out of memory in table get");
    }
    tl_slice target =
        tl_slice_make(tk, tl_ikey_encode(tk, ukey.data, ukey.len, read_seq, TL_TYPE_VALUE));
    tbl_block_iter ii, di;
    tbl_pinned pin = {0};
    tbl_bi_init(&ii, true, r->name);
    tbl_bi_init(&di, true, r->name);
    tbl_bi_set(&ii, &r->index, r->footer.index.offset);
    tbl_index_seek(r, &ii, target);
    int rc = get_from(r, &ii, &di, &pin, ukey, target, type, value, seq_out);
    tbl_pinned_free(r, &pin);
    tbl_bi_free(&ii);
    tbl_bi_free(&di);
    if (tk != small)
        free(tk);
    return rc;
}

uint64_t tbl_reader_approx_offset(tbl_reader *r, tl_slice ikey)
{
    tbl_block_iter ii;
    uint64_t off = r->props.data_bytes;
    tbl_bi_init(&ii, true, r->name);
    tbl_bi_set(&ii, &r->index, r->footer.index.offset);
    tbl_index_seek(r, &ii, ikey);
    tbl_handle h;
    if (tbl_bi_valid(&ii) && tbl_index_handle(r, tbl_bi_value(&ii), 0, &h) == 0)
        off = h.offset;
    tbl_bi_free(&ii);
    return off < r->file_size ? off : r->file_size;
}
