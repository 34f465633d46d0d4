/*
 * file.c - open files: reads, writes and when they reach the database.
 *
 * Read-only opens share one open engine value (talus_value) per version of
 * an inode's committed contents (struct tfs_blob); each read is a ranged
 * talus_value_read of just the bytes asked for, so opening, reading the
 * head of, or seeking in a large file never loads it whole (a value kept
 * in an engine blob file is read from that file; a small one is held in
 * memory by the engine). A reader keeps the version it opened even when
 * the file is overwritten or removed meanwhile (the engine keeps an open
 * value readable), so it sees the old or the new file, never a mix.
 * Writable opens of an inode share one write buffer (so two descriptors of
 * one file, or two O_APPEND writers, behave as on a local filesystem); it
 * is committed whole, contents and attributes in one batch, at flush
 * (every close), fsync and release.
 *
 * Kernel page cache. Writable opens use direct I/O: their bytes never sit
 * in the shared page cache, where readers would see them before the
 * commit. Read-only opens of live files use direct I/O too, by default:
 * the kernel keeps ONE size per inode, and a writer's O_TRUNC or writes
 * change it under a reader that uses the page cache, whose reads then end
 * early (a shortened old version: measured, about one read in six while a
 * file is rewritten in a loop). With direct I/O every read reaches the
 * reader's own version, so it sees the old or the new file, whole. Large
 * reads cost the same either way; small reads (4 KiB) cost a round trip
 * each, and a MAP_SHARED mapping of a live file fails (ENODEV;
 * MAP_PRIVATE, hence exec, works). `-o kernel_cache` trades the guarantee
 * for the page cache (keep_cache while a file is unchanged), for files
 * that are not rewritten in place while being read. Snapshot files never
 * change: they always use the page cache with keep_cache. When page-cached
 * opens of an older version are still reading, an open of a newer version
 * uses direct I/O, so no reader ever gets pages of two versions.
 *
 * Write buffers. The writable opens of an inode share one write buffer,
 * which holds the contents in memory or streams them to an engine value
 * writer: stream.c changes and reads its contents and hands them to a
 * batch; this file creates, loads, commits and frees it.
 *
 * Limits: a file rewritten in place lives in memory while open for
 * writing, and every commit writes the whole file (the engine puts a value
 * of at least the data tree's min_blob_size, -o blob_size, in a blob file
 * of its own): appending to a large file with an fsync after every line
 * copies it each time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "fs.h"
#include "file_int.h"

/* One committed version of a file, shared by the read-only opens of it
 * (not to be confused with the engine's blob files, which it may read). */
struct tfs_blob {
    uint32_t refs;    /* handles and reads in flight using it; under fs->tbl */
    talus_value *val; /* NULL: nothing stored (removed, or a new file) */
    uint64_t len;     /* talus_value_length(val), 0 without val */
    uint64_t version;
    struct tfs_node *node;
};

struct fh {
    struct tfs_node *n; /* holds an op reference */
    struct tfs_blob *blob;
    bool writable, append, pagecache;
    /* Wrote through this handle since its last flush. The release of a
     * handle that did not (its close already committed) must not commit
     * the shared buffer, which by then may hold another open's half-done
     * rewrite (release arrives asynchronously, after the next open). */
    bool wrote;
};

static void blob_unref(struct tfs *fs, struct tfs_blob *b)
{
    pthread_mutex_lock(&fs->tbl);
    bool last = --b->refs == 0;
    if (last && b->node->blob == b)
        b->node->blob = NULL;
    pthread_mutex_unlock(&fs->tbl);
    if (last) {
        talus_value_close(b->val);
        free(b);
    }
}

static void wbuf_free(struct tfs_wbuf *w)
{
    if (!w)
        return;
    tfs_wbuf_clear(w);
    free(w);
}

bool tfs_file_handle_size(struct fuse_file_info *fi, uint64_t *size)
{
    struct fh *h = fi ? (struct fh *)(uintptr_t)fi->fh : NULL;
    if (!h || h->writable)
        return false;
    *size = h->blob->len;
    return true;
}

void tfs_file_drop(struct tfs_node *n)
{
    /* Blobs belong to their handles, which keep the node alive. */
    wbuf_free(n->w);
    n->w = NULL;
    n->blob = NULL;
}

/* Read the committed contents. REQUIRES fs->ns (either mode). */
static int load_value(struct tfs *fs, struct tfs_node *n, struct tfs_view v, void **data,
                      size_t *len)
{
    struct tfs_buf key = {0};
    int rc = tfs_node_key(fs, n, &key);
    if (rc == 0)
        rc = tfs_get(fs, fs->data, v, key.p, key.n, data, len);
    if (rc == -ENOENT) { /* removed while open, or a new file */
        *data = NULL;
        *len = 0;
        rc = 0;
    }
    tfs_buf_free(&key);
    return rc;
}

int tfs_file_value_open(struct tfs *fs, struct tfs_node *n, struct tfs_view v, talus_value **val)
{
    struct tfs_buf key = {0};
    *val = NULL;
    int rc = tfs_node_key(fs, n, &key);
    if (rc == 0)
        rc = tfs_value_open(fs, v, key.p, key.n, val);
    if (rc == -ENOENT)
        rc = 0;
    tfs_buf_free(&key);
    return rc;
}

int tfs_wbuf_load(struct tfs *fs, struct tfs_node *n, bool ns_held)
{
    struct tfs_wbuf *w = n->w;
    if (w->loaded)
        return 0;
    struct tfs_view live = {NULL};
    void *data = NULL;
    size_t len = 0;
    if (!ns_held)
        pthread_rwlock_rdlock(&fs->ns);
    int rc = n->linked ? load_value(fs, n, live, &data, &len) : 0;
    if (!ns_held)
        pthread_rwlock_unlock(&fs->ns);
    if (rc < 0)
        return rc;
    w->data = data;
    w->len = w->cap = len;
    w->talus_mem = true;
    w->loaded = true;
    return 0;
}

static void set_pending(struct tfs *fs, struct tfs_node *n, uint64_t size, int64_t mtime)
{
    pthread_mutex_lock(&fs->tbl);
    n->pend = true;
    n->pend_size = size;
    n->pend_mtime = mtime;
    pthread_mutex_unlock(&fs->tbl);
}

/* ---- open ---------------------------------------------------------------- */

/* Get (or open) the blob of the committed contents for a read-only open. */
static int get_blob(struct tfs *fs, struct tfs_node *n, struct tfs_blob **out)
{
    pthread_mutex_lock(&fs->tbl);
    struct tfs_blob *b = n->blob;
    if (b && b->version == n->data_version) {
        b->refs++;
        pthread_mutex_unlock(&fs->tbl);
        *out = b;
        return 0;
    }
    pthread_mutex_unlock(&fs->tbl);

    struct tfs_view v;
    int rc = tfs_snap_enter(fs, n, &v);
    if (rc < 0)
        return rc;
    b = calloc(1, sizeof *b);
    if (!b) {
        tfs_snap_leave(fs, n);
        return -ENOMEM;
    }
    pthread_rwlock_rdlock(&fs->ns);
    pthread_mutex_lock(&fs->tbl);
    b->version = n->data_version; /* stable: commits bump it under ns (write) */
    pthread_mutex_unlock(&fs->tbl);
    rc = tfs_file_value_open(fs, n, v, &b->val);
    pthread_rwlock_unlock(&fs->ns);
    tfs_snap_leave(fs, n);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->len = b->val ? talus_value_length(b->val) : 0;
    b->refs = 1;
    b->node = n;
    pthread_mutex_lock(&fs->tbl);
    if (!n->blob || n->blob->version < b->version)
        n->blob = b;
    pthread_mutex_unlock(&fs->tbl);
    *out = b;
    return 0;
}

int tfs_file_open(struct tfs *fs, struct tfs_node *n, struct fuse_file_info *fi, bool created)
{
    if (n->kind != TFS_FILE)
        return tfs_is_dirlike(n) || n->kind == TFS_SNAPDIR ? -EISDIR : -EINVAL;
    int acc = fi->flags & O_ACCMODE;
    bool trunc = (fi->flags & O_TRUNC) != 0;
    bool writable = acc != O_RDONLY || trunc;
    if (writable) {
        int rc = tfs_writable(fs, n);
        if (rc < 0)
            return rc;
    }
    struct fh *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->n = n;
    h->writable = writable;
    h->append = (fi->flags & O_APPEND) != 0;

    if (writable) {
        pthread_mutex_lock(&n->wlock);
        pthread_mutex_lock(&fs->tbl);
        if (!n->w)
            n->w = calloc(1, sizeof *n->w);
        struct tfs_wbuf *w = n->w;
        if (w) {
            w->users++;
            n->nopen++;
            n->oprefs++;
        }
        pthread_mutex_unlock(&fs->tbl);
        if (w && created && !w->loaded && !w->dirty) {
            /* A new file: its creation is its first commit (see fresh). */
            w->loaded = true;
            w->dirty = true;
            set_pending(fs, n, 0, 0);
        }
        if (w && trunc && (w->len > 0 || !w->loaded || !w->dirty)) {
            /* O_TRUNC: the emptied file is committed at close like a write. */
            tfs_wbuf_clear(w);
            w->stream_at = 0;
            w->loaded = true;
            w->dirty = true;
            set_pending(fs, n, 0, tfs_now_ns());
        }
        pthread_mutex_unlock(&n->wlock);
        if (!w) {
            free(h);
            return -ENOMEM;
        }
        fi->direct_io = 1;
    } else {
        int rc = get_blob(fs, n, &h->blob);
        if (rc < 0) {
            free(h);
            return rc;
        }
        pthread_mutex_lock(&fs->tbl);
        uint64_t ver = h->blob->version;
        if (!n->snap && !fs->cfg.kernel_cache) {
            /* The default for live files: see the comment at the top. */
            fi->direct_io = 1;
        } else if (n->pc_users == 0) {
            fi->keep_cache = n->pc_known && n->pc_version == ver;
            n->pc_version = ver;
            n->pc_known = true;
            n->pc_users++;
            h->pagecache = true;
        } else if (n->pc_version == ver) {
            fi->keep_cache = 1;
            n->pc_users++;
            h->pagecache = true;
        } else {
            fi->direct_io = 1; /* older versions are still being read */
        }
        n->nopen++;
        n->oprefs++;
        pthread_mutex_unlock(&fs->tbl);
        fi->noflush = 1; /* a read-only close has nothing to commit: no FLUSH round trip */
    }
    fi->fh = (uintptr_t)h;
    return 0;
}

/* ---- commit ---------------------------------------------------------------- */

void tfs_file_txn_done(struct tfs *fs, struct tfs_node *n, int rc)
{
    struct tfs_wbuf *w = n->w;
    if (!w || !w->handed)
        return;
    w->handed = false;
    if (rc < 0) {
        /* The streamed contents went with the failed batch: the file is
         * back to what was committed before. */
        tfs_log(LOG_ERR, "changes to \"%s\" were lost: %s", n->name, strerror(-rc));
        pthread_mutex_lock(&fs->tbl);
        n->pend = false;
        pthread_mutex_unlock(&fs->tbl);
    }
}

void tfs_file_committed(struct tfs *fs, struct tfs_node *n)
{
    if (n->w)
        n->w->dirty = n->w->wrote = false;
    pthread_mutex_lock(&fs->tbl);
    n->data_version++;
    n->pend = false;
    pthread_mutex_unlock(&fs->tbl);
    tfs_fresh_del(fs, n);
}

int tfs_node_meta(struct tfs *fs, struct tfs_node *n, const uint8_t *key, size_t klen,
                  struct tfs_meta *m)
{
    pthread_mutex_lock(&fs->tbl);
    bool fresh = n->fresh;
    struct tfs_attr a = n->attr;
    pthread_mutex_unlock(&fs->tbl);
    if (fresh) {
        tfs_meta_default(fs, TFS_T_FILE, m);
        m->mode = a.mode & 07777;
        m->uid = a.uid;
        m->gid = a.gid;
        m->atime = a.atime;
        m->mtime = a.mtime;
        m->ctime = a.ctime;
        return 0;
    }
    struct tfs_view live = {NULL};
    bool dir = n->kind != TFS_FILE;
    int rc = tfs_load_meta(fs, live, key, klen, dir, dir ? TFS_T_DIR : TFS_T_FILE, m);
    return rc == -ENOENT ? 0 : rc;
}

int tfs_file_txn_contents(struct tfs_txn *tx, struct tfs_node *n, const uint8_t *key, size_t klen,
                          bool do_size, uint64_t size, bool *wrote, uint64_t *newsize)
{
    struct tfs *fs = tx->fs;
    struct tfs_wbuf *w = n->w;
    *wrote = false;
    pthread_mutex_lock(&fs->tbl);
    *newsize = n->attr.size;
    pthread_mutex_unlock(&fs->tbl);
    int rc = 0;
    if (w) {
        if (do_size && !w->loaded && fs->cfg.blob_size && size >= fs->cfg.blob_size) {
            /* Not loaded (e.g. right after an fsync) and large: the kept
             * part is copied by ranges to a writer, never held in memory. */
            struct tfs_view live = {NULL};
            talus_value *val = NULL;
            talus_value_writer *vw = NULL;
            rc = n->linked ? tfs_file_value_open(fs, n, live, &val) : 0;
            uint64_t len = val ? talus_value_length(val) : 0;
            if (rc == 0)
                rc = tfs_new_writer(fs, val, NULL, len < size ? len : size, size, &vw);
            talus_value_close(val);
            if (rc < 0)
                return rc;
            tfs_wbuf_clear(w);
            w->vw = vw;
            w->len = (size_t)size;
            w->loaded = w->dirty = w->wrote = true;
        } else if (do_size) {
            if ((rc = tfs_wbuf_load(fs, n, true)) < 0 || (rc = tfs_wbuf_resize(fs, w, size)) < 0)
                return rc;
        }
        if (w->dirty) {
            *newsize = w->len; /* a lost stream is logged by tfs_file_txn_done */
            rc = tfs_wbuf_txn_put(tx, n, key, klen);
            *wrote = rc == 0;
        }
        return rc;
    }
    if (!do_size)
        return 0;
    struct tfs_view live = {NULL};
    if (fs->cfg.blob_size && size >= fs->cfg.blob_size) {
        /* A large result: copied by ranges to a writer, not loaded. */
        talus_value *val = NULL;
        talus_value_writer *vw = NULL;
        rc = tfs_file_value_open(fs, n, live, &val);
        uint64_t len = val ? talus_value_length(val) : 0;
        if (rc == 0)
            rc = tfs_new_writer(fs, val, NULL, len < size ? len : size, size, &vw);
        talus_value_close(val);
        if (rc == 0)
            rc = tfs_txn_put_writer(tx, key, klen, vw);
        *wrote = rc == 0;
        *newsize = size;
        return rc;
    }
    void *data = NULL;
    size_t len = 0;
    rc = load_value(fs, n, live, &data, &len);
    if (rc < 0)
        return rc;
    if (size > len) {
        uint8_t *p = malloc((size_t)size);
        if (!p) {
            talus_free(data);
            return -ENOMEM;
        }
        if (len)
            memcpy(p, data, len);
        memset(p + len, 0, (size_t)size - len);
        talus_free(data);
        data = p;
        rc = tfs_txn_put(tx, fs->data, key, klen, p, (size_t)size);
        free(p);
    } else {
        rc = tfs_txn_put(tx, fs->data, key, klen, data ? data : "", (size_t)size);
        talus_free(data);
    }
    *wrote = rc == 0;
    *newsize = size;
    return rc;
}

/* Commit the write buffer of n if it has uncommitted changes. A flush
 * (every close(), including the one after a shell's dup2) leaves a bare
 * creation or O_TRUNC to the writes that follow, so that a crash in
 * between leaves the old file (or none), never an empty one; release and
 * fsync commit whatever there is. */
static int commit_locked(struct tfs *fs, struct tfs_node *n, int durability, bool at_flush);

static int commit_if(struct tfs *fs, struct tfs_node *n, int durability, bool at_flush)
{
    pthread_mutex_lock(&n->wlock);
    int rc = commit_locked(fs, n, durability, at_flush);
    pthread_mutex_unlock(&n->wlock);
    return rc;
}

/* commit_if with n->wlock held by the caller. */
static int commit_locked(struct tfs *fs, struct tfs_node *n, int durability, bool at_flush)
{
    int rc = 0;
    struct tfs_wbuf *w = n->w;
    if (!w || !w->dirty || (at_flush && !w->wrote))
        return 0;
    pthread_mutex_lock(&fs->tbl);
    bool linked = n->linked;
    pthread_mutex_unlock(&fs->tbl);
    if (w->vw && linked) {
        /* Write out and sync a streamed file's blob before taking the
         * namespace lock: closing a large file must not hold up every
         * lookup for the length of its fsync. (A file unlinked meanwhile
         * drops the finished blob like any unlinked one.) */
        rc = talus_value_writer_finish(w->vw);
        if (rc < 0) {
            tfs_log(LOG_ERR, "changes to \"%s\" were lost: %s", n->name, talus_errmsg());
            tfs_wbuf_clear(w);
            w->loaded = w->dirty = w->wrote = false;
            pthread_mutex_lock(&fs->tbl);
            n->pend = false;
            pthread_mutex_unlock(&fs->tbl);
            return tfs_errno(rc, "write");
        }
    }
    pthread_rwlock_wrlock(&fs->ns);
    if (!n->linked) {
        /* Removed while open: its contents go with it. */
        tfs_file_committed(fs, n);
        goto out;
    }
    struct tfs_buf key = {0};
    struct tfs_meta m;
    struct tfs_txn tx = {0};
    rc = tfs_node_key(fs, n, &key);
    if (rc == 0) {
        pthread_mutex_lock(&fs->tbl);
        bool fresh = n->fresh;
        pthread_mutex_unlock(&fs->tbl);
        rc = tfs_node_meta(fs, n, key.p, key.n, &m);
        if (rc == 0) {
            pthread_mutex_lock(&fs->tbl);
            int64_t t = n->pend && n->pend_mtime ? n->pend_mtime : 0;
            pthread_mutex_unlock(&fs->tbl);
            if (t)
                m.mtime = m.ctime = t;
            if (m.type == TFS_T_DIR)
                m.type = TFS_T_FILE;
            uint64_t len = w->len;
            rc = tfs_txn_begin(fs, &tx);
            if (rc == 0)
                rc = tfs_txn_put_meta(&tx, key.p, key.n, false, &m);
            if (rc == 0 && fresh) /* the file appears in its directory */
                rc = tfs_txn_touch_dir(&tx, n->parent, m.ctime);
            /* The contents last: a streamed file's writer goes into the
             * batch for good, so nothing else should fail after it. */
            if (rc == 0)
                rc = tfs_wbuf_txn_put(&tx, n, key.p, key.n);
            if (rc == 0)
                rc = tfs_txn_commit(&tx, durability);
            if (tx.b)
                tfs_txn_end(&tx);
            tfs_file_txn_done(fs, n, rc);
            if (rc == 0) {
                /* The new attributes before pend goes: stat never shows
                 * the size of the previous version in between. */
                struct tfs_attr a;
                tfs_attr_from_meta(&m, len, &a);
                tfs_node_set_attr(fs, n, &a);
                tfs_file_committed(fs, n);
            }
            tfs_meta_free(&m);
        }
    }
    tfs_buf_free(&key);
out:
    pthread_rwlock_unlock(&fs->ns);
    return rc;
}

static int commit(struct tfs *fs, struct tfs_node *n, int durability)
{
    return commit_if(fs, n, durability, false);
}

int tfs_file_flush(struct tfs *fs, struct tfs_node *n)
{
    return n->kind == TFS_FILE ? commit(fs, n, -1) : 0;
}

void tfs_file_drop_all(struct tfs *fs)
{
    pthread_mutex_lock(&fs->tbl);
    for (size_t i = 0; i < fs->nbuckets; i++)
        for (struct tfs_node *n = fs->by_ino[i]; n; n = n->next_ino) {
            wbuf_free(n->w); /* aborts a writer still streaming */
            n->w = NULL;
        }
    pthread_mutex_unlock(&fs->tbl);
}

int tfs_commit_all(struct tfs *fs)
{
    size_t cap = 0, count = 0;
    struct tfs_node **list = NULL;
    pthread_mutex_lock(&fs->tbl);
    for (size_t i = 0; i < fs->nbuckets; i++) {
        for (struct tfs_node *n = fs->by_ino[i]; n; n = n->next_ino) {
            if (!n->w || !n->pend)
                continue;
            if (count == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct tfs_node **l = realloc(list, nc * sizeof *l);
                if (!l)
                    break;
                list = l;
                cap = nc;
            }
            n->oprefs++;
            list[count++] = n;
        }
    }
    pthread_mutex_unlock(&fs->tbl);
    int ret = 0;
    for (size_t i = 0; i < count; i++) {
        int rc = commit(fs, list[i], -1);
        if (rc < 0) {
            tfs_log(LOG_ERR, "cannot save open file \"%s\" at exit: %s", list[i]->name,
                    strerror(-rc));
            ret = rc;
        }
        tfs_node_put(fs, list[i]);
    }
    free(list);
    return ret;
}

/* ---- operations ---------------------------------------------------------------- */

void tfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    int rc = tfs_file_open(fs, n, fi, false);
    tfs_node_put(fs, n);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    if (fuse_reply_open(req, fi) == -ENOENT)
        tfs_file_close(fs, fi); /* interrupted: no release will come */
}

/* A read through a read-only handle: the bytes asked for, read from the
 * engine into a reply buffer without any lock held (talus_value_read may
 * run on several threads at once). */
static void read_blob(fuse_req_t req, struct tfs *fs, struct fh *h, size_t size, uint64_t off)
{
    /* An extra reference for the read and the reply: the kernel may end
     * this read (interrupt) and run the release of its handle meanwhile. */
    struct tfs_blob *b = h->blob;
    struct tfs_node *node = h->n;
    pthread_mutex_lock(&fs->tbl);
    b->refs++;
    node->oprefs++; /* b->node must outlive blob_unref too */
    pthread_mutex_unlock(&fs->tbl);
    size_t want = off >= b->len ? 0 : b->len - off < size ? (size_t)(b->len - off) : size;
    size_t got = 0;
    char *buf = want ? malloc(want) : NULL;
    int rc = want && !buf ? -ENOMEM : 0;
    if (rc == 0 && want) {
        int trc = talus_value_read(b->val, off, buf, want, &got);
        if (trc < 0)
            rc = tfs_errno(trc, "read");
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, buf, got);
    free(buf);
    blob_unref(fs, b);
    tfs_node_put(fs, node);
}

void tfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct tfs *fs = tfs_of(req);
    struct fh *h = (struct fh *)(uintptr_t)fi->fh;
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (!h->writable) {
        read_blob(req, fs, h, size, (uint64_t)off);
        return;
    }
    struct tfs_node *n = h->n;
    char *buf = NULL;
    size_t got = 0;
    pthread_mutex_lock(&n->wlock);
    int rc = tfs_wbuf_pread(fs, n, (uint64_t)off, size, &buf, &got);
    pthread_mutex_unlock(&n->wlock);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, buf, got);
    free(buf);
}

void tfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                  struct fuse_file_info *fi)
{
    (void)ino;
    struct tfs *fs = tfs_of(req);
    struct fh *h = (struct fh *)(uintptr_t)fi->fh;
    struct tfs_node *n = h->n;
    if (!h->writable) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    pthread_mutex_lock(&n->wlock);
    struct tfs_wbuf *w = n->w;
    int rc = tfs_wbuf_load_write(fs, n, h->append, (uint64_t)off, size);
    uint64_t pos = h->append ? w->len : (uint64_t)off;
    uint64_t max = fs->cfg.max_file_size;
    if (rc == 0 && size > 0 && pos >= max)
        rc = -EFBIG;
    if (rc == 0 && size > max - pos)
        size = (size_t)(max - pos); /* a short write up to the limit */
    if (rc == 0)
        rc = tfs_wbuf_write(fs, w, pos, buf, size);
    if (rc == 0) {
        w->dirty = w->wrote = true;
        h->wrote = true;
        set_pending(fs, n, w->len, tfs_now_ns());
    }
    pthread_mutex_unlock(&n->wlock);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_write(req, size);
}

void tfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct tfs *fs = tfs_of(req);
    struct fh *h = (struct fh *)(uintptr_t)fi->fh;
    int rc = h->writable ? commit_if(fs, h->n, -1, true) : 0;
    if (rc == 0) {
        pthread_mutex_lock(&h->n->wlock); /* tfs_op_write sets it under wlock */
        h->wrote = false;
        pthread_mutex_unlock(&h->n->wlock);
    }
    fuse_reply_err(req, -rc);
}

void tfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    struct tfs *fs = tfs_of(req);
    struct fh *h = fi ? (struct fh *)(uintptr_t)fi->fh : NULL;
    /* With durability=none a plain commit skips the journal: journal this
     * one so that the sync below covers it. */
    bool none = fs->cfg.durability == TALUS_DURABILITY_NONE;
    int dur = none ? TALUS_DURABILITY_BUFFERED : -1;
    /* fsync makes the FILE durable, whichever descriptor wrote it: a
     * read-only one (`sync FILE`) commits what other handles wrote too. */
    int rc = h && h->n->kind == TFS_FILE ? commit(fs, h->n, dur) : 0;
    if (rc == 0 && !fs->cfg.read_only) {
        /* With durability=none, commits made earlier at close never went
         * to the journal: only a flush of the trees makes them durable. */
        int trc = 0;
        if (none) {
            trc = talus_flush(fs->data);
            if (trc == 0)
                trc = talus_flush(fs->meta);
        }
        if (trc == 0)
            trc = talus_db_sync(fs->db);
        if (trc < 0)
            rc = tfs_errno(trc, "fsync");
    }
    fuse_reply_err(req, -rc);
}

void tfs_file_close(struct tfs *fs, struct fuse_file_info *fi)
{
    struct fh *h = (struct fh *)(uintptr_t)fi->fh;
    struct tfs_node *n = h->n;
    if (h->writable) {
        /* Deciding and dropping this user under one wlock: two handles
         * released at once cannot both think the other one commits. */
        pthread_mutex_lock(&n->wlock);
        pthread_mutex_lock(&fs->tbl);
        bool alone = n->w && n->w->users == 1;
        pthread_mutex_unlock(&fs->tbl);
        int rc = h->wrote || alone ? commit_locked(fs, n, -1, false) : 0;
        if (rc < 0)
            tfs_log(LOG_ERR, "cannot save \"%s\" at close: %s", n->name, strerror(-rc));
        pthread_mutex_lock(&fs->tbl);
        struct tfs_wbuf *w = n->w;
        bool last = w && --w->users == 0;
        if (last) {
            n->w = NULL;
            n->pend = false;
        }
        n->nopen--;
        pthread_mutex_unlock(&fs->tbl);
        pthread_mutex_unlock(&n->wlock);
        if (last && w->dirty)
            tfs_log(LOG_ERR, "changes to \"%s\" were lost", n->name);
        if (last && n->fresh)
            tfs_node_unlink(fs, n); /* never committed: it does not exist */
        if (last)
            wbuf_free(w);
    } else {
        pthread_mutex_lock(&fs->tbl);
        if (h->pagecache)
            n->pc_users--;
        n->nopen--;
        pthread_mutex_unlock(&fs->tbl);
        blob_unref(fs, h->blob);
    }
    tfs_node_put(fs, n);
    free(h);
}

void tfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    tfs_file_close(tfs_of(req), fi);
    fuse_reply_err(req, 0);
}
