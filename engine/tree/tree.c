/*
 * tree.c - opening and closing a tree, reader views, and the write path
 * (room making with write stalls, memtable switches).
 */
#include "tree/tree_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/ikey.h"
#include "util/log.h"

static void view_free(tr_view *vw)
{
    if (vw->mem)
        mt_unref(vw->mem);
    for (int i = 0; i < vw->nimm; i++)
        mt_unref(vw->imm[i]);
    if (vw->v)
        ver_version_unref(vw->v);
    free(vw);
}

tr_view *tr_view_acquire(tr_tree *t)
{
    pthread_mutex_lock(&t->mu);
    tr_view *vw = t->view;
    atomic_fetch_add_explicit(&vw->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
    return vw;
}

void tr_view_release(tr_view *vw)
{
    if (vw && atomic_fetch_sub_explicit(&vw->refs, 1, memory_order_acq_rel) == 1)
        view_free(vw);
}

int tr_install_view(tr_tree *t, mt_memtable *mem, mt_memtable *const *imm, int nimm, ver_version *v)
{
    tr_view *vw = calloc(1, sizeof *vw);
    if (!vw)
        return tl_err(TALUS_ENOMEM, "out of memory installing a tree view");
    atomic_init(&vw->refs, 1);
    vw->mem = mem;
    mt_ref(mem);
    for (int i = 0; i < nimm; i++) {
        vw->imm[i] = imm[i];
        mt_ref(imm[i]);
    }
    vw->nimm = nimm;
    vw->v = v;
    ver_version_ref(v);
    tr_view *old = t->view;
    t->view = vw;
    /* Writers read t->mem without mu (they hold the db write lock, under
     * which it changes), so store only when it really changes. */
    if (t->mem != mem)
        t->mem = mem;
    atomic_store_explicit(&t->l0_files, v->nfiles[0], memory_order_relaxed);
    tr_view_release(old);
    return 0;
}

void tr_set_bg_error(tr_tree *t, int rc, const char *what)
{
    if (!t->bg_error) {
        t->bg_error = rc;
        atomic_store(&t->blocked, true);
        snprintf(t->bg_errmsg, sizeof t->bg_errmsg,
                 "tree %s: %s failed: %s; the tree is now read-only", t->name, what, tl_errmsg());
        TL_LOG_ERROR("%s", t->bg_errmsg);
    }
    pthread_cond_broadcast(&t->cv);
}

int tr_bg_error(tr_tree *t)
{
    pthread_mutex_lock(&t->mu);
    int rc = t->bg_error;
    if (rc)
        tl_err(TALUS_EREADONLY, "%s", t->bg_errmsg);
    pthread_mutex_unlock(&t->mu);
    return rc ? TALUS_EREADONLY : 0;
}

static void on_obsolete(void *ctx, uint64_t number, bool blob)
{
    tr_tree *t = ctx;
    char path[4096];
    if (blob) {
        tr_blob_discard(t, number);
        return;
    }
    tl_table_cache_evict(t->tc, number);
    tbl_file_name(path, sizeof path, t->dir, number);
    int rc = tl_env_remove(t->env, path);
    if (rc < 0 && rc != TALUS_ENOTFOUND)
        TL_LOG_WARN("could not remove obsolete table %s: %s", path, tl_errmsg());
}

static bool is_live(const uint64_t *live, size_t n, uint64_t number)
{
    for (size_t i = 0; i < n; i++)
        if (live[i] == number)
            return true;
    return false;
}

/* Remove tables and temporary files that no live version references:
 * leftovers of a crash in the middle of a flush or compaction. */
static int remove_orphans(tr_tree *t)
{
    uint64_t *live = NULL;
    size_t nlive = 0;
    char **names = NULL;
    size_t nnames = 0;
    int rc;
    TRY_OUT(ver_set_live_files(t->vs, &live, &nlive));
    TRY_OUT(tl_env_list_dir(t->env, t->dir, &names, &nnames));
    for (size_t i = 0; i < nnames; i++) {
        const char *nm = names[i];
        size_t len = strlen(nm);
        bool orphan = false;
        uint64_t blob;
        /* A blob the journal names may be newer than the manifest's
         * counter, and flushes run while the journal is replayed: no new
         * file may take a number a blob on disk has. */
        if (bl_parse_name(nm, &blob))
            ver_set_mark_file_number(t->vs, blob);
        if (len > 4 && !strcmp(nm + len - 4, ".tmp")) {
            orphan = true;
        } else if (len > 4 && !strcmp(nm + len - 4, ".sst")) {
            char *end;
            unsigned long long num = strtoull(nm, &end, 10);
            orphan = end != nm && !strcmp(end, ".sst") && !is_live(live, nlive, num);
        } else if (!strncmp(nm, "MANIFEST-", 9)) {
            unsigned long long num = strtoull(nm + 9, NULL, 10);
            orphan = num != ver_set_manifest_number(t->vs);
        }
        if (orphan) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", t->dir, nm);
            TL_LOG_INFO("removing orphan file %s", path);
            rc = tl_env_remove(t->env, path);
            if (rc < 0 && rc != TALUS_ENOTFOUND)
                goto out;
        }
    }
    rc = 0;
out:
    free(live);
    tl_env_free_names(names, nnames);
    return rc;
}

static void set_options(tr_tree *t)
{
    const talus_tree_options *o = &t->cfg.opts;
    tbl_options_init(&t->topts);
    t->topts.block_size = o->block_size;
    t->topts.restart_interval = o->block_restart_interval;
    t->topts.bloom_bits_per_key = o->bloom_bits_per_key;
    t->topts.compression = o->compression;
    t->topts.compression_level = o->compression_level;
    t->cpo.num_levels = o->num_levels;
    t->cpo.l0_trigger = o->l0_compaction_trigger;
    t->cpo.base_level_bytes = o->max_bytes_for_level_base;
    t->cpo.multiplier = o->level_size_multiplier;
    t->cpo.target_file_size = o->target_file_size;
}

int tr_open(const tr_config *cfg, tr_tree **out)
{
    int rc;
    tr_tree *t = calloc(1, sizeof *t);
    if (!t)
        return tl_err(TALUS_ENOMEM, "out of memory opening tree %s", cfg->name);
    t->cfg = *cfg;
    t->dir = strdup(cfg->dir);
    t->name = strdup(cfg->name);
    t->env = cfg->env;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (!t->dir || !t->name) {
        rc = tl_err(TALUS_ENOMEM, "out of memory opening tree %s", cfg->name);
        goto fail;
    }
    t->cfg.dir = t->dir;
    t->cfg.name = t->name;
    set_options(t);

    if (cfg->create_if_missing && !cfg->read_only)
        TRY_OUT(tl_env_mkdir(t->env, t->dir));
    t->tc = tl_table_cache_new(t->env, t->dir, cfg->max_open_files, cfg->block_cache);
    if (!t->tc) {
        rc = tl_err(TALUS_ENOMEM, "out of memory opening tree %s", cfg->name);
        goto fail;
    }
    ver_set_options vo = {
        .env = t->env,
        .dir = t->dir,
        .num_levels = cfg->opts.num_levels,
        .create_if_missing = cfg->create_if_missing,
        .read_only = cfg->read_only,
        .max_format_version = TBL_FORMAT_MAX_READ,
        .on_obsolete = on_obsolete,
        .on_obsolete_ctx = t,
    };
    TRY_OUT(ver_set_open(&vo, &t->vs));
    t->cpo.num_levels = ver_set_num_levels(t->vs);
    if (!cfg->read_only)
        TRY_OUT(remove_orphans(t));

    mt_memtable *mem = mt_new();
    if (!mem) {
        rc = tl_err(TALUS_ENOMEM, "out of memory creating a memtable");
        goto fail;
    }
    ver_version *v = ver_set_current(t->vs);
    pthread_mutex_lock(&t->mu);
    rc = tr_install_view(t, mem, NULL, 0, v);
    pthread_mutex_unlock(&t->mu);
    mt_unref(mem);
    ver_version_unref(v);
    if (rc < 0)
        goto fail;
    *out = t;
    if (!cfg->read_only && cfg->schedule)
        cfg->schedule(cfg->ctx, t); /* a compaction may be due after recovery */
    return 0;
out:
fail:
    if (t->view)
        tr_view_release(t->view);
    if (t->vs)
        ver_set_close(t->vs);
    if (t->tc)
        tl_table_cache_free(t->tc);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->dir);
    free(t->name);
    free(t);
    return rc;
}

void tr_close(tr_tree *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->closing = true;
    atomic_store(&t->blocked, true);
    atomic_store(&t->cancel, true);
    while (t->flushing || t->compactions_running > 0 || t->manual_running)
        pthread_cond_wait(&t->cv, &t->mu);
    tr_view *vw = t->view;
    t->view = NULL;
    pthread_mutex_unlock(&t->mu);
    tr_view_release(vw);
    ver_set_close(t->vs);
    tl_table_cache_free(t->tc);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->dir);
    free(t->name);
    free(t);
}

uint64_t tr_last_seq(tr_tree *t)
{
    return ver_set_last_seq(t->vs);
}

uint64_t tr_flushed_seq(tr_tree *t)
{
    return ver_set_flushed_seq(t->vs);
}

static uint64_t mem_min(mt_memtable *m, uint64_t cur)
{
    if (mt_count(m) == 0)
        return cur;
    uint64_t s = mt_min_seq(m);
    return s < cur ? s : cur;
}

uint64_t tr_oldest_unflushed_seq(tr_tree *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t s = mem_min(t->view->mem, UINT64_MAX);
    for (int i = 0; i < t->view->nimm; i++)
        s = mem_min(t->view->imm[i], s);
    pthread_mutex_unlock(&t->mu);
    return s;
}

uint64_t tr_active_min_seq(tr_tree *t)
{
    pthread_mutex_lock(&t->mu);
    uint64_t s = mem_min(t->view->mem, UINT64_MAX);
    pthread_mutex_unlock(&t->mu);
    return s;
}

/* Seal the active memtable. REQUIRES: mu and the db write lock held. */
static int switch_memtable(tr_tree *t)
{
    tr_view *vw = t->view;
    if (vw->nimm >= TR_MAX_IMM)
        return tl_err(TALUS_EIO, "tree %s: too many sealed memtables", t->name);
    mt_memtable *fresh = mt_new();
    if (!fresh)
        return tl_err(TALUS_ENOMEM, "out of memory creating a memtable");
    mt_memtable *imm[TR_MAX_IMM];
    imm[0] = vw->mem;
    for (int i = 0; i < vw->nimm; i++)
        imm[i + 1] = vw->imm[i];
    int rc = tr_install_view(t, fresh, imm, vw->nimm + 1, vw->v);
    mt_unref(fresh);
    if (rc == 0 && t->cfg.schedule)
        t->cfg.schedule(t->cfg.ctx, t);
    return rc;
}

int tr_make_room(tr_tree *t)
{
    const talus_tree_options *o = &t->cfg.opts;
    /* Fast path without mu: the memtable has room and L0 is small. t->mem
     * is stable here (the caller holds the db write lock). */
    if (!atomic_load_explicit(&t->blocked, memory_order_relaxed) &&
        mt_bytes(t->mem) < o->write_buffer_size &&
        atomic_load_explicit(&t->l0_files, memory_order_relaxed) < (size_t)o->l0_slowdown_trigger)
        return 0;
    bool delayed = false;
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        tr_view *vw = t->view;
        size_t l0 = vw->v->nfiles[0];
        if (t->bg_error) {
            rc = tl_err(TALUS_EREADONLY, "%s", t->bg_errmsg);
            break;
        }
        if (t->closing) {
            rc = tl_err(TALUS_ECLOSED, "tree %s is closing", t->name);
            break;
        }
        if (!delayed && !t->cfg.read_only && l0 >= (size_t)o->l0_slowdown_trigger) {
            /* Give compaction a moment per write rather than stopping
             * writers outright a little later. */
            pthread_mutex_unlock(&t->mu);
            atomic_fetch_add(&t->stall_slowdowns, 1);
            tl_env_sleep_us(t->env, 1000);
            delayed = true;
            pthread_mutex_lock(&t->mu);
            continue;
        }
        if (mt_bytes(vw->mem) < o->write_buffer_size)
            break;
        if (!t->cfg.read_only &&
            (vw->nimm >= o->max_immutable_memtables || l0 >= (size_t)o->l0_stop_trigger)) {
            atomic_fetch_add(&t->stall_stops, 1);
            if (t->cfg.schedule)
                t->cfg.schedule(t->cfg.ctx, t);
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        if (t->cfg.before_seal) {
            pthread_mutex_unlock(&t->mu);
            rc = t->cfg.before_seal(t->cfg.ctx, t);
            pthread_mutex_lock(&t->mu);
            if (rc < 0)
                break;
        }
        rc = switch_memtable(t);
        break;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int tr_apply(tr_tree *t, uint64_t seq, uint8_t type, tl_slice ukey, tl_slice value)
{
    if (type == TL_TYPE_BLOB) {
        /* A replayed reference may name a number the manifest never
         * recorded: new files must not reuse it. */
        bl_ref r;
        TRY(bl_ref_decode(value, &r));
        ver_set_mark_file_number(t->vs, r.number);
    }
    return mt_add(t->mem, seq, type, ukey, value);
}

int tr_seal(tr_tree *t)
{
    int rc = 0;
    if (t->cfg.before_seal && tr_active_min_seq(t) != UINT64_MAX)
        TRY(t->cfg.before_seal(t->cfg.ctx, t));
    pthread_mutex_lock(&t->mu);
    if (t->bg_error)
        rc = tl_err(TALUS_EREADONLY, "%s", t->bg_errmsg);
    else if (mt_count(t->view->mem) > 0)
        rc = switch_memtable(t);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int tr_stats(tr_tree *t, talus_tree_stats *out)
{
    memset(out, 0, sizeof *out);
    tr_view *vw = tr_view_acquire(t);
    ver_version *v = vw->v;
    out->num_levels = v->num_levels;
    for (int l = 0; l < v->num_levels && l < 16; l++) {
        talus_level_stats *ls = &out->levels[l];
        ls->level = l;
        ls->files = v->nfiles[l];
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            ls->bytes += v->files[l][i]->size;
            ls->entries += v->files[l][i]->entries;
        }
    }
    out->blob_files = v->nfiles[VER_BLOB_LEVEL];
    for (size_t i = 0; i < v->nfiles[VER_BLOB_LEVEL]; i++)
        out->blob_bytes += v->files[VER_BLOB_LEVEL][i]->size;
    out->memtable_bytes = mt_bytes(vw->mem);
    for (int i = 0; i < vw->nimm; i++)
        out->memtable_bytes += mt_bytes(vw->imm[i]);
    out->immutable_memtables = (uint64_t)vw->nimm;
    tr_view_release(vw);
    out->flushes = atomic_load(&t->flushes);
    out->compactions = atomic_load(&t->compactions);
    out->bytes_flushed = atomic_load(&t->bytes_flushed);
    out->bytes_compacted_read = atomic_load(&t->bytes_compacted_read);
    out->bytes_compacted_written = atomic_load(&t->bytes_compacted_written);
    out->stall_slowdowns = atomic_load(&t->stall_slowdowns);
    out->stall_stops = atomic_load(&t->stall_stops);
    out->last_seqno = ver_set_last_seq(t->vs);
    out->format_version = ver_set_format_version(t->vs);
    return 0;
}

uint64_t tr_disk_space(tr_tree *t)
{
    tr_view *vw = tr_view_acquire(t);
    uint64_t total = 0;
    for (int l = 0; l < vw->v->num_levels; l++)
        total += ver_version_level_bytes(vw->v, l);
    for (size_t i = 0; i < vw->v->nfiles[VER_BLOB_LEVEL]; i++)
        total += bl_file_size(vw->v->files[VER_BLOB_LEVEL][i]->size);
    tr_view_release(vw);
    return total;
}

uint64_t tr_approximate_count(tr_tree *t)
{
    tr_view *vw = tr_view_acquire(t);
    uint64_t n = mt_count(vw->mem);
    for (int i = 0; i < vw->nimm; i++)
        n += mt_count(vw->imm[i]);
    for (int l = 0; l < vw->v->num_levels; l++)
        for (size_t i = 0; i < vw->v->nfiles[l]; i++)
            n += vw->v->files[l][i]->entries;
    tr_view_release(vw);
    return n;
}
