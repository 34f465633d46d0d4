/*
 * test_journal_torn.c - the journal's record framing and the rules that
 * tell a torn tail from damage (FORMAT.md sections 3-4): the frame layout
 * decoded by hand, every cut, zero-filled tails (also from a sector
 * boundary inside a frame), flipped bits in every field of middle and last
 * records, big records, and a reader fuzz loop.
 */
#include "journal_test_util.h"

/* ---- torn tails and corruption ------------------------------------------- */

static void expect_read(const fixture *fx, const recs *want, size_t nrec, int rc_want,
                        bool torn_want, uint64_t good_want)
{
    recs got = {0};
    bool torn;
    uint64_t good;
    int rc = read_all(tl_env_posix(), seg_path(fx, 1), &got, &torn, &good);
    assert_int_equal(rc, rc_want);
    assert_recs_prefix(&got, want, nrec);
    if (rc == 0)
        assert_int_equal(torn, torn_want);
    assert_true(good == good_want);
    recs_free(&got);
}

/* Writes img[0, n) as segment 1, then expect_read. */
static void expect_img(const fixture *fx, const uint8_t *img, size_t n, const recs *want,
                       size_t nrec, int rc_want, bool torn_want, uint64_t good_want)
{
    put_file(seg_path(fx, 1), img, n);
    expect_read(fx, want, nrec, rc_want, torn_want, good_want);
}

/* The last error names segment 1, the record's offset and `what`. */
static void assert_names(const fixture *fx, uint64_t off, const char *what)
{
    char s[64];
    snprintf(s, sizeof s, "record at offset %llu", (unsigned long long)off);
    assert_non_null(strstr(tl_errmsg(), s));
    assert_non_null(strstr(tl_errmsg(), seg_path(fx, 1)));
    assert_non_null(strstr(tl_errmsg(), what));
}

/* How many records lie wholly before `at`; *good = where the last ends. */
static size_t recs_before(const uint64_t *ends, size_t n, uint64_t at, uint64_t *good)
{
    size_t k = 0;
    *good = JNL_HEADER_SIZE;
    while (k < n && ends[k] <= at)
        *good = ends[k++];
    return k;
}

/* Rewrites the length of the record at `at`, with a valid length check. */
static void set_len(uint8_t *img, uint64_t at, uint64_t len)
{
    tl_put_fixed64(img + at + JNL_FRAME_LEN, len);
    tl_put_fixed64(img + at + JNL_FRAME_LEN_CHECK, jnl_length_check(len));
}

static void test_frame_layout(void **state)
{
    /* A written segment, decoded from FORMAT.md section 3 alone. */
    fixture *fx = *state;
    enum { N = 6 };
    recs want = {0};
    uint64_t ends[N];
    write_segment(fx, 1, N, 300, &want, ends);
    size_t size;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    uint64_t pos = JNL_HEADER_SIZE;
    for (int i = 0; i < N; i++) {
        uint64_t len = tl_get_fixed64(img + pos);
        assert_true(len == want.v[i].len);
        assert_true(tl_get_fixed64(img + pos + 8) == tl_xxh3(img + pos, 8));
        assert_true(tl_get_fixed64(img + pos + 16) == tl_xxh3(img + pos + 24, (size_t)len));
        assert_memory_equal(img + pos + 24, want.v[i].data, (size_t)len);
        pos += 24 + len;
        assert_true(pos == ends[i]);
    }
    assert_true(pos == size);
    /* Zeros never pass the length check (so a zero tail reaches rule 3). */
    assert_true(jnl_length_check(0) != 0);
    free(img);
    recs_free(&want);
}

static void test_cuts_and_zero_tails(void **state)
{
    fixture *fx = *state;
    enum { N = 20 };
    recs want = {0};
    uint64_t ends[N], good;
    write_segment(fx, 1, N, 300, &want, ends);
    size_t size, k;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    assert_true(size == ends[N - 1]);
    expect_img(fx, img, size, &want, N, 0, false, size);

    /* Every cut: the records wholly before it, torn unless it falls
     * between two records; inside the header: torn, nothing good. */
    for (size_t cut = 0; cut < size; cut++) {
        k = recs_before(ends, N, cut, &good);
        if (cut < JNL_HEADER_SIZE)
            good = 0;
        expect_img(fx, img, cut, &want, k, 0, cut != good || cut == 0, good);
    }
    /* A zero-filled tail (any length), and zeros followed by data: the
     * zeros fail the length check, and are then not a zero tail. */
    uint8_t *z = calloc(1, size + 8192);
    memcpy(z, img, size);
    for (size_t extra = 1; extra < 8192; extra = extra * 3 + 1)
        expect_img(fx, z, size + extra, &want, N, 0, true, size);
    z[size + 4000] = 1;
    expect_img(fx, z, size + 4001, &want, N, TALUS_ECORRUPT, false, size);
    assert_names(fx, size, "damaged length");
    /* Fewer bytes than a frame after the last record: no record fits
     * there, so torn whatever they are (even a failing length check). */
    for (size_t extra = 1; extra < JNL_FRAME_SIZE; extra++) {
        rnd_bytes(z + size, extra);
        z[size] |= 1;
        expect_img(fx, z, size + extra, &want, N, 0, true, size);
    }
    /* An all-zero file: torn at 0. */
    memset(z, 0, size);
    expect_img(fx, z, size, &want, 0, 0, true, 0);

    /* Power loss may keep the file's size but lose its data from any
     * sector boundary on: torn at the record the boundary falls in, even
     * when it cuts that record's length or length check. With data after
     * the zeros it is damage, unless that record is the last one and the
     * boundary is past its length check (rule 7: it ends at EOF). */
    for (uint64_t b = JNL_SECTOR; b < size; b += JNL_SECTOR) {
        memcpy(z, img, size);
        memset(z + b, 0, size - b);
        if (memcmp(z + b, img + b, size - b - 1) == 0)
            continue; /* the data there was zeros already */
        k = recs_before(ends, N, b, &good);
        expect_img(fx, z, size, &want, k, 0, true, good);
        z[size - 1] = 1;
        bool torn = k == N - 1 && b >= good + JNL_FRAME_LEN_PART;
        expect_img(fx, z, size, &want, k, torn ? 0 : TALUS_ECORRUPT, torn, good);
    }
    /* The same with the boundary at each offset d of a record's frame and
     * payload (the second record starts d bytes before offset 512): in the
     * length or length check (d < 16), rules 3-4; in the checksum or the
     * payload, rules 7-8. */
    uint8_t buf[600];
    for (uint64_t d = 0; d <= 40; d++) {
        assert_int_equal(tl_env_remove(tl_env_posix(), seg_path(fx, 1)), 0);
        recs w2 = {0};
        jnl_writer *w;
        assert_int_equal(jnl_writer_open(tl_env_posix(), fx->dir, 1, &w), 0);
        size_t lens[3] = {JNL_SECTOR - d - JNL_HEADER_SIZE - JNL_FRAME_SIZE, 100, 100};
        for (int i = 0; i < 3; i++) {
            rnd_bytes(buf, lens[i]);
            recs_push(&w2, buf, lens[i]);
            assert_int_equal(jnl_writer_add(w, tl_slice_make(buf, lens[i])), 0);
        }
        assert_int_equal(jnl_writer_write(w), 0);
        assert_int_equal(jnl_writer_close(w), 0);
        size_t n;
        uint8_t *s = slurp(seg_path(fx, 1), &n);
        uint64_t start = JNL_SECTOR - d;
        memset(s + JNL_SECTOR, 0, n - JNL_SECTOR);
        expect_img(fx, s, n, &w2, 1, 0, true, start);
        s[n - 1] = 1;
        expect_img(fx, s, n, &w2, 1, TALUS_ECORRUPT, false, start);
        if (d == 0) {
            /* Zeros from inside the length are not a sector's: damage. */
            set_len(s, start, 100);
            memset(s + start + 1, 0, n - start - 1);
            expect_img(fx, s, n, &w2, 1, TALUS_ECORRUPT, false, start);
            assert_names(fx, start, "damaged length");
        }
        free(s);
        recs_free(&w2);
    }
    free(z);
    free(img);
    recs_free(&want);
}

static void test_flips(void **state)
{
    fixture *fx = *state;
    enum { N = 12, TAIL = 700 };
    recs want = {0};
    uint64_t ends[N];
    write_segment(fx, 1, N, 300, &want, ends);
    size_t size;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    uint8_t *c = calloc(1, size + TAIL);
    memcpy(c, img, size);

    /* Any flipped bit in a middle record (length, length check, checksum
     * or payload): corruption naming the record's offset; the records
     * before it are returned and the good offset is the record's start. */
    for (size_t k = 1; k < N - 1; k += 3) {
        uint64_t start = ends[k - 1];
        for (uint64_t at = start; at < ends[k]; at++) {
            uint8_t bit = (uint8_t)(1u << rnd_n(8));
            c[at] ^= bit;
            expect_img(fx, c, size, &want, k, TALUS_ECORRUPT, false, start);
            assert_names(fx, start,
                         at < start + JNL_FRAME_LEN_PART ? "damaged length" : "checksum mismatch");
            c[at] ^= bit;
        }
        /* A length rewritten with a valid check, smaller or larger: the
         * payload checksum fails, and data follows. */
        set_len(c, start, want.v[k].len - 1);
        expect_img(fx, c, size, &want, k, TALUS_ECORRUPT, false, start);
        set_len(c, start, want.v[k].len + 1);
        expect_img(fx, c, size, &want, k, TALUS_ECORRUPT, false, start);
        set_len(c, start, 0); /* never written */
        expect_img(fx, c, size, &want, k, TALUS_ECORRUPT, false, start);
        assert_names(fx, start, "length 0");
        set_len(c, start, want.v[k].len);
    }

    /* The last record. A flipped length or length check is damage even
     * though the record ends at EOF, and even with zeros after it; a
     * flipped checksum or payload byte is the last write in flight: torn,
     * with or without zeros after it. */
    uint64_t last = ends[N - 2];
    for (uint64_t at = last; at < size; at++) {
        bool len_part = at < last + JNL_FRAME_LEN_PART;
        c[at] ^= (uint8_t)(1u << rnd_n(8));
        for (size_t tail = 0; tail <= TAIL; tail += TAIL) {
            expect_img(fx, c, size + tail, &want, N - 1, len_part ? TALUS_ECORRUPT : 0, !len_part,
                       last);
            if (len_part)
                assert_names(fx, last, "damaged length");
        }
        memcpy(c + at, img + at, 1);
    }
    /* A checked length running past EOF is a record cut short: torn. */
    set_len(c, last, want.v[N - 1].len + 1);
    expect_img(fx, c, size, &want, N - 1, 0, true, last);
    set_len(c, last, UINT64_MAX);
    expect_img(fx, c, size, &want, N - 1, 0, true, last);
    free(c);
    free(img);
    recs_free(&want);
}

static void test_torn_big_record(void **state)
{
    fixture *fx = *state;
    recs want = {0};
    uint64_t ends[3];
    jnl_writer *w;
    assert_int_equal(jnl_writer_open(tl_env_posix(), fx->dir, 1, &w), 0);
    size_t sizes[3] = {100, 2u << 20, 5u << 20};
    uint8_t *buf = malloc(sizes[2]);
    for (int i = 0; i < 3; i++) {
        rnd_bytes(buf, sizes[i]);
        recs_push(&want, buf, sizes[i]);
        assert_int_equal(jnl_writer_add(w, tl_slice_make(buf, sizes[i])), 0);
        assert_int_equal(jnl_writer_write(w), 0);
        ends[i] = jnl_writer_segment_bytes(w);
    }
    assert_int_equal(jnl_writer_close(w), 0);
    size_t size;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    expect_read(fx, &want, 3, 0, false, size);
    /* A read error is returned (not taken for damage) and stays. */
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    jnl_reader *r;
    tl_slice p;
    assert_int_equal(jnl_reader_open(tl_fault_env_env(fe), seg_path(fx, 1), &r), 0);
    tl_fault_env_arm(fe, TL_FAULT_READ, 1, TALUS_EIO, false);
    assert_int_equal(jnl_reader_next(r, &p), 1);
    assert_int_equal(jnl_reader_next(r, &p), TALUS_EIO);
    assert_int_equal(jnl_reader_next(r, &p), TALUS_EIO);
    assert_true(jnl_reader_good_offset(r) == ends[0]);
    jnl_reader_close(r);
    tl_fault_env_free(fe);

    uint64_t cuts[] = {ends[1] + 1, ends[1] + JNL_FRAME_SIZE, ends[1] + JNL_FRAME_SIZE + 1,
                       ends[1] + (3u << 20), size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        expect_img(fx, img, (size_t)cuts[i], &want, 2, 0, true, ends[1]);
    /* The big last record: a damaged length is corruption (it would have
     * claimed more than the file holds), damaged data is a torn tail. */
    img[ends[1] + 5] ^= 0x80;
    expect_img(fx, img, size, &want, 2, TALUS_ECORRUPT, false, ends[1]);
    img[ends[1] + 5] ^= 0x80;
    img[ends[1] + 4000000] ^= 4;
    expect_img(fx, img, size, &want, 2, 0, true, ends[1]);
    img[ends[1] + 4000000] ^= 4;
    /* Damage inside the big middle record. */
    img[ends[0] + 1000000] ^= 4;
    expect_img(fx, img, size, &want, 1, TALUS_ECORRUPT, false, ends[0]);
    free(img);
    free(buf);
    recs_free(&want);
}

/* ---- fuzz ---------------------------------------------------------------- */

static void test_reader_fuzz(void **state)
{
    fixture *fx = *state;
    tl_env *env = tl_env_posix();
    recs want = {0};
    write_segment(fx, 1, 8, 100, &want, NULL);
    size_t size;
    uint8_t *img = slurp(seg_path(fx, 1), &size);
    uint8_t *buf = malloc(size + 600);
    for (int i = 0; i < 3000; i++) {
        size_t n;
        bool damaged = rnd_n(2);
        if (damaged) {
            /* A valid segment, damaged and cut. */
            n = rnd_n(size + 1);
            memcpy(buf, img, n);
            for (size_t k = rnd_n(4); k > 0 && n; k--)
                buf[rnd_n(n)] ^= (uint8_t)rnd();
        } else {
            /* A valid header, then noise; sometimes frames with checked
             * lengths (in range or not), so the checksum path is fuzzed. */
            n = JNL_HEADER_SIZE + rnd_n(600);
            memcpy(buf, img, JNL_HEADER_SIZE);
            rnd_bytes(buf + JNL_HEADER_SIZE, n - JNL_HEADER_SIZE);
            for (size_t at = JNL_HEADER_SIZE; rnd_n(3) && at + JNL_FRAME_SIZE <= n;) {
                uint64_t len = rnd_n(8) ? rnd_n(n - at) : rnd();
                set_len(buf, at, len);
                if (len > n || !rnd_n(4))
                    break;
                if (at + JNL_FRAME_SIZE + len <= n && rnd_n(2))
                    tl_put_fixed64(buf + at + JNL_FRAME_SUM,
                                   tl_xxh3(buf + at + JNL_FRAME_SIZE, (size_t)len));
                at += JNL_FRAME_SIZE + len;
            }
        }
        put_file(seg_path(fx, 1), buf, n);
        recs got = {0};
        bool torn;
        uint64_t good;
        int rc = read_all(env, seg_path(fx, 1), &got, &torn, &good);
        assert_true(rc == 0 || rc == TALUS_ECORRUPT || rc == TALUS_EVERSION);
        assert_true(good <= n);
        if (rc == 0 && !torn)
            assert_true(good == n);
        /* What a damaged segment yields is a prefix of what was written. */
        if (damaged)
            assert_recs_prefix(&got, &want, got.n);
        for (size_t k = 0; k < got.n; k++) {
            /* Whatever a damaged segment yields must not crash the decoder. */
            uint64_t seq;
            uint32_t count;
            jnl_batch_iter it;
            jnl_entry e;
            if (jnl_batch_open(tl_buf_slice(&got.v[k]), &seq, &count, &it) == 0)
                while (jnl_batch_next(&it, &e) == 1)
                    ;
        }
        recs_free(&got);
    }
    recs_free(&want);
    free(buf);
    free(img);
}

int main(void)
{
    jt_seed("test_journal_torn");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_frame_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cuts_and_zero_tails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_big_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_fuzz, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
