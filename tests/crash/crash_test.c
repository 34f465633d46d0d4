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
 * crashed too. Single-writer children also run a manual compaction or a
 * clean close and reopen now and then, so kills land in those as well.
 *
 * The parent kills the child after a seeded delay of 5..150 ms, counted
 * from the first ack or (one round in four) from the fork, so some children
 * die while still opening and replaying. It then opens the database itself
 * and checks it (cr_verify): every acked batch whole, no partial batch,
 * nothing that was never written, sorted and duplicate-free scans that
 * agree both ways and with gets. One round in four skips the check, so the
 * next child recovers a crashed database and can itself be killed during
 * recovery. Batch ids continue above the highest id any child announced.
 *
 * Persistent snapshots: now and then a child pins the current seqno
 * (talus_snapshot_pin) and reports it once the call returned. At each check
 * the parent requires every reported pin to be listed, reads both trees at
 * it (talus_snapshot_at) and checks what it shows: no partial batch, every
 * acknowledged batch with a seqno <= the pin visible (unless a batch visible
 * at the pin deleted it), none with a larger seqno visible, nothing never
 * written. It then unpins all but the newest two. Acks carry the batch's
 * seqno, which must be above every seqno acknowledged or pinned before the
 * child started (recovery must not hand out a seqno twice).
 *
 * Long runs: when more than TRIM_AT batches are present, the parent unpins
 * everything and deletes the oldest batches down to TRIM_TO, so the
 * database (and the time of a check) stays bounded.
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
#define PIN_BIT (1ull << 62)
#define KEEP_PINS 2
#define TRIM_AT 40000 /* present batches: long runs delete down to TRIM_TO */
#define TRIM_TO 20000
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
    o->tree.min_blob_size = 1300; /* about one value in eight goes to a blob file */
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

/* A message: {id | INTENT_BIT, 0}, {id, seqno} (ack) or {PIN_BIT, seqno}. */
static void send_msg(int fd, uint64_t a, uint64_t b)
{
    /* 16 bytes < PIPE_BUF: atomic even with several writer threads. */
    uint64_t v[2] = {a, b};
    if (write(fd, v, sizeof v) != (ssize_t)sizeof v)
        _exit(4);
}

/* Single-writer rounds only: a manual compaction, or a clean close and
 * reopen, now and then, so kills also land in those. */
static void child_maintenance(child_ctx *c, uint64_t *s)
{
    unsigned r = (unsigned)(cr_rnd(s) % 1000);
    int rc = 0;
    if (r < 5) {
        if ((rc = talus_compact_range(r % 2 ? c->ta : c->tb, NULL, 0, NULL, 0)) < 0)
            child_die("talus_compact_range", rc);
    } else if (r < 8) {
        if ((rc = talus_close(c->db)) < 0)
            child_die("talus_close", rc);
        talus_options o;
        db_options(&o);
        if ((rc = talus_open(dbpath, &o, &c->db)) < 0)
            child_die("talus_open after a clean close", rc);
        if ((rc = cr_open_trees(c->db, 0, &c->ta, &c->tb)) < 0)
            child_die("opening trees after a clean close", rc);
    }
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
        send_msg(c->fd, id | INTENT_BIT, 0);
        uint64_t seq = 0;
        if ((rc = talus_batch_commit(c->db, b, dur, &seq)) < 0)
            child_die("talus_batch_commit", rc);
        send_msg(c->fd, id, seq);
        if (cr_rnd(&s) % 64 == 0) {
            /* A compaction starting in between may refuse an older seqno. */
            uint64_t pin = talus_seqno(c->db);
            rc = talus_snapshot_pin(c->db, pin);
            if (rc == 0)
                send_msg(c->fd, PIN_BIT, pin);
            else if (rc != TALUS_ESNAPSHOT)
                child_die("talus_snapshot_pin", rc);
        }
        if (c->nthreads == 1)
            child_maintenance(c, &s);
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

/* What the parent knows beyond the model. */
typedef struct parent_state {
    cr_model m;
    uint64_t *seq; /* seqno of each acknowledged batch, 0 if unknown */
    uint8_t *seen; /* acknowledged, or seen present at some check */
    uint64_t cap;
    uint64_t pins[64]; /* reported pins still pinned, ascending */
    size_t npins;
    uint64_t seq_floor; /* every new seqno must be above this */
    uint64_t seq_max;   /* highest seqno acknowledged or pinned so far */
} parent_state;

typedef struct round_result {
    uint64_t intents, acks, pins;
    uint64_t max_intent;
    bool died_early; /* killed before the first ack */
} round_result;

static bool grow(parent_state *p, uint64_t id)
{
    if (id < p->cap)
        return true;
    uint64_t cap = p->cap ? p->cap : 1024;
    while (cap <= id)
        cap *= 2;
    uint64_t *ns = realloc(p->seq, cap * sizeof *ns);
    if (!ns)
        return false;
    p->seq = ns;
    uint8_t *nn = realloc(p->seen, cap);
    if (!nn)
        return false;
    p->seen = nn;
    memset(p->seq + p->cap, 0, (cap - p->cap) * sizeof *ns);
    memset(p->seen + p->cap, 0, cap - p->cap);
    p->cap = cap;
    return true;
}

static bool record(parent_state *p, const uint64_t msg[2], round_result *r)
{
    cr_model *m = &p->m;
    if (msg[0] == PIN_BIT) {
        if (msg[1] <= p->seq_floor) {
            fprintf(stderr,
                    "crash_test: pinned seqno %" PRIu64 " is not above seqno %" PRIu64
                    " acknowledged or pinned before this child started\n",
                    msg[1], p->seq_floor);
            return false;
        }
        if (p->npins == sizeof p->pins / sizeof p->pins[0])
            return true; /* plenty to check already; the next check unpins it */
        p->pins[p->npins++] = msg[1];
        r->pins++;
        if (msg[1] > p->seq_max)
            p->seq_max = msg[1];
        return true;
    }
    uint64_t id = msg[0] & ~INTENT_BIT;
    if (!grow(p, id))
        return false;
    if (msg[0] & INTENT_BIT) {
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
    if (msg[1] <= p->seq_floor) {
        fprintf(stderr,
                "crash_test: batch %" PRIu64 " got seqno %" PRIu64 ", not above seqno %" PRIu64
                " acknowledged or pinned before this child started\n",
                id, msg[1], p->seq_floor);
        return false;
    }
    r->acks++;
    if (msg[1] > p->seq_max)
        p->seq_max = msg[1];
    p->seq[id] = msg[1];
    p->seen[id] = 1;
    return cr_model_set(m, id, CR_MUST) == 0;
}

/* Read the child's messages, kill it on time, reap it. */
static int supervise(pid_t pid, int fd, bool from_fork, uint64_t delay, parent_state *ps,
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
        for (; have - used >= 16; used += 16) {
            uint64_t msg[2];
            memcpy(msg, buf + used, 16);
            if (!(msg[0] & (INTENT_BIT | PIN_BIT)) && !kill_at)
                kill_at = cr_now_ms() + delay;
            ok &= record(ps, msg, r);
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

/* Check what the database shows at pinned seqno pin. Runs before the
 * latest state is checked (it needs the model from before that check). */
static int check_pin(talus_db *db, talus_tree *ta, talus_tree *tb, parent_state *p, uint64_t pin)
{
    talus_snapshot *sn = talus_snapshot_at(db, pin);
    if (!sn) {
        fprintf(stderr, "crash_test: talus_snapshot_at(%" PRIu64 ") of a pinned seqno failed: %s\n",
                pin, talus_errmsg());
        return -1;
    }
    char err[4096];
    cr_found *f = NULL;
    int problems = 0;
    if (cr_scan(ta, tb, sn, seed, p->m.max_id, &f, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "crash_test: reading at pinned seqno %" PRIu64 ":\n%s\n", pin, err);
        talus_snapshot_release(db, sn);
        return -1;
    }
    talus_snapshot_release(db, sn);
    uint64_t max = p->m.max_id;
    uint8_t *deleted = calloc(max + 1, 1);
    if (!deleted) {
        free(f);
        return -1;
    }
    for (uint64_t id = 1; id <= max; id++)
        if (f[id].mask == 7 && f[id].victim)
            deleted[f[id].victim] = 1;
    for (uint64_t id = 1; id <= max && problems < 8; id++) {
        bool vis = f[id].mask == 7;
        uint64_t sq = id < p->cap ? p->seq[id] : 0;
        const char *bad = NULL;
        if (vis && cr_model_get(&p->m, id) == CR_NONE && !(id < p->cap && p->seen[id]))
            bad = "is visible but was never written, or was seen absent after a crash";
        else if (sq && sq <= pin && !vis && !deleted[id])
            bad = "has a seqno <= the pin and is acknowledged, but is not visible";
        else if (sq > pin && vis)
            bad = "has a seqno above the pin, but is visible";
        if (bad) {
            fprintf(stderr,
                    "crash_test: at pinned seqno %" PRIu64 ", batch %" PRIu64 " (seqno %" PRIu64
                    ") %s\n",
                    pin, id, sq, bad);
            problems++;
        }
    }
    free(deleted);
    free(f);
    return problems ? -1 : 0;
}

/* Every reported pin is listed and reads right; then keep the newest few. */
static int check_pins(talus_db *db, talus_tree *ta, talus_tree *tb, parent_state *p)
{
    talus_pinned_snapshot *list = NULL;
    size_t n = 0;
    int rc = talus_snapshot_list(db, &list, &n);
    if (rc < 0) {
        fprintf(stderr, "crash_test: talus_snapshot_list: %s: %s\n", talus_strerror(rc),
                talus_errmsg());
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < p->npins && !bad; i++) {
        bool listed = false;
        for (size_t j = 0; j < n && !listed; j++)
            listed = list[j].seqno == p->pins[i];
        if (!listed) {
            fprintf(stderr,
                    "crash_test: seqno %" PRIu64 " was pinned but is not listed after the "
                    "crash\n",
                    p->pins[i]);
            bad = 1;
        }
        /* Read at the pins kept from earlier checks and the newest two. */
        bool read = i < KEEP_PINS || i + 2 >= p->npins;
        if (!bad && read && check_pin(db, ta, tb, p, p->pins[i]) < 0)
            bad = 1;
    }
    /* Unpin all but the newest KEEP_PINS reported ones (and any pin whose
     * report the kill cut off). */
    size_t keep_from = p->npins > KEEP_PINS ? p->npins - KEEP_PINS : 0;
    for (size_t j = 0; j < n && !bad; j++) {
        bool keep_it = false;
        for (size_t i = keep_from; i < p->npins; i++)
            keep_it |= p->pins[i] == list[j].seqno;
        if (!keep_it && (rc = talus_snapshot_unpin(db, list[j].seqno)) < 0) {
            fprintf(stderr, "crash_test: talus_snapshot_unpin(%" PRIu64 "): %s: %s\n",
                    list[j].seqno, talus_strerror(rc), talus_errmsg());
            bad = 1;
        }
    }
    memmove(p->pins, p->pins + keep_from, (p->npins - keep_from) * sizeof p->pins[0]);
    p->npins -= keep_from;
    talus_free(list);
    return bad ? -1 : 0;
}

/* Long runs: delete the oldest `n` present batches so the database stays
 * bounded. Pins go first (reads at them would miss these deletes' effect
 * in the model), and the batches' seqnos are forgotten. */
static int trim(talus_db *db, talus_tree *ta, talus_tree *tb, parent_state *p, uint64_t n)
{
    talus_pinned_snapshot *list = NULL;
    size_t npins = 0;
    int rc = talus_snapshot_list(db, &list, &npins);
    for (size_t i = 0; rc == 0 && i < npins; i++)
        rc = talus_snapshot_unpin(db, list[i].seqno);
    talus_free(list);
    p->npins = 0;
    talus_batch *b = NULL;
    if (rc == 0)
        rc = talus_batch_new(&b);
    uint64_t id = 1;
    while (rc == 0 && n > 0) {
        talus_batch_clear(b);
        uint64_t done[100];
        size_t nd = 0;
        for (; id <= p->m.max_id && nd < 100 && nd < n; id++) {
            if (cr_model_get(&p->m, id) != CR_MUST)
                continue;
            for (int w = 0; rc == 0 && w < CR_KEYS; w++) {
                char key[CR_KEY_MAX];
                size_t kl = cr_key(id, w, key);
                rc = talus_batch_delete(b, w == 2 ? tb : ta, key, kl);
            }
            done[nd++] = id;
        }
        if (nd == 0)
            break;
        uint64_t seq = 0;
        if (rc == 0)
            rc = talus_batch_commit(db, b, TALUS_DURABILITY_SYNC, &seq);
        for (size_t i = 0; rc == 0 && i < nd; i++)
            cr_model_set(&p->m, done[i], CR_NONE);
        /* Below here the evidence of deletes (deleters) is gone too. */
        for (uint64_t j = 1; rc == 0 && j < id && j < p->cap; j++)
            p->seq[j] = 0;
        if (seq > p->seq_max)
            p->seq_max = seq;
        n -= nd;
    }
    talus_batch_free(b);
    if (rc < 0)
        fprintf(stderr, "crash_test: trimming old batches failed: %s: %s\n", talus_strerror(rc),
                talus_errmsg());
    return rc < 0 ? -1 : 0;
}

/* Open the database in this process and check it against the model. */
static int check_db(parent_state *ps, cr_report *rep, uint64_t *disk)
{
    memset(rep, 0, sizeof *rep);
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
    cr_model *m = &ps->m;
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
    int vr = check_pins(db, ta, tb, ps);
    if (vr == 0 && (vr = cr_verify(ta, tb, seed, m, rep, err, sizeof err)) < 0)
        fprintf(stderr, "crash_test: the database after the crash is wrong:\n%s\n", err);
    for (uint64_t id = 1; vr == 0 && id <= m->max_id; id++)
        if (cr_model_get(m, id) == CR_MUST && grow(ps, id))
            ps->seen[id] = 1;
    if (vr == 0 && rep->present > TRIM_AT)
        vr = trim(db, ta, tb, ps, rep->present - TRIM_TO);
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

    parent_state ps = {0};
    uint64_t next_id = 1, total_acks = 0, total_pins = 0, early = 0, multi = 0, skipped = 0,
             disk = 0;
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
        uint64_t *victims = cr_model_victims(&ps.m, seed, &nvictims);
        ps.seq_floor = ps.seq_max;
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
        if (supervise(pid, fds[0], from_fork, delay, &ps, &r) < 0)
            failed = 1;
        close(fds[0]);
        total_acks += r.acks;
        total_pins += r.pins;
        early += r.died_early;
        multi += nthreads > 1;
        if (r.max_intent >= next_id)
            next_id = r.max_intent + 1;
        if (!failed && verify) {
            cr_report rep;
            if (check_db(&ps, &rep, &disk) < 0)
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
           " batches acknowledged, %" PRIu64 " seqnos pinned\n",
           done, multi, threads, early, skipped, total_acks, total_pins);
    printf("crash_test: unacknowledged batches found after the crash: %" PRIu64 ", lost: %" PRIu64
           "; batches deleted by deleters: %" PRIu64 "\n",
           sum.may_found, sum.may_lost, sum.deleted);
    printf("crash_test: final database: %" PRIu64 " batches, %" PRIu64 " keys, %.1f MiB of "
           "tables; %.1f s\n",
           sum.present, sum.keys, disk / 1048576.0, (cr_now_ms() - start) / 1000.0);
    cr_model_free(&ps.m);
    free(ps.seq);
    free(ps.seen);
    if (failed || keep)
        printf("crash_test: database kept in %s\n", dir);
    else
        cr_rmtree(dir);
    printf("%s\n", failed ? "0 passed, 1 failed" : "1 passed, 0 failed");
    return failed ? 1 : 0;
}
