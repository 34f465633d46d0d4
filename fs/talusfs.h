/*
 * talusfs.h - what the talusfs program (mount/talusfs.c) needs from the
 * filesystem core in fs/: the configuration, opening the database behind a
 * mount, the FUSE low-level operations table and an orderly shutdown.
 *
 * Lifecycle (one tfs per mount, used from one thread except where noted):
 *   tfs_config_init(&cfg); ... set fields ...
 *   tfs_open(&cfg, &fs, err, sizeof err)   opens the database and its trees
 *   se = fuse_session_new(args, tfs_ops(), sizeof(struct fuse_lowlevel_ops), fs)
 *   tfs_attach_session(fs, se)             enables kernel cache invalidation
 *   ... fuse_session_loop_mt ...           (operations run on many threads)
 *   tfs_detach_session(fs)                 stops the invalidation thread
 *   tfs_close(fs)                          commits open files, syncs, closes
 */
#ifndef TALUSFS_TALUSFS_H
#define TALUSFS_TALUSFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

/* Default and hard limits of one file's size (the engine's value limit). */
#define TFS_DEFAULT_MAX_FILE_SIZE (2ull << 30)
/* Files of at least this many bytes go to engine blob files by default. */
#define TFS_DEFAULT_BLOB_SIZE (512u << 10)

struct tfs_config {
    const char *dbdir;       /* database directory (created if missing) */
    int read_only;           /* -o ro: refuse every change with EROFS */
    int durability;          /* enum talus_durability, or -1 for the engine default */
    size_t cache_size;       /* block cache bytes, 0: engine default */
    int compression;         /* enum talus_compression, or -1 for the default */
    uint64_t max_file_size;  /* EFBIG beyond this; <= TALUS_MAX_VALUE */
    uint64_t blob_size;      /* min_blob_size of tree "data"; 0: no blob files */
    double entry_timeout;    /* kernel dentry cache, seconds */
    double attr_timeout;     /* kernel attribute cache, seconds */
    double negative_timeout; /* kernel negative dentry cache, seconds */
    int kernel_cache;        /* page cache for live files (see fs/file.c) */
    int foreground;          /* log to stderr (else syslog) */
    int debug;               /* log every operation's failure */
    uid_t uid;               /* owner of keys without attributes */
    gid_t gid;
};

struct tfs;

void tfs_config_init(struct tfs_config *cfg);

/* Log to stderr (foreground) or syslog; debug adds per-request failures. */
void tfs_log_init(int foreground, int debug);

/* Open the database and the trees of the filesystem. On failure returns a
 * negative talus error code (TALUS_EBUSY when another process holds the
 * database) and writes a one-line explanation into err. */
int tfs_open(const struct tfs_config *cfg, struct tfs **out, char *err, size_t errlen);

/* The operations table to pass to fuse_session_new with the tfs as userdata. */
const struct fuse_lowlevel_ops *tfs_ops(void);

/* Start / stop the thread that sends cache invalidations to the kernel. */
int tfs_attach_session(struct tfs *fs, struct fuse_session *se);
void tfs_detach_session(struct tfs *fs);

/* Commit every file still open for writing, make everything durable and
 * close the database. Returns 0 or a negative talus error code (logged). */
int tfs_close(struct tfs *fs);

#endif
