/*
 * iter_merge.c - merging iterator over n children, both directions.
 *
 * Total order: (internal key, child index). Going forward equal keys come
 * out lowest child first; going backward exactly the reverse, so next()
 * followed by prev() (or the other way round) returns to the same entry.
 *
 * Invariants:
 *  - heap[0..hn) holds the indexes of the valid children, arranged as a
 *    min-heap on (key, index) when dir == FWD and a max-heap when dir == BWD;
 *    heap[0] is the current entry.
 *  - keys[i] caches child i's key while it is in the heap, so comparisons do
 *    not go through the child's vtable (this is every read's hot path).
 *  - FWD: every child not in the heap is exhausted (positioned past the
 *    end); every child in the heap sits on its first entry >= current in
 *    the total order. BWD mirrors this.
 *  - A child that goes invalid with an error makes the merge invalid
 *    (err set) until the next seek: skipping its entries silently would
 *    return wrong data.
 *
 * Direction switch (as in LevelDB/RocksDB): keep the current child where it
 * is, re-seek every other child to the far side of the current entry, then
 * rebuild the heap for the new direction; the current entry is again at the
 * top and the ordinary step follows.
 */
#include <stdlib.h>

#include "util/err.h"
#include "util/ikey.h"
#include "util/iter.h"

enum { FWD = 0, BWD = 1 };

typedef struct merge_iter {
    tl_iter base;
    int n;
    int hn;
    int dir;
    int err;
    tl_iter **child;
    tl_slice *keys;
    int *heap;
} merge_iter;

/* (key, index) order of children a and b: < 0 if a comes first forward. */
static inline int child_cmp(const merge_iter *m, int a, int b)
{
    int c = tl_ikey_cmp(m->keys[a], m->keys[b]);
    if (c)
        return c;
    return a < b ? -1 : (a > b ? 1 : 0);
}

/* True if a must sit above b in the heap for the current direction. */
static inline bool heap_before(const merge_iter *m, int a, int b)
{
    int c = child_cmp(m, a, b);
    return m->dir == FWD ? c < 0 : c > 0;
}

static void sift_down(merge_iter *m, int pos)
{
    int *h = m->heap;
    int x = h[pos];
    for (;;) {
        int l = 2 * pos + 1;
        if (l >= m->hn)
            break;
        int best = l;
        if (l + 1 < m->hn && heap_before(m, h[l + 1], h[l]))
            best = l + 1;
        if (!heap_before(m, h[best], x))
            break;
        h[pos] = h[best];
        pos = best;
    }
    h[pos] = x;
}

/* Records child i's error, if it stopped because of one. */
static void note_invalid(merge_iter *m, int i)
{
    int rc = tl_iter_status(m->child[i]);
    if (rc < 0 && m->err == 0)
        m->err = rc;
}

/* Rebuild the heap from every valid child for direction dir. */
static void build_heap(merge_iter *m, int dir)
{
    m->dir = dir;
    m->hn = 0;
    for (int i = 0; i < m->n; i++) {
        tl_iter *c = m->child[i];
        if (tl_iter_valid(c)) {
            m->keys[i] = tl_iter_key(c);
            m->heap[m->hn++] = i;
        } else {
            note_invalid(m, i);
        }
    }
    for (int p = m->hn / 2 - 1; p >= 0; p--)
        sift_down(m, p);
}

static void m_seek_first(tl_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    m->err = 0;
    for (int i = 0; i < m->n; i++)
        tl_iter_seek_first(m->child[i]);
    build_heap(m, FWD);
}

static void m_seek_last(tl_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    m->err = 0;
    for (int i = 0; i < m->n; i++)
        tl_iter_seek_last(m->child[i]);
    build_heap(m, BWD);
}

static void m_seek(tl_iter *it, tl_slice target)
{
    merge_iter *m = (merge_iter *)it;
    m->err = 0;
    for (int i = 0; i < m->n; i++)
        tl_iter_seek(m->child[i], target);
    build_heap(m, FWD);
}

static void m_seek_for_prev(tl_iter *it, tl_slice target)
{
    merge_iter *m = (merge_iter *)it;
    m->err = 0;
    for (int i = 0; i < m->n; i++)
        tl_iter_seek_for_prev(m->child[i], target);
    build_heap(m, BWD);
}

static bool m_valid(const tl_iter *it)
{
    const merge_iter *m = (const merge_iter *)it;
    return m->err == 0 && m->hn > 0;
}

/* Was BWD at (K, cur): put every other child on its first entry after
 * (K, cur) in the total order. Children with a lower index hold (K, j)
 * before (K, cur), so they skip past K; higher ones may stay on K. */
static void switch_to_forward(merge_iter *m)
{
    int cur = m->heap[0];
    tl_slice k = m->keys[cur];
    for (int i = 0; i < m->n; i++) {
        if (i == cur)
            continue;
        tl_iter *c = m->child[i];
        tl_iter_seek(c, k);
        if (i < cur) {
            while (tl_iter_valid(c) && tl_ikey_cmp(tl_iter_key(c), k) == 0)
                tl_iter_next(c);
        }
    }
    build_heap(m, FWD);
}

/* Mirror of switch_to_forward: every other child on its last entry before
 * (K, cur); children with a higher index must also step back over K. */
static void switch_to_backward(merge_iter *m)
{
    int cur = m->heap[0];
    tl_slice k = m->keys[cur];
    for (int i = 0; i < m->n; i++) {
        if (i == cur)
            continue;
        tl_iter *c = m->child[i];
        tl_iter_seek_for_prev(c, k);
        if (i > cur) {
            while (tl_iter_valid(c) && tl_ikey_cmp(tl_iter_key(c), k) == 0)
                tl_iter_prev(c);
        }
    }
    build_heap(m, BWD);
}

/* Child at the top moved; restore the heap. */
static void top_moved(merge_iter *m)
{
    int cur = m->heap[0];
    tl_iter *c = m->child[cur];
    if (TL_LIKELY(tl_iter_valid(c))) {
        m->keys[cur] = tl_iter_key(c);
    } else {
        note_invalid(m, cur);
        m->heap[0] = m->heap[--m->hn];
    }
    if (m->hn > 1)
        sift_down(m, 0);
}

/* One step of the smallest (forward) or largest (backward) child, after
 * turning the other children around if the direction changed. */
static void m_step(tl_iter *it, int dir)
{
    merge_iter *m = (merge_iter *)it;
    if (!m_valid(it))
        return;
    if (m->dir != dir) {
        if (dir == FWD)
            switch_to_forward(m);
        else
            switch_to_backward(m);
        if (!m_valid(it))
            return;
    }
    tl_iter *top = m->child[m->heap[0]];
    if (dir == FWD)
        tl_iter_next(top);
    else
        tl_iter_prev(top);
    top_moved(m);
}

static void m_next(tl_iter *it)
{
    m_step(it, FWD);
}

static void m_prev(tl_iter *it)
{
    m_step(it, BWD);
}

static tl_slice m_key(const tl_iter *it)
{
    const merge_iter *m = (const merge_iter *)it;
    return m->keys[m->heap[0]];
}

static tl_slice m_value(const tl_iter *it)
{
    const merge_iter *m = (const merge_iter *)it;
    return tl_iter_value(m->child[m->heap[0]]);
}

static int m_status(const tl_iter *it)
{
    const merge_iter *m = (const merge_iter *)it;
    if (m->err)
        return m->err;
    for (int i = 0; i < m->n; i++) {
        int rc = tl_iter_status(m->child[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void m_destroy(tl_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (int i = 0; i < m->n; i++)
        tl_iter_destroy(m->child[i]);
    free(m);
}

static const tl_iter_ops merge_ops = {
    .seek_first = m_seek_first,
    .seek_last = m_seek_last,
    .seek = m_seek,
    .seek_for_prev = m_seek_for_prev,
    .next = m_next,
    .prev = m_prev,
    .valid = m_valid,
    .key = m_key,
    .value = m_value,
    .status = m_status,
    .destroy = m_destroy,
};

tl_iter *tl_iter_merge(tl_iter **children, int n)
{
    if (n <= 0)
        return tl_iter_empty(0);
    if (n == 1)
        return children[0];
    /* One allocation: struct, child pointers, cached keys, heap. */
    size_t sz = sizeof(merge_iter) + (size_t)n * (sizeof(tl_iter *) + sizeof(tl_slice)) +
                (size_t)n * sizeof(int);
    merge_iter *m = malloc(sz);
    if (!m) {
        /* We own the children: do not leak them on failure. */
        for (int i = 0; i < n; i++)
            tl_iter_destroy(children[i]);
        return NULL;
    }
    m->base.ops = &merge_ops;
    m->n = n;
    m->hn = 0;
    m->dir = FWD;
    m->err = 0;
    m->keys = (tl_slice *)(m + 1);
    m->child = (tl_iter **)(m->keys + n);
    m->heap = (int *)(m->child + n);
    for (int i = 0; i < n; i++)
        m->child[i] = children[i];
    return &m->base;
}
