/*
 * crash_util.h - what the crash, power-loss and fault-injection tests share:
 * seeded randomness, temp directories, the batch encoding, the model of
 * which batches must / may / must not be in the database, and the check
 * that compares a reopened database with that model.
 *
 * Batches. Batch id B (>= 1) writes three keys in two trees:
 *     tree "a": "b<B>-1", "b<B>-2"      tree "b": "b<B>"
 * (B zero-padded to 12 digits). Every value names its batch id, its key
 * index and the batch's "victim" (see below), carries filler derived from
 * (seed, B, index) and ends with a checksum, so a torn, stale or misplaced
 * value is caught. A batch is present "whole" when all three keys are
 * there; any other non-empty subset is a partial batch: always a failure.
 *
 * Deletes. Some batch ids are deleters (cr_is_deleter, a function of the
 * seed, so every process agrees): a deleter also deletes the three keys of
 * one older batch, its victim, chosen among batches known present when the
 * writing process started (so the victim committed first). A deleter is
 * never a victim. Hence after any crash: a present deleter implies its
 * victim is absent, and a batch that must be present may only be missing
 * if some present deleter names it.
 *
 * The model. For each id: CR_NONE (never written, or seen absent: must not
 * appear), CR_MAY (written but not guaranteed: present whole or absent),
 * CR_MUST (acknowledged durable, or seen present: must be there unless a
 * present deleter removed it). cr_verify checks a database against it and
 * then sets it to what was found (present -> MUST, absent -> NONE), so the
 * next crash is judged against the state the last check accepted.
 */
#ifndef CRASH_UTIL_H
#define CRASH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "talus.h"

#define CR_KEYS 3
#define CR_KEY_MAX 24
#define CR_MAX_FILLER 2048
#define CR_VALUE_MAX (32 + CR_MAX_FILLER)

/* ---- Randomness, time, scale ------------------------------------------- */

uint64_t cr_rnd(uint64_t *state);
/* A 64-bit mix of two values (deterministic, well spread). */
uint64_t cr_mix(uint64_t a, uint64_t b);
/* Uniform in [lo, hi]. */
uint64_t cr_range(uint64_t *state, uint64_t lo, uint64_t hi);
uint64_t cr_now_ms(void);
/* TALUS_TEST_SCALE (float, default 1.0) times n, at least min. */
unsigned cr_scaled(unsigned n, unsigned min);
/* A seed from the clock and pid, for runs without --seed. */
uint64_t cr_clock_seed(void);

/* ---- Directories -------------------------------------------------------- */

/* Create a fresh directory "<parent or $TMPDIR or /tmp>/<tag>-XXXXXX". */
int cr_make_tmpdir(const char *parent, const char *tag, char *out, size_t n);
/* rm -rf path (errors ignored). */
void cr_rmtree(const char *path);
/* Watchdog: after `seconds` the process prints `what` and exits(1). 0 cancels. */
void cr_watchdog(unsigned seconds, const char *what);

/* ---- Batches ------------------------------------------------------------ */

size_t cr_key(uint64_t id, int which, char *buf);
/* Value of key `which` of batch id; buf holds CR_VALUE_MAX bytes. Filler
 * length is drawn from [min_filler, max_filler] by (seed, id, which). */
size_t cr_value(uint64_t seed, uint64_t id, int which, uint64_t victim, size_t min_filler,
                size_t max_filler, uint8_t *buf);
bool cr_is_deleter(uint64_t seed, uint64_t id);
/* Whether v is exactly a value cr_value made for (id, which), any victim. */
bool cr_value_check(uint64_t seed, uint64_t id, int which, const void *v, size_t vl);
/* Fill b with batch id (three puts, and the victim's three deletes if
 * victim != 0). */
int cr_batch_fill(talus_batch *b, talus_tree *ta, talus_tree *tb, uint64_t seed, uint64_t id,
                  uint64_t victim, size_t min_filler, size_t max_filler);

/* ---- Model -------------------------------------------------------------- */

enum { CR_NONE = 0, CR_MAY = 1, CR_MUST = 2 };

typedef struct cr_model {
    uint8_t *st;
    uint64_t cap;
    uint64_t max_id; /* highest id ever written (or about to be) */
} cr_model;

void cr_model_free(cr_model *m);
/* Raises max_id; returns -1 on out of memory. */
int cr_model_set(cr_model *m, uint64_t id, int st);
int cr_model_get(const cr_model *m, uint64_t id);
/* Ids that are CR_MUST and not deleters (victim candidates); malloc'd. */
uint64_t *cr_model_victims(const cr_model *m, uint64_t seed, size_t *n);

/* ---- Checking a database ------------------------------------------------- */

typedef struct cr_report {
    uint64_t present;   /* whole batches found */
    uint64_t must;      /* of them, required by the model */
    uint64_t may_found; /* not guaranteed but found */
    uint64_t may_lost;  /* not guaranteed and absent */
    uint64_t deleted;   /* required batches removed by a present deleter */
    uint64_t keys;      /* keys scanned in both trees */
} cr_report;

/* Scan both trees forward and backward (sorted, no duplicates, the same
 * keys both ways, every key and value well formed, gets agree with the
 * scans, first/last key agree), then check the found batches against the
 * model and update it. Returns 0, or -1 with a description in err. */
int cr_verify(talus_tree *ta, talus_tree *tb, uint64_t seed, cr_model *m, cr_report *rep, char *err,
              size_t errn);

typedef struct cr_found {
    uint8_t mask;    /* bit i: key i of the batch is present */
    uint64_t victim; /* the batch's victim, if mask != 0 */
} cr_found;

/* The scans, gets and partial-batch check of cr_verify alone, reading at
 * snap (NULL: latest) and without the model: *found (malloc'd, bound + 1
 * entries) says which batches the database shows. Keys of ids above bound
 * are a failure. Returns 0, or -1 with a description in err. */
int cr_scan(talus_tree *ta, talus_tree *tb, const talus_snapshot *snap, uint64_t seed,
            uint64_t bound, cr_found **found, uint64_t *keys, char *err, size_t errn);

/* Open trees "a" and "b" (creating them if asked). */
int cr_open_trees(talus_db *db, int create, talus_tree **ta, talus_tree **tb);

#endif
