/*
 * fault_test.c - I/O errors at every point: the Nth write, sync, rename or
 * open of a deterministic workload fails, and the database must report it
 * clearly and come back whole on the next open.
 *
 *   fault_test [--seed S] [--dir D] [--max-per-kind M] [--kind K --nth N]
 *              [--batches B] [--keep]
 *
 * The workload (the same in every run of one seed): open a new database
 * through the fault env (tl_fault_env over POSIX), create trees "a" and "b",
 * commit the first half of B batches (default 160, see crash_util.h) with
 * sync durability, crash (db_crash_close), reopen through the fault env (so
 * journal replay and the recovery flush run under faults too), commit the
 * second half, then end. Tiny buffers, tables and journal segments make
 * memtable flushes, compactions, journal rotations and manifest updates
 * happen throughout, plus talus_flush and talus_compact_range calls.
 *
 * A fault-free reference run counts the operations of each kind
 * (tl_fault_env_count). Then for each kind (write, sync, rename, open) and
 * N = 1, 2, ... up to that count (all of them up to M = 80 per kind,
 * otherwise the first 15 and a seeded sample of the rest) the workload runs
 * again with the Nth operation of that kind failing (TALUS_EIO, once):
 *  - every failing call must return a negative TALUS_E* code with a
 *    non-empty talus_errmsg();
 *  - after the first error only reads follow (the db may be read-only):
 *    every batch acknowledged so far must still read back correctly, and
 *    one more commit must either succeed (then it counts as acknowledged)
 *    or fail clearly;
 *  - the run ends, by N mod 3, with talus_close, a crash (db_crash_close),
 *    or a crash followed by power loss (tl_fault_env_drop_unsynced);
 *  - the database is reopened with the plain POSIX env: it must open, and
 *    every acknowledged batch must be there whole, no batch in part,
 *    nothing never written, scans consistent (cr_verify); then it is
 *    closed, reopened and checked once more.
 * --kind/--nth run one case (to replay a failure).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_util.h"
#include "db/db_internal.h"
#include "util/env.h"

#define MIN_FILLER 100
#define MAX_FILLER 500
#define NKINDS 4

static const tl_fault_kind kinds[NKINDS] = {TL_FAULT_WRITE, TL_FAULT_SYNC, TL_FAULT_RENAME,
                                            TL_FAULT_OPEN};
static const char *const kind_names[NKINDS] = {"write", "sync", "rename", "open"};
static const char *const end_names[3] = {"close", "crash", "crash+power loss"};

static uint64_t seed;
static unsigned max_per_kind = 80;
static unsigned nbatches = 160;
static int only_kind = -1;
static uint64_t only_nth;
static const char *parent_dir;
static bool keep;
static char dir[4096];

typedef struct run_result {
    bool surfaced;  /* some call returned an error */
    bool fired;     /* the armed operation happened */
    bool reopen_ok; /* the database opened again */
    uint64_t acked;
    cr_report rep;
} run_result;

typedef struct totals {
    unsigned runs, surfaced, silent, not_fired, failed;
} totals;

static void db_options(talus_options *o)
{
    talus_options_init(o);
    o->block_cache_size = 256u << 10;
    o->background_threads = 1;
    o->tree.write_buffer_size = 32u << 10;
    o->tree.min_blob_size = 450; /* blob writes meet the injected faults too */
    o->tree.target_file_size = 32u << 10;
    o->tree.max_bytes_for_level_base = 128u << 10;
    o->tree.level_size_multiplier = 4;
    o->tree.l0_compaction_trigger = 2;
    o->journal_segment_size = 32u << 10;
    o->max_journal_size = 128u << 10;
}

/* ---- One run of the workload ---------------------------------------------- */

typedef struct wl {
    const char *label; /* "write #17" for messages */
    talus_db *db;
    talus_tree *ta, *tb;
    cr_model *m;
    uint64_t *acked;
    size_t nacked;
    bool failed_once; /* an API call failed: reads only from now on */
    int problems;
    run_result *res;
} wl;

static void wl_problem(wl *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void wl_problem(wl *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("fault_test: FAIL [%s, seed=%" PRIu64 "]: ", w->label, seed);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    w->problems++;
}

/* A call returned rc: check that an error is a clear one. Returns rc. */
static int wl_check(wl *w, const char *what, int rc)
{
    if (rc >= 0)
        return rc;
    w->res->surfaced = true;
    w->failed_once = true;
    const char *msg = talus_errmsg();
    if (rc < TALUS_ECLOSED || !msg || !*msg)
        wl_problem(w, "%s failed with %d (%s) and message \"%s\": not a clear error", what, rc,
                   talus_strerror(rc), msg ? msg : "(null)");
    return rc;
}

static int commit_one(wl *w, talus_batch *b, uint64_t id, uint64_t *s)
{
    uint64_t victim = 0;
    if (cr_is_deleter(seed, id) && w->nacked) {
        /* Victims: acknowledged in this run, not deleters, not yet deleted
         * by an acknowledged deleter (a second delete would be harmless). */
        uint64_t c = w->acked[cr_rnd(s) % w->nacked];
        if (!cr_is_deleter(seed, c) && cr_model_get(w->m, c) == CR_MUST)
            victim = c;
    }
    /* Building a batch does I/O too: a value of min_blob_size or more is
     * written to its blob file by talus_batch_put. */
    int rc = wl_check(w, "talus_batch_put",
                      cr_batch_fill(b, w->ta, w->tb, seed, id, victim, MIN_FILLER, MAX_FILLER));
    if (rc < 0)
        return rc;
    cr_model_set(w->m, id, CR_MAY);
    rc = wl_check(w, "talus_batch_commit",
                  talus_batch_commit(w->db, b, TALUS_DURABILITY_SYNC, NULL));
    if (rc == 0) {
        cr_model_set(w->m, id, CR_MUST);
        w->acked[w->nacked++] = id;
        w->res->acked++;
    }
    return rc;
}

/* After an error: everything acknowledged still reads back. */
static void read_back(wl *w)
{
    if (!w->ta || !w->tb)
        return;
    for (size_t i = 0; i < w->nacked; i++) {
        for (int k = 0; k < CR_KEYS; k++) {
            char key[CR_KEY_MAX];
            size_t kl = cr_key(w->acked[i], k, key);
            void *v = NULL;
            size_t vl = 0;
            int rc = talus_get(k == 2 ? w->tb : w->ta, NULL, key, kl, &v, &vl);
            /* A later acknowledged deleter may have removed it. */
            if (rc < 0 && rc != TALUS_ENOTFOUND)
                wl_problem(w, "after the fault, get(%s) of an acknowledged batch failed: %s: %s",
                           key, talus_strerror(rc), talus_errmsg());
            else if (rc == 0 && !cr_value_check(seed, w->acked[i], k, v, vl))
                wl_problem(w, "after the fault, get(%s) returned a bad value", key);
            talus_free(v);
        }
    }
}

/* Runs of id..last with flushes and compactions at fixed points. */
static void commit_range(wl *w, talus_batch *b, uint64_t *id, uint64_t last, uint64_t *s)
{
    for (; *id <= last && !w->failed_once; ++*id) {
        if (commit_one(w, b, *id, s) < 0)
            return;
        if (*id == nbatches / 3)
            wl_check(w, "talus_flush", talus_flush(w->ta));
        else if (*id == nbatches / 2 - 2)
            wl_check(w, "talus_compact_range", talus_compact_range(w->ta, NULL, 0, NULL, 0));
        else if (*id == 2 * nbatches / 3)
            wl_check(w, "talus_flush", talus_flush(w->tb));
        else if (*id == 5 * nbatches / 6)
            wl_check(w, "talus_compact_range", talus_compact_range(w->tb, "b", 1, NULL, 0));
    }
}

/* Two phases: a new database gets the first half of the batches and
 * crashes (db_crash_close, no power loss); the reopen replays the journal
 * (so faults hit recovery too) and the second half follows. */
static void workload(wl *w, tl_env *env, int end_mode, tl_fault_env *fe)
{
    talus_options o;
    db_options(&o);
    char dbpath[4200];
    snprintf(dbpath, sizeof dbpath, "%s/db", dir);
    talus_batch *b = NULL;
    if (talus_batch_new(&b) < 0) {
        wl_problem(w, "talus_batch_new failed");
        return;
    }
    uint64_t s = cr_mix(seed, 77), id = 1;
    for (int phase = 0; phase < 2 && !w->failed_once; phase++) {
        if (phase == 1) {
            db_crash_close(w->db);
            w->db = NULL;
            w->ta = w->tb = NULL;
        }
        if (wl_check(w, "db_open_env", db_open_env(dbpath, &o, env, &w->db)) < 0) {
            w->db = NULL;
            break;
        }
        int rc = cr_open_trees(w->db, phase == 0, &w->ta, &w->tb);
        if (rc == TALUS_ENOTFOUND && phase == 1)
            wl_problem(w, "trees a/b created before the crash are missing after it");
        if (wl_check(w, "talus_tree_open", rc) < 0) {
            w->ta = w->tb = NULL;
            break;
        }
        commit_range(w, b, &id, phase == 0 ? nbatches / 2 : nbatches, &s);
    }
    if (w->failed_once && w->ta) {
        read_back(w);
        /* One more write: it may work (then it is acknowledged) or fail. */
        commit_one(w, b, nbatches + 1, &s);
    }
    talus_batch_free(b);
    if (!w->db)
        return;
    if (end_mode == 0) {
        wl_check(w, "talus_close", talus_close(w->db));
    } else {
        db_crash_close(w->db);
        if (end_mode == 2) {
            tl_fault_env_disarm(fe);
            int rc = tl_fault_env_drop_unsynced(fe);
            if (rc < 0)
                wl_problem(w, "tl_fault_env_drop_unsynced: %s", talus_errmsg());
        }
    }
    w->db = NULL;
}

/* Reopen with POSIX and check against the model, twice. */
static void reopen_check(wl *w)
{
    talus_options o;
    db_options(&o);
    char dbpath[4200];
    snprintf(dbpath, sizeof dbpath, "%s/db", dir);
    for (int pass = 0; pass < 2; pass++) {
        talus_db *db = NULL;
        int rc = talus_open(dbpath, &o, &db);
        if (rc < 0) {
            if (w->m->max_id == 0 && rc == TALUS_ENOTFOUND)
                return; /* the fault stopped the very first open */
            wl_problem(w, "the database does not open after the fault%s: %s: %s",
                       pass ? " and a clean reopen" : "", talus_strerror(rc), talus_errmsg());
            return;
        }
        w->res->reopen_ok = true;
        bool any_must = false;
        for (uint64_t id = 1; id <= w->m->max_id && !any_must; id++)
            any_must = cr_model_get(w->m, id) == CR_MUST;
        talus_tree *ta, *tb;
        rc = cr_open_trees(db, !any_must, &ta, &tb);
        if (rc < 0) {
            wl_problem(w, "trees a/b do not open after the fault: %s: %s", talus_strerror(rc),
                       talus_errmsg());
        } else {
            char err[4096];
            if (cr_verify(ta, tb, seed, w->m, &w->res->rep, err, sizeof err) < 0)
                wl_problem(w, "the database is wrong after the fault%s:\n%s",
                           pass ? " and a clean reopen" : "", err);
        }
        rc = talus_close(db);
        if (rc < 0)
            wl_problem(w, "talus_close after the fault: %s: %s", talus_strerror(rc),
                       talus_errmsg());
        if (w->problems)
            return;
    }
}

/* One run; kind < 0: the fault-free reference (fills counts). */
static int run(int kind, uint64_t nth, uint64_t counts[NKINDS], run_result *res)
{
    char label[64];
    int end_mode = kind < 0 ? 0 : (int)(nth % 3);
    if (kind < 0)
        snprintf(label, sizeof label, "reference run");
    else
        snprintf(label, sizeof label, "--kind %s --nth %" PRIu64 ", then %s", kind_names[kind], nth,
                 end_names[end_mode]);
    char what[160];
    snprintf(what, sizeof what, "fault_test %s (seed=%" PRIu64 ")", label, seed);
    cr_watchdog(60, what);
    memset(res, 0, sizeof *res);
    cr_model m = {0};
    wl w = {.label = label, .m = &m, .res = res};
    w.acked = calloc(nbatches + 2, sizeof *w.acked);
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    char dbpath[4200];
    snprintf(dbpath, sizeof dbpath, "%s/db", dir);
    cr_rmtree(dbpath);
    if (!w.acked || !fe) {
        printf("fault_test: out of memory\n");
        exit(1);
    }
    if (kind >= 0)
        tl_fault_env_arm(fe, kinds[kind], nth, TALUS_EIO, false);
    workload(&w, tl_fault_env_env(fe), end_mode, fe);
    for (int k = 0; k < NKINDS; k++)
        if (counts && kind < 0)
            counts[k] = tl_fault_env_count(fe, kinds[k]);
    res->fired = kind < 0 || tl_fault_env_count(fe, kinds[kind]) >= nth;
    tl_fault_env_free(fe);
    if (kind < 0 && res->surfaced)
        wl_problem(&w, "the fault-free run failed");
    if (!w.problems)
        reopen_check(&w);
    cr_model_free(&m);
    free(w.acked);
    cr_watchdog(0, "");
    return w.problems ? -1 : 0;
}

/* The Ns to try for an operation count c. */
static size_t pick_ns(uint64_t c, uint64_t *out, unsigned kind)
{
    size_t n = 0;
    if (c <= max_per_kind) {
        for (uint64_t i = 1; i <= c; i++)
            out[n++] = i;
        return n;
    }
    unsigned first = max_per_kind < 15 ? max_per_kind : 15;
    for (uint64_t i = 1; i <= first; i++)
        out[n++] = i;
    unsigned rest = max_per_kind - first;
    uint64_t s = cr_mix(seed, kind + 1000);
    for (unsigned i = 0; i < rest; i++) {
        /* One N from each of `rest` equal slices of (first, c]. */
        uint64_t lo = first + 1 + (c - first) * i / rest;
        uint64_t hi = first + (c - first) * (i + 1) / rest;
        out[n++] = cr_range(&s, lo, hi < lo ? lo : hi);
    }
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: fault_test [--seed S] [--dir D] [--max-per-kind M] [--batches B]\n"
                    "                  [--kind write|sync|rename|open --nth N] [--keep]\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option lo[] = {
        {"seed", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'd'},
        {"max-per-kind", required_argument, NULL, 'm'},
        {"kind", required_argument, NULL, 'k'},
        {"nth", required_argument, NULL, 'n'},
        {"batches", required_argument, NULL, 'b'},
        {"keep", no_argument, NULL, 'K'},
        {NULL, 0, NULL, 0},
    };
    bool have_seed = false, have_max = false;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            seed = strtoull(optarg, NULL, 10);
            have_seed = true;
            break;
        case 'd':
            parent_dir = optarg;
            break;
        case 'm':
            max_per_kind = (unsigned)strtoul(optarg, NULL, 10);
            have_max = true;
            break;
        case 'b':
            nbatches = (unsigned)strtoul(optarg, NULL, 10);
            if (nbatches < 12)
                usage();
            break;
        case 'k':
            for (int k = 0; k < NKINDS; k++)
                if (!strcmp(optarg, kind_names[k]))
                    only_kind = k;
            if (only_kind < 0)
                usage();
            break;
        case 'n':
            only_nth = strtoull(optarg, NULL, 10);
            break;
        case 'K':
            keep = true;
            break;
        default:
            usage();
        }
    }
    if (optind != argc || (only_kind >= 0) != (only_nth > 0) || max_per_kind == 0)
        usage();
    if (!have_seed)
        seed = cr_clock_seed();
    if (!have_max)
        max_per_kind = cr_scaled(max_per_kind, 8);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    printf("fault_test: seed=%" PRIu64 "\n", seed);
    fflush(stdout);
    if (cr_make_tmpdir(parent_dir, "talus-fault", dir, sizeof dir) < 0)
        return 1;
    uint64_t start = cr_now_ms();
    uint64_t counts[NKINDS];
    run_result res;
    totals tot[NKINDS] = {0};
    int failed = 0;
    if (run(-1, 0, counts, &res) < 0) {
        failed = 1;
    } else if (only_kind >= 0) {
        failed = run(only_kind, only_nth, NULL, &res) < 0;
        printf("fault_test: %s #%" PRIu64 ": %s, %" PRIu64 " batches acknowledged, %s\n",
               kind_names[only_kind], only_nth, res.fired ? "fault fired" : "never reached",
               res.acked, res.surfaced ? "error reported" : "no error reported");
    } else {
        printf("fault_test: reference run: %" PRIu64 " batches; %" PRIu64 " writes, %" PRIu64
               " syncs, %" PRIu64 " renames, %" PRIu64 " opens\n",
               res.acked, counts[0], counts[1], counts[2], counts[3]);
        fflush(stdout);
        uint64_t *ns = malloc((max_per_kind + 16) * sizeof *ns);
        for (int k = 0; k < NKINDS && ns; k++) {
            size_t n = pick_ns(counts[k], ns, (unsigned)k);
            for (size_t i = 0; i < n; i++) {
                tot[k].runs++;
                if (run(k, ns[i], NULL, &res) < 0) {
                    tot[k].failed++;
                    failed = 1;
                }
                tot[k].surfaced += res.surfaced;
                if (res.fired && !res.surfaced) {
                    tot[k].silent++;
                    printf("fault_test: note: %s #%" PRIu64 " fired but no call reported an "
                           "error\n",
                           kind_names[k], ns[i]);
                }
                tot[k].not_fired += !res.fired;
            }
            printf("fault_test: %-6s faults: %u runs (of %" PRIu64 " operations), %u reported an "
                   "error, %u passed unnoticed, %u never reached; %u failed\n",
                   kind_names[k], tot[k].runs, counts[k], tot[k].surfaced, tot[k].silent,
                   tot[k].not_fired, tot[k].failed);
            fflush(stdout);
        }
        free(ns);
    }
    printf("fault_test: %.1f s\n", (cr_now_ms() - start) / 1000.0);
    if (failed)
        printf("fault_test: replay one case with: fault_test --seed %" PRIu64
               " --kind K --nth N (see the FAIL lines)\n",
               seed);
    if (failed || keep)
        printf("fault_test: last database kept in %s/db\n", dir);
    else
        cr_rmtree(dir);
    printf("%s\n", failed ? "0 passed, 1 failed" : "1 passed, 0 failed");
    return failed ? 1 : 0;
}
