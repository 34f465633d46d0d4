/*
 * bench.h - shared types of talus-bench, the db_bench-style benchmark that
 * runs the same workloads against Talus and its peers (RocksDB, LevelDB,
 * LMDB) and prints them side by side.
 *
 * Each engine is an adapter (bench_adapter): a small table of functions over
 * opaque handles. The workloads (workloads.c) only talk to adapters, so every
 * engine runs exactly the same loop with the same keys and values, and the
 * only difference measured is the engine behind the function pointers.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_ENGINES 4
#define BENCH_MAX_WORKLOADS 32
#define BENCH_MAX_KEY 1024     /* --key_size limit (LMDB's own limit is 511) */
#define BENCH_SEEK_NEXTS 10    /* entries read after each seek in seekrandom */
#define BENCH_MAX_BATCH 100000 /* --batch_size limit */
#define BENCH_MAX_TCOUNTS 8    /* thread counts in --compare_threads */

enum bench_compression { BENCH_COMP_NONE = 0, BENCH_COMP_LZ4 = 1, BENCH_COMP_ZSTD = 2 };
enum bench_durability { BENCH_DUR_NONE = 0, BENCH_DUR_BUFFERED = 1, BENCH_DUR_SYNC = 2 };

enum bench_workload {
    W_FILLSEQ,
    W_FILLRANDOM,
    W_OVERWRITE,
    W_READRANDOM,
    W_READMISSING,
    W_READSEQ,
    W_READREVERSE,
    W_SEEKRANDOM,
    W_DELETERANDOM,
    W_READWHILEWRITING,
    W_COUNT
};

/* Everything the command line sets. */
typedef struct bench_config {
    uint64_t num;   /* keys in the key space */
    uint64_t reads; /* operations of the read workloads */
    size_t key_size;
    size_t value_size;
    double compression_ratio;
    int compression; /* enum bench_compression */
    int bloom_bits;
    size_t block_size;
    size_t write_buffer_size;
    size_t cache_size;
    size_t min_blob_size; /* key-value separation from this value size (0: off) */
    uint64_t seed;
    int durability; /* enum bench_durability */
    int threads;    /* threads of every workload but the two scans */
    int batch_size; /* operations per write (1: single puts and deletes) */
    /* --compare_threads: run everything at each of these thread counts
     * (ncompare 0: just once, at `threads`). */
    int compare_threads[BENCH_MAX_TCOUNTS];
    int ncompare;
    int histogram;
    const char *db;   /* base directory: one subdirectory per engine */
    const char *json; /* NULL: no JSON file */
    int workloads[BENCH_MAX_WORKLOADS];
    int nworkloads;
} bench_config;

/* ---- Engine adapters ---------------------------------------------------- */

/* One operation of a write batch: a put, or a delete when del is set (v
 * unused). The bytes belong to the caller and stay valid during the call. */
typedef struct bench_wop {
    const char *k;
    size_t kl;
    const char *v;
    size_t vl;
    int del;
} bench_wop;

typedef struct bench_engine bench_engine; /* one open database */
typedef struct bench_sess bench_sess;     /* per-thread handle on it */
typedef struct bench_iter bench_iter;

typedef struct bench_adapter {
    const char *name;
    /* Version string of the library, or "?" (may be filled in by open). */
    const char *(*version)(void);
    /* Open (creating if needed) the database in `dir`. */
    int (*open)(const bench_config *cfg, const char *dir, bench_engine **out);
    void (*close)(bench_engine *e);
    /* Wait until background flushes and compactions are done, without
     * forcing any. NULL: the engine offers no way to wait (or has no
     * background work); reported as "n/a". */
    int (*settle)(bench_engine *e);
    /* A session is used by one thread at a time; created by that thread. */
    int (*sess_new)(bench_engine *e, bench_sess **out);
    void (*sess_free)(bench_sess *s);
    int (*put)(bench_sess *s, const char *k, size_t kl, const char *v, size_t vl);
    int (*del)(bench_sess *s, const char *k, size_t kl);
    /* Apply n operations as one atomic batch (one engine write call, one
     * commit, one log record) with the configured durability. Used when
     * --batch_size > 1; single operations go through put and del. Deleting
     * an absent key is not an error. */
    int (*write)(bench_sess *s, const bench_wop *ops, size_t n);
    /* 1 found (value valid until the next call on this session), 0 absent,
     * negative on error. */
    int (*get)(bench_sess *s, const char *k, size_t kl, const char **v, size_t *vl);
    int (*iter_new)(bench_sess *s, bench_iter **out);
    void (*iter_free)(bench_iter *it);
    void (*seek_first)(bench_iter *it);
    void (*seek_last)(bench_iter *it);
    void (*seek)(bench_iter *it, const char *k, size_t kl);
    void (*next)(bench_iter *it);
    void (*prev)(bench_iter *it);
    int (*valid)(bench_iter *it);
    /* Current entry; valid until the iterator moves. */
    void (*entry)(bench_iter *it, const char **k, size_t *kl, const char **v, size_t *vl);
    /* 0, or negative if the iterator stopped on an error. */
    int (*iter_status)(bench_iter *it);
    /* The lowest durability the engine can run with: an engine that
     * always writes its log (LevelDB) or its file (LMDB) runs "none" as
     * "buffered", which the report marks. */
    int min_durability;
    /* Lines (each ending in '\n') saying how this engine's setup differs
     * from the others for this configuration. */
    void (*differs)(const bench_config *cfg, char *buf, size_t n);
} bench_adapter;

/* Adapters compiled into this build, in display order (talus first). */
extern const bench_adapter *const bench_adapters[];
extern const int bench_nadapters;

#ifndef BENCH_NO_TALUS
extern const bench_adapter bench_talus;
#endif
#ifdef HAVE_ROCKSDB
extern const bench_adapter bench_rocksdb;
#endif
#ifdef HAVE_LEVELDB
extern const bench_adapter bench_leveldb;
#endif
#ifdef HAVE_LMDB
extern const bench_adapter bench_lmdb;
#endif

/* ---- Errors (util.c) ---------------------------------------------------- */

/* Set the calling thread's error message; returns -1 so adapters can
 * `return bench_err("...")`. */
int bench_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *bench_errmsg(void);

/* ---- Random numbers, keys and values (util.c) ---------------------------- */

typedef struct bench_rng {
    uint64_t s;
} bench_rng;

/* A seeded stream that depends only on (seed, workload slot, thread), so
 * every engine sees the same sequence of keys. */
void bench_rng_init(bench_rng *r, uint64_t seed, uint64_t stream, uint64_t thread);
uint64_t bench_rng_next(bench_rng *r);
/* Uniform in [0, n). */
uint64_t bench_rng_uniform(bench_rng *r, uint64_t n);

/* Key of index i: key_size bytes, zero-padded decimal, so numeric and byte
 * order agree ("0000000000001234"). buf holds key_size bytes. */
void bench_key(char *buf, size_t key_size, uint64_t i);
/* A key of the same length that sorts among the existing keys but is never
 * written: decimal of i/10 on key_size-1 digits, then 'a'+i%10. It sits
 * between the keys of 10*(i/10)+9 and 10*(i/10+1). */
void bench_missing_key(char *buf, size_t key_size, uint64_t i);
/* 0 if keys of indices below num fit in key_size bytes, else -1. */
int bench_key_check(size_t key_size, uint64_t num);

/* db_bench-style value source: a buffer of random printable fragments, each
 * repeated so the data compresses to about `ratio`; values are consecutive
 * slices of it. */
typedef struct bench_values {
    char *data;
    size_t size;
    size_t value_size;
} bench_values;

int bench_values_init(bench_values *vs, uint64_t seed, double ratio, size_t value_size);
void bench_values_free(bench_values *vs);
/* Next value for a cursor owned by one thread. */
const char *bench_values_next(const bench_values *vs, size_t *pos);

/* ---- Time and latency histogram (util.c) ---------------------------------- */

uint64_t bench_now_ns(void);

/* Log-linear buckets: 8 per power of two (about 9% resolution). */
#define BENCH_HIST_BUCKETS (64 * 8)
typedef struct bench_hist {
    uint64_t count;
    uint64_t sum_ns;
    uint64_t max_ns;
    uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_add(bench_hist *h, uint64_t ns);
void bench_hist_merge(bench_hist *dst, const bench_hist *src);
/* Latency in ns at quantile q in [0,1] (upper edge of its bucket). */
double bench_hist_quantile(const bench_hist *h, double q);

/* ---- Results ----------------------------------------------------------- */

typedef struct bench_result {
    int ran;    /* 1 when the workload ran (maybe failed) */
    int failed; /* error message in err */
    uint64_t ops;
    uint64_t batches; /* engine write calls of a write workload */
    uint64_t bytes;   /* key + value bytes moved */
    uint64_t found;   /* reads that found their key (-1 unused) */
    /* readwhilewriting's writer thread, timed on its own (it starts with the
     * readers and stops when they are done) */
    uint64_t writes;
    uint64_t writer_bytes;
    double writer_secs;
    double secs;
    double settle_secs; /* < 0: no settle for this workload; see settle_na */
    int settle_na;      /* engine cannot wait for its background work */
    bench_hist hist;
    char err[256];
} bench_result;

/* ---- Workloads (workloads.c) --------------------------------------------- */

const char *bench_workload_name(int w);
/* -1 if unknown. */
int bench_workload_parse(const char *name);
/* fill*: starts from a fresh database. */
int bench_workload_is_fill(int w);
/* Writes something, so the engine may have background work to settle. */
int bench_workload_writes(int w);
/* Reads whose result depends only on the database state: found counts
 * must agree between engines. */
int bench_workload_counts_found(int w);

/* Run workload w (slot = its position in --benchmarks, used to seed it) on
 * an open engine. Fills *res. Returns 0, or -1 when the engine failed (the
 * message is in res->err). */
int bench_run_workload(const bench_config *cfg, const bench_adapter *ad, bench_engine *e,
                       const bench_values *vals, int w, int slot, bench_result *res);

/* ---- Report (report.c) --------------------------------------------------- */

/* One pass of the workload list over the engines: a single run, or one per
 * --compare_threads count (then cfg->threads is that count). */
typedef struct bench_run {
    const bench_config *cfg;
    const bench_adapter *engines[BENCH_MAX_ENGINES];
    const char *versions[BENCH_MAX_ENGINES];
    int nengines;
    /* results[slot][engine] */
    bench_result (*results)[BENCH_MAX_ENGINES];
    char started[64]; /* local date and time of the run */
} bench_run;

void bench_print_config(const bench_run *run);
/* The results table and what follows it, for one run. */
void bench_print_table(const bench_run *run);
void bench_print_differs(const bench_run *run);
/* --compare_threads: each workload's ops/s at every thread count, and the
 * speedup of the last count over the first. */
void bench_print_scaling(const bench_run *runs, int nruns);
int bench_write_json(const bench_run *runs, int nruns, const char *path);
/* Workloads whose found counts differ between engines when they must not. */
int bench_found_mismatches(const bench_run *run);

const char *bench_compression_name(int c);
const char *bench_durability_name(int d);

#endif
