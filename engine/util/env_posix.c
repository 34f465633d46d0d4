/*
 * env_posix.c - the tl_env for real files: plain POSIX calls, close-on-exec
 * descriptors, EINTR and short transfers retried, every error turned into a
 * TALUS_E* code with a message naming the path.
 *
 * Appends are not buffered here: table and journal writers buffer
 * themselves and hand over large chunks, so one write() loop per append is
 * the cheapest path to the kernel.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "util/env.h"
#include "util/err.h"

typedef struct posix_file {
    tl_file base;
    int fd;
    char path[]; /* for messages */
} posix_file;

typedef struct posix_lock {
    int fd;
    char path[];
} posix_lock;

static tl_env posix_env;

static int posix_open(const char *path, int flags, tl_file **out)
{
    *out = NULL;
    size_t pl = strlen(path);
    posix_file *f = malloc(sizeof *f + pl + 1);
    if (!f)
        return tl_err(TALUS_ENOMEM, "open %s: out of memory", path);
    int fd;
    do {
        fd = open(path, flags | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int e = errno;
        free(f);
        return tl_err_errno(e, "open %s", path);
    }
    f->base.env = &posix_env;
    f->fd = fd;
    memcpy(f->path, path, pl + 1);
    *out = &f->base;
    return 0;
}

static int p_open_read(tl_env *e, const char *path, tl_file **out)
{
    return posix_open(path, O_RDONLY, out);
}

/* Writable files are opened read-write so a writer can read back what it
 * wrote (e.g. to verify a table) through the same handle. */
static int p_open_write(tl_env *e, const char *path, tl_file **out)
{
    return posix_open(path, O_RDWR | O_CREAT | O_TRUNC, out);
}

static int p_open_append(tl_env *e, const char *path, tl_file **out)
{
    return posix_open(path, O_RDWR | O_CREAT | O_APPEND, out);
}

static int p_pread(tl_file *file, void *buf, size_t n, uint64_t off, size_t *got)
{
    posix_file *f = (posix_file *)file;
    size_t done = 0;
    *got = 0;
    while (done < n) {
        ssize_t r = pread(f->fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return tl_err_errno(errno, "read %s at offset %llu", f->path,
                                (unsigned long long)(off + done));
        }
        if (r == 0)
            break; /* end of file */
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

static int p_append(tl_file *file, const void *buf, size_t n)
{
    posix_file *f = (posix_file *)file;
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return tl_err_errno(errno, "write %s (%zu bytes)", f->path, n);
        }
        if (w == 0)
            return tl_err(TALUS_EIO, "write %s: no progress writing %zu bytes", f->path, n);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int p_sync(tl_file *file)
{
    posix_file *f = (posix_file *)file;
    int r;
    do {
        r = fdatasync(f->fd);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return tl_err_errno(errno, "fdatasync %s", f->path);
    return 0;
}

static int p_size(tl_file *file, uint64_t *out)
{
    posix_file *f = (posix_file *)file;
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return tl_err_errno(errno, "stat %s", f->path);
    *out = (uint64_t)st.st_size;
    return 0;
}

static int p_close(tl_file *file)
{
    posix_file *f = (posix_file *)file;
    int rc = 0;
    /* On Linux the descriptor is gone even when close fails: never retry. */
    if (close(f->fd) < 0 && errno != EINTR)
        rc = tl_err_errno(errno, "close %s", f->path);
    free(f);
    return rc;
}

static int p_file_size(tl_env *e, const char *path, uint64_t *out)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return tl_err_errno(errno, "stat %s", path);
    *out = (uint64_t)st.st_size;
    return 0;
}

static int p_exists(tl_env *e, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    if (errno == ENOENT || errno == ENOTDIR)
        return 0;
    return tl_err_errno(errno, "stat %s", path);
}

static int p_remove(tl_env *e, const char *path)
{
    if (unlink(path) < 0)
        return tl_err_errno(errno, "remove %s", path);
    return 0;
}

static int p_rename(tl_env *e, const char *from, const char *to)
{
    if (rename(from, to) < 0)
        return tl_err_errno(errno, "rename %s to %s", from, to);
    return 0;
}

static int p_link(tl_env *e, const char *from, const char *to)
{
    if (link(from, to) < 0)
        return tl_err_errno(errno, "link %s to %s", from, to);
    return 0;
}

static int p_truncate(tl_env *e, const char *path, uint64_t size)
{
    int r;
    do {
        r = truncate(path, (off_t)size);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return tl_err_errno(errno, "truncate %s to %llu bytes", path, (unsigned long long)size);
    return 0;
}

static int p_mkdir(tl_env *e, const char *path)
{
    if (mkdir(path, 0755) == 0)
        return 0;
    int err = errno;
    struct stat st;
    if (err == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (err == EEXIST)
        return tl_err(TALUS_EEXIST, "mkdir %s: exists and is not a directory", path);
    return tl_err_errno(err, "mkdir %s", path);
}

static int p_rmdir(tl_env *e, const char *path)
{
    if (rmdir(path) < 0)
        return tl_err_errno(errno, "rmdir %s", path);
    return 0;
}

static int p_sync_dir(tl_env *e, const char *path)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return tl_err_errno(errno, "open directory %s", path);
    int r;
    do {
        r = fsync(fd);
    } while (r < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    if (r < 0)
        return tl_err_errno(err, "fsync directory %s", path);
    return 0;
}

static int p_list_dir(tl_env *e, const char *path, char ***names_out, size_t *count_out)
{
    int rc = 0;
    char **names = NULL;
    size_t count = 0, cap = 0;
    *names_out = NULL;
    *count_out = 0;
    DIR *d = opendir(path);
    if (!d)
        return tl_err_errno(errno, "open directory %s", path);
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                TRY_OUT(tl_err_errno(errno, "read directory %s", path));
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn)
                TRY_OUT(tl_err(TALUS_ENOMEM, "list %s: out of memory", path));
            names = nn;
            cap = ncap;
        }
        names[count] = strdup(de->d_name);
        if (!names[count])
            TRY_OUT(tl_err(TALUS_ENOMEM, "list %s: out of memory", path));
        count++;
    }
    /* Never NULL, even for an empty directory: callers may qsort it. */
    if (!names && !(names = malloc(sizeof *names)))
        TRY_OUT(tl_err(TALUS_ENOMEM, "list %s: out of memory", path));
    *names_out = names;
    *count_out = count;
    names = NULL;
out:
    closedir(d);
    if (names)
        tl_env_free_names(names, count);
    return rc;
}

static int p_lock(tl_env *e, const char *path, void **handle)
{
    *handle = NULL;
    size_t pl = strlen(path);
    posix_lock *l = malloc(sizeof *l + pl + 1);
    if (!l)
        return tl_err(TALUS_ENOMEM, "lock %s: out of memory", path);
    memcpy(l->path, path, pl + 1);
    do {
        l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    } while (l->fd < 0 && errno == EINTR);
    if (l->fd < 0) {
        int err = errno;
        free(l);
        return tl_err_errno(err, "open lock file %s", path);
    }
    /* flock locks belong to the open file description, so a second open in
     * this same process conflicts too, just like another process. */
    int r;
    do {
        r = flock(l->fd, LOCK_EX | LOCK_NB);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        int err = errno;
        close(l->fd);
        free(l);
        if (err == EWOULDBLOCK)
            return tl_err(TALUS_EBUSY,
                          "lock %s: the database is in use by another process (or another open "
                          "handle in this one)",
                          path);
        return tl_err_errno(err, "lock %s", path);
    }
    *handle = l;
    return 0;
}

static int p_unlock(tl_env *e, void *handle)
{
    posix_lock *l = handle;
    if (!l)
        return 0;
    int rc = 0;
    if (flock(l->fd, LOCK_UN) < 0)
        rc = tl_err_errno(errno, "unlock %s", l->path);
    close(l->fd);
    free(l);
    return rc;
}

static int p_disk_space(tl_env *e, const char *path, uint64_t *free_bytes, uint64_t *total_bytes)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return tl_err_errno(errno, "statvfs %s", path);
    uint64_t frsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    *free_bytes = (uint64_t)sv.f_bavail * frsize;
    *total_bytes = (uint64_t)sv.f_blocks * frsize;
    return 0;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t p_now_ns(tl_env *e)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static uint64_t p_wall_ns(tl_env *e)
{
    return clock_ns(CLOCK_REALTIME);
}

static void p_sleep_us(tl_env *e, uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static const tl_env_ops posix_ops = {
    .open_read = p_open_read,
    .open_write = p_open_write,
    .open_append = p_open_append,
    .pread = p_pread,
    .append = p_append,
    .sync = p_sync,
    .size = p_size,
    .close = p_close,
    .file_size = p_file_size,
    .exists = p_exists,
    .remove = p_remove,
    .rename = p_rename,
    .link = p_link,
    .truncate = p_truncate,
    .mkdir = p_mkdir,
    .rmdir = p_rmdir,
    .sync_dir = p_sync_dir,
    .list_dir = p_list_dir,
    .lock = p_lock,
    .unlock = p_unlock,
    .disk_space = p_disk_space,
    .now_ns = p_now_ns,
    .wall_ns = p_wall_ns,
    .sleep_us = p_sleep_us,
};

static tl_env posix_env = {&posix_ops};

tl_env *tl_env_posix(void)
{
    return &posix_env;
}
