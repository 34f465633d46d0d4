/*
 * cli_util.c - byte helpers of the `talus` CLI (see cli_util.h for the
 * escaping rules, which are part of the CLI's documented output and batch
 * input formats).
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

void cli_human_short(uint64_t bytes, char *buf, size_t cap)
{
    if (bytes < 1024) {
        snprintf(buf, cap, "%" PRIu64 " B", bytes);
        return;
    }
    char tmp[64];
    cli_human_size(bytes, tmp, sizeof tmp);
    /* Keep what is inside the parentheses of "12345 (12.1 KiB)". */
    const char *open = strchr(tmp, '(');
    size_t len = open != NULL ? strlen(open + 1) : 0;
    if (open == NULL || len < 1) {
        snprintf(buf, cap, "%s", tmp);
        return;
    }
    snprintf(buf, cap, "%.*s", (int)(len - 1), open + 1);
}

int cli_unescape(char *tok, size_t n, size_t *out_n, size_t *bad_at)
{
    if (n == 2 && tok[0] == '"' && tok[1] == '"') {
        *out_n = 0;
        return 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok[i] != '\\') {
            tok[o++] = tok[i];
            continue;
        }
        *bad_at = i;
        if (i + 1 >= n)
            return -1;
        switch (tok[++i]) {
        case '\\':
            tok[o++] = '\\';
            break;
        case 's':
            tok[o++] = ' ';
            break;
        case 't':
            tok[o++] = '\t';
            break;
        case 'n':
            tok[o++] = '\n';
            break;
        case 'r':
            tok[o++] = '\r';
            break;
        case 'x': {
            int hi = i + 2 < n ? hexval(tok[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(tok[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            tok[o++] = (char)(hi << 4 | lo);
            i += 2;
            break;
        }
        default:
            return -1;
        }
    }
    *out_n = o;
    return 0;
}

void cli_put_token(FILE *f, const void *p, size_t n)
{
    const uint8_t *b = p;
    if (n == 0) {
        fputs("\"\"", f);
        return;
    }
    if (n == 2 && b[0] == '"' && b[1] == '"') {
        fputs("\\x22\"", f);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (b[i] == ' ')
            fputs("\\s", f);
        else
            cli_put_escaped(f, b + i, 1);
    }
}
