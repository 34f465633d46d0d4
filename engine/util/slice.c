/* slice.c - the growable byte buffer. */
#include "util/slice.h"

#include <stdlib.h>

#include "util/coding.h"
#include "util/err.h"

int tl_buf_reserve(tl_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t need = b->len + extra;
    if (need < b->len)
        return tl_err(TALUS_ENOMEM, "buffer size overflow");
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap * 2 > cap ? cap * 2 : need;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return tl_err(TALUS_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return 0;
}

int tl_buf_append(tl_buf *b, const void *p, size_t n)
{
    TRY(tl_buf_reserve(b, n));
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int tl_buf_set(tl_buf *b, const void *p, size_t n)
{
    b->len = 0;
    return tl_buf_append(b, p, n);
}

int tl_buf_put_varint64(tl_buf *b, uint64_t v)
{
    TRY(tl_buf_reserve(b, TL_MAX_VARINT64));
    b->len += tl_put_varint64(b->data + b->len, v);
    return 0;
}

int tl_buf_put_fixed32(tl_buf *b, uint32_t v)
{
    TRY(tl_buf_reserve(b, 4));
    tl_put_fixed32(b->data + b->len, v);
    b->len += 4;
    return 0;
}

int tl_buf_put_fixed64(tl_buf *b, uint64_t v)
{
    TRY(tl_buf_reserve(b, 8));
    tl_put_fixed64(b->data + b->len, v);
    b->len += 8;
    return 0;
}

int tl_buf_put_lenbytes(tl_buf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX)
        return tl_err(TALUS_ETOOBIG, "length %zu does not fit 32 bits", n);
    TRY(tl_buf_put_varint64(b, n));
    return tl_buf_append(b, p, n);
}

void tl_buf_free(tl_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
