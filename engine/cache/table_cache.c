/*
 * table_cache.c - the table (descriptor) cache of cache.h: open table
 * readers of one directory, kept in an LRU cache keyed by file number, each
 * charged 1, so at most max_open stay open when nobody pins them.
 *
 * Two threads that miss on the same table at once both open it; the second
 * insert replaces the first, whose reader is freed when its pin is
 * released. That costs an extra open now and then, never a wrong answer.
 */
#include "cache/cache.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/coding.h"
#include "util/err.h"

struct tl_table_cache {
    tl_env *env;
    char *dir;
    tl_cache *cache; /* number -> tbl_reader* */
    tl_cache *block_cache;
};

tl_table_cache *tl_table_cache_new(tl_env *env, const char *dir, int max_open,
                                   tl_cache *block_cache)
{
    tl_table_cache *tc = calloc(1, sizeof(*tc));
    if (!tc)
        goto oom;
    tc->env = env;
    tc->block_cache = block_cache;
    tc->dir = strdup(dir);
    /* max_open <= 0: no limit (as RocksDB's max_open_files = -1). */
    tc->cache = tl_cache_new(max_open > 0 ? (size_t)max_open : SIZE_MAX);
    if (!tc->dir || !tc->cache) {
        free(tc->dir);
        tl_cache_free(tc->cache);
        free(tc);
        goto oom;
    }
    return tc;
oom:
    tl_err(TALUS_ENOMEM, "out of memory allocating a table cache");
    return NULL;
}

void tl_table_cache_free(tl_table_cache *tc)
{
    if (!tc)
        return;
    tl_cache_free(tc->cache);
    free(tc->dir);
    free(tc);
}

static void tc_delete_reader(const uint8_t *key, size_t klen, void *value)
{
    tbl_reader_free(value);
}

/* Open table `number` (not cached). */
static int tc_open(tl_table_cache *tc, uint64_t number, uint64_t size, tbl_reader **out)
{
    char name[PATH_MAX];
    tl_file *f = NULL;
    int rc;
    tbl_file_name(name, sizeof(name), tc->dir, number);
    rc = tl_env_open_read(tc->env, name, &f);
    if (rc == TALUS_ENOTFOUND) {
        /* A live table that is gone is an I/O error, never "key absent"
         * (ENOTFOUND is a lookup's answer). Keep the env's message. */
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", tl_errmsg());
        return tl_err(TALUS_EIO, "table file missing: %s", msg);
    }
    TRY_OUT(rc);
    if (size == 0) /* unknown to the caller: ask the file */
        TRY_OUT(tl_file_size(f, &size));
    TRY_OUT(tbl_reader_open(f, name, size, tc->block_cache, out));
    f = NULL; /* the reader owns it now */
out:
    tl_file_close(f);
    return rc;
}

int tl_table_cache_get(tl_table_cache *tc, uint64_t number, uint64_t size, tbl_reader **r,
                       tl_cache_handle **h)
{
    uint8_t key[8];
    tl_put_fixed64(key, number);
    tl_cache_handle *ch = tl_cache_lookup(tc->cache, key, sizeof(key));
    if (!ch) {
        tbl_reader *nr;
        TRY(tc_open(tc, number, size, &nr));
        ch = tl_cache_insert(tc->cache, key, sizeof(key), nr, 1, tc_delete_reader);
        if (!ch) {
            tbl_reader_free(nr);
            return TALUS_ENOMEM;
        }
    }
    *r = tl_cache_value(ch);
    *h = ch;
    return 0;
}

void tl_table_cache_release(tl_table_cache *tc, tl_cache_handle *h)
{
    tl_cache_release(tc->cache, h);
}

int tl_table_cache_lookup(tl_table_cache *tc, uint64_t number, uint64_t size, tl_slice ukey,
                          uint64_t read_seq, uint8_t *type, tl_buf *value, uint64_t *seq_out)
{
    tbl_reader *r;
    tl_cache_handle *h;
    TRY(tl_table_cache_get(tc, number, size, &r, &h));
    int rc = tbl_reader_get(r, ukey, read_seq, type, value, seq_out);
    tl_cache_release(tc->cache, h);
    return rc;
}

void tl_table_cache_evict(tl_table_cache *tc, uint64_t number)
{
    uint8_t key[8];
    tl_put_fixed64(key, number);
    tl_cache_erase(tc->cache, key, sizeof(key));
}

/* ---- Pinning iterator -------------------------------------------------- */

/* Forwards every call to the table's iterator and releases the pin on the
 * reader after that iterator is gone. */
typedef struct tc_iter {
    tl_iter base;
    tl_iter *inner;
    tl_table_cache *tc;
    tl_cache_handle *h;
} tc_iter;

#define TC_INNER(i) (((tc_iter *)(i))->inner)
#define TC_CINNER(i) (((const tc_iter *)(i))->inner)

static void tci_seek_first(tl_iter *i)
{
    tl_iter_seek_first(TC_INNER(i));
}

static void tci_seek_last(tl_iter *i)
{
    tl_iter_seek_last(TC_INNER(i));
}

static void tci_seek(tl_iter *i, tl_slice t)
{
    tl_iter_seek(TC_INNER(i), t);
}

static void tci_seek_for_prev(tl_iter *i, tl_slice t)
{
    tl_iter_seek_for_prev(TC_INNER(i), t);
}

static void tci_next(tl_iter *i)
{
    tl_iter_next(TC_INNER(i));
}

static void tci_prev(tl_iter *i)
{
    tl_iter_prev(TC_INNER(i));
}

static bool tci_valid(const tl_iter *i)
{
    return tl_iter_valid(TC_CINNER(i));
}

static tl_slice tci_key(const tl_iter *i)
{
    return tl_iter_key(TC_CINNER(i));
}

static tl_slice tci_value(const tl_iter *i)
{
    return tl_iter_value(TC_CINNER(i));
}

static int tci_status(const tl_iter *i)
{
    return tl_iter_status(TC_CINNER(i));
}

static void tci_destroy(tl_iter *i)
{
    tc_iter *ti = (tc_iter *)i;
    tl_iter_destroy(ti->inner);
    tl_cache_release(ti->tc->cache, ti->h);
    free(ti);
}

static const tl_iter_ops tc_iter_ops = {
    .seek_first = tci_seek_first,
    .seek_last = tci_seek_last,
    .seek = tci_seek,
    .seek_for_prev = tci_seek_for_prev,
    .next = tci_next,
    .prev = tci_prev,
    .valid = tci_valid,
    .key = tci_key,
    .value = tci_value,
    .status = tci_status,
    .destroy = tci_destroy,
};

tl_iter *tl_table_cache_iter(tl_table_cache *tc, uint64_t number, uint64_t size, bool fill_cache)
{
    tbl_reader *r;
    tl_cache_handle *h;
    int rc = tl_table_cache_get(tc, number, size, &r, &h);
    if (rc < 0)
        return tl_iter_empty(rc); /* the message is already set */
    tc_iter *ti = malloc(sizeof(*ti));
    tl_iter *inner = ti ? tbl_reader_iter(r, fill_cache) : NULL;
    if (!inner) {
        free(ti);
        tl_cache_release(tc->cache, h);
        tl_err(TALUS_ENOMEM, "out of memory creating an iterator over table %llu",
               (unsigned long long)number);
        return NULL;
    }
    ti->base.ops = &tc_iter_ops;
    ti->inner = inner;
    ti->tc = tc;
    ti->h = h;
    return &ti->base;
}
