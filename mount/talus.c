/*
 * talus.c - `talus`, the admin command line tool of a Talus database.
 *
 *   talus put DB KEY VALUE      talus get DB KEY      talus del DB KEY
 *   talus scan DB [PREFIX]      talus stats DB
 *
 * It talks to the engine only through talus.h. Exit status: 0 success,
 * 1 "key absent" from `get` (and nothing else), 2 every error; errors go to
 * stderr as "talus: <what>: <talus_strerror>: <talus_errmsg>".
 *
 * Options are GNU-style and may appear anywhere on the line (getopt_long
 * permutes them); `--` ends the options, so a key or value that starts with
 * `-` is given after it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "talus.h"
#include "cli_util.h"

#define EXIT_ABSENT 1
#define EXIT_ERR 2

/* What the command line asked for. */
struct cli {
    int reverse;
    int keys_only;
    int hex;
    int sync;
    const char *tree; /* NULL: the default tree */
};

static const char usage_text[] =
    "Usage: talus [OPTION]... COMMAND DB [ARG]...\n"
    "Administer the Talus database in directory DB.\n"
    "\n"
    "Commands:\n"
    "  put DB KEY VALUE   store VALUE under KEY; VALUE '-' reads the value from\n"
    "                     standard input (binary-safe). Creates DB if missing.\n"
    "  get DB KEY         write the value of KEY to standard output, as raw bytes\n"
    "                     with no newline added; exit 1 with no output if absent\n"
    "  del DB KEY         delete KEY (deleting an absent key is not an error)\n"
    "  scan DB [PREFIX]   list keys (starting with PREFIX) in order, one\n"
    "                     'KEY<TAB>VALUE' line each (see Output below)\n"
    "  stats DB           levels, tables, sizes, entries, seqno, format version\n"
    "\n"
    "Options (anywhere on the line; '--' ends options):\n"
    "  -r, --reverse      scan: list keys in descending order\n"
    "  -k, --keys-only    scan: print only the keys\n"
    "  -x, --hex          KEY, VALUE and PREFIX are given in hex; get and scan\n"
    "                     print keys and values in hex ('-' still reads raw\n"
    "                     bytes from standard input)\n"
    "  -t, --tree NAME    use tree (keyspace) NAME instead of 'default'; put\n"
    "                     creates it; stats shows every tree unless given\n"
    "  -s, --sync         put/del: make the write durable (fdatasync) before\n"
    "                     returning\n"
    "  -h, --help         show this help and exit\n"
    "  -V, --version      show the version and exit\n"
    "\n"
    "Output of scan: bytes 0x20-0x7e are printed as they are, except '\\' which\n"
    "is printed as '\\\\'; every other byte (TAB and newline included) is printed\n"
    "as '\\xNN' (two lowercase hex digits). Each line is the escaped key, a TAB,\n"
    "the escaped value and a newline, so the output is unambiguous. With --hex,\n"
    "keys and values are printed in plain hex instead.\n"
    "\n"
    "Keys are the bytes of the argument as given (1 to 65536 bytes). Only put\n"
    "creates a database; the other commands fail with 'no database at DB'.\n"
    "\n"
    "Exit status: 0 success, 1 get found no such key, 2 any error.\n";

static void usage_error(const char *fmt, const char *arg)
{
    fputs("talus: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'talus --help' for more information.\n", stderr);
}

/* Name the offending option: for a long one ("--tree") the argument
 * itself; for a short one the letter, since the argument may be a cluster
 * like "-rz". */
static void option_error(const char *fmt, const char *arg)
{
    char o[3] = {'-', (char)optopt, '\0'};
    usage_error(fmt, strncmp(arg, "--", 2) == 0 || optopt == 0 ? arg : o);
}

/* Report an engine error in the one documented format; returns EXIT_ERR. */
static int engine_error(const char *what, const char *arg, int rc)
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

/* Open the database and the tree the command works on. Only writers create
 * (the database, and a named tree for put). Readers ask for a read-only
 * open and fall back to a normal one if this build does not offer it. */
static int open_db(const struct cli *c, const char *path, int create, int readonly, talus_db **db,
                   talus_tree **tree)
{
    talus_options o;
    talus_options_init(&o);
    o.create_if_missing = create;
    o.read_only = readonly;
    if (c->sync)
        o.durability = TALUS_DURABILITY_SYNC;
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
        if (rc == TALUS_ENOTFOUND && !create) {
            fprintf(stderr, "talus: no database at %s\n", path);
            return EXIT_ERR;
        }
        return engine_error("cannot open database", path, rc);
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
            ret = engine_error("cannot open tree", c->tree, rc);
        talus_close(*db);
        *db = NULL;
        return ret;
    }
    return 0;
}

/* Close and report a failure to close (a write may only become durable
 * here, so this error matters). */
static int close_db(talus_db *db, int ret)
{
    if (db == NULL)
        return ret;
    int rc = talus_close(db);
    if (rc < 0 && ret == 0)
        return engine_error("cannot close database", NULL, rc);
    return ret;
}

/* A command-line byte string: the argument itself or its hex decoding. */
struct arg_bytes {
    const uint8_t *p;
    size_t n;
    uint8_t *owned;
};

static int get_arg(const struct cli *c, const char *s, const char *what, struct arg_bytes *out)
{
    out->owned = NULL;
    if (!c->hex) {
        out->p = (const uint8_t *)s;
        out->n = strlen(s);
        return 0;
    }
    int rc = cli_hex_decode(s, &out->owned, &out->n);
    if (rc == -2) {
        fprintf(stderr, "talus: out of memory\n");
        return EXIT_ERR;
    }
    if (rc < 0) {
        fprintf(stderr, "talus: %s is not valid hex: %s\n", what, s);
        return EXIT_ERR;
    }
    out->p = out->owned;
    return 0;
}

static int get_key(const struct cli *c, const char *s, struct arg_bytes *out)
{
    int ret = get_arg(c, s, "key", out);
    if (ret != 0)
        return ret;
    if (out->n == 0) {
        free(out->owned);
        fprintf(stderr, "talus: empty key (keys are 1 to %u bytes)\n", TALUS_MAX_KEY);
        return EXIT_ERR;
    }
    return 0;
}

static void put_bytes(const struct cli *c, const void *p, size_t n)
{
    if (c->hex)
        cli_put_hex(stdout, p, n);
    else
        cli_put_escaped(stdout, p, n);
}

static int cmd_put(const struct cli *c, char **args, int nargs)
{
    struct arg_bytes key, val = {0};
    int ret = get_key(c, args[1], &key);
    if (ret != 0)
        return ret;
    if (strcmp(args[2], "-") == 0) {
        int e = cli_read_all(stdin, &val.owned, &val.n);
        if (e != 0) {
            fprintf(stderr, "talus: cannot read value from standard input: %s\n", strerror(e));
            free(key.owned);
            return EXIT_ERR;
        }
        val.p = val.owned;
    } else if ((ret = get_arg(c, args[2], "value", &val)) != 0) {
        free(key.owned);
        return ret;
    }
    talus_db *db = NULL;
    talus_tree *t = NULL;
    ret = open_db(c, args[0], 1, 0, &db, &t);
    if (ret == 0) {
        int rc = talus_put(t, key.p, key.n, val.p, val.n);
        if (rc < 0)
            ret = engine_error("put failed", NULL, rc);
    }
    free(key.owned);
    free(val.owned);
    return close_db(db, ret);
}

static int cmd_get(const struct cli *c, char **args, int nargs)
{
    struct arg_bytes key;
    int ret = get_key(c, args[1], &key);
    if (ret != 0)
        return ret;
    talus_db *db = NULL;
    talus_tree *t = NULL;
    ret = open_db(c, args[0], 0, 1, &db, &t);
    if (ret == 0) {
        void *v = NULL;
        size_t vn = 0;
        int rc = talus_get(t, NULL, key.p, key.n, &v, &vn);
        if (rc == TALUS_ENOTFOUND) {
            ret = EXIT_ABSENT;
        } else if (rc < 0) {
            ret = engine_error("get failed", NULL, rc);
        } else if (c->hex) {
            cli_put_hex(stdout, v, vn);
            putchar('\n');
        } else if (vn > 0 && fwrite(v, 1, vn, stdout) != vn) {
            fprintf(stderr, "talus: write error: %s\n", strerror(errno));
            ret = EXIT_ERR;
        }
        talus_free(v);
    }
    free(key.owned);
    return close_db(db, ret);
}

static int cmd_del(const struct cli *c, char **args, int nargs)
{
    struct arg_bytes key;
    int ret = get_key(c, args[1], &key);
    if (ret != 0)
        return ret;
    talus_db *db = NULL;
    talus_tree *t = NULL;
    ret = open_db(c, args[0], 0, 0, &db, &t);
    if (ret == 0) {
        int rc = talus_delete(t, key.p, key.n);
        if (rc < 0)
            ret = engine_error("delete failed", NULL, rc);
    }
    free(key.owned);
    return close_db(db, ret);
}

static int cmd_scan(const struct cli *c, char **args, int nargs)
{
    struct arg_bytes prefix = {0};
    int ret = nargs > 1 ? get_arg(c, args[1], "prefix", &prefix) : 0;
    if (ret != 0)
        return ret;
    talus_db *db = NULL;
    talus_tree *t = NULL;
    talus_iter *it = NULL;
    ret = open_db(c, args[0], 0, 1, &db, &t);
    if (ret != 0)
        goto out;
    talus_iter_options io;
    talus_iter_options_init(&io);
    if (prefix.n > 0) {
        io.prefix = prefix.p;
        io.prefix_len = prefix.n;
    }
    int rc = talus_iter_new(t, &io, &it);
    if (rc < 0) {
        ret = engine_error("scan failed", NULL, rc);
        goto out;
    }
    if (c->reverse)
        talus_iter_seek_last(it);
    else
        talus_iter_seek_first(it);
    while (talus_iter_valid(it)) {
        size_t kn, vn;
        const void *k = talus_iter_key(it, &kn);
        put_bytes(c, k, kn);
        if (!c->keys_only) {
            const void *v = talus_iter_value(it, &vn);
            putchar('\t');
            put_bytes(c, v, vn);
        }
        putchar('\n');
        if (ferror(stdout)) {
            fprintf(stderr, "talus: write error: %s\n", strerror(errno));
            ret = EXIT_ERR;
            goto out;
        }
        if (c->reverse)
            talus_iter_prev(it);
        else
            talus_iter_next(it);
    }
    rc = talus_iter_status(it);
    if (rc < 0)
        ret = engine_error("scan failed", NULL, rc);
out:
    talus_iter_free(it);
    free(prefix.owned);
    return close_db(db, ret);
}

static void print_tree_stats(const char *name, talus_tree *t, const talus_tree_stats *s)
{
    char buf[64];
    printf("tree %s\n", name);
    printf("  format version     V%" PRIu32 "\n", s->format_version);
    printf("  last seqno         %" PRIu64 "\n", s->last_seqno);
    cli_human_size(talus_disk_space(t), buf, sizeof buf);
    printf("  disk space         %s\n", buf);
    printf("  approx entries     %" PRIu64 "\n", talus_approximate_count(t));
    cli_human_size(s->memtable_bytes, buf, sizeof buf);
    printf("  memtable bytes     %s, %" PRIu64 " sealed\n", buf, s->immutable_memtables);
    cli_human_size(s->bytes_flushed, buf, sizeof buf);
    printf("  flushes            %" PRIu64 ", %s bytes\n", s->flushes, buf);
    printf("  compactions        %" PRIu64 ", read %" PRIu64 " bytes, wrote %" PRIu64 " bytes\n",
           s->compactions, s->bytes_compacted_read, s->bytes_compacted_written);
    printf("  write stalls       %" PRIu64 " slowdowns, %" PRIu64 " stops\n", s->stall_slowdowns,
           s->stall_stops);
    printf("  level      tables            bytes          entries\n");
    int n = s->num_levels;
    if (n < 0)
        n = 0;
    if (n > (int)(sizeof s->levels / sizeof s->levels[0]))
        n = (int)(sizeof s->levels / sizeof s->levels[0]);
    uint64_t files = 0, bytes = 0, entries = 0;
    for (int i = 0; i < n; i++) {
        const talus_level_stats *l = &s->levels[i];
        printf("  L%-4d %11" PRIu64 " %16" PRIu64 " %16" PRIu64 "\n", l->level, l->files, l->bytes,
               l->entries);
        files += l->files;
        bytes += l->bytes;
        entries += l->entries;
    }
    printf("  total %11" PRIu64 " %16" PRIu64 " %16" PRIu64 "\n", files, bytes, entries);
}

static int stats_one(talus_db *db, const char *name)
{
    talus_tree *t;
    int rc = talus_tree_open(db, name, 0, NULL, &t);
    if (rc < 0)
        return engine_error("cannot open tree", name, rc);
    talus_tree_stats s;
    memset(&s, 0, sizeof s);
    rc = talus_tree_stats_get(t, &s);
    if (rc < 0)
        return engine_error("stats failed for tree", name, rc);
    print_tree_stats(name, t, &s);
    return 0;
}

static int cmd_stats(const struct cli *c, char **args, int nargs)
{
    talus_db *db = NULL;
    int ret = open_db(c, args[0], 0, 1, &db, NULL);
    if (ret != 0)
        return ret;
    printf("database %s\n", args[0]);
    printf("  seqno              %" PRIu64 "\n", talus_seqno(db));
    if (c->tree != NULL) {
        ret = stats_one(db, c->tree);
        return close_db(db, ret);
    }
    char **names = NULL;
    size_t count = 0;
    int rc = talus_tree_list(db, &names, &count);
    if (rc < 0) {
        ret = engine_error("cannot list trees", NULL, rc);
        return close_db(db, ret);
    }
    printf("  trees              %zu\n", count);
    for (size_t i = 0; i < count && ret == 0; i++)
        ret = stats_one(db, names[i]);
    talus_free_names(names);
    return close_db(db, ret);
}

struct command {
    const char *name;
    int min_args, max_args; /* DB included */
    int (*run)(const struct cli *c, char **args, int nargs);
};

static const struct command commands[] = {
    {"put", 3, 3, cmd_put},   {"get", 2, 2, cmd_get},     {"del", 2, 2, cmd_del},
    {"scan", 1, 2, cmd_scan}, {"stats", 1, 1, cmd_stats},
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"reverse", no_argument, NULL, 'r'}, {"keys-only", no_argument, NULL, 'k'},
        {"hex", no_argument, NULL, 'x'},     {"tree", required_argument, NULL, 't'},
        {"sync", no_argument, NULL, 's'},    {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0},
    };
    struct cli c = {0};
    int opt;
    opterr = 0; /* our own messages, in our format */
    while ((opt = getopt_long(argc, argv, ":rkxt:shV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            c.reverse = 1;
            break;
        case 'k':
            c.keys_only = 1;
            break;
        case 'x':
            c.hex = 1;
            break;
        case 't':
            c.tree = optarg;
            break;
        case 's':
            c.sync = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return fclose(stdout) == 0 ? 0 : EXIT_ERR;
        case 'V':
            printf("talus %s\n", TALUS_VERSION_STRING);
            return fclose(stdout) == 0 ? 0 : EXIT_ERR;
        case ':':
            option_error("option '%s' needs an argument", argv[optind - 1]);
            return EXIT_ERR;
        default:
            option_error("unknown option '%s'", argv[optind - 1]);
            return EXIT_ERR;
        }
    }
    if (optind >= argc) {
        usage_error("%s", "missing command");
        return EXIT_ERR;
    }
    const char *name = argv[optind];
    char **args = argv + optind + 1;
    int nargs = argc - optind - 1;
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        usage_error("unknown command '%s'", name);
        return EXIT_ERR;
    }
    if (nargs < cmd->min_args || nargs > cmd->max_args) {
        usage_error(nargs < cmd->min_args ? "too few arguments for '%s'"
                                          : "too many arguments for '%s'",
                    name);
        return EXIT_ERR;
    }
    if ((c.reverse || c.keys_only) && strcmp(name, "scan") != 0) {
        usage_error("%s", "--reverse and --keys-only only apply to scan");
        return EXIT_ERR;
    }
    int ret = cmd->run(&c, args, nargs);
    if (fclose(stdout) != 0 && ret != EXIT_ERR) {
        fprintf(stderr, "talus: write error: %s\n", strerror(errno));
        ret = EXIT_ERR;
    }
    return ret;
}
