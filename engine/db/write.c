/*
 * write.c - batches and the commit path with group commit.
 *
 * Writers queue up; the writer at the head is the leader. It takes a group
 * of queued writers, and under write_mu: makes room in the memtables,
 * assigns each batch its seqno, writes the group's journal records with one
 * append (and one fdatasync if any writer asked for `sync`), applies the
 * batches to the memtables and publishes the last seqno. Then it wakes the
 * group and hands leadership to the next queued writer. Many concurrent
 * `sync` writers thus share one fdatasync.
 */
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "util/err.h"
#include "util/ikey.h"
#include "util/log.h"

#define GROUP_MAX_BYTES (1u << 20)

/* ---- Batches ----------------------------------------------------------- */

int talus_batch_new(talus_batch **out)
{
    if (!out)
        return tl_err(TALUS_EINVAL, "NULL argument to talus_batch_new");
    *out = calloc(1, sizeof **out);
    return *out ? 0 : tl_err(TALUS_ENOMEM, "out of memory creating a batch");
}

/* Remove the blob files of a batch that will not be committed. */
static void drop_blobs(talus_batch *b)
{
    for (size_t i = 0; i < b->nblobs; i++)
        if (!b->blobs[i].tree->dropped)
            tr_blob_discard(b->blobs[i].tree->tr, b->blobs[i].number);
    b->nblobs = 0;
}

void db_batch_free_contents(talus_batch *b)
{
    drop_blobs(b);
    free(b->blobs);
    free(b->ops);
    tl_buf_free(&b->bytes);
}

void talus_batch_free(talus_batch *b)
{
    if (!b)
        return;
    db_batch_free_contents(b);
    free(b);
}

void talus_batch_clear(talus_batch *b)
{
    drop_blobs(b);
    b->nops = 0;
    tl_buf_clear(&b->bytes);
}

size_t talus_batch_count(const talus_batch *b)
{
    return b->nops;
}

int db_batch_add(talus_batch *b, talus_tree *t, uint8_t type, const void *key, size_t klen,
                 const void *val, size_t vlen)
{
    if (!b)
        return tl_err(TALUS_EINVAL, "NULL batch");
    TRY(db_check_tree(t));
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
    /* A later op on the same key replaces an earlier one in the memtable
     * (same seqno), so a blob written for the earlier one would never be
     * referenced: remove it now. */
    for (size_t i = 0; i < b->nblobs;) {
        const batch_op *o = &b->ops[b->blobs[i].op];
        if (o->tree == t && o->klen == klen && !memcmp(b->bytes.data + o->key_off, key, klen)) {
            tr_blob_discard(t->tr, b->blobs[i].number);
            b->blobs[i] = b->blobs[--b->nblobs];
        } else {
            i++;
        }
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

int db_batch_add_blob(talus_batch *b, talus_tree *t, const void *key, size_t klen,
                      const bl_ref *ref)
{
    if (b->nblobs == b->blobs_cap) {
        size_t cap = b->blobs_cap ? b->blobs_cap * 2 : 4;
        batch_blob *n = realloc(b->blobs, cap * sizeof *n);
        if (!n)
            return tl_err(TALUS_ENOMEM, "out of memory growing a batch");
        b->blobs = n;
        b->blobs_cap = cap;
    }
    uint8_t enc[BL_REF_MAX];
    size_t n = bl_ref_encode(ref, enc);
    TRY(db_batch_add(b, t, TL_TYPE_BLOB, key, klen, enc, n));
    b->blobs[b->nblobs++] = (batch_blob){t, ref->number, b->nops - 1};
    return 0;
}

/* Whether a value of vlen bytes goes to a blob file in tree t. */
static bool goes_to_blob(const talus_tree *t, size_t vlen)
{
    uint64_t min = tr_min_blob_size(t->tr);
    return min > 0 && vlen >= min;
}

int talus_batch_put(talus_batch *b, talus_tree *t, const void *key, size_t klen, const void *val,
                    size_t vlen)
{
    if (!val && vlen)
        return tl_err(TALUS_EINVAL, "NULL value with non-zero length");
    if (!b)
        return tl_err(TALUS_EINVAL, "NULL batch");
    TRY(db_check_tree(t));
    if (!goes_to_blob(t, vlen))
        return db_batch_add(b, t, TL_TYPE_VALUE, key, klen, val, vlen);
    TRY(db_check_key(key, klen));
    TRY(db_check_value(vlen));
    TRY(db_check_writable(t->db));
    bl_ref ref;
    TRY(tr_blob_write(t->tr, val, vlen, &ref));
    int rc = db_batch_add_blob(b, t, key, klen, &ref);
    if (rc < 0)
        tr_blob_discard(t->tr, ref.number);
    return rc;
}

int talus_batch_delete(talus_batch *b, talus_tree *t, const void *key, size_t klen)
{
    return db_batch_add(b, t, TL_TYPE_TOMBSTONE, key, klen, NULL, 0);
}

int talus_batch_weak_delete(talus_batch *b, talus_tree *t, const void *key, size_t klen)
{
    return db_batch_add(b, t, TL_TYPE_WEAK_TOMBSTONE, key, klen, NULL, 0);
}

/* ---- A writer's operations ---------------------------------------------- */

static size_t writer_count(const db_writer *w)
{
    return w->batch ? w->batch->nops : 1;
}

static void writer_op(const db_writer *w, size_t i, talus_tree **t, uint8_t *type, tl_slice *k,
                      tl_slice *v)
{
    if (!w->batch) {
        *t = w->tree;
        *type = w->type;
        *k = w->key;
        *v = w->value;
        return;
    }
    const batch_op *op = &w->batch->ops[i];
    *t = op->tree;
    *type = op->type;
    *k = tl_slice_make(w->batch->bytes.data + op->key_off, op->klen);
    *v = tl_slice_make(w->batch->bytes.data + op->val_off, op->vlen);
}

static bool writer_multi_tree(const db_writer *w)
{
    if (!w->batch)
        return false;
    for (size_t i = 1; i < w->batch->nops; i++)
        if (w->batch->ops[i].tree != w->batch->ops[0].tree)
            return true;
    return false;
}

static size_t writer_bytes(const db_writer *w)
{
    return w->batch ? w->batch->bytes.len + 16 * w->batch->nops : w->key.len + w->value.len + 16;
}

static void writer_fail(db_writer *w, int rc)
{
    w->rc = rc;
    snprintf(w->errmsg, sizeof w->errmsg, "%s", tl_errmsg());
}

/* ---- The leader's work ---------------------------------------------------- */

/* Make room in every tree the group touches; a writer whose tree cannot
 * take writes fails alone. */
static void make_room(db_writer *first, db_writer *last)
{
    talus_tree *done[32];
    size_t ndone = 0;
    for (db_writer *w = first;; w = w->next) {
        for (size_t i = 0; i < writer_count(w) && w->rc == 0; i++) {
            talus_tree *t;
            uint8_t type;
            tl_slice k, v;
            writer_op(w, i, &t, &type, &k, &v);
            bool seen = false;
            for (size_t j = 0; j < ndone && !seen; j++)
                seen = done[j] == t;
            if (seen)
                continue;
            int rc = db_check_tree(t);
            if (rc == 0)
                rc = tr_make_room(t->tr);
            if (rc < 0)
                writer_fail(w, rc);
            else if (ndone < sizeof done / sizeof done[0])
                done[ndone++] = t;
        }
        if (w == last)
            break;
    }
}

static int next_seq(talus_db *db, uint64_t last, uint64_t *out)
{
    uint64_t s =
        db->opts.seqno_generator ? db->opts.seqno_generator(db->opts.seqno_ctx, last) : last + 1;
    if (s <= last)
        return tl_err(TALUS_ESEQNO,
                      "sequence generator returned %llu, not greater than the last seqno %llu",
                      (unsigned long long)s, (unsigned long long)last);
    *out = s;
    return 0;
}

static int encode_record(talus_db *db, const db_writer *w)
{
    TRY(jnl_batch_begin(&db->scratch, w->seq, (uint32_t)writer_count(w)));
    for (size_t i = 0; i < writer_count(w); i++) {
        jnl_entry e;
        talus_tree *t;
        writer_op(w, i, &t, &e.type, &e.key, &e.value);
        e.tree_id = t->id;
        TRY(jnl_batch_add(&db->scratch, &e));
    }
    return jnl_writer_add(db->journal, tl_buf_slice(&db->scratch));
}

static void set_db_error(talus_db *db, int rc, const char *what)
{
    if (db->error)
        return;
    db->error = rc;
    snprintf(db->errmsg, sizeof db->errmsg,
             "database %s: %s failed: %s; the database is now read-only", db->path, what,
             tl_errmsg());
    TL_LOG_ERROR("%s", db->errmsg);
}

static void fail_group(talus_db *db, db_writer *first, db_writer *last)
{
    for (db_writer *w = first;; w = w->next) {
        if (w->rc == 0) {
            tl_err(TALUS_EREADONLY, "%s", db->errmsg);
            writer_fail(w, TALUS_EREADONLY);
        }
        if (w == last)
            break;
    }
}

/* Journal, apply and publish the group [first, last]. REQUIRES: write_mu. */
static void commit_group(talus_db *db, db_writer *first, db_writer *last)
{
    if (db->error) {
        fail_group(db, first, last);
        return;
    }
    make_room(first, last);
    db->stat_groups++;
    for (db_writer *w = first;; w = w->next) {
        db->stat_group_writers++;
        if (w == last)
            break;
    }
    uint64_t seq = atomic_load_explicit(&db->last_seq, memory_order_relaxed);
    bool journaled = false, sync = false;
    int rc = 0;
    for (db_writer *w = first; rc == 0; w = w->next) {
        if (w->rc == 0) {
            int r = next_seq(db, seq, &w->seq);
            if (r < 0) {
                writer_fail(w, r);
            } else {
                seq = w->seq;
                /* A batch over several trees is journaled even at `none`:
                 * the trees flush separately, and only the journal can
                 * bring back the part of it a crash takes. */
                if ((w->durability >= TALUS_DURABILITY_BUFFERED || writer_multi_tree(w)) &&
                    db->journal) {
                    rc = encode_record(db, w);
                    journaled = true;
                    sync |= w->durability == TALUS_DURABILITY_SYNC;
                }
            }
        }
        if (w == last)
            break;
    }
    if (rc == 0 && journaled)
        rc = jnl_writer_write(db->journal);
    if (rc == 0 && sync) {
        uint64_t t0 = tl_env_now_ns(db->env);
        rc = jnl_writer_sync(db->journal);
        db->last_sync_ns = tl_env_now_ns(db->env) - t0;
        size_t n = 0;
        for (db_writer *w = first;; w = w->next) {
            n++;
            if (w == last)
                break;
        }
        db->last_sync_group = n;
        db->stat_syncs++;
        db->stat_sync_ns += db->last_sync_ns;
    }
    if (rc < 0) {
        set_db_error(db, rc, "journal write");
        fail_group(db, first, last);
        return;
    }
    for (db_writer *w = first;; w = w->next) {
        for (size_t i = 0; w->rc == 0 && i < writer_count(w); i++) {
            talus_tree *t;
            uint8_t type;
            tl_slice k, v;
            writer_op(w, i, &t, &type, &k, &v);
            rc = tr_apply(t->tr, w->seq, type, k, v);
            if (rc < 0) {
                /* The memtable cannot take it (out of memory): the batch is
                 * in the journal, so stop here and let a reopen replay it. */
                set_db_error(db, rc, "memtable insert");
                fail_group(db, w, last);
                return;
            }
        }
        if (w == last)
            break;
    }
    atomic_store_explicit(&db->last_seq, seq, memory_order_relaxed);
    atomic_store_explicit(&db->published_seq, seq, memory_order_release);
    if (db->scratch.cap > (4u << 20))
        tl_buf_free(&db->scratch); /* do not keep a huge record's buffer */
    if (journaled && db->nsegs > 0) {
        db_segment *cur = &db->segs[db->nsegs - 1];
        cur->max_seq = seq;
        cur->bytes = jnl_writer_segment_bytes(db->journal);
    }
}

/* Start a new segment when the current one is full. REQUIRES: write_mu. */
static void maybe_rotate(talus_db *db)
{
    if (!db->journal || db->error ||
        jnl_writer_segment_bytes(db->journal) < db->opts.journal_segment_size)
        return;
    if (db->nsegs == db->segs_cap) {
        size_t cap = db->segs_cap ? db->segs_cap * 2 : 8;
        db_segment *n = realloc(db->segs, cap * sizeof *n);
        if (!n)
            return; /* try again after the next group */
        db->segs = n;
        db->segs_cap = cap;
    }
    uint64_t number = db->next_segment++;
    int rc = jnl_writer_rotate(db->journal, number);
    if (rc < 0) {
        set_db_error(db, rc, "journal rotation");
        return;
    }
    db->segs[db->nsegs++] = (db_segment){number, 0, 0};
}

int db_commit(talus_db *db, db_writer *w)
{
    w->done = false;
    w->rc = 0;
    w->next = NULL;
    w->errmsg[0] = '\0';
    pthread_cond_init(&w->cv, NULL);

    pthread_mutex_lock(&db->q_mu);
    if (db->q_tail)
        db->q_tail->next = w;
    else
        db->q_head = w;
    db->q_tail = w;
    db->q_len++;
    while (!w->done && db->q_head != w)
        pthread_cond_wait(&w->cv, &db->q_mu);
    if (w->done) {
        pthread_mutex_unlock(&db->q_mu);
        pthread_cond_destroy(&w->cv);
        if (w->rc < 0)
            tl_err(w->rc, "%s", w->errmsg);
        return w->rc;
    }
    /* Leader. Writers of the previous sync group are just waking up and
     * will be back in a moment: a sync leader that has seen concurrency
     * waits a fraction of one fdatasync for them, so one sync serves many
     * instead of alternating groups of one and many. */
    if (w->durability == TALUS_DURABILITY_SYNC && db->last_sync_group > 1 &&
        db->q_len < db->last_sync_group) {
        uint64_t budget = db->last_sync_ns / 4;
        if (budget > 500000)
            budget = 500000;
        uint64_t start = tl_env_now_ns(db->env);
        while (db->q_len < db->last_sync_group && tl_env_now_ns(db->env) - start < budget) {
            /* Yield rather than sleep: a short nanosleep lasts the timer
             * slack (~50 us), longer than the writers need to come back. */
            pthread_mutex_unlock(&db->q_mu);
            sched_yield();
            pthread_mutex_lock(&db->q_mu);
        }
    }
    /* Take a group of queued writers. */
    db_writer *last = w;
    size_t bytes = writer_bytes(w);
    while (last->next && bytes + writer_bytes(last->next) <= GROUP_MAX_BYTES) {
        last = last->next;
        bytes += writer_bytes(last);
    }
    pthread_mutex_unlock(&db->q_mu);

    pthread_mutex_lock(&db->write_mu);
    commit_group(db, w, last);
    maybe_rotate(db);
    if (atomic_exchange(&db->trim_journal, false))
        db_trim_journal(db);
    pthread_mutex_unlock(&db->write_mu);

    pthread_mutex_lock(&db->q_mu);
    db_writer *next = last->next;
    for (db_writer *x = w->next; x != next;) {
        db_writer *after = x->next; /* x may return as soon as q_mu is free */
        x->done = true;
        pthread_cond_signal(&x->cv);
        x = after;
    }
    db->q_head = next;
    for (db_writer *x = w; x != next; x = x->next)
        db->q_len--;
    if (!next)
        db->q_tail = NULL;
    else
        pthread_cond_signal(&next->cv);
    pthread_mutex_unlock(&db->q_mu);
    pthread_cond_destroy(&w->cv);
    if (w->rc < 0)
        tl_err(w->rc, "%s", w->errmsg);
    return w->rc;
}

int db_write_one(talus_db *db, talus_tree *t, uint8_t type, const void *key, size_t klen,
                 const void *val, size_t vlen)
{
    TRY(db_check_tree(t));
    TRY(db_check_writable(db));
    TRY(db_check_key(key, klen));
    TRY(db_check_value(vlen));
    if (type == TL_TYPE_VALUE && goes_to_blob(t, vlen)) {
        talus_batch b = {0};
        int rc = talus_batch_put(&b, t, key, klen, val, vlen);
        if (rc == 0)
            rc = talus_batch_commit(db, &b, -1, NULL);
        db_batch_free_contents(&b);
        return rc;
    }
    db_writer w = {
        .tree = t,
        .type = type,
        .key = tl_slice_make(key, klen),
        .value = tl_slice_make(val, vlen),
        .durability = db->opts.durability,
    };
    return db_commit(db, &w);
}

int talus_batch_commit(talus_db *db, talus_batch *b, int durability, uint64_t *seqno_out)
{
    if (!db || !b)
        return tl_err(TALUS_EINVAL, "NULL argument to talus_batch_commit");
    if (durability > TALUS_DURABILITY_SYNC)
        return tl_err(TALUS_EINVAL, "unknown durability %d", durability);
    TRY(db_check_writable(db));
    for (size_t i = 0; i < b->nops; i++) {
        TRY(db_check_tree(b->ops[i].tree));
        if (b->ops[i].tree->db != db)
            return tl_err(TALUS_EINVAL, "batch holds a tree of another database");
    }
    if (b->nops == 0) {
        if (seqno_out)
            *seqno_out = talus_seqno(db);
        return 0;
    }
    db_writer w = {
        .batch = b,
        .durability = durability < 0 ? db->opts.durability : durability,
    };
    int rc = db_commit(db, &w);
    if (rc == 0 && seqno_out)
        *seqno_out = w.seq;
    /* Committed: the blobs belong to the trees now. After a failure that
     * left the database in error the journal may hold the record all the
     * same: leave the files to the next open, which keeps what it replays. */
    if (rc < 0) {
        pthread_mutex_lock(&db->write_mu);
        bool failed = db->error != 0;
        pthread_mutex_unlock(&db->write_mu);
        if (failed)
            b->nblobs = 0;
    } else {
        b->nblobs = 0;
    }
    return rc;
}

int talus_db_sync(talus_db *db)
{
    if (!db)
        return tl_err(TALUS_EINVAL, "NULL database");
    TRY(db_check_writable(db));
    pthread_mutex_lock(&db->write_mu);
    int rc = 0;
    if (db->error)
        rc = tl_err(TALUS_EREADONLY, "%s", db->errmsg);
    else if (db->journal)
        rc = jnl_writer_sync(db->journal);
    if (rc < 0 && rc != TALUS_EREADONLY)
        set_db_error(db, rc, "journal sync");
    pthread_mutex_unlock(&db->write_mu);
    return rc;
}
