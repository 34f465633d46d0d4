/*
 * skiplist.c - lock-free concurrent skiplist of internal keys (see
 * skiplist.h for the node layout and the concurrency contract).
 *
 * Invariants:
 *  - A node is linked bottom-up: when it is reachable at level i it is
 *    already linked at every level below i, and its header, entry and
 *    next[j] for j <= i were written before the release CAS that published
 *    it at level i. Readers follow next pointers with acquire loads, so
 *    whatever node they reach is fully initialised up to the level they
 *    reached it at.
 *  - Nodes are never unlinked or moved, so any node pointer seen once stays
 *    a valid position forever (until the arena is freed).
 *  - (user key, seqno) is unique: a second insert of it swaps the entry
 *    pointer of the existing node instead of linking a node.
 *
 * Insertion keeps a per-thread "finger" (the splice of the last insert:
 * for each level the node before and after the inserted key). The next
 * insert starts from the lowest level whose splice still brackets the new
 * key, so sequential inserts cost O(1) comparisons and random ones no more
 * than a search from the top. The finger is keyed by the list's unique id,
 * never by its address, so a freed list cannot be mistaken for a new one.
 */
#include "memtable/skiplist.h"

#include <string.h>

#include "util/coding.h"
#include "util/err.h"
#include "util/ikey.h"

/* Search key: the user key and seqno (the type takes no part in order). */
typedef struct sl_key {
    const uint8_t *u;
    uint32_t ulen;
    uint64_t seq;
    uint64_t pfx;
} sl_key;

typedef struct sl_splice {
    uint64_t list_id; /* 0: empty */
    int height;       /* levels [0, height) are set; prev[height] = head */
    sl_node *prev[SL_MAX_HEIGHT + 1];
    sl_node *next[SL_MAX_HEIGHT + 1];
} sl_splice;

static _Thread_local sl_splice sl_finger;
static _Thread_local uint64_t sl_rng;
static _Atomic uint64_t sl_seed_counter;
static _Atomic uint64_t sl_next_id = 1;

/* The first 8 bytes of a user key as a big-endian number (zero-padded),
 * cached in the node: for most pairs of keys it decides the order without
 * touching the key bytes, which may sit on another cache line. */
static inline uint64_t sl_prefix(const uint8_t *u, uint32_t ulen)
{
    uint8_t b[8] = {0};
    memcpy(b, u, ulen < 8 ? ulen : 8);
    uint64_t v;
    memcpy(&v, b, 8);
    return __builtin_bswap64(v);
}

static inline sl_key sl_key_make(const uint8_t *u, uint32_t ulen, uint64_t seq)
{
    sl_key k = {u, ulen, seq, sl_prefix(u, ulen)};
    return k;
}

/* Node order relative to a key: <0 when the node sorts before it. */
static inline int sl_cmp(const sl_node *n, const sl_key *k)
{
    if (n->pfx != k->pfx)
        return n->pfx < k->pfx ? -1 : 1;
    uint32_t m = n->ulen < k->ulen ? n->ulen : k->ulen;
    int c = memcmp(sl_node_ukey(n), k->u, m);
    if (c)
        return c;
    if (n->ulen != k->ulen)
        return n->ulen < k->ulen ? -1 : 1;
    if (n->seq != k->seq)
        return n->seq > k->seq ? -1 : 1; /* newer first */
    return 0;
}

static inline sl_node *sl_next(const sl_node *n, int level)
{
    return atomic_load_explicit(&((sl_node *)n)->next[level], memory_order_acquire);
}

/* Branching factor 4: each level is kept with probability 1/4. The
 * generator is per thread (xorshift64), seeded from a shared counter
 * through splitmix64 so threads get distinct streams. */
static int sl_random_height(void)
{
    uint64_t x = sl_rng;
    if (TL_UNLIKELY(x == 0)) {
        uint64_t z = atomic_fetch_add_explicit(&sl_seed_counter, 0x9E3779B97F4A7C15ull,
                                               memory_order_relaxed) +
                     0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        x = (z ^ (z >> 31)) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sl_rng = x;
    uint64_t bits = x >> 32;
    int h = 1;
    while (h < SL_MAX_HEIGHT && (bits & 3) == 0) {
        h++;
        bits >>= 2;
    }
    return h;
}

int sl_init(sl_list *l, tl_arena *arena)
{
    size_t sz = sizeof(sl_node) + SL_MAX_HEIGHT * sizeof(_Atomic(sl_node *));
    sl_node *head = tl_arena_alloc(arena, sz);
    if (!head)
        return tl_err(TALUS_ENOMEM, "out of memory allocating a skiplist head");
    memset(head, 0, sz);
    head->height = SL_MAX_HEIGHT;
    for (int i = 0; i < SL_MAX_HEIGHT; i++)
        atomic_init(&head->next[i], NULL);
    atomic_init(&head->entry, NULL);
    l->arena = arena;
    l->head = head;
    atomic_init(&l->height, 1);
    l->id = atomic_fetch_add_explicit(&sl_next_id, 1, memory_order_relaxed);
    return 0;
}

/* At `level`, starting from `before` (which sorts before k, or is the
 * head), find the adjacent pair prev < k <= next. `after` is a node known
 * to sort at or after k at this level (or NULL): the walk stops there. */
static inline void sl_find_level(const sl_key *k, sl_node *before, sl_node *after, int level,
                                 sl_node **prev, sl_node **next)
{
    sl_node *x = before;
    for (;;) {
        sl_node *nx = sl_next(x, level);
        if (nx == after || nx == NULL || sl_cmp(nx, k) >= 0) {
            *prev = x;
            *next = nx;
            return;
        }
        x = nx;
    }
}

/* Bring the finger up to date for k over levels [0, max_h). */
static void sl_splice_prepare(sl_list *l, sl_splice *s, const sl_key *k, int max_h)
{
    int rh;
    if (s->list_id != l->id || s->height != max_h) {
        s->list_id = l->id;
        s->height = max_h;
        s->prev[max_h] = l->head;
        s->next[max_h] = NULL;
        rh = max_h;
    } else {
        /* Climb until a level whose pair is still adjacent and brackets
         * k; the levels above it bracket k too (splices are nested). */
        for (rh = 0; rh < max_h; rh++) {
            sl_node *pv = s->prev[rh], *nx = s->next[rh];
            if (sl_next(pv, rh) != nx)
                continue; /* something was linked in between */
            if (pv != l->head && sl_cmp(pv, k) >= 0)
                continue; /* k sorts before the splice */
            if (nx && sl_cmp(nx, k) < 0)
                continue; /* k sorts after the splice */
            break;
        }
    }
    for (int i = rh - 1; i >= 0; i--)
        sl_find_level(k, s->prev[i + 1], s->next[i + 1], i, &s->prev[i], &s->next[i]);
}

int sl_insert(sl_list *l, tl_slice ukey, uint64_t seq, uint8_t type, tl_slice value,
              const uint8_t **old_entry, size_t *bytes_out)
{
    /* Lengths are stored as varint32 (callers enforce far lower limits). */
    if (TL_UNLIKELY(ukey.len > UINT32_MAX - TL_IKEY_TRAILER || value.len > UINT32_MAX))
        return tl_err(TALUS_ETOOBIG, "memtable entry too large (key %zu, value %zu bytes)",
                      ukey.len, value.len);
    int h = sl_random_height();
    size_t iklen = ukey.len + TL_IKEY_TRAILER;
    size_t elen = tl_varint_len(iklen) + iklen + tl_varint_len(value.len) + value.len;
    size_t nsz = sizeof(sl_node) + (size_t)h * sizeof(_Atomic(sl_node *)) + elen;
    sl_node *n = tl_arena_alloc(l->arena, nsz);
    if (!n)
        return tl_err(TALUS_ENOMEM, "out of memory adding %zu bytes to a memtable", nsz);

    /* Encode the entry once, right after the tower. */
    uint8_t *e = (uint8_t *)&n->next[h];
    uint8_t *p = e + tl_put_varint32(e, (uint32_t)iklen);
    const uint8_t *kp = p;
    if (ukey.len)
        memcpy(p, ukey.data, ukey.len);
    p += ukey.len;
    tl_put_fixed64(p, seq);
    p[8] = type;
    p += TL_IKEY_TRAILER;
    p += tl_put_varint32(p, (uint32_t)value.len);
    if (value.len)
        memcpy(p, value.data, value.len);
    n->seq = seq;
    n->ulen = (uint32_t)ukey.len;
    n->pfx = sl_prefix(ukey.data, n->ulen);
    n->height = (uint32_t)h;
    atomic_init(&n->entry, e);
    if (old_entry)
        *old_entry = NULL;
    if (bytes_out)
        *bytes_out = nsz;

    sl_key k = {kp, n->ulen, seq, n->pfx};
    int max_h = atomic_load_explicit(&l->height, memory_order_relaxed);
    while (h > max_h) {
        if (atomic_compare_exchange_weak_explicit(&l->height, &max_h, h, memory_order_relaxed,
                                                  memory_order_relaxed))
            max_h = h;
    }

    sl_splice *s = &sl_finger;
    sl_splice_prepare(l, s, &k, max_h);

    for (int i = 0; i < h; i++) {
        for (;;) {
            sl_node *nx = s->next[i];
            if (i == 0 && nx && sl_cmp(nx, &k) == 0) {
                /* Same (user key, seqno): swap the entry, link nothing.
                 * The node we built is left unused in the arena. */
                const uint8_t *old = atomic_exchange_explicit(&nx->entry, e, memory_order_acq_rel);
                if (old_entry)
                    *old_entry = old;
                return 0;
            }
            atomic_store_explicit(&n->next[i], nx, memory_order_relaxed);
            if (atomic_compare_exchange_strong_explicit(&s->prev[i]->next[i], &nx, n,
                                                        memory_order_release, memory_order_relaxed))
                break;
            /* Lost a race at this level: a node was linked after prev[i].
             * prev[i] still sorts before k, so walk on from it. */
            sl_find_level(&k, s->prev[i], NULL, i, &s->prev[i], &s->next[i]);
        }
    }
    /* The new node is now the left side of the splice at its levels; the
     * right sides are unchanged, so the finger stays tight and nested. */
    for (int i = 0; i < h; i++)
        s->prev[i] = n;
    return 0;
}

/* ---- Reading ----------------------------------------------------------- */

/* Last node < k (lt) or <= k (!lt) at level 0; the head when none. */
/* The last node before k (or_equal: at or before k), and in *next the
 * level-0 successor it had when the walk decided (NULL: none). Callers must
 * use *next, not read x's successor again: a node inserted after x since
 * then may sort before k, and a seek would land on it. */
static sl_node *sl_find_before(const sl_list *l, const sl_key *k, bool or_equal, sl_node **next)
{
    sl_node *x = l->head;
    sl_node *known_after = NULL; /* already compared at a higher level */
    int level = atomic_load_explicit(&((sl_list *)l)->height, memory_order_relaxed) - 1;
    for (;;) {
        sl_node *nx = sl_next(x, level);
        bool advance = false;
        if (nx && nx != known_after) {
            int c = sl_cmp(nx, k);
            advance = or_equal ? c <= 0 : c < 0;
        }
        if (advance) {
            x = nx;
            continue;
        }
        if (level == 0) {
            if (next)
                *next = nx;
            return x;
        }
        known_after = nx;
        level--;
    }
}

static sl_node *sl_find_last(const sl_list *l)
{
    sl_node *x = l->head;
    int level = atomic_load_explicit(&((sl_list *)l)->height, memory_order_relaxed) - 1;
    for (;;) {
        sl_node *nx = sl_next(x, level);
        if (nx) {
            x = nx;
            continue;
        }
        if (level == 0)
            return x;
        level--;
    }
}

static void sl_iter_set(sl_iter *it, const sl_node *n)
{
    if (n == it->list->head)
        n = NULL;
    it->node = n;
    if (n) {
        const uint8_t *e = atomic_load_explicit(&((sl_node *)n)->entry, memory_order_acquire);
        sl_entry_decode(e, &it->key, &it->value);
    }
}

static sl_key sl_key_of_ikey(tl_slice t)
{
    if (t.len >= TL_IKEY_TRAILER) {
        uint32_t ulen = (uint32_t)(t.len - TL_IKEY_TRAILER);
        return sl_key_make(t.data, ulen, tl_get_fixed64(t.data + ulen));
    }
    /* Not an internal key: order it before every version of t. */
    return sl_key_make(t.data, (uint32_t)t.len, TL_SEQ_MAX);
}

void sl_iter_init(sl_iter *it, const sl_list *l)
{
    memset(it, 0, sizeof(*it));
    it->list = l;
}

void sl_iter_seek_first(sl_iter *it)
{
    sl_iter_set(it, sl_next(it->list->head, 0));
}

void sl_iter_seek_last(sl_iter *it)
{
    sl_iter_set(it, sl_find_last(it->list));
}

void sl_iter_seek_ukey(sl_iter *it, tl_slice ukey, uint64_t seq)
{
    sl_key k = sl_key_make(ukey.data, (uint32_t)ukey.len, seq);
    sl_node *next;
    sl_find_before(it->list, &k, false, &next);
    sl_iter_set(it, next);
}

void sl_iter_seek(sl_iter *it, tl_slice target)
{
    sl_key k = sl_key_of_ikey(target);
    sl_node *next;
    sl_find_before(it->list, &k, false, &next);
    sl_iter_set(it, next);
}

void sl_iter_seek_for_prev(sl_iter *it, tl_slice target)
{
    sl_key k = sl_key_of_ikey(target);
    sl_iter_set(it, sl_find_before(it->list, &k, true, NULL));
}

void sl_iter_next(sl_iter *it)
{
    if (!it->node)
        return;
    sl_node *n = sl_next(it->node, 0);
    if (n) { /* a scan misses on every node: ask for the one after early */
        sl_node *nn = sl_next(n, 0);
        if (nn)
            __builtin_prefetch(nn);
    }
    sl_iter_set(it, n);
}

void sl_iter_prev(sl_iter *it)
{
    if (!it->node)
        return;
    /* No back pointers: search for the last node before this one. */
    const sl_node *n = it->node;
    sl_key k = {sl_node_ukey(n), n->ulen, n->seq, n->pfx};
    sl_iter_set(it, sl_find_before(it->list, &k, false, NULL));
}
