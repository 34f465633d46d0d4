/*
 * memtable.h - the in-memory write buffer of a tree: a concurrent skiplist
 * of internal keys (ikey.h order) in an arena.
 *
 * Concurrency: mt_add may be called from many threads at once (lock-free
 * CAS insertion); readers (mt_get, iterators) never take a lock and see
 * every entry whose mt_add has returned. Adding an entry whose (user key,
 * seqno) already exists replaces the old entry's type and value atomically
 * (a batch that writes a key twice keeps the last write).
 *
 * Lifetime: reference counted; the creator holds one reference. Values and
 * keys returned by mt_get/iterators point into the arena and stay valid while
 * the caller holds a reference.
 */
#ifndef TL_MEMTABLE_H
#define TL_MEMTABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/iter.h"
#include "util/slice.h"

typedef struct mt_memtable mt_memtable;

/* NULL on ENOMEM. */
mt_memtable *mt_new(void);
void mt_ref(mt_memtable *m);
void mt_unref(mt_memtable *m);
/* Run fn(arg) once, when the last reference is dropped (e.g. to remove
 * blob files only this memtable's readers may still reach). One hook per
 * memtable: a second call replaces the first. Not thread-safe against
 * concurrent mt_on_free calls. */
void mt_on_free(mt_memtable *m, void (*fn)(void *arg), void *arg);

/* 0 or TALUS_ENOMEM. The caller has validated key and value sizes. */
int mt_add(mt_memtable *m, uint64_t seq, uint8_t type, tl_slice ukey, tl_slice value);

/* The newest entry for ukey with seqno <= read_seq. Returns 1 (found: *type,
 * *value, *seq_out set; value points into the arena) or 0 (no such entry). */
int mt_get(mt_memtable *m, tl_slice ukey, uint64_t read_seq, uint8_t *type, tl_slice *value,
           uint64_t *seq_out);

/* Iterator over all entries in internal-key order, both directions. It
 * holds a reference to m until destroyed. NULL on ENOMEM. */
tl_iter *mt_iter_new(mt_memtable *m);

/* Bytes used (arena), entries, and seqno range (0,0 when empty). */
size_t mt_bytes(const mt_memtable *m);
uint64_t mt_count(const mt_memtable *m);
uint64_t mt_deletes(const mt_memtable *m);
uint64_t mt_min_seq(const mt_memtable *m);
uint64_t mt_max_seq(const mt_memtable *m);

#endif
