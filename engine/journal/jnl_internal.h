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

/* Record frame (FORMAT.md section 3): fixed64 payload length, fixed64
 * length_check = xxh3(the 8 length bytes), fixed64 xxh3(payload). */
#define JNL_FRAME_SIZE 24u
#define JNL_FRAME_LEN 0u
#define JNL_FRAME_LEN_CHECK 8u
#define JNL_FRAME_SUM 16u
/* The length and its check: the part of a frame a sector boundary may cut
 * when the tail of a file reads as zeros after a crash (FORMAT.md 4). */
#define JNL_FRAME_LEN_PART 16u
/* Smallest unit a device writes: after power loss the unsynced end of a
 * file may read as zeros from any multiple of this. */
#define JNL_SECTOR 512u

/* Encode a segment header for `number` into dst. */
void jnl_header_encode(uint8_t dst[JNL_HEADER_SIZE], uint32_t version, uint64_t number);

/* The length_check of a record frame: xxh3 of the length's 8 bytes. */
uint64_t jnl_length_check(uint64_t len);

/* Encode a frame for a payload of `len` bytes whose xxh3 is `sum`. */
void jnl_frame_encode(uint8_t dst[JNL_FRAME_SIZE], uint64_t len, uint64_t sum);

/* The number a segment file name stands for: true only for the canonical
 * name jnl_segment_name would produce (digits, at least 6, zero-padded to
 * exactly 6 when the number is shorter, then ".jnl"). `base` has no dir. */
bool jnl_parse_segment_name(const char *base, uint64_t *number);

#endif
