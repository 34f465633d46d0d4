/*
 * test_compaction_picker.c - the leveled picker on hand-built versions: L0
 * trigger and ordering rule, level scores and targets, overlap widening,
 * trivial moves, compacting files skipped, manual range picks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "compaction/compaction.h"
#include "compaction/cp_internal.h"
#include "cp_test_util.h"

static cp_options opts(void)
{
    cp_options o = {.num_levels = 4,
                    .l0_trigger = 4,
                    .base_level_bytes = 1000,
                    .multiplier = 10,
                    .target_file_size = 100};
    return o;
}

static bool has(ver_file **a, size_t n, uint64_t number)
{
    for (size_t i = 0; i < n; i++)
        if (a[i]->number == number)
            return true;
    return false;
}

static void test_targets_and_scores(void **state)
{
    (void)state;
    cp_options o = opts();
    assert_int_equal(cp_level_target(&o, 1), 1000);
    assert_int_equal(cp_level_target(&o, 2), 10000);
    assert_int_equal(cp_level_target(&o, 3), 100000);
    o.multiplier = 1 << 30;
    assert_int_equal(cp_level_target(&o, 5), UINT64_MAX); /* saturates */
    o = opts();

    ver_version *v = cpt_version(4);
    assert_true(cp_max_score(&o, v) == 0.0);
    for (int i = 0; i < 3; i++)
        cpt_add(v, 0, cpt_file(10 + i, "a", "b", 10, 10 - i));
    assert_true(cp_max_score(&o, v) == 0.75);
    cp_pick p;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 0);
    cpt_add(v, 2, cpt_file(20, "a", "z", 25000, 1)); /* L2: 25000 / 10000 */
    assert_true(cp_max_score(&o, v) == 2.5);
    /* The last level never scores, however big. */
    cpt_add(v, 3, cpt_file(30, "a", "z", 10000000, 1));
    assert_true(cp_max_score(&o, v) == 2.5);
    /* Compacting files do not count. */
    v->files[2][0]->compacting = true;
    assert_true(cp_max_score(&o, v) == 0.75);
    v->files[2][0]->compacting = false;
    ver_version_unref(v);
}

static void test_l0_trigger_and_overlap(void **state)
{
    (void)state;
    cp_options o = opts();
    ver_version *v = cpt_version(4);
    /* L0 newest first. The oldest (13: [b,d]) overlaps 10: [a,c]. */
    cpt_add(v, 0, cpt_file(10, "a", "c", 10, 40));
    cpt_add(v, 0, cpt_file(11, "x", "z", 10, 30));
    cpt_add(v, 0, cpt_file(12, "m", "n", 10, 20));
    cp_pick p;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 0); /* 3 < trigger */
    cpt_add(v, 0, cpt_file(13, "b", "d", 10, 10));
    cpt_add(v, 1, cpt_file(20, "a", "b", 10, 5));
    cpt_add(v, 1, cpt_file(21, "e", "f", 10, 5));
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.level, 0);
    assert_int_equal(p.output_level, 1);
    assert_true(p.score == 1.0);
    assert_false(p.trivial_move);
    assert_int_equal(p.ninputs[0], 2);
    /* In L0 order: newest first. */
    assert_int_equal(p.inputs[0][0]->number, 10);
    assert_int_equal(p.inputs[0][1]->number, 13);
    assert_int_equal(p.ninputs[1], 1);
    assert_int_equal(p.inputs[1][0]->number, 20);
    assert_ptr_equal(p.version, v);
    assert_int_equal(atomic_load(&v->refs), 2);
    assert_true(v->files[0][0]->compacting && v->files[0][3]->compacting);
    assert_true(v->files[1][0]->compacting);
    assert_false(v->files[0][1]->compacting || v->files[1][1]->compacting);
    /* The idle L0 files (2) are below the trigger now. */
    cp_pick q;
    assert_int_equal(cp_pick_compaction(&o, v, &q), 0);
    cp_pick_release(&p);
    assert_false(v->files[0][0]->compacting || v->files[1][0]->compacting);
    assert_int_equal(atomic_load(&v->refs), 1);
    assert_null(p.inputs[0]);
    ver_version_unref(v);
}

static void test_l0_transitive(void **state)
{
    (void)state;
    cp_options o = opts();
    o.l0_trigger = 2;
    ver_version *v = cpt_version(4);
    /* A chain: the oldest [e,f] overlaps [d,e], which overlaps [c,d] ...
     * every link must come along; [x,y] stays. */
    cpt_add(v, 0, cpt_file(1, "b", "c", 10, 50));
    cpt_add(v, 0, cpt_file(2, "x", "y", 10, 40));
    cpt_add(v, 0, cpt_file(3, "c", "d", 10, 30));
    cpt_add(v, 0, cpt_file(4, "d", "e", 10, 20));
    cpt_add(v, 0, cpt_file(5, "e", "f", 10, 10));
    cp_pick p;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.ninputs[0], 4);
    uint64_t want[] = {1, 3, 4, 5};
    for (int i = 0; i < 4; i++)
        assert_int_equal(p.inputs[0][i]->number, want[i]);
    assert_int_equal(p.ninputs[1], 0);
    assert_false(p.trivial_move);
    cp_pick_release(&p);
    ver_version_unref(v);
}

static void test_l0_ordering_rule(void **state)
{
    (void)state;
    cp_options o = opts();
    o.l0_trigger = 1;
    ver_version *v = cpt_version(4);
    cpt_add(v, 0, cpt_file(1, "p", "q", 10, 50)); /* newest, overlaps nothing */
    cpt_add(v, 0, cpt_file(2, "b", "d", 10, 40));
    cpt_add(v, 0, cpt_file(3, "c", "e", 10, 30)); /* oldest, being compacted */
    v->files[0][2]->compacting = true;
    cp_pick p;
    /* The oldest idle file (2) overlaps the compacting older file 3: moving
     * 2 down would put newer versions below older ones. Nothing is picked. */
    assert_int_equal(cp_pick_compaction(&o, v, &p), 0);
    v->files[0][2]->compacting = false;
    /* An L1 file in the range being compacted blocks the L0 pick too. */
    cpt_add(v, 1, cpt_file(10, "a", "c", 10, 5));
    v->files[1][0]->compacting = true;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 0);
    v->files[1][0]->compacting = false;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.ninputs[0], 2);
    assert_int_equal(p.inputs[0][0]->number, 2);
    assert_int_equal(p.inputs[0][1]->number, 3);
    assert_int_equal(p.ninputs[1], 1);
    /* With those running, the newest file (oldest idle now) is picked on
     * its own and, overlapping nothing, moves trivially. */
    cp_pick q;
    assert_int_equal(cp_pick_compaction(&o, v, &q), 1);
    assert_int_equal(q.ninputs[0], 1);
    assert_int_equal(q.inputs[0][0]->number, 1);
    assert_int_equal(q.ninputs[1], 0);
    assert_true(q.trivial_move);
    cp_pick_release(&q);
    cp_pick_release(&p);
    ver_version_unref(v);
}

static void test_level_pick_and_boundaries(void **state)
{
    (void)state;
    cp_options o = opts();
    ver_version *v = cpt_version(4);
    /* L1 over target (1000). Files 101 and 102 share user key "c" at their
     * boundary, so they go together. */
    cpt_add(v, 1, cpt_file(100, "a", "b", 400, 9));
    cpt_add(v, 1, cpt_file(101, "bb", "c", 400, 9));
    cpt_add(v, 1, cpt_file(102, "c", "d", 400, 7));
    cpt_add(v, 1, cpt_file(103, "m", "n", 400, 9));
    /* L2: 200 overlaps [a,b] heavily; of 201 and 202 (sharing "h") only
     * 201 overlaps [bb,d], but 202 must come along with it. */
    cpt_add(v, 2, cpt_file(200, "a", "ab", 5000, 1));
    cpt_add(v, 2, cpt_file(201, "cc", "h", 100, 1));
    cpt_add(v, 2, cpt_file(202, "h", "k", 100, 1));
    cpt_add(v, 2, cpt_file(203, "m", "n", 3000, 1));
    cp_pick p;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.level, 1);
    assert_int_equal(p.output_level, 2);
    assert_true(p.score == 1.6);
    /* Ratios: 100: 5000/400, {101,102}: 200/800, 103: 3000/400. */
    assert_int_equal(p.ninputs[0], 2);
    assert_int_equal(p.inputs[0][0]->number, 101);
    assert_int_equal(p.inputs[0][1]->number, 102);
    assert_int_equal(p.ninputs[1], 2);
    assert_int_equal(p.inputs[1][0]->number, 201);
    assert_int_equal(p.inputs[1][1]->number, 202);
    assert_false(p.trivial_move);
    /* L1 idle bytes are now 800 < 1000: nothing else is due. */
    cp_pick q;
    assert_int_equal(cp_pick_compaction(&o, v, &q), 0);
    cp_pick_release(&p);
    ver_version_unref(v);
}

/* A file of the output level that does not overlap the range itself but
 * shares its last user key with the first overlapping file comes along. */
static void test_output_level_backward_boundary(void **state)
{
    (void)state;
    cp_options o = opts();
    ver_version *v = cpt_version(4);
    cpt_add(v, 1, cpt_file(100, "bb", "d", 1200, 9));
    cpt_add(v, 2, cpt_file(200, "a", "b", 100, 1));
    cpt_add(v, 2, cpt_file(201, "b", "c", 100, 1));
    cpt_add(v, 2, cpt_file(202, "x", "y", 100, 1));
    cp_pick p;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.ninputs[1], 2);
    assert_int_equal(p.inputs[1][0]->number, 200);
    assert_int_equal(p.inputs[1][1]->number, 201);
    cp_pick_release(&p);
    tl_slice c = tl_slice_make("c", 1);
    assert_int_equal(cp_pick_range(&o, v, 2, &c, &c, &p), 1);
    assert_int_equal(p.ninputs[0], 2);
    assert_int_equal(p.inputs[0][0]->number, 200);
    cp_pick_release(&p);
    ver_version_unref(v);
}

static void test_trivial_move_and_skips(void **state)
{
    (void)state;
    cp_options o = opts();
    ver_version *v = cpt_version(4);
    cpt_add(v, 1, cpt_file(100, "a", "b", 600, 9));
    cpt_add(v, 1, cpt_file(101, "e", "f", 600, 9));
    cpt_add(v, 2, cpt_file(200, "a", "c", 100, 1));
    cp_pick p;
    /* 101 overlaps nothing in L2 (ratio 0): a trivial move. */
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.ninputs[0], 1);
    assert_int_equal(p.inputs[0][0]->number, 101);
    assert_int_equal(p.ninputs[1], 0);
    assert_true(p.trivial_move);
    cp_pick_release(&p);

    /* 101 busy: L1 idle bytes 600 < 1000, nothing due. */
    v->files[1][1]->compacting = true;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 0);
    cpt_add(v, 1, cpt_file(102, "g", "h", 600, 9));
    /* Now 1200 idle: 102 (no overlap) goes before 100. */
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.inputs[0][0]->number, 102);
    cp_pick q;
    /* 102 taken too: 600 idle, nothing more. */
    assert_int_equal(cp_pick_compaction(&o, v, &q), 0);
    cp_pick_release(&p);
    /* If L2's 200 is busy, 100 cannot go; 102 still can. */
    v->files[2][0]->compacting = true;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.inputs[0][0]->number, 102);
    cp_pick_release(&p);
    v->files[1][2]->compacting = true;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 0);
    v->files[1][2]->compacting = false;
    v->files[1][1]->compacting = false;
    v->files[2][0]->compacting = false;
    ver_version_unref(v);
}

static void test_highest_score_first(void **state)
{
    (void)state;
    cp_options o = opts();
    o.l0_trigger = 2;
    ver_version *v = cpt_version(4);
    for (int i = 0; i < 4; i++) /* L0 score 2 */
        cpt_add(v, 0, cpt_file(10 + i, "a", "b", 10, 10 - i));
    cpt_add(v, 1, cpt_file(100, "x", "y", 3000, 1)); /* L1 score 3 */
    cp_pick p;
    assert_int_equal(cp_pick_compaction(&o, v, &p), 1);
    assert_int_equal(p.level, 1);
    assert_true(p.trivial_move);
    cp_pick q;
    /* L1 busy: L0 is next. */
    assert_int_equal(cp_pick_compaction(&o, v, &q), 1);
    assert_int_equal(q.level, 0);
    assert_int_equal(q.ninputs[0], 4);
    cp_pick_release(&q);
    cp_pick_release(&p);
    ver_version_unref(v);
}

static void test_pick_range(void **state)
{
    (void)state;
    cp_options o = opts();
    ver_version *v = cpt_version(3);
    cpt_add(v, 0, cpt_file(1, "k", "l", 10, 50));
    cpt_add(v, 0, cpt_file(2, "a", "c", 10, 40));
    cpt_add(v, 0, cpt_file(3, "b", "k", 10, 30));
    cpt_add(v, 1, cpt_file(10, "a", "b", 10, 5));
    cpt_add(v, 1, cpt_file(11, "d", "e", 10, 5));
    cpt_add(v, 1, cpt_file(12, "x", "y", 10, 5));
    cpt_add(v, 2, cpt_file(20, "a", "z", 10, 1));
    cp_pick p;
    tl_slice lo = tl_slice_make("a", 1), hi = tl_slice_make("a", 1);
    /* [a,a] hits file 2 in L0; closure brings 3 (overlaps 2) and 1. */
    assert_int_equal(cp_pick_range(&o, v, 0, &lo, &hi, &p), 1);
    assert_int_equal(p.ninputs[0], 3);
    assert_int_equal(p.ninputs[1], 2); /* [a,l] in L1: 10, 11 */
    assert_true(has(p.inputs[1], 2, 10) && has(p.inputs[1], 2, 11));
    cp_pick q;
    assert_int_equal(cp_pick_range(&o, v, 0, NULL, NULL, &q), TALUS_EBUSY);
    assert_int_equal(cp_pick_range(&o, v, 1, &lo, &hi, &q), TALUS_EBUSY);
    cp_pick_release(&p);

    tl_slice m = tl_slice_make("m", 1), n = tl_slice_make("n", 1);
    assert_int_equal(cp_pick_range(&o, v, 1, &m, &n, &q), 0);
    assert_int_equal(cp_pick_range(&o, v, 1, NULL, NULL, &q), 1);
    assert_int_equal(q.ninputs[0], 3);
    assert_int_equal(q.ninputs[1], 1);
    assert_int_equal(q.output_level, 2);
    cp_pick_release(&q);
    /* The last level rewrites in place. */
    assert_int_equal(cp_pick_range(&o, v, 2, &m, NULL, &q), 1);
    assert_int_equal(q.output_level, 2);
    assert_int_equal(q.ninputs[0], 1);
    assert_int_equal(q.ninputs[1], 0);
    assert_false(q.trivial_move);
    cp_pick_release(&q);
    assert_int_equal(cp_pick_range(&o, v, 3, NULL, NULL, &q), TALUS_EINVAL);
    assert_int_equal(cp_pick_range(&o, v, -1, NULL, NULL, &q), TALUS_EINVAL);
    ver_version_unref(v);
}

/* Invariants of random picks: L0 inputs closed under overlap, sorted-level
 * inputs never split a user key, marks exactly on inputs. */
static void test_random_invariants(void **state)
{
    (void)state;
    unsigned seed = 12345;
    printf("seed %u\n", seed);
    srand(seed);
    int npicked = 0;
    for (int round = 0; round < 200; round++) {
        cp_options o = opts();
        o.l0_trigger = 1 + rand() % 4;
        o.base_level_bytes = 100 + (uint64_t)(rand() % 400);
        ver_version *v = cpt_version(4);
        uint64_t num = 1;
        int n0 = rand() % 8;
        for (int i = 0; i < n0; i++) {
            char a[4] = {(char)('a' + rand() % 20), 0}, b[4] = {0};
            b[0] = (char)(a[0] + rand() % 4);
            cpt_add(v, 0, cpt_file(num++, a, b, 10, (uint64_t)(100 - i)));
            if (rand() % 5 == 0)
                v->files[0][i]->compacting = true;
        }
        for (int l = 1; l < 4; l++) {
            char c = 'a';
            while (c < 'y' && v->nfiles[l] < 60 && rand() % 6) {
                char a[2] = {c, 0}, b[2] = {(char)(c + rand() % 2), 0};
                cpt_add(v, l, cpt_file(num++, a, b, (uint64_t)(rand() % 200), 1));
                c = (char)(b[0] + rand() % 2); /* sometimes a shared boundary */
                if (rand() % 6 == 0)
                    v->files[l][v->nfiles[l] - 1]->compacting = true;
            }
        }
        bool was[4][64];
        for (int l = 0; l < 4; l++)
            for (size_t i = 0; i < v->nfiles[l]; i++)
                was[l][i] = v->files[l][i]->compacting;
        cp_pick p;
        int rc = cp_pick_compaction(&o, v, &p);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1) {
            int L = p.level;
            for (size_t i = 0; i < v->nfiles[L]; i++) {
                ver_file *f = v->files[L][i];
                bool in = has(p.inputs[0], p.ninputs[0], f->number);
                if (in)
                    assert_false(was[L][i]);
                assert_true(f->compacting == (in || was[L][i]));
                if (in || L == 0)
                    continue;
                /* A sorted-level non-input never shares a boundary user key
                 * with an input neighbour. */
                if (i > 0 && has(p.inputs[0], p.ninputs[0], v->files[L][i - 1]->number))
                    assert_true(tl_slice_cmp(cp_file_hi(v->files[L][i - 1]), cp_file_lo(f)) < 0);
                if (i + 1 < v->nfiles[L] &&
                    has(p.inputs[0], p.ninputs[0], v->files[L][i + 1]->number))
                    assert_true(tl_slice_cmp(cp_file_hi(f), cp_file_lo(v->files[L][i + 1])) < 0);
            }
            if (L == 0) {
                /* Closed under overlap: a non-input overlapping an input
                 * cannot exist. */
                for (size_t i = 0; i < v->nfiles[0]; i++) {
                    ver_file *f = v->files[0][i];
                    if (has(p.inputs[0], p.ninputs[0], f->number))
                        continue;
                    for (size_t j = 0; j < p.ninputs[0]; j++) {
                        ver_file *g = p.inputs[0][j];
                        bool ov = tl_slice_cmp(cp_file_lo(f), cp_file_hi(g)) <= 0 &&
                                  tl_slice_cmp(cp_file_lo(g), cp_file_hi(f)) <= 0;
                        assert_false(ov);
                    }
                }
            }
            for (size_t i = 0; i < p.ninputs[1]; i++)
                assert_true(p.inputs[1][i]->compacting);
            /* The output level's inputs are one run that splits no user key
             * and covers every file overlapping the level-L inputs. */
            int O = p.output_level;
            for (size_t i = 0; O != L && i < v->nfiles[O]; i++) {
                ver_file *f = v->files[O][i];
                bool in = has(p.inputs[1], p.ninputs[1], f->number);
                bool ov = false;
                for (size_t j = 0; j < p.ninputs[0]; j++) {
                    ver_file *g = p.inputs[0][j];
                    ov = ov || (tl_slice_cmp(cp_file_lo(f), cp_file_hi(g)) <= 0 &&
                                tl_slice_cmp(cp_file_lo(g), cp_file_hi(f)) <= 0);
                }
                if (ov)
                    assert_true(in);
                if (in)
                    continue;
                if (i > 0 && has(p.inputs[1], p.ninputs[1], v->files[O][i - 1]->number))
                    assert_true(tl_slice_cmp(cp_file_hi(v->files[O][i - 1]), cp_file_lo(f)) < 0);
                if (i + 1 < v->nfiles[O] &&
                    has(p.inputs[1], p.ninputs[1], v->files[O][i + 1]->number))
                    assert_true(tl_slice_cmp(cp_file_hi(f), cp_file_lo(v->files[O][i + 1])) < 0);
            }
            npicked++;
            cp_pick_release(&p);
        }
        for (int l = 0; l < 4; l++)
            for (size_t i = 0; i < v->nfiles[l]; i++)
                assert_true(v->files[l][i]->compacting == was[l][i]);
        ver_version_unref(v);
    }
    printf("%d of 200 rounds picked something\n", npicked);
    assert_true(npicked > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targets_and_scores),
        cmocka_unit_test(test_l0_trigger_and_overlap),
        cmocka_unit_test(test_l0_transitive),
        cmocka_unit_test(test_l0_ordering_rule),
        cmocka_unit_test(test_level_pick_and_boundaries),
        cmocka_unit_test(test_output_level_backward_boundary),
        cmocka_unit_test(test_trivial_move_and_skips),
        cmocka_unit_test(test_highest_score_first),
        cmocka_unit_test(test_pick_range),
        cmocka_unit_test(test_random_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
