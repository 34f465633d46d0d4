/*
 * bench_table.c - micro-benchmark of one table (not run by `make check`):
 * build speed, point gets from a warm block cache and from the OS page
 * cache, misses (bloom), and scans in both directions.
 *
 *   tests/unit/bench_table [entries] [compression 0|1|2] [dir]
 *
 * db_bench-like data: 16-byte keys, 100-byte values (half compressible).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "table/table.h"
#include "util/err.h"
#include "util/ikey.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void die(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %d %s\n", what, rc, tl_errmsg());
        exit(1);
    }
}

static size_t make_key(uint8_t *dst, uint64_t i, uint64_t seq)
{
    char uk[32];
    snprintf(uk, sizeof uk, "%016llu", (unsigned long long)i);
    return tl_ikey_encode(dst, (const uint8_t *)uk, 16, seq, TL_TYPE_VALUE);
}

static void run_gets(tbl_reader *r, uint64_t n, uint64_t count, bool missing, const char *label)
{
    tl_buf v = {0};
    uint8_t type;
    uint64_t seq;
    uint64_t found = 0;
    double t0 = now();
    for (uint64_t q = 0; q < count; q++) {
        char uk[32];
        uint64_t i = xorshift() % n;
        snprintf(uk, sizeof uk, missing ? "%016llu!" : "%016llu", (unsigned long long)i);
        int rc =
            tbl_reader_get(r, tl_slice_make(uk, missing ? 17 : 16), TL_SEQ_MAX, &type, &v, &seq);
        die(rc, "get");
        found += (uint64_t)rc;
    }
    double dt = now() - t0;
    printf("%-34s %8.0f ns/op  (%llu of %llu found)\n", label, dt * 1e9 / (double)count,
           (unsigned long long)found, (unsigned long long)count);
    tl_buf_free(&v);
}

static void run_scan(tbl_reader *r, bool reverse, const char *label)
{
    tl_iter *it = tbl_reader_iter(r, true);
    uint64_t n = 0, bytes = 0;
    double t0 = now();
    if (reverse) {
        for (tl_iter_seek_last(it); tl_iter_valid(it); tl_iter_prev(it), n++)
            bytes += tl_iter_key(it).len + tl_iter_value(it).len;
    } else {
        for (tl_iter_seek_first(it); tl_iter_valid(it); tl_iter_next(it), n++)
            bytes += tl_iter_key(it).len + tl_iter_value(it).len;
    }
    double dt = now() - t0;
    die(tl_iter_status(it), "scan");
    tl_iter_destroy(it);
    printf("%-34s %8.1f ns/entry (%.0f MB/s)\n", label, dt * 1e9 / (double)n,
           (double)bytes / dt / 1e6);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
    int comp = argc > 2 ? atoi(argv[2]) : TALUS_COMPRESS_NONE;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    char path[512];
    tbl_file_name(path, sizeof path, dir, 999999);
    tl_env *env = tl_env_posix();

    uint8_t val[100];
    uint8_t key[64];
    tbl_options o;
    tbl_options_init(&o);
    o.compression = comp;
    tl_file *f;
    die(tl_env_open_write(env, path, &f), "open");
    tbl_builder *b;
    die(tbl_builder_new(&o, f, &b), "builder");
    double t0 = now();
    for (uint64_t i = 0; i < n; i++) {
        /* Half random, half repeated: compresses to about 50%. */
        for (int j = 0; j < 50; j += 8) {
            uint64_t x = xorshift();
            memcpy(val + j, &x, 8);
        }
        memset(val + 50, 'v', 50);
        size_t kl = make_key(key, i, i + 1);
        die(tbl_builder_add(b, tl_slice_make(key, kl), tl_slice_make(val, sizeof val)), "add");
    }
    tbl_props p;
    die(tbl_builder_finish(b, &p), "finish");
    double dt = now() - t0;
    tbl_builder_free(b);
    die(tl_file_close(f), "close");
    double raw = (double)(p.raw_key_bytes + p.raw_value_bytes);
    printf("build %llu entries, compression %d: %.2f s, %.1f MB/s of input, file %.1f MB "
           "(%llu blocks)\n",
           (unsigned long long)n, comp, dt, raw / dt / 1e6, (double)p.file_size / 1e6,
           (unsigned long long)p.num_data_blocks);
    tbl_props_free(&p);

    uint64_t size;
    die(tl_env_file_size(env, path, &size), "size");
    tl_cache *cache = tl_cache_new(1u << 30);
    tbl_reader *r;
    die(tl_env_open_read(env, path, &f), "open");
    die(tbl_reader_open(f, path, size, cache, &r), "reader");
    run_scan(r, false, "scan (cold cache, fills it)");
    run_scan(r, false, "scan forward (block cache)");
    run_scan(r, true, "scan reverse (block cache)");
    uint64_t q = n < 1000000 ? n : 1000000;
    run_gets(r, n, q, false, "get hit (warm block cache)");
    run_gets(r, n, q, true, "get miss (bloom)");
    tbl_reader_free(r);

    die(tl_env_open_read(env, path, &f), "open");
    die(tbl_reader_open(f, path, size, NULL, &r), "reader");
    run_gets(r, n, q, false, "get hit (no block cache, OS cache)");
    run_scan(r, false, "scan forward (no block cache)");
    tbl_reader_free(r);
    tl_cache_free(cache);
    if (!getenv("KEEP"))
        tl_env_remove(env, path);
    return 0;
}
