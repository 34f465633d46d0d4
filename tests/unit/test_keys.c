/*
 * test_keys.c - the key<->path codec (fs/keys.c, specified by fs/KEYS.md):
 * the worked examples of KEYS.md as exact assertions, seeded random keys
 * with every byte value, many '/', '%', NUL, '.', empty and long components
 * (round trip, name rules, no two keys share a path), mutated paths (any
 * accepted spelling is the canonical one), split boundaries, conflict
 * names, and the length limits (outputs in exact-size heap buffers, so ASan
 * sees any overrun).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "talus.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

static void seed_rng(const char *test)
{
    const char *env = getenv("TEST_SEED");
    rng_state = env ? strtoull(env, NULL, 0) : 0x6b657973ull;
    if (!rng_state)
        rng_state = 1;
    printf("# %s: seed 0x%llx (set TEST_SEED to repeat)\n", test, (unsigned long long)rng_state);
}

/* A path buffer large enough for any key (KEYS.md: 4 * klen + 8). */
static size_t path_cap(size_t klen)
{
    return 4 * klen + 8;
}

static char *key_path(const uint8_t *k, size_t klen, size_t *plen)
{
    char *p = malloc(path_cap(klen));
    assert_non_null(p);
    assert_int_equal(fsk_key_to_path(k, klen, p, path_cap(klen), plen), 0);
    assert_int_equal(strlen(p), *plen);
    return p;
}

/* Decode path into an exact-size heap copy; returns the rc. */
static int path_key(const char *path, size_t plen, uint8_t *out, size_t cap, size_t *klen)
{
    char *p = malloc(plen ? plen : 1);
    assert_non_null(p);
    memcpy(p, path, plen);
    int rc = fsk_path_to_key(p, plen, out, cap, klen);
    free(p);
    return rc;
}

static void expect_roundtrip(const uint8_t *k, size_t klen, const char *path, size_t plen)
{
    size_t got;
    uint8_t *back = malloc(TALUS_MAX_KEY);
    assert_non_null(back);
    int rc = path_key(path, plen, back, TALUS_MAX_KEY, &got);
    if (rc != 0)
        fail_msg("path \"%.*s\" does not decode: rc %d", (int)plen, path, rc);
    assert_int_equal(got, klen);
    assert_memory_equal(back, k, klen);
    free(back);
}

static char *repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

/* ---- worked examples (the same strings as in KEYS.md) ---- */

struct example {
    const char *key;
    size_t klen;
    const char *path;
};

#define EX(k, p)                                                                                   \
    {                                                                                              \
        k, sizeof(k) - 1, p                                                                        \
    }

static const struct example examples[] = {
    EX("a/b.txt", "a/b.txt"),
    EX("logs/2026/x", "logs/2026/x"),
    EX("caf\xc3\xa9 menu", "caf\xc3\xa9 menu"),
    EX("\x01\x7f\xff", "\x01\x7f\xff"),
    EX("50%/x", "50%25/x"),
    EX("a\0b", "a%00b"),
    EX("\0", "%00"),
    EX("%e", "%25e"),
    EX("%2E", "%252E"),
    EX("", "%e"),
    EX("/a", "%e/a"),
    EX("a//b", "a/%e/b"),
    EX("dir/", "dir/%e"),
    EX("/", "%e/%e"),
    EX(".", "%2E"),
    EX("..", "%2E."),
    EX("...", "..."),
    EX(".x", ".x"),
    EX("a/./b", "a/%2E/b"),
    EX("a/../b", "a/%2E./b"),
    EX(".snap", "%2Esnap"),
    EX(".snap/1", "%2Esnap/1"),
    EX("a/.snap", "a/.snap"),
    EX(".snapshot", ".snapshot"),
    EX("x/.", "x/%2E"),
};

static void test_examples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
        const struct example *e = &examples[i];
        size_t plen;
        char *p = key_path((const uint8_t *)e->key, e->klen, &plen);
        assert_string_equal(p, e->path);
        expect_roundtrip((const uint8_t *)e->key, e->klen, e->path, strlen(e->path));
        free(p);
    }
}

/* Long components: a x 255 fits; a x 256 and a x 300 split after 253 bytes;
 * a x 252 + NUL + b x 10 splits before the %00 (never inside it). */
static void test_examples_long(void **state)
{
    (void)state;
    char *a255 = repeat('a', 255), *a253 = repeat('a', 253), *a252 = repeat('a', 252);
    char expect[1024];
    uint8_t key[600];
    size_t plen;
    char *p;

    p = key_path((const uint8_t *)a255, 255, &plen);
    assert_string_equal(p, a255);
    free(p);

    memset(key, 'a', 300);
    p = key_path(key, 256, &plen);
    snprintf(expect, sizeof(expect), "%s%%+/aaa", a253);
    assert_string_equal(p, expect);
    expect_roundtrip(key, 256, p, plen);
    free(p);

    p = key_path(key, 300, &plen);
    char *a47 = repeat('a', 47);
    snprintf(expect, sizeof(expect), "%s%%+/%s", a253, a47);
    assert_string_equal(p, expect);
    free(a47);
    free(p);

    memset(key, 'a', 252);
    key[252] = '\0';
    memset(key + 253, 'b', 10);
    p = key_path(key, 263, &plen);
    snprintf(expect, sizeof(expect), "%s%%+/%%00bbbbbbbbbb", a252);
    assert_string_equal(p, expect);
    expect_roundtrip(key, 263, p, plen);
    free(p);

    /* 600 bytes of NUL: 84 escapes (252 bytes) per continued name */
    memset(key, 0, 600);
    int nnames;
    char names[2048];
    assert_int_equal(fsk_component_to_names(key, 600, false, names, sizeof(names), &plen, &nnames),
                     0);
    assert_int_equal(nnames, 8); /* 7 x 84 = 588 bytes, then 12 */
    assert_int_equal(plen, 7 * 255 + 12 * 3);
    free(a255);
    free(a253);
    free(a252);
}

/* ---- spellings that must be refused ---- */

static void expect_rc(const char *path, size_t plen, int rc)
{
    uint8_t out[1024];
    size_t klen;
    int got = path_key(path, plen, out, sizeof(out), &klen);
    if (got != rc)
        fail_msg("path \"%.*s\": rc %d, want %d", (int)plen, path, got, rc);
}

static void test_examples_conflict(void **state)
{
    (void)state;
    char out[FSK_NAME_MAX + 6], expect[600];
    size_t n;
    char *a253 = repeat('a', 253), *a254 = repeat('a', 254), *a255 = repeat('a', 255);

    assert_int_equal(fsk_conflict_name("a", 1, out, sizeof(out), &n), 0);
    assert_string_equal(out, "a%f");
    assert_int_equal(fsk_conflict_name("%e", 2, out, sizeof(out), &n), 0);
    assert_string_equal(out, "%e%f");
    assert_int_equal(fsk_conflict_name("%2Esnap", 7, out, sizeof(out), &n), 0);
    assert_string_equal(out, "%2Esnap%f");
    assert_int_equal(fsk_conflict_name(a253, 253, out, sizeof(out), &n), 0);
    snprintf(expect, sizeof(expect), "%s%%f", a253);
    assert_string_equal(out, expect);
    assert_int_equal(fsk_conflict_name(a254, 254, out, sizeof(out), &n), 0);
    snprintf(expect, sizeof(expect), "%s%%+/a%%f", a253);
    assert_string_equal(out, expect);
    assert_int_equal(n, 259);
    assert_int_equal(fsk_conflict_name(a255, 255, out, sizeof(out), &n), 0);
    snprintf(expect, sizeof(expect), "%s%%+/aa%%f", a253);
    assert_string_equal(out, expect);

    /* a x 251 + %00: the cut is before the escape */
    char name[260];
    memset(name, 'a', 251);
    memcpy(name + 251, "%00", 3);
    assert_int_equal(fsk_conflict_name(name, 254, out, sizeof(out), &n), 0);
    snprintf(expect, sizeof(expect), "%.251s%%+/%%00%%f", a253);
    assert_string_equal(out, expect);

    /* the conflict spellings decode to the plain key */
    static const struct example cx[] = {
        EX("a", "a%f"),           EX("x/a", "x/a%f"), EX("", "%e%f"),
        EX(".snap", "%2Esnap%f"), EX(".", "%2E%f"),   EX("d/", "d/%e%f"),
    };
    for (size_t i = 0; i < sizeof(cx) / sizeof(cx[0]); i++)
        expect_roundtrip((const uint8_t *)cx[i].key, cx[i].klen, cx[i].path, strlen(cx[i].path));
    uint8_t key[300];
    memset(key, 'a', 300);
    snprintf(expect, sizeof(expect), "%s%%+/a%%f", a253);
    expect_roundtrip(key, 254, expect, strlen(expect));
    /* the rest after the cut may be "." or "..": the name is ".%f" */
    key[253] = '.';
    key[254] = '.';
    snprintf(expect, sizeof(expect), "%s%%+/..%%f", a253);
    expect_roundtrip(key, 255, expect, strlen(expect));
    snprintf(expect, sizeof(expect), "%s%%+/.%%f", a253);
    expect_roundtrip(key, 254, expect, strlen(expect));
    snprintf(expect, sizeof(expect), "%s..", a253);
    assert_int_equal(fsk_conflict_name(expect, 255, out, sizeof(out), &n), 0);
    snprintf(expect, sizeof(expect), "%s%%+/..%%f", a253);
    assert_string_equal(out, expect);
    /* without the suffix, a ".." piece is refused */
    snprintf(expect, sizeof(expect), "%s%%+/..", a253);
    expect_rc(expect, strlen(expect), -ENOENT);

    free(a253);
    free(a254);
    free(a255);
}

static void test_noncanonical(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",     "/",      "a/",      "/a",        "a//b",   ".",           "..",       "a/.",
        "a/..", "%",      "a%",      "%2",        "%0",     "%zz",         "%2e",      "%2f",
        "%2F",  "%41",    "%61",     "%E",        "%e%e",   "a%e",         "%ea",      "%E%f",
        "%2Ex", "%2E%2E", "%2E..",   "x%2E",      ".snap",  "a/%2Esnap",   "%2Esnapx", "%+",
        "a%+",  "%f",     "a%f%f",   "a%f/b",     "%e%f/x", "a%F",         "%ff",      "%25%2",
        "a%+b", "%+%f",   ".snap%f", "a/%2E.%2E", "%00%2E", "x/%2Esnap%f",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_rc(bad[i], strlen(bad[i]), -ENOENT);
    expect_rc("a\0b", 3, -ENOENT); /* a NUL in a name */

    char *a = repeat('a', 600);
    char p[1200];
    /* a continued name that is not full-length */
    snprintf(p, sizeof(p), "%.250s%%+/%.50s", a, a);
    expect_rc(p, strlen(p), -ENOENT);
    /* a split where everything fits in one name (254 bytes) */
    snprintf(p, sizeof(p), "%.253s%%+/a", a);
    expect_rc(p, strlen(p), -ENOENT);
    /* a split that is not greedy: 252 + "a" could have taken one more byte */
    snprintf(p, sizeof(p), "%.252s%%+/%.10s", a, a);
    expect_rc(p, strlen(p), -ENOENT);
    /* a path that ends inside a component (a continuation directory) */
    snprintf(p, sizeof(p), "%.253s%%+", a);
    expect_rc(p, strlen(p), -ENOENT);
    /* specials as the last piece of a chain */
    static const char *tails[] = {"%e", "%2E", "%2E.", "..", "%2Esnap", "%2Eab"};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        snprintf(p, sizeof(p), "%.253s%%+/%s", a, tails[i]);
        expect_rc(p, strlen(p), -ENOENT);
    }
    /* a valid 253-byte piece followed by a name that is not a piece */
    snprintf(p, sizeof(p), "%.253s%%+/%%+", a);
    expect_rc(p, strlen(p), -ENOENT);
    /* a conflict suffix on a name that would have fit a split form */
    snprintf(p, sizeof(p), "%.253s%%+/%%f", a);
    expect_rc(p, strlen(p), -ENOENT);
    /* names over 255 bytes */
    expect_rc(a, 256, -ENAMETOOLONG);
    snprintf(p, sizeof(p), "%.254s%%f", a);
    expect_rc(p, strlen(p), -ENAMETOOLONG);
    free(a);
}

static void test_name_api(void **state)
{
    (void)state;
    uint8_t b[FSK_NAME_MAX];
    size_t n;
    bool more = true;

    assert_int_equal(fsk_name_to_bytes("%2Esnap", 7, true, b, sizeof(b), &n, &more), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(b, ".snap", 5);
    assert_false(more);
    assert_int_equal(fsk_name_to_bytes("%2Esnap", 7, false, b, sizeof(b), &n, &more), -ENOENT);
    assert_int_equal(fsk_name_to_bytes(".snap", 5, true, b, sizeof(b), &n, &more), -ENOENT);
    assert_int_equal(fsk_name_to_bytes(".snap", 5, false, b, sizeof(b), &n, &more), 0);
    assert_int_equal(fsk_name_to_bytes("%e", 2, false, b, sizeof(b), &n, &more), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fsk_name_to_bytes("a%00", 4, false, b, 1, &n, &more), -ENAMETOOLONG);
    assert_int_equal(fsk_name_to_bytes("a%f", 3, false, b, sizeof(b), &n, &more), -ENOENT);

    char name[FSK_NAME_MAX + 1];
    memset(name, 'z', 253);
    memcpy(name + 253, "%+", 2);
    assert_int_equal(fsk_name_to_bytes(name, 255, true, b, sizeof(b), &n, &more), 0);
    assert_int_equal(n, 253);
    assert_true(more);
    memcpy(name + 251, "%25%+", 5); /* 251 + %25 = 254 content: too long */
    assert_int_equal(fsk_name_to_bytes(name, 256, false, b, sizeof(b), &n, &more), -ENAMETOOLONG);
    memcpy(name + 250, "%25%+", 5); /* 253 content */
    assert_int_equal(fsk_name_to_bytes(name, 255, false, b, sizeof(b), &n, &more), 0);
    assert_int_equal(n, 251);
    assert_true(more);

    /* fsk_component_to_names: at_root, '/', nnames, too-small buffer */
    char out[64];
    int nn;
    assert_int_equal(
        fsk_component_to_names((const uint8_t *)".snap", 5, true, out, sizeof(out), &n, &nn), 0);
    assert_string_equal(out, "%2Esnap");
    assert_int_equal(nn, 1);
    assert_int_equal(
        fsk_component_to_names((const uint8_t *)".snap", 5, false, out, sizeof(out), &n, &nn), 0);
    assert_string_equal(out, ".snap");
    assert_int_equal(
        fsk_component_to_names((const uint8_t *)"a/b", 3, false, out, sizeof(out), &n, &nn),
        -EINVAL);
    assert_int_equal(fsk_component_to_names((const uint8_t *)"%", 1, false, out, 3, &n, &nn),
                     -ENAMETOOLONG);
    assert_int_equal(fsk_component_to_names((const uint8_t *)"%", 1, false, out, 4, &n, &nn), 0);
    assert_string_equal(out, "%25");

    /* conflict helpers */
    size_t plain;
    assert_true(fsk_is_conflict_name("a%f", 3, &plain));
    assert_int_equal(plain, 1);
    assert_true(fsk_is_conflict_name("%e%f", 4, &plain));
    assert_int_equal(plain, 2);
    assert_false(fsk_is_conflict_name("%f", 2, &plain));
    assert_false(fsk_is_conflict_name("a", 1, &plain));
    assert_false(fsk_is_conflict_name("a%F", 3, &plain));
    assert_false(fsk_is_conflict_name("a%+%f", 5, &plain));
    static const char *notplain[] = {"", ".", "..", "a%f", "a/b", "%", "x%+", "%2e"};
    for (size_t i = 0; i < sizeof(notplain) / sizeof(notplain[0]); i++)
        assert_int_equal(fsk_conflict_name(notplain[i], strlen(notplain[i]), out, sizeof(out), &n),
                         -EINVAL);
    assert_int_equal(fsk_conflict_name(name, 255, out, sizeof(out), &n), -EINVAL); /* a%+ */
    assert_int_equal(fsk_conflict_name("ab", 2, out, 4, &n), -ENAMETOOLONG);
    assert_int_equal(fsk_conflict_name("ab", 2, out, 5, &n), 0);
}

/* ---- limits ---- */

static void test_limits(void **state)
{
    (void)state;
    size_t max = TALUS_MAX_KEY, plen, klen;
    uint8_t *k = malloc(max + 2);
    uint8_t *back = malloc(max);
    assert_non_null(k);
    assert_non_null(back);

    /* the worst cases for path length fit in 4 * klen + 8 */
    const uint8_t fills[] = {0, '/', '%'};
    for (size_t f = 0; f < sizeof(fills); f++) {
        memset(k, fills[f], max);
        char *p = key_path(k, max, &plen);
        assert_true(plen < path_cap(max));
        assert_int_equal(path_key(p, plen, back, max, &klen), 0);
        assert_int_equal(klen, max);
        assert_memory_equal(back, k, max);
        /* one byte short of the key: too long for the buffer */
        assert_int_equal(path_key(p, plen, back, max - 1, &klen), -ENAMETOOLONG);
        free(p);
    }
    /* a mix that alternates NUL and '/' */
    for (size_t i = 0; i < max; i++)
        k[i] = (i & 1) ? '/' : 0;
    char *p = key_path(k, max, &plen);
    free(p);

    /* keys over the limit: refused both ways */
    memset(k, 'k', max + 1);
    char *big = malloc(path_cap(max + 1));
    assert_non_null(big);
    assert_int_equal(fsk_key_to_path(k, max + 1, big, path_cap(max + 1), &plen), -ENAMETOOLONG);
    int nn;
    assert_int_equal(fsk_component_to_names(k, max + 1, false, big, path_cap(max + 1), &plen, &nn),
                     0);
    assert_int_equal(path_key(big, plen, back, max, &klen), -ENAMETOOLONG);
    /* 65,535 + "/" + "x" = 65,537 bytes */
    assert_int_equal(fsk_component_to_names(k, max - 1, true, big, path_cap(max), &plen, &nn), 0);
    memcpy(big + plen, "/x", 3);
    assert_int_equal(path_key(big, plen + 2, back, max, &klen), -ENAMETOOLONG);
    assert_int_equal(path_key(big, plen, back, max, &klen), 0);
    free(big);

    /* exact output buffers: len + 1 fits, len does not */
    static const char *keys[] = {"a", "a/b%c", "", "/", "..", ".snap"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        size_t kl = strlen(keys[i]);
        char *full = key_path((const uint8_t *)keys[i], kl, &plen);
        char *exact = malloc(plen + 1);
        assert_non_null(exact);
        assert_int_equal(fsk_key_to_path((const uint8_t *)keys[i], kl, exact, plen + 1, &klen), 0);
        assert_string_equal(exact, full);
        assert_int_equal(fsk_key_to_path((const uint8_t *)keys[i], kl, exact, plen, &klen),
                         -ENAMETOOLONG);
        uint8_t *kb = malloc(kl ? kl : 1);
        assert_non_null(kb);
        assert_int_equal(path_key(full, plen, kb, kl, &klen), 0);
        assert_int_equal(klen, kl);
        if (kl)
            assert_int_equal(path_key(full, plen, kb, kl - 1, &klen), -ENAMETOOLONG);
        free(kb);
        free(exact);
        free(full);
    }
    free(k);
    free(back);
}

/* ---- random keys ---- */

/* Random key bytes, built from pieces that stress the codec. */
static size_t random_key(uint8_t *k, size_t cap)
{
    size_t want = 1 + rnd_below(rnd_below(4) == 0 ? 2000 : 300), n = 0;
    while (n < want && n < cap) {
        uint8_t chunk[700];
        size_t cl = 0;
        switch (rnd_below(14)) {
        case 0:
        case 1:
            chunk[cl++] = (uint8_t)rnd();
            break;
        case 2:
            chunk[cl++] = '/';
            break;
        case 3:
            chunk[cl++] = '%';
            break;
        case 4:
            chunk[cl++] = 0;
            break;
        case 5:
            chunk[cl++] = '.';
            break;
        case 6:
            memcpy(chunk, "/../", cl = 4);
            break;
        case 7:
            memcpy(chunk, "/./", cl = 3);
            break;
        case 8:
            memcpy(chunk, ".snap/", cl = 6);
            break;
        case 9: { /* a long run, often across the 253/255 limits */
            static const uint8_t fill[] = {'a', 0, '%', '.', 0xff};
            cl = 240 + rnd_below(rnd_below(2) ? 30 : 460);
            memset(chunk, fill[rnd_below(sizeof(fill))], cl);
            for (size_t j = rnd_below(4); j > 0; j--)
                chunk[rnd_below(cl)] = rnd_below(2) ? 0 : '%';
            break;
        }
        case 10: {
            static const char *lits[] = {"%e", "%2E", "%+", "%f", "%25", "\xc3\xa9", "//"};
            const char *l = lits[rnd_below(sizeof(lits) / sizeof(lits[0]))];
            memcpy(chunk, l, cl = strlen(l));
            break;
        }
        default:
            for (size_t w = 1 + rnd_below(12); cl < w; cl++)
                chunk[cl] = (uint8_t)('a' + rnd_below(26));
        }
        if (cl > cap - n)
            cl = cap - n;
        memcpy(k + n, chunk, cl);
        n += cl;
    }
    /* sometimes start with a special component */
    if (rnd_below(8) == 0 && n >= 6)
        memcpy(k, rnd_below(2) ? ".snap/" : "../x/y", 6);
    return n < want ? n : want;
}

/* Checks every name of a produced path against the rules of KEYS.md. */
static void check_names(const char *p, size_t plen)
{
    assert_null(memchr(p, '\0', plen));
    size_t s = 0;
    bool chained = false;
    for (;;) {
        bool root = s == 0; /* only the first name is in the root directory */
        const char *sl = memchr(p + s, '/', plen - s);
        size_t e = sl ? (size_t)(sl - p) : plen, n = e - s;
        const char *name = p + s;
        assert_true(n >= 1 && n <= FSK_NAME_MAX);
        assert_false(n == 1 && name[0] == '.');
        assert_false(n == 2 && name[0] == '.' && name[1] == '.');
        if (root)
            assert_false(n == 5 && memcmp(name, ".snap", 5) == 0);
        assert_false(fsk_is_conflict_name(name, n, NULL));
        uint8_t b[FSK_NAME_MAX];
        size_t bl;
        bool more;
        assert_int_equal(fsk_name_to_bytes(name, n, root, b, sizeof(b), &bl, &more), 0);
        if (more)
            assert_true(n >= FSK_NAME_MAX - 2);
        chained = more;
        if (!sl)
            break;
        s = e + 1;
    }
    assert_false(chained); /* the last name ends a component */
}

/* The path key_to_path gives must equal the join of fsk_component_to_names. */
static void check_components(const uint8_t *k, size_t klen, const char *p, size_t plen)
{
    char *buf = malloc(path_cap(klen));
    assert_non_null(buf);
    size_t s = 0, at = 0;
    for (;;) {
        const uint8_t *sl = klen - s ? memchr(k + s, '/', klen - s) : NULL;
        size_t e = sl ? (size_t)(sl - k) : klen, n;
        int nn;
        assert_int_equal(fsk_component_to_names(k + s, e - s, s == 0, buf, path_cap(klen), &n, &nn),
                         0);
        assert_true(at + n <= plen);
        assert_memory_equal(p + at, buf, n);
        int slashes = 0;
        for (size_t i = 0; i < n; i++)
            slashes += buf[i] == '/';
        assert_int_equal(nn, slashes + 1);
        at += n;
        if (!sl)
            break;
        assert_int_equal(p[at], '/');
        at++;
        s = e + 1;
    }
    assert_int_equal(at, plen);
    free(buf);
}

/* The conflict form of a path: its last name replaced by the conflict name. */
static char *conflict_path(const char *p, size_t plen, size_t *clen)
{
    const char *last = memrchr(p, '/', plen);
    size_t pre = last ? (size_t)(last - p) + 1 : 0;
    char *c = malloc(plen + 8);
    assert_non_null(c);
    memcpy(c, p, pre);
    size_t n;
    assert_int_equal(fsk_conflict_name(p + pre, plen - pre, c + pre, plen + 8 - pre, &n), 0);
    *clen = pre + n;
    return c;
}

struct pair {
    char *path;
    size_t plen;
    uint8_t *key;
    size_t klen;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    size_t n = x->plen < y->plen ? x->plen : y->plen;
    int c = memcmp(x->path, y->path, n);
    if (c)
        return c;
    return x->plen < y->plen ? -1 : x->plen > y->plen;
}

#define NKEYS 3000

static void test_random_roundtrip(void **state)
{
    (void)state;
    seed_rng("random_roundtrip");
    struct pair *pairs = calloc(2 * NKEYS, sizeof(*pairs));
    assert_non_null(pairs);
    size_t np = 0;
    uint8_t k[2100];

    for (int i = 0; i < NKEYS; i++) {
        size_t klen;
        if (i > 0 && rnd_below(4) == 0) {
            /* a near-duplicate of the previous key: one byte changed,
             * inserted or removed, so collisions would be likely */
            struct pair *prev = &pairs[np - 1];
            klen = prev->klen;
            memcpy(k, prev->key, klen);
            size_t at = rnd_below(klen);
            static const uint8_t alt[] = {0, '%', '/', '.', 'a', '0', '2', 'E', 'e', '+', 'f'};
            uint8_t b = alt[rnd_below(sizeof(alt))];
            switch (rnd_below(3)) {
            case 0:
                k[at] = b;
                break;
            case 1:
                memmove(k + at + 1, k + at, klen - at);
                k[at] = b;
                klen++;
                break;
            default:
                if (klen > 1) {
                    memmove(k + at, k + at + 1, klen - at - 1);
                    klen--;
                }
            }
        } else {
            klen = random_key(k, 2000);
        }
        size_t plen;
        char *p = key_path(k, klen, &plen);
        check_names(p, plen);
        check_components(k, klen, p, plen);
        expect_roundtrip(k, klen, p, plen);

        /* the conflict spelling of the same key decodes to it too */
        size_t clen;
        char *c = conflict_path(p, plen, &clen);
        const char *cl = memrchr(c, '/', clen);
        size_t cpre = cl ? (size_t)(cl - c) + 1 : 0;
        assert_true(fsk_is_conflict_name(c + cpre, clen - cpre, NULL));
        assert_true(clen - cpre <= FSK_NAME_MAX);
        expect_roundtrip(k, klen, c, clen);
        free(c);

        pairs[np].path = p;
        pairs[np].plen = plen;
        pairs[np].key = malloc(klen);
        assert_non_null(pairs[np].key);
        memcpy(pairs[np].key, k, klen);
        pairs[np].klen = klen;
        np++;
    }

    /* no two distinct keys share a path */
    qsort(pairs, np, sizeof(*pairs), pair_cmp);
    for (size_t i = 1; i < np; i++) {
        if (pair_cmp(&pairs[i - 1], &pairs[i]) != 0)
            continue;
        assert_int_equal(pairs[i - 1].klen, pairs[i].klen);
        assert_memory_equal(pairs[i - 1].key, pairs[i].key, pairs[i].klen);
    }
    for (size_t i = 0; i < np; i++) {
        free(pairs[i].path);
        free(pairs[i].key);
    }
    free(pairs);
}

/* Mutated paths: whatever the decoder accepts must be the canonical
 * spelling of what it returns (plain, or the conflict form). */
static void test_random_mutations(void **state)
{
    (void)state;
    seed_rng("random_mutations");
    static const char alpha[] = "%%%0125AEFaef+./\x01\xff";
    uint8_t k[2100];
    uint8_t *back = malloc(TALUS_MAX_KEY);
    assert_non_null(back);
    size_t accepted = 0, tried = 0;

    for (int i = 0; i < 1500; i++) {
        size_t klen = random_key(k, 600), plen;
        char *p = key_path(k, klen, &plen);
        if (rnd_below(3) == 0) { /* mutate the conflict form sometimes */
            size_t clen;
            char *c = conflict_path(p, plen, &clen);
            free(p);
            p = c;
            plen = clen;
        }
        char *m = malloc(plen + 8);
        assert_non_null(m);
        for (int j = 0; j < 8; j++) {
            size_t ml = plen, at = rnd_below(plen);
            memcpy(m, p, plen);
            char ch = alpha[rnd_below(sizeof(alpha) - 1)];
            switch (rnd_below(4)) {
            case 0:
                m[at] = ch;
                break;
            case 1:
                memmove(m + at + 1, m + at, plen - at);
                m[at] = ch;
                ml++;
                break;
            case 2:
                memmove(m + at, m + at + 1, plen - at - 1);
                ml--;
                break;
            default: /* case flip */
                if (m[at] >= 'a' && m[at] <= 'z')
                    m[at] = (char)(m[at] - 32);
                else if (m[at] >= 'A' && m[at] <= 'Z')
                    m[at] = (char)(m[at] + 32);
            }
            size_t bl;
            tried++;
            if (path_key(m, ml, back, TALUS_MAX_KEY, &bl) != 0)
                continue;
            accepted++;
            size_t rl;
            char *r = key_path(back, bl, &rl);
            const char *last = memrchr(m, '/', ml);
            size_t pre = last ? (size_t)(last - m) + 1 : 0;
            if (fsk_is_conflict_name(m + pre, ml - pre, NULL)) {
                size_t cl;
                char *c = conflict_path(r, rl, &cl);
                free(r);
                r = c;
                rl = cl;
            }
            if (rl != ml || memcmp(r, m, ml) != 0)
                fail_msg("accepted non-canonical path \"%.*s\" (canonical \"%.*s\")", (int)ml, m,
                         (int)rl, r);
            free(r);
        }
        free(m);
        free(p);
    }
    printf("# mutations: %zu tried, %zu accepted (all canonical)\n", tried, accepted);
    free(back);
}

/* Every split boundary: a x i + escaped byte + a x j, both forms. */
static void test_split_boundaries(void **state)
{
    (void)state;
    uint8_t k[800];
    for (size_t i = 240; i <= 262; i++) {
        for (size_t j = 0; j <= 300; j += (j < 20 ? 1 : 7)) {
            for (int esc = 0; esc < 3; esc++) {
                size_t klen = i + j + (esc ? 1 : 0);
                memset(k, 'a', klen);
                if (esc)
                    k[i] = esc == 1 ? 0 : '%';
                size_t plen;
                char *p = key_path(k, klen, &plen);
                check_names(p, plen);
                /* continued names hold 251..253 bytes before "%+" */
                size_t s = 0;
                for (;;) {
                    const char *sl = memchr(p + s, '/', plen - s);
                    if (!sl)
                        break;
                    size_t n = (size_t)(sl - p) - s;
                    assert_true(n >= 253 && n <= 255);
                    assert_memory_equal(p + s + n - 2, "%+", 2);
                    s += n + 1;
                }
                expect_roundtrip(k, klen, p, plen);
                size_t clen;
                char *c = conflict_path(p, plen, &clen);
                expect_roundtrip(k, klen, c, clen);
                free(c);
                free(p);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples),          cmocka_unit_test(test_examples_long),
        cmocka_unit_test(test_examples_conflict), cmocka_unit_test(test_noncanonical),
        cmocka_unit_test(test_name_api),          cmocka_unit_test(test_limits),
        cmocka_unit_test(test_random_roundtrip),  cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_split_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
