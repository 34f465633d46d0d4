/*
 * level_iter.c - a lazy concatenating iterator over tables that are sorted
 * by key and do not overlap (a level >= 1, or a compaction's run of inputs).
 *
 * Only the table under the cursor is open (through the table cache, which
 * pins its reader); moving past its end closes it and opens the neighbour.
 * Positioning uses a binary search over the files' largest keys, so a seek
 * opens one table, plus its neighbours only when it holds nothing at or past
 * the target.
 *
 * Invariant: when valid, `cur` is the iterator of files[idx] and is valid.
 * An error from a table (open or read) makes the iterator invalid and sticks
 * in `status` until the next positioning call.
 */
#include <stdlib.h>

#include "compaction/cp_internal.h"
#include "util/err.h"
#include "util/ikey.h"

typedef struct level_iter {
    tl_iter base;
    tl_table_cache *tc;
    ver_version *hold;
    ver_file *const *files;
    size_t n;
    bool fill_cache;
    size_t idx; /* file under the cursor; meaningful only when cur != NULL */
    tl_iter *cur;
    int status;
} level_iter;

static void close_cur(level_iter *li)
{
    tl_iter_destroy(li->cur);
    li->cur = NULL;
}

/* Open files[i] under the cursor (unpositioned). false on error. */
static bool open_file(level_iter *li, size_t i)
{
    close_cur(li);
    const ver_file *f = li->files[i];
    li->cur = tl_table_cache_iter(li->tc, f->number, f->size, li->fill_cache);
    if (!li->cur) {
        li->status =
            tl_err(TALUS_ENOMEM, "out of memory opening table %llu", (unsigned long long)f->number);
        return false;
    }
    li->idx = i;
    return true;
}

/* cur is invalid: keep its error, or step forward to the next non-empty
 * table. */
static void skip_forward(level_iter *li)
{
    while (li->cur && !tl_iter_valid(li->cur)) {
        int rc = tl_iter_status(li->cur);
        if (rc < 0) {
            li->status = rc;
            close_cur(li);
            return;
        }
        if (li->idx + 1 >= li->n) {
            close_cur(li);
            return;
        }
        if (!open_file(li, li->idx + 1))
            return;
        tl_iter_seek_first(li->cur);
    }
}

static void skip_backward(level_iter *li)
{
    while (li->cur && !tl_iter_valid(li->cur)) {
        int rc = tl_iter_status(li->cur);
        if (rc < 0) {
            li->status = rc;
            close_cur(li);
            return;
        }
        if (li->idx == 0) {
            close_cur(li);
            return;
        }
        if (!open_file(li, li->idx - 1))
            return;
        tl_iter_seek_last(li->cur);
    }
}

/* Index of the first file whose largest internal key >= target (n if none). */
static size_t find_first_ge(const level_iter *li, tl_slice target)
{
    size_t lo = 0, hi = li->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ver_file *f = li->files[mid];
        if (f->largest_len < TL_IKEY_TRAILER ||
            tl_ikey_cmp_raw(f->largest, f->largest_len, target.data, target.len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void li_seek_first(tl_iter *it)
{
    level_iter *li = (level_iter *)it;
    li->status = 0;
    close_cur(li);
    if (li->n == 0 || !open_file(li, 0))
        return;
    tl_iter_seek_first(li->cur);
    skip_forward(li);
}

static void li_seek_last(tl_iter *it)
{
    level_iter *li = (level_iter *)it;
    li->status = 0;
    close_cur(li);
    if (li->n == 0 || !open_file(li, li->n - 1))
        return;
    tl_iter_seek_last(li->cur);
    skip_backward(li);
}

static bool target_ok(level_iter *li, tl_slice target)
{
    if (target.len >= TL_IKEY_TRAILER)
        return true;
    li->status = tl_err(TALUS_EINVAL, "level iterator: seek target shorter than a key trailer");
    return false;
}

static void li_seek(tl_iter *it, tl_slice target)
{
    level_iter *li = (level_iter *)it;
    li->status = 0;
    close_cur(li);
    if (!target_ok(li, target))
        return;
    size_t i = find_first_ge(li, target);
    if (i >= li->n || !open_file(li, i))
        return;
    tl_iter_seek(li->cur, target);
    skip_forward(li);
}

static void li_seek_for_prev(tl_iter *it, tl_slice target)
{
    level_iter *li = (level_iter *)it;
    li->status = 0;
    close_cur(li);
    if (!target_ok(li, target) || li->n == 0)
        return;
    /* Every key <= target lies in files [0, i]: files past i start after
     * the largest key of file i, which is >= target. */
    size_t i = find_first_ge(li, target);
    if (i >= li->n) {
        if (!open_file(li, li->n - 1))
            return;
        tl_iter_seek_last(li->cur);
    } else {
        if (!open_file(li, i))
            return;
        tl_iter_seek_for_prev(li->cur, target);
    }
    skip_backward(li);
}

static void li_next(tl_iter *it)
{
    level_iter *li = (level_iter *)it;
    if (!li->cur)
        return;
    tl_iter_next(li->cur);
    skip_forward(li);
}

static void li_prev(tl_iter *it)
{
    level_iter *li = (level_iter *)it;
    if (!li->cur)
        return;
    tl_iter_prev(li->cur);
    skip_backward(li);
}

static bool li_valid(const tl_iter *it)
{
    const level_iter *li = (const level_iter *)it;
    return li->cur != NULL && tl_iter_valid(li->cur);
}

static tl_slice li_key(const tl_iter *it)
{
    return tl_iter_key(((const level_iter *)it)->cur);
}

static tl_slice li_value(const tl_iter *it)
{
    return tl_iter_value(((const level_iter *)it)->cur);
}

static int li_status(const tl_iter *it)
{
    const level_iter *li = (const level_iter *)it;
    if (li->status < 0)
        return li->status;
    return li->cur ? tl_iter_status(li->cur) : 0;
}

static void li_destroy(tl_iter *it)
{
    level_iter *li = (level_iter *)it;
    close_cur(li);
    if (li->hold)
        ver_version_unref(li->hold);
    free(li);
}

static const tl_iter_ops level_iter_ops = {
    .seek_first = li_seek_first,
    .seek_last = li_seek_last,
    .seek = li_seek,
    .seek_for_prev = li_seek_for_prev,
    .next = li_next,
    .prev = li_prev,
    .valid = li_valid,
    .key = li_key,
    .value = li_value,
    .status = li_status,
    .destroy = li_destroy,
};

tl_iter *cp_concat_iter_new(tl_table_cache *tc, ver_file *const *files, size_t n, ver_version *hold,
                            bool fill_cache)
{
    level_iter *li = calloc(1, sizeof *li);
    if (!li) {
        tl_err(TALUS_ENOMEM, "out of memory creating a level iterator");
        return NULL;
    }
    li->base.ops = &level_iter_ops;
    li->tc = tc;
    li->files = files;
    li->n = n;
    li->fill_cache = fill_cache;
    if (hold) {
        ver_version_ref(hold);
        li->hold = hold;
    }
    return &li->base;
}

tl_iter *cp_level_iter(tl_table_cache *tc, ver_version *v, int level, bool fill_cache)
{
    if (level < 1 || level >= v->num_levels || level >= VER_MAX_LEVELS) {
        tl_err(TALUS_EINVAL, "level iterator: level %d is not a sorted level", level);
        return tl_iter_empty(TALUS_EINVAL);
    }
    return cp_concat_iter_new(tc, v->files[level], v->nfiles[level], v, fill_cache);
}
