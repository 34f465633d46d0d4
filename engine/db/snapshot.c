/*
 * snapshot.c - in-memory snapshots, persistent (pinned) snapshots, and the
 * list of seqnos that flush and compaction must keep versions for.
 *
 * gc_watermark: each flush or compaction drops old versions that no
 * snapshot it knows of can see, as of the published seqno when it starts.
 * Reading or pinning a seqno below the highest such seqno may therefore
 * miss versions, unless a snapshot at exactly that seqno already existed.
 * On open the watermark starts at the recovered seqno (older runs may have
 * collected anything below it).
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "util/err.h"

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

static bool is_pinned(const talus_db *db, uint64_t seq, size_t *pos)
{
    size_t lo = 0, hi = db->npins;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (db->pins[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return lo < db->npins && db->pins[lo] == seq;
}

static bool has_memory_snapshot(const talus_db *db, uint64_t seq)
{
    for (const talus_snapshot *s = db->snap_head.next; s != &db->snap_head; s = s->next)
        if (s->seq == seq)
            return true;
    return false;
}

/* REQUIRES: mu held. */
static int readable_locked(talus_db *db, uint64_t seq)
{
    uint64_t cur = talus_seqno(db);
    if (seq > cur)
        return tl_err(TALUS_ESNAPSHOT, "seqno %llu is in the future (current seqno %llu)",
                      (unsigned long long)seq, (unsigned long long)cur);
    if (seq >= db->gc_watermark || is_pinned(db, seq, NULL) || has_memory_snapshot(db, seq))
        return 0;
    return tl_err(TALUS_ESNAPSHOT,
                  "seqno %llu is no longer retained: versions up to seqno %llu may have been "
                  "garbage-collected; pin a snapshot before reading at an old seqno",
                  (unsigned long long)seq, (unsigned long long)db->gc_watermark);
}

int db_check_readable_seq(talus_db *db, uint64_t seqno)
{
    pthread_mutex_lock(&db->mu);
    int rc = readable_locked(db, seqno);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

talus_snapshot *talus_snapshot_at(talus_db *db, uint64_t seqno)
{
    talus_snapshot *s = calloc(1, sizeof *s);
    if (!s) {
        tl_err(TALUS_ENOMEM, "out of memory taking a snapshot");
        return NULL;
    }
    pthread_mutex_lock(&db->mu);
    int rc = readable_locked(db, seqno);
    if (rc == 0) {
        s->seq = seqno;
        /* Keep the list sorted: insert before the first newer snapshot. */
        talus_snapshot *at = db->snap_head.next;
        while (at != &db->snap_head && at->seq <= seqno)
            at = at->next;
        s->next = at;
        s->prev = at->prev;
        at->prev->next = s;
        at->prev = s;
    }
    pthread_mutex_unlock(&db->mu);
    if (rc < 0) {
        free(s);
        return NULL;
    }
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

int talus_snapshot_pin(talus_db *db, uint64_t seqno)
{
    if (!db)
        return tl_err(TALUS_EINVAL, "NULL database");
    TRY(db_check_writable(db));
    pthread_mutex_lock(&db->mu);
    size_t pos;
    int rc = 0;
    if (is_pinned(db, seqno, &pos))
        goto out;
    TRY_OUT(readable_locked(db, seqno));
    if (db->npins == db->pins_cap) {
        size_t cap = db->pins_cap ? db->pins_cap * 2 : 8;
        uint64_t *n = realloc(db->pins, cap * sizeof *n);
        if (!n) {
            rc = tl_err(TALUS_ENOMEM, "out of memory pinning a snapshot");
            goto out;
        }
        db->pins = n;
        db->pins_cap = cap;
    }
    memmove(db->pins + pos + 1, db->pins + pos, (db->npins - pos) * sizeof *db->pins);
    db->pins[pos] = seqno;
    db->npins++;
    uint64_t old_floor = db->seq_floor;
    if (seqno > db->seq_floor)
        db->seq_floor = seqno;
    rc = db_meta_write(db);
    if (rc < 0) { /* not durable: forget it */
        memmove(db->pins + pos, db->pins + pos + 1, (db->npins - pos - 1) * sizeof *db->pins);
        db->npins--;
        db->seq_floor = old_floor;
    }
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int talus_snapshot_unpin(talus_db *db, uint64_t seqno)
{
    if (!db)
        return tl_err(TALUS_EINVAL, "NULL database");
    TRY(db_check_writable(db));
    pthread_mutex_lock(&db->mu);
    size_t pos;
    int rc = 0;
    if (!is_pinned(db, seqno, &pos)) {
        rc = tl_err(TALUS_ENOTFOUND, "no snapshot pinned at seqno %llu", (unsigned long long)seqno);
        goto out;
    }
    memmove(db->pins + pos, db->pins + pos + 1, (db->npins - pos - 1) * sizeof *db->pins);
    db->npins--;
    rc = db_meta_write(db);
    if (rc < 0) {
        memmove(db->pins + pos + 1, db->pins + pos, (db->npins - pos) * sizeof *db->pins);
        db->pins[pos] = seqno;
        db->npins++;
    }
out:
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int talus_snapshot_list(talus_db *db, talus_pinned_snapshot **out, size_t *count)
{
    if (!db || !out || !count)
        return tl_err(TALUS_EINVAL, "NULL argument to talus_snapshot_list");
    pthread_mutex_lock(&db->mu);
    size_t n = db->npins;
    uint64_t *pins = malloc((n ? n : 1) * sizeof *pins);
    talus_tree **trees = malloc((db->ntrees ? db->ntrees : 1) * sizeof *trees);
    size_t ntrees = 0;
    if (pins && trees) {
        if (n)
            memcpy(pins, db->pins, n * sizeof *pins);
        for (size_t i = 0; i < db->ntrees; i++)
            if (!db->trees[i]->dropped && db->trees[i]->tr)
                trees[ntrees++] = db->trees[i];
    }
    pthread_mutex_unlock(&db->mu);
    uint64_t *held = calloc(n ? n : 1, sizeof *held);
    talus_pinned_snapshot *res = calloc(n ? n : 1, sizeof *res);
    int rc = 0;
    if (!pins || !trees || !held || !res) {
        rc = tl_err(TALUS_ENOMEM, "out of memory listing snapshots");
        goto out;
    }
    for (size_t i = 0; i < ntrees && rc == 0; i++)
        rc = tr_snapshot_bytes_held(trees[i]->tr, pins, n, held);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        res[i].seqno = pins[i];
        res[i].bytes_held = held[i];
    }
    *out = res;
    *count = n;
    res = NULL;
out:
    free(pins);
    free(trees);
    free(held);
    free(res);
    return rc;
}

int db_snapshot_seqs(talus_db *db, uint64_t **seqs, size_t *n)
{
    pthread_mutex_lock(&db->mu);
    uint64_t cur = talus_seqno(db);
    if (cur > db->gc_watermark)
        db->gc_watermark = cur;
    size_t count = db->npins;
    for (talus_snapshot *s = db->snap_head.next; s != &db->snap_head; s = s->next)
        count++;
    uint64_t *v = NULL;
    if (count) {
        v = malloc(count * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&db->mu);
            return tl_err(TALUS_ENOMEM, "out of memory listing snapshots");
        }
        /* Merge the two ascending lists. */
        size_t i = 0, p = 0;
        talus_snapshot *s = db->snap_head.next;
        while (s != &db->snap_head || p < db->npins) {
            if (p < db->npins && (s == &db->snap_head || db->pins[p] <= s->seq)) {
                v[i++] = db->pins[p++];
            } else {
                v[i++] = s->seq;
                s = s->next;
            }
        }
    }
    pthread_mutex_unlock(&db->mu);
    *seqs = v;
    *n = count;
    return 0;
}
