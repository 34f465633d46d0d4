/*
 * talus.c - `talus`, the admin command line tool of a Talus database: the
 * command line, the help text, and the key-value commands (put, get, del,
 * scan, stats). batch is in cli_batch.c, snapshot and trees in cli_snap.c.
 *
 * It talks to the engine only through talus.h. Exit status: 0 success,
 * 1 "key absent" from `get` (and nothing else), 2 every error; errors go to
 * stderr as "talus: <what>: <talus_strerror>: <talus_errmsg>".
 *
 * Options are GNU-style and may appear anywhere on the line (getopt_long
 * permutes them); `--` ends the options, so a key or value that starts with
 * `-` is given after it. Each command lists the options it takes; any other
 * is a usage error rather than silently ignored.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"

/* Options, as bits, so each command can say which ones it takes. */
enum {
    O_REVERSE = 1 << 0,
    O_KEYS = 1 << 1,
    O_HEX = 1 << 2,
    O_TREE = 1 << 3,
    O_SYNC = 1 << 4,
    O_VERBOSE = 1 << 5,
    O_HUMAN = 1 << 6,
    O_AT = 1 << 7,
    O_AS_BATCH = 1 << 8,
    O_CREATE = 1 << 9,
    O_DROP = 1 << 10,
};

static const char usage_text[] =
    "Usage: talus [OPTION]... COMMAND DB [ARG]...\n"
    "Administer the Talus database in directory DB.\n"
    "\n"
    "Commands:\n"
    "  put DB KEY VALUE     store VALUE under KEY; VALUE '-' reads the value from\n"
    "                       standard input (binary-safe). Creates DB if missing.\n"
    "  get DB KEY           write the value of KEY to standard output, as raw bytes\n"
    "                       with no newline added; exit 1 with no output if absent\n"
    "  del DB KEY           delete KEY (deleting an absent key is not an error)\n"
    "  scan DB [PREFIX]     list keys (starting with PREFIX) in order, one\n"
    "                       'KEY<TAB>VALUE' line each (see Output below)\n"
    "  batch DB [FILE]      apply the operations in FILE (default or '-': standard\n"
    "                       input) as ONE atomic batch (see Batch format below).\n"
    "                       Creates DB, and the trees it names, if missing.\n"
    "  stats DB             the database's seqno and pinned snapshots; per tree:\n"
    "                       format version, last seqno, sizes, levels, compactions\n"
    "  trees DB             list the trees (keyspaces), one name a line\n"
    "  trees DB --create NAME | --drop NAME\n"
    "                       create an empty tree / drop a tree and all its data\n"
    "  snapshot DB [pin [N]]\n"
    "                       pin a persistent snapshot at seqno N (default: the\n"
    "                       current seqno) and print N. It survives restarts, can\n"
    "                       be read with get/scan --at N, and keeps the versions\n"
    "                       it sees from compaction (that costs disk space)\n"
    "  snapshot DB list     the pinned snapshots, one 'SEQNO<TAB>BYTES' line each;\n"
    "                       BYTES is what only that snapshot keeps on disk\n"
    "  snapshot DB unpin N  unpin snapshot N (also: rm N)\n"
    "  snapshot MOUNTPOINT [pin [N] | list | rm N]\n"
    "                       the same for a database mounted with talusfs (which\n"
    "                       locks DB): pin prints MOUNTPOINT/.snap/N, where the\n"
    "                       snapshot is a read-only directory; list prints seqnos\n"
    "\n"
    "Options (anywhere on the line; '--' ends options):\n"
    "  -t, --tree NAME      use tree NAME instead of 'default' (put, get, del,\n"
    "                       scan, stats, batch); put and batch create it; stats\n"
    "                       shows every tree unless given\n"
    "  -x, --hex            KEY, VALUE and PREFIX are given in hex; get and scan\n"
    "                       print in hex ('-' still reads raw bytes from stdin)\n"
    "  -r, --reverse        scan: list keys in descending order\n"
    "  -k, --keys-only      scan: print only the keys\n"
    "      --as-batch       scan: print 'put KEY VALUE' lines in the batch format\n"
    "                       ('tree NAME' first with --tree), so that\n"
    "                       'talus scan A --as-batch | talus batch B' copies a tree\n"
    "      --at N           get, scan: read as of seqno N, which must be a pinned\n"
    "                       snapshot or the current seqno\n"
    "  -s, --sync           put, del, batch: make the write durable (fdatasync)\n"
    "                       before returning\n"
    "  -v, --verbose        batch: print the seqno the batch got\n"
    "  -h, --human-readable snapshot list: sizes as '12.1 KiB'\n"
    "      --create NAME    trees: create tree NAME\n"
    "      --drop NAME      trees: drop tree NAME ('default' cannot be dropped)\n"
    "      --help           show this help and exit (so does a lone -h)\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Output of scan: bytes 0x20-0x7e are printed as they are, except '\\' which\n"
    "is printed as '\\\\'; every other byte (TAB and newline included) is printed\n"
    "as '\\xNN' (two lowercase hex digits). Each line is the escaped key, a TAB,\n"
    "the escaped value and a newline, so the output is unambiguous. With --hex,\n"
    "keys and values are printed in plain hex instead.\n"
    "\n"
    "Batch format: one operation a line, fields separated by spaces or TABs:\n"
    "  put [-t TREE] KEY VALUE    store VALUE under KEY\n"
    "  del [-t TREE] KEY          delete KEY\n"
    "  weakdel [-t TREE] KEY      weak delete (cancels the one value below it)\n"
    "  tree NAME                  later lines without -t use tree NAME (before\n"
    "                             any 'tree' line: --tree, or 'default')\n"
    "Blank lines and lines starting with '#' are ignored. Fields use the scan\n"
    "escaping ('\\\\' for a backslash, '\\xNN' for any byte) plus '\\s' for a space,\n"
    "'\\t' TAB, '\\n' newline and '\\r' CR, and a field that is exactly \"\" is the\n"
    "empty string (the two bytes \"\" are written '\\x22\"'); so a field can hold\n"
    "any bytes. Keywords are matched before unescaping: a key that is literally\n"
    "'-t' is written '\\x2dt'. A key written twice keeps the last write. If a\n"
    "line is malformed (or refused, e.g. a key over 65536 bytes), the error names\n"
    "it ('talus: FILE:LINE: ...') and nothing is applied. The whole batch is held\n"
    "in memory until it commits. Example:\n"
    "  printf 'put a 1\\nput -t logs x hello\\\\sworld\\ndel b\\n' | talus batch DB\n"
    "\n"
    "Keys are the bytes of the argument as given (1 to 65536 bytes). Only put and\n"
    "batch create a database; the other commands fail with 'no database at DB'.\n"
    "\n"
    "Exit status: 0 success, 1 get found no such key, 2 any error (usage, engine\n"
    "or I/O error, a malformed batch, a seqno no longer retained, ...).\n";

/* Name the offending option: for a long one ("--tree") the argument
 * itself; for a short one the letter, since the argument may be a cluster
 * like "-rz". */
static void option_error(const char *fmt, const char *arg)
{
    char o[3] = {'-', (char)optopt, '\0'};
    cli_usage_error(fmt, strncmp(arg, "--", 2) == 0 || optopt == 0 ? arg : o);
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

/* The snapshot of --at N (NULL without --at; then *ret stays 0). */
static talus_snapshot *at_snapshot(const struct cli *c, talus_db *db, int *ret)
{
    if (!c->has_at)
        return NULL;
    talus_snapshot *s = talus_snapshot_at(db, c->at);
    if (s == NULL) {
        char what[32];
        snprintf(what, sizeof what, "%" PRIu64, c->at);
        *ret = cli_engine_error("cannot read at seqno", what, TALUS_ESNAPSHOT);
    }
    return s;
}

static int cmd_put(const struct cli *c, char **args, int nargs)
{
    (void)nargs;
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
    ret = cli_open_db(c, args[0], 1, 0, &db, &t);
    if (ret == 0) {
        int rc = talus_put(t, key.p, key.n, val.p, val.n);
        if (rc < 0)
            ret = cli_engine_error("put failed", NULL, rc);
    }
    free(key.owned);
    free(val.owned);
    return cli_close_db(db, ret);
}

static int cmd_get(const struct cli *c, char **args, int nargs)
{
    (void)nargs;
    struct arg_bytes key;
    int ret = get_key(c, args[1], &key);
    if (ret != 0)
        return ret;
    talus_db *db = NULL;
    talus_tree *t = NULL;
    talus_snapshot *snap = NULL;
    ret = cli_open_db(c, args[0], 0, 1, &db, &t);
    if (ret == 0)
        snap = at_snapshot(c, db, &ret);
    if (ret == 0) {
        void *v = NULL;
        size_t vn = 0;
        int rc = talus_get(t, snap, key.p, key.n, &v, &vn);
        if (rc == TALUS_ENOTFOUND) {
            ret = EXIT_ABSENT;
        } else if (rc < 0) {
            ret = cli_engine_error("get failed", NULL, rc);
        } else if (c->hex) {
            cli_put_hex(stdout, v, vn);
            putchar('\n');
        } else if (vn > 0 && fwrite(v, 1, vn, stdout) != vn) {
            fprintf(stderr, "talus: write error: %s\n", strerror(errno));
            ret = EXIT_ERR;
        }
        talus_free(v);
    }
    if (snap != NULL)
        talus_snapshot_release(db, snap);
    free(key.owned);
    return cli_close_db(db, ret);
}

static int cmd_del(const struct cli *c, char **args, int nargs)
{
    (void)nargs;
    struct arg_bytes key;
    int ret = get_key(c, args[1], &key);
    if (ret != 0)
        return ret;
    talus_db *db = NULL;
    talus_tree *t = NULL;
    ret = cli_open_db(c, args[0], 0, 0, &db, &t);
    if (ret == 0) {
        int rc = talus_delete(t, key.p, key.n);
        if (rc < 0)
            ret = cli_engine_error("delete failed", NULL, rc);
    }
    free(key.owned);
    return cli_close_db(db, ret);
}

/* One scan line in the chosen output format. */
static void scan_line(const struct cli *c, const void *k, size_t kn, const void *v, size_t vn)
{
    if (c->as_batch) {
        fputs("put ", stdout);
        cli_put_token(stdout, k, kn);
        putchar(' ');
        cli_put_token(stdout, v, vn);
    } else {
        put_bytes(c, k, kn);
        if (!c->keys_only) {
            putchar('\t');
            put_bytes(c, v, vn);
        }
    }
    putchar('\n');
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
    talus_iter_options io;
    talus_iter_options_init(&io);
    ret = cli_open_db(c, args[0], 0, 1, &db, &t);
    if (ret == 0)
        io.snapshot = at_snapshot(c, db, &ret);
    if (ret != 0)
        goto out;
    if (prefix.n > 0) {
        io.prefix = prefix.p;
        io.prefix_len = prefix.n;
    }
    int rc = talus_iter_new(t, &io, &it);
    if (rc < 0) {
        ret = cli_engine_error("scan failed", NULL, rc);
        goto out;
    }
    if (c->as_batch && c->tree != NULL) {
        fputs("tree ", stdout);
        cli_put_token(stdout, c->tree, strlen(c->tree));
        putchar('\n');
    }
    if (c->reverse)
        talus_iter_seek_last(it);
    else
        talus_iter_seek_first(it);
    while (talus_iter_valid(it)) {
        size_t kn, vn;
        const void *k = talus_iter_key(it, &kn);
        const void *v = talus_iter_value(it, &vn);
        scan_line(c, k, kn, v, vn);
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
        ret = cli_engine_error("scan failed", NULL, rc);
out:
    talus_iter_free(it);
    if (io.snapshot != NULL)
        talus_snapshot_release(db, (talus_snapshot *)io.snapshot);
    free(prefix.owned);
    return cli_close_db(db, ret);
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
    printf("  blob files %6" PRIu64 " %16" PRIu64 "\n", s->blob_files, s->blob_bytes);
}

static int stats_one(talus_db *db, const char *name)
{
    talus_tree *t;
    int rc = talus_tree_open(db, name, 0, NULL, &t);
    if (rc == TALUS_ENOTFOUND) {
        fprintf(stderr, "talus: no tree '%s'\n", name);
        return EXIT_ERR;
    }
    if (rc < 0)
        return cli_engine_error("cannot open tree", name, rc);
    talus_tree_stats s;
    memset(&s, 0, sizeof s);
    rc = talus_tree_stats_get(t, &s);
    if (rc < 0)
        return cli_engine_error("stats failed for tree", name, rc);
    print_tree_stats(name, t, &s);
    return 0;
}

/* The database-wide lines: seqno and what pinned snapshots hold. */
static int stats_db(talus_db *db, const char *path)
{
    printf("database %s\n", path);
    printf("  seqno              %" PRIu64 "\n", talus_seqno(db));
    talus_pinned_snapshot *v = NULL;
    size_t n = 0;
    int rc = talus_snapshot_list(db, &v, &n);
    if (rc < 0)
        return cli_engine_error("cannot list snapshots", NULL, rc);
    uint64_t held = 0;
    for (size_t i = 0; i < n; i++)
        held += v[i].bytes_held;
    char buf[64];
    cli_human_size(held, buf, sizeof buf);
    printf("  pinned snapshots   %zu", n);
    if (n > 0)
        printf(" (seqno %" PRIu64 "..%" PRIu64 "), holding %s bytes", v[0].seqno, v[n - 1].seqno,
               buf);
    putchar('\n');
    talus_free(v);
    return 0;
}

static int cmd_stats(const struct cli *c, char **args, int nargs)
{
    (void)nargs;
    talus_db *db = NULL;
    int ret = cli_open_db(c, args[0], 0, 1, &db, NULL);
    if (ret != 0)
        return ret;
    ret = stats_db(db, args[0]);
    if (ret != 0 || c->tree != NULL) {
        if (ret == 0)
            ret = stats_one(db, c->tree);
        return cli_close_db(db, ret);
    }
    char **names = NULL;
    size_t count = 0;
    int rc = talus_tree_list(db, &names, &count);
    if (rc < 0)
        return cli_close_db(db, cli_engine_error("cannot list trees", NULL, rc));
    printf("  trees              %zu\n", count);
    for (size_t i = 0; i < count && ret == 0; i++)
        ret = stats_one(db, names[i]);
    talus_free_names(names);
    return cli_close_db(db, ret);
}

struct command {
    const char *name;
    int min_args, max_args; /* DB included */
    unsigned opts;          /* O_* it accepts */
    int (*run)(const struct cli *c, char **args, int nargs);
};

static const struct command commands[] = {
    {"put", 3, 3, O_HEX | O_TREE | O_SYNC, cmd_put},
    {"get", 2, 2, O_HEX | O_TREE | O_AT, cmd_get},
    {"del", 2, 2, O_HEX | O_TREE | O_SYNC, cmd_del},
    {"scan", 1, 2, O_REVERSE | O_KEYS | O_HEX | O_TREE | O_AT | O_AS_BATCH, cmd_scan},
    {"stats", 1, 1, O_TREE, cmd_stats},
    {"batch", 1, 2, O_TREE | O_SYNC | O_VERBOSE, cmd_batch},
    {"trees", 1, 1, O_CREATE | O_DROP, cmd_trees},
    {"snapshot", 1, 3, O_HUMAN, cmd_snapshot},
};

/* Long names of the O_* bits, for "option X does not apply to Y". */
static const struct {
    unsigned bit;
    const char *name;
} opt_names[] = {
    {O_REVERSE, "--reverse"},
    {O_KEYS, "--keys-only"},
    {O_HEX, "--hex"},
    {O_TREE, "--tree"},
    {O_SYNC, "--sync"},
    {O_VERBOSE, "--verbose"},
    {O_HUMAN, "--human-readable"},
    {O_AT, "--at"},
    {O_AS_BATCH, "--as-batch"},
    {O_CREATE, "--create"},
    {O_DROP, "--drop"},
};

enum { LONG_HELP = 256, LONG_AT, LONG_AS_BATCH, LONG_CREATE, LONG_DROP };

/* Parse the options into c and *seen (O_* bits). Returns -1 to go on, or
 * the exit status (after --help, --version or a usage error). */
static int parse_options(int argc, char **argv, struct cli *c, unsigned *seen)
{
    static const struct option longopts[] = {
        {"reverse", no_argument, NULL, 'r'},
        {"keys-only", no_argument, NULL, 'k'},
        {"hex", no_argument, NULL, 'x'},
        {"tree", required_argument, NULL, 't'},
        {"sync", no_argument, NULL, 's'},
        {"verbose", no_argument, NULL, 'v'},
        {"human-readable", no_argument, NULL, 'h'},
        {"at", required_argument, NULL, LONG_AT},
        {"as-batch", no_argument, NULL, LONG_AS_BATCH},
        {"create", required_argument, NULL, LONG_CREATE},
        {"drop", required_argument, NULL, LONG_DROP},
        {"help", no_argument, NULL, LONG_HELP},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    opterr = 0; /* our own messages, in our format */
    while ((opt = getopt_long(argc, argv, ":rkxt:svhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            c->reverse = 1;
            *seen |= O_REVERSE;
            break;
        case 'k':
            c->keys_only = 1;
            *seen |= O_KEYS;
            break;
        case 'x':
            c->hex = 1;
            *seen |= O_HEX;
            break;
        case 't':
            c->tree = optarg;
            *seen |= O_TREE;
            break;
        case 's':
            c->sync = 1;
            *seen |= O_SYNC;
            break;
        case 'v':
            c->verbose = 1;
            *seen |= O_VERBOSE;
            break;
        case 'h':
            c->human = 1;
            *seen |= O_HUMAN;
            break;
        case LONG_AT:
            if (cli_parse_seqno(optarg, "--at", &c->at) < 0)
                return EXIT_ERR;
            c->has_at = 1;
            *seen |= O_AT;
            break;
        case LONG_AS_BATCH:
            c->as_batch = 1;
            *seen |= O_AS_BATCH;
            break;
        case LONG_CREATE:
            c->create = optarg;
            *seen |= O_CREATE;
            break;
        case LONG_DROP:
            c->drop = optarg;
            *seen |= O_DROP;
            break;
        case LONG_HELP:
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
    return -1;
}

int main(int argc, char **argv)
{
    struct cli c = {0};
    unsigned seen = 0;
    int ret = parse_options(argc, argv, &c, &seen);
    if (ret >= 0)
        return ret;
    if (optind >= argc) {
        if (seen == O_HUMAN) { /* a lone `talus -h` asks for help */
            fputs(usage_text, stdout);
            return fclose(stdout) == 0 ? 0 : EXIT_ERR;
        }
        cli_usage_error("%s", "missing command");
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
        cli_usage_error("unknown command '%s'", name);
        return EXIT_ERR;
    }
    if (nargs < cmd->min_args || nargs > cmd->max_args) {
        cli_usage_error(nargs < cmd->min_args ? "too few arguments for '%s'"
                                              : "too many arguments for '%s'",
                        name);
        return EXIT_ERR;
    }
    for (size_t i = 0; i < sizeof opt_names / sizeof opt_names[0]; i++) {
        if ((seen & opt_names[i].bit) && !(cmd->opts & opt_names[i].bit)) {
            fprintf(stderr, "talus: option '%s' does not apply to '%s'\n", opt_names[i].name, name);
            fputs("Try 'talus --help' for more information.\n", stderr);
            return EXIT_ERR;
        }
    }
    if (c.as_batch && (c.keys_only || c.hex)) {
        cli_usage_error("%s", "--as-batch cannot be combined with --keys-only or --hex");
        return EXIT_ERR;
    }
    ret = cmd->run(&c, args, nargs);
    if (fclose(stdout) != 0 && ret != EXIT_ERR) {
        fprintf(stderr, "talus: write error: %s\n", strerror(errno));
        ret = EXIT_ERR;
    }
    return ret;
}
