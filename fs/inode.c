/*
 * inode.c - the inode table: every name the kernel has seen, as a tree of
 * nodes (parent pointer + name), with two hash tables (by inode number and
 * by (parent, name)).
 *
 * Invariants:
 *  - a node is "linked" while its (parent, name) denotes it; linked nodes
 *    are kept for the whole mount even when the kernel forgets them, so an
 *    inode number is stable per path within a mount;
 *  - keys are not stored but computed from the chain of names, so renaming
 *    a directory moves every descendant by changing one parent pointer;
 *  - a node is freed when it is unlinked, the kernel has forgotten it
 *    (nlookup 0), no child points at it and no operation or open file uses
 *    it (oprefs, nopen);
 *  - inode numbers: 1 the root, 2 ".snap", live nodes count up from 3;
 *    nodes of a snapshot carry its slot index in bits 48..63, so they never
 *    collide with live ones (FUSE shows one st_dev for the whole mount).
 * Everything here runs under fs->tbl (taken inside these functions).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

static size_t hash_ino(uint64_t ino, size_t nb)
{
    return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 17) & (nb - 1);
}

static size_t hash_name(uint64_t parent, const char *name, size_t len, size_t nb)
{
    uint64_t h = 1469598103934665603ull ^ (parent * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 29)) & (nb - 1);
}

static void ins_ino(struct tfs *fs, struct tfs_node *n)
{
    size_t b = hash_ino(n->ino, fs->nbuckets);
    n->next_ino = fs->by_ino[b];
    fs->by_ino[b] = n;
}

static void ins_name(struct tfs *fs, struct tfs_node *n)
{
    size_t b = hash_name(n->parent->ino, n->name, n->namelen, fs->nbuckets);
    n->next_name = fs->by_name[b];
    fs->by_name[b] = n;
}

static void del_ino(struct tfs *fs, struct tfs_node *n)
{
    struct tfs_node **pp = &fs->by_ino[hash_ino(n->ino, fs->nbuckets)];
    while (*pp && *pp != n)
        pp = &(*pp)->next_ino;
    if (*pp)
        *pp = n->next_ino;
}

static void del_name(struct tfs *fs, struct tfs_node *n)
{
    struct tfs_node **pp =
        &fs->by_name[hash_name(n->parent->ino, n->name, n->namelen, fs->nbuckets)];
    while (*pp && *pp != n)
        pp = &(*pp)->next_name;
    if (*pp)
        *pp = n->next_name;
}

/* Double the tables (all nodes rehashed); on ENOMEM keep the old ones. */
static void grow(struct tfs *fs)
{
    size_t nb = fs->nbuckets * 2;
    struct tfs_node **bi = calloc(nb, sizeof *bi), **bn = calloc(nb, sizeof *bn);
    if (!bi || !bn) {
        free(bi);
        free(bn);
        return;
    }
    struct tfs_node **oi = fs->by_ino, **on = fs->by_name;
    size_t ob = fs->nbuckets;
    fs->by_ino = bi;
    fs->by_name = bn;
    fs->nbuckets = nb;
    for (size_t i = 0; i < ob; i++) {
        for (struct tfs_node *n = oi[i], *next; n; n = next) {
            next = n->next_ino;
            ins_ino(fs, n);
        }
    }
    /* Name chains hold only linked nodes; relink from the ino table. */
    for (size_t i = 0; i < nb; i++)
        for (struct tfs_node *n = bi[i]; n; n = n->next_ino)
            if (n->linked && n->parent)
                ins_name(fs, n);
    free(oi);
    free(on);
}

static void attach(struct tfs *fs, struct tfs_node *n);
static struct tfs_node *new_node(struct tfs *fs, struct tfs_node *parent, const char *name,
                                 size_t namelen, const uint8_t *seg, size_t seglen, uint8_t kind);

int tfs_table_init(struct tfs *fs)
{
    fs->nbuckets = 1024;
    fs->by_ino = calloc(fs->nbuckets, sizeof *fs->by_ino);
    fs->by_name = calloc(fs->nbuckets, sizeof *fs->by_name);
    fs->next_ino = 3;
    if (!fs->by_ino || !fs->by_name)
        return -ENOMEM;
    fs->root = new_node(fs, NULL, "", 0, NULL, 0, TFS_ROOT);
    if (!fs->root)
        return -ENOMEM;
    fs->root->ino = FUSE_ROOT_ID;
    attach(fs, fs->root);
    fs->snapdir = new_node(fs, fs->root, ".snap", 5, NULL, 0, TFS_SNAPDIR);
    if (!fs->snapdir)
        return -ENOMEM;
    fs->snapdir->ino = TFS_SNAPDIR_INO;
    attach(fs, fs->snapdir);
    return 0;
}

static struct tfs_node *find_ino(struct tfs *fs, uint64_t ino)
{
    struct tfs_node *n = fs->by_ino[hash_ino(ino, fs->nbuckets)];
    while (n && n->ino != ino)
        n = n->next_ino;
    return n;
}

static struct tfs_node *find_name(struct tfs *fs, struct tfs_node *parent, const char *name,
                                  size_t len)
{
    struct tfs_node *n = fs->by_name[hash_name(parent->ino, name, len, fs->nbuckets)];
    while (n && !(n->parent == parent && n->namelen == len && memcmp(n->name, name, len) == 0))
        n = n->next_name;
    return n;
}

static void free_node(struct tfs_node *n)
{
    tfs_file_drop(n);
    pthread_mutex_destroy(&n->wlock);
    free(n->name);
    free(n->seg);
    free(n);
}

/* Free n and then any ancestor that only lived for it. REQUIRES tbl. */
static void maybe_free(struct tfs *fs, struct tfs_node *n)
{
    while (n && n->kind != TFS_ROOT && n->kind != TFS_SNAPDIR && !n->linked && n->nlookup == 0 &&
           n->nchildren == 0 && n->oprefs == 0 && n->nopen == 0) {
        struct tfs_node *p = n->parent;
        del_ino(fs, n);
        fs->nnodes--;
        if (p)
            p->nchildren--;
        free_node(n);
        n = p;
    }
}

struct tfs_node *tfs_node_get(struct tfs *fs, uint64_t ino)
{
    pthread_mutex_lock(&fs->tbl);
    struct tfs_node *n = find_ino(fs, ino);
    if (n)
        n->oprefs++;
    pthread_mutex_unlock(&fs->tbl);
    return n;
}

void tfs_node_put(struct tfs *fs, struct tfs_node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&fs->tbl);
    n->oprefs--;
    maybe_free(fs, n);
    pthread_mutex_unlock(&fs->tbl);
}

struct tfs_node *tfs_node_child(struct tfs *fs, struct tfs_node *parent, const char *name)
{
    pthread_mutex_lock(&fs->tbl);
    struct tfs_node *n = find_name(fs, parent, name, strlen(name));
    if (n)
        n->oprefs++;
    pthread_mutex_unlock(&fs->tbl);
    return n;
}

static struct tfs_node *new_node(struct tfs *fs, struct tfs_node *parent, const char *name,
                                 size_t namelen, const uint8_t *seg, size_t seglen, uint8_t kind)
{
    struct tfs_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->name = malloc(namelen + 1);
    n->seg = malloc(seglen ? seglen : 1);
    if (!n->name || !n->seg) {
        free(n->name);
        free(n->seg);
        free(n);
        return NULL;
    }
    memcpy(n->name, name, namelen);
    n->name[namelen] = 0;
    n->namelen = namelen;
    if (seglen)
        memcpy(n->seg, seg, seglen);
    n->seglen = seglen;
    n->kind = kind;
    n->parent = parent;
    n->snap = parent ? parent->snap : NULL;
    pthread_mutex_init(&n->wlock, NULL);
    (void)fs;
    return n;
}

static void attach(struct tfs *fs, struct tfs_node *n)
{
    if (fs->nnodes >= fs->nbuckets)
        grow(fs);
    ins_ino(fs, n);
    if (n->parent) {
        n->parent->nchildren++;
        ins_name(fs, n);
    }
    n->linked = true;
    fs->nnodes++;
}

static void fresh_del_locked(struct tfs_node *n);

static void unlink_locked(struct tfs *fs, struct tfs_node *n)
{
    fresh_del_locked(n);
    if (!n->linked || !n->parent)
        return;
    del_name(fs, n);
    n->linked = false;
}

int tfs_node_make(struct tfs *fs, struct tfs_node *parent, const char *name, const uint8_t *seg,
                  size_t seglen, uint8_t kind, bool conflict, struct tfs_node **out)
{
    size_t len = strlen(name);
    pthread_mutex_lock(&fs->tbl);
    struct tfs_node *n = find_name(fs, parent, name, len);
    if (n && n->kind == kind && n->conflict == conflict) {
        n->oprefs++;
        pthread_mutex_unlock(&fs->tbl);
        *out = n;
        return 0;
    }
    if (n) {
        unlink_locked(fs, n);
        maybe_free(fs, n);
    }
    n = new_node(fs, parent, name, len, seg, seglen, kind);
    if (!n) {
        pthread_mutex_unlock(&fs->tbl);
        return -ENOMEM;
    }
    n->conflict = conflict;
    uint64_t low = fs->next_ino++;
    n->ino = n->snap ? ((uint64_t)n->snap->idx << TFS_SNAP_SHIFT) | low : low;
    attach(fs, n);
    n->oprefs++;
    pthread_mutex_unlock(&fs->tbl);
    *out = n;
    return 0;
}

int tfs_node_snaproot(struct tfs *fs, struct tfs_snap *s, const char *name, struct tfs_node **out)
{
    pthread_mutex_lock(&fs->tbl);
    struct tfs_node *n = s->root;
    if (n && n->linked) {
        n->oprefs++;
        pthread_mutex_unlock(&fs->tbl);
        *out = n;
        return 0;
    }
    struct tfs_node *old = find_name(fs, fs->snapdir, name, strlen(name));
    if (old) {
        unlink_locked(fs, old);
        maybe_free(fs, old);
    }
    n = new_node(fs, fs->snapdir, name, strlen(name), NULL, 0, TFS_SNAPROOT);
    if (!n) {
        pthread_mutex_unlock(&fs->tbl);
        return -ENOMEM;
    }
    n->snap = s;
    /* Low bits 1: the root of every snapshot is "inode 1" of its slot. */
    n->ino = ((uint64_t)s->idx << TFS_SNAP_SHIFT) | 1;
    if (find_ino(fs, n->ino)) {
        /* An earlier root of this slot is still known to the kernel. */
        n->ino = ((uint64_t)s->idx << TFS_SNAP_SHIFT) | fs->next_ino++;
    }
    attach(fs, n);
    s->root = n;
    n->oprefs++;
    pthread_mutex_unlock(&fs->tbl);
    *out = n;
    return 0;
}

void tfs_node_ref_lookup(struct tfs *fs, struct tfs_node *n, uint64_t count)
{
    pthread_mutex_lock(&fs->tbl);
    n->nlookup += count;
    pthread_mutex_unlock(&fs->tbl);
}

void tfs_node_forget(struct tfs *fs, uint64_t ino, uint64_t nlookup)
{
    pthread_mutex_lock(&fs->tbl);
    struct tfs_node *n = find_ino(fs, ino);
    if (n) {
        n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
        maybe_free(fs, n);
    }
    pthread_mutex_unlock(&fs->tbl);
}

static void fresh_del_locked(struct tfs_node *n)
{
    if (!n->fresh)
        return;
    struct tfs_node **pp = &n->parent->fresh_head;
    while (*pp && *pp != n)
        pp = &(*pp)->fresh_next;
    if (*pp)
        *pp = n->fresh_next;
    n->fresh_next = NULL;
    n->fresh = false;
}

void tfs_fresh_add(struct tfs *fs, struct tfs_node *n)
{
    pthread_mutex_lock(&fs->tbl);
    if (!n->fresh) {
        n->fresh = true;
        n->fresh_next = n->parent->fresh_head;
        n->parent->fresh_head = n;
    }
    pthread_mutex_unlock(&fs->tbl);
}

void tfs_fresh_del(struct tfs *fs, struct tfs_node *n)
{
    pthread_mutex_lock(&fs->tbl);
    fresh_del_locked(n);
    pthread_mutex_unlock(&fs->tbl);
}

bool tfs_has_fresh(struct tfs *fs, struct tfs_node *dir)
{
    pthread_mutex_lock(&fs->tbl);
    bool yes = dir->fresh_head != NULL;
    pthread_mutex_unlock(&fs->tbl);
    return yes;
}

void tfs_node_unlink(struct tfs *fs, struct tfs_node *n)
{
    pthread_mutex_lock(&fs->tbl);
    fresh_del_locked(n);
    unlink_locked(fs, n);
    pthread_mutex_unlock(&fs->tbl);
}

int tfs_node_move(struct tfs *fs, struct tfs_node *n, struct tfs_node *newparent,
                  const char *newname, const uint8_t *seg, size_t seglen, bool conflict)
{
    size_t len = strlen(newname);
    char *nm = malloc(len + 1);
    uint8_t *sg = malloc(seglen ? seglen : 1);
    if (!nm || !sg) {
        free(nm);
        free(sg);
        return -ENOMEM;
    }
    memcpy(nm, newname, len + 1);
    if (seglen)
        memcpy(sg, seg, seglen);
    pthread_mutex_lock(&fs->tbl);
    struct tfs_node *old = find_name(fs, newparent, newname, len);
    if (old && old != n) {
        unlink_locked(fs, old);
        maybe_free(fs, old);
    }
    if (n->linked)
        del_name(fs, n);
    bool fresh = n->fresh;
    fresh_del_locked(n);
    struct tfs_node *op = n->parent;
    newparent->nchildren++;
    n->parent = newparent;
    free(n->name);
    free(n->seg);
    n->name = nm;
    n->namelen = len;
    n->seg = sg;
    n->seglen = seglen;
    n->conflict = conflict;
    ins_name(fs, n);
    n->linked = true;
    if (fresh) {
        n->fresh = true;
        n->fresh_next = newparent->fresh_head;
        newparent->fresh_head = n;
    }
    op->nchildren--;
    maybe_free(fs, op);
    pthread_mutex_unlock(&fs->tbl);
    return 0;
}

bool tfs_is_rootlike(const struct tfs_node *n)
{
    return n->kind == TFS_ROOT || n->kind == TFS_SNAPROOT;
}

bool tfs_is_dirlike(const struct tfs_node *n)
{
    return n->kind == TFS_ROOT || n->kind == TFS_SNAPROOT || n->kind == TFS_DIR ||
           n->kind == TFS_CONT;
}

/* Key bytes of n (see fs.h). REQUIRES tbl. */
static int key_locked(struct tfs_node *n, struct tfs_buf *out)
{
    out->n = 0;
    if (tfs_is_rootlike(n) || n->kind == TFS_SNAPDIR)
        return 0;
    size_t len = 0;
    for (struct tfs_node *x = n; !tfs_is_rootlike(x); x = x->parent) {
        len += x->seglen;
        if (x->parent->kind == TFS_DIR)
            len++;
    }
    if (len > TALUS_MAX_KEY + 1)
        return -ENAMETOOLONG;
    if (out->cap < len) {
        uint8_t *p = realloc(out->p, len);
        if (!p)
            return -ENOMEM;
        out->p = p;
        out->cap = len;
    }
    size_t pos = len;
    for (struct tfs_node *x = n; !tfs_is_rootlike(x); x = x->parent) {
        pos -= x->seglen;
        if (x->seglen)
            memcpy(out->p + pos, x->seg, x->seglen);
        if (x->parent->kind == TFS_DIR)
            out->p[--pos] = '/';
    }
    out->n = len;
    return 0;
}

int tfs_node_key(struct tfs *fs, struct tfs_node *n, struct tfs_buf *out)
{
    pthread_mutex_lock(&fs->tbl);
    int rc = key_locked(n, out);
    pthread_mutex_unlock(&fs->tbl);
    return rc;
}

int tfs_node_child_prefix(struct tfs *fs, struct tfs_node *n, struct tfs_buf *out)
{
    pthread_mutex_lock(&fs->tbl);
    int rc = key_locked(n, out);
    if (rc == 0 && n->kind == TFS_DIR)
        rc = tfs_buf_add(out, "/", 1);
    pthread_mutex_unlock(&fs->tbl);
    return rc;
}

void tfs_table_free(struct tfs *fs)
{
    if (!fs->by_ino)
        return;
    for (size_t i = 0; i < fs->nbuckets; i++) {
        for (struct tfs_node *n = fs->by_ino[i], *next; n; n = next) {
            next = n->next_ino;
            free_node(n);
        }
    }
    free(fs->by_ino);
    free(fs->by_name);
    fs->by_ino = fs->by_name = NULL;
}
