/*
 * api.c - the read/write surface of talus.h: single writes, batches,
 * gets, snapshots, iterators, maintenance and statistics.
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "util/err.h"
#include "util/ikey.h"

int db_check_key(const void *key, size_t klen)
{
    if (klen == 0 || !key)
        return tl_err(TALUS_EINVAL, "keys must be 1 to %u bytes; got an empty key", TALUS_MAX_KEY);
    if (klen > TALUS_MAX_KEY)
        return tl_err(TALUS_ETOOBIG, "key of %zu bytes is over the limit of %u bytes", klen,
                      TALUS_MAX_KEY);
    return 0;
}

int db_check_value(size_t vlen)
{
    if ((uint64_t)vlen > TALUS_MAX_VALUE)
        return tl_err(TALUS_ETOOBIG, "value of %zu bytes is over the limit of %u bytes", vlen,
                      TALUS_MAX_VALUE);
    return 0;
}

int db_check_tree(const talus_tree *t)
{
    if (!t)
        return tl_err(TALUS_EINVAL, "NULL tree handle");
    if (t->dropped || !t->tr)
        return tl_err(TALUS_ECLOSED, "tree \"%s\" was dropped", t->name);
    return 0;
}

int db_check_writable(talus_db *db)
{
    if (db->opts.read_only)
        return tl_err(TALUS_EREADONLY, "database %s is opened read-only", db->path);
    return 0;
}

int talus_put(talus_tree *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (!t)
        return tl_err(TALUS_EINVAL, "NULL tree handle");
    if (!val && vlen)
        return tl_err(TALUS_EINVAL, "NULL value with non-zero length");
    return db_write_one(t->db, t, TL_TYPE_VALUE, key, klen, val, vlen);
}

int talus_delete(talus_tree *t, const void *key, size_t klen)
{
    if (!t)
        return tl_err(TALUS_EINVAL, "NULL tree handle");
    return db_write_one(t->db, t, TL_TYPE_TOMBSTONE, key, klen, NULL, 0);
}

int talus_weak_delete(talus_tree *t, const void *key, size_t klen)
{
    if (!t)
        return tl_err(TALUS_EINVAL, "NULL tree handle");
    return db_write_one(t->db, t, TL_TYPE_WEAK_TOMBSTONE, key, klen, NULL, 0);
}

/* ---- Reads ------------------------------------------------------------- */

uint64_t talus_seqno(talus_db *db)
{
    return atomic_load_explicit(&db->published_seq, memory_order_acquire);
}

static int get_at(talus_tree *t, uint64_t seq, const void *key, size_t klen, void **val,
                  size_t *vlen)
{
    TRY(db_check_tree(t));
    TRY(db_check_key(key, klen));
    tl_buf v = {0};
    int rc = tr_get(t->tr, tl_slice_make(key, klen), seq, &v);
    if (rc < 0) {
        tl_buf_free(&v);
        return rc;
    }
    if (rc == 0) {
        tl_buf_free(&v);
        return TALUS_ENOTFOUND;
    }
    if (val) {
        if (!v.data) {
            v.data = malloc(1);
            if (!v.data)
                return tl_err(TALUS_ENOMEM, "out of memory reading a value");
        }
        *val = v.data;
    } else {
        tl_buf_free(&v);
    }
    if (vlen)
        *vlen = v.len;
    return 0;
}

int talus_get(talus_tree *t, const talus_snapshot *snap, const void *key, size_t klen, void **val,
              size_t *vlen)
{
    if (!t)
        return tl_err(TALUS_EINVAL, "NULL tree handle");
    uint64_t seq = snap ? snap->seq : talus_seqno(t->db);
    return get_at(t, seq, key, klen, val, vlen);
}

int talus_get_at(talus_tree *t, uint64_t seqno, const void *key, size_t klen, void **val,
                 size_t *vlen)
{
    if (!t)
        return tl_err(TALUS_EINVAL, "NULL tree handle");
    TRY(db_check_readable_seq(t->db, seqno));
    return get_at(t, seqno, key, klen, val, vlen);
}

int talus_contains(talus_tree *t, const talus_snapshot *snap, const void *key, size_t klen)
{
    int rc = talus_get(t, snap, key, klen, NULL, NULL);
    if (rc == 0)
        return 1;
    return rc == TALUS_ENOTFOUND ? 0 : rc;
}

/* ---- Maintenance and statistics ---------------------------------------- */

int talus_flush(talus_tree *t)
{
    TRY(db_check_tree(t));
    if (t->db->opts.read_only)
        return 0;
    pthread_mutex_lock(&t->db->write_mu);
    int rc = tr_seal(t->tr);
    pthread_mutex_unlock(&t->db->write_mu);
    if (rc < 0)
        return rc;
    return tr_wait_flushed(t->tr);
}

int talus_compact_range(talus_tree *t, const void *lo, size_t lolen, const void *hi, size_t hilen)
{
    TRY(db_check_tree(t));
    TRY(db_check_writable(t->db));
    TRY(talus_flush(t));
    tl_slice l = tl_slice_make(lo, lolen), h = tl_slice_make(hi, hilen);
    return tr_compact_range(t->tr, lo ? &l : NULL, hi ? &h : NULL);
}

uint64_t talus_approximate_count(talus_tree *t)
{
    return db_check_tree(t) < 0 ? 0 : tr_approximate_count(t->tr);
}

uint64_t talus_disk_space(talus_tree *t)
{
    return db_check_tree(t) < 0 ? 0 : tr_disk_space(t->tr);
}

int talus_tree_stats_get(talus_tree *t, talus_tree_stats *out)
{
    TRY(db_check_tree(t));
    TRY(tr_stats(t->tr, out));
    out->last_seqno = talus_seqno(t->db);
    return 0;
}
