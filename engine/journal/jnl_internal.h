/*
 * jnl_internal.h - on-disk constants of the journal (FORMAT.md) and helpers
 * shared by the writer, the reader and the tests. Not for other modules.
 */
#ifndef TL_JNL_INTERNAL_H
#define TL_JNL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* "TLUSJRNL" read as a little-endian fixed64. */
#define JNL_MAGIC 0x4c4e524a53554c54ull
/* magic(8) version(4) reserved(4) number(8) checksum(8) */
#define JNL_HEADER_SIZE 32u
/* fixed64 payload length, fixed64 xxh3(length bytes ‖ payload) */
#define JNL_FRAME_SIZE 16u

/* Encode a segment header for `number` into dst. */
void jnl_header_encode(uint8_t dst[JNL_HEADER_SIZE], uint32_t version, uint64_t number);

/* The number a segment file name stands for: true only for the canonical
 * name jnl_segment_name would produce (digits, at least 6, zero-padded to
 * exactly 6 when the number is shorter, then ".jnl"). `base` has no dir. */
bool jnl_parse_segment_name(const char *base, uint64_t *number);

#endif
