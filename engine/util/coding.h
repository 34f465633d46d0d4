/*
 * coding.h - little-endian fixed-width integers and strict LEB128 varints.
 * Every on-disk integer goes through these; never cast structs onto bytes.
 *
 * Decoders take [p, limit) and never read past limit. A varint decoder
 * returns the number of bytes consumed, or 0 if the input is truncated,
 * longer than the maximum (5 bytes for 32-bit, 10 for 64-bit), overflows,
 * or is not minimal (a trailing 0x00 continuation byte): "strict".
 */
#ifndef TL_CODING_H
#define TL_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TL_MAX_VARINT32 5
#define TL_MAX_VARINT64 10

static inline void tl_put_fixed16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void tl_put_fixed32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void tl_put_fixed64(uint8_t *p, uint64_t v)
{
    tl_put_fixed32(p, (uint32_t)v);
    tl_put_fixed32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t tl_get_fixed16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t tl_get_fixed32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t tl_get_fixed64(const uint8_t *p)
{
    return (uint64_t)tl_get_fixed32(p) | ((uint64_t)tl_get_fixed32(p + 4) << 32);
}

/* Writes v at p (room for TL_MAX_VARINT64 bytes); returns bytes written. */
static inline size_t tl_put_varint64(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static inline size_t tl_put_varint32(uint8_t *p, uint32_t v)
{
    return tl_put_varint64(p, v);
}

static inline size_t tl_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline size_t tl_get_varint64(const uint8_t *p, const uint8_t *limit, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < TL_MAX_VARINT64; i++) {
        if (p + i >= limit)
            return 0;
        uint8_t b = p[i];
        if (i == 9 && b > 1)
            return 0; /* overflows 64 bits */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                return 0; /* not minimal */
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

static inline size_t tl_get_varint32(const uint8_t *p, const uint8_t *limit, uint32_t *out)
{
    /* Fast path: one byte. */
    if (p < limit && !(p[0] & 0x80)) {
        *out = p[0];
        return 1;
    }
    uint64_t v;
    size_t n = tl_get_varint64(p, limit, &v);
    if (n == 0 || n > TL_MAX_VARINT32 || v > UINT32_MAX)
        return 0;
    *out = (uint32_t)v;
    return n;
}

#endif
