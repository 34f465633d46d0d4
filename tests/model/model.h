/*
 * model.h - the reference model of the randomized engine tests: a seeded
 * random generator, a fixed sorted key space, and the state of a tree as one
 * small record per key.
 *
 * The key space is generated once per run and sorted in the engine's order
 * (bytewise, a proper prefix sorts first), so "the state" is an array indexed
 * by key number and a range or prefix of keys is a contiguous index range.
 * Values are not stored: a value is (seed, length) and its bytes are
 * regenerated when compared, which makes copying a whole state for a
 * snapshot cheap (a few tens of KiB).
 */
#ifndef TALUS_TEST_MODEL_H
#define TALUS_TEST_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: tiny, seedable, good enough for test input. */
typedef struct mt_rng {
    uint64_t s;
} mt_rng;

uint64_t mt_rand(mt_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t mt_below(mt_rng *r, uint64_t n);
/* 1 with probability pct/100. */
int mt_chance(mt_rng *r, unsigned pct);

/* The sorted key space. */
typedef struct mt_keys {
    size_t n;
    uint8_t **key;
    size_t *len;
} mt_keys;

/* n distinct keys of 1..maxlen bytes with skewed lengths and many shared
 * prefixes, including the bytes 0x00 and 0xff. Returns 0 or -1 (no memory). */
int mt_keys_make(mt_keys *ks, mt_rng *r, size_t n, size_t maxlen);
void mt_keys_free(mt_keys *ks);

/* Bytewise order with length as tie-break: the engine's key order. */
int mt_cmp(const void *a, size_t an, const void *b, size_t bn);
/* First index whose key is >= t (lower bound) / > t (upper bound). */
size_t mt_lower(const mt_keys *ks, const void *t, size_t tn);
size_t mt_upper(const mt_keys *ks, const void *t, size_t tn);
/* Index range [*lo, *hi) of the keys starting with p. */
void mt_prefix_range(const mt_keys *ks, const void *p, size_t pn, size_t *lo, size_t *hi);

/* One key's value in a state. */
typedef struct mt_val {
    uint64_t seed;
    uint32_t len;
    uint8_t present;
} mt_val;

/* Fill buf[0..len) with the bytes of value (seed, len). */
void mt_value_fill(uint64_t seed, uint32_t len, uint8_t *buf);
/* 1 if p[0..n) is exactly value v (present or not is the caller's part). */
int mt_value_eq(const mt_val *v, const void *p, size_t n);
/* A 64-bit hash (FNV-1a) of bytes, and of the bytes of value (seed, len)
 * without materialising them: a value seen in the database is remembered
 * as (len, hash) and matched against the writes that could explain it. */
uint64_t mt_hash(const void *p, size_t n);
uint64_t mt_value_hash(uint64_t seed, uint32_t len);

/* The keys an iterator may show: bounds and prefix each select a contiguous
 * index range, so their intersection is [lo, hi). */
typedef struct mt_view {
    const mt_keys *ks;
    const mt_val *state;
    size_t lo, hi;
} mt_view;

/* A view of state restricted by the (optional, NULL) bounds and prefix. */
void mt_view_init(mt_view *v, const mt_keys *ks, const mt_val *state, const void *lower,
                  size_t lower_n, const void *upper, size_t upper_n, const void *prefix,
                  size_t prefix_n);
/* Positions are key indexes; -1 is "not valid". */
long mt_view_seek(const mt_view *v, const void *t, size_t tn);
long mt_view_seek_for_prev(const mt_view *v, const void *t, size_t tn);
long mt_view_first(const mt_view *v);
long mt_view_last(const mt_view *v);
long mt_view_next(const mt_view *v, long pos);
long mt_view_prev(const mt_view *v, long pos);

/* Lower-case hex of p[0..n) into a static buffer, shortened to the first 64
 * bytes with "..." after: for failure messages only (not thread-safe). */
const char *mt_hex(const void *p, size_t n);

#endif
