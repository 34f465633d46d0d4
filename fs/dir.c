/*
 * dir.c - lookup and readdir: how a prefix scan of tree "data" becomes
 * directory entries.
 *
 * readdir of directory "a" scans the keys starting with "a/". A key
 * "a/b" is the file b; a key "a/b/..." makes b a directory, and right after
 * emitting it the scan seeks to "a/b0" (the successor of every "a/b/..."),
 * so a listing costs the entries it lists, not the keys below them. A key
 * that is a file and a directory prefix at once ("a/b" and "a/b/c") is
 * listed twice: the directory b and the file "b%f". The scan's position is
 * kept in the directory handle as the next key to seek, so a listing is
 * produced in batches as the kernel asks for it, with bounded memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "keys.h"

#define FILL_BATCH 256

struct dent {
    char *name;
    struct tfs_node *node; /* holds an op reference */
    struct stat st;
    bool dot; /* "." or "..": the kernel keeps no lookup count for them */
};

struct dirh {
    pthread_mutex_t mu;
    struct dent *ents; /* the window of the listing held in memory */
    size_t n, cap;
    off_t base; /* offset of ents[0] */
    struct tfs_buf resume;
    bool started, done;
    struct tfs_buf seen; /* chain-piece names already listed, NUL-separated */
};

/* ---- lookup ------------------------------------------------------------ */

/* Is there a key whose component, spelled as a chain, starts with the
 * chain of names in r (a TFS_RES_CONT)? */
static int cont_exists(struct tfs *fs, struct tfs_view v, const struct tfs_res *r)
{
    talus_iter *it = NULL;
    talus_iter_options o;
    talus_iter_options_init(&o);
    o.snapshot = v.snap;
    o.prefix = r->key.p;
    o.prefix_len = r->key.n;
    int rc = talus_iter_new(fs->data, &o, &it);
    if (rc < 0)
        return tfs_errno(rc, "iterator");
    struct tfs_buf names = {0};
    int found = 0;
    for (talus_iter_seek(it, r->key.p, r->key.n); talus_iter_valid(it) && !found;
         talus_iter_next(it)) {
        size_t kl;
        const uint8_t *k = talus_iter_key(it, &kl);
        const uint8_t *c = k + r->comp_start;
        const uint8_t *sl = memchr(c, '/', kl - r->comp_start);
        size_t cl = sl ? (size_t)(sl - c) : kl - r->comp_start;
        for (int form = 0; form < 2 && !found; form++) {
            int nn;
            if (tfs_comp_names(c, cl, r->comp_start == 0, form == 1, &names, &nn) < 0)
                continue;
            if (names.n > r->chain.n && memcmp(names.p, r->chain.p, r->chain.n) == 0 &&
                names.p[r->chain.n] == '/')
                found = 1;
        }
    }
    rc = talus_iter_status(it);
    talus_iter_free(it);
    tfs_buf_free(&names);
    return rc < 0 ? tfs_errno(rc, "scan") : found;
}

/* Whether `name` in live directory `parent` was found absent at the
 * current seqno: no batch has been committed since, so it still is. */
static bool neg_hit(struct tfs *fs, const struct tfs_node *parent, const char *name, size_t len)
{
    uint64_t seq = talus_seqno(fs->db);
    bool hit = false;
    pthread_mutex_lock(&fs->neg_mu);
    for (int i = 0; i < TFS_NEG_SLOTS && !hit; i++) {
        const struct tfs_neg *e = &fs->neg[i];
        hit = e->parent == parent->ino && e->seq == seq && e->len == len &&
              memcmp(e->name, name, len) == 0;
    }
    pthread_mutex_unlock(&fs->neg_mu);
    return hit;
}

static void neg_put(struct tfs *fs, const struct tfs_node *parent, const char *name, size_t len,
                    uint64_t seq)
{
    if (len >= sizeof fs->neg[0].name)
        return;
    pthread_mutex_lock(&fs->neg_mu);
    struct tfs_neg *e = &fs->neg[fs->neg_next++ % TFS_NEG_SLOTS];
    e->parent = parent->ino;
    e->seq = seq;
    e->len = len;
    memcpy(e->name, name, len);
    pthread_mutex_unlock(&fs->neg_mu);
}

int tfs_lookup_node(struct tfs *fs, struct tfs_node *parent, const char *name,
                    struct tfs_node **out)
{
    *out = NULL;
    if (parent->kind == TFS_ROOT && strcmp(name, ".snap") == 0) {
        pthread_mutex_lock(&fs->tbl);
        fs->snapdir->oprefs++;
        pthread_mutex_unlock(&fs->tbl);
        *out = fs->snapdir;
        return 0;
    }
    if (parent->kind == TFS_SNAPDIR)
        return tfs_snap_lookup(fs, name, out);
    if (!tfs_is_dirlike(parent))
        return -ENOTDIR;

    /* Every change goes through this mount, so a linked node is current. */
    struct tfs_node *n = tfs_node_child(fs, parent, name);
    if (n) {
        *out = n;
        return 0;
    }

    /* Live directories only: a snapshot never changes and has no seqno of
     * its own to check against. */
    bool live = !parent->snap && fs->db;
    size_t namelen = strlen(name);
    if (live && neg_hit(fs, parent, name, namelen))
        return -ENOENT;
    uint64_t seq = live ? talus_seqno(fs->db) : 0; /* read before the probe */
    struct tfs_res r;
    int rc = tfs_resolve(fs, parent, name, &r);
    if (rc < 0)
        return rc;
    struct tfs_view v;
    rc = tfs_snap_enter(fs, parent, &v);
    if (rc < 0) {
        tfs_res_free(&r);
        return rc;
    }
    pthread_rwlock_rdlock(&fs->ns);
    struct tfs_probe p = {0};
    if (r.kind == TFS_RES_CONT) {
        rc = cont_exists(fs, v, &r);
        if (rc == 0)
            rc = -ENOENT;
        if (rc > 0)
            rc = tfs_node_make(fs, parent, name, r.seg.p, r.seg.n, TFS_CONT, false, &n);
    } else {
        rc = tfs_probe_key(fs, v, r.key.p, r.key.n, &p);
        if (rc == 0) {
            if (r.kind == TFS_RES_CONFLICT && !(p.file && p.dir))
                rc = -ENOENT;
            else if (r.kind == TFS_RES_ENTRY && p.dir)
                rc = tfs_node_make(fs, parent, name, r.seg.p, r.seg.n, TFS_DIR, false, &n);
            else if (p.file)
                rc = tfs_node_make(fs, parent, name, r.seg.p, r.seg.n, TFS_FILE,
                                   r.kind == TFS_RES_CONFLICT, &n);
            else
                rc = -ENOENT;
        }
        if (rc == 0 && (rc = tfs_node_load_attr(fs, n, v, &p)) < 0) {
            tfs_node_put(fs, n);
            n = NULL;
        }
    }
    pthread_rwlock_unlock(&fs->ns);
    tfs_snap_leave(fs, parent);
    tfs_res_free(&r);
    if (rc == 0)
        *out = n;
    else if (rc == -ENOENT && live)
        neg_put(fs, parent, name, namelen, seq);
    return rc;
}

void tfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *p = tfs_node_get(fs, parent), *n = NULL;
    if (!p) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    int rc = tfs_lookup_node(fs, p, name, &n);
    if (rc == -ENOENT && p->kind != TFS_SNAPDIR && fs->cfg.negative_timeout > 0) {
        /* A negative entry the kernel may cache. */
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.entry_timeout = fs->cfg.negative_timeout;
        fuse_reply_entry(req, &e);
    } else if (rc < 0) {
        fuse_reply_err(req, -rc);
    } else {
        tfs_reply_entry(req, fs, n);
        tfs_node_put(fs, n);
    }
    tfs_node_put(fs, p);
}

/* ---- readdir ----------------------------------------------------------- */

static void dh_clear(struct tfs *fs, struct dirh *dh, size_t upto)
{
    for (size_t i = 0; i < upto; i++) {
        free(dh->ents[i].name);
        tfs_node_put(fs, dh->ents[i].node);
    }
    if (upto && dh->n > upto)
        memmove(dh->ents, dh->ents + upto, (dh->n - upto) * sizeof *dh->ents);
    dh->n -= upto;
    dh->base += (off_t)upto;
}

static int dh_add(struct dirh *dh, const char *name, size_t len, struct tfs_node *node,
                  const struct stat *st, bool dot)
{
    if (dh->n == dh->cap) {
        size_t cap = dh->cap ? dh->cap * 2 : 64;
        struct dent *e = realloc(dh->ents, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        dh->ents = e;
        dh->cap = cap;
    }
    struct dent *d = &dh->ents[dh->n];
    d->name = strndup(name, len);
    if (!d->name)
        return -ENOMEM;
    d->node = node;
    d->st = *st;
    d->dot = dot;
    dh->n++;
    return 0;
}

static bool seen_has(const struct tfs_buf *seen, const char *name, size_t len)
{
    for (size_t i = 0; i < seen->n;) {
        size_t l = strlen((const char *)seen->p + i);
        if (l == len && memcmp(seen->p + i, name, len) == 0)
            return true;
        i += l + 1;
    }
    return false;
}

/* What a listing scans: keys starting with pfx; the component being
 * listed starts at comp_start; depth chain names of it are fixed (CONT). */
struct scan {
    struct tfs *fs;
    struct tfs_node *dir;
    struct tfs_view v;
    struct tfs_buf pfx, top, mychain;
    int depth;
    struct tfs_buf names, key;
};

/* Emit one child: name is the depth-th name of the chain of component c. */
static int emit(struct scan *s, struct dirh *dh, const uint8_t *c, size_t cl, bool conflict,
                bool is_dir, bool has_file, uint64_t size)
{
    struct tfs *fs = s->fs;
    int nn;
    int rc = tfs_comp_names(c, cl, s->top.n == 0, conflict, &s->names, &nn);
    if (rc < 0)
        return rc == -ENAMETOOLONG ? 0 : rc;
    if (s->depth > 0 &&
        !(s->names.n > s->mychain.n && memcmp(s->names.p, s->mychain.p, s->mychain.n) == 0 &&
          s->names.p[s->mychain.n] == '/'))
        return 0; /* a component with these bytes but another spelling */
    const char *name;
    size_t len;
    if (!tfs_chain_name(&s->names, s->depth, &name, &len))
        return 0;
    bool cont = s->depth + 1 < nn;
    if (cont) {
        if (seen_has(&dh->seen, name, len))
            return 0;
        if ((rc = tfs_buf_add(&dh->seen, name, len)) < 0 ||
            (rc = tfs_buf_add(&dh->seen, "", 1)) < 0)
            return rc;
    }

    /* The name's own key bytes: a last name adds what is left of the
     * component after the chain's earlier pieces (the scan prefix). */
    char nm[FSK_NAME_MAX + 1];
    memcpy(nm, name, len);
    nm[len] = 0;
    uint8_t seg[FSK_NAME_MAX];
    const uint8_t *sp = seg;
    size_t segl = 0;
    if (cont) {
        bool more;
        if (fsk_name_to_bytes(nm, len, s->depth == 0 && s->top.n == 0, seg, sizeof seg, &segl,
                              &more) < 0)
            return 0;
    } else {
        size_t partial = s->pfx.n - s->top.n;
        sp = c + partial;
        segl = cl - partial;
    }

    uint8_t kind = cont ? TFS_CONT : is_dir ? TFS_DIR : TFS_FILE;
    struct tfs_node *n = NULL;
    rc = tfs_node_make(fs, s->dir, nm, sp, segl, kind, !cont && conflict, &n);
    if (rc < 0)
        return rc;
    /* Fill the cache first: tfs_node_stat would otherwise take fs->ns,
     * which the caller holds (a second read lock can wait behind a writer). */
    struct stat st;
    struct tfs_probe p = {.file = has_file, .dir = is_dir, .size = size};
    rc = tfs_node_load_attr(fs, n, s->v, &p);
    if (rc == 0)
        rc = tfs_node_stat(fs, n, &st);
    if (rc == 0)
        rc = dh_add(dh, nm, len, n, &st, false);
    if (rc < 0)
        tfs_node_put(fs, n);
    return rc == -EIO ? 0 : rc; /* a corrupt record is logged; list the rest */
}

static void seek_past_dir(talus_iter *it, struct tfs_buf *key, const struct tfs_buf *top,
                          const uint8_t *c, size_t cl)
{
    /* "top" + c + '0' is the first key after every "top" + c + "/...". */
    key->n = 0;
    if (tfs_buf_add(key, top->p, top->n) == 0 && tfs_buf_add(key, c, cl) == 0 &&
        tfs_buf_add(key, "0", 1) == 0)
        talus_iter_seek(it, key->p, key->n);
    else
        talus_iter_next(it);
}

/* Does a key start with top + c + "/"? Only asked when the key after the
 * file "top c" does not settle it (the byte-order trap). */
static int has_dir(struct scan *s, const uint8_t *c, size_t cl)
{
    struct tfs_buf k = {0};
    int rc = tfs_buf_add(&k, s->top.p, s->top.n);
    if (rc == 0)
        rc = tfs_buf_add(&k, c, cl);
    if (rc == 0)
        rc = tfs_buf_add(&k, "/", 1);
    if (rc == 0)
        rc = tfs_any_key(s->fs, s->v, k.p, k.n, NULL, 0, NULL, 0);
    tfs_buf_free(&k);
    return rc;
}

static int fill(struct scan *s, struct dirh *dh)
{
    struct tfs *fs = s->fs;
    if (!fs->data) {
        dh->done = true;
        return 0;
    }
    talus_iter *it = NULL;
    talus_iter_options o;
    talus_iter_options_init(&o);
    o.snapshot = s->v.snap;
    o.prefix = s->pfx.n ? s->pfx.p : NULL;
    o.prefix_len = s->pfx.n;
    int rc = talus_iter_new(fs->data, &o, &it);
    if (rc < 0)
        return tfs_errno(rc, "iterator");
    if (dh->resume.n)
        talus_iter_seek(it, dh->resume.p, dh->resume.n);
    else if (s->pfx.n)
        talus_iter_seek(it, s->pfx.p, s->pfx.n);
    else
        talus_iter_seek_first(it);

    size_t added = 0, cs = s->top.n;
    struct tfs_buf c = {0};
    while (rc == 0 && talus_iter_valid(it) && added < FILL_BATCH) {
        size_t kl;
        const uint8_t *k = talus_iter_key(it, &kl);
        uint64_t vl = talus_iter_value_length(it); /* never reads a blob file */
        const uint8_t *sl = memchr(k + cs, '/', kl - cs);
        size_t cl = sl ? (size_t)(sl - (k + cs)) : kl - cs;
        if ((rc = tfs_buf_set(&c, k + cs, cl)) < 0)
            break;
        size_t before = dh->n;
        bool file = !sl;
        if (file && s->depth == 0 && cl == 0 && vl == 0) {
            /* This directory's own marker, unless its record says file. */
            struct tfs_probe p;
            rc = tfs_probe_key(fs, s->v, k, kl, &p);
            file = rc == 0 && p.file;
            if (rc == 0 && !file)
                talus_iter_next(it);
        }
        if (sl) {
            rc = emit(s, dh, c.p, c.n, false, true, false, 0);
            seek_past_dir(it, &s->key, &s->top, c.p, c.n);
        } else if (file) {
            /* A file: does a directory of the same name exist too? */
            talus_iter_next(it);
            int dir = 0;
            if (talus_iter_valid(it)) {
                size_t nkl;
                const uint8_t *nk = talus_iter_key(it, &nkl);
                if (nkl > cs + cl && (cs == 0 || memcmp(nk, s->top.p, cs) == 0) &&
                    (cl == 0 || memcmp(nk + cs, c.p, cl) == 0)) {
                    uint8_t b = nk[cs + cl];
                    dir = b == '/' ? 1 : b < '/' ? has_dir(s, c.p, c.n) : 0;
                }
            }
            if (dir < 0)
                rc = dir;
            else
                rc = emit(s, dh, c.p, c.n, dir == 1, false, true, vl);
        }
        added += dh->n - before;
    }
    if (rc == 0)
        rc = talus_iter_status(it) < 0 ? tfs_errno(talus_iter_status(it), "readdir") : 0;
    if (rc == 0) {
        if (talus_iter_valid(it)) {
            size_t kl;
            const uint8_t *k = talus_iter_key(it, &kl);
            rc = tfs_buf_set(&dh->resume, k, kl);
        } else {
            dh->done = true;
        }
    }
    tfs_buf_free(&c);
    talus_iter_free(it);
    return rc;
}

/* Set up the scan of directory-like node d (see struct scan). */
static int scan_init(struct tfs *fs, struct tfs_node *d, struct scan *s)
{
    memset(s, 0, sizeof *s);
    s->fs = fs;
    s->dir = d;
    int rc = tfs_node_child_prefix(fs, d, &s->pfx);
    if (rc < 0 || d->kind != TFS_CONT)
        return rc < 0 ? rc : tfs_buf_set(&s->top, s->pfx.p, s->pfx.n);
    pthread_mutex_lock(&fs->tbl);
    struct tfs_node *x = d;
    size_t len = 0;
    for (; x->kind == TFS_CONT; x = x->parent) {
        len += x->namelen + 1;
        s->depth++;
    }
    struct tfs_node *top = x;
    uint8_t *p = malloc(len);
    if (p) {
        size_t pos = len - 1; /* no trailing '/' */
        for (x = d; x->kind == TFS_CONT; x = x->parent) {
            pos -= x->namelen;
            memcpy(p + pos, x->name, x->namelen);
            if (pos > 0)
                p[--pos] = '/';
        }
        s->mychain.p = p;
        s->mychain.n = len - 1;
        s->mychain.cap = len;
    }
    top->oprefs++;
    pthread_mutex_unlock(&fs->tbl);
    rc = p ? tfs_node_child_prefix(fs, top, &s->top) : -ENOMEM;
    tfs_node_put(fs, top);
    return rc;
}

static void scan_free(struct scan *s)
{
    tfs_buf_free(&s->pfx);
    tfs_buf_free(&s->top);
    tfs_buf_free(&s->mychain);
    tfs_buf_free(&s->names);
    tfs_buf_free(&s->key);
}

static int add_dot(struct tfs *fs, struct dirh *dh, struct tfs_node *n, const char *name)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = n->ino;
    st.st_mode = S_IFDIR;
    pthread_mutex_lock(&fs->tbl);
    n->oprefs++;
    pthread_mutex_unlock(&fs->tbl);
    int rc = dh_add(dh, name, strlen(name), n, &st, true);
    if (rc < 0)
        tfs_node_put(fs, n);
    return rc;
}

static int fill_snapdir(struct tfs *fs, struct dirh *dh)
{
    uint64_t *seq = NULL;
    size_t count = 0;
    int rc = tfs_snap_list(fs, &seq, &count);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        char name[32];
        snprintf(name, sizeof name, "%llu", (unsigned long long)seq[i]);
        struct tfs_node *n;
        struct stat st;
        if (tfs_snap_lookup(fs, name, &n) < 0)
            continue; /* unpinned meanwhile */
        rc = tfs_node_stat(fs, n, &st);
        if (rc == 0)
            rc = dh_add(dh, name, strlen(name), n, &st, false);
        if (rc < 0)
            tfs_node_put(fs, n);
    }
    free(seq);
    dh->done = true;
    return rc;
}

/* Files created through the mount and not committed yet are not keys:
 * list them from the inode table. */
static int add_fresh(struct tfs *fs, struct dirh *dh, struct tfs_node *d)
{
    struct tfs_node **list = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    pthread_mutex_lock(&fs->tbl);
    for (struct tfs_node *n = d->fresh_head; n; n = n->fresh_next) {
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct tfs_node **l = realloc(list, nc * sizeof *l);
            if (!l) {
                rc = -ENOMEM;
                break;
            }
            list = l;
            cap = nc;
        }
        n->oprefs++;
        list[count++] = n;
    }
    pthread_mutex_unlock(&fs->tbl);
    for (size_t i = 0; i < count; i++) {
        struct stat st;
        int r = rc == 0 ? tfs_node_stat(fs, list[i], &st) : rc;
        if (r == 0)
            r = dh_add(dh, list[i]->name, list[i]->namelen, list[i], &st, false);
        if (r < 0)
            tfs_node_put(fs, list[i]);
        if (r < 0 && r != -ENOENT)
            rc = r;
    }
    free(list);
    return rc;
}

/* Produce the next batch of entries of directory d. */
static int fill_more(struct tfs *fs, struct tfs_node *d, struct dirh *dh)
{
    if (!dh->started) {
        dh->started = true;
        int rc = add_dot(fs, dh, d, ".");
        if (rc == 0)
            rc = add_dot(fs, dh, d->parent ? d->parent : d, "..");
        if (rc == 0)
            rc = add_fresh(fs, dh, d);
        return rc;
    }
    if (d->kind == TFS_SNAPDIR)
        return fill_snapdir(fs, dh);
    struct scan s;
    int rc = scan_init(fs, d, &s);
    if (rc == 0)
        rc = tfs_snap_enter(fs, d, &s.v);
    if (rc == 0) {
        pthread_rwlock_rdlock(&fs->ns);
        rc = fill(&s, dh);
        pthread_rwlock_unlock(&fs->ns);
        tfs_snap_leave(fs, d);
    }
    scan_free(&s);
    return rc;
}

static void dh_reset(struct tfs *fs, struct dirh *dh)
{
    dh_clear(fs, dh, dh->n);
    dh->base = 0;
    dh->resume.n = 0;
    dh->seen.n = 0;
    dh->started = dh->done = false;
}

void tfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct tfs *fs = tfs_of(req);
    struct tfs_node *n = tfs_node_get(fs, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (!tfs_is_dirlike(n) && n->kind != TFS_SNAPDIR) {
        tfs_node_put(fs, n);
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    struct dirh *dh = calloc(1, sizeof *dh);
    if (!dh) {
        tfs_node_put(fs, n);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_init(&dh->mu, NULL);
    fi->fh = (uintptr_t)dh;
    /* A snapshot never changes: let the kernel keep its listings. */
    if (n->snap) {
        fi->cache_readdir = 1;
        fi->keep_cache = 1;
    }
    tfs_node_put(fs, n);
    if (fuse_reply_open(req, fi) == -ENOENT) {
        pthread_mutex_destroy(&dh->mu);
        free(dh);
    }
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
    struct tfs *fs = tfs_of(req);
    struct dirh *dh = (struct dirh *)(uintptr_t)fi->fh;
    struct tfs_node *d = tfs_node_get(fs, ino);
    if (!d) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    char *buf = malloc(size);
    if (!buf) {
        tfs_node_put(fs, d);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_lock(&dh->mu);
    if (off < dh->base)
        dh_reset(fs, dh); /* rewinddir or seekdir backwards: start again */
    size_t pos = 0;
    int rc = 0;
    for (;;) {
        while (off >= dh->base + (off_t)dh->n && !dh->done) {
            /* Everything before off was delivered (after a reset the
             * listing is produced again up to off). */
            dh_clear(fs, dh, dh->n);
            if ((rc = fill_more(fs, d, dh)) < 0)
                break;
        }
        if (rc < 0 || off >= dh->base + (off_t)dh->n)
            break;
        struct dent *e = &dh->ents[off - dh->base];
        size_t sz;
        if (plus) {
            struct fuse_entry_param ep;
            tfs_entry_param(fs, e->node, &e->st, &ep);
            if (e->dot)
                ep.ino = 0;
            sz = fuse_add_direntry_plus(req, buf + pos, size - pos, e->name, &ep, off + 1);
        } else {
            sz = fuse_add_direntry(req, buf + pos, size - pos, e->name, &e->st, off + 1);
        }
        if (sz > size - pos)
            break;
        if (plus && !e->dot)
            tfs_node_ref_lookup(fs, e->node, 1);
        pos += sz;
        off++;
    }
    pthread_mutex_unlock(&dh->mu);
    if (rc < 0 && pos == 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, buf, pos);
    free(buf);
    tfs_node_put(fs, d);
}

void tfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, false);
}

void tfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, true);
}

void tfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct tfs *fs = tfs_of(req);
    struct dirh *dh = (struct dirh *)(uintptr_t)fi->fh;
    dh_reset(fs, dh);
    free(dh->ents);
    tfs_buf_free(&dh->resume);
    tfs_buf_free(&dh->seen);
    pthread_mutex_destroy(&dh->mu);
    free(dh);
    fuse_reply_err(req, 0);
}
