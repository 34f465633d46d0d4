/*
 * cli_util.c - byte helpers of the `talus` CLI (see cli_util.h for the
 * escaping rules, which are part of the CLI's documented output format).
 */
#include "cli_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

void cli_put_escaped(FILE *f, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        if (c == '\\') {
            fputs("\\\\", f);
        } else if (c >= 0x20 && c <= 0x7e) {
            putc(c, f);
        } else {
            putc('\\', f);
            putc('x', f);
            putc(hexdig[c >> 4], f);
            putc(hexdig[c & 15], f);
        }
    }
}

void cli_put_hex(FILE *f, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        putc(hexdig[b[i] >> 4], f);
        putc(hexdig[b[i] & 15], f);
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cli_hex_decode(const char *s, uint8_t **out, size_t *len)
{
    size_t n = strlen(s);
    if (n % 2 != 0)
        return -1;
    uint8_t *buf = malloc(n / 2 + 1); /* +1: never malloc(0) */
    if (buf == NULL)
        return -2;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(buf);
            return -1;
        }
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = buf;
    *len = n / 2;
    return 0;
}

int cli_read_all(FILE *f, uint8_t **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return ENOMEM;
    for (;;) {
        if (n == cap) {
            /* Doubling keeps a large value O(size) to read. */
            uint8_t *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno ? errno : EIO;
                free(buf);
                return e;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

void cli_human_size(uint64_t bytes, char *buf, size_t cap)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%" PRIu64, bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%" PRIu64 " (%.1f %s)", bytes, v, units[u]);
}
