/*
 * iter.c - public iterators: bounds and prefix turned into a [lower, upper)
 * range over the tree's user iterator.
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_internal.h"
#include "util/err.h"

struct talus_iter {
    tr_iter *it;
};

void talus_iter_options_init(talus_iter_options *o)
{
    memset(o, 0, sizeof *o);
}

/* The smallest key greater than every key starting with prefix, written to
 * out; false when there is none (prefix is all 0xff). */
static bool prefix_successor(const uint8_t *p, size_t n, tl_buf *out)
{
    while (n > 0 && p[n - 1] == 0xff)
        n--;
    if (n == 0)
        return false;
    if (tl_buf_set(out, p, n) < 0)
        return false;
    out->data[n - 1]++;
    return true;
}

int talus_iter_new(talus_tree *t, const talus_iter_options *o, talus_iter **out)
{
    if (!t || !out)
        return tl_err(TALUS_EINVAL, "NULL argument to talus_iter_new");
    if (t->dropped || !t->tr)
        return tl_err(TALUS_ECLOSED, "tree \"%s\" was dropped", t->name);
    talus_iter_options defaults;
    if (!o) {
        talus_iter_options_init(&defaults);
        o = &defaults;
    }
    tl_slice lower = tl_slice_make(o->lower, o->lower_len);
    tl_slice upper = tl_slice_make(o->upper, o->upper_len);
    bool has_lower = o->lower != NULL, has_upper = o->upper != NULL;
    tl_buf succ = {0};
    if (o->prefix && o->prefix_len > 0) {
        tl_slice pre = tl_slice_make(o->prefix, o->prefix_len);
        if (!has_lower || tl_slice_cmp(pre, lower) > 0) {
            lower = pre;
            has_lower = true;
        }
        if (prefix_successor(o->prefix, o->prefix_len, &succ)) {
            tl_slice s = tl_buf_slice(&succ);
            if (!has_upper || tl_slice_cmp(s, upper) < 0) {
                upper = s;
                has_upper = true;
            }
        }
    }
    uint64_t seq = o->snapshot ? o->snapshot->seq : talus_seqno(t->db);
    talus_iter *it = calloc(1, sizeof *it);
    int rc;
    if (!it)
        rc = tl_err(TALUS_ENOMEM, "out of memory creating an iterator");
    else
        rc = tr_iter_new(t->tr, seq, has_lower ? &lower : NULL, has_upper ? &upper : NULL, &it->it);
    tl_buf_free(&succ);
    if (rc < 0) {
        free(it);
        return rc;
    }
    *out = it;
    return 0;
}

void talus_iter_free(talus_iter *it)
{
    if (!it)
        return;
    tr_iter_free(it->it);
    free(it);
}

void talus_iter_seek_first(talus_iter *it)
{
    tr_iter_seek_first(it->it);
}

void talus_iter_seek_last(talus_iter *it)
{
    tr_iter_seek_last(it->it);
}

void talus_iter_seek(talus_iter *it, const void *key, size_t klen)
{
    tr_iter_seek(it->it, tl_slice_make(key, klen));
}

void talus_iter_seek_for_prev(talus_iter *it, const void *key, size_t klen)
{
    tr_iter_seek_for_prev(it->it, tl_slice_make(key, klen));
}

void talus_iter_next(talus_iter *it)
{
    tr_iter_next(it->it);
}

void talus_iter_prev(talus_iter *it)
{
    tr_iter_prev(it->it);
}

int talus_iter_valid(const talus_iter *it)
{
    return tr_iter_valid(it->it);
}

const void *talus_iter_key(const talus_iter *it, size_t *klen)
{
    tl_slice k = tr_iter_key(it->it);
    if (klen)
        *klen = k.len;
    return k.data;
}

const void *talus_iter_value(const talus_iter *it, size_t *vlen)
{
    tl_slice v = tr_iter_value(it->it);
    if (vlen)
        *vlen = v.len;
    return v.data;
}

uint64_t talus_iter_value_length(const talus_iter *it)
{
    return tr_iter_value_length(it->it);
}

int talus_iter_status(const talus_iter *it)
{
    return tr_iter_status(it->it);
}

static int edge_key(talus_tree *t, bool last, void **key, size_t *klen)
{
    talus_iter *it;
    TRY(talus_iter_new(t, NULL, &it));
    if (last)
        talus_iter_seek_last(it);
    else
        talus_iter_seek_first(it);
    int rc = talus_iter_status(it);
    if (rc == 0 && !talus_iter_valid(it))
        rc = TALUS_ENOTFOUND;
    if (rc == 0) {
        size_t n;
        const void *k = talus_iter_key(it, &n);
        void *copy = malloc(n);
        if (!copy) {
            rc = tl_err(TALUS_ENOMEM, "out of memory copying a key");
        } else {
            memcpy(copy, k, n);
            *key = copy;
            *klen = n;
        }
    }
    talus_iter_free(it);
    return rc;
}

int talus_first_key(talus_tree *t, void **key, size_t *klen)
{
    return edge_key(t, false, key, klen);
}

int talus_last_key(talus_tree *t, void **key, size_t *klen)
{
    return edge_key(t, true, key, klen);
}
