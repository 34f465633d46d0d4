/*
 * talusfs.c - `talusfs`, the program that mounts a Talus database as a
 * directory (the filesystem itself lives in fs/; this file is options,
 * daemonizing and the FUSE session).
 *
 *   talusfs [-f] [-o opt,...] DBDIR MOUNTPOINT
 *
 * Start-up order, and why:
 *  1. parse and check every option, so a typo fails before anything else;
 *  2. unless -f: fork, and let the parent wait on a pipe for the child's
 *     verdict. The engine starts background threads when a database opens,
 *     and threads do not survive fork(), so the database must be opened by
 *     the process that will serve it, i.e. after the fork. The parent exits
 *     with the child's status once the mount is up (or failed), so
 *     `talusfs DB MNT && ls MNT` works and errors reach the terminal;
 *  3. open the database BEFORE mounting: a corrupt, unreadable or busy
 *     database gives a clear message and exit status 1 with nothing
 *     mounted (never a hang, never a half-mounted directory);
 *  4. mount, report success, detach from the terminal, serve;
 *  5. on unmount, SIGINT, SIGTERM or SIGHUP the loop ends; files still open
 *     for writing are committed, the journal is synced and the database is
 *     closed (which flushes) before the process exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>

#include "talus.h"
#include "talusfs.h"

struct opts {
    char *durability, *compression, *cache_size, *max_file_size, *blob_size;
    int foreground, debug, single, help, version, ro, kernel_cache;
    char *dbdir, *mnt;
    int extra_args;
};

enum { KEY_HELP, KEY_VERSION, KEY_FG, KEY_DEBUG, KEY_SINGLE, KEY_RO, KEY_KCACHE, KEY_DROP };

#define OPT(t, f)                                                                                  \
    {                                                                                              \
        t, offsetof(struct opts, f), 0                                                             \
    }

static const struct fuse_opt specs[] = {
    OPT("durability=%s", durability),
    OPT("compression=%s", compression),
    OPT("cache_size=%s", cache_size),
    OPT("max_file_size=%s", max_file_size),
    OPT("blob_size=%s", blob_size),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-f", KEY_FG),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("-s", KEY_SINGLE),
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_KEY("kernel_cache", KEY_KCACHE),
    /* Always on (the kernel checks permissions against our attributes). */
    FUSE_OPT_KEY("default_permissions", KEY_DROP),
    /* What mount(8) and /etc/fstab may hand over that is not for FUSE. */
    FUSE_OPT_KEY("defaults", KEY_DROP),
    FUSE_OPT_KEY("auto", KEY_DROP),
    FUSE_OPT_KEY("noauto", KEY_DROP),
    FUSE_OPT_KEY("user", KEY_DROP),
    FUSE_OPT_KEY("users", KEY_DROP),
    FUSE_OPT_KEY("nouser", KEY_DROP),
    FUSE_OPT_KEY("_netdev", KEY_DROP),
    FUSE_OPT_KEY("nofail", KEY_DROP),
    FUSE_OPT_KEY("x-", KEY_DROP),
    FUSE_OPT_KEY("comment=", KEY_DROP),
    FUSE_OPT_END,
};

static const char usage_text[] =
    "Usage: talusfs [OPTION]... DBDIR MOUNTPOINT\n"
    "Mount the Talus database in directory DBDIR (created if missing) on\n"
    "MOUNTPOINT: keys are paths, values are file contents, snapshots are under\n"
    "MOUNTPOINT/.snap. Unmount with `fusermount3 -u MOUNTPOINT` or `umount`.\n"
    "\n"
    "Options:\n"
    "  -f                     stay in the foreground (log to stderr)\n"
    "  -d, -o debug           foreground, and log every FUSE request\n"
    "  -s                     serve requests on one thread\n"
    "  -o ro                  read-only mount (every change fails with EROFS)\n"
    "  -o allow_other         let other users access the mount (see\n"
    "                         /etc/fuse.conf: user_allow_other)\n"
    "  -o default_permissions permission checks by the kernel (always on)\n"
    "  -o durability=MODE     none, buffered or sync: when a commit reaches\n"
    "                         the disk (default buffered; fsync is always\n"
    "                         durable)\n"
    "  -o cache_size=BYTES    block cache size (suffixes K, M, G)\n"
    "  -o compression=ALG     none, lz4 or zstd for new tables\n"
    "  -o max_file_size=BYTES largest file (default 2G, at most 4294967295);\n"
    "                         bigger writes fail with EFBIG\n"
    "  -o blob_size=BYTES     files of at least this size are stored in blob\n"
    "                         files of their own, outside the tree, and read\n"
    "                         by range (suffixes K, M, G; 0: never; default\n"
    "                         512K)\n"
    "  -o kernel_cache        let the kernel page cache keep file contents\n"
    "                         (faster small reads, MAP_SHARED works) at the\n"
    "                         cost of the guarantee that a reader never sees a\n"
    "                         shortened file while it is rewritten in place\n"
    "  -o OPT                 other mount options (nosuid, nodev, noexec,\n"
    "                         noatime, ...) go to the kernel\n"
    "  -h, --help             show this help and exit\n"
    "  -V, --version          show the version and exit\n"
    "\n"
    "In /etc/fstab:  /srv/db  /mnt/db  fuse.talusfs  defaults,allow_other  0 0\n"
    "By hand:        mount -t fuse.talusfs /srv/db /mnt/db\n"
    "\n"
    "Exit status: 0 once mounted (or, with -f, after a clean unmount), 1 if the\n"
    "database cannot be opened or the mount fails, 2 for a usage error.\n";

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)outargs;
    struct opts *o = data;
    switch (key) {
    case KEY_HELP:
        o->help = 1;
        return 0;
    case KEY_VERSION:
        o->version = 1;
        return 0;
    case KEY_FG:
        o->foreground = 1;
        return 0;
    case KEY_DEBUG:
        o->debug = o->foreground = 1;
        return 1; /* libfuse logs requests too */
    case KEY_SINGLE:
        o->single = 1;
        return 0;
    case KEY_RO:
        o->ro = 1;
        return 1; /* also a kernel mount flag */
    case KEY_KCACHE:
        o->kernel_cache = 1;
        return 0;
    case KEY_DROP:
        return 0;
    case FUSE_OPT_KEY_NONOPT:
        if (!o->dbdir)
            o->dbdir = strdup(arg);
        else if (!o->mnt)
            o->mnt = strdup(arg);
        else
            o->extra_args = 1;
        return 0;
    default:
        return 1;
    }
}

/* "64M" and friends; false on anything else. */
static bool parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return false;
    unsigned shift = 0;
    switch (*end) {
    case 0:
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        return false;
    }
    if (*end && end[1] && !(end[1] == 'B' && !end[2]) &&
        !(end[1] == 'i' && end[2] == 'B' && !end[3]))
        return false;
    if (shift && v > (ULLONG_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "talusfs: ");
    fprintf(stderr, msg, arg);
    fprintf(stderr, "\nTry 'talusfs --help' for more information.\n");
    return 2;
}

/* Fill cfg from the -o values; 0 or an exit status. */
static int config_from(const struct opts *o, struct tfs_config *cfg)
{
    if (o->durability) {
        if (!strcmp(o->durability, "none"))
            cfg->durability = TALUS_DURABILITY_NONE;
        else if (!strcmp(o->durability, "buffered"))
            cfg->durability = TALUS_DURABILITY_BUFFERED;
        else if (!strcmp(o->durability, "sync"))
            cfg->durability = TALUS_DURABILITY_SYNC;
        else
            return usage_error("durability must be none, buffered or sync, not '%s'",
                               o->durability);
    }
    if (o->compression) {
        if (!strcmp(o->compression, "none"))
            cfg->compression = TALUS_COMPRESS_NONE;
        else if (!strcmp(o->compression, "lz4"))
            cfg->compression = TALUS_COMPRESS_LZ4;
        else if (!strcmp(o->compression, "zstd"))
            cfg->compression = TALUS_COMPRESS_ZSTD;
        else
            return usage_error("compression must be none, lz4 or zstd, not '%s'", o->compression);
    }
    uint64_t v;
    if (o->cache_size) {
        if (!parse_bytes(o->cache_size, &v) || v > SIZE_MAX)
            return usage_error("cache_size must be a number of bytes, not '%s'", o->cache_size);
        cfg->cache_size = (size_t)v;
    }
    if (o->max_file_size) {
        if (!parse_bytes(o->max_file_size, &v) || v == 0)
            return usage_error("max_file_size must be a number of bytes, not '%s'",
                               o->max_file_size);
        if (v > TALUS_MAX_VALUE)
            return usage_error("max_file_size may not exceed 4294967295 (the largest value "
                               "the engine stores), got '%s'",
                               o->max_file_size);
        cfg->max_file_size = v;
    }
    if (o->blob_size) {
        if (!parse_bytes(o->blob_size, &v))
            return usage_error("blob_size must be a number of bytes, not '%s'", o->blob_size);
        cfg->blob_size = v;
    }
    cfg->read_only = o->ro;
    cfg->kernel_cache = o->kernel_cache;
    cfg->foreground = o->foreground;
    cfg->debug = o->debug;
    return 0;
}

/* An absolute form of a path that may not exist yet (its parent must). */
static char *absolute(const char *p)
{
    char *r = realpath(p, NULL);
    if (r)
        return r;
    if (p[0] == '/')
        return strdup(p);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    size_t n = strlen(cwd) + strlen(p) + 2;
    r = malloc(n);
    if (r)
        snprintf(r, n, "%s/%s", cwd, p);
    return r;
}

/* mkdir -p: the database directory and its missing parents (the engine
 * makes only the last one). */
static int make_dirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

/* Daemon mode: the parent waits here for the child's verdict (one byte,
 * the exit status) and exits with it; the child returns the pipe's write
 * end. Returns -1 in the parent's error case (it exits itself). */
static int daemon_fork(void)
{
    int p[2];
    if (pipe(p) < 0) {
        perror("talusfs: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("talusfs: fork");
        exit(1);
    }
    if (pid > 0) {
        close(p[1]);
        unsigned char st = 1;
        ssize_t n;
        do {
            n = read(p[0], &st, 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1) { /* the child died before saying anything */
            int ws;
            st = 1;
            if (waitpid(pid, &ws, 0) == pid && WIFEXITED(ws) && WEXITSTATUS(ws) != 0)
                st = (unsigned char)WEXITSTATUS(ws);
        }
        _exit(st);
    }
    close(p[0]);
    setsid(); /* no controlling terminal: a closing shell does not kill us */
    return p[1];
}

static void report(int fd, unsigned char status)
{
    if (fd < 0)
        return;
    ssize_t n;
    do {
        n = write(fd, &status, 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
}

static void detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        return;
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
        close(fd);
}

/* Serve one mount; returns the exit status. */
static int run(struct fuse_args *args, struct opts *o)
{
    if (fuse_opt_parse(args, o, specs, opt_proc) < 0)
        return usage_error("%s", "bad options");
    if (o->help) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (o->version) {
        printf("talusfs %s (libfuse %s)\n", TALUS_VERSION_STRING, fuse_pkgversion());
        return 0;
    }
    if (!o->dbdir || !o->mnt)
        return usage_error("%s", "missing DBDIR or MOUNTPOINT");
    if (o->extra_args)
        return usage_error("%s", "too many arguments (expected DBDIR MOUNTPOINT)");

    struct tfs_config cfg;
    tfs_config_init(&cfg);
    int st = config_from(o, &cfg);
    if (st)
        return st;
    st = 1;
    char *dbdir = absolute(o->dbdir), *mnt = realpath(o->mnt, NULL), *mopts = NULL;
    struct tfs *fs = NULL;
    struct fuse_session *se = NULL;
    int status_fd = -1;
    struct stat sb;
    if (!mnt || stat(mnt, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "talusfs: mount point %s: %s\n", o->mnt,
                mnt ? "not a directory" : strerror(errno));
        goto out;
    }
    if (!dbdir) {
        fprintf(stderr, "talusfs: %s: %s\n", o->dbdir, strerror(errno));
        goto out;
    }
    cfg.dbdir = dbdir;
    if (!o->ro && stat(dbdir, &sb) < 0 && errno == ENOENT && make_dirs(dbdir) < 0) {
        fprintf(stderr, "talusfs: cannot create the database directory %s: %s\n", dbdir,
                strerror(errno));
        goto out;
    }

    /* fsname shows the database in `mount` and `df`; subtype makes the
     * type fuse.talusfs (what /etc/fstab names). */
    mopts = malloc(strlen(dbdir) * 2 + 64);
    if (!mopts)
        goto out;
    char *q = mopts + sprintf(mopts, "subtype=talusfs,default_permissions,fsname=");
    for (const char *s = dbdir; *s; s++) { /* ',' and '\' are separators */
        if (*s == ',' || *s == '\\')
            *q++ = '\\';
        *q++ = *s;
    }
    *q = 0;
    if (fuse_opt_add_arg(args, "-o") < 0 || fuse_opt_add_arg(args, mopts) < 0)
        goto out;

    status_fd = o->foreground ? -1 : daemon_fork();
    tfs_log_init(1, o->debug);

    /* Only the main thread may take SIGINT/SIGTERM/SIGHUP: libfuse's loop
     * waits there for the handler to end it. Threads started from here on
     * (the engine's, the invalidation thread) inherit the blocked mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    char err[1024] = "";
    if (tfs_open(&cfg, &fs, err, sizeof err) < 0) {
        fprintf(stderr, "talusfs: %s\n", err);
        goto out;
    }
    se = fuse_session_new(args, tfs_ops(), sizeof(struct fuse_lowlevel_ops), fs);
    if (!se) {
        fprintf(stderr, "talusfs: cannot start the FUSE session (bad mount option?)\n");
        goto out;
    }
    if (fuse_set_signal_handlers(se) < 0 || fuse_session_mount(se, mnt) < 0) {
        fprintf(stderr, "talusfs: cannot mount %s on %s\n", dbdir, mnt);
        fuse_remove_signal_handlers(se);
        goto out;
    }
    tfs_attach_session(fs, se);
    if (!o->foreground) {
        report(status_fd, 0);
        status_fd = -1;
        if (chdir("/") < 0) {
            /* nothing to do: we hold no relative paths */
        }
        detach_stdio();
        tfs_log_init(0, o->debug);
    }

    pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
    int rc;
    if (o->single) {
        rc = fuse_session_loop(se);
    } else {
        struct fuse_loop_config *lc = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(lc, 0);
        fuse_loop_cfg_set_idle_threads(lc, 10);
        rc = fuse_session_loop_mt(se, lc);
        fuse_loop_cfg_destroy(lc);
    }
    /* rc > 0: ended by a signal, which is a clean exit. */
    st = rc < 0 ? 1 : 0;
    tfs_detach_session(fs);
    fuse_remove_signal_handlers(se);
    fuse_session_unmount(se);
out:
    if (fs && tfs_close(fs) < 0)
        st = 1;
    if (se)
        fuse_session_destroy(se);
    report(status_fd, (unsigned char)st);
    free(mopts);
    free(dbdir);
    free(mnt);
    return st;
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct opts o;
    memset(&o, 0, sizeof o);
    int st = run(&args, &o);
    fuse_opt_free_args(&args);
    free(o.dbdir);
    free(o.mnt);
    free(o.durability);
    free(o.compression);
    free(o.cache_size);
    free(o.max_file_size);
    free(o.blob_size);
    return st;
}
