/*
 * xattr.c - extended attributes. Only the "user." namespace is stored (in
 * the file's attribute record, fs/META.md); every other namespace is
 * EOPNOTSUPP, answered without touching the database (the kernel asks for
 * "security.capability" on every write).
 *
 * The mount root (and each snapshot root) also answers "user.talus.seqno":
 * the current seqno (or the snapshot's), read-only and not listed, so that
 * copying the mount does not copy it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fs.h"

#define SEQNO_XATTR "user.talus.seqno"

static bool user_ns(const char *name)
{
    return strncmp(name, "user.", 5) == 0;
}

/* Load the record of node n at view v; key receives where it is stored. */
static int node_meta(struct tfs *fs, struct tfs_node *n, struct tfs_view v, struct tfs_buf *key,
                     struct tfs_meta *m)
{
    if (n->kind == TFS_CONT || n->kind == TFS_SNAPDIR) {
        tfs_meta_default(fs, TFS_T_DIR, m);
        return 0;
    }
    int rc = tfs_node_key(fs, n, key);
    if (rc < 0)
        return rc;
    if (tfs_is_rootlike(n))
        rc = tfs_load_root_meta(fs, v, m);
    else
        rc = tfs_load_meta(fs, v, key->p, key->n, n->kind == TFS_DIR,
                           n->kind == TFS_DIR ? TFS_T_DIR : TFS_T_FILE, m);
    return rc == -ENOENT ? 0 : rc;
}

static void reply_value(fuse_req_t req, const void *v, size_t len, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, v, len);
}

void tfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct tfs *fs = tfs_of(req);
    if (!user_ns(name)) {
        fuse_reply_err(req, EOPNOTSUPP);
        return;
    }
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (tfs_is_rootlike(n) && strcmp(name, SEQNO_XATTR) == 0) {
        char s[32];
        uint64_t seq = n->snap ? n->snap->seqno : talus_seqno(fs->db);
        int len = snprintf(s, sizeof s, "%" PRIu64, seq);
        reply_value(req, s, (size_t)len, size);
        tfs_node_put(fs, n);
        return;
    }
    struct tfs_buf key = {0};
    struct tfs_meta m;
    struct tfs_view v;
    int rc = tfs_snap_enter(fs, n, &v);
    if (rc == 0) {
        pthread_rwlock_rdlock(&fs->ns);
        rc = node_meta(fs, n, v, &key, &m);
        pthread_rwlock_unlock(&fs->ns);
        tfs_snap_leave(fs, n);
    }
    if (rc < 0) {
        fuse_reply_err(req, -rc);
    } else {
        struct tfs_xattr *x = tfs_meta_xfind(&m, name);
        if (!x)
            fuse_reply_err(req, ENODATA);
        else
            reply_value(req, x->val, x->vlen, size);
        tfs_meta_free(&m);
    }
    tfs_buf_free(&key);
    tfs_node_put(fs, n);
}

void tfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    struct tfs_buf key = {0}, list = {0};
    struct tfs_meta m;
    struct tfs_view v;
    int rc = tfs_snap_enter(fs, n, &v);
    if (rc == 0) {
        pthread_rwlock_rdlock(&fs->ns);
        rc = node_meta(fs, n, v, &key, &m);
        pthread_rwlock_unlock(&fs->ns);
        tfs_snap_leave(fs, n);
    }
    if (rc == 0) {
        for (size_t i = 0; rc == 0 && i < m.nx; i++)
            rc = tfs_buf_add(&list, m.x[i].name, strlen(m.x[i].name) + 1);
        tfs_meta_free(&m);
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        reply_value(req, list.p, list.n, size);
    tfs_buf_free(&list);
    tfs_buf_free(&key);
    tfs_node_put(fs, n);
}

/* Set (value != NULL) or remove an xattr: one batch with the new record. */
static int change(struct tfs *fs, struct tfs_node *n, const char *name, const char *value,
                  size_t size, int flags)
{
    if (!user_ns(name))
        return -EOPNOTSUPP;
    int rc = tfs_writable(fs, n);
    if (rc < 0)
        return rc;
    if (n->kind == TFS_CONT)
        return -EPERM;
    if (tfs_is_rootlike(n) && strcmp(name, SEQNO_XATTR) == 0)
        return -EPERM;
    /* A file not committed yet gets its first commit now, so that the
     * record written here has the file's mode and owner. */
    if (n->fresh && (rc = tfs_file_flush(fs, n)) < 0)
        return rc;
    struct tfs_buf key = {0};
    struct tfs_meta m;
    struct tfs_view live = {NULL};
    struct tfs_txn tx = {0};
    pthread_rwlock_wrlock(&fs->ns);
    rc = n->linked ? node_meta(fs, n, live, &key, &m) : -ENOENT;
    if (rc < 0)
        goto out_unlocked_meta;
    bool exists = tfs_meta_xfind(&m, name) != NULL;
    if (value) {
        if ((flags & XATTR_CREATE) && exists)
            rc = -EEXIST;
        else if ((flags & XATTR_REPLACE) && !exists)
            rc = -ENODATA;
        else
            rc = tfs_meta_xset(&m, name, value, size);
    } else {
        rc = tfs_meta_xdel(&m, name);
    }
    if (rc == 0) {
        m.ctime = tfs_now_ns();
        rc = tfs_txn_begin(fs, &tx);
    }
    if (rc == 0 && tfs_is_rootlike(n))
        rc = tfs_txn_put_root_meta(&tx, &m);
    else if (rc == 0)
        rc = tfs_txn_put_meta(&tx, key.p, key.n, n->kind != TFS_FILE, &m);
    if (rc == 0)
        rc = tfs_txn_commit(&tx, -1);
    if (rc == 0) {
        pthread_mutex_lock(&fs->tbl);
        n->attr.ctime = m.ctime;
        pthread_mutex_unlock(&fs->tbl);
    }
    if (tx.b)
        tfs_txn_end(&tx);
    tfs_meta_free(&m);
out_unlocked_meta:
    pthread_rwlock_unlock(&fs->ns);
    tfs_buf_free(&key);
    return rc;
}

void tfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                     size_t size, int flags)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    int rc = change(fs, n, name, value ? value : "", size, flags);
    fuse_reply_err(req, -rc);
    tfs_node_put(fs, n);
}

void tfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    int rc = change(fs, n, name, NULL, 0, 0);
    fuse_reply_err(req, -rc);
    tfs_node_put(fs, n);
}
