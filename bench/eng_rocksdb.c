/*
 * eng_rocksdb.c - the RocksDB adapter (rocksdb/c.h), configured to match
 * Talus's options and defaults wherever RocksDB has the same knob.
 * Durability: none disables the write-ahead log (disableWAL), buffered
 * writes it without syncing, sync sets WriteOptions.sync on every write.
 */
#include "config.h"

#ifdef HAVE_ROCKSDB

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rocksdb/c.h>

#include "bench.h"

struct bench_engine {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *topts;
    rocksdb_cache_t *cache;
    rocksdb_filterpolicy_t *filter; /* owned by topts once set */
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
};

struct bench_sess {
    bench_engine *e;
    rocksdb_writebatch_t *batch; /* reused by every batched write */
    char *last;                  /* value of the previous get */
};

struct bench_iter {
    rocksdb_iterator_t *it;
};

/* RocksDB reports errors as malloc'd strings. */
static int rerr(char *msg, const char *what)
{
    int rc = bench_err("rocksdb %s: %s", what, msg ? msg : "?");
    rocksdb_free(msg);
    return rc;
}

/* The C API has no version call; RocksDB writes it into the OPTIONS file of
 * every database it opens, so read it from there. */
static char version_buf[32] = "?";

static void read_version(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "OPTIONS-", 8) != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char line[256];
        while (fgets(line, sizeof line, f)) {
            char *p = strstr(line, "rocksdb_version=");
            if (p) {
                p += strlen("rocksdb_version=");
                p[strcspn(p, " \r\n")] = 0;
                snprintf(version_buf, sizeof version_buf, "%s", p);
                break;
            }
        }
        fclose(f);
        break;
    }
    closedir(d);
}

static const char *r_version(void)
{
    return version_buf;
}

static void r_free_engine(bench_engine *e)
{
    if (e->db)
        rocksdb_close(e->db);
    if (e->wopts)
        rocksdb_writeoptions_destroy(e->wopts);
    if (e->ropts)
        rocksdb_readoptions_destroy(e->ropts);
    if (e->opts)
        rocksdb_options_destroy(e->opts);
    if (e->topts)
        rocksdb_block_based_options_destroy(e->topts); /* also frees the filter */
    if (e->cache)
        rocksdb_cache_destroy(e->cache);
    free(e);
}

static int r_open(const bench_config *cfg, const char *dir, bench_engine **out)
{
    static const int comp[] = {rocksdb_no_compression, rocksdb_lz4_compression,
                               rocksdb_zstd_compression};
    bench_engine *e = calloc(1, sizeof *e);
    if (!e)
        return bench_err("out of memory");
    e->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(e->opts, 1);
    rocksdb_options_set_write_buffer_size(e->opts, cfg->write_buffer_size);
    if (cfg->min_blob_size) {
        rocksdb_options_set_enable_blob_files(e->opts, 1);
        rocksdb_options_set_min_blob_size(e->opts, cfg->min_blob_size);
        rocksdb_options_set_enable_blob_gc(e->opts, 1);
    }
    /* Talus: one active + 2 sealed memtables before writers stop. */
    rocksdb_options_set_max_write_buffer_number(e->opts, 3);
    rocksdb_options_set_max_background_jobs(e->opts, 2);
    rocksdb_options_set_max_open_files(e->opts, 1000);
    rocksdb_options_set_compression(e->opts, comp[cfg->compression]);
    /* The same shape of tree as Talus's defaults (most are RocksDB's too). */
    rocksdb_options_set_num_levels(e->opts, 7);
    rocksdb_options_set_level0_file_num_compaction_trigger(e->opts, 4);
    rocksdb_options_set_level0_slowdown_writes_trigger(e->opts, 20);
    rocksdb_options_set_level0_stop_writes_trigger(e->opts, 36);
    rocksdb_options_set_max_bytes_for_level_base(e->opts, 256ull << 20);
    rocksdb_options_set_max_bytes_for_level_multiplier(e->opts, 10);
    rocksdb_options_set_target_file_size_base(e->opts, 64ull << 20);

    e->topts = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_size(e->topts, cfg->block_size);
    rocksdb_block_based_options_set_block_restart_interval(e->topts, 16);
    if (cfg->bloom_bits > 0) {
        e->filter = rocksdb_filterpolicy_create_bloom_full(cfg->bloom_bits);
        rocksdb_block_based_options_set_filter_policy(e->topts, e->filter);
    }
    if (cfg->cache_size > 0) {
        e->cache = rocksdb_cache_create_lru(cfg->cache_size);
        rocksdb_block_based_options_set_block_cache(e->topts, e->cache);
    } else {
        rocksdb_block_based_options_set_no_block_cache(e->topts, 1);
    }
    rocksdb_options_set_block_based_table_factory(e->opts, e->topts);

    e->wopts = rocksdb_writeoptions_create();
    if (cfg->durability == BENCH_DUR_NONE)
        rocksdb_writeoptions_disable_WAL(e->wopts, 1);
    rocksdb_writeoptions_set_sync(e->wopts, cfg->durability == BENCH_DUR_SYNC);
    e->ropts = rocksdb_readoptions_create();

    char *err = NULL;
    e->db = rocksdb_open(e->opts, dir, &err);
    if (err) {
        e->db = NULL;
        r_free_engine(e);
        return rerr(err, "open");
    }
    read_version(dir);
    *out = e;
    return 0;
}

static void r_close(bench_engine *e)
{
    r_free_engine(e);
}

static uint64_t prop(bench_engine *e, const char *name)
{
    uint64_t v = 0;
    if (rocksdb_property_int(e->db, name, &v) != 0)
        return 0;
    return v;
}

/* Wait, without forcing anything, until no flush or compaction is running
 * or wanted: the counterpart of talus_wait_idle. */
static int r_settle(bench_engine *e)
{
    static const char *const props[] = {"rocksdb.mem-table-flush-pending",
                                        "rocksdb.num-running-flushes", "rocksdb.compaction-pending",
                                        "rocksdb.num-running-compactions"};
    const struct timespec tick = {0, 5 * 1000 * 1000};
    for (;;) {
        uint64_t busy = 0;
        for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
            busy += prop(e, props[i]);
        if (!busy)
            return 0;
        nanosleep(&tick, NULL);
    }
}

static int r_sess_new(bench_engine *e, bench_sess **out)
{
    bench_sess *s = calloc(1, sizeof *s);
    if (!s)
        return bench_err("out of memory");
    s->e = e;
    s->batch = rocksdb_writebatch_create();
    *out = s;
    return 0;
}

static void r_sess_free(bench_sess *s)
{
    rocksdb_writebatch_destroy(s->batch);
    rocksdb_free(s->last);
    free(s);
}

static int r_put(bench_sess *s, const char *k, size_t kl, const char *v, size_t vl)
{
    char *err = NULL;
    rocksdb_put(s->e->db, s->e->wopts, k, kl, v, vl, &err);
    return err ? rerr(err, "put") : 0;
}

static int r_del(bench_sess *s, const char *k, size_t kl)
{
    char *err = NULL;
    rocksdb_delete(s->e->db, s->e->wopts, k, kl, &err);
    return err ? rerr(err, "delete") : 0;
}

static int r_write(bench_sess *s, const bench_wop *ops, size_t n)
{
    rocksdb_writebatch_clear(s->batch);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].del)
            rocksdb_writebatch_delete(s->batch, ops[i].k, ops[i].kl);
        else
            rocksdb_writebatch_put(s->batch, ops[i].k, ops[i].kl, ops[i].v, ops[i].vl);
    }
    char *err = NULL;
    rocksdb_write(s->e->db, s->e->wopts, s->batch, &err);
    return err ? rerr(err, "write") : 0;
}

static int r_get(bench_sess *s, const char *k, size_t kl, const char **v, size_t *vl)
{
    char *err = NULL;
    rocksdb_free(s->last);
    s->last = rocksdb_get(s->e->db, s->e->ropts, k, kl, vl, &err);
    if (err)
        return rerr(err, "get");
    if (!s->last)
        return 0;
    *v = s->last;
    return 1;
}

static int r_iter_new(bench_sess *s, bench_iter **out)
{
    bench_iter *it = calloc(1, sizeof *it);
    if (!it)
        return bench_err("out of memory");
    it->it = rocksdb_create_iterator(s->e->db, s->e->ropts);
    *out = it;
    return 0;
}

static void r_iter_free(bench_iter *it)
{
    rocksdb_iter_destroy(it->it);
    free(it);
}

static void r_seek_first(bench_iter *it)
{
    rocksdb_iter_seek_to_first(it->it);
}

static void r_seek_last(bench_iter *it)
{
    rocksdb_iter_seek_to_last(it->it);
}

static void r_seek(bench_iter *it, const char *k, size_t kl)
{
    rocksdb_iter_seek(it->it, k, kl);
}

static void r_next(bench_iter *it)
{
    rocksdb_iter_next(it->it);
}

static void r_prev(bench_iter *it)
{
    rocksdb_iter_prev(it->it);
}

static int r_valid(bench_iter *it)
{
    return rocksdb_iter_valid(it->it);
}

static void r_entry(bench_iter *it, const char **k, size_t *kl, const char **v, size_t *vl)
{
    *k = rocksdb_iter_key(it->it, kl);
    *v = rocksdb_iter_value(it->it, vl);
}

static int r_iter_status(bench_iter *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    return err ? rerr(err, "iterator") : 0;
}

static void r_differs(const bench_config *cfg, char *buf, size_t n)
{
    snprintf(
        buf, n,
        "%s%s"
        "index and filter blocks are held outside the block cache (RocksDB's default)\n",
        cfg->durability == BENCH_DUR_NONE ? "write-ahead log disabled (durability none)\n" : "",
        cfg->min_blob_size ? "integrated BlobDB: shared 256 MiB blob files, blob GC on\n" : "");
}

const bench_adapter bench_rocksdb = {
    .name = "rocksdb",
    .version = r_version,
    .open = r_open,
    .close = r_close,
    .settle = r_settle,
    .sess_new = r_sess_new,
    .sess_free = r_sess_free,
    .put = r_put,
    .del = r_del,
    .write = r_write,
    .get = r_get,
    .iter_new = r_iter_new,
    .iter_free = r_iter_free,
    .seek_first = r_seek_first,
    .seek_last = r_seek_last,
    .seek = r_seek,
    .next = r_next,
    .prev = r_prev,
    .valid = r_valid,
    .entry = r_entry,
    .iter_status = r_iter_status,
    .min_durability = BENCH_DUR_NONE,
    .differs = r_differs,
};

#endif /* HAVE_ROCKSDB */
