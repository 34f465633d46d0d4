/*
 * keys.c - the reversible key <-> path codec of talusfs. fs/KEYS.md is the
 * specification; this file is its reference implementation.
 *
 * Invariants the code keeps (and the tests check):
 *  - one encoder (encode_component) produces every name; the decoder accepts
 *    a component's names only if re-encoding the decoded bytes gives back
 *    exactly the same characters, so there is one spelling per key;
 *  - a produced name is 1..255 bytes, has no '/' or NUL, is never "." or
 *    "..", and at the root is never ".snap";
 *  - escapes are '%' + two UPPERCASE hex digits (only %00, %25 and, as the
 *    first byte of ".", ".." and the root ".snap", %2E), or '%' + one
 *    non-hex character: "%e" (empty component), "%+" (continuation, at the
 *    end of a name) and "%f" (conflict suffix, at the end of the last name).
 *
 * Pure code: no allocation, no I/O, no engine calls (talus.h only for
 * TALUS_MAX_KEY), so every function is thread-safe.
 */
#include "keys.h"

#include <errno.h>
#include <string.h>

#include "talus.h"

/* A name that continues in the next one holds 251..253 bytes of escaped
 * content followed by the 2-byte marker "%+" (a greedy split of whole
 * tokens never leaves more than 2 bytes unused, tokens being 1 or 3 bytes). */
#define FSK_PIECE_MAX (FSK_NAME_MAX - 2)
#define FSK_PIECE_MIN (FSK_PIECE_MAX - 2)

/* Output of the encoder: writes into buf, or (buf == NULL) compares with
 * cmp, which is how the decoder checks that a spelling is canonical. */
struct fsk_out {
    char *buf;
    const char *cmp;
    size_t cap; /* bytes that may be written / length of cmp */
    size_t len;
    bool fail; /* out of room, or a byte differs from cmp */
};

static void out_put(struct fsk_out *o, const char *s, size_t n)
{
    if (o->fail)
        return;
    if (n > o->cap - o->len) {
        o->fail = true;
        return;
    }
    if (o->buf)
        memcpy(o->buf + o->len, s, n);
    else if (memcmp(o->cmp + o->len, s, n) != 0) {
        o->fail = true;
        return;
    }
    o->len += n;
}

static bool eq(const void *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

/* Whether the first '.' of this component must be written %2E: the
 * component would otherwise be the name "." or "..", or, at the root, the
 * reserved ".snap" directory. */
static bool dot_special(const uint8_t *c, size_t n, bool at_root)
{
    return eq(c, n, ".") || eq(c, n, "..") || (at_root && eq(c, n, ".snap"));
}

/* Encoded size of byte b; esc_dot: b is the '.' that dot_special escapes. */
static size_t byte_len(uint8_t b, bool esc_dot)
{
    return (b == 0 || b == FSK_ESCAPE || esc_dot) ? 3 : 1;
}

static void put_byte(struct fsk_out *o, uint8_t b, bool esc_dot)
{
    static const char hex[] = "0123456789ABCDEF";
    if (byte_len(b, esc_dot) == 3) {
        char t[3] = {FSK_ESCAPE, hex[b >> 4], hex[b & 15]};
        out_put(o, t, 3);
    } else {
        char ch = (char)b;
        out_put(o, &ch, 1);
    }
}

/*
 * Emit the names of component c (no '/' inside), joined by '/'. In the
 * conflict form the last name keeps 2 bytes free and ends with "%f".
 * Long components are split greedily: while what is left does not fit in
 * the last name, emit a name holding as many whole tokens as fit in 253
 * bytes, then "%+". What is left for the last name is then at least 3
 * bytes (plain form; >= 1 in the conflict form), so it is never "." or "..".
 */
static void encode_component(const uint8_t *c, size_t n, bool at_root, bool conflict,
                             struct fsk_out *o, int *nnames)
{
    size_t last_max = conflict ? FSK_NAME_MAX - 2 : FSK_NAME_MAX;
    int names = 1;

    if (n == 0) {
        out_put(o, "%e", 2);
    } else {
        bool dot = dot_special(c, n, at_root);
        size_t left = 0, i = 0;
        for (size_t j = 0; j < n; j++)
            left += byte_len(c[j], dot && j == 0);
        while (left > last_max) {
            size_t piece = 0;
            while (i < n) {
                size_t tl = byte_len(c[i], dot && i == 0);
                if (piece + tl > FSK_PIECE_MAX)
                    break;
                put_byte(o, c[i], dot && i == 0);
                piece += tl;
                i++;
            }
            out_put(o, "%+/", 3);
            left -= piece;
            names++;
        }
        for (; i < n; i++)
            put_byte(o, c[i], dot && i == 0);
    }
    if (conflict)
        out_put(o, "%f", 2);
    if (nnames)
        *nnames = names;
}

static const uint8_t *find_slash(const uint8_t *p, size_t n)
{
    return n ? memchr(p, '/', n) : NULL;
}

int fsk_component_to_names(const uint8_t *comp, size_t n, bool at_root, char *out, size_t cap,
                           size_t *outlen, int *nnames)
{
    if (find_slash(comp, n))
        return -EINVAL;
    if (cap == 0)
        return -ENAMETOOLONG;
    struct fsk_out o = {.buf = out, .cap = cap - 1};
    encode_component(comp, n, at_root, false, &o, nnames);
    if (o.fail)
        return -ENAMETOOLONG;
    out[o.len] = '\0';
    *outlen = o.len;
    return 0;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1; /* lowercase is not canonical */
}

/*
 * Decode one name on its own. Everything that can be judged from the name
 * alone is checked here; whether a chain of "%+" names is the split the
 * encoder would make is checked by fsk_path_to_key (decode_chain).
 * tail_dots: n bytes are the last piece of a split conflict form with "%f"
 * taken off, which may be "." or ".." (the whole name is "..%f").
 */
static int decode_name(const char *name, size_t n, bool at_root, bool tail_dots, uint8_t *out,
                       size_t cap, size_t *outlen, bool *more)
{
    if (n == 0)
        return -ENOENT;
    if (n > FSK_NAME_MAX)
        return -ENAMETOOLONG;
    if (memchr(name, '/', n) || memchr(name, '\0', n))
        return -ENOENT;
    if (!tail_dots && (eq(name, n, ".") || eq(name, n, "..")))
        return -ENOENT;
    if (at_root && eq(name, n, ".snap"))
        return -ENOENT;

    bool cont = n >= 2 && name[n - 2] == FSK_ESCAPE && name[n - 1] == '+';
    size_t end = cont ? n - 2 : n;
    if (cont && (end < FSK_PIECE_MIN || end > FSK_PIECE_MAX))
        return -ENOENT;

    size_t k = 0;
    bool dot = false;
    if (!cont && eq(name, n, "%e"))
        goto done;
    for (size_t i = 0; i < end;) {
        uint8_t b;
        if (name[i] != FSK_ESCAPE) {
            b = (uint8_t)name[i++];
        } else {
            if (end - i < 3)
                return -ENOENT;
            int hi = hex_digit(name[i + 1]), lo = hex_digit(name[i + 2]);
            if (hi < 0 || lo < 0)
                return -ENOENT;
            b = (uint8_t)(hi << 4 | lo);
            if (b == '.' && i == 0 && !cont)
                dot = true;
            else if (b != 0 && b != FSK_ESCAPE)
                return -ENOENT; /* a byte that is never escaped there */
            i += 3;
        }
        if (k >= cap)
            return -ENAMETOOLONG;
        out[k++] = b;
    }
    if (dot && !dot_special(out, k, at_root))
        return -ENOENT;
done:
    *outlen = k;
    if (more)
        *more = cont;
    return 0;
}

int fsk_name_to_bytes(const char *name, size_t n, bool at_root, uint8_t *out, size_t cap,
                      size_t *outlen, bool *more)
{
    return decode_name(name, n, at_root, false, out, cap, outlen, more);
}

int fsk_key_to_path(const uint8_t *key, size_t klen, char *out, size_t cap, size_t *outlen)
{
    if (klen > TALUS_MAX_KEY || cap == 0)
        return -ENAMETOOLONG;
    struct fsk_out o = {.buf = out, .cap = cap - 1};
    size_t s = 0;
    for (;;) {
        const uint8_t *sl = find_slash(key + s, klen - s);
        size_t e = sl ? (size_t)(sl - key) : klen;
        if (s > 0)
            out_put(&o, "/", 1);
        encode_component(key + s, e - s, s == 0, false, &o, NULL);
        if (!sl)
            break;
        s = e + 1;
    }
    if (o.fail)
        return -ENAMETOOLONG;
    out[o.len] = '\0';
    *outlen = o.len;
    return 0;
}

/*
 * Decode the chain of names that spells one component, starting at path[*p]
 * (its names end with "%+" except the last), append its bytes to out at
 * *klen, and check that re-encoding them gives exactly the chain. *p is
 * left on the byte after the chain (a '/' or the end of the path).
 */
static int decode_chain(const char *path, size_t plen, size_t *p, bool at_root, uint8_t *out,
                        size_t limit, size_t *klen)
{
    size_t start = *p, kstart = *klen, q;
    bool conflict = false, first = true;

    for (;;) {
        const char *sl = memchr(path + *p, '/', plen - *p);
        q = sl ? (size_t)(sl - path) : plen;
        size_t nlen = q - *p, plain, got;
        bool more;
        if (nlen > FSK_NAME_MAX)
            return -ENAMETOOLONG; /* checked before the suffix is taken off */
        if (q == plen && fsk_is_conflict_name(path + *p, nlen, &plain)) {
            conflict = true;
            nlen = plain;
        }
        int rc = decode_name(path + *p, nlen, at_root && first, conflict && !first, out + *klen,
                             limit - *klen, &got, &more);
        if (rc < 0)
            return rc;
        *klen += got;
        if (!more)
            break;
        if (q == plen)
            return -ENOENT; /* ends inside a component: a directory, not a key */
        *p = q + 1;
        first = false;
    }
    *p = q;

    struct fsk_out o = {.cmp = path + start, .cap = q - start};
    encode_component(out + kstart, *klen - kstart, at_root, conflict, &o, NULL);
    if (o.fail || o.len != q - start)
        return -ENOENT;
    return 0;
}

int fsk_path_to_key(const char *path, size_t plen, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t limit = cap < TALUS_MAX_KEY ? cap : TALUS_MAX_KEY;
    size_t p = 0, klen = 0;

    if (plen == 0)
        return -ENOENT; /* the root directory is not a key */
    for (;;) {
        int rc = decode_chain(path, plen, &p, p == 0, out, limit, &klen);
        if (rc < 0)
            return rc;
        if (p == plen)
            break;
        p++; /* the '/' between components */
        if (klen >= limit)
            return -ENAMETOOLONG;
        out[klen++] = '/';
    }
    *outlen = klen;
    return 0;
}

int fsk_conflict_name(const char *name, size_t n, char *out, size_t cap, size_t *outlen)
{
    uint8_t scratch[FSK_NAME_MAX];
    size_t got, plain;
    bool more = false;

    /* Only plain names (valid at the root or below it) get the suffix. */
    int rc = fsk_name_to_bytes(name, n, false, scratch, sizeof(scratch), &got, &more);
    if (rc == -ENOENT)
        rc = fsk_name_to_bytes(name, n, true, scratch, sizeof(scratch), &got, &more);
    if (rc < 0 || more || fsk_is_conflict_name(name, n, &plain))
        return -EINVAL;

    /* A name of 254 or 255 bytes has no room for "%f": it is split as the
     * encoder splits a long component, and the suffix goes on the rest. */
    size_t cut = n;
    if (n > FSK_NAME_MAX - 2) {
        cut = 0;
        for (;;) {
            size_t tl = name[cut] == FSK_ESCAPE ? 3 : 1;
            if (cut + tl > FSK_PIECE_MAX)
                break;
            cut += tl;
        }
    }
    if (cap == 0)
        return -ENAMETOOLONG;
    struct fsk_out o = {.buf = out, .cap = cap - 1};
    out_put(&o, name, cut);
    if (cut < n) {
        out_put(&o, "%+/", 3);
        out_put(&o, name + cut, n - cut);
    }
    out_put(&o, "%f", 2);
    if (o.fail)
        return -ENAMETOOLONG;
    out[o.len] = '\0';
    *outlen = o.len;
    return 0;
}

bool fsk_is_conflict_name(const char *name, size_t n, size_t *plain_len)
{
    if (n < 3 || name[n - 2] != FSK_ESCAPE || name[n - 1] != 'f')
        return false;
    /* A continuation name is a directory; it never carries the suffix. */
    if (n >= 4 && name[n - 4] == FSK_ESCAPE && name[n - 3] == '+')
        return false;
    if (plain_len)
        *plain_len = n - 2;
    return true;
}
