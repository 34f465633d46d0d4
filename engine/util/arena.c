/*
 * arena.c - the memtable's bump allocator.
 *
 * Invariants:
 *  - `cur` always points to a block whose `used` only grows; an allocation
 *    claims [used, used + n) with one CAS, so concurrent allocators never
 *    hand out overlapping ranges and never take a lock while the block has
 *    room.
 *  - A block is only added under `mu`; a thread that finds the current block
 *    full takes the mutex, re-checks that nobody replaced the block in the
 *    meantime, and installs a fresh one (release store, so the block's
 *    header is visible to threads that load `cur` with acquire).
 *  - Requests larger than a quarter of the block size get a dedicated block
 *    so the tail of the current block is not wasted.
 *  - Every block is on `blocks` and freed only by tl_arena_free.
 */
#include "util/arena.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define ARENA_ALIGN 8
#define ARENA_MIN_BLOCK 4096

struct block {
    struct block *next; /* list of all blocks, for freeing */
    size_t size;        /* bytes of data after the header */
    _Atomic size_t used;
    /* Pads the header to 16 bytes' alignment so data starts aligned. */
    alignas(16) unsigned char data[];
};

struct tl_arena {
    _Atomic(struct block *) cur;
    size_t block_size;
    _Atomic size_t usage;
    pthread_mutex_t mu; /* guards blocks and replacing cur */
    struct block *blocks;
};

static struct block *block_new(tl_arena *a, size_t size)
{
    if (size > SIZE_MAX - sizeof(struct block))
        return NULL;
    struct block *b = malloc(sizeof(struct block) + size);
    if (!b)
        return NULL;
    b->size = size;
    atomic_init(&b->used, 0);
    atomic_fetch_add_explicit(&a->usage, sizeof(struct block) + size, memory_order_relaxed);
    return b;
}

tl_arena *tl_arena_new(size_t block_size)
{
    if (block_size < ARENA_MIN_BLOCK)
        block_size = ARENA_MIN_BLOCK;
    tl_arena *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->block_size = block_size;
    atomic_init(&a->usage, sizeof *a);
    if (pthread_mutex_init(&a->mu, NULL) != 0) {
        free(a);
        return NULL;
    }
    struct block *b = block_new(a, block_size);
    if (!b) {
        pthread_mutex_destroy(&a->mu);
        free(a);
        return NULL;
    }
    b->next = NULL;
    a->blocks = b;
    atomic_init(&a->cur, b);
    return a;
}

void tl_arena_free(tl_arena *a)
{
    if (!a)
        return;
    struct block *b = a->blocks;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* Try to claim n bytes from b; NULL if it does not have room. */
static void *block_claim(struct block *b, size_t n)
{
    size_t used = atomic_load_explicit(&b->used, memory_order_relaxed);
    for (;;) {
        if (b->size - used < n)
            return NULL;
        if (atomic_compare_exchange_weak_explicit(&b->used, &used, used + n, memory_order_relaxed,
                                                  memory_order_relaxed))
            return b->data + used;
    }
}

static void *alloc_big(tl_arena *a, size_t n)
{
    pthread_mutex_lock(&a->mu);
    struct block *b = block_new(a, n);
    if (b) {
        atomic_store_explicit(&b->used, n, memory_order_relaxed);
        b->next = a->blocks;
        a->blocks = b;
    }
    pthread_mutex_unlock(&a->mu);
    return b ? b->data : NULL;
}

void *tl_arena_alloc(tl_arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - (ARENA_ALIGN - 1))
        return NULL;
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n > a->block_size / 4)
        return alloc_big(a, n);

    for (;;) {
        struct block *b = atomic_load_explicit(&a->cur, memory_order_acquire);
        void *p = block_claim(b, n);
        if (p)
            return p;
        pthread_mutex_lock(&a->mu);
        /* Another thread may have installed a new block while we waited. */
        if (atomic_load_explicit(&a->cur, memory_order_relaxed) == b) {
            struct block *nb = block_new(a, a->block_size);
            if (!nb) {
                pthread_mutex_unlock(&a->mu);
                return NULL;
            }
            nb->next = a->blocks;
            a->blocks = nb;
            atomic_store_explicit(&a->cur, nb, memory_order_release);
        }
        pthread_mutex_unlock(&a->mu);
    }
}

size_t tl_arena_usage(const tl_arena *a)
{
    return atomic_load_explicit(&((tl_arena *)a)->usage, memory_order_relaxed);
}
