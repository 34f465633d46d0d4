/*
 * concurrent_batches_test.c - atomic batches across two trees under
 * concurrent writers and snapshot readers, through talus.h (and
 * db_crash_close).
 *
 *   concurrent_batches_test [--seed N] [--ops N] [--dir D]
 *
 * Four writers commit batches with durability `sync`. Batch number c of
 * writer w writes one value V(w, c) to the same K keys, key i in tree i % 2,
 * and writes its own counter key ctr/w = c. So the K keys always show the
 * newest batch, and every batch is identifiable by V. Three readers loop:
 * note the counters the writers have acknowledged, take a snapshot, and read
 * all K keys and the counters at it. They check that
 *   - all K keys hold the same V(w, c) with intact bytes (no torn batch);
 *   - ctr/w == c at the same snapshot (the batch is whole across trees);
 *   - every counter is >= what was acknowledged before the snapshot was
 *     taken (no acknowledged batch invisible), <= what was started, and
 *     never below what this reader saw before (no going back in time);
 *   - an iterator over one tree at the snapshot, and talus_get_at at its
 *     seqno, agree with the point reads.
 * At the end, every writer's counter equals its number of acknowledged
 * batches (no lost update) and the K keys hold the last batch of the writer
 * whose last batch got the highest seqno; the same after a simulated crash
 * (every batch was `sync`) and after a clean reopen. Each writer commits
 * --ops batches (default 1000, scaled by TALUS_TEST_SCALE).
 */
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db/db_internal.h"
#include "talus.h"

#ifndef WRITERS
#define WRITERS 4
#endif
#ifndef READERS
#define READERS 3
#endif
#define K 16
#define MAX_VAL 256
#define SETUP_WRITER WRITERS /* writer id of the initial batch */

static talus_db *db;
static talus_tree *trees[2];
static uint64_t seed;
static unsigned long batches_per_writer = 1000;
static _Atomic uint64_t started[WRITERS], acked[WRITERS];
static uint64_t last_seq[WRITERS];
static atomic_int writers_running, failed;
static atomic_ulong reads_done, scans_done;

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "concurrent_batches_test: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (seed=%" PRIu64 ")\n", seed);
    va_end(ap);
    atomic_store(&failed, 1);
}

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t data_key(unsigned i, char *buf)
{
    return (size_t)sprintf(buf, "k/%02u", i);
}

static size_t ctr_key(unsigned w, char *buf)
{
    return (size_t)sprintf(buf, "ctr/%u", w);
}

/* V(w, c) as stored under key i: w, c (8 bytes LE), i, then filler that
 * depends on all three, of a length that depends on (w, c). */
static size_t make_value(unsigned w, uint64_t c, unsigned i, uint8_t *buf)
{
    uint64_t s = mix(seed ^ ((uint64_t)w << 56) ^ c);
    size_t n = 10 + 16 + (size_t)(s % 200);
    buf[0] = (uint8_t)w;
    for (int b = 0; b < 8; b++)
        buf[1 + b] = (uint8_t)(c >> (8 * b));
    buf[9] = (uint8_t)i;
    uint64_t f = s ^ i;
    for (size_t j = 10; j < n; j++)
        buf[j] = (uint8_t)(f = mix(f));
    return n;
}

/* Decode the value of key i; -1 if its bytes are not a V(w, c) of key i. */
static int parse_value(unsigned i, const void *v, size_t n, unsigned *w, uint64_t *c)
{
    const uint8_t *b = v;
    uint8_t exp[MAX_VAL];
    if (n < 10 || n > MAX_VAL)
        return -1;
    *w = b[0];
    *c = 0;
    for (int j = 0; j < 8; j++)
        *c |= (uint64_t)b[1 + j] << (8 * j);
    if (*w > SETUP_WRITER)
        return -1;
    size_t en = make_value(*w, *c, i, exp);
    return en == n && memcmp(exp, b, n) == 0 ? 0 : -1;
}

static void *writer(void *arg)
{
    unsigned w = (unsigned)(uintptr_t)arg;
    talus_batch *b = NULL;
    if (talus_batch_new(&b) != 0) {
        failf("writer %u: talus_batch_new: %s", w, talus_errmsg());
        goto out;
    }
    uint64_t prev = 0;
    for (uint64_t c = 1; c <= batches_per_writer && !atomic_load(&failed); c++) {
        char key[32];
        uint8_t val[MAX_VAL];
        talus_batch_clear(b);
        for (unsigned i = 0; i < K; i++) {
            size_t kn = data_key(i, key), vn = make_value(w, c, i, val);
            if (talus_batch_put(b, trees[i % 2], key, kn, val, vn) != 0)
                failf("writer %u: talus_batch_put: %s", w, talus_errmsg());
        }
        for (int j = 0; j < 8; j++)
            val[j] = (uint8_t)(c >> (8 * j));
        if (talus_batch_put(b, trees[0], key, ctr_key(w, key), val, 8) != 0)
            failf("writer %u: talus_batch_put: %s", w, talus_errmsg());
        atomic_store(&started[w], c);
        uint64_t seq = 0;
        int rc = talus_batch_commit(db, b, TALUS_DURABILITY_SYNC, &seq);
        if (rc != 0) {
            failf("writer %u: batch %" PRIu64 ": commit returned %d (%s): %s", w, c, rc,
                  talus_strerror(rc), talus_errmsg());
            break;
        }
        if (seq <= prev)
            failf("writer %u: batch %" PRIu64 " got seqno %" PRIu64
                  ", not above its previous %" PRIu64,
                  w, c, seq, prev);
        prev = seq;
        last_seq[w] = seq;
        atomic_store(&acked[w], c);
    }
out:
    talus_batch_free(b);
    atomic_fetch_sub(&writers_running, 1);
    return NULL;
}

/* The counter of writer w at snapshot s (0 if absent), or UINT64_MAX. */
static uint64_t read_ctr(const talus_snapshot *s, unsigned w)
{
    char key[32];
    void *v = NULL;
    size_t vn = 0;
    int rc = talus_get(trees[0], s, key, ctr_key(w, key), &v, &vn);
    uint64_t c = UINT64_MAX;
    if (rc == TALUS_ENOTFOUND) {
        c = 0;
    } else if (rc != 0) {
        failf("get %s: rc %d (%s): %s", key, rc, talus_strerror(rc), talus_errmsg());
    } else if (vn != 8) {
        failf("get %s: %zu bytes, expected 8", key, vn);
    } else {
        c = 0;
        for (int j = 0; j < 8; j++)
            c |= (uint64_t)((uint8_t *)v)[j] << (8 * j);
    }
    talus_free(v);
    return c;
}

/* Read every data key at s: all must hold one V(w, c). 0 or -1. */
static int read_all(const talus_snapshot *s, unsigned *w, uint64_t *c)
{
    for (unsigned i = 0; i < K; i++) {
        char key[32];
        size_t kn = data_key(i, key);
        void *v = NULL;
        size_t vn = 0;
        unsigned kw;
        uint64_t kc;
        int rc = talus_get(trees[i % 2], s, key, kn, &v, &vn);
        int bad = rc != 0 || parse_value(i, v, vn, &kw, &kc) != 0;
        talus_free(v);
        if (bad) {
            failf("get %s at seqno %" PRIu64 ": rc %d (%s), %zu bytes that are %s", key,
                  s ? talus_snapshot_seqno(s) : talus_seqno(db), rc, talus_strerror(rc), vn,
                  rc ? talus_errmsg() : "not a value this test writes");
            return -1;
        }
        if (i == 0) {
            *w = kw;
            *c = kc;
        } else if (kw != *w || kc != *c) {
            failf("torn batch at seqno %" PRIu64 ": key k/00 holds batch %" PRIu64
                  " of writer %u, key %s batch %" PRIu64 " of writer %u",
                  s ? talus_snapshot_seqno(s) : talus_seqno(db), *c, *w, key, kc, kw);
            return -1;
        }
    }
    return 0;
}

/* Iterate tree t at s: exactly its data keys (and, in tree 0, the counter
 * keys present), each holding V(w, c). */
static void scan_tree(const talus_snapshot *s, int t, unsigned w, uint64_t c, const uint64_t *ctr)
{
    talus_iter_options io;
    talus_iter_options_init(&io);
    io.snapshot = s;
    talus_iter *it = NULL;
    if (talus_iter_new(trees[t], &io, &it) != 0) {
        failf("talus_iter_new: %s", talus_errmsg());
        return;
    }
    unsigned ndata = 0, nctr = 0, expect_ctr = 0;
    for (unsigned x = 0; x < WRITERS; x++)
        expect_ctr += t == 0 && ctr[x] > 0;
    for (talus_iter_seek_first(it); talus_iter_valid(it) && !atomic_load(&failed);
         talus_iter_next(it)) {
        size_t kn, vn;
        const char *k = talus_iter_key(it, &kn);
        const void *v = talus_iter_value(it, &vn);
        unsigned i, kw;
        uint64_t kc;
        if (kn == 4 && memcmp(k, "k/", 2) == 0) {
            i = (unsigned)((k[2] - '0') * 10 + (k[3] - '0'));
            if (i >= K || (int)(i % 2) != t || parse_value(i, v, vn, &kw, &kc) != 0 || kw != w ||
                kc != c)
                failf("scan of tree %d at seqno %" PRIu64 ": key %.*s is not batch %" PRIu64
                      " of writer %u",
                      t, talus_snapshot_seqno(s), (int)kn, k, c, w);
            ndata++;
        } else if (t == 0 && kn > 4 && memcmp(k, "ctr/", 4) == 0) {
            nctr++;
        } else {
            failf("scan of tree %d: unexpected key %.*s", t, (int)kn, k);
        }
    }
    if (talus_iter_status(it) != 0)
        failf("scan of tree %d: status %d: %s", t, talus_iter_status(it), talus_errmsg());
    else if (!atomic_load(&failed) && (ndata != K / 2 || nctr != expect_ctr))
        failf("scan of tree %d at seqno %" PRIu64 ": %u data keys and %u counters, expected %u "
              "and %u",
              t, talus_snapshot_seqno(s), ndata, nctr, K / 2, expect_ctr);
    talus_iter_free(it);
}

static void *reader(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t rs = mix(seed ^ (0x2000u + id));
    uint64_t seen[WRITERS] = {0}, prev_seq = 0;
    while (atomic_load(&writers_running) > 0 && !atomic_load(&failed)) {
        uint64_t lo[WRITERS], hi[WRITERS], ctr[WRITERS];
        for (unsigned w = 0; w < WRITERS; w++)
            lo[w] = atomic_load(&acked[w]);
        talus_snapshot *s = talus_snapshot_take(db);
        if (s == NULL) {
            failf("talus_snapshot_take: %s", talus_errmsg());
            break;
        }
        uint64_t seq = talus_snapshot_seqno(s);
        if (seq < prev_seq)
            failf("reader %u: snapshot seqno went back from %" PRIu64 " to %" PRIu64, id, prev_seq,
                  seq);
        prev_seq = seq;
        unsigned vw;
        uint64_t vc;
        if (read_all(s, &vw, &vc) == 0) {
            for (unsigned w = 0; w < WRITERS; w++)
                ctr[w] = read_ctr(s, w);
            for (unsigned w = 0; w < WRITERS; w++)
                hi[w] = atomic_load(&started[w]);
            if (vw != SETUP_WRITER && ctr[vw] != vc)
                failf("reader %u at seqno %" PRIu64 ": the data keys hold batch %" PRIu64
                      " of writer %u, but ctr/%u is %" PRIu64 " (batch split across trees/keys)",
                      id, seq, vc, vw, vw, ctr[vw]);
            for (unsigned w = 0; w < WRITERS; w++) {
                if (ctr[w] == UINT64_MAX)
                    break;
                if (ctr[w] < lo[w])
                    failf("reader %u at seqno %" PRIu64 ": ctr/%u is %" PRIu64
                          ", but batch %" PRIu64 " was acknowledged before the snapshot was taken",
                          id, seq, w, ctr[w], lo[w]);
                if (ctr[w] > hi[w])
                    failf("reader %u at seqno %" PRIu64 ": ctr/%u is %" PRIu64 ", but only %" PRIu64
                          " batches were started",
                          id, seq, w, ctr[w], hi[w]);
                if (ctr[w] < seen[w])
                    failf("reader %u at seqno %" PRIu64 ": ctr/%u went back from %" PRIu64
                          " to %" PRIu64,
                          id, seq, w, seen[w], ctr[w]);
                seen[w] = ctr[w];
            }
            uint64_t p = (rs = mix(rs)) % 100;
            if (p < 20) {
                scan_tree(s, (int)((rs >> 32) % 2), vw, vc, ctr);
                atomic_fetch_add(&scans_done, 1);
            } else if (p < 40) {
                unsigned i = (unsigned)(rs >> 40) % K, kw;
                uint64_t kc;
                char key[32];
                void *v = NULL;
                size_t vn = 0;
                int rc = talus_get_at(trees[i % 2], seq, key, data_key(i, key), &v, &vn);
                if (rc != 0 || parse_value(i, v, vn, &kw, &kc) != 0 || kw != vw || kc != vc)
                    failf("talus_get_at(%" PRIu64 ") of %s: rc %d, not batch %" PRIu64
                          " of writer %u like talus_get at that snapshot",
                          seq, key, rc, vc, vw);
                talus_free(v);
            }
        }
        talus_snapshot_release(db, s);
        atomic_fetch_add(&reads_done, 1);
    }
    return NULL;
}

/* After the writers: every counter is the number of batches acknowledged,
 * and the data keys hold the last batch of the writer with the highest
 * last seqno. */
static int verify_final(const char *when)
{
    unsigned newest = 0;
    for (unsigned w = 1; w < WRITERS; w++)
        if (last_seq[w] > last_seq[newest])
            newest = w;
    for (unsigned w = 0; w < WRITERS; w++) {
        uint64_t c = read_ctr(NULL, w);
        if (c != atomic_load(&acked[w])) {
            failf("%s: ctr/%u is %" PRIu64 ", expected %" PRIu64 " (acknowledged batches)", when, w,
                  c, atomic_load(&acked[w]));
            return -1;
        }
    }
    unsigned vw;
    uint64_t vc;
    if (read_all(NULL, &vw, &vc) != 0)
        return -1;
    if (vw != newest || vc != atomic_load(&acked[newest])) {
        failf("%s: the data keys hold batch %" PRIu64 " of writer %u, expected batch %" PRIu64
              " of writer %u (seqno %" PRIu64 ", the newest)",
              when, vc, vw, atomic_load(&acked[newest]), newest, last_seq[newest]);
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *f)
{
    return remove(path);
}

static int open_db(const char *dir)
{
    talus_options o;
    talus_options_init(&o);
    o.tree.write_buffer_size = 64 * 1024;
    o.tree.target_file_size = 64 * 1024;
    o.tree.max_bytes_for_level_base = 256 * 1024;
    o.tree.level_size_multiplier = 4;
    o.journal_segment_size = 256 * 1024;
    o.max_journal_size = 1024 * 1024;
    int rc = talus_open(dir, &o, &db);
    if (rc == 0)
        rc = talus_tree_open(db, "odd", 1, NULL, &trees[1]);
    if (rc != 0) {
        failf("talus_open/tree_open %s: %d (%s): %s", dir, rc, talus_strerror(rc), talus_errmsg());
        return -1;
    }
    trees[0] = talus_default_tree(db);
    return 0;
}

static unsigned long scaled(unsigned long n)
{
    const char *s = getenv("TALUS_TEST_SCALE");
    double f = s && *s ? strtod(s, NULL) : 1.0;
    if (!(f > 0))
        f = 1.0;
    unsigned long v = (unsigned long)((double)n * f + 0.5);
    return v < 10 ? 10 : v;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"seed", required_argument, NULL, 's'},
                                       {"ops", required_argument, NULL, 'n'},
                                       {"dir", required_argument, NULL, 'd'},
                                       {NULL, 0, NULL, 0}};
    const char *parent = getenv("TMPDIR");
    int opt, have_seed = 0, have_ops = 0;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (opt == 's') {
            seed = strtoull(optarg, NULL, 0);
            have_seed = 1;
        } else if (opt == 'n') {
            batches_per_writer = strtoul(optarg, NULL, 0);
            have_ops = 1;
        } else if (opt == 'd') {
            parent = optarg;
        } else {
            fprintf(stderr, "usage: concurrent_batches_test [--seed N] [--ops N] [--dir D]\n");
            return 2;
        }
    }
    if (!have_seed)
        seed = ((uint64_t)time(NULL) ^ (uint64_t)getpid() << 16) % 1000000000u;
    if (!have_ops)
        batches_per_writer = scaled(batches_per_writer);
    printf("concurrent_batches_test: seed=%" PRIu64 ", %d writers x %lu batches\n", seed, WRITERS,
           batches_per_writer);
    fflush(stdout);
    if (parent == NULL || parent[0] == '\0')
        parent = "/tmp";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/talus-cbatch-XXXXXX", parent);
    if (mkdtemp(dir) == NULL) {
        perror("concurrent_batches_test: mkdtemp");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (open_db(dir) != 0)
        goto done;
    /* Every data key exists from the start, as batch 0 of a setup writer. */
    talus_batch *b = NULL;
    int rc = talus_batch_new(&b);
    for (unsigned i = 0; rc == 0 && i < K; i++) {
        char key[32];
        uint8_t val[MAX_VAL];
        size_t kn = data_key(i, key), vn = make_value(SETUP_WRITER, 0, i, val);
        rc = talus_batch_put(b, trees[i % 2], key, kn, val, vn);
    }
    if (rc == 0)
        rc = talus_batch_commit(db, b, TALUS_DURABILITY_SYNC, NULL);
    talus_batch_free(b);
    if (rc != 0) {
        failf("initial batch: %d: %s", rc, talus_errmsg());
        goto done;
    }
    pthread_t th[WRITERS + READERS];
    atomic_store(&writers_running, WRITERS);
    for (unsigned i = 0; i < WRITERS; i++)
        pthread_create(&th[i], NULL, writer, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < READERS; i++)
        pthread_create(&th[WRITERS + i], NULL, reader, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < WRITERS + READERS; i++)
        pthread_join(th[i], NULL);
    talus_tree_stats st;
    memset(&st, 0, sizeof st);
    if (talus_tree_stats_get(trees[0], &st) == 0)
        printf("concurrent_batches_test: %lu snapshot reads (%lu with a scan); tree 0: %" PRIu64
               " flushes, %" PRIu64 " compactions\n",
               atomic_load(&reads_done), atomic_load(&scans_done), st.flushes, st.compactions);
    if (atomic_load(&failed) || verify_final("after the run") != 0)
        goto done;
    /* Every batch was `sync`: a crash must keep all of them. */
    db_crash_close(db);
    db = NULL;
    if (open_db(dir) != 0 || verify_final("after a crash") != 0)
        goto done;
    rc = talus_close(db);
    db = NULL;
    if (rc != 0) {
        failf("talus_close: %s", talus_errmsg());
        goto done;
    }
    if (open_db(dir) == 0)
        verify_final("after a clean reopen");
done:
    if (db != NULL && talus_close(db) != 0)
        failf("talus_close: %s", talus_errmsg());
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (atomic_load(&failed)) {
        fprintf(stderr, "concurrent_batches_test: database left in %s\n", dir);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("concurrent_batches_test: ok in %.1f s\n",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    printf("1 passed, 0 failed\n");
    return 0;
}
