/*
 * concurrent_test.c - writers and readers on one database at once, through
 * talus.h only.
 *
 *   concurrent_test [--seed N] [--ops N] [--dir D]
 *
 * Four writers own disjoint key ranges ("w<id>/<k>") and write key ->
 * counter, the counter of each key only growing (plain puts and small
 * batches). For every key the test keeps two atomics: `started` (raised
 * before the write is issued) and `done` (raised after it returned). Two
 * readers check, for random keys, that
 *     done-before-the-read <= value read <= started-after-the-read
 * (a write that returned is visible to every later read, nothing is read
 * before it was written, values never go backwards), that the value's
 * filler bytes are intact, that an iterator over a writer's range lists
 * every key exactly once in order with values at least what was done before
 * it was created, and that two reads at one snapshot agree. A tiny write
 * buffer makes flushes and compactions run under all of this. At the end
 * every key must hold its final counter, before and after a reopen.
 * Each writer does --ops operations (default 20000, scaled by the
 * environment variable TALUS_TEST_SCALE).
 */
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "talus.h"

#define WRITERS 4
#define READERS 2
#define KEYS_PER_WRITER 250
#define NKEYS (WRITERS * KEYS_PER_WRITER)
#define MAX_VAL (8 + 256)

static talus_db *db;
static talus_tree *tree;
static uint64_t seed;
static unsigned long ops_per_writer = 20000;
static _Atomic uint64_t started[NKEYS], done[NKEYS];
static atomic_int writers_running, failed;

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "concurrent_test: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (seed=%" PRIu64 ")\n", seed);
    va_end(ap);
    atomic_store(&failed, 1);
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t make_key(unsigned k, char *buf)
{
    return (size_t)sprintf(buf, "w%u/%04u", k / KEYS_PER_WRITER, k % KEYS_PER_WRITER);
}

/* Value: counter (8 bytes LE) then filler derived from (key, counter), of a
 * length that also depends on them, so a torn or mixed value shows. */
static size_t make_value(unsigned k, uint64_t c, uint8_t *buf)
{
    uint64_t s = (uint64_t)k << 40 ^ c;
    size_t n = 8 + (size_t)(rnd(&s) % 256);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(c >> (8 * i));
    for (size_t i = 8; i < n; i++)
        buf[i] = (uint8_t)rnd(&s);
    return n;
}

/* Decode and verify a value; returns its counter or UINT64_MAX if bad. */
static uint64_t check_value(unsigned k, const void *v, size_t n)
{
    uint8_t exp[MAX_VAL];
    if (n < 8)
        return UINT64_MAX;
    uint64_t c = 0;
    for (int i = 0; i < 8; i++)
        c |= (uint64_t)((const uint8_t *)v)[i] << (8 * i);
    size_t en = make_value(k, c, exp);
    return en == n && memcmp(exp, v, n) == 0 ? c : UINT64_MAX;
}

static void *writer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t s = seed ^ (0x1000u + id);
    talus_batch *b = NULL;
    if (talus_batch_new(&b) != 0) {
        failf("writer %u: talus_batch_new: %s", id, talus_errmsg());
        goto out;
    }
    for (unsigned long i = 0; i < ops_per_writer && !atomic_load(&failed); i++) {
        char key[32];
        uint8_t val[MAX_VAL];
        if (rnd(&s) % 10 == 0) {
            /* a batch of up to 4 distinct keys of this writer's range */
            unsigned base = id * KEYS_PER_WRITER + (unsigned)(rnd(&s) % (KEYS_PER_WRITER - 4));
            unsigned n = 1 + (unsigned)(rnd(&s) % 4);
            talus_batch_clear(b);
            for (unsigned j = 0; j < n; j++) {
                unsigned k = base + j;
                uint64_t c = atomic_load(&started[k]) + 1;
                atomic_store(&started[k], c);
                size_t kn = make_key(k, key), vn = make_value(k, c, val);
                if (talus_batch_put(b, tree, key, kn, val, vn) != 0)
                    failf("writer %u: batch_put: %s", id, talus_errmsg());
            }
            int rc = talus_batch_commit(db, b, -1, NULL);
            if (rc != 0)
                failf("writer %u: batch_commit: %d %s", id, rc, talus_errmsg());
            for (unsigned j = 0; j < n; j++)
                atomic_store(&done[base + j], atomic_load(&started[base + j]));
        } else {
            unsigned k = id * KEYS_PER_WRITER + (unsigned)(rnd(&s) % KEYS_PER_WRITER);
            uint64_t c = atomic_load(&started[k]) + 1;
            atomic_store(&started[k], c);
            size_t kn = make_key(k, key), vn = make_value(k, c, val);
            int rc = talus_put(tree, key, kn, val, vn);
            if (rc != 0)
                failf("writer %u: put: %d %s", id, rc, talus_errmsg());
            atomic_store(&done[k], c);
        }
    }
out:
    talus_batch_free(b);
    atomic_fetch_sub(&writers_running, 1);
    return NULL;
}

static void read_one(unsigned k, uint64_t *last_seen)
{
    char key[32];
    size_t kn = make_key(k, key);
    uint64_t lo = atomic_load(&done[k]);
    void *v = NULL;
    size_t vn = 0;
    int rc = talus_get(tree, NULL, key, kn, &v, &vn);
    uint64_t hi = atomic_load(&started[k]);
    if (rc != 0) {
        failf("get %s: rc %d (%s): %s", key, rc, talus_strerror(rc), talus_errmsg());
        return;
    }
    uint64_t c = check_value(k, v, vn);
    talus_free(v);
    if (c == UINT64_MAX)
        failf("get %s: value bytes are wrong (%zu bytes)", key, vn);
    else if (c < lo || c > hi)
        failf("get %s: counter %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]", key, c, lo, hi);
    else if (c < last_seen[k])
        failf("get %s: counter went back from %" PRIu64 " to %" PRIu64, key, last_seen[k], c);
    else
        last_seen[k] = c;
}

static void scan_range(unsigned w)
{
    static _Thread_local uint64_t floor_[KEYS_PER_WRITER];
    unsigned base = w * KEYS_PER_WRITER;
    for (unsigned i = 0; i < KEYS_PER_WRITER; i++)
        floor_[i] = atomic_load(&done[base + i]);
    char pre[8];
    size_t pn = (size_t)sprintf(pre, "w%u/", w);
    talus_iter_options io;
    talus_iter_options_init(&io);
    io.prefix = pre;
    io.prefix_len = pn;
    talus_iter *it = NULL;
    if (talus_iter_new(tree, &io, &it) != 0) {
        failf("iter_new: %s", talus_errmsg());
        return;
    }
    int reverse = (int)(floor_[0] & 1);
    unsigned i = 0;
    if (reverse)
        talus_iter_seek_last(it);
    else
        talus_iter_seek_first(it);
    for (; talus_iter_valid(it); i++) {
        unsigned k = base + (reverse ? KEYS_PER_WRITER - 1 - i : i);
        char key[32];
        size_t kn = make_key(k, key), gkn, gvn;
        const void *gk = talus_iter_key(it, &gkn), *gv = talus_iter_value(it, &gvn);
        if (i >= KEYS_PER_WRITER || gkn != kn || memcmp(gk, key, kn) != 0) {
            failf("scan of w%u: position %u: expected key %s", w, i,
                  i < KEYS_PER_WRITER ? key : "(end)");
            break;
        }
        uint64_t c = check_value(k, gv, gvn);
        if (c == UINT64_MAX || c < floor_[k - base])
            failf("scan of w%u: key %s: counter %" PRIu64 " below %" PRIu64 " or bad bytes", w, key,
                  c, floor_[k - base]);
        if (reverse)
            talus_iter_prev(it);
        else
            talus_iter_next(it);
    }
    if (talus_iter_status(it) != 0)
        failf("scan of w%u: status %d: %s", w, talus_iter_status(it), talus_errmsg());
    else if (i != KEYS_PER_WRITER && !atomic_load(&failed))
        failf("scan of w%u: %u keys, expected %u", w, i, KEYS_PER_WRITER);
    talus_iter_free(it);
}

static void snapshot_pair(unsigned k)
{
    char key[32];
    size_t kn = make_key(k, key);
    talus_snapshot *s = talus_snapshot_take(db);
    if (s == NULL) {
        failf("snapshot_take: %s", talus_errmsg());
        return;
    }
    void *a = NULL, *b = NULL;
    size_t an = 0, bn = 0;
    int ra = talus_get(tree, s, key, kn, &a, &an);
    sched_yield();
    int rb = talus_get(tree, s, key, kn, &b, &bn);
    if (ra != 0 || rb != 0)
        failf("get at snapshot %s: rc %d/%d: %s", key, ra, rb, talus_errmsg());
    else if (an != bn || memcmp(a, b, an) != 0)
        failf("two reads of %s at one snapshot differ", key);
    talus_free(a);
    talus_free(b);
    talus_snapshot_release(db, s);
}

static void *reader(void *arg)
{
    uint64_t s = seed ^ (0x2000u + (uintptr_t)arg);
    static _Thread_local uint64_t last_seen[NKEYS];
    memset(last_seen, 0, sizeof last_seen);
    unsigned long n = 0;
    while (atomic_load(&writers_running) > 0 && !atomic_load(&failed)) {
        unsigned p = (unsigned)(rnd(&s) % 100);
        unsigned k = (unsigned)(rnd(&s) % NKEYS);
        if (p < 90)
            read_one(k, last_seen);
        else if (p < 93)
            scan_range(k / KEYS_PER_WRITER);
        else
            snapshot_pair(k);
        n++;
    }
    printf("concurrent_test: reader %u did %lu reads\n", (unsigned)(uintptr_t)arg, n);
    return NULL;
}

static int verify_final(const char *when)
{
    for (unsigned k = 0; k < NKEYS; k++) {
        char key[32];
        size_t kn = make_key(k, key);
        void *v = NULL;
        size_t vn = 0;
        int rc = talus_get(tree, NULL, key, kn, &v, &vn);
        uint64_t c = rc == 0 ? check_value(k, v, vn) : UINT64_MAX;
        talus_free(v);
        if (c != atomic_load(&done[k])) {
            failf("%s: key %s: rc %d, counter %" PRIu64 ", expected %" PRIu64, when, key, rc, c,
                  atomic_load(&done[k]));
            return -1;
        }
    }
    return 0;
}

static unsigned long scaled(unsigned long n)
{
    const char *s = getenv("TALUS_TEST_SCALE");
    double f = s && *s ? strtod(s, NULL) : 1.0;
    if (!(f > 0))
        f = 1.0;
    unsigned long v = (unsigned long)((double)n * f + 0.5);
    return v < 100 ? 100 : v;
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
    int rc = talus_open(dir, &o, &db);
    if (rc != 0) {
        failf("talus_open %s: %d (%s): %s", dir, rc, talus_strerror(rc), talus_errmsg());
        return -1;
    }
    tree = talus_default_tree(db);
    return 0;
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
            ops_per_writer = strtoul(optarg, NULL, 0);
            have_ops = 1;
        } else if (opt == 'd') {
            parent = optarg;
        } else {
            fprintf(stderr, "usage: concurrent_test [--seed N] [--ops N] [--dir D]\n");
            return 2;
        }
    }
    if (!have_seed)
        seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    if (!have_ops)
        ops_per_writer = scaled(ops_per_writer);
    printf("concurrent_test: seed=%" PRIu64 "\n", seed);
    fflush(stdout);
    if (parent == NULL || parent[0] == '\0')
        parent = "/tmp";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/talus-conc-XXXXXX", parent);
    if (mkdtemp(dir) == NULL) {
        perror("concurrent_test: mkdtemp");
        return 2;
    }
    if (open_db(dir) != 0)
        goto done;
    /* Every key exists from the start (counter 0), so scans know what to
     * expect. */
    for (unsigned k = 0; k < NKEYS && !atomic_load(&failed); k++) {
        char key[32];
        uint8_t val[MAX_VAL];
        size_t kn = make_key(k, key), vn = make_value(k, 0, val);
        if (talus_put(tree, key, kn, val, vn) != 0)
            failf("initial put: %s", talus_errmsg());
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
    if (talus_tree_stats_get(tree, &st) == 0)
        printf("concurrent_test: engine ran %" PRIu64 " flushes and %" PRIu64
               " compactions meanwhile\n",
               st.flushes, st.compactions);
    if (!atomic_load(&failed) && verify_final("after the run") == 0) {
        int rc = talus_close(db);
        db = NULL;
        if (rc != 0)
            failf("talus_close: %s", talus_errmsg());
        else if (open_db(dir) == 0)
            verify_final("after reopen");
    }
    if (db != NULL && talus_close(db) != 0)
        failf("talus_close: %s", talus_errmsg());
done:
    if (atomic_load(&failed)) {
        fprintf(stderr, "concurrent_test: database left in %s\n", dir);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("concurrent_test: %d writers x %lu ops, final state exact\n", WRITERS, ops_per_writer);
    printf("1 passed, 0 failed\n");
    return 0;
}
