/*
 * test_journal.c - the journal's segments (batch payloads are in
 * test_journal_batch.c, torn tails and damage in test_journal_torn.c):
 * segment names and listing, writer/reader round trips over rotations,
 * header checks, I/O faults and power loss through the fault-injecting
 * env, and a small throughput measurement (printed, not asserted).
 */
#include <time.h>

#include "journal_test_util.h"

/* ---- segment names --------------------------------------------------------- */

static void test_segment_names(void **state)
{
    fixture *fx = *state;
    char buf[64];
    assert_string_equal(jnl_segment_name(buf, sizeof buf, "d", 7), "d/000007.jnl");
    assert_string_equal(jnl_segment_name(buf, sizeof buf, "d", 12345678), "d/12345678.jnl");
    uint64_t v;
    assert_true(jnl_parse_segment_name("000007.jnl", &v) && v == 7);
    assert_true(jnl_parse_segment_name("18446744073709551615.jnl", &v) && v == UINT64_MAX);
    assert_false(jnl_parse_segment_name("18446744073709551616.jnl", &v));
    assert_false(jnl_parse_segment_name("7.jnl", &v));
    assert_false(jnl_parse_segment_name("0000007.jnl", &v));
    assert_false(jnl_parse_segment_name("00000a.jnl", &v));
    assert_false(jnl_parse_segment_name(".jnl", &v));

    const char *files[] = {"000010.jnl", "000002.jnl", "1234567.jnl", "000003.jnl.tmp",
                           "abcdef.jnl", "00001.jnl",  "0000004.jnl", "000005.JNL",
                           "LOCK",       "000001.jnl", "+00006.jnl",  "000009.jnlx"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/%s", fx->dir, files[i]);
        put_file(p, "x", 1);
    }
    uint64_t *nums;
    size_t n;
    assert_int_equal(jnl_list_segments(tl_env_posix(), fx->dir, &nums, &n), 0);
    assert_int_equal(n, 4);
    assert_true(nums[0] == 1 && nums[1] == 2 && nums[2] == 10 && nums[3] == 1234567);
    free(nums);
}

/* ---- writer/reader round trip -------------------------------------------- */

static void test_roundtrip_rotations(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    jnl_writer *w;
    assert_int_equal(jnl_writer_open(env, fx->dir, 3, &w), 0);
    assert_int_equal(jnl_writer_open(env, fx->dir, 3, &(jnl_writer *){0}), TALUS_EEXIST);
    assert_int_equal(jnl_writer_segment(w), 3);
    assert_int_equal(jnl_writer_segment_bytes(w), JNL_HEADER_SIZE);
    assert_int_equal(jnl_writer_add(w, tl_slice_make("", 0)), TALUS_EINVAL);
    assert_int_equal(jnl_writer_write(w), 0); /* nothing staged */

    /* Per segment: its number and records. */
    enum { MAXSEG = 64 };
    uint64_t segs[MAXSEG];
    recs want[MAXSEG] = {{0}};
    size_t nseg = 1;
    segs[0] = 3;
    size_t big = 3u << 20;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    for (int i = 0; i < 3000; i++) {
        size_t n;
        if (i == 1500)
            n = big; /* bigger than the reader's chunk */
        else if (rnd_n(100) == 0)
            n = 100000 + rnd_n(600000);
        else
            n = 1 + rnd_n(rnd_n(8) == 0 ? 5000 : 200);
        rnd_bytes(buf, n);
        assert_int_equal(jnl_writer_add(w, tl_slice_make(buf, n)), 0);
        recs_push(&want[nseg - 1], buf, n);
        if (rnd_n(4) == 0) {
            uint64_t before = jnl_writer_segment_bytes(w);
            assert_int_equal(jnl_writer_write(w), 0);
            assert_true(jnl_writer_segment_bytes(w) > before);
        }
        if (rnd_n(50) == 0)
            assert_int_equal(jnl_writer_sync(w), 0);
        if (jnl_writer_segment_bytes(w) > (1u << 20) && nseg < MAXSEG) {
            uint64_t next = segs[nseg - 1] + 1 + rnd_n(3);
            /* Staged records go to the old segment. */
            assert_int_equal(jnl_writer_rotate(w, next), 0);
            assert_int_equal(jnl_writer_rotate(w, next), TALUS_EINVAL);
            assert_int_equal(jnl_writer_segment(w), next);
            assert_int_equal(jnl_writer_segment_bytes(w), JNL_HEADER_SIZE);
            segs[nseg++] = next;
        }
    }
    assert_int_equal(jnl_writer_write(w), 0);
    uint64_t last_bytes = jnl_writer_segment_bytes(w);
    assert_int_equal(jnl_writer_sync(w), 0);
    assert_int_equal(jnl_writer_close(w), 0);
    assert_true(nseg >= 4);

    uint64_t *nums;
    size_t n;
    assert_int_equal(jnl_list_segments(env, fx->dir, &nums, &n), 0);
    assert_int_equal(n, nseg);
    for (size_t s = 0; s < nseg; s++) {
        assert_true(nums[s] == segs[s]);
        recs got = {0};
        bool torn;
        uint64_t good, size;
        assert_int_equal(read_all(env, seg_path(fx, nums[s]), &got, &torn, &good), 0);
        assert_false(torn);
        assert_int_equal(tl_env_file_size(env, seg_path(fx, nums[s]), &size), 0);
        assert_true(good == size);
        if (s == nseg - 1)
            assert_true(size == last_bytes);
        assert_recs_prefix(&got, &want[s], want[s].n);
        recs_free(&got);
        recs_free(&want[s]);
    }
    free(nums);
    free(buf);
}

static void test_header_checks(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    recs want = {0}, got = {0};
    write_segment(fx, 1, 3, 50, &want, NULL);
    size_t size;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    jnl_reader *r;
    bool torn;
    uint64_t good;

    img[0] ^= 1; /* wrong magic */
    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "not a talus journal segment"));
    put_file(seg_path(fx, 1), img, 10); /* a short non-journal file too */
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_ECORRUPT);
    img[0] ^= 1;

    uint8_t hdr[JNL_HEADER_SIZE];
    jnl_header_encode(hdr, JNL_FORMAT_VERSION + 1, 1); /* future version */
    memcpy(img, hdr, sizeof hdr);
    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_EVERSION);
    assert_non_null(strstr(tl_errmsg(), "reads up to 1"));
    jnl_header_encode(hdr, 0, 1);
    memcpy(img, hdr, sizeof hdr);
    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_ECORRUPT);

    jnl_header_encode(hdr, JNL_FORMAT_VERSION, 1);
    memcpy(img, hdr, sizeof hdr);
    img[17] ^= 1; /* number damaged: checksum */
    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 1), &r), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "header checksum"));
    img[17] ^= 1;

    /* Right header under the wrong name. */
    put_file(seg_path(fx, 2), img, size);
    assert_int_equal(jnl_reader_open(env, seg_path(fx, 2), &r), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "header says segment 1"));
    char bad[300];
    snprintf(bad, sizeof bad, "%s/1.jnl", fx->dir);
    put_file(bad, img, size);
    assert_int_equal(jnl_reader_open(env, bad, &r), TALUS_EINVAL);

    put_file(seg_path(fx, 1), img, size);
    assert_int_equal(read_all(env, seg_path(fx, 1), &got, &torn, &good), 0);
    assert_recs_prefix(&got, &want, 3);
    recs_free(&got);
    recs_free(&want);
    free(img);
}

/* ---- faults and power loss ------------------------------------------------- */

static void add_recs(jnl_writer *w, recs *want, size_t n)
{
    uint8_t buf[400];
    for (size_t i = 0; i < n; i++) {
        size_t len = 1 + rnd_n(sizeof buf);
        rnd_bytes(buf, len);
        assert_int_equal(jnl_writer_add(w, tl_slice_make(buf, len)), 0);
        if (want)
            recs_push(want, buf, len);
    }
}

static void test_fault_write(void **state)
{
    fixture *fx = *state;
    for (int variant = 0; variant < 2; variant++) {
        tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
        tl_env *env = tl_fault_env_env(fe);
        jnl_writer *w;
        recs want = {0}, got = {0};
        assert_int_equal(jnl_writer_open(env, fx->dir, 1, &w), 0);
        add_recs(w, &want, 5);
        assert_int_equal(jnl_writer_write(w), 0);
        uint64_t good_bytes = jnl_writer_segment_bytes(w);
        /* One record for the short write, so its half is a torn record. */
        add_recs(w, NULL, variant == 0 ? 5 : 1);
        if (variant == 0)
            tl_fault_env_arm(fe, TL_FAULT_WRITE, 1, TALUS_ENOSPC, false);
        else
            tl_fault_env_short_write_next(fe);
        int err = variant == 0 ? TALUS_ENOSPC : TALUS_EIO;
        assert_int_equal(jnl_writer_write(w), err);
        tl_fault_env_disarm(fe);
        /* Broken for good, with the first error. */
        assert_int_equal(jnl_writer_add(w, tl_slice_make("x", 1)), err);
        assert_non_null(strstr(tl_errmsg(), "broken"));
        assert_int_equal(jnl_writer_write(w), err);
        assert_int_equal(jnl_writer_sync(w), err);
        assert_int_equal(jnl_writer_rotate(w, 2), err);
        assert_int_equal(jnl_writer_close(w), 0);
        bool torn;
        uint64_t good;
        assert_int_equal(read_all(env, seg_path(fx, 1), &got, &torn, &good), 0);
        assert_recs_prefix(&got, &want, 5);
        assert_int_equal(torn, variant == 1); /* half a group on disk */
        assert_true(good == good_bytes);
        recs_free(&got);
        recs_free(&want);
        tl_fault_env_free(fe);
        assert_int_equal(tl_env_remove(tl_env_posix(), seg_path(fx, 1)), 0);
    }
}

static void test_fault_sync_open(void **state)
{
    fixture *fx = *state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    tl_env *env = tl_fault_env_env(fe);
    jnl_writer *w;
    /* Creating a segment syncs the file and the directory: a failure
     * leaves nothing behind. */
    for (uint64_t nth = 1; nth <= 2; nth++) {
        tl_fault_env_arm(fe, TL_FAULT_SYNC, nth, TALUS_EIO, false);
        assert_int_equal(jnl_writer_open(env, fx->dir, 1, &w), TALUS_EIO);
        assert_int_equal(tl_env_exists(env, seg_path(fx, 1)), 0);
    }
    tl_fault_env_arm(fe, TL_FAULT_OPEN, 1, TALUS_EIO, false);
    assert_int_equal(jnl_writer_open(env, fx->dir, 1, &w), TALUS_EIO);
    tl_fault_env_disarm(fe);

    assert_int_equal(jnl_writer_open(env, fx->dir, 1, &w), 0);
    add_recs(w, NULL, 3);
    assert_int_equal(jnl_writer_write(w), 0);
    tl_fault_env_arm(fe, TL_FAULT_SYNC, 1, TALUS_EIO, false);
    assert_int_equal(jnl_writer_sync(w), TALUS_EIO);
    tl_fault_env_disarm(fe);
    assert_int_equal(jnl_writer_sync(w), TALUS_EIO); /* sticky */
    assert_int_equal(jnl_writer_close(w), 0);

    /* A failed rotation (new segment cannot be created) breaks the writer. */
    assert_int_equal(jnl_writer_open(env, fx->dir, 5, &w), 0);
    tl_fault_env_arm(fe, TL_FAULT_OPEN, 1, TALUS_ENOSPC, false);
    assert_int_equal(jnl_writer_rotate(w, 6), TALUS_ENOSPC);
    tl_fault_env_disarm(fe);
    assert_int_equal(jnl_writer_write(w), TALUS_ENOSPC);
    assert_int_equal(jnl_writer_close(w), 0);
    tl_fault_env_free(fe);
}

static void test_power_loss(void **state)
{
    fixture *fx = *state;
    for (int round = 0; round < 30; round++) {
        tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
        tl_env *env = tl_fault_env_env(fe);
        enum { MAXSEG = 8 };
        recs want[MAXSEG] = {{0}};
        size_t durable[MAXSEG] = {0}; /* records known synced per segment */
        size_t nseg = 1;
        jnl_writer *w;
        uint64_t base = (uint64_t)round * 100 + 1;
        assert_int_equal(jnl_writer_open(env, fx->dir, base, &w), 0);
        int groups = 5 + (int)rnd_n(40);
        for (int g = 0; g < groups; g++) {
            add_recs(w, &want[nseg - 1], 1 + rnd_n(10));
            assert_int_equal(jnl_writer_write(w), 0);
            if (rnd_n(3) == 0) {
                assert_int_equal(jnl_writer_sync(w), 0);
                durable[nseg - 1] = want[nseg - 1].n;
            }
            if (rnd_n(10) == 0 && nseg < MAXSEG) {
                assert_int_equal(jnl_writer_rotate(w, base + nseg), 0);
                durable[nseg - 1] = want[nseg - 1].n;
                nseg++;
            }
        }
        assert_int_equal(jnl_writer_close(w), 0);
        assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
        for (size_t s = 0; s < nseg; s++) {
            recs got = {0};
            bool torn;
            uint64_t good;
            /* Whole unsynced tails are dropped (the env does not tear). */
            assert_int_equal(read_all(env, seg_path(fx, base + s), &got, &torn, &good), 0);
            assert_false(torn);
            assert_recs_prefix(&got, &want[s], durable[s]);
            recs_free(&got);
            recs_free(&want[s]);
        }
        tl_fault_env_free(fe);
    }
}

/* ---- throughput (printed, not asserted) --------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_throughput(void **state)
{
    fixture *fx = *state;
    enum { N = 200000, REC = 116 };
    uint8_t rec[REC];
    rnd_bytes(rec, sizeof rec);
    for (int group = 1; group <= 64; group *= 64) {
        jnl_writer *w;
        uint64_t number = (uint64_t)group;
        assert_int_equal(jnl_writer_open(tl_env_posix(), fx->dir, number, &w), 0);
        double t0 = now_s();
        for (int i = 0; i < N; i += group) {
            for (int k = 0; k < group; k++)
                assert_int_equal(jnl_writer_add(w, tl_slice_make(rec, REC)), 0);
            assert_int_equal(jnl_writer_write(w), 0);
        }
        double t = now_s() - t0;
        assert_true(jnl_writer_segment_bytes(w) ==
                    JNL_HEADER_SIZE + (uint64_t)N * (REC + JNL_FRAME_SIZE));
        assert_int_equal(jnl_writer_close(w), 0);
        double t1 = now_s();
        jnl_reader *r;
        tl_slice p;
        int cnt = 0;
        assert_int_equal(jnl_reader_open(tl_env_posix(), seg_path(fx, number), &r), 0);
        while (jnl_reader_next(r, &p) == 1)
            cnt++;
        jnl_reader_close(r);
        double tr = now_s() - t1;
        assert_int_equal(cnt, N);
        printf("journal throughput: %d-byte records, add x%d + write: %.0f records/s "
               "(%.0f ns/record, %.1f MB/s); read back %.0f records/s\n",
               REC, group, N / t, t / N * 1e9, N * (double)REC / t / 1e6, N / tr);
    }
    /* What a sync-durability group costs (one fdatasync per group). */
    jnl_writer *w;
    assert_int_equal(jnl_writer_open(tl_env_posix(), fx->dir, 100, &w), 0);
    enum { SYNCS = 50 };
    double t0 = now_s();
    for (int i = 0; i < SYNCS; i++) {
        assert_int_equal(jnl_writer_add(w, tl_slice_make(rec, REC)), 0);
        assert_int_equal(jnl_writer_write(w), 0);
        assert_int_equal(jnl_writer_sync(w), 0);
    }
    double t = now_s() - t0;
    assert_int_equal(jnl_writer_close(w), 0);
    printf("journal throughput: add + write + sync: %.0f groups/s (%.0f us/group)\n", SYNCS / t,
           t / SYNCS * 1e6);
}

int main(void)
{
    jt_seed("test_journal");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_segment_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_rotations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_sync_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
