/*
 * bloom.c - the table's bloom filter over user keys (FORMAT.md §5).
 *
 * Cache-line blocked: each key picks one 512-bit line from the upper half
 * of its hash and sets k bits inside that line by double hashing, so a
 * lookup touches one cache line instead of k. Layout:
 *     [lines * 64 bytes][kind byte = 1][k byte]
 * A filter built from zero keys has zero lines and answers "absent" for
 * everything; anything malformed answers "maybe".
 */
#include <stdlib.h>

#include "table/table.h"
#include "util/err.h"

#define LINE_BYTES 64u
#define LINE_BITS 512u
#define BLOOM_KIND_BLOCKED512 1u

static inline uint32_t pick_line(uint64_t h, uint32_t lines)
{
    return (uint32_t)(((uint64_t)(uint32_t)(h >> 32) * lines) >> 32);
}

/* Double hashing inside the line: probe i is the top 9 bits of a + i*b.
 * b is derived through a multiply so that keys sharing a line (which share
 * the top bits of h) still get unrelated probe steps. */
static inline void probes_init(uint64_t h, uint32_t *a, uint32_t *b)
{
    *a = (uint32_t)h;
    *b = (uint32_t)((h * 0x9E3779B97F4A7C15ull) >> 32) | 1u;
}

static int bloom_k(int bits_per_key)
{
    int k = (int)(bits_per_key * 0.69);
    return k < 1 ? 1 : (k > 30 ? 30 : k);
}

int tbl_bloom_build(const uint64_t *hashes, size_t n, int bits_per_key, tl_buf *dst)
{
    if (bits_per_key < 1 || bits_per_key > 1000)
        return tl_err(TALUS_EINVAL, "bloom filter: bits_per_key %d out of range 1..1000",
                      bits_per_key);
    int k = bloom_k(bits_per_key);
    uint64_t bits = (uint64_t)n * (uint64_t)bits_per_key;
    uint64_t lines64 = (bits + LINE_BITS - 1) / LINE_BITS;
    if (lines64 > UINT32_MAX / 2)
        return tl_err(TALUS_ETOOBIG, "bloom filter over %zu keys is too large", n);
    uint32_t lines = (uint32_t)lines64;
    size_t len = (size_t)lines * LINE_BYTES;
    tl_buf_clear(dst);
    TRY(tl_buf_reserve(dst, len + 2));
    uint8_t *f = dst->data;
    memset(f, 0, len);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hashes[i];
        uint8_t *line = f + (size_t)pick_line(h, lines) * LINE_BYTES;
        uint32_t a, b;
        probes_init(h, &a, &b);
        for (int j = 0; j < k; j++) {
            uint32_t bit = a >> 23;
            line[bit >> 3] |= (uint8_t)(1u << (bit & 7));
            a += b;
        }
    }
    f[len] = BLOOM_KIND_BLOCKED512;
    f[len + 1] = (uint8_t)k;
    dst->len = len + 2;
    return 0;
}

bool tbl_bloom_may_contain(tl_slice filter, uint64_t hash)
{
    if (filter.len < 2)
        return true;
    size_t len = filter.len - 2;
    uint8_t kind = filter.data[len];
    int k = filter.data[len + 1];
    if (kind != BLOOM_KIND_BLOCKED512 || k < 1 || k > 30 || len % LINE_BYTES != 0 ||
        len / LINE_BYTES > UINT32_MAX / 2)
        return true;
    uint32_t lines = (uint32_t)(len / LINE_BYTES);
    if (lines == 0)
        return false; /* built from zero keys */
    const uint8_t *line = filter.data + (size_t)pick_line(hash, lines) * LINE_BYTES;
    uint32_t a, b;
    probes_init(hash, &a, &b);
    for (int j = 0; j < k; j++) {
        uint32_t bit = a >> 23;
        if (!(line[bit >> 3] & (1u << (bit & 7))))
            return false;
        a += b;
    }
    return true;
}
