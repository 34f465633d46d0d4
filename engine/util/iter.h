/*
 * iter.h - the internal iterator: one interface over memtables, blocks,
 * tables, levels and merges. Keys are internal keys (ikey.h) unless an
 * implementation says otherwise.
 *
 * Contract:
 *  - A new iterator is unpositioned (valid() false) until a seek.
 *  - seek(target): first entry with key >= target (internal order).
 *  - seek_for_prev(target): last entry with key <= target.
 *  - key()/value() are valid only while valid() and until the next move.
 *  - On error the iterator becomes invalid and status() returns it.
 *  - One thread at a time.
 */
#ifndef TL_ITER_H
#define TL_ITER_H

#include <stdbool.h>

#include "util/slice.h"

typedef struct tl_iter tl_iter;

typedef struct tl_iter_ops {
    void (*seek_first)(tl_iter *it);
    void (*seek_last)(tl_iter *it);
    void (*seek)(tl_iter *it, tl_slice target);
    void (*seek_for_prev)(tl_iter *it, tl_slice target);
    void (*next)(tl_iter *it);
    void (*prev)(tl_iter *it);
    bool (*valid)(const tl_iter *it);
    tl_slice (*key)(const tl_iter *it);
    tl_slice (*value)(const tl_iter *it);
    int (*status)(const tl_iter *it);
    void (*destroy)(tl_iter *it);
} tl_iter_ops;

struct tl_iter {
    const tl_iter_ops *ops;
};

static inline void tl_iter_seek_first(tl_iter *it)
{
    it->ops->seek_first(it);
}
static inline void tl_iter_seek_last(tl_iter *it)
{
    it->ops->seek_last(it);
}
static inline void tl_iter_seek(tl_iter *it, tl_slice t)
{
    it->ops->seek(it, t);
}
static inline void tl_iter_seek_for_prev(tl_iter *it, tl_slice t)
{
    it->ops->seek_for_prev(it, t);
}
static inline void tl_iter_next(tl_iter *it)
{
    it->ops->next(it);
}
static inline void tl_iter_prev(tl_iter *it)
{
    it->ops->prev(it);
}
static inline bool tl_iter_valid(const tl_iter *it)
{
    return it->ops->valid(it);
}
static inline tl_slice tl_iter_key(const tl_iter *it)
{
    return it->ops->key(it);
}
static inline tl_slice tl_iter_value(const tl_iter *it)
{
    return it->ops->value(it);
}
static inline int tl_iter_status(const tl_iter *it)
{
    return it->ops->status(it);
}
static inline void tl_iter_destroy(tl_iter *it)
{
    if (it)
        it->ops->destroy(it);
}

/* An iterator that is always empty, carrying status rc (0 or an error).
 * Returns NULL only on ENOMEM. */
tl_iter *tl_iter_empty(int rc);

/* Merge n child iterators (internal-key order) into one; takes ownership of
 * the children. Works in both directions. Entries with equal keys come out
 * in child order (child 0 first). */
tl_iter *tl_iter_merge(tl_iter **children, int n);

#endif
