/* log.c - leveled diagnostics on stderr. */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int log_level = -1;

static int current_level(void)
{
    int l = atomic_load_explicit(&log_level, memory_order_relaxed);
    if (l >= 0)
        return l;
    const char *s = getenv("TALUS_LOG");
    l = TL_LOG_WARN;
    if (s) {
        if (!strcmp(s, "error"))
            l = TL_LOG_ERROR;
        else if (!strcmp(s, "info"))
            l = TL_LOG_INFO;
        else if (!strcmp(s, "debug"))
            l = TL_LOG_DEBUG;
    }
    atomic_store_explicit(&log_level, l, memory_order_relaxed);
    return l;
}

void tl_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > current_level())
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "talus %s: %s\n", names[level & 3], line);
}
