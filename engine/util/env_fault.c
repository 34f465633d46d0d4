/*
 * env_fault.c - a tl_env that wraps another one and injects failures, for
 * I/O-error and power-loss tests.
 *
 * Error injection: operations are counted per kind (tl_fault_kind); an armed
 * fault makes the Nth operation of its kind (counted from arming) fail with
 * the armed code before anything reaches the base env, and every later one
 * too if sticky. A short write appends the first half of the bytes, then
 * fails with TALUS_EIO.
 *
 * Power loss (tl_fault_env_drop_unsynced) - what is modelled:
 *  - File data. For each file written through this env (open_write /
 *    open_append) we remember, by current path, how many bytes a successful
 *    tl_file_sync made durable. On drop the file is cut to that length.
 *    open_write (truncate) resets it to 0; open_append of a file that
 *    existed counts its existing bytes as durable; truncate lowers it.
 *  - Directory entries. create (open_* of a path that did not exist),
 *    rename and remove are logged as pending until sync_dir of the directory
 *    holding the new entry (for a rename: the destination's directory). On
 *    drop, pending operations are undone newest first: a created file is
 *    removed, a rename is moved back (and a file it replaced comes back), a
 *    removed file comes back (cut to its durable length).
 *    So a new file survives only if its directory was synced after the
 *    create or it was renamed into place and the destination dir synced.
 *  - To make remove and replacing renames undoable without copying, the old
 *    file is first renamed to a hidden name "<path>.~tlfault<n>" in the same
 *    directory; list_dir of this env hides those names. The hidden file is
 *    deleted for real when the operation becomes durable (sync_dir), when its
 *    directory is removed through rmdir (the removal is then final), or when
 *    the env is freed without a drop.
 *  - Files that existed before and were never written through this env are
 *    assumed fully durable. After a drop everything on disk is durable and
 *    tracking starts afresh.
 * Not modelled: directory creation/removal (mkdir/rmdir are never undone);
 * a sync_dir making the parent's entries durable; reordering or tearing of
 * writes inside the unsynced tail (the tail is dropped whole, never
 * partially kept or garbled); metadata such as sizes from truncate beyond
 * the synced length; data written through other envs or processes.
 * Files still open at drop time keep working but are no longer tracked.
 *
 * Thread-safety: one mutex guards counters, arming and the bookkeeping, and
 * is held across namespace operations (so the two renames that hide a
 * replaced file look atomic to other users of this env). Data reads,
 * appends and syncs run outside it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/env.h"
#include "util/err.h"

#define HIDDEN_TAG ".~tlfault"

/* A file written through this env; refs: list membership, saved in an op,
 * and each open handle. */
typedef struct track {
    char *path;
    uint64_t synced;
    int refs;
    bool listed;
    struct track *next;
} track;

enum { OP_CREATE, OP_RENAME, OP_REMOVE };

/* A namespace change not yet made durable by a sync_dir of `dir`. */
typedef struct nsop {
    int kind;
    char *path;   /* CREATE/REMOVE: the path; RENAME: destination */
    char *from;   /* RENAME: source */
    char *backup; /* hidden name of the removed/replaced file, or NULL */
    track *saved; /* that file's track, or NULL if untracked */
    char *dir;    /* directory whose sync makes this durable */
} nsop;

typedef struct arm {
    bool active, sticky;
    uint64_t nth, seen;
    int err;
} arm;

struct tl_fault_env {
    tl_env env;
    tl_env *base;
    pthread_mutex_t mu;
    uint64_t count[TL_FAULT_KINDS];
    arm arms[TL_FAULT_KINDS];
    bool short_next;
    track *tracks;
    nsop **ops;
    size_t nops, cap;
    uint64_t backup_seq;
};

typedef struct ffile {
    tl_file base;
    tl_file *inner;
    tl_fault_env *fe;
    track *t;    /* NULL for files opened for reading */
    char path[]; /* as opened, for messages */
} ffile;

static const char *const kind_names[TL_FAULT_KINDS] = {"write", "sync", "rename",
                                                       "open",  "read", "remove"};

/* ---- bookkeeping (all REQUIRE fe->mu held) ------------------------------ */

/* Counts an operation; returns the armed error if this one must fail. */
static int fault_hit(tl_fault_env *fe, tl_fault_kind kind, const char *path)
{
    fe->count[kind]++;
    arm *a = &fe->arms[kind];
    if (!a->active)
        return 0;
    a->seen++;
    if (a->seen == a->nth || (a->sticky && a->seen > a->nth))
        return tl_err(a->err, "injected %s fault (%s operation %llu since armed) on %s",
                      kind_names[kind], kind_names[kind], (unsigned long long)a->seen, path);
    return 0;
}

static void track_unref(track *t)
{
    if (t && --t->refs == 0) {
        free(t->path);
        free(t);
    }
}

static track *track_find(tl_fault_env *fe, const char *path)
{
    for (track *t = fe->tracks; t; t = t->next)
        if (!strcmp(t->path, path))
            return t;
    return NULL;
}

static void track_list(tl_fault_env *fe, track *t)
{
    t->listed = true;
    t->next = fe->tracks;
    fe->tracks = t;
}

/* Takes t off the list; the list's reference passes to the caller. */
static void track_unlist(tl_fault_env *fe, track *t)
{
    for (track **pp = &fe->tracks; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            t->next = NULL;
            t->listed = false;
            return;
        }
    }
}

static track *track_new(tl_fault_env *fe, const char *path)
{
    track *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return NULL;
    }
    t->refs = 1;
    track_list(fe, t);
    return t;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    while (slash > path && slash[-1] == '/')
        slash--;
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Compares a directory name as given to sync_dir with one from dir_of,
 * ignoring trailing slashes. */
static bool same_dir(const char *a, const char *b)
{
    size_t al = strlen(a), bl = strlen(b);
    while (al > 1 && a[al - 1] == '/')
        al--;
    while (bl > 1 && b[bl - 1] == '/')
        bl--;
    return al == bl && !memcmp(a, b, al);
}

static void op_free(tl_fault_env *fe, nsop *op, bool delete_backup)
{
    if (op->backup && delete_backup)
        fe->base->ops->remove(fe->base, op->backup);
    track_unref(op->saved);
    free(op->path);
    free(op->from);
    free(op->backup);
    free(op->dir);
    free(op);
}

/* Allocates an op for `kind` on path (dir from dir_path) with room in the
 * log; NULL on ENOMEM (message set). Not yet in the log: see op_push. */
static nsop *op_new(tl_fault_env *fe, int kind, const char *path, const char *dir_path)
{
    if (fe->nops == fe->cap) {
        size_t ncap = fe->cap ? fe->cap * 2 : 16;
        nsop **n = realloc(fe->ops, ncap * sizeof *n);
        if (!n)
            goto nomem;
        fe->ops = n;
        fe->cap = ncap;
    }
    nsop *op = calloc(1, sizeof *op);
    if (!op)
        goto nomem;
    op->kind = kind;
    op->path = strdup(path);
    op->dir = dir_of(dir_path);
    if (!op->path || !op->dir) {
        op_free(fe, op, false);
        goto nomem;
    }
    return op;
nomem:
    tl_err(TALUS_ENOMEM, "fault env: out of memory tracking %s", path);
    return NULL;
}

static void op_push(tl_fault_env *fe, nsop *op)
{
    fe->ops[fe->nops++] = op;
}

/* A hidden sibling name for path; NULL on ENOMEM. */
static char *backup_name(tl_fault_env *fe, const char *path)
{
    char *b = NULL;
    if (asprintf(&b, "%s" HIDDEN_TAG "%llu", path, (unsigned long long)++fe->backup_seq) < 0)
        return NULL;
    return b;
}

static void lock(tl_fault_env *fe)
{
    pthread_mutex_lock(&fe->mu);
}

static void unlock(tl_fault_env *fe)
{
    pthread_mutex_unlock(&fe->mu);
}

static tl_fault_env *FE(tl_env *e)
{
    return (tl_fault_env *)e;
}

/* ---- files ------------------------------------------------------------ */

static int wrap_file(tl_fault_env *fe, tl_file *inner, track *t, const char *path, tl_file **out)
{
    size_t pl = strlen(path);
    ffile *f = malloc(sizeof *f + pl + 1);
    if (!f) {
        fe->base->ops->close(inner);
        return tl_err(TALUS_ENOMEM, "fault env: out of memory opening a file");
    }
    f->base.env = &fe->env;
    f->inner = inner;
    f->fe = fe;
    f->t = t;
    memcpy(f->path, path, pl + 1);
    if (t)
        t->refs++;
    *out = &f->base;
    return 0;
}

static int f_open_read(tl_env *e, const char *path, tl_file **out)
{
    tl_fault_env *fe = FE(e);
    tl_file *inner = NULL;
    int rc = 0;
    *out = NULL;
    lock(fe);
    TRY_OUT(fe->base->ops->open_read(fe->base, path, &inner));
    rc = wrap_file(fe, inner, NULL, path, out);
out:
    unlock(fe);
    return rc;
}

/* open_write (truncate) or open_append; REQUIRES fe->mu. */
static int open_for_write(tl_fault_env *fe, const char *path, bool append, tl_file **out)
{
    tl_env *b = fe->base;
    tl_file *inner = NULL;
    nsop *op = NULL;
    int rc = 0;
    *out = NULL;
    TRY_OUT(fault_hit(fe, TL_FAULT_OPEN, path));
    int ex = b->ops->exists(b, path);
    TRY_OUT(ex);
    if (!ex && !(op = op_new(fe, OP_CREATE, path, path)))
        TRY_OUT(TALUS_ENOMEM);
    if (append)
        TRY_OUT(b->ops->open_append(b, path, &inner));
    else
        TRY_OUT(b->ops->open_write(b, path, &inner));
    track *t = track_find(fe, path);
    if (!t) {
        if (!(t = track_new(fe, path))) {
            b->ops->close(inner);
            TRY_OUT(tl_err(TALUS_ENOMEM, "fault env: out of memory tracking %s", path));
        }
        /* Existing content we did not write is taken as durable. */
        uint64_t sz = 0;
        if (ex && append && b->ops->size(inner, &sz) == 0)
            t->synced = sz;
    }
    if (!append)
        t->synced = 0;
    if (op)
        op_push(fe, op);
    op = NULL;
    rc = wrap_file(fe, inner, t, path, out);
out:
    if (op)
        op_free(fe, op, false);
    return rc;
}

static int f_open_write(tl_env *e, const char *path, tl_file **out)
{
    lock(FE(e));
    int rc = open_for_write(FE(e), path, false, out);
    unlock(FE(e));
    return rc;
}

static int f_open_append(tl_env *e, const char *path, tl_file **out)
{
    lock(FE(e));
    int rc = open_for_write(FE(e), path, true, out);
    unlock(FE(e));
    return rc;
}

static int f_pread(tl_file *file, void *buf, size_t n, uint64_t off, size_t *got)
{
    ffile *f = (ffile *)file;
    *got = 0;
    lock(f->fe);
    int rc = fault_hit(f->fe, TL_FAULT_READ, f->path);
    unlock(f->fe);
    TRY(rc);
    return f->inner->env->ops->pread(f->inner, buf, n, off, got);
}

static int f_append(tl_file *file, const void *buf, size_t n)
{
    ffile *f = (ffile *)file;
    tl_fault_env *fe = f->fe;
    lock(fe);
    int rc = fault_hit(fe, TL_FAULT_WRITE, f->path);
    bool is_short = rc == 0 && fe->short_next;
    if (is_short)
        fe->short_next = false;
    unlock(fe);
    TRY(rc);
    if (is_short) {
        TRY(f->inner->env->ops->append(f->inner, buf, n / 2));
        return tl_err(TALUS_EIO, "injected short write on %s: %zu of %zu bytes written", f->path,
                      n / 2, n);
    }
    return f->inner->env->ops->append(f->inner, buf, n);
}

static int f_sync(tl_file *file)
{
    ffile *f = (ffile *)file;
    tl_fault_env *fe = f->fe;
    uint64_t sz = 0;
    lock(fe);
    int rc = fault_hit(fe, TL_FAULT_SYNC, f->path);
    unlock(fe);
    TRY(rc);
    /* The size before the sync: only those bytes are sure to be durable. */
    TRY(f->inner->env->ops->size(f->inner, &sz));
    TRY(f->inner->env->ops->sync(f->inner));
    lock(fe);
    if (f->t && sz > f->t->synced)
        f->t->synced = sz;
    unlock(fe);
    return 0;
}

static int f_size(tl_file *file, uint64_t *out)
{
    ffile *f = (ffile *)file;
    return f->inner->env->ops->size(f->inner, out);
}

static int f_close(tl_file *file)
{
    ffile *f = (ffile *)file;
    int rc = f->inner->env->ops->close(f->inner);
    lock(f->fe);
    track_unref(f->t);
    unlock(f->fe);
    free(f);
    return rc;
}

/* ---- namespace -------------------------------------------------------- */

static int f_file_size(tl_env *e, const char *path, uint64_t *out)
{
    tl_fault_env *fe = FE(e);
    lock(fe);
    int rc = fe->base->ops->file_size(fe->base, path, out);
    unlock(fe);
    return rc;
}

static int f_exists(tl_env *e, const char *path)
{
    tl_fault_env *fe = FE(e);
    lock(fe);
    int rc = fe->base->ops->exists(fe->base, path);
    unlock(fe);
    return rc;
}

/* True if the newest pending op touching path is its creation. */
static bool created_pending(tl_fault_env *fe, const char *path)
{
    for (size_t i = fe->nops; i-- > 0;) {
        nsop *op = fe->ops[i];
        if (!strcmp(op->path, path))
            return op->kind == OP_CREATE;
        if (op->from && !strcmp(op->from, path))
            return false;
    }
    return false;
}

static int f_remove(tl_env *e, const char *path)
{
    tl_fault_env *fe = FE(e);
    tl_env *b = fe->base;
    nsop *op = NULL;
    int rc = 0;
    lock(fe);
    TRY_OUT(fault_hit(fe, TL_FAULT_REMOVE, path));
    int ex = b->ops->exists(b, path);
    TRY_OUT(ex);
    track *t = track_find(fe, path);
    if (!ex || created_pending(fe, path)) {
        /* Created and removed before any dir sync: undoing both is the
         * same as undoing neither, so remove for real. */
        TRY_OUT(b->ops->remove(b, path));
        if (t) {
            track_unlist(fe, t);
            track_unref(t);
        }
        goto out;
    }
    if (!(op = op_new(fe, OP_REMOVE, path, path)) || !(op->backup = backup_name(fe, path)))
        TRY_OUT(tl_err(TALUS_ENOMEM, "fault env: out of memory removing %s", path));
    TRY_OUT(b->ops->rename(b, path, op->backup));
    if (t) {
        track_unlist(fe, t);
        op->saved = t;
    }
    op_push(fe, op);
    op = NULL;
out:
    if (op)
        op_free(fe, op, false);
    unlock(fe);
    return rc;
}

static int f_rename(tl_env *e, const char *from, const char *to)
{
    tl_fault_env *fe = FE(e);
    tl_env *b = fe->base;
    nsop *op = NULL;
    char *to_copy = NULL;
    bool hidden = false;
    int rc = 0;
    lock(fe);
    TRY_OUT(fault_hit(fe, TL_FAULT_RENAME, from));
    if (!strcmp(from, to)) {
        rc = b->ops->rename(b, from, to);
        goto out;
    }
    if (!(op = op_new(fe, OP_RENAME, to, to)) || !(op->from = strdup(from)) ||
        !(to_copy = strdup(to)))
        TRY_OUT(tl_err(TALUS_ENOMEM, "fault env: out of memory renaming %s", from));
    int ex = b->ops->exists(b, to);
    TRY_OUT(ex);
    if (ex) {
        if (!(op->backup = backup_name(fe, to)))
            TRY_OUT(tl_err(TALUS_ENOMEM, "fault env: out of memory renaming %s", from));
        TRY_OUT(b->ops->rename(b, to, op->backup));
        hidden = true;
    }
    rc = b->ops->rename(b, from, to);
    if (rc < 0) {
        if (hidden)
            b->ops->rename(b, op->backup, to);
        goto out;
    }
    track *told = track_find(fe, to);
    if (told) {
        track_unlist(fe, told);
        op->saved = told;
    }
    track *tf = track_find(fe, from);
    if (tf) {
        free(tf->path);
        tf->path = to_copy;
        to_copy = NULL;
    }
    op_push(fe, op);
    op = NULL;
out:
    if (op)
        op_free(fe, op, false);
    free(to_copy);
    unlock(fe);
    return rc;
}

static int f_truncate(tl_env *e, const char *path, uint64_t size)
{
    tl_fault_env *fe = FE(e);
    lock(fe);
    int rc = fe->base->ops->truncate(fe->base, path, size);
    track *t = rc == 0 ? track_find(fe, path) : NULL;
    if (t && t->synced > size)
        t->synced = size;
    unlock(fe);
    return rc;
}

static int f_mkdir(tl_env *e, const char *path)
{
    tl_fault_env *fe = FE(e);
    lock(fe);
    int rc = fe->base->ops->mkdir(fe->base, path);
    unlock(fe);
    return rc;
}

static int f_rmdir(tl_env *e, const char *path)
{
    tl_fault_env *fe = FE(e);
    lock(fe);
    /* Hidden files of pending removes would keep the directory non-empty:
     * removing the directory makes those removals final. */
    for (size_t i = 0; i < fe->nops; i++) {
        nsop *op = fe->ops[i];
        if (op->backup && same_dir(path, op->dir)) {
            fe->base->ops->remove(fe->base, op->backup);
            free(op->backup);
            op->backup = NULL;
            track_unref(op->saved);
            op->saved = NULL;
        }
    }
    int rc = fe->base->ops->rmdir(fe->base, path);
    unlock(fe);
    return rc;
}

static int f_sync_dir(tl_env *e, const char *path)
{
    tl_fault_env *fe = FE(e);
    int rc = 0;
    lock(fe);
    TRY_OUT(fault_hit(fe, TL_FAULT_SYNC, path));
    TRY_OUT(fe->base->ops->sync_dir(fe->base, path));
    size_t keep = 0;
    for (size_t i = 0; i < fe->nops; i++) {
        nsop *op = fe->ops[i];
        if (same_dir(path, op->dir))
            op_free(fe, op, true);
        else
            fe->ops[keep++] = op;
    }
    fe->nops = keep;
out:
    unlock(fe);
    return rc;
}

static int f_list_dir(tl_env *e, const char *path, char ***names, size_t *count)
{
    tl_fault_env *fe = FE(e);
    lock(fe);
    int rc = fe->base->ops->list_dir(fe->base, path, names, count);
    unlock(fe);
    TRY(rc);
    size_t keep = 0;
    for (size_t i = 0; i < *count; i++) {
        if (strstr((*names)[i], HIDDEN_TAG))
            free((*names)[i]);
        else
            (*names)[keep++] = (*names)[i];
    }
    *count = keep;
    return 0;
}

static int f_lock(tl_env *e, const char *path, void **handle)
{
    return FE(e)->base->ops->lock(FE(e)->base, path, handle);
}

static int f_unlock(tl_env *e, void *handle)
{
    return FE(e)->base->ops->unlock(FE(e)->base, handle);
}

static int f_disk_space(tl_env *e, const char *path, uint64_t *fr, uint64_t *tot)
{
    return FE(e)->base->ops->disk_space(FE(e)->base, path, fr, tot);
}

static uint64_t f_now_ns(tl_env *e)
{
    return FE(e)->base->ops->now_ns(FE(e)->base);
}

static uint64_t f_wall_ns(tl_env *e)
{
    return FE(e)->base->ops->wall_ns(FE(e)->base);
}

static void f_sleep_us(tl_env *e, uint64_t us)
{
    FE(e)->base->ops->sleep_us(FE(e)->base, us);
}

/* A link is a new directory entry for an existing (durable) file: undone
 * like a create until its directory is synced. Faults count as renames. */
static int f_link(tl_env *e, const char *from, const char *to)
{
    tl_fault_env *fe = FE(e);
    tl_env *b = fe->base;
    nsop *op = NULL;
    lock(fe);
    int rc = fault_hit(fe, TL_FAULT_RENAME, to);
    if (rc == 0 && !(op = op_new(fe, OP_CREATE, to, to)))
        rc = tl_err(TALUS_ENOMEM, "fault env: out of memory tracking %s", to);
    if (rc == 0)
        rc = tl_env_link(b, from, to);
    if (rc == 0)
        op_push(fe, op);
    else if (op)
        op_free(fe, op, false);
    unlock(fe);
    return rc;
}

static const tl_env_ops fault_ops = {
    .open_read = f_open_read,
    .open_write = f_open_write,
    .open_append = f_open_append,
    .pread = f_pread,
    .append = f_append,
    .sync = f_sync,
    .size = f_size,
    .close = f_close,
    .file_size = f_file_size,
    .exists = f_exists,
    .remove = f_remove,
    .rename = f_rename,
    .link = f_link,
    .truncate = f_truncate,
    .mkdir = f_mkdir,
    .rmdir = f_rmdir,
    .sync_dir = f_sync_dir,
    .list_dir = f_list_dir,
    .lock = f_lock,
    .unlock = f_unlock,
    .disk_space = f_disk_space,
    .now_ns = f_now_ns,
    .wall_ns = f_wall_ns,
    .sleep_us = f_sleep_us,
};

/* ---- control ---------------------------------------------------------- */

tl_fault_env *tl_fault_env_new(tl_env *base)
{
    tl_fault_env *fe = calloc(1, sizeof *fe);
    if (!fe)
        return NULL;
    if (pthread_mutex_init(&fe->mu, NULL) != 0) {
        free(fe);
        return NULL;
    }
    fe->env.ops = &fault_ops;
    fe->base = base;
    return fe;
}

static void clear_tracks(tl_fault_env *fe)
{
    while (fe->tracks) {
        track *t = fe->tracks;
        track_unlist(fe, t);
        track_unref(t);
    }
}

void tl_fault_env_free(tl_fault_env *fe)
{
    if (!fe)
        return;
    /* No power loss happened: pending removals take effect. */
    for (size_t i = 0; i < fe->nops; i++)
        op_free(fe, fe->ops[i], true);
    free(fe->ops);
    clear_tracks(fe);
    pthread_mutex_destroy(&fe->mu);
    free(fe);
}

tl_env *tl_fault_env_env(tl_fault_env *fe)
{
    return &fe->env;
}

void tl_fault_env_arm(tl_fault_env *fe, tl_fault_kind kind, uint64_t nth, int err, bool sticky)
{
    if ((unsigned)kind >= TL_FAULT_KINDS)
        return;
    lock(fe);
    arm *a = &fe->arms[kind];
    a->active = true;
    a->sticky = sticky;
    a->nth = nth ? nth : 1;
    a->seen = 0;
    a->err = err < 0 ? err : TALUS_EIO;
    unlock(fe);
}

void tl_fault_env_disarm(tl_fault_env *fe)
{
    lock(fe);
    memset(fe->arms, 0, sizeof fe->arms);
    fe->short_next = false;
    unlock(fe);
}

uint64_t tl_fault_env_count(tl_fault_env *fe, tl_fault_kind kind)
{
    if ((unsigned)kind >= TL_FAULT_KINDS)
        return 0;
    lock(fe);
    uint64_t n = fe->count[kind];
    unlock(fe);
    return n;
}

void tl_fault_env_short_write_next(tl_fault_env *fe)
{
    lock(fe);
    fe->short_next = true;
    unlock(fe);
}

/* Cut path to len if it is longer; first error kept in *rc. */
static void cut_to(tl_env *b, const char *path, uint64_t len, int *rc)
{
    uint64_t sz = 0;
    int r = b->ops->exists(b, path);
    if (r == 1)
        r = b->ops->file_size(b, path, &sz);
    if (r == 0 && sz > len)
        r = b->ops->truncate(b, path, len);
    if (r < 0 && *rc == 0)
        *rc = r;
}

static void keep_first(int r, int *rc)
{
    if (r < 0 && *rc == 0)
        *rc = r;
}

/* Bring back the file a remove or a replacing rename hid. */
static void restore_hidden(tl_fault_env *fe, nsop *op, int *rc)
{
    if (op->backup) {
        keep_first(fe->base->ops->rename(fe->base, op->backup, op->path), rc);
        free(op->backup);
        op->backup = NULL;
    }
    if (op->saved) {
        track_list(fe, op->saved); /* the op's reference goes to the list */
        op->saved = NULL;
    }
}

static void undo_op(tl_fault_env *fe, nsop *op, int *rc)
{
    tl_env *b = fe->base;
    track *t;
    switch (op->kind) {
    case OP_CREATE:
        if (b->ops->exists(b, op->path) == 1)
            keep_first(b->ops->remove(b, op->path), rc);
        if ((t = track_find(fe, op->path))) {
            track_unlist(fe, t);
            track_unref(t);
        }
        break;
    case OP_RENAME:
        if (b->ops->exists(b, op->path) == 1)
            keep_first(b->ops->rename(b, op->path, op->from), rc);
        if ((t = track_find(fe, op->path))) {
            char *p = strdup(op->from);
            if (p) {
                free(t->path);
                t->path = p;
            }
        }
        restore_hidden(fe, op, rc);
        break;
    case OP_REMOVE:
        restore_hidden(fe, op, rc);
        break;
    }
}

int tl_fault_env_drop_unsynced(tl_fault_env *fe)
{
    tl_env *b = fe->base;
    int rc = 0;
    lock(fe);
    /* Data first, while every tracked file is still where we know it. */
    for (track *t = fe->tracks; t; t = t->next)
        cut_to(b, t->path, t->synced, &rc);
    for (size_t i = 0; i < fe->nops; i++) {
        nsop *op = fe->ops[i];
        if (op->backup && op->saved)
            cut_to(b, op->backup, op->saved->synced, &rc);
    }
    /* Then the directory entries, newest first. */
    for (size_t i = fe->nops; i-- > 0;) {
        undo_op(fe, fe->ops[i], &rc);
        op_free(fe, fe->ops[i], false);
    }
    fe->nops = 0;
    /* What is on disk now is what a reboot would find: all durable. */
    clear_tracks(fe);
    unlock(fe);
    return rc;
}
