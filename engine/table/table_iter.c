/*
 * table_iter.c - the two-level table iterator: an index block iterator
 * picks the data block, a block iterator walks it. Works in both
 * directions; the current data block stays pinned (cache handle or the
 * iterator's own buffers) while the iterator is on it.
 *
 * Invariants: valid() iff the data iterator is valid and no error was
 * seen; when valid, the index iterator is on the entry of the data block
 * that is loaded (block_off). Errors are sticky: the first one is kept.
 */
#include <stdlib.h>

#include "table/table_internal.h"
#include "util/err.h"
#include "util/ikey.h"

typedef struct tbl_titer {
    tl_iter base;
    tbl_reader *r;
    bool fill_cache;
    int status;
    bool have_block;
    uint64_t block_off;
    tbl_pinned pin;
    tbl_block_iter ii; /* over r->index */
    tbl_block_iter di; /* over pin.blk */
} tbl_titer;

static void fail(tbl_titer *t, int rc)
{
    if (t->status == 0)
        t->status = rc;
    tbl_bi_invalidate(&t->di);
}

/* Load the block the index iterator points at (unless already loaded).
 * false on error (recorded) or when the index iterator is not valid. */
static bool load_block(tbl_titer *t)
{
    if (!tbl_bi_valid(&t->ii)) {
        int rc = tbl_bi_status(&t->ii);
        if (rc)
            fail(t, rc);
        tbl_bi_invalidate(&t->di);
        return false;
    }
    tbl_handle h;
    int rc = tbl_index_handle(t->r, tbl_bi_value(&t->ii), t->r->footer.index.offset, &h);
    if (rc < 0) {
        fail(t, rc);
        return false;
    }
    if (t->have_block && t->block_off == h.offset)
        return true;
    tbl_pinned_release(t->r, &t->pin);
    t->have_block = false;
    rc = tbl_reader_load_block(t->r, h, t->fill_cache, &t->pin);
    if (rc < 0) {
        fail(t, rc);
        return false;
    }
    t->have_block = true;
    t->block_off = h.offset;
    tbl_bi_set(&t->di, &t->pin.blk, h.offset);
    return true;
}

/* Move forward past exhausted (or empty) data blocks. */
static void skip_forward(tbl_titer *t)
{
    while (!tbl_bi_valid(&t->di)) {
        int rc = tbl_bi_status(&t->di);
        if (rc) {
            fail(t, rc);
            return;
        }
        tbl_bi_next(&t->ii);
        if (!load_block(t))
            return;
        tbl_bi_seek_first(&t->di);
    }
}

static void skip_backward(tbl_titer *t)
{
    while (!tbl_bi_valid(&t->di)) {
        int rc = tbl_bi_status(&t->di);
        if (rc) {
            fail(t, rc);
            return;
        }
        tbl_bi_prev(&t->ii);
        if (!load_block(t))
            return;
        tbl_bi_seek_last(&t->di);
    }
}

static void ti_seek_first(tl_iter *it)
{
    tbl_titer *t = (tbl_titer *)it;
    if (t->status)
        return;
    tbl_bi_seek_first(&t->ii);
    if (!load_block(t))
        return;
    tbl_bi_seek_first(&t->di);
    skip_forward(t);
}

static void ti_seek_last(tl_iter *it)
{
    tbl_titer *t = (tbl_titer *)it;
    if (t->status)
        return;
    tbl_bi_seek_last(&t->ii);
    if (!load_block(t))
        return;
    tbl_bi_seek_last(&t->di);
    skip_backward(t);
}

static void ti_seek(tl_iter *it, tl_slice target)
{
    tbl_titer *t = (tbl_titer *)it;
    if (t->status)
        return;
    tbl_index_seek(t->r, &t->ii, target);
    if (!load_block(t))
        return;
    tbl_bi_seek(&t->di, target);
    skip_forward(t);
}

/* Blocks before the one the index picks for target hold only keys below
 * target and blocks after it only keys above, so the answer is in that
 * block or is the last entry of an earlier one. */
static void ti_seek_for_prev(tl_iter *it, tl_slice target)
{
    tbl_titer *t = (tbl_titer *)it;
    if (t->status)
        return;
    tbl_index_seek(t->r, &t->ii, target);
    if (!tbl_bi_valid(&t->ii)) {
        if (tbl_bi_status(&t->ii)) {
            fail(t, tbl_bi_status(&t->ii));
            return;
        }
        {
            ti_seek_last(it); /* target is past every key */
            return;
        }
    }
    if (!load_block(t))
        return;
    tbl_bi_seek_for_prev(&t->di, target);
    skip_backward(t);
}

static void ti_next(tl_iter *it)
{
    tbl_titer *t = (tbl_titer *)it;
    if (t->status || !tbl_bi_valid(&t->di))
        return;
    tbl_bi_next(&t->di);
    skip_forward(t);
}

static void ti_prev(tl_iter *it)
{
    tbl_titer *t = (tbl_titer *)it;
    if (t->status || !tbl_bi_valid(&t->di))
        return;
    tbl_bi_prev(&t->di);
    skip_backward(t);
}

static bool ti_valid(const tl_iter *it)
{
    const tbl_titer *t = (const tbl_titer *)it;
    return t->status == 0 && tbl_bi_valid(&t->di);
}

static tl_slice ti_key(const tl_iter *it)
{
    return tbl_bi_key(&((const tbl_titer *)it)->di);
}

static tl_slice ti_value(const tl_iter *it)
{
    return tbl_bi_value(&((const tbl_titer *)it)->di);
}

static int ti_status(const tl_iter *it)
{
    return ((const tbl_titer *)it)->status;
}

static void ti_destroy(tl_iter *it)
{
    tbl_titer *t = (tbl_titer *)it;
    tbl_pinned_free(t->r, &t->pin);
    tbl_bi_free(&t->ii);
    tbl_bi_free(&t->di);
    free(t);
}

static const tl_iter_ops titer_ops = {
    .seek_first = ti_seek_first,
    .seek_last = ti_seek_last,
    .seek = ti_seek,
    .seek_for_prev = ti_seek_for_prev,
    .next = ti_next,
    .prev = ti_prev,
    .valid = ti_valid,
    .key = ti_key,
    .value = ti_value,
    .status = ti_status,
    .destroy = ti_destroy,
};

tl_iter *tbl_reader_iter(tbl_reader *r, bool fill_cache)
{
    tbl_titer *t = calloc(1, sizeof *t);
    if (!t) {
        tl_err(TALUS_ENOMEM, "out of memory creating a table iterator");
        return NULL;
    }
    t->base.ops = &titer_ops;
    t->r = r;
    t->fill_cache = fill_cache;
    tbl_bi_init(&t->ii, true, r->name);
    tbl_bi_init(&t->di, true, r->name);
    tbl_bi_set(&t->ii, &r->index, r->footer.index.offset);
    return &t->base;
}
