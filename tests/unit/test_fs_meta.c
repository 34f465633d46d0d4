/*
 * test_fs_meta.c - the parts of talusfs that need no mount: the attribute
 * record codec (fs/META.md), the inode table's key computation and the
 * name resolution on top of the key codec (fs/names.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fs.h"

static struct tfs *new_fs(void)
{
    struct tfs *fs = calloc(1, sizeof *fs);
    assert_non_null(fs);
    fs->cfg.uid = 1000;
    fs->cfg.gid = 100;
    fs->mount_ns = 1234567890123456789ll;
    pthread_mutex_init(&fs->tbl, NULL);
    pthread_rwlock_init(&fs->ns, NULL);
    assert_int_equal(tfs_table_init(fs), 0);
    return fs;
}

static void free_fs(struct tfs *fs)
{
    tfs_table_free(fs);
    pthread_mutex_destroy(&fs->tbl);
    pthread_rwlock_destroy(&fs->ns);
    free(fs);
}

static void sample(struct tfs_meta *m)
{
    memset(m, 0, sizeof *m);
    m->type = TFS_T_SYMLINK;
    m->mode = 04755;
    m->uid = 0xdeadbeef;
    m->gid = 7;
    m->atime = -1;                 /* before the epoch */
    m->mtime = -14182940500000000; /* 1969-07-20 */
    m->ctime = INT64_MAX;
    uint8_t bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (uint8_t)i;
    assert_int_equal(tfs_meta_xset(m, "user.bin", bin, sizeof bin), 0);
    assert_int_equal(tfs_meta_xset(m, "user.empty", "", 0), 0);
    assert_int_equal(tfs_meta_xset(m, "user.color", "blue", 4), 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct tfs_meta m, d;
    struct tfs_buf enc = {0};
    sample(&m);
    assert_int_equal(tfs_meta_encode(&m, &enc), 0);
    assert_int_equal(tfs_meta_decode(enc.p, enc.n, &d), 0);
    assert_int_equal(d.type, m.type);
    assert_int_equal(d.mode, m.mode);
    assert_int_equal(d.uid, m.uid);
    assert_int_equal(d.gid, m.gid);
    assert_true(d.atime == m.atime && d.mtime == m.mtime && d.ctime == m.ctime);
    assert_int_equal(d.nx, 3);
    for (size_t i = 0; i < m.nx; i++) {
        struct tfs_xattr *x = tfs_meta_xfind(&d, m.x[i].name);
        assert_non_null(x);
        assert_int_equal(x->vlen, m.x[i].vlen);
        assert_memory_equal(x->val, m.x[i].val, x->vlen ? x->vlen : 1);
    }
    /* Replace, remove. */
    assert_int_equal(tfs_meta_xset(&d, "user.color", "green", 5), 0);
    assert_int_equal(tfs_meta_xfind(&d, "user.color")->vlen, 5);
    assert_int_equal(tfs_meta_xdel(&d, "user.bin"), 0);
    assert_int_equal(tfs_meta_xdel(&d, "user.bin"), -ENODATA);
    assert_int_equal(d.nx, 2);
    tfs_meta_free(&d);
    tfs_meta_free(&m);
    tfs_buf_free(&enc);
}

static void test_fixed_layout(void **state)
{
    (void)state;
    /* The byte layout of fs/META.md, written out by hand. */
    struct tfs_meta m;
    memset(&m, 0, sizeof m);
    m.type = TFS_T_FILE;
    m.mode = 0644;
    m.uid = 1;
    m.gid = 2;
    m.atime = 3;
    m.mtime = 0x0102030405060708ll;
    m.ctime = -2;
    struct tfs_buf enc = {0};
    assert_int_equal(tfs_meta_encode(&m, &enc), 0);
    static const uint8_t want[] = {1, 1, 0xa4, 0x01, 0,    0,    1,    0,    0,    0,    2, 0, 0, 0,
                                   3, 0, 0,    0,    0,    0,    0,    0,    8,    7,    6, 5, 4, 3,
                                   2, 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
    assert_int_equal(enc.n, sizeof want);
    assert_memory_equal(enc.p, want, sizeof want);
    tfs_buf_free(&enc);
}

static void test_rejects(void **state)
{
    (void)state;
    struct tfs_meta m, d;
    struct tfs_buf enc = {0};
    sample(&m);
    assert_int_equal(tfs_meta_encode(&m, &enc), 0);
    tfs_meta_free(&m);

    /* Every truncation is refused. */
    for (size_t n = 0; n < enc.n; n++)
        assert_int_equal(tfs_meta_decode(enc.p, n, &d), -EIO);
    /* Trailing garbage is refused. */
    uint8_t *longer = malloc(enc.n + 1);
    memcpy(longer, enc.p, enc.n);
    longer[enc.n] = 0;
    assert_int_equal(tfs_meta_decode(longer, enc.n + 1, &d), -EIO);
    free(longer);

    uint8_t *b = malloc(enc.n);
    memcpy(b, enc.p, enc.n);
    b[0] = 2; /* version */
    assert_int_equal(tfs_meta_decode(b, enc.n, &d), -EIO);
    b[0] = 1;
    b[1] = 4; /* type */
    assert_int_equal(tfs_meta_decode(b, enc.n, &d), -EIO);
    b[1] = 1;
    b[3] = 0x10; /* mode bit 12: a file type bit, not a permission */
    assert_int_equal(tfs_meta_decode(b, enc.n, &d), -EIO);
    memcpy(b, enc.p, enc.n);
    b[38] = 0xff; /* xattr count: an unterminated varint / too many */
    assert_int_equal(tfs_meta_decode(b, enc.n, &d), -EIO);
    free(b);

    /* Random corruption: never a crash (run under ASan), never a leak. */
    unsigned seed = (unsigned)time(NULL);
    printf("seed %u\n", seed);
    srand(seed);
    b = malloc(enc.n);
    for (int round = 0; round < 20000; round++) {
        memcpy(b, enc.p, enc.n);
        int flips = 1 + rand() % 4;
        for (int i = 0; i < flips; i++)
            b[rand() % enc.n] = (uint8_t)rand();
        size_t n = (size_t)rand() % (enc.n + 1);
        if (tfs_meta_decode(b, n, &d) == 0)
            tfs_meta_free(&d);
    }
    free(b);
    tfs_buf_free(&enc);
}

static void test_defaults(void **state)
{
    (void)state;
    struct tfs *fs = new_fs();
    struct tfs_meta m;
    tfs_meta_default(fs, TFS_T_FILE, &m);
    assert_int_equal(m.mode, 0644);
    assert_int_equal(m.uid, 1000);
    assert_int_equal(m.gid, 100);
    assert_true(m.mtime == fs->mount_ns && m.ctime == fs->mount_ns);
    tfs_meta_default(fs, TFS_T_DIR, &m);
    assert_int_equal(m.mode, 0755);
    free_fs(fs);
}

static void check_names(const char *comp, bool at_root, bool conflict, const char *want, int nn)
{
    struct tfs_buf out = {0};
    int got;
    assert_int_equal(
        tfs_comp_names((const uint8_t *)comp, strlen(comp), at_root, conflict, &out, &got), 0);
    assert_int_equal(out.n, strlen(want));
    assert_memory_equal(out.p, want, out.n);
    assert_int_equal(got, nn);
    tfs_buf_free(&out);
}

static void test_comp_names(void **state)
{
    (void)state;
    check_names("a.txt", false, false, "a.txt", 1);
    check_names("a", false, true, "a%f", 1);
    check_names(".snap", true, false, "%2Esnap", 1);
    check_names(".snap", false, false, ".snap", 1);
    check_names("", false, false, "%e", 1);
    char lng[301], want[400];
    memset(lng, 'L', 300);
    lng[300] = 0;
    memset(want, 'L', 253);
    memcpy(want + 253, "%+/", 3);
    memset(want + 256, 'L', 47);
    want[303] = 0;
    check_names(lng, false, false, want, 2);

    struct tfs_buf chain = {0};
    tfs_buf_set(&chain, "ab%+/cd%+/ef", 12);
    const char *n;
    size_t l;
    assert_true(tfs_chain_name(&chain, 1, &n, &l));
    assert_int_equal(l, 4);
    assert_memory_equal(n, "cd%+", 4);
    assert_true(tfs_chain_name(&chain, 2, &n, &l));
    assert_memory_equal(n, "ef", 2);
    assert_false(tfs_chain_name(&chain, 3, &n, &l));
    tfs_buf_free(&chain);
}

static void check_key(struct tfs *fs, struct tfs_node *n, const char *want)
{
    struct tfs_buf k = {0};
    assert_int_equal(tfs_node_key(fs, n, &k), 0);
    assert_int_equal(k.n, strlen(want));
    assert_memory_equal(k.p, want, k.n);
    tfs_buf_free(&k);
}

static void test_keys_and_moves(void **state)
{
    (void)state;
    struct tfs *fs = new_fs();
    struct tfs_node *a, *b, *f, *c, *again;
    assert_int_equal(tfs_node_make(fs, fs->root, "a", (const uint8_t *)"a", 1, TFS_DIR, false, &a),
                     0);
    assert_int_equal(tfs_node_make(fs, a, "b", (const uint8_t *)"b", 1, TFS_DIR, false, &b), 0);
    assert_int_equal(tfs_node_make(fs, b, "%", (const uint8_t *)"%", 1, TFS_FILE, false, &f), 0);
    check_key(fs, f, "a/b/%");
    struct tfs_buf p = {0};
    assert_int_equal(tfs_node_child_prefix(fs, b, &p), 0);
    assert_int_equal(p.n, 4);
    assert_int_equal(tfs_node_child_prefix(fs, fs->root, &p), 0);
    assert_int_equal(p.n, 0);
    tfs_buf_free(&p);

    /* A chain piece contributes its bytes with no '/' after it. */
    assert_int_equal(tfs_node_make(fs, a, "xy%+", (const uint8_t *)"xy", 2, TFS_CONT, false, &c),
                     0);
    struct tfs_node *tail;
    assert_int_equal(tfs_node_make(fs, c, "z", (const uint8_t *)"z", 1, TFS_FILE, false, &tail), 0);
    check_key(fs, tail, "a/xyz");

    /* Same (parent, name): same node and inode number. */
    assert_int_equal(tfs_node_make(fs, b, "%", (const uint8_t *)"%", 1, TFS_FILE, false, &again),
                     0);
    assert_ptr_equal(again, f);
    tfs_node_put(fs, again);

    /* Moving a directory moves everything below it. */
    uint64_t ino = f->ino;
    assert_int_equal(tfs_node_move(fs, b, fs->root, "moved", (const uint8_t *)"moved", 5, false),
                     0);
    check_key(fs, f, "moved/%");
    assert_int_equal(f->ino, ino);
    assert_null(tfs_node_child(fs, a, "b"));
    struct tfs_node *m = tfs_node_child(fs, fs->root, "moved");
    assert_ptr_equal(m, b);
    tfs_node_put(fs, m);

    /* Resolution of names below a directory. */
    struct tfs_res r;
    assert_int_equal(tfs_resolve(fs, a, "q%r", &r), 0); /* a literal '%' */
    assert_int_equal(r.kind, TFS_RES_ENTRY);
    assert_int_equal(r.key.n, 5);
    assert_memory_equal(r.key.p, "a/q%r", 5);
    tfs_res_free(&r);
    assert_int_equal(tfs_resolve(fs, a, "c%f", &r), 0);
    assert_int_equal(r.kind, TFS_RES_CONFLICT);
    assert_memory_equal(r.key.p, "a/c", 3);
    tfs_res_free(&r);
    assert_int_equal(tfs_resolve(fs, a, "q%25r", &r), -ENOENT); /* an unneeded escape */
    assert_int_equal(tfs_resolve(fs, a, "%2525", &r), 0);       /* the key "%25" */
    assert_memory_equal(r.key.p, "a/%25", 5);
    tfs_res_free(&r);
    assert_int_equal(tfs_resolve(fs, a, "%2Esnap", &r), -ENOENT); /* only at the root */
    assert_int_equal(tfs_resolve(fs, fs->root, "%2Esnap", &r), 0);
    assert_memory_equal(r.key.p, ".snap", 5);
    tfs_res_free(&r);
    assert_int_equal(tfs_resolve(fs, fs->root, "%e", &r), 0);
    assert_int_equal(r.key.n, 0); /* the empty first component */
    tfs_res_free(&r);
    assert_int_equal(tfs_resolve(fs, f, "x", &r), -ENOTDIR);

    tfs_node_put(fs, tail);
    tfs_node_put(fs, c);
    tfs_node_put(fs, f);
    tfs_node_put(fs, b);
    tfs_node_put(fs, a);
    free_fs(fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),  cmocka_unit_test(test_fixed_layout),
        cmocka_unit_test(test_rejects),    cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_comp_names), cmocka_unit_test(test_keys_and_moves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
