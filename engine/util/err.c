/* err.c - per-thread error messages and code names. */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char tl_msg[512];

int tl_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    return code;
}

int tl_err_errno(int errnum, const char *what, ...)
{
    char head[384];
    va_list ap;
    va_start(ap, what);
    vsnprintf(head, sizeof head, what, ap);
    va_end(ap);
    snprintf(tl_msg, sizeof tl_msg, "%s: %s", head, strerror(errnum));
    switch (errnum) {
    case ENOSPC:
    case EDQUOT:
        return TALUS_ENOSPC;
    case ENOMEM:
        return TALUS_ENOMEM;
    case ENOENT:
        return TALUS_ENOTFOUND;
    case EEXIST:
        return TALUS_EEXIST;
    case EROFS:
    case EACCES:
    case EPERM:
        return TALUS_EREADONLY;
    case EWOULDBLOCK:
        return TALUS_EBUSY;
    default:
        return TALUS_EIO;
    }
}

const char *tl_errmsg(void)
{
    return tl_msg;
}

void tl_err_clear(void)
{
    tl_msg[0] = '\0';
}

const char *talus_errmsg(void)
{
    return tl_msg;
}

const char *talus_strerror(int code)
{
    switch (code) {
    case TALUS_OK:
        return "success";
    case TALUS_ENOTFOUND:
        return "not found";
    case TALUS_EINVAL:
        return "invalid argument";
    case TALUS_ETOOBIG:
        return "key or value too large";
    case TALUS_ECORRUPT:
        return "corruption";
    case TALUS_EIO:
        return "I/O error";
    case TALUS_ENOSPC:
        return "no space left on device";
    case TALUS_ENOMEM:
        return "out of memory";
    case TALUS_EVERSION:
        return "unsupported format version";
    case TALUS_EBUSY:
        return "database is locked by another process";
    case TALUS_EEXIST:
        return "already exists";
    case TALUS_EREADONLY:
        return "read-only (error state or read-only open)";
    case TALUS_ESNAPSHOT:
        return "snapshot not available";
    case TALUS_ESEQNO:
        return "sequence number not increasing";
    case TALUS_ENOTSUP:
        return "not supported";
    case TALUS_ECLOSED:
        return "handle closed";
    default:
        return "unknown error";
    }
}
