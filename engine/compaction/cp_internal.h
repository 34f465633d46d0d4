/*
 * cp_internal.h - helpers shared by the files of engine/compaction (not for
 * use outside the module).
 */
#ifndef TL_CP_INTERNAL_H
#define TL_CP_INTERNAL_H

#include "compaction/compaction.h"
#include "util/ikey.h"

/* A lazy concatenation of `n` tables sorted by key and not overlapping (a
 * sorted level, or a run of one). `files` is borrowed: it must outlive the
 * iterator. If `hold` is not NULL a reference on it is taken and dropped at
 * destroy. NULL only on ENOMEM. */
tl_iter *cp_concat_iter_new(tl_table_cache *tc, ver_file *const *files, size_t n, ver_version *hold,
                            bool fill_cache);

/* The user-key bounds of a file (empty slices if a key is malformed). */
static inline tl_slice cp_file_lo(const ver_file *f)
{
    if (f->smallest_len < TL_IKEY_TRAILER)
        return tl_slice_make(f->smallest, 0);
    return tl_slice_make(f->smallest, f->smallest_len - TL_IKEY_TRAILER);
}

static inline tl_slice cp_file_hi(const ver_file *f)
{
    if (f->largest_len < TL_IKEY_TRAILER)
        return tl_slice_make(f->largest, 0);
    return tl_slice_make(f->largest, f->largest_len - TL_IKEY_TRAILER);
}

#endif
