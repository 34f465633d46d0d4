/*
 * env_common.c - env helpers built only on the tl_env operations, so they
 * work (and inject faults) the same way on every env.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/env.h"
#include "util/err.h"

void tl_env_free_names(char **names, size_t count)
{
    if (!names)
        return;
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* Joins dir and name; NULL on ENOMEM (message set). */
static char *path_join(const char *dir, const char *name, const char *suffix)
{
    size_t dl = strlen(dir), nl = strlen(name), sl = strlen(suffix);
    char *p = malloc(dl + 1 + nl + sl + 1);
    if (!p) {
        tl_err(TALUS_ENOMEM, "out of memory building a path in %s", dir);
        return NULL;
    }
    memcpy(p, dir, dl);
    size_t at = dl;
    if (dl && dir[dl - 1] != '/')
        p[at++] = '/';
    memcpy(p + at, name, nl);
    memcpy(p + at + nl, suffix, sl + 1);
    return p;
}

int tl_env_write_file_atomic(tl_env *e, const char *dir, const char *name, const void *data,
                             size_t n)
{
    int rc = 0;
    tl_file *f = NULL;
    bool tmp_exists = false;
    char *path = path_join(dir, name, "");
    /* The ".tmp" suffix keeps the temporary name apart from any real file
     * name the engine uses, and orphan cleanup recognises it. */
    char *tmp = path_join(dir, name, ".tmp");
    if (!path || !tmp)
        TRY_OUT(TALUS_ENOMEM);

    TRY_OUT(tl_env_open_write(e, tmp, &f));
    tmp_exists = true;
    if (n)
        TRY_OUT(tl_file_append(f, data, n));
    TRY_OUT(tl_file_sync(f));
    rc = tl_file_close(f);
    f = NULL;
    TRY_OUT(rc);
    TRY_OUT(tl_env_rename(e, tmp, path));
    tmp_exists = false;
    TRY_OUT(tl_env_sync_dir(e, dir));
out:
    if (rc < 0) {
        /* Keep the first error's message while cleaning up. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", tl_errmsg());
        if (f)
            tl_file_close(f);
        if (tmp_exists)
            tl_env_remove(e, tmp);
        tl_err(rc, "%s", msg);
    }
    free(path);
    free(tmp);
    return rc;
}

int tl_env_read_file(tl_env *e, const char *path, uint8_t **data, size_t *n)
{
    int rc = 0;
    tl_file *f = NULL;
    uint8_t *buf = NULL;
    uint64_t size = 0;
    size_t got = 0;

    *data = NULL;
    *n = 0;
    TRY_OUT(tl_env_open_read(e, path, &f));
    TRY_OUT(tl_file_size(f, &size));
    if (size > SIZE_MAX - 1)
        TRY_OUT(tl_err(TALUS_ENOMEM, "%s: file of %llu bytes is too large to read whole", path,
                       (unsigned long long)size));
    /* +1 so an empty file still gets a non-NULL buffer. */
    buf = malloc((size_t)size + 1);
    if (!buf)
        TRY_OUT(tl_err(TALUS_ENOMEM, "%s: out of memory reading %llu bytes", path,
                       (unsigned long long)size));
    while (got < size) {
        size_t r = 0;
        TRY_OUT(tl_file_pread(f, buf + got, (size_t)size - got, got, &r));
        if (r == 0)
            break; /* the file shrank under us: return what is there */
        got += r;
    }
    *data = buf;
    *n = got;
    buf = NULL;
out:
    if (f) {
        int crc = tl_file_close(f);
        if (rc == 0 && crc < 0) {
            rc = crc;
            free(*data);
            *data = NULL;
            *n = 0;
        }
    }
    free(buf);
    return rc;
}
