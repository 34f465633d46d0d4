/*
 * corrupt_fs.c - file helpers of the corruption test (corrupt_fs.h).
 */
#include "corrupt_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* a + "/" + b into buf; -1 (ENAMETOOLONG) if it does not fit. */
static int join(char *buf, size_t cap, const char *a, const char *b)
{
    int n = snprintf(buf, cap, "%s%s%s", a, a[0] && b[0] ? "/" : "", b);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

struct list_ctx {
    struct cf_file *v;
    size_t n, cap;
};

static int list_dir(const char *root, const char *rel, struct list_ctx *c)
{
    char path[PATH_MAX];
    if (join(path, sizeof path, root, rel) != 0)
        return -1;
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX], full[PATH_MAX];
        struct stat st;
        if (join(sub, sizeof sub, rel, e->d_name) != 0 || join(full, sizeof full, root, sub) != 0 ||
            lstat(full, &st) != 0) {
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            rc = list_dir(root, sub, c);
        } else if (S_ISREG(st.st_mode)) {
            if (c->n == c->cap) {
                size_t ncap = c->cap ? c->cap * 2 : 32;
                struct cf_file *nv = realloc(c->v, ncap * sizeof *nv);
                if (nv == NULL) {
                    rc = -1;
                    break;
                }
                c->v = nv;
                c->cap = ncap;
            }
            c->v[c->n].rel = strdup(sub);
            c->v[c->n].size = st.st_size;
            if (c->v[c->n].rel == NULL)
                rc = -1;
            else
                c->n++;
        }
    }
    closedir(d);
    return rc;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct cf_file *)a)->rel, ((const struct cf_file *)b)->rel);
}

int cf_list(const char *root, struct cf_file **files, size_t *n)
{
    struct list_ctx c = {0};
    if (list_dir(root, "", &c) != 0) {
        cf_list_free(c.v, c.n);
        return -1;
    }
    qsort(c.v, c.n, sizeof *c.v, cmp_file);
    *files = c.v;
    *n = c.n;
    return 0;
}

void cf_list_free(struct cf_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i].rel);
    free(files);
}

static int copy_file(const char *src, const char *dst, mode_t mode)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    if (in < 0)
        return -1;
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
    if (out < 0)
        goto done;
    char buf[65536];
    for (;;) {
        ssize_t got = read(in, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto done;
        if (got == 0)
            break;
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(out, buf + off, (size_t)(got - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                goto done;
            off += w;
        }
    }
    rc = 0;
done:
    close(in);
    if (out >= 0 && close(out) != 0)
        rc = -1;
    return rc;
}

int cf_copy_tree(const char *src, const char *dst)
{
    struct stat st;
    if (stat(src, &st) != 0 || mkdir(dst, st.st_mode & 0777) != 0)
        return -1;
    DIR *d = opendir(src);
    if (d == NULL)
        return -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char s[PATH_MAX], t[PATH_MAX];
        if (join(s, sizeof s, src, e->d_name) != 0 || join(t, sizeof t, dst, e->d_name) != 0 ||
            lstat(s, &st) != 0)
            rc = -1;
        else if (S_ISDIR(st.st_mode))
            rc = cf_copy_tree(s, t);
        else if (S_ISREG(st.st_mode))
            rc = copy_file(s, t, st.st_mode);
    }
    closedir(d);
    return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *f)
{
    return remove(path);
}

int cf_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int cf_flip(const char *path, off_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    uint8_t b;
    int rc = -1;
    if (pread(fd, &b, 1, off) == 1) {
        b ^= mask;
        if (pwrite(fd, &b, 1, off) == 1)
            rc = 0;
    }
    close(fd);
    return rc;
}
