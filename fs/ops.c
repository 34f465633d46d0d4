/*
 * ops.c - the filesystem as a whole: opening the database behind a mount,
 * the FUSE connection settings, the operations table, and the orderly
 * shutdown (commit what is open, sync, close).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs.h"

void tfs_config_init(struct tfs_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->durability = -1;
    cfg->compression = -1;
    cfg->max_file_size = TFS_DEFAULT_MAX_FILE_SIZE;
    cfg->blob_size = TFS_DEFAULT_BLOB_SIZE;
    /* Nothing changes the database behind the mount's back (LOCK), and
     * every change through the mount updates the kernel's view itself. */
    cfg->entry_timeout = 30;
    cfg->attr_timeout = 30;
    cfg->negative_timeout = 10;
    cfg->uid = getuid();
    cfg->gid = getgid();
}

static int open_tree(struct tfs *fs, const char *name, talus_tree **t, char *err, size_t errlen)
{
    int rc = talus_tree_open(fs->db, name, !fs->cfg.read_only, NULL, t);
    if (rc == TALUS_ENOTFOUND && fs->cfg.read_only) {
        *t = NULL; /* a read-only mount of a database never mounted before */
        return 0;
    }
    if (rc < 0)
        snprintf(err, errlen, "cannot open tree \"%s\" of %s: %s: %s", name, fs->cfg.dbdir,
                 talus_strerror(rc), talus_errmsg());
    return rc;
}

int tfs_open(const struct tfs_config *cfg, struct tfs **out, char *err, size_t errlen)
{
    struct tfs *fs = calloc(1, sizeof *fs);
    if (!fs) {
        snprintf(err, errlen, "out of memory");
        return TALUS_ENOMEM;
    }
    fs->cfg = *cfg;
    if (fs->cfg.max_file_size == 0)
        fs->cfg.max_file_size = TFS_DEFAULT_MAX_FILE_SIZE;
    if (fs->cfg.max_file_size > TALUS_MAX_VALUE)
        fs->cfg.max_file_size = TALUS_MAX_VALUE;
    fs->dbdir = strdup(cfg->dbdir);
    fs->mount_ns = tfs_now_ns();
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Commits must not starve behind a stream of lookups. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&fs->ns, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&fs->tbl, NULL);
    pthread_mutex_init(&fs->neg_mu, NULL);
    pthread_mutex_init(&fs->snap_mu, NULL);
    pthread_mutex_init(&fs->inval_mu, NULL);
    pthread_cond_init(&fs->inval_cv, NULL);
    *out = fs;
    if (!fs->dbdir || tfs_table_init(fs) < 0) {
        snprintf(err, errlen, "out of memory");
        return TALUS_ENOMEM;
    }

    talus_options o;
    talus_options_init(&o);
    o.create_if_missing = !cfg->read_only;
    if (cfg->durability >= 0)
        o.durability = cfg->durability;
    if (cfg->cache_size)
        o.block_cache_size = cfg->cache_size;
    if (cfg->compression >= 0)
        o.tree.compression = cfg->compression;
    /* Key-value separation is meant for tree "data" (file contents), but
     * it is set as the default of every tree: a tree that already exists
     * is opened by talus_open with these defaults (tree options are not
     * stored), so this is the only place that reaches "data" on every
     * mount. The records of "meta" and "fs" are far smaller than any
     * sensible blob_size, so for them it changes nothing. */
    o.tree.min_blob_size = cfg->blob_size;
    int rc = talus_open(cfg->dbdir, &o, &fs->db);
    if (rc < 0 && cfg->read_only && rc != TALUS_EBUSY && rc != TALUS_ECORRUPT &&
        rc != TALUS_EVERSION && rc != TALUS_ENOTFOUND) {
        /* A database we may not write to (a read-only medium): open it
         * read-only, which takes no lock. */
        o.read_only = 1;
        rc = talus_open(cfg->dbdir, &o, &fs->db);
    }
    if (rc == TALUS_EBUSY) {
        snprintf(err, errlen,
                 "database %s is already in use (mounted or opened by another process)",
                 cfg->dbdir);
        return rc;
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot open database %s: %s: %s", cfg->dbdir, talus_strerror(rc),
                 talus_errmsg());
        return rc;
    }
    fs->cfg.durability = cfg->durability >= 0 ? cfg->durability : o.durability;
    if ((rc = open_tree(fs, "data", &fs->data, err, errlen)) < 0 ||
        (rc = open_tree(fs, "meta", &fs->meta, err, errlen)) < 0 ||
        (rc = open_tree(fs, "fs", &fs->info, err, errlen)) < 0)
        return rc;
    return 0;
}

int tfs_close(struct tfs *fs)
{
    if (!fs)
        return 0;
    tfs_detach_session(fs);
    int ret = 0;
    if (fs->db) {
        if (tfs_commit_all(fs) < 0)
            ret = TALUS_EIO;
        if (!fs->cfg.read_only) {
            int rc = talus_db_sync(fs->db);
            if (rc < 0) {
                tfs_log(LOG_ERR, "sync at exit: %s: %s", talus_strerror(rc), talus_errmsg());
                ret = rc;
            }
        }
        tfs_snap_free_all(fs);
        tfs_file_drop_all(fs); /* engine writers go before the engine */
        int rc = talus_close(fs->db);
        if (rc < 0) {
            tfs_log(LOG_ERR, "closing the database: %s: %s", talus_strerror(rc), talus_errmsg());
            ret = rc;
        }
        fs->db = NULL;
    }
    tfs_table_free(fs);
    pthread_rwlock_destroy(&fs->ns);
    pthread_mutex_destroy(&fs->tbl);
    pthread_mutex_destroy(&fs->neg_mu);
    pthread_mutex_destroy(&fs->snap_mu);
    pthread_mutex_destroy(&fs->inval_mu);
    pthread_cond_destroy(&fs->inval_cv);
    free(fs->dbdir);
    free(fs);
    return ret;
}

/* ---- the connection and the operations table -------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* O_TRUNC arrives with open (so a truncating open is one commit). */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    /* Lookups in one directory may run in parallel: we lock ourselves. */
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
        conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
    /* Cached pages follow size/mtime changes seen in attributes. */
    if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
        conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    /* Writes must reach us one by one (the write buffer is the truth). */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void op_destroy(void *userdata)
{
    (void)userdata; /* tfs_close does the work, after the loop ends */
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    tfs_node_forget(tfs_of(req), ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    struct tfs *fs = tfs_of(req);
    for (size_t i = 0; i < count; i++)
        tfs_node_forget(fs, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    (void)fi;
    struct tfs *fs = tfs_of(req);
    int rc = 0;
    if (!fs->cfg.read_only) {
        int trc = talus_db_sync(fs->db);
        if (trc < 0)
            rc = tfs_errno(trc, "fsync of a directory");
    }
    fuse_reply_err(req, -rc);
}

static const struct fuse_lowlevel_ops tfs_ll_ops = {
    .init = op_init,
    .destroy = op_destroy,
    .lookup = tfs_op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = tfs_op_getattr,
    .setattr = tfs_op_setattr,
    .readlink = tfs_op_readlink,
    .mknod = tfs_op_mknod,
    .mkdir = tfs_op_mkdir,
    .unlink = tfs_op_unlink,
    .rmdir = tfs_op_rmdir,
    .symlink = tfs_op_symlink,
    .rename = tfs_op_rename,
    .link = tfs_op_link,
    .open = tfs_op_open,
    .read = tfs_op_read,
    .write = tfs_op_write,
    .flush = tfs_op_flush,
    .release = tfs_op_release,
    .fsync = tfs_op_fsync,
    .opendir = tfs_op_opendir,
    .readdir = tfs_op_readdir,
    .readdirplus = tfs_op_readdirplus,
    .releasedir = tfs_op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = tfs_op_statfs,
    .setxattr = tfs_op_setxattr,
    .getxattr = tfs_op_getxattr,
    .listxattr = tfs_op_listxattr,
    .removexattr = tfs_op_removexattr,
    .access = tfs_op_access,
    .create = tfs_op_create,
};

const struct fuse_lowlevel_ops *tfs_ops(void)
{
    return &tfs_ll_ops;
}
