/*
 * ns.c - changes to the namespace other than rename: create, mknod, mkdir,
 * symlink, unlink, rmdir (and link, refused), plus readlink.
 *
 * Each change is one batch under fs->ns (write): the decision (does the
 * name exist? is the directory empty?) and the commit happen with no other
 * change in between. A directory whose last entry goes away keeps existing
 * through its marker key "dir/", written in the same batch. The parent's
 * mtime/ctime are updated in the batch too (a meta write).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "keys.h"

/* What a new entry needs to know before taking fs->ns: the name decoded,
 * the creator and the parent's set-group-ID bit. */
struct newent {
    struct tfs_res r;
    uint32_t uid, gid;
    bool sgid;
};

static int newent_init(fuse_req_t req, struct tfs *fs, struct tfs_node *parent, const char *name,
                       struct newent *ne)
{
    memset(ne, 0, sizeof *ne);
    if (parent->kind == TFS_SNAPDIR)
        return -EROFS;
    int rc = tfs_writable(fs, parent);
    if (rc < 0)
        return rc;
    if (!tfs_is_dirlike(parent))
        return -ENOTDIR;
    struct tfs_node *old = tfs_node_child(fs, parent, name);
    if (old) {
        tfs_node_put(fs, old);
        return -EEXIST;
    }
    if (parent->kind == TFS_ROOT && strcmp(name, ".snap") == 0)
        return -EEXIST;
    struct stat pst;
    if ((rc = tfs_node_stat(fs, parent, &pst)) < 0)
        return rc;
    rc = tfs_resolve(fs, parent, name, &ne->r);
    if (rc == -ENOENT)
        return -EINVAL; /* not a spelling any key has (see fs/KEYS.md) */
    if (rc < 0)
        return rc;
    const struct fuse_ctx *c = fuse_req_ctx(req);
    ne->uid = c->uid;
    ne->gid = (pst.st_mode & S_ISGID) ? pst.st_gid : c->gid;
    ne->sgid = (pst.st_mode & S_ISGID) != 0;
    return 0;
}

/* Under fs->ns (write): is the name free? -EEXIST (or -EINVAL for a
 * conflict-form name without its directory) if not. */
static int check_free(struct tfs *fs, const struct newent *ne)
{
    struct tfs_view live = {NULL};
    struct tfs_probe p;
    int rc = tfs_probe_key(fs, live, ne->r.key.p, ne->r.key.n, &p);
    if (rc < 0)
        return rc;
    if (ne->r.kind == TFS_RES_CONFLICT)
        return !p.dir ? -EINVAL : p.file ? -EEXIST : 0;
    return p.file || p.dir ? -EEXIST : 0;
}

/* Commit a new entry: data[key] = val (dir: data[key/] = ""), its record,
 * the parent's times. */
static int commit_new(struct tfs *fs, struct tfs_node *parent, const struct newent *ne,
                      const struct tfs_meta *m, const void *val, size_t vlen)
{
    struct tfs_txn tx;
    bool dir = m->type == TFS_T_DIR;
    int rc = tfs_txn_begin(fs, &tx);
    if (rc < 0)
        return rc;
    struct tfs_buf k = {0};
    rc = tfs_buf_set(&k, ne->r.key.p, ne->r.key.n);
    if (rc == 0 && dir)
        rc = tfs_buf_add(&k, "/", 1);
    if (rc == 0)
        rc = tfs_txn_put(&tx, fs->data, k.p, k.n, val, vlen);
    if (rc == 0)
        rc = tfs_txn_put_meta(&tx, ne->r.key.p, ne->r.key.n, dir, m);
    if (rc == 0)
        rc = tfs_txn_touch_dir(&tx, parent, m->ctime);
    if (rc == 0)
        rc = tfs_txn_commit(&tx, -1);
    tfs_txn_end(&tx);
    tfs_buf_free(&k);
    return rc;
}

static void new_meta(struct tfs *fs, const struct newent *ne, uint8_t type, mode_t mode,
                     struct tfs_meta *m)
{
    tfs_meta_default(fs, type, m);
    m->mode = mode & 07777;
    if (type == TFS_T_DIR && ne->sgid)
        m->mode |= S_ISGID;
    m->uid = ne->uid;
    m->gid = ne->gid;
    m->atime = m->mtime = m->ctime = tfs_now_ns();
}

/* Create a file, directory or symlink named name below parent; *out gets
 * the node (op reference). */
static int make_entry(fuse_req_t req, struct tfs *fs, struct tfs_node *parent, const char *name,
                      uint8_t type, mode_t mode, const char *target, bool defer,
                      struct tfs_node **out)
{
    struct newent ne;
    int rc = newent_init(req, fs, parent, name, &ne);
    if (rc < 0)
        goto out;
    if (ne.r.kind == TFS_RES_CONT) {
        /* A piece of a long name: a directory that exists only in memory
         * until something is created below it. */
        rc = type == TFS_T_DIR
                 ? tfs_node_make(fs, parent, name, ne.r.seg.p, ne.r.seg.n, TFS_CONT, false, out)
                 : -EINVAL;
        if (rc == 0)
            (*out)->virt = true;
        goto out;
    }
    if (ne.r.kind == TFS_RES_CONFLICT && type == TFS_T_DIR) {
        rc = -EINVAL;
        goto out;
    }
    struct tfs_meta m;
    new_meta(fs, &ne, type, type == TFS_T_SYMLINK ? 0777 : mode, &m);
    const char *val = type == TFS_T_SYMLINK ? target : "";
    size_t vlen = strlen(val);
    pthread_rwlock_wrlock(&fs->ns);
    rc = check_free(fs, &ne);
    if (rc == 0 && !defer)
        rc = commit_new(fs, parent, &ne, &m, val, vlen);
    if (rc == 0)
        rc = tfs_node_make(fs, parent, name, ne.r.seg.p, ne.r.seg.n,
                           type == TFS_T_DIR ? TFS_DIR : TFS_FILE, ne.r.kind == TFS_RES_CONFLICT,
                           out);
    if (rc == 0) {
        struct tfs_attr a;
        tfs_attr_from_meta(&m, type == TFS_T_DIR ? 4096 : vlen, &a);
        tfs_node_set_attr(fs, *out, &a);
        if (defer)
            tfs_fresh_add(fs, *out);
    }
    pthread_rwlock_unlock(&fs->ns);
    tfs_meta_free(&m);
out:
    tfs_res_free(&ne.r);
    return rc;
}

static struct tfs_node *get_dir(fuse_req_t req, fuse_ino_t ino)
{
    struct tfs_node *n = tfs_node_get(tfs_of(req), ino);
    if (!n)
        fuse_reply_err(req, ESTALE);
    return n;
}

void tfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                   struct fuse_file_info *fi)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *p = get_dir(req, parent), *n = NULL;
    if (!p)
        return;
    int rc = make_entry(req, fs, p, name, TFS_T_FILE, mode, NULL, true, &n);
    bool created = rc == 0;
    if (rc == -EEXIST && !(fi->flags & O_EXCL)) {
        /* Lost a race with another creator: open what is there. */
        rc = tfs_lookup_node(fs, p, name, &n);
    }
    if (rc == 0)
        rc = tfs_file_open(fs, n, fi, created);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
    } else {
        struct stat st;
        struct fuse_entry_param e;
        rc = tfs_node_stat(fs, n, &st);
        tfs_entry_param(fs, n, &st, &e);
        tfs_node_ref_lookup(fs, n, 1);
        if (rc < 0 || fuse_reply_create(req, &e, fi) == -ENOENT) {
            if (rc < 0)
                fuse_reply_err(req, -rc);
            tfs_node_forget(fs, n->ino, 1);
            tfs_file_close(fs, fi);
        }
    }
    tfs_node_put(fs, n);
    tfs_node_put(fs, p);
}

static void reply_new(fuse_req_t req, struct tfs *fs, int rc, struct tfs_node *n)
{
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        tfs_reply_entry(req, fs, n);
    tfs_node_put(fs, n);
}

void tfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    (void)rdev;
    struct tfs *fs = tfs_of(req);
    if (!S_ISREG(mode)) {
        fuse_reply_err(req, EPERM); /* devices, FIFOs and sockets have no key form */
        return;
    }
    struct tfs_node *p = get_dir(req, parent), *n = NULL;
    if (!p)
        return;
    int rc = make_entry(req, fs, p, name, TFS_T_FILE, mode, NULL, false, &n);
    reply_new(req, fs, rc, n);
    tfs_node_put(fs, p);
}

void tfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *p = get_dir(req, parent), *n = NULL;
    if (!p)
        return;
    if (p->kind == TFS_SNAPDIR) {
        tfs_snap_mkdir(req, fs, name);
    } else {
        int rc = make_entry(req, fs, p, name, TFS_T_DIR, mode, NULL, false, &n);
        reply_new(req, fs, rc, n);
    }
    tfs_node_put(fs, p);
}

void tfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *p = get_dir(req, parent), *n = NULL;
    if (!p)
        return;
    int rc = make_entry(req, fs, p, name, TFS_T_SYMLINK, 0777, link, false, &n);
    reply_new(req, fs, rc, n);
    tfs_node_put(fs, p);
}

void tfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino;
    (void)newparent;
    (void)newname;
    fuse_reply_err(req, EPERM); /* a key has one path: no hard links */
}

/* ---- removal ------------------------------------------------------------- */

/* The chain directories (TFS_CONT) above a removed key that no key spells
 * any more disappear; tell the kernel. */
void tfs_drop_empty_chain(struct tfs *fs, struct tfs_node *dir)
{
    struct tfs_buf key = {0};
    struct tfs_view live = {NULL};
    while (dir->kind == TFS_CONT && !dir->virt) {
        if (tfs_node_key(fs, dir, &key) < 0 ||
            tfs_any_key(fs, live, key.p, key.n, NULL, 0, NULL, 0) != 0)
            break;
        tfs_inval_entry(fs, dir->parent->ino, dir->name, dir->namelen);
        tfs_node_unlink(fs, dir);
        dir = dir->parent;
    }
    tfs_buf_free(&key);
}

/* After directory "name" went away, a file with the same key is shown
 * under the plain name instead of the conflict form. */
void tfs_unconflict(struct tfs *fs, struct tfs_node *parent, const char *name, const uint8_t *key,
                    size_t klen)
{
    struct tfs_view live = {NULL};
    struct tfs_probe p;
    if (tfs_probe_key(fs, live, key, klen, &p) < 0 || !p.file)
        return;
    char cname[FSK_NAME_MAX * 2 + 8];
    size_t cl;
    if (fsk_conflict_name(name, strlen(name), cname, sizeof cname, &cl) < 0)
        return;
    char *sl = memchr(cname, '/', cl);
    if (sl)
        cl = (size_t)(sl - cname); /* a split form: its first piece */
    cname[cl] = 0;
    struct tfs_node *f = tfs_node_child(fs, parent, cname);
    if (f && !sl) {
        tfs_node_move(fs, f, parent, name, f->seg, f->seglen, false);
        tfs_inval_inode(fs, f->ino);
    } else if (f) {
        tfs_node_unlink(fs, f);
    }
    tfs_node_put(fs, f);
    tfs_inval_entry(fs, parent->ino, cname, cl);
    tfs_inval_entry(fs, parent->ino, name, strlen(name));
}

static int remove_entry(struct tfs *fs, struct tfs_node *parent, struct tfs_node *n, bool dir)
{
    struct tfs_buf key = {0}, hi = {0};
    struct tfs_txn tx = {0};
    struct tfs_view live = {NULL};
    int rc = tfs_node_key(fs, n, &key);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&fs->ns);
    if (!n->linked) {
        rc = -ENOENT;
        goto out;
    }
    if (dir) {
        /* Empty means: no key below "key/" but its own marker. */
        if ((rc = tfs_buf_add(&key, "/", 1)) < 0 || (rc = tfs_buf_set(&hi, key.p, key.n)) < 0 ||
            (rc = tfs_buf_add(&hi, "", 1)) < 0)
            goto out;
        hi.p[hi.n - 1] = 0;
        rc = tfs_any_key(fs, live, key.p, key.n, key.p, key.n, hi.p, hi.n);
        if (rc == 0) {
            struct tfs_probe p;
            rc = tfs_probe_key(fs, live, key.p, key.n, &p);
            if (rc == 0 && p.file)
                rc = 1; /* "key/" is the file "%e", not the marker */
        }
        if (rc > 0 || (rc == 0 && tfs_has_fresh(fs, n)))
            rc = -ENOTEMPTY;
        if (rc < 0)
            goto out;
        /* The whole "key/..." range is gone for the parent's emptiness. */
        hi.n = key.n;
        hi.p[hi.n - 1] = '0';
    } else {
        if ((rc = tfs_buf_set(&hi, key.p, key.n)) < 0 || (rc = tfs_buf_add(&hi, "", 1)) < 0)
            goto out;
        hi.p[hi.n - 1] = 0;
    }
    if ((rc = tfs_txn_begin(fs, &tx)) < 0)
        goto out;
    rc = tfs_txn_del(&tx, fs->data, key.p, key.n);
    if (rc == 0)
        rc = tfs_txn_del(&tx, fs->meta, key.p, key.n);
    if (rc == 0) /* [key, hi) is all that goes away below the parent */
        rc = tfs_txn_keep_dir(&tx, parent, key.p, key.n, hi.p, hi.n);
    if (rc == 0)
        rc = tfs_txn_touch_dir(&tx, parent, tfs_now_ns());
    if (rc == 0)
        rc = tfs_txn_commit(&tx, -1);
    if (rc == 0) {
        tfs_node_unlink(fs, n);
        if (dir)
            tfs_unconflict(fs, parent, n->name, key.p, key.n - 1);
        tfs_drop_empty_chain(fs, parent);
    }
out:
    pthread_rwlock_unlock(&fs->ns);
    if (tx.b)
        tfs_txn_end(&tx);
    tfs_buf_free(&key);
    tfs_buf_free(&hi);
    return rc;
}

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *p = get_dir(req, parent), *n = NULL;
    if (!p)
        return;
    if (dir && p->kind == TFS_SNAPDIR) {
        tfs_snap_rmdir(req, fs, name);
        tfs_node_put(fs, p);
        return;
    }
    int rc = tfs_writable(fs, p);
    if (rc == 0)
        rc = tfs_lookup_node(fs, p, name, &n);
    if (rc == 0 && n->kind == TFS_SNAPDIR)
        rc = -EBUSY;
    else if (rc == 0 && dir && n->kind == TFS_FILE)
        rc = -ENOTDIR;
    else if (rc == 0 && !dir && n->kind != TFS_FILE)
        rc = -EISDIR;
    if (rc == 0 && n->kind == TFS_CONT) {
        /* A chain directory: empty once no key spells it. */
        struct tfs_buf key = {0};
        struct tfs_view live = {NULL};
        rc = tfs_node_key(fs, n, &key);
        if (rc == 0)
            rc = tfs_any_key(fs, live, key.p, key.n, NULL, 0, NULL, 0);
        rc = rc > 0 ? -ENOTEMPTY : rc;
        if (rc == 0)
            tfs_node_unlink(fs, n);
        tfs_buf_free(&key);
    } else if (rc == 0) {
        rc = remove_entry(fs, p, n, dir);
    }
    fuse_reply_err(req, -rc);
    tfs_node_put(fs, n);
    tfs_node_put(fs, p);
}

void tfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    do_remove(req, parent, name, false);
}

void tfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    do_remove(req, parent, name, true);
}

void tfs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    struct stat st;
    struct tfs_buf key = {0};
    struct tfs_view v;
    void *val = NULL;
    size_t vlen = 0;
    int rc = tfs_node_stat(fs, n, &st);
    if (rc == 0 && !S_ISLNK(st.st_mode))
        rc = -EINVAL;
    if (rc == 0)
        rc = tfs_node_key(fs, n, &key);
    if (rc == 0 && (rc = tfs_snap_enter(fs, n, &v)) == 0) {
        pthread_rwlock_rdlock(&fs->ns);
        rc = tfs_get(fs, fs->data, v, key.p, key.n, &val, &vlen);
        pthread_rwlock_unlock(&fs->ns);
        tfs_snap_leave(fs, n);
    }
    char *target = rc == 0 ? malloc(vlen + 1) : NULL;
    if (rc == 0 && !target)
        rc = -ENOMEM;
    if (rc < 0) {
        fuse_reply_err(req, -rc);
    } else {
        if (vlen)
            memcpy(target, val, vlen);
        target[vlen] = 0;
        fuse_reply_readlink(req, target);
    }
    free(target);
    talus_free(val);
    tfs_buf_free(&key);
    tfs_node_put(fs, n);
}
