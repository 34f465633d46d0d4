/*
 * names.c - between path names and key bytes, on top of the codec in
 * fs/keys.h: what a name below a directory denotes (tfs_resolve) and the
 * names of a key component (tfs_comp_names).
 *
 * A key component longer than one name (255 bytes once escaped) is spelled
 * as a chain "piece%+/piece%+/last": the "%+" names are directories of
 * kind TFS_CONT whose key is the component so far. A file that shares its
 * key with a directory ("a" and "a/b") is shown as "a%f" (the conflict
 * form, TFS_RES_CONFLICT). Only canonical spellings resolve; every other
 * name is -ENOENT, so each key has exactly one path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "keys.h"

void tfs_res_free(struct tfs_res *r)
{
    tfs_buf_free(&r->key);
    tfs_buf_free(&r->seg);
    tfs_buf_free(&r->chain);
}

int tfs_comp_names(const uint8_t *c, size_t n, bool at_root, bool conflict, struct tfs_buf *out,
                   int *nnames)
{
    /* Escaping at most triples a byte; a name adds "%+/" per 251 bytes. */
    size_t cap = n * 3 + (n * 3 / 250 + 2) * 3 + 16;
    out->n = 0;
    int rc = tfs_buf_add(out, NULL, 0);
    if (rc < 0)
        return rc;
    if (out->cap < cap) {
        uint8_t *p = realloc(out->p, cap);
        if (!p)
            return -ENOMEM;
        out->p = p;
        out->cap = cap;
    }
    size_t len = 0;
    rc = fsk_component_to_names(c, n, at_root, (char *)out->p, out->cap, &len, nnames);
    if (rc < 0)
        return rc;
    out->n = len;
    if (!conflict)
        return 0;
    /* The conflict form changes only the last name (see keys.h). */
    size_t start = len;
    while (start > 0 && out->p[start - 1] != '/')
        start--;
    char last[FSK_NAME_MAX + 8];
    size_t ll;
    rc = fsk_conflict_name((const char *)out->p + start, len - start, last, sizeof last, &ll);
    if (rc < 0)
        return rc;
    out->n = start;
    rc = tfs_buf_add(out, last, ll);
    if (rc == 0 && nnames && memchr(last, '/', ll))
        (*nnames)++;
    return rc;
}

bool tfs_chain_name(const struct tfs_buf *chain, int i, const char **name, size_t *len)
{
    const char *p = (const char *)chain->p, *end = p + chain->n;
    for (; i > 0; i--) {
        const char *sl = memchr(p, '/', (size_t)(end - p));
        if (!sl)
            return false;
        p = sl + 1;
    }
    const char *sl = memchr(p, '/', (size_t)(end - p));
    *name = p;
    *len = sl ? (size_t)(sl - p) : (size_t)(end - p);
    return true;
}

/*
 * Collect the names of the chain that `name` ends: the TFS_CONT ancestors
 * up to the first directory that is not one, joined by '/'. *top is that
 * directory, *depth the number of CONT ancestors.
 */
static int chain_of(struct tfs *fs, struct tfs_node *parent, const char *name,
                    struct tfs_buf *chain, struct tfs_node **top, int *depth)
{
    pthread_mutex_lock(&fs->tbl);
    size_t len = strlen(name);
    int d = 0;
    struct tfs_node *x = parent;
    for (; x->kind == TFS_CONT; x = x->parent) {
        len += x->namelen + 1;
        d++;
    }
    *top = x;
    *depth = d;
    chain->n = 0;
    int rc = 0;
    if (chain->cap < len) {
        uint8_t *p = realloc(chain->p, len);
        if (!p)
            rc = -ENOMEM;
        else {
            chain->p = p;
            chain->cap = len;
        }
    }
    if (rc == 0) {
        size_t pos = len, nl = strlen(name);
        pos -= nl;
        memcpy(chain->p + pos, name, nl);
        for (x = parent; x->kind == TFS_CONT; x = x->parent) {
            chain->p[--pos] = '/';
            pos -= x->namelen;
            memcpy(chain->p + pos, x->name, x->namelen);
        }
        chain->n = len;
    }
    pthread_mutex_unlock(&fs->tbl);
    return rc;
}

int tfs_resolve(struct tfs *fs, struct tfs_node *parent, const char *name, struct tfs_res *r)
{
    memset(r, 0, sizeof *r);
    size_t nlen = strlen(name);
    if (nlen > FSK_NAME_MAX)
        return -ENAMETOOLONG;
    if (!tfs_is_dirlike(parent))
        return -ENOTDIR;

    struct tfs_buf chain = {0}, pfx = {0};
    struct tfs_node *top;
    int depth;
    bool at_root = tfs_is_rootlike(parent);
    int rc = chain_of(fs, parent, name, &chain, &top, &depth);
    if (rc == 0)
        rc = tfs_node_child_prefix(fs, top, &pfx);
    if (rc < 0)
        goto out;

    size_t plain = nlen;
    bool conflict = fsk_is_conflict_name(name, nlen, &plain);
    bool more = nlen >= 2 && name[nlen - 2] == FSK_ESCAPE && name[nlen - 1] == '+';
    r->comp_start = pfx.n;

    if (more) {
        /* A piece of a long component: a directory of the chain. A piece
         * never starts with an escape that depends on its position, so it
         * decodes on its own; fsk_path_to_key checks the whole chain once
         * its last name is known. */
        size_t got = 0;
        bool m2 = false;
        if ((rc = tfs_buf_set(&r->seg, NULL, 0)) < 0 || (rc = tfs_buf_add(&r->seg, name, nlen)) < 0)
            goto out;
        rc = fsk_name_to_bytes(name, nlen, at_root, r->seg.p, r->seg.cap, &got, &m2);
        if (rc < 0)
            goto out;
        r->seg.n = got;
        r->kind = TFS_RES_CONT;
        r->depth = depth + 1;
        rc = tfs_node_key(fs, parent, &r->key);
        if (rc == 0 && parent->kind == TFS_DIR)
            rc = tfs_buf_add(&r->key, "/", 1);
        if (rc == 0)
            rc = tfs_buf_add(&r->key, r->seg.p, r->seg.n);
        if (rc == 0 && r->key.n > TALUS_MAX_KEY)
            rc = -ENAMETOOLONG;
        goto out;
    }

    /*
     * The last name of a component: have the codec decode (and check the
     * canonical spelling of) the whole chain. Below the root a dummy first
     * component keeps ".snap"-style escapes from being accepted there.
     */
    struct tfs_buf path = {0}, pk = {0};
    bool first = tfs_is_rootlike(top);
    rc = first ? 0 : tfs_buf_add(&path, "x/", 2);
    if (rc == 0)
        rc = tfs_buf_add(&path, chain.p, chain.n);
    size_t cap = TALUS_MAX_KEY + 2, klen = 0;
    uint8_t *k = rc == 0 ? malloc(cap) : NULL;
    if (rc == 0 && !k)
        rc = -ENOMEM;
    if (rc == 0)
        rc = fsk_path_to_key((const char *)path.p, path.n, k, cap, &klen);
    /* What the chain's earlier pieces contribute (the parent's key). */
    if (rc == 0 && parent->kind == TFS_CONT)
        rc = tfs_node_key(fs, parent, &pk);
    if (rc == 0) {
        size_t skip = first ? 0 : 2;
        size_t partial = parent->kind == TFS_CONT ? pk.n - pfx.n : 0;
        if (klen < skip + partial || memchr(k + skip, '/', klen - skip) ||
            (partial && memcmp(k + skip, pk.p + pfx.n, partial) != 0))
            rc = -ENOENT; /* the pieces above do not spell this component */
        else {
            rc = tfs_buf_set(&r->key, pfx.p, pfx.n);
            if (rc == 0)
                rc = tfs_buf_add(&r->key, k + skip, klen - skip);
            if (rc == 0)
                rc = tfs_buf_set(&r->seg, k + skip + partial, klen - skip - partial);
        }
    }
    free(k);
    tfs_buf_free(&path);
    tfs_buf_free(&pk);
    if (rc == 0 && r->key.n > TALUS_MAX_KEY)
        rc = -ENAMETOOLONG;
    r->kind = conflict ? TFS_RES_CONFLICT : TFS_RES_ENTRY;
    r->depth = depth;
out:
    r->chain = chain;
    tfs_buf_free(&pfx);
    if (rc < 0)
        tfs_res_free(r);
    return rc;
}
