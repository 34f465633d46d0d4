/*
 * snap.c - the ".snap" directory: one read-only tree per pinned snapshot.
 *
 * ".snap" is reachable by name from the root but not listed there (so
 * `find` and `rsync -a` of the mount do not copy every snapshot). Its
 * entries are the pinned seqnos (talus_snapshot_list, read once and then
 * kept up to date here: no other process can pin while we hold the
 * database). ".snap/N" serves the whole tree as of seqno N through one
 * talus_snapshot handle per seqno (a slot); every inode number below it
 * carries the slot index in its high bits. mkdir pins, rmdir unpins (the
 * handle is released once no operation uses it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "fs.h"

#define MAX_SLOTS 65535

/* A canonical decimal seqno ("0" or no leading zero); -ENOENT if not. */
static int parse_seqno(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return -ENOENT;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -ENOENT;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ENOENT;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* REQUIRES snap_mu. */
static int pins_load(struct tfs *fs)
{
    if (fs->pins_known)
        return 0;
    talus_pinned_snapshot *ps = NULL;
    size_t count = 0;
    int rc = talus_snapshot_list(fs->db, &ps, &count);
    if (rc < 0)
        return tfs_errno(rc, "list snapshots");
    fs->pins = malloc((count ? count : 1) * sizeof *fs->pins);
    if (!fs->pins) {
        talus_free(ps);
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++)
        fs->pins[i] = ps[i].seqno;
    fs->npins = count;
    fs->pins_known = true;
    talus_free(ps);
    return 0;
}

static ssize_t pins_find(struct tfs *fs, uint64_t seq)
{
    for (size_t i = 0; i < fs->npins; i++)
        if (fs->pins[i] == seq)
            return (ssize_t)i;
    return -1;
}

static int pins_add(struct tfs *fs, uint64_t seq)
{
    uint64_t *p = realloc(fs->pins, (fs->npins + 1) * sizeof *p);
    if (!p)
        return -ENOMEM;
    fs->pins = p;
    size_t i = fs->npins;
    while (i > 0 && p[i - 1] > seq) {
        p[i] = p[i - 1];
        i--;
    }
    p[i] = seq;
    fs->npins++;
    return 0;
}

/* The slot of seqno seq, made if needed. REQUIRES snap_mu. */
static int slot_for(struct tfs *fs, uint64_t seq, struct tfs_snap **out)
{
    for (size_t i = 1; i < fs->nslots; i++) {
        if (fs->slots[i] && fs->slots[i]->seqno == seq) {
            *out = fs->slots[i];
            return 0;
        }
    }
    size_t idx = fs->nslots ? fs->nslots : 1;
    if (idx > MAX_SLOTS)
        return -ENOSPC;
    struct tfs_snap **sl = realloc(fs->slots, (idx + 1) * sizeof *sl);
    if (!sl)
        return -ENOMEM;
    fs->slots = sl;
    sl[0] = NULL;
    struct tfs_snap *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->seqno = seq;
    s->idx = (uint16_t)idx;
    sl[idx] = s;
    fs->nslots = idx + 1;
    *out = s;
    return 0;
}

/* Open the handle of a pinned slot. REQUIRES snap_mu. */
static int slot_open(struct tfs *fs, struct tfs_snap *s)
{
    s->pinned = true;
    if (s->h)
        return 0;
    s->h = talus_snapshot_at(fs->db, s->seqno);
    if (!s->h) {
        tfs_log(LOG_ERR, "snapshot %" PRIu64 ": %s", s->seqno, talus_errmsg());
        return -EIO;
    }
    return 0;
}

static void slot_maybe_release(struct tfs *fs, struct tfs_snap *s)
{
    if (!s->pinned && s->users == 0 && s->h) {
        talus_snapshot_release(fs->db, s->h);
        s->h = NULL;
    }
}

int tfs_snap_lookup(struct tfs *fs, const char *name, struct tfs_node **out)
{
    uint64_t seq;
    int rc = parse_seqno(name, &seq);
    if (rc < 0)
        return rc;
    struct tfs_snap *s = NULL;
    pthread_mutex_lock(&fs->snap_mu);
    rc = pins_load(fs);
    if (rc == 0 && pins_find(fs, seq) < 0)
        rc = -ENOENT;
    if (rc == 0)
        rc = slot_for(fs, seq, &s);
    if (rc == 0)
        rc = slot_open(fs, s);
    pthread_mutex_unlock(&fs->snap_mu);
    if (rc < 0)
        return rc;
    return tfs_node_snaproot(fs, s, name, out);
}

int tfs_snap_list(struct tfs *fs, uint64_t **seqnos, size_t *count)
{
    pthread_mutex_lock(&fs->snap_mu);
    int rc = pins_load(fs);
    if (rc == 0) {
        *seqnos = malloc((fs->npins ? fs->npins : 1) * sizeof **seqnos);
        if (!*seqnos)
            rc = -ENOMEM;
        else {
            if (fs->npins)
                memcpy(*seqnos, fs->pins, fs->npins * sizeof **seqnos);
            *count = fs->npins;
        }
    }
    pthread_mutex_unlock(&fs->snap_mu);
    return rc;
}

int tfs_snap_enter(struct tfs *fs, struct tfs_node *n, struct tfs_view *v)
{
    v->snap = NULL;
    if (!n->snap)
        return 0;
    pthread_mutex_lock(&fs->snap_mu);
    int rc = n->snap->h ? 0 : -ENOENT; /* unpinned meanwhile */
    if (rc == 0) {
        n->snap->users++;
        v->snap = n->snap->h;
    }
    pthread_mutex_unlock(&fs->snap_mu);
    return rc;
}

void tfs_snap_leave(struct tfs *fs, struct tfs_node *n)
{
    if (!n->snap)
        return;
    pthread_mutex_lock(&fs->snap_mu);
    n->snap->users--;
    slot_maybe_release(fs, n->snap);
    pthread_mutex_unlock(&fs->snap_mu);
}

void tfs_snap_mkdir(fuse_req_t req, struct tfs *fs, const char *name)
{
    uint64_t seq = 0, cur = talus_seqno(fs->db);
    int rc = fs->cfg.read_only ? -EROFS : 0;
    bool now = strcmp(name, "now") == 0;
    if (rc == 0 && now)
        seq = cur;
    else if (rc == 0 && parse_seqno(name, &seq) < 0)
        rc = -EINVAL;
    if (rc == 0 && seq > cur)
        rc = -EINVAL; /* the future cannot be pinned */
    struct tfs_snap *s = NULL;
    pthread_mutex_lock(&fs->snap_mu);
    if (rc == 0)
        rc = pins_load(fs);
    if (rc == 0 && pins_find(fs, seq) >= 0)
        rc = -EEXIST;
    if (rc == 0) {
        int trc = talus_snapshot_pin(fs->db, seq);
        if (trc == TALUS_ESNAPSHOT) {
            tfs_log(LOG_INFO, "mkdir .snap/%s: %s", name, talus_errmsg());
            rc = -EINVAL; /* no longer retained */
        } else if (trc < 0) {
            rc = tfs_errno(trc, "pin snapshot");
        }
    }
    if (rc == 0)
        rc = pins_add(fs, seq);
    if (rc == 0)
        rc = slot_for(fs, seq, &s);
    if (rc == 0)
        rc = slot_open(fs, s);
    pthread_mutex_unlock(&fs->snap_mu);
    struct tfs_node *n = NULL;
    char dec[32];
    snprintf(dec, sizeof dec, "%" PRIu64, seq);
    if (rc == 0)
        rc = tfs_node_snaproot(fs, s, dec, &n);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct stat st;
    rc = tfs_node_stat(fs, n, &st);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
    } else {
        struct fuse_entry_param e;
        tfs_entry_param(fs, n, &st, &e);
        if (now) /* the kernel's "now" entry is only a way to reach it */
            e.entry_timeout = 0;
        tfs_node_ref_lookup(fs, n, 1);
        if (fuse_reply_entry(req, &e) == -ENOENT)
            tfs_node_forget(fs, n->ino, 1);
    }
    tfs_node_put(fs, n);
}

void tfs_snap_rmdir(fuse_req_t req, struct tfs *fs, const char *name)
{
    uint64_t seq = 0;
    int rc = fs->cfg.read_only ? -EROFS : parse_seqno(name, &seq);
    struct tfs_node *root = NULL;
    pthread_mutex_lock(&fs->snap_mu);
    if (rc == 0)
        rc = pins_load(fs);
    ssize_t i = rc == 0 ? pins_find(fs, seq) : -1;
    if (rc == 0 && i < 0)
        rc = -ENOENT;
    if (rc == 0) {
        int trc = talus_snapshot_unpin(fs->db, seq);
        if (trc < 0)
            rc = trc == TALUS_ESNAPSHOT ? -ENOENT : tfs_errno(trc, "unpin snapshot");
    }
    if (rc == 0) {
        memmove(&fs->pins[i], &fs->pins[i + 1], (fs->npins - (size_t)i - 1) * sizeof *fs->pins);
        fs->npins--;
        for (size_t k = 1; k < fs->nslots; k++) {
            struct tfs_snap *s = fs->slots[k];
            if (s && s->seqno == seq) {
                s->pinned = false;
                slot_maybe_release(fs, s);
                root = s->root;
                s->root = NULL;
            }
        }
    }
    pthread_mutex_unlock(&fs->snap_mu);
    if (root)
        tfs_node_unlink(fs, root);
    fuse_reply_err(req, -rc);
}

void tfs_snap_free_all(struct tfs *fs)
{
    for (size_t k = 1; k < fs->nslots; k++) {
        struct tfs_snap *s = fs->slots[k];
        if (s && s->h)
            talus_snapshot_release(fs->db, s->h);
        free(s);
    }
    free(fs->slots);
    free(fs->pins);
    fs->slots = NULL;
    fs->pins = NULL;
    fs->nslots = fs->npins = 0;
}
