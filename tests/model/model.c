/*
 * model.c - the reference model of the randomized engine tests (model.h).
 * Deliberately simple: a sorted array and binary search, so a disagreement
 * with the engine is the engine's bug, not the model's.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t mt_rand(mt_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t mt_below(mt_rng *r, uint64_t n)
{
    return mt_rand(r) % n;
}

int mt_chance(mt_rng *r, unsigned pct)
{
    return mt_below(r, 100) < pct;
}

int mt_cmp(const void *a, size_t an, const void *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

/* Bytes that keys share a lot, so prefixes and ordering edge cases (0x00,
 * 0xff, '/' which the filesystem uses, the 0x7f/0x80 sign boundary) occur. */
static const uint8_t common_bytes[] = {0x00, 0x01, '/', 'a', 'b', 'k', 0x7f, 0x80, 0xfe, 0xff};

static size_t key_len(mt_rng *r, size_t maxlen)
{
    uint64_t p = mt_below(r, 100);
    size_t n;
    if (p < 35)
        n = 1 + mt_below(r, 4);
    else if (p < 80)
        n = 5 + mt_below(r, 12);
    else
        n = 17 + mt_below(r, 48);
    return n > maxlen ? maxlen : n;
}

static struct {
    const mt_keys *ks;
} sort_ctx;

static int cmp_idx(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const mt_keys *ks = sort_ctx.ks;
    return mt_cmp(ks->key[i], ks->len[i], ks->key[j], ks->len[j]);
}

int mt_keys_make(mt_keys *ks, mt_rng *r, size_t n, size_t maxlen)
{
    /* Draw more candidates than needed, sort, drop duplicates, keep a random
     * n of the distinct ones and sort those: no rejection loop needed. */
    size_t cand = n * 2 + 64;
    mt_keys all = {cand, calloc(cand, sizeof(uint8_t *)), calloc(cand, sizeof(size_t))};
    size_t *ci = calloc(cand, sizeof *ci);
    memset(ks, 0, sizeof *ks);
    ks->key = calloc(n, sizeof *ks->key);
    ks->len = calloc(n, sizeof *ks->len);
    if (!ks->key || !ks->len || !ci || !all.key || !all.len)
        goto fail;
    for (size_t i = 0; i < cand; i++) {
        size_t len = key_len(r, maxlen);
        all.key[i] = malloc(len);
        if (all.key[i] == NULL)
            goto fail;
        for (size_t j = 0; j < len; j++) {
            int common = j == 0 ? mt_chance(r, 80) : mt_chance(r, 50);
            all.key[i][j] =
                common ? common_bytes[mt_below(r, sizeof common_bytes)] : (uint8_t)mt_below(r, 256);
        }
        all.len[i] = len;
        ci[i] = i;
    }
    sort_ctx.ks = &all;
    qsort(ci, cand, sizeof *ci, cmp_idx);
    size_t distinct = 0;
    for (size_t i = 0; i < cand; i++)
        if (i == 0 || cmp_idx(&ci[distinct - 1], &ci[i]) != 0)
            ci[distinct++] = ci[i];
    for (size_t i = distinct; i > 1; i--) {
        size_t j = mt_below(r, i), t = ci[i - 1];
        ci[i - 1] = ci[j];
        ci[j] = t;
    }
    size_t have = distinct < n ? distinct : n;
    qsort(ci, have, sizeof *ci, cmp_idx);
    for (size_t i = 0; i < have; i++) {
        ks->key[i] = all.key[ci[i]];
        ks->len[i] = all.len[ci[i]];
        all.key[ci[i]] = NULL; /* moved */
    }
    ks->n = have;
    mt_keys_free(&all);
    free(ci);
    return 0;
fail:
    mt_keys_free(&all);
    free(ci);
    mt_keys_free(ks);
    return -1;
}

void mt_keys_free(mt_keys *ks)
{
    if (ks->key != NULL)
        for (size_t i = 0; i < ks->n; i++)
            free(ks->key[i]);
    free(ks->key);
    free(ks->len);
    memset(ks, 0, sizeof *ks);
}

size_t mt_lower(const mt_keys *ks, const void *t, size_t tn)
{
    size_t lo = 0, hi = ks->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mt_cmp(ks->key[mid], ks->len[mid], t, tn) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t mt_upper(const mt_keys *ks, const void *t, size_t tn)
{
    size_t lo = 0, hi = ks->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mt_cmp(ks->key[mid], ks->len[mid], t, tn) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void mt_prefix_range(const mt_keys *ks, const void *p, size_t pn, size_t *lo, size_t *hi)
{
    size_t i = mt_lower(ks, p, pn);
    *lo = i;
    while (i < ks->n && ks->len[i] >= pn && memcmp(ks->key[i], p, pn) == 0)
        i++;
    *hi = i;
}

void mt_value_fill(uint64_t seed, uint32_t len, uint8_t *buf)
{
    mt_rng r = {seed};
    uint32_t i = 0;
    while (i < len) {
        uint64_t x = mt_rand(&r);
        for (int b = 0; b < 8 && i < len; b++, i++)
            buf[i] = (uint8_t)(x >> (8 * b));
    }
}

int mt_value_eq(const mt_val *v, const void *p, size_t n)
{
    if (n != v->len)
        return 0;
    mt_rng r = {v->seed};
    const uint8_t *b = p;
    size_t i = 0;
    while (i < n) {
        uint64_t x = mt_rand(&r);
        for (int k = 0; k < 8 && i < n; k++, i++)
            if (b[i] != (uint8_t)(x >> (8 * k)))
                return 0;
    }
    return 1;
}

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

uint64_t mt_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

uint64_t mt_value_hash(uint64_t seed, uint32_t len)
{
    mt_rng r = {seed};
    uint64_t h = FNV_OFFSET;
    uint32_t i = 0;
    while (i < len) {
        uint64_t x = mt_rand(&r);
        for (int b = 0; b < 8 && i < len; b++, i++)
            h = (h ^ (uint8_t)(x >> (8 * b))) * FNV_PRIME;
    }
    return h;
}

void mt_view_init(mt_view *v, const mt_keys *ks, const mt_val *state, const void *lower,
                  size_t lower_n, const void *upper, size_t upper_n, const void *prefix,
                  size_t prefix_n)
{
    v->ks = ks;
    v->state = state;
    v->lo = lower ? mt_lower(ks, lower, lower_n) : 0;
    v->hi = upper ? mt_lower(ks, upper, upper_n) : ks->n;
    if (prefix != NULL && prefix_n > 0) {
        size_t plo, phi;
        mt_prefix_range(ks, prefix, prefix_n, &plo, &phi);
        if (plo > v->lo)
            v->lo = plo;
        if (phi < v->hi)
            v->hi = phi;
    }
    if (v->hi < v->lo)
        v->hi = v->lo;
}

static long fwd_from(const mt_view *v, size_t i)
{
    if (i < v->lo)
        i = v->lo;
    for (; i < v->hi; i++)
        if (v->state[i].present)
            return (long)i;
    return -1;
}

/* Last present index in [lo, i), or -1. */
static long back_from(const mt_view *v, size_t i)
{
    if (i > v->hi)
        i = v->hi;
    while (i > v->lo) {
        i--;
        if (v->state[i].present)
            return (long)i;
    }
    return -1;
}

long mt_view_seek(const mt_view *v, const void *t, size_t tn)
{
    return fwd_from(v, mt_lower(v->ks, t, tn));
}

long mt_view_seek_for_prev(const mt_view *v, const void *t, size_t tn)
{
    return back_from(v, mt_upper(v->ks, t, tn));
}

long mt_view_first(const mt_view *v)
{
    return fwd_from(v, v->lo);
}

long mt_view_last(const mt_view *v)
{
    return back_from(v, v->hi);
}

long mt_view_next(const mt_view *v, long pos)
{
    return fwd_from(v, (size_t)pos + 1);
}

long mt_view_prev(const mt_view *v, long pos)
{
    return back_from(v, (size_t)pos);
}

const char *mt_hex(const void *p, size_t n)
{
    static char buf[64 * 2 + 16];
    static const char d[] = "0123456789abcdef";
    const uint8_t *b = p;
    size_t m = n > 64 ? 64 : n, o = 0;
    for (size_t i = 0; i < m; i++) {
        buf[o++] = d[b[i] >> 4];
        buf[o++] = d[b[i] & 15];
    }
    if (m < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    if (n == 0) {
        memcpy(buf, "(empty)", 7);
        o = 7;
    }
    buf[o] = '\0';
    return buf;
}
