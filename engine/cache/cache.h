/*
 * cache.h - a sharded LRU cache with reference-counted handles (used for
 * data/index blocks), and the table (descriptor) cache built on it.
 *
 * An entry stays alive while a handle to it is held, even after it was
 * evicted or erased; its deleter runs when the last handle is released and
 * it is no longer in the cache. Thread-safe.
 */
#ifndef TL_CACHE_H
#define TL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "table/table.h"
#include "util/env.h"
#include "util/iter.h"
#include "util/slice.h"

typedef struct tl_cache tl_cache;
typedef struct tl_cache_handle tl_cache_handle;
typedef void (*tl_cache_deleter)(const uint8_t *key, size_t klen, void *value);

/* capacity in bytes of charge; NULL on ENOMEM. */
tl_cache *tl_cache_new(size_t capacity);
void tl_cache_free(tl_cache *c);
/* Insert (replacing an entry with the same key) and return a handle to the
 * new entry; NULL on ENOMEM (then the deleter has NOT been called and the
 * caller still owns value). The key is copied. */
tl_cache_handle *tl_cache_insert(tl_cache *c, const uint8_t *key, size_t klen, void *value,
                                 size_t charge, tl_cache_deleter deleter);
/* NULL if absent. */
tl_cache_handle *tl_cache_lookup(tl_cache *c, const uint8_t *key, size_t klen);
void tl_cache_release(tl_cache *c, tl_cache_handle *h);
void *tl_cache_value(const tl_cache_handle *h);
void tl_cache_erase(tl_cache *c, const uint8_t *key, size_t klen);
/* A fresh id for a client to prefix its keys with (unique per cache). */
uint64_t tl_cache_new_id(tl_cache *c);
size_t tl_cache_usage(const tl_cache *c);
size_t tl_cache_capacity(const tl_cache *c);
uint64_t tl_cache_hits(const tl_cache *c);
uint64_t tl_cache_misses(const tl_cache *c);

/* ---- Table (descriptor) cache -----------------------------------------
 * Keeps up to max_open table readers (open fd + index + filter) of the
 * tables in one directory, keyed by file number. */
typedef struct tl_table_cache tl_table_cache;

/* dir is copied; block_cache may be NULL (no block caching). */
tl_table_cache *tl_table_cache_new(tl_env *env, const char *dir, int max_open,
                                   tl_cache *block_cache);
void tl_table_cache_free(tl_table_cache *tc);
/* Pin the reader of table `number` (opening it if needed). Release with
 * tl_table_cache_release. Errors from opening are returned (ECORRUPT, EIO,
 * EVERSION ...) with the file name in the message. */
int tl_table_cache_get(tl_table_cache *tc, uint64_t number, uint64_t size, tbl_reader **r,
                       tl_cache_handle **h);
void tl_table_cache_release(tl_table_cache *tc, tl_cache_handle *h);
/* Point lookup in one table, as tbl_reader_get. */
int tl_table_cache_lookup(tl_table_cache *tc, uint64_t number, uint64_t size, tl_slice ukey,
                          uint64_t read_seq, uint8_t *type, tl_buf *value, uint64_t *seq_out);
/* Iterator over a table that keeps the reader pinned until destroyed.
 * Never NULL except on ENOMEM; an open error gives an empty iterator whose
 * status() is the error. */
tl_iter *tl_table_cache_iter(tl_table_cache *tc, uint64_t number, uint64_t size, bool fill_cache);
/* Drop a table from the cache (its file is being deleted). */
void tl_table_cache_evict(tl_table_cache *tc, uint64_t number);

#endif
