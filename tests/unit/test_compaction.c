/*
 * test_compaction.c - cp_write_tables (the GC rule against an independent
 * model, exact hand-written cases, splitting, metadata, error paths), the
 * level iterator against a concatenated model, and cp_run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "compaction/compaction.h"
#include "cp_test_util.h"
#include "table/table.h"
#include "util/env.h"

/* ---- Fixture ---------------------------------------------------------- */

typedef struct fx {
    char *dir;   /* tables */
    char *vsdir; /* the version set (file numbers only) */
    ver_set *vs;
    tl_fault_env *fe;
    tl_env *env; /* tables go through this one */
} fx;

static void fx_open(fx *f)
{
    memset(f, 0, sizeof *f);
    f->dir = cpt_tmpdir();
    f->vsdir = cpt_tmpdir();
    assert_non_null(f->dir);
    assert_non_null(f->vsdir);
    ver_set_options o = {.env = tl_env_posix(),
                         .dir = f->vsdir,
                         .num_levels = 4,
                         .create_if_missing = true,
                         .max_format_version = 3};
    assert_int_equal(ver_set_open(&o, &f->vs), 0);
    f->fe = tl_fault_env_new(tl_env_posix());
    f->env = tl_fault_env_env(f->fe);
}

static void fx_close(fx *f)
{
    ver_set_close(f->vs);
    tl_fault_env_free(f->fe);
    cpt_rmtree(f->dir);
    cpt_rmtree(f->vsdir);
    free(f->dir);
    free(f->vsdir);
}

static cp_ctx fx_ctx(fx *f)
{
    cp_ctx c;
    memset(&c, 0, sizeof c);
    c.env = f->env;
    c.dir = f->dir;
    c.vs = f->vs;
    tbl_options_init(&c.topts);
    c.topts.block_size = 256;
    return c;
}

/* Names in the table directory, counted by kind. */
static void dir_counts(fx *f, size_t *sst, size_t *other)
{
    char **names = NULL;
    size_t n = 0;
    *sst = *other = 0;
    /* Through the fault env: it parks removed files under hidden names
     * until the directory is synced, and hides them from listings. */
    assert_int_equal(tl_env_list_dir(f->env, f->dir, &names, &n), 0);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l > 4 && strcmp(names[i] + l - 4, ".sst") == 0)
            (*sst)++;
        else
            (*other)++;
    }
    tl_env_free_names(names, n);
}

/* ---- Entries ------------------------------------------------------------ */

typedef struct ents {
    cpt_ent *e;
    size_t n, cap;
} ents;

static void ents_push(ents *s, tl_slice k, tl_slice v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->e = realloc(s->e, s->cap * sizeof *s->e);
    }
    cpt_ent *e = &s->e[s->n++];
    e->k = malloc(k.len);
    memcpy(e->k, k.data, k.len);
    e->klen = k.len;
    e->v = malloc(v.len ? v.len : 1);
    if (v.len)
        memcpy(e->v, v.data, v.len);
    e->vlen = v.len;
}

static void ents_add(ents *s, const char *ukey, uint64_t seq, uint8_t type, const char *val)
{
    size_t kl;
    uint8_t *k = cpt_ikey(ukey, seq, type, &kl);
    ents_push(s, tl_slice_make(k, kl), tl_slice_make(val, strlen(val)));
    free(k);
}

static void ents_sort(ents *s)
{
    qsort(s->e, s->n, sizeof *s->e, cpt_ent_cmp);
}

static void ents_free(ents *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].k);
        free(s->e[i].v);
    }
    free(s->e);
    memset(s, 0, sizeof *s);
}

/* Read table f back, checking its metadata against its content. */
static void read_table(fx *fxp, const ver_file *vf, ents *out)
{
    char name[4096];
    tbl_file_name(name, sizeof name, fxp->dir, vf->number);
    uint64_t size;
    assert_int_equal(tl_env_file_size(tl_env_posix(), name, &size), 0);
    assert_int_equal(size, vf->size);
    tl_file *file;
    assert_int_equal(tl_env_open_read(tl_env_posix(), name, &file), 0);
    tbl_reader *r;
    assert_int_equal(tbl_reader_open(file, name, size, NULL, &r), 0);
    tl_iter *it = tbl_reader_iter(r, false);
    size_t first = out->n;
    uint64_t lo = UINT64_MAX, hi = 0, dels = 0;
    for (tl_iter_seek_first(it); tl_iter_valid(it); tl_iter_next(it)) {
        tl_slice k = tl_iter_key(it);
        uint64_t s = tl_ikey_seq(k);
        lo = s < lo ? s : lo;
        hi = s > hi ? s : hi;
        dels += tl_vtype_is_delete(tl_ikey_type(k));
        ents_push(out, k, tl_iter_value(it));
    }
    assert_int_equal(tl_iter_status(it), 0);
    tl_iter_destroy(it);
    tbl_reader_free(r);
    assert_true(out->n > first);
    const cpt_ent *a = &out->e[first], *b = &out->e[out->n - 1];
    assert_int_equal(vf->smallest_len, a->klen);
    assert_memory_equal(vf->smallest, a->k, a->klen);
    assert_int_equal(vf->largest_len, b->klen);
    assert_memory_equal(vf->largest, b->k, b->klen);
    assert_int_equal(vf->entries, out->n - first);
    assert_int_equal(vf->deletions, dels);
    assert_int_equal(vf->min_seq, lo);
    assert_int_equal(vf->max_seq, hi);
}

/* Read every output table in order; check the tables are in key order and
 * that no user key straddles two of them. */
static void read_output(fx *fxp, const cp_output *out, ents *all)
{
    for (size_t i = 0; i < out->nfiles; i++) {
        size_t before = all->n;
        read_table(fxp, out->files[i], all);
        if (before > 0) {
            const cpt_ent *p = &all->e[before - 1], *q = &all->e[before];
            assert_true(
                tl_bytes_cmp(p->k, p->klen - TL_IKEY_TRAILER, q->k, q->klen - TL_IKEY_TRAILER) < 0);
        }
    }
    for (size_t i = 1; i < all->n; i++)
        assert_true(cpt_ent_cmp(&all->e[i - 1], &all->e[i]) < 0);
}

/* "k@10W k@8V=b ...": a readable picture of entries. */
static char *ents_str(const ents *s)
{
    size_t cap = 64, len = 0;
    char *str = malloc(cap);
    str[0] = 0;
    for (size_t i = 0; i < s->n; i++) {
        const cpt_ent *e = &s->e[i];
        tl_slice k = tl_slice_make(e->k, e->klen);
        char buf[512];
        const char *tc = "?VTWMBR";
        uint8_t t = tl_ikey_type(k);
        int n = snprintf(buf, sizeof buf, "%s%.*s@%llu%c", i ? " " : "",
                         (int)(k.len - TL_IKEY_TRAILER), (const char *)k.data,
                         (unsigned long long)tl_ikey_seq(k), t <= 6 ? tc[t] : '?');
        if (t == TL_TYPE_VALUE || t == TL_TYPE_MERGE)
            n += snprintf(buf + n, sizeof buf - (size_t)n, "=%.*s", (int)e->vlen,
                          (const char *)e->v);
        while (len + (size_t)n + 1 > cap)
            str = realloc(str, cap *= 2);
        memcpy(str + len, buf, (size_t)n + 1);
        len += (size_t)n;
    }
    return str;
}

/* ---- Hand-written GC cases ------------------------------------------- */

static bool below_all(void *arg, tl_slice ukey)
{
    (void)arg;
    (void)ukey;
    return true;
}

/* Run cp_write_tables over `in` and return the output as a string. */
static char *gc_run(fx *f, ents *in, const uint64_t *snaps, size_t nsnaps, bool below)
{
    ents_sort(in);
    cp_ctx c = fx_ctx(f);
    c.snapshots = snaps;
    c.nsnapshots = nsnaps;
    c.key_below = below ? below_all : NULL;
    cp_output out;
    tl_iter *it = cpt_arr_iter_new(in->e, in->n, SIZE_MAX);
    assert_int_equal(cp_write_tables(&c, it, &out), 0);
    tl_iter_destroy(it);
    ents got = {0};
    read_output(f, &out, &got);
    assert_int_equal(out.entries_in, in->n);
    assert_int_equal(out.entries_dropped, in->n - got.n);
    char *s = ents_str(&got);
    ents_free(&got);
    /* Remove the tables so the next case starts clean. */
    for (size_t i = 0; i < out.nfiles; i++) {
        char name[4096];
        tbl_file_name(name, sizeof name, f->dir, out.files[i]->number);
        assert_int_equal(tl_env_remove(tl_env_posix(), name), 0);
    }
    cp_output_free(&out);
    ents_free(in);
    return s;
}

#define EXPECT(got, want)                                                                          \
    do {                                                                                           \
        char *g_ = (got);                                                                          \
        assert_string_equal(g_, want);                                                             \
        free(g_);                                                                                  \
    } while (0)

static void test_gc_hand_cases(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ents in = {0};
    const uint8_t V = TL_TYPE_VALUE, T = TL_TYPE_TOMBSTONE, W = TL_TYPE_WEAK_TOMBSTONE;

    /* Newest wins without snapshots. */
    ents_add(&in, "a", 5, V, "new");
    ents_add(&in, "a", 3, V, "old");
    ents_add(&in, "b", 4, V, "b");
    EXPECT(gc_run(&f, &in, NULL, 0, false), "a@5V=new b@4V=b");

    /* A tombstone hides everything older; it goes too when nothing can be
     * below, and stays when something may be. */
    ents_add(&in, "a", 9, T, "");
    ents_add(&in, "a", 3, V, "old");
    ents_add(&in, "b", 4, V, "b");
    EXPECT(gc_run(&f, &in, NULL, 0, false), "b@4V=b");
    ents_add(&in, "a", 9, T, "");
    ents_add(&in, "a", 3, V, "old");
    EXPECT(gc_run(&f, &in, NULL, 0, true), "a@9T");

    /* A weak tombstone over a value over an older value must never make the
     * older value visible: without anything below, all three go; with
     * something below, only the weak tombstone stays. */
    ents_add(&in, "k", 10, W, "");
    ents_add(&in, "k", 8, V, "b");
    ents_add(&in, "k", 5, V, "a");
    EXPECT(gc_run(&f, &in, NULL, 0, false), "");
    ents_add(&in, "k", 10, W, "");
    ents_add(&in, "k", 8, V, "b");
    ents_add(&in, "k", 5, V, "a");
    EXPECT(gc_run(&f, &in, NULL, 0, true), "k@10W");
    /* A snapshot at 8 still sees b; one at 6 sees a. */
    uint64_t s8[] = {8}, s6[] = {6};
    ents_add(&in, "k", 10, W, "");
    ents_add(&in, "k", 8, V, "b");
    ents_add(&in, "k", 5, V, "a");
    EXPECT(gc_run(&f, &in, s8, 1, false), "k@10W k@8V=b");
    ents_add(&in, "k", 10, W, "");
    ents_add(&in, "k", 8, V, "b");
    ents_add(&in, "k", 5, V, "a");
    EXPECT(gc_run(&f, &in, s6, 1, false), "k@10W k@5V=a");

    /* Stripes: snapshots 3 and 7 keep the newest at or below each. */
    uint64_t s37[] = {3, 7};
    for (uint64_t q = 1; q <= 9; q++) {
        char v[8];
        snprintf(v, sizeof v, "%llu", (unsigned long long)q);
        if (q != 4 && q != 5)
            ents_add(&in, "x", q, V, v);
    }
    EXPECT(gc_run(&f, &in, s37, 2, false), "x@9V=9 x@7V=7 x@3V=3");

    /* A tombstone in the oldest stripe goes (with what it hid); one above a
     * snapshot stays because the snapshot still sees the older value. */
    uint64_t s5[] = {5};
    ents_add(&in, "t", 7, V, "top");
    ents_add(&in, "t", 4, T, "");
    ents_add(&in, "t", 2, V, "hidden");
    ents_add(&in, "u", 7, T, "");
    ents_add(&in, "u", 3, V, "seen");
    EXPECT(gc_run(&f, &in, s5, 1, false), "t@7V=top u@7T u@3V=seen");

    /* Merge operands (reserved): a kept one keeps all older versions. */
    ents_add(&in, "m", 9, TL_TYPE_MERGE, "+1");
    ents_add(&in, "m", 8, TL_TYPE_MERGE, "+2");
    ents_add(&in, "m", 4, V, "base");
    ents_add(&in, "n", 9, V, "v");
    ents_add(&in, "n", 8, TL_TYPE_MERGE, "+3");
    EXPECT(gc_run(&f, &in, NULL, 0, false), "m@9M=+1 m@8M=+2 m@4V=base n@9V=v");

    size_t sst, other;
    dir_counts(&f, &sst, &other);
    assert_int_equal(sst + other, 0);
    fx_close(&f);
}

/* ---- The GC rule against an independent model ------------------------- */

#define MK 24 /* user keys */
#define MV 12 /* max versions per key */

typedef struct mver {
    uint64_t seq;
    uint8_t type;
} mver;

typedef struct mkey {
    mver v[MV]; /* newest first */
    int n;
    int below; /* 0: nothing below, 1: a value below, 2: a tombstone below */
} mkey;

static void key_name(char *buf, size_t n, int k)
{
    snprintf(buf, n, "key%05d", k);
}

/* The value of (k, seq): derived, with a length that varies. */
static void value_of(char *buf, size_t n, int k, uint64_t seq)
{
    int pad = (int)((unsigned)(k * 7 + (int)seq * 13) % 90);
    snprintf(
        buf, n, "v%d.%llu.%.*s", k, (unsigned long long)seq, pad,
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxx");
}

static mkey model[MK];

/* The number of "key%05d" (the slice is not NUL-terminated). */
static int key_num(tl_slice ukey)
{
    assert_int_equal(ukey.len, 8);
    int k = 0;
    for (int i = 3; i < 8; i++)
        k = k * 10 + (ukey.data[i] - '0');
    assert_true(k >= 0 && k < MK);
    return k;
}

static bool model_below(void *arg, tl_slice ukey)
{
    (void)arg;
    return model[key_num(ukey)].below != 0;
}

/* What a reader at P sees for key k in a list of versions (newest first),
 * falling through to what lies below: -1 absent, else the seq of a value. */
static long long visible(const mver *v, int n, int below, uint64_t P)
{
    for (int i = 0; i < n; i++) {
        if (v[i].seq <= P)
            return tl_vtype_is_delete(v[i].type) ? -1 : (long long)v[i].seq;
    }
    return below == 1 ? 0 : -1; /* the value below has seq 0 */
}

static void test_gc_model(void **state)
{
    (void)state;
    unsigned seed = 20240611u;
    printf("seed %u\n", seed);
    srand(seed);
    fx f;
    fx_open(&f);
    for (int round = 0; round < 60; round++) {
        ents in = {0};
        size_t total = 0;
        for (int k = 0; k < MK; k++) {
            mkey *m = &model[k];
            m->n = rand() % MV + (rand() % 4 == 0 ? 0 : 1);
            m->below = rand() % 3;
            bool used[101] = {false};
            for (int i = 0; i < m->n; i++) {
                uint64_t s;
                do
                    s = 1 + (uint64_t)(rand() % 100);
                while (used[s]);
                used[s] = true;
                int r = rand() % 10;
                m->v[i].seq = s;
                m->v[i].type =
                    r < 6 ? TL_TYPE_VALUE : (r < 8 ? TL_TYPE_TOMBSTONE : TL_TYPE_WEAK_TOMBSTONE);
            }
            /* newest first */
            for (int i = 0; i < m->n; i++)
                for (int j = i + 1; j < m->n; j++)
                    if (m->v[j].seq > m->v[i].seq) {
                        mver t = m->v[i];
                        m->v[i] = m->v[j];
                        m->v[j] = t;
                    }
            for (int i = 0; i < m->n; i++) {
                char kn[16], val[160];
                key_name(kn, sizeof kn, k);
                value_of(val, sizeof val, k, m->v[i].seq);
                ents_add(&in, kn, m->v[i].seq, m->v[i].type,
                         m->v[i].type == TL_TYPE_VALUE ? val : "");
                total++;
            }
        }
        ents_sort(&in);
        uint64_t snaps[5];
        size_t ns = 0;
        int want = rand() % 6;
        for (int i = 0; i < want; i++) {
            uint64_t s = (uint64_t)(rand() % 105);
            size_t j = ns;
            bool dup = false;
            for (size_t q = 0; q < ns; q++)
                dup = dup || snaps[q] == s;
            if (dup)
                continue;
            while (j > 0 && snaps[j - 1] > s) {
                snaps[j] = snaps[j - 1];
                j--;
            }
            snaps[j] = s;
            ns++;
        }
        uint64_t targets[] = {0, 300, 1500};
        cp_ctx c = fx_ctx(&f);
        c.snapshots = snaps;
        c.nsnapshots = ns;
        c.key_below = model_below;
        c.target_file_size = targets[round % 3];
        cp_output out;
        tl_iter *it = cpt_arr_iter_new(in.e, in.n, SIZE_MAX);
        assert_int_equal(cp_write_tables(&c, it, &out), 0);
        tl_iter_destroy(it);
        ents got = {0};
        read_output(&f, &out, &got);

        /* Group the output per key. */
        mkey outm[MK];
        memset(outm, 0, sizeof outm);
        for (size_t i = 0; i < got.n; i++) {
            tl_slice k = tl_slice_make(got.e[i].k, got.e[i].klen);
            int kk = key_num(tl_ikey_user(k));
            mkey *o = &outm[kk];
            assert_true(o->n < MV);
            o->v[o->n].seq = tl_ikey_seq(k);
            o->v[o->n].type = tl_ikey_type(k);
            if (o->v[o->n].type == TL_TYPE_VALUE) {
                char val[160];
                value_of(val, sizeof val, kk, o->v[o->n].seq);
                assert_int_equal(got.e[i].vlen, strlen(val));
                assert_memory_equal(got.e[i].v, val, got.e[i].vlen);
            }
            o->n++;
        }
        size_t kept_total = 0;
        for (int k = 0; k < MK; k++) {
            mkey *m = &model[k];
            /* 1. Every reader (each snapshot, and the latest) sees the same
             *    thing before and after, including what lies below. */
            for (size_t p = 0; p <= ns; p++) {
                uint64_t P = p < ns ? snaps[p] : TL_SEQ_MAX;
                assert_int_equal(visible(outm[k].v, outm[k].n, m->below, P),
                                 visible(m->v, m->n, m->below, P));
            }
            /* 2. Exactly the model's survivors: the newest version at or
             *    below each read point, minus a deletion no snapshot lies
             *    below when nothing is below the output. */
            bool kept[MV] = {false};
            for (size_t p = 0; p <= ns; p++) {
                uint64_t P = p < ns ? snaps[p] : TL_SEQ_MAX;
                for (int i = 0; i < m->n; i++)
                    if (m->v[i].seq <= P) {
                        kept[i] = true;
                        break;
                    }
            }
            for (int i = 0; i < m->n; i++)
                if (kept[i] && tl_vtype_is_delete(m->v[i].type) &&
                    (ns == 0 || snaps[0] >= m->v[i].seq) && !m->below)
                    kept[i] = false;
            int j = 0;
            for (int i = 0; i < m->n; i++) {
                if (!kept[i])
                    continue;
                assert_true(j < outm[k].n);
                assert_int_equal(outm[k].v[j].seq, m->v[i].seq);
                assert_int_equal(outm[k].v[j].type, m->v[i].type);
                j++;
            }
            assert_int_equal(j, outm[k].n);
            kept_total += (size_t)j;
        }
        assert_int_equal(out.entries_in, total);
        assert_int_equal(out.entries_dropped, total - kept_total);
        if (c.target_file_size == 0)
            assert_true(out.nfiles <= 1);
        uint64_t bytes = 0;
        for (size_t i = 0; i < out.nfiles; i++)
            bytes += out.files[i]->size;
        assert_int_equal(out.bytes_written, bytes);
        size_t sst, other;
        dir_counts(&f, &sst, &other);
        assert_int_equal(sst, out.nfiles);
        assert_int_equal(other, 0);
        for (size_t i = 0; i < out.nfiles; i++) {
            char name[4096];
            tbl_file_name(name, sizeof name, f.dir, out.files[i]->number);
            tl_env_remove(tl_env_posix(), name);
        }
        cp_output_free(&out);
        ents_free(&got);
        ents_free(&in);
    }
    fx_close(&f);
}

/* ---- Splitting --------------------------------------------------------- */

static void make_split_input(ents *in, uint64_t *snaps, size_t *ns)
{
    /* "hot" has 100 versions, all kept by snapshots; others have one. */
    char val[200];
    memset(val, 'z', sizeof val - 1);
    val[sizeof val - 1] = 0;
    *ns = 0;
    for (uint64_t s = 1; s <= 100; s++) {
        ents_add(in, "hot", s, TL_TYPE_VALUE, val);
        snaps[(*ns)++] = s;
    }
    for (int k = 0; k < 40; k++) {
        char kn[16];
        snprintf(kn, sizeof kn, "k%03d", k);
        ents_add(in, kn, 200 + (uint64_t)k, TL_TYPE_VALUE, val);
    }
    ents_sort(in);
}

static void test_split_keeps_user_keys_whole(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ents in = {0};
    uint64_t snaps[100];
    size_t ns;
    make_split_input(&in, snaps, &ns);
    cp_ctx c = fx_ctx(&f);
    c.snapshots = snaps;
    c.nsnapshots = ns;
    c.target_file_size = 1000;
    cp_output out;
    tl_iter *it = cpt_arr_iter_new(in.e, in.n, SIZE_MAX);
    assert_int_equal(cp_write_tables(&c, it, &out), 0);
    tl_iter_destroy(it);
    assert_true(out.nfiles > 5);
    ents got = {0};
    read_output(&f, &out, &got); /* checks no key straddles two tables */
    assert_int_equal(got.n, in.n);
    /* All 100 versions of "hot" are in one table, which holds only them. */
    size_t hot_tables = 0;
    for (size_t i = 0; i < out.nfiles; i++) {
        ver_file *vf = out.files[i];
        if (vf->smallest_len == 3 + TL_IKEY_TRAILER && memcmp(vf->smallest, "hot", 3) == 0) {
            hot_tables++;
            assert_int_equal(vf->entries, 100);
            assert_int_equal(vf->min_seq, 1);
        }
    }
    assert_int_equal(hot_tables, 1);
    cp_output_free(&out);
    ents_free(&got);
    ents_free(&in);
    fx_close(&f);
}

/* ---- Error paths -------------------------------------------------------- */

static int write_once(fx *f, ents *in, size_t fail_at, const atomic_bool *cancel, cp_output *out)
{
    uint64_t snaps[1] = {0};
    cp_ctx c = fx_ctx(f);
    c.snapshots = snaps;
    c.nsnapshots = 0;
    c.target_file_size = 1000;
    c.cancel = cancel;
    tl_iter *it = cpt_arr_iter_new(in->e, in->n, fail_at);
    int rc = cp_write_tables(&c, it, out);
    tl_iter_destroy(it);
    return rc;
}

static void assert_clean(fx *f, const cp_output *out)
{
    size_t sst, other;
    dir_counts(f, &sst, &other);
    assert_int_equal(sst, 0);
    assert_int_equal(other, 0);
    assert_int_equal(out->nfiles, 0);
    assert_null(out->files);
}

static void test_error_paths_leave_nothing(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    ents in = {0};
    uint64_t snaps[100];
    size_t ns;
    make_split_input(&in, snaps, &ns);
    cp_output out;

    const tl_fault_kind kinds[] = {TL_FAULT_WRITE, TL_FAULT_SYNC, TL_FAULT_RENAME, TL_FAULT_OPEN};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int failures = 0;
        /* Every early operation, then ever sparser ones (each run syncs). */
        for (uint64_t nth = 1;; nth = nth < 12 ? nth + 1 : nth + nth / 3) {
            assert_true(nth < 10000);
            tl_fault_env_arm(f.fe, kinds[k], nth, TALUS_EIO, false);
            int rc = write_once(&f, &in, SIZE_MAX, NULL, &out);
            tl_fault_env_disarm(f.fe);
            if (rc == 0) {
                assert_true(out.nfiles > 1);
                for (size_t i = 0; i < out.nfiles; i++) {
                    char name[4096];
                    tbl_file_name(name, sizeof name, f.dir, out.files[i]->number);
                    tl_env_remove(tl_env_posix(), name);
                }
                cp_output_free(&out);
                break;
            }
            assert_int_equal(rc, TALUS_EIO);
            assert_clean(&f, &out);
            failures++;
        }
        /* Every table takes one open, one rename and two syncs at least. */
        assert_true(failures >= 2);
    }

    /* A short write. */
    tl_fault_env_short_write_next(f.fe);
    assert_true(write_once(&f, &in, SIZE_MAX, NULL, &out) < 0);
    assert_clean(&f, &out);

    /* An input error part way (after some tables were written). */
    assert_int_equal(write_once(&f, &in, in.n - 3, NULL, &out), TALUS_EIO);
    assert_clean(&f, &out);

    /* Cancelled. */
    atomic_bool cancel;
    atomic_init(&cancel, true);
    assert_int_equal(write_once(&f, &in, SIZE_MAX, &cancel, &out), TALUS_ECLOSED);
    assert_clean(&f, &out);

    /* Out-of-order input is corruption, not a crash. */
    ents bad = {0};
    ents_add(&bad, "b", 5, TL_TYPE_VALUE, "x");
    ents_add(&bad, "a", 5, TL_TYPE_VALUE, "x");
    assert_int_equal(write_once(&f, &bad, SIZE_MAX, NULL, &out), TALUS_ECORRUPT);
    assert_clean(&f, &out);
    ents_free(&bad);
    ents_add(&bad, "a", 5, TL_TYPE_VALUE, "x");
    ents_add(&bad, "a", 5, TL_TYPE_TOMBSTONE, "");
    assert_int_equal(write_once(&f, &bad, SIZE_MAX, NULL, &out), TALUS_ECORRUPT);
    assert_clean(&f, &out);
    ents_free(&bad);

    /* Success survives a power loss right after: renamed and dir synced. */
    assert_int_equal(write_once(&f, &in, SIZE_MAX, NULL, &out), 0);
    assert_int_equal(tl_fault_env_drop_unsynced(f.fe), 0);
    ents got = {0};
    read_output(&f, &out, &got);
    assert_int_equal(got.n, 40 + 1);
    ents_free(&got);
    cp_output_free(&out);
    ents_free(&in);
    fx_close(&f);
}

/* ---- Level iterator ---------------------------------------------------- */

/* Write `n` distinct keys into several tables of level 1 of a hand-built
 * version (returned), with the model entries in *model_out. */
static ver_version *build_level(fx *f, int nkeys, uint64_t target, ents *model_out)
{
    ents in = {0};
    char kn[32], val[64];
    for (int k = 0; k < nkeys; k++) {
        snprintf(kn, sizeof kn, "lk%05d", k * 2); /* gaps for in-between seeks */
        snprintf(val, sizeof val, "value-%d", k);
        ents_add(&in, kn, 1000 + (uint64_t)k, k % 5 == 4 ? TL_TYPE_TOMBSTONE : TL_TYPE_VALUE,
                 k % 5 == 4 ? "" : val);
    }
    ents_sort(&in);
    cp_ctx c = fx_ctx(f);
    c.target_file_size = target;
    c.key_below = below_all; /* keep the tombstones */
    cp_output out;
    tl_iter *it = cpt_arr_iter_new(in.e, in.n, SIZE_MAX);
    assert_int_equal(cp_write_tables(&c, it, &out), 0);
    tl_iter_destroy(it);
    ver_version *v = cpt_version(3);
    for (size_t i = 0; i < out.nfiles; i++) {
        ver_file_ref(out.files[i]);
        cpt_add(v, 1, out.files[i]);
    }
    cp_output_free(&out);
    *model_out = in;
    return v;
}

/* Positions agree: it valid at model index i (or both invalid: i == n). */
static void same_pos(tl_iter *it, const ents *m, size_t i)
{
    assert_int_equal(tl_iter_status(it), 0);
    if (i >= m->n) {
        assert_false(tl_iter_valid(it));
        return;
    }
    assert_true(tl_iter_valid(it));
    tl_slice k = tl_iter_key(it), v = tl_iter_value(it);
    assert_int_equal(k.len, m->e[i].klen);
    assert_memory_equal(k.data, m->e[i].k, k.len);
    assert_int_equal(v.len, m->e[i].vlen);
    if (v.len)
        assert_memory_equal(v.data, m->e[i].v, v.len);
}

static void test_level_iter(void **state)
{
    (void)state;
    unsigned seed = 777;
    printf("seed %u\n", seed);
    srand(seed);
    fx f;
    fx_open(&f);
    ents m;
    ver_version *v = build_level(&f, 300, 600, &m);
    assert_true(v->nfiles[1] > 4);
    tl_table_cache *tc = tl_table_cache_new(tl_env_posix(), f.dir, 3, NULL);
    assert_non_null(tc);
    tl_iter *it = cp_level_iter(tc, v, 1, false);
    /* The iterator holds its own reference on v. */
    assert_int_equal(atomic_load(&v->refs), 2);
    ver_version_unref(v);

    assert_false(tl_iter_valid(it));
    size_t i = 0;
    for (tl_iter_seek_first(it); tl_iter_valid(it); tl_iter_next(it))
        same_pos(it, &m, i++);
    assert_int_equal(i, m.n);
    same_pos(it, &m, m.n);
    i = m.n;
    for (tl_iter_seek_last(it); tl_iter_valid(it); tl_iter_prev(it))
        same_pos(it, &m, --i);
    assert_int_equal(i, 0);

    /* Seeks to existing keys at various seqnos and to gaps, then a random
     * walk in both directions. */
    for (int round = 0; round < 400; round++) {
        int k = rand() % 620 - 10;
        char kn[32];
        snprintf(kn, sizeof kn, "lk%05d", k < 0 ? 0 : k);
        uint64_t seq = 900 + (uint64_t)(rand() % 400);
        size_t tl;
        uint8_t *t = cpt_ikey(k < 0 ? "a" : kn, seq, TL_TYPE_VALUE, &tl);
        size_t lb = 0;
        while (lb < m.n && tl_ikey_cmp_raw(m.e[lb].k, m.e[lb].klen, t, tl) < 0)
            lb++;
        size_t pos;
        if (round % 2 == 0) {
            tl_iter_seek(it, tl_slice_make(t, tl));
            pos = lb;
        } else {
            tl_iter_seek_for_prev(it, tl_slice_make(t, tl));
            /* last <= target */
            bool eq = lb < m.n && tl_ikey_cmp_raw(m.e[lb].k, m.e[lb].klen, t, tl) == 0;
            pos = eq ? lb : (lb == 0 ? m.n : lb - 1);
        }
        same_pos(it, &m, pos);
        for (int step = 0; step < 20 && pos < m.n; step++) {
            if (rand() % 2) {
                tl_iter_next(it);
                pos = pos + 1;
            } else {
                tl_iter_prev(it);
                pos = pos == 0 ? m.n : pos - 1;
            }
            same_pos(it, &m, pos);
        }
        free(t);
    }
    tl_iter_destroy(it); /* drops the last reference of v */

    /* An empty level, and a level whose table is missing. */
    ver_version *e = cpt_version(3);
    it = cp_level_iter(tc, e, 1, false);
    tl_iter_seek_first(it);
    assert_false(tl_iter_valid(it));
    assert_int_equal(tl_iter_status(it), 0);
    tl_iter_destroy(it);
    cpt_add(e, 2, cpt_file(999999, "a", "b", 100, 1));
    it = cp_level_iter(tc, e, 2, false);
    tl_iter_seek_first(it);
    assert_false(tl_iter_valid(it));
    assert_true(tl_iter_status(it) < 0);
    tl_iter_destroy(it);
    it = cp_level_iter(tc, e, 0, false);
    assert_int_equal(tl_iter_status(it), TALUS_EINVAL);
    tl_iter_destroy(it);
    ver_version_unref(e);
    tl_table_cache_free(tc);
    ents_free(&m);
    fx_close(&f);
}

/* ---- cp_run ------------------------------------------------------------ */

/* One table from entries (already sorted) as a ver_file with a ref. */
static ver_file *one_table(fx *f, ents *in)
{
    cp_ctx c = fx_ctx(f);
    c.key_below = below_all;
    uint64_t snaps[64];
    for (int i = 0; i < 64; i++)
        snaps[i] = (uint64_t)i; /* keep every version of seq < 64 */
    c.snapshots = snaps;
    c.nsnapshots = 64;
    cp_output out;
    tl_iter *it = cpt_arr_iter_new(in->e, in->n, SIZE_MAX);
    assert_int_equal(cp_write_tables(&c, it, &out), 0);
    tl_iter_destroy(it);
    assert_int_equal(out.nfiles, 1);
    ver_file *vf = out.files[0];
    ver_file_ref(vf);
    cp_output_free(&out);
    return vf;
}

static void test_run(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    tl_table_cache *tc = tl_table_cache_new(tl_env_posix(), f.dir, 10, NULL);
    ver_version *v = cpt_version(3);
    ents a = {0}, b = {0}, c1 = {0}, c2 = {0}, far = {0};
    ents_add(&a, "a", 30, TL_TYPE_VALUE, "a30"); /* newest L0 */
    ents_add(&a, "c", 31, TL_TYPE_TOMBSTONE, "");
    ents_add(&b, "a", 20, TL_TYPE_VALUE, "a20");
    ents_add(&b, "b", 21, TL_TYPE_WEAK_TOMBSTONE, "");
    ents_add(&b, "d", 22, TL_TYPE_VALUE, "d22");
    ents_add(&c1, "a", 5, TL_TYPE_VALUE, "a5");
    ents_add(&c1, "b", 6, TL_TYPE_VALUE, "b6");
    ents_add(&c2, "c", 7, TL_TYPE_VALUE, "c7");
    ents_add(&c2, "e", 8, TL_TYPE_VALUE, "e8");
    ents_add(&far, "x", 9, TL_TYPE_VALUE, "x9");
    cpt_add(v, 0, one_table(&f, &a));
    cpt_add(v, 0, one_table(&f, &b));
    cpt_add(v, 1, one_table(&f, &c1));
    cpt_add(v, 1, one_table(&f, &c2));
    cpt_add(v, 1, one_table(&f, &far));

    cp_options o = {.num_levels = 3,
                    .l0_trigger = 2,
                    .base_level_bytes = 1 << 20,
                    .multiplier = 10,
                    .target_file_size = 1 << 20};
    cp_pick p;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.ninputs[0], 2);
    assert_int_equal(p.ninputs[1], 2);
    cp_ctx c = fx_ctx(&f);
    c.tc = tc;
    c.target_file_size = o.target_file_size;
    ver_edit e;
    ver_edit_init(&e);
    cp_output out;
    assert_int_equal(cp_run(&c, &p, &e, &out), 0);
    ents got = {0};
    read_output(&f, &out, &got);
    char *s = ents_str(&got);
    assert_string_equal(s, "a@30V=a30 d@22V=d22 e@8V=e8");
    free(s);
    ents_free(&got);
    assert_int_equal(e.ndels, 4);
    uint64_t in_bytes = 0;
    for (size_t i = 0; i < e.ndels; i++) {
        bool l0 = e.dels[i].number == v->files[0][0]->number ||
                  e.dels[i].number == v->files[0][1]->number;
        assert_int_equal(e.dels[i].level, l0 ? 0 : 1);
        assert_true(e.dels[i].number != v->files[1][2]->number);
    }
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < p.ninputs[k]; i++)
            in_bytes += p.inputs[k][i]->size;
    assert_int_equal(out.bytes_read, in_bytes);
    assert_int_equal(e.nadds, out.nfiles);
    assert_int_equal(e.adds[0].level, 1);
    assert_ptr_equal(e.adds[0].file, out.files[0]);
    ver_edit_free(&e);
    cp_output_free(&out);
    cp_pick_release(&p);

    /* Trivial move: "x" overlaps nothing in L2. */
    tl_slice x = tl_slice_make("x", 1);
    assert_int_equal(cp_pick_range(&o, v, 1, &x, &x, &p), 1);
    assert_true(p.trivial_move);
    ver_edit_init(&e);
    assert_int_equal(cp_run(&c, &p, &e, &out), 0);
    assert_int_equal(out.nfiles, 0);
    assert_int_equal(e.ndels, 1);
    assert_int_equal(e.dels[0].level, 1);
    assert_int_equal(e.dels[0].number, v->files[1][2]->number);
    assert_int_equal(e.nadds, 1);
    assert_int_equal(e.adds[0].level, 2);
    assert_ptr_equal(e.adds[0].file, v->files[1][2]);
    ver_edit_free(&e);
    cp_pick_release(&p);

    /* A missing input table: the error surfaces and nothing is left. */
    size_t sst0, other0;
    dir_counts(&f, &sst0, &other0);
    cpt_add(v, 2, cpt_file(888888, "a", "b", 100, 1));
    tl_slice lo = tl_slice_make("a", 1);
    assert_int_equal(cp_pick_range(&o, v, 1, &lo, &lo, &p), 1);
    assert_false(p.trivial_move);
    ver_edit_init(&e);
    assert_true(cp_run(&c, &p, &e, &out) < 0);
    assert_int_equal(out.nfiles, 0);
    size_t sst1, other1;
    dir_counts(&f, &sst1, &other1);
    assert_int_equal(sst1, sst0);
    assert_int_equal(other1, other0);
    ver_edit_free(&e);
    cp_pick_release(&p);

    ents_free(&a);
    ents_free(&b);
    ents_free(&c1);
    ents_free(&c2);
    ents_free(&far);
    ver_version_unref(v);
    tl_table_cache_free(tc);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_hand_cases),
        cmocka_unit_test(test_gc_model),
        cmocka_unit_test(test_split_keeps_user_keys_whole),
        cmocka_unit_test(test_error_paths_leave_nothing),
        cmocka_unit_test(test_level_iter),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
