/*
 * test_keys.c - the key<->path codec (fs/keys.c, specified by fs/KEYS.md):
 * the worked examples of KEYS.md as exact assertions, names with '%' that
 * people type (canonical: key == name), seeded random keys with every byte
 * value, many '/', '%' (followed by hex digits, 'e', '+', 'f', ...), NUL,
 * '.', empty and long components (round trip, name rules, no two keys share
 * a path), every short key and every short name over the bytes that matter
 * to escapes, mutated paths (any accepted spelling is the canonical one),
 * split boundaries, conflict names, and the length limits (outputs in
 * exact-size heap buffers, so ASan sees any overrun).
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
    EX("100%", "100%"),
    EX("50%.txt", "50%.txt"),
    EX("50%/x", "50%/x"),
    EX("a%41b", "a%41b"),
    EX("%d", "%d"),
    EX("%", "%"),
    EX("%%", "%%"),
    EX("%2e", "%2e"),
    EX("%25", "%2525"),
    EX("%00", "%2500"),
    EX("%2E", "%252E"),
    EX("x%2Ey", "x%252Ey"),
    EX("%%25", "%%2525"),
    EX("%e", "%25e"),
    EX("%ex", "%ex"),
    EX("x%e", "x%e"),
    EX("%+", "%25+"),
    EX("a%+", "a%25+"),
    EX("%+x", "%+x"),
    EX("%f", "%25f"),
    EX("a%f", "a%25f"),
    EX("%%f", "%%25f"),
    EX("%f/x", "%25f/x"),
    EX("a%\0", "a%%00"),
    EX("a\0b", "a%00b"),
    EX("\0", "%00"),
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

    /* a x 252 + "%25": that '%' is written %25, which does not fit after
     * 252 bytes, so the first name holds 252 */
    memset(key, 'a', 252);
    memcpy(key + 252, "%25", 3);
    p = key_path(key, 255, &plen);
    snprintf(expect, sizeof(expect), "%s%%+/%%2525", a252);
    assert_string_equal(p, expect);
    expect_roundtrip(key, 255, p, plen);
    free(p);

    /* a x 252 + '%' + b x 10: a literal '%' ends the first name ("%%+") */
    memset(key, 'a', 252);
    key[252] = '%';
    memset(key + 253, 'b', 10);
    p = key_path(key, 263, &plen);
    snprintf(expect, sizeof(expect), "%s%%%%+/bbbbbbbbbb", a252);
    assert_string_equal(p, expect);
    expect_roundtrip(key, 263, p, plen);
    free(p);

    /* a x 253 + "%+": the last byte makes that '%' an escape, and the cut
     * comes before it; a x 253 + "%e" fits in one name and stays literal */
    memset(key, 'a', 253);
    memcpy(key + 253, "%+", 2);
    p = key_path(key, 255, &plen);
    snprintf(expect, sizeof(expect), "%s%%+/%%25+", a253);
    assert_string_equal(p, expect);
    expect_roundtrip(key, 255, p, plen);
    free(p);
    memcpy(key + 253, "%e", 2);
    p = key_path(key, 255, &plen);
    snprintf(expect, sizeof(expect), "%s%%e", a253);
    assert_string_equal(p, expect);
    expect_roundtrip(key, 255, p, plen);
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

    char name[260];
    /* a x 253 + "%e": the rest "%e" is literal (it does not start the
     * component), so the name is "%e%f" inside the continuation directory */
    memset(name, 'a', 253);
    memcpy(name + 253, "%e", 2);
    assert_int_equal(fsk_conflict_name(name, 255, out, sizeof(out), &n), 0);
    snprintf(expect, sizeof(expect), "%s%%+/%%e%%f", a253);
    assert_string_equal(out, expect);
    assert_int_equal(n, 260);
    uint8_t pk[300];
    memcpy(pk, name, 255);
    expect_roundtrip(pk, 255, out, n);
    /* the same names without the suffix are not a key: "%e" there would
     * be literal, and a x 253 + "%e" fits in one name */
    snprintf(expect, sizeof(expect), "%s%%+/%%e", a253);
    expect_rc(expect, strlen(expect), -ENOENT);
    /* a x 252 + '%' + "x": the literal '%' ends the piece */
    memset(name, 'a', 252);
    memcpy(name + 252, "%x", 2);
    assert_int_equal(fsk_conflict_name(name, 254, out, sizeof(out), &n), 0);
    snprintf(expect, sizeof(expect), "%.252s%%%%+/x%%f", a253);
    assert_string_equal(out, expect);
    memcpy(pk, name, 254);
    expect_roundtrip(pk, 254, out, n);
    /* a x 251 + "%255" decodes to a x 251 + "%5", whose '%' needs no
     * escape: not a canonical name, so it has no conflict form */
    memset(name, 'a', 251);
    memcpy(name + 251, "%255", 4);
    assert_int_equal(fsk_conflict_name(name, 255, out, sizeof(out), &n), -EINVAL);

    /* a x 251 + %00: the cut is before the escape */
    memset(name, 'a', 251);
    memcpy(name + 251, "%00", 3);
    assert_int_equal(fsk_conflict_name(name, 254, out, sizeof(out), &n), 0);
    snprintf(expect, sizeof(expect), "%.251s%%+/%%00%%f", a253);
    assert_string_equal(out, expect);

    /* the conflict spellings decode to the plain key */
    static const struct example cx[] = {
        EX("a", "a%f"),     EX("x/a", "x/a%f"), EX("", "%e%f"),     EX(".snap", "%2Esnap%f"),
        EX(".", "%2E%f"),   EX("d/", "d/%e%f"), EX("%", "%%f"),     EX("100%", "100%%f"),
        EX("%f", "%25f%f"), EX("%e", "%25e%f"), EX("%+", "%25+%f"), EX("%25", "%2525%f"),
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
    /* Among them: an escape where a literal '%' would do (one spelling per
     * key: "%25" is not the key "%"), and a literal '%' that reads as a
     * marker ("%f" at the end of a name). */
    static const char *bad[] = {
        "",        "/",         "a/",     "/a",          "a//b",  ".",      "..",        "a/.",
        "a/..",    "%2Ex",      "%2E%2E", "%2E..",       "x%2E",  ".snap",  "a/%2Esnap", "%2Esnapx",
        "%+",      "a%+",       "%f",     "a%f%f",       "a%f/b", "%e%f/x", "%25%2",     "%+%f",
        ".snap%f", "a/%2E.%2E", "%00%2E", "x/%2Esnap%f", "%25",   "100%25", "%25d",      "a%25b",
        "a%25",    "%25%25",    "%%25",   "%252",        "%2541", "%25e%",  "x%25e",     "%25ex",
        "%25+x",   "%25fx",     "%25%f",  "50%25.txt",   "%2520", "x/%25",  "%255",      "x/%f",
        "%f/x",    "%e/%+",     "%%f/x",
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

/* Names people type with '%' in them are canonical: the key is the name,
 * at the root and below it, and the conflict form works too. */
static void test_percent_names(void **state)
{
    (void)state;
    static const char *names[] = {
        "100%", "50%.txt", "%d",   "a%b",  "%",        "%%",  "%%%",   "%s-%d.log", "a%41b",
        "%2e",  "%2",      "%0",   "%zz",  "%E",       "%F",  "%ff",   "%e%e",      "a%e",
        "%ea",  "%+x",     "a%+b", "x%y%", "%-",       "%.",  "%..",   "%2F",       "100%%",
        "%0A",  "%20",     "%e%",  "5%",   "50 % off", "%%e", "%20%2", "%f%",       "%+%",
    };
    uint8_t b[FSK_NAME_MAX];
    char buf[600], out[FSK_NAME_MAX + 6];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *nm = names[i];
        size_t n = strlen(nm), got, plen;
        bool more = true;
        for (int root = 0; root < 2; root++) {
            assert_int_equal(fsk_name_to_bytes(nm, n, root, b, sizeof(b), &got, &more), 0);
            assert_int_equal(got, n);
            assert_memory_equal(b, nm, n);
            assert_false(more);
        }
        char *p = key_path((const uint8_t *)nm, n, &plen);
        if (strcmp(p, nm) != 0)
            fail_msg("key \"%s\" is shown as \"%s\"", nm, p);
        free(p);
        expect_roundtrip((const uint8_t *)nm, n, nm, n);
        snprintf(buf, sizeof(buf), "dir/%s", nm);
        expect_roundtrip((const uint8_t *)buf, n + 4, buf, n + 4);
        snprintf(buf, sizeof(buf), "%s/x", nm);
        expect_roundtrip((const uint8_t *)buf, n + 2, buf, n + 2);
        assert_int_equal(fsk_conflict_name(nm, n, out, sizeof(out), &got), 0);
        snprintf(buf, sizeof(buf), "%s%%f", nm);
        assert_string_equal(out, buf);
        expect_roundtrip((const uint8_t *)nm, n, out, got);
    }

    /* The name "%25" is not canonical: it decodes to the key "%", which is
     * shown as "%"; the 3-byte key "%25" is shown as "%2525". */
    size_t plen;
    expect_rc("%25", 3, -ENOENT);
    char *p = key_path((const uint8_t *)"%", 1, &plen);
    assert_string_equal(p, "%");
    free(p);
    p = key_path((const uint8_t *)"%25", 3, &plen);
    assert_string_equal(p, "%2525");
    free(p);
    expect_rc("100%25", 6, -ENOENT);
    expect_roundtrip((const uint8_t *)"100%", 4, "100%", 4);
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

    /* The '%' spelling at the end of a continued piece: judged where the
     * piece alone decides, accepted where the next name decides. */
    static const struct {
        const char *end; /* the last 5 content bytes of a 253-byte piece */
        int rc;
        size_t n;
    } pieces[] = {
        {"z%25x", -ENOENT, 251},                    /* "%x...": the escape is never needed */
        {"%25xy", -ENOENT, 251},                    /* '%' followed by "xy" */
        {"%2500", 0, 251},                          /* '%' followed by "00" */
        {"zz%25", 0, 251},                          /* the next name decides */
        {"z%250", 0, 251},                          /* "0" + the next name decides */
        {"z%252", 0, 251},       {"zzz%2", 0, 253}, /* literal '%', then '2' */
        {"zzzz%", 0, 253},                          /* literal '%' ends the piece: "%%+" */
        {"zzz%+", 0, 253},                          /* literal "%+" before the marker */
        {"zzz%f", 0, 253},                          /* literal "%f" before the marker */
        {"zz%2E", -ENOENT, 251},                    /* a '.' is never escaped there */
    };
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        memset(name, 'z', 248);
        memcpy(name + 248, pieces[i].end, 5);
        memcpy(name + 253, "%+", 2);
        int rc = fsk_name_to_bytes(name, 255, false, b, sizeof(b), &n, &more);
        if (rc != pieces[i].rc)
            fail_msg("piece ending \"%s\": rc %d, want %d", pieces[i].end, rc, pieces[i].rc);
        if (rc == 0) {
            assert_int_equal(n, pieces[i].n);
            assert_true(more);
        }
    }
    /* a whole name: "%e" is the empty component, "%25e" the key "%e" */
    assert_int_equal(fsk_name_to_bytes("%25e", 4, false, b, sizeof(b), &n, &more), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(b, "%e", 2);
    assert_int_equal(fsk_name_to_bytes("%25", 3, false, b, sizeof(b), &n, &more), -ENOENT);
    assert_int_equal(fsk_name_to_bytes("%", 1, false, b, sizeof(b), &n, &more), 0);
    assert_int_equal(n, 1);
    assert_false(more);
    memset(name, 'z', 255); /* restore the 253-byte piece used below */
    memcpy(name + 253, "%+", 2);

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
    assert_int_equal(fsk_component_to_names((const uint8_t *)"%e", 2, false, out, 4, &n, &nn),
                     -ENAMETOOLONG);
    assert_int_equal(fsk_component_to_names((const uint8_t *)"%e", 2, false, out, 5, &n, &nn), 0);
    assert_string_equal(out, "%25e");
    assert_int_equal(fsk_component_to_names((const uint8_t *)"%", 1, false, out, 2, &n, &nn), 0);
    assert_string_equal(out, "%");

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
    static const char *notplain[] = {"",    ".",      "..", "a%f", "a/b",  "x%+",
                                     "%25", "100%25", "%f", "%+",  "%2Ex", "%e%f"};
    for (size_t i = 0; i < sizeof(notplain) / sizeof(notplain[0]); i++)
        assert_int_equal(fsk_conflict_name(notplain[i], strlen(notplain[i]), out, sizeof(out), &n),
                         -EINVAL);
    assert_int_equal(fsk_conflict_name(name, 255, out, sizeof(out), &n), -EINVAL); /* a%+ */
    static const char *plainpct[][2] = {
        {"%", "%%f"}, {"100%", "100%%f"}, {"%25e", "%25e%f"}, {"%25f", "%25f%f"}, {"%2e", "%2e%f"}};
    for (size_t i = 0; i < sizeof(plainpct) / sizeof(plainpct[0]); i++) {
        assert_int_equal(
            fsk_conflict_name(plainpct[i][0], strlen(plainpct[i][0]), out, sizeof(out), &n), 0);
        assert_string_equal(out, plainpct[i][1]);
    }
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
    static const struct {
        const char *s;
        size_t n;
    } fills[] = {{"\0", 1},  {"/", 1},   {"%", 1},   {"%25", 3},
                 {"%00", 3}, {"%e/", 3}, {"%\0", 2}, {"%+/", 3}};
    for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
        for (size_t i = 0; i < max; i++)
            k[i] = (uint8_t)fills[f].s[i % fills[f].n];
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
        switch (rnd_below(17)) {
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
            static const uint8_t fill[] = {'a', 0, '%', '.', 0xff, '2', '5', '0'};
            cl = 240 + rnd_below(rnd_below(2) ? 30 : 460);
            memset(chunk, fill[rnd_below(sizeof(fill))], cl);
            for (size_t j = rnd_below(6); j > 0; j--) {
                static const char mix[] = "%%%\0\0"
                                          "0125Ee+f";
                chunk[rnd_below(cl)] = (uint8_t)mix[rnd_below(sizeof(mix) - 1)];
            }
            break;
        }
        case 11:
        case 12: { /* '%' and what may follow it in an escape or a marker */
            static const char after[] = "0125EeFf+.%a/";
            chunk[cl++] = '%';
            for (size_t w = rnd_below(4); w > 0; w--)
                chunk[cl++] = rnd_below(8) ? (uint8_t)after[rnd_below(sizeof(after) - 1)] : 0;
            break;
        }
        case 10: {
            static const char *lits[] = {"%e",  "%2E",  "%+",  "%f",       "%25",
                                         "%00", "%%25", "%2e", "\xc3\xa9", "//"};
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
    static const char alpha[] = "%%%%0125AEFaef+./\x01\xff";
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
            switch (rnd_below(5)) {
            case 0:
                m[at] = ch;
                break;
            case 4: { /* insert an escape or a marker */
                static const char *ins[] = {"%25", "%00", "%2E", "%+", "%f", "%e", "%%"};
                const char *in = ins[rnd_below(sizeof(ins) / sizeof(ins[0]))];
                size_t il = strlen(in);
                memmove(m + at + il, m + at, plen - at);
                memcpy(m + at, in, il);
                ml += il;
                break;
            }
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

/* Every split boundary: a x i + something + a x j, both forms. */
static void test_split_boundaries(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
    } ins[] = {{"", 0},   {"\0", 1}, {"%", 1},  {"%25", 3}, {"%00", 3}, {"%2E", 3},
               {"%+", 2}, {"%f", 2}, {"%e", 2}, {"%%", 2},  {"%\0", 2}, {"%2", 2}};
    uint8_t k[800];
    for (size_t i = 240; i <= 262; i++) {
        for (size_t j = 0; j <= 300; j += (j < 20 ? 1 : 7)) {
            for (size_t e = 0; e < sizeof(ins) / sizeof(ins[0]); e++) {
                size_t klen = i + j + ins[e].n;
                memset(k, 'a', klen);
                memcpy(k + i, ins[e].s, ins[e].n);
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

/* ---- exhaustive small cases ---- */

/* Round trip of a key, with stack buffers (the exhaustive tests run a few
 * hundred thousand keys), in the plain and in the conflict form. */
static void roundtrip_small(const uint8_t *k, size_t klen)
{
    char p[4 * 300 + 8], c[4 * 300 + 16];
    uint8_t back[300];
    size_t plen, got;
    assert_true(klen <= 300);
    assert_int_equal(fsk_key_to_path(k, klen, p, sizeof(p), &plen), 0);
    check_names(p, plen);
    if (fsk_path_to_key(p, plen, back, sizeof(back), &got) != 0 || got != klen ||
        memcmp(back, k, klen) != 0)
        fail_msg("path \"%.*s\" does not give its key back", (int)plen, p);
    const char *last = memrchr(p, '/', plen);
    size_t pre = last ? (size_t)(last - p) + 1 : 0, cn;
    memcpy(c, p, pre);
    assert_int_equal(fsk_conflict_name(p + pre, plen - pre, c + pre, sizeof(c) - pre, &cn), 0);
    if (fsk_path_to_key(c, pre + cn, back, sizeof(back), &got) != 0 || got != klen ||
        memcmp(back, k, klen) != 0)
        fail_msg("conflict path \"%.*s\" does not give its key back", (int)(pre + cn), c);
}

/* The bytes that matter to escapes and markers, and one that does not. */
static const char small_alpha[] = "%025Eef+./a";
#define SMALL_ALPHA (sizeof(small_alpha)) /* the NUL counts as a byte too */

/* Every key of up to 5 bytes over small_alpha and NUL (about 270,000):
 * each gives its key back, so no two of them share a path. */
static void test_exhaustive_keys(void **state)
{
    (void)state;
    uint8_t k[5];
    size_t count = 0;
    for (size_t len = 1; len <= 5; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= SMALL_ALPHA;
        for (size_t x = 0; x < total; x++) {
            size_t v = x;
            for (size_t i = 0; i < len; i++, v /= SMALL_ALPHA)
                k[i] = (uint8_t)small_alpha[v % SMALL_ALPHA];
            roundtrip_small(k, len);
            count++;
        }
    }
    printf("# exhaustive keys: %zu\n", count);
}

/* Every name of up to 5 bytes over small_alpha without '/': whatever the
 * decoder accepts is the canonical spelling of what it returns, and
 * fsk_name_to_bytes is exactly as strict as fsk_path_to_key for a name
 * that is a whole component. */
static void test_exhaustive_names(void **state)
{
    (void)state;
    static const char alpha[] = "%025Eef+.a";
    const size_t na = sizeof(alpha) - 1;
    char path[16], canon[64];
    uint8_t key[16], b[FSK_NAME_MAX];
    size_t accepted = 0, count = 0;
    for (size_t len = 1; len <= 5; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= na;
        for (size_t x = 0; x < total; x++) {
            char name[8];
            size_t v = x;
            for (size_t i = 0; i < len; i++, v /= na)
                name[i] = alpha[v % na];
            for (int root = 0; root < 2; root++) {
                size_t pl = 0, kl, cl, bl;
                if (!root) {
                    memcpy(path, "x/", 2);
                    pl = 2;
                }
                memcpy(path + pl, name, len);
                pl += len;
                count++;
                int rc = fsk_path_to_key(path, pl, key, sizeof(key), &kl);
                bool conflict = fsk_is_conflict_name(name, len, NULL);
                if (!conflict) {
                    bool more;
                    int nrc = fsk_name_to_bytes(name, len, root, b, sizeof(b), &bl, &more);
                    if ((nrc == 0) != (rc == 0))
                        fail_msg("name \"%.*s\" (root %d): name_to_bytes %d, path_to_key %d",
                                 (int)len, name, root, nrc, rc);
                }
                if (rc != 0)
                    continue;
                accepted++;
                assert_int_equal(fsk_key_to_path(key, kl, canon, sizeof(canon), &cl), 0);
                if (conflict) {
                    const char *sl = memrchr(canon, '/', cl);
                    size_t pre = sl ? (size_t)(sl - canon) + 1 : 0, n;
                    char tmp[64];
                    assert_int_equal(fsk_conflict_name(canon + pre, cl - pre, tmp, sizeof(tmp), &n),
                                     0);
                    memcpy(canon + pre, tmp, n);
                    cl = pre + n;
                }
                if (cl != pl || memcmp(canon, path, pl) != 0)
                    fail_msg("accepted \"%.*s\", canonical \"%.*s\"", (int)pl, path, (int)cl,
                             canon);
            }
        }
    }
    printf("# exhaustive names: %zu tried, %zu accepted (all canonical)\n", count, accepted);
}

/* Long components: a x p + every string of up to 4 bytes over the escape
 * bytes + b x t, so every escape and marker lands on every side of the
 * 251..255-byte cut, in the plain and in the conflict form. */
static void test_exhaustive_cuts(void **state)
{
    (void)state;
    static const char alpha[] = "%025Ef+e"; /* and NUL */
    const size_t na = sizeof(alpha);
    static const size_t tails[] = {0, 1, 5};
    uint8_t k[300];
    size_t count = 0;
    for (size_t pfx = 249; pfx <= 254; pfx++) {
        for (size_t len = 0; len <= 4; len++) {
            size_t total = 1;
            for (size_t i = 0; i < len; i++)
                total *= na;
            for (size_t x = 0; x < total; x++) {
                size_t v = x;
                memset(k, 'a', pfx);
                for (size_t i = 0; i < len; i++, v /= na)
                    k[pfx + i] = (uint8_t)alpha[v % na];
                for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
                    memset(k + pfx + len, 'b', tails[t]);
                    roundtrip_small(k, pfx + len + tails[t]);
                    count++;
                }
            }
        }
    }
    printf("# exhaustive cuts: %zu keys\n", count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples),          cmocka_unit_test(test_examples_long),
        cmocka_unit_test(test_examples_conflict), cmocka_unit_test(test_noncanonical),
        cmocka_unit_test(test_name_api),          cmocka_unit_test(test_limits),
        cmocka_unit_test(test_random_roundtrip),  cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_split_boundaries),  cmocka_unit_test(test_percent_names),
        cmocka_unit_test(test_exhaustive_keys),   cmocka_unit_test(test_exhaustive_names),
        cmocka_unit_test(test_exhaustive_cuts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
