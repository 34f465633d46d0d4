/*
 * cli_batch.c - `talus batch DB [FILE]`: apply a file of operations, one a
 * line, as ONE atomic batch (talus_batch_commit).
 *
 * Format (also in `talus --help`): fields are separated by spaces or TABs;
 * each field is a token in the escaping of cli_util.h (\xNN, \\, \s, \t,
 * \n, \r, and "" for the empty string). Blank lines and lines whose first
 * field starts with '#' are ignored.
 *
 *   put [-t TREE] KEY VALUE      del [-t TREE] KEY      weakdel [-t TREE] KEY
 *   tree NAME                    (switch the current tree for later lines)
 *
 * The input is parsed as it streams in, straight into the batch: the batch
 * is the only thing that grows with the input. Keywords ("put", "-t") are
 * compared before unescaping, so a key that is literally "-t" is written
 * as \x2dt.
 *
 * All or nothing: a malformed line (or an engine refusal, e.g. a key over
 * the limit) is reported with its line number and nothing is committed.
 * Trees named by the input are created when first seen (a batch needs a
 * tree handle); if the batch is then not committed, the trees this run
 * created are dropped again, so a failed run leaves the database as it was
 * (except that a database that did not exist has been created, empty).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"

#define MAX_FIELDS 5 /* put -t TREE KEY VALUE */

/* A tree the input named; the list remembers which ones this run made. */
struct tree_ref {
    char *name;
    talus_tree *t;
    int created;
    struct tree_ref *next;
};

struct batch_ctx {
    talus_db *db;
    talus_batch *b;
    struct tree_ref *trees;
    talus_tree *cur; /* the tree of lines without -t */
    const char *src; /* file name for messages */
    unsigned long line;
};

struct field {
    char *p;
    size_t n;
};

__attribute__((format(printf, 2, 3))) static int line_error(const struct batch_ctx *x,
                                                            const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "talus: %s:%lu: ", x->src, x->line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_ERR;
}

/* The tree called name, opened (or created) once per run. */
static int get_tree(struct batch_ctx *x, const char *name, talus_tree **out)
{
    for (struct tree_ref *r = x->trees; r != NULL; r = r->next) {
        if (strcmp(r->name, name) == 0) {
            *out = r->t;
            return 0;
        }
    }
    struct tree_ref *r = calloc(1, sizeof *r);
    if (r == NULL || (r->name = strdup(name)) == NULL) {
        free(r);
        return line_error(x, "out of memory");
    }
    int rc = talus_tree_open(x->db, name, 0, NULL, &r->t);
    if (rc == TALUS_ENOTFOUND) {
        rc = talus_tree_open(x->db, name, 1, NULL, &r->t);
        r->created = rc == 0;
    }
    if (rc < 0) {
        free(r->name);
        free(r);
        return line_error(x, "cannot open tree '%s': %s: %s", name, talus_strerror(rc),
                          talus_errmsg());
    }
    r->next = x->trees;
    x->trees = r;
    *out = r->t;
    return 0;
}

/* Unescape field f in place; column numbers in messages count from 1. */
static int decode(const struct batch_ctx *x, const char *line, struct field *f, const char *what)
{
    size_t n, bad = 0;
    if (cli_unescape(f->p, f->n, &n, &bad) < 0)
        return line_error(x,
                          "bad escape in %s at column %zu (use \\\\, \\s, \\t, \\n, \\r or \\xNN)",
                          what, (size_t)(f->p - line) + bad + 1);
    f->n = n;
    return 0;
}

/* A tree name from field f: unescaped, non-empty, no NUL. */
static int tree_name(struct batch_ctx *x, const char *line, struct field *f, talus_tree **out)
{
    int ret = decode(x, line, f, "tree name");
    if (ret != 0)
        return ret;
    if (f->n == 0 || memchr(f->p, '\0', f->n) != NULL)
        return line_error(x, "a tree name must be non-empty and hold no NUL byte");
    /* Writing the NUL may overwrite the separator after the raw field,
     * which the tokenizer no longer needs. */
    f->p[f->n] = '\0';
    return get_tree(x, f->p, out);
}

static int is_word(const struct field *f, const char *w)
{
    return f->n == strlen(w) && memcmp(f->p, w, f->n) == 0;
}

/* Split line[0..len) into fields; *nf = MAX_FIELDS + 1 means "too many". */
static size_t split(char *line, size_t len, struct field *fs)
{
    size_t nf = 0, i = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            i++;
        if (nf == MAX_FIELDS)
            return MAX_FIELDS + 1;
        fs[nf].p = line + start;
        fs[nf].n = i - start;
        nf++;
    }
    return nf;
}

static int parse_line(struct batch_ctx *x, char *line, size_t len)
{
    struct field fs[MAX_FIELDS];
    size_t nf = split(line, len, fs);
    if (nf == 0 || fs[0].p[0] == '#')
        return 0;
    if (nf > MAX_FIELDS)
        return line_error(x, "too many fields (escape spaces inside keys and values as \\s)");
    if (is_word(&fs[0], "tree")) {
        if (nf != 2)
            return line_error(x, "'tree' needs exactly one NAME");
        return tree_name(x, line, &fs[1], &x->cur);
    }
    int want; /* fields after the keyword and the optional -t TREE */
    if (is_word(&fs[0], "put"))
        want = 2;
    else if (is_word(&fs[0], "del") || is_word(&fs[0], "weakdel"))
        want = 1;
    else
        return line_error(x, "unknown operation '%.*s' (expected put, del, weakdel or tree)",
                          (int)(fs[0].n > 40 ? 40 : fs[0].n), fs[0].p);
    size_t i = 1;
    talus_tree *t = x->cur;
    if (nf > 1 && (is_word(&fs[1], "-t") || is_word(&fs[1], "--tree"))) {
        if (nf < 3)
            return line_error(x, "-t needs a tree name");
        int ret = tree_name(x, line, &fs[2], &t);
        if (ret != 0)
            return ret;
        i = 3;
    }
    if (nf - i != (size_t)want)
        return line_error(x, "'%.*s' needs %s, got %zu field%s", (int)fs[0].n, fs[0].p,
                          want == 2 ? "KEY VALUE" : "KEY", nf - i, nf - i == 1 ? "" : "s");
    int ret = decode(x, line, &fs[i], "key");
    if (ret == 0 && want == 2)
        ret = decode(x, line, &fs[i + 1], "value");
    if (ret != 0)
        return ret;
    if (fs[i].n == 0)
        return line_error(x, "empty key (keys are 1 to %u bytes)", TALUS_MAX_KEY);
    int rc;
    if (want == 2)
        rc = talus_batch_put(x->b, t, fs[i].p, fs[i].n, fs[i + 1].p, fs[i + 1].n);
    else if (fs[0].p[0] == 'd')
        rc = talus_batch_delete(x->b, t, fs[i].p, fs[i].n);
    else
        rc = talus_batch_weak_delete(x->b, t, fs[i].p, fs[i].n);
    if (rc < 0)
        return line_error(x, "%s: %s", talus_strerror(rc), talus_errmsg());
    return 0;
}

/* Read and add every line; returns 0 or EXIT_ERR (reported). */
static int parse_all(struct batch_ctx *x, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int ret = 0;
    errno = 0;
    while ((got = getline(&line, &cap, in)) >= 0) {
        x->line++;
        size_t len = (size_t)got;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if ((ret = parse_line(x, line, len)) != 0)
            break;
    }
    if (ret == 0 && ferror(in)) {
        fprintf(stderr, "talus: cannot read %s: %s\n", x->src, strerror(errno ? errno : EIO));
        ret = EXIT_ERR;
    }
    free(line);
    return ret;
}

/* After a failure: drop the trees this run created (they hold nothing, the
 * batch was never committed) and free the list. */
static int forget_trees(struct batch_ctx *x, int failed)
{
    int ret = 0;
    while (x->trees != NULL) {
        struct tree_ref *r = x->trees;
        x->trees = r->next;
        if (failed && r->created) {
            int rc = talus_tree_drop(x->db, r->name);
            if (rc < 0)
                ret = cli_engine_error("cannot drop the tree created for the batch", r->name, rc);
        }
        free(r->name);
        free(r);
    }
    return ret;
}

int cmd_batch(const struct cli *c, char **args, int nargs)
{
    struct batch_ctx x = {0};
    FILE *in = stdin;
    x.src = "<stdin>";
    if (nargs > 1 && strcmp(args[1], "-") != 0) {
        x.src = args[1];
        if ((in = fopen(args[1], "r")) == NULL) {
            fprintf(stderr, "talus: cannot open %s: %s\n", args[1], strerror(errno));
            return EXIT_ERR;
        }
    }
    int ret = cli_open_db(c, args[0], 1, 0, &x.db, NULL);
    if (ret != 0)
        goto out;
    int rc = talus_batch_new(&x.b);
    if (rc < 0) {
        ret = cli_engine_error("cannot start a batch", NULL, rc);
        goto out;
    }
    if (c->tree != NULL)
        ret = get_tree(&x, c->tree, &x.cur);
    else
        x.cur = talus_default_tree(x.db);
    if (ret == 0)
        ret = parse_all(&x, in);
    uint64_t seq = 0;
    if (ret == 0) {
        rc = talus_batch_commit(x.db, x.b, c->sync ? TALUS_DURABILITY_SYNC : -1, &seq);
        if (rc < 0)
            ret = cli_engine_error("batch commit failed", NULL, rc);
    }
    if (ret == 0 && c->verbose)
        printf("%" PRIu64 "\n", seq);
out:
    talus_batch_free(x.b);
    if (x.db != NULL) {
        int fret = forget_trees(&x, ret != 0);
        if (ret != 0)
            fprintf(stderr, "talus: batch not applied%s\n",
                    fret == 0 ? ": the database is unchanged" : "");
        else
            ret = fret;
    }
    if (in != stdin)
        fclose(in);
    return cli_close_db(x.db, ret);
}
