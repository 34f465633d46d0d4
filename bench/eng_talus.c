/*
 * eng_talus.c - the Talus adapter: the public API of talus.h only, on the
 * default tree, configured from the benchmark's options. Durability is the
 * database default (talus_options.durability), which single puts and
 * deletes use; batches pass the same durability to talus_batch_commit
 * explicitly.
 */
#include "config.h"

#ifndef BENCH_NO_TALUS

#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "talus.h"

struct bench_engine {
    talus_db *db;
    talus_tree *tree;
    int durability; /* enum talus_durability */
};

struct bench_sess {
    bench_engine *e;
    talus_tree *tree;
    talus_batch *batch; /* reused by every batched write of this session */
    void *last;         /* value of the previous get, freed on the next one */
};

struct bench_iter {
    talus_iter *it;
};

static int terr(int rc, const char *what)
{
    return bench_err("talus %s: %s: %s", what, talus_strerror(rc), talus_errmsg());
}

static const char *t_version(void)
{
    return TALUS_VERSION_STRING;
}

static int t_open(const bench_config *cfg, const char *dir, bench_engine **out)
{
    static const int comp[] = {TALUS_COMPRESS_NONE, TALUS_COMPRESS_LZ4, TALUS_COMPRESS_ZSTD};
    static const int dur[] = {TALUS_DURABILITY_NONE, TALUS_DURABILITY_BUFFERED,
                              TALUS_DURABILITY_SYNC};
    talus_options o;
    talus_options_init(&o);
    o.create_if_missing = 1;
    o.block_cache_size = cfg->cache_size;
    o.durability = dur[cfg->durability];
    o.tree.write_buffer_size = cfg->write_buffer_size;
    o.tree.min_blob_size = cfg->min_blob_size;
    o.tree.block_size = cfg->block_size;
    o.tree.bloom_bits_per_key = cfg->bloom_bits;
    o.tree.compression = comp[cfg->compression];

    bench_engine *e = calloc(1, sizeof *e);
    if (!e)
        return bench_err("out of memory");
    int rc = talus_open(dir, &o, &e->db);
    if (rc < 0) {
        free(e);
        return terr(rc, "open");
    }
    e->tree = talus_default_tree(e->db);
    e->durability = o.durability;
    *out = e;
    return 0;
}

static void t_close(bench_engine *e)
{
    int rc = talus_close(e->db);
    if (rc < 0)
        fprintf(stderr, "talus-bench: talus close: %s: %s\n", talus_strerror(rc), talus_errmsg());
    free(e);
}

static int t_settle(bench_engine *e)
{
    int rc = talus_wait_idle(e->db);
    return rc < 0 ? terr(rc, "wait_idle") : 0;
}

static int t_sess_new(bench_engine *e, bench_sess **out)
{
    bench_sess *s = calloc(1, sizeof *s);
    if (!s)
        return bench_err("out of memory");
    s->e = e;
    s->tree = e->tree;
    int rc = talus_batch_new(&s->batch);
    if (rc < 0) {
        free(s);
        return terr(rc, "batch_new");
    }
    *out = s;
    return 0;
}

static void t_sess_free(bench_sess *s)
{
    talus_batch_free(s->batch);
    talus_free(s->last);
    free(s);
}

static int t_put(bench_sess *s, const char *k, size_t kl, const char *v, size_t vl)
{
    int rc = talus_put(s->tree, k, kl, v, vl);
    return rc < 0 ? terr(rc, "put") : 0;
}

static int t_del(bench_sess *s, const char *k, size_t kl)
{
    int rc = talus_delete(s->tree, k, kl);
    return rc < 0 ? terr(rc, "delete") : 0;
}

static int t_write(bench_sess *s, const bench_wop *ops, size_t n)
{
    talus_batch_clear(s->batch);
    for (size_t i = 0; i < n; i++) {
        int rc = ops[i].del
                     ? talus_batch_delete(s->batch, s->tree, ops[i].k, ops[i].kl)
                     : talus_batch_put(s->batch, s->tree, ops[i].k, ops[i].kl, ops[i].v, ops[i].vl);
        if (rc < 0)
            return terr(rc, "batch");
    }
    int rc = talus_batch_commit(s->e->db, s->batch, s->e->durability, NULL);
    return rc < 0 ? terr(rc, "batch_commit") : 0;
}

static int t_get(bench_sess *s, const char *k, size_t kl, const char **v, size_t *vl)
{
    talus_free(s->last);
    s->last = NULL;
    void *val = NULL;
    int rc = talus_get(s->tree, NULL, k, kl, &val, vl);
    if (rc == TALUS_ENOTFOUND)
        return 0;
    if (rc < 0)
        return terr(rc, "get");
    s->last = val;
    *v = val;
    return 1;
}

static int t_iter_new(bench_sess *s, bench_iter **out)
{
    bench_iter *it = calloc(1, sizeof *it);
    if (!it)
        return bench_err("out of memory");
    talus_iter_options o;
    talus_iter_options_init(&o);
    int rc = talus_iter_new(s->tree, &o, &it->it);
    if (rc < 0) {
        free(it);
        return terr(rc, "iter_new");
    }
    *out = it;
    return 0;
}

static void t_iter_free(bench_iter *it)
{
    talus_iter_free(it->it);
    free(it);
}

static void t_seek_first(bench_iter *it)
{
    talus_iter_seek_first(it->it);
}

static void t_seek_last(bench_iter *it)
{
    talus_iter_seek_last(it->it);
}

static void t_seek(bench_iter *it, const char *k, size_t kl)
{
    talus_iter_seek(it->it, k, kl);
}

static void t_next(bench_iter *it)
{
    talus_iter_next(it->it);
}

static void t_prev(bench_iter *it)
{
    talus_iter_prev(it->it);
}

static int t_valid(bench_iter *it)
{
    return talus_iter_valid(it->it);
}

static void t_entry(bench_iter *it, const char **k, size_t *kl, const char **v, size_t *vl)
{
    *k = talus_iter_key(it->it, kl);
    *v = talus_iter_value(it->it, vl);
}

static int t_iter_status(bench_iter *it)
{
    int rc = talus_iter_status(it->it);
    return rc < 0 ? terr(rc, "iterator") : 0;
}

static void t_differs(const bench_config *cfg, char *buf, size_t n)
{
    snprintf(buf, n,
             "%s"
             "defaults otherwise: 2 background threads, 2 sealed memtables before writes stop,\n"
             "L0 triggers 4/20/36, L1 256 MiB x10, 64 MiB tables, 1000 open files\n",
             cfg->min_blob_size ? "one blob file per separated value, synced when written\n" : "");
}

const bench_adapter bench_talus = {
    .name = "talus",
    .version = t_version,
    .open = t_open,
    .close = t_close,
    .settle = t_settle,
    .sess_new = t_sess_new,
    .sess_free = t_sess_free,
    .put = t_put,
    .del = t_del,
    .write = t_write,
    .get = t_get,
    .iter_new = t_iter_new,
    .iter_free = t_iter_free,
    .seek_first = t_seek_first,
    .seek_last = t_seek_last,
    .seek = t_seek,
    .next = t_next,
    .prev = t_prev,
    .valid = t_valid,
    .entry = t_entry,
    .iter_status = t_iter_status,
    .min_durability = BENCH_DUR_NONE,
    .differs = t_differs,
};

#endif /* BENCH_NO_TALUS */
