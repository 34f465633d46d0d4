/*
 * fs.h - the internals of talusfs shared by the files of fs/ (never by the
 * engine, never by mount/ which uses talusfs.h).
 *
 * The model (fs/README.md tells the user-facing story):
 *  - tree "data": key = path below the mount root (fs/keys.h maps each key
 *    component to path names), value = file contents or symlink target; a
 *    key "dir/" with an empty value marks an empty directory;
 *  - tree "meta": the attributes (fs/META.md) of a file under the same key,
 *    of a directory under "dir/"; tree "fs": the root directory's attributes;
 *  - every change is one batch across the trees, so contents and attributes
 *    never disagree after a crash or in a snapshot.
 *
 * Locks, always taken in this order (never the other way):
 *   node->wlock (one open file's write buffer)
 *   fs->ns     rwlock: writers = every batch commit (plus the reads that
 *              decide it); readers = lookups, readdir, getattr misses and
 *              loads, so a reader never sees a half-applied namespace change
 *              and a lookup never resurrects a name a writer just removed
 *   fs->tbl    mutex: the inode table and every node field except the
 *              write buffer's contents; held only for short in-memory work,
 *              never across an engine call
 *   fs->snap_mu mutex: the snapshot slots
 *
 * Errors inside fs/ are negative errno values (what FUSE replies with);
 * engine codes are converted once, by tfs_errno(), which logs the ones a
 * person must see (corruption, I/O errors).
 */
#ifndef TALUSFS_FS_H
#define TALUSFS_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "talus.h"
#include "talusfs.h"

/* ---- small byte buffers ---------------------------------------------- */

struct tfs_buf {
    uint8_t *p;
    size_t n, cap;
};

int tfs_buf_add(struct tfs_buf *b, const void *d, size_t n);
int tfs_buf_set(struct tfs_buf *b, const void *d, size_t n);
void tfs_buf_free(struct tfs_buf *b);

/* ---- logging and errors ------------------------------------------------ */

void tfs_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* errno for an engine error code; EIO-class errors are logged with `what`. */
int tfs_errno(int talus_rc, const char *what);
int64_t tfs_now_ns(void);

/* ---- attributes (meta.c, fs/META.md) ----------------------------------- */

enum { TFS_T_FILE = 1, TFS_T_DIR = 2, TFS_T_SYMLINK = 3 };

struct tfs_xattr {
    char *name; /* NUL-terminated, includes the "user." prefix */
    uint8_t *val;
    size_t vlen;
};

struct tfs_meta {
    uint8_t type;  /* TFS_T_* */
    uint32_t mode; /* permission bits only (07777) */
    uint32_t uid, gid;
    int64_t atime, mtime, ctime; /* ns since the epoch (may be negative) */
    size_t nx;
    struct tfs_xattr *x; /* owned */
};

void tfs_meta_default(const struct tfs *fs, uint8_t type, struct tfs_meta *m);
int tfs_meta_decode(const uint8_t *p, size_t n, struct tfs_meta *m);
int tfs_meta_encode(const struct tfs_meta *m, struct tfs_buf *out);
void tfs_meta_free(struct tfs_meta *m);
struct tfs_xattr *tfs_meta_xfind(const struct tfs_meta *m, const char *name);
int tfs_meta_xset(struct tfs_meta *m, const char *name, const void *v, size_t vlen);
int tfs_meta_xdel(struct tfs_meta *m, const char *name);

/* ---- inodes (inode.c) -------------------------------------------------- */

enum tfs_kind {
    TFS_ROOT = 1, /* the mount root (ino 1) */
    TFS_SNAPDIR,  /* ".snap" */
    TFS_SNAPROOT, /* ".snap/<seqno>": the root of one snapshot */
    TFS_DIR,      /* a directory: key prefix "key/" */
    TFS_FILE,     /* a file or symlink: key "key" */
    TFS_CONT,     /* a name that continues a long key component ("...%+") */
};

#define TFS_SNAPDIR_INO 2
#define TFS_SNAP_SHIFT 48 /* snapshot slot index lives in the high bits */

struct tfs_attr {
    uint32_t mode; /* type and permission bits */
    uint32_t uid, gid;
    int64_t atime, mtime, ctime;
    uint64_t size;
};

struct tfs_snap;
struct tfs_blob;
struct tfs_wbuf;

struct tfs_node {
    uint64_t ino;
    uint64_t nlookup; /* kernel references (lookup count) */
    struct tfs_node *parent;
    char *name; /* the path name the kernel knows it by */
    size_t namelen;
    uint8_t *seg; /* key bytes this name contributes */
    size_t seglen;
    uint8_t kind;  /* enum tfs_kind */
    bool conflict; /* file shown as "name%f" next to a same-named dir */
    bool linked;   /* reachable by (parent, name); false after removal */
    bool virt;     /* TFS_CONT made by mkdir, not backed by keys (yet) */
    /* A file created through the mount whose first commit (at close,
     * flush or fsync) has not happened: it exists only here, so a crash
     * leaves it absent rather than empty. Listed by its parent's readdir
     * from the fresh list (under fs->tbl). */
    bool fresh;
    struct tfs_node *fresh_head, *fresh_next;
    struct tfs_snap *snap; /* NULL: live tree */
    uint32_t nchildren;    /* nodes whose parent is this one */
    uint32_t oprefs;       /* operations and handles using the node */

    bool attr_valid; /* attr caches the stored attributes */
    struct tfs_attr attr;

    /* Open-file state (file.c). */
    uint32_t nopen;
    uint64_t data_version; /* bumped on every committed content change */
    struct tfs_blob *blob; /* committed contents shared by read-only opens */
    uint32_t pc_users;     /* read-only opens using the page cache */
    uint64_t pc_version;   /* data_version the page cache holds */
    bool pc_known;
    pthread_mutex_t wlock;
    struct tfs_wbuf *w; /* shared write buffer of the writable opens */
    /* Uncommitted writes, for getattr (under fs->tbl, not wlock, so that
     * code holding fs->ns can read them). */
    bool pend;
    uint64_t pend_size;
    int64_t pend_mtime;

    struct tfs_node *next_ino, *next_name; /* hash chains */
};

/* The node for ino with an extra "op" reference (so it cannot be freed
 * while the operation runs); NULL if unknown. Release with tfs_node_put. */
struct tfs_node *tfs_node_get(struct tfs *fs, uint64_t ino);
void tfs_node_put(struct tfs *fs, struct tfs_node *n);
/* The linked child (parent, name), with an op reference, or NULL. */
struct tfs_node *tfs_node_child(struct tfs *fs, struct tfs_node *parent, const char *name);
/* Find or make the linked child (parent, name) of the given kind; returns it
 * with an op reference. seg: the key bytes of the name. An existing child of
 * another kind is unlinked and replaced. -ENOMEM on failure. */
int tfs_node_make(struct tfs *fs, struct tfs_node *parent, const char *name, const uint8_t *seg,
                  size_t seglen, uint8_t kind, bool conflict, struct tfs_node **out);
/* Lookup count changes. */
void tfs_node_ref_lookup(struct tfs *fs, struct tfs_node *n, uint64_t count);
void tfs_node_forget(struct tfs *fs, uint64_t ino, uint64_t nlookup);
/* Remove (parent, name) from the table: the node lives on while referenced. */
void tfs_node_unlink(struct tfs *fs, struct tfs_node *n);
/* Move a node to (newparent, newname); what was there is unlinked. */
int tfs_node_move(struct tfs *fs, struct tfs_node *n, struct tfs_node *newparent,
                  const char *newname, const uint8_t *seg, size_t seglen, bool conflict);
/* The node's key: for files the key, for directories the key without the
 * trailing '/', for TFS_CONT the key bytes so far. Empty for roots. */
int tfs_node_key(struct tfs *fs, struct tfs_node *n, struct tfs_buf *out);
/* The prefix of every key below a directory-like node ("" for roots,
 * "key/" for directories, the partial component for TFS_CONT). */
int tfs_node_child_prefix(struct tfs *fs, struct tfs_node *n, struct tfs_buf *out);
bool tfs_is_dirlike(const struct tfs_node *n);
bool tfs_is_rootlike(const struct tfs_node *n);
/* Put n on / take n off its parent's list of fresh (uncommitted) files. */
void tfs_fresh_add(struct tfs *fs, struct tfs_node *n);
void tfs_fresh_del(struct tfs *fs, struct tfs_node *n);
bool tfs_has_fresh(struct tfs *fs, struct tfs_node *dir);
/* Make a node for the root of snapshot slot s (or return the existing one). */
int tfs_node_snaproot(struct tfs *fs, struct tfs_snap *s, const char *name, struct tfs_node **out);
int tfs_table_init(struct tfs *fs);
void tfs_table_free(struct tfs *fs);

/* ---- names: key components <-> path names (names.c) ------------------- */

enum tfs_res_kind { TFS_RES_ENTRY = 1, TFS_RES_CONFLICT, TFS_RES_CONT };

/* What a name below a directory-like node denotes. */
struct tfs_res {
    uint8_t kind;         /* enum tfs_res_kind */
    struct tfs_buf key;   /* full key (ENTRY, CONFLICT) or partial (CONT) */
    struct tfs_buf seg;   /* the name's own key bytes */
    struct tfs_buf chain; /* names of the component so far, '/'-joined */
    size_t comp_start;    /* offset in key where the component starts */
    int depth;            /* TFS_CONT: names of the component so far */
};

/* Decode `name` below `parent`: -ENOENT for a name that is not the
 * canonical spelling of anything, -ENAMETOOLONG for keys over the limit. */
int tfs_resolve(struct tfs *fs, struct tfs_node *parent, const char *name, struct tfs_res *r);
void tfs_res_free(struct tfs_res *r);
/* The names spelling component c (plain or conflict form), joined by '/'. */
int tfs_comp_names(const uint8_t *c, size_t n, bool at_root, bool conflict, struct tfs_buf *out,
                   int *nnames);
/* The i-th name (0-based) of a '/'-joined chain; false past the end. */
bool tfs_chain_name(const struct tfs_buf *chain, int i, const char **name, size_t *len);

/* ---- database access (store.c) ----------------------------------------- */

struct tfs_view {
    const talus_snapshot *snap; /* NULL: latest */
};

/* What exists at a key: a file "key" and/or a directory "key/...". */
struct tfs_probe {
    bool file, dir;
    uint64_t size; /* of the file */
};

int tfs_get(struct tfs *fs, talus_tree *t, struct tfs_view v, const void *key, size_t klen,
            void **val, size_t *vlen);
/* Open the contents at key (tree "data") for ranged reads as of view v;
 * close with talus_value_close. It stays readable after the key is
 * overwritten or removed and after the view's snapshot is released (the
 * engine pins a blob file while a value of it is open). -ENOENT if absent.
 * REQUIRES fs->ns (either mode), like every read of a view. */
int tfs_value_open(struct tfs *fs, struct tfs_view v, const void *key, size_t klen,
                   talus_value **out);
/* Attributes stored for a key (file: "key", directory: "key/"); on -ENOENT
 * (nothing stored) *m holds the defaults for `type`. */
int tfs_load_meta(struct tfs *fs, struct tfs_view v, const uint8_t *key, size_t klen, bool dir,
                  uint8_t type, struct tfs_meta *m);
int tfs_load_root_meta(struct tfs *fs, struct tfs_view v, struct tfs_meta *m);
int tfs_probe_key(struct tfs *fs, struct tfs_view v, const uint8_t *key, size_t klen,
                  struct tfs_probe *p);
/* Is there any key starting with prefix, other than those in [skip_lo,
 * skip_hi) (skip_lo NULL: none)? 1 yes, 0 no, or -errno. */
int tfs_any_key(struct tfs *fs, struct tfs_view v, const uint8_t *prefix, size_t plen,
                const uint8_t *skip_lo, size_t lolen, const uint8_t *skip_hi, size_t hilen);
bool tfs_is_marker(const void *key, size_t klen, uint64_t vlen);

/* A batch being built under fs->ns (write). */
#define TFS_TXN_DIRS 4
struct tfs_txn {
    struct tfs *fs;
    talus_batch *b;
    /* Directories whose attributes the batch sets: cached on commit, so the
     * GETATTR that follows every entry change is answered from memory. */
    struct {
        struct tfs_node *n; /* referenced (oprefs) until tfs_txn_end */
        struct tfs_attr a;
    } dirs[TFS_TXN_DIRS];
    int ndirs;
};
int tfs_txn_begin(struct tfs *fs, struct tfs_txn *tx);
int tfs_txn_put(struct tfs_txn *tx, talus_tree *t, const void *k, size_t kl, const void *v,
                size_t vl);
/* Put the latest value of src as k's value (a large value is linked, not
 * read). -ENOENT if src is absent. */
int tfs_txn_copy(struct tfs_txn *tx, talus_tree *t, const void *k, size_t kl, const void *src,
                 size_t srclen);
int tfs_txn_del(struct tfs_txn *tx, talus_tree *t, const void *k, size_t kl);
int tfs_txn_put_meta(struct tfs_txn *tx, const uint8_t *key, size_t klen, bool dir,
                     const struct tfs_meta *m);
int tfs_txn_put_root_meta(struct tfs_txn *tx, const struct tfs_meta *m);
int tfs_txn_commit(struct tfs_txn *tx, int durability);
void tfs_txn_end(struct tfs_txn *tx);

/* ---- the filesystem ----------------------------------------------------- */

struct tfs_snap {
    uint64_t seqno;
    uint16_t idx;      /* 1..65535, part of every inode number below it */
    talus_snapshot *h; /* NULL once unpinned and unused */
    bool pinned;
    uint32_t users; /* operations and handles using h */
    struct tfs_node *root;
};

struct tfs_inval {
    struct tfs_inval *next;
    uint64_t parent; /* entry invalidation when name != NULL */
    uint64_t ino;    /* inode (attributes and data) invalidation otherwise */
    char *name;
    size_t namelen;
};

/* A name the database was just found not to have, valid while the seqno
 * has not moved (see dir.c: the LOOKUP before a create or rename, and
 * the operation's own check right after it, probe once). */
#define TFS_NEG_SLOTS 16
struct tfs_neg {
    uint64_t parent; /* inode; 0: empty slot */
    uint64_t seq;
    size_t len;
    char name[256];
};

struct tfs {
    struct tfs_config cfg;
    char *dbdir;
    talus_db *db;
    talus_tree *data, *meta, *info; /* NULL when absent in a read-only db */
    int64_t mount_ns;

    pthread_rwlock_t ns;
    pthread_mutex_t tbl;
    pthread_mutex_t neg_mu;
    struct tfs_neg neg[TFS_NEG_SLOTS];
    unsigned neg_next;
    struct tfs_node **by_ino, **by_name;
    size_t nbuckets, nnodes;
    uint64_t next_ino;
    struct tfs_node *root, *snapdir;

    pthread_mutex_t snap_mu;
    struct tfs_snap **slots; /* index = slot idx */
    size_t nslots;
    uint64_t *pins; /* sorted pinned seqnos, valid when pins_known */
    size_t npins;
    bool pins_known;

    /* Cache invalidations, sent by their own thread (a notification sent
     * from inside an operation can deadlock the kernel). */
    struct fuse_session *se;
    pthread_t inval_thread;
    bool inval_running, inval_stop;
    pthread_mutex_t inval_mu;
    pthread_cond_t inval_cv;
    struct tfs_inval *inval_head, *inval_tail;
};

static inline struct tfs *tfs_of(fuse_req_t req)
{
    return (struct tfs *)fuse_req_userdata(req);
}

/* Can this node be changed? 0, or -EROFS (snapshot, read-only mount). */
int tfs_writable(struct tfs *fs, const struct tfs_node *n);

/* Attributes of a node (cached); fills st for the kernel. */
int tfs_node_stat(struct tfs *fs, struct tfs_node *n, struct stat *st);
/* Read n's stored attributes into its cache. p: what a probe of its key
 * found (NULL: probe now). REQUIRES fs->ns held (either mode). */
int tfs_node_load_attr(struct tfs *fs, struct tfs_node *n, struct tfs_view v,
                       const struct tfs_probe *p);
void tfs_node_set_attr(struct tfs *fs, struct tfs_node *n, const struct tfs_attr *a);
void tfs_fill_stat(struct tfs *fs, const struct tfs_node *n, const struct tfs_attr *a,
                   struct stat *st);
void tfs_attr_from_meta(const struct tfs_meta *m, uint64_t size, struct tfs_attr *a);
/* Reply to a lookup-like request with node n (takes one lookup ref). */
void tfs_reply_entry(fuse_req_t req, struct tfs *fs, struct tfs_node *n);
void tfs_entry_param(struct tfs *fs, struct tfs_node *n, const struct stat *st,
                     struct fuse_entry_param *e);
/* Update the mtime/ctime of directory-like node dir in batch tx. */
int tfs_txn_touch_dir(struct tfs_txn *tx, struct tfs_node *dir, int64_t now);
/* After removing [lo, hi) below dir: if dir would have no key left, put
 * its marker so that the (now empty) directory stays. */
int tfs_txn_keep_dir(struct tfs_txn *tx, struct tfs_node *dir, const uint8_t *lo, size_t lolen,
                     const uint8_t *hi, size_t hilen);

/* dir.c */
void tfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void tfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void tfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi);
void tfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi);
void tfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Decide what `name` below parent is (a node with an op reference). */
int tfs_lookup_node(struct tfs *fs, struct tfs_node *parent, const char *name,
                    struct tfs_node **out);

/* file.c */
void tfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void tfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void tfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                  struct fuse_file_info *fi);
void tfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void tfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void tfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
/* Open node n (a file) for fi->flags; fills fi. tfs_file_close undoes it
 * (release, or a reply the kernel never got). */
int tfs_file_open(struct tfs *fs, struct tfs_node *n, struct fuse_file_info *fi, bool created);
void tfs_file_close(struct tfs *fs, struct fuse_file_info *fi);
/* setattr's part: truncate to size (if do_size) and put the file's
 * uncommitted contents into tx; *newsize is the size after it, *wrote
 * whether contents went into tx. REQUIRES n->wlock and fs->ns (write). */
int tfs_file_txn_contents(struct tfs_txn *tx, struct tfs_node *n, const uint8_t *key, size_t klen,
                          bool do_size, uint64_t size, bool *wrote, uint64_t *newsize);
/* After tx with the contents committed. REQUIRES n->wlock and fs->ns. */
void tfs_file_committed(struct tfs *fs, struct tfs_node *n);
/* After the batch that tfs_file_txn_contents filled was committed (rc 0) or
 * failed: a streamed file handed to a failed batch is logged as lost and
 * goes back to its committed size. REQUIRES n->wlock. */
void tfs_file_txn_done(struct tfs *fs, struct tfs_node *n, int rc);
/* The size a read-only handle sees (its version's); false for others. */
bool tfs_file_handle_size(struct fuse_file_info *fi, uint64_t *size);
/* Commit the uncommitted writes of n, if any. */
int tfs_file_flush(struct tfs *fs, struct tfs_node *n);
/* The attribute record to rewrite for node n (the stored one, or for a
 * fresh file what the cache holds). REQUIRES fs->ns. */
int tfs_node_meta(struct tfs *fs, struct tfs_node *n, const uint8_t *key, size_t klen,
                  struct tfs_meta *m);
/* Commit every dirty write buffer (shutdown). */
/* At exit, after tfs_commit_all: drop every write buffer (a writer still
 * streaming is aborted) while the database is still open. */
void tfs_file_drop_all(struct tfs *fs);
int tfs_commit_all(struct tfs *fs);
/* Drop all open-file state of a node (tables being freed). */
void tfs_file_drop(struct tfs_node *n);

/* ns.c: changes to the namespace */
void tfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                   struct fuse_file_info *fi);
void tfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void tfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void tfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void tfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void tfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void tfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void tfs_op_readlink(fuse_req_t req, fuse_ino_t ino);

/* After directory `name` below parent went away (rmdir, rename): a file
 * with the same key is shown under the plain name again. REQUIRES ns. */
void tfs_unconflict(struct tfs *fs, struct tfs_node *parent, const char *name, const uint8_t *key,
                    size_t klen);
/* Chain directories (TFS_CONT) from dir up that no key spells any more
 * disappear. REQUIRES fs->ns. */
void tfs_drop_empty_chain(struct tfs *fs, struct tfs_node *dir);

/* rename.c */
void tfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                   const char *newname, unsigned int flags);

/* attr.c */
void tfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void tfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                    struct fuse_file_info *fi);
void tfs_op_statfs(fuse_req_t req, fuse_ino_t ino);
void tfs_op_access(fuse_req_t req, fuse_ino_t ino, int mask);

/* xattr.c */
void tfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                     size_t size, int flags);
void tfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void tfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void tfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* snap.c */
int tfs_snap_lookup(struct tfs *fs, const char *name, struct tfs_node **out);
int tfs_snap_list(struct tfs *fs, uint64_t **seqnos, size_t *count);
void tfs_snap_mkdir(fuse_req_t req, struct tfs *fs, const char *name);
void tfs_snap_rmdir(fuse_req_t req, struct tfs *fs, const char *name);
/* Pin the snapshot handle of a node for the length of an operation:
 * -ENOENT if the snapshot was removed. Live nodes always succeed. */
int tfs_snap_enter(struct tfs *fs, struct tfs_node *n, struct tfs_view *v);
void tfs_snap_leave(struct tfs *fs, struct tfs_node *n);
void tfs_snap_free_all(struct tfs *fs);

/* notify.c */
void tfs_inval_entry(struct tfs *fs, uint64_t parent, const char *name, size_t namelen);
void tfs_inval_inode(struct tfs *fs, uint64_t ino);

#endif
