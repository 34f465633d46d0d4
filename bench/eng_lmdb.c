/*
 * eng_lmdb.c - the LMDB adapter (lmdb.h). LMDB is a copy-on-write B+tree in
 * one memory-mapped file: no memtable, no bloom filter, no compression and
 * no block cache (the OS page cache is its cache). Every write is its own
 * transaction, like the single puts of the other engines, and a batch is
 * one transaction. Durability none and buffered commit with
 * MDB_NOSYNC|MDB_NOMETASYNC (written to the file, not synced); sync syncs
 * every commit. Write transactions are serialized by LMDB's writer lock, so
 * writer threads take turns (no group commit). Each reader
 * thread keeps one read transaction that it resets between operations, so
 * every read sees the latest commit.
 */
#include "config.h"

#ifdef HAVE_LMDB

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "bench.h"

struct bench_engine {
    MDB_env *env;
    MDB_dbi dbi;
};

struct bench_sess {
    bench_engine *e;
    MDB_txn *rtxn; /* reset between reads */
};

struct bench_iter {
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int valid;
    int err;
};

static int merr(int rc, const char *what)
{
    return bench_err("lmdb %s: %s", what, mdb_strerror(rc));
}

static const char *m_version(void)
{
    static char buf[32];
    int major, minor, patch;
    mdb_version(&major, &minor, &patch);
    snprintf(buf, sizeof buf, "%d.%d.%d", major, minor, patch);
    return buf;
}

/* The map must hold the whole database. It is reserved address space, not
 * disk: the file only grows as pages are used. Leave room for half-full
 * pages after random inserts and for pages still held by old readers. */
static size_t map_size(const bench_config *cfg)
{
    const size_t page = 4096;
    size_t per = cfg->key_size + cfg->value_size + 64;
    if (cfg->value_size > page / 2) /* stored on overflow pages */
        per = cfg->key_size + 64 + (cfg->value_size + 64 + page - 1) / page * page;
    size_t size = (size_t)cfg->num * per * 4 + (256u << 20);
    if (size < (1ull << 30))
        size = 1ull << 30;
    return (size + page - 1) / page * page;
}

static int m_open(const bench_config *cfg, const char *dir, bench_engine **out)
{
    bench_engine *e = calloc(1, sizeof *e);
    MDB_txn *txn = NULL;
    int rc;
    if (!e)
        return bench_err("out of memory");
    if ((rc = mdb_env_create(&e->env)) != 0)
        goto fail;
    if ((rc = mdb_env_set_mapsize(e->env, map_size(cfg))) != 0)
        goto fail;
    if ((rc = mdb_env_set_maxreaders(e->env, (unsigned)cfg->threads + 64)) != 0)
        goto fail;
    if (cfg->key_size > (size_t)mdb_env_get_maxkeysize(e->env)) {
        bench_err("lmdb: --key_size=%zu is over LMDB's limit of %d", cfg->key_size,
                  mdb_env_get_maxkeysize(e->env));
        mdb_env_close(e->env);
        free(e);
        return -1;
    }
    /* MDB_NOTLS: a read transaction belongs to its session, not to the
     * thread that happened to create it. */
    unsigned flags = MDB_NOTLS;
    if (cfg->durability != BENCH_DUR_SYNC)
        flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    if ((rc = mdb_env_open(e->env, dir, flags, 0644)) != 0)
        goto fail;
    if ((rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0)
        goto fail;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &e->dbi)) != 0)
        goto fail;
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        goto fail;
    }
    *out = e;
    return 0;
fail:
    if (txn)
        mdb_txn_abort(txn);
    if (e->env)
        mdb_env_close(e->env);
    free(e);
    return merr(rc, "open");
}

static void m_close(bench_engine *e)
{
    /* With MDB_NOSYNC nothing reached the disk for sure yet; a close
     * should leave a durable database, as the other engines do. */
    mdb_env_sync(e->env, 1);
    mdb_env_close(e->env);
    free(e);
}

/* LMDB does all its work inside the calls: there is never anything to wait
 * for, which is a real 0, not an unknown. */
static int m_settle(bench_engine *e)
{
    (void)e;
    return 0;
}

static int m_sess_new(bench_engine *e, bench_sess **out)
{
    bench_sess *s = calloc(1, sizeof *s);
    if (!s)
        return bench_err("out of memory");
    s->e = e;
    int rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &s->rtxn);
    if (rc != 0) {
        free(s);
        return merr(rc, "read txn");
    }
    mdb_txn_reset(s->rtxn);
    *out = s;
    return 0;
}

static void m_sess_free(bench_sess *s)
{
    mdb_txn_abort(s->rtxn);
    free(s);
}

static int m_put(bench_sess *s, const char *k, size_t kl, const char *v, size_t vl)
{
    MDB_txn *txn;
    MDB_val mk = {kl, (void *)k}, mv = {vl, (void *)v};
    int rc = mdb_txn_begin(s->e->env, NULL, 0, &txn);
    if (rc != 0)
        return merr(rc, "begin");
    if ((rc = mdb_put(txn, s->e->dbi, &mk, &mv, 0)) != 0) {
        mdb_txn_abort(txn);
        return merr(rc, "put");
    }
    rc = mdb_txn_commit(txn);
    return rc ? merr(rc, "commit") : 0;
}

static int m_del(bench_sess *s, const char *k, size_t kl)
{
    MDB_txn *txn;
    MDB_val mk = {kl, (void *)k};
    int rc = mdb_txn_begin(s->e->env, NULL, 0, &txn);
    if (rc != 0)
        return merr(rc, "begin");
    rc = mdb_del(txn, s->e->dbi, &mk, NULL);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn); /* nothing changed: nothing to commit */
        return 0;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return merr(rc, "delete");
    }
    rc = mdb_txn_commit(txn);
    return rc ? merr(rc, "commit") : 0;
}

static int m_write(bench_sess *s, const bench_wop *ops, size_t n)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->e->env, NULL, 0, &txn);
    if (rc != 0)
        return merr(rc, "begin");
    for (size_t i = 0; i < n; i++) {
        MDB_val mk = {ops[i].kl, (void *)ops[i].k}, mv = {ops[i].vl, (void *)ops[i].v};
        rc = ops[i].del ? mdb_del(txn, s->e->dbi, &mk, NULL) : mdb_put(txn, s->e->dbi, &mk, &mv, 0);
        if (rc != 0 && !(ops[i].del && rc == MDB_NOTFOUND)) {
            mdb_txn_abort(txn);
            return merr(rc, ops[i].del ? "delete" : "put");
        }
    }
    rc = mdb_txn_commit(txn);
    return rc ? merr(rc, "commit") : 0;
}

static int m_get(bench_sess *s, const char *k, size_t kl, const char **v, size_t *vl)
{
    MDB_val mk = {kl, (void *)k}, mv;
    mdb_txn_reset(s->rtxn);
    int rc = mdb_txn_renew(s->rtxn);
    if (rc != 0)
        return merr(rc, "renew");
    /* The value stays mapped until the next reset, i.e. the next call. */
    rc = mdb_get(s->rtxn, s->e->dbi, &mk, &mv);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return merr(rc, "get");
    *v = mv.mv_data;
    *vl = mv.mv_size;
    return 1;
}

static int m_iter_new(bench_sess *s, bench_iter **out)
{
    bench_iter *it = calloc(1, sizeof *it);
    if (!it)
        return bench_err("out of memory");
    int rc = mdb_txn_begin(s->e->env, NULL, MDB_RDONLY, &it->txn);
    if (rc == 0 && (rc = mdb_cursor_open(it->txn, s->e->dbi, &it->cur)) != 0)
        mdb_txn_abort(it->txn);
    if (rc != 0) {
        free(it);
        return merr(rc, "cursor");
    }
    *out = it;
    return 0;
}

static void m_iter_free(bench_iter *it)
{
    mdb_cursor_close(it->cur);
    mdb_txn_abort(it->txn);
    free(it);
}

static void m_move(bench_iter *it, MDB_cursor_op op)
{
    int rc = mdb_cursor_get(it->cur, &it->k, &it->v, op);
    it->valid = rc == 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        it->err = rc;
}

static void m_seek_first(bench_iter *it)
{
    m_move(it, MDB_FIRST);
}

static void m_seek_last(bench_iter *it)
{
    m_move(it, MDB_LAST);
}

static void m_seek(bench_iter *it, const char *k, size_t kl)
{
    it->k.mv_size = kl;
    it->k.mv_data = (void *)k;
    m_move(it, MDB_SET_RANGE);
}

static void m_next(bench_iter *it)
{
    m_move(it, MDB_NEXT);
}

static void m_prev(bench_iter *it)
{
    m_move(it, MDB_PREV);
}

static int m_valid(bench_iter *it)
{
    return it->valid;
}

static void m_entry(bench_iter *it, const char **k, size_t *kl, const char **v, size_t *vl)
{
    *k = it->k.mv_data;
    *kl = it->k.mv_size;
    *v = it->v.mv_data;
    *vl = it->v.mv_size;
}

static int m_iter_status(bench_iter *it)
{
    return it->err ? merr(it->err, "cursor") : 0;
}

static void m_differs(const bench_config *cfg, char *buf, size_t n)
{
    snprintf(buf, n,
             "B+tree: no memtable, bloom filter, compression or block cache (the OS page\n"
             "cache is its cache); one transaction per write%s; writers take turns\n"
             "(one write transaction at a time, no group commit); reads return pointers\n"
             "into the map (no copy); %s\n%s",
             cfg->batch_size > 1 ? " (per batch)" : "",
             cfg->durability == BENCH_DUR_SYNC
                 ? "each commit is synced"
                 : "MDB_NOSYNC|MDB_NOMETASYNC (commits are written, not synced)",
             cfg->min_blob_size ? "large values go to overflow pages (no separate option)\n" : "");
}

const bench_adapter bench_lmdb = {
    .name = "lmdb",
    .version = m_version,
    .open = m_open,
    .close = m_close,
    .settle = m_settle,
    .sess_new = m_sess_new,
    .sess_free = m_sess_free,
    .put = m_put,
    .del = m_del,
    .write = m_write,
    .get = m_get,
    .iter_new = m_iter_new,
    .iter_free = m_iter_free,
    .seek_first = m_seek_first,
    .seek_last = m_seek_last,
    .seek = m_seek,
    .next = m_next,
    .prev = m_prev,
    .valid = m_valid,
    .entry = m_entry,
    .iter_status = m_iter_status,
    .min_durability = BENCH_DUR_BUFFERED, /* every commit writes the file */
    .differs = m_differs,
};

#endif /* HAVE_LMDB */
