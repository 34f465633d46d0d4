/*
 * cli_util.h - byte helpers for the `talus` admin CLI: the unambiguous
 * escaping used by `talus scan`, hex in and out for --hex, reading a whole
 * stream for `put DB KEY -`, human-readable sizes for `talus stats`, and
 * the tokens of the `talus batch` input format.
 *
 * Escaping (documented in `talus --help`): bytes 0x20..0x7e except the
 * backslash are printed as they are; a backslash is printed as `\\`; every
 * other byte (including TAB and newline) is printed as `\xNN` with two
 * lowercase hex digits. So a scan line never contains a raw TAB or newline
 * except the one separator and the line end, and the original bytes can be
 * recovered exactly.
 */
#ifndef TALUS_CLI_UTIL_H
#define TALUS_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Write p[0..n) to f escaped as described above. */
void cli_put_escaped(FILE *f, const void *p, size_t n);
/* Write p[0..n) to f as lowercase hex, two digits a byte. */
void cli_put_hex(FILE *f, const void *p, size_t n);
/* Decode a hex string (even length, digits of either case). On success
 * *out is malloc'd (caller frees; never NULL, even for "") and 0 is
 * returned; -1 on bad input, -2 when out of memory. */
int cli_hex_decode(const char *s, uint8_t **out, size_t *len);
/* Read f to its end. *out is malloc'd (caller frees; never NULL). Returns 0
 * or an errno value. */
int cli_read_all(FILE *f, uint8_t **out, size_t *len);
/* "12345 (12.1 KiB)"-style rendering of a byte count into buf. */
void cli_human_size(uint64_t bytes, char *buf, size_t cap);
/* "12.1 KiB"-style (bytes below 1 KiB as "512 B"), for `-h`. */
void cli_human_short(uint64_t bytes, char *buf, size_t cap);

/*
 * Tokens of the batch format: the scan escaping plus a few escapes and the
 * "" rule, so that a token never needs a raw space or TAB and can be empty:
 *   \\ a backslash   \s a space   \t TAB   \n newline   \r CR
 *   \xNN the byte NN (two hex digits, either case)
 *   a token that is exactly "" (two double quotes) is the empty string.
 * Every other byte stands for itself; a backslash followed by anything else
 * is an error.
 */
/* Decode tok[0..n) in place; *out_n gets the decoded length (never more
 * than n). Returns 0, or -1 with *bad_at the offset of the bad escape. */
int cli_unescape(char *tok, size_t n, size_t *out_n, size_t *bad_at);
/* Write p[0..n) as one batch token: the scan escaping, a space as \s, the
 * empty string as "", and the two bytes "" as \x22". */
void cli_put_token(FILE *f, const void *p, size_t n);

#endif
