/*
 * arena.h - bump allocator for memtables. Allocation is thread-safe and
 * lock-free in the common case (a CAS on the current block); a mutex is
 * taken only to add a block. Memory is freed all at once.
 */
#ifndef TL_ARENA_H
#define TL_ARENA_H

#include <stddef.h>

typedef struct tl_arena tl_arena;

/* block_size: size of normal blocks (e.g. 1 MiB); larger requests get their
 * own block. Returns NULL on ENOMEM. */
tl_arena *tl_arena_new(size_t block_size);
void tl_arena_free(tl_arena *a);
/* 8-byte aligned memory, valid until tl_arena_free; NULL on ENOMEM. */
void *tl_arena_alloc(tl_arena *a, size_t n);
/* Bytes reserved from the system (blocks), approximate, thread-safe. */
size_t tl_arena_usage(const tl_arena *a);

#endif
