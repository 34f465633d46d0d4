/*
 * slice.h - borrowed byte ranges and an owned growable buffer.
 */
#ifndef TL_SLICE_H
#define TL_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tl_slice {
    const uint8_t *data;
    size_t len;
} tl_slice;

static inline tl_slice tl_slice_make(const void *d, size_t n)
{
    tl_slice s = {(const uint8_t *)d, n};
    return s;
}

/* memcmp order, shorter first on a common prefix. */
static inline int tl_bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

static inline int tl_slice_cmp(tl_slice a, tl_slice b)
{
    return tl_bytes_cmp(a.data, a.len, b.data, b.len);
}

static inline bool tl_slice_starts_with(tl_slice s, tl_slice prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.data, prefix.data, prefix.len) == 0);
}

/* Owned, growable buffer. Zero-initialise ({0}) to start empty. */
typedef struct tl_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} tl_buf;

/* All return 0 or TALUS_ENOMEM. */
int tl_buf_reserve(tl_buf *b, size_t extra);
int tl_buf_append(tl_buf *b, const void *p, size_t n);
int tl_buf_set(tl_buf *b, const void *p, size_t n);
int tl_buf_put_varint64(tl_buf *b, uint64_t v);
int tl_buf_put_fixed32(tl_buf *b, uint32_t v);
int tl_buf_put_fixed64(tl_buf *b, uint64_t v);
/* varint32 length followed by the bytes */
int tl_buf_put_lenbytes(tl_buf *b, const void *p, size_t n);
static inline void tl_buf_clear(tl_buf *b)
{
    b->len = 0;
}
void tl_buf_free(tl_buf *b);
static inline tl_slice tl_buf_slice(const tl_buf *b)
{
    return tl_slice_make(b->data, b->len);
}

#endif
