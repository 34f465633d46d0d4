/*
 * powerloss_test.c - power loss, simulated in-process with the
 * fault-injecting env: whatever was not fdatasync'ed (file data) or made
 * durable by a directory sync (creates, renames, removes) is dropped.
 *
 *   powerloss_test [--rounds N] [--seed S] [--dir D] [--keep] [--no-none]
 *
 * Each round opens the database through the fault env (db_open_env), checks
 * it against the model (crash_util.h), commits a random number of batches
 * with a random mix of durabilities (sync, buffered, none), with
 * talus_db_sync, talus_flush and talus_compact_range calls in between, and
 * small buffers so that flushes, compactions and journal rotations happen.
 * Then it crashes (db_crash_close: nothing flushed or synced) and drops
 * what was not durable (tl_fault_env_drop_unsynced). Some rounds write
 * nothing, so recovery itself is interrupted by the next power loss; every
 * fifth round also checks the database once through the plain POSIX env.
 *
 * What must survive: the journal is one sequence of records appended in
 * commit order, so when a sync batch returns or talus_db_sync returns 0,
 * every journaled (sync or buffered) batch committed before it is durable
 * and is required from then on. Batches never covered by a sync may be
 * present or absent, but never in part; batch ids never written must not
 * appear. Batches with durability none are never required; --no-none
 * leaves them out (they are in by default: a batch is atomic whatever its
 * durability, see DESIGN.md section 5).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_util.h"
#include "db/db_internal.h"
#include "util/env.h"

#define MIN_FILLER 50
#define MAX_FILLER 700

static uint64_t seed;
static unsigned rounds = 40;
static const char *parent_dir;
static bool keep, no_none;
static char dbpath[4200];

typedef struct stats {
    uint64_t batches[3]; /* by durability */
    uint64_t db_syncs, flushes, compactions, empty_rounds, posix_checks;
    cr_report sum;
} stats;

static void db_options(talus_options *o)
{
    talus_options_init(o);
    o->block_cache_size = 1u << 20;
    o->background_threads = 2;
    o->tree.write_buffer_size = 128u << 10;
    o->tree.min_blob_size = 600; /* about one value in seven goes to a blob file */
    o->tree.target_file_size = 128u << 10;
    o->tree.max_bytes_for_level_base = 512u << 10;
    o->tree.level_size_multiplier = 4;
    o->journal_segment_size = 256u << 10;
    o->max_journal_size = 1u << 20;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "powerloss_test: %s failed: %s: %s\n", what, talus_strerror(rc),
            talus_errmsg());
    return -1;
}

/* Open trees and check the database against the model. */
static int check(talus_db *db, cr_model *m, stats *st, const char *when)
{
    bool any_must = false;
    for (uint64_t id = 1; id <= m->max_id && !any_must; id++)
        any_must = cr_model_get(m, id) == CR_MUST;
    talus_tree *ta, *tb;
    int rc = cr_open_trees(db, !any_must, &ta, &tb);
    if (rc < 0)
        return fail("opening the trees", rc);
    char err[4096];
    cr_report rep;
    if (cr_verify(ta, tb, seed, m, &rep, err, sizeof err) < 0) {
        fprintf(stderr, "powerloss_test: the database is wrong %s:\n%s\n", when, err);
        return -1;
    }
    st->sum.may_found += rep.may_found;
    st->sum.may_lost += rep.may_lost;
    st->sum.deleted += rep.deleted;
    st->sum.present = rep.present;
    st->sum.keys = rep.keys;
    return 0;
}

/* Mark every journaled batch committed so far durable. */
static void covered(cr_model *m, uint64_t *pending, size_t *npending)
{
    for (size_t i = 0; i < *npending; i++)
        cr_model_set(m, pending[i], CR_MUST);
    *npending = 0;
}

/* Commit this round's batches. */
static int write_round(talus_db *db, uint64_t rs, cr_model *m, uint64_t *next_id, stats *st)
{
    talus_tree *ta, *tb;
    int rc = cr_open_trees(db, 0, &ta, &tb);
    if (rc < 0)
        return fail("opening the trees", rc);
    uint64_t s = rs;
    unsigned n = cr_rnd(&s) % 8 == 0 ? 0 : (unsigned)cr_range(&s, 50, 600);
    st->empty_rounds += n == 0;
    size_t nvictims = 0;
    uint64_t *victims = cr_model_victims(m, seed, &nvictims);
    uint64_t *pending = malloc((n + 1) * sizeof *pending);
    size_t npending = 0;
    talus_batch *b = NULL;
    if (!victims || !pending || talus_batch_new(&b) < 0) {
        rc = fail("allocating", TALUS_ENOMEM);
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t id = (*next_id)++;
        uint64_t victim = 0;
        if (cr_is_deleter(seed, id) && nvictims)
            victim = victims[cr_rnd(&s) % nvictims];
        if ((rc = cr_batch_fill(b, ta, tb, seed, id, victim, MIN_FILLER, MAX_FILLER)) < 0) {
            rc = fail("building a batch", rc);
            goto out;
        }
        unsigned d = (unsigned)(cr_rnd(&s) % 100);
        int dur = d < 20              ? TALUS_DURABILITY_SYNC
                  : d < 60 || no_none ? TALUS_DURABILITY_BUFFERED
                                      : TALUS_DURABILITY_NONE;
        cr_model_set(m, id, CR_MAY);
        if ((rc = talus_batch_commit(db, b, dur, NULL)) < 0) {
            rc = fail("talus_batch_commit", rc);
            goto out;
        }
        st->batches[dur]++;
        if (dur != TALUS_DURABILITY_NONE)
            pending[npending++] = id;
        if (dur == TALUS_DURABILITY_SYNC)
            covered(m, pending, &npending);
        unsigned op = (unsigned)(cr_rnd(&s) % 1000);
        if (op < 20) {
            if ((rc = talus_db_sync(db)) < 0) {
                rc = fail("talus_db_sync", rc);
                goto out;
            }
            st->db_syncs++;
            covered(m, pending, &npending);
        } else if (op < 30) {
            if ((rc = talus_flush(op % 2 ? ta : tb)) < 0) {
                rc = fail("talus_flush", rc);
                goto out;
            }
            st->flushes++;
        } else if (op < 33) {
            if ((rc = talus_compact_range(ta, NULL, 0, NULL, 0)) < 0) {
                rc = fail("talus_compact_range", rc);
                goto out;
            }
            st->compactions++;
        }
    }
    rc = 0;
out:
    talus_batch_free(b);
    free(victims);
    free(pending);
    return rc;
}

static int one_round(tl_fault_env *fe, unsigned round, cr_model *m, uint64_t *next_id, stats *st)
{
    uint64_t rs = cr_mix(seed, round + 1);
    talus_options o;
    db_options(&o);
    talus_db *db = NULL;
    int rc;
    char when[96];
    if (round % 5 == 4) {
        /* Once in a while through the plain env (and a clean close). */
        if ((rc = talus_open(dbpath, &o, &db)) < 0)
            return fail("talus_open after the power loss", rc);
        snprintf(when, sizeof when, "after power loss %u (opened with the POSIX env)", round);
        rc = check(db, m, st, when);
        int crc = talus_close(db);
        if (rc < 0)
            return rc;
        if (crc < 0)
            return fail("talus_close", crc);
        st->posix_checks++;
    }
    if ((rc = db_open_env(dbpath, &o, tl_fault_env_env(fe), &db)) < 0)
        return fail("opening through the fault env after the power loss", rc);
    snprintf(when, sizeof when, "after power loss %u", round);
    rc = check(db, m, st, when);
    if (rc == 0)
        rc = write_round(db, rs, m, next_id, st);
    db_crash_close(db);
    int drc = tl_fault_env_drop_unsynced(fe);
    if (drc < 0 && rc == 0)
        rc = fail("tl_fault_env_drop_unsynced", drc);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: powerloss_test [--rounds N] [--seed S] [--dir D] [--keep] "
                    "[--no-none]\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option lo[] = {
        {"rounds", required_argument, NULL, 'r'}, {"seed", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'd'},    {"keep", no_argument, NULL, 'K'},
        {"no-none", no_argument, NULL, 'N'},      {NULL, 0, NULL, 0},
    };
    bool have_seed = false, have_rounds = false;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            rounds = (unsigned)strtoul(optarg, NULL, 10);
            have_rounds = true;
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            have_seed = true;
            break;
        case 'd':
            parent_dir = optarg;
            break;
        case 'K':
            keep = true;
            break;
        case 'N':
            no_none = true;
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
    if (!have_seed)
        seed = cr_clock_seed();
    if (!have_rounds)
        rounds = cr_scaled(rounds, 4);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    printf("powerloss_test: seed=%" PRIu64 "\n", seed);
    fflush(stdout);
    char dir[4096];
    if (cr_make_tmpdir(parent_dir, "talus-powerloss", dir, sizeof dir) < 0)
        return 1;
    snprintf(dbpath, sizeof dbpath, "%s/db", dir);
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    if (!fe) {
        fprintf(stderr, "powerloss_test: cannot create the fault env\n");
        return 1;
    }
    cr_model m = {0};
    stats st = {0};
    uint64_t next_id = 1, start = cr_now_ms();
    unsigned done = 0;
    int failed = 0;
    for (unsigned round = 0; round < rounds && !failed; round++) {
        char what[128];
        snprintf(what, sizeof what, "powerloss_test round %u (seed=%" PRIu64 ")", round, seed);
        cr_watchdog(120, what);
        if (one_round(fe, round, &m, &next_id, &st) < 0) {
            failed = 1;
            fprintf(stderr,
                    "powerloss_test: FAILED in round %u; replay with: powerloss_test "
                    "--seed %" PRIu64 " --rounds %u%s\n",
                    round, seed, rounds, no_none ? " --no-none" : "");
        }
        done++;
    }
    if (!failed) {
        /* The last power loss, checked through the POSIX env, twice. */
        talus_options o;
        db_options(&o);
        for (int i = 0; i < 2 && !failed; i++) {
            talus_db *db = NULL;
            int rc = talus_open(dbpath, &o, &db);
            if (rc < 0) {
                failed = fail("the final talus_open", rc) < 0;
                break;
            }
            failed = check(db, &m, &st, i ? "after a clean close" : "after the last power loss");
            rc = talus_close(db);
            if (rc < 0 && !failed)
                failed = fail("the final talus_close", rc) < 0;
        }
        if (failed)
            fprintf(stderr,
                    "powerloss_test: FAILED at the final check; replay with: "
                    "powerloss_test --seed %" PRIu64 " --rounds %u\n",
                    seed, rounds);
    }
    cr_watchdog(0, "");
    printf("powerloss_test: %u power losses (%" PRIu64 " with nothing written), batches "
           "committed: %" PRIu64 " sync, %" PRIu64 " buffered, %" PRIu64 " none; %" PRIu64
           " db syncs, %" PRIu64 " flushes, %" PRIu64 " compactions\n",
           done, st.empty_rounds, st.batches[TALUS_DURABILITY_SYNC],
           st.batches[TALUS_DURABILITY_BUFFERED], st.batches[TALUS_DURABILITY_NONE], st.db_syncs,
           st.flushes, st.compactions);
    printf("powerloss_test: not-required batches found after power loss: %" PRIu64
           ", lost: %" PRIu64 "; deleted by deleters: %" PRIu64 "; final: %" PRIu64
           " batches, %" PRIu64 " keys; %.1f s\n",
           st.sum.may_found, st.sum.may_lost, st.sum.deleted, st.sum.present, st.sum.keys,
           (cr_now_ms() - start) / 1000.0);
    tl_fault_env_free(fe);
    cr_model_free(&m);
    if (failed || keep)
        printf("powerloss_test: database kept in %s\n", dir);
    else
        cr_rmtree(dir);
    printf("%s\n", failed ? "0 passed, 1 failed" : "1 passed, 0 failed");
    return failed ? 1 : 0;
}
