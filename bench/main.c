/*
 * main.c - talus-bench: parse the db_bench-style command line, run every
 * selected workload on every selected engine, and print the results side by
 * side.
 *
 * Engines run one after the other, each through the whole workload list on
 * its own database (fill* start from an empty one, the others reuse what the
 * previous workloads left), and each is closed before the next starts, so no
 * engine's background work runs during another's measurements. Progress
 * goes to stderr as it happens; the report goes to stdout at the end. Exit
 * status: 0; 1 when an engine failed or the engines disagree on what reads
 * found; 2 for a bad command line.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

const bench_adapter *const bench_adapters[] = {
#ifndef BENCH_NO_TALUS
    &bench_talus,
#endif
#ifdef HAVE_ROCKSDB
    &bench_rocksdb,
#endif
#ifdef HAVE_LEVELDB
    &bench_leveldb,
#endif
#ifdef HAVE_LMDB
    &bench_lmdb,
#endif
    NULL,
};
const int bench_nadapters = (int)(sizeof bench_adapters / sizeof bench_adapters[0]) - 1;

static const char default_workloads[] =
    "fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,readreverse,seekrandom,"
    "readwhilewriting,deleterandom";

static void usage(FILE *f)
{
    fprintf(f, "usage: talus-bench [--option=value ...]\n"
               "  --benchmarks=LIST      comma list, run in order on each engine's database\n"
               "                         (fillseq,fillrandom,overwrite,readrandom,readmissing,\n"
               "                         readseq,readreverse,seekrandom,readwhilewriting,\n"
               "                         deleterandom)\n"
               "  --engines=LIST         engines to run (default: all built in:");
    for (int i = 0; i < bench_nadapters; i++)
        fprintf(f, " %s", bench_adapters[i]->name);
    fprintf(f, ")\n"
               "  --num=N                keys (1000000)\n"
               "  --reads=N              operations of read workloads (default: num)\n"
               "  --key_size=N           bytes (16)\n"
               "  --value_size=N         bytes (100)\n"
               "  --compression_ratio=R  values compress to about R of their size (0.5)\n"
               "  --compression=C        none|lz4|zstd (none)\n"
               "  --bloom_bits=N         bloom filter bits per key, 0 = none (10)\n"
               "  --block_size=N         data block size (4096)\n"
               "  --write_buffer_size=N  memtable size (64M)\n"
               "  --min_blob_size=N      values of N bytes or more go to blob files (talus,\n"
               "                         rocksdb's BlobDB; 0 = off, the default)\n"
               "  --cache_size=N         block cache size (64M)\n"
               "  --durability=D         none|buffered|sync (buffered)\n"
               "  --sync                 same as --durability=sync\n"
               "  --batch_size=N         operations per write batch of fill*, overwrite,\n"
               "                         deleterandom and readwhilewriting's writer (1)\n"
               "  --threads=N            threads of every workload but readseq and\n"
               "                         readreverse; readwhilewriting adds one writer (1)\n"
               "  --compare_threads=LIST run everything at each thread count (e.g. 1,4)\n"
               "                         and print the speedup of the last over the first\n"
               "  --seed=N               random seed (301)\n"
               "  --histogram            print latency percentiles\n"
               "  --db=DIR               base directory, one subdirectory per engine\n"
               "                         (/tmp/talus-bench-UID); removed before each fill\n"
               "  --json=FILE            also write all numbers as JSON\n"
               "Sizes take K, M or G suffixes (powers of 1024).\n");
}

/* ---- Option values ------------------------------------------------------------- */

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mult = 1;
    if (*end == 'K' || *end == 'k')
        mult = 1ull << 10;
    else if (*end == 'M' || *end == 'm')
        mult = 1ull << 20;
    else if (*end == 'G' || *end == 'g')
        mult = 1ull << 30;
    if (mult != 1)
        end++;
    if (*end == 'i' && end[1] == 'B') /* accept "64MiB" */
        end += 2;
    if (errno || end == s || *end || *s == '-' || v > UINT64_MAX / mult) {
        fprintf(stderr, "talus-bench: --%s: not a number: %s\n", opt, s);
        return -1;
    }
    *out = v * mult;
    return 0;
}

static int parse_choice(const char *opt, const char *s, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    fprintf(stderr, "talus-bench: --%s: unknown value %s\n", opt, s);
    return -1;
}

static int parse_workloads(bench_config *c, const char *list)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    c->nworkloads = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int w = bench_workload_parse(t);
        if (w < 0) {
            fprintf(stderr, "talus-bench: unknown benchmark %s\n", t);
            return -1;
        }
        if (c->nworkloads == BENCH_MAX_WORKLOADS) {
            fprintf(stderr, "talus-bench: at most %d benchmarks\n", BENCH_MAX_WORKLOADS);
            return -1;
        }
        c->workloads[c->nworkloads++] = w;
    }
    return 0;
}

static int parse_thread_counts(bench_config *c, const char *list)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    c->ncompare = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint64_t n;
        if (parse_u64("compare_threads", t, &n) < 0)
            return -1;
        if (n < 1 || n > 256 || c->ncompare == BENCH_MAX_TCOUNTS) {
            fprintf(stderr, "talus-bench: --compare_threads: up to %d counts of 1..256\n",
                    BENCH_MAX_TCOUNTS);
            return -1;
        }
        c->compare_threads[c->ncompare++] = (int)n;
    }
    if (c->ncompare < 2) {
        fprintf(stderr, "talus-bench: --compare_threads needs at least two counts\n");
        return -1;
    }
    return 0;
}

static int parse_engines(const char *list, const bench_adapter **out, int *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    *n = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const bench_adapter *found = NULL;
        for (int i = 0; i < bench_nadapters; i++)
            if (strcmp(t, bench_adapters[i]->name) == 0)
                found = bench_adapters[i];
        if (!found) {
            fprintf(stderr, "talus-bench: engine %s is not built in (available:", t);
            for (int i = 0; i < bench_nadapters; i++)
                fprintf(stderr, " %s", bench_adapters[i]->name);
            fprintf(stderr, ")\n");
            return -1;
        }
        for (int i = 0; i < *n; i++)
            if (out[i] == found)
                found = NULL;
        if (found)
            out[(*n)++] = found;
    }
    return 0;
}

typedef struct cli {
    bench_config cfg;
    const bench_adapter *engines[BENCH_MAX_ENGINES];
    int nengines;
    int reads_set;
    char dbbuf[256];
} cli;

/* The numeric options, by field type. */
enum { NUM_U64, NUM_SIZE, NUM_INT };
static const struct {
    const char *name;
    int kind;
    size_t off;
} numeric[] = {
    {"num", NUM_U64, offsetof(bench_config, num)},
    {"reads", NUM_U64, offsetof(bench_config, reads)},
    {"seed", NUM_U64, offsetof(bench_config, seed)},
    {"key_size", NUM_SIZE, offsetof(bench_config, key_size)},
    {"value_size", NUM_SIZE, offsetof(bench_config, value_size)},
    {"block_size", NUM_SIZE, offsetof(bench_config, block_size)},
    {"write_buffer_size", NUM_SIZE, offsetof(bench_config, write_buffer_size)},
    {"cache_size", NUM_SIZE, offsetof(bench_config, cache_size)},
    {"min_blob_size", NUM_SIZE, offsetof(bench_config, min_blob_size)},
    {"bloom_bits", NUM_INT, offsetof(bench_config, bloom_bits)},
    {"threads", NUM_INT, offsetof(bench_config, threads)},
    {"batch_size", NUM_INT, offsetof(bench_config, batch_size)},
};

static int parse_number(cli *cl, const char *name, const char *val)
{
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++) {
        if (strcmp(name, numeric[i].name) != 0)
            continue;
        uint64_t u;
        if (parse_u64(name, val, &u) < 0)
            return -1;
        char *field = (char *)&cl->cfg + numeric[i].off;
        if (numeric[i].kind == NUM_U64) {
            *(uint64_t *)(void *)field = u;
        } else if (numeric[i].kind == NUM_SIZE) {
            *(size_t *)(void *)field = (size_t)u;
        } else {
            if (u > 1000000) {
                fprintf(stderr, "talus-bench: --%s: %s is too large\n", name, val);
                return -1;
            }
            *(int *)(void *)field = (int)u;
        }
        if (strcmp(name, "reads") == 0)
            cl->reads_set = 1;
        return 0;
    }
    fprintf(stderr, "talus-bench: unknown option --%s (see --help)\n", name);
    return -1;
}

/* One --name=value (or --name value) option; returns the number of argv
 * entries used, or -1. */
static int parse_option(cli *cl, int argc, char **argv, int i)
{
    static const char *const comp[] = {"none", "lz4", "zstd"};
    static const char *const dur[] = {"none", "buffered", "sync"};
    bench_config *c = &cl->cfg;
    const char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0) {
        fprintf(stderr, "talus-bench: unexpected argument %s\n", arg);
        return -1;
    }
    char name[64];
    const char *eq = strchr(arg, '=');
    size_t nl = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (nl >= sizeof name)
        nl = sizeof name - 1;
    memcpy(name, arg + 2, nl);
    name[nl] = 0;
    int used = 1;
    if (strcmp(name, "histogram") == 0) {
        c->histogram = !eq || strcmp(eq + 1, "0") != 0;
        return 1;
    }
    if (strcmp(name, "sync") == 0) {
        if (!eq || strcmp(eq + 1, "0") != 0)
            c->durability = BENCH_DUR_SYNC;
        return 1;
    }
    if (strcmp(name, "help") == 0) {
        usage(stdout);
        exit(0);
    }
    const char *val = eq ? eq + 1 : NULL;
    if (!val) {
        if (i + 1 >= argc) {
            fprintf(stderr, "talus-bench: --%s needs a value\n", name);
            return -1;
        }
        val = argv[i + 1];
        used = 2;
    }
    int rc = 0;
    if (strcmp(name, "benchmarks") == 0)
        rc = parse_workloads(c, val);
    else if (strcmp(name, "engines") == 0)
        rc = parse_engines(val, cl->engines, &cl->nengines);
    else if (strcmp(name, "compression") == 0)
        rc = parse_choice(name, val, comp, 3, &c->compression);
    else if (strcmp(name, "durability") == 0)
        rc = parse_choice(name, val, dur, 3, &c->durability);
    else if (strcmp(name, "compare_threads") == 0)
        rc = parse_thread_counts(c, val);
    else if (strcmp(name, "db") == 0)
        c->db = val;
    else if (strcmp(name, "json") == 0)
        c->json = val;
    else if (strcmp(name, "compression_ratio") == 0) {
        char *end;
        c->compression_ratio = strtod(val, &end);
        if (*end || end == val || !(c->compression_ratio > 0 && c->compression_ratio <= 1)) {
            fprintf(stderr, "talus-bench: --compression_ratio must be in (0, 1]\n");
            rc = -1;
        }
    } else {
        rc = parse_number(cl, name, val);
    }
    return rc < 0 ? -1 : used;
}

static int parse_args(cli *cl, int argc, char **argv)
{
    bench_config *c = &cl->cfg;
    memset(cl, 0, sizeof *cl);
    c->num = 1000000;
    c->key_size = 16;
    c->value_size = 100;
    c->compression_ratio = 0.5;
    c->bloom_bits = 10;
    c->block_size = 4096;
    c->write_buffer_size = 64u << 20;
    c->cache_size = 64u << 20;
    c->seed = 301;
    c->threads = 1;
    c->batch_size = 1;
    c->durability = BENCH_DUR_BUFFERED; /* Talus journals by default */
    snprintf(cl->dbbuf, sizeof cl->dbbuf, "/tmp/talus-bench-%u", (unsigned)getuid());
    c->db = cl->dbbuf;
    if (parse_workloads(c, default_workloads) < 0)
        return -1;
    for (int i = 1; i < argc;) {
        int used = parse_option(cl, argc, argv, i);
        if (used < 0)
            return -1;
        i += used;
    }
    if (!cl->reads_set)
        c->reads = c->num;
    if (cl->nengines == 0)
        for (int i = 0; i < bench_nadapters && i < BENCH_MAX_ENGINES; i++)
            cl->engines[cl->nengines++] = bench_adapters[i];
    if (c->num == 0 || c->threads < 1 || c->threads > 256 || c->block_size == 0 ||
        c->write_buffer_size == 0 || c->bloom_bits < 0 || c->bloom_bits > 64 || c->batch_size < 1 ||
        c->batch_size > BENCH_MAX_BATCH) {
        fprintf(stderr,
                "talus-bench: --num, --threads (1..256), --batch_size (1..%d), --block_size, "
                "--write_buffer_size and --bloom_bits (0..64) must be sensible\n",
                BENCH_MAX_BATCH);
        return -1;
    }
    if (c->key_size > BENCH_MAX_KEY) {
        fprintf(stderr, "talus-bench: --key_size is at most %d\n", BENCH_MAX_KEY);
        return -1;
    }
    if (bench_key_check(c->key_size, c->num) < 0) {
        fprintf(stderr, "talus-bench: %s\n", bench_errmsg());
        return -1;
    }
    if (cl->nengines == 0) {
        fprintf(stderr, "talus-bench: no engine is built in\n");
        return -1;
    }
    return 0;
}

/* ---- Directories ------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT) {
        fprintf(stderr, "talus-bench: cannot remove %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int remove_tree(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* ---- Running ------------------------------------------------------------------ */

static int open_engine(const bench_config *c, const bench_adapter *ad, const char *dir, int fresh,
                       bench_engine **e)
{
    if (fresh && remove_tree(dir) < 0)
        return bench_err("cannot remove %s", dir);
    if (make_dirs(dir) < 0)
        return bench_err("cannot create %s: %s", dir, strerror(errno));
    return ad->open(c, dir, e);
}

/* One progress line on stderr (the report comes at the end). */
static void progress(const bench_config *c, const bench_result *r)
{
    fprintf(stderr, "%10.0f ops/s %8.2f s", r->secs > 0 ? r->ops / r->secs : 0, r->secs);
    if (c->batch_size > 1 && r->batches)
        fprintf(stderr, "  %.0f batches/s", r->secs > 0 ? r->batches / r->secs : 0);
    if (r->writer_secs > 0)
        fprintf(stderr, "  writer %.0f ops/s", r->writes / r->writer_secs);
    if (r->settle_secs >= 0 && !r->settle_na)
        fprintf(stderr, "  settle %.2f s", r->settle_secs);
    fprintf(stderr, "\n");
}

/* All workloads on one engine; failures are recorded, not fatal. */
static void run_engine(const bench_config *c, const bench_adapter *ad, const bench_values *vals,
                       int col, bench_result (*results)[BENCH_MAX_ENGINES])
{
    char dir[4096], label[32] = "";
    snprintf(dir, sizeof dir, "%s/%s", c->db, ad->name);
    if (c->ncompare)
        snprintf(label, sizeof label, "%3d thr ", c->threads);
    bench_engine *e = NULL;
    int dead = 0;
    for (int s = 0; s < c->nworkloads; s++) {
        int w = c->workloads[s];
        bench_result *r = &results[s][col];
        memset(r, 0, sizeof *r);
        if (dead)
            continue; /* the engine failed: later numbers would mean nothing */
        if (bench_workload_is_fill(w) && e) {
            ad->close(e);
            e = NULL;
        }
        if (!e && open_engine(c, ad, dir, bench_workload_is_fill(w), &e) < 0) {
            r->ran = r->failed = 1;
            snprintf(r->err, sizeof r->err, "open: %s", bench_errmsg());
            fprintf(stderr, "  %-8s %s%-16s error: %s\n", ad->name, label, bench_workload_name(w),
                    r->err);
            e = NULL;
            dead = 1;
            continue;
        }
        fprintf(stderr, "  %-8s %s%-16s ", ad->name, label, bench_workload_name(w));
        if (bench_run_workload(c, ad, e, vals, w, s, r) < 0) {
            fprintf(stderr, "error: %s\n", r->err);
            dead = 1;
            continue;
        }
        progress(c, r);
    }
    if (e)
        ad->close(e);
}

int main(int argc, char **argv)
{
    cli cl;
    if (parse_args(&cl, argc, argv) < 0)
        return 2;
    const bench_config *c = &cl.cfg;
    if (make_dirs(c->db) < 0) {
        fprintf(stderr, "talus-bench: cannot create %s: %s\n", c->db, strerror(errno));
        return 1;
    }
    bench_values vals;
    if (bench_values_init(&vals, c->seed, c->compression_ratio, c->value_size) < 0) {
        fprintf(stderr, "talus-bench: %s\n", bench_errmsg());
        return 1;
    }
    /* One run per thread count of --compare_threads, or just one. */
    int nruns = c->ncompare ? c->ncompare : 1;
    bench_config cfgs[BENCH_MAX_TCOUNTS];
    bench_run runs[BENCH_MAX_TCOUNTS];
    bench_result(*results)[BENCH_MAX_ENGINES] =
        calloc((size_t)nruns * BENCH_MAX_WORKLOADS, sizeof *results);
    if (!results) {
        fprintf(stderr, "talus-bench: out of memory\n");
        return 1;
    }
    char started[64];
    time_t now = time(NULL);
    strftime(started, sizeof started, "%Y-%m-%d %H:%M:%S %z", localtime(&now));
    for (int k = 0; k < nruns; k++) {
        cfgs[k] = *c;
        if (c->ncompare)
            cfgs[k].threads = c->compare_threads[k];
        runs[k] = (bench_run){.cfg = &cfgs[k],
                              .nengines = cl.nengines,
                              .results = results + (size_t)k * BENCH_MAX_WORKLOADS};
        snprintf(runs[k].started, sizeof runs[k].started, "%s", started);
    }

    /* Engine by engine, and each engine's thread counts back to back, so a
     * speedup compares runs close together in time. */
    for (int i = 0; i < cl.nengines; i++) {
        for (int k = 0; k < nruns; k++) {
            runs[k].engines[i] = cl.engines[i];
            run_engine(&cfgs[k], cl.engines[i], &vals, i, runs[k].results);
        }
        for (int k = 0; k < nruns; k++)
            runs[k].versions[i] = cl.engines[i]->version();
    }

    bench_print_config(&runs[0]);
    for (int k = 0; k < nruns; k++) {
        if (c->ncompare)
            printf("threads %d\n", cfgs[k].threads);
        bench_print_table(&runs[k]);
    }
    if (c->ncompare)
        bench_print_scaling(runs, nruns);
    bench_print_differs(&runs[0]);
    int rc = 0;
    if (c->json && bench_write_json(runs, nruns, c->json) < 0) {
        fprintf(stderr, "talus-bench: %s\n", bench_errmsg());
        rc = 1;
    }
    for (int k = 0; k < nruns; k++) {
        for (int s = 0; s < c->nworkloads; s++)
            for (int e = 0; e < cl.nengines; e++)
                if (runs[k].results[s][e].failed)
                    rc = 1;
        if (bench_found_mismatches(&runs[k]) > 0) {
            fprintf(stderr, "talus-bench: engines disagree on what reads found (see above)\n");
            rc = 1;
        }
    }
    free(results);
    bench_values_free(&vals);
    return rc;
}
