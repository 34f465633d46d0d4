/*
 * table_model.h - shared by the table tests: a deterministic RNG, an
 * in-memory tl_file that counts reads, a sorted model of a table's entries
 * and checks of a tbl_reader against it (cmocka assertions).
 */
#ifndef TALUS_TEST_TABLE_MODEL_H
#define TALUS_TEST_TABLE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "table/table.h"
#include "util/ikey.h"

extern uint64_t rng_state;  /* seed it before use */
extern uint64_t mem_preads; /* preads served by memfiles so far */

uint64_t rnd(void);
uint32_t rndn(uint32_t n);

/* A file over buf (not owned), for both writing and reading. */
tl_file *memfile_new(tl_buf *buf);

typedef struct ent {
    uint8_t *k;
    size_t klen;
    uint8_t *v;
    size_t vlen;
} ent;

typedef struct model {
    ent *e;
    size_t n, cap;
    uint32_t max_num; /* user key numbers are < max_num */
} model;

/* "user%08u" plus 0..4 'x' depending on num. */
size_t make_ukey(uint8_t *dst, uint32_t num);
/* Entries must be added in internal-key order. */
void model_add(model *m, const uint8_t *uk, size_t ulen, uint64_t seq, uint8_t type, size_t vlen);
/* nusers user keys with random gaps and 1..10 versions (30..70 for a few if
 * spanning), values up to maxv bytes, some tombstones. */
void model_gen(model *m, size_t nusers, size_t maxv, bool spanning);
void model_free(model *m);

/* Build m into file with o; props receives the builder's properties. */
void build(const model *m, const tbl_options *o, tl_buf *file, tbl_props *props);
tbl_reader *open_mem(tl_buf *file, tl_cache *cache);
void check_props(const model *m, const tbl_options *o, const tbl_props *p, const tbl_props *built,
                 uint64_t file_size);
/* One get vs the model; with tolerate an ECORRUPT error is accepted. */
void check_get(tbl_reader *r, const model *m, const uint8_t *uk, size_t ulen, uint64_t seq,
               bool tolerate);
void check_gets(tbl_reader *r, const model *m, int nq, bool tolerate);
/* Full scans both ways; with tolerate an early stop must carry ECORRUPT. */
void check_scans(tbl_reader *r, const model *m, bool fill, bool tolerate);
/* Gets, scans, seeks and random walks, all strict. */
void check_all(tbl_reader *r, const model *m, int nq);
/* Build, reopen, check properties and everything else. */
void round_trip(const model *m, const tbl_options *o, int nq);

#endif
