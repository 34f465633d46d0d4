/*
 * eng_leveldb.c - the LevelDB adapter (leveldb/c.h). LevelDB has fewer
 * knobs than the others: its log cannot be turned off (durability none and
 * buffered both write it without syncing; sync sets WriteOptions.sync), its
 * tree shape is fixed at compile time, and it only knows Snappy compression.
 */
#include "config.h"

#ifdef HAVE_LEVELDB

#include <stdio.h>
#include <stdlib.h>

#include <leveldb/c.h>

#include "bench.h"

struct bench_engine {
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_writeoptions_t *wopts;
    leveldb_readoptions_t *ropts;
};

struct bench_sess {
    bench_engine *e;
    leveldb_writebatch_t *batch; /* reused by every batched write */
    char *last;                  /* value of the previous get */
};

struct bench_iter {
    leveldb_iterator_t *it;
};

static int lerr(char *msg, const char *what)
{
    int rc = bench_err("leveldb %s: %s", what, msg ? msg : "?");
    leveldb_free(msg);
    return rc;
}

static const char *l_version(void)
{
    static char buf[32];
    snprintf(buf, sizeof buf, "%d.%d", leveldb_major_version(), leveldb_minor_version());
    return buf;
}

static void l_free_engine(bench_engine *e)
{
    if (e->db)
        leveldb_close(e->db);
    if (e->wopts)
        leveldb_writeoptions_destroy(e->wopts);
    if (e->ropts)
        leveldb_readoptions_destroy(e->ropts);
    if (e->opts)
        leveldb_options_destroy(e->opts);
    if (e->filter)
        leveldb_filterpolicy_destroy(e->filter);
    if (e->cache)
        leveldb_cache_destroy(e->cache);
    free(e);
}

static int l_open(const bench_config *cfg, const char *dir, bench_engine **out)
{
    bench_engine *e = calloc(1, sizeof *e);
    if (!e)
        return bench_err("out of memory");
    e->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(e->opts, 1);
    leveldb_options_set_write_buffer_size(e->opts, cfg->write_buffer_size);
    leveldb_options_set_block_size(e->opts, cfg->block_size);
    leveldb_options_set_block_restart_interval(e->opts, 16);
    leveldb_options_set_max_open_files(e->opts, 1000);
    /* Snappy is the nearest LevelDB has to lz4 or zstd. */
    leveldb_options_set_compression(e->opts, cfg->compression == BENCH_COMP_NONE
                                                 ? leveldb_no_compression
                                                 : leveldb_snappy_compression);
    /* Tables stay at LevelDB's 2 MiB: its 10 MiB L1 is fixed, and 64 MiB
     * tables would make every L0->L1 compaction rewrite most of L1. */
    if (cfg->bloom_bits > 0) {
        e->filter = leveldb_filterpolicy_create_bloom(cfg->bloom_bits);
        leveldb_options_set_filter_policy(e->opts, e->filter);
    }
    if (cfg->cache_size > 0) {
        e->cache = leveldb_cache_create_lru(cfg->cache_size);
        leveldb_options_set_cache(e->opts, e->cache);
    }
    e->wopts = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(e->wopts, cfg->durability == BENCH_DUR_SYNC);
    e->ropts = leveldb_readoptions_create();

    char *err = NULL;
    e->db = leveldb_open(e->opts, dir, &err);
    if (err) {
        e->db = NULL;
        l_free_engine(e);
        return lerr(err, "open");
    }
    *out = e;
    return 0;
}

static void l_close(bench_engine *e)
{
    l_free_engine(e);
}

static int l_sess_new(bench_engine *e, bench_sess **out)
{
    bench_sess *s = calloc(1, sizeof *s);
    if (!s)
        return bench_err("out of memory");
    s->e = e;
    s->batch = leveldb_writebatch_create();
    *out = s;
    return 0;
}

static void l_sess_free(bench_sess *s)
{
    leveldb_writebatch_destroy(s->batch);
    leveldb_free(s->last);
    free(s);
}

static int l_put(bench_sess *s, const char *k, size_t kl, const char *v, size_t vl)
{
    char *err = NULL;
    leveldb_put(s->e->db, s->e->wopts, k, kl, v, vl, &err);
    return err ? lerr(err, "put") : 0;
}

static int l_del(bench_sess *s, const char *k, size_t kl)
{
    char *err = NULL;
    leveldb_delete(s->e->db, s->e->wopts, k, kl, &err);
    return err ? lerr(err, "delete") : 0;
}

static int l_write(bench_sess *s, const bench_wop *ops, size_t n)
{
    leveldb_writebatch_clear(s->batch);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].del)
            leveldb_writebatch_delete(s->batch, ops[i].k, ops[i].kl);
        else
            leveldb_writebatch_put(s->batch, ops[i].k, ops[i].kl, ops[i].v, ops[i].vl);
    }
    char *err = NULL;
    leveldb_write(s->e->db, s->e->wopts, s->batch, &err);
    return err ? lerr(err, "write") : 0;
}

static int l_get(bench_sess *s, const char *k, size_t kl, const char **v, size_t *vl)
{
    char *err = NULL;
    leveldb_free(s->last);
    s->last = leveldb_get(s->e->db, s->e->ropts, k, kl, vl, &err);
    if (err)
        return lerr(err, "get");
    if (!s->last)
        return 0;
    *v = s->last;
    return 1;
}

static int l_iter_new(bench_sess *s, bench_iter **out)
{
    bench_iter *it = calloc(1, sizeof *it);
    if (!it)
        return bench_err("out of memory");
    it->it = leveldb_create_iterator(s->e->db, s->e->ropts);
    *out = it;
    return 0;
}

static void l_iter_free(bench_iter *it)
{
    leveldb_iter_destroy(it->it);
    free(it);
}

static void l_seek_first(bench_iter *it)
{
    leveldb_iter_seek_to_first(it->it);
}

static void l_seek_last(bench_iter *it)
{
    leveldb_iter_seek_to_last(it->it);
}

static void l_seek(bench_iter *it, const char *k, size_t kl)
{
    leveldb_iter_seek(it->it, k, kl);
}

static void l_next(bench_iter *it)
{
    leveldb_iter_next(it->it);
}

static void l_prev(bench_iter *it)
{
    leveldb_iter_prev(it->it);
}

static int l_valid(bench_iter *it)
{
    return leveldb_iter_valid(it->it);
}

static void l_entry(bench_iter *it, const char **k, size_t *kl, const char **v, size_t *vl)
{
    *k = leveldb_iter_key(it->it, kl);
    *v = leveldb_iter_value(it->it, vl);
}

static int l_iter_status(bench_iter *it)
{
    char *err = NULL;
    leveldb_iter_get_error(it->it, &err);
    return err ? lerr(err, "iterator") : 0;
}

static void l_differs(const bench_config *cfg, char *buf, size_t n)
{
    snprintf(
        buf, n,
        "%s"
        "%s"
        "%s"
        "one background thread; 1 sealed memtable; L0 triggers 4/8/12, 10 MiB L1 and\n"
        "2 MiB tables (compiled in); "
        "no way to wait for compactions, so settle is n/a\n",
        cfg->durability == BENCH_DUR_NONE
            ? "log cannot be disabled: durability none runs as buffered (every write is logged)\n"
            : "",
        cfg->compression != BENCH_COMP_NONE ? "compression is snappy (no lz4 or zstd)\n" : "",
        cfg->min_blob_size ? "no key-value separation: every value stays in the tree\n" : "");
}

const bench_adapter bench_leveldb = {
    .name = "leveldb",
    .version = l_version,
    .open = l_open,
    .close = l_close,
    .settle = NULL, /* LevelDB has no way to ask whether compactions are pending */
    .sess_new = l_sess_new,
    .sess_free = l_sess_free,
    .put = l_put,
    .del = l_del,
    .write = l_write,
    .get = l_get,
    .iter_new = l_iter_new,
    .iter_free = l_iter_free,
    .seek_first = l_seek_first,
    .seek_last = l_seek_last,
    .seek = l_seek,
    .next = l_next,
    .prev = l_prev,
    .valid = l_valid,
    .entry = l_entry,
    .iter_status = l_iter_status,
    .min_durability = BENCH_DUR_BUFFERED, /* the log is always written */
    .differs = l_differs,
};

#endif /* HAVE_LEVELDB */
