/*
 * cli.h - what the commands of the `talus` admin CLI share: the parsed
 * command line, exit codes, opening and closing a database, and the one
 * error format ("talus: <what>: <talus_strerror>: <talus_errmsg>").
 *
 * Each command is a function `int cmd_X(const struct cli *, char **args,
 * int nargs)` returning the process exit status; args[0] is the DB (or
 * mount point) argument.
 */
#ifndef TALUS_CLI_H
#define TALUS_CLI_H

#include <stdint.h>

#include "talus.h"

#define EXIT_ABSENT 1 /* get: no such key (and nothing else) */
#define EXIT_ERR 2    /* every error */

/* What the command line asked for. */
struct cli {
    int reverse;
    int keys_only;
    int hex;
    int sync;
    int verbose;
    int human;
    int as_batch;
    int has_at;
    uint64_t at;        /* --at N (valid when has_at) */
    const char *tree;   /* NULL: the default tree */
    const char *create; /* trees --create NAME */
    const char *drop;   /* trees --drop NAME */
};

/* "talus: <fmt with arg>" plus the hint to run --help. */
void cli_usage_error(const char *fmt, const char *arg);
/* Report an engine error in the documented format; returns EXIT_ERR. */
int cli_engine_error(const char *what, const char *arg, int rc);

/* Open the database at path (creating it only if `create`), read-only if
 * `readonly` (falls back to a normal open if unsupported). With tree !=
 * NULL also open c->tree (or the default tree), creating a named tree only
 * if `create`. Returns 0 or an exit status (the error is reported, *db is
 * closed). */
int cli_open_db(const struct cli *c, const char *path, int create, int readonly, talus_db **db,
                talus_tree **tree);
/* Close db (NULL is fine) and report a close failure if ret is 0. Returns
 * the exit status to use. */
int cli_close_db(talus_db *db, int ret);

/* Parse a decimal seqno strictly (digits only, no sign, no overflow).
 * Returns 0, or -1 after reporting "<what> is not a sequence number". */
int cli_parse_seqno(const char *s, const char *what, uint64_t *out);

int cmd_batch(const struct cli *c, char **args, int nargs);
int cmd_trees(const struct cli *c, char **args, int nargs);
int cmd_snapshot(const struct cli *c, char **args, int nargs);

#endif
