/*
 * bench_memtable.c - insert and lookup cost of the memtable, the write hot
 * path: N random (or sequential) 16-byte keys with 100-byte values, from one
 * thread and from several. Prints ns per operation. Not a test: run it by
 * hand, `tests/unit/bench_memtable [N] [threads] [fillrandom]`.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memtable/memtable.h"

enum { KEY_LEN = 16, VALUE_LEN = 100 };

/* Single-threaded runs are timed in thread CPU time, which a shared,
 * busy machine disturbs much less than wall time; multi-threaded runs
 * report wall time. */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static uint8_t *make_keys(size_t n, int sequential)
{
    uint8_t *keys = malloc(n * KEY_LEN);
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (size_t i = 0; i < n; i++) {
        uint8_t *k = keys + i * KEY_LEN;
        if (sequential) {
            /* big-endian counter: byte order equals numeric order */
            memset(k, '0', KEY_LEN);
            for (int b = 0; b < 8; b++)
                k[KEY_LEN - 1 - b] = (uint8_t)(i >> (8 * b));
        } else {
            for (int b = 0; b < KEY_LEN; b += 8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(k + b, &x, 8);
            }
        }
    }
    return keys;
}

typedef struct job {
    mt_memtable *m;
    const uint8_t *keys;
    size_t from, to;
} job;

static void *fill(void *p)
{
    job *j = p;
    uint8_t value[VALUE_LEN];
    memset(value, 'v', sizeof(value));
    for (size_t i = j->from; i < j->to; i++) {
        if (mt_add(j->m, i + 1, 1, tl_slice_make(j->keys + i * KEY_LEN, KEY_LEN),
                   tl_slice_make(value, VALUE_LEN)) != 0) {
            fprintf(stderr, "mt_add failed\n");
            exit(1);
        }
    }
    return NULL;
}

static mt_memtable *run_fill(const char *name, const uint8_t *keys, size_t n, int threads)
{
    mt_memtable *m = mt_new();
    pthread_t th[64];
    job jobs[64];
    double t0 = threads == 1 ? cpu_ns() : now_ns();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){m, keys, n * t / threads, n * (t + 1) / threads};
        if (threads == 1)
            fill(&jobs[t]);
        else
            pthread_create(&th[t], NULL, fill, &jobs[t]);
    }
    if (threads > 1)
        for (int t = 0; t < threads; t++)
            pthread_join(th[t], NULL);
    double dt = (threads == 1 ? cpu_ns() : now_ns()) - t0;
    printf("%-12s %d thread(s): %8.1f ns/insert  (%.2f M inserts/s, %.1f MiB)\n", name, threads,
           dt / n, n / dt * 1e3, mt_bytes(m) / 1048576.0);
    return m;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    if (threads < 1 || threads > 64)
        threads = 2;
    uint8_t *rkeys = make_keys(n, 0);
    uint8_t *skeys = make_keys(n, 1);
    if (argc > 3 && strcmp(argv[3], "fillrandom") == 0) { /* only this, e.g. for cachegrind */
        mt_unref(run_fill("fillrandom", rkeys, n, 1));
        free(rkeys);
        free(skeys);
        return 0;
    }

    mt_memtable *m = run_fill("fillrandom", rkeys, n, 1);
    /* Lookups of present keys, in insertion (random) order. */
    double t0 = cpu_ns();
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        tl_slice v;
        found +=
            mt_get(m, tl_slice_make(rkeys + i * KEY_LEN, KEY_LEN), UINT64_MAX, NULL, &v, NULL) == 1;
    }
    double dt = cpu_ns() - t0;
    printf("%-12s 1 thread(s): %8.1f ns/get     (%zu/%zu found)\n", "getrandom", dt / n, found, n);
    mt_unref(m);
    mt_unref(run_fill("fillseq", skeys, n, 1));
    mt_unref(run_fill("fillrandom", rkeys, n, threads));
    mt_unref(run_fill("fillseq", skeys, n, threads));
    free(rkeys);
    free(skeys);
    return 0;
}
