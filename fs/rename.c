/*
 * rename.c - rename(2) and renameat2(RENAME_NOREPLACE / RENAME_EXCHANGE)
 * as one atomic batch.
 *
 * Keys are paths, so renaming a directory rewrites every key below it, in
 * tree "data" and in tree "meta": the batch deletes every key of the
 * source (and of a replaced or exchanged target) and then puts the copies
 * under their new names; a key written twice in a batch keeps the last
 * write, which is what makes an exchange come out right. The cost grows
 * with the subtree (its keys and values are held in the batch): documented
 * in fs/README.md. In the inode table the move is one parent-pointer
 * change, so inode numbers follow the files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* The keys of one side: a file's key, or every key below "key/". */
struct span {
    bool dir;
    struct tfs_buf key; /* directories: with the trailing '/' */
};

static int span_init(const uint8_t *key, size_t klen, bool dir, struct span *s)
{
    memset(s, 0, sizeof *s);
    s->dir = dir;
    int rc = tfs_buf_set(&s->key, key, klen);
    if (rc == 0 && dir)
        rc = tfs_buf_add(&s->key, "/", 1);
    return rc;
}

/* For every key of span s in tree t: delete it (to == NULL) or put its
 * value under to's key + the rest of the key. */
static int span_walk(struct tfs_txn *tx, talus_tree *t, const struct span *s, const struct span *to)
{
    if (!s->dir) {
        if (!to)
            return tfs_txn_del(tx, t, s->key.p, s->key.n);
        int rc = tfs_txn_copy(tx, t, to->key.p, to->key.n, s->key.p, s->key.n);
        return rc == -ENOENT ? 0 : rc; /* a key without attributes stays without */
    }
    talus_iter *it = NULL;
    talus_iter_options o;
    talus_iter_options_init(&o);
    o.prefix = s->key.p;
    o.prefix_len = s->key.n;
    int rc = talus_iter_new(t, &o, &it);
    if (rc < 0)
        return tfs_errno(rc, "rename scan");
    struct tfs_buf nk = {0};
    for (talus_iter_seek(it, s->key.p, s->key.n); rc == 0 && talus_iter_valid(it);
         talus_iter_next(it)) {
        size_t kl;
        const uint8_t *k = talus_iter_key(it, &kl);
        if (!to) {
            rc = tfs_txn_del(tx, t, k, kl);
            continue;
        }
        /* The value is copied by key: one kept in a blob file is linked,
         * never read. */
        rc = tfs_buf_set(&nk, to->key.p, to->key.n);
        if (rc == 0)
            rc = tfs_buf_add(&nk, k + s->key.n, kl - s->key.n);
        if (rc == 0)
            rc = tfs_txn_copy(tx, t, nk.p, nk.n, k, kl);
    }
    if (rc == 0 && talus_iter_status(it) < 0)
        rc = tfs_errno(talus_iter_status(it), "rename scan");
    talus_iter_free(it);
    tfs_buf_free(&nk);
    return rc;
}

static int span_delete(struct tfs_txn *tx, const struct span *s)
{
    int rc = span_walk(tx, tx->fs->data, s, NULL);
    return rc == 0 ? span_walk(tx, tx->fs->meta, s, NULL) : rc;
}

static int span_copy(struct tfs_txn *tx, const struct span *from, const struct span *to)
{
    int rc = span_walk(tx, tx->fs->data, from, to);
    return rc == 0 ? span_walk(tx, tx->fs->meta, from, to) : rc;
}

/* Is a an ancestor of (or equal to) b? */
static bool is_ancestor(struct tfs *fs, struct tfs_node *a, struct tfs_node *b)
{
    pthread_mutex_lock(&fs->tbl);
    bool yes = false;
    for (struct tfs_node *x = b; x; x = x->parent)
        if (x == a) {
            yes = true;
            break;
        }
    pthread_mutex_unlock(&fs->tbl);
    return yes;
}

static int dir_empty(struct tfs *fs, const struct span *d)
{
    struct tfs_buf hi = {0};
    struct tfs_view live = {NULL};
    int rc = tfs_buf_set(&hi, d->key.p, d->key.n);
    if (rc == 0)
        rc = tfs_buf_add(&hi, "", 1);
    if (rc == 0) {
        hi.p[hi.n - 1] = 0;
        rc = tfs_any_key(fs, live, d->key.p, d->key.n, d->key.p, d->key.n, hi.p, hi.n);
    }
    tfs_buf_free(&hi);
    return rc < 0 ? rc : rc ? -ENOTEMPTY : 0;
}

struct rn {
    struct tfs *fs;
    struct tfs_node *p, *np, *src, *dst;
    const char *name, *newname;
    unsigned flags;
    struct tfs_res r;
    struct tfs_buf skey;          /* the source's key (no trailing '/') */
    struct span s, d, s_to, d_to; /* what goes away, where it goes */
};

/* Under fs->ns (write): check, build and commit the batch. */
static int rename_commit(struct rn *x)
{
    struct tfs *fs = x->fs;
    struct tfs_view live = {NULL};
    bool exchange = x->flags & RENAME_EXCHANGE;
    if (!x->src->linked || (x->dst && !x->dst->linked))
        return -ENOENT;
    if (x->r.kind == TFS_RES_CONFLICT) {
        /* "k%f" names the file k next to the directory k. */
        struct tfs_probe p;
        int rc = tfs_probe_key(fs, live, x->r.key.p, x->r.key.n, &p);
        if (rc < 0)
            return rc;
        if (!p.dir || x->src->kind != TFS_FILE)
            return -EINVAL;
    }
    bool sdir = x->src->kind == TFS_DIR, ddir = x->dst && x->dst->kind == TFS_DIR;
    int rc = tfs_node_key(fs, x->src, &x->skey);
    const uint8_t *dk = x->r.key.p;
    size_t dkl = x->r.key.n;
    if (rc == 0)
        rc = span_init(x->skey.p, x->skey.n, sdir, &x->s);
    if (rc == 0)
        rc = span_init(dk, dkl, ddir, &x->d);
    if (rc == 0)
        rc = span_init(dk, dkl, sdir, &x->s_to);
    if (rc == 0)
        rc = span_init(x->skey.p, x->skey.n, ddir, &x->d_to);
    if (rc < 0)
        return rc;
    if (x->dst && !exchange) {
        if (sdir && !ddir)
            return -ENOTDIR;
        if (!sdir && ddir)
            return -EISDIR;
        if (ddir && (rc = dir_empty(fs, &x->d)) < 0)
            return rc;
        if (ddir && tfs_has_fresh(fs, x->dst))
            return -ENOTEMPTY;
    }

    struct tfs_txn tx;
    if ((rc = tfs_txn_begin(fs, &tx)) < 0)
        return rc;
    int64_t now = tfs_now_ns();
    rc = span_delete(&tx, &x->s);
    if (rc == 0 && x->dst)
        rc = span_delete(&tx, &x->d);
    if (rc == 0)
        rc = span_copy(&tx, &x->s, &x->s_to);
    if (rc == 0 && exchange)
        rc = span_copy(&tx, &x->d, &x->d_to);
    if (rc == 0 && x->p != x->np && !exchange) {
        /* The source's directory may be left empty: keep it. */
        struct tfs_buf hi = {0};
        rc = tfs_buf_set(&hi, x->s.key.p, x->s.key.n);
        if (rc == 0)
            rc = tfs_buf_add(&hi, "", 1);
        if (rc == 0) {
            if (x->s.dir)
                hi.p[hi.n - 2] = '0', hi.n--; /* "key/" -> "key0" */
            else
                hi.p[hi.n - 1] = 0;
            rc = tfs_txn_keep_dir(&tx, x->p, x->s.key.p, x->s.key.n, hi.p, hi.n);
        }
        tfs_buf_free(&hi);
    }
    if (rc == 0)
        rc = tfs_txn_touch_dir(&tx, x->p, now);
    if (rc == 0 && x->np != x->p)
        rc = tfs_txn_touch_dir(&tx, x->np, now);
    if (rc == 0)
        rc = tfs_txn_commit(&tx, -1);
    tfs_txn_end(&tx);
    return rc;
}

static int do_rename(struct rn *x)
{
    struct tfs *fs = x->fs;
    if (x->flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
        return -EINVAL;
    if ((x->flags & RENAME_NOREPLACE) && (x->flags & RENAME_EXCHANGE))
        return -EINVAL;
    int rc = tfs_writable(fs, x->p);
    if (rc == 0)
        rc = tfs_writable(fs, x->np);
    if (rc < 0)
        return rc;
    if (x->p->kind == TFS_SNAPDIR || x->np->kind == TFS_SNAPDIR)
        return -EROFS;
    if ((x->p->kind == TFS_ROOT && strcmp(x->name, ".snap") == 0) ||
        (x->np->kind == TFS_ROOT && strcmp(x->newname, ".snap") == 0))
        return -EBUSY;
    if ((rc = tfs_lookup_node(fs, x->p, x->name, &x->src)) < 0)
        return rc;
    if (x->src->kind == TFS_CONT)
        return -EINVAL; /* a piece of a long name, not an entry */
    /* Uncommitted writes (and a creation) go first: a rename moves keys. */
    if ((rc = tfs_file_flush(fs, x->src)) < 0)
        return rc;
    rc = tfs_resolve(fs, x->np, x->newname, &x->r);
    if (rc == -ENOENT || (rc == 0 && x->r.kind == TFS_RES_CONT))
        return -EINVAL;
    if (rc < 0)
        return rc;
    rc = tfs_lookup_node(fs, x->np, x->newname, &x->dst);
    if (rc == -ENOENT)
        x->dst = NULL;
    else if (rc < 0)
        return rc;
    if (x->dst == x->src)
        return 0;
    if (x->dst && x->dst->kind == TFS_CONT)
        return -EEXIST;
    if ((x->flags & RENAME_NOREPLACE) && x->dst)
        return -EEXIST;
    if ((x->flags & RENAME_EXCHANGE) && !x->dst)
        return -ENOENT;
    if (x->src->kind == TFS_DIR && is_ancestor(fs, x->src, x->np))
        return -EINVAL;
    if (x->dst && x->dst->kind == TFS_DIR && is_ancestor(fs, x->dst, x->p))
        return -EINVAL;

    pthread_rwlock_wrlock(&fs->ns);
    rc = rename_commit(x);
    if (rc == 0) {
        bool src_dir = x->src->kind == TFS_DIR;
        char *oldname = strdup(x->src->name);
        if (x->flags & RENAME_EXCHANGE) {
            uint8_t *seg = malloc(x->src->seglen ? x->src->seglen : 1);
            size_t seglen = x->src->seglen;
            bool conflict = x->src->conflict;
            if (seg && seglen)
                memcpy(seg, x->src->seg, seglen);
            rc = seg && oldname ? 0 : -ENOMEM;
            if (rc == 0)
                rc = tfs_node_move(fs, x->src, x->np, x->newname, x->r.seg.p, x->r.seg.n,
                                   x->r.kind == TFS_RES_CONFLICT);
            if (rc == 0)
                rc = tfs_node_move(fs, x->dst, x->p, oldname, seg, seglen, conflict);
            free(seg);
        } else {
            if (x->dst)
                tfs_node_unlink(fs, x->dst);
            rc = tfs_node_move(fs, x->src, x->np, x->newname, x->r.seg.p, x->r.seg.n,
                               x->r.kind == TFS_RES_CONFLICT);
        }
        if (rc < 0) {
            /* The database is right; the table is not: forget the names. */
            tfs_node_unlink(fs, x->src);
            if (x->dst)
                tfs_node_unlink(fs, x->dst);
            tfs_inval_entry(fs, x->p->ino, x->name, strlen(x->name));
            tfs_inval_entry(fs, x->np->ino, x->newname, strlen(x->newname));
            rc = 0;
        }
        /* A file that shared its key with the moved directory loses the
         * conflict suffix. */
        if (src_dir && !(x->flags & RENAME_EXCHANGE))
            tfs_unconflict(fs, x->p, x->name, x->skey.p, x->skey.n);
        tfs_drop_empty_chain(fs, x->p);
        free(oldname);
    }
    pthread_rwlock_unlock(&fs->ns);
    return rc;
}

void tfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                   const char *newname, unsigned int flags)
{
    struct tfs *fs = tfs_of(req);
    struct rn x;
    memset(&x, 0, sizeof x);
    x.fs = fs;
    x.name = name;
    x.newname = newname;
    x.flags = flags;
    x.p = tfs_node_get(fs, parent);
    x.np = tfs_node_get(fs, newparent);
    int rc = x.p && x.np ? do_rename(&x) : -ESTALE;
    fuse_reply_err(req, -rc);
    tfs_res_free(&x.r);
    tfs_buf_free(&x.skey);
    tfs_buf_free(&x.s.key);
    tfs_buf_free(&x.d.key);
    tfs_buf_free(&x.s_to.key);
    tfs_buf_free(&x.d_to.key);
    tfs_node_put(fs, x.src);
    tfs_node_put(fs, x.dst);
    tfs_node_put(fs, x.p);
    tfs_node_put(fs, x.np);
}
