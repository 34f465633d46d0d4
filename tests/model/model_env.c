/*
 * model_env.c - the POSIX env with fsync/fdatasync turned into no-ops, for
 * model_test (like `eatmydata`).
 *
 * model_test crashes the process in simulation (db_crash_close): the OS
 * keeps everything written, so syncs change nothing it can observe, and
 * they cost milliseconds each (pins, flushes and `sync` batches would
 * otherwise take most of the CI budget). Every write, rename and remove
 * goes to the real filesystem unchanged. Power loss is the business of
 * tests/crash (powerloss_test); `model_test --real-sync` runs with the
 * plain POSIX env.
 */
#include <stdlib.h>

#include "model_run.h"
#include "util/env.h"
#include "util/err.h"

typedef struct ns_file {
    tl_file base;
    tl_file *inner;
} ns_file;

static tl_env nosync_env;

static tl_env *posix(void)
{
    return tl_env_posix();
}

static int wrap(int rc, tl_file *inner, tl_file **out)
{
    *out = NULL;
    if (rc < 0)
        return rc;
    ns_file *f = malloc(sizeof *f);
    if (f == NULL) {
        tl_file_close(inner);
        return tl_err(TALUS_ENOMEM, "out of memory opening a file");
    }
    f->base.env = &nosync_env;
    f->inner = inner;
    *out = &f->base;
    return 0;
}

static tl_file *inner(tl_file *f)
{
    return ((ns_file *)f)->inner;
}

static int ns_open_read(tl_env *e, const char *path, tl_file **out)
{
    tl_file *f = NULL;
    int rc = tl_env_open_read(posix(), path, &f);
    return wrap(rc, f, out);
}

static int ns_open_write(tl_env *e, const char *path, tl_file **out)
{
    tl_file *f = NULL;
    int rc = tl_env_open_write(posix(), path, &f);
    return wrap(rc, f, out);
}

static int ns_open_append(tl_env *e, const char *path, tl_file **out)
{
    tl_file *f = NULL;
    int rc = tl_env_open_append(posix(), path, &f);
    return wrap(rc, f, out);
}

static int ns_pread(tl_file *f, void *buf, size_t n, uint64_t off, size_t *got)
{
    return tl_file_pread(inner(f), buf, n, off, got);
}

static int ns_append(tl_file *f, const void *buf, size_t n)
{
    return tl_file_append(inner(f), buf, n);
}

static int ns_sync(tl_file *f)
{
    return 0;
}

static int ns_size(tl_file *f, uint64_t *out)
{
    return tl_file_size(inner(f), out);
}

static int ns_close(tl_file *f)
{
    int rc = tl_file_close(inner(f));
    free(f);
    return rc;
}

static int ns_file_size(tl_env *e, const char *path, uint64_t *out)
{
    return tl_env_file_size(posix(), path, out);
}

static int ns_exists(tl_env *e, const char *path)
{
    return tl_env_exists(posix(), path);
}

static int ns_remove(tl_env *e, const char *path)
{
    return tl_env_remove(posix(), path);
}

static int ns_rename(tl_env *e, const char *from, const char *to)
{
    return tl_env_rename(posix(), from, to);
}

static int ns_truncate(tl_env *e, const char *path, uint64_t size)
{
    return tl_env_truncate(posix(), path, size);
}

static int ns_mkdir(tl_env *e, const char *path)
{
    return tl_env_mkdir(posix(), path);
}

static int ns_rmdir(tl_env *e, const char *path)
{
    return tl_env_rmdir(posix(), path);
}

static int ns_sync_dir(tl_env *e, const char *path)
{
    return 0;
}

static int ns_list_dir(tl_env *e, const char *path, char ***names, size_t *count)
{
    return tl_env_list_dir(posix(), path, names, count);
}

static int ns_lock(tl_env *e, const char *path, void **handle)
{
    return tl_env_lock(posix(), path, handle);
}

static int ns_unlock(tl_env *e, void *handle)
{
    return tl_env_unlock(posix(), handle);
}

static int ns_disk_space(tl_env *e, const char *path, uint64_t *fr, uint64_t *tot)
{
    return tl_env_disk_space(posix(), path, fr, tot);
}

static uint64_t ns_now_ns(tl_env *e)
{
    return tl_env_now_ns(posix());
}

static uint64_t ns_wall_ns(tl_env *e)
{
    return tl_env_wall_ns(posix());
}

static void ns_sleep_us(tl_env *e, uint64_t us)
{
    tl_env_sleep_us(posix(), us);
}

static int ns_link(tl_env *e, const char *from, const char *to)
{
    return tl_env_link(posix(), from, to);
}

static const tl_env_ops nosync_ops = {
    .open_read = ns_open_read,
    .open_write = ns_open_write,
    .open_append = ns_open_append,
    .pread = ns_pread,
    .append = ns_append,
    .sync = ns_sync,
    .size = ns_size,
    .close = ns_close,
    .file_size = ns_file_size,
    .exists = ns_exists,
    .remove = ns_remove,
    .rename = ns_rename,
    .link = ns_link,
    .truncate = ns_truncate,
    .mkdir = ns_mkdir,
    .rmdir = ns_rmdir,
    .sync_dir = ns_sync_dir,
    .list_dir = ns_list_dir,
    .lock = ns_lock,
    .unlock = ns_unlock,
    .disk_space = ns_disk_space,
    .now_ns = ns_now_ns,
    .wall_ns = ns_wall_ns,
    .sleep_us = ns_sleep_us,
};

static tl_env nosync_env = {&nosync_ops};

struct tl_env *mr_nosync_env(void)
{
    return &nosync_env;
}
