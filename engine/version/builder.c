/*
 * builder.c - folds a base version and a sequence of edits into a new
 * version, checking every edit against the state it applies to: a delete
 * must name a live file at the level it is at, an add must not duplicate a
 * live number, levels must exist, and levels >= 1 must stay sorted and
 * disjoint. The same code checks edits from callers (bad = TALUS_EINVAL)
 * and edits replayed from a manifest (bad = TALUS_ECORRUPT).
 *
 * Files are kept in an open-addressing hash map keyed by file number. A
 * deleted number keeps its slot with f == NULL (open addressing cannot drop
 * a slot without breaking probe chains); rehashing drops such slots.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/err.h"
#include "util/ikey.h"
#include "version/version_int.h"

static int bad(const ver_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(const ver_builder *b, const char *fmt, ...)
{
    char why[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return tl_err(b->bad_code, "%s: %s", b->what, why);
}

void ver_builder_init(ver_builder *b, int num_levels, int bad_code, const char *what)
{
    memset(b, 0, sizeof *b);
    b->num_levels = num_levels;
    b->bad_code = bad_code;
    b->what = what;
}

void ver_builder_free(ver_builder *b)
{
    for (size_t i = 0; i < b->cap; i++)
        if (b->tab[i].used && b->tab[i].f)
            ver_file_unref(b->tab[i].f);
    free(b->tab);
    b->tab = NULL;
    b->cap = b->used = 0;
}

static size_t slot_of(uint64_t number, size_t cap)
{
    uint64_t h = number * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static ver_builder_entry *lookup(const ver_builder *b, uint64_t number)
{
    if (!b->cap)
        return NULL;
    for (size_t i = slot_of(number, b->cap);; i = (i + 1) & (b->cap - 1)) {
        ver_builder_entry *ent = &b->tab[i];
        if (!ent->used)
            return NULL;
        if (ent->number == number)
            return ent;
    }
}

static int rehash(ver_builder *b)
{
    size_t live = 0;
    for (size_t i = 0; i < b->cap; i++)
        live += b->tab[i].used && b->tab[i].f;
    size_t ncap = 64;
    while (ncap < (live + 1) * 4)
        ncap *= 2;
    ver_builder_entry *nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return tl_err(TALUS_ENOMEM, "%s: out of memory", b->what);
    for (size_t i = 0; i < b->cap; i++) {
        ver_builder_entry *ent = &b->tab[i];
        if (!ent->used || !ent->f)
            continue;
        size_t j = slot_of(ent->number, ncap);
        while (nt[j].used)
            j = (j + 1) & (ncap - 1);
        nt[j] = *ent;
    }
    free(b->tab);
    b->tab = nt;
    b->cap = ncap;
    b->used = live;
    return 0;
}

/* The entry for number, created empty (f == NULL) if absent. */
static int slot_for(ver_builder *b, uint64_t number, ver_builder_entry **out)
{
    ver_builder_entry *ent = lookup(b, number);
    if (!ent) {
        if ((b->used + 1) * 10 > b->cap * 7)
            TRY(rehash(b));
        size_t i = slot_of(number, b->cap);
        while (b->tab[i].used)
            i = (i + 1) & (b->cap - 1);
        ent = &b->tab[i];
        memset(ent, 0, sizeof *ent);
        ent->used = true;
        ent->number = number;
        b->used++;
    }
    *out = ent;
    return 0;
}

static int insert(ver_builder *b, int level, ver_file *f)
{
    ver_builder_entry *ent;
    TRY(slot_for(b, f->number, &ent));
    if (ent->f)
        return bad(b, "file %llu added twice", (unsigned long long)f->number);
    ver_file_ref(f);
    ent->f = f;
    ent->level = level;
    if (f->number > b->max_number)
        b->max_number = f->number;
    return 0;
}

int ver_builder_add_version(ver_builder *b, const ver_version *v)
{
    for (int l = 0; l < v->num_levels; l++)
        for (size_t i = 0; i < v->nfiles[l]; i++)
            TRY(insert(b, l, v->files[l][i]));
    for (size_t i = 0; i < v->nfiles[VER_BLOB_LEVEL]; i++)
        TRY(insert(b, VER_BLOB_LEVEL, v->files[VER_BLOB_LEVEL][i]));
    return 0;
}

static bool same_file(const ver_file *a, const ver_file *b)
{
    return a->size == b->size && a->min_seq == b->min_seq && a->max_seq == b->max_seq &&
           a->entries == b->entries && a->deletions == b->deletions &&
           tl_bytes_cmp(a->smallest, a->smallest_len, b->smallest, b->smallest_len) == 0 &&
           tl_bytes_cmp(a->largest, a->largest_len, b->largest, b->largest_len) == 0;
}

int ver_builder_apply(ver_builder *b, const ver_edit *e)
{
    if (e->has_num_levels && (int)e->num_levels != b->num_levels)
        return bad(b, "number of levels changes from %d to %u", b->num_levels, e->num_levels);
    /* Deletes are marked first and dropped last, so that a file deleted
     * and re-added by the same edit (a move) keeps its ver_file. */
    for (size_t i = 0; i < e->ndels; i++) {
        const ver_edit_del *d = &e->dels[i];
        unsigned long long num = (unsigned long long)d->number;
        if (d->level < 0 || (d->level >= b->num_levels && d->level != VER_BLOB_LEVEL))
            return bad(b, "delete of file %llu at level %d, tree has %d levels", num, d->level,
                       b->num_levels);
        ver_builder_entry *ent = lookup(b, d->number);
        if (!ent || !ent->f)
            return bad(b, "deletes file %llu which is not live", num);
        if (ent->pending_del)
            return bad(b, "deletes file %llu twice", num);
        if (ent->level != d->level)
            return bad(b, "deletes file %llu from level %d but it is at level %d", num, d->level,
                       ent->level);
        ent->pending_del = true;
    }
    for (size_t i = 0; i < e->nadds; i++) {
        const ver_edit_add *a = &e->adds[i];
        unsigned long long num = (unsigned long long)a->file->number;
        if (a->level < 0 || (a->level >= b->num_levels && a->level != VER_BLOB_LEVEL))
            return bad(b, "adds file %llu at level %d, tree has %d levels", num, a->level,
                       b->num_levels);
        const char *why = a->file->blob ? NULL : ver_file_check(a->file);
        if (why)
            return bad(b, "file %llu: %s", num, why);
        ver_builder_entry *ent = lookup(b, a->file->number);
        if (ent && ent->f && ent->pending_del) {
            if (a->file->blob || ent->level == VER_BLOB_LEVEL || !same_file(ent->f, a->file))
                return bad(b, "moves file %llu but changes its description", num);
            ent->pending_del = false;
            ent->level = a->level;
            continue;
        }
        TRY(insert(b, a->level, a->file));
    }
    for (size_t i = 0; i < e->ndels; i++) {
        ver_builder_entry *ent = lookup(b, e->dels[i].number);
        if (ent && ent->pending_del) {
            ver_file_unref(ent->f);
            ent->f = NULL;
            ent->pending_del = false;
        }
    }
    return 0;
}

/* ---- Producing the version --------------------------------------------- */

/* Level 0: newest first (max_seq descending, then file number descending). */
static int cmp_l0(const void *pa, const void *pb)
{
    const ver_file *a = *(ver_file *const *)pa, *b = *(ver_file *const *)pb;
    if (a->max_seq != b->max_seq)
        return a->max_seq > b->max_seq ? -1 : 1;
    return a->number > b->number ? -1 : (a->number < b->number ? 1 : 0);
}

/* Levels >= 1: by smallest internal key (number breaks ties to stay
 * deterministic; ties are rejected as overlap anyway). */
static int cmp_sorted(const void *pa, const void *pb)
{
    const ver_file *a = *(ver_file *const *)pa, *b = *(ver_file *const *)pb;
    int c = tl_ikey_cmp_raw(a->smallest, a->smallest_len, b->smallest, b->smallest_len);
    if (c)
        return c;
    return a->number < b->number ? -1 : (a->number > b->number ? 1 : 0);
}

static int cmp_number(const void *pa, const void *pb)
{
    const ver_file *a = *(ver_file *const *)pa, *b = *(ver_file *const *)pb;
    return a->number < b->number ? -1 : (a->number > b->number ? 1 : 0);
}

static void free_arrays(ver_file **files[VER_MAX_LEVELS + 1])
{
    for (int l = 0; l <= VER_MAX_LEVELS; l++)
        free(files[l]);
}

int ver_builder_finish(ver_builder *b, ver_set *vs, ver_version **out)
{
    size_t n[VER_MAX_LEVELS + 1] = {0};
    ver_file **files[VER_MAX_LEVELS + 1] = {0};
    *out = NULL;
    for (size_t i = 0; i < b->cap; i++)
        if (b->tab[i].used && b->tab[i].f)
            n[b->tab[i].level]++;
    for (int l = 0; l <= VER_BLOB_LEVEL; l++) {
        if (l >= b->num_levels && l != VER_BLOB_LEVEL)
            continue;
        if (n[l] && !(files[l] = malloc(n[l] * sizeof *files[l]))) {
            free_arrays(files);
            return tl_err(TALUS_ENOMEM, "%s: out of memory", b->what);
        }
        n[l] = 0;
    }
    for (size_t i = 0; i < b->cap; i++) {
        ver_builder_entry *ent = &b->tab[i];
        if (ent->used && ent->f)
            files[ent->level][n[ent->level]++] = ent->f;
    }
    if (n[VER_BLOB_LEVEL] > 1)
        qsort(files[VER_BLOB_LEVEL], n[VER_BLOB_LEVEL], sizeof *files[0], cmp_number);
    for (int l = 0; l < b->num_levels; l++) {
        if (n[l] > 1)
            qsort(files[l], n[l], sizeof *files[l], l == 0 ? cmp_l0 : cmp_sorted);
        /* Sorted levels must be disjoint in user keys: a user key's
         * versions never straddle two files (compaction.h), so a read at a
         * level looks in exactly one file. */
        for (size_t i = 1; l > 0 && i < n[l]; i++) {
            const ver_file *p = files[l][i - 1], *f = files[l][i];
            if (tl_bytes_cmp(p->largest, p->largest_len - TL_IKEY_TRAILER, f->smallest,
                             f->smallest_len - TL_IKEY_TRAILER) >= 0) {
                free_arrays(files);
                return bad(b, "files %llu and %llu overlap at level %d",
                           (unsigned long long)p->number, (unsigned long long)f->number, l);
            }
        }
    }
    ver_version *v = calloc(1, sizeof *v);
    if (!v) {
        free_arrays(files);
        return tl_err(TALUS_ENOMEM, "%s: out of memory", b->what);
    }
    atomic_init(&v->refs, 1);
    v->num_levels = b->num_levels;
    v->vset = vs;
    for (int l = 0; l <= VER_BLOB_LEVEL; l++) {
        v->files[l] = files[l];
        v->nfiles[l] = n[l];
        for (size_t i = 0; i < n[l]; i++) {
            ver_file_ref(files[l][i]);
            atomic_fetch_add_explicit(&files[l][i]->vrefs, 1, memory_order_acq_rel);
        }
    }
    if (vs)
        ver_set_link_version(vs, v);
    *out = v;
    return 0;
}
