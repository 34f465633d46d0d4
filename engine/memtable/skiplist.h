/*
 * skiplist.h - the concurrent skiplist under the memtable, ordered by
 * internal key (util/ikey.h: user key ascending, seqno descending).
 *
 * Each node owns one arena allocation: the node header, its tower of next
 * pointers, then the entry bytes
 *     [varint32 ikey_len][ikey][varint32 value_len][value]
 * written once at insert. The node points to its current entry with an
 * atomic pointer; inserting an equal (user key, seqno) swaps that pointer to
 * the new entry (one release store), so the list never holds two nodes with
 * the same key and a reader sees either the old or the new entry whole.
 *
 * Concurrency: sl_insert may run in many threads at once (lock-free: each
 * level is linked with a CAS, bottom-up, retried on conflict). Readers never
 * lock; they see every node whose sl_insert has returned. Nodes are never
 * removed; the memory goes away with the arena.
 */
#ifndef TL_SKIPLIST_H
#define TL_SKIPLIST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/ikey.h"
#include "util/slice.h"

#define SL_MAX_HEIGHT 12

typedef struct sl_node sl_node;

struct sl_node {
    _Atomic(const uint8_t *) entry; /* current entry (see above) */
    uint64_t seq;                   /* with the user key: the immutable order key */
    uint32_t ulen;
    uint32_t height;
    /* First 8 user key bytes, big-endian, zero-padded. Placed right before
     * the tower: a search step reads pfx and next[level], usually one
     * cache line. */
    uint64_t pfx;
    _Atomic(sl_node *) next[]; /* height pointers; level 0 first */
};

/* The user key bytes: in the node's first entry, after the tower. */
static inline const uint8_t *sl_node_ukey(const sl_node *n)
{
    return (const uint8_t *)&n->next[n->height] + tl_varint_len(n->ulen + TL_IKEY_TRAILER);
}

typedef struct sl_list {
    tl_arena *arena; /* not owned */
    sl_node *head;   /* SL_MAX_HEIGHT tall, no entry */
    _Atomic int height;
    uint64_t id; /* unique per list: keys the per-thread insert finger */
} sl_list;

/* Allocates the head from `arena` (which must outlive the list).
 * 0 or TALUS_ENOMEM. */
int sl_init(sl_list *l, tl_arena *arena);

/* Insert (ukey, seq, type) -> value. If (ukey, seq) is already present its
 * entry is replaced, and *old_entry (if not NULL) gets the replaced entry;
 * otherwise *old_entry is set to NULL. 0, TALUS_ENOMEM or TALUS_ETOOBIG
 * (lengths over 32 bits). Thread-safe.
 * *bytes_out (if not NULL) gets the arena bytes used. */
int sl_insert(sl_list *l, tl_slice ukey, uint64_t seq, uint8_t type, tl_slice value,
              const uint8_t **old_entry, size_t *bytes_out);

/* Decode an entry written by sl_insert (trusted memory: no checks). */
static inline const uint8_t *sl_entry_varint(const uint8_t *p, uint32_t *v)
{
    uint32_t r = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t b = *p++;
        r |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *v = r;
    return p;
}

static inline void sl_entry_decode(const uint8_t *e, tl_slice *ikey, tl_slice *value)
{
    uint32_t n;
    e = sl_entry_varint(e, &n);
    ikey->data = e;
    ikey->len = n;
    e = sl_entry_varint(e + n, &n);
    value->data = e;
    value->len = n;
}

/* Type byte of an entry (last byte of its ikey). */
static inline uint8_t sl_entry_type(const uint8_t *e)
{
    uint32_t n;
    e = sl_entry_varint(e, &n);
    return e[n - 1];
}

/* A cursor over the list; any number of them, one thread each. Positions
 * are nodes, so a cursor stays valid while entries are added. */
typedef struct sl_iter {
    const sl_list *list;
    const sl_node *node; /* NULL: not valid */
    tl_slice key;        /* decoded from the entry read when positioned */
    tl_slice value;
} sl_iter;

void sl_iter_init(sl_iter *it, const sl_list *l);
static inline bool sl_iter_valid(const sl_iter *it)
{
    return it->node != NULL;
}
void sl_iter_seek_first(sl_iter *it);
void sl_iter_seek_last(sl_iter *it);
/* First entry >= target (an internal key). */
void sl_iter_seek(sl_iter *it, tl_slice target);
/* Last entry <= target. */
void sl_iter_seek_for_prev(sl_iter *it, tl_slice target);
/* Seek to the first entry >= (ukey, seq) without building an ikey. */
void sl_iter_seek_ukey(sl_iter *it, tl_slice ukey, uint64_t seq);
void sl_iter_next(sl_iter *it);
void sl_iter_prev(sl_iter *it);

#endif
