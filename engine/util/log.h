/*
 * log.h - diagnostic logging to stderr (and later to a LOG file).
 * Level from TALUS_LOG=error|warn|info|debug (default warn).
 */
#ifndef TL_LOG_H
#define TL_LOG_H

enum tl_log_level { TL_LOG_ERROR = 0, TL_LOG_WARN = 1, TL_LOG_INFO = 2, TL_LOG_DEBUG = 3 };

void tl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define TL_LOG_ERROR(...) tl_log(TL_LOG_ERROR, __VA_ARGS__)
#define TL_LOG_WARN(...) tl_log(TL_LOG_WARN, __VA_ARGS__)
#define TL_LOG_INFO(...) tl_log(TL_LOG_INFO, __VA_ARGS__)
#define TL_LOG_DEBUG(...) tl_log(TL_LOG_DEBUG, __VA_ARGS__)

#endif
