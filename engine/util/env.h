/*
 * env.h - the one door to the operating system. Every file operation and
 * clock read in the engine goes through a tl_env, so tests can inject faults
 * (fail the Nth write/sync/rename, short writes, drop unsynced data).
 *
 * Files are opaque tl_file handles created by an env; the tl_file_* calls
 * dispatch to the env that made them. All calls return 0 or a TALUS_E* code
 * with a message naming the path (tl_err_errno). Thread-safe: different
 * threads may use different files at once; a tl_file used for appends is
 * used by one thread at a time, pread is safe from many threads.
 */
#ifndef TL_ENV_H
#define TL_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "talus.h"

typedef struct tl_env tl_env;
typedef struct tl_file tl_file;

/* Common head of every env's file struct. */
struct tl_file {
    tl_env *env;
};

typedef struct tl_env_ops {
    /* Open an existing file for positional reads. */
    int (*open_read)(tl_env *e, const char *path, tl_file **out);
    /* Create (truncate if exists) a file for appending. */
    int (*open_write)(tl_env *e, const char *path, tl_file **out);
    /* Open an existing file for appending at its end (create if missing). */
    int (*open_append)(tl_env *e, const char *path, tl_file **out);
    /* Read up to n bytes at off; *got < n only at end of file. */
    int (*pread)(tl_file *f, void *buf, size_t n, uint64_t off, size_t *got);
    /* Append all n bytes (a short write is retried or reported). */
    int (*append)(tl_file *f, const void *buf, size_t n);
    /* fdatasync: data appended so far survives power loss. */
    int (*sync)(tl_file *f);
    int (*size)(tl_file *f, uint64_t *out);
    /* Hint: pages already read/written may be dropped from the OS cache. */
    int (*close)(tl_file *f);

    int (*file_size)(tl_env *e, const char *path, uint64_t *out);
    /* 1 if exists, 0 if not, negative on error. */
    int (*exists)(tl_env *e, const char *path);
    int (*remove)(tl_env *e, const char *path);
    /* Atomic rename (replaces to). */
    int (*rename)(tl_env *e, const char *from, const char *to);
    /* Hard link: `to` (which must not exist) names from's file. NULL in an
     * env that cannot: tl_env_link then returns TALUS_ENOTSUP. */
    int (*link)(tl_env *e, const char *from, const char *to);
    int (*truncate)(tl_env *e, const char *path, uint64_t size);
    /* mkdir; an existing directory is not an error. */
    int (*mkdir)(tl_env *e, const char *path);
    /* Remove an empty directory. */
    int (*rmdir)(tl_env *e, const char *path);
    /* fsync the directory (after create/rename/remove inside it). */
    int (*sync_dir)(tl_env *e, const char *path);
    /* Names in dir (no "." / ".."): *names malloc'd array of malloc'd strings. */
    int (*list_dir)(tl_env *e, const char *path, char ***names, size_t *count);
    /* Exclusive advisory lock (flock) on path, created if missing; *handle
     * is released by unlock. Held by another process: TALUS_EBUSY. */
    int (*lock)(tl_env *e, const char *path, void **handle);
    int (*unlock)(tl_env *e, void *handle);
    /* Free/total bytes of the filesystem holding path. */
    int (*disk_space)(tl_env *e, const char *path, uint64_t *free_bytes, uint64_t *total_bytes);

    uint64_t (*now_ns)(tl_env *e);  /* monotonic */
    uint64_t (*wall_ns)(tl_env *e); /* realtime */
    void (*sleep_us)(tl_env *e, uint64_t us);
} tl_env_ops;

struct tl_env {
    const tl_env_ops *ops;
};

/* The process-wide POSIX env (never freed). */
tl_env *tl_env_posix(void);

/* Convenience dispatchers. */
static inline int tl_env_open_read(tl_env *e, const char *p, tl_file **o)
{
    return e->ops->open_read(e, p, o);
}
static inline int tl_env_open_write(tl_env *e, const char *p, tl_file **o)
{
    return e->ops->open_write(e, p, o);
}
static inline int tl_env_open_append(tl_env *e, const char *p, tl_file **o)
{
    return e->ops->open_append(e, p, o);
}
static inline int tl_file_pread(tl_file *f, void *b, size_t n, uint64_t off, size_t *got)
{
    return f->env->ops->pread(f, b, n, off, got);
}
static inline int tl_file_append(tl_file *f, const void *b, size_t n)
{
    return f->env->ops->append(f, b, n);
}
static inline int tl_file_sync(tl_file *f)
{
    return f->env->ops->sync(f);
}
static inline int tl_file_size(tl_file *f, uint64_t *o)
{
    return f->env->ops->size(f, o);
}
static inline int tl_file_close(tl_file *f)
{
    return f ? f->env->ops->close(f) : 0;
}
static inline int tl_env_file_size(tl_env *e, const char *p, uint64_t *o)
{
    return e->ops->file_size(e, p, o);
}
static inline int tl_env_exists(tl_env *e, const char *p)
{
    return e->ops->exists(e, p);
}
static inline int tl_env_remove(tl_env *e, const char *p)
{
    return e->ops->remove(e, p);
}
static inline int tl_env_rename(tl_env *e, const char *a, const char *b)
{
    return e->ops->rename(e, a, b);
}
static inline int tl_env_link(tl_env *e, const char *a, const char *b)
{
    return e->ops->link ? e->ops->link(e, a, b) : TALUS_ENOTSUP;
}
static inline int tl_env_truncate(tl_env *e, const char *p, uint64_t s)
{
    return e->ops->truncate(e, p, s);
}
static inline int tl_env_mkdir(tl_env *e, const char *p)
{
    return e->ops->mkdir(e, p);
}
static inline int tl_env_rmdir(tl_env *e, const char *p)
{
    return e->ops->rmdir(e, p);
}
static inline int tl_env_sync_dir(tl_env *e, const char *p)
{
    return e->ops->sync_dir(e, p);
}
static inline int tl_env_list_dir(tl_env *e, const char *p, char ***n, size_t *c)
{
    return e->ops->list_dir(e, p, n, c);
}
static inline int tl_env_lock(tl_env *e, const char *p, void **h)
{
    return e->ops->lock(e, p, h);
}
static inline int tl_env_unlock(tl_env *e, void *h)
{
    return e->ops->unlock(e, h);
}
static inline int tl_env_disk_space(tl_env *e, const char *p, uint64_t *f, uint64_t *t)
{
    return e->ops->disk_space(e, p, f, t);
}
static inline uint64_t tl_env_now_ns(tl_env *e)
{
    return e->ops->now_ns(e);
}
static inline uint64_t tl_env_wall_ns(tl_env *e)
{
    return e->ops->wall_ns(e);
}
static inline void tl_env_sleep_us(tl_env *e, uint64_t us)
{
    e->ops->sleep_us(e, us);
}

/* Free a list_dir result. */
void tl_env_free_names(char **names, size_t count);

/* Write a whole file atomically: write to path.tmp, sync, rename over
 * path, sync the directory. */
int tl_env_write_file_atomic(tl_env *e, const char *dir, const char *name, const void *data,
                             size_t n);
/* Read a whole (small) file into a malloc'd buffer. */
int tl_env_read_file(tl_env *e, const char *path, uint8_t **data, size_t *n);

/* ---- Fault-injecting env (tests) ------------------------------------- */

/* Wraps `base`. Counts operations by kind; a fault armed for kind K fires on
 * the Nth (1-based) operation of that kind from the time it is armed and
 * returns `err` (TALUS_EIO by default). */
typedef enum tl_fault_kind {
    TL_FAULT_WRITE = 0, /* append */
    TL_FAULT_SYNC = 1,  /* sync and sync_dir */
    TL_FAULT_RENAME = 2,
    TL_FAULT_OPEN = 3, /* open_write / open_append */
    TL_FAULT_READ = 4, /* pread */
    TL_FAULT_REMOVE = 5,
    TL_FAULT_KINDS
} tl_fault_kind;

typedef struct tl_fault_env tl_fault_env;

tl_fault_env *tl_fault_env_new(tl_env *base);
void tl_fault_env_free(tl_fault_env *f);
tl_env *tl_fault_env_env(tl_fault_env *f);
/* Fail the nth operation of `kind` from now on (n >= 1) with err; if sticky,
 * every later one of that kind fails too. */
void tl_fault_env_arm(tl_fault_env *f, tl_fault_kind kind, uint64_t nth, int err, bool sticky);
void tl_fault_env_disarm(tl_fault_env *f);
/* Operations of `kind` seen since creation. */
uint64_t tl_fault_env_count(tl_fault_env *f, tl_fault_kind kind);
/* The next write of `kind` TL_FAULT_WRITE writes only the first half of its
 * bytes and then fails (a short write). */
void tl_fault_env_short_write_next(tl_fault_env *f);
/* Simulate power loss: for every file written through this env, truncate
 * it to the length that was last synced (files never synced are removed
 * if they were created through this env), and undo renames/creates/removes
 * whose directory was not synced afterwards. Call with all files closed.
 * Tracking granularity is per file; document what is modelled. */
int tl_fault_env_drop_unsynced(tl_fault_env *f);

#endif
