/*
 * test_env.c - the POSIX env on a temporary directory (every operation,
 * including the lock against a forked child process) and the
 * fault-injecting env (armed failures, counters, short writes, and the
 * power-loss model of tl_fault_env_drop_unsynced).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "talus.h"
#include "util/env.h"
#include "util/err.h"

typedef struct fixture {
    char dir[256];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/talus-test-env-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int r = system(cmd);
    free(fx);
    return r == 0 ? 0 : -1;
}

static char *pj(const fixture *fx, const char *name)
{
    static char bufs[8][512];
    static int at;
    char *b = bufs[at++ % 8];
    snprintf(b, 512, "%s/%s", fx->dir, name);
    return b;
}

static void write_file(tl_env *e, const char *path, const char *data, bool sync)
{
    tl_file *f;
    assert_int_equal(tl_env_open_write(e, path, &f), 0);
    assert_int_equal(tl_file_append(f, data, strlen(data)), 0);
    if (sync)
        assert_int_equal(tl_file_sync(f), 0);
    assert_int_equal(tl_file_close(f), 0);
}

/* Whole content of path as a string ("<missing>" if absent). */
static char *slurp(tl_env *e, const char *path)
{
    static char out[4096];
    uint8_t *d;
    size_t n;
    int rc = tl_env_read_file(e, path, &d, &n);
    if (rc == TALUS_ENOTFOUND)
        return strcpy(out, "<missing>");
    assert_int_equal(rc, 0);
    assert_true(n < sizeof out);
    memcpy(out, d, n);
    out[n] = '\0';
    free(d);
    return out;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dir joined with ',' (for compact assertions). */
static char *listing(tl_env *e, const char *dir)
{
    static char out[4096];
    char **names;
    size_t n;
    assert_int_equal(tl_env_list_dir(e, dir, &names, &n), 0);
    qsort(names, n, sizeof *names, name_cmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, ",");
        strcat(out, names[i]);
    }
    tl_env_free_names(names, n);
    return out;
}

/* ---- POSIX env ------------------------------------------------------ */

static void test_posix_files(void **state)
{
    fixture *fx = *state;
    tl_env *e = tl_env_posix();
    assert_ptr_equal(e, tl_env_posix());
    const char *a = pj(fx, "a");

    assert_int_equal(tl_env_exists(e, a), 0);
    tl_file *f;
    assert_int_equal(tl_env_open_write(e, a, &f), 0);
    assert_int_equal(tl_file_append(f, "hello ", 6), 0);
    /* A big append goes through whole. */
    size_t big_n = 3 << 20;
    uint8_t *big = malloc(big_n);
    assert_non_null(big);
    for (size_t i = 0; i < big_n; i++)
        big[i] = (uint8_t)(i * 7);
    assert_int_equal(tl_file_append(f, big, big_n), 0);
    assert_int_equal(tl_file_sync(f), 0);
    uint64_t sz;
    assert_int_equal(tl_file_size(f, &sz), 0);
    assert_true(sz == 6 + big_n);
    /* A writer can read back through its own handle. */
    uint8_t head[6];
    size_t got;
    assert_int_equal(tl_file_pread(f, head, 6, 0, &got), 0);
    assert_int_equal(got, 6);
    assert_memory_equal(head, "hello ", 6);
    assert_int_equal(tl_file_close(f), 0);
    assert_int_equal(tl_file_close(NULL), 0);

    assert_int_equal(tl_env_exists(e, a), 1);
    assert_int_equal(tl_env_file_size(e, a, &sz), 0);
    assert_true(sz == 6 + big_n);

    assert_int_equal(tl_env_open_read(e, a, &f), 0);
    uint8_t *back = malloc(big_n);
    assert_non_null(back);
    assert_int_equal(tl_file_pread(f, back, big_n, 6, &got), 0);
    assert_int_equal(got, big_n);
    assert_memory_equal(back, big, big_n);
    /* Short read only at the end of the file; none past it. */
    assert_int_equal(tl_file_pread(f, back, 100, 6 + big_n - 10, &got), 0);
    assert_int_equal(got, 10);
    assert_int_equal(tl_file_pread(f, back, 100, 6 + big_n + 5, &got), 0);
    assert_int_equal(got, 0);
    assert_int_equal(tl_file_close(f), 0);
    free(back);
    free(big);

    /* open_append continues at the end; open_write truncates. */
    write_file(e, a, "one", false);
    assert_int_equal(tl_env_open_append(e, a, &f), 0);
    assert_int_equal(tl_file_append(f, "two", 3), 0);
    assert_int_equal(tl_file_close(f), 0);
    assert_string_equal(slurp(e, a), "onetwo");
    assert_int_equal(tl_env_open_append(e, pj(fx, "new"), &f), 0); /* creates */
    assert_int_equal(tl_file_append(f, "x", 1), 0);
    assert_int_equal(tl_file_close(f), 0);
    assert_string_equal(slurp(e, pj(fx, "new")), "x");

    assert_int_equal(tl_env_truncate(e, a, 3), 0);
    assert_string_equal(slurp(e, a), "one");

    assert_int_equal(tl_env_rename(e, a, pj(fx, "b")), 0);
    assert_int_equal(tl_env_exists(e, a), 0);
    assert_string_equal(slurp(e, pj(fx, "b")), "one");
    /* Rename replaces. */
    assert_int_equal(tl_env_rename(e, pj(fx, "new"), pj(fx, "b")), 0);
    assert_string_equal(slurp(e, pj(fx, "b")), "x");
    assert_int_equal(tl_env_remove(e, pj(fx, "b")), 0);
    assert_int_equal(tl_env_exists(e, pj(fx, "b")), 0);
    assert_string_equal(listing(e, fx->dir), "");

    /* Errors carry a code and name the path. */
    assert_int_equal(tl_env_open_read(e, pj(fx, "nope"), &f), TALUS_ENOTFOUND);
    assert_null(f);
    assert_non_null(strstr(tl_errmsg(), "nope"));
    assert_int_equal(tl_env_remove(e, pj(fx, "nope")), TALUS_ENOTFOUND);
    assert_non_null(strstr(tl_errmsg(), "nope"));
    assert_int_equal(tl_env_rename(e, pj(fx, "nope"), pj(fx, "x")), TALUS_ENOTFOUND);
    assert_int_equal(tl_env_file_size(e, pj(fx, "nope"), &sz), TALUS_ENOTFOUND);
    assert_true(tl_env_truncate(e, pj(fx, "nope"), 0) < 0);
    assert_true(tl_env_open_write(e, pj(fx, "no/such/dir/f"), &f) < 0);
}

static void test_posix_dirs(void **state)
{
    fixture *fx = *state;
    tl_env *e = tl_env_posix();
    const char *d = pj(fx, "sub");
    assert_int_equal(tl_env_mkdir(e, d), 0);
    assert_int_equal(tl_env_mkdir(e, d), 0); /* existing is fine */
    assert_int_equal(tl_env_exists(e, d), 1);
    write_file(e, pj(fx, "sub/f1"), "1", true);
    write_file(e, pj(fx, "sub/f2"), "22", true);
    assert_int_equal(tl_env_mkdir(e, pj(fx, "sub/inner")), 0);
    assert_int_equal(tl_env_sync_dir(e, d), 0);
    assert_string_equal(listing(e, d), "f1,f2,inner");
    assert_string_equal(listing(e, fx->dir), "sub");

    /* A file where a directory is wanted. */
    assert_true(tl_env_mkdir(e, pj(fx, "sub/f1")) < 0);
    assert_true(tl_env_rmdir(e, d) < 0); /* not empty */
    assert_int_equal(tl_env_rmdir(e, pj(fx, "sub/inner")), 0);
    assert_int_equal(tl_env_remove(e, pj(fx, "sub/f1")), 0);
    assert_int_equal(tl_env_remove(e, pj(fx, "sub/f2")), 0);
    assert_int_equal(tl_env_rmdir(e, d), 0);
    assert_int_equal(tl_env_exists(e, d), 0);

    char **names;
    size_t n;
    assert_int_equal(tl_env_list_dir(e, d, &names, &n), TALUS_ENOTFOUND);
    assert_true(tl_env_sync_dir(e, d) < 0);
    assert_non_null(strstr(tl_errmsg(), "sub"));

    /* Many entries. */
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof name, "m%03d", i);
        write_file(e, pj(fx, name), "", false);
    }
    assert_int_equal(tl_env_list_dir(e, fx->dir, &names, &n), 0);
    assert_int_equal(n, 300);
    tl_env_free_names(names, n);
    tl_env_free_names(NULL, 0);

    uint64_t fr = 0, tot = 0;
    assert_int_equal(tl_env_disk_space(e, fx->dir, &fr, &tot), 0);
    assert_true(tot > 0 && fr <= tot);
}

static void test_posix_clock(void **state)
{
    tl_env *e = tl_env_posix();
    uint64_t t0 = tl_env_now_ns(e);
    tl_env_sleep_us(e, 2000);
    uint64_t t1 = tl_env_now_ns(e);
    assert_true(t1 - t0 >= 2000000);
    assert_true(t1 - t0 < 2000000000ull);
    /* Realtime is after 2020-01-01. */
    assert_true(tl_env_wall_ns(e) > 1577836800ull * 1000000000ull);
}

static void test_posix_lock(void **state)
{
    fixture *fx = *state;
    tl_env *e = tl_env_posix();
    const char *lk = pj(fx, "LOCK");
    void *h = NULL;
    assert_int_equal(tl_env_lock(e, lk, &h), 0);
    assert_non_null(h);
    assert_int_equal(tl_env_exists(e, lk), 1);

    /* A second holder in this process is refused as well. */
    void *h2 = NULL;
    assert_int_equal(tl_env_lock(e, lk, &h2), TALUS_EBUSY);
    assert_null(h2);
    assert_non_null(strstr(tl_errmsg(), "in use"));
    assert_non_null(strstr(tl_errmsg(), "LOCK"));

    /* Another process: exit status 0 = busy, 1 = got it, 2 = other. */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        void *hc = NULL;
        int rc = tl_env_lock(e, lk, &hc);
        _exit(rc == TALUS_EBUSY ? 0 : rc == 0 ? 1 : 2);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    assert_int_equal(tl_env_unlock(e, h), 0);
    assert_int_equal(tl_env_unlock(e, NULL), 0);

    /* Released: the child now gets it. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        void *hc = NULL;
        int rc = tl_env_lock(e, lk, &hc);
        _exit(rc == TALUS_EBUSY ? 0 : rc == 0 ? 1 : 2);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);

    /* And so do we again. */
    assert_int_equal(tl_env_lock(e, lk, &h), 0);
    assert_int_equal(tl_env_unlock(e, h), 0);
}

static void test_atomic_file(void **state)
{
    fixture *fx = *state;
    tl_env *e = tl_env_posix();
    assert_int_equal(tl_env_write_file_atomic(e, fx->dir, "CURRENT", "MANIFEST-1\n", 11), 0);
    assert_string_equal(slurp(e, pj(fx, "CURRENT")), "MANIFEST-1\n");
    assert_int_equal(tl_env_write_file_atomic(e, fx->dir, "CURRENT", "MANIFEST-2\n", 11), 0);
    assert_string_equal(slurp(e, pj(fx, "CURRENT")), "MANIFEST-2\n");
    /* No temporary left behind. */
    assert_string_equal(listing(e, fx->dir), "CURRENT");
    /* Empty content; directory given with a trailing slash. */
    char dir_slash[300];
    snprintf(dir_slash, sizeof dir_slash, "%s/", fx->dir);
    assert_int_equal(tl_env_write_file_atomic(e, dir_slash, "EMPTY", "", 0), 0);
    uint8_t *d;
    size_t n;
    assert_int_equal(tl_env_read_file(e, pj(fx, "EMPTY"), &d, &n), 0);
    assert_non_null(d);
    assert_int_equal(n, 0);
    free(d);
    assert_int_equal(tl_env_read_file(e, pj(fx, "missing"), &d, &n), TALUS_ENOTFOUND);
    assert_null(d);
    assert_true(tl_env_write_file_atomic(e, pj(fx, "nodir"), "X", "x", 1) < 0);
}

/* ---- fault env ------------------------------------------------------ */

static void test_fault_nth(void **state)
{
    fixture *fx = *state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    assert_non_null(fe);
    tl_env *e = tl_fault_env_env(fe);
    tl_file *f;
    assert_int_equal(tl_env_open_write(e, pj(fx, "w"), &f), 0);
    assert_int_equal(tl_fault_env_count(fe, TL_FAULT_OPEN), 1);

    /* Write: the 3rd from now fails with the armed code, only that one. */
    tl_fault_env_arm(fe, TL_FAULT_WRITE, 3, TALUS_ENOSPC, false);
    assert_int_equal(tl_file_append(f, "a", 1), 0);
    assert_int_equal(tl_file_append(f, "b", 1), 0);
    assert_int_equal(tl_file_append(f, "c", 1), TALUS_ENOSPC);
    assert_non_null(strstr(tl_errmsg(), "injected"));
    assert_int_equal(tl_file_append(f, "d", 1), 0);
    assert_int_equal(tl_file_append(f, "e", 1), 0);
    assert_int_equal(tl_fault_env_count(fe, TL_FAULT_WRITE), 5);
    /* The failed write did not reach the file. */
    uint64_t sz;
    assert_int_equal(tl_file_size(f, &sz), 0);
    assert_true(sz == 4);

    /* Sticky: the 2nd and every later one. Default code is EIO. */
    tl_fault_env_arm(fe, TL_FAULT_WRITE, 2, 0, true);
    assert_int_equal(tl_file_append(f, "f", 1), 0);
    assert_int_equal(tl_file_append(f, "g", 1), TALUS_EIO);
    assert_int_equal(tl_file_append(f, "h", 1), TALUS_EIO);
    assert_int_equal(tl_file_append(f, "i", 1), TALUS_EIO);
    tl_fault_env_disarm(fe);
    assert_int_equal(tl_file_append(f, "j", 1), 0);
    assert_int_equal(tl_fault_env_count(fe, TL_FAULT_WRITE), 10);

    /* Sync (file and directory share the kind). */
    tl_fault_env_arm(fe, TL_FAULT_SYNC, 2, TALUS_EIO, false);
    assert_int_equal(tl_file_sync(f), 0);
    assert_int_equal(tl_env_sync_dir(e, fx->dir), TALUS_EIO);
    assert_int_equal(tl_file_sync(f), 0);
    assert_int_equal(tl_fault_env_count(fe, TL_FAULT_SYNC), 3);
    assert_int_equal(tl_file_close(f), 0);

    /* Read. */
    assert_int_equal(tl_env_open_read(e, pj(fx, "w"), &f), 0);
    tl_fault_env_arm(fe, TL_FAULT_READ, 1, TALUS_ECORRUPT, false);
    char buf[16];
    size_t got;
    assert_int_equal(tl_file_pread(f, buf, sizeof buf, 0, &got), TALUS_ECORRUPT);
    assert_int_equal(tl_file_pread(f, buf, sizeof buf, 0, &got), 0);
    assert_int_equal(got, 6);
    assert_memory_equal(buf, "abdefj", 6);
    assert_int_equal(tl_file_close(f), 0);

    /* Rename: the failure leaves both names as they were. */
    write_file(e, pj(fx, "r1"), "r1", true);
    tl_fault_env_arm(fe, TL_FAULT_RENAME, 1, TALUS_EIO, false);
    assert_int_equal(tl_env_rename(e, pj(fx, "r1"), pj(fx, "w")), TALUS_EIO);
    assert_string_equal(slurp(e, pj(fx, "w")), "abdefj");
    assert_string_equal(slurp(e, pj(fx, "r1")), "r1");
    assert_int_equal(tl_env_rename(e, pj(fx, "r1"), pj(fx, "w")), 0);
    assert_string_equal(slurp(e, pj(fx, "w")), "r1");
    assert_int_equal(tl_fault_env_count(fe, TL_FAULT_RENAME), 2);

    /* Open and remove. */
    tl_fault_env_arm(fe, TL_FAULT_OPEN, 1, TALUS_ENOSPC, false);
    assert_int_equal(tl_env_open_write(e, pj(fx, "o"), &f), TALUS_ENOSPC);
    assert_null(f);
    assert_int_equal(tl_env_exists(e, pj(fx, "o")), 0);
    tl_fault_env_arm(fe, TL_FAULT_REMOVE, 1, TALUS_EIO, false);
    assert_int_equal(tl_env_remove(e, pj(fx, "w")), TALUS_EIO);
    assert_int_equal(tl_env_exists(e, pj(fx, "w")), 1);
    assert_int_equal(tl_env_remove(e, pj(fx, "w")), 0);
    assert_int_equal(tl_env_exists(e, pj(fx, "w")), 0);

    /* write_file_atomic through the fault env cleans up after a failure. */
    tl_fault_env_arm(fe, TL_FAULT_SYNC, 1, TALUS_EIO, false);
    assert_int_equal(tl_env_write_file_atomic(e, fx->dir, "CURRENT", "x", 1), TALUS_EIO);
    assert_int_equal(tl_env_exists(e, pj(fx, "CURRENT")), 0);
    assert_int_equal(tl_env_exists(e, pj(fx, "CURRENT.tmp")), 0);
    tl_fault_env_free(fe);
}

static void test_fault_short_write(void **state)
{
    fixture *fx = *state;
    tl_fault_env *fe = tl_fault_env_new(tl_env_posix());
    tl_env *e = tl_fault_env_env(fe);
    tl_file *f;
    assert_int_equal(tl_env_open_write(e, pj(fx, "s"), &f), 0);
    assert_int_equal(tl_file_append(f, "0123", 4), 0);
    tl_fault_env_short_write_next(fe);
    assert_int_equal(tl_file_append(f, "abcdefgh", 8), TALUS_EIO);
    assert_int_equal(tl_file_append(f, "XY", 2), 0); /* only the next one */
    assert_int_equal(tl_file_close(f), 0);
    assert_string_equal(slurp(e, pj(fx, "s")), "0123abcdXY");
    assert_int_equal(tl_fault_env_count(fe, TL_FAULT_WRITE), 3);
    tl_fault_env_free(fe);
}

static void test_fault_drop_data(void **state)
{
    fixture *fx = *state;
    tl_env *p = tl_env_posix();
    /* A file that existed before the fault env: assumed durable. */
    write_file(p, pj(fx, "old"), "old-content", true);
    assert_int_equal(tl_env_sync_dir(p, fx->dir), 0);

    tl_fault_env *fe = tl_fault_env_new(p);
    tl_env *e = tl_fault_env_env(fe);
    tl_file *f;

    /* Durable entry, synced prefix, unsynced tail. */
    assert_int_equal(tl_env_open_write(e, pj(fx, "log"), &f), 0);
    assert_int_equal(tl_env_sync_dir(e, fx->dir), 0);
    assert_int_equal(tl_file_append(f, "synced-", 7), 0);
    assert_int_equal(tl_file_sync(f), 0);
    assert_int_equal(tl_file_append(f, "lost", 4), 0);
    assert_int_equal(tl_file_close(f), 0);

    /* Existing file appended to without sync: back to its old length. */
    assert_int_equal(tl_env_open_append(e, pj(fx, "old"), &f), 0);
    assert_int_equal(tl_file_append(f, "+tail", 5), 0);
    assert_int_equal(tl_file_close(f), 0);

    /* New file, directory synced, data never synced: empty. */
    assert_int_equal(tl_env_open_write(e, pj(fx, "entry-only"), &f), 0);
    assert_int_equal(tl_file_append(f, "zzz", 3), 0);
    assert_int_equal(tl_file_close(f), 0);
    assert_int_equal(tl_env_sync_dir(e, fx->dir), 0);
    /* New files, data synced or not, directory not synced since: gone. */
    write_file(e, pj(fx, "new-synced"), "data", true);
    write_file(e, pj(fx, "new-late"), "late", false);

    assert_string_equal(listing(e, fx->dir), "entry-only,log,new-late,new-synced,old");
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_string_equal(listing(e, fx->dir), "entry-only,log,old");
    assert_string_equal(slurp(e, pj(fx, "log")), "synced-");
    assert_string_equal(slurp(e, pj(fx, "old")), "old-content");
    assert_string_equal(slurp(e, pj(fx, "entry-only")), "");

    /* After the drop, what is on disk is durable: a second drop is a no-op
     * and new writes are tracked afresh. */
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_string_equal(slurp(e, pj(fx, "log")), "synced-");
    assert_int_equal(tl_env_open_append(e, pj(fx, "log"), &f), 0);
    assert_int_equal(tl_file_append(f, "more", 4), 0);
    assert_int_equal(tl_file_sync(f), 0);
    assert_int_equal(tl_file_append(f, "gone", 4), 0);
    assert_int_equal(tl_file_close(f), 0);
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_string_equal(slurp(e, pj(fx, "log")), "synced-more");

    /* A truncate lowers the durable length. */
    assert_int_equal(tl_env_truncate(e, pj(fx, "log"), 3), 0);
    assert_int_equal(tl_env_open_append(e, pj(fx, "log"), &f), 0);
    assert_int_equal(tl_file_append(f, "XY", 2), 0);
    assert_int_equal(tl_file_close(f), 0);
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_string_equal(slurp(e, pj(fx, "log")), "syn");
    tl_fault_env_free(fe);
}

static void test_fault_drop_namespace(void **state)
{
    fixture *fx = *state;
    tl_env *p = tl_env_posix();
    tl_fault_env *fe = tl_fault_env_new(p);
    tl_env *e = tl_fault_env_env(fe);

    /* The atomic-replace pattern: a durable first version... */
    assert_int_equal(tl_env_write_file_atomic(e, fx->dir, "CURRENT", "v1", 2), 0);
    /* ...then a second one renamed into place without the dir sync. */
    write_file(e, pj(fx, "CURRENT.tmp"), "v2", true);
    assert_int_equal(tl_env_rename(e, pj(fx, "CURRENT.tmp"), pj(fx, "CURRENT")), 0);
    assert_string_equal(slurp(e, pj(fx, "CURRENT")), "v2");
    /* The replaced file is hidden from listings while it is kept. */
    assert_string_equal(listing(e, fx->dir), "CURRENT");
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_string_equal(slurp(e, pj(fx, "CURRENT")), "v1");
    assert_string_equal(listing(p, fx->dir), "CURRENT");

    /* Rename into place + dir sync, but data never synced: the file is
     * there but empty (the classic missing-fsync bug). */
    write_file(e, pj(fx, "T.tmp"), "table", false);
    assert_int_equal(tl_env_rename(e, pj(fx, "T.tmp"), pj(fx, "T")), 0);
    assert_int_equal(tl_env_sync_dir(e, fx->dir), 0);
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_string_equal(slurp(e, pj(fx, "T")), "");
    assert_string_equal(listing(p, fx->dir), "CURRENT,T");

    /* Remove without a dir sync comes back; with one it stays gone. */
    write_file(e, pj(fx, "R"), "keep-me", true);
    assert_int_equal(tl_env_sync_dir(e, fx->dir), 0);
    assert_int_equal(tl_env_remove(e, pj(fx, "R")), 0);
    assert_int_equal(tl_env_exists(e, pj(fx, "R")), 0);
    assert_string_equal(listing(e, fx->dir), "CURRENT,T");
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_string_equal(slurp(e, pj(fx, "R")), "keep-me");
    assert_int_equal(tl_env_remove(e, pj(fx, "R")), 0);
    assert_int_equal(tl_env_sync_dir(e, fx->dir), 0);
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_int_equal(tl_env_exists(e, pj(fx, "R")), 0);
    assert_string_equal(listing(p, fx->dir), "CURRENT,T"); /* no hidden leftovers */

    /* Created and removed before any dir sync: nothing to bring back. */
    write_file(e, pj(fx, "tmp1"), "x", true);
    assert_int_equal(tl_env_remove(e, pj(fx, "tmp1")), 0);
    assert_string_equal(listing(p, fx->dir), "CURRENT,T");
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_int_equal(tl_env_exists(e, pj(fx, "tmp1")), 0);

    /* Removing files and their directory makes the removals final. */
    assert_int_equal(tl_env_mkdir(e, pj(fx, "tree")), 0);
    write_file(e, pj(fx, "tree/a"), "a", true);
    assert_int_equal(tl_env_sync_dir(e, pj(fx, "tree")), 0);
    assert_int_equal(tl_env_remove(e, pj(fx, "tree/a")), 0);
    assert_int_equal(tl_env_rmdir(e, pj(fx, "tree")), 0);
    assert_int_equal(tl_fault_env_drop_unsynced(fe), 0);
    assert_int_equal(tl_env_exists(e, pj(fx, "tree")), 0);

    /* Without a drop, freeing the env applies pending removes for real. */
    assert_int_equal(tl_env_remove(e, pj(fx, "T")), 0);
    tl_fault_env_free(fe);
    assert_string_equal(listing(p, fx->dir), "CURRENT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_posix_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_posix_dirs, setup, teardown),
        cmocka_unit_test(test_posix_clock),
        cmocka_unit_test_setup_teardown(test_posix_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_nth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_short_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_drop_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_drop_namespace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
