/* hash.c - xxh3 through libxxhash. */
#include "util/hash.h"

/* The stack-allocated XXH3_state_t needs the full struct definition. */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

uint64_t tl_xxh3(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

uint64_t tl_xxh3_seed(const void *p, size_t n, uint64_t seed)
{
    return XXH3_64bits_withSeed(p, n, seed);
}

uint64_t tl_xxh3_2(const void *a, size_t an, const void *b, size_t bn)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, a, an);
    XXH3_64bits_update(&st, b, bn);
    return XXH3_64bits_digest(&st);
}
