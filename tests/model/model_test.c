/*
 * model_test.c - randomized model-based test of the engine through talus.h.
 *
 *   model_test [--seed N] [--ops N] [--dir D] [--keys N] [--keep]
 *
 * Runs a long random sequence of puts, deletes, weak deletes, atomic
 * batches, gets, contains, iterator walks (bounds, prefixes, seeks,
 * direction switches), first/last key, snapshots (reads at a snapshot must
 * match the model as it was when the snapshot was taken), flushes, range
 * compactions and clean close+reopen, against a reference model (model.h),
 * with a tiny write buffer and tiny target file sizes so that flushes and
 * multi-level compactions happen all through the run.
 *
 * Weak delete is modelled as a delete, on any key: that is the contract of
 * talus.h ("reads treat it as a delete, and it never makes an older value
 * visible again"), so a weak delete over a key written many times, which
 * compaction could get wrong by cancelling only the newest value, is tested
 * too.
 *
 * The first line is always "model_test: seed=N"; a failure prints the op
 * index, the op, the key in hex, expected vs actual, and a replay command.
 */
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model_run.h"

static int keep_dir;

void mr_fail(struct mr_run *r, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "model_test: FAIL at op %lu (%s): ", r->op, r->opname ? r->opname : "?");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr,
            "\nmodel_test: seed=%" PRIu64 "; replay with: model_test --seed %" PRIu64
            " --ops %lu --keys %zu\n",
            r->seed, r->seed, r->nops, r->ks.n);
    fprintf(stderr, "model_test: database left in %s\n", r->dbdir);
    printf("0 passed, 1 failed\n");
    exit(1);
}

void mr_check_rc(struct mr_run *r, int rc, const char *call)
{
    if (rc != 0)
        mr_fail(r, "%s returned %d (%s): %s", call, rc, talus_strerror(rc), talus_errmsg());
}

/* Hot keys (every 10th) get half of the traffic, so keys get many versions
 * and compaction has overwrites and tombstones to collapse. */
static size_t pick_key(struct mr_run *r)
{
    size_t n = r->ks.n;
    if (n >= 20 && mt_chance(&r->rng, 50))
        return 10 * mt_below(&r->rng, n / 10);
    return mt_below(&r->rng, n);
}

void mr_target(struct mr_run *r, uint8_t *buf, size_t cap, size_t *len)
{
    if (mt_chance(&r->rng, 15)) {
        size_t n = 1 + mt_below(&r->rng, 6);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)mt_below(&r->rng, 256);
        *len = n;
        return;
    }
    size_t i = mt_below(&r->rng, r->ks.n), n = r->ks.len[i];
    memcpy(buf, r->ks.key[i], n);
    switch (mt_below(&r->rng, 4)) {
    case 0: /* one byte longer: just after the key */
        if (n < cap)
            buf[n++] = (uint8_t)mt_below(&r->rng, 256);
        break;
    case 1: /* one byte shorter: a prefix of the key */
        if (n > 1)
            n--;
        break;
    case 2: /* last byte bumped: between keys */
        buf[n - 1] = (uint8_t)(buf[n - 1] + (mt_chance(&r->rng, 50) ? 1 : -1));
        break;
    default:
        break;
    }
    *len = n;
}

static uint32_t value_len(struct mr_run *r)
{
    uint64_t p = mt_below(&r->rng, 100);
    if (p < 55)
        return (uint32_t)mt_below(&r->rng, 33);
    if (p < 90)
        return 33 + (uint32_t)mt_below(&r->rng, 268);
    return 301 + (uint32_t)mt_below(&r->rng, MR_MAX_VALUE - 300);
}

/* Check that a write moved the published seqno forward. */
static void check_seqno_advanced(struct mr_run *r, uint64_t before)
{
    uint64_t now = talus_seqno(r->db);
    if (now <= before)
        mr_fail(r, "seqno did not advance after a write: %" PRIu64 " -> %" PRIu64, before, now);
    r->last_seqno = now;
}

enum wkind { W_PUT, W_DEL, W_WEAK };

static void model_apply(struct mr_run *r, size_t k, enum wkind w, uint64_t seed, uint32_t len)
{
    if (w == W_PUT)
        r->state[k] = (mt_val){seed, len, 1};
    else
        r->state[k] = (mt_val){0, 0, 0};
}

static void do_write(struct mr_run *r, enum wkind w)
{
    size_t k = pick_key(r);
    uint64_t before = talus_seqno(r->db), seed = mt_rand(&r->rng);
    uint32_t len = 0;
    int rc;
    r->n_write++;
    if (w == W_PUT) {
        r->opname = "put";
        len = value_len(r);
        mt_value_fill(seed, len, r->vbuf);
        rc = talus_put(r->t, r->ks.key[k], r->ks.len[k], r->vbuf, len);
    } else if (w == W_DEL) {
        r->opname = "delete";
        rc = talus_delete(r->t, r->ks.key[k], r->ks.len[k]);
    } else {
        r->opname = "weak delete";
        rc = talus_weak_delete(r->t, r->ks.key[k], r->ks.len[k]);
    }
    if (rc != 0)
        mr_fail(r, "key %s: returned %d (%s): %s", mt_hex(r->ks.key[k], r->ks.len[k]), rc,
                talus_strerror(rc), talus_errmsg());
    model_apply(r, k, w, seed, len);
    check_seqno_advanced(r, before);
}

void mr_random_write(struct mr_run *r)
{
    uint64_t p = mt_below(&r->rng, 10);
    do_write(r, p < 7 ? W_PUT : p < 9 ? W_DEL : W_WEAK);
}

/* A batch of 2..9 writes (a key may appear twice: the last write wins). */
static void do_batch(struct mr_run *r)
{
    r->opname = "batch";
    r->n_write++;
    talus_batch_clear(r->batch);
    size_t n = 2 + mt_below(&r->rng, 8), keys[10];
    enum wkind kinds[10];
    uint64_t seeds[10];
    uint32_t lens[10];
    for (size_t i = 0; i < n; i++) {
        keys[i] = i > 0 && mt_chance(&r->rng, 15) ? keys[i - 1] : pick_key(r);
        uint64_t p = mt_below(&r->rng, 10);
        kinds[i] = p < 6 ? W_PUT : p < 8 ? W_DEL : W_WEAK;
        seeds[i] = mt_rand(&r->rng);
        lens[i] = kinds[i] == W_PUT ? value_len(r) : 0;
        const uint8_t *key = r->ks.key[keys[i]];
        size_t kn = r->ks.len[keys[i]];
        int rc;
        if (kinds[i] == W_PUT) {
            mt_value_fill(seeds[i], lens[i], r->vbuf);
            rc = talus_batch_put(r->batch, r->t, key, kn, r->vbuf, lens[i]);
        } else if (kinds[i] == W_DEL) {
            rc = talus_batch_delete(r->batch, r->t, key, kn);
        } else {
            rc = talus_batch_weak_delete(r->batch, r->t, key, kn);
        }
        mr_check_rc(r, rc, "talus_batch_put/delete");
    }
    if (talus_batch_count(r->batch) != n)
        mr_fail(r, "talus_batch_count = %zu, expected %zu", talus_batch_count(r->batch), n);
    uint64_t before = talus_seqno(r->db), seq = 0;
    mr_check_rc(r, talus_batch_commit(r->db, r->batch, -1, &seq), "talus_batch_commit");
    if (seq <= before)
        mr_fail(r, "batch seqno %" PRIu64 " not above previous %" PRIu64, seq, before);
    for (size_t i = 0; i < n; i++)
        model_apply(r, keys[i], kinds[i], seeds[i], lens[i]);
    check_seqno_advanced(r, before);
}

/* Compare one point read with the model value v. rc/val/vn are the
 * engine's answer; for contains, val is NULL and rc is 1 or 0. */
static void check_read(struct mr_run *r, const uint8_t *key, size_t kn, const mt_val *v, int rc,
                       const void *val, size_t vn, int is_contains)
{
    r->n_read++;
    if (is_contains) {
        if (rc < 0 || rc != (v->present ? 1 : 0))
            mr_fail(r, "key %s: expected %s, contains returned %d (%s)", mt_hex(key, kn),
                    v->present ? "1 (present)" : "0 (absent)", rc, rc < 0 ? talus_errmsg() : "");
        return;
    }
    if (!v->present) {
        if (rc != TALUS_ENOTFOUND)
            mr_fail(r, "key %s: expected absent, got rc %d%s%s (value %zu bytes)", mt_hex(key, kn),
                    rc, rc < 0 ? ": " : "", rc < 0 ? talus_errmsg() : "", rc == 0 ? vn : 0);
        return;
    }
    if (rc != 0)
        mr_fail(r, "key %s: expected a value of %u bytes, got rc %d (%s): %s", mt_hex(key, kn),
                v->len, rc, talus_strerror(rc), talus_errmsg());
    if (!mt_value_eq(v, val, vn)) {
        uint8_t exp[16];
        mt_value_fill(v->seed, v->len < 16 ? v->len : 16, exp);
        char e[80];
        snprintf(e, sizeof e, "%s", mt_hex(exp, v->len < 16 ? v->len : 16));
        mr_fail(r, "key %s: expected value %u bytes [%s...], got %zu bytes [%s...]",
                mt_hex(key, kn), v->len, e, vn, mt_hex(val, vn < 16 ? vn : 16));
    }
}

/* A point read of a key (or of a near-key, which may be absent) at the
 * latest state or at a snapshot, through get, contains or get_at. */
static void do_read(struct mr_run *r, int at_snap)
{
    uint8_t kb[80];
    size_t kn;
    const uint8_t *key;
    if (mt_chance(&r->rng, 85)) {
        size_t k = pick_key(r);
        key = r->ks.key[k];
        kn = r->ks.len[k];
    } else {
        mr_target(r, kb, sizeof kb, &kn);
        key = kb;
    }
    size_t idx = mt_lower(&r->ks, key, kn);
    static const mt_val absent = {0, 0, 0};
    const mt_val *state = r->state;
    int snap = -1;
    if (at_snap && r->nsnaps > 0) {
        snap = (int)mt_below(&r->rng, r->nsnaps);
        state = r->snaps[snap].state;
    }
    const mt_val *v = idx < r->ks.n && mt_cmp(r->ks.key[idx], r->ks.len[idx], key, kn) == 0
                          ? &state[idx]
                          : &absent;
    const talus_snapshot *s = snap >= 0 ? r->snaps[snap].s : NULL;
    void *val = NULL;
    size_t vn = 0;
    int rc;
    switch (mt_below(&r->rng, 4)) {
    case 0:
        r->opname = snap >= 0 ? "contains at snapshot" : "contains";
        rc = talus_contains(r->t, s, key, kn);
        check_read(r, key, kn, v, rc, NULL, 0, 1);
        return;
    case 1:
        r->opname = snap >= 0 ? "get_at snapshot seqno" : "get_at current seqno";
        rc = talus_get_at(r->t, snap >= 0 ? r->snaps[snap].seq : talus_seqno(r->db), key, kn, &val,
                          &vn);
        break;
    default:
        r->opname = snap >= 0 ? "get at snapshot" : "get";
        rc = talus_get(r->t, s, key, kn, &val, &vn);
        break;
    }
    check_read(r, key, kn, v, rc, val, vn, 0);
    talus_free(val);
}

static void do_first_last(struct mr_run *r)
{
    int last = mt_chance(&r->rng, 50);
    r->opname = last ? "last_key" : "first_key";
    mt_view v;
    mt_view_init(&v, &r->ks, r->state, NULL, 0, NULL, 0, NULL, 0);
    long pos = last ? mt_view_last(&v) : mt_view_first(&v);
    void *k = NULL;
    size_t kn = 0;
    int rc = last ? talus_last_key(r->t, &k, &kn) : talus_first_key(r->t, &k, &kn);
    if (pos < 0 && rc != TALUS_ENOTFOUND)
        mr_fail(r, "tree is empty, expected ENOTFOUND, got rc %d", rc);
    if (pos >= 0) {
        mr_check_rc(r, rc, r->opname);
        if (mt_cmp(k, kn, r->ks.key[pos], r->ks.len[pos]) != 0) {
            char got[160];
            snprintf(got, sizeof got, "%s", mt_hex(k, kn));
            mr_fail(r, "expected %s, got %s", mt_hex(r->ks.key[pos], r->ks.len[pos]), got);
        }
    }
    talus_free(k);
}

static void snap_take(struct mr_run *r)
{
    r->opname = "snapshot take";
    if (r->nsnaps == MR_MAX_SNAPS)
        return;
    struct mr_snap *s = &r->snaps[r->nsnaps];
    uint64_t now = talus_seqno(r->db);
    s->s = talus_snapshot_take(r->db);
    if (s->s == NULL)
        mr_fail(r, "talus_snapshot_take returned NULL: %s", talus_errmsg());
    s->seq = talus_snapshot_seqno(s->s);
    if (s->seq != now)
        mr_fail(r, "snapshot seqno %" PRIu64 ", talus_seqno %" PRIu64 " (no writer running)",
                s->seq, now);
    s->state = malloc(r->ks.n * sizeof *s->state);
    if (s->state == NULL)
        mr_fail(r, "out of memory");
    memcpy(s->state, r->state, r->ks.n * sizeof *s->state);
    r->nsnaps++;
}

static void snap_release(struct mr_run *r, int i)
{
    r->opname = "snapshot release";
    talus_snapshot_release(r->db, r->snaps[i].s);
    free(r->snaps[i].state);
    r->snaps[i] = r->snaps[--r->nsnaps];
}

static void db_open(struct mr_run *r)
{
    mr_check_rc(r, talus_open(r->dbdir, &r->opts, &r->db), "talus_open");
    r->t = talus_default_tree(r->db);
    if (r->t == NULL)
        mr_fail(r, "talus_default_tree returned NULL");
}

/* Add the engine's flush/compaction counters of this handle to the run's. */
static void add_engine_counters(struct mr_run *r)
{
    talus_tree_stats st;
    memset(&st, 0, sizeof st);
    mr_check_rc(r, talus_tree_stats_get(r->t, &st), "talus_tree_stats_get");
    r->eng_flushes += st.flushes;
    r->eng_compactions += st.compactions;
}

static void do_reopen(struct mr_run *r)
{
    r->opname = "close+reopen";
    r->n_reopen++;
    while (r->nsnaps > 0)
        snap_release(r, r->nsnaps - 1);
    uint64_t before = talus_seqno(r->db);
    add_engine_counters(r);
    mr_check_rc(r, talus_close(r->db), "talus_close");
    r->db = NULL;
    db_open(r);
    r->opname = "close+reopen";
    if (talus_seqno(r->db) < before)
        mr_fail(r, "seqno went backwards over reopen: %" PRIu64 " -> %" PRIu64, before,
                talus_seqno(r->db));
    mr_full_scan(r, -1);
}

static void do_compact(struct mr_run *r)
{
    r->opname = "compact_range";
    r->n_compact++;
    uint8_t lo[80], hi[80];
    size_t lon = 0, hin = 0;
    int has_lo = mt_chance(&r->rng, 50), has_hi = mt_chance(&r->rng, 50);
    if (has_lo)
        mr_target(r, lo, sizeof lo, &lon);
    if (has_hi)
        mr_target(r, hi, sizeof hi, &hin);
    if (has_lo && has_hi && mt_cmp(lo, lon, hi, hin) > 0)
        has_lo = 0;
    mr_check_rc(r, talus_compact_range(r->t, has_lo ? lo : NULL, lon, has_hi ? hi : NULL, hin),
                "talus_compact_range");
}

/* One random op. Weights are per 10,000. */
static void step(struct mr_run *r)
{
    unsigned p = (unsigned)mt_below(&r->rng, 10000);
    if (p < 3000)
        do_write(r, W_PUT);
    else if (p < 3600)
        do_write(r, W_DEL);
    else if (p < 4000)
        do_write(r, W_WEAK);
    else if (p < 4300)
        do_batch(r);
    else if (p < 6800)
        do_read(r, 0);
    else if (p < 7800)
        do_read(r, 1);
    else if (p < 9300) {
        r->opname = "iterator walk";
        mr_iter_walk(r);
    } else if (p < 9340) {
        int snap = r->nsnaps > 0 && mt_chance(&r->rng, 50) ? (int)mt_below(&r->rng, r->nsnaps) : -1;
        r->opname = snap >= 0 ? "full scan at snapshot" : "full scan";
        mr_full_scan(r, snap);
    } else if (p < 9600)
        do_first_last(r);
    else if (p < 9750)
        snap_take(r);
    else if (p < 9900) {
        if (r->nsnaps > 0)
            snap_release(r, (int)mt_below(&r->rng, r->nsnaps));
    } else if (p < 9950) {
        r->opname = "flush";
        r->n_flush++;
        mr_check_rc(r, talus_flush(r->t), "talus_flush");
    } else if (p < 9975) {
        do_compact(r);
    } else if (p < 9990) {
        r->opname = "wait_idle";
        mr_check_rc(r, talus_wait_idle(r->db), "talus_wait_idle");
    } else {
        do_reopen(r);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *f)
{
    return remove(path);
}

/* Small buffers and files so that a run flushes and compacts through
 * several levels; the rest varies with the seed. */
static void choose_options(struct mr_run *r)
{
    static const size_t blocks[] = {256, 1024, 4096};
    static const int restarts[] = {1, 4, 16};
    static const int comps[] = {TALUS_COMPRESS_NONE, TALUS_COMPRESS_LZ4, TALUS_COMPRESS_ZSTD};
    talus_options *o = &r->opts;
    talus_options_init(o);
    o->create_if_missing = 1;
    o->block_cache_size = 256 * 1024;
    o->tree.write_buffer_size = 64 * 1024;
    o->tree.target_file_size = 32 * 1024;
    o->tree.max_bytes_for_level_base = 128 * 1024;
    o->tree.level_size_multiplier = 4;
    o->tree.l0_compaction_trigger = 2 + (int)mt_below(&r->rng, 3);
    o->tree.block_size = blocks[mt_below(&r->rng, 3)];
    o->tree.block_restart_interval = restarts[mt_below(&r->rng, 3)];
    o->tree.compression = comps[mt_below(&r->rng, 3)];
    o->tree.bloom_bits_per_key = mt_chance(&r->rng, 75) ? 10 : 0;
    printf("model_test: options: block_size=%zu restart=%d compression=%d bloom=%d "
           "l0_trigger=%d\n",
           o->tree.block_size, o->tree.block_restart_interval, o->tree.compression,
           o->tree.bloom_bits_per_key, o->tree.l0_compaction_trigger);
}

static void print_summary(struct mr_run *r)
{
    talus_tree_stats st;
    memset(&st, 0, sizeof st);
    mr_check_rc(r, talus_tree_stats_get(r->t, &st), "talus_tree_stats_get");
    printf("model_test: %lu writes, %lu reads, %lu iterator steps, %lu reopens; engine: %" PRIu64
           " flushes, %" PRIu64 " compactions; tables per level now:",
           r->n_write, r->n_read, r->n_iter_steps, r->n_reopen, r->eng_flushes + st.flushes,
           r->eng_compactions + st.compactions);
    for (int i = 0; i < st.num_levels && i < 16; i++)
        printf(" %" PRIu64, st.levels[i].files);
    printf("\n");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: model_test [--seed N] [--ops N] [--dir D] [--keys N] [--keep]\n"
               "  --seed N  random seed (default: from the clock; always printed)\n"
               "  --ops N   number of random ops (default 200000)\n"
               "  --dir D   make the scratch database under D (default $TMPDIR or /tmp)\n"
               "  --keys N  size of the key space (default 2000)\n"
               "  --keep    keep the database directory after a successful run\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"seed", required_argument, NULL, 's'},
        {"ops", required_argument, NULL, 'n'},
        {"dir", required_argument, NULL, 'd'},
        {"keys", required_argument, NULL, 'k'},
        {"keep", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static struct mr_run run;
    struct mr_run *r = &run;
    const char *parent = getenv("TMPDIR");
    size_t nkeys = 2000;
    int have_seed = 0, opt;
    r->nops = 200000;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case 's':
            r->seed = strtoull(optarg, NULL, 0);
            have_seed = 1;
            break;
        case 'n':
            r->nops = strtoul(optarg, NULL, 0);
            break;
        case 'd':
            parent = optarg;
            break;
        case 'k':
            nkeys = strtoul(optarg, NULL, 0);
            break;
        case 'K':
            keep_dir = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r->seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
    }
    printf("model_test: seed=%" PRIu64 "\n", r->seed);
    fflush(stdout);
    if (nkeys < 1)
        nkeys = 1;
    r->rng.s = r->seed;
    if (parent == NULL || parent[0] == '\0')
        parent = "/tmp";
    mkdir(parent, 0777);
    size_t dl = strlen(parent) + 32;
    r->dbdir = malloc(dl);
    if (r->dbdir != NULL)
        snprintf(r->dbdir, dl, "%s/talus-model-XXXXXX", parent);
    if (r->dbdir == NULL || mkdtemp(r->dbdir) == NULL) {
        fprintf(stderr, "model_test: cannot make a directory under %s\n", parent);
        return 2;
    }
    r->opname = "setup";
    if (mt_keys_make(&r->ks, &r->rng, nkeys, 64) != 0)
        mr_fail(r, "out of memory");
    r->state = calloc(r->ks.n, sizeof *r->state);
    r->scratch_state = calloc(r->ks.n, sizeof *r->state);
    if (r->state == NULL || r->scratch_state == NULL)
        mr_fail(r, "out of memory");
    choose_options(r);
    fflush(stdout);
    db_open(r);
    mr_check_rc(r, talus_batch_new(&r->batch), "talus_batch_new");
    for (r->op = 0; r->op < r->nops; r->op++)
        step(r);
    r->opname = "final check";
    mr_full_scan(r, -1);
    print_summary(r);
    talus_batch_free(r->batch);
    do_reopen(r); /* also checks everything survived */
    r->opname = "final close";
    mr_check_rc(r, talus_close(r->db), "talus_close");
    if (!keep_dir)
        nftw(r->dbdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        printf("model_test: database kept in %s\n", r->dbdir);
    printf("model_test: %lu ops ok\n", r->nops);
    printf("1 passed, 0 failed\n");
    mt_keys_free(&r->ks);
    free(r->state);
    free(r->scratch_state);
    free(r->dbdir);
    return 0;
}
