/*
 * attr.c - attributes: the per-node cache of what tree "meta" stores,
 * getattr/setattr (chmod, chown, utimensat, truncate), statfs, access,
 * and the directory bookkeeping every namespace change does in its batch
 * (parent mtime, the marker that keeps an emptied directory alive).
 *
 * The attribute cache of a node is filled under fs->ns (read) and changed
 * only by code holding fs->ns (write), so it never goes stale: the engine's
 * LOCK file keeps every other process out of the database.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs.h"

#define DIR_SIZE 4096

int tfs_writable(struct tfs *fs, const struct tfs_node *n)
{
    if (fs->cfg.read_only || n->snap || n->kind == TFS_SNAPDIR || n->kind == TFS_SNAPROOT)
        return -EROFS;
    return 0;
}

void tfs_attr_from_meta(const struct tfs_meta *m, uint64_t size, struct tfs_attr *a)
{
    uint32_t type = m->type == TFS_T_DIR ? S_IFDIR : m->type == TFS_T_SYMLINK ? S_IFLNK : S_IFREG;
    a->mode = type | (m->mode & 07777);
    a->uid = m->uid;
    a->gid = m->gid;
    a->atime = m->atime;
    a->mtime = m->mtime;
    a->ctime = m->ctime;
    a->size = size;
}

void tfs_node_set_attr(struct tfs *fs, struct tfs_node *n, const struct tfs_attr *a)
{
    pthread_mutex_lock(&fs->tbl);
    n->attr = *a;
    n->attr_valid = true;
    pthread_mutex_unlock(&fs->tbl);
}

int tfs_node_load_attr(struct tfs *fs, struct tfs_node *n, struct tfs_view v,
                       const struct tfs_probe *p)
{
    struct tfs_meta m;
    struct tfs_buf key = {0};
    struct tfs_probe q;
    uint64_t size = DIR_SIZE;
    int rc = 0;
    switch (n->kind) {
    case TFS_ROOT:
    case TFS_SNAPROOT:
        rc = tfs_load_root_meta(fs, v, &m);
        break;
    case TFS_SNAPDIR:
    case TFS_CONT:
        tfs_meta_default(fs, TFS_T_DIR, &m);
        break;
    case TFS_DIR:
        rc = tfs_node_key(fs, n, &key);
        if (rc == 0)
            rc = tfs_load_meta(fs, v, key.p, key.n, true, TFS_T_DIR, &m);
        if (rc == 0)
            m.type = TFS_T_DIR;
        break;
    default:
        rc = tfs_node_key(fs, n, &key);
        if (rc == 0 && !p) {
            rc = tfs_probe_key(fs, v, key.p, key.n, &q);
            p = &q;
        }
        if (rc < 0 || !p->file) {
            tfs_buf_free(&key);
            return rc < 0 ? rc : -ENOENT; /* removed (cannot happen while linked) */
        }
        size = p->size;
        rc = tfs_load_meta(fs, v, key.p, key.n, false, TFS_T_FILE, &m);
        if (rc == 0 && m.type == TFS_T_DIR)
            m.type = TFS_T_FILE;
        break;
    }
    tfs_buf_free(&key);
    if (rc == -ENOENT)
        rc = 0; /* no record: m holds the documented defaults */
    if (rc < 0)
        return rc;
    struct tfs_attr a;
    tfs_attr_from_meta(&m, size, &a);
    tfs_meta_free(&m);
    tfs_node_set_attr(fs, n, &a);
    return 0;
}

void tfs_fill_stat(struct tfs *fs, const struct tfs_node *n, const struct tfs_attr *a,
                   struct stat *st)
{
    (void)fs;
    memset(st, 0, sizeof *st);
    st->st_ino = n->ino;
    st->st_mode = a->mode;
    st->st_nlink = 1; /* directories too: subdirectories are not counted */
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_size = (off_t)a->size;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
    st->st_atim.tv_sec = (time_t)(a->atime / 1000000000);
    st->st_atim.tv_nsec = (long)(a->atime % 1000000000);
    st->st_mtim.tv_sec = (time_t)(a->mtime / 1000000000);
    st->st_mtim.tv_nsec = (long)(a->mtime % 1000000000);
    st->st_ctim.tv_sec = (time_t)(a->ctime / 1000000000);
    st->st_ctim.tv_nsec = (long)(a->ctime % 1000000000);
    /* Times before 1970: C division rounds toward zero, timespec wants
     * a non-negative nanosecond field. */
    struct timespec *ts[3] = {&st->st_atim, &st->st_mtim, &st->st_ctim};
    for (int i = 0; i < 3; i++) {
        if (ts[i]->tv_nsec < 0) {
            ts[i]->tv_nsec += 1000000000;
            ts[i]->tv_sec--;
        }
    }
}

int tfs_node_stat(struct tfs *fs, struct tfs_node *n, struct stat *st)
{
    pthread_mutex_lock(&fs->tbl);
    bool valid = n->attr_valid;
    pthread_mutex_unlock(&fs->tbl);
    if (!valid) {
        struct tfs_view v;
        int rc = tfs_snap_enter(fs, n, &v);
        if (rc < 0)
            return rc;
        pthread_rwlock_rdlock(&fs->ns);
        rc = tfs_node_load_attr(fs, n, v, NULL);
        pthread_rwlock_unlock(&fs->ns);
        tfs_snap_leave(fs, n);
        if (rc < 0)
            return rc;
    }
    pthread_mutex_lock(&fs->tbl);
    struct tfs_attr a = n->attr;
    if (n->pend) {
        a.size = n->pend_size;
        if (n->pend_mtime) /* 0: set explicitly since the last write */
            a.mtime = a.ctime = n->pend_mtime;
    }
    pthread_mutex_unlock(&fs->tbl);
    tfs_fill_stat(fs, n, &a, st);
    return 0;
}

void tfs_entry_param(struct tfs *fs, struct tfs_node *n, const struct stat *st,
                     struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    e->ino = n->ino;
    e->generation = 1;
    e->attr = *st;
    /* One attribute timeout for every node, files open for writing too: the
     * kernel itself marks size and times stale after each write and at an
     * O_TRUNC open, and every other change comes back in the reply to the
     * request that made it. (A zero timeout for open files cost two
     * GETATTR round trips per created file.) */
    e->attr_timeout = fs->cfg.attr_timeout;
    e->entry_timeout = fs->cfg.entry_timeout;
    if (n->kind == TFS_SNAPROOT)
        e->entry_timeout = 1; /* rmdir of a snapshot is seen quickly */
}

void tfs_reply_entry(fuse_req_t req, struct tfs *fs, struct tfs_node *n)
{
    struct stat st;
    int rc = tfs_node_stat(fs, n, &st);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param e;
    tfs_entry_param(fs, n, &st, &e);
    tfs_node_ref_lookup(fs, n, 1);
    if (fuse_reply_entry(req, &e) == -ENOENT)
        tfs_node_forget(fs, n->ino, 1); /* interrupted: the kernel has no ref */
}

void tfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    struct stat st;
    int rc = tfs_node_stat(fs, n, &st);
    /* Asked for an open file (fstat, or the kernel before a read past the
     * size it knows): a reader's size is that of the version it reads,
     * whatever a writer did to the size the kernel keeps for the inode. */
    uint64_t size;
    double timeout = fs->cfg.attr_timeout;
    if (rc == 0 && n->kind == TFS_FILE && tfs_file_handle_size(fi, &size) &&
        size != (uint64_t)st.st_size) {
        /* An older version's size, true for this handle only: the kernel
         * keeps it for the inode, so it must not outlive this answer. */
        st.st_size = (off_t)size;
        st.st_blocks = (blkcnt_t)((size + 511) / 512);
        timeout = 0;
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, timeout);
    tfs_node_put(fs, n);
}

/* ---- directory bookkeeping inside a batch ------------------------------ */

/* The directory whose attributes change when entries of n change: a chain
 * of TFS_CONT names belongs to the directory above it. */
static struct tfs_node *real_dir(struct tfs *fs, struct tfs_node *n)
{
    pthread_mutex_lock(&fs->tbl);
    while (n->kind == TFS_CONT)
        n = n->parent;
    n->oprefs++;
    pthread_mutex_unlock(&fs->tbl);
    return n;
}

int tfs_txn_touch_dir(struct tfs_txn *tx, struct tfs_node *dir, int64_t now)
{
    struct tfs *fs = tx->fs;
    struct tfs_node *d = real_dir(fs, dir);
    struct tfs_buf key = {0};
    struct tfs_meta m;
    struct tfs_view live = {NULL};
    int rc = tfs_node_key(fs, d, &key);
    if (rc == 0) {
        rc = d->kind == TFS_ROOT ? tfs_load_root_meta(fs, live, &m)
                                 : tfs_load_meta(fs, live, key.p, key.n, true, TFS_T_DIR, &m);
        if (rc == -ENOENT)
            rc = 0;
    }
    struct tfs_attr a;
    if (rc == 0) {
        m.type = TFS_T_DIR;
        m.mtime = m.ctime = now;
        rc = d->kind == TFS_ROOT ? tfs_txn_put_root_meta(tx, &m)
                                 : tfs_txn_put_meta(tx, key.p, key.n, true, &m);
        tfs_attr_from_meta(&m, DIR_SIZE, &a);
        tfs_meta_free(&m);
    }
    pthread_mutex_lock(&fs->tbl);
    d->attr_valid = false;
    if (rc == 0 && tx->ndirs < TFS_TXN_DIRS && (d->kind == TFS_ROOT || d->kind == TFS_DIR)) {
        d->oprefs++; /* released by tfs_txn_end */
        tx->dirs[tx->ndirs].n = d;
        tx->dirs[tx->ndirs].a = a;
        tx->ndirs++;
    }
    pthread_mutex_unlock(&fs->tbl);
    tfs_buf_free(&key);
    tfs_node_put(fs, d);
    return rc;
}

int tfs_txn_keep_dir(struct tfs_txn *tx, struct tfs_node *dir, const uint8_t *lo, size_t lolen,
                     const uint8_t *hi, size_t hilen)
{
    struct tfs *fs = tx->fs;
    dir = real_dir(fs, dir);
    if (dir->kind != TFS_DIR) {
        tfs_node_put(fs, dir);
        return 0; /* the root always exists */
    }
    struct tfs_buf pfx = {0};
    struct tfs_view live = {NULL};
    int rc = tfs_node_child_prefix(fs, dir, &pfx);
    if (rc == 0)
        rc = tfs_any_key(fs, live, pfx.p, pfx.n, lo, lolen, hi, hilen);
    if (rc == 0)
        rc = tfs_txn_put(tx, fs->data, pfx.p, pfx.n, "", 0);
    else if (rc > 0)
        rc = 0;
    tfs_buf_free(&pfx);
    tfs_node_put(fs, dir);
    return rc;
}

/* ---- setattr ------------------------------------------------------------ */

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int do_setattr(struct tfs *fs, struct tfs_node *n, const struct stat *attr, int to_set)
{
    int64_t now = tfs_now_ns();
    bool do_size = to_set & FUSE_SET_ATTR_SIZE;
    struct tfs_buf key = {0};
    struct tfs_meta m;
    struct tfs_txn tx = {0};
    struct tfs_view live = {NULL};
    bool wrote = false, have_meta = false;
    uint64_t newsize = 0;
    int rc = tfs_node_key(fs, n, &key);
    if (rc < 0)
        return rc;
    if (n->kind == TFS_ROOT)
        rc = tfs_load_root_meta(fs, live, &m);
    else
        rc = tfs_node_meta(fs, n, key.p, key.n, &m);
    if (rc == -ENOENT)
        rc = 0;
    if (rc < 0)
        goto out;
    have_meta = true;
    if (n->kind == TFS_FILE) {
        pthread_mutex_lock(&fs->tbl);
        if (m.type == TFS_T_DIR || (n->attr_valid && S_ISLNK(n->attr.mode)))
            m.type = S_ISLNK(n->attr.mode) ? TFS_T_SYMLINK : TFS_T_FILE;
        pthread_mutex_unlock(&fs->tbl);
    }
    if (do_size && m.type != TFS_T_FILE) {
        rc = m.type == TFS_T_DIR ? -EISDIR : -EINVAL;
        goto out;
    }
    if (to_set & FUSE_SET_ATTR_MODE)
        m.mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_UID)
        m.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID)
        m.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_ATIME_NOW)
        m.atime = now;
    else if (to_set & FUSE_SET_ATTR_ATIME)
        m.atime = ts_ns(&attr->st_atim);

    if ((rc = tfs_txn_begin(fs, &tx)) < 0)
        goto out;
    if (n->kind == TFS_FILE && n->linked) {
        /* Uncommitted writes go into this batch, so that the times set
         * here are not overwritten by a later commit at close. */
        pthread_mutex_lock(&fs->tbl);
        int64_t pend_mtime = n->pend ? n->pend_mtime : 0;
        pthread_mutex_unlock(&fs->tbl);
        rc = tfs_file_txn_contents(&tx, n, key.p, key.n, do_size, (uint64_t)attr->st_size, &wrote,
                                   &newsize);
        if (rc < 0)
            goto out;
        if (pend_mtime)
            m.mtime = pend_mtime;
        if (do_size)
            m.mtime = now;
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
        m.mtime = now;
    else if (to_set & FUSE_SET_ATTR_MTIME)
        m.mtime = ts_ns(&attr->st_mtim);
    m.ctime = (to_set & FUSE_SET_ATTR_CTIME) ? ts_ns(&attr->st_ctim) : now;
    if (n->kind == TFS_ROOT)
        rc = tfs_txn_put_root_meta(&tx, &m);
    else if (n->linked)
        rc = tfs_txn_put_meta(&tx, key.p, key.n, n->kind != TFS_FILE, &m);
    if (rc == 0)
        rc = tfs_txn_commit(&tx, -1);
    if (n->kind == TFS_FILE)
        tfs_file_txn_done(fs, n, rc);
    if (rc < 0)
        goto out;

    pthread_mutex_lock(&fs->tbl);
    uint64_t size = n->attr.size;
    pthread_mutex_unlock(&fs->tbl);
    if (wrote)
        size = newsize;
    struct tfs_attr a;
    tfs_attr_from_meta(&m, n->kind == TFS_FILE ? size : DIR_SIZE, &a);
    tfs_node_set_attr(fs, n, &a);
    if (wrote) /* after the new size is in place: see commit_if */
        tfs_file_committed(fs, n);
out:
    if (n->kind == TFS_FILE)
        tfs_file_txn_done(fs, n, rc); /* no-op unless a writer was handed */
    if (have_meta)
        tfs_meta_free(&m);
    if (tx.b)
        tfs_txn_end(&tx);
    tfs_buf_free(&key);
    return rc;
}

void tfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                    struct fuse_file_info *fi)
{
    (void)fi;
    struct tfs *fs = tfs_of(req);
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    int rc = tfs_writable(fs, n);
    if (rc == 0 && n->kind == TFS_CONT)
        rc = -EPERM; /* a piece of a long name has no attributes of its own */
    if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE)) {
        if (n->kind != TFS_FILE)
            rc = -EISDIR;
        else if ((uint64_t)attr->st_size > fs->cfg.max_file_size || attr->st_size < 0)
            rc = -EFBIG;
    }
    if (rc == 0) {
        if (n->kind == TFS_FILE)
            pthread_mutex_lock(&n->wlock);
        pthread_rwlock_wrlock(&fs->ns);
        rc = do_setattr(fs, n, attr, to_set);
        pthread_rwlock_unlock(&fs->ns);
        if (n->kind == TFS_FILE)
            pthread_mutex_unlock(&n->wlock);
    }
    struct stat st;
    if (rc == 0)
        rc = tfs_node_stat(fs, n, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
    tfs_node_put(fs, n);
}

/* ---- statfs, access ----------------------------------------------------- */

void tfs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct tfs *fs = tfs_of(req);
    struct statvfs sv;
    if (statvfs(fs->dbdir, &sv) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    sv.f_namemax = 255;
    sv.f_flag = 0;
    sv.f_fsid = 0;
    fuse_reply_statfs(req, &sv);
}

static bool in_groups(fuse_req_t req, gid_t gid)
{
    gid_t groups[64];
    int n = fuse_req_getgroups(req, 64, groups);
    for (int i = 0; i < n && i < 64; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

void tfs_op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    struct stat st;
    int rc = tfs_node_stat(fs, n, &st);
    if (rc == 0 && (mask & W_OK))
        rc = tfs_writable(fs, n);
    if (rc == 0 && mask != F_OK) {
        const struct fuse_ctx *c = fuse_req_ctx(req);
        int bits;
        if (c->uid == 0) /* root: everything but executing a non-executable */
            bits = (mask & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111) ? 0 : 7;
        else if (c->uid == st.st_uid)
            bits = (st.st_mode >> 6) & 7;
        else if (c->gid == st.st_gid || in_groups(req, st.st_gid))
            bits = (st.st_mode >> 3) & 7;
        else
            bits = st.st_mode & 7;
        if ((mask & bits) != mask)
            rc = -EACCES;
    }
    fuse_reply_err(req, -rc);
    tfs_node_put(fs, n);
}
