/*
 * model_run.h - the state of one model_test run, shared by the driver
 * (model_test.c) and the iterator checks (model_iter.c).
 */
#ifndef TALUS_TEST_MODEL_RUN_H
#define TALUS_TEST_MODEL_RUN_H

#include <stdint.h>

#include "talus.h"
#include "model.h"

#define MR_MAX_SNAPS 4
#define MR_MAX_VALUE 2000

struct mr_snap {
    talus_snapshot *s;
    uint64_t seq;
    mt_val *state; /* the model at the time the snapshot was taken */
};

struct mr_run {
    uint64_t seed;
    unsigned long nops, op; /* total, current op index */
    const char *opname;     /* what the current op is, for failure messages */
    mt_rng rng;
    mt_keys ks;
    mt_val *state;         /* the latest state, indexed by key number */
    mt_val *scratch_state; /* copy for an iterator at "latest" */
    struct mr_snap snaps[MR_MAX_SNAPS];
    int nsnaps;
    talus_options opts;
    char *dbdir;
    talus_db *db;
    talus_tree *t;
    talus_batch *batch;
    uint8_t vbuf[MR_MAX_VALUE];
    uint64_t last_seqno;
    /* counters for the summary */
    unsigned long n_write, n_read, n_iter_steps, n_reopen, n_flush, n_compact;
    uint64_t eng_flushes, eng_compactions; /* engine counters of closed handles */
};

/* Print the failure with the op index, op, seed and a replay line, then
 * exit(1). */
void mr_fail(struct mr_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* Fail unless rc is 0, naming the call. */
void mr_check_rc(struct mr_run *r, int rc, const char *call);
/* A random byte string for seeks and bounds: mostly near existing keys
 * (equal, one byte longer or shorter, last byte bumped), sometimes random. */
void mr_target(struct mr_run *r, uint8_t *buf, size_t cap, size_t *len);
/* Write a random key (put or delete): used between iterator steps. */
void mr_random_write(struct mr_run *r);

/* Iterator checks (model_iter.c). */
void mr_iter_walk(struct mr_run *r);
/* Full scans forward and backward of the latest state (snap < 0) or of
 * snapshot number snap. */
void mr_full_scan(struct mr_run *r, int snap);

#endif
