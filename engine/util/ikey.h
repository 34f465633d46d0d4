/*
 * ikey.h - internal keys: the user key followed by a 9-byte trailer,
 * fixed64(seqno) then one type byte. Seqnos are full 64-bit, so the type
 * cannot be packed into the seqno as LevelDB does.
 *
 * Order: user key ascending (memcmp), then seqno DEScending, so the newest
 * version of a key comes first. The type does not take part in the order:
 * (user key, seqno) is unique in a tree because a batch writes a key once.
 */
#ifndef TL_IKEY_H
#define TL_IKEY_H

#include "util/coding.h"
#include "util/slice.h"

#define TL_IKEY_TRAILER 9
#define TL_SEQ_MAX UINT64_MAX

/* Value types. The numbers are on disk: never renumber. */
enum tl_vtype {
    TL_TYPE_VALUE = 1,
    TL_TYPE_TOMBSTONE = 2,
    TL_TYPE_WEAK_TOMBSTONE = 3,
    TL_TYPE_MERGE = 4,           /* reserved: merge operand (V4) */
    TL_TYPE_BLOB = 5,            /* reserved: value is a blob pointer */
    TL_TYPE_RANGE_TOMBSTONE = 6, /* reserved: range tombstone (V4) */
};

static inline bool tl_vtype_valid(uint8_t t)
{
    return t >= TL_TYPE_VALUE && t <= TL_TYPE_RANGE_TOMBSTONE;
}

static inline bool tl_vtype_is_delete(uint8_t t)
{
    return t == TL_TYPE_TOMBSTONE || t == TL_TYPE_WEAK_TOMBSTONE;
}

/* Write ukey + trailer to dst (room for ulen + 9). Returns the length. */
static inline size_t tl_ikey_encode(uint8_t *dst, const uint8_t *ukey, size_t ulen, uint64_t seq,
                                    uint8_t type)
{
    if (ulen)
        memcpy(dst, ukey, ulen);
    tl_put_fixed64(dst + ulen, seq);
    dst[ulen + 8] = type;
    return ulen + TL_IKEY_TRAILER;
}

/* Callers must have checked len >= TL_IKEY_TRAILER (decoders do). */
static inline tl_slice tl_ikey_user(tl_slice ik)
{
    return tl_slice_make(ik.data, ik.len - TL_IKEY_TRAILER);
}

static inline uint64_t tl_ikey_seq(tl_slice ik)
{
    return tl_get_fixed64(ik.data + ik.len - TL_IKEY_TRAILER);
}

static inline uint8_t tl_ikey_type(tl_slice ik)
{
    return ik.data[ik.len - 1];
}

static inline int tl_ikey_cmp_raw(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = tl_bytes_cmp(a, alen - TL_IKEY_TRAILER, b, blen - TL_IKEY_TRAILER);
    if (c)
        return c;
    uint64_t sa = tl_get_fixed64(a + alen - TL_IKEY_TRAILER);
    uint64_t sb = tl_get_fixed64(b + blen - TL_IKEY_TRAILER);
    return sa > sb ? -1 : (sa < sb ? 1 : 0);
}

static inline int tl_ikey_cmp(tl_slice a, tl_slice b)
{
    return tl_ikey_cmp_raw(a.data, a.len, b.data, b.len);
}

#endif
