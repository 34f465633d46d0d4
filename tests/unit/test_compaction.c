/*
 * test_compaction.c - cp_write_tables: the GC rule against an independent
 * model, exact hand-written cases, splitting at the target size, metadata,
 * and error paths that must leave no file behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cp_test_io.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_hand_cases),
        cmocka_unit_test(test_gc_model),
        cmocka_unit_test(test_split_keeps_user_keys_whole),
        cmocka_unit_test(test_error_paths_leave_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
