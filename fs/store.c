/*
 * store.c - how the filesystem reads and writes the database: gets at a
 * view (latest or a snapshot), what exists at a key (file, directory or
 * both), whether a directory still has keys, and batches (tfs_txn) that
 * put contents and attributes of one operation together.
 *
 * The byte-order trap lives here: "a.txt" and "a-b" sort between "a" and
 * "a/x", so whether "a" is a directory is decided by seeking "a/", never by
 * looking at the key after "a".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "fs.h"

#define ROOT_META_KEY "root"

int tfs_get(struct tfs *fs, talus_tree *t, struct tfs_view v, const void *key, size_t klen,
            void **val, size_t *vlen)
{
    (void)fs;
    if (!t)
        return -ENOENT;
    if (klen == 0 || klen > TALUS_MAX_KEY)
        return -ENAMETOOLONG;
    int rc = talus_get(t, v.snap, key, klen, val, vlen);
    if (rc == TALUS_ENOTFOUND)
        return -ENOENT;
    return rc < 0 ? tfs_errno(rc, "read") : 0;
}

int tfs_value_open(struct tfs *fs, struct tfs_view v, const void *key, size_t klen,
                   talus_value **out)
{
    if (!fs->data)
        return -ENOENT;
    if (klen == 0 || klen > TALUS_MAX_KEY)
        return -ENAMETOOLONG;
    int rc = talus_value_open(fs->data, v.snap, key, klen, out);
    if (rc == TALUS_ENOTFOUND)
        return -ENOENT;
    return rc < 0 ? tfs_errno(rc, "open value") : 0;
}

bool tfs_is_marker(const void *key, size_t klen, uint64_t vlen)
{
    return vlen == 0 && klen > 0 && ((const uint8_t *)key)[klen - 1] == '/';
}

static int decode_logged(const uint8_t *key, size_t klen, const void *val, size_t vlen,
                         struct tfs_meta *m)
{
    int rc = tfs_meta_decode(val, vlen, m);
    if (rc == -EIO)
        tfs_log(LOG_ERR, "corrupt attribute record for key \"%.*s\" (%zu bytes)",
                (int)(klen > 200 ? 200 : klen), (const char *)key, vlen);
    return rc;
}

int tfs_load_meta(struct tfs *fs, struct tfs_view v, const uint8_t *key, size_t klen, bool dir,
                  uint8_t type, struct tfs_meta *m)
{
    struct tfs_buf k = {0};
    void *val = NULL;
    size_t vlen = 0;
    int rc = tfs_buf_set(&k, key, klen);
    if (rc == 0 && dir)
        rc = tfs_buf_add(&k, "/", 1);
    if (rc == 0)
        rc = tfs_get(fs, fs->meta, v, k.p, k.n, &val, &vlen);
    if (rc == 0)
        rc = decode_logged(k.p, k.n, val, vlen, m);
    if (rc == -ENOENT)
        tfs_meta_default(fs, type, m);
    talus_free(val);
    tfs_buf_free(&k);
    return rc;
}

int tfs_load_root_meta(struct tfs *fs, struct tfs_view v, struct tfs_meta *m)
{
    void *val = NULL;
    size_t vlen = 0;
    int rc = tfs_get(fs, fs->info, v, ROOT_META_KEY, strlen(ROOT_META_KEY), &val, &vlen);
    if (rc == 0)
        rc = decode_logged((const uint8_t *)ROOT_META_KEY, 4, val, vlen, m);
    if (rc == 0 && m->type != TFS_T_DIR) {
        tfs_meta_free(m);
        rc = -EIO;
    }
    if (rc == -ENOENT)
        tfs_meta_default(fs, TFS_T_DIR, m);
    talus_free(val);
    return rc;
}

static int iter_at(struct tfs *fs, struct tfs_view v, const uint8_t *lower, size_t llen,
                   talus_iter **it)
{
    talus_iter_options o;
    talus_iter_options_init(&o);
    o.snapshot = v.snap;
    o.lower = lower;
    o.lower_len = llen;
    int rc = talus_iter_new(fs->data, &o, it);
    return rc < 0 ? tfs_errno(rc, "iterator") : 0;
}

static bool starts_with(const void *k, size_t kl, const void *p, size_t pl)
{
    return kl >= pl && (pl == 0 || memcmp(k, p, pl) == 0);
}

/*
 * A key ending in '/' with an empty value is a directory marker, unless its
 * attribute record says it is a file (an empty file whose last component is
 * empty, "a/%e"): only then does the record have to be read.
 */
static int marker_is_file(struct tfs *fs, struct tfs_view v, const uint8_t *key, size_t klen)
{
    struct tfs_meta m;
    int rc = tfs_load_meta(fs, v, key, klen, false, TFS_T_DIR, &m);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    bool file = rc == 0 && m.type != TFS_T_DIR;
    tfs_meta_free(&m);
    return file;
}

int tfs_probe_key(struct tfs *fs, struct tfs_view v, const uint8_t *key, size_t klen,
                  struct tfs_probe *p)
{
    memset(p, 0, sizeof *p);
    if (!fs->data)
        return 0;
    if (klen + 1 > TALUS_MAX_KEY)
        return -ENAMETOOLONG;
    talus_iter *it = NULL;
    int rc = iter_at(fs, v, key, klen, &it);
    if (rc < 0)
        return rc;
    /* The empty key (an empty first component) can only be a directory. */
    if (klen)
        talus_iter_seek(it, key, klen);
    if (klen && talus_iter_valid(it)) {
        size_t kl;
        const void *k = talus_iter_key(it, &kl);
        /* The length only: a blob-file value is not read for a stat. */
        uint64_t vl = talus_iter_value_length(it);
        if (kl == klen && memcmp(k, key, klen) == 0) {
            p->size = vl;
            p->file = true;
            if (tfs_is_marker(key, klen, vl)) {
                rc = marker_is_file(fs, v, key, klen);
                if (rc < 0)
                    goto out;
                p->file = rc == 1;
            }
        }
    }
    /* The directory test seeks "key/" itself: see the comment at the top. */
    uint8_t *d = malloc(klen + 1);
    rc = 0;
    if (!d) {
        rc = -ENOMEM;
        goto out;
    }
    if (klen)
        memcpy(d, key, klen);
    d[klen] = '/';
    talus_iter_seek(it, d, klen + 1);
    if (talus_iter_valid(it)) {
        size_t kl;
        const void *k = talus_iter_key(it, &kl);
        p->dir = starts_with(k, kl, d, klen + 1);
    }
    free(d);
    rc = talus_iter_status(it);
    rc = rc < 0 ? tfs_errno(rc, "probe") : 0;
out:
    talus_iter_free(it);
    return rc;
}

int tfs_any_key(struct tfs *fs, struct tfs_view v, const uint8_t *prefix, size_t plen,
                const uint8_t *skip_lo, size_t lolen, const uint8_t *skip_hi, size_t hilen)
{
    if (!fs->data)
        return 0;
    talus_iter *it = NULL;
    talus_iter_options o;
    talus_iter_options_init(&o);
    o.snapshot = v.snap;
    o.prefix = plen ? prefix : NULL;
    o.prefix_len = plen;
    int rc = talus_iter_new(fs->data, &o, &it);
    if (rc < 0)
        return tfs_errno(rc, "iterator");
    talus_iter_seek(it, prefix, plen);
    int found = 0;
    while (talus_iter_valid(it)) {
        size_t kl;
        const uint8_t *k = talus_iter_key(it, &kl);
        if (!starts_with(k, kl, prefix, plen))
            break;
        if (skip_lo) {
            /* Inside [skip_lo, skip_hi)? Jump over the range once. */
            int c1 = memcmp(k, skip_lo, kl < lolen ? kl : lolen);
            bool ge_lo = c1 > 0 || (c1 == 0 && kl >= lolen);
            int c2 = memcmp(k, skip_hi, kl < hilen ? kl : hilen);
            bool lt_hi = c2 < 0 || (c2 == 0 && kl < hilen);
            if (ge_lo && lt_hi) {
                talus_iter_seek(it, skip_hi, hilen);
                skip_lo = NULL;
                continue;
            }
        }
        found = 1;
        break;
    }
    rc = talus_iter_status(it);
    talus_iter_free(it);
    return rc < 0 ? tfs_errno(rc, "scan") : found;
}

/* ---- batches ---------------------------------------------------------- */

int tfs_txn_begin(struct tfs *fs, struct tfs_txn *tx)
{
    tx->fs = fs;
    tx->b = NULL;
    tx->ndirs = 0;
    if (!fs->data || !fs->meta || !fs->info)
        return -EROFS;
    int rc = talus_batch_new(&tx->b);
    return rc < 0 ? tfs_errno(rc, "batch") : 0;
}

int tfs_txn_put(struct tfs_txn *tx, talus_tree *t, const void *k, size_t kl, const void *v,
                size_t vl)
{
    if (kl == 0 || kl > TALUS_MAX_KEY)
        return -ENAMETOOLONG;
    if ((uint64_t)vl > TALUS_MAX_VALUE)
        return -EFBIG;
    int rc = talus_batch_put(tx->b, t, k, kl, v, vl);
    return rc < 0 ? tfs_errno(rc, "batch put") : 0;
}

int tfs_txn_copy(struct tfs_txn *tx, talus_tree *t, const void *k, size_t kl, const void *src,
                 size_t srclen)
{
    if (kl == 0 || kl > TALUS_MAX_KEY || srclen == 0 || srclen > TALUS_MAX_KEY)
        return -ENAMETOOLONG;
    int rc = talus_batch_copy(tx->b, t, k, kl, t, NULL, src, srclen);
    if (rc == TALUS_ENOTFOUND)
        return -ENOENT;
    return rc < 0 ? tfs_errno(rc, "batch copy") : 0;
}

int tfs_txn_del(struct tfs_txn *tx, talus_tree *t, const void *k, size_t kl)
{
    if (kl == 0 || kl > TALUS_MAX_KEY)
        return -ENAMETOOLONG;
    int rc = talus_batch_delete(tx->b, t, k, kl);
    return rc < 0 ? tfs_errno(rc, "batch delete") : 0;
}

int tfs_txn_put_meta(struct tfs_txn *tx, const uint8_t *key, size_t klen, bool dir,
                     const struct tfs_meta *m)
{
    struct tfs_buf enc = {0}, k = {0};
    int rc = tfs_meta_encode(m, &enc);
    if (rc == 0)
        rc = tfs_buf_set(&k, key, klen);
    if (rc == 0 && dir)
        rc = tfs_buf_add(&k, "/", 1);
    if (rc == 0)
        rc = tfs_txn_put(tx, tx->fs->meta, k.p, k.n, enc.p, enc.n);
    tfs_buf_free(&enc);
    tfs_buf_free(&k);
    return rc;
}

int tfs_txn_put_root_meta(struct tfs_txn *tx, const struct tfs_meta *m)
{
    struct tfs_buf enc = {0};
    int rc = tfs_meta_encode(m, &enc);
    if (rc == 0)
        rc = tfs_txn_put(tx, tx->fs->info, ROOT_META_KEY, strlen(ROOT_META_KEY), enc.p, enc.n);
    tfs_buf_free(&enc);
    return rc;
}

int tfs_txn_commit(struct tfs_txn *tx, int durability)
{
    if (talus_batch_count(tx->b) == 0)
        return 0;
    int rc = talus_batch_commit(tx->fs->db, tx->b, durability, NULL);
    for (int i = 0; rc == 0 && i < tx->ndirs; i++)
        tfs_node_set_attr(tx->fs, tx->dirs[i].n, &tx->dirs[i].a);
    if (rc == TALUS_ETOOBIG)
        return -EFBIG;
    return rc < 0 ? tfs_errno(rc, "commit") : 0;
}

void tfs_txn_end(struct tfs_txn *tx)
{
    talus_batch_free(tx->b);
    tx->b = NULL;
    for (int i = 0; i < tx->ndirs; i++)
        tfs_node_put(tx->fs, tx->dirs[i].n);
    tx->ndirs = 0;
}
