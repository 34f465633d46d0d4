/*
 * crash_util.c - shared pieces of the crash tests: randomness, temp
 * directories, the batch encoding and the model check (see crash_util.h).
 */
#include "crash_util.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VAL_HEAD 20 /* 'T', id, which, victim, filler length */
#define VAL_TAIL 8  /* checksum */
#define GET_CHECKS_MAX 40000
#define ABSENT_CHECKS_MAX 3000
#define GET_CHECKS_SNAP 3000
#define ABSENT_CHECKS_SNAP 500

/* ---- Randomness, time, scale ------------------------------------------- */

uint64_t cr_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t cr_mix(uint64_t a, uint64_t b)
{
    uint64_t s = a ^ (b * 0xd6e8feb86659fd93ull);
    return cr_rnd(&s);
}

uint64_t cr_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return hi <= lo ? lo : lo + cr_rnd(s) % (hi - lo + 1);
}

uint64_t cr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

unsigned cr_scaled(unsigned n, unsigned min)
{
    double scale = 1.0;
    const char *s = getenv("TALUS_TEST_SCALE");
    if (s && *s) {
        char *end;
        double v = strtod(s, &end);
        if (end != s && v > 0)
            scale = v;
    }
    double r = n * scale + 0.5;
    unsigned v = r > 4e9 ? 4000000000u : (unsigned)r;
    return v < min ? min : v;
}

uint64_t cr_clock_seed(void)
{
    /* `make check` pins the seed (TALUS_TEST_SEED) so CI is repeatable;
     * run the programs by hand for fresh seeds. */
    const char *env = getenv("TALUS_TEST_SEED");
    if (env && *env)
        return strtoull(env, NULL, 10);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s =
        cr_mix((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, (uint64_t)getpid());
    return s % 1000000000ull; /* short enough to type */
}

/* ---- Directories -------------------------------------------------------- */

int cr_make_tmpdir(const char *parent, const char *tag, char *out, size_t n)
{
    if (!parent) {
        parent = getenv("TMPDIR");
        if (!parent || !*parent)
            parent = "/tmp";
    }
    mkdir(parent, 0755); /* --dir may name a directory that does not exist yet */
    int len = snprintf(out, n, "%s/%s-XXXXXX", parent, tag);
    if (len < 0 || (size_t)len >= n || !mkdtemp(out)) {
        fprintf(stderr, "cannot create a temporary directory under %s: %s\n", parent,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void cr_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char watchdog_msg[256];

static void watchdog_fire(int sig)
{
    (void)sig;
    static const char head[] = "\nTIMEOUT (watchdog): ";
    ssize_t r = write(2, head, sizeof head - 1);
    r = write(2, watchdog_msg, strlen(watchdog_msg));
    r = write(2, "\n0 passed, 1 failed\n", 20);
    (void)r;
    _exit(1);
}

void cr_watchdog(unsigned seconds, const char *what)
{
    snprintf(watchdog_msg, sizeof watchdog_msg, "%s", what);
    signal(SIGALRM, watchdog_fire);
    alarm(seconds);
}

/* ---- Batches ------------------------------------------------------------ */

size_t cr_key(uint64_t id, int which, char *buf)
{
    if (which == 2)
        return (size_t)sprintf(buf, "b%012" PRIu64, id);
    return (size_t)sprintf(buf, "b%012" PRIu64 "-%d", id, which + 1);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return cr_mix(h, n);
}

/* The value of (id, which, victim) with `len` filler bytes. */
static size_t value_with_len(uint64_t seed, uint64_t id, int which, uint64_t victim, size_t len,
                             uint8_t *buf)
{
    buf[0] = 'T';
    put64(buf + 1, id);
    buf[9] = (uint8_t)which;
    put64(buf + 10, victim);
    buf[18] = (uint8_t)len;
    buf[19] = (uint8_t)(len >> 8);
    uint64_t s = cr_mix(seed, id * 4 + (uint64_t)which);
    uint64_t r = 0;
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0)
            r = cr_rnd(&s);
        buf[VAL_HEAD + i] = (uint8_t)('a' + (r >> (8 * (i % 8))) % 26);
    }
    put64(buf + VAL_HEAD + len, checksum(buf, VAL_HEAD + len));
    return VAL_HEAD + len + VAL_TAIL;
}

size_t cr_value(uint64_t seed, uint64_t id, int which, uint64_t victim, size_t min_filler,
                size_t max_filler, uint8_t *buf)
{
    if (max_filler > CR_MAX_FILLER)
        max_filler = CR_MAX_FILLER;
    if (min_filler > max_filler)
        min_filler = max_filler;
    uint64_t s = cr_mix(seed ^ 0x5eed, id * 4 + (uint64_t)which);
    size_t len = (size_t)cr_range(&s, min_filler, max_filler);
    return value_with_len(seed, id, which, victim, len, buf);
}

bool cr_value_check(uint64_t seed, uint64_t id, int which, const void *v, size_t vl)
{
    const uint8_t *p = v;
    uint8_t want[CR_VALUE_MAX];
    if (vl < VAL_HEAD + VAL_TAIL || vl > CR_VALUE_MAX)
        return false;
    size_t flen = (size_t)p[18] | (size_t)p[19] << 8;
    if (flen != vl - VAL_HEAD - VAL_TAIL)
        return false;
    size_t n = value_with_len(seed, id, which, get64(p + 10), flen, want);
    return n == vl && memcmp(want, p, n) == 0;
}

bool cr_is_deleter(uint64_t seed, uint64_t id)
{
    return cr_mix(seed ^ 0xde1e7e, id) % 8 == 0;
}

int cr_batch_fill(talus_batch *b, talus_tree *ta, talus_tree *tb, uint64_t seed, uint64_t id,
                  uint64_t victim, size_t min_filler, size_t max_filler)
{
    char key[CR_KEY_MAX];
    uint8_t val[CR_VALUE_MAX];
    talus_batch_clear(b);
    for (int w = 0; w < CR_KEYS; w++) {
        size_t kl = cr_key(id, w, key);
        size_t vl = cr_value(seed, id, w, victim, min_filler, max_filler, val);
        int rc = talus_batch_put(b, w == 2 ? tb : ta, key, kl, val, vl);
        if (rc < 0)
            return rc;
    }
    for (int w = 0; victim && w < CR_KEYS; w++) {
        size_t kl = cr_key(victim, w, key);
        int rc = talus_batch_delete(b, w == 2 ? tb : ta, key, kl);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Parse a key of tree `tree` (0 = a, 1 = b): its batch id and index. */
static bool parse_key(int tree, const char *k, size_t n, uint64_t *id, int *which)
{
    size_t want = tree == 0 ? 15 : 13;
    if (n != want || k[0] != 'b')
        return false;
    uint64_t v = 0;
    for (int i = 1; i <= 12; i++) {
        if (k[i] < '0' || k[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (tree == 0) {
        if (k[13] != '-' || (k[14] != '1' && k[14] != '2'))
            return false;
        *which = k[14] - '1';
    } else {
        *which = 2;
    }
    *id = v;
    return true;
}

/* ---- Model -------------------------------------------------------------- */

void cr_model_free(cr_model *m)
{
    free(m->st);
    memset(m, 0, sizeof *m);
}

int cr_model_set(cr_model *m, uint64_t id, int st)
{
    if (id >= m->cap) {
        uint64_t cap = m->cap ? m->cap : 1024;
        while (cap <= id)
            cap *= 2;
        uint8_t *n = realloc(m->st, cap);
        if (!n)
            return -1;
        memset(n + m->cap, 0, cap - m->cap);
        m->st = n;
        m->cap = cap;
    }
    m->st[id] = (uint8_t)st;
    if (id > m->max_id)
        m->max_id = id;
    return 0;
}

int cr_model_get(const cr_model *m, uint64_t id)
{
    return id < m->cap ? m->st[id] : CR_NONE;
}

uint64_t *cr_model_victims(const cr_model *m, uint64_t seed, size_t *n)
{
    uint64_t *v = malloc((m->max_id + 1) * sizeof *v);
    *n = 0;
    if (!v)
        return NULL;
    for (uint64_t id = 1; id <= m->max_id; id++)
        if (cr_model_get(m, id) == CR_MUST && !cr_is_deleter(seed, id))
            v[(*n)++] = id;
    return v;
}

/* ---- Checking a database ------------------------------------------------- */

typedef struct scanned {
    char key[CR_KEY_MAX];
    uint8_t klen;
    uint64_t id;
    uint32_t vlen;
    int which;
} scanned;

typedef struct vctx {
    uint64_t seed;
    uint64_t bound; /* highest id that may exist */
    cr_found *f;
    const talus_snapshot *snap; /* NULL: latest */
    size_t get_max, absent_max; /* how many gets to spend */
    scanned *keys;
    size_t nkeys, cap;
    char *err;
    size_t errn;
    int problems;
} vctx;

static void problem(vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(vctx *c, const char *fmt, ...)
{
    c->problems++;
    size_t used = strlen(c->err);
    if (c->problems > 8 || used + 8 >= c->errn) {
        if (c->problems == 9 && used + 6 < c->errn)
            strcat(c->err, "\n  ...");
        return;
    }
    if (used)
        c->err[used++] = '\n';
    c->err[used] = '\0';
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(c->err + used, c->errn - used, "  ");
    vsnprintf(c->err + used + k, c->errn - used - (size_t)k, fmt, ap);
    va_end(ap);
}

static const char *tree_name(int tree)
{
    return tree == 0 ? "a" : "b";
}

/* Check one scanned entry and record it. */
static void take_entry(vctx *c, int tree, const void *k, size_t kl, const void *v, size_t vl)
{
    uint64_t id;
    int which;
    if (kl >= CR_KEY_MAX || !parse_key(tree, k, kl, &id, &which)) {
        problem(c, "tree %s: unexpected key \"%.*s\" (%zu bytes)", tree_name(tree),
                (int)(kl > 40 ? 40 : kl), (const char *)k, kl);
        return;
    }
    if (id == 0 || id > c->bound) {
        problem(c,
                "tree %s: key %.*s belongs to batch %" PRIu64
                ", which was never written (highest written: %" PRIu64 ")",
                tree_name(tree), (int)kl, (const char *)k, id, c->bound);
        return;
    }
    const uint8_t *p = v;
    uint8_t want[CR_VALUE_MAX];
    if (vl < VAL_HEAD + VAL_TAIL || vl > CR_VALUE_MAX || p[0] != 'T') {
        problem(c, "tree %s: key %.*s: malformed value (%zu bytes)", tree_name(tree), (int)kl,
                (const char *)k, vl);
        return;
    }
    size_t flen = (size_t)p[18] | (size_t)p[19] << 8;
    uint64_t victim = get64(p + 10);
    if (flen != vl - VAL_HEAD - VAL_TAIL || get64(p + 1) != id || p[9] != which || victim >= id ||
        memcmp(want, p, value_with_len(c->seed, id, which, victim, flen, want)) != 0) {
        problem(c, "tree %s: key %.*s: value does not match (wrong batch, torn or garbled)",
                tree_name(tree), (int)kl, (const char *)k);
        return;
    }
    cr_found *f = &c->f[id];
    if (f->mask && f->victim != victim) {
        problem(c, "batch %" PRIu64 ": keys disagree on the victim (%" PRIu64 " vs %" PRIu64 ")",
                id, f->victim, victim);
        return;
    }
    f->mask |= (uint8_t)(1u << which);
    f->victim = victim;
    if (c->nkeys == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        scanned *n = realloc(c->keys, cap * sizeof *n);
        if (!n) {
            problem(c, "out of memory");
            return;
        }
        c->keys = n;
        c->cap = cap;
    }
    scanned *s = &c->keys[c->nkeys++];
    memcpy(s->key, k, kl);
    s->klen = (uint8_t)kl;
    s->id = id;
    s->which = which;
    s->vlen = (uint32_t)vl;
}

static int keycmp(const void *a, size_t al, const void *b, size_t bl)
{
    int r = memcmp(a, b, al < bl ? al : bl);
    return r ? r : (al > bl) - (al < bl);
}

/* Forward scan, reverse scan, first/last key, gets. */
static void scan_tree(vctx *c, talus_tree *t, int tree)
{
    size_t start = c->nkeys;
    talus_iter *it = NULL;
    talus_iter_options io;
    talus_iter_options_init(&io);
    io.snapshot = c->snap;
    int rc = talus_iter_new(t, &io, &it);
    if (rc < 0) {
        problem(c, "tree %s: talus_iter_new: %s: %s", tree_name(tree), talus_strerror(rc),
                talus_errmsg());
        return;
    }
    char prev[CR_KEY_MAX];
    size_t prevlen = 0;
    bool have_prev = false;
    for (talus_iter_seek_first(it); talus_iter_valid(it); talus_iter_next(it)) {
        size_t kl, vl;
        const void *k = talus_iter_key(it, &kl);
        const void *v = talus_iter_value(it, &vl);
        if (have_prev && keycmp(prev, prevlen, k, kl) >= 0) {
            problem(c, "tree %s: forward scan not strictly ascending at \"%.*s\" after \"%.*s\"",
                    tree_name(tree), (int)(kl > 40 ? 40 : kl), (const char *)k, (int)prevlen, prev);
            break;
        }
        if (kl < CR_KEY_MAX) {
            memcpy(prev, k, kl);
            prevlen = kl;
            have_prev = true;
        }
        take_entry(c, tree, k, kl, v, vl);
    }
    if ((rc = talus_iter_status(it)) < 0)
        problem(c, "tree %s: forward scan stopped: %s: %s", tree_name(tree), talus_strerror(rc),
                talus_errmsg());
    /* Reverse: the same keys, in the opposite order. */
    size_t i = c->nkeys;
    for (talus_iter_seek_last(it); talus_iter_valid(it); talus_iter_prev(it)) {
        size_t kl;
        const void *k = talus_iter_key(it, &kl);
        if (i == start || keycmp(c->keys[i - 1].key, c->keys[i - 1].klen, k, kl) != 0) {
            problem(c, "tree %s: reverse scan gives \"%.*s\" where the forward scan had %s",
                    tree_name(tree), (int)(kl > 40 ? 40 : kl), (const char *)k,
                    i == start ? "nothing" : c->keys[i - 1].key);
            break;
        }
        i--;
    }
    if ((rc = talus_iter_status(it)) < 0)
        problem(c, "tree %s: reverse scan stopped: %s: %s", tree_name(tree), talus_strerror(rc),
                talus_errmsg());
    else if (i != start)
        problem(c, "tree %s: reverse scan saw %zu keys, forward scan %zu", tree_name(tree),
                c->nkeys - i, c->nkeys - start);
    talus_iter_free(it);

    /* First and last key (they read the latest state only). */
    for (int last = 0; last < 2 && !c->snap; last++) {
        void *k = NULL;
        size_t kl = 0;
        rc = last ? talus_last_key(t, &k, &kl) : talus_first_key(t, &k, &kl);
        if (c->nkeys == start) {
            if (rc != TALUS_ENOTFOUND)
                problem(c, "tree %s: empty, but talus_%s_key returned %d", tree_name(tree),
                        last ? "last" : "first", rc);
        } else {
            const scanned *s = &c->keys[last ? c->nkeys - 1 : start];
            if (rc < 0 || keycmp(k, kl, s->key, s->klen) != 0)
                problem(c, "tree %s: talus_%s_key (rc %d) disagrees with the scan (%s)",
                        tree_name(tree), last ? "last" : "first", rc, s->key);
        }
        talus_free(k);
    }

    /* Gets agree with the scan (every key, or an even sample of them). */
    size_t n = c->nkeys - start;
    size_t step = n > c->get_max ? n / c->get_max + 1 : 1;
    for (size_t j = start; j < c->nkeys; j += step) {
        const scanned *s = &c->keys[j];
        uint8_t want[CR_VALUE_MAX];
        size_t wl = value_with_len(c->seed, s->id, s->which, c->f[s->id].victim,
                                   s->vlen - VAL_HEAD - VAL_TAIL, want);
        void *v = NULL;
        size_t vl = 0;
        rc = talus_get(t, c->snap, s->key, s->klen, &v, &vl);
        if (rc < 0 || vl != wl || memcmp(v, want, wl) != 0)
            problem(c, "tree %s: get(%s) = %d (%s) disagrees with the scan", tree_name(tree),
                    s->key, rc, rc < 0 ? talus_errmsg() : "different value");
        talus_free(v);
    }
}

/* Keys the scans did not show must not be found by get either. */
static void check_absent(vctx *c, talus_tree *ta, talus_tree *tb)
{
    uint64_t s = cr_mix(c->seed, c->bound);
    uint64_t tries = c->bound < c->absent_max ? c->bound : c->absent_max;
    for (uint64_t i = 0; i < tries; i++) {
        uint64_t id = c->bound <= c->absent_max ? i + 1 : cr_range(&s, 1, c->bound);
        for (int w = 0; w < CR_KEYS; w++) {
            if (c->f[id].mask & (1u << w))
                continue;
            char key[CR_KEY_MAX];
            size_t kl = cr_key(id, w, key);
            void *v = NULL;
            size_t vl;
            int rc = talus_get(w == 2 ? tb : ta, c->snap, key, kl, &v, &vl);
            if (rc != TALUS_ENOTFOUND)
                problem(c, "get(%s) = %d (%s) but the scan did not show the key", key, rc,
                        rc < 0 ? talus_errmsg() : "found");
            talus_free(v);
        }
    }
}

/* Compare the found batches with the model, then set the model to them. */
static void check_model(vctx *c, cr_model *m, cr_report *rep)
{
    /* Victims of present deleters. */
    uint8_t *deleted = calloc(c->bound + 1, 1);
    if (!deleted) {
        problem(c, "out of memory");
        return;
    }
    for (uint64_t id = 1; id <= c->bound; id++) {
        cr_found *f = &c->f[id];
        if (f->mask == 7 && f->victim) {
            deleted[f->victim] = 1;
            if (c->f[f->victim].mask != 0)
                problem(c,
                        "batch %" PRIu64 " is present and deleted batch %" PRIu64
                        ", but %s of batch %" PRIu64 " %s still there",
                        id, f->victim, c->f[f->victim].mask == 7 ? "all keys" : "some keys",
                        f->victim, c->f[f->victim].mask == 7 ? "are" : "are");
            if (cr_is_deleter(c->seed, f->victim))
                problem(c, "batch %" PRIu64 " names deleter %" PRIu64 " as its victim", id,
                        f->victim);
        }
    }
    for (uint64_t id = 1; id <= c->bound; id++) {
        cr_found *f = &c->f[id];
        int st = cr_model_get(m, id);
        if (f->mask != 0 && f->mask != 7) {
            char miss[64] = "";
            for (int w = 0; w < CR_KEYS; w++) {
                if (!(f->mask & (1u << w))) {
                    char key[CR_KEY_MAX];
                    cr_key(id, w, key);
                    strcat(miss, " ");
                    strcat(miss, key);
                }
            }
            problem(c, "batch %" PRIu64 " (%s) is only partly present: missing%s", id,
                    st == CR_MUST  ? "required"
                    : st == CR_MAY ? "not required"
                                   : "never written",
                    miss);
        } else if (f->mask == 7) {
            rep->present++;
            if (st == CR_NONE)
                problem(c,
                        "batch %" PRIu64 " is present but was never written, or was seen "
                        "absent after an earlier crash (resurrected)",
                        id);
            else if (st == CR_MUST)
                rep->must++;
            else
                rep->may_found++;
        } else if (st == CR_MUST) {
            if (deleted[id])
                rep->deleted++;
            else
                problem(c,
                        "batch %" PRIu64 " was acknowledged (or seen present before) but is "
                        "missing, and no present batch deleted it",
                        id);
        } else if (st == CR_MAY) {
            rep->may_lost++;
        }
    }
    free(deleted);
    for (uint64_t id = 1; id <= c->bound; id++)
        cr_model_set(m, id, c->f[id].mask == 7 ? CR_MUST : CR_NONE);
}

/* Scans, gets and absent-key checks into c (c->f allocated here). */
static void scan_all(vctx *c, talus_tree *ta, talus_tree *tb)
{
    c->err[0] = '\0';
    c->f = calloc(c->bound + 1, sizeof *c->f);
    if (!c->f) {
        problem(c, "out of memory");
        return;
    }
    scan_tree(c, ta, 0);
    scan_tree(c, tb, 1);
    check_absent(c, ta, tb);
}

int cr_scan(talus_tree *ta, talus_tree *tb, const talus_snapshot *snap, uint64_t seed,
            uint64_t bound, cr_found **found, uint64_t *keys, char *err, size_t errn)
{
    /* Reads at a snapshot are checked more lightly: there are many. */
    vctx c = {.seed = seed,
              .bound = bound,
              .err = err,
              .errn = errn,
              .snap = snap,
              .get_max = snap ? GET_CHECKS_SNAP : GET_CHECKS_MAX,
              .absent_max = snap ? ABSENT_CHECKS_SNAP : ABSENT_CHECKS_MAX};
    scan_all(&c, ta, tb);
    for (uint64_t id = 1; c.f && id <= c.bound; id++)
        if (c.f[id].mask != 0 && c.f[id].mask != 7)
            problem(&c, "batch %" PRIu64 " is only partly present (key mask %u of 7)", id,
                    c.f[id].mask);
    free(c.keys);
    if (keys)
        *keys = c.nkeys;
    if (c.problems) {
        free(c.f);
        *found = NULL;
        return -1;
    }
    *found = c.f;
    return 0;
}

int cr_verify(talus_tree *ta, talus_tree *tb, uint64_t seed, cr_model *m, cr_report *rep, char *err,
              size_t errn)
{
    vctx c = {.seed = seed,
              .bound = m->max_id,
              .err = err,
              .errn = errn,
              .get_max = GET_CHECKS_MAX,
              .absent_max = ABSENT_CHECKS_MAX};
    memset(rep, 0, sizeof *rep);
    scan_all(&c, ta, tb);
    rep->keys = c.nkeys;
    if (c.problems == 0)
        check_model(&c, m, rep);
    free(c.f);
    free(c.keys);
    return c.problems ? -1 : 0;
}

int cr_open_trees(talus_db *db, int create, talus_tree **ta, talus_tree **tb)
{
    int rc = talus_tree_open(db, "a", create, NULL, ta);
    if (rc == 0)
        rc = talus_tree_open(db, "b", create, NULL, tb);
    return rc;
}
