/*
 * batch.c - the payload of a journal record: one batch (seqno and entries
 * naming their tree), encoding and hardened decoding (FORMAT.md section 5).
 *
 * The decoder trusts nothing: the record checksum protects against media
 * damage, but a payload may still come from a buggy or hostile writer, so
 * every varint, length and count is checked against the end of the payload
 * and against the engine's limits before it is used.
 */
#include "journal/journal.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/ikey.h"

/* Smallest encoded entry: tree id, type, key length, 1 key byte, value
 * length. Bounds the entry count a payload can claim. */
#define MIN_ENTRY 5u

int jnl_batch_begin(tl_buf *out, uint64_t seq, uint32_t count)
{
    tl_buf_clear(out);
    TRY(tl_buf_reserve(out, TL_MAX_VARINT64 + TL_MAX_VARINT32));
    out->len += tl_put_varint64(out->data + out->len, seq);
    out->len += tl_put_varint32(out->data + out->len, count);
    return 0;
}

int jnl_batch_add(tl_buf *out, const jnl_entry *e)
{
    if (!tl_vtype_valid(e->type))
        return tl_err(TALUS_EINVAL, "journal batch: invalid entry type %u", e->type);
    if (e->key.len == 0)
        return tl_err(TALUS_EINVAL, "journal batch: empty key");
    if (e->key.len > TALUS_MAX_KEY)
        return tl_err(TALUS_ETOOBIG, "journal batch: key of %zu bytes (limit %u)", e->key.len,
                      TALUS_MAX_KEY);
    if (e->value.len > TALUS_MAX_VALUE)
        return tl_err(TALUS_ETOOBIG, "journal batch: value of %zu bytes (limit %u)", e->value.len,
                      TALUS_MAX_VALUE);
    TRY(tl_buf_reserve(out, 3 * TL_MAX_VARINT32 + 1 + e->key.len + e->value.len));
    uint8_t *p = out->data + out->len;
    p += tl_put_varint32(p, e->tree_id);
    *p++ = e->type;
    p += tl_put_varint32(p, (uint32_t)e->key.len);
    memcpy(p, e->key.data, e->key.len);
    p += e->key.len;
    p += tl_put_varint32(p, (uint32_t)e->value.len);
    if (e->value.len)
        memcpy(p, e->value.data, e->value.len);
    p += e->value.len;
    out->len = (size_t)(p - out->data);
    return 0;
}

int jnl_batch_open(tl_slice payload, uint64_t *seq, uint32_t *count, jnl_batch_iter *it)
{
    const uint8_t *p = payload.data, *end = payload.data + payload.len;
    size_t n = tl_get_varint64(p, end, seq);
    if (!n)
        return tl_err(TALUS_ECORRUPT, "journal batch: malformed seqno at payload offset 0");
    p += n;
    size_t m = tl_get_varint32(p, end, count);
    if (!m)
        return tl_err(TALUS_ECORRUPT, "journal batch: malformed entry count at payload offset %zu",
                      n);
    p += m;
    if (*count > (size_t)(end - p) / MIN_ENTRY)
        return tl_err(TALUS_ECORRUPT,
                      "journal batch: %u entries cannot fit in the %zu bytes that follow", *count,
                      (size_t)(end - p));
    it->p = p;
    it->end = end;
    it->start = payload.data;
    it->count = *count;
    it->left = *count;
    return 0;
}

static int bad(const jnl_batch_iter *it, const uint8_t *at, const char *what)
{
    return tl_err(TALUS_ECORRUPT, "journal batch: entry %u of %u at payload offset %zu: %s",
                  it->count - it->left, it->count, (size_t)(at - it->start), what);
}

int jnl_batch_next(jnl_batch_iter *it, jnl_entry *e)
{
    const uint8_t *p = it->p, *end = it->end;
    if (it->left == 0) {
        if (p != end)
            return tl_err(TALUS_ECORRUPT,
                          "journal batch: %zu trailing bytes after %u entries at payload offset "
                          "%zu",
                          (size_t)(end - p), it->count, (size_t)(p - it->start));
        return 0;
    }
    uint32_t tree, klen, vlen;
    size_t n = tl_get_varint32(p, end, &tree);
    if (!n)
        return bad(it, p, "malformed tree id");
    p += n;
    if (p >= end)
        return bad(it, p, "missing type");
    uint8_t type = *p++;
    if (!tl_vtype_valid(type))
        return bad(it, p - 1, "invalid entry type");
    if (!(n = tl_get_varint32(p, end, &klen)))
        return bad(it, p, "malformed key length");
    p += n;
    if (klen == 0 || klen > TALUS_MAX_KEY)
        return bad(it, p, "key length out of range");
    if (klen > (size_t)(end - p))
        return bad(it, p, "key runs past the end");
    const uint8_t *key = p;
    p += klen;
    if (!(n = tl_get_varint32(p, end, &vlen)))
        return bad(it, p, "malformed value length");
    p += n;
    if (vlen > (size_t)(end - p))
        return bad(it, p, "value runs past the end");
    e->tree_id = tree;
    e->type = type;
    e->key = tl_slice_make(key, klen);
    e->value = tl_slice_make(p, vlen);
    it->p = p + vlen;
    it->left--;
    return 1;
}
