/*
 * hash.h - checksums and hashes (xxh3 through libxxhash).
 */
#ifndef TL_HASH_H
#define TL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* xxh3-64 of [p, p+n): block, record and file checksums. */
uint64_t tl_xxh3(const void *p, size_t n);
/* xxh3-64 with a seed (bloom filter probes, cache shards). */
uint64_t tl_xxh3_seed(const void *p, size_t n, uint64_t seed);
/* Checksum of two pieces as if concatenated (payload + type byte). */
uint64_t tl_xxh3_2(const void *a, size_t an, const void *b, size_t bn);

#endif
