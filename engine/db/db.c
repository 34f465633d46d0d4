/*
 * db.c - opening and closing a database: the directory and its LOCK, the
 * tree registry in DBMETA, option defaults, and background workers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "util/coding.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/slice.h"

#define DBMETA_MAGIC 0x4154454d53554c54ull /* "TLUSMETA" */
#define DEFAULT_TREE "default"

void talus_tree_options_init(talus_tree_options *o)
{
    memset(o, 0, sizeof *o);
    o->write_buffer_size = 64u << 20;
    o->max_immutable_memtables = 2;
    o->block_size = 4096;
    o->block_restart_interval = 16;
    o->bloom_bits_per_key = 10;
    o->compression = TALUS_COMPRESS_NONE;
    o->compression_level = 0;
    o->compaction_style = TALUS_COMPACTION_LEVELED;
    o->num_levels = 7;
    o->l0_compaction_trigger = 4;
    o->l0_slowdown_trigger = 20;
    o->l0_stop_trigger = 36;
    o->max_bytes_for_level_base = 256ull << 20;
    o->level_size_multiplier = 10;
    o->target_file_size = 64ull << 20;
}

void talus_options_init(talus_options *o)
{
    memset(o, 0, sizeof *o);
    o->create_if_missing = 1;
    o->block_cache_size = 64u << 20;
    o->max_open_files = 1000;
    o->background_threads = 2;
    o->durability = TALUS_DURABILITY_BUFFERED;
    talus_tree_options_init(&o->tree);
    o->journal_segment_size = 64ull << 20;
    o->max_journal_size = 512ull << 20;
    o->journal_recovery = TALUS_RECOVER_STRICT;
}

void talus_free(void *p)
{
    free(p);
}

static int check_tree_options(const talus_tree_options *o)
{
    const char *bad = NULL;
    if (o->write_buffer_size < 4096)
        bad = "write_buffer_size must be at least 4096";
    else if (o->max_immutable_memtables < 1 || o->max_immutable_memtables > 32)
        bad = "max_immutable_memtables must be 1..32";
    else if (o->block_size < 256 || o->block_size > (64u << 20))
        bad = "block_size must be 256 bytes..64 MiB";
    else if (o->block_restart_interval < 1 || o->block_restart_interval > 1024)
        bad = "block_restart_interval must be 1..1024";
    else if (o->bloom_bits_per_key < 0 || o->bloom_bits_per_key > 64)
        bad = "bloom_bits_per_key must be 0..64";
    else if (o->compression < TALUS_COMPRESS_NONE || o->compression > TALUS_COMPRESS_ZSTD)
        bad = "unknown compression";
    else if (o->compaction_style != TALUS_COMPACTION_LEVELED)
        bad = "unknown compaction style";
    else if (o->num_levels < 2 || o->num_levels > 16)
        bad = "num_levels must be 2..16";
    else if (o->l0_compaction_trigger < 1 || o->l0_slowdown_trigger < o->l0_compaction_trigger ||
             o->l0_stop_trigger < o->l0_slowdown_trigger)
        bad = "need 1 <= l0_compaction_trigger <= l0_slowdown_trigger <= l0_stop_trigger";
    else if (o->max_bytes_for_level_base < 4096 || o->level_size_multiplier < 2)
        bad = "max_bytes_for_level_base must be >= 4096 and level_size_multiplier >= 2";
    else if (o->target_file_size < 4096)
        bad = "target_file_size must be at least 4096";
    if (bad)
        return tl_err(TALUS_EINVAL, "invalid tree options: %s", bad);
    return 0;
}

/* ---- DBMETA ------------------------------------------------------------- */

int db_meta_write(talus_db *db)
{
    tl_buf b = {0};
    int rc;
    TRY_OUT(tl_buf_put_fixed64(&b, DBMETA_MAGIC));
    TRY_OUT(tl_buf_put_fixed32(&b, db->format_version));
    TRY_OUT(tl_buf_put_varint64(&b, db->next_tree_id));
    size_t live = 0;
    for (size_t i = 0; i < db->ntrees; i++)
        live += !db->trees[i]->dropped;
    TRY_OUT(tl_buf_put_varint64(&b, live));
    for (size_t i = 0; i < db->ntrees; i++) {
        if (db->trees[i]->dropped)
            continue;
        TRY_OUT(tl_buf_put_varint64(&b, db->trees[i]->id));
        TRY_OUT(tl_buf_put_lenbytes(&b, db->trees[i]->name, strlen(db->trees[i]->name)));
    }
    TRY_OUT(tl_buf_put_varint64(&b, db->npins));
    for (size_t i = 0; i < db->npins; i++)
        TRY_OUT(tl_buf_put_varint64(&b, db->pins[i]));
    uint64_t floor = db->seq_floor;
    if (db->npins && db->pins[db->npins - 1] > floor)
        floor = db->pins[db->npins - 1];
    TRY_OUT(tl_buf_put_varint64(&b, floor));
    TRY_OUT(tl_buf_put_fixed64(&b, tl_xxh3(b.data, b.len)));
    rc = tl_env_write_file_atomic(db->env, db->path, "DBMETA", b.data, b.len);
out:
    tl_buf_free(&b);
    return rc;
}

typedef struct meta_tree {
    uint32_t id;
    char *name;
} meta_tree;

static void free_meta_trees(meta_tree *mt, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(mt[i].name);
    free(mt);
}

/* Parse DBMETA; every field is checked before use. */
static int meta_parse(talus_db *db, const uint8_t *p, size_t n, meta_tree **out, size_t *nout)
{
    const char *path = db->path;
    if (n < 8 + 4 + 8 || tl_get_fixed64(p) != DBMETA_MAGIC)
        return tl_err(TALUS_ECORRUPT, "%s/DBMETA: not a talus database metadata file", path);
    if (tl_get_fixed64(p + n - 8) != tl_xxh3(p, n - 8))
        return tl_err(TALUS_ECORRUPT, "%s/DBMETA: checksum mismatch", path);
    uint32_t fv = tl_get_fixed32(p + 8);
    if (fv > DB_FORMAT_MAX_READ)
        return tl_err(TALUS_EVERSION,
                      "%s: database uses format V%u features; this build reads up to V%u", path, fv,
                      DB_FORMAT_MAX_READ);
    if (fv < DB_FORMAT_V3)
        return tl_err(TALUS_ECORRUPT, "%s/DBMETA: format version %u is invalid", path, fv);
    db->format_version = fv;
    const uint8_t *q = p + 12, *end = p + n - 8;
    uint64_t next_id, count;
    size_t k;
    if (!(k = tl_get_varint64(q, end, &next_id)) || next_id > UINT32_MAX)
        return tl_err(TALUS_ECORRUPT, "%s/DBMETA: bad next tree id", path);
    q += k;
    if (!(k = tl_get_varint64(q, end, &count)) || count > (uint64_t)(end - q))
        return tl_err(TALUS_ECORRUPT, "%s/DBMETA: bad tree count", path);
    q += k;
    meta_tree *mt = calloc(count ? count : 1, sizeof *mt);
    if (!mt)
        return tl_err(TALUS_ENOMEM, "out of memory reading DBMETA");
    size_t i;
    for (i = 0; i < count; i++) {
        uint64_t id, len;
        if (!(k = tl_get_varint64(q, end, &id)) || id >= next_id)
            goto bad;
        q += k;
        if (!(k = tl_get_varint64(q, end, &len)) || len == 0 || len > DB_MAX_TREE_NAME ||
            len > (uint64_t)(end - q - (ptrdiff_t)k))
            goto bad;
        q += k;
        if (memchr(q, 0, len))
            goto bad;
        mt[i].id = (uint32_t)id;
        mt[i].name = strndup((const char *)q, len);
        if (!mt[i].name) {
            free_meta_trees(mt, i);
            return tl_err(TALUS_ENOMEM, "out of memory reading DBMETA");
        }
        q += len;
    }
    uint64_t npins;
    if (!(k = tl_get_varint64(q, end, &npins)) || npins > (uint64_t)(end - q)) {
        free_meta_trees(mt, i);
        return tl_err(TALUS_ECORRUPT, "%s/DBMETA: bad snapshot count", path);
    }
    q += k;
    db->pins = calloc(npins ? npins : 1, sizeof *db->pins);
    if (!db->pins) {
        free_meta_trees(mt, i);
        return tl_err(TALUS_ENOMEM, "out of memory reading DBMETA");
    }
    db->pins_cap = npins ? npins : 1;
    for (uint64_t j = 0; j < npins; j++) {
        uint64_t seq;
        if (!(k = tl_get_varint64(q, end, &seq)) || (j > 0 && seq <= db->pins[j - 1])) {
            free_meta_trees(mt, i);
            return tl_err(TALUS_ECORRUPT, "%s/DBMETA: bad pinned snapshot %llu", path,
                          (unsigned long long)j);
        }
        db->pins[j] = seq;
        q += k;
    }
    db->npins = npins;
    /* The seqno floor came later: a DBMETA without it ends here. */
    uint64_t floor = npins ? db->pins[npins - 1] : 0;
    if (q != end) {
        uint64_t f;
        if (!(k = tl_get_varint64(q, end, &f)) || f < floor) {
            free_meta_trees(mt, i);
            return tl_err(TALUS_ECORRUPT, "%s/DBMETA: bad seqno floor", path);
        }
        floor = f;
        q += k;
    }
    db->seq_floor = floor;
    if (q != end)
        goto bad;
    db->next_tree_id = (uint32_t)next_id;
    *out = mt;
    *nout = count;
    return 0;
bad:
    free_meta_trees(mt, i);
    return tl_err(TALUS_ECORRUPT, "%s/DBMETA: malformed tree entry %zu", path, i);
}

/* ---- Background workers ------------------------------------------------- */

static void enqueue_locked(talus_db *db, talus_tree *t)
{
    if (t->queued || t->dropped || db->bg_stop)
        return;
    t->queued = true;
    t->next_queued = NULL;
    if (db->queue_tail)
        db->queue_tail->next_queued = t;
    else
        db->queue_head = t;
    db->queue_tail = t;
    pthread_cond_signal(&db->bg_cv);
}

static void schedule_cb(void *ctx, tr_tree *tr)
{
    (void)tr;
    talus_tree *t = ctx;
    talus_db *db = t->db;
    pthread_mutex_lock(&db->bg_mu);
    enqueue_locked(db, t);
    pthread_mutex_unlock(&db->bg_mu);
}

static int snapshots_cb(void *ctx, uint64_t **seqs, size_t *n)
{
    talus_tree *t = ctx;
    return db_snapshot_seqs(t->db, seqs, n);
}

static void on_flush_cb(void *ctx, tr_tree *tr)
{
    (void)tr;
    talus_tree *t = ctx;
    /* The next commit leader trims the journal (it holds write_mu). */
    atomic_store(&t->db->trim_journal, true);
}

static int before_seal_cb(void *ctx, tr_tree *tr)
{
    (void)tr;
    talus_tree *t = ctx;
    talus_db *db = t->db;
    /* REQUIRES: write_mu (every seal happens in the write path, in
     * talus_flush or in close, all under write_mu). */
    if (!db->journal || db->error)
        return 0;
    int rc = jnl_writer_sync(db->journal);
    if (rc < 0)
        return tl_err(rc, "journal sync before a flush: %s", tl_errmsg());
    return 0;
}

static void *worker_main(void *arg)
{
    talus_db *db = arg;
    pthread_mutex_lock(&db->bg_mu);
    while (!db->bg_stop) {
        talus_tree *t = db->queue_head;
        if (!t) {
            pthread_cond_wait(&db->bg_cv, &db->bg_mu);
            continue;
        }
        db->queue_head = t->next_queued;
        if (!db->queue_head)
            db->queue_tail = NULL;
        t->queued = false;
        t->running++;
        pthread_mutex_unlock(&db->bg_mu);
        int more = tr_background_work(t->tr);
        pthread_mutex_lock(&db->bg_mu);
        t->running--;
        if (more)
            enqueue_locked(db, t);
        pthread_cond_broadcast(&db->idle_cv);
    }
    pthread_mutex_unlock(&db->bg_mu);
    return NULL;
}

/* Remove t from the queue and wait until no worker runs it. */
static void unschedule(talus_db *db, talus_tree *t)
{
    pthread_mutex_lock(&db->bg_mu);
    t->dropped = true;
    talus_tree **pp = &db->queue_head, *prev = NULL;
    while (*pp) {
        if (*pp == t) {
            *pp = t->next_queued;
            if (db->queue_tail == t)
                db->queue_tail = prev;
            break;
        }
        prev = *pp;
        pp = &(*pp)->next_queued;
    }
    t->queued = false;
    while (t->running > 0)
        pthread_cond_wait(&db->idle_cv, &db->bg_mu);
    pthread_mutex_unlock(&db->bg_mu);
}

static void stop_workers(talus_db *db)
{
    pthread_mutex_lock(&db->bg_mu);
    db->bg_stop = true;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->bg_mu);
    for (int i = 0; i < db->nworkers; i++)
        pthread_join(db->workers[i], NULL);
    db->nworkers = 0;
}

/* ---- Trees ------------------------------------------------------------- */

static int tree_dir(const talus_db *db, uint32_t id, char *buf, size_t n)
{
    int len = snprintf(buf, n, "%s/trees/%u", db->path, id);
    if (len < 0 || (size_t)len >= n)
        return tl_err(TALUS_EINVAL, "database path too long: %s", db->path);
    return 0;
}

/* Open tree `id` and register it. REQUIRES: db->mu held. */
static int open_tree(talus_db *db, uint32_t id, const char *name, bool create,
                     const talus_tree_options *opts, talus_tree **out)
{
    char dir[4096];
    TRY(tree_dir(db, id, dir, sizeof dir));
    TRY(check_tree_options(opts));
    if (db->ntrees == db->trees_cap) {
        size_t cap = db->trees_cap ? db->trees_cap * 2 : 8;
        talus_tree **nt = realloc(db->trees, cap * sizeof *nt);
        if (!nt)
            return tl_err(TALUS_ENOMEM, "out of memory opening tree %s", name);
        db->trees = nt;
        db->trees_cap = cap;
    }
    talus_tree *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return tl_err(TALUS_ENOMEM, "out of memory opening tree %s", name);
    }
    t->db = db;
    t->id = id;
    tr_config cfg = {
        .env = db->env,
        .dir = dir,
        .name = name,
        .opts = *opts,
        .block_cache = db->block_cache,
        .max_open_files = db->opts.max_open_files,
        .create_if_missing = create,
        .read_only = db->opts.read_only != 0,
        .schedule = db->opts.read_only ? NULL : schedule_cb,
        .snapshots = snapshots_cb,
        .on_flush = on_flush_cb,
        .before_seal = before_seal_cb,
        .ctx = t,
    };
    int rc = tr_open(&cfg, &t->tr);
    if (rc < 0) {
        free(t->name);
        free(t);
        return rc;
    }
    db->trees[db->ntrees++] = t;
    uint64_t last = tr_last_seq(t->tr);
    if (last > atomic_load(&db->last_seq)) {
        atomic_store(&db->last_seq, last);
        atomic_store(&db->published_seq, last);
    }
    *out = t;
    return 0;
}

static talus_tree *find_tree(talus_db *db, const char *name)
{
    for (size_t i = 0; i < db->ntrees; i++)
        if (!db->trees[i]->dropped && !strcmp(db->trees[i]->name, name))
            return db->trees[i];
    return NULL;
}

talus_tree *talus_default_tree(talus_db *db)
{
    pthread_mutex_lock(&db->mu);
    talus_tree *t = find_tree(db, DEFAULT_TREE);
    pthread_mutex_unlock(&db->mu);
    return t;
}

const char *talus_tree_name(const talus_tree *t)
{
    return t->name;
}

int talus_tree_open(talus_db *db, const char *name, int create, const talus_tree_options *opts,
                    talus_tree **out)
{
    if (!db || !name || !out)
        return tl_err(TALUS_EINVAL, "talus_tree_open: NULL argument");
    size_t len = strlen(name);
    if (len == 0 || len > DB_MAX_TREE_NAME)
        return tl_err(TALUS_EINVAL, "tree name must be 1..%d bytes", DB_MAX_TREE_NAME);
    pthread_mutex_lock(&db->mu);
    int rc = 0;
    talus_tree *t = find_tree(db, name);
    if (t) {
        *out = t;
        goto out;
    }
    if (!create) {
        rc = tl_err(TALUS_ENOTFOUND, "no tree named \"%s\"", name);
        goto out;
    }
    if (db->opts.read_only) {
        rc = tl_err(TALUS_EREADONLY, "cannot create tree \"%s\": database opened read-only", name);
        goto out;
    }
    uint32_t id = db->next_tree_id++;
    TRY_OUT(open_tree(db, id, name, true, opts ? opts : &db->opts.tree, out));
    rc = db_meta_write(db);
    if (rc < 0) {
        (*out)->dropped = true; /* not recorded: forget it */
    }
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int talus_tree_list(talus_db *db, char ***names, size_t *count)
{
    pthread_mutex_lock(&db->mu);
    char **v = calloc(db->ntrees + 1, sizeof *v);
    size_t n = 0;
    int rc = 0;
    if (!v) {
        rc = tl_err(TALUS_ENOMEM, "out of memory listing trees");
        goto out;
    }
    for (size_t i = 0; i < db->ntrees; i++) {
        if (db->trees[i]->dropped)
            continue;
        if (!(v[n] = strdup(db->trees[i]->name))) {
            talus_free_names(v);
            v = NULL;
            rc = tl_err(TALUS_ENOMEM, "out of memory listing trees");
            goto out;
        }
        n++;
    }
    *names = v;
    *count = n;
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

void talus_free_names(char **names)
{
    if (!names)
        return;
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

static void remove_tree_dir(talus_db *db, uint32_t id)
{
    char dir[4096];
    if (tree_dir(db, id, dir, sizeof dir) < 0)
        return;
    char **names = NULL;
    size_t n = 0;
    if (tl_env_list_dir(db->env, dir, &names, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            char path[4400];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            tl_env_remove(db->env, path);
        }
        tl_env_free_names(names, n);
    }
    tl_env_rmdir(db->env, dir);
}

int talus_tree_drop(talus_db *db, const char *name)
{
    if (!strcmp(name, DEFAULT_TREE))
        return tl_err(TALUS_EINVAL, "the default tree cannot be dropped");
    if (db->opts.read_only)
        return tl_err(TALUS_EREADONLY, "database opened read-only");
    pthread_mutex_lock(&db->mu);
    talus_tree *t = find_tree(db, name);
    if (!t) {
        pthread_mutex_unlock(&db->mu);
        return tl_err(TALUS_ENOTFOUND, "no tree named \"%s\"", name);
    }
    t->dropped = true;
    int rc = db_meta_write(db);
    if (rc < 0) {
        t->dropped = false;
        pthread_mutex_unlock(&db->mu);
        return rc;
    }
    pthread_mutex_unlock(&db->mu);
    unschedule(db, t);
    tr_close(t->tr);
    t->tr = NULL;
    remove_tree_dir(db, t->id);
    return 0;
}

/* ---- Open / close -------------------------------------------------------- */

static void db_free(talus_db *db)
{
    stop_workers(db);
    for (size_t i = 0; i < db->ntrees; i++) {
        if (db->trees[i]->tr)
            tr_close(db->trees[i]->tr);
        free(db->trees[i]->name);
        free(db->trees[i]);
    }
    free(db->trees);
    free(db->workers);
    jnl_writer_close(db->journal);
    free(db->journal_dir);
    free(db->segs);
    free(db->pins);
    tl_buf_free(&db->scratch);
    if (db->block_cache)
        tl_cache_free(db->block_cache);
    if (db->lock)
        tl_env_unlock(db->env, db->lock);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->write_mu);
    pthread_mutex_destroy(&db->q_mu);
    pthread_mutex_destroy(&db->bg_mu);
    pthread_cond_destroy(&db->bg_cv);
    pthread_cond_destroy(&db->idle_cv);
    free(db->path);
    free(db);
}

static int open_existing(talus_db *db)
{
    uint8_t *data = NULL;
    size_t n = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/DBMETA", db->path);
    TRY(tl_env_read_file(db->env, path, &data, &n));
    meta_tree *mt = NULL;
    size_t nmt = 0;
    int rc = meta_parse(db, data, n, &mt, &nmt);
    free(data);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nmt && rc == 0; i++) {
        talus_tree *t;
        rc = open_tree(db, mt[i].id, mt[i].name, false, &db->opts.tree, &t);
    }
    free_meta_trees(mt, nmt);
    if (rc == 0 && !find_tree(db, DEFAULT_TREE))
        rc = tl_err(TALUS_ECORRUPT, "%s/DBMETA: the default tree is missing", db->path);
    return rc;
}

static int create_new(talus_db *db)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/trees", db->path);
    TRY(tl_env_mkdir(db->env, path));
    db->format_version = DB_FORMAT_V3;
    db->next_tree_id = 1;
    talus_tree *t;
    TRY(open_tree(db, db->next_tree_id++, DEFAULT_TREE, true, &db->opts.tree, &t));
    TRY(db_meta_write(db));
    return tl_env_sync_dir(db->env, db->path);
}

int talus_open(const char *path, const talus_options *opts, talus_db **out)
{
    return db_open_env(path, opts, tl_env_posix(), out);
}

int db_open_env(const char *path, const talus_options *opts, tl_env *env, talus_db **out)
{
    talus_options defaults;
    if (!opts) {
        talus_options_init(&defaults);
        opts = &defaults;
    }
    if (!path || !*path || !out)
        return tl_err(TALUS_EINVAL, "talus_open: a database path is required");
    TRY(check_tree_options(&opts->tree));
    if (opts->background_threads < 1 || opts->background_threads > 64)
        return tl_err(TALUS_EINVAL, "background_threads must be 1..64");
    if (opts->durability < TALUS_DURABILITY_NONE || opts->durability > TALUS_DURABILITY_SYNC)
        return tl_err(TALUS_EINVAL, "unknown durability %d", opts->durability);
    if (opts->journal_segment_size < 4096 || opts->max_journal_size < opts->journal_segment_size)
        return tl_err(TALUS_EINVAL, "journal_segment_size must be >= 4096 and <= max_journal_size");
    if (opts->journal_recovery != TALUS_RECOVER_STRICT &&
        opts->journal_recovery != TALUS_RECOVER_TO_LAST_GOOD)
        return tl_err(TALUS_EINVAL, "unknown journal_recovery %d", opts->journal_recovery);

    talus_db *db = calloc(1, sizeof *db);
    if (!db)
        return tl_err(TALUS_ENOMEM, "out of memory opening %s", path);
    db->env = env;
    db->opts = *opts;
    if (db->opts.max_open_files < 16)
        db->opts.max_open_files = 16;
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->write_mu, NULL);
    pthread_mutex_init(&db->q_mu, NULL);
    pthread_mutex_init(&db->bg_mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    pthread_cond_init(&db->idle_cv, NULL);
    db->snap_head.next = db->snap_head.prev = &db->snap_head;
    int rc;
    db->path = strdup(path);
    if (!db->path) {
        rc = tl_err(TALUS_ENOMEM, "out of memory opening %s", path);
        goto fail;
    }

    int exists = tl_env_exists(db->env, path);
    if (exists < 0) {
        rc = exists;
        goto fail;
    }
    if (!exists) {
        if (!opts->create_if_missing || opts->read_only) {
            rc = tl_err(TALUS_ENOTFOUND, "no database at %s", path);
            goto fail;
        }
        if ((rc = tl_env_mkdir(db->env, path)) < 0)
            goto fail;
    }
    char lockpath[4096];
    snprintf(lockpath, sizeof lockpath, "%s/LOCK", path);
    if (!opts->read_only && (rc = tl_env_lock(db->env, lockpath, &db->lock)) < 0) {
        if (rc == TALUS_EBUSY)
            tl_err(rc, "database %s is in use by another process (LOCK is held)", path);
        goto fail;
    }
    char metapath[4096];
    snprintf(metapath, sizeof metapath, "%s/DBMETA", path);
    int has_meta = tl_env_exists(db->env, metapath);
    if (has_meta < 0) {
        rc = has_meta;
        goto fail;
    }
    if (has_meta && opts->error_if_exists) {
        rc = tl_err(TALUS_EEXIST, "database %s already exists", path);
        goto fail;
    }
    if (!has_meta && (!opts->create_if_missing || opts->read_only)) {
        rc = tl_err(TALUS_ENOTFOUND, "no database at %s (no DBMETA file)", path);
        goto fail;
    }
    if (opts->block_cache_size > 0) {
        db->block_cache = tl_cache_new(opts->block_cache_size);
        if (!db->block_cache) {
            rc = tl_err(TALUS_ENOMEM, "out of memory creating the block cache");
            goto fail;
        }
    }
    /* Workers first: recovery may schedule compactions. */
    db->workers = calloc((size_t)opts->background_threads, sizeof *db->workers);
    if (!db->workers) {
        rc = tl_err(TALUS_ENOMEM, "out of memory starting workers");
        goto fail;
    }
    for (int i = 0; i < opts->background_threads; i++) {
        if (pthread_create(&db->workers[i], NULL, worker_main, db) != 0) {
            rc = tl_err(TALUS_ENOMEM, "cannot start a background thread");
            goto fail;
        }
        db->nworkers++;
    }
    pthread_mutex_lock(&db->mu);
    rc = has_meta ? open_existing(db) : create_new(db);
    db->gc_watermark = atomic_load(&db->last_seq);
    pthread_mutex_unlock(&db->mu);
    if (rc < 0)
        goto fail;
    char jdir[4096];
    snprintf(jdir, sizeof jdir, "%s/journal", path);
    if (!(db->journal_dir = strdup(jdir))) {
        rc = tl_err(TALUS_ENOMEM, "out of memory opening %s", path);
        goto fail;
    }
    if ((rc = db_recover_journal(db)) < 0)
        goto fail;
    /* A seqno once pinned may be above everything recovered (its last
     * batches had durability none and were lost), even if it was unpinned
     * since: never hand it out again, or a snapshot of that number would
     * show other writes than the one that was pinned. */
    if (db->seq_floor > atomic_load(&db->last_seq)) {
        atomic_store(&db->last_seq, db->seq_floor);
        atomic_store(&db->published_seq, db->seq_floor);
    }
    if (!opts->read_only) {
        if ((rc = db_start_journal(db)) < 0)
            goto fail;
        pthread_mutex_lock(&db->mu);
        db->gc_watermark = atomic_load(&db->last_seq);
        pthread_mutex_unlock(&db->mu);
    }
    *out = db;
    return 0;
fail:;
    /* Keep the message of the original error through cleanup. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", tl_errmsg());
    db_free(db);
    return tl_err(rc, "%s", msg);
}

static void log_commit_stats(const talus_db *db)
{
    if (db->stat_groups)
        TL_LOG_DEBUG("%s: %llu commit groups, %.2f writers per group, %llu journal syncs "
                     "of %.0f us on average",
                     db->path, (unsigned long long)db->stat_groups,
                     (double)db->stat_group_writers / (double)db->stat_groups,
                     (unsigned long long)db->stat_syncs,
                     db->stat_syncs ? (double)db->stat_sync_ns / 1e3 / (double)db->stat_syncs
                                    : 0.0);
}

int talus_close(talus_db *db)
{
    if (!db)
        return 0;
    int rc = 0;
    if (!db->opts.read_only) {
        for (size_t i = 0; i < db->ntrees; i++) {
            talus_tree *t = db->trees[i];
            if (t->dropped || !t->tr)
                continue;
            pthread_mutex_lock(&db->write_mu);
            int r = tr_seal(t->tr);
            pthread_mutex_unlock(&db->write_mu);
            if (r == 0)
                r = tr_wait_flushed(t->tr);
            if (r == 0)
                r = tr_bg_error(t->tr); /* e.g. a compaction that failed */
            if (r < 0 && rc == 0)
                rc = r;
        }
    }
    if (!db->opts.read_only && db->journal) {
        /* Every tree is flushed: the journal holds nothing needed. Keep it
         * if anything failed, so the next open can replay it. */
        pthread_mutex_lock(&db->write_mu);
        int r = db->error ? TALUS_EREADONLY : jnl_writer_sync(db->journal);
        if (r == 0 && rc == 0) {
            jnl_writer_close(db->journal);
            db->journal = NULL;
            for (size_t i = 0; i < db->nsegs; i++) {
                char path[4096];
                jnl_segment_name(path, sizeof path, db->journal_dir, db->segs[i].number);
                tl_env_remove(db->env, path);
            }
            db->nsegs = 0;
            tl_env_sync_dir(db->env, db->journal_dir);
        } else if (r < 0 && rc == 0) {
            rc = r;
        }
        pthread_mutex_unlock(&db->write_mu);
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", tl_errmsg());
    log_commit_stats(db);
    db_free(db);
    return rc < 0 ? tl_err(rc, "%s", msg) : 0;
}

void db_crash_close(talus_db *db)
{
    /* No flush, no sync: whatever the OS has is what a crash leaves. */
    db_free(db);
}

int talus_wait_idle(talus_db *db)
{
    int rc = 0;
    pthread_mutex_lock(&db->mu);
    size_t n = db->ntrees;
    talus_tree **trees = malloc((n ? n : 1) * sizeof *trees);
    if (trees)
        memcpy(trees, db->trees, n * sizeof *trees);
    pthread_mutex_unlock(&db->mu);
    if (!trees)
        return tl_err(TALUS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        talus_tree *t = trees[i];
        if (t->dropped || !t->tr || db->opts.read_only)
            continue;
        int r = tr_wait_idle(t->tr);
        if (r < 0 && rc == 0)
            rc = r;
    }
    free(trees);
    return rc;
}
