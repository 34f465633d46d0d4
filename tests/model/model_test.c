/*
 * model_test.c - randomized model-based test of the engine through talus.h
 * (plus db_crash_close, the engine's simulated crash).
 *
 *   model_test [--seed N] [--ops N] [--dir D] [--keys N] [--trees N] [--keep]
 *              [--real-sync]
 *
 * Runs a long random sequence of operations over 2-4 trees against a
 * reference model (model.h): puts, deletes, weak deletes, atomic batches of
 * 1-8 writes across trees (a key may repeat: the last write wins) with a
 * random durability each (none, buffered, sync), gets, contains, get_at,
 * iterator walks (bounds, prefixes, seeks, direction switches), first/last
 * key, in-memory snapshots, persistent snapshots (pinned seqnos, read with
 * talus_get_at and through talus_snapshot_at, across reopens and crashes),
 * reads that must be refused (TALUS_ESNAPSHOT), a custom seqno generator
 * (and one that goes backwards: TALUS_ESEQNO), flushes, range compactions,
 * clean close+reopen and simulated crashes (model_crash.c explains what a
 * crash may lose and how the model finds out). Tiny write buffers and target
 * file sizes make flushes and multi-level compactions happen all the time.
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
#include "util/env.h"

static int keep_dir;
static int trees_arg; /* --trees: 0 = from the seed */
static int real_sync; /* --real-sync: the POSIX env, not model_env.c's */

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
            " --ops %lu --keys %zu%s%s%s\n",
            r->seed, r->seed, r->nops, r->ks.n, trees_arg ? " --trees N (as given)" : "",
            real_sync ? " --real-sync" : "", r->pin_durable_only ? " --pin-durable-only" : "");
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
size_t mr_pick_key(struct mr_run *r)
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

int mr_pick_tree(struct mr_run *r)
{
    return (int)mt_below(&r->rng, (uint64_t)r->ntrees);
}

const char *mr_dur_name(int durability)
{
    return durability == TALUS_DURABILITY_NONE       ? "none"
           : durability == TALUS_DURABILITY_BUFFERED ? "buffered"
           : durability == TALUS_DURABILITY_SYNC     ? "sync"
                                                     : "?";
}

/* One random op. Weights are per 10,000. */
static void step(struct mr_run *r)
{
    unsigned p = (unsigned)mt_below(&r->rng, 10000);
    if (p < 2700)
        mr_do_write(r, MR_PUT);
    else if (p < 3200)
        mr_do_write(r, MR_DEL);
    else if (p < 3550)
        mr_do_write(r, MR_WEAK);
    else if (p < 4050)
        mr_do_batch(r);
    else if (p < 6150)
        mr_do_read(r, 0);
    else if (p < 6750)
        mr_do_read(r, 1);
    else if (p < 7350)
        mr_do_read(r, 2);
    else if (p < 8850)
        mr_iter_walk(r);
    else if (p < 8890) {
        int t = mr_pick_tree(r);
        int snap = r->nsnaps > 0 && mt_chance(&r->rng, 40) ? (int)mt_below(&r->rng, r->nsnaps) : -1;
        int pin = snap < 0 && r->npins > 0 && mt_chance(&r->rng, 40)
                      ? (int)mt_below(&r->rng, r->npins)
                      : -1;
        r->opname = snap >= 0  ? "full scan at snapshot"
                    : pin >= 0 ? "full scan at a pinned seqno"
                               : "full scan";
        mr_full_scan(r, t, snap, pin);
    } else if (p < 9090)
        mr_do_first_last(r);
    else if (p < 9240)
        mr_snap_take(r);
    else if (p < 9370) {
        if (r->nsnaps > 0)
            mr_snap_release(r, (int)mt_below(&r->rng, r->nsnaps));
    } else if (p < 9490)
        mr_do_pin(r);
    else if (p < 9570)
        mr_do_unpin(r);
    else if (p < 9590)
        mr_check_refusals(r, 0);
    else if (p < 9610)
        mr_do_seqno_failure(r);
    else if (p < 9760)
        mr_do_flush(r);
    else if (p < 9810)
        mr_do_compact(r);
    else if (p < 9820) {
        r->opname = "wait_idle";
        mr_check_rc(r, talus_wait_idle(r->db), "talus_wait_idle");
    } else if (p < 9830) {
        r->opname = "db_sync";
        mr_check_rc(r, talus_db_sync(r->db), "talus_db_sync");
    } else if (p < 9836)
        mr_do_reopen(r);
    else if (p < 9846)
        mr_do_crash(r);
    else
        mr_do_read(r, 0);
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *f)
{
    return remove(path);
}

/* A seqno generator with gaps (as a clock would have), deterministic in
 * `last`; returns `last` once when the test asks for a failure. */
static uint64_t gen_seqno(void *ctx, uint64_t last)
{
    struct mr_run *r = ctx;
    if (r->gen_fail_next) {
        r->gen_fail_next = 0;
        return last;
    }
    uint64_t x = (last + 1) * 0x9e3779b97f4a7c15ull;
    return last + 1 + (x >> 62);
}

static void vary_tree_options(struct mr_run *r, talus_tree_options *o)
{
    static const size_t blocks[] = {256, 1024, 4096};
    static const int restarts[] = {1, 4, 16};
    static const int comps[] = {TALUS_COMPRESS_NONE, TALUS_COMPRESS_LZ4, TALUS_COMPRESS_ZSTD};
    o->write_buffer_size = 64 * 1024;
    o->target_file_size = 32 * 1024;
    o->max_bytes_for_level_base = 128 * 1024;
    o->level_size_multiplier = 4;
    o->l0_compaction_trigger = 2 + (int)mt_below(&r->rng, 3);
    o->block_size = blocks[mt_below(&r->rng, 3)];
    o->block_restart_interval = restarts[mt_below(&r->rng, 3)];
    o->compression = comps[mt_below(&r->rng, 3)];
    o->bloom_bits_per_key = mt_chance(&r->rng, 75) ? 10 : 0;
    /* Some trees keep their largest values (about 3% of puts) in blob files. */
    o->min_blob_size = mt_chance(&r->rng, 35) ? 1400 + mt_below(&r->rng, 500) : 0;
}

/* Small buffers and files so that a run flushes and compacts through
 * several levels; the rest varies with the seed. */
static void choose_options(struct mr_run *r)
{
    talus_options *o = &r->opts;
    talus_options_init(o);
    o->create_if_missing = 1;
    o->block_cache_size = 256 * 1024;
    vary_tree_options(r, &o->tree);
    r->topts[0] = o->tree;
    for (int i = 1; i < r->ntrees; i++) {
        talus_tree_options_init(&r->topts[i]);
        vary_tree_options(r, &r->topts[i]);
    }
    o->durability = mt_chance(&r->rng, 70) ? TALUS_DURABILITY_BUFFERED : TALUS_DURABILITY_NONE;
    if (mt_chance(&r->rng, 50)) {
        o->seqno_generator = gen_seqno;
        o->seqno_ctx = r;
    }
    o->journal_segment_size = (uint64_t)(16 + mt_below(&r->rng, 240)) * 1024;
    o->max_journal_size = o->journal_segment_size * (2 + mt_below(&r->rng, 8));
    printf("model_test: options: trees=%d durability=%s seqno_generator=%s journal_segment=%" PRIu64
           " max_journal=%" PRIu64 "\n",
           r->ntrees, mr_dur_name(o->durability), o->seqno_generator ? "gaps" : "counter",
           o->journal_segment_size, o->max_journal_size);
    for (int i = 0; i < r->ntrees; i++)
        printf("model_test: tree %d: block_size=%zu restart=%d compression=%d bloom=%d "
               "l0_trigger=%d\n",
               i, r->topts[i].block_size, r->topts[i].block_restart_interval,
               r->topts[i].compression, r->topts[i].bloom_bits_per_key,
               r->topts[i].l0_compaction_trigger);
}

/* Trees are created, listed, dropped and recreated empty. */
static void check_tree_drop(struct mr_run *r)
{
    r->opname = "tree drop";
    talus_tree *s = NULL;
    mr_check_rc(r, talus_tree_open(r->db, "scratch", 1, NULL, &s), "talus_tree_open(scratch)");
    mr_check_rc(r, talus_put(s, "k", 1, "v", 1), "talus_put(scratch)");
    mr_check_rc(r, talus_tree_drop(r->db, "scratch"), "talus_tree_drop(scratch)");
    int rc = talus_tree_open(r->db, "scratch", 0, NULL, &s);
    if (rc != TALUS_ENOTFOUND)
        mr_fail(r,
                "talus_tree_open of a dropped tree without create returned %d, expected "
                "TALUS_ENOTFOUND",
                rc);
    if (talus_tree_drop(r->db, "default") == 0)
        mr_fail(r, "talus_tree_drop(default) succeeded");
    mr_check_rc(r, talus_tree_open(r->db, "scratch", 1, NULL, &s), "talus_tree_open(scratch)");
    void *v = NULL;
    size_t vn = 0;
    rc = talus_get(s, NULL, "k", 1, &v, &vn);
    talus_free(v);
    if (rc != TALUS_ENOTFOUND)
        mr_fail(r, "a recreated tree still has the key of the dropped one (rc %d)", rc);
    mr_check_rc(r, talus_tree_drop(r->db, "scratch"), "talus_tree_drop(scratch)");
}

static void print_summary(struct mr_run *r)
{
    talus_tree_stats st;
    uint64_t fl = r->eng_flushes, co = r->eng_compactions;
    for (int t = 0; t < r->ntrees; t++) {
        memset(&st, 0, sizeof st);
        mr_check_rc(r, talus_tree_stats_get(r->t[t], &st), "talus_tree_stats_get");
        fl += st.flushes;
        co += st.compactions;
    }
    printf("model_test: %lu writes (%lu batches), %lu reads (%lu at pinned seqnos), %lu iterator "
           "steps, %lu pins, %lu reopens, %lu crashes (%lu uncertain batches lost, %lu kept); "
           "engine: %" PRIu64 " flushes, %" PRIu64 " compactions; tree 0 tables per level now:",
           r->n_write, r->n_batch, r->n_read, r->n_pinned_read, r->n_iter_steps, r->n_pin,
           r->n_reopen, r->n_crash, r->n_lost, r->n_kept, fl, co);
    memset(&st, 0, sizeof st);
    mr_check_rc(r, talus_tree_stats_get(r->t[0], &st), "talus_tree_stats_get");
    for (int i = 0; i < st.num_levels && i < 16; i++)
        printf(" %" PRIu64, st.levels[i].files);
    printf("\n");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: model_test [--seed N] [--ops N] [--dir D] [--keys N] [--trees N] [--keep]\n"
               "                  [--real-sync]\n"
               "  --seed N   random seed (default: from the clock; always printed)\n"
               "  --ops N    number of random ops (default 200000)\n"
               "  --dir D    make the scratch database under D (default $TMPDIR or /tmp)\n"
               "  --keys N   size of the key space of each tree (default 2000)\n"
               "  --trees N  number of trees, 1-4 (default: 2-4 from the seed)\n"
               "  --keep     keep the database directory after a successful run\n"
               "  --real-sync  really fsync (default: syncs are no-ops, see model_env.c)\n"
               "  --pin-durable-only  pin only seqnos of batches sure to survive a crash\n"
               "             (avoids the recovered seqno going below a pin)\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"seed", required_argument, NULL, 's'},  {"ops", required_argument, NULL, 'n'},
        {"dir", required_argument, NULL, 'd'},   {"keys", required_argument, NULL, 'k'},
        {"trees", required_argument, NULL, 't'}, {"keep", no_argument, NULL, 'K'},
        {"real-sync", no_argument, NULL, 'S'},   {"pin-durable-only", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
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
        case 't':
            trees_arg = atoi(optarg);
            if (trees_arg < 1 || trees_arg > MR_MAX_TREES) {
                usage(stderr);
                return 2;
            }
            break;
        case 'K':
            keep_dir = 1;
            break;
        case 'S':
            real_sync = 1;
            break;
        case 'P':
            r->pin_durable_only = 1;
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
        r->seed = ((uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid()) %
                  1000000000u; /* short enough to type */
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
    r->ntrees = trees_arg ? trees_arg : 2 + (int)mt_below(&r->rng, 3);
    r->nstate = (size_t)r->ntrees * r->ks.n;
    r->state = calloc(r->nstate, sizeof *r->state);
    r->base_state = calloc(r->nstate, sizeof *r->state);
    r->scratch_state = calloc(r->ks.n, sizeof *r->state);
    r->obs = calloc(MR_POINTS * r->nstate, sizeof *r->obs);
    r->explained = calloc(MR_POINTS, r->nstate);
    if (!r->state || !r->base_state || !r->scratch_state || !r->obs || !r->explained)
        mr_fail(r, "out of memory");
    choose_options(r);
    r->env = real_sync ? tl_env_posix() : mr_nosync_env();
    fflush(stdout);
    mr_db_open(r);
    check_tree_drop(r);
    mr_check_rc(r, talus_batch_new(&r->batch), "talus_batch_new");
    for (r->op = 0; r->op < r->nops; r->op++)
        step(r);
    r->opname = "final check";
    mr_full_scan_all(r);
    print_summary(r);
    talus_batch_free(r->batch);
    mr_do_reopen(r); /* also checks everything survived */
    while (r->npins > 0) {
        r->opname = "final unpin";
        mr_check_rc(r, talus_snapshot_unpin(r->db, r->pins[r->npins - 1].seq),
                    "talus_snapshot_unpin");
        free(r->pins[--r->npins].state);
    }
    mr_check_pin_list(r);
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
    free(r->base_state);
    free(r->scratch_state);
    free(r->obs);
    free(r->explained);
    free(r->hist);
    free(r->dbdir);
    return 0;
}
