/*
 * corrupt_test.c - damage every file of a real database and check that the
 * engine notices instead of crashing, hanging or answering wrongly.
 *
 *   corrupt_test [--seed N] [--dir D] [--keys N] [--timeout S] [--keep]
 *
 * A database is written (several levels, overwrites, tombstones, a last
 * batch of writes that only reaches disk on close) and closed cleanly. Then
 * for every file in its directory, recursively (tables, manifest, CURRENT,
 * journal, anything else the engine wrote), copies of the database are made
 * with one byte flipped (at the start, the middle, the end, and in the
 * header and footer areas), with the file truncated, or with it removed.
 * Each copy is opened and read completely (a get of every key, a few absent
 * keys, full scans forward and backward) in a child process with a timeout.
 *
 * Every call must give either the right answer or a clear error: a negative
 * documented code with a non-empty talus_errmsg(). A wrong value, a missing
 * or extra key, a crash or a hang fails the test. A case where the damage
 * changed nothing (bytes no read depends on) is counted as "intact".
 *
 * One exception: when a file was only truncated (what a crash does to a
 * file being appended to), answers that are all values the keys held
 * earlier (the database went back to an earlier state, e.g. a manifest
 * whose last record was cut off) are counted as "rolled back", not failed.
 * The same answers after a flipped byte or a removed file fail: that damage
 * was checksummed and went unnoticed.
 *
 * Not covered: damage to a journal holding data that is only in the
 * journal (after a crash, not a clean close), where losing the damaged tail
 * is the documented recovery behaviour; the crash tests own that.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "talus.h"
#include "corrupt_fs.h"

static unsigned nkeys = 1500;
static uint64_t seed = 1;
static int timeout_s = 20;

/* ---- the data set (a pure function of seed, so parent and children agree) */

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t key_of(unsigned i, char *buf)
{
    return (size_t)sprintf(buf, "key/%06u", i);
}

static size_t value_of(unsigned i, unsigned gen, uint8_t *buf)
{
    uint64_t s = mix(seed ^ ((uint64_t)i << 8 | gen));
    size_t n = 16 + (size_t)(s % 300);
    for (size_t j = 0; j < n; j++) {
        if (j % 8 == 0)
            s = mix(s);
        buf[j] = (uint8_t)(s >> (8 * (j % 8)));
    }
    return n;
}

/* Phases: all keys (gen 0), then every 3rd overwritten (gen 1) and every
 * 7th deleted, then every 5th rewritten (gen 2) just before close. */
static int expected(unsigned i, uint8_t *buf, size_t *n)
{
    if (i % 5 == 0)
        *n = value_of(i, 2, buf);
    else if (i % 7 == 0)
        return 0;
    else if (i % 3 == 0)
        *n = value_of(i, 1, buf);
    else
        *n = value_of(i, 0, buf);
    return 1;
}

static int fail_rc(const char *what, int rc)
{
    printf("corrupt_test: %s: %d (%s): %s\n", what, rc, talus_strerror(rc), talus_errmsg());
    return 1;
}

/* Child: write the database. The layout is deterministic (flushes happen at
 * fixed points of the write sequence, and the L0 trigger is too high for a
 * compaction to start on its own), so every run damages the same files in
 * the same places: the first phase's tables compacted into one level, then
 * L0 tables, the last one written by close. */
static int build(const char *dir)
{
    talus_options o;
    talus_options_init(&o);
    o.tree.write_buffer_size = 64 * 1024;
    o.tree.l0_compaction_trigger = 16;
    o.tree.target_file_size = 32 * 1024;
    o.tree.block_size = 1024;
    talus_db *db;
    int rc = talus_open(dir, &o, &db);
    if (rc != 0)
        return fail_rc("open", rc);
    talus_tree *t = talus_default_tree(db);
    char k[32];
    uint8_t v[400];
    for (unsigned i = 0; i < nkeys && rc == 0; i++)
        rc = talus_put(t, k, key_of(i, k), v, value_of(i, 0, v));
    if (rc == 0)
        rc = talus_compact_range(t, NULL, 0, NULL, 0);
    for (unsigned i = 0; i < nkeys && rc == 0; i++) {
        if (i % 7 == 0)
            rc = talus_delete(t, k, key_of(i, k));
        else if (i % 3 == 0)
            rc = talus_put(t, k, key_of(i, k), v, value_of(i, 1, v));
    }
    if (rc == 0)
        rc = talus_flush(t);
    for (unsigned i = 0; i < nkeys && rc == 0; i += 5)
        rc = talus_put(t, k, key_of(i, k), v, value_of(i, 2, v));
    if (rc == 0)
        rc = talus_wait_idle(db);
    if (rc != 0)
        return fail_rc("write", rc);
    rc = talus_close(db);
    return rc != 0 ? fail_rc("close", rc) : 0;
}

/* ---- checking one copy (in a child) ------------------------------------ */

/* 1 if (v, n) is a value key i held at some point of the build: a wrong
 * answer of that kind is a stale state (a rollback), not garbage. */
static int plausible(unsigned i, const void *v, size_t n)
{
    uint8_t h[400];
    size_t hn;
    if (i >= nkeys)
        return 0;
    for (unsigned gen = 0; gen < 3; gen++) {
        if ((gen == 1 && (i % 7 == 0 || i % 3 != 0)) || (gen == 2 && i % 5 != 0))
            continue;
        hn = value_of(i, gen, h);
        if (hn == n && memcmp(h, v, n) == 0)
            return 1;
    }
    return 0;
}

enum verdict {
    V_INTACT = 0,   /* every answer right */
    V_WRONG = 1,    /* an answer no state of the database ever gave */
    V_REFUSED = 3,  /* open failed with a clear error */
    V_ERRORS = 4,   /* opened; some reads failed with clear errors, none wrong */
    V_UNCLEAR = 5,  /* an error without a message or with an unknown code */
    V_ROLLBACK = 6, /* wrong answers, all of them values the keys held earlier */
};

struct check {
    int wrong, stale, errors, unclear;
};

static int clear_error(struct check *c, int rc, const char *what)
{
    const char *m = talus_errmsg();
    if (rc < TALUS_ECLOSED || m == NULL || m[0] == '\0') {
        if (c->unclear++ < 3)
            printf("    unclear error from %s: rc %d, message \"%s\"\n", what, rc, m ? m : "");
        return 0;
    }
    c->errors++;
    return 1;
}

/* A wrong answer: stale (an earlier value or absence) or garbage. */
static void wrong(struct check *c, int stale, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void wrong(struct check *c, int stale, const char *fmt, ...)
{
    int *n = stale ? &c->stale : &c->wrong;
    if ((*n)++ < 3) {
        va_list ap;
        va_start(ap, fmt);
        printf("    %s: ", stale ? "STALE" : "WRONG");
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
    }
}

static void check_get(struct check *c, talus_tree *t, unsigned i)
{
    char k[32];
    uint8_t exp[400];
    size_t kn = key_of(i, k), en = 0;
    int present = i < nkeys && expected(i, exp, &en);
    void *v = NULL;
    size_t vn = 0;
    int rc = talus_get(t, NULL, k, kn, &v, &vn);
    if (rc == TALUS_ENOTFOUND) {
        if (present)
            wrong(c, 1, "get %s: not found, expected %zu bytes", k, en);
    } else if (rc < 0) {
        clear_error(c, rc, "get");
    } else if (!present || vn != en || memcmp(v, exp, en) != 0) {
        wrong(c, plausible(i, v, vn), "get %s: got %zu bytes, expected %s%zu bytes", k, vn,
              present ? "" : "absent, not ", en);
    }
    talus_free(v);
}

/* Key index of "key/NNNNNN", or -1. */
static long parse_key(const void *k, size_t kn)
{
    char buf[32];
    unsigned i;
    char extra;
    if (kn == 0 || kn >= sizeof buf)
        return -1;
    memcpy(buf, k, kn);
    buf[kn] = '\0';
    if (sscanf(buf, "key/%6u%c", &i, &extra) != 1 || kn != 10)
        return -1;
    return (long)i;
}

static void check_scan(struct check *c, talus_tree *t, int reverse)
{
    const char *name = reverse ? "reverse scan" : "scan";
    talus_iter_options io;
    talus_iter_options_init(&io);
    talus_iter *it = NULL;
    int rc = talus_iter_new(t, &io, &it);
    if (rc < 0) {
        clear_error(c, rc, "iter_new");
        return;
    }
    if (reverse)
        talus_iter_seek_last(it);
    else
        talus_iter_seek_first(it);
    unsigned seen = 0, want = 0;
    long prev = -1;
    for (unsigned i = 0; i < nkeys; i++) {
        uint8_t exp[400];
        size_t en;
        want += (unsigned)expected(i, exp, &en);
    }
    for (; talus_iter_valid(it); reverse ? talus_iter_prev(it) : talus_iter_next(it)) {
        size_t kn, vn, en = 0;
        const void *k = talus_iter_key(it, &kn), *v = talus_iter_value(it, &vn);
        long i = parse_key(k, kn);
        if (i < 0 || i >= (long)nkeys || (prev >= 0 && (reverse ? i >= prev : i <= prev))) {
            wrong(c, 0, "%s: key %.*s out of place or unknown (after %ld)", name,
                  (int)(kn < 40 ? kn : 40), (const char *)k, prev);
            break;
        }
        prev = i;
        uint8_t exp[400];
        int present = expected((unsigned)i, exp, &en);
        if (present && vn == en && memcmp(v, exp, en) == 0)
            seen++;
        else
            wrong(c, plausible((unsigned)i, v, vn), "%s: key %ld: %zu bytes, expected %s%zu bytes",
                  name, i, vn, present ? "" : "absent, not ", en);
    }
    rc = talus_iter_status(it);
    if (rc < 0)
        clear_error(c, rc, name);
    else if (seen < want)
        wrong(c, 1, "%s: %u of %u keys listed, no error", name, seen, want);
    talus_iter_free(it);
}

static int check_copy(const char *dir)
{
    talus_options o;
    talus_options_init(&o);
    o.create_if_missing = 0;
    talus_db *db = NULL;
    struct check c = {0};
    int rc = talus_open(dir, &o, &db);
    if (rc < 0)
        return clear_error(&c, rc, "open") ? V_REFUSED : V_UNCLEAR;
    talus_tree *t = talus_default_tree(db);
    for (unsigned i = 0; i < nkeys + 20; i++)
        check_get(&c, t, i);
    check_scan(&c, t, 0);
    check_scan(&c, t, 1);
    rc = talus_close(db);
    if (rc < 0)
        clear_error(&c, rc, "close");
    if (c.wrong)
        return V_WRONG;
    if (c.unclear)
        return V_UNCLEAR;
    if (c.stale)
        return V_ROLLBACK;
    return c.errors ? V_ERRORS : V_INTACT;
}

/* ---- the parent: cases, children, timeouts ----------------------------- */

enum { M_FLIP, M_TRUNC, M_REMOVE };

struct mutation {
    int kind;
    off_t off; /* flip position or new length */
    uint8_t mask;
};

struct tally {
    int cases, intact, refused, errors, rolledback, failed;
};

/* Run fn(arg) in a child with stderr sent to errpath; returns its exit
 * status, or -SIGNAL if killed, or -1000 on timeout. */
static int run_child(int (*fn)(const char *), const char *arg, const char *errpath)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -2000;
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        int rc = fn(arg);
        fflush(stdout);
        _exit(rc);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        if (w < 0 && errno != EINTR)
            return -2000;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1000;
        }
        usleep(2000);
    }
}

static void show_stderr(const char *errpath)
{
    FILE *f = fopen(errpath, "r");
    if (f == NULL)
        return;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL && n++ < 8)
        printf("    stderr: %s", line);
    fclose(f);
}

static void describe(const struct mutation *m, char *buf, size_t cap)
{
    if (m->kind == M_FLIP)
        snprintf(buf, cap, "byte %jd ^= 0x%02x", (intmax_t)m->off, m->mask);
    else if (m->kind == M_TRUNC)
        snprintf(buf, cap, "truncated to %jd", (intmax_t)m->off);
    else
        snprintf(buf, cap, "removed");
}

static size_t mutations_for(off_t size, struct mutation *out, size_t cap)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    off_t pos[] = {0,
                   1,
                   3,
                   4,
                   7,
                   8,
                   12,
                   16,
                   size / 4,
                   size / 3,
                   size / 2,
                   size * 2 / 3,
                   size * 3 / 4,
                   size - 64,
                   size - 48,
                   size - 32,
                   size - 24,
                   size - 20,
                   size - 16,
                   size - 12,
                   size - 8,
                   size - 5,
                   size - 4,
                   size - 2,
                   size - 1};
    size_t n = 0;
    for (size_t i = 0; i < sizeof pos / sizeof pos[0] && n < cap; i++) {
        int dup = 0;
        for (size_t j = 0; j < n; j++)
            dup |= out[j].off == pos[i];
        if (pos[i] < 0 || pos[i] >= size || dup)
            continue;
        out[n++] = (struct mutation){M_FLIP, pos[i], masks[n % 4]};
    }
    off_t lens[] = {0, size / 2, size - 1, size - 8};
    for (size_t i = 0; i < 4 && n < cap; i++) {
        if (lens[i] < 0 || lens[i] >= size || (i > 0 && lens[i] == lens[i - 1]) ||
            (i > 1 && lens[i] == 0))
            continue;
        out[n++] = (struct mutation){M_TRUNC, lens[i], 0};
    }
    if (n < cap)
        out[n++] = (struct mutation){M_REMOVE, 0, 0};
    return n;
}

static int apply(const char *path, const struct mutation *m)
{
    if (m->kind == M_FLIP)
        return cf_flip(path, m->off, m->mask);
    if (m->kind == M_TRUNC)
        return truncate(path, m->off);
    return unlink(path);
}

static int build_child(const char *dir)
{
    return build(dir);
}

/* Run one damaged copy; returns 0 if the engine behaved. */
static int run_case(const char *work, const char *orig, const struct cf_file *f,
                    const struct mutation *m, struct tally *t)
{
    char copy[4096], target[4200], errpath[4200], what[64];
    snprintf(copy, sizeof copy, "%s/case", work);
    snprintf(errpath, sizeof errpath, "%s/case.stderr", work);
    cf_remove_tree(copy);
    if (cf_copy_tree(orig, copy) != 0) {
        printf("corrupt_test: cannot copy %s: %s\n", orig, strerror(errno));
        return -1;
    }
    describe(m, what, sizeof what);
    if (m != NULL && f != NULL) {
        snprintf(target, sizeof target, "%s/%s", copy, f->rel);
        if (apply(target, m) != 0) {
            printf("corrupt_test: cannot damage %s: %s\n", target, strerror(errno));
            return -1;
        }
    }
    int st = run_child(check_copy, copy, errpath);
    t->cases++;
    switch (st) {
    case V_INTACT:
        t->intact++;
        return 0;
    case V_REFUSED:
        t->refused++;
        return 0;
    case V_ERRORS:
        t->errors++;
        return 0;
    case V_ROLLBACK:
        /* Cutting the tail off a file is what a crash does, and going back
         * to an earlier state is then the right recovery. Flipped bytes or
         * a missing file are damage and must be reported. */
        if (m->kind == M_TRUNC) {
            t->rolledback++;
            return 0;
        }
        break;
    default:
        break;
    }
    t->failed++;
    const char *why = st == V_WRONG ? "wrong data returned as correct"
                      : st == V_ROLLBACK
                          ? "an earlier state served as current (damage not detected)"
                      : st == V_UNCLEAR ? "error without a clear code and message"
                      : st == -1000     ? "hang (killed after the timeout)"
                      : st < 0          ? "crash"
                                        : "unexpected exit";
    printf("  FAIL %s, %s: %s (status %d%s%s)\n", f ? f->rel : "(none)", what, why, st,
           st < 0 && st > -1000 ? ", " : "", st < 0 && st > -1000 ? strsignal(-st) : "");
    show_stderr(errpath);
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"seed", required_argument, NULL, 's'}, {"dir", required_argument, NULL, 'd'},
        {"keys", required_argument, NULL, 'k'}, {"timeout", required_argument, NULL, 't'},
        {"keep", no_argument, NULL, 'K'},       {NULL, 0, NULL, 0},
    };
    const char *parent = getenv("TMPDIR");
    int opt, keep = 0;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (opt == 's')
            seed = strtoull(optarg, NULL, 0);
        else if (opt == 'd')
            parent = optarg;
        else if (opt == 'k')
            nkeys = (unsigned)strtoul(optarg, NULL, 0);
        else if (opt == 't')
            timeout_s = atoi(optarg);
        else if (opt == 'K')
            keep = 1;
        else {
            fprintf(stderr, "usage: corrupt_test [--seed N] [--dir D] [--keys N] "
                            "[--timeout S] [--keep]\n");
            return 2;
        }
    }
    printf("corrupt_test: seed=%" PRIu64 " keys=%u\n", seed, nkeys);
    if (parent == NULL || parent[0] == '\0')
        parent = "/tmp";
    char work[4096], orig[4200], errpath[4200];
    snprintf(work, sizeof work, "%s/talus-corrupt-XXXXXX", parent);
    if (mkdtemp(work) == NULL) {
        perror("corrupt_test: mkdtemp");
        return 2;
    }
    snprintf(orig, sizeof orig, "%s/orig", work);
    snprintf(errpath, sizeof errpath, "%s/build.stderr", work);
    int st = run_child(build_child, orig, errpath);
    if (st != 0) {
        printf("corrupt_test: building the database failed (status %d)\n", st);
        show_stderr(errpath);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    struct cf_file *files = NULL;
    size_t nfiles = 0;
    if (cf_list(orig, &files, &nfiles) != 0) {
        printf("corrupt_test: cannot list %s: %s\n", orig, strerror(errno));
        return 2;
    }
    /* The undamaged copy must read back exactly, or the test is wrong. */
    struct tally total = {0}, base = {0};
    static const struct mutation none = {M_FLIP, -1, 0};
    if (run_case(work, orig, NULL, &none, &base) != 0 || base.intact != 1) {
        printf("corrupt_test: the undamaged database does not read back correctly\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("corrupt_test: %zu files in the database\n", nfiles);
    for (size_t i = 0; i < nfiles; i++) {
        struct mutation ms[40];
        size_t nm = mutations_for(files[i].size, ms, 40);
        struct tally t = {0};
        for (size_t j = 0; j < nm; j++)
            run_case(work, orig, &files[i], &ms[j], &t);
        printf("  %-26s %7jd bytes: %2d cases: %2d intact, %2d refused at open, %2d read "
               "errors, %2d rolled back, %d failed\n",
               files[i].rel, (intmax_t)files[i].size, t.cases, t.intact, t.refused, t.errors,
               t.rolledback, t.failed);
        total.cases += t.cases;
        total.intact += t.intact;
        total.refused += t.refused;
        total.errors += t.errors;
        total.rolledback += t.rolledback;
        total.failed += t.failed;
    }
    printf("corrupt_test: %d cases: %d intact, %d refused at open, %d with read errors, %d "
           "rolled back (truncated tail), %d failed\n",
           total.cases, total.intact, total.refused, total.errors, total.rolledback, total.failed);
    cf_list_free(files, nfiles);
    if (total.failed == 0 && !keep)
        cf_remove_tree(work);
    else
        printf("corrupt_test: work directory kept: %s\n", work);
    printf("%d passed, %d failed\n", total.failed == 0 ? 1 : 0, total.failed == 0 ? 0 : 1);
    return total.failed == 0 ? 0 : 1;
}
