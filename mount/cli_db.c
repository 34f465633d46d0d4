/*
 * cli_db.c - opening and closing the database for the `talus` CLI, and its
 * error reporting: every command goes through here so that "no database
 * at DB", "no tree 'x'" and engine errors read the same everywhere.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

void cli_usage_error(const char *fmt, const char *arg)
{
    fputs("talus: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'talus --help' for more information.\n", stderr);
}

int cli_engine_error(const char *what, const char *arg, int rc)
{
    const char *msg = talus_errmsg();
    fprintf(stderr, "talus: %s%s%s: %s", what, arg ? " " : "", arg ? arg : "", talus_strerror(rc));
    if (msg != NULL && msg[0] != '\0')
        fprintf(stderr, ": %s", msg);
    fputc('\n', stderr);
    return EXIT_ERR;
}

/* 1 if path does not exist or is an empty directory: then an open failure
 * means "there is no database here", whatever code the engine chose. */
static int no_database_at(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR;
    if (!S_ISDIR(st.st_mode))
        return 0;
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

int cli_open_db(const struct cli *c, const char *path, int create, int readonly, talus_db **db,
                talus_tree **tree)
{
    talus_options o;
    talus_options_init(&o);
    o.create_if_missing = create;
    o.read_only = readonly;
    if (c->sync)
        o.durability = TALUS_DURABILITY_SYNC;
    *db = NULL;
    if (!create && no_database_at(path)) {
        fprintf(stderr, "talus: no database at %s\n", path);
        return EXIT_ERR;
    }
    int rc = talus_open(path, &o, db);
    if (rc == TALUS_ENOTSUP && readonly) {
        o.read_only = 0;
        rc = talus_open(path, &o, db);
    }
    if (rc < 0) {
        *db = NULL;
        if (rc == TALUS_ENOTFOUND && !create) {
            fprintf(stderr, "talus: no database at %s\n", path);
            return EXIT_ERR;
        }
        int ret = cli_engine_error("cannot open database", path, rc);
        /* The usual reason is a mount: say how to reach a mounted db. */
        if (rc == TALUS_EBUSY)
            fprintf(stderr, "talus: (if it is mounted with talusfs, unmount it first; "
                            "'talus snapshot MOUNTPOINT' snapshots a mounted database)\n");
        return ret;
    }
    if (tree == NULL)
        return 0;
    if (c->tree == NULL) {
        *tree = talus_default_tree(*db);
        return 0;
    }
    rc = talus_tree_open(*db, c->tree, create, NULL, tree);
    if (rc < 0) {
        int ret = EXIT_ERR;
        if (rc == TALUS_ENOTFOUND)
            fprintf(stderr, "talus: no tree '%s' in %s\n", c->tree, path);
        else
            ret = cli_engine_error("cannot open tree", c->tree, rc);
        talus_close(*db);
        *db = NULL;
        return ret;
    }
    return 0;
}

/* A write may only become durable at close, so its failure matters. */
int cli_close_db(talus_db *db, int ret)
{
    if (db == NULL)
        return ret;
    int rc = talus_close(db);
    if (rc < 0 && ret == 0)
        return cli_engine_error("cannot close database", NULL, rc);
    return ret;
}

int cli_parse_seqno(const char *s, const char *what, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            break;
        v = v * 10 + d;
    }
    if (i == 0 || s[i] != '\0') {
        fprintf(stderr, "talus: %s is not a sequence number: '%s'\n", what, s);
        return -1;
    }
    *out = v;
    return 0;
}
