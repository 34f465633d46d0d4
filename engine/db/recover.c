/*
 * recover.c - the journal's life in a database: replay on open, the
 * segment in use, and trimming segments every tree has flushed past.
 *
 * Open: every segment in DB/journal is replayed in order; a record's
 * entries go to their trees when the record's seqno is above the tree's
 * flushed seqno (older ones are already in tables). The replayed memtables
 * are then flushed and the old segments deleted before a new segment is
 * started, so a torn tail can only ever be in the newest segment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "util/err.h"
#include "util/ikey.h"
#include "util/log.h"

talus_tree *db_tree_by_id(talus_db *db, uint32_t id)
{
    for (size_t i = 0; i < db->ntrees; i++)
        if (db->trees[i]->id == id && !db->trees[i]->dropped)
            return db->trees[i];
    return NULL;
}

/* Apply one record. A record that names a dropped tree only loses those
 * entries. */
static int replay_record(talus_db *db, tl_slice payload, const char *seg, uint64_t *max_seq)
{
    uint64_t seq;
    uint32_t count;
    jnl_batch_iter it;
    TRY(jnl_batch_open(payload, &seq, &count, &it));
    jnl_entry e;
    int rc;
    while ((rc = jnl_batch_next(&it, &e)) == 1) {
        talus_tree *t = db_tree_by_id(db, e.tree_id);
        if (!t || seq <= tr_flushed_seq(t->tr))
            continue;
        if (!tl_vtype_valid(e.type))
            return tl_err(TALUS_ECORRUPT, "%s: entry of unknown type %u", seg, e.type);
        TRY(tr_make_room(t->tr));
        TRY(tr_apply(t->tr, seq, e.type, e.key, e.value));
    }
    if (rc < 0)
        return rc;
    if (seq > *max_seq)
        *max_seq = seq;
    return 0;
}

int db_recover_journal(talus_db *db)
{
    /* Replay runs before any writer exists; write_mu is taken only to
     * satisfy tr_make_room's contract. */
    uint64_t *nums = NULL;
    size_t n = 0;
    int rc = 0;
    bool stop = false;
    uint64_t max_seq = atomic_load(&db->last_seq);
    bool touched_any = false;
    bool ro = db->opts.read_only != 0;
    if (!ro)
        TRY(tl_env_mkdir(db->env, db->journal_dir));
    int exists = tl_env_exists(db->env, db->journal_dir);
    if (exists <= 0)
        return exists;
    TRY(jnl_list_segments(db->env, db->journal_dir, &nums, &n));
    for (size_t i = 0; i < n && !stop; i++) {
        char path[4096];
        jnl_segment_name(path, sizeof path, db->journal_dir, nums[i]);
        jnl_reader *r = NULL;
        rc = jnl_reader_open(db->env, path, &r);
        tl_slice payload;
        while (rc == 0) {
            rc = jnl_reader_next(r, &payload);
            if (rc <= 0)
                break;
            rc = replay_record(db, payload, path, &max_seq);
            touched_any = true;
        }
        if (rc == 0 && r && jnl_reader_torn(r)) {
            if (i + 1 < n) {
                rc = tl_err(TALUS_ECORRUPT,
                            "%s: record cut short at offset %llu but newer segments follow", path,
                            (unsigned long long)jnl_reader_good_offset(r));
            } else {
                TL_LOG_INFO("%s: ignoring a torn record at offset %llu (crash during a write)",
                            path, (unsigned long long)jnl_reader_good_offset(r));
            }
        }
        jnl_reader_close(r);
        if (rc < 0) {
            if (rc != TALUS_ECORRUPT || db->opts.journal_recovery != TALUS_RECOVER_TO_LAST_GOOD) {
                if (rc == TALUS_ECORRUPT)
                    tl_err(rc,
                           "%s; open with journal_recovery=TALUS_RECOVER_TO_LAST_GOOD to "
                           "recover up to the last good record",
                           tl_errmsg());
                break;
            }
            TL_LOG_WARN("journal damaged, recovering up to the last good record: %s", tl_errmsg());
            rc = 0;
            stop = true;
        }
    }
    if (rc == 0 && max_seq > atomic_load(&db->last_seq)) {
        atomic_store(&db->last_seq, max_seq);
        atomic_store(&db->published_seq, max_seq);
    }
    /* Persist what was replayed, then drop the old segments. A read-only
     * open keeps the replayed data in memory and changes nothing. */
    if (ro) {
        free(nums);
        return rc;
    }
    /* The replayed records may sit in the segments' unsynced tails (a
     * process crash leaves them in the page cache): make them durable
     * before any tree's table holds part of a batch. */
    for (size_t i = 0; rc == 0 && touched_any && i < n; i++) {
        char path[4096];
        tl_file *f = NULL;
        jnl_segment_name(path, sizeof path, db->journal_dir, nums[i]);
        rc = tl_env_open_append(db->env, path, &f);
        if (rc == 0)
            rc = tl_file_sync(f);
        int crc = tl_file_close(f);
        if (rc == 0)
            rc = crc;
    }
    for (size_t i = 0; rc == 0 && touched_any && i < db->ntrees; i++) {
        talus_tree *t = db->trees[i];
        if (t->dropped)
            continue;
        rc = tr_seal(t->tr);
        if (rc == 0)
            rc = tr_wait_flushed(t->tr);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096];
        jnl_segment_name(path, sizeof path, db->journal_dir, nums[i]);
        rc = tl_env_remove(db->env, path);
    }
    if (rc == 0 && n > 0) {
        rc = tl_env_sync_dir(db->env, db->journal_dir);
        db->next_segment = nums[n - 1] + 1;
    }
    /* Every memtable is flushed now, so a blob file no version names was
     * never committed (or its batch was lost with the journal's tail). */
    for (size_t i = 0; rc == 0 && i < db->ntrees; i++)
        if (!db->trees[i]->dropped)
            rc = tr_remove_orphan_blobs(db->trees[i]->tr);
    free(nums);
    return rc;
}

int db_start_journal(talus_db *db)
{
    if (db->next_segment == 0)
        db->next_segment = 1;
    db->segs = calloc(8, sizeof *db->segs);
    if (!db->segs)
        return tl_err(TALUS_ENOMEM, "out of memory starting the journal");
    db->segs_cap = 8;
    uint64_t number = db->next_segment++;
    TRY(jnl_writer_open(db->env, db->journal_dir, number, &db->journal));
    db->segs[0] = (db_segment){number, 0, 0};
    db->nsegs = 1;
    return 0;
}

void db_trim_journal(talus_db *db)
{
    if (!db->journal || db->nsegs < 2)
        return;
    uint64_t keep_from = UINT64_MAX; /* oldest seqno not yet in tables */
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->ntrees; i++) {
        talus_tree *t = db->trees[i];
        if (t->dropped || !t->tr)
            continue;
        uint64_t s = tr_oldest_unflushed_seq(t->tr);
        if (s < keep_from)
            keep_from = s;
    }
    pthread_mutex_unlock(&db->mu);
    size_t drop = 0;
    while (drop + 1 < db->nsegs && db->segs[drop].max_seq < keep_from)
        drop++;
    for (size_t i = 0; i < drop; i++) {
        char path[4096];
        jnl_segment_name(path, sizeof path, db->journal_dir, db->segs[i].number);
        int rc = tl_env_remove(db->env, path);
        if (rc < 0 && rc != TALUS_ENOTFOUND)
            TL_LOG_WARN("could not remove journal segment %s: %s", path, tl_errmsg());
    }
    if (drop) {
        memmove(db->segs, db->segs + drop, (db->nsegs - drop) * sizeof *db->segs);
        db->nsegs -= drop;
    }
    /* Too much journal: flush the trees whose active memtable holds the
     * oldest segment's data so it can go. */
    uint64_t total = 0;
    for (size_t i = 0; i < db->nsegs; i++)
        total += db->segs[i].bytes;
    if (total <= db->opts.max_journal_size || db->nsegs < 2)
        return;
    uint64_t oldest_max = db->segs[0].max_seq;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->ntrees; i++) {
        talus_tree *t = db->trees[i];
        if (!t->dropped && t->tr && tr_active_min_seq(t->tr) <= oldest_max)
            tr_seal(t->tr);
    }
    pthread_mutex_unlock(&db->mu);
}
