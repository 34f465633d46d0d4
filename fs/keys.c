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
 *  - the only escapes are "%00" (NUL), "%25" ('%'), "%2E" (first byte of
 *    ".", ".." and the root ".snap"), the whole name "%e" (empty component),
 *    and the markers "%+" (continuation, end of a name) and "%f" (conflict
 *    suffix, end of the last name). Every other '%' is a literal byte, and
 *    the encoder writes a '%' of the key as "%25" only where a literal one
 *    would be read as one of those escapes (pct_form);
 *  - whether a '%' is escaped depends on the component's bytes only, never
 *    on where a long component is cut into names, so the cut cannot create
 *    or break an escape, and the plain and conflict forms tokenize alike.
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

/* The two characters after a '%' that make it a 3-byte escape: 00, 25, 2E
 * (uppercase only). Nothing else after a '%' is an escape. */
static bool esc_pair(uint8_t a, uint8_t b)
{
    return (a == '0' && b == '0') || (a == '2' && (b == '5' || b == 'E'));
}

/* Whether the escaped text s[0..end) has a 3-byte escape at position i. */
static bool esc_at(const char *s, size_t end, size_t i)
{
    return s[i] == FSK_ESCAPE && end - i >= 3 && esc_pair((uint8_t)s[i + 1], (uint8_t)s[i + 2]);
}

enum { PCT_LIT, PCT_ESC, PCT_EITHER };

/*
 * How the '%' at c[j] is written: "%25" (PCT_ESC) exactly when a literal
 * '%' there would be read as an escape, else as itself (PCT_LIT).
 *  - followed by 00, 25 or 2E: it would read as %00, %25, %2E;
 *  - followed by one last byte '+' or 'f': the last name would end with the
 *    continuation marker or the conflict suffix;
 *  - the whole component is "%e" (whole): it would read as the empty
 *    component. "%e" is that escape only as the first name of a component,
 *    so a "%e" that is the tail of a cut component stays literal.
 * Only c's own bytes decide, never the cut into names. open: c[0..n) is the
 * start of a component that continues (a piece judged alone); when the
 * bytes that decide are not in c, either spelling may be right
 * (PCT_EITHER). Escapes begin with '0' or '2', so one known byte that is
 * neither is enough to say "literal".
 */
static int pct_form(const uint8_t *c, size_t n, size_t j, bool open, bool whole)
{
    if (n - j > 2)
        return esc_pair(c[j + 1], c[j + 2]) ? PCT_ESC : PCT_LIT;
    if (open)
        return (n - j == 2 && c[j + 1] != '0' && c[j + 1] != '2') ? PCT_LIT : PCT_EITHER;
    if (n - j == 2 && (c[j + 1] == '+' || c[j + 1] == 'f' || (whole && n == 2 && c[1] == 'e')))
        return PCT_ESC;
    return PCT_LIT;
}

/* Encoded size of byte c[j] of component c[0..n); dot: the component is
 * dot_special (its first byte is written %2E). */
static size_t tok_len(const uint8_t *c, size_t n, size_t j, bool dot)
{
    if (c[j] == 0 || (j == 0 && dot))
        return 3;
    if (c[j] == FSK_ESCAPE)
        return pct_form(c, n, j, false, true) == PCT_ESC ? 3 : 1;
    return 1;
}

static void put_tok(struct fsk_out *o, const uint8_t *c, size_t n, size_t j, bool dot)
{
    static const char hex[] = "0123456789ABCDEF";
    uint8_t b = c[j];
    if (tok_len(c, n, j, dot) == 3) {
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
            left += tok_len(c, n, j, dot);
        while (left > last_max) {
            size_t piece = 0;
            while (i < n) {
                size_t tl = tok_len(c, n, i, dot);
                if (piece + tl > FSK_PIECE_MAX)
                    break;
                put_tok(o, c, n, i, dot);
                piece += tl;
                i++;
            }
            out_put(o, "%+/", 3);
            left -= piece;
            names++;
        }
        for (; i < n; i++)
            put_tok(o, c, n, i, dot);
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

/*
 * Decode one name on its own. Everything that can be judged from the name
 * alone is checked here; whether a chain of "%+" names is the split the
 * encoder would make is checked by fsk_path_to_key (decode_chain).
 * first: the name starts its component (not the name after a "%+" one);
 * only there are "%e" and the "%2E" dot escape read as escapes.
 * tail_dots: n bytes are the last piece of a split conflict form with "%f"
 * taken off, which may be "." or ".." (the whole name is "..%f").
 */
static int decode_name(const char *name, size_t n, bool at_root, bool first, bool tail_dots,
                       uint8_t *out, size_t cap, size_t *outlen, bool *more)
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

    /* A last name never ends with a literal "%+" (pct_form), so these two
     * bytes are the marker; a continued piece may end "%+%+" or "%%+". */
    bool cont = n >= 2 && name[n - 2] == FSK_ESCAPE && name[n - 1] == '+';
    size_t end = cont ? n - 2 : n;
    if (cont && (end < FSK_PIECE_MIN || end > FSK_PIECE_MAX))
        return -ENOENT;

    size_t k = 0;
    bool dot = false;
    if (first && !cont && eq(name, n, "%e"))
        goto done;
    for (size_t i = 0; i < end;) {
        uint8_t b = (uint8_t)name[i];
        if (esc_at(name, end, i)) {
            if (name[i + 1] == '0')
                b = 0;
            else if (name[i + 2] == '5')
                b = FSK_ESCAPE;
            else if (i == 0 && first && !cont) {
                b = '.';
                dot = true;
            } else {
                return -ENOENT; /* a '.' that is never escaped there */
            }
            i += 3;
        } else {
            i++;
        }
        if (k >= cap)
            return -ENAMETOOLONG;
        out[k++] = b;
    }
    if (dot && !dot_special(out, k, at_root))
        return -ENOENT;

    /* Each '%' must be spelled as the encoder spells it, as far as this
     * name alone tells (the end of a continued piece may depend on the
     * next name). */
    for (size_t i = 0, j = 0; j < k; j++) {
        bool esc = esc_at(name, end, i);
        if (out[j] == FSK_ESCAPE) {
            int f = pct_form(out, k, j, cont, first);
            if ((f == PCT_ESC && !esc) || (f == PCT_LIT && esc))
                return -ENOENT;
        }
        i += esc ? 3 : 1;
    }
done:
    *outlen = k;
    if (more)
        *more = cont;
    return 0;
}

int fsk_name_to_bytes(const char *name, size_t n, bool at_root, uint8_t *out, size_t cap,
                      size_t *outlen, bool *more)
{
    return decode_name(name, n, at_root, true, false, out, cap, outlen, more);
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
        int rc = decode_name(path + *p, nlen, at_root && first, first, conflict && !first,
                             out + *klen, limit - *klen, &got, &more);
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
     * encoder splits a long component (whole tokens; a '%' keeps its
     * spelling, which the cut does not change), and the suffix goes on the
     * rest. A rest "%e" stays literal: it does not start the component. */
    size_t cut = n;
    if (n > FSK_NAME_MAX - 2) {
        cut = 0;
        for (;;) {
            size_t tl = esc_at(name, n, cut) ? 3 : 1;
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
    /* A continuation name is a directory; it never carries the suffix (and
     * a last name never ends with a literal "%+", so "x%+%f" is nothing). */
    if (n >= 4 && name[n - 4] == FSK_ESCAPE && name[n - 3] == '+')
        return false;
    if (plain_len)
        *plain_len = n - 2;
    return true;
}
