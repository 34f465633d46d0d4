/*
 * version_test_util.h - helpers shared by the version module's unit tests:
 * seeded randomness, temporary directories, files with readable keys,
 * version comparison and an obsolete-callback recorder.
 */
#ifndef VERSION_TEST_UTIL_H
#define VERSION_TEST_UTIL_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/env.h"
#include "util/err.h"
#include "util/ikey.h"
#include "version/version.h"

#define VT_UNUSED __attribute__((unused))

VT_UNUSED static uint64_t vt_rng;

VT_UNUSED static uint64_t vt_rnd(void)
{
    uint64_t x = vt_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return vt_rng = x;
}

VT_UNUSED static void vt_seed(const char *test)
{
    const char *env = getenv("TEST_SEED");
    vt_rng = env ? strtoull(env, NULL, 0) : 0x5eed0f7e5ull;
    if (!vt_rng)
        vt_rng = 1;
    printf("%s: seed 0x%llx (set TEST_SEED to repeat)\n", test, (unsigned long long)vt_rng);
}

/* A fresh empty directory under TMPDIR (or /tmp). */
VT_UNUSED static void vt_mkdir(char *dir, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, cap, "%s/tl_version_XXXXXX", t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
}

/* Removes a flat directory and everything in it. */
VT_UNUSED static void vt_rmdir(const char *dir)
{
    tl_env *env = tl_env_posix();
    char **names = NULL;
    size_t n = 0;
    if (tl_env_list_dir(env, dir, &names, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            tl_env_remove(env, p);
        }
        tl_env_free_names(names, n);
    }
    tl_env_rmdir(env, dir);
}

/* A file whose keys are user keys lo@slo .. hi@shi. */
VT_UNUSED static ver_file *vt_file(uint64_t number, const char *lo, uint64_t slo, const char *hi,
                                   uint64_t shi)
{
    size_t ln = strlen(lo), hn = strlen(hi);
    uint8_t *a = malloc(ln + 9), *b = malloc(hn + 9);
    size_t an = tl_ikey_encode(a, (const uint8_t *)lo, ln, slo, TL_TYPE_VALUE);
    size_t bn = tl_ikey_encode(b, (const uint8_t *)hi, hn, shi, TL_TYPE_VALUE);
    uint64_t mn = slo < shi ? slo : shi, mx = slo < shi ? shi : slo;
    ver_file *f = ver_file_new(number, 1000 + number, tl_slice_make(a, an), tl_slice_make(b, bn),
                               mn, mx, 10 + number, number % 3);
    free(a);
    free(b);
    if (!f)
        abort();
    return f;
}

VT_UNUSED static bool vt_file_equal(const ver_file *a, const ver_file *b)
{
    return a->number == b->number && a->size == b->size && a->min_seq == b->min_seq &&
           a->max_seq == b->max_seq && a->entries == b->entries && a->deletions == b->deletions &&
           a->smallest_len == b->smallest_len && a->largest_len == b->largest_len &&
           memcmp(a->smallest, b->smallest, a->smallest_len) == 0 &&
           memcmp(a->largest, b->largest, a->largest_len) == 0;
}

VT_UNUSED static bool vt_version_equal(const ver_version *a, const ver_version *b)
{
    if (a->num_levels != b->num_levels)
        return false;
    for (int l = 0; l < a->num_levels; l++) {
        if (a->nfiles[l] != b->nfiles[l])
            return false;
        for (size_t i = 0; i < a->nfiles[l]; i++)
            if (!vt_file_equal(a->files[l][i], b->files[l][i]))
                return false;
    }
    return true;
}

/* Deep copy of a version's description, for comparing after close. */
typedef struct vt_snap {
    int num_levels;
    size_t nfiles[VER_MAX_LEVELS];
    ver_file **files[VER_MAX_LEVELS];
} vt_snap;

VT_UNUSED static void vt_snap_take(vt_snap *s, const ver_version *v)
{
    memset(s, 0, sizeof *s);
    s->num_levels = v->num_levels;
    for (int l = 0; l < v->num_levels; l++) {
        s->nfiles[l] = v->nfiles[l];
        s->files[l] = calloc(v->nfiles[l] + 1, sizeof(ver_file *));
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            const ver_file *f = v->files[l][i];
            s->files[l][i] =
                ver_file_new(f->number, f->size, tl_slice_make(f->smallest, f->smallest_len),
                             tl_slice_make(f->largest, f->largest_len), f->min_seq, f->max_seq,
                             f->entries, f->deletions);
        }
    }
}

VT_UNUSED static bool vt_snap_matches(const vt_snap *s, const ver_version *v)
{
    if (s->num_levels != v->num_levels)
        return false;
    for (int l = 0; l < v->num_levels; l++) {
        if (s->nfiles[l] != v->nfiles[l])
            return false;
        for (size_t i = 0; i < v->nfiles[l]; i++)
            if (!vt_file_equal(s->files[l][i], v->files[l][i]))
                return false;
    }
    return true;
}

VT_UNUSED static void vt_snap_free(vt_snap *s)
{
    for (int l = 0; l < s->num_levels; l++) {
        for (size_t i = 0; i < s->nfiles[l]; i++)
            ver_file_unref(s->files[l][i]);
        free(s->files[l]);
    }
    memset(s, 0, sizeof *s);
}

/* Records obsolete reports (any thread). */
typedef struct vt_obsolete {
    pthread_mutex_t mu;
    uint64_t numbers[4096];
    size_t n;
} vt_obsolete;

VT_UNUSED static void vt_on_obsolete(void *ctx, uint64_t number, bool blob)
{
    (void)blob;
    vt_obsolete *o = ctx;
    pthread_mutex_lock(&o->mu);
    if (o->n < sizeof o->numbers / sizeof o->numbers[0])
        o->numbers[o->n] = number;
    o->n++;
    pthread_mutex_unlock(&o->mu);
}

VT_UNUSED static size_t vt_obsolete_count(vt_obsolete *o, uint64_t number)
{
    size_t c = 0;
    pthread_mutex_lock(&o->mu);
    for (size_t i = 0; i < o->n && i < 4096; i++)
        c += o->numbers[i] == number;
    pthread_mutex_unlock(&o->mu);
    return c;
}

VT_UNUSED static void vt_options(ver_set_options *o, tl_env *env, const char *dir, bool create)
{
    memset(o, 0, sizeof *o);
    o->env = env;
    o->dir = dir;
    o->num_levels = 7;
    o->create_if_missing = create;
    o->max_format_version = 3;
}

#endif
