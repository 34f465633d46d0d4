/*
 * tree_internal.h - the tree's state, shared by tree.c (writes, views),
 * tree_read.c (gets, iterator inputs), tree_bg.c (flush, compaction) and
 * user_iter.c. Not for use outside engine/tree.
 *
 * Locking: `mu` guards view, mem/imm bookkeeping, bg flags and the
 * compacting marks of files. The active memtable pointer `mem` changes only
 * while the db write lock AND mu are held, so a writer holding the write
 * lock may use it without mu.
 */
#ifndef TL_TREE_INTERNAL_H
#define TL_TREE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "compaction/compaction.h"
#include "memtable/memtable.h"
#include "table/table.h"
#include "tree/tree.h"
#include "version/version.h"

#define TR_MAX_IMM 64

/* An immutable picture of what a reader must consult. Refcounted. */
typedef struct tr_view {
    atomic_int refs;
    mt_memtable *mem;
    mt_memtable *imm[TR_MAX_IMM]; /* sealed, newest first */
    int nimm;
    ver_version *v;
} tr_view;

struct tr_tree {
    tr_config cfg;
    char *dir;
    char *name;
    tl_env *env;
    ver_set *vs;
    tl_table_cache *tc;
    tbl_options topts;
    cp_options cpo;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast when background work finishes or fails */
    tr_view *view;     /* current; guarded by mu */
    mt_memtable *mem;  /* == view->mem */

    bool flushing;
    int compactions_running;
    int manual_waiters; /* manual compaction pending: bg compactions pause */
    bool manual_running;
    bool closing;
    int bg_error;
    char bg_errmsg[400];

    atomic_uint_fast64_t flushes, compactions, bytes_flushed, bytes_compacted_read,
        bytes_compacted_written, stall_slowdowns, stall_stops;
    atomic_bool cancel;
    /* Mirrors for the writers' lock-free fast path (tr_make_room). */
    atomic_size_t l0_files;
    atomic_bool blocked; /* bg_error or closing */
};

/* Pin the current view (takes mu briefly). */
tr_view *tr_view_acquire(tr_tree *t);
void tr_view_release(tr_view *vw);
/* Replace the current view with one built from mem, imm and v (each gets a
 * new reference). REQUIRES: mu held. Returns 0 or ENOMEM. */
int tr_install_view(tr_tree *t, mt_memtable *mem, mt_memtable *const *imm, int nimm,
                    ver_version *v);
/* Record a background error (sticky) and wake waiters. REQUIRES: mu held. */
void tr_set_bg_error(tr_tree *t, int rc, const char *what);
/* After a flush of m wrote `out`: add the blobs it references to e, and
 * have the blobs it dropped removed when m is freed. */
int tr_blobs_after_flush(tr_tree *t, mt_memtable *m, const cp_output *out, ver_edit *e);
/* tr_get_entry within a view the caller holds. */
int tr_view_get(tr_tree *t, tr_view *vw, tl_slice ukey, uint64_t read_seq, tl_buf *value,
                uint8_t *out_type);
/* Build the merged internal iterator over a view. NULL on ENOMEM. */
tl_iter *tr_view_iter(tr_tree *t, tr_view *vw, bool fill_cache);

#endif
