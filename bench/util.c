/*
 * util.c - the pieces every workload shares: per-thread error messages, the
 * seeded random streams, key and value generation, the clock and the latency
 * histogram. Nothing here knows about any engine.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* ---- Errors --------------------------------------------------------------- */

static _Thread_local char err_buf[512];

int bench_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

const char *bench_errmsg(void)
{
    return err_buf;
}

/* ---- Random numbers --------------------------------------------------------- */

/* splitmix64: turns (seed, stream, thread) into well-mixed xorshift states,
 * so neighbouring streams are unrelated. */
static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void bench_rng_init(bench_rng *r, uint64_t seed, uint64_t stream, uint64_t thread)
{
    uint64_t s = splitmix(splitmix(splitmix(seed) ^ stream) ^ (thread + 1) * 0x2545f4914f6cdd1dull);
    r->s = s ? s : 1; /* xorshift must not start at 0 */
}

/* xorshift64*: fast, and good enough to pick keys. */
uint64_t bench_rng_next(bench_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

uint64_t bench_rng_uniform(bench_rng *r, uint64_t n)
{
    /* Multiply-shift instead of modulo: unbiased enough for n << 2^64 and
     * much cheaper than a division. */
    return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}

/* ---- Keys --------------------------------------------------------------------- */

static void put_decimal(char *buf, size_t width, uint64_t v)
{
    for (size_t i = width; i > 0; i--) {
        buf[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
}

void bench_key(char *buf, size_t key_size, uint64_t i)
{
    put_decimal(buf, key_size, i);
}

void bench_missing_key(char *buf, size_t key_size, uint64_t i)
{
    put_decimal(buf, key_size - 1, i / 10);
    buf[key_size - 1] = (char)('a' + i % 10);
}

int bench_key_check(size_t key_size, uint64_t num)
{
    uint64_t max = num ? num - 1 : 0;
    size_t digits = 1;
    while (max >= 10) {
        max /= 10;
        digits++;
    }
    if (key_size < 2 || key_size < digits)
        return bench_err("--key_size=%zu is too small for --num=%llu (needs %zu bytes)", key_size,
                         (unsigned long long)num, digits < 2 ? 2 : digits);
    return 0;
}

/* ---- Values -------------------------------------------------------------------- */

/* Fill `len` bytes with a random printable fragment of len*ratio bytes
 * repeated, as db_bench does: a compressor keeps about `ratio` of it. */
static void compressible(bench_rng *r, double ratio, char *dst, size_t len)
{
    size_t raw = (size_t)(len * ratio);
    if (raw < 1)
        raw = 1;
    if (raw > len)
        raw = len;
    for (size_t i = 0; i < raw; i++)
        dst[i] = (char)(' ' + bench_rng_uniform(r, 95));
    for (size_t i = raw; i < len; i++)
        dst[i] = dst[i - raw];
}

int bench_values_init(bench_values *vs, uint64_t seed, double ratio, size_t value_size)
{
    const size_t frag = 100;
    size_t size = 1u << 20;
    if (size < 2 * value_size)
        size = 2 * value_size;
    vs->data = malloc(size);
    if (!vs->data)
        return bench_err("out of memory for %zu bytes of values", size);
    vs->size = size;
    vs->value_size = value_size;
    bench_rng r;
    bench_rng_init(&r, seed, 0x76616c7565ull, 0);
    for (size_t off = 0; off < size; off += frag)
        compressible(&r, ratio, vs->data + off, size - off < frag ? size - off : frag);
    return 0;
}

void bench_values_free(bench_values *vs)
{
    free(vs->data);
    vs->data = NULL;
}

const char *bench_values_next(const bench_values *vs, size_t *pos)
{
    if (*pos + vs->value_size > vs->size)
        *pos = 0;
    const char *v = vs->data + *pos;
    *pos += vs->value_size;
    return v;
}

/* ---- Time and histogram --------------------------------------------------------- */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Bucket of v: values below 8 get their own bucket; above, the power of two
 * and the next 3 bits pick one of 8 sub-buckets. */
static unsigned hist_bucket(uint64_t v)
{
    if (v < 8)
        return (unsigned)v;
    unsigned lg = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (lg - 3)) & 7u;
    unsigned b = (lg - 2) * 8 + sub;
    return b < BENCH_HIST_BUCKETS ? b : BENCH_HIST_BUCKETS - 1;
}

/* Largest value that falls in bucket b. */
static double hist_upper(unsigned b)
{
    if (b < 8)
        return b;
    unsigned lg = b / 8 + 2;
    unsigned sub = b % 8;
    return ldexp(8.0 + sub + 1, (int)lg - 3) - 1;
}

void bench_hist_add(bench_hist *h, uint64_t ns)
{
    h->count++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
    h->buckets[hist_bucket(ns)]++;
}

void bench_hist_merge(bench_hist *dst, const bench_hist *src)
{
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

double bench_hist_quantile(const bench_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->count);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= want) {
            double u = hist_upper(i);
            return u < (double)h->max_ns ? u : (double)h->max_ns;
        }
    }
    return (double)h->max_ns;
}
