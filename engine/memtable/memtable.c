/*
 * memtable.c - a tree's write buffer: the concurrent skiplist in an arena,
 * a reference count, statistics, point lookups and the tl_iter adapter.
 *
 * Statistics are kept in per-thread stripes (each on its own cache line)
 * so concurrent writers do not fight over one counter line; readers sum
 * the stripes, which is exact once the writers have returned.
 */
#include "memtable/memtable.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "memtable/skiplist.h"
#include "util/arena.h"
#include "util/err.h"
#include "util/ikey.h"

#define MT_ARENA_BLOCK (1u << 20)
#define MT_STRIPES 16

/* Stripe counters. One stripe's `deletes` may wrap below zero (a thread
 * that replaced another thread's tombstone); the unsigned sum is right. */
enum { MT_COUNT, MT_DELETES, MT_BYTES, MT_NCOUNTERS };

typedef struct mt_stripe {
    alignas(64) _Atomic uint64_t v[MT_NCOUNTERS];
} mt_stripe;

struct mt_memtable {
    _Atomic long refs;
    tl_arena *arena;
    sl_list list;
    alignas(64) _Atomic uint64_t min_seq; /* UINT64_MAX while empty */
    _Atomic uint64_t max_seq;
    mt_stripe stripes[MT_STRIPES];
    void (*on_free)(void *arg);
    void *on_free_arg;
};

static _Atomic unsigned mt_next_stripe;
static _Thread_local unsigned mt_stripe_id; /* 1 + stripe index, 0 = unset */

static mt_stripe *mt_my_stripe(mt_memtable *m)
{
    unsigned s = mt_stripe_id;
    if (TL_UNLIKELY(s == 0)) {
        s = 1 + atomic_fetch_add_explicit(&mt_next_stripe, 1, memory_order_relaxed) % MT_STRIPES;
        mt_stripe_id = s;
    }
    return &m->stripes[s - 1];
}

mt_memtable *mt_new(void)
{
    mt_memtable *m = aligned_alloc(64, (sizeof(*m) + 63) & ~(size_t)63);
    if (!m) {
        tl_err(TALUS_ENOMEM, "out of memory allocating a memtable");
        return NULL;
    }
    memset(m, 0, sizeof(*m));
    m->arena = tl_arena_new(MT_ARENA_BLOCK);
    if (!m->arena || sl_init(&m->list, m->arena) < 0) {
        tl_arena_free(m->arena);
        free(m);
        tl_err(TALUS_ENOMEM, "out of memory allocating a memtable");
        return NULL;
    }
    atomic_init(&m->refs, 1);
    atomic_init(&m->min_seq, UINT64_MAX);
    atomic_init(&m->max_seq, 0);
    for (int i = 0; i < MT_STRIPES; i++)
        for (int j = 0; j < MT_NCOUNTERS; j++)
            atomic_init(&m->stripes[i].v[j], 0);
    return m;
}

void mt_ref(mt_memtable *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void mt_on_free(mt_memtable *m, void (*fn)(void *arg), void *arg)
{
    m->on_free = fn;
    m->on_free_arg = arg;
}

void mt_unref(mt_memtable *m)
{
    if (!m)
        return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (m->on_free)
        m->on_free(m->on_free_arg);
    tl_arena_free(m->arena);
    free(m);
}

int mt_add(mt_memtable *m, uint64_t seq, uint8_t type, tl_slice ukey, tl_slice value)
{
    const uint8_t *old;
    size_t bytes;
    TRY(sl_insert(&m->list, ukey, seq, type, value, &old, &bytes));

    mt_stripe *s = mt_my_stripe(m);
    atomic_fetch_add_explicit(&s->v[MT_BYTES], bytes, memory_order_relaxed);
    /* A replacement changes no count, but may turn a value into a
     * tombstone or back. */
    uint64_t del = tl_vtype_is_delete(type) ? 1 : 0;
    if (old)
        del -= tl_vtype_is_delete(sl_entry_type(old)) ? 1 : 0;
    else
        atomic_fetch_add_explicit(&s->v[MT_COUNT], 1, memory_order_relaxed);
    if (del)
        atomic_fetch_add_explicit(&s->v[MT_DELETES], del, memory_order_relaxed);

    /* Seqnos mostly grow, so min is settled after the first entry and max
     * changes once per batch: load first, CAS only on a change. */
    uint64_t cur = atomic_load_explicit(&m->max_seq, memory_order_relaxed);
    while (seq > cur && !atomic_compare_exchange_weak_explicit(
                            &m->max_seq, &cur, seq, memory_order_relaxed, memory_order_relaxed))
        ;
    cur = atomic_load_explicit(&m->min_seq, memory_order_relaxed);
    while (seq < cur && !atomic_compare_exchange_weak_explicit(
                            &m->min_seq, &cur, seq, memory_order_relaxed, memory_order_relaxed))
        ;
    return 0;
}

int mt_get(mt_memtable *m, tl_slice ukey, uint64_t read_seq, uint8_t *type, tl_slice *value,
           uint64_t *seq_out)
{
    /* Versions of a key sort newest first, so the first entry at or after
     * (ukey, read_seq) is the newest one visible, if it has our key. */
    sl_iter it;
    sl_iter_init(&it, &m->list);
    sl_iter_seek_ukey(&it, ukey, read_seq);
    tl_slice ik;
    for (;;) {
        if (!sl_iter_valid(&it))
            return 0;
        ik = it.key;
        if (tl_bytes_cmp(ik.data, ik.len - TL_IKEY_TRAILER, ukey.data, ukey.len) != 0)
            return 0;
        /* A version inserted concurrently may land between the search and
         * the step onto the next node: skip anything newer than the read. */
        if (tl_ikey_seq(ik) <= read_seq)
            break;
        sl_iter_next(&it);
    }
    if (type)
        *type = tl_ikey_type(ik);
    if (value)
        *value = it.value;
    if (seq_out)
        *seq_out = tl_ikey_seq(ik);
    return 1;
}

static uint64_t mt_sum(const mt_memtable *m, int which)
{
    uint64_t sum = 0;
    for (int i = 0; i < MT_STRIPES; i++)
        sum += atomic_load_explicit(&((mt_memtable *)m)->stripes[i].v[which], memory_order_relaxed);
    return sum;
}

size_t mt_bytes(const mt_memtable *m)
{
    /* The bytes the entries occupy, not the arena's reserved blocks: an
     * empty memtable must not look like a full block (small write buffers
     * in tests would flush after every write). */
    return (size_t)mt_sum(m, MT_BYTES) + sizeof(*m);
}

uint64_t mt_count(const mt_memtable *m)
{
    return mt_sum(m, MT_COUNT);
}

uint64_t mt_deletes(const mt_memtable *m)
{
    return mt_sum(m, MT_DELETES);
}

uint64_t mt_min_seq(const mt_memtable *m)
{
    uint64_t v = atomic_load_explicit(&((mt_memtable *)m)->min_seq, memory_order_relaxed);
    return v == UINT64_MAX && mt_count(m) == 0 ? 0 : v;
}

uint64_t mt_max_seq(const mt_memtable *m)
{
    return atomic_load_explicit(&((mt_memtable *)m)->max_seq, memory_order_relaxed);
}

/* ---- Iterator ---------------------------------------------------------- */

typedef struct mt_iter {
    tl_iter base;
    mt_memtable *m;
    sl_iter it;
} mt_iter;

static void mti_seek_first(tl_iter *i)
{
    sl_iter_seek_first(&((mt_iter *)i)->it);
}

static void mti_seek_last(tl_iter *i)
{
    sl_iter_seek_last(&((mt_iter *)i)->it);
}

static void mti_seek(tl_iter *i, tl_slice t)
{
    sl_iter_seek(&((mt_iter *)i)->it, t);
}

static void mti_seek_for_prev(tl_iter *i, tl_slice t)
{
    sl_iter_seek_for_prev(&((mt_iter *)i)->it, t);
}

static void mti_next(tl_iter *i)
{
    sl_iter_next(&((mt_iter *)i)->it);
}

static void mti_prev(tl_iter *i)
{
    sl_iter_prev(&((mt_iter *)i)->it);
}

static bool mti_valid(const tl_iter *i)
{
    return sl_iter_valid(&((const mt_iter *)i)->it);
}

static tl_slice mti_key(const tl_iter *i)
{
    return ((const mt_iter *)i)->it.key;
}

static tl_slice mti_value(const tl_iter *i)
{
    return ((const mt_iter *)i)->it.value;
}

static int mti_status(const tl_iter *i)
{
    return 0;
}

static void mti_destroy(tl_iter *i)
{
    mt_iter *mi = (mt_iter *)i;
    mt_unref(mi->m);
    free(mi);
}

static const tl_iter_ops mt_iter_ops = {
    .seek_first = mti_seek_first,
    .seek_last = mti_seek_last,
    .seek = mti_seek,
    .seek_for_prev = mti_seek_for_prev,
    .next = mti_next,
    .prev = mti_prev,
    .valid = mti_valid,
    .key = mti_key,
    .value = mti_value,
    .status = mti_status,
    .destroy = mti_destroy,
};

tl_iter *mt_iter_new(mt_memtable *m)
{
    mt_iter *mi = malloc(sizeof(*mi));
    if (!mi) {
        tl_err(TALUS_ENOMEM, "out of memory allocating a memtable iterator");
        return NULL;
    }
    mi->base.ops = &mt_iter_ops;
    mt_ref(m);
    mi->m = m;
    sl_iter_init(&mi->it, &m->list);
    return &mi->base;
}
