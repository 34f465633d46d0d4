/*
 * picker.c - leveled compaction picking: scores, input selection for L0 and
 * for sorted levels, and manual range picks.
 *
 * Invariants the picks keep (they are what makes concurrent compactions and
 * reads correct):
 *  - Within L0, a newer file never moves down while an older file that
 *    overlaps it stays behind: L0 inputs are closed under overlap.
 *  - Within a sorted level, a user key's versions never end up split between
 *    input and non-input files (inputs are widened to whole user keys).
 *  - A file marked `compacting` belongs to exactly one running compaction;
 *    a candidate touching one is skipped. Because every key in a running
 *    compaction's range is covered by one of its (marked) inputs, skipping
 *    marked files also keeps two compactions from writing overlapping
 *    ranges into the same level.
 * Marks are read and written under the tree mutex (the caller holds it).
 */
#include <stdlib.h>
#include <string.h>

#include "compaction/cp_internal.h"
#include "util/err.h"

static int num_levels(const ver_version *v)
{
    int n = v->num_levels;
    if (n > VER_MAX_LEVELS)
        n = VER_MAX_LEVELS;
    return n < 1 ? 1 : n;
}

uint64_t cp_level_target(const cp_options *o, int level)
{
    uint64_t t = o->base_level_bytes ? o->base_level_bytes : 1;
    uint64_t m = o->multiplier > 1 ? (uint64_t)o->multiplier : 1;
    for (int l = 1; l < level; l++) {
        if (t > UINT64_MAX / m)
            return UINT64_MAX;
        t *= m;
    }
    return t;
}

static double level_score(const cp_options *o, const ver_version *v, int level)
{
    if (level == 0) {
        size_t idle = 0;
        for (size_t i = 0; i < v->nfiles[0]; i++)
            idle += !v->files[0][i]->compacting;
        int trig = o->l0_trigger > 0 ? o->l0_trigger : 1;
        return (double)idle / (double)trig;
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < v->nfiles[level]; i++)
        if (!v->files[level][i]->compacting)
            bytes += v->files[level][i]->size;
    return (double)bytes / (double)cp_level_target(o, level);
}

double cp_max_score(const cp_options *o, const ver_version *v)
{
    double best = 0;
    /* The last level has nowhere to go, so it never scores. */
    for (int l = 0; l + 1 < num_levels(v); l++) {
        double s = level_score(o, v, l);
        if (s > best)
            best = s;
    }
    return best;
}

/* ---- Key-range helpers ------------------------------------------------- */

static bool file_overlaps(const ver_file *f, const tl_slice *lo, const tl_slice *hi)
{
    if (hi && tl_slice_cmp(cp_file_lo(f), *hi) > 0)
        return false;
    if (lo && tl_slice_cmp(cp_file_hi(f), *lo) < 0)
        return false;
    return true;
}

/* Two neighbours of a sorted level share a user key at their boundary. */
static bool shares_boundary(ver_file *const *files, size_t left)
{
    return tl_slice_cmp(cp_file_hi(files[left]), cp_file_lo(files[left + 1])) == 0;
}

/* Files [*c, *d) of sorted `level` overlapping [lo, hi] (NULL = open),
 * widened so no user key is split between the run and its neighbours. */
static void sorted_overlap(const ver_version *v, int level, const tl_slice *lo, const tl_slice *hi,
                           size_t *c, size_t *d)
{
    ver_file *const *files = v->files[level];
    size_t n = v->nfiles[level], s = 0, e;
    if (lo) {
        size_t a = 0, b = n;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (tl_slice_cmp(cp_file_hi(files[mid]), *lo) < 0)
                a = mid + 1;
            else
                b = mid;
        }
        s = a;
    }
    e = s;
    while (e < n && (!hi || tl_slice_cmp(cp_file_lo(files[e]), *hi) <= 0))
        e++;
    if (s < e) {
        while (s > 0 && shares_boundary(files, s - 1))
            s--;
        while (e < n && shares_boundary(files, e - 1))
            e++;
    }
    *c = s;
    *d = e;
}

static bool any_compacting(ver_file *const *files, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (files[i]->compacting)
            return true;
    return false;
}

static uint64_t sum_bytes(ver_file *const *files, size_t a, size_t b)
{
    uint64_t s = 0;
    for (size_t i = a; i < b; i++)
        s += files[i]->size;
    return s;
}

/* Widen sel[] (a subset of L0) until every L0 file overlapping the union
 * range is in it; lo and hi hold the range. */
static void l0_close(const ver_version *v, bool *sel, tl_slice *lo, tl_slice *hi)
{
    ver_file *const *files = v->files[0];
    size_t n = v->nfiles[0];
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < n; i++) {
            if (sel[i] || !file_overlaps(files[i], lo, hi))
                continue;
            sel[i] = true;
            changed = true;
            if (tl_slice_cmp(cp_file_lo(files[i]), *lo) < 0)
                *lo = cp_file_lo(files[i]);
            if (tl_slice_cmp(cp_file_hi(files[i]), *hi) > 0)
                *hi = cp_file_hi(files[i]);
        }
    }
}

/* ---- Building a pick --------------------------------------------------- */

static int fill_pick(cp_pick *p, ver_version *v, int level, int out_level, ver_file *const *in0,
                     size_t n0, ver_file *const *in1, size_t n1, double score)
{
    memset(p, 0, sizeof *p);
    p->inputs[0] = malloc(n0 * sizeof *in0);
    p->inputs[1] = n1 ? malloc(n1 * sizeof *in1) : NULL;
    if (!p->inputs[0] || (n1 && !p->inputs[1])) {
        free(p->inputs[0]);
        free(p->inputs[1]);
        memset(p, 0, sizeof *p);
        return tl_err(TALUS_ENOMEM, "out of memory picking a compaction");
    }
    memcpy(p->inputs[0], in0, n0 * sizeof *in0);
    if (n1)
        memcpy(p->inputs[1], in1, n1 * sizeof *in1);
    p->ninputs[0] = n0;
    p->ninputs[1] = n1;
    for (size_t i = 0; i < n0; i++)
        in0[i]->compacting = true;
    for (size_t i = 0; i < n1; i++)
        in1[i]->compacting = true;
    p->level = level;
    p->output_level = out_level;
    p->score = score;
    /* For L0, n0 == 1 means the file overlaps no other L0 file (inputs are
     * closed under overlap), so moving it cannot reorder versions. */
    p->trivial_move = n0 == 1 && n1 == 0 && out_level != level;
    ver_version_ref(v);
    p->version = v;
    return 1;
}

/* Pick from L0 given an initial selection; 1 picked, 0 conflict. */
static int pick_l0_from(ver_version *v, bool *sel, double score, cp_pick *p)
{
    ver_file *const *files = v->files[0];
    size_t n = v->nfiles[0], cnt = 0;
    tl_slice lo = {0}, hi = {0};
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!sel[i])
            continue;
        if (first || tl_slice_cmp(cp_file_lo(files[i]), lo) < 0)
            lo = cp_file_lo(files[i]);
        if (first || tl_slice_cmp(cp_file_hi(files[i]), hi) > 0)
            hi = cp_file_hi(files[i]);
        first = false;
    }
    if (first)
        return 0;
    l0_close(v, sel, &lo, &hi);
    for (size_t i = 0; i < n; i++) {
        if (sel[i] && files[i]->compacting)
            return 0;
        cnt += sel[i];
    }
    int out_level = num_levels(v) > 1 ? 1 : 0;
    size_t c = 0, d = 0;
    if (out_level == 1) {
        sorted_overlap(v, 1, &lo, &hi, &c, &d);
        if (any_compacting(v->files[1], c, d))
            return 0;
    }
    ver_file **in0 = malloc(cnt * sizeof *in0);
    if (!in0)
        return tl_err(TALUS_ENOMEM, "out of memory picking an L0 compaction");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (sel[i])
            in0[k++] = files[i];
    int rc =
        fill_pick(p, v, 0, out_level, in0, cnt, out_level ? v->files[1] + c : NULL, d - c, score);
    free(in0);
    return rc;
}

static int pick_l0(ver_version *v, double score, cp_pick *p)
{
    size_t n = v->nfiles[0];
    size_t j = n;
    /* L0 is newest first: the oldest idle file is the last idle one. */
    for (size_t i = n; i-- > 0;) {
        if (!v->files[0][i]->compacting) {
            j = i;
            break;
        }
    }
    if (j == n)
        return 0;
    bool *sel = calloc(n, sizeof *sel);
    if (!sel)
        return tl_err(TALUS_ENOMEM, "out of memory picking an L0 compaction");
    sel[j] = true;
    int rc = pick_l0_from(v, sel, score, p);
    free(sel);
    return rc;
}

/* Sorted level L -> L+1: the idle whole-user-key group of files with the
 * fewest overlapping bytes in L+1 per input byte. */
static int pick_level(ver_version *v, int level, double score, cp_pick *p)
{
    ver_file *const *files = v->files[level];
    size_t n = v->nfiles[level];
    bool found = false;
    size_t ba = 0, bb = 0, bc = 0, bd = 0;
    double best = 0;
    for (size_t i = 0; i < n;) {
        size_t a = i, b = i + 1;
        while (b < n && shares_boundary(files, b - 1))
            b++;
        i = b;
        if (any_compacting(files, a, b))
            continue;
        tl_slice lo = cp_file_lo(files[a]), hi = cp_file_hi(files[b - 1]);
        size_t c, d;
        sorted_overlap(v, level + 1, &lo, &hi, &c, &d);
        if (any_compacting(v->files[level + 1], c, d))
            continue;
        uint64_t in = sum_bytes(files, a, b);
        uint64_t ov = sum_bytes(v->files[level + 1], c, d);
        double ratio = (double)ov / (double)(in ? in : 1);
        if (!found || ratio < best) {
            found = true;
            best = ratio;
            ba = a;
            bb = b;
            bc = c;
            bd = d;
        }
    }
    if (!found)
        return 0;
    return fill_pick(p, v, level, level + 1, files + ba, bb - ba, v->files[level + 1] + bc, bd - bc,
                     score);
}

int cp_pick_compaction(const cp_options *o, ver_version *v, cp_pick *p)
{
    memset(p, 0, sizeof *p);
    int nl = num_levels(v), order[VER_MAX_LEVELS], cnt = 0;
    double score[VER_MAX_LEVELS];
    for (int l = 0; l + 1 < nl; l++) {
        score[l] = level_score(o, v, l);
        /* Insertion sort: highest score first, lower level on ties. */
        int k = cnt++;
        while (k > 0 && score[order[k - 1]] < score[l]) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = l;
    }
    for (int k = 0; k < cnt; k++) {
        int l = order[k];
        if (score[l] < 1.0)
            break;
        int rc = l == 0 ? pick_l0(v, score[l], p) : pick_level(v, l, score[l], p);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cp_pick_range(const cp_options *o, ver_version *v, int level, const tl_slice *lo,
                  const tl_slice *hi, cp_pick *p)
{
    memset(p, 0, sizeof *p);
    int nl = num_levels(v);
    if (level < 0 || level >= nl)
        return tl_err(TALUS_EINVAL, "compact range: level %d out of range [0, %d)", level, nl);
    double score = level + 1 < nl ? level_score(o, v, level) : 0;
    if (level == 0) {
        size_t n = v->nfiles[0];
        bool *sel = calloc(n ? n : 1, sizeof *sel), any = false;
        if (!sel)
            return tl_err(TALUS_ENOMEM, "out of memory picking a range compaction");
        for (size_t i = 0; i < n; i++) {
            sel[i] = file_overlaps(v->files[0][i], lo, hi);
            any = any || sel[i];
        }
        int rc = any ? pick_l0_from(v, sel, score, p) : 0;
        free(sel);
        if (rc == 0 && any)
            return tl_err(TALUS_EBUSY, "compact range: L0 files are being compacted");
        return rc;
    }
    size_t a, b, c = 0, d = 0;
    sorted_overlap(v, level, lo, hi, &a, &b);
    if (a == b)
        return 0;
    ver_file *const *files = v->files[level];
    if (any_compacting(files, a, b))
        return tl_err(TALUS_EBUSY, "compact range: L%d files are being compacted", level);
    int out_level = level + 1 < nl ? level + 1 : level;
    if (out_level != level) {
        tl_slice rlo = cp_file_lo(files[a]), rhi = cp_file_hi(files[b - 1]);
        sorted_overlap(v, out_level, &rlo, &rhi, &c, &d);
        if (any_compacting(v->files[out_level], c, d))
            return tl_err(TALUS_EBUSY, "compact range: L%d files are being compacted", out_level);
    }
    return fill_pick(p, v, level, out_level, files + a, b - a,
                     out_level != level ? v->files[out_level] + c : NULL, d - c, score);
}

int cp_pick_rewrite(const cp_options *o, ver_version *v, int level, const tl_slice *lo,
                    const tl_slice *hi, cp_pick *p)
{
    memset(p, 0, sizeof *p);
    int nl = num_levels(v);
    if (level < 1 || level >= nl)
        return tl_err(TALUS_EINVAL, "rewrite: level %d out of range [1, %d)", level, nl);
    size_t a, b;
    sorted_overlap(v, level, lo, hi, &a, &b);
    if (a == b)
        return 0;
    ver_file *const *files = v->files[level];
    if (any_compacting(files, a, b))
        return tl_err(TALUS_EBUSY, "rewrite: L%d files are being compacted", level);
    double score = level + 1 < nl ? level_score(o, v, level) : 0;
    return fill_pick(p, v, level, level, files + a, b - a, NULL, 0, score);
}

void cp_pick_release(cp_pick *p)
{
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < p->ninputs[k]; i++)
            p->inputs[k][i]->compacting = false;
        free(p->inputs[k]);
    }
    if (p->version)
        ver_version_unref(p->version);
    memset(p, 0, sizeof *p);
}
