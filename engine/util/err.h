/*
 * err.h - error codes (the TALUS_E* enum of talus.h) with a per-thread
 * message, and the two macros every function uses to keep error paths short.
 *
 *   int rc = ...;  TRY(rc)            return rc if it is an error
 *   return tl_err(TALUS_ECORRUPT, "table %s: bad block at %llu", ...);
 */
#ifndef TL_ERR_H
#define TL_ERR_H

#include "talus.h"

/* Set the calling thread's message (printf-style) and return code. */
int tl_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Map an errno value to a TALUS_E* code (ENOSPC -> ENOSPC, ENOMEM, ...,
 * everything else EIO) and set the message to "<what>: <strerror>". */
int tl_err_errno(int errnum, const char *what, ...) __attribute__((format(printf, 2, 3)));
/* The calling thread's message. */
const char *tl_errmsg(void);
void tl_err_clear(void);

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int tl_try_rc_ = (expr);                                                                   \
        if (tl_try_rc_ < 0)                                                                        \
            return tl_try_rc_;                                                                     \
    } while (0)

/* Jump to a local `out:` label with rc set (one cleanup label per function). */
#define TRY_OUT(expr)                                                                              \
    do {                                                                                           \
        rc = (expr);                                                                               \
        if (rc < 0)                                                                                \
            goto out;                                                                              \
    } while (0)

#define TL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define TL_LIKELY(x) __builtin_expect(!!(x), 1)

#endif
