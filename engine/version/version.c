/*
 * version.c - table file descriptors (ver_file) and versions: reference
 * counting, obsolete-file detection, and the level queries readers and the
 * compaction picker use.
 *
 * Two counts live on a ver_file:
 *   refs  - memory: every version, edit or caller holding the struct. The
 *           struct is freed when it reaches zero.
 *   vrefs - membership: how many versions (alive, not yet destroyed) contain
 *           the file. When it reaches zero the file is in no version at all;
 *           if the version that dropped it had been installed in a set, the
 *           file number is reported to the set's obsolete callback.
 * A file in the current version always has vrefs >= 1 (the current version
 * holds it), so it can never be reported. Both counts are atomics: the last
 * reference to a version is often dropped by a reader thread.
 */
#include <stdlib.h>

#include "util/err.h"
#include "util/ikey.h"
#include "version/version_int.h"

/* ---- Files -------------------------------------------------------------- */

static uint8_t *dup_bytes(tl_slice s)
{
    uint8_t *p = malloc(s.len ? s.len : 1);
    if (p && s.len)
        memcpy(p, s.data, s.len);
    return p;
}

ver_file *ver_file_new(uint64_t number, uint64_t size, tl_slice smallest, tl_slice largest,
                       uint64_t min_seq, uint64_t max_seq, uint64_t entries, uint64_t deletions)
{
    ver_file *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->smallest = dup_bytes(smallest);
    f->largest = dup_bytes(largest);
    if (!f->smallest || !f->largest) {
        free(f->smallest);
        free(f->largest);
        free(f);
        return NULL;
    }
    f->number = number;
    f->size = size;
    f->smallest_len = smallest.len;
    f->largest_len = largest.len;
    f->min_seq = min_seq;
    f->max_seq = max_seq;
    f->entries = entries;
    f->deletions = deletions;
    atomic_init(&f->refs, 1);
    atomic_init(&f->vrefs, 0);
    return f;
}

void ver_file_ref(ver_file *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void ver_file_unref(ver_file *f)
{
    if (!f)
        return;
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(f->smallest);
    free(f->largest);
    free(f);
}

const char *ver_file_check(const ver_file *f)
{
    if (f->smallest_len < TL_IKEY_TRAILER || f->largest_len < TL_IKEY_TRAILER)
        return "key shorter than an internal key";
    if (f->smallest_len > VER_MAX_IKEY || f->largest_len > VER_MAX_IKEY)
        return "key longer than the key limit";
    if (tl_ikey_cmp_raw(f->smallest, f->smallest_len, f->largest, f->largest_len) > 0)
        return "smallest key is after largest key";
    if (f->min_seq > f->max_seq)
        return "min seq is above max seq";
    if (f->deletions > f->entries)
        return "more deletions than entries";
    return NULL;
}

static tl_slice file_small_user(const ver_file *f)
{
    return tl_slice_make(f->smallest, f->smallest_len - TL_IKEY_TRAILER);
}

static tl_slice file_large_user(const ver_file *f)
{
    return tl_slice_make(f->largest, f->largest_len - TL_IKEY_TRAILER);
}

/* ---- Versions ----------------------------------------------------------- */

void ver_version_ref(ver_version *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

void ver_version_unref(ver_version *v)
{
    if (!v)
        return;
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Unlink first: from here on ver_set_live_files no longer counts this
     * version, and its files are released below. */
    bool report = v->vset ? ver_set_unlink_version(v->vset, v) : false;
    for (int l = 0; l <= VER_BLOB_LEVEL; l++) {
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            ver_file *f = v->files[l][i];
            if (atomic_fetch_sub_explicit(&f->vrefs, 1, memory_order_acq_rel) == 1 && report)
                ver_set_report_obsolete(v->vset, f->number, f->blob);
            ver_file_unref(f);
        }
        free(v->files[l]);
    }
    free(v);
}

bool ver_version_has_blob(const ver_version *v, uint64_t number)
{
    size_t lo = 0, hi = v->nfiles[VER_BLOB_LEVEL];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t m = v->files[VER_BLOB_LEVEL][mid]->number;
        if (m == number)
            return true;
        if (m < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

uint64_t ver_version_level_bytes(const ver_version *v, int level)
{
    uint64_t sum = 0;
    if (level < 0 || level >= v->num_levels)
        return 0;
    for (size_t i = 0; i < v->nfiles[level]; i++)
        sum += v->files[level][i]->size;
    return sum;
}

size_t ver_version_find_file(const ver_version *v, int level, tl_slice ukey)
{
    if (level < 0 || level >= v->num_levels)
        return 0;
    ver_file *const *files = v->files[level];
    size_t lo = 0, hi = v->nfiles[level];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tl_slice_cmp(file_large_user(files[mid]), ukey) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool file_overlaps(const ver_file *f, const tl_slice *lo, const tl_slice *hi)
{
    if (lo && tl_slice_cmp(file_large_user(f), *lo) < 0)
        return false;
    if (hi && tl_slice_cmp(file_small_user(f), *hi) > 0)
        return false;
    return true;
}

int ver_version_overlapping(const ver_version *v, int level, const tl_slice *lo, const tl_slice *hi,
                            ver_file ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (level < 0 || level >= v->num_levels)
        return tl_err(TALUS_EINVAL, "overlapping: level %d out of range", level);
    ver_file *const *files = v->files[level];
    size_t nf = v->nfiles[level];
    size_t first = 0, end = nf;
    if (level > 0) {
        /* Sorted and disjoint: the matches are one contiguous run. */
        first = lo ? ver_version_find_file(v, level, *lo) : 0;
        end = first;
        while (end < nf && (!hi || tl_slice_cmp(file_small_user(files[end]), *hi) <= 0))
            end++;
    }
    size_t count = 0;
    for (size_t i = first; i < end; i++)
        count += file_overlaps(files[i], lo, hi);
    if (count == 0)
        return 0;
    ver_file **arr = malloc(count * sizeof *arr);
    if (!arr)
        return tl_err(TALUS_ENOMEM, "overlapping: out of memory");
    size_t k = 0;
    for (size_t i = first; i < end; i++)
        if (file_overlaps(files[i], lo, hi))
            arr[k++] = files[i];
    *out = arr;
    *n = k;
    return 0;
}
