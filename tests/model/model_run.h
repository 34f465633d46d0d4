/*
 * model_run.h - the state of one model_test run, shared by the driver
 * (model_test.c), the operations (model_ops.c), crash and reopen with the
 * history of writes they need (model_crash.c) and the iterator checks
 * (model_iter.c).
 *
 * The model of the database is one state array per tree, concatenated:
 * tree t, key k is state[t * nkeys + k]. Snapshots (in-memory and pinned)
 * carry a copy of the whole array as it was at their seqno.
 *
 * Crashes: a batch committed with durability `none` may be lost by a crash
 * until every tree it wrote has been flushed after it. So the run keeps the
 * history of writes since the last point where everything was known to be
 * durable (base_state): after a crash the database is read at every point
 * still readable (latest and every pinned seqno), each uncertain batch is
 * found entirely present or entirely absent, and the model is rebuilt.
 */
#ifndef TALUS_TEST_MODEL_RUN_H
#define TALUS_TEST_MODEL_RUN_H

#include <stdint.h>

#include "talus.h"
#include "model.h"

#define MR_MAX_TREES 4
#define MR_MAX_SNAPS 4
#define MR_MAX_PINS 4
#define MR_MAX_BATCH 8
#define MR_MAX_VALUE 2000
#define MR_POINTS (MR_MAX_PINS + 1) /* latest + pins: what a crash check reads */

enum mr_wkind { MR_PUT, MR_DEL, MR_WEAK };

/* An in-memory snapshot (talus_snapshot_take) and the model at its seqno. */
struct mr_snap {
    talus_snapshot *s;
    uint64_t seq;
    mt_val *state;
};

/* A pinned (persistent) snapshot and the model at its seqno. */
struct mr_pin {
    uint64_t seq;
    mt_val *state;
};

/* The effective write of a batch to one (tree, key): the last one. */
struct mr_wop {
    uint32_t key;
    uint16_t tree;
    uint8_t kind;
    uint32_t len;
    uint64_t seed;
    uint64_t hash; /* of the value bytes (puts) */
};

/* One committed write (a single op is a batch of one). */
struct mr_hist {
    uint64_t seq;
    int durability;
    unsigned tree_mask;
    unsigned nops;
    int present; /* after a crash: 1 survived, 0 lost; -1 not known */
    struct mr_wop op[MR_MAX_BATCH];
};

/* What a crash check saw for one (point, tree, key). */
struct mr_obs {
    uint64_t hash;
    uint32_t len;
    uint8_t present;
};

struct mr_run {
    uint64_t seed;
    unsigned long nops, op; /* total, current op index */
    const char *opname;     /* what the current op is, for failure messages */
    mt_rng rng;
    mt_keys ks;
    int ntrees;
    size_t nstate;         /* ntrees * ks.n */
    mt_val *state;         /* the latest state */
    mt_val *scratch_state; /* copy for an iterator at "latest" */
    struct mr_snap snaps[MR_MAX_SNAPS];
    int nsnaps;
    struct mr_pin pins[MR_MAX_PINS]; /* ascending seqno */
    int npins;
    talus_options opts;
    talus_tree_options topts[MR_MAX_TREES];
    struct tl_env *env; /* the env the database is opened with */
    char *dbdir;
    talus_db *db;
    talus_tree *t[MR_MAX_TREES];
    talus_batch *batch;
    uint8_t vbuf[MR_MAX_VALUE];
    uint64_t last_seqno;
    /* custom seqno generator (opts.seqno_generator may point to it) */
    int gen_fail_next;
    int pin_durable_only; /* --pin-durable-only (see model_test.c) */
    /* history since base_state (see the top of this file) */
    mt_val *base_state;
    uint64_t base_seq; /* every batch <= base_seq is folded into base_state */
    struct mr_hist *hist;
    size_t hist_head, hist_len, hist_cap;
    uint64_t flushed_seq[MR_MAX_TREES]; /* talus_seqno when tree t was last flushed */
    struct mr_obs *obs;                 /* [MR_POINTS][nstate] */
    uint8_t *explained;                 /* same shape */
    /* counters for the summary */
    unsigned long n_write, n_batch, n_read, n_pinned_read, n_iter_steps, n_reopen, n_crash, n_flush,
        n_compact, n_pin, n_lost, n_kept;
    uint64_t eng_flushes, eng_compactions; /* engine counters of closed handles */
};

/* model_test.c */
/* Print the failure with the op index, op, seed and a replay line, then
 * exit(1). */
void mr_fail(struct mr_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* Fail unless rc is 0, naming the call. */
void mr_check_rc(struct mr_run *r, int rc, const char *call);
/* A random byte string for seeks and bounds: mostly near existing keys
 * (equal, one byte longer or shorter, last byte bumped), sometimes random. */
void mr_target(struct mr_run *r, uint8_t *buf, size_t cap, size_t *len);
size_t mr_pick_key(struct mr_run *r);
int mr_pick_tree(struct mr_run *r);
/* The part of a state array that is tree t. */
static inline mt_val *mr_tree_state(const struct mr_run *r, mt_val *state, int t)
{
    return state + (size_t)t * r->ks.n;
}
static inline const mt_val *mr_tree_cstate(const struct mr_run *r, const mt_val *state, int t)
{
    return state + (size_t)t * r->ks.n;
}
const char *mr_dur_name(int durability);

/* model_ops.c */
/* Write a random key (put or delete): used between iterator steps. */
void mr_random_write(struct mr_run *r);
void mr_do_write(struct mr_run *r, enum mr_wkind w);
void mr_do_batch(struct mr_run *r);
/* A point read at the latest state (where 0), an in-memory snapshot (1) or
 * a pinned seqno (2). */
void mr_do_read(struct mr_run *r, int where);
void mr_do_first_last(struct mr_run *r);
void mr_snap_take(struct mr_run *r);
void mr_snap_release(struct mr_run *r, int i);
void mr_do_pin(struct mr_run *r);
void mr_do_unpin(struct mr_run *r);
/* Reads that must be refused (future seqno, not retained after reopen). */
void mr_check_refusals(struct mr_run *r, int just_opened);
void mr_check_pin_list(struct mr_run *r);
void mr_do_seqno_failure(struct mr_run *r);
void mr_do_flush(struct mr_run *r);
void mr_do_compact(struct mr_run *r);

/* model_env.c: the POSIX env with syncs as no-ops. */
struct tl_env *mr_nosync_env(void);

/* model_crash.c */
void mr_db_open(struct mr_run *r);
/* Record a committed write in the history. */
void mr_hist_add(struct mr_run *r, const struct mr_hist *h);
/* 1 if the newest write is sure to survive a crash. */
int mr_hist_newest_certain(const struct mr_run *r);
/* Tree t was flushed with every write up to seq in it. */
void mr_hist_flushed(struct mr_run *r, int t, uint64_t seq);
void mr_do_reopen(struct mr_run *r);
void mr_do_crash(struct mr_run *r);
/* Engine counters of the open handles added to the run's. */
void mr_add_engine_counters(struct mr_run *r);

/* model_iter.c */
void mr_iter_walk(struct mr_run *r);
/* Full scans forward and backward of tree t: at the latest state (snap and
 * pin < 0), at in-memory snapshot number snap, or at pin number pin. */
void mr_full_scan(struct mr_run *r, int t, int snap, int pin);
/* mr_full_scan of every tree at the latest state and at every pin. */
void mr_full_scan_all(struct mr_run *r);

#endif
