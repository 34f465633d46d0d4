/*
 * test_version_set.c - the version set on disk: reopen recovers the same
 * version and counters, manifest rotation, torn tails (ignored), damage in
 * the middle (TALUS_ECORRUPT), CURRENT missing or bad, future format
 * versions (TALUS_EVERSION), and I/O faults during apply and open through
 * the fault-injecting env (sticky error; reopen yields a stated outcome).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "talus.h"
#include "util/coding.h"
#include "util/hash.h"
#include "version_test_util.h"

static char g_dir[256];

static int dir_setup(void **state)
{
    (void)state;
    vt_mkdir(g_dir, sizeof g_dir);
    return 0;
}

static int dir_teardown(void **state)
{
    (void)state;
    vt_rmdir(g_dir);
    return 0;
}

static int open_set(tl_env *env, bool create, uint32_t max_format, ver_set **vs)
{
    ver_set_options o;
    vt_options(&o, env, g_dir, create);
    o.max_format_version = max_format;
    return ver_set_open(&o, vs);
}

static ver_set *must_open(tl_env *env)
{
    ver_set *vs = NULL;
    int rc = open_set(env, true, 3, &vs);
    if (rc)
        fail_msg("open: %d %s", rc, tl_errmsg());
    return vs;
}

static void manifest_path(ver_set *vs, char *path, size_t cap)
{
    snprintf(path, cap, "%s/MANIFEST-%06llu", g_dir,
             (unsigned long long)ver_set_manifest_number(vs));
}

static bool file_exists(const char *path)
{
    return tl_env_exists(tl_env_posix(), path) == 1;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    uint8_t *d;
    assert_int_equal(tl_env_read_file(tl_env_posix(), path, &d, n), 0);
    return d;
}

static void spit(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

/* Offsets of the records of a manifest image (walks the framing). */
static size_t record_offsets(const uint8_t *d, size_t n, size_t *offs, size_t cap)
{
    size_t k = 0, off = 12;
    while (off + 12 <= n && k < cap) {
        offs[k++] = off;
        off += 12 + tl_get_fixed32(d + off);
    }
    return k;
}

/* Applies an edit adding (level, file) and deleting one number (0: none). */
static int apply(ver_set *vs, int level, ver_file *f, int del_level, uint64_t del)
{
    ver_edit e;
    ver_edit_init(&e);
    if (f) {
        assert_int_equal(ver_edit_add_file(&e, level, f), 0);
        ver_file_unref(f);
    }
    if (del)
        assert_int_equal(ver_edit_delete_file(&e, del_level, del), 0);
    int rc = ver_set_apply(vs, &e);
    ver_edit_free(&e);
    return rc;
}

static void assert_state(ver_set *vs, const vt_snap *want)
{
    ver_version *v = ver_set_current(vs);
    assert_true(vt_snap_matches(want, v));
    ver_version_unref(v);
}

static void snap_current(ver_set *vs, vt_snap *s)
{
    ver_version *v = ver_set_current(vs);
    vt_snap_take(s, v);
    ver_version_unref(v);
}

/* ---- Recovery ------------------------------------------------------------ */

static void test_reopen_recovers(void **state)
{
    (void)state;
    ver_set *vs = must_open(tl_env_posix());
    uint64_t n[8];
    for (int i = 0; i < 8; i++)
        n[i] = ver_set_new_file_number(vs);
    assert_int_equal(apply(vs, 0, vt_file(n[0], "a", 10, "k", 3), 0, 0), 0);
    assert_int_equal(apply(vs, 0, vt_file(n[1], "b", 20, "z", 11), 0, 0), 0);
    ver_edit e;
    ver_edit_init(&e);
    e.has_last_seq = e.has_flushed_seq = true;
    e.last_seq = 100;
    e.flushed_seq = 50;
    ver_file *l1a = vt_file(n[2], "a", 5, "c", 5), *l1b = vt_file(n[3], "d", 5, "f", 5);
    assert_int_equal(ver_edit_add_file(&e, 1, l1a), 0);
    assert_int_equal(ver_edit_add_file(&e, 1, l1b), 0);
    assert_int_equal(ver_edit_delete_file(&e, 0, n[0]), 0);
    assert_int_equal(ver_set_apply(vs, &e), 0);
    ver_edit_free(&e);
    ver_file_unref(l1a);
    ver_file_unref(l1b);
    /* last_seq never goes backwards; flushed_seq moves up. */
    ver_edit_init(&e);
    e.has_last_seq = e.has_flushed_seq = true;
    e.last_seq = 90;
    e.flushed_seq = 80;
    ver_file *l2 = vt_file(n[4], "m", 1, "q", 1);
    assert_int_equal(ver_edit_add_file(&e, 2, l2), 0);
    assert_int_equal(ver_set_apply(vs, &e), 0);
    ver_edit_free(&e);
    ver_file_unref(l2);
    /* n[5..7] were handed out but never used in an edit. */
    assert_true(ver_set_last_seq(vs) == 100);
    assert_true(ver_set_flushed_seq(vs) == 80);

    vt_snap want;
    snap_current(vs, &want);
    char old[512];
    manifest_path(vs, old, sizeof old);
    ver_set_close(vs);

    vs = must_open(tl_env_posix());
    assert_state(vs, &want);
    assert_true(ver_set_last_seq(vs) == 100);
    assert_true(ver_set_flushed_seq(vs) == 80);
    assert_int_equal(ver_set_format_version(vs), 3);
    assert_int_equal(ver_set_num_levels(vs), 7);
    assert_true(ver_set_new_file_number(vs) > n[7]); /* never reused */
    /* Open started a new manifest and removed the old one. */
    char cur[512];
    manifest_path(vs, cur, sizeof cur);
    assert_string_not_equal(cur, old);
    assert_false(file_exists(old));
    assert_true(file_exists(cur));
    ver_set_close(vs);

    /* Read-only: same state, nothing written, applies refused. */
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), 0);
    uint64_t mnum = ver_set_manifest_number(vs);
    manifest_path(vs, cur, sizeof cur);
    ver_set_close(vs);
    size_t before_n, after_n;
    uint8_t *before = slurp(cur, &before_n);
    ver_set_options o;
    vt_options(&o, tl_env_posix(), g_dir, false);
    o.read_only = true;
    assert_int_equal(ver_set_open(&o, &vs), 0);
    assert_state(vs, &want);
    assert_true(ver_set_manifest_number(vs) == mnum);
    assert_int_equal(apply(vs, 0, vt_file(999, "a", 1, "b", 1), 0, 0), TALUS_EREADONLY);
    ver_set_close(vs);
    uint8_t *after = slurp(cur, &after_n);
    assert_int_equal(after_n, before_n);
    assert_memory_equal(after, before, before_n);
    free(before);
    free(after);
    vt_snap_free(&want);
}

static void test_rotation(void **state)
{
    (void)state;
    ver_set *vs = must_open(tl_env_posix());
    uint64_t first = ver_set_manifest_number(vs), prev = 0;
    char firstpath[512];
    manifest_path(vs, firstpath, sizeof firstpath);
    static char big[60001];
    memset(big, 'k', sizeof big - 1);
    int rotated_at = -1;
    /* Each edit carries two ~60 KB keys: ~70 edits pass 4 MiB. */
    for (int i = 0; i < 80; i++) {
        uint64_t num = ver_set_new_file_number(vs);
        big[sizeof big - 2] = (char)('A' + i % 26);
        assert_int_equal(
            apply(vs, 0, vt_file(num, big, (uint64_t)i + 1, big, (uint64_t)i + 1), 0, prev), 0);
        prev = num;
        if (rotated_at < 0 && ver_set_manifest_number(vs) != first)
            rotated_at = i;
    }
    printf("rotated after %d edits\n", rotated_at);
    assert_true(rotated_at > 30 && rotated_at < 80);
    assert_false(file_exists(firstpath));
    char cur[512];
    manifest_path(vs, cur, sizeof cur);
    uint64_t size;
    assert_int_equal(tl_env_file_size(tl_env_posix(), cur, &size), 0);
    assert_true(size < 4u << 20);
    vt_snap want;
    snap_current(vs, &want);
    uint64_t last = ver_set_last_seq(vs);
    ver_set_close(vs);
    vs = must_open(tl_env_posix());
    assert_state(vs, &want);
    assert_true(ver_set_last_seq(vs) == last);
    assert_true(ver_set_new_file_number(vs) > prev);
    ver_set_close(vs);
    vt_snap_free(&want);
}

/* Builds A (one file) then B (another), returns the state after A and after
 * B, and the manifest image holding both as separate records. */
static uint8_t *two_states(vt_snap *after_a, vt_snap *after_b, size_t *n, char *path, size_t cap)
{
    ver_set *vs = must_open(tl_env_posix());
    assert_int_equal(apply(vs, 0, vt_file(ver_set_new_file_number(vs), "a", 1, "b", 1), 0, 0), 0);
    snap_current(vs, after_a);
    assert_int_equal(apply(vs, 1, vt_file(ver_set_new_file_number(vs), "c", 2, "d", 2), 0, 0), 0);
    snap_current(vs, after_b);
    manifest_path(vs, path, cap);
    ver_set_close(vs);
    return slurp(path, n);
}

/* Puts a manifest image back as the live manifest (reopen replaced it). */
static void restore(const char *path, const uint8_t *d, size_t n)
{
    const char *name = strrchr(path, '/') + 1;
    char line[64];
    spit(path, d, n);
    snprintf(line, sizeof line, "%s\n", name);
    assert_int_equal(tl_env_write_file_atomic(tl_env_posix(), g_dir, "CURRENT", line, strlen(line)),
                     0);
}

static void reopen_expect(const vt_snap *want)
{
    ver_set *vs = NULL;
    int rc = open_set(tl_env_posix(), false, 3, &vs);
    if (rc)
        fail_msg("reopen: %d %s", rc, tl_errmsg());
    assert_state(vs, want);
    ver_set_close(vs);
}

static void test_torn_tail(void **state)
{
    (void)state;
    vt_snap a, b;
    char path[512];
    size_t n, offs[8];
    uint8_t *img = two_states(&a, &b, &n, path, sizeof path);
    assert_int_equal(record_offsets(img, n, offs, 8), 3); /* snapshot, A, B */
    /* Every cut inside the last record recovers the state after A. */
    for (size_t cut = offs[2]; cut < n; cut++) {
        restore(path, img, cut);
        reopen_expect(&a);
    }
    /* A zero-filled tail (file extended, data lost) is torn too. */
    uint8_t *z = calloc(1, n + 100);
    memcpy(z, img, n);
    restore(path, z, n + 100);
    reopen_expect(&b);
    /* So is a complete last record with a bad checksum. */
    memcpy(z, img, n);
    z[n - 1] ^= 0x40;
    restore(path, z, n);
    reopen_expect(&a);
    /* After a torn tail the manifest was rewritten: applies work. */
    restore(path, img, n - 3);
    ver_set *vs = must_open(tl_env_posix());
    assert_int_equal(apply(vs, 2, vt_file(ver_set_new_file_number(vs), "x", 5, "y", 5), 0, 0), 0);
    vt_snap c;
    snap_current(vs, &c);
    ver_set_close(vs);
    reopen_expect(&c);
    /* A manifest with only its header has no state at all: corrupt. */
    ver_set_close(must_open(tl_env_posix()));
    restore(path, img, 12);
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_ECORRUPT);
    free(z);
    free(img);
    vt_snap_free(&a);
    vt_snap_free(&b);
    vt_snap_free(&c);
}

static void expect_corrupt(const char *path, const uint8_t *img, size_t n, const char *needle)
{
    ver_set *vs = NULL;
    restore(path, img, n);
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_ECORRUPT);
    if (!strstr(tl_errmsg(), needle) || !strstr(tl_errmsg(), "MANIFEST-"))
        fail_msg("message \"%s\" lacks \"%s\"", tl_errmsg(), needle);
}

/* Rewrites record i's payload (and checksum) with the given bytes. */
static uint8_t *with_payload(const uint8_t *img, size_t n, size_t off, const uint8_t *p,
                             size_t plen, size_t *outn)
{
    size_t old = tl_get_fixed32(img + off);
    size_t rest = n - (off + 12 + old);
    uint8_t *d = malloc(off + 12 + plen + rest);
    memcpy(d, img, off);
    tl_put_fixed32(d + off, (uint32_t)plen);
    tl_put_fixed64(d + off + 4, tl_xxh3(p, plen));
    memcpy(d + off + 12, p, plen);
    memcpy(d + off + 12 + plen, img + off + 12 + old, rest);
    *outn = off + 12 + plen + rest;
    return d;
}

static void test_corrupt_middle(void **state)
{
    (void)state;
    vt_snap a, b;
    char path[512], where[64];
    size_t n, offs[8], dn;
    uint8_t *img = two_states(&a, &b, &n, path, sizeof path);
    assert_int_equal(record_offsets(img, n, offs, 8), 3);
    uint8_t *d = malloc(n);

    /* A flipped payload byte in the middle record. */
    memcpy(d, img, n);
    d[offs[1] + 12 + 2] ^= 0x01;
    snprintf(where, sizeof where, "offset %zu", offs[1]);
    expect_corrupt(path, d, n, where);
    /* A flipped checksum byte. */
    memcpy(d, img, n);
    d[offs[1] + 5] ^= 0x80;
    expect_corrupt(path, d, n, where);
    /* A shorter length: the checksum no longer matches, data follows. */
    memcpy(d, img, n);
    d[offs[1]] -= 1;
    expect_corrupt(path, d, n, where);
    /* A bad magic. */
    memcpy(d, img, n);
    d[0] ^= 0xff;
    expect_corrupt(path, d, n, "offset 0");
    free(d);

    /* A well-framed record that does not decode, or does not apply. */
    static const uint8_t unknown_tag[] = {99, 1};
    d = with_payload(img, n, offs[1], unknown_tag, sizeof unknown_tag, &dn);
    expect_corrupt(path, d, dn, "unknown tag");
    free(d);
    static const uint8_t del_missing[] = {6, 0, 77};
    d = with_payload(img, n, offs[1], del_missing, sizeof del_missing, &dn);
    expect_corrupt(path, d, dn, "not live");
    free(d);
    /* Snapshot with two overlapping L1 files: "a"@1.."c"@1 and "b"@1.."d"@1. */
    uint8_t snap[128];
    size_t k = 0;
    snap[k++] = 1, snap[k++] = 3, snap[k++] = 2, snap[k++] = 7, snap[k++] = 3, snap[k++] = 50;
    for (int i = 0; i < 2; i++) {
        snap[k++] = 7, snap[k++] = 1, snap[k++] = (uint8_t)(10 + i), snap[k++] = 1;
        for (int j = 0; j < 2; j++) {
            snap[k++] = 10;
            snap[k++] = (uint8_t)('a' + i + 2 * j);
            tl_put_fixed64(snap + k, 1);
            k += 8;
            snap[k++] = TL_TYPE_VALUE;
        }
        snap[k++] = 1, snap[k++] = 1, snap[k++] = 1, snap[k++] = 0;
    }
    d = with_payload(img, n, offs[0], snap, k, &dn);
    expect_corrupt(path, d, offs[0] + 12 + k, "overlap"); /* the snapshot alone */
    free(d);

    /* CURRENT naming a manifest that is not there. */
    restore(path, img, n);
    ver_set *vs;
    assert_int_equal(tl_env_remove(tl_env_posix(), path), 0);
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_ECORRUPT);
    free(img);
    vt_snap_free(&a);
    vt_snap_free(&b);
}

static void test_current(void **state)
{
    (void)state;
    ver_set *vs = NULL;
    char path[512];
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_ENOTFOUND);
    ver_set_options o;
    vt_options(&o, tl_env_posix(), g_dir, true);
    o.read_only = true;
    assert_int_equal(ver_set_open(&o, &vs), TALUS_ENOTFOUND);
    snprintf(path, sizeof path, "%s/CURRENT", g_dir);
    assert_false(file_exists(path));

    vs = must_open(tl_env_posix());
    size_t n;
    uint8_t *cur = slurp(path, &n);
    assert_int_equal(n, 16);
    assert_memory_equal(cur, "MANIFEST-000001\n", 16);
    free(cur);
    assert_true(ver_set_new_file_number(vs) == 2);
    ver_set_close(vs);

    static const char *bad[] = {"",
                                "MANIFEST-\n",
                                "MANIFEST-12",
                                "MANIFEST-1x\n",
                                "manifest-000001\n",
                                "MANIFEST-000000\n",
                                "MANIFEST-99999999999999999999999\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spit(path, (const uint8_t *)bad[i], strlen(bad[i]));
        assert_int_equal(open_set(tl_env_posix(), true, 3, &vs), TALUS_ECORRUPT);
    }
    /* CURRENT lost but a later manifest exists: refuse to create over it. */
    tl_env_remove(tl_env_posix(), path);
    snprintf(path, sizeof path, "%s/MANIFEST-000007", g_dir);
    spit(path, (const uint8_t *)"x", 1);
    assert_int_equal(open_set(tl_env_posix(), true, 3, &vs), TALUS_ECORRUPT);
    assert_non_null(strstr(tl_errmsg(), "MANIFEST-000007"));
}

static void test_future_format(void **state)
{
    (void)state;
    ver_set *vs = NULL;
    assert_int_equal(open_set(tl_env_posix(), true, 4, &vs), 0);
    ver_edit e;
    ver_edit_init(&e);
    e.has_format_version = true;
    e.format_version = 4;
    assert_int_equal(ver_set_apply(vs, &e), 0);
    ver_edit_free(&e);
    /* It only goes up. */
    ver_edit_init(&e);
    e.has_format_version = true;
    e.format_version = 3;
    assert_int_equal(ver_set_apply(vs, &e), 0);
    ver_edit_free(&e);
    assert_int_equal(ver_set_format_version(vs), 4);
    char path[512];
    manifest_path(vs, path, sizeof path);
    ver_set_close(vs);

    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_EVERSION);
    assert_non_null(strstr(tl_errmsg(), "format V4"));
    assert_non_null(strstr(tl_errmsg(), "reads up to V3"));
    assert_int_equal(open_set(tl_env_posix(), false, 4, &vs), 0);
    assert_int_equal(ver_set_format_version(vs), 4);
    manifest_path(vs, path, sizeof path);
    ver_set_close(vs);

    /* A V5 record with a tag V3 does not know: still EVERSION, because the
     * format version comes first. */
    static const uint8_t v5[] = {1, 5, 2, 7, 99, 1, 2, 3};
    uint8_t img[64];
    memcpy(img, "TLMANFST", 8);
    tl_put_fixed32(img + 8, 1);
    tl_put_fixed32(img + 12, sizeof v5);
    tl_put_fixed64(img + 16, tl_xxh3(v5, sizeof v5));
    memcpy(img + 24, v5, sizeof v5);
    restore(path, img, 24 + sizeof v5);
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_EVERSION);
    assert_int_equal(open_set(tl_env_posix(), false, 5, &vs), TALUS_ECORRUPT);
    /* An unknown framing version is EVERSION too. */
    tl_put_fixed32(img + 8, 2);
    restore(path, img, 24 + sizeof v5);
    assert_int_equal(open_set(tl_env_posix(), false, 3, &vs), TALUS_EVERSION);
}

/* ---- Faults -------------------------------------------------------------- */

enum fault_case { SYNC_KEEP, SYNC_DROP, WRITE_FAIL, SHORT_WRITE };

static void run_fault(enum fault_case fc)
{
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    tl_env *env = tl_fault_env_env(fe);
    vt_obsolete obs = {.n = 0};
    pthread_mutex_init(&obs.mu, NULL);
    ver_set_options o;
    vt_options(&o, env, g_dir, true);
    o.on_obsolete = vt_on_obsolete;
    o.on_obsolete_ctx = &obs;
    ver_set *vs;
    assert_int_equal(ver_set_open(&o, &vs), 0);
    uint64_t a = ver_set_new_file_number(vs);
    assert_int_equal(apply(vs, 0, vt_file(a, "a", 1, "b", 1), 0, 0), 0);
    vt_snap before, after;
    snap_current(vs, &before);

    if (fc == SYNC_KEEP || fc == SYNC_DROP)
        tl_fault_env_arm(fe, TL_FAULT_SYNC, 1, TALUS_EIO, false);
    else if (fc == WRITE_FAIL)
        tl_fault_env_arm(fe, TL_FAULT_WRITE, 1, TALUS_ENOSPC, false);
    else
        tl_fault_env_short_write_next(fe);
    uint64_t b = ver_set_new_file_number(vs);
    int rc = apply(vs, 1, vt_file(b, "c", 2, "d", 2), 0, a);
    int want = fc == WRITE_FAIL ? TALUS_ENOSPC : TALUS_EIO;
    assert_int_equal(rc, want);
    tl_fault_env_disarm(fe);
    assert_state(vs, &before); /* nothing installed */
    /* Sticky: the next apply fails the same way without touching disk. */
    uint64_t writes = tl_fault_env_count(fe, TL_FAULT_WRITE);
    assert_int_equal(apply(vs, 2, vt_file(ver_set_new_file_number(vs), "e", 3, "f", 3), 0, 0),
                     want);
    assert_non_null(strstr(tl_errmsg(), "error state"));
    assert_true(tl_fault_env_count(fe, TL_FAULT_WRITE) == writes);
    ver_set_close(vs);
    assert_int_equal(obs.n, 0); /* neither a (still live) nor b (never installed) */

    if (fc == SYNC_DROP || fc == SHORT_WRITE)
        assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    o.create_if_missing = false;
    assert_int_equal(ver_set_open(&o, &vs), 0);
    ver_version *v = ver_set_current(vs);
    if (fc == SYNC_KEEP) {
        /* The OS kept the complete record although fsync failed: the edit
         * is there after reopen (a deletes a, adds b at L1). */
        assert_int_equal(v->nfiles[0], 0);
        assert_int_equal(v->nfiles[1], 1);
        assert_true(v->files[1][0]->number == b);
    } else {
        /* Unsynced, never written, or torn: the state before. */
        assert_true(vt_snap_matches(&before, v));
    }
    ver_version_unref(v);
    assert_true(ver_set_new_file_number(vs) > b);
    /* The reopened set writes again, and power loss now keeps it all. */
    assert_int_equal(apply(vs, 3, vt_file(ver_set_new_file_number(vs), "g", 4, "h", 4), 0, 0), 0);
    snap_current(vs, &after);
    ver_set_close(vs);
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_int_equal(ver_set_open(&o, &vs), 0);
    assert_state(vs, &after);
    ver_set_close(vs);
    vt_snap_free(&before);
    vt_snap_free(&after);
    tl_fault_env_free(fe);
    pthread_mutex_destroy(&obs.mu);
}

static void test_fault_sync_keep(void **state)
{
    (void)state;
    run_fault(SYNC_KEEP);
}

static void test_fault_sync_drop(void **state)
{
    (void)state;
    run_fault(SYNC_DROP);
}

static void test_fault_write(void **state)
{
    (void)state;
    run_fault(WRITE_FAIL);
}

static void test_fault_short_write(void **state)
{
    (void)state;
    run_fault(SHORT_WRITE);
}

/* A failure while open switches to a new manifest loses nothing: each
 * failing step, then a clean reopen sees the same state. */
static void test_fault_open(void **state)
{
    (void)state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    tl_env *env = tl_fault_env_env(fe);
    ver_set *vs;
    assert_int_equal(open_set(env, true, 3, &vs), 0);
    assert_int_equal(apply(vs, 0, vt_file(ver_set_new_file_number(vs), "a", 1, "b", 1), 0, 0), 0);
    vt_snap want;
    snap_current(vs, &want);
    ver_set_close(vs);
    const tl_fault_kind kinds[] = {TL_FAULT_OPEN, TL_FAULT_WRITE, TL_FAULT_SYNC, TL_FAULT_RENAME};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (uint64_t nth = 1; nth <= 3; nth++) {
            tl_fault_env_arm(fe, kinds[k], nth, TALUS_EIO, false);
            int rc = open_set(env, false, 3, &vs);
            tl_fault_env_disarm(fe);
            if (rc == 0)
                ver_set_close(vs); /* fewer than nth operations of that kind */
            else
                assert_int_equal(rc, TALUS_EIO);
            assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
            assert_int_equal(open_set(env, false, 3, &vs), 0);
            assert_state(vs, &want);
            ver_set_close(vs);
        }
    }
    vt_snap_free(&want);
    tl_fault_env_free(fe);
}

int main(void)
{
    /* Torn tails are logged as warnings; the tests make hundreds. */
    setenv("TALUS_LOG", "error", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_recovers, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_rotation, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_current, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_future_format, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_sync_keep, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_sync_drop, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_write, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_short_write, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_fault_open, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
