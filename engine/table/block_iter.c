/*
 * block_iter.c - iterator over one block (format in block.h): binary
 * search over restart points then a linear scan, in both directions.
 *
 * Invariants while valid (cur < b.restarts):
 *  - [cur, next) is the current entry, fully inside [0, b.restarts);
 *  - ri is the restart region holding cur: restart[ri] <= cur and, if there
 *    is a region after it, cur < restart[ri + 1];
 *  - key/klen is the current full key: in the block (restart entries), in
 *    kbuf, or in pc_keys (after a backward step); val/vlen is in the block.
 * Every decoded length is checked against b.restarts before use, so a
 * corrupt block can only make the iterator invalid with TALUS_ECORRUPT.
 */
#include <stdlib.h>

#include "table/block.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/ikey.h"

void tbl_bi_init(tbl_block_iter *it, bool ikey, const char *name)
{
    memset(it, 0, offsetof(tbl_block_iter, kinline));
    it->ikey = ikey;
    it->name = name;
    it->kbuf = it->kinline;
    it->kcap = TBL_KEY_INLINE;
}

void tbl_bi_set(tbl_block_iter *it, const tbl_block *b, uint64_t boff)
{
    it->b = *b;
    it->boff = boff;
    it->cur = it->next = b->restarts;
    it->ri = 0;
    it->status = 0;
    it->key = it->val = NULL;
    it->klen = it->vlen = 0;
    it->pc_valid = false;
}

void tbl_bi_free(tbl_block_iter *it)
{
    if (it->kbuf != it->kinline)
        free(it->kbuf);
    it->kbuf = it->kinline;
    it->kcap = TBL_KEY_INLINE;
    free(it->pc);
    it->pc = NULL;
    it->pc_cap = it->pc_n = 0;
    tl_buf_free(&it->pc_keys);
}

void tbl_bi_invalidate(tbl_block_iter *it)
{
    it->cur = it->next = it->b.restarts;
    it->pc_valid = false;
}

static void corrupt(tbl_block_iter *it, const char *why)
{
    it->status = tl_err(TALUS_ECORRUPT, "table %s: corrupt block at offset %llu: %s (entry at %zu)",
                        it->name, (unsigned long long)it->boff, why, it->cur);
    tbl_bi_invalidate(it);
}

static inline int keycmp(const tbl_block_iter *it, const uint8_t *a, size_t alen, tl_slice b)
{
    return it->ikey ? tbl_ikey_cmp(a, alen, b.data, b.len) : tbl_bytes_cmp(a, alen, b.data, b.len);
}

/* Decode the entry header at off. Returns a pointer to the key delta, or
 * NULL if the header or the lengths do not fit before the restart array. */
static inline const uint8_t *decode_entry(const tbl_block *b, size_t off, uint32_t *shared,
                                          uint32_t *nonshared, uint32_t *vlen)
{
    const uint8_t *p = b->data + off;
    const uint8_t *limit = b->data + b->restarts;
    if (TL_UNLIKELY(limit - p < 3))
        return NULL;
    if (TL_LIKELY((p[0] | p[1] | p[2]) < 0x80)) {
        *shared = p[0];
        *nonshared = p[1];
        *vlen = p[2];
        p += 3;
    } else {
        size_t n;
        if (!(n = tl_get_varint32(p, limit, shared)))
            return NULL;
        p += n;
        if (!(n = tl_get_varint32(p, limit, nonshared)))
            return NULL;
        p += n;
        if (!(n = tl_get_varint32(p, limit, vlen)))
            return NULL;
        p += n;
    }
    if ((size_t)(limit - p) < (uint64_t)*nonshared + *vlen)
        return NULL;
    return p;
}

static bool kbuf_reserve(tbl_block_iter *it, size_t n)
{
    if (n <= it->kcap)
        return true;
    size_t cap = it->kcap * 2 > n ? it->kcap * 2 : n;
    uint8_t *p = it->kbuf == it->kinline ? malloc(cap) : realloc(it->kbuf, cap);
    if (!p)
        return false;
    if (it->kbuf == it->kinline)
        memcpy(p, it->kinline, TBL_KEY_INLINE);
    if (it->key == it->kbuf)
        it->key = p;
    it->kbuf = p;
    it->kcap = cap;
    return true;
}

/* Decode the entry at it->next and make it current. Past the last entry the
 * iterator becomes invalid (status unchanged). */
static void parse_next(tbl_block_iter *it)
{
    const tbl_block *b = &it->b;
    size_t off = it->next;
    if (off >= b->restarts) {
        it->cur = it->next = b->restarts;
        return;
    }
    it->cur = off;
    uint32_t shared, nonshared, vlen;
    const uint8_t *p = decode_entry(b, off, &shared, &nonshared, &vlen);
    if (TL_UNLIKELY(!p)) {
        corrupt(it, "entry overruns the block");
        return;
    }
    if (it->ri + 1 < b->num_restarts) {
        uint32_t r = tbl_block_restart(b, it->ri + 1);
        if (off == r)
            it->ri++;
        else if (TL_UNLIKELY(off > r)) {
            corrupt(it, "entry straddles a restart point");
            return;
        }
    }
    if (shared == 0) {
        it->key = p; /* full key in place: no copy */
    } else {
        if (TL_UNLIKELY(shared > it->klen || off == tbl_block_restart(b, it->ri))) {
            corrupt(it, "bad shared key length");
            return;
        }
        size_t klen = (size_t)shared + nonshared;
        if (TL_UNLIKELY(!kbuf_reserve(it, klen))) {
            it->status = tl_err(TALUS_ENOMEM, "out of memory decoding a block key");
            {
                tbl_bi_invalidate(it);
                return;
            }
        }
        if (it->key != it->kbuf)
            memcpy(it->kbuf, it->key, shared);
        memcpy(it->kbuf + shared, p, nonshared);
        it->key = it->kbuf;
    }
    it->klen = (size_t)shared + nonshared;
    if (TL_UNLIKELY(it->ikey && it->klen < TL_IKEY_TRAILER)) {
        corrupt(it, "internal key shorter than its trailer");
        return;
    }
    it->val = p + nonshared;
    it->vlen = vlen;
    it->next = (size_t)(it->val + vlen - b->data);
}

void tbl_bi_seek_first(tbl_block_iter *it)
{
    it->pc_valid = false;
    if (it->status) {
        tbl_bi_invalidate(it);
        return;
    }
    it->ri = 0;
    it->next = 0;
    it->klen = 0;
    parse_next(it);
}

void tbl_bi_next(tbl_block_iter *it)
{
    it->pc_valid = false;
    if (tbl_bi_valid(it))
        parse_next(it);
}

/* The full key stored at restart point i, in place. false if malformed. */
static bool restart_key(tbl_block_iter *it, uint32_t i, tl_slice *key)
{
    uint32_t shared, nonshared, vlen;
    size_t off = tbl_block_restart(&it->b, i);
    const uint8_t *p = decode_entry(&it->b, off, &shared, &nonshared, &vlen);
    if (!p || shared != 0 || (it->ikey && nonshared < TL_IKEY_TRAILER)) {
        it->cur = off;
        corrupt(it, "bad key at restart point");
        return false;
    }
    *key = tl_slice_make(p, nonshared);
    return true;
}

void tbl_bi_seek(tbl_block_iter *it, tl_slice target)
{
    it->pc_valid = false;
    if (it->status || it->b.num_restarts == 0) {
        tbl_bi_invalidate(it);
        return;
    }
    /* Find the last restart point whose key is < target. */
    uint32_t lo = 0, hi = it->b.num_restarts - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        tl_slice k;
        if (!restart_key(it, mid, &k))
            return;
        int c = keycmp(it, k.data, k.len, target);
        if (c < 0) {
            lo = mid;
        } else if (c > 0) {
            hi = mid - 1;
        } else {
            lo = hi = mid; /* exact hit: it is the answer */
            break;
        }
    }
    it->ri = lo;
    it->next = tbl_block_restart(&it->b, lo);
    for (;;) {
        parse_next(it);
        if (!tbl_bi_valid(it) || keycmp(it, it->key, it->klen, target) >= 0)
            return;
    }
}

void tbl_bi_seek_restart(tbl_block_iter *it, uint32_t i)
{
    it->pc_valid = false;
    if (it->status || i >= it->b.num_restarts) {
        tbl_bi_invalidate(it);
        return;
    }
    it->ri = i;
    it->next = tbl_block_restart(&it->b, i);
    parse_next(it);
}

static bool pc_reserve(tbl_block_iter *it)
{
    if (it->pc_n < it->pc_cap)
        return true;
    size_t cap = it->pc_cap ? 2 * it->pc_cap : 32;
    tbl_prev_ent *p = realloc(it->pc, cap * sizeof *p);
    if (!p)
        return false;
    it->pc = p;
    it->pc_cap = cap;
    return true;
}

/* Make cached entry i current. */
static void pc_load(tbl_block_iter *it, size_t i)
{
    const tbl_prev_ent *e = &it->pc[i];
    it->pc_pos = i;
    it->cur = e->off;
    it->next = e->next;
    it->key = it->pc_keys.data + e->koff;
    it->klen = e->klen;
    it->val = it->b.data + e->voff;
    it->vlen = e->vlen;
}

/* Decode region r up to (not including) the entry at `end` into the prev
 * cache and make the last of them current. */
static void fill_region(tbl_block_iter *it, uint32_t r, size_t end)
{
    it->pc_valid = false;
    it->pc_n = 0;
    tl_buf_clear(&it->pc_keys);
    it->ri = r;
    it->next = tbl_block_restart(&it->b, r);
    do {
        parse_next(it);
        if (!tbl_bi_valid(it)) {
            if (!it->status)
                corrupt(it, "entries do not reach the next restart point");
            return;
        }
        if (it->next > end) {
            corrupt(it, "entry straddles a restart point");
            return;
        }
        if (!pc_reserve(it) || tl_buf_reserve(&it->pc_keys, it->klen) < 0) {
            it->status = tl_err(TALUS_ENOMEM, "out of memory stepping back in a block");
            {
                tbl_bi_invalidate(it);
                return;
            }
        }
        tbl_prev_ent *e = &it->pc[it->pc_n++];
        e->off = it->cur;
        e->next = it->next;
        e->koff = it->pc_keys.len;
        e->klen = it->klen;
        e->voff = (size_t)(it->val - it->b.data);
        e->vlen = it->vlen;
        /* Append reads it->key before the buffer could move (reserved). */
        memcpy(it->pc_keys.data + it->pc_keys.len, it->key, it->klen);
        it->pc_keys.len += it->klen;
    } while (it->next < end);
    it->pc_valid = true;
    pc_load(it, it->pc_n - 1);
    it->ri = r;
}

void tbl_bi_seek_last(tbl_block_iter *it)
{
    it->pc_valid = false;
    if (it->status || it->b.num_restarts == 0) {
        tbl_bi_invalidate(it);
        return;
    }
    fill_region(it, it->b.num_restarts - 1, it->b.restarts);
}

void tbl_bi_prev(tbl_block_iter *it)
{
    if (!tbl_bi_valid(it))
        return;
    if (it->pc_valid && it->pc_pos > 0 && it->pc[it->pc_pos].off == it->cur) {
        pc_load(it, it->pc_pos - 1);
        return;
    }
    size_t orig = it->cur;
    uint32_t r = it->ri;
    while (tbl_block_restart(&it->b, r) >= orig) {
        if (r == 0) {
            tbl_bi_invalidate(it); /* before the first entry */
            return;
        }
        r--;
    }
    fill_region(it, r, orig);
}

void tbl_bi_seek_for_prev(tbl_block_iter *it, tl_slice target)
{
    tbl_bi_seek(it, target);
    if (tbl_bi_valid(it)) {
        if (keycmp(it, it->key, it->klen, target) > 0)
            tbl_bi_prev(it);
    } else if (!it->status) {
        tbl_bi_seek_last(it);
    }
}
