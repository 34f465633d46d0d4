/*
 * blob_format.h - the byte layout of a blob file (FORMAT.md), shared by the
 * writer and the reader of engine/blob/. Internal to the module.
 */
#ifndef TL_BLOB_FORMAT_H
#define TL_BLOB_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"

#define BL_HEADER_SIZE 16u
#define BL_FOOTER_SIZE 32u
#define BL_CHECKSUM_SIZE 8u
/* A chunk on disk: its bytes and their checksum. */
#define BL_CHUNK_DISK (BL_CHUNK + BL_CHECKSUM_SIZE)
#define BL_HEADER_MAGIC "TLUSBLOB"
#define BL_FOOTER_MAGIC "TLBLOBFT"
#define BL_MAGIC_SIZE 8u

/* Number of chunks of a value of `length` bytes (0 for an empty value). */
static inline uint64_t bl_chunk_count(uint64_t length)
{
    return length / BL_CHUNK + (length % BL_CHUNK != 0);
}

/* File offset of the first byte of chunk c. */
static inline uint64_t bl_chunk_offset(uint64_t c)
{
    return BL_HEADER_SIZE + c * (uint64_t)BL_CHUNK_DISK;
}

/* Bytes of value in chunk c (c < bl_chunk_count(length)). */
static inline uint32_t bl_chunk_len(uint64_t length, uint64_t c)
{
    uint64_t rest = length - c * BL_CHUNK;
    return rest < BL_CHUNK ? (uint32_t)rest : BL_CHUNK;
}

/* Checksum of chunk c: seeding with the chunk's index means a chunk that
 * ends up at another position in the file (or in another blob at another
 * index) does not verify. */
uint64_t bl_chunk_checksum(const void *p, size_t n, uint64_t c);

/* malloc'd "<dir>/<number>.blob" + suffix ("" or ".tmp"); NULL with the
 * message set on ENOMEM. */
char *bl_path_alloc(const char *dir, uint64_t number, const char *suffix);

#endif
