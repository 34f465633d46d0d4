/*
 * test_compaction_job.c - the level iterator (both directions, seeks, lazy
 * opening, errors) against a concatenated model, and cp_run (merge of L0
 * and L1 inputs, the edit it fills, trivial moves, input errors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cp_test_io.h"

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
        cmocka_unit_test(test_level_iter),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
