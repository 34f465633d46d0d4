/*
 * report.c - what talus-bench prints: the configuration, one table with a
 * row per workload and a column group per engine (with each peer's ratio to
 * Talus), the settle times, latency percentiles, a cross-engine check of
 * found counts, what differs between the engines, the thread scaling of
 * --compare_threads, and the same numbers as JSON.
 *
 * readwhilewriting gets two rows: the readers' gets, and its one writer's
 * puts (timed on their own), so a writer that starves the readers, or the
 * other way round, shows in both numbers.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "bench.h"

#define OPS_W 9
#define MBS_W 7
#define RATIO_W 7
#define NAME_W 16

const char *bench_compression_name(int c)
{
    static const char *const n[] = {"none", "lz4", "zstd"};
    return c >= 0 && c <= 2 ? n[c] : "?";
}

const char *bench_durability_name(int d)
{
    static const char *const n[] = {"none", "buffered", "sync"};
    return d >= 0 && d <= 2 ? n[d] : "?";
}

static double ops_per_sec(const bench_result *r)
{
    return r->secs > 0 ? (double)r->ops / r->secs : 0;
}

static double mb_per_sec(const bench_result *r)
{
    return r->secs > 0 ? (double)r->bytes / r->secs / 1048576.0 : 0;
}

static double batches_per_sec(const bench_result *r)
{
    return r->secs > 0 ? (double)r->batches / r->secs : 0;
}

/* readwhilewriting's writer */
static double writer_ops_per_sec(const bench_result *r)
{
    return r->writer_secs > 0 ? (double)r->writes / r->writer_secs : 0;
}

static double writer_mb_per_sec(const bench_result *r)
{
    return r->writer_secs > 0 ? (double)r->writer_bytes / r->writer_secs / 1048576.0 : 0;
}

/* The rate of a table row: the workload's operations, or (writer set)
 * readwhilewriting's writer. */
static double row_ops(const bench_result *r, int writer)
{
    return writer ? writer_ops_per_sec(r) : ops_per_sec(r);
}

static int ok(const bench_result *r)
{
    return r->ran && !r->failed;
}

/* Index of the Talus column, or -1. */
static int talus_col(const bench_run *run)
{
    for (int e = 0; e < run->nengines; e++)
        if (strcmp(run->engines[e]->name, "talus") == 0)
            return e;
    return -1;
}

/* A footnote mark for engines that cannot honour the durability asked for. */
static const char *mark(const bench_run *run, int e)
{
    return run->cfg->durability < run->engines[e]->min_durability ? "*" : "";
}

static void size_str(char *buf, size_t n, size_t v)
{
    if (v >= (1u << 20) && v % (1u << 20) == 0)
        snprintf(buf, n, "%zu MiB", v >> 20);
    else if (v >= 1024 && v % 1024 == 0)
        snprintf(buf, n, "%zu KiB", v >> 10);
    else
        snprintf(buf, n, "%zu B", v);
}

void bench_print_config(const bench_run *run)
{
    const bench_config *c = run->cfg;
    char wb[32], cache[32];
    size_str(wb, sizeof wb, c->write_buffer_size);
    size_str(cache, sizeof cache, c->cache_size);
    printf("talus-bench   %s\n", run->started);
    printf("  keys        %llu (reads %llu), key %zu B, value %zu B (compressible to %.2f)\n",
           (unsigned long long)c->num, (unsigned long long)c->reads, c->key_size, c->value_size,
           c->compression_ratio);
    printf("  engines     block %zu B, bloom %d bits/key, write buffer %s, block cache %s,\n",
           c->block_size, c->bloom_bits, wb, cache);
    char threads[128] = "";
    if (c->ncompare) {
        size_t len = 0;
        for (int i = 0; i < c->ncompare && len < sizeof threads; i++)
            len += (size_t)snprintf(threads + len, sizeof threads - len, "%s%d", i ? "," : "",
                                    c->compare_threads[i]);
    } else {
        snprintf(threads, sizeof threads, "%d", c->threads);
    }
    printf("              compression %s, durability %s, seed %llu\n",
           bench_compression_name(c->compression), bench_durability_name(c->durability),
           (unsigned long long)c->seed);
    if (c->min_blob_size)
        printf("              key-value separation from %zu B values\n", c->min_blob_size);
    printf("  writes      batch size %d, threads %s%s\n", c->batch_size, threads,
           c->ncompare ? " (each count in turn)" : "");
    printf("  versions   ");
    for (int e = 0; e < run->nengines; e++)
        printf(" %s %s%s", run->engines[e]->name, run->versions[e],
               e + 1 < run->nengines ? "," : "");
    printf("\n  directory   %s\n\n", c->db);
}

static void print_header(const bench_run *run, int tc)
{
    printf("%-*s", NAME_W, "");
    for (int e = 0; e < run->nengines; e++) {
        int w = OPS_W + 1 + MBS_W + (tc >= 0 && e != tc ? 1 + RATIO_W : 0);
        char title[64];
        snprintf(title, sizeof title, "%s%s", run->engines[e]->name, mark(run, e));
        printf(" |%*s", w, title);
    }
    printf("\n%-*s", NAME_W, "workload");
    for (int e = 0; e < run->nengines; e++) {
        printf(" |%*s %*s", OPS_W, "ops/s", MBS_W, "MB/s");
        if (tc >= 0 && e != tc)
            printf(" %*s", RATIO_W, "ratio");
    }
    printf("\n");
}

static void print_cell(const bench_run *run, int slot, int e, int tc, int writer)
{
    const bench_result *r = &run->results[slot][e];
    int ratio = tc >= 0 && e != tc;
    char ops[32], mbs[32], rat[32] = "";
    if (!r->ran) {
        snprintf(ops, sizeof ops, "-");
        snprintf(mbs, sizeof mbs, "-");
        snprintf(rat, sizeof rat, "-");
    } else if (r->failed) {
        snprintf(ops, sizeof ops, "error");
        snprintf(mbs, sizeof mbs, "-");
        snprintf(rat, sizeof rat, "-");
    } else {
        snprintf(ops, sizeof ops, "%.0f", row_ops(r, writer));
        if (writer ? r->writer_bytes != 0 : r->bytes != 0)
            snprintf(mbs, sizeof mbs, "%.1f", writer ? writer_mb_per_sec(r) : mb_per_sec(r));
        else
            snprintf(mbs, sizeof mbs, "-");
        const bench_result *t = &run->results[slot][tc >= 0 ? tc : 0];
        if (ratio && ok(t) && row_ops(t, writer) > 0)
            snprintf(rat, sizeof rat, "%.2fx", row_ops(r, writer) / row_ops(t, writer));
        else
            snprintf(rat, sizeof rat, "-");
    }
    printf(" |%*s %*s", OPS_W, ops, MBS_W, mbs);
    if (ratio)
        printf(" %*s", RATIO_W, rat);
}

/* With --batch_size > 1: engine write calls per second of each write
 * workload (ops/s above counts the operations inside them). */
static void print_batches(const bench_run *run)
{
    const bench_config *c = run->cfg;
    if (c->batch_size <= 1)
        return;
    printf("\nbatches/s: batches of %d operations per second (ops/s counts the operations)\n",
           c->batch_size);
    printf("%-*s", NAME_W, "workload");
    for (int e = 0; e < run->nengines; e++)
        printf(" %10s", run->engines[e]->name);
    printf("\n");
    for (int s = 0; s < c->nworkloads; s++) {
        int w = c->workloads[s];
        if (!bench_workload_writes(w) || w == W_READWHILEWRITING)
            continue;
        printf("%-*s", NAME_W, bench_workload_name(w));
        for (int e = 0; e < run->nengines; e++) {
            const bench_result *r = &run->results[s][e];
            if (!ok(r))
                printf(" %10s", "-");
            else
                printf(" %10.0f", batches_per_sec(r));
        }
        printf("\n");
    }
}

static void print_settle(const bench_run *run)
{
    const bench_config *c = run->cfg;
    int any = 0;
    for (int s = 0; s < c->nworkloads; s++)
        any |= bench_workload_writes(c->workloads[s]);
    if (!any)
        return;
    printf("\nsettle: seconds of background work (flush, compaction) waited for after each\n"
           "write workload, outside the timings above (n/a: the engine cannot wait for it)\n");
    printf("%-*s", NAME_W, "workload");
    for (int e = 0; e < run->nengines; e++)
        printf(" %10s", run->engines[e]->name);
    printf("\n");
    for (int s = 0; s < c->nworkloads; s++) {
        if (!bench_workload_writes(c->workloads[s]))
            continue;
        printf("%-*s", NAME_W, bench_workload_name(c->workloads[s]));
        for (int e = 0; e < run->nengines; e++) {
            const bench_result *r = &run->results[s][e];
            if (!ok(r))
                printf(" %10s", "-");
            else if (r->settle_na)
                printf(" %10s", "n/a");
            else
                printf(" %10.2f", r->settle_secs);
        }
        printf("\n");
    }
}

static void print_latency(const bench_run *run)
{
    const bench_config *c = run->cfg;
    printf("\nlatency per operation, microseconds (p50 / p99)");
    if (c->batch_size > 1)
        printf("; writes: per batch of %d", c->batch_size);
    printf("\n%-*s", NAME_W, "workload");
    for (int e = 0; e < run->nengines; e++)
        printf(" |%17s", run->engines[e]->name);
    printf("\n");
    for (int s = 0; s < c->nworkloads; s++) {
        printf("%-*s", NAME_W, bench_workload_name(c->workloads[s]));
        for (int e = 0; e < run->nengines; e++) {
            const bench_result *r = &run->results[s][e];
            if (!ok(r) || r->hist.count == 0) {
                printf(" |%17s", "-");
                continue;
            }
            printf(" |%8.2f %8.2f", bench_hist_quantile(&r->hist, 0.50) / 1e3,
                   bench_hist_quantile(&r->hist, 0.99) / 1e3);
        }
        printf("\n");
    }
}

/* The engines ran the same operations on the same data: what reads found
 * must agree, or one of them is wrong. Classifies slot s: FOUND_SKIP (no
 * count, or no engine ran it), FOUND_AGREE, FOUND_EXPECTED (differ, but a
 * readwhilewriting ran before, whose number of writes depends on speed) or
 * FOUND_MISMATCH. *first gets the first engine that ran it. */
enum { FOUND_SKIP, FOUND_AGREE, FOUND_EXPECTED, FOUND_MISMATCH };

static int found_state(const bench_run *run, int s, int *first)
{
    const bench_config *c = run->cfg;
    if (!bench_workload_counts_found(c->workloads[s]))
        return FOUND_SKIP;
    int after_rww = 0;
    for (int i = 0; i < s; i++) {
        if (c->workloads[i] == W_READWHILEWRITING)
            after_rww = 1;
        if (bench_workload_is_fill(c->workloads[i]))
            after_rww = 0;
    }
    int agree = 1;
    *first = -1;
    for (int e = 0; e < run->nengines; e++) {
        if (!ok(&run->results[s][e]))
            continue;
        if (*first < 0)
            *first = e;
        else if (run->results[s][e].found != run->results[s][*first].found)
            agree = 0;
    }
    if (*first < 0)
        return FOUND_SKIP;
    return agree ? FOUND_AGREE : after_rww ? FOUND_EXPECTED : FOUND_MISMATCH;
}

int bench_found_mismatches(const bench_run *run)
{
    int n = 0, first;
    for (int s = 0; s < run->cfg->nworkloads; s++)
        n += found_state(run, s, &first) == FOUND_MISMATCH;
    return n;
}

static void print_found(const bench_run *run)
{
    const bench_config *c = run->cfg;
    int header = 0;
    for (int s = 0; s < c->nworkloads; s++) {
        int first;
        int st = found_state(run, s, &first);
        if (st == FOUND_SKIP)
            continue;
        if (!header) {
            printf("\nfound (the same operations ran on every engine)\n");
            header = 1;
        }
        const bench_result *f = &run->results[s][first];
        printf("  %-*s", NAME_W - 2, bench_workload_name(c->workloads[s]));
        if (st == FOUND_AGREE) {
            printf("%llu of %llu\n", (unsigned long long)f->found, (unsigned long long)f->ops);
            continue;
        }
        printf("%s:", st == FOUND_EXPECTED ? "differ (expected after readwhilewriting)"
                                           : "WARNING: engines disagree");
        for (int e = 0; e < run->nengines; e++)
            if (ok(&run->results[s][e]))
                printf(" %s %llu", run->engines[e]->name,
                       (unsigned long long)run->results[s][e].found);
        printf("\n");
    }
}

void bench_print_differs(const bench_run *run)
{
    printf("what differs between the engines\n");
    for (int e = 0; e < run->nengines; e++) {
        char buf[1024];
        run->engines[e]->differs(run->cfg, buf, sizeof buf);
        const char *p = buf;
        int first = 1;
        while (*p) {
            const char *nl = strchr(p, '\n');
            int len = nl ? (int)(nl - p) : (int)strlen(p);
            printf("  %-9s %.*s\n", first ? run->engines[e]->name : "", len, p);
            first = 0;
            p += len + (nl ? 1 : 0);
        }
    }
}

void bench_print_table(const bench_run *run)
{
    const bench_config *c = run->cfg;
    int tc = talus_col(run);
    int rww = 0;
    print_header(run, tc);
    for (int s = 0; s < c->nworkloads; s++) {
        printf("%-*s", NAME_W, bench_workload_name(c->workloads[s]));
        for (int e = 0; e < run->nengines; e++)
            print_cell(run, s, e, tc, 0);
        printf("\n");
        if (c->workloads[s] != W_READWHILEWRITING)
            continue;
        rww = 1;
        printf("%-*s", NAME_W, "  writer");
        for (int e = 0; e < run->nengines; e++)
            print_cell(run, s, e, tc, 1);
        printf("\n");
    }
    if (tc >= 0)
        printf("ratio: the peer's ops/s divided by Talus's (above 1: the peer is faster)\n");
    if (rww)
        printf("readwhilewriting: the readers' gets (%d thread%s); 'writer': its one writer\n"
               "thread's puts over the same time, not rate-limited\n",
               c->threads, c->threads > 1 ? "s" : "");
    for (int e = 0; e < run->nengines; e++)
        if (*mark(run, e))
            printf("* %s always writes its %s: durability %s ran as %s\n", run->engines[e]->name,
                   strcmp(run->engines[e]->name, "lmdb") == 0 ? "data file" : "log",
                   bench_durability_name(c->durability),
                   bench_durability_name(run->engines[e]->min_durability));
    print_batches(run);
    print_settle(run);
    if (c->histogram)
        print_latency(run);
    print_found(run);
    for (int s = 0; s < c->nworkloads; s++)
        for (int e = 0; e < run->nengines; e++)
            if (run->results[s][e].failed)
                printf("\nerror: %s %s: %s", run->engines[e]->name,
                       bench_workload_name(c->workloads[s]), run->results[s][e].err);
    printf("\n");
}

/* One cell of the scaling table: ops/s of workload s (or its writer) on
 * engine e in run k, or -1 when it did not run cleanly. */
static double scaling_ops(const bench_run *runs, int k, int s, int e, int writer)
{
    const bench_result *r = &runs[k].results[s][e];
    return ok(r) ? row_ops(r, writer) : -1;
}

static void print_scaling_row(const bench_run *runs, int nruns, int s, int writer)
{
    const bench_config *c = runs[0].cfg;
    printf("%-*s", NAME_W, writer ? "  writer" : bench_workload_name(c->workloads[s]));
    for (int e = 0; e < runs[0].nengines; e++) {
        printf(" |");
        for (int k = 0; k < nruns; k++) {
            double v = scaling_ops(runs, k, s, e, writer);
            if (v < 0)
                printf(" %*s", OPS_W, "-");
            else
                printf(" %*.0f", OPS_W, v);
        }
        double a = scaling_ops(runs, 0, s, e, writer);
        double b = scaling_ops(runs, nruns - 1, s, e, writer);
        if (a > 0 && b >= 0)
            printf(" %6.2fx", b / a);
        else
            printf(" %7s", "-");
    }
    printf("\n");
}

void bench_print_scaling(const bench_run *runs, int nruns)
{
    const bench_config *c = runs[0].cfg;
    int first = runs[0].cfg->threads, last = runs[nruns - 1].cfg->threads;
    printf("thread scaling: ops/s at each thread count; speedup = ops/s at %d threads\n"
           "divided by ops/s at %d (with durability sync, above 1 means group commit)\n",
           last, first);
    printf("%-*s", NAME_W, "");
    for (int e = 0; e < runs[0].nengines; e++)
        printf(" |%*s", nruns * (OPS_W + 1) + 8, runs[0].engines[e]->name);
    printf("\n%-*s", NAME_W, "workload");
    for (int e = 0; e < runs[0].nengines; e++) {
        printf(" |");
        for (int k = 0; k < nruns; k++) {
            char h[32];
            snprintf(h, sizeof h, "%d thr", runs[k].cfg->threads);
            printf(" %*s", OPS_W, h);
        }
        printf(" %7s", "speedup");
    }
    printf("\n");
    for (int s = 0; s < c->nworkloads; s++) {
        print_scaling_row(runs, nruns, s, 0);
        if (c->workloads[s] == W_READWHILEWRITING)
            print_scaling_row(runs, nruns, s, 1);
    }
    printf("\n");
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_result(FILE *f, const bench_run *run, int s, int e, int tc)
{
    const bench_result *r = &run->results[s][e];
    fprintf(f, "        ");
    json_str(f, run->engines[e]->name);
    fprintf(f, ": {\"ran\": %s", r->ran ? "true" : "false");
    if (!r->ran) {
        fprintf(f, "}");
        return;
    }
    if (r->failed) {
        fprintf(f, ", \"error\": ");
        json_str(f, r->err);
        fprintf(f, "}");
        return;
    }
    fprintf(f,
            ", \"ops\": %llu, \"bytes\": %llu, \"seconds\": %.6f, \"ops_per_sec\": %.1f, "
            "\"mb_per_sec\": %.3f, \"found\": %llu",
            (unsigned long long)r->ops, (unsigned long long)r->bytes, r->secs, ops_per_sec(r),
            mb_per_sec(r), (unsigned long long)r->found);
    if (r->batches)
        fprintf(f, ", \"batches\": %llu, \"batches_per_sec\": %.1f", (unsigned long long)r->batches,
                batches_per_sec(r));
    const bench_result *t = tc >= 0 ? &run->results[s][tc] : NULL;
    int vs_talus = t && e != tc && ok(t);
    if (run->cfg->workloads[s] == W_READWHILEWRITING) {
        fprintf(f,
                ", \"background_writes\": %llu, \"writer\": {\"ops\": %llu, \"bytes\": %llu, "
                "\"seconds\": %.6f, \"ops_per_sec\": %.1f, \"mb_per_sec\": %.3f",
                (unsigned long long)r->writes, (unsigned long long)r->writes,
                (unsigned long long)r->writer_bytes, r->writer_secs, writer_ops_per_sec(r),
                writer_mb_per_sec(r));
        if (vs_talus && writer_ops_per_sec(t) > 0)
            fprintf(f, ", \"ratio_to_talus\": %.4f", writer_ops_per_sec(r) / writer_ops_per_sec(t));
        fprintf(f, "}");
    }
    if (r->settle_secs >= 0) {
        if (r->settle_na)
            fprintf(f, ", \"settle_seconds\": null");
        else
            fprintf(f, ", \"settle_seconds\": %.6f", r->settle_secs);
    }
    if (vs_talus && ops_per_sec(t) > 0)
        fprintf(f, ", \"ratio_to_talus\": %.4f", ops_per_sec(r) / ops_per_sec(t));
    if (r->hist.count)
        fprintf(f,
                ", \"latency_us\": {\"per\": \"%s\", \"count\": %llu, \"mean\": %.3f, "
                "\"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f}",
                r->batches && run->cfg->batch_size > 1 ? "batch" : "operation",
                (unsigned long long)r->hist.count, (double)r->hist.sum_ns / r->hist.count / 1e3,
                bench_hist_quantile(&r->hist, 0.5) / 1e3, bench_hist_quantile(&r->hist, 0.99) / 1e3,
                bench_hist_quantile(&r->hist, 0.999) / 1e3, (double)r->hist.max_ns / 1e3);
    fprintf(f, "}");
}

/* "thread_scaling" of --compare_threads: per workload and engine, ops/s at
 * each count and the speedup of the last over the first. */
static void json_scaling(FILE *f, const bench_run *runs, int nruns)
{
    const bench_config *c = runs[0].cfg;
    fprintf(f, ",\n  \"thread_scaling\": [");
    int n = 0;
    for (int s = 0; s < c->nworkloads; s++) {
        for (int writer = 0; writer <= (c->workloads[s] == W_READWHILEWRITING); writer++) {
            for (int e = 0; e < runs[0].nengines; e++) {
                fprintf(f,
                        "%s\n    {\"workload\": \"%s\", \"slot\": %d, \"engine\": ", n++ ? "," : "",
                        bench_workload_name(c->workloads[s]), s);
                json_str(f, runs[0].engines[e]->name);
                fprintf(f, ", \"part\": \"%s\", \"threads\": [", writer ? "writer" : "main");
                for (int k = 0; k < nruns; k++)
                    fprintf(f, "%s%d", k ? ", " : "", runs[k].cfg->threads);
                fprintf(f, "], \"ops_per_sec\": [");
                for (int k = 0; k < nruns; k++) {
                    double v = scaling_ops(runs, k, s, e, writer);
                    if (v < 0)
                        fprintf(f, "%snull", k ? ", " : "");
                    else
                        fprintf(f, "%s%.1f", k ? ", " : "", v);
                }
                double a = scaling_ops(runs, 0, s, e, writer);
                double b = scaling_ops(runs, nruns - 1, s, e, writer);
                if (a > 0 && b >= 0)
                    fprintf(f, "], \"speedup\": %.4f}", b / a);
                else
                    fprintf(f, "], \"speedup\": null}");
            }
        }
    }
    fprintf(f, "\n  ]");
}

int bench_write_json(const bench_run *runs, int nruns, const char *path)
{
    const bench_run *run = &runs[0];
    const bench_config *c = run->cfg;
    FILE *f = fopen(path, "w");
    if (!f)
        return bench_err("cannot write %s", path);
    int tc = talus_col(run);
    fprintf(f, "{\n  \"tool\": \"talus-bench\",\n  \"started\": ");
    json_str(f, run->started);
    fprintf(f,
            ",\n  \"config\": {\"num\": %llu, \"reads\": %llu, \"key_size\": %zu, "
            "\"value_size\": %zu, \"compression_ratio\": %.3f, \"compression\": \"%s\", "
            "\"bloom_bits\": %d, \"block_size\": %zu, \"write_buffer_size\": %zu, "
            "\"cache_size\": %zu, \"min_blob_size\": %zu, \"durability\": \"%s\", "
            "\"batch_size\": %d, "
            "\"threads\": %d, \"compare_threads\": ",
            (unsigned long long)c->num, (unsigned long long)c->reads, c->key_size, c->value_size,
            c->compression_ratio, bench_compression_name(c->compression), c->bloom_bits,
            c->block_size, c->write_buffer_size, c->cache_size, c->min_blob_size,
            bench_durability_name(c->durability), c->batch_size, c->threads);
    if (c->ncompare) {
        fprintf(f, "[");
        for (int i = 0; i < c->ncompare; i++)
            fprintf(f, "%s%d", i ? ", " : "", c->compare_threads[i]);
        fprintf(f, "]");
    } else {
        fprintf(f, "null");
    }
    fprintf(f, ", \"histogram\": %s, \"seed\": %llu, \"benchmarks\": [",
            c->histogram ? "true" : "false", (unsigned long long)c->seed);
    for (int s = 0; s < c->nworkloads; s++)
        fprintf(f, "%s\"%s\"", s ? ", " : "", bench_workload_name(c->workloads[s]));
    fprintf(f, "], \"db\": ");
    json_str(f, c->db);
    fprintf(f, "},\n  \"engines\": [");
    for (int e = 0; e < run->nengines; e++) {
        char buf[1024];
        run->engines[e]->differs(c, buf, sizeof buf);
        fprintf(f, "%s\n    {\"name\": ", e ? "," : "");
        json_str(f, run->engines[e]->name);
        fprintf(f, ", \"version\": ");
        json_str(f, run->versions[e]);
        fprintf(f, ", \"durability\": \"%s\", \"differs\": ",
                bench_durability_name(c->durability < run->engines[e]->min_durability
                                          ? run->engines[e]->min_durability
                                          : c->durability));
        json_str(f, buf);
        fprintf(f, "}");
    }
    /* One entry per workload, and per thread count with --compare_threads
     * (grouped by thread count, in --compare_threads order). */
    fprintf(f, "\n  ],\n  \"results\": [");
    for (int k = 0; k < nruns; k++) {
        for (int s = 0; s < c->nworkloads; s++) {
            fprintf(f, "%s\n    {\"workload\": \"%s\", \"threads\": %d, \"engines\": {\n",
                    k || s ? "," : "", bench_workload_name(c->workloads[s]), runs[k].cfg->threads);
            for (int e = 0; e < run->nengines; e++) {
                json_result(f, &runs[k], s, e, tc);
                fprintf(f, "%s\n", e + 1 < run->nengines ? "," : "");
            }
            fprintf(f, "    }}");
        }
    }
    fprintf(f, "\n  ]");
    if (nruns > 1)
        json_scaling(f, runs, nruns);
    fprintf(f, "\n}\n");
    if (fclose(f) != 0)
        return bench_err("cannot write %s", path);
    return 0;
}
