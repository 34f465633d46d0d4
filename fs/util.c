/*
 * util.c - the small things every file of fs/ uses: growable byte buffers,
 * the clock, logging (stderr in the foreground, syslog once daemonized) and
 * the one place where engine error codes become errno values.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "fs.h"

static int log_foreground = 1;
static int log_debug;

int tfs_buf_add(struct tfs_buf *b, const void *d, size_t n)
{
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2)
                return -ENOMEM;
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
    return 0;
}

int tfs_buf_set(struct tfs_buf *b, const void *d, size_t n)
{
    b->n = 0;
    return tfs_buf_add(b, d, n);
}

void tfs_buf_free(struct tfs_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

int64_t tfs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void tfs_log_init(int foreground, int debug)
{
    log_foreground = foreground;
    log_debug = debug;
    if (!foreground)
        openlog("talusfs", LOG_PID, LOG_DAEMON);
}

void tfs_log(int prio, const char *fmt, ...)
{
    if (prio == LOG_DEBUG && !log_debug)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (log_foreground) {
        char line[1024];
        vsnprintf(line, sizeof line, fmt, ap);
        fprintf(stderr, "talusfs: %s\n", line);
    } else {
        vsyslog(prio, fmt, ap);
    }
    va_end(ap);
}

int tfs_errno(int rc, const char *what)
{
    switch (rc) {
    case TALUS_OK:
        return 0;
    case TALUS_ENOTFOUND:
        return -ENOENT;
    case TALUS_EINVAL:
        return -EINVAL;
    case TALUS_ETOOBIG:
        return -EFBIG; /* callers that pass keys check lengths first */
    case TALUS_ENOSPC:
        return -ENOSPC;
    case TALUS_ENOMEM:
        return -ENOMEM;
    case TALUS_EBUSY:
        return -EBUSY;
    case TALUS_EEXIST:
        return -EEXIST;
    case TALUS_ESNAPSHOT:
        return -EINVAL;
    case TALUS_ENOTSUP:
        return -EOPNOTSUPP;
    case TALUS_EREADONLY:
        tfs_log(LOG_ERR, "%s: database is read-only: %s", what, talus_errmsg());
        return -EROFS;
    default: /* ECORRUPT, EIO, EVERSION, ESEQNO, ECLOSED: a person must look */
        tfs_log(LOG_ERR, "%s: %s: %s", what, talus_strerror(rc), talus_errmsg());
        return -EIO;
    }
}
