/*
 * meta.c - the attribute record stored in tree "meta" (format: fs/META.md):
 * encode, decode (every length checked against the record, a bad record
 * is -EIO, never a crash), defaults for keys that have no record, and the
 * user xattr list kept inside the record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define META_VERSION 1
#define META_FIXED 38
#define META_MAX_XATTRS 65536
#define META_MAX_XNAME 255
#define META_MAX_XVALUE 65536

void tfs_meta_default(const struct tfs *fs, uint8_t type, struct tfs_meta *m)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->mode = type == TFS_T_DIR ? 0755 : type == TFS_T_SYMLINK ? 0777 : 0644;
    m->uid = fs->cfg.uid;
    m->gid = fs->cfg.gid;
    m->atime = m->mtime = m->ctime = fs->mount_ns;
}

void tfs_meta_free(struct tfs_meta *m)
{
    for (size_t i = 0; i < m->nx; i++) {
        free(m->x[i].name);
        free(m->x[i].val);
    }
    free(m->x);
    m->x = NULL;
    m->nx = 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int put_varint(struct tfs_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    return tfs_buf_add(b, t, n);
}

/* LEB128 from p[*pos..n): -EIO when truncated or longer than 10 bytes. */
static int get_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*pos >= n)
            return -EIO;
        uint8_t b = p[(*pos)++];
        if (shift == 63 && b > 1)
            return -EIO;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -EIO;
}

int tfs_meta_encode(const struct tfs_meta *m, struct tfs_buf *out)
{
    uint8_t f[META_FIXED];
    f[0] = META_VERSION;
    f[1] = m->type;
    put32(f + 2, m->mode & 07777);
    put32(f + 6, m->uid);
    put32(f + 10, m->gid);
    put64(f + 14, (uint64_t)m->atime);
    put64(f + 22, (uint64_t)m->mtime);
    put64(f + 30, (uint64_t)m->ctime);
    out->n = 0;
    int rc = tfs_buf_add(out, f, sizeof f);
    if (rc == 0)
        rc = put_varint(out, m->nx);
    for (size_t i = 0; rc == 0 && i < m->nx; i++) {
        size_t nl = strlen(m->x[i].name);
        rc = put_varint(out, nl);
        if (rc == 0)
            rc = tfs_buf_add(out, m->x[i].name, nl);
        if (rc == 0)
            rc = put_varint(out, m->x[i].vlen);
        if (rc == 0)
            rc = tfs_buf_add(out, m->x[i].val, m->x[i].vlen);
    }
    return rc;
}

int tfs_meta_decode(const uint8_t *p, size_t n, struct tfs_meta *m)
{
    memset(m, 0, sizeof *m);
    if (n < META_FIXED || p[0] != META_VERSION)
        return -EIO;
    m->type = p[1];
    if (m->type < TFS_T_FILE || m->type > TFS_T_SYMLINK)
        return -EIO;
    m->mode = get32(p + 2);
    if (m->mode & ~07777u)
        return -EIO;
    m->uid = get32(p + 6);
    m->gid = get32(p + 10);
    m->atime = (int64_t)get64(p + 14);
    m->mtime = (int64_t)get64(p + 22);
    m->ctime = (int64_t)get64(p + 30);

    size_t pos = META_FIXED;
    uint64_t nx;
    if (get_varint(p, n, &pos, &nx) < 0 || nx > META_MAX_XATTRS || nx > n - pos)
        return -EIO;
    if (nx) {
        m->x = calloc(nx, sizeof *m->x);
        if (!m->x)
            return -ENOMEM;
    }
    int rc = -EIO;
    for (uint64_t i = 0; i < nx; i++) {
        uint64_t nl, vl;
        if (get_varint(p, n, &pos, &nl) < 0 || nl == 0 || nl > META_MAX_XNAME || nl > n - pos ||
            memchr(p + pos, 0, nl))
            goto bad;
        struct tfs_xattr *x = &m->x[m->nx];
        x->name = malloc(nl + 1);
        if (!x->name) {
            rc = -ENOMEM;
            goto bad;
        }
        m->nx++;
        memcpy(x->name, p + pos, nl);
        x->name[nl] = 0;
        pos += nl;
        if (get_varint(p, n, &pos, &vl) < 0 || vl > META_MAX_XVALUE || vl > n - pos)
            goto bad;
        x->val = malloc(vl ? vl : 1);
        if (!x->val) {
            rc = -ENOMEM;
            goto bad;
        }
        memcpy(x->val, p + pos, vl);
        x->vlen = vl;
        pos += vl;
    }
    if (pos != n)
        goto bad;
    return 0;
bad:
    tfs_meta_free(m);
    return rc;
}

struct tfs_xattr *tfs_meta_xfind(const struct tfs_meta *m, const char *name)
{
    for (size_t i = 0; i < m->nx; i++)
        if (strcmp(m->x[i].name, name) == 0)
            return &m->x[i];
    return NULL;
}

int tfs_meta_xset(struct tfs_meta *m, const char *name, const void *v, size_t vlen)
{
    if (strlen(name) > META_MAX_XNAME || strlen(name) == 0)
        return -ERANGE;
    if (vlen > META_MAX_XVALUE)
        return -E2BIG;
    uint8_t *copy = malloc(vlen ? vlen : 1);
    if (!copy)
        return -ENOMEM;
    if (vlen)
        memcpy(copy, v, vlen);
    struct tfs_xattr *x = tfs_meta_xfind(m, name);
    if (x) {
        free(x->val);
        x->val = copy;
        x->vlen = vlen;
        return 0;
    }
    if (m->nx >= META_MAX_XATTRS) {
        free(copy);
        return -ENOSPC;
    }
    struct tfs_xattr *nx = realloc(m->x, (m->nx + 1) * sizeof *nx);
    char *nm = strdup(name);
    if (!nx || !nm) {
        if (nx)
            m->x = nx;
        free(nm);
        free(copy);
        return -ENOMEM;
    }
    m->x = nx;
    m->x[m->nx].name = nm;
    m->x[m->nx].val = copy;
    m->x[m->nx].vlen = vlen;
    m->nx++;
    return 0;
}

int tfs_meta_xdel(struct tfs_meta *m, const char *name)
{
    struct tfs_xattr *x = tfs_meta_xfind(m, name);
    if (!x)
        return -ENODATA;
    free(x->name);
    free(x->val);
    size_t i = (size_t)(x - m->x);
    memmove(&m->x[i], &m->x[i + 1], (m->nx - i - 1) * sizeof *x);
    m->nx--;
    return 0;
}
