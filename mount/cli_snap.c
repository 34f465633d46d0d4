/*
 * cli_snap.c - `talus snapshot` and `talus trees`: persistent snapshots and
 * the list of trees (keyspaces) of a database.
 *
 * `talus snapshot TARGET [list | pin [N] | unpin N | rm N]` works on two
 * kinds of TARGET:
 *  - a database directory: through talus.h (talus_snapshot_pin/unpin/list);
 *  - a talusfs mount point: a mounted database is locked by talusfs, so the
 *    CLI goes through the filesystem instead (DESIGN.md section 6): the
 *    root's xattr "user.talus.seqno" is the current seqno, `mkdir
 *    .snap/N` pins N, `rmdir .snap/N` unpins it, `ls .snap` lists them.
 * A mount point is recognised by being one (its device differs from its
 * parent's) and by having that xattr; a database that lives at the root of
 * a file system of its own has no such xattr, so it is not mistaken for one.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"
#include "cli_util.h"

#define SEQNO_XATTR "user.talus.seqno"

/* 1 and *seq if path is a talusfs mount point, 0 if it is not (a database
 * path, or nothing: the database code reports that), EXIT_ERR if reported. */
static int talusfs_seqno(const char *path, uint64_t *seq)
{
    struct stat st, up;
    if (stat(path, &st) != 0) {
        if (errno == ENOTCONN) { /* a talusfs that died without unmounting */
            fprintf(stderr, "talus: %s: %s (a crashed mount? try 'fusermount3 -u %s')\n", path,
                    strerror(errno), path);
            return -1;
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return 0;
    size_t n = strlen(path);
    char *parent = malloc(n + 4);
    if (parent == NULL)
        return 0;
    snprintf(parent, n + 4, "%s/..", path);
    int r = stat(parent, &up);
    free(parent);
    /* The root directory is its own parent; it is a mount point too. */
    if (r != 0 || (st.st_dev == up.st_dev && st.st_ino != up.st_ino))
        return 0;
    char buf[64];
    ssize_t got = getxattr(path, SEQNO_XATTR, buf, sizeof buf - 1);
    if (got < 0)
        return 0;
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\0'))
        got--;
    buf[got] = '\0';
    if (cli_parse_seqno(buf, "the mount's " SEQNO_XATTR, seq) < 0)
        return -1;
    return 1;
}

/* "MNT/.snap" or "MNT/.snap/N" (trailing slashes of MNT dropped);
 * malloc'd, NULL when out of memory (reported). */
static char *snap_path(const char *mnt, const char *leaf)
{
    size_t n = strlen(mnt);
    while (n > 1 && mnt[n - 1] == '/')
        n--;
    size_t cap = n + strlen(leaf) + 16;
    char *p = malloc(cap);
    if (p == NULL) {
        fprintf(stderr, "talus: out of memory\n");
        return NULL;
    }
    const char *sep = mnt[n - 1] == '/' ? "" : "/";
    snprintf(p, cap, "%.*s%s.snap%s%s", (int)n, mnt, sep, leaf[0] ? "/" : "", leaf);
    return p;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int mount_list(const char *mnt)
{
    char *dir = snap_path(mnt, "");
    if (dir == NULL)
        return EXIT_ERR;
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "talus: cannot list %s: %s\n", dir, strerror(errno));
        free(dir);
        return EXIT_ERR;
    }
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    int ret = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t s;
        /* Only seqnos live in .snap; skip anything else quietly. */
        if (e->d_name[0] < '0' || e->d_name[0] > '9' ||
            strspn(e->d_name, "0123456789") != strlen(e->d_name))
            continue;
        if (cli_parse_seqno(e->d_name, "snapshot name", &s) < 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                fprintf(stderr, "talus: out of memory\n");
                ret = EXIT_ERR;
                break;
            }
            v = nv;
            cap = nc;
        }
        v[n++] = s;
    }
    closedir(d);
    free(dir);
    if (ret == 0) {
        qsort(v, n, sizeof *v, cmp_u64);
        for (size_t i = 0; i < n; i++)
            printf("%" PRIu64 "\n", v[i]);
    }
    free(v);
    return ret;
}

static int mount_snapshot(const char *mnt, const char *verb, const char *arg, uint64_t cur)
{
    if (strcmp(verb, "list") == 0)
        return mount_list(mnt);
    uint64_t seq = cur;
    if (arg != NULL && cli_parse_seqno(arg, "snapshot", &seq) < 0)
        return EXIT_ERR;
    char leaf[24];
    snprintf(leaf, sizeof leaf, "%" PRIu64, seq);
    char *path = snap_path(mnt, leaf);
    if (path == NULL)
        return EXIT_ERR;
    int ret = 0;
    if (strcmp(verb, "pin") == 0) {
        /* EEXIST: already pinned, which pinning again leaves as it is. */
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "talus: cannot pin snapshot %" PRIu64 " (mkdir %s): %s\n", seq, path,
                    strerror(errno));
            ret = EXIT_ERR;
        } else {
            printf("%s\n", path);
        }
    } else if (rmdir(path) != 0) {
        fprintf(stderr, "talus: cannot unpin snapshot %" PRIu64 " (rmdir %s): %s\n", seq, path,
                strerror(errno));
        ret = EXIT_ERR;
    }
    free(path);
    return ret;
}

static int db_list(const struct cli *c, const char *path)
{
    talus_db *db = NULL;
    int ret = cli_open_db(c, path, 0, 1, &db, NULL);
    if (ret != 0)
        return ret;
    talus_pinned_snapshot *v = NULL;
    size_t n = 0;
    int rc = talus_snapshot_list(db, &v, &n);
    if (rc < 0)
        ret = cli_engine_error("cannot list snapshots", NULL, rc);
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        if (c->human)
            cli_human_short(v[i].bytes_held, buf, sizeof buf);
        else
            snprintf(buf, sizeof buf, "%" PRIu64, v[i].bytes_held);
        printf("%" PRIu64 "\t%s\n", v[i].seqno, buf);
    }
    talus_free(v);
    return cli_close_db(db, ret);
}

static int db_snapshot(const struct cli *c, const char *path, const char *verb, const char *arg)
{
    if (strcmp(verb, "list") == 0)
        return db_list(c, path);
    uint64_t seq = 0;
    if (arg != NULL && cli_parse_seqno(arg, "snapshot", &seq) < 0)
        return EXIT_ERR;
    talus_db *db = NULL;
    int ret = cli_open_db(c, path, 0, 0, &db, NULL);
    if (ret != 0)
        return ret;
    char what[64];
    if (strcmp(verb, "pin") == 0) {
        if (arg == NULL)
            seq = talus_seqno(db);
        snprintf(what, sizeof what, "%" PRIu64, seq);
        int rc = talus_snapshot_pin(db, seq);
        if (rc < 0)
            ret = cli_engine_error("cannot pin snapshot", what, rc);
        else
            printf("%" PRIu64 "\n", seq);
    } else {
        snprintf(what, sizeof what, "%" PRIu64, seq);
        int rc = talus_snapshot_unpin(db, seq);
        if (rc == TALUS_ENOTFOUND) {
            fprintf(stderr, "talus: no snapshot pinned at seqno %s in %s\n", what, path);
            ret = EXIT_ERR;
        } else if (rc < 0) {
            ret = cli_engine_error("cannot unpin snapshot", what, rc);
        }
    }
    return cli_close_db(db, ret);
}

int cmd_snapshot(const struct cli *c, char **args, int nargs)
{
    const char *verb = nargs > 1 ? args[1] : "pin";
    const char *arg = nargs > 2 ? args[2] : NULL;
    if (strcmp(verb, "rm") == 0)
        verb = "unpin";
    int ok = (strcmp(verb, "list") == 0 && arg == NULL) || strcmp(verb, "pin") == 0 ||
             (strcmp(verb, "unpin") == 0 && arg != NULL);
    if (!ok) {
        if (strcmp(verb, "list") != 0 && strcmp(verb, "unpin") != 0)
            cli_usage_error("unknown snapshot action '%s' (list, pin [N], unpin N or rm N)", verb);
        else
            cli_usage_error("wrong arguments for 'snapshot %s'", verb);
        return EXIT_ERR;
    }
    uint64_t cur;
    int m = talusfs_seqno(args[0], &cur);
    if (m < 0)
        return EXIT_ERR;
    if (m == 1)
        return mount_snapshot(args[0], verb, arg, cur);
    return db_snapshot(c, args[0], verb, arg);
}

/* ---- trees ------------------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int trees_change(const struct cli *c, const char *path)
{
    talus_db *db = NULL;
    int ret = cli_open_db(c, path, 0, 0, &db, NULL);
    if (ret != 0)
        return ret;
    talus_tree *t;
    int rc;
    if (c->create != NULL) {
        rc = talus_tree_open(db, c->create, 0, NULL, &t);
        if (rc == 0) {
            fprintf(stderr, "talus: tree '%s' already exists in %s\n", c->create, path);
            ret = EXIT_ERR;
        } else if (rc != TALUS_ENOTFOUND ||
                   (rc = talus_tree_open(db, c->create, 1, NULL, &t)) < 0) {
            ret = cli_engine_error("cannot create tree", c->create, rc);
        }
    } else {
        rc = talus_tree_drop(db, c->drop);
        if (rc == TALUS_ENOTFOUND) {
            fprintf(stderr, "talus: no tree '%s' in %s\n", c->drop, path);
            ret = EXIT_ERR;
        } else if (rc < 0) {
            ret = cli_engine_error("cannot drop tree", c->drop, rc);
        }
    }
    return cli_close_db(db, ret);
}

int cmd_trees(const struct cli *c, char **args, int nargs)
{
    (void)nargs;
    if (c->create != NULL && c->drop != NULL) {
        cli_usage_error("%s", "give --create or --drop, not both");
        return EXIT_ERR;
    }
    if (c->create != NULL || c->drop != NULL)
        return trees_change(c, args[0]);
    talus_db *db = NULL;
    int ret = cli_open_db(c, args[0], 0, 1, &db, NULL);
    if (ret != 0)
        return ret;
    char **names = NULL;
    size_t n = 0;
    int rc = talus_tree_list(db, &names, &n);
    if (rc < 0)
        return cli_close_db(db, cli_engine_error("cannot list trees", NULL, rc));
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        cli_put_escaped(stdout, names[i], strlen(names[i]));
        putchar('\n');
    }
    talus_free_names(names);
    return cli_close_db(db, ret);
}
