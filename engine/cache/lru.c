/*
 * lru.c - the sharded LRU cache of cache.h (tl_cache_*).
 *
 * Keys are hashed with xxh3; the top bits pick a shard, the low bits a
 * bucket in the shard's chained hash table (which doubles when it holds
 * more entries than buckets). Each shard has its own mutex, capacity and
 * LRU list.
 *
 * Invariants (per shard, under its mutex):
 *  - An entry is "in the cache" (in_cache) iff it is in the hash table;
 *    then the cache holds one reference and its charge counts in usage.
 *  - An entry is on the LRU list iff it is in the cache and nobody else
 *    holds a handle (refs == 1). Only entries on the list are evicted, so
 *    entries in use stay (and stay charged) even past capacity.
 *  - Erase and replace take an entry out of the table and drop the
 *    cache's reference; handles still held keep it alive, and the deleter
 *    runs exactly once, when refs reaches 0. Deleters run after the shard
 *    mutex is released.
 *  - Capacity 0 caches nothing: insert hands back a handle to an entry
 *    that is not in the table and is deleted on release.
 *
 * Small capacities get fewer shards (each shard keeps at least
 * LRU_MIN_SHARD_CAPACITY units), so a capacity below that is one exact LRU.
 */
#include "cache/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/hash.h"

#define LRU_MAX_SHARD_BITS 4
#define LRU_MIN_SHARD_CAPACITY 32
#define LRU_INITIAL_BUCKETS 16

struct tl_cache_handle {
    tl_cache_handle *hash_next;
    tl_cache_handle *lru_prev, *lru_next; /* on the LRU list iff both set */
    void *value;
    tl_cache_deleter deleter;
    size_t charge;
    uint64_t hash;
    uint32_t refs;
    bool in_cache;
    size_t klen;
    uint8_t key[];
};

typedef struct lru_shard {
    pthread_mutex_t mu;
    size_t capacity;
    size_t usage;
    tl_cache_handle **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    /* LRU list head: lru.lru_next is the oldest, lru.lru_prev the newest. */
    tl_cache_handle lru;
    uint64_t hits, misses;
    char pad[64];
} lru_shard;

struct tl_cache {
    size_t capacity;
    int shard_bits;
    _Atomic uint64_t next_id;
    lru_shard shards[];
};

static inline uint64_t lru_hash(const uint8_t *key, size_t klen)
{
    return tl_xxh3(key, klen);
}

static inline lru_shard *lru_shard_of(tl_cache *c, uint64_t hash)
{
    return &c->shards[c->shard_bits ? hash >> (64 - c->shard_bits) : 0];
}

tl_cache *tl_cache_new(size_t capacity)
{
    int bits = LRU_MAX_SHARD_BITS;
    while (bits > 0 && capacity >> bits < LRU_MIN_SHARD_CAPACITY)
        bits--;
    int n = 1 << bits;
    tl_cache *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(lru_shard));
    if (!c)
        goto oom;
    c->capacity = capacity;
    c->shard_bits = bits;
    atomic_init(&c->next_id, 1);
    for (int i = 0; i < n; i++) {
        lru_shard *s = &c->shards[i];
        /* Spread the remainder so the shards add up to capacity exactly. */
        s->capacity = capacity / (size_t)n + ((size_t)i < capacity % (size_t)n ? 1 : 0);
        s->lru.lru_next = s->lru.lru_prev = &s->lru;
        s->nbuckets = LRU_INITIAL_BUCKETS;
        s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
        if (!s->buckets || pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->buckets);
            for (int j = 0; j < i; j++) {
                pthread_mutex_destroy(&c->shards[j].mu);
                free(c->shards[j].buckets);
            }
            free(c);
            goto oom;
        }
    }
    return c;
oom:
    tl_err(TALUS_ENOMEM, "out of memory allocating a cache");
    return NULL;
}

static void lru_delete(tl_cache_handle *e)
{
    if (e->deleter)
        e->deleter(e->key, e->klen, e->value);
    free(e);
}

void tl_cache_free(tl_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < 1 << c->shard_bits; i++) {
        lru_shard *s = &c->shards[i];
        /* Every handle must have been released: all entries are idle. */
        for (size_t b = 0; b < s->nbuckets; b++) {
            tl_cache_handle *e = s->buckets[b];
            while (e) {
                tl_cache_handle *next = e->hash_next;
                lru_delete(e);
                e = next;
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

/* ---- Shard internals (REQUIRES: s->mu held) ----------------------------- */

static void lru_list_remove(tl_cache_handle *e)
{
    e->lru_next->lru_prev = e->lru_prev;
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next = e->lru_prev = NULL;
}

static void lru_list_append(lru_shard *s, tl_cache_handle *e)
{
    e->lru_next = &s->lru;
    e->lru_prev = s->lru.lru_prev;
    e->lru_prev->lru_next = e;
    s->lru.lru_prev = e;
}

static tl_cache_handle **lru_find_slot(lru_shard *s, const uint8_t *key, size_t klen, uint64_t hash)
{
    tl_cache_handle **pp = &s->buckets[hash & (s->nbuckets - 1)];
    while (*pp &&
           ((*pp)->hash != hash || (*pp)->klen != klen || memcmp((*pp)->key, key, klen) != 0))
        pp = &(*pp)->hash_next;
    return pp;
}

/* Double the table; a failed allocation just leaves longer chains. */
static void lru_grow(lru_shard *s)
{
    size_t nb = s->nbuckets * 2;
    tl_cache_handle **nbk = calloc(nb, sizeof(*nbk));
    if (!nbk)
        return;
    for (size_t b = 0; b < s->nbuckets; b++) {
        tl_cache_handle *e = s->buckets[b];
        while (e) {
            tl_cache_handle *next = e->hash_next;
            tl_cache_handle **slot = &nbk[e->hash & (nb - 1)];
            e->hash_next = *slot;
            *slot = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = nbk;
    s->nbuckets = nb;
}

/* Drop one reference; a dead entry goes on *dead for deletion after the
 * mutex is released. */
static void lru_unref(lru_shard *s, tl_cache_handle *e, tl_cache_handle **dead)
{
    if (--e->refs == 0) {
        e->hash_next = *dead;
        *dead = e;
    } else if (e->in_cache && e->refs == 1) {
        lru_list_append(s, e); /* only the cache holds it now */
    }
}

/* Take an entry that is in the table out of the cache (after it was
 * unlinked from its chain). */
static void lru_detach(lru_shard *s, tl_cache_handle *e, tl_cache_handle **dead)
{
    e->in_cache = false;
    s->usage -= e->charge;
    s->count--;
    if (e->lru_next)
        lru_list_remove(e);
    lru_unref(s, e, dead);
}

static void lru_evict(lru_shard *s, tl_cache_handle **dead)
{
    while (s->usage > s->capacity && s->lru.lru_next != &s->lru) {
        tl_cache_handle *old = s->lru.lru_next;
        tl_cache_handle **pp = lru_find_slot(s, old->key, old->klen, old->hash);
        *pp = old->hash_next;
        lru_detach(s, old, dead);
    }
}

static void lru_delete_all(tl_cache_handle *dead)
{
    while (dead) {
        tl_cache_handle *next = dead->hash_next;
        lru_delete(dead);
        dead = next;
    }
}

/* ---- API --------------------------------------------------------------- */

tl_cache_handle *tl_cache_insert(tl_cache *c, const uint8_t *key, size_t klen, void *value,
                                 size_t charge, tl_cache_deleter deleter)
{
    tl_cache_handle *e = malloc(sizeof(*e) + klen);
    if (!e) {
        tl_err(TALUS_ENOMEM, "out of memory inserting into a cache");
        return NULL;
    }
    uint64_t hash = lru_hash(key, klen);
    e->hash_next = NULL;
    e->lru_prev = e->lru_next = NULL;
    e->value = value;
    e->deleter = deleter;
    e->charge = charge;
    e->hash = hash;
    e->refs = 1; /* the returned handle */
    e->in_cache = false;
    e->klen = klen;
    if (klen)
        memcpy(e->key, key, klen);

    lru_shard *s = lru_shard_of(c, hash);
    tl_cache_handle *dead = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->capacity > 0) {
        e->refs++; /* the cache's reference */
        e->in_cache = true;
        s->usage += charge;
        s->count++;
        tl_cache_handle **pp = lru_find_slot(s, key, klen, hash);
        tl_cache_handle *old = *pp;
        if (old) {
            e->hash_next = old->hash_next;
            *pp = e;
            lru_detach(s, old, &dead);
        } else {
            *pp = e;
            if (s->count > s->nbuckets)
                lru_grow(s);
        }
        lru_evict(s, &dead);
    }
    pthread_mutex_unlock(&s->mu);
    lru_delete_all(dead);
    return e;
}

tl_cache_handle *tl_cache_lookup(tl_cache *c, const uint8_t *key, size_t klen)
{
    uint64_t hash = lru_hash(key, klen);
    lru_shard *s = lru_shard_of(c, hash);
    pthread_mutex_lock(&s->mu);
    tl_cache_handle *e = *lru_find_slot(s, key, klen, hash);
    if (e) {
        if (e->refs == 1)
            lru_list_remove(e); /* in use: not evictable */
        e->refs++;
        s->hits++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

void tl_cache_release(tl_cache *c, tl_cache_handle *h)
{
    if (!h)
        return;
    lru_shard *s = lru_shard_of(c, h->hash);
    tl_cache_handle *dead = NULL;
    pthread_mutex_lock(&s->mu);
    lru_unref(s, h, &dead);
    /* Entries pinned past capacity are trimmed as soon as they are idle. */
    if (s->usage > s->capacity)
        lru_evict(s, &dead);
    pthread_mutex_unlock(&s->mu);
    lru_delete_all(dead);
}

void *tl_cache_value(const tl_cache_handle *h)
{
    return h->value;
}

void tl_cache_erase(tl_cache *c, const uint8_t *key, size_t klen)
{
    uint64_t hash = lru_hash(key, klen);
    lru_shard *s = lru_shard_of(c, hash);
    tl_cache_handle *dead = NULL;
    pthread_mutex_lock(&s->mu);
    tl_cache_handle **pp = lru_find_slot(s, key, klen, hash);
    tl_cache_handle *e = *pp;
    if (e) {
        *pp = e->hash_next;
        lru_detach(s, e, &dead);
    }
    pthread_mutex_unlock(&s->mu);
    lru_delete_all(dead);
}

uint64_t tl_cache_new_id(tl_cache *c)
{
    return atomic_fetch_add_explicit(&c->next_id, 1, memory_order_relaxed);
}

static uint64_t lru_sum(const tl_cache *c, int what)
{
    uint64_t sum = 0;
    tl_cache *cc = (tl_cache *)c;
    for (int i = 0; i < 1 << c->shard_bits; i++) {
        lru_shard *s = &cc->shards[i];
        pthread_mutex_lock(&s->mu);
        sum += what == 0 ? s->usage : what == 1 ? s->hits : s->misses;
        pthread_mutex_unlock(&s->mu);
    }
    return sum;
}

size_t tl_cache_usage(const tl_cache *c)
{
    return (size_t)lru_sum(c, 0);
}

size_t tl_cache_capacity(const tl_cache *c)
{
    return c->capacity;
}

uint64_t tl_cache_hits(const tl_cache *c)
{
    return lru_sum(c, 1);
}

uint64_t tl_cache_misses(const tl_cache *c)
{
    return lru_sum(c, 2);
}
