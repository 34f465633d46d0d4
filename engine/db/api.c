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
        return tl_err(TALUS_EINVAL, "keys must be 1 to %u bytes; got an empty key",
                      TALUS_MAX_KEY);
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

static int check_tree(const talus_tree *t)
{
    if (!t)
        return tl_err(TALUS_EINVAL, "NULL tree handle");
    if (t->dropped || !t->tr)
        return tl_err(TALUS_ECLOSED, "tree \"%s\" was dropped", t->name);
    return 0;
}

static int check_writable(talus_db *db)
{
    if (db->opts.read_only)
        return tl_err(TALUS_EREADONLY, "database %s is opened read-only", db->path);
    return 0;
}

int db_write_one(talus_db *db, talus_tree *t, uint8_t type, const void *key, size_t klen,
                 const void *val, size_t vlen)
{
    TRY(check_tree(t));
    TRY(check_writable(db));
    TRY(db_check_key(key, klen));
    TRY(db_check_value(vlen));
    pthread_mutex_lock(&db->write_mu);
    int rc = tr_make_room(t->tr);
    if (rc == 0) {
        uint64_t seq = atomic_load_explicit(&db->last_seq, memory_order_relaxed) + 1;
        rc = tr_apply(t->tr, seq, type, tl_slice_make(key, klen), tl_slice_make(val, vlen));
        if (rc == 0) {
            atomic_store_explicit(&db->last_seq, seq, memory_order_relaxed);
            atomic_store_explicit(&db->published_seq, seq, memory_order_release);
        }
    }
    pthread_mutex_unlock(&db->write_mu);
    return rc;
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

/* ---- Batches ----------------------------------------------------------- */

typedef struct batch_op {
    talus_tree *tree;
    uint8_t type;
    size_t key_off, klen, val_off, vlen; /* into the batch's byte buffer */
} batch_op;

struct talus_batch {
    batch_op *ops;
    size_t nops, cap;
    tl_buf bytes;
};

int talus_batch_new(talus_batch **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : tl_err(TALUS_ENOMEM, "out of memory creating a batch");
}

void talus_batch_free(talus_batch *b)
{
    if (!b)
        return;
    free(b->ops);
    tl_buf_free(&b->bytes);
    free(b);
}

void talus_batch_clear(talus_batch *b)
{
    b->nops = 0;
    tl_buf_clear(&b->bytes);
}

size_t talus_batch_count(const talus_batch *b)
{
    return b->nops;
}

static int batch_add(talus_batch *b, talus_tree *t, uint8_t type, const void *key, size_t klen,
                     const void *val, size_t vlen)
{
    if (!b)
        return tl_err(TALUS_EINVAL, "NULL batch");
    TRY(check_tree(t));
    TRY(db_check_key(key, klen));
    TRY(db_check_value(vlen));
    if (b->nops == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        batch_op *n = realloc(b->ops, cap * sizeof *n);
        if (!n)
            return tl_err(TALUS_ENOMEM, "out of memory growing a batch");
        b->ops = n;
        b->cap = cap;
    }
    batch_op *op = &b->ops[b->nops];
    op->tree = t;
    op->type = type;
    op->key_off = b->bytes.len;
    op->klen = klen;
    TRY(tl_buf_append(&b->bytes, key, klen));
    op->val_off = b->bytes.len;
    op->vlen = vlen;
    TRY(tl_buf_append(&b->bytes, val, vlen));
    b->nops++;
    return 0;
}

int talus_batch_put(talus_batch *b, talus_tree *t, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    if (!val && vlen)
        return tl_err(TALUS_EINVAL, "NULL value with non-zero length");
    return batch_add(b, t, TL_TYPE_VALUE, key, klen, val, vlen);
}

int talus_batch_delete(talus_batch *b, talus_tree *t, const void *key, size_t klen)
{
    return batch_add(b, t, TL_TYPE_TOMBSTONE, key, klen, NULL, 0);
}

int talus_batch_weak_delete(talus_batch *b, talus_tree *t, const void *key, size_t klen)
{
    return batch_add(b, t, TL_TYPE_WEAK_TOMBSTONE, key, klen, NULL, 0);
}

int talus_batch_commit(talus_db *db, talus_batch *b, int durability, uint64_t *seqno_out)
{
    if (!db || !b)
        return tl_err(TALUS_EINVAL, "NULL argument to talus_batch_commit");
    if (durability > TALUS_DURABILITY_SYNC)
        return tl_err(TALUS_EINVAL, "unknown durability %d", durability);
    TRY(check_writable(db));
    for (size_t i = 0; i < b->nops; i++) {
        TRY(check_tree(b->ops[i].tree));
        if (b->ops[i].tree->db != db)
            return tl_err(TALUS_EINVAL, "batch holds a tree of another database");
    }
    if (b->nops == 0) {
        if (seqno_out)
            *seqno_out = talus_seqno(db);
        return 0;
    }
    pthread_mutex_lock(&db->write_mu);
    int rc = 0;
    /* Room first, in every tree the batch touches, so the apply below
     * cannot fail half-way for lack of room. Batches touch few trees. */
    talus_tree *done[16];
    size_t ndone = 0;
    for (size_t i = 0; i < b->nops && rc == 0; i++) {
        talus_tree *t = b->ops[i].tree;
        bool seen = false;
        for (size_t j = 0; j < ndone && !seen; j++)
            seen = done[j] == t;
        if (seen)
            continue;
        rc = tr_make_room(t->tr);
        if (ndone < sizeof done / sizeof done[0])
            done[ndone++] = t;
    }
    uint64_t seq = atomic_load_explicit(&db->last_seq, memory_order_relaxed) + 1;
    for (size_t i = 0; i < b->nops && rc == 0; i++) {
        const batch_op *op = &b->ops[i];
        rc = tr_apply(op->tree->tr, seq, op->type,
                      tl_slice_make(b->bytes.data + op->key_off, op->klen),
                      tl_slice_make(b->bytes.data + op->val_off, op->vlen));
    }
    if (rc == 0) {
        atomic_store_explicit(&db->last_seq, seq, memory_order_relaxed);
        atomic_store_explicit(&db->published_seq, seq, memory_order_release);
        if (seqno_out)
            *seqno_out = seq;
    }
    pthread_mutex_unlock(&db->write_mu);
    return rc;
}

/* ---- Reads ------------------------------------------------------------- */

uint64_t talus_seqno(talus_db *db)
{
    return atomic_load_explicit(&db->published_seq, memory_order_acquire);
}

static int get_at(talus_tree *t, uint64_t seq, const void *key, size_t klen, void **val,
                  size_t *vlen)
{
    TRY(check_tree(t));
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
    if (seqno > talus_seqno(t->db))
        return tl_err(TALUS_ESNAPSHOT, "seqno %llu is in the future (current %llu)",
                      (unsigned long long)seqno, (unsigned long long)talus_seqno(t->db));
    return get_at(t, seqno, key, klen, val, vlen);
}

int talus_contains(talus_tree *t, const talus_snapshot *snap, const void *key, size_t klen)
{
    int rc = talus_get(t, snap, key, klen, NULL, NULL);
    if (rc == 0)
        return 1;
    return rc == TALUS_ENOTFOUND ? 0 : rc;
}

/* ---- Snapshots ---------------------------------------------------------- */

talus_snapshot *talus_snapshot_take(talus_db *db)
{
    talus_snapshot *s = calloc(1, sizeof *s);
    if (!s) {
        tl_err(TALUS_ENOMEM, "out of memory taking a snapshot");
        return NULL;
    }
    pthread_mutex_lock(&db->mu);
    s->seq = talus_seqno(db);
    /* Seqnos only grow, so appending keeps the list sorted. */
    s->prev = db->snap_head.prev;
    s->next = &db->snap_head;
    s->prev->next = s;
    db->snap_head.prev = s;
    pthread_mutex_unlock(&db->mu);
    return s;
}

void talus_snapshot_release(talus_db *db, talus_snapshot *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&db->mu);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    pthread_mutex_unlock(&db->mu);
    free(s);
}

uint64_t talus_snapshot_seqno(const talus_snapshot *s)
{
    return s->seq;
}

int db_snapshot_seqs(talus_db *db, uint64_t **seqs, size_t *n)
{
    pthread_mutex_lock(&db->mu);
    size_t count = 0;
    for (talus_snapshot *s = db->snap_head.next; s != &db->snap_head; s = s->next)
        count++;
    uint64_t *v = NULL;
    if (count) {
        v = malloc(count * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&db->mu);
            return tl_err(TALUS_ENOMEM, "out of memory listing snapshots");
        }
        size_t i = 0;
        for (talus_snapshot *s = db->snap_head.next; s != &db->snap_head; s = s->next)
            v[i++] = s->seq;
    }
    pthread_mutex_unlock(&db->mu);
    *seqs = v;
    *n = count;
    return 0;
}

/* ---- Maintenance and statistics ---------------------------------------- */

int talus_flush(talus_tree *t)
{
    TRY(check_tree(t));
    if (t->db->opts.read_only)
        return 0;
    pthread_mutex_lock(&t->db->write_mu);
    int rc = tr_seal(t->tr);
    pthread_mutex_unlock(&t->db->write_mu);
    if (rc < 0)
        return rc;
    return tr_wait_flushed(t->tr);
}

int talus_compact_range(talus_tree *t, const void *lo, size_t lolen, const void *hi,
                        size_t hilen)
{
    TRY(check_tree(t));
    TRY(check_writable(t->db));
    TRY(talus_flush(t));
    tl_slice l = tl_slice_make(lo, lolen), h = tl_slice_make(hi, hilen);
    return tr_compact_range(t->tr, lo ? &l : NULL, hi ? &h : NULL);
}

uint64_t talus_approximate_count(talus_tree *t)
{
    return check_tree(t) < 0 ? 0 : tr_approximate_count(t->tr);
}

uint64_t talus_disk_space(talus_tree *t)
{
    return check_tree(t) < 0 ? 0 : tr_disk_space(t->tr);
}

int talus_tree_stats_get(talus_tree *t, talus_tree_stats *out)
{
    TRY(check_tree(t));
    TRY(tr_stats(t->tr, out));
    out->last_seqno = talus_seqno(t->db);
    return 0;
}
