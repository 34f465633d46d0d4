/*
 * user_iter.c - the iterator programs see: user keys visible at one seqno,
 * newest version only, deletions hidden, within [lower, upper).
 *
 * It walks the merged internal iterator `in` (internal order: user key
 * ascending, seqno descending). Two states:
 *  - forward: `in` is AT the entry shown; key/value point into `in`.
 *  - reverse: `in` is just BEFORE every entry of the shown user key (on the
 *    previous user key's entries, or invalid); key/value are copies in
 *    saved_key/saved_val, because going backward we meet a key's versions
 *    oldest first and only know the answer after passing all of them.
 */
#include <stdlib.h>

#include "tree/tree_internal.h"
#include "util/err.h"
#include "util/ikey.h"

enum { DIR_FWD, DIR_REV };

struct tr_iter {
    tr_tree *t;
    tr_view *view;
    tl_iter *in;
    uint64_t seq;
    tl_buf lower, upper;
    bool has_lower, has_upper;
    int dir;
    bool valid;
    int status;
    tl_buf saved_key; /* reverse: the current key; forward: the key to skip */
    tl_buf saved_val;
    uint8_t saved_type;
    tl_buf scratch; /* internal keys built for seeks */
    /* A blob-file value read for the current position (gen == blob_gen). */
    uint64_t gen, blob_gen;
    tl_buf blob;
};

static bool check_in(tr_iter *it)
{
    int rc = tl_iter_status(it->in);
    if (rc < 0) {
        it->status = rc;
        it->valid = false;
        return false;
    }
    return true;
}

/* Split the current internal key; false (and corrupt status) if malformed. */
static bool parse(tr_iter *it, tl_slice *uk, uint64_t *seq, uint8_t *type)
{
    tl_slice ik = tl_iter_key(it->in);
    if (ik.len < TL_IKEY_TRAILER) {
        it->status =
            tl_err(TALUS_ECORRUPT, "tree %s: internal key of %zu bytes", it->t->name, ik.len);
        it->valid = false;
        return false;
    }
    *uk = tl_ikey_user(ik);
    *seq = tl_ikey_seq(ik);
    *type = tl_ikey_type(ik);
    return true;
}

static bool set_saved(tr_iter *it, tl_buf *b, tl_slice s)
{
    int rc = tl_buf_set(b, s.data, s.len);
    if (rc < 0) {
        it->status = rc;
        it->valid = false;
        return false;
    }
    return true;
}

/* Forward: from the current position of `in`, find the newest visible
 * version of the next user key that is not deleted. Keys <= saved_key are
 * skipped when `skipping`. */
static void find_next(tr_iter *it, bool skipping)
{
    it->valid = false;
    it->gen++;
    while (tl_iter_valid(it->in)) {
        tl_slice uk;
        uint64_t seq;
        uint8_t type;
        if (!parse(it, &uk, &seq, &type))
            return;
        if (it->has_upper && tl_slice_cmp(uk, tl_buf_slice(&it->upper)) >= 0)
            break;
        if (seq <= it->seq) {
            bool shadowed = skipping && tl_slice_cmp(uk, tl_buf_slice(&it->saved_key)) <= 0;
            if (!shadowed) {
                if (tl_vtype_is_delete(type)) {
                    if (!set_saved(it, &it->saved_key, uk))
                        return;
                    skipping = true;
                } else {
                    it->valid = true;
                    return;
                }
            }
        }
        tl_iter_next(it->in);
    }
    check_in(it);
}

/* Reverse: from the current position of `in`, find the previous user key
 * whose newest visible version is a value, leaving `in` before it. */
static void find_prev(tr_iter *it)
{
    bool have = false; /* saved_key/saved_val hold a candidate */
    it->gen++;
    while (tl_iter_valid(it->in)) {
        tl_slice uk;
        uint64_t seq;
        uint8_t type;
        if (!parse(it, &uk, &seq, &type))
            return;
        if (it->has_lower && tl_slice_cmp(uk, tl_buf_slice(&it->lower)) < 0)
            break;
        if (seq <= it->seq) {
            if (have && tl_slice_cmp(uk, tl_buf_slice(&it->saved_key)) < 0)
                break; /* passed every version of the candidate */
            if (tl_vtype_is_delete(type)) {
                have = false;
            } else {
                if (!set_saved(it, &it->saved_key, uk) ||
                    !set_saved(it, &it->saved_val, tl_iter_value(it->in)))
                    return;
                it->saved_type = type;
                have = true;
            }
        }
        tl_iter_prev(it->in);
    }
    it->valid = have;
    if (!check_in(it))
        return;
}

static tl_slice make_ikey(tr_iter *it, tl_slice uk, uint64_t seq)
{
    tl_buf_clear(&it->scratch);
    if (tl_buf_reserve(&it->scratch, uk.len + TL_IKEY_TRAILER) < 0)
        return tl_slice_make(NULL, 0);
    it->scratch.len = tl_ikey_encode(it->scratch.data, uk.data, uk.len, seq, TL_TYPE_VALUE);
    return tl_buf_slice(&it->scratch);
}

void tr_iter_seek(tr_iter *it, tl_slice ukey)
{
    if (it->status < 0)
        return;
    if (it->has_lower && tl_slice_cmp(ukey, tl_buf_slice(&it->lower)) < 0)
        ukey = tl_buf_slice(&it->lower);
    tl_slice ik = make_ikey(it, ukey, it->seq);
    if (!ik.data) {
        it->status = TALUS_ENOMEM;
        it->valid = false;
        return;
    }
    tl_iter_seek(it->in, ik);
    it->dir = DIR_FWD;
    find_next(it, false);
}

void tr_iter_seek_first(tr_iter *it)
{
    if (it->status < 0)
        return;
    if (it->has_lower) {
        tr_iter_seek(it, tl_buf_slice(&it->lower));
        return;
    }
    tl_iter_seek_first(it->in);
    it->dir = DIR_FWD;
    find_next(it, false);
}

void tr_iter_seek_last(tr_iter *it)
{
    if (it->status < 0)
        return;
    if (it->has_upper) {
        tl_slice ik = make_ikey(it, tl_buf_slice(&it->upper), TL_SEQ_MAX);
        if (!ik.data) {
            it->status = TALUS_ENOMEM;
            it->valid = false;
            return;
        }
        tl_iter_seek(it->in, ik);
        if (tl_iter_valid(it->in))
            tl_iter_prev(it->in);
        else if (check_in(it))
            tl_iter_seek_last(it->in);
    } else {
        tl_iter_seek_last(it->in);
    }
    it->dir = DIR_REV;
    find_prev(it);
}

void tr_iter_seek_for_prev(tr_iter *it, tl_slice ukey)
{
    if (it->status < 0)
        return;
    if (it->has_upper && tl_slice_cmp(ukey, tl_buf_slice(&it->upper)) >= 0) {
        tr_iter_seek_last(it);
        return;
    }
    /* (ukey, 0) is the last internal key of ukey: every version is <= it. */
    tl_slice ik = make_ikey(it, ukey, 0);
    if (!ik.data) {
        it->status = TALUS_ENOMEM;
        it->valid = false;
        return;
    }
    tl_iter_seek_for_prev(it->in, ik);
    it->dir = DIR_REV;
    find_prev(it);
}

void tr_iter_next(tr_iter *it)
{
    if (!it->valid)
        return;
    if (it->dir == DIR_REV) {
        /* `in` is before the current key's entries: step onto them and skip
         * them all (saved_key holds the current key). */
        it->dir = DIR_FWD;
        if (tl_iter_valid(it->in))
            tl_iter_next(it->in);
        else if (check_in(it))
            tl_iter_seek_first(it->in);
        find_next(it, true);
        return;
    }
    if (!set_saved(it, &it->saved_key, tl_ikey_user(tl_iter_key(it->in))))
        return;
    tl_iter_next(it->in);
    find_next(it, true);
}

void tr_iter_prev(tr_iter *it)
{
    if (!it->valid)
        return;
    if (it->dir == DIR_FWD) {
        /* Move `in` before every entry of the current key. */
        if (!set_saved(it, &it->saved_key, tl_ikey_user(tl_iter_key(it->in))))
            return;
        for (;;) {
            tl_iter_prev(it->in);
            if (!tl_iter_valid(it->in))
                break;
            tl_slice ik = tl_iter_key(it->in);
            if (ik.len < TL_IKEY_TRAILER ||
                tl_slice_cmp(tl_ikey_user(ik), tl_buf_slice(&it->saved_key)) < 0)
                break;
        }
        if (!check_in(it))
            return;
        it->dir = DIR_REV;
    }
    find_prev(it);
}

bool tr_iter_valid(const tr_iter *it)
{
    return it->valid;
}

tl_slice tr_iter_key(const tr_iter *it)
{
    if (it->dir == DIR_REV)
        return tl_buf_slice(&it->saved_key);
    return tl_ikey_user(tl_iter_key(it->in));
}

static uint8_t cur_type(const tr_iter *it)
{
    if (it->dir == DIR_REV)
        return it->saved_type;
    tl_slice ik = tl_iter_key(it->in);
    return ik.len >= TL_IKEY_TRAILER ? tl_ikey_type(ik) : TL_TYPE_VALUE;
}

static tl_slice raw_value(const tr_iter *it)
{
    if (it->dir == DIR_REV)
        return tl_buf_slice(&it->saved_val);
    return tl_iter_value(it->in);
}

tl_slice tr_iter_value(const tr_iter *it)
{
    if (cur_type(it) != TL_TYPE_BLOB)
        return raw_value(it);
    /* Reading the blob changes only the cache and, on failure, the status:
     * the position is the same, hence the cast. */
    tr_iter *m = (tr_iter *)it;
    if (m->blob_gen != m->gen || !m->blob.data) {
        int rc = tr_blob_read_all(m->t, raw_value(it), &m->blob);
        if (rc < 0) {
            m->status = rc;
            m->valid = false;
            return tl_slice_make(NULL, 0);
        }
        m->blob_gen = m->gen;
    }
    return tl_buf_slice(&m->blob);
}

uint64_t tr_iter_value_length(const tr_iter *it)
{
    tl_slice raw = raw_value(it);
    if (cur_type(it) != TL_TYPE_BLOB)
        return raw.len;
    bl_ref r;
    return bl_ref_decode(raw, &r) == 0 ? r.length : 0;
}

int tr_iter_status(const tr_iter *it)
{
    return it->status;
}

int tr_iter_new(tr_tree *t, uint64_t read_seq, const tl_slice *lower, const tl_slice *upper,
                tr_iter **out)
{
    tr_iter *it = calloc(1, sizeof *it);
    if (!it)
        return tl_err(TALUS_ENOMEM, "out of memory creating an iterator");
    it->t = t;
    it->seq = read_seq;
    it->view = tr_view_acquire(t);
    it->in = tr_view_iter(t, it->view, true);
    int rc = 0;
    if (!it->in)
        rc = tl_err(TALUS_ENOMEM, "out of memory creating an iterator");
    if (rc == 0 && lower) {
        it->has_lower = true;
        rc = tl_buf_set(&it->lower, lower->data, lower->len);
    }
    if (rc == 0 && upper) {
        it->has_upper = true;
        rc = tl_buf_set(&it->upper, upper->data, upper->len);
    }
    if (rc < 0) {
        tr_iter_free(it);
        return rc;
    }
    *out = it;
    return 0;
}

void tr_iter_free(tr_iter *it)
{
    if (!it)
        return;
    tl_iter_destroy(it->in);
    tr_view_release(it->view);
    tl_buf_free(&it->lower);
    tl_buf_free(&it->upper);
    tl_buf_free(&it->saved_key);
    tl_buf_free(&it->saved_val);
    tl_buf_free(&it->scratch);
    tl_buf_free(&it->blob);
    free(it);
}
