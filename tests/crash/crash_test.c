/*
 * crash_test.c - real crashes: a child process writes batches and is killed
 * with SIGKILL at a random moment; the parent reopens the database and
 * checks that nothing acknowledged was lost and no batch is half there.
 *
 *   crash_test [--kills N] [--seed S] [--dir D] [--threads T] [--keep]
 *
 * Each round forks a child that opens the database (small write buffers,
 * tables and journal segments, so flushes, compactions and segment
 * rotations all happen while it runs), opens trees "a" and "b" and commits
 * batches in a loop (see crash_util.h for what a batch writes). Before a
 * commit the child sends "intent B" down a pipe, after talus_batch_commit
 * returns 0 it sends "ack B". Durability is sync for most batches and
 * buffered for the rest: both must survive the death of the process.
 * Deletes are included: deleter batches delete a batch the parent had seen
 * present. Half of the rounds run T writer threads (default 4) that commit
 * concurrently, each acknowledging its own batches, so group commit is
 * crashed too.
 *
 * The parent kills the child after a seeded delay of 5..150 ms, counted
 * from the first ack or (one round in four) from the fork, so some children
 * die while still opening and replaying. It then opens the database itself
 * and checks it (cr_verify): every acked batch whole, no partial batch,
 * nothing that was never written, sorted and duplicate-free scans that
 * agree both ways and with gets. One round in four skips the check, so the
 * next child recovers a crashed database and can itself be killed during
 * recovery. Batch ids continue above the highest id any child announced.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash_util.h"

#define INTENT_BIT (1ull << 63)
#define MAX_THREADS 16
#define MIN_FILLER 100
#define MAX_FILLER 1500

static uint64_t seed;
static unsigned kills = 50;
static int threads = 4;
static const char *parent_dir;
static bool keep;
static char dbpath[4200];

/* ---- Options ------------------------------------------------------------ */

static void db_options(talus_options *o)
{
    talus_options_init(o);
    o->block_cache_size = 1u << 20;
    o->background_threads = 2;
    o->tree.write_buffer_size = 256u << 10;
    o->tree.target_file_size = 256u << 10;
    o->tree.max_bytes_for_level_base = 1u << 20;
    o->tree.level_size_multiplier = 4;
    o->journal_segment_size = 1u << 20;
    o->max_journal_size = 4u << 20;
}

/* ---- The child ---------------------------------------------------------- */

typedef struct child_ctx {
    talus_db *db;
    talus_tree *ta, *tb;
    int fd;
    int t, nthreads;
    uint64_t first_id;
    uint64_t rs;
    const uint64_t *victims;
    size_t nvictims;
} child_ctx;

static void child_die(const char *what, int rc)
{
    fprintf(stderr, "crash_test child: %s failed: %s: %s\n", what, talus_strerror(rc),
            talus_errmsg());
    _exit(3);
}

static void send_msg(int fd, uint64_t v)
{
    /* 8 bytes < PIPE_BUF: atomic even with several writer threads. */
    if (write(fd, &v, sizeof v) != (ssize_t)sizeof v)
        _exit(4);
}

static void *child_writer(void *arg)
{
    child_ctx *c = arg;
    uint64_t s = cr_mix(c->rs, (uint64_t)c->t + 1);
    talus_batch *b = NULL;
    int rc = talus_batch_new(&b);
    if (rc < 0)
        child_die("talus_batch_new", rc);
    for (uint64_t k = 0;; k++) {
        uint64_t id = c->first_id + (uint64_t)c->t + k * (uint64_t)c->nthreads;
        uint64_t victim = 0;
        if (cr_is_deleter(seed, id) && c->nvictims)
            victim = c->victims[cr_rnd(&s) % c->nvictims];
        if ((rc = cr_batch_fill(b, c->ta, c->tb, seed, id, victim, MIN_FILLER, MAX_FILLER)) < 0)
            child_die("building a batch", rc);
        int dur = cr_rnd(&s) % 10 < 7 ? TALUS_DURABILITY_SYNC : TALUS_DURABILITY_BUFFERED;
        send_msg(c->fd, id | INTENT_BIT);
        if ((rc = talus_batch_commit(c->db, b, dur, NULL)) < 0)
            child_die("talus_batch_commit", rc);
        send_msg(c->fd, id);
    }
    return NULL;
}

static void run_child(int fd, uint64_t rs, int nthreads, uint64_t first_id, const uint64_t *victims,
                      size_t nvictims)
{
    talus_options o;
    db_options(&o);
    talus_db *db = NULL;
    int rc = talus_open(dbpath, &o, &db);
    if (rc < 0)
        child_die("talus_open", rc);
    talus_tree *ta, *tb;
    if ((rc = cr_open_trees(db, 1, &ta, &tb)) < 0)
        child_die("opening trees", rc);
    child_ctx ctx[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    for (int t = 0; t < nthreads; t++) {
        ctx[t] = (child_ctx){db, ta, tb, fd, t, nthreads, first_id, rs, victims, nvictims};
        if (t > 0 && pthread_create(&th[t], NULL, child_writer, &ctx[t]) != 0)
            _exit(5);
    }
    child_writer(&ctx[0]); /* never returns: the parent kills us */
    _exit(6);
}

/* ---- The parent --------------------------------------------------------- */

typedef struct round_result {
    uint64_t intents, acks;
    uint64_t max_intent;
    bool died_early; /* killed before the first ack */
} round_result;

static bool record(cr_model *m, uint64_t msg, round_result *r)
{
    uint64_t id = msg & ~INTENT_BIT;
    if (msg & INTENT_BIT) {
        if (cr_model_get(m, id) != CR_NONE) {
            fprintf(stderr, "crash_test: child announced batch %" PRIu64 " twice\n", id);
            return false;
        }
        r->intents++;
        if (id > r->max_intent)
            r->max_intent = id;
        return cr_model_set(m, id, CR_MAY) == 0;
    }
    if (cr_model_get(m, id) != CR_MAY) {
        fprintf(stderr, "crash_test: ack of batch %" PRIu64 " without an intent\n", id);
        return false;
    }
    r->acks++;
    return cr_model_set(m, id, CR_MUST) == 0;
}

/* Read the child's messages, kill it on time, reap it. */
static int supervise(pid_t pid, int fd, bool from_fork, uint64_t delay, cr_model *m,
                     round_result *r)
{
    uint64_t t0 = cr_now_ms();
    uint64_t kill_at = from_fork ? t0 + delay : 0;
    bool killed = false, eof = false, ok = true;
    uint8_t buf[4096];
    size_t have = 0;
    while (!eof) {
        uint64_t now = cr_now_ms();
        if (!killed && kill_at && now >= kill_at) {
            kill(pid, SIGKILL);
            killed = true;
        }
        if (!killed && !kill_at && now - t0 > 60000) {
            fprintf(stderr, "crash_test: the child made no progress in 60 s\n");
            kill(pid, SIGKILL);
            killed = true;
            ok = false;
        }
        int timeout = killed ? 1000 : kill_at ? (int)(kill_at - now) : 100;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, timeout);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n <= 0)
            continue;
        ssize_t got = read(fd, buf + have, sizeof buf - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            eof = true; /* the child is dead (or closed its end) */
            break;
        }
        have += (size_t)got;
        size_t used = 0;
        for (; have - used >= 8; used += 8) {
            uint64_t msg;
            memcpy(&msg, buf + used, 8);
            if (!(msg & INTENT_BIT) && !kill_at)
                kill_at = cr_now_ms() + delay;
            ok &= record(m, msg, r);
        }
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    if (!killed)
        kill(pid, SIGKILL); /* EOF without our kill: make sure it is gone */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!killed || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        fprintf(stderr,
                "crash_test: the child ended by itself (status 0x%x) before it was "
                "killed; see its message above\n",
                status);
        ok = false;
    }
    r->died_early = r->acks == 0;
    return ok ? 0 : -1;
}

/* Open the database in this process and check it against the model. */
static int check_db(cr_model *m, cr_report *rep, uint64_t *disk)
{
    talus_options o;
    db_options(&o);
    talus_db *db = NULL;
    int rc = talus_open(dbpath, &o, &db);
    if (rc < 0) {
        fprintf(stderr, "crash_test: reopen after the crash failed: %s: %s\n", talus_strerror(rc),
                talus_errmsg());
        return -1;
    }
    /* Until a child has created both trees nothing can be required. */
    bool any_must = false;
    for (uint64_t id = 1; id <= m->max_id && !any_must; id++)
        any_must = cr_model_get(m, id) == CR_MUST;
    talus_tree *ta, *tb;
    rc = cr_open_trees(db, !any_must, &ta, &tb);
    if (rc < 0) {
        fprintf(stderr, "crash_test: opening trees after the crash failed: %s: %s\n",
                talus_strerror(rc), talus_errmsg());
        talus_close(db);
        return -1;
    }
    char err[4096];
    int vr = cr_verify(ta, tb, seed, m, rep, err, sizeof err);
    if (vr < 0)
        fprintf(stderr, "crash_test: the database after the crash is wrong:\n%s\n", err);
    *disk = talus_disk_space(ta) + talus_disk_space(tb);
    rc = talus_close(db);
    if (rc < 0) {
        fprintf(stderr, "crash_test: close after the check failed: %s: %s\n", talus_strerror(rc),
                talus_errmsg());
        return -1;
    }
    return vr;
}

static void usage(void)
{
    fprintf(stderr, "usage: crash_test [--kills N] [--seed S] [--dir D] [--threads T] [--keep]\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option lo[] = {
        {"kills", required_argument, NULL, 'k'}, {"seed", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'd'},   {"threads", required_argument, NULL, 't'},
        {"keep", no_argument, NULL, 'K'},        {NULL, 0, NULL, 0},
    };
    bool have_seed = false, have_kills = false;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'k':
            kills = (unsigned)strtoul(optarg, NULL, 10);
            have_kills = true;
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            have_seed = true;
            break;
        case 'd':
            parent_dir = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            if (threads < 1 || threads > MAX_THREADS)
                usage();
            break;
        case 'K':
            keep = true;
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
    if (!have_seed)
        seed = cr_clock_seed();
    if (!have_kills)
        kills = cr_scaled(kills, 4);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    printf("crash_test: seed=%" PRIu64 "\n", seed);
    fflush(stdout);
    char dir[4096];
    if (cr_make_tmpdir(parent_dir, "talus-crash", dir, sizeof dir) < 0)
        return 1;
    snprintf(dbpath, sizeof dbpath, "%s/db", dir);

    cr_model m = {0};
    uint64_t next_id = 1, total_acks = 0, early = 0, multi = 0, skipped = 0, disk = 0;
    cr_report sum = {0};
    uint64_t start = cr_now_ms();
    int failed = 0;
    unsigned done = 0;
    for (unsigned round = 0; round < kills && !failed; round++, done++) {
        uint64_t rs = cr_mix(seed, round + 1);
        uint64_t s = rs;
        int nthreads = round % 2 == 1 ? threads : 1;
        bool from_fork = cr_rnd(&s) % 4 == 0;
        uint64_t delay = cr_range(&s, 5, 150);
        bool verify = round + 1 == kills || cr_rnd(&s) % 4 != 0;
        size_t nvictims = 0;
        uint64_t *victims = cr_model_victims(&m, seed, &nvictims);
        char what[128];
        snprintf(what, sizeof what, "crash_test round %u (seed=%" PRIu64 ")", round, seed);
        cr_watchdog(120, what);

        int fds[2];
        if (pipe(fds) < 0) {
            perror("pipe");
            return 1;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            close(fds[0]);
            signal(SIGALRM, SIG_DFL);
            alarm(0);
            run_child(fds[1], rs, nthreads, next_id, victims, nvictims);
        }
        close(fds[1]);
        free(victims);
        round_result r = {0};
        if (supervise(pid, fds[0], from_fork, delay, &m, &r) < 0)
            failed = 1;
        close(fds[0]);
        total_acks += r.acks;
        early += r.died_early;
        multi += nthreads > 1;
        if (r.max_intent >= next_id)
            next_id = r.max_intent + 1;
        if (!failed && verify) {
            cr_report rep;
            if (check_db(&m, &rep, &disk) < 0)
                failed = 1;
            sum.may_found += rep.may_found;
            sum.may_lost += rep.may_lost;
            sum.deleted += rep.deleted;
            sum.present = rep.present;
            sum.keys = rep.keys;
        } else if (!verify) {
            skipped++;
        }
        if (failed)
            fprintf(stderr,
                    "crash_test: FAILED in round %u (%d writer thread%s, killed %" PRIu64
                    " ms after the %s, %" PRIu64 " acks); replay with: crash_test --seed %" PRIu64
                    " --kills %u\n",
                    round, nthreads, nthreads > 1 ? "s" : "", delay,
                    from_fork ? "fork" : "first ack", r.acks, seed, kills);
    }
    cr_watchdog(0, "");
    printf("crash_test: %u kills (%" PRIu64 " with %d writer threads, %" PRIu64
           " before the first ack, %" PRIu64 " not checked before the next child), %" PRIu64
           " batches acknowledged\n",
           done, multi, threads, early, skipped, total_acks);
    printf("crash_test: unacknowledged batches found after the crash: %" PRIu64 ", lost: %" PRIu64
           "; batches deleted by deleters: %" PRIu64 "\n",
           sum.may_found, sum.may_lost, sum.deleted);
    printf("crash_test: final database: %" PRIu64 " batches, %" PRIu64 " keys, %.1f MiB of "
           "tables; %.1f s\n",
           sum.present, sum.keys, disk / 1048576.0, (cr_now_ms() - start) / 1000.0);
    cr_model_free(&m);
    if (failed || keep)
        printf("crash_test: database kept in %s\n", dir);
    else
        cr_rmtree(dir);
    printf("%s\n", failed ? "0 passed, 1 failed" : "1 passed, 0 failed");
    return failed ? 1 : 0;
}
