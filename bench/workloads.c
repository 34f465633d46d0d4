/*
 * workloads.c - the db_bench-style workloads, written once against the
 * adapter interface so every engine runs the very same loop.
 *
 * Timing covers the operations only. After a workload that writes, the
 * engine's background work (flushes, compactions) is waited for outside the
 * timed region and reported separately as "settle" time, as db_bench does
 * not count it either.
 *
 * Every workload but the two full scans runs on --threads threads: the
 * operations are split between them, each thread with its own seeded key
 * stream (fillseq: its own contiguous range of keys), and the rate is total
 * operations over wall time. Several writers let an engine's group commit
 * show: with --durability=sync, engines that share one log sync between
 * concurrent writers get faster with more threads.
 *
 * Writes go --batch_size operations at a time, each batch one atomic engine
 * write (adapter->write); with a batch size of 1 they are single puts and
 * deletes, as in db_bench.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const char *const names[W_COUNT] = {
    [W_FILLSEQ] = "fillseq",           [W_FILLRANDOM] = "fillrandom",
    [W_OVERWRITE] = "overwrite",       [W_READRANDOM] = "readrandom",
    [W_READMISSING] = "readmissing",   [W_READSEQ] = "readseq",
    [W_READREVERSE] = "readreverse",   [W_SEEKRANDOM] = "seekrandom",
    [W_DELETERANDOM] = "deleterandom", [W_READWHILEWRITING] = "readwhilewriting",
};

const char *bench_workload_name(int w)
{
    return w >= 0 && w < W_COUNT ? names[w] : "?";
}

int bench_workload_parse(const char *name)
{
    for (int w = 0; w < W_COUNT; w++)
        if (strcmp(name, names[w]) == 0)
            return w;
    return -1;
}

int bench_workload_is_fill(int w)
{
    return w == W_FILLSEQ || w == W_FILLRANDOM;
}

int bench_workload_writes(int w)
{
    return w == W_FILLSEQ || w == W_FILLRANDOM || w == W_OVERWRITE || w == W_DELETERANDOM ||
           w == W_READWHILEWRITING;
}

int bench_workload_counts_found(int w)
{
    return w == W_READRANDOM || w == W_READMISSING || w == W_READSEQ || w == W_READREVERSE ||
           w == W_SEEKRANDOM;
}

/* Workloads of `num` writes (readwhilewriting's writer runs until its
 * readers are done instead). */
static int counted_writes(int w)
{
    return w == W_FILLSEQ || w == W_FILLRANDOM || w == W_OVERWRITE || w == W_DELETERANDOM;
}

static int threaded(int w)
{
    return w != W_READSEQ && w != W_READREVERSE;
}

/* One worker's share of a workload. */
typedef struct worker {
    const bench_config *cfg;
    const bench_adapter *ad;
    bench_engine *e;
    const bench_values *vals;
    int w;
    int slot;
    int thread;
    uint64_t ops;   /* operations to do (ignored by scans and the writer) */
    uint64_t first; /* fillseq: index of this thread's first key */
    pthread_barrier_t *start;
    atomic_int *stop; /* readwhilewriting: set when the readers are done */
    /* results */
    int rc;
    char err[256];
    uint64_t t_start, t_end; /* taken by the worker itself */
    uint64_t done;
    uint64_t batches;
    uint64_t bytes;
    uint64_t found;
    unsigned sum; /* see touch() */
    bench_hist hist;
} worker;

/* Values are consumed (first and last byte folded into a per-worker sum,
 * published at the end) so that a zero-copy engine (LMDB) pays for touching
 * the data like the copying ones do, and the compiler cannot drop the reads. */
static atomic_uint sink;

static void touch(worker *wk, const char *v, size_t vl)
{
    if (vl)
        wk->sum += (unsigned char)v[0] ^ (unsigned char)v[vl - 1];
}

/* State of one writing thread: its key stream and a batch's worth of key
 * buffers. */
typedef struct writer {
    bench_rng r;
    size_t pos;     /* cursor in the value buffer */
    uint64_t next;  /* fillseq: next key index */
    char *keys;     /* batch_size keys of key_size bytes */
    bench_wop *ops; /* batch_size operations */
} writer;

static int writer_init(writer *wr, worker *wk, uint64_t thread)
{
    const bench_config *cfg = wk->cfg;
    memset(wr, 0, sizeof *wr);
    bench_rng_init(&wr->r, cfg->seed, (uint64_t)wk->slot, thread);
    wr->next = wk->first;
    wr->keys = malloc((size_t)cfg->batch_size * cfg->key_size);
    wr->ops = malloc((size_t)cfg->batch_size * sizeof *wr->ops);
    if (!wr->keys || !wr->ops)
        return bench_err("out of memory for a batch of %d", cfg->batch_size);
    return 0;
}

static void writer_free(writer *wr)
{
    free(wr->keys);
    free(wr->ops);
}

/* Write n (<= batch_size) operations: one batch, or a single put/delete when
 * the batch size is 1. */
static int write_some(worker *wk, bench_sess *s, writer *wr, size_t n, int del)
{
    const bench_config *cfg = wk->cfg;
    const bench_adapter *ad = wk->ad;
    for (size_t j = 0; j < n; j++) {
        char *key = wr->keys + j * cfg->key_size;
        uint64_t k = wk->w == W_FILLSEQ ? wr->next++ : bench_rng_uniform(&wr->r, cfg->num);
        bench_key(key, cfg->key_size, k);
        bench_wop *op = &wr->ops[j];
        op->k = key;
        op->kl = cfg->key_size;
        op->del = del;
        op->v = del ? NULL : bench_values_next(wk->vals, &wr->pos);
        op->vl = del ? 0 : cfg->value_size;
    }
    int timed = cfg->histogram && wk->thread >= 0;
    uint64_t t0 = timed ? bench_now_ns() : 0;
    int rc;
    if (cfg->batch_size > 1)
        rc = ad->write(s, wr->ops, n);
    else if (del)
        rc = ad->del(s, wr->ops[0].k, wr->ops[0].kl);
    else
        rc = ad->put(s, wr->ops[0].k, wr->ops[0].kl, wr->ops[0].v, wr->ops[0].vl);
    if (rc < 0)
        return -1;
    if (timed) /* per batch when batching */
        bench_hist_add(&wk->hist, bench_now_ns() - t0);
    wk->done += n;
    wk->batches++;
    wk->bytes += n * (cfg->key_size + (del ? 0 : cfg->value_size));
    return 0;
}

static int do_writes(worker *wk, bench_sess *s)
{
    size_t bs = (size_t)wk->cfg->batch_size;
    writer wr;
    int rc = writer_init(&wr, wk, (uint64_t)wk->thread);
    for (uint64_t left = wk->ops; rc == 0 && left > 0;) {
        size_t n = left < bs ? (size_t)left : bs;
        rc = write_some(wk, s, &wr, n, wk->w == W_DELETERANDOM);
        left -= n;
    }
    writer_free(&wr);
    return rc;
}

static int do_reads(worker *wk, bench_sess *s)
{
    const bench_config *cfg = wk->cfg;
    const bench_adapter *ad = wk->ad;
    char key[BENCH_MAX_KEY];
    bench_rng r;
    bench_rng_init(&r, cfg->seed, (uint64_t)wk->slot, (uint64_t)wk->thread);
    int timed = cfg->histogram;
    int missing = wk->w == W_READMISSING;
    for (uint64_t i = 0; i < wk->ops; i++) {
        uint64_t k = bench_rng_uniform(&r, cfg->num);
        if (missing)
            bench_missing_key(key, cfg->key_size, k);
        else
            bench_key(key, cfg->key_size, k);
        uint64_t t0 = timed ? bench_now_ns() : 0;
        const char *v;
        size_t vl;
        int rc = ad->get(s, key, cfg->key_size, &v, &vl);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            touch(wk, v, vl);
            if (vl != cfg->value_size)
                return bench_err("%s: key %.*s has a %zu-byte value, expected %zu", names[wk->w],
                                 (int)cfg->key_size, key, vl, cfg->value_size);
            wk->found++;
            wk->bytes += cfg->key_size + vl;
        }
        if (timed)
            bench_hist_add(&wk->hist, bench_now_ns() - t0);
        wk->done++;
    }
    return 0;
}

/* Account one iterator entry; checks the order so a broken iterator shows up
 * as an error rather than as a fast number. */
static int scan_entry(worker *wk, bench_iter *it, char *prev, int *have_prev, int reverse)
{
    const char *k, *v;
    size_t kl, vl;
    wk->ad->entry(it, &k, &kl, &v, &vl);
    touch(wk, v, vl);
    if (kl != wk->cfg->key_size)
        return bench_err("%s: iterator returned a %zu-byte key", names[wk->w], kl);
    if (*have_prev) {
        int c = memcmp(prev, k, kl);
        if (reverse ? c <= 0 : c >= 0)
            return bench_err("%s: iterator out of order at key %.*s", names[wk->w], (int)kl, k);
    }
    memcpy(prev, k, kl);
    *have_prev = 1;
    wk->bytes += kl + vl;
    return 0;
}

static int do_scan(worker *wk, bench_sess *s)
{
    const bench_adapter *ad = wk->ad;
    int reverse = wk->w == W_READREVERSE;
    int timed = wk->cfg->histogram;
    char prev[BENCH_MAX_KEY];
    int have_prev = 0;
    bench_iter *it;
    if (ad->iter_new(s, &it) < 0)
        return -1;
    int rc = 0;
    uint64_t t0 = timed ? bench_now_ns() : 0;
    if (reverse)
        ad->seek_last(it);
    else
        ad->seek_first(it);
    while (ad->valid(it)) {
        if ((rc = scan_entry(wk, it, prev, &have_prev, reverse)) < 0)
            goto out;
        if (timed) {
            uint64_t t1 = bench_now_ns();
            bench_hist_add(&wk->hist, t1 - t0);
            t0 = t1;
        }
        wk->done++;
        if (reverse)
            ad->prev(it);
        else
            ad->next(it);
    }
    rc = ad->iter_status(it);
    wk->found = wk->done;
out:
    ad->iter_free(it);
    return rc;
}

static int do_seeks(worker *wk, bench_sess *s)
{
    const bench_config *cfg = wk->cfg;
    const bench_adapter *ad = wk->ad;
    char key[BENCH_MAX_KEY], prev[BENCH_MAX_KEY];
    bench_rng r;
    bench_rng_init(&r, cfg->seed, (uint64_t)wk->slot, (uint64_t)wk->thread);
    int timed = cfg->histogram;
    bench_iter *it;
    if (ad->iter_new(s, &it) < 0)
        return -1;
    int rc = 0;
    for (uint64_t i = 0; i < wk->ops; i++) {
        bench_key(key, cfg->key_size, bench_rng_uniform(&r, cfg->num));
        uint64_t t0 = timed ? bench_now_ns() : 0;
        ad->seek(it, key, cfg->key_size);
        if (ad->valid(it))
            wk->found++;
        int have_prev = 0;
        for (int j = 0; j < BENCH_SEEK_NEXTS && ad->valid(it); j++) {
            if ((rc = scan_entry(wk, it, prev, &have_prev, 0)) < 0)
                goto out;
            ad->next(it);
        }
        if ((rc = ad->iter_status(it)) < 0)
            goto out;
        if (timed)
            bench_hist_add(&wk->hist, bench_now_ns() - t0);
        wk->done++;
    }
out:
    ad->iter_free(it);
    return rc;
}

/* readwhilewriting's writer: random overwrites, as fast as the engine takes
 * them (no rate limit), until the readers finish. */
static int do_background_writes(worker *wk, bench_sess *s)
{
    writer wr;
    int rc = writer_init(&wr, wk, 0xffff);
    while (rc == 0 && !atomic_load_explicit(wk->stop, memory_order_relaxed))
        rc = write_some(wk, s, &wr, (size_t)wk->cfg->batch_size, 0);
    writer_free(&wr);
    return rc;
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    bench_sess *s = NULL;
    int rc = wk->ad->sess_new(wk->e, &s);
    /* Everyone meets at the barrier, even after a failure, so the main
     * thread never waits forever. */
    pthread_barrier_wait(wk->start);
    /* The worker clocks itself: the main thread may be descheduled right
     * after the barrier, long enough for a small run to finish. */
    wk->t_start = bench_now_ns();
    if (rc < 0)
        goto out;
    if (wk->stop && wk->thread < 0)
        rc = do_background_writes(wk, s);
    else if (counted_writes(wk->w))
        rc = do_writes(wk, s);
    else if (wk->w == W_READSEQ || wk->w == W_READREVERSE)
        rc = do_scan(wk, s);
    else if (wk->w == W_SEEKRANDOM)
        rc = do_seeks(wk, s);
    else
        rc = do_reads(wk, s);
out:
    wk->t_end = bench_now_ns();
    atomic_fetch_xor_explicit(&sink, wk->sum, memory_order_relaxed);
    if (s)
        wk->ad->sess_free(s);
    wk->rc = rc < 0 ? -1 : 0;
    if (rc < 0)
        snprintf(wk->err, sizeof wk->err, "%s", bench_errmsg());
    return NULL;
}

int bench_run_workload(const bench_config *cfg, const bench_adapter *ad, bench_engine *e,
                       const bench_values *vals, int w, int slot, bench_result *res)
{
    int nmeasured = threaded(w) ? cfg->threads : 1;
    int nworkers = nmeasured + (w == W_READWHILEWRITING ? 1 : 0);
    uint64_t total = counted_writes(w) ? cfg->num : cfg->reads;
    uint64_t first = 0;
    worker *wks = calloc((size_t)nworkers, sizeof *wks);
    pthread_t *tids = calloc((size_t)nworkers, sizeof *tids);
    atomic_int stop = 0;
    pthread_barrier_t start;
    int rc = 0;

    memset(res, 0, sizeof *res);
    res->ran = 1;
    res->settle_secs = -1;
    if (!wks || !tids) {
        snprintf(res->err, sizeof res->err, "out of memory");
        rc = -1;
        goto out;
    }
    pthread_barrier_init(&start, NULL, (unsigned)nworkers + 1);
    for (int i = 0; i < nworkers; i++) {
        worker *wk = &wks[i];
        wk->cfg = cfg;
        wk->ad = ad;
        wk->e = e;
        wk->vals = vals;
        wk->w = w;
        wk->slot = slot;
        wk->start = &start;
        if (i < nmeasured) {
            wk->thread = i;
            wk->ops = total / (uint64_t)nmeasured + ((uint64_t)i < total % (uint64_t)nmeasured);
            wk->first = first; /* fillseq: disjoint ranges, each in order */
            first += wk->ops;
        } else {
            wk->thread = -1; /* the background writer */
            wk->stop = &stop;
        }
        if (pthread_create(&tids[i], NULL, worker_main, wk) != 0) {
            /* Cannot start the barrier party: give up before anyone waits. */
            fprintf(stderr, "talus-bench: cannot create a thread\n");
            exit(2);
        }
    }
    pthread_barrier_wait(&start);
    for (int i = 0; i < nmeasured; i++)
        pthread_join(tids[i], NULL);
    atomic_store(&stop, 1);
    for (int i = nmeasured; i < nworkers; i++)
        pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&start);

    /* Wall time of the measured workers: first start to last end. */
    uint64_t t0 = UINT64_MAX, t1 = 0;
    for (int i = 0; i < nmeasured; i++) {
        if (wks[i].t_start < t0)
            t0 = wks[i].t_start;
        if (wks[i].t_end > t1)
            t1 = wks[i].t_end;
    }
    res->secs = t1 > t0 ? (double)(t1 - t0) / 1e9 : 1e-9;
    for (int i = 0; i < nworkers; i++) {
        worker *wk = &wks[i];
        if (wk->rc < 0 && !res->failed) {
            res->failed = 1;
            snprintf(res->err, sizeof res->err, "%s", wk->err);
        }
        if (wk->thread < 0) {
            res->writes += wk->done;
            res->writer_bytes += wk->bytes;
            res->writer_secs =
                wk->t_end > wk->t_start ? (double)(wk->t_end - wk->t_start) / 1e9 : 1e-9;
            continue;
        }
        res->ops += wk->done;
        res->batches += wk->batches;
        res->bytes += wk->bytes;
        res->found += wk->found;
        bench_hist_merge(&res->hist, &wk->hist);
    }
    if (res->failed)
        rc = -1;

    /* Settle outside the timed region. */
    if (rc == 0 && bench_workload_writes(w)) {
        if (!ad->settle) {
            res->settle_na = 1;
            res->settle_secs = 0;
        } else {
            uint64_t s0 = bench_now_ns();
            if (ad->settle(e) < 0) {
                res->failed = 1;
                snprintf(res->err, sizeof res->err, "settle: %s", bench_errmsg());
                rc = -1;
            }
            res->settle_secs = (double)(bench_now_ns() - s0) / 1e9;
        }
    }
out:
    free(wks);
    free(tids);
    return rc;
}
